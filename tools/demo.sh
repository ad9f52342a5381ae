#!/usr/bin/env bash
# The demo: two clusters, "alpha" and "beta", each with its own etcd (TLS) and
# one xdpmesh node (network namespaces joined by a veth wire) running xdpmeshd
# with two "pods" (namespaces behind veth pairs). Nothing about the other
# cluster is configured: each node allocates its pods' identities in its own
# etcd, publishes itself there in Cilium's format, and learns the other cluster
# from that cluster's etcd. Pods then talk through a VXLAN tunnel (or Geneve:
# tools/demo.sh geneve), encrypted with WireGuard; the demo shows clustermesh status, identities, the
# ipcache, traffic, a global service balanced over both clusters (service
# list, explain, ct list) and `xdpmeshctl status`, then cleans up.
# Needs root. Builds nothing: run after `meson setup build && ninja -C build`.
set -euo pipefail
MODE=${1:-vxlan}
XM_SOURCE=$(cd "$(dirname "$0")/.." && pwd)
XM_BUILD=${XM_BUILD:-$XM_SOURCE/build}
XM_PREFIX=${XM_PREFIX:-xmdemo-}
. "$XM_SOURCE/tools/testnet/lib.sh"
. "$XM_SOURCE/tools/testnet/two_nodes.sh"
. "$XM_SOURCE/tools/testnet/etcd.sh"
. "$XM_SOURCE/tools/testnet/two_clusters.sh"
trap xm_cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { "$XM_BUILD/xdpmeshctl" --socket "$XM_WORK/$1.sock" "${@:2}"; }

step "topology: cluster alpha node-a (192.168.50.1) <-wire-> cluster beta node-b (192.168.50.2), $MODE overlay inside WireGuard"
xm_two_clusters "$MODE"
echo "pods: a1 10.1.1.2  a2 10.1.1.3  on node-a;  b1 10.1.2.2  b2 10.1.2.3  on node-b"
echo "etcd of alpha: https://192.168.50.1:$XM_ETCD_PORT (pid $XM_ETCD_A_PID), of beta: https://192.168.50.2:$XM_ETCD_PORT"
echo "config of node-a: $XM_WORK/node-a.yaml; its remote clusters: $XM_WORK/cm-a/"
cat "$XM_WORK/node-a.yaml"

# A global service "web" in both clusters: each node's local backend is its
# app=web pod; with global: true each merges the other cluster's backends.
for n in node-a node-b; do
  cat >>"$XM_WORK/$n.yaml" <<'YAML'
services:
  - name: web
    frontend: 10.96.0.10
    ports: [{name: http, port: 80, protocol: TCP, target_port: 8080}, {name: dns, port: 80, protocol: UDP, target_port: 8080}]
    selector: {app: web}
    global: true
YAML
  # WireGuard between the nodes: each creates its key (mode 0600) and
  # publishes the public key in its node record; the other learns it there.
  cat >>"$XM_WORK/$n.yaml" <<YAML
encryption:
  type: wireguard
  wireguard: {private_key_file: $XM_WORK/$n.wg.key}
YAML
done

step "starting xdpmeshd on both nodes"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"

step "xdpmeshctl clustermesh status --wait on node-a (beta learnt from beta's etcd)"
ctl node-a clustermesh status --wait --timeout 30
ctl node-b clustermesh status --wait --timeout 30 >/dev/null
step "what node-b published into beta's etcd (Cilium's keys and JSON)"
xm_etcd_use "$XM_WORK" beta
xm_etcd_get cilium/ --prefix | grep -v '^$' | head -24
step "xdpmeshctl identity list on node-a (local, allocated in alpha's etcd; remote, from beta's)"
ctl node-a identity list

step "pod a1 -> pod b1 across the tunnel (IPv4 and IPv6)"
xm_ns a1 ping -c 3 -i 0.2 10.1.2.2
xm_ns a1 ping -6 -c 3 -i 0.2 fd00:1:2::2
step "pod b2 -> pod a2 (the other way)"
xm_ns b2 ping -c 3 -i 0.2 10.1.1.3

step "TCP: 20 MiB from a1 to b1, content checked"
xm_ns b1 /usr/bin/python3 "$XM_SOURCE/tools/testnet/traffic.py" tcp-server --port 5001 >"$XM_WORK/tcp.json" &
spid=$!
for _ in $(seq 50); do grep -q listening "$XM_WORK/tcp.json" 2>/dev/null && break; sleep 0.05; done
xm_ns a1 /usr/bin/python3 "$XM_SOURCE/tools/testnet/traffic.py" tcp-client --host 10.1.2.2 --port 5001 --bytes 20971520
wait $spid
tail -1 "$XM_WORK/tcp.json"

step "global service web (10.96.0.10:80): xdpmeshctl service list on node-a"
for _ in $(seq 50); do ctl node-a service get default/web -o json | grep -q '"cluster":"beta"' && break; sleep 0.1; done
ctl node-a service list
ip netns exec "${XM_PREFIX}a1" /usr/bin/python3 "$XM_SOURCE/tools/testnet/lb_probe.py" serve --addrs 10.1.1.2 --port 8080 >/dev/null 2>&1 &
XM_PIDS+=($!)
ip netns exec "${XM_PREFIX}b1" /usr/bin/python3 "$XM_SOURCE/tools/testnet/lb_probe.py" serve --addrs 10.1.2.2 --port 8080 >/dev/null 2>&1 &
XM_PIDS+=($!)
sleep 0.5
step "1000 new UDP flows and 100 TCP connections from a2 to the service: which backend answered"
xm_ns a2 /usr/bin/python3 "$XM_SOURCE/tools/testnet/lb_probe.py" probe --host 10.96.0.10 --port 80 --count 1000 --proto udp
xm_ns a2 /usr/bin/python3 "$XM_SOURCE/tools/testnet/lb_probe.py" probe --host 10.96.0.10 --port 80 --count 100 --proto tcp
step "xdpmeshctl explain --src 10.1.1.3 --dst 10.96.0.10 --dport 80 --proto tcp on node-a"
ctl node-a explain --src 10.1.1.3 --dst 10.96.0.10 --dport 80 --proto tcp
step "xdpmeshctl ct list --flow 10.96.0.10 --limit 5 on node-a"
ctl node-a ct list --flow 10.96.0.10 --limit 5
step "xdpmeshctl encrypt status on node-a (WireGuard key learnt from beta's node record)"
ctl node-a encrypt status

for n in node-a node-b; do
  step "xdpmeshctl status on $n"
  ctl $n status
done
step "xdpmeshctl stats on node-a"
ctl node-a stats
step "xdpmeshctl ipcache list on node-a"
ctl node-a ipcache list
step "xdpmeshctl node list on node-a"
ctl node-a node list
step "done: stopping the daemons and removing the namespaces"
