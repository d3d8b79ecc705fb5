#!/usr/bin/env bash
# The control plane against many simulated nodes: `keelson apiserver`, `controller-manager`
# and `scheduler`, and one `keelson kubelet --runtime simulated --nodes NODES` process;
# waits for every node to be Ready, then times a Deployment of REPLICAS to all-available
# (pods run by the simulated kubelets, not a stand-in) and prints each process's memory.
#
#   bash bench/simulated-nodes.sh [NODES] [REPLICAS]      (defaults 1000 and 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-1000}
replicas=${2:-10000}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin keelson -p keelson --bin deployment-rollout -p keelson-bench
# One watch and one Lease client per node: raise the open-file limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
k="$target/release/keelson"
"$k" apiserver --data-dir "$work/api" --port 0 >"$work/api.log" 2>&1 &
pids+=($!); api=$!
until [ -s "$work/api/admin.kubeconfig" ]; do sleep 0.2; done
kc="$work/api/admin.kubeconfig"
"$k" controller-manager --kubeconfig "$kc" --leader-elect=false --health-address 127.0.0.1:0 >"$work/cm.log" 2>&1 &
pids+=($!); cm=$!
"$k" scheduler --kubeconfig "$kc" --leader-elect=false --health-address 127.0.0.1:0 >"$work/sched.log" 2>&1 &
pids+=($!); sched=$!
started=$(date +%s.%N)
"$k" kubelet --kubeconfig "$kc" --runtime simulated --nodes "$nodes" --node-name sim \
  --root-dir "$work/kubelet" --health-address 127.0.0.1:0 \
  --simulated-start-delay-ms 500 >"$work/kubelet.log" 2>&1 &
pids+=($!); kubelet=$!
kubectl() { /usr/local/bin/kubectl-1.37 --kubeconfig "$kc" "$@"; }
until [ "$(kubectl get nodes --no-headers 2>/dev/null | grep -c ' Ready')" -ge "$nodes" ]; do sleep 1; done
echo "nodes           $nodes Ready in $(echo "$(date +%s.%N) - $started" | bc | cut -c1-5) s"
"$target/release/deployment-rollout" --kubeconfig "$kc" --replicas "$replicas" --no-readier --timeout 1200
leases=$(kubectl -n kube-node-lease get leases --no-headers | wc -l)
echo "leases          $leases"
rss() { echo "$(( $(awk '/VmRSS/ {print $2}' "/proc/$1/status") / 1024 )) MiB"; }
echo "RSS             apiserver $(rss $api), controller-manager $(rss $cm), scheduler $(rss $sched), kubelet ($nodes nodes) $(rss $kubelet)"
