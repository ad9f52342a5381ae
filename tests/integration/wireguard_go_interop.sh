#!/usr/bin/env bash
# WireGuard interop with a peer no one here wrote: node-w runs wireguard-go
# (Debian's) on a TUN device, node-a runs xdpmeshd with native routing and
# WireGuard. Handshakes both ways (xdpmesh initiating, then wireguard-go),
# data both ways (ICMP, UDP, TCP), rekeys under traffic, `wg show` on the
# wireguard-go side, tshark's decoding of the capture, bad input (unknown
# index, replay, truncated), a handshake flood that makes the cookie
# mechanism engage, the key-file permission check, and no key bytes in the
# daemon's log or status.
. "$(dirname "$0")/common.sh"

for tool in wireguard-go wg tshark; do
  command -v $tool >/dev/null || { echo "FAIL - $tool is not installed (tools/install-deps.sh installs it)"; exit 1; }
done

WGIF=xwg$$          # wireguard-go's UAPI socket path is global (/var/run/wireguard): a unique name
NODE_A=192.168.72.1
NODE_W=192.168.72.2

xm_node node-a
xm_node node-w
xm_wire node-a $NODE_A node-w $NODE_W
xm_pod node-a a1 lxc-a1 10.72.1.2 "" 1440

# --- keys -------------------------------------------------------------------------------
umask 077
wg genkey >"$XM_WORK/w.key"
W_PUB=$(wg pubkey <"$XM_WORK/w.key")
A_KEY="$XM_WORK/a.key"
wg genkey >"$A_KEY"
A_PUB=$(wg pubkey <"$A_KEY")
umask 022

write_config() {  # write_config COOKIE_THRESHOLD
  xm_node_config "$XM_WORK/node-a.yaml" node-a 1 $NODE_A native
  cat >>"$XM_WORK/node-a.yaml" <<YAML
encryption:
  type: wireguard
  wireguard:
    private_key_file: $A_KEY
    cookie_threshold_per_s: $1
YAML
  {
    cat <<YAML
pods:
  - interface: lxc-a1
    endpoints:
      - ipv4: 10.72.1.2
        mac: $(xm_mac_of 10.72.1.2)
        identity: $XM_ID_WEB
        labels: {app: web}
remote_nodes:
  - name: node-w
    ip: $NODE_W
    pod_cidrs: [10.72.2.0/24]
    wireguard_public_key: "$W_PUB"
    endpoints:
      - ipv4: 10.72.2.0/24
        identity: $XM_ID_DB
YAML
  } >>"$XM_WORK/node-a.yaml"
}
write_config 50

# A key file others can read is refused, with the fix in the message.
chmod 644 "$A_KEY"
if xm_ns node-a "$XM_BUILD/xdpmeshd" --config "$XM_WORK/node-a.yaml" >"$XM_WORK/refused.log" 2>&1; then
  fail "xdpmeshd started with a private key file of mode 0644"
else
  check "a key file of mode 0644 is refused, naming the fix" grep -q "chmod 600" "$XM_WORK/refused.log"
fi
chmod 600 "$A_KEY"
xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a.log"
check "our public key is the one of the key file" \
  test "$(ctl node-a encrypt status -o json | json wireguard.public_key)" = "$A_PUB"

