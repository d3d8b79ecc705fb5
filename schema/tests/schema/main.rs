//! Integration tests of keelson-schema, one test binary (one link).

mod decode;
mod fixtures;
mod upstream;
