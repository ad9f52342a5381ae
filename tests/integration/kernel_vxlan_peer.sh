#!/usr/bin/env bash
# (b) Interop with a peer no one here wrote: node-k forwards with the Linux
# kernel's own VXLAN device (dstport 8472), like a Cilium VTEP peer. Traffic
# both ways between pod a1 behind xdpmeshd and an address on node-k's vxlan0.
. "$(dirname "$0")/common.sh"

VNI=$XM_ID_WEB           # pod a1's identity: the kernel device accepts only its own VNI
KMAC=02:00:00:00:09:01   # vxlan0's MAC: the inner destination the kernel accepts

xm_node node-a
xm_node node-k
xm_wire node-a 192.168.50.1 node-k 192.168.50.3
xm_pod node-a a1 lxc-a1 10.1.1.2

# The kernel peer: a VXLAN device with a fixed VNI toward node-a, an address of
# its own in 10.1.9.0/24, and a static neighbor for the pod (no ARP inside the tunnel).
xm_ns node-k ip link add vxlan0 type vxlan id $VNI dstport 8472 local 192.168.50.3 remote 192.168.50.1 dev wire0 nolearning
xm_ns node-k ip link set vxlan0 address $KMAC mtu 1450 up
xm_ns node-k ip addr add 10.1.9.1/24 dev vxlan0
xm_ns node-k ip route add 10.1.1.0/24 dev vxlan0
xm_ns node-k ip neigh add 10.1.1.2 lladdr 02:00:00:00:09:02 dev vxlan0 nud permanent

xm_node_config "$XM_WORK/node-a.yaml" node-a 1 192.168.50.1 vxlan
{
  echo "pods:"
  xm_pod_entry lxc-a1 10.1.1.2 fd00:1:1::2 $XM_ID_WEB web
  cat <<YAML
remote_nodes:
  - name: node-k
    ip: 192.168.50.3
    pod_cidrs: [10.1.9.0/24]
    inner_dst_mac: "$KMAC"
YAML
} >>"$XM_WORK/node-a.yaml"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"

check "ping pod a1 -> kernel vxlan peer 10.1.9.1" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.1.9.1
check "ping kernel vxlan peer -> pod a1" xm_ns node-k ping -c 3 -i 0.2 -W 2 -q 10.1.1.2
check "UDP pod -> kernel peer, 1000 datagrams" udp_check a1k a1 node-k 10.1.9.1 1000
check "UDP kernel peer -> pod, 1000 datagrams" udp_check ka1 node-k a1 10.1.1.2 1000
check "TCP pod -> kernel peer, 20 MiB verified" tcp_check a1k a1 node-k 10.1.9.1 20971520
check "TCP kernel peer -> pod, 20 MiB verified" tcp_check ka1 node-k a1 10.1.1.2 20971520

rx_k=$(xm_ns node-k cat /sys/class/net/vxlan0/statistics/rx_packets)
check "the kernel device decapsulated our packets ($rx_k)" test "$rx_k" -gt 1000
dec=$(stat_of node-a decapsulated)
check "xdpmeshd decapsulated the kernel's packets ($dec)" test "$dec" -gt 1000
check "no invalid-identity drops (kernel VNI = $VNI)" test "$(stat_of node-a drops.invalid_identity)" = 0
finish
