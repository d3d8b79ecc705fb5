//! Integration tests of keelson-storage, one test binary (one link).

mod conformance;
mod durability;
mod etcd;
mod etcd_server;
mod sqlite;
