//! Pieces the load generators share with the end-to-end tests.

pub mod readier;
