#!/usr/bin/env bash
# The test command of README.md: lint, then every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests start the real binary, so it is built first.
cargo build --bin keelson
cargo nextest run --workspace --no-fail-fast
# The API-level end-to-end tests again, each server on an etcd of its own: the same tests
# on both storage backends.
KEELSON_E2E_STORE=etcd cargo nextest run -p keelson --test e2e --no-fail-fast \
  -E 'test(/^(api|kubectl|kube_rs|robustness|helm)::/)'
