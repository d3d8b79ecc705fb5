//! The framework types plugins work on: placeholder until written.
