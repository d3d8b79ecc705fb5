//! Filter and score plugins: placeholder until written.
