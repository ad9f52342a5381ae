#!/usr/bin/env bash
# End to end with WireGuard: TCP throughput (iperf3) between pod a1 and pod b1
# through two nodes, in the same run:
#   xdpmesh:      node-a and node-b run xdpmeshd (VXLAN, then WireGuard; keys
#                 from config), pods behind veth pairs, one worker per node;
#   wireguard-go: the same namespaces and addresses, the nodes forward with the
#                 kernel and encrypt with wireguard-go (TUN), Debian's package.
# Prints Gbit/s per path and the xdpmesh / wireguard-go ratio.
# Usage (root): perf/wireguard_iperf.sh   (XM_BUILD: build dir; WGP_SECONDS: iperf3 time, default 10;
#                                          WGP_STREAMS: parallel streams, default 1)
# Not part of the test suite: it measures, it does not check.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "wireguard_iperf: run as root" >&2; exit 1; }
for tool in iperf3 wireguard-go wg; do
  command -v $tool >/dev/null || { echo "wireguard_iperf: $tool missing (tools/install-deps.sh perf)" >&2; exit 1; }
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export XM_BUILD=${XM_BUILD:-$ROOT/build}
export XM_SOURCE=$ROOT
export XM_PREFIX=wgp$$-
SECONDS_=${WGP_SECONDS:-10}
STREAMS=${WGP_STREAMS:-1}
. "$ROOT/tools/testnet/lib.sh"
. "$ROOT/tools/testnet/two_nodes.sh"
trap 'xm_cleanup' EXIT

iperf() {  # iperf NAME: a1 -> b1 (10.1.2.2), prints Gbit/s
  ip netns exec "${XM_PREFIX}b1" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
  local spid=$!
  sleep 0.5
  local out
  out=$(xm_ns a1 iperf3 -c 10.1.2.2 -p 5201 -t "$SECONDS_" -P "$STREAMS" -J)
  wait $spid 2>/dev/null || true
  echo "$out" | /usr/bin/python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}

# --- xdpmesh -----------------------------------------------------------------------------
xm_two_nodes vxlan
umask 077
wg genkey >"$XM_WORK/a.key"
wg genkey >"$XM_WORK/b.key"
umask 022
pub_a=$(wg pubkey <"$XM_WORK/a.key")
pub_b=$(wg pubkey <"$XM_WORK/b.key")
for n in a b; do
  cat >>"$XM_WORK/node-$n.yaml" <<YAML
encryption:
  type: wireguard
  wireguard:
    private_key_file: $XM_WORK/$n.key
YAML
done
sed -i "s|^    ip: 192.168.50.2$|&\n    wireguard_public_key: \"$pub_b\"|" "$XM_WORK/node-a.yaml"
sed -i "s|^    ip: 192.168.50.1$|&\n    wireguard_public_key: \"$pub_a\"|" "$XM_WORK/node-b.yaml"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
for p in a1 b1; do xm_ns $p ip link set eth0 mtu 1390; done
xm_ns a1 ping -c 3 -i 0.3 -W 2 -q 10.1.2.2 >/dev/null 2>&1 || true
ours=$(iperf xdpmesh)
xm_cleanup
XM_NETNS=()

# --- wireguard-go ------------------------------------------------------------------------
XM_WORK=$(mktemp -d /tmp/${XM_PREFIX}XXXXXX)
xm_node node-a
xm_node node-b
xm_wire node-a 192.168.50.1 node-b 192.168.50.2
umask 077
wg genkey >"$XM_WORK/a.key"
wg genkey >"$XM_WORK/b.key"
umask 022
WGPIDS=()
wg_node() {  # wg_node NODE IP PEER_IP PEER_KEYFILE OWN_KEYFILE POD_NET PEER_POD_NET POD_IP IF
  local node=$1 peer_ip=$3 own=$5 pod_net=$6 peer_net=$7 pod_ip=$8 ifn=$9
  WG_PROCESS_FOREGROUND=1 ip netns exec "$XM_PREFIX$node" wireguard-go -f "$ifn" >/dev/null 2>&1 &
  WGPIDS+=($!)
  XM_PIDS+=($!)
  for _ in $(seq 50); do [ -S /var/run/wireguard/$ifn.sock ] && break; sleep 0.1; done
  xm_ns "$node" wg set "$ifn" private-key "$own" listen-port 51871 \
    peer "$(wg pubkey <"$4")" endpoint "$peer_ip:51871" allowed-ips "$peer_net"
  xm_ns "$node" ip link set "$ifn" mtu 1420 up
  xm_ns "$node" ip route add "$peer_net" dev "$ifn"
  xm_ns "$node" sysctl -qw net.ipv4.ip_forward=1
  # The pod: a veth into the node, routed by the kernel.
  ip netns add "$XM_PREFIX$pod_ip"
  XM_NETNS+=("$XM_PREFIX$pod_ip")
  ip link add "lxc0" netns "$XM_PREFIX$node" type veth peer name eth0 netns "$XM_PREFIX$pod_ip"
  xm_ns "$node" ip addr add "${pod_net%.*}.1/32" dev lxc0
  xm_ns "$node" ip link set lxc0 up
  xm_ns "$node" ip route add "$pod_ip/32" dev lxc0
  xm_ns "$pod_ip" ip link set lo up
  xm_ns "$pod_ip" ip addr add "$pod_ip/32" dev eth0
  xm_ns "$pod_ip" ip link set eth0 mtu 1420 up
  xm_ns "$pod_ip" ip route add "${pod_net%.*}.1/32" dev eth0
  xm_ns "$pod_ip" ip route add default via "${pod_net%.*}.1" dev eth0
}
wg_node node-a 192.168.50.1 192.168.50.2 "$XM_WORK/b.key" "$XM_WORK/a.key" 10.1.1.0 10.1.2.0/24 10.1.1.2 wgpa$$
wg_node node-b 192.168.50.2 192.168.50.1 "$XM_WORK/a.key" "$XM_WORK/b.key" 10.1.2.0 10.1.1.0/24 10.1.2.2 wgpb$$
XM_A1="${XM_PREFIX}10.1.1.2"
XM_B1="${XM_PREFIX}10.1.2.2"
ip netns exec "$XM_A1" ping -c 3 -i 0.3 -W 2 -q 10.1.2.2 >/dev/null
ip netns exec "$XM_B1" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
spid=$!
sleep 0.5
theirs=$(ip netns exec "$XM_A1" iperf3 -c 10.1.2.2 -p 5201 -t "$SECONDS_" -P "$STREAMS" -J |
  /usr/bin/python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
wait $spid 2>/dev/null || true

echo "WireGuard end to end, TCP a1 -> b1, iperf3 -t $SECONDS_ -P $STREAMS, $(date -u +%F)"
printf "%-14s %10s\n" path Gbit/s
printf "%-14s %10s\n" xdpmesh "$ours"
printf "%-14s %10s\n" wireguard-go "$theirs"
/usr/bin/python3 -c "import sys; print('ratio xdpmesh / wireguard-go: %.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$ours" "$theirs"
