#!/usr/bin/env bash
# Two clusters, each node with WireGuard, keys learnt from the node records in
# etcd only (Cilium's WireguardPubKey): pods talk across VXLAN-in-WireGuard
# (Cilium's order: encapsulate, then encrypt). On the wire between the nodes
# there is only WireGuard; the pods' path MTU is uplink - 50 - 60; a node
# whose key file is missing creates one (mode 0600) and publishes its key.
. "$(dirname "$0")/common.sh"
. "$XM_SOURCE/tools/testnet/etcd.sh"
. "$XM_SOURCE/tools/testnet/two_clusters.sh"

export XM_SWITCH=1  # a capture point that sees both nodes' AF_XDP frames
xm_two_clusters vxlan
umask 077
wg genkey >"$XM_WORK/a.key"
umask 022
for n in a b; do
  cat >>"$XM_WORK/node-$n.yaml" <<YAML
encryption:
  type: wireguard
  wireguard:
    private_key_file: $XM_WORK/$n.key
YAML
done
test -e "$XM_WORK/b.key" && fail "node-b's key file should not exist yet"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b.log"
check "node-a: clustermesh ready" ctl node-a clustermesh status --wait --timeout 30
check "node-b: clustermesh ready" ctl node-b clustermesh status --wait --timeout 30
check "node-b created its missing key file with mode 0600" test "$(stat -c %a "$XM_WORK/b.key")" = 600

pub_a=$(ctl node-a encrypt status -o json | json wireguard.public_key)
pub_b=$(ctl node-b encrypt status -o json | json wireguard.public_key)
check "alpha's etcd node record carries node-a's WireguardPubKey and EncryptionKey 255" bash -c \
  "XM_ETCD_PKI=$XM_WORK/pki; . '$XM_SOURCE/tools/testnet/etcd.sh'; xm_etcd_use '$XM_WORK' alpha; \
   v=\$(xm_etcd_get cilium/state/nodes/v1/alpha/node-a --print-value-only); \
   echo \"\$v\" | grep -q '\"WireguardPubKey\":\"$pub_a\"' && echo \"\$v\" | grep -q '\"EncryptionKey\":255' && \
   echo \"\$v\" | grep -q 'network.cilium.io/wg-pub-key'"
for _ in $(seq 50); do
  [ "$(ctl node-a encrypt status -o json | json wireguard.peers.0.public_key 2>/dev/null)" = "$pub_b" ] && break
  sleep 0.2
done
check "node-a learnt node-b's key from beta's node record" \
  test "$(ctl node-a encrypt status -o json | json wireguard.peers.0.public_key)" = "$pub_b"
check "node-b learnt node-a's key from alpha's node record" \
  test "$(ctl node-b encrypt status -o json | json wireguard.peers.0.public_key)" = "$pub_a"

ip netns exec "${XM_PREFIX}switch" tshark -i br0 -f "udp" -s 200 -w "$XM_WORK/mesh.pcap" -q >/dev/null 2>&1 &
TSHARK=$!
XM_PIDS+=($TSHARK)
sleep 1
xm_ns a1 ping -c 1 -W 1 10.1.2.2 >/dev/null 2>&1 || true
check "ping a1 -> b1 through VXLAN-in-WireGuard" xm_ns a1 ping -c 5 -i 0.2 -W 2 -q 10.1.2.2
check "ping b1 -> a1" xm_ns b1 ping -c 5 -i 0.2 -W 2 -q 10.1.1.2
check "UDP a1 -> b1, 2000 datagrams" udp_check ab a1 b1 10.1.2.2 2000
check "TCP a1 -> b1, 20 MiB verified" tcp_check ab a1 b1 10.1.2.2 20971520
check "TCP b1 -> a1, 20 MiB verified" tcp_check ba b1 a1 10.1.1.2 20971520
check "IPv6 a1 -> b1 through WireGuard" xm_ns a1 ping -6 -c 3 -i 0.2 -W 2 -q fd00:1:2::2
# Path MTU: 1500 - 50 (VXLAN) - 60 (WireGuard) = 1390 for the pods.
check "a 1390-byte packet passes (DF)" xm_ns a1 ping -M do -s 1362 -c 2 -W 2 -q 10.1.2.2
check "a 1391-byte packet is answered with fragmentation needed, mtu 1390" \
  bash -c "ip netns exec ${XM_PREFIX}a1 ping -M do -s 1363 -c 2 -W 2 10.1.2.2 2>&1 | grep -q 'mtu = 1390\|mtu=1390\|mtu 1390'"
sleep 0.3
kill -INT $TSHARK 2>/dev/null || true
wait $TSHARK 2>/dev/null || true
wg_frames=$(tshark -r "$XM_WORK/mesh.pcap" -d udp.port==51871,wg -Y "wg.type == 4" 2>/dev/null | wc -l)
vxlan_frames=$(tshark -r "$XM_WORK/mesh.pcap" -Y "udp.port == 8472" 2>/dev/null | wc -l)
echo "  on the wire: $wg_frames WireGuard data frames, $vxlan_frames plaintext VXLAN frames"
check "pod traffic is on the wire as WireGuard ($wg_frames data messages)" test "$wg_frames" -gt 10000
check "no plaintext VXLAN on the wire" test "$vxlan_frames" = 0
check "node-a encrypted and decrypted (counters)" \
  test "$(stat_of node-a wg_encrypted)" -gt 5000 -a "$(stat_of node-a wg_decrypted)" -gt 5000
check "no drops on node-a except the first packet's missing session and link-local noise" \
  test "$(drops_except node-a wg_no_session link_local_ignored mtu_exceeded)" = 0
ctl node-a encrypt status
finish