# --- wireguard-go on node-w ---------------------------------------------------------------
start_wireguard_go() {
  WG_PROCESS_FOREGROUND=1 ip netns exec "${XM_PREFIX}node-w" wireguard-go -f $WGIF >"$XM_WORK/wg-go.log" 2>&1 &
  WG_PID=$!
  XM_PIDS+=($WG_PID)
  for _ in $(seq 50); do [ -S /var/run/wireguard/$WGIF.sock ] && break; sleep 0.1; done
  xm_ns node-w wg set $WGIF private-key "$XM_WORK/w.key" listen-port 51871 \
    peer "$A_PUB" endpoint $NODE_A:51871 allowed-ips 10.72.1.0/24,$NODE_A/32
  xm_ns node-w ip addr add 10.72.2.1/24 dev $WGIF
  xm_ns node-w ip link set $WGIF mtu 1440 up
  xm_ns node-w ip route replace 10.72.1.0/24 dev $WGIF
}
stop_wireguard_go() {
  kill -TERM $WG_PID 2>/dev/null || true
  wait $WG_PID 2>/dev/null || true
  for _ in $(seq 50); do [ -S /var/run/wireguard/$WGIF.sock ] || break; sleep 0.1; done
}
wg_handshake_time() { xm_ns node-w wg show $WGIF latest-handshakes | awk '{print $2}'; }
peer_field() { ctl node-a encrypt status -o json | json "wireguard.peers.0.$1"; }

start_wireguard_go
ip netns exec "${XM_PREFIX}node-w" tshark -i wire0 -f "udp port 51871" -s 200 -w "$XM_WORK/wg.pcap" -q >/dev/null 2>&1 &
TSHARK=$!
XM_PIDS+=($TSHARK)
sleep 1

# 1. xdpmesh initiates (at once for a new peer, and retried until wireguard-go answers).
# Our first initiation went out before wireguard-go listened: the retry
# (Rekey-Timeout 5 s + jitter) or the pod's packets complete it.
xm_ns a1 ping -c 1 -W 1 10.72.2.1 >/dev/null 2>&1 || true
for _ in $(seq 80); do [ "$(wg_handshake_time)" -gt 0 ] && break; sleep 0.2; done
check "wg show: wireguard-go completed a handshake with xdpmesh" test "$(wg_handshake_time)" -gt 0
check "xdpmesh initiated it" test "$(ctl node-a encrypt status -o json | json wireguard.handshakes.responses_received)" -ge 1
check "ping pod -> wireguard-go peer" xm_ns a1 ping -c 5 -i 0.2 -W 2 -q 10.72.2.1
check "every packet sent without a session is counted, per peer too" \
  test "$(stat_of node-a drops.wg_no_session)" = "$(peer_field errors.no_session)"
check "ping wireguard-go peer -> pod" xm_ns node-w ping -c 5 -i 0.2 -W 2 -q 10.72.1.2
check "UDP pod -> wireguard-go, 2000 datagrams" udp_check a1w a1 node-w 10.72.2.1 2000
check "UDP wireguard-go -> pod, 2000 datagrams" udp_check wa1 node-w a1 10.72.1.2 2000
check "TCP pod -> wireguard-go, 20 MiB verified" tcp_check a1w a1 node-w 10.72.2.1 20971520
check "TCP wireguard-go -> pod, 20 MiB verified" tcp_check wa1 node-w a1 10.72.1.2 20971520
check "status: rx/tx bytes counted" test "$(peer_field rx_bytes)" -gt 20000000 -a "$(peer_field tx_bytes)" -gt 20000000
xm_ns node-w wg show $WGIF

# 2. Rekeys under traffic: three handshakes while 20000 datagrams flow; every
#    datagram arrives or its loss is a counted drop.
epoch_before=$(peer_field current_epoch)
drops_before=$(drops_except node-a)
port=$((20000 + RANDOM % 20000))
xm_ns node-w $XM_TRAFFIC udp-server --port $port --count 20000 --timeout 5 >"$XM_WORK/rekey.json" &
spid=$!
for _ in $(seq 50); do grep -q listening "$XM_WORK/rekey.json" 2>/dev/null && break; sleep 0.05; done
xm_ns a1 $XM_TRAFFIC udp-client --host 10.72.2.1 --port $port --count 20000 --rate 4000 >/dev/null &
cpid=$!
for i in 1 2 3; do sleep 1.2; ctl node-a encrypt rekey >/dev/null; done
wait $cpid
wait $spid
got=$(tail -1 "$XM_WORK/rekey.json" | json received)
epoch_after=$(peer_field current_epoch)
drops_during=$(( $(drops_except node-a) - drops_before ))
echo "  rekey under traffic: received $got/20000, key epoch $epoch_before -> $epoch_after, counted drops $drops_during"
check "three rekeys under traffic (epoch $epoch_before -> $epoch_after)" test "$epoch_after" -ge $((epoch_before + 3))
check "no loss beyond what is counted ($((20000 - got)) lost, $drops_during counted)" test $((20000 - got)) -le "$drops_during"
check "previous key epoch kept for late packets" test "$(peer_field previous_epoch)" != "-"

