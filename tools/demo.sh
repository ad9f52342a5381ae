#!/usr/bin/env bash
# The demo: two xdpmesh "nodes" (network namespaces joined by a veth wire),
# each running xdpmeshd with two "pods" (namespaces behind veth pairs). Pods on
# different nodes talk through a VXLAN tunnel (or Geneve: tools/demo.sh geneve);
# the demo shows the traffic and `xdpmeshctl status` of both nodes, then cleans up.
# Needs root. Builds nothing: run after `meson setup build && ninja -C build`.
set -euo pipefail
MODE=${1:-vxlan}
XM_SOURCE=$(cd "$(dirname "$0")/.." && pwd)
XM_BUILD=${XM_BUILD:-$XM_SOURCE/build}
XM_PREFIX=${XM_PREFIX:-xmdemo-}
. "$XM_SOURCE/tools/testnet/lib.sh"
. "$XM_SOURCE/tools/testnet/two_nodes.sh"
trap xm_cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { "$XM_BUILD/xdpmeshctl" --socket "$XM_WORK/$1.sock" "${@:2}"; }

step "topology: node-a (192.168.50.1) <-wire-> node-b (192.168.50.2), $MODE overlay"
xm_two_nodes "$MODE"
echo "pods: a1 10.1.1.2  a2 10.1.1.3  on node-a;  b1 10.1.2.2  b2 10.1.2.3  on node-b"
echo "config of node-a: $XM_WORK/node-a.yaml"

step "starting xdpmeshd on both nodes"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"

step "pod a1 -> pod b1 across the tunnel (IPv4 and IPv6)"
xm_ns a1 ping -c 3 -i 0.2 10.1.2.2
xm_ns a1 ping -6 -c 3 -i 0.2 fd00:1:2::2
step "pod b2 -> pod a2 (the other way)"
xm_ns b2 ping -c 3 -i 0.2 10.1.1.3

step "TCP: 20 MiB from a1 to b1, content checked"
xm_ns b1 /usr/bin/python3 "$XM_SOURCE/tools/testnet/traffic.py" tcp-server --port 5001 >"$XM_WORK/tcp.json" &
spid=$!
for _ in $(seq 50); do grep -q listening "$XM_WORK/tcp.json" 2>/dev/null && break; sleep 0.05; done
xm_ns a1 /usr/bin/python3 "$XM_SOURCE/tools/testnet/traffic.py" tcp-client --host 10.1.2.2 --port 5001 --bytes 20971520
wait $spid
tail -1 "$XM_WORK/tcp.json"

for n in node-a node-b; do
  step "xdpmeshctl status on $n"
  ctl $n status
done
step "xdpmeshctl stats on node-a"
ctl node-a stats
step "xdpmeshctl ipcache list on node-a"
ctl node-a ipcache list
step "xdpmeshctl node list on node-a"
ctl node-a node list
step "done: stopping the daemons and removing the namespaces"
