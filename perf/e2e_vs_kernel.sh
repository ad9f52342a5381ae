#!/usr/bin/env bash
# End to end: xdpmesh vs kernel VXLAN (pod -> node A -> tunnel -> node B -> pod).
#
# Builds the standard two-node topology of tools/testnet (node-a/node-b joined
# by a veth wire, pods behind veth pairs) twice, with the same namespaces and
# addresses: once forwarded by xdpmeshd (VXLAN, one worker per node), once by
# the Linux kernel's own VXLAN device and IPv4 forwarding. In both, an AF_XDP
# generator in pod a1 (10.1.1.2) sends UDP to pod b1 (10.1.2.2), where an
# AF_XDP receiver counts what arrives. Prints received pps per frame size and
# the xdpmesh/kernel ratio.
#
# Usage (root): perf/e2e_vs_kernel.sh
# Environment:
#   XM_BUILD      build directory with xdpmeshd, xdpmeshctl, xdpmesh-bench (default: <repo>/build)
#   E2E_SIZES     frame sizes (default "64 1400")
#   E2E_DURATION  seconds the generator sends per run (default 3)
#   E2E_RATES     offered loads in pps, 0 = as fast as the generator can (default "0 200000 300000 400000")
#   E2E_REPS      runs per mode, size and rate; the median is reported (default 2)
#   E2E_MODES     paths to measure (default "xdpmesh kernel")
#   E2E_KEEP      if set, keep the per-run JSON and logs (path printed at the end)
# Several offered loads, not only "as fast as possible": an AF_XDP generator
# feels no back-pressure from the xdpmesh path (it does from the kernel path,
# whose forwarding runs inside the generator's own sendto()), so at full speed
# it overdrives the daemons on a small machine and the figure shows the
# overload collapse rather than the forwarding capacity. Both are reported.
# Not part of the test suite: it needs root, takes about two minutes and
# measures, rather than checks.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "e2e_vs_kernel: must run as root (network namespaces, XDP, AF_XDP)" >&2
  exit 1
fi
for tool in ip ethtool jq; do
  command -v "$tool" >/dev/null || { echo "e2e_vs_kernel: $tool not found" >&2; exit 1; }
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export XM_BUILD=${XM_BUILD:-$ROOT/build}
for bin in xdpmeshd xdpmeshctl xdpmesh-bench; do
  [ -x "$XM_BUILD/$bin" ] || { echo "e2e_vs_kernel: $XM_BUILD/$bin missing; build first (ninja -C $XM_BUILD)" >&2; exit 1; }
done
BENCH=$XM_BUILD/xdpmesh-bench
SIZES=${E2E_SIZES:-64 1400}
DURATION=${E2E_DURATION:-3}
RATES=${E2E_RATES:-0 200000 300000 400000}
REPS=${E2E_REPS:-2}
MODES=${E2E_MODES:-xdpmesh kernel}

# Our own prefix: concurrent runs (or the integration tests) do not collide.
export XM_PREFIX=e2e$$-
# The topology is built twice; lib.sh's work directory must survive the first teardown.
USER_KEEP_WORK=${XM_KEEP_WORK:-}
export XM_KEEP_WORK=1
# shellcheck source=../tools/testnet/lib.sh
. "$ROOT/tools/testnet/lib.sh"
# shellcheck source=../tools/testnet/two_nodes.sh
. "$ROOT/tools/testnet/two_nodes.sh"

OUT=$XM_WORK/results
mkdir -p "$OUT"
BENCH_PIDS=()

cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BENCH_PIDS=()
  xm_cleanup
  if [ -n "${E2E_KEEP:-}${USER_KEEP_WORK}" ]; then
    echo "e2e_vs_kernel: results and logs kept in $XM_WORK" >&2
  else
    rm -rf "$XM_WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# The kernel routes what the generator sends like a pod's traffic through a
