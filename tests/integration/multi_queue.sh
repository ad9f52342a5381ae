#!/usr/bin/env bash
# One worker per queue: with two rx queues on every interface and
# dataplane.queues: 2, flows spread over both workers, each with its own UMEM
# and sockets, and traffic still arrives intact.
. "$(dirname "$0")/common.sh"

export XM_QUEUES=2
xm_two_nodes vxlan
for n in node-a node-b; do
  sed -i 's/^tunnel:/dataplane: {queues: 2}\ntunnel:/' "$XM_WORK/$n.yaml"
done
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
check "two workers on node-a" test "$(ctl node-a status -o json | json workers)" = 2
check "ping a1 -> b1" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.1.2.2
for i in $(seq 16); do
  udp_check "flow$i" a1 b1 10.1.2.2 50 || fail "UDP flow $i"
done
check "TCP a1 -> b1, 20 MiB verified" tcp_check mq a1 b1 10.1.2.2 20971520
w0=$(stat_of node-b rx_packets)
w1=$(ctl node-b stats -o json | json workers.1.rx_packets)
check "both workers of node-b received traffic (worker 0: $w0, worker 1: $w1)" test "$w0" -gt 0 -a "$w1" -gt 0
finish
