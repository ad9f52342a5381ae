#!/usr/bin/env bash
# IPsec ESP interop with an implementation no one here wrote: node-s is scapy's
# ESP (python3-scapy + python3-cryptography) with keys derived from the same
# Cilium key file the way Cilium derives them (global key, node IPs, boot IDs).
# node-a runs xdpmeshd with native routing and IPsec. Packets we encrypt
# decrypt in scapy; scapy's packets decrypt in xdpmesh; a replay and a
# tampered packet are refused and counted; a key rotation (new SPI) is
# accepted inbound before it is used outbound, and the old SPI keeps working
# for the rotation duration; tshark decodes our ESP; no key bytes in log or
# status; a key file others can read is refused.
. "$(dirname "$0")/common.sh"

NODE_A=192.168.73.1
NODE_S=192.168.73.2
S_BOOT=5a1c0f2e-7d3b-4e8a-9c61-2f4b8d0e1a77
A_BOOT=$(cat /proc/sys/kernel/random/boot_id)
KEY3=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
KEY4=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
PEER="/usr/bin/python3 $XM_SOURCE/tools/testnet/esp_peer.py"

xm_node node-a
xm_node node-s
xm_wire node-a $NODE_A node-s $NODE_S
xm_pod node-a a1 lxc-a1 10.73.1.2 "" 1440
A_MAC=$(xm_ns node-a cat /sys/class/net/wire0/address)

KEYS="$XM_WORK/ipsec.keys"
echo "3+ rfc4106(gcm(aes)) $KEY3 128" >"$KEYS"
chmod 644 "$KEYS"
xm_node_config "$XM_WORK/node-a.yaml" node-a 1 $NODE_A native
cat >>"$XM_WORK/node-a.yaml" <<YAML
encryption:
  type: ipsec
  ipsec:
    key_file: $KEYS
    key_rotation_duration: 8
    outbound_delay_ms: 1500
    poll_interval_ms: 200
pods:
  - interface: lxc-a1
    endpoints:
      - ipv4: 10.73.1.2
        mac: $(xm_mac_of 10.73.1.2)
        identity: $XM_ID_WEB
        labels: {app: web}
remote_nodes:
  - name: node-s
    ip: $NODE_S
    boot_id: $S_BOOT
    pod_cidrs: [10.73.2.0/24]
    endpoints:
      - ipv4: 10.73.2.0/24
        identity: $XM_ID_DB
YAML

if xm_ns node-a "$XM_BUILD/xdpmeshd" --config "$XM_WORK/node-a.yaml" >"$XM_WORK/refused.log" 2>&1; then
  fail "xdpmeshd started with an IPsec key file of mode 0644"
else
  check "a key file of mode 0644 is refused, naming the fix" grep -q "chmod 600" "$XM_WORK/refused.log"
fi
chmod 600 "$KEYS"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
ip netns exec "${XM_PREFIX}node-s" tshark -i wire0 -f "ip proto 50" -s 200 -w "$XM_WORK/esp.pcap" -q >/dev/null 2>&1 &
TSHARK=$!
XM_PIDS+=($TSHARK)

peer() {  # peer SPI MODE ARGS...: scapy's node in node-s
  xm_ns node-s $PEER --key-file "$KEYS" --spi "$1" --local $NODE_S --remote $NODE_A --local-boot $S_BOOT \
    --remote-boot "$A_BOOT" --iface wire0 --dst-mac "$A_MAC" "${@:2}"
}
pod_send() {  # pod_send COUNT TAG: UDP datagrams from pod a1 to 10.73.2.1:7001
  xm_ns a1 /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(("%s-%d" % (sys.argv[2], i)).encode(), ("10.73.2.1", 7001)); time.sleep(0.02)' "$1" "$2"
}
pod_listen() {  # pod_listen SECONDS: counts datagrams "esp-*" arriving at pod a1:7001
  ip netns exec "${XM_PREFIX}a1" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7001)); s.settimeout(0.2)
print("listening", flush=True)
n, end = 0, time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        d, a = s.recvfrom(2048)
        if d.startswith(b"esp-") and a[0] == "10.73.2.1": n += 1
    except socket.timeout: pass
