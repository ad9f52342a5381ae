#!/usr/bin/env bash
# Start, stop and crash behaviour of xdpmeshd: XDP attached natively and
# detached on SIGTERM/SIGINT; a program left by a killed run is replaced, not
# stacked; someone else's program is never touched; an idle daemon costs ~0%
# CPU; next hops follow the kernel's neighbor table; health reflects reality.
. "$(dirname "$0")/common.sh"

xm_two_nodes vxlan
A="$XM_WORK/node-a.yaml"
xdp_progs() { xm_ns node-a ip -d link show dev "$1" | grep -o 'prog/xdp id [0-9]*' | sort -u | wc -l; }
has_xdp() { [ "$(xdp_progs "$1")" -gt 0 ]; }
no_xdp_anywhere() { ! has_xdp wire0 && ! has_xdp lxc-a1 && ! has_xdp lxc-a2; }

xm_start_daemon node-a "$A" "$XM_WORK/a1.log"
pid=${XM_PIDS[-1]}
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/b.log"
check "XDP attached natively on the uplink and both pod interfaces" \
  bash -c "ip -n ${XM_PREFIX}node-a -d link show wire0 | grep -q 'xdp ' && ip -n ${XM_PREFIX}node-a link show lxc-a1 | grep -q xdp"
check "traffic flows" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.2.2

# Idle: no traffic for a while, then measure CPU over 3 s.
sleep 1
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); sleep 3; c1=$(cpu)
pct=$(( (c1 - c0) * 100 / (3 * tick) ))
check "idle daemon uses about 0% CPU (${pct}% of a core over 3 s)" test "$pct" -le 3

# A pod interface that goes down while traffic is sent to it: the frames
# wait in its tx ring, the worker does not spin on them, and they (and new
# traffic) flow once the link is back.
xm_ns node-a ip link set lxc-a2 down
xm_ns a1 ping -c 20 -i 0.01 -W 1 -q 10.1.1.3 >/dev/null 2>&1 || true
c0=$(cpu); sleep 2; c1=$(cpu)
pct=$(( (c1 - c0) * 100 / (2 * tick) ))
check "a down pod link does not make the worker spin (${pct}% of a core over 2 s)" test "$pct" -le 10
xm_ns node-a ip link set lxc-a2 up
check "traffic to the pod resumes when its link is back" xm_ns a1 ping -c 3 -i 0.3 -W 2 -q -w 6 10.1.1.3

# Neighbors: a changed MAC reaches the tables; a flushed one is resolved again.
real_mac=$(xm_mac_of 192.168.50.2)
xm_ns node-a ip neigh replace 192.168.50.2 lladdr 02:00:00:00:00:99 dev wire0 nud permanent
sleep 0.3
check "a changed neighbor MAC is picked up" bash -c "'$XM_BUILD/xdpmeshctl' -s '$XM_WORK/node-a.sock' node list | grep -q 02:00:00:00:00:99"
xm_ns node-a ip neigh del 192.168.50.2 dev wire0
before=$(stat_of node-a drops.neighbor_unresolved)
xm_ns a1 ping -c 5 -i 0.3 -W 1 -q 10.1.2.2 >/dev/null || true
check "after a flush the next hop is resolved again" bash -c "'$XM_BUILD/xdpmeshctl' -s '$XM_WORK/node-a.sock' node list | grep -q $real_mac"
check "traffic flows again after resolution" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.2.2
# A peer that does not answer ARP: packets are dropped and counted, and the
# workers' requests keep the kernel resolving until the peer answers again.
xm_ns node-b sysctl -qw net.ipv4.conf.wire0.arp_ignore=8
xm_ns node-a ip neigh del 192.168.50.2 dev wire0
before=$(stat_of node-a drops.neighbor_unresolved)
xm_ns a1 ping -c 4 -i 0.3 -W 1 -q 10.1.2.2 >/dev/null 2>&1 && fail "ping worked although the peer ignores ARP"
after=$(stat_of node-a drops.neighbor_unresolved)
check "unresolved next hop: drops counted as neighbor_unresolved ($before -> $after)" test $((after - before)) -ge 3
xm_ns node-b sysctl -qw net.ipv4.conf.wire0.arp_ignore=0
check "once the peer answers ARP, traffic resumes (resolution retried)" xm_ns a1 ping -c 8 -i 0.5 -W 1 -q -w 8 10.1.2.2

# Health: someone detaches our program -> unhealthy, non-zero exit.
xm_ns node-a ip link set dev lxc-a2 xdp off
rc=0; ctl node-a status >/dev/null 2>&1 || rc=$?
check "status exits 1 when the steering program was detached behind our back" test "$rc" = 1
check "stats exits 1 as well while unhealthy" bash -c "! '$XM_BUILD/xdpmeshctl' -s '$XM_WORK/node-a.sock' stats >/dev/null 2>&1"

# SIGTERM: clean exit, nothing left behind.
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
check "SIGTERM: exit code 0" test "$rc" = 0
check "SIGTERM: XDP detached from every interface" no_xdp_anywhere
check "SIGTERM: API socket removed" test ! -e "$XM_WORK/node-a.sock"
rc=0; ctl node-a status >/dev/null 2>&1 || rc=$?
check "xdpmeshctl exits 2 when the daemon is unreachable" test "$rc" = 2

# SIGKILL leaves the program attached; the next start replaces it.
xm_start_daemon node-a "$A" "$XM_WORK/a2.log"
kill -KILL "${XM_PIDS[-1]}"; wait "${XM_PIDS[-1]}" 2>/dev/null || true
check "after SIGKILL the program is still attached" has_xdp wire0
xm_start_daemon node-a "$A" "$XM_WORK/a3.log"
pid=${XM_PIDS[-1]}
check "restart replaces the stale program (logged)" grep -q "replacing xdpmesh steering program" "$XM_WORK/a3.log"
check "exactly one program on the uplink after the restart" test "$(xdp_progs wire0)" = 1
check "traffic flows after the restart" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.2.2
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
check "SIGINT: exit code 0 and XDP detached" bash -c "[ $rc = 0 ] && ! ip -n ${XM_PREFIX}node-a link show wire0 | grep -q xdp"

# Someone else's XDP program: refuse to start, touch nothing.
cat >"$XM_WORK/foreign.bpf.c" <<'C'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int someone_else(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
C
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$XM_WORK/foreign.bpf.c" -o "$XM_WORK/foreign.o"
xm_ns node-a ip link set dev lxc-a1 xdpdrv obj "$XM_WORK/foreign.o" sec xdp
rc=0; xm_ns node-a "$XM_BUILD/xdpmeshd" --config "$A" >"$XM_WORK/a4.log" 2>&1 || rc=$?
check "start refused (exit $rc) with a message naming the foreign program" \
  bash -c "[ $rc = 1 ] && grep -q \"lxc-a1 already has XDP program 'someone_else'\" '$XM_WORK/a4.log'"
check "the foreign program is untouched" bash -c "ip -n ${XM_PREFIX}node-a -d link show lxc-a1 | grep -q someone_else || ip -n ${XM_PREFIX}node-a link show lxc-a1 | grep -q xdp"
check "nothing half-started: no XDP left on the uplink" bash -c "! ip -n ${XM_PREFIX}node-a link show wire0 | grep -q xdp"
finish