# Cilium-style node without eBPF: lxc-* answer ARP for remote pods (proxy
# ARP), remote pod CIDRs go through a point-to-point VXLAN device (VNI 42,
# port 8472 as xdpmeshd), local pods are /32 routes on their host interface.
# Neighbor entries are static: the receiver's XDP program takes every frame
# of pod b1, ARP replies included.
vxlan_mac() { xm_mac_of "$1" | sed 's/^02:00/02:01/'; }
kernel_node() {  # NODE LOCAL_IP PEER_IP PEER_POD_CIDR HOST_IF:POD_IP...
  local node=$1 lip=$2 pip=$3 cidr=$4 pair hostif podip
  shift 4
  xm_ns "$node" sysctl -qw net.ipv4.ip_forward=1
  xm_ns "$node" ip link add vxlan0 type vxlan id 42 dstport 8472 local "$lip" remote "$pip" dev wire0
  xm_ns "$node" ip link set vxlan0 address "$(vxlan_mac "$lip")" up
  xm_ns "$node" ip neigh replace "$pip" lladdr "$(vxlan_mac "$pip")" dev vxlan0 nud permanent
  xm_ns "$node" ip route add "$cidr" via "$pip" dev vxlan0 onlink
  for pair in "$@"; do
    hostif=${pair%%:*}
    podip=${pair#*:}
    xm_ns "$node" ip route add "$podip/32" dev "$hostif"
    xm_ns "$node" ip neigh replace "$podip" lladdr "$(xm_mac_of "$podip")" dev "$hostif" nud permanent
    xm_ns "$node" sysctl -qw "net.ipv4.conf.$hostif.proxy_arp=1"
  done
}

setup() {  # MODE: xdpmesh | kernel
  xm_two_nodes vxlan
  if [ "$1" = xdpmesh ]; then
    xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/xdpmeshd-a.log"
    xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/xdpmeshd-b.log"
    local node workers
    for node in node-a node-b; do
      workers=$("$XM_BUILD/xdpmeshctl" --socket "$XM_WORK/$node.sock" --output json status | jq .workers)
      [ "$workers" = 1 ] || { echo "e2e_vs_kernel: xdpmeshd in $node runs $workers workers, expected 1" >&2; exit 1; }
    done
  else
    kernel_node node-a 192.168.50.1 192.168.50.2 10.1.2.0/24 lxc-a1:10.1.1.2 lxc-a2:10.1.1.3
    kernel_node node-b 192.168.50.2 192.168.50.1 10.1.1.0/24 lxc-b1:10.1.2.2 lxc-b2:10.1.2.3
  fi
  # Also resolves the tunnel next hop on either path before the clock runs.
  if ! xm_ns a1 ping -q -c 3 -i 0.2 -W 1 10.1.2.2 >/dev/null; then
    echo "e2e_vs_kernel: pod a1 cannot ping pod b1 through the $1 path; not measuring" >&2
    [ "$1" = xdpmesh ] && tail -n 20 "$XM_WORK"/xdpmeshd-*.log >&2
    exit 1
  fi
}

teardown() {
  xm_stop_daemons
  local ns
  for ns in "${XM_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  XM_NETNS=()
}

daemon_stats() {  # NODE FILE
  "$XM_BUILD/xdpmeshctl" --socket "$XM_WORK/$1.sock" --output json stats >"$2" 2>/dev/null || echo '{}' >"$2"
}

run_one() {  # MODE SIZE RATE REP
  local mode=$1 size=$2 rate=$3 rep=$4 base gw_mac rpid
  base=$OUT/$mode-$size-$rate-$rep
  # The generator's next hop: pod a1's gateway, the host side of its veth
  # (xdpmeshd answers ARP with this MAC; the kernel owns it outright).
  gw_mac=$(xm_ns node-a cat /sys/class/net/lxc-a1/address)
  if [ "$mode" = xdpmesh ]; then
    daemon_stats node-a "$base.a0.json"
    daemon_stats node-b "$base.b0.json"
  fi
  xm_ns b1 "$BENCH" recv --iface eth0 --dst-port 9000 --duration "$((DURATION + 1))" >"$base.recv.json" 2>"$base.recv.log" &
  rpid=$!
  BENCH_PIDS+=("$rpid")
  # Start sending only once the receiver's XDP program is in place.
  for _ in $(seq 1 50); do
    xm_ns b1 ip link show eth0 | grep -q 'prog/xdp' && break
    kill -0 "$rpid" 2>/dev/null || break
    sleep 0.1
  done
  xm_ns a1 "$BENCH" gen --iface eth0 --dst-mac "$gw_mac" --src-ip 10.1.1.2 --dst-ip 10.1.2.2 --dst-port 9000 \
    --size "$size" --duration "$DURATION" --rate "$rate" --src-ports 16 >"$base.gen.json" 2>"$base.gen.log" || {
    echo "e2e_vs_kernel: generator failed:" >&2
    cat "$base.gen.log" >&2
    exit 1
  }
  if ! wait "$rpid"; then
    echo "e2e_vs_kernel: receiver failed:" >&2
    cat "$base.recv.log" >&2
    exit 1
  fi
  BENCH_PIDS=()
  if [ "$mode" = xdpmesh ]; then
    daemon_stats node-a "$base.a1.json"
    daemon_stats node-b "$base.b1.json"
  fi
  log "$(printf '%-8s %5s B  rate %7s  rep %s: sent %8.0f pps, received %8.0f pps, lost %s' "$mode" "$size" \
    "$rate" "$rep" "$(jq .pps "$base.gen.json")" "$(rx_pps "$base")" "$(jq .lost "$base.recv.json")")"
}

# Received rate over the generator's sending time. Not the receiver's own
# first-to-last span: frames left in a copy-mode tx ring keep trickling in
# for seconds after the load stops (see RESULTS.md), which would stretch it.
rx_pps() { jq -n --slurpfile g "$1.gen.json" --slurpfile r "$1.recv.json" '$r[0].packets / $g[0].seconds'; }

# Where the xdpmesh path lost frames in one run, from counter deltas: the
# sockets' rx rings (steered by XDP but never seen by the worker) and the
# workers' tx rings.
xdpmesh_losses() {  # BASE
  local b=$1
  jq -rn --slurpfile a0 "$b.a0.json" --slurpfile a1 "$b.a1.json" \
    --slurpfile b0 "$b.b0.json" --slurpfile b1 "$b.b1.json" --slurpfile g "$b.gen.json" --slurpfile r "$b.recv.json" '
    def d(f): (($a1[0] | f) // 0) - (($a0[0] | f) // 0);
    def e(f): (($b1[0] | f) // 0) - (($b0[0] | f) // 0);
    "    sent \($g[0].packets) -> A steered \(d(.xdp_actions.steer_pod)), A rx \(d(.workers[0].rx_packets)), "
    + "A tx_ring_full \(d(.workers[0].drops.tx_ring_full)), A tx \(d(.workers[0].tx_packets)) -> "
    + "B steered \(e(.xdp_actions.steer_tunnel)), B rx \(e(.workers[0].rx_packets)), "
    + "B tx_ring_full \(e(.workers[0].drops.tx_ring_full)), B tx \(e(.workers[0].tx_packets)) -> received \($r[0].packets)"'
}

median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
num() { if [ -n "$1" ]; then printf '%.0f' "$1"; else printf -- '-'; fi; }
# FIELD MODE SIZE RATE: the median over the repetitions ("sent" or "rx" pps).
figure() {
  local r base
  for r in $(seq 1 "$REPS"); do
    base=$OUT/$2-$3-$4-$r
    [ -f "$base.gen.json" ] || continue
    if [ "$1" = sent ]; then jq .pps "$base.gen.json"; else rx_pps "$base"; fi
  done | median
}
ratio() { awk -v x="$1" -v k="$2" 'BEGIN {if (x != "" && k > 0) printf "%.2fx", x / k; else print "n/a"}'; }
rate_name() { if [ "$1" = 0 ]; then echo max; else echo "$1"; fi; }

START=$(date +%s)
for mode in $MODES; do
  log "setting up the $mode path"
  setup "$mode"
  for size in $SIZES; do
    for rate in $RATES; do
      for rep in $(seq 1 "$REPS"); do run_one "$mode" "$size" "$rate" "$rep"; done
    done
  done
  teardown
done

echo
echo "End to end: xdpmesh vs kernel VXLAN (pod -> node A -> tunnel -> node B -> pod)"
echo "generator: AF_XDP (copy mode) in pod a1, ${DURATION}s per run, 16 flows; receiver: AF_XDP in pod b1"
echo "xdpmesh: 1 worker per node; kernel: vxlan0 (VNI 42, port 8472) + IPv4 forwarding; median of $REPS run(s)"
echo "pps; 'sent' = put on pod a1's eth0 by the generator, 'rx' = arrived in pod b1 (per second of sending)"
printf '%-7s %-8s | %12s %12s | %12s %12s | %8s\n' size offered "xdpmesh sent" "xdpmesh rx" "kernel sent" "kernel rx" "rx ratio"
for size in $SIZES; do
  best_x=0 best_k=0 best_xr="" best_kr=""
  for rate in $RATES; do
    xs=$(figure sent xdpmesh "$size" "$rate")
    xr=$(figure rx xdpmesh "$size" "$rate")
    ks=$(figure sent kernel "$size" "$rate")
    kr=$(figure rx kernel "$size" "$rate")
    printf '%-7s %-8s | %12s %12s | %12s %12s | %8s\n' "$size B" "$(rate_name "$rate")" "$(num "$xs")" "$(num "$xr")" \
      "$(num "$ks")" "$(num "$kr")" "$(ratio "$xr" "$kr")"
    if [ -n "$xr" ] && awk -v a="$xr" -v b="$best_x" 'BEGIN {exit !(a > b)}'; then best_x=$xr best_xr=$rate; fi
    if [ -n "$kr" ] && awk -v a="$kr" -v b="$best_k" 'BEGIN {exit !(a > b)}'; then best_k=$kr best_kr=$rate; fi
  done
  [ -n "$best_xr" ] || best_x=""
  [ -n "$best_kr" ] || best_k=""
  printf '%-7s %-8s | %12s %12s | %12s %12s | %8s   (xdpmesh at %s, kernel at %s)\n' "$size B" peak "" "$(num "$best_x")" \
    "" "$(num "$best_k")" "$(ratio "$best_x" "$best_k")" "$(rate_name "${best_xr:--}")" "$(rate_name "${best_kr:--}")"
done
echo
if [[ " $MODES " == *" xdpmesh "* ]]; then
  echo "xdpmesh per-hop counters (where frames were lost):"
  for size in $SIZES; do
    for rate in $RATES; do
      for rep in $(seq 1 "$REPS"); do
        echo "  $size B, offered $(rate_name "$rate"), rep $rep:"
        xdpmesh_losses "$OUT/xdpmesh-$size-$rate-$rep"
      done
    done
  done
fi
echo "total time: $(($(date +%s) - START)) s"
