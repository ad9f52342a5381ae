#!/usr/bin/env bash
# Path MTU: a pod whose MTU is larger than the tunnel allows sends DF packets
# that do not fit; xdpmeshd drops them (counted) and answers with ICMP
# fragmentation-needed / packet-too-big carrying MTU 1450, which the pod's
# own kernel accepts (ping reports it and the route learns the MTU).
. "$(dirname "$0")/common.sh"

xm_two_nodes vxlan
xm_ns a1 ip link set eth0 mtu 1500   # misconfigured pod: should be 1450
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
check "a packet of exactly the pod MTU (1450) crosses" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q -M do -s 1422 10.1.2.2

out=$(xm_ns a1 ping -c 2 -i 0.2 -W 1 -M do -s 1460 10.1.2.2 2>&1 || true)
echo "$out" | grep -i mtu | head -2 | sed 's/^/  /'
check "IPv4: ping sees 'Frag needed and DF set (mtu = 1450)' from the engine" grep -q "mtu = 1450" <<<"$out"
check "IPv4: the pod's kernel cached the path MTU" bash -c "ip netns exec ${XM_PREFIX}a1 ip route get 10.1.2.2 | grep -q 'mtu 1450'"
check "IPv4: a smaller retry now fits and crosses" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q -M do -s 1400 10.1.2.2

out6=$(xm_ns a1 ping -6 -c 2 -i 0.2 -W 1 -M do -s 1440 fd00:1:2::2 2>&1 || true)
echo "$out6" | grep -i mtu | head -2 | sed 's/^/  /'
check "IPv6: ping sees 'Packet too big: mtu=1450'" grep -q "mtu=1450" <<<"$out6"

check "oversize packets counted as mtu_exceeded" test "$(stat_of node-a drops.mtu_exceeded)" -ge 2
check "ICMP errors counted as sent" test "$(stat_of node-a icmp_errors_sent)" -ge 2
finish
