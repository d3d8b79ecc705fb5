#!/usr/bin/env bash
# The test command of README.md: lint, then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests start the real binary, so it is built first.
cargo build --bin keelson
cargo nextest run --workspace --no-fail-fast
