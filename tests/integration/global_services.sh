#!/usr/bin/env bash
# Global services and identity policy across two clusters, each with its own
# etcd (TLS): a service "echo" with two backends in each cluster; 10k new
# flows spread over the four; affinity local/remote and their fall-backs;
# policy loaded at run time (frontend in alpha may reach echo in beta, not in
# alpha), a bad policy rejected with file:line while the running one stays;
# monitor shows the drop; explain names the rule; then beta's etcd stopped
# past the failure timeout: beta's backends leave within 3 s of the timeout,
# an established flow to a local backend survives, one to beta is reset, new
# flows all succeed.
. "$(dirname "$0")/common.sh"
. "$XM_SOURCE/tools/testnet/etcd.sh"
. "$XM_SOURCE/tools/testnet/two_clusters.sh"

PROBE="/usr/bin/python3 $XM_SOURCE/tools/testnet/lb_probe.py"
FAILURE_TIMEOUT=10

xm_two_clusters vxlan
# Second addresses: a2 and b1 each hold two backends of echo.
xm_ns a2 ip addr add 10.1.1.4/32 dev eth0
xm_ns b1 ip addr add 10.1.2.4/32 dev eth0

pod_endpoints() {  # INTERFACE APP NAME MAC IPV4...
  local ifc=$1 app=$2 name=$3 mac=$4
  shift 4
  echo "  - interface: $ifc"
  echo "    endpoints:"
  local ip i=0
  for ip in "$@"; do
    echo "      - {ipv4: $ip, mac: \"$mac\", labels: {app: $app}, namespace: default, name: $name-$i}"
    i=$((i + 1))
  done
}

services_section() {  # FALLBACK_SELECTOR
  cat <<YAML
services:
  - name: echo
    frontend: 10.96.0.10
    ports: [{name: u, port: 80, protocol: UDP, target_port: 8080}, {name: t, port: 80, protocol: TCP, target_port: 8080}]
    selector: {app: echo}
    global: true
  - name: echo-local
    frontend: 10.96.0.11
    ports: [{name: u, port: 80, protocol: UDP, target_port: 8080}]
    selector: {app: echo}
    global: true
    affinity: local
  - name: echo-remote
    frontend: 10.96.0.12
    ports: [{name: u, port: 80, protocol: UDP, target_port: 8080}]
    selector: {app: echo}
    global: true
    affinity: remote
  - name: gw
    frontend: 10.96.0.14
    ports: [{name: t, port: 8081, protocol: TCP, target_port: 8080}, {name: u, port: 8081, protocol: UDP, target_port: 8080}]
    selector: {app: echo}
    global: true
    gateway: true
  - name: fallback
    frontend: 10.96.0.13
    ports: [{name: u, port: 80, protocol: UDP, target_port: 8080}]
    selector: {app: $1}
    global: true
    affinity: local
YAML
}

mkdir -p "$XM_WORK/policies"
xm_node_config "$XM_WORK/node-a.yaml" node-a 1 192.168.50.1 vxlan alpha
{
  echo "pods:"
  pod_endpoints lxc-a1 frontend a1 "$(xm_mac_of 10.1.1.2)" 10.1.1.2
  pod_endpoints lxc-a2 echo a2 "$(xm_mac_of 10.1.1.3)" 10.1.1.3 10.1.1.4
  xm_clustermesh_section "$XM_WORK/cm-a" "$XM_WORK/etcd-alpha.yaml" 10.1.1.0/24 fd00:1:1::/64 |
    sed "s/failure_timeout: 10/failure_timeout: $FAILURE_TIMEOUT/"
  services_section none   # alpha has no backend for "fallback": local affinity falls back to beta
  echo "policy: {directory: $XM_WORK/policies, poll_interval_ms: 200}"
} >>"$XM_WORK/node-a.yaml"
xm_node_config "$XM_WORK/node-b.yaml" node-b 2 192.168.50.2 vxlan beta
{
  echo "pods:"
  pod_endpoints lxc-b1 echo b1 "$(xm_mac_of 10.1.2.2)" 10.1.2.2 10.1.2.4
  pod_endpoints lxc-b2 frontend b2 "$(xm_mac_of 10.1.2.3)" 10.1.2.3
  xm_clustermesh_section "$XM_WORK/cm-b" "$XM_WORK/etcd-beta.yaml" 10.1.2.0/24 fd00:1:2::/64
  services_section echo
} >>"$XM_WORK/node-b.yaml"

xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
# (ip netns exec directly, not the xm_ns function: $! must be the server itself.)
ip netns exec "${XM_PREFIX}a2" $PROBE serve --addrs 10.1.1.3,10.1.1.4 --port 8080 >/dev/null 2>&1 &
XM_PIDS+=($!)
ip netns exec "${XM_PREFIX}b1" $PROBE serve --addrs 10.1.2.2,10.1.2.4 --port 8080 >/dev/null 2>&1 &
XM_PIDS+=($!)

check "node-a: clustermesh ready" ctl node-a clustermesh status --wait --timeout 30
check "node-b: clustermesh ready" ctl node-b clustermesh status --wait --timeout 30