# 3. wireguard-go initiates: a fresh wireguard-go (no session) talks first.
stop_wireguard_go
hs_before=$(ctl node-a encrypt status -o json | json wireguard.handshakes.responses_sent)
start_wireguard_go
xm_ns node-w ping -c 1 -W 1 10.72.1.2 >/dev/null 2>&1 || true
check "wireguard-go initiates: ping wireguard-go -> pod" xm_ns node-w ping -c 5 -i 0.2 -W 2 -q 10.72.1.2
check "xdpmesh answered the initiation (responses_sent grew)" \
  test "$(ctl node-a encrypt status -o json | json wireguard.handshakes.responses_sent)" -gt "$hs_before"
check "ping pod -> wireguard-go after it initiated" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.72.2.1
check "TCP pod -> wireguard-go after it initiated, 5 MiB" tcp_check a1w2 a1 node-w 10.72.2.1 5242880

# 4. Bad input from node-w's own address: unknown receiver index, truncated,
#    a replayed data message (captured from wireguard-go, sent again).
unknown_before=$(stat_of node-a drops.wg_unknown_index)
malformed_before=$(stat_of node-a drops.wg_malformed)
replay_before=$(stat_of node-a drops.wg_replay)
xm_ns node-w /usr/bin/python3 - $NODE_A <<'PY'
import os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = (sys.argv[1], 51871)
for i in range(10):  # unknown receiver index
    s.sendto(struct.pack("<BxxxIQ", 4, 0xdead0000 + i, i) + os.urandom(48), dst)
for n in range(4, 32, 3):  # shorter than header + tag
    s.sendto(bytes([4, 0, 0, 0]) + os.urandom(n - 4), dst)
PY
# Replay: sniff one data message wireguard-go sends us, then send the frame again.
xm_ns node-w /usr/bin/python3 - $NODE_A >"$XM_WORK/replay.out" <<'PY' &
import socket, sys, time
node_a = sys.argv[1]
r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL: outgoing frames too
r.bind(("wire0", 0x0003))
r.settimeout(10)
print("ready", flush=True)
deadline = time.time() + 10
while time.time() < deadline:
    f, addr = r.recvfrom(4096)
    if addr[2] != socket.PACKET_OUTGOING: continue
    ip = f[14:]
    if f[12:14] != b"\x08\x00" or ip[9] != 17 or socket.inet_ntoa(ip[16:20]) != node_a: continue
    udp = ip[(ip[0] & 15) * 4:]
    if int.from_bytes(udp[2:4], "big") != 51871 or udp[8] != 4 or len(udp) < 8 + 32 + 16: continue
    time.sleep(0.2)  # after the original was received
    for _ in range(3): r.send(f)
    break
PY
sniffer=$!
for _ in $(seq 200); do grep -q ready "$XM_WORK/replay.out" 2>/dev/null && break; sleep 0.1; done
xm_ns node-w ping -c 3 -i 0.2 -W 2 -q 10.72.1.2 >/dev/null || true
wait $sniffer || true
sleep 0.3
check "unknown receiver index counted ($(( $(stat_of node-a drops.wg_unknown_index) - unknown_before )))" \
  test $(( $(stat_of node-a drops.wg_unknown_index) - unknown_before )) -ge 10
check "truncated data messages counted" test $(( $(stat_of node-a drops.wg_malformed) - malformed_before )) -ge 9
check "a replayed data message is dropped as a replay" test $(( $(stat_of node-a drops.wg_replay) - replay_before )) -ge 1
check "the peer still works after the bad input" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.72.2.1

