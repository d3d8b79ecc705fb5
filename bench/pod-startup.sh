#!/usr/bin/env bash
# Pod startup latency on this host (as root): a throw-away `keelson server` (release
# build) with its kubelet on a containerd of its own, the busybox test image imported,
# then PODS pods created at once, then again at 10 pods/s; prints create→Running percentiles, the deletion time and
# the server's memory.
#
#   sudo bash bench/pod-startup.sh [PODS] [CONCURRENCY]      (defaults 100 and 16)
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-100}
concurrency=${2:-16}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin keelson -p keelson --bin pod-startup -p keelson-bench
cargo build --release -p keelson-kubelet --example build-busybox-image
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  sock="$work/kubelet/containerd/containerd.sock"
  for id in $(ctr --address "$sock" -n keelson tasks list -q 2>/dev/null); do
    ctr --address "$sock" -n keelson tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 0.5
  for id in $(ctr --address "$sock" -n keelson tasks list -q 2>/dev/null); do
    ctr --address "$sock" -n keelson tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  pkill -f "containerd --config $work/kubelet/containerd" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${KEEP_LOG:-}" ] && cp "$work/server.log" "$KEEP_LOG"
  rm -rf "$work"
}
trap cleanup EXIT

"$target/release/keelson" server --data-dir "$work" --port 0 \
  --pod-cidr 10.251.0.0/24 --cni-bridge keelsonbench0 >"$work/server.log" 2>&1 &
server=$!
until [ -S "$work/kubelet/containerd/containerd.sock" ] && [ -s "$work/admin.kubeconfig" ]; do sleep 0.2; done
"$target/release/examples/build-busybox-image" "$work/busybox.tar" keelson.test/busybox:1
"$target/release/keelson" image import "$work/busybox.tar" \
  --containerd-socket "$work/kubelet/containerd/containerd.sock"
"$target/release/pod-startup" --kubeconfig "$work/admin.kubeconfig" --pods "$pods" --concurrency "$concurrency"
# The same pods at a steady 10 pods/s: the latency of one pod start, not of a burst queue.
"$target/release/pod-startup" --kubeconfig "$work/admin.kubeconfig" --pods "$pods" --concurrency "$concurrency" --rate 10
echo "server RSS      $(( $(awk '/VmHWM/ {print $2}' /proc/$server/status) / 1024 )) MiB peak, $(( $(awk '/VmRSS/ {print $2}' /proc/$server/status) / 1024 )) MiB now"
loggers=$(pgrep -fc "keelson container-logger" || true)
echo "loggers         $loggers running"