used_backends() {  # NODE SERVICE: "address@cluster" of the used backends, sorted
  ctl "$1" service get "$2" -o json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(sorted({b["address"].split(":")[0] + "@" + b["cluster"] for f in d["frontends"] for b in f["backends"] if b["used"]})))'
}
for _ in $(seq 1 100); do
  [ "$(used_backends node-a default/echo)" = "10.1.1.3@alpha 10.1.1.4@alpha 10.1.2.2@beta 10.1.2.4@beta" ] && break
  sleep 0.1
done
check "node-a: echo has two backends in each cluster" \
  test "$(used_backends node-a default/echo)" = "10.1.1.3@alpha 10.1.1.4@alpha 10.1.2.2@beta 10.1.2.4@beta"
ctl node-a service list

# 10k new flows, no affinity: each backend within +-10% of 2500.
spread=$(xm_ns a1 $PROBE probe --host 10.96.0.10 --port 80 --count 10000 --proto udp)
echo "# 10k UDP flows: $spread"
check "10k flows: none failed, each of 4 backends got 2500 +-10%" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
c = d["counts"]
sys.exit(0 if d["failures"] == 0 and len(c) == 4 and all(2250 <= n <= 2750 for n in c.values()) else 1)' "$spread"
tcp=$(xm_ns a1 $PROBE probe --host 10.96.0.10 --port 80 --count 200 --proto tcp)
check "200 TCP connections through the service, none failed ($tcp)" \
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["failures"]==0 and len(d["counts"])==4 else 1)' "$tcp"

only() {  # only JSON CLUSTER_PREFIX: all flows succeeded and reached only addresses starting so
  /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if d["failures"] == 0 and d["counts"] and all(k.startswith(sys.argv[2]) for k in d["counts"]) else 1)' "$1" "$2"
}
r=$(xm_ns a1 $PROBE probe --host 10.96.0.11 --port 80 --count 200)
check "affinity local: all flows to alpha's backends ($r)" only "$r" 10.1.1.
r=$(xm_ns a1 $PROBE probe --host 10.96.0.12 --port 80 --count 200)
check "affinity remote: all flows to beta's backends ($r)" only "$r" 10.1.2.
r=$(xm_ns a1 $PROBE probe --host 10.96.0.13 --port 80 --count 200)
check "affinity local without local backends falls back to beta ($r)" only "$r" 10.1.2.
check "service get shows (preferred) and the fallback reason" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' service get default/fallback | grep -q 'no healthy local backend' &&
   '$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' service list | grep -q '(preferred)'"

# Gateway: a client outside the mesh (node-b's own stack on the wire) reaches
# the service on node-a's uplink address; beta's backends answer through the
# tunnel to node-a's router IP, alpha's directly; both leave through node-a.
r=$(xm_ns node-b $PROBE probe --host 192.168.50.1 --port 8081 --count 200 --proto udp)
check "gateway frontend (UDP): 200 flows from outside reach all four backends ($r)" /usr/bin/python3 -c '
import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if d["failures"] == 0 and len(d["counts"]) == 4 else 1)' "$r"
r=$(xm_ns node-b $PROBE probe --host 192.168.50.1 --port 8081 --count 100 --proto tcp)
check "gateway frontend (TCP): 100 connections from outside, all answered ($r)" /usr/bin/python3 -c '
import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if d["failures"] == 0 and len(d["counts"]) == 4 else 1)' "$r"
check "gateway: source NAT counted for beta's backends" test "$(stat_of node-a snat)" -ge 1
check "gateway: SSH-like traffic to other ports of the address stays with the kernel" bash -c \
  "! ip netns exec '${XM_PREFIX}node-b' /usr/bin/python3 -c 'import socket; socket.create_connection((\"192.168.50.1\", 8099), timeout=1)' 2>/dev/null"

# Policy, loaded at run time: a1 (frontend) may reach echo in beta only.
cat >"$XM_WORK/policies/frontend.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: frontend-to-beta-echo
  namespace: default
spec:
  endpointSelector:
    matchLabels: {app: frontend}
  egress:
    - toEndpoints:
        - matchLabels:
            app: echo
            k8s:io.cilium.k8s.policy.cluster: beta
YAML
for _ in $(seq 1 50); do [ "$(ctl node-a policy get -o json | json revision)" -ge 1 ] && break; sleep 0.1; done
check "policy loaded (revision 1)" test "$(ctl node-a policy get -o json | json revision)" -ge 1
mon_out="$XM_WORK/monitor.ndjson"
ctl node-a monitor --type drop -o json --timeout 6 >"$mon_out" 2>/dev/null &
mon_pid=$!
sleep 0.5
r=$(xm_ns a1 $PROBE probe --host 10.1.2.2 --port 8080 --count 20)
check "allowed: a1 -> echo in beta, replies pass ($r)" only "$r" 10.1.2.2
r=$(xm_ns a1 $PROBE probe --host 10.1.1.3 --port 8080 --count 5)
check "denied: a1 -> echo in alpha ($r)" /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["failures"]==5 else 1)' "$r"
wait "$mon_pid"
check "monitor: the drop with reason policy_denied, identities and 5-tuple" /usr/bin/python3 -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if any(e["reason"] == "policy_denied" and e["dst"] == "10.1.1.3" and e["dport"] == 8080 and e["proto"] == "UDP"
                  and e["src_identity"] > 0 and e["dst_identity"] > 0 for e in evs) else 1)' "$mon_out"
