#!/usr/bin/env bash
# (d) ipcache updates while traffic flows lose nothing: a paced UDP stream
# a1 -> b1 runs while the control thread publishes hundreds of new tables
# (unrelated entries added and removed, and b1's own entry rewritten with the
# same value). Every datagram must arrive. Then the updates must take effect:
# removing b1's routes turns its traffic into counted no_route drops.
. "$(dirname "$0")/common.sh"

COUNT=${COUNT:-20000}
xm_two_nodes vxlan
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
xm_ns a1 ping -c 1 -W 2 -q 10.1.2.2 >/dev/null  # ARP/neighbors settled

v0=$(ctl node-a status -o json | json tables.version)
# Pods' own router solicitations and MLD reports are counted as link_local_ignored: not ours.
d0=$(drops_except node-a link_local_ignored)
out="$XM_WORK/udp-stream.json"
xm_ns b1 $XM_TRAFFIC udp-server --port 9100 --count "$COUNT" --timeout 5 >"$out" &
spid=$!
for _ in $(seq 50); do grep -q listening "$out" 2>/dev/null && break; sleep 0.05; done
xm_ns a1 $XM_TRAFFIC udp-client --host 10.1.2.2 --port 9100 --count "$COUNT" --rate 5000 >/dev/null &
cpid=$!
updates=0
while kill -0 $cpid 2>/dev/null; do
  i=$((updates % 250))
  ctl node-a ipcache upsert --prefix 10.200.$i.0/24 --identity 70000 --tunnel-endpoint 192.168.50.2 >/dev/null
  ctl node-a ipcache upsert --prefix 10.1.2.2/32 --identity 65600 --tunnel-endpoint 192.168.50.2 >/dev/null
  ctl node-a ipcache delete --prefix 10.200.$i.0/24 >/dev/null
  updates=$((updates + 3))
done
wait $cpid
wait $spid
got=$(tail -1 "$out" | json received)
v1=$(ctl node-a status -o json | json tables.version)
echo "  $updates updates, tables v$v0 -> v$v1, received $got/$COUNT"
check "at least 200 tables published during the stream" test $((v1 - v0)) -ge 200
check "every datagram arrived ($got/$COUNT)" test "$got" = "$COUNT"
d1=$(drops_except node-a link_local_ignored)
check "node-a counted no drops during the stream ($d0 -> $d1)" test "$d0" = "$d1"

# The published tables are the ones in force: take b1's routes away.
ctl node-a ipcache delete --prefix 10.1.2.2/32 >/dev/null
ctl node-a ipcache delete --prefix 10.1.2.0/24 >/dev/null
before=$(stat_of node-a drops.no_route)
xm_ns a1 ping -c 3 -i 0.2 -W 1 -q 10.1.2.2 >/dev/null && fail "ping still works without a route" || ok "ping fails once b1's routes are gone"
after=$(stat_of node-a drops.no_route)
check "the lost pings are counted as no_route ($before -> $after)" test $((after - before)) -ge 3
ctl node-a ipcache upsert --prefix 10.1.2.0/24 --identity 2 --tunnel-endpoint 192.168.50.2 >/dev/null
check "a pod-CIDR entry restores reachability" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.2.2
refusal=$(ctl node-a ipcache upsert --prefix 10.1.2.1/24 --identity 5 2>&1) && fail "host-bit prefix accepted" || true
check "a bad prefix is refused with the reason ($refusal)" grep -q "host bits" <<<"$refusal"
finish
