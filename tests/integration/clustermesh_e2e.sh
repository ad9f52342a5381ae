#!/usr/bin/env bash
# Two clusters, each with its own etcd (TLS), learn each other from etcd only
# (no static peers): identities allocated in etcd, nodes and pods published,
# pods talk across the tunnel. Then: the remote etcd frozen -> not ready but
# traffic keeps flowing; the cluster file removed -> its entries drained and
# traffic to it stops; the file back -> traffic again.
. "$(dirname "$0")/common.sh"
. "$XM_SOURCE/tools/testnet/etcd.sh"
. "$XM_SOURCE/tools/testnet/two_clusters.sh"

xm_two_clusters vxlan
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"

check "node-a: clustermesh ready (beta)" ctl node-a clustermesh status --wait --timeout 30
check "node-b: clustermesh ready (alpha)" ctl node-b clustermesh status --wait --timeout 30

# Identities: allocated in each cluster's own range, learnt by the other side.
id_a1=$(ctl node-a endpoint list -o json | json endpoints.0.identity)
id_b1=$(ctl node-b endpoint list -o json | json endpoints.0.identity)
check "a1's identity $id_a1 is in alpha's range" test "$id_a1" -ge 65536 -a "$id_a1" -le 131071
check "b1's identity $id_b1 is in beta's range" test "$id_b1" -ge 131072 -a "$id_b1" -le 196607
check "alpha's etcd holds identity $id_a1 with its labels" bash -c \
  "XM_ETCD_PKI=$XM_WORK/pki; . '$XM_SOURCE/tools/testnet/etcd.sh'; xm_etcd_use '$XM_WORK' alpha; \
   xm_etcd_get cilium/state/identities/v1/id/$id_a1 --print-value-only | grep -q 'k8s:app=web;k8s:io.cilium.k8s.policy.cluster=alpha;'"
check "node-a knows beta's identity $id_b1 with beta's cluster label" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' identity list | grep -A3 '^$id_b1 ' | grep -q 'policy.cluster=beta'"
check "node-a's ipcache: 10.1.2.2 -> identity $id_b1 via 192.168.50.2" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' ipcache list | grep -E '^10.1.2.2/32 +identity=$id_b1 .*tunnelendpoint=192.168.50.2'"
check "node-a lists the remote node as beta/node-b" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' node list | grep -q '^beta/node-b '"

check "ping a1 -> b1 (IPv4)" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.1.2.2
check "ping b2 -> a2 (IPv6)" xm_ns b2 ping -6 -c 3 -i 0.2 -W 2 -q fd00:1:1::3
check "TCP a1 -> b1, 8 MiB verified" tcp_check mesh-tcp a1 b1 10.1.2.2 8388608
check "UDP b1 -> a1, 1000 datagrams" udp_check mesh-udp b1 a1 10.1.1.2 1000

# Beta's etcd frozen: node-a notices, keeps beta's entries, traffic flows.
kill -STOP "$XM_ETCD_B_PID"
for _ in $(seq 1 50); do ctl node-a clustermesh status >/dev/null 2>&1 || break; sleep 0.2; done
check "beta frozen: node-a reports beta not ready" bash -c "! '$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' clustermesh status >/dev/null 2>&1"
check "beta frozen: ping a1 -> b1 still works" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.1.2.2
check "beta frozen: TCP a2 -> b2, 4 MiB verified" tcp_check frozen-tcp a2 b2 10.1.2.3 4194304
kill -CONT "$XM_ETCD_B_PID"
check "beta thawed: ready again" ctl node-a clustermesh status --wait --timeout 30

# The cluster file removed: beta drained on node-a.
mv "$XM_WORK/cm-a/beta" "$XM_WORK/beta.removed"
for _ in $(seq 1 50); do
  ctl node-a ipcache list | grep -q '^10.1.2.2/32' || break
  sleep 0.1
done
check "beta removed: no beta entries left on node-a" bash -c "! '$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' ipcache list | grep -q 'tunnelendpoint=192.168.50.2'"
check "beta removed: ping a1 -> b1 fails" bash -c "! ip netns exec '${XM_PREFIX}a1' ping -c 2 -i 0.2 -W 1 -q 10.1.2.2 >/dev/null 2>&1"
mv "$XM_WORK/beta.removed" "$XM_WORK/cm-a/beta"
# (--wait alone would pass at once: with no cluster configured, all are ready.)
for _ in $(seq 1 50); do
  [ "$(ctl node-a clustermesh status -o json 2>/dev/null | json total)" = 1 ] && break
  sleep 0.1
done
check "beta back: ready" ctl node-a clustermesh status --wait --timeout 30
check "beta back: node list shows beta/node-b" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' node list | grep -q '^beta/node-b '"
check "beta back: ping a1 -> b1" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.1.2.2
if [ "$XM_FAILS" -ne 0 ]; then
  ctl node-a stats -o json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print({k:v for k,v in d["workers"][0]["drops"].items() if v})'
  ctl node-a ipcache list
  ctl node-a node list
  ctl node-a status
fi
finish