print(n)' "$1" >"$XM_WORK/listen.out" &
  LISTENER=$!
  for _ in $(seq 50); do grep -q listening "$XM_WORK/listen.out" 2>/dev/null && break; sleep 0.05; done
}
received() {  # sets got: waits for the listener (not in a subshell: it is this shell's child)
  wait $LISTENER || true
  got=$(tail -1 "$XM_WORK/listen.out")
}
esp_stat() { stat_of node-a "$1"; }
wait_sniffing() {  # wait_sniffing FILE: until scapy's capture runs (at most 20 s)
  for _ in $(seq 200); do grep -q '^sniffing' "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# 1. xdpmesh encrypts, scapy decrypts (the first datagram may wait for ARP).
peer 3 receive --count 5 --timeout 25 >"$XM_WORK/rx1.json" &
rx=$!
wait_sniffing "$XM_WORK/rx1.json"
pod_send 6 hello
wait $rx
cat "$XM_WORK/rx1.json" | sed 's/^/  scapy: /'
ok_count=$(grep -c '"payload": "hello-' "$XM_WORK/rx1.json" || true)
check "scapy decrypts our ESP packets (SPI 3, inner pod -> 10.73.2.1) ($ok_count/5)" test "$ok_count" = 5
check "our sequence numbers start at 1" grep -q '"seq": 1,' "$XM_WORK/rx1.json"

# 2. scapy encrypts, xdpmesh decrypts and delivers to the pod.
pod_listen 3
peer 3 send --count 5 --first-seq 10 --inner-src 10.73.2.1 --inner-dst 10.73.1.2 >/dev/null
received
check "xdpmesh decrypts scapy's ESP packets and delivers them ($got/5)" test "$got" = 5

# 3. A replayed and a tampered packet are refused and counted.
replay_before=$(esp_stat drops.esp_replay)
tag_before=$(esp_stat drops.esp_bad_tag)
pod_listen 3
peer 3 send --count 3 --first-seq 100 --replay --inner-src 10.73.2.1 --inner-dst 10.73.1.2 >/dev/null
peer 3 send --count 3 --first-seq 200 --tamper --inner-src 10.73.2.1 --inner-dst 10.73.1.2 >/dev/null
received
check "replayed copies dropped, originals delivered ($got/3)" test "$got" = 3
check "replays counted as esp_replay" test $(( $(esp_stat drops.esp_replay) - replay_before )) = 3
check "tampered packets counted as esp_bad_tag" test $(( $(esp_stat drops.esp_bad_tag) - tag_before )) = 3

# 4. Rotation: a new SPI is accepted inbound at once, used outbound after the delay.
echo "4+ rfc4106(gcm(aes)) $KEY4 128" >>"$KEYS"
sleep 0.6
check "new SPI 4 accepted inbound, outbound still SPI 3" \
  test "$(ctl node-a encrypt status -o json | json ipsec.peers.0.inbound_spis)" = "[3, 4]" -a \
  "$(ctl node-a encrypt status -o json | json ipsec.outbound_spi)" = 3
pod_listen 2
peer 4 send --count 3 --first-seq 1 --inner-src 10.73.2.1 --inner-dst 10.73.1.2 >/dev/null
received
check "a peer that switched to SPI 4 first is understood ($got/3)" test "$got" = 3
sleep 1.5
check "outbound switched to SPI 4 after the delay" test "$(ctl node-a encrypt status -o json | json ipsec.outbound_spi)" = 4
peer 4 receive --count 3 --timeout 25 >"$XM_WORK/rx4.json" &
rx=$!
wait_sniffing "$XM_WORK/rx4.json"
pod_send 3 rotated
wait $rx
check "scapy decrypts our SPI 4 packets" test "$(grep -c '"payload": "rotated-' "$XM_WORK/rx4.json" || true)" = 3
pod_listen 2
peer 3 send --count 3 --first-seq 400 --inner-src 10.73.2.1 --inner-dst 10.73.1.2 >/dev/null
received
check "the old SPI 3 is still accepted during the rotation duration ($got/3)" test "$got" = 3
for _ in $(seq 100); do  # until the rotation duration (8 s) is over
  [ "$(ctl node-a encrypt status -o json | json ipsec.peers.0.inbound_spis)" = "[4]" ] && break
  sleep 0.1
done
unknown_before=$(esp_stat drops.esp_unknown_spi)
peer 3 send --count 2 --first-seq 500 --inner-src 10.73.2.1 --inner-dst 10.73.1.2 >/dev/null
sleep 0.3
check "after the rotation duration SPI 3 is refused (esp_unknown_spi)" \
  test $(( $(esp_stat drops.esp_unknown_spi) - unknown_before )) = 2
check "status names one rotation" test "$(ctl node-a encrypt status -o json | json ipsec.rotations)" = 1

# 5. A broken key file at run time keeps the running keys.
cp "$KEYS" "$XM_WORK/keys.good"
echo "5+ rfc4106(gcm(aes)) 0011 128" >>"$KEYS"
sleep 0.6
check "a bad key file reload is reported with its line and the running SPI stays" \
  bash -c "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' encrypt status -o json | grep -q 'line 3' &&
           test \"\$('$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' encrypt status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"ipsec\"][\"outbound_spi\"])')\" = 4"
cp "$XM_WORK/keys.good" "$KEYS"

# 6. tshark decodes our packets as ESP with both SPIs.
sleep 0.3
kill -INT $TSHARK 2>/dev/null || true
wait $TSHARK 2>/dev/null || true
spis=$(tshark -r "$XM_WORK/esp.pcap" -Y "esp && ip.src == $NODE_A" -T fields -e esp.spi 2>/dev/null | sort | uniq -c)
echo "$spis" | sed 's/^/  tshark esp.spi from us: /'
check "tshark decodes our ESP with SPI 3" grep -q "0x00000003" <<<"$spis"
check "tshark decodes our ESP with SPI 4" grep -q "0x00000004" <<<"$spis"

# 7. No key material in the log or the status.
ctl node-a encrypt status -o json >"$XM_WORK/status.json"
ctl node-a encrypt status >>"$XM_WORK/status.json"
for f in "$XM_WORK/node-a.log" "$XM_WORK/status.json"; do
  for k in $KEY3 $KEY4; do
    check "no key bytes in $(basename "$f")" bash -c "! grep -qi '${k:0:16}' '$f'"
  done
done
ctl node-a encrypt status
finish
