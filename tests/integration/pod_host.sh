#!/usr/bin/env bash
# Pods and their node's own stack: the steering program hands pod traffic for
# host addresses to the kernel and the daemon installs host routes back to
# the pods (proto 88), so node <-> pod traffic works as on a Cilium node;
# the routes go away with the daemon.
. "$(dirname "$0")/common.sh"

xm_two_nodes vxlan
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
pid=${XM_PIDS[-1]}
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
check "host routes to the local pods installed (proto 88)" \
  bash -c "ip -n ${XM_PREFIX}node-a route show proto 88 | grep -q '10.1.1.2 dev lxc-a1'"
check "node -> pod ping" xm_ns node-a ping -c 2 -i 0.2 -W 2 -q 10.1.1.2
check "pod -> node ping (node IP)" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 192.168.50.1
xm_ns node-a ip addr add fd00:ffff::1/128 dev lo
xm_ns node-a ip addr add 192.168.99.1/32 dev lo
xm_stop_daemons
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a2.log"   # host addresses are read at start
pid=${XM_PIDS[-1]}
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b2.log"
check "pod -> node over IPv6 (a global address of the node)" xm_ns a1 ping -6 -c 2 -i 0.2 -W 2 -q fd00:ffff::1
check "node -> pod over IPv6" xm_ns node-a ping -6 -c 2 -i 0.2 -W 2 -q fd00:1:1::2
check "pod -> another host address (on lo)" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 192.168.99.1
check "TCP pod -> node, 4 MiB verified" tcp_check host a1 node-a 192.168.50.1 4194304
check "pod -> remote pod still tunnelled" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.2.2
xm_ns node-a ip link set lxc-a1 down
xm_ns node-a ip link set lxc-a1 up
sleep 0.5
check "routes come back after the pod interface went down and up" xm_ns node-a ping -c 2 -i 0.2 -W 2 -q 10.1.1.2
passed=$(ctl node-a stats -o json | json xdp_actions.pass_host)
check "the steering program passed host-bound pod frames ($passed)" test "$passed" -gt 0
kill -TERM "$pid"; wait "$pid" || true
check "host routes removed on stop" bash -c "[ -z \"\$(ip -n ${XM_PREFIX}node-a route show proto 88)\" ]"
finish
