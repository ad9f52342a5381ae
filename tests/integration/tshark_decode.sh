#!/usr/bin/env bash
# (c) tshark decodes a capture of each tunnel taken on the wire between the
# nodes (a bridge in namespace "switch"): the VNI carries the source pod's
# identity, the ports are the mode's, the inner addresses are the pods'.
. "$(dirname "$0")/common.sh"
command -v tshark >/dev/null || { echo "tshark is not installed (tools/install-deps.sh test)"; exit 1; }

export XM_SWITCH=1
for mode in vxlan geneve; do
  echo "# mode $mode"
  xm_two_nodes "$mode"
  xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a-$mode.log"
  xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b-$mode.log"
  port=$([ "$mode" = vxlan ] && echo 8472 || echo 6081)
  pcap="$XM_WORK/$mode.pcap"
  xm_ns switch tshark -q -i br0 -f "udp port $port" -c 20 -w "$pcap" 2>"$XM_WORK/tshark-$mode.err" &
  tpid=$!
  # Wait until the capture runs, then send 10 datagrams each way.
  for _ in $(seq 100); do grep -q "Capturing on" "$XM_WORK/tshark-$mode.err" 2>/dev/null && break; sleep 0.05; done
  udp_check "$mode-ab" a1 b1 10.1.2.2 10 100 || fail "$mode: UDP a1 -> b1"
  udp_check "$mode-ba" b2 a2 10.1.1.3 10 100 || fail "$mode: UDP b2 -> a2"
  wait $tpid || true
  decode_as=()
  [ "$mode" = vxlan ] && decode_as=(-d udp.port==8472,vxlan)
  fields=$(tshark -r "$pcap" "${decode_as[@]}" -T fields -E separator='|' \
    -e ip.src -e ip.dst -e udp.srcport -e udp.dstport -e "$mode.vni" -e ip.ttl -e ip.flags.df 2>/dev/null |
    /usr/bin/python3 -c 'import sys
for l in sys.stdin:
    f = l.rstrip("\n").split("|")
    f[4] = str(int(f[4], 0)) if f[4] else f[4]  # Geneve VNI is printed in hex
    print("|".join(f))')
  echo "$fields" | head -3
  # ip.src lists outer then inner; udp.* outer then inner.
  a_to_b=$(echo "$fields" | grep -c "^192.168.50.1,10.1.1.2|192.168.50.2,10.1.2.2|[0-9]*,[0-9]*|$port,[0-9]*|$XM_ID_WEB|" || true)
  b_to_a=$(echo "$fields" | grep -c "^192.168.50.2,10.1.2.3|192.168.50.1,10.1.1.3|[0-9]*,[0-9]*|$port,[0-9]*|$XM_ID_DB|" || true)
  check "$mode: 10 frames a1 -> b1 decoded with VNI $XM_ID_WEB (a1's identity), port $port" test "$a_to_b" = 10
  check "$mode: 10 frames b2 -> a2 decoded with VNI $XM_ID_DB (b2's identity)" test "$b_to_a" = 10
  bad=$(tshark -r "$pcap" "${decode_as[@]}" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -Y '_ws.malformed || ip.checksum.status == "Bad" || udp.checksum.status == "Bad"' 2>/dev/null | wc -l)
  check "$mode: tshark finds no malformed frame and no bad outer/inner checksum" test "$bad" = 0
  sports=$(echo "$fields" | cut -d'|' -f3 | cut -d, -f1 | sort -u)
  check "$mode: outer source ports in 49152-65535" bash -c "for p in $(echo $sports); do [ \$p -ge 49152 ] || exit 1; done"
  ttl_df=$(echo "$fields" | cut -d'|' -f6,7 | sort -u)
  check "$mode: outer TTL 64 with DF; inner TTL untouched by the sender ($ttl_df)" test "$ttl_df" = "64,64|1,1"
  xm_cleanup
  XM_WORK=$(mktemp -d /tmp/${XM_PREFIX}XXXXXX)
done
finish