# 5. Handshake flood: initiations with a valid mac1 (from random keys) far above
#    the cookie threshold; the daemon answers with cookie replies (mac2 demanded)
#    and a real handshake still completes.
cookies_before=$(ctl node-a encrypt status -o json | json wireguard.handshakes.cookie_replies_sent)
processed_before=$(ctl node-a encrypt status -o json | json wireguard.handshakes.processed)
flood_start=$(date +%s.%N)
xm_ns node-w /usr/bin/python3 - $NODE_A "$A_PUB" <<'PY'
import base64, hashlib, os, socket, struct, sys
node_a, pub = sys.argv[1], base64.b64decode(sys.argv[2])
mac1_key = hashlib.blake2s(b"mac1----" + pub).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    body = struct.pack("<BxxxI", 1, i) + os.urandom(32 + 48 + 28)
    mac1 = hashlib.blake2s(body, digest_size=16, key=mac1_key).digest()
    s.sendto(body + mac1 + bytes(16), (node_a, 51871))
PY
flood_end=$(date +%s.%N)
sleep 0.5
cookies=$(( $(ctl node-a encrypt status -o json | json wireguard.handshakes.cookie_replies_sent) - cookies_before ))
processed=$(( $(ctl node-a encrypt status -o json | json wireguard.handshakes.processed) - processed_before ))
echo "  handshake flood: 2000 initiations in $(awk "BEGIN { printf \"%.3f\", $flood_end - $flood_start }") s -> $cookies cookie replies," \
  "$processed went through the DH (threshold 50/s); the rest overflowed the socket buffer"
check "the cookie mechanism engaged under the flood ($cookies cookie replies)" test "$cookies" -gt 100
check "at most the threshold's worth of flood initiations cost a DH ($processed)" test "$processed" -le 100
ctl node-a encrypt rekey >/dev/null
sleep 1
check "the real peer still gets through after the flood" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.72.2.1

# 6. tshark decodes the capture as WireGuard with every message type we exchanged.
sleep 0.5
kill -INT $TSHARK 2>/dev/null || true
wait $TSHARK 2>/dev/null || true
types=$(tshark -r "$XM_WORK/wg.pcap" -d udp.port==51871,wg -Y wg -T fields -e wg.type 2>/dev/null | sort | uniq -c)
echo "$types" | sed 's/^/  wg.type /'
for t in 1 2 3 4; do
  check "tshark decodes WireGuard message type $t" grep -qw "$t" <<<"$(echo "$types" | awk '{print $2}')"
done
from_us=$(tshark -r "$XM_WORK/wg.pcap" -d udp.port==51871,wg -Y "wg.type == 4 && ip.src == $NODE_A" 2>/dev/null | wc -l)
check "tshark decodes our data messages ($from_us)" test "$from_us" -gt 1000
bad=$(tshark -r "$XM_WORK/wg.pcap" -d udp.port==51871,wg -Y "ip.src == $NODE_A && (_ws.malformed || _ws.expert.severity >= error)" 2>/dev/null | wc -l)
check "no malformed WireGuard packet from us in tshark's view" test "$bad" = 0

# 7. No key material in the log or status (base64 and hex of our private key).
priv_b64=$(cat "$A_KEY")
priv_hex=$(base64 -d "$A_KEY" | od -An -tx1 | tr -d ' \n')
ctl node-a encrypt status -o json >"$XM_WORK/status.json"
ctl node-a encrypt status >>"$XM_WORK/status.json"
ctl node-a status -o json >>"$XM_WORK/status.json"
for f in "$XM_WORK/node-a.log" "$XM_WORK/status.json"; do
  check "no private key bytes in $(basename "$f")" \
    bash -c "! grep -qiF '$priv_b64' '$f' && ! grep -qiF '$priv_hex' '$f' && ! grep -qiF '${priv_hex:0:16}' '$f'"
done
ctl node-a encrypt status
finish