check "stats: policy_denied counted" test "$(stat_of node-a drops.policy_denied)" -ge 5
check "explain: denied to alpha, with the default-deny reason" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' explain --src 10.1.1.2 --dst 10.1.1.3 --dport 8080 --proto udp -o json | grep -q 'denied'"
check "explain: allowed to beta, naming the rule" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' explain --src 10.1.1.2 --dst 10.1.2.2 --dport 8080 --proto udp -o json | grep -q 'frontend.yaml:.*frontend-to-beta-echo egress\\[0\\]'"
check "policy selectors lists the beta echo selector" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' policy selectors | grep -q 'policy.cluster=beta'"

# A bad policy is rejected as a whole; the running policy stays in force.
printf 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: bad}\nspec:\n  endpointSelector: {}\n  egress:\n    - toPorts: [{ports: [{port: "99999"}]}]\n' >"$XM_WORK/policies/zz-bad.yaml"
for _ in $(seq 1 50); do [ -n "$(ctl node-a policy get -o json | json last_error)" ] && break; sleep 0.1; done
err=$(ctl node-a policy get -o json | json last_error)
check "bad policy rejected with file:line ($err)" bash -c "echo '$err' | grep -q 'zz-bad.yaml:7:'"
r=$(xm_ns a1 $PROBE probe --host 10.1.2.2 --port 8080 --count 5)
check "running policy still in force: beta allowed ($r)" only "$r" 10.1.2.2
r=$(xm_ns a1 $PROBE probe --host 10.1.1.3 --port 8080 --count 3)
check "running policy still in force: alpha denied" /usr/bin/python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["failures"]==3 else 1)' "$r"
rm -f "$XM_WORK/policies/zz-bad.yaml" "$XM_WORK/policies/frontend.yaml"
for _ in $(seq 1 50); do [ "$(ctl node-a policy get -o json | json revision)" -ge 2 ] && break; sleep 0.1; done

# Failover: flows held to a local and to a beta backend, then beta's etcd stops.
hold_local="$XM_WORK/hold-local.json"
hold_beta="$XM_WORK/hold-beta.json"
xm_ns a1 $PROBE hold --host 10.96.0.10 --port 80 --want 10.1.1.3,10.1.1.4 --duration $((FAILURE_TIMEOUT + 14)) >"$hold_local" 2>/dev/null &
hl=$!
xm_ns a1 $PROBE hold --host 10.96.0.10 --port 80 --want 10.1.2.2,10.1.2.4 --duration $((FAILURE_TIMEOUT + 14)) >"$hold_beta" 2>/dev/null &
hb=$!
sleep 2
t0=$(date +%s.%N)
kill -TERM "$XM_ETCD_B_PID"
gone=""
for _ in $(seq 1 400); do
  if ! used_backends node-a default/echo | grep -q beta; then gone=$(date +%s.%N); break; fi
  sleep 0.05
done
elapsed=$(/usr/bin/python3 -c "print(round(${gone:-0} - $t0, 2))")
echo "# beta's backends left echo ${elapsed}s after its etcd stopped (failure timeout ${FAILURE_TIMEOUT}s)"
check "beta's backends out after the failure timeout, within 3 s of it (${elapsed}s)" /usr/bin/python3 -c "
import sys; e = float('$elapsed'); sys.exit(0 if $FAILURE_TIMEOUT - 0.5 <= e <= $FAILURE_TIMEOUT + 3 else 1)"
r=$(xm_ns a1 $PROBE probe --host 10.96.0.10 --port 80 --count 300)
check "after failover: 300 new flows succeed, all on alpha ($r)" only "$r" 10.1.1.
r=$(xm_ns a1 $PROBE probe --host 10.96.0.12 --port 80 --count 50)
check "affinity remote falls back to alpha when beta is gone ($r)" only "$r" 10.1.1.
wait "$hl" "$hb"
echo "# held flows: local $(cat "$hold_local"), beta $(cat "$hold_beta")"
check "the established flow to a local backend survived" /usr/bin/python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if d["backend"] and d["failures"] == 0 and not d["reset"] and d["exchanges"] > 40 else 1)' "$hold_local"
check "the flow to a lost beta backend was reset" /usr/bin/python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if d["backend"] and d["reset"] else 1)' "$hold_beta"
check "backend_gone counted" test "$(stat_of node-a drops.backend_gone)" -ge 1
check "ct list shows translated flows" bash -c \
  "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' ct list --flow 10.96.0.10 -o json | grep -q xlat_dst"
if [ "$XM_FAILS" -ne 0 ]; then
  ctl node-a stats -o json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print({k:v for k,v in d["workers"][0]["drops"].items() if v})'
  ctl node-a service list
  ctl node-a clustermesh status
  tail -30 "$XM_WORK/node-a.log"
fi
finish
