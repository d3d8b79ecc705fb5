#!/usr/bin/env bash
# The API server on etcd against raw etcd, in one run on one throw-away etcd: the raw put
# rate through the etcd-client crate (storage/examples/put_rate: one create = one etcd
# transaction, as the API server does), then ConfigMap creates through `keelson apiserver`
# on the same etcd, both with the same concurrency. Prints both and their ratio.
#
#   bash bench/etcd-ratio.sh [COUNT] [CONCURRENCY]      (defaults 20000 and 32)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-20000}
concurrency=${2:-32}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin keelson -p keelson --bin create-configmaps -p keelson-bench
cargo build --release -p keelson-storage --example put_rate
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 \
  --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
  --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster default=http://127.0.0.1:23800 >"$work/etcd.log" 2>&1 &
pids+=($!)
until curl -sf http://127.0.0.1:23790/health >/dev/null; do sleep 0.2; done

raw=$("$target/release/examples/put_rate" --etcd http://127.0.0.1:23790 --clients "$concurrency" --total "$count")
echo "raw etcd:        $raw"

"$target/release/keelson" apiserver --data-dir "$work/api" --port 0 \
  --etcd-servers http://127.0.0.1:23790 >"$work/api.log" 2>&1 &
pids+=($!)
until [ -s "$work/api/admin.kubeconfig" ]; do sleep 0.2; done
api=$("$target/release/create-configmaps" --kubeconfig "$work/api/admin.kubeconfig" --count "$count" --concurrency "$concurrency")
echo "API server on etcd:"
echo "$api" | sed 's/^/  /'

raw_rate=$(echo "$raw" | grep -oE '[0-9]+ creates/s' | grep -oE '^[0-9]+')
api_rate=$(echo "$api" | grep -oE 'throughput +[0-9]+' | grep -oE '[0-9]+$')
echo "ratio:           API server / raw etcd = $api_rate / $raw_rate = $(( 100 * api_rate / raw_rate )) %"
