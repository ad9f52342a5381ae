#!/usr/bin/env bash
# (a) Two xdpmeshd nodes, two pods each: ICMP, UDP and TCP both ways between
# pods on different nodes, IPv4 and IPv6, in VXLAN and in Geneve mode; one TCP
# stream of 100 MB per mode with its content verified by SHA-256.
. "$(dirname "$0")/common.sh"

TCP_BYTES=${TCP_BYTES:-104857600}

for mode in vxlan geneve; do
  echo "# mode $mode"
  xm_two_nodes "$mode"
  xm_start_daemon node-a "$XM_WORK/node-a.yaml" "$XM_WORK/node-a-$mode.log"
  xm_start_daemon node-b "$XM_WORK/node-b.yaml" "$XM_WORK/node-b-$mode.log"

  check "$mode: ping a1 -> b1 (IPv4)" xm_ns a1 ping -c 3 -i 0.2 -W 2 -q 10.1.2.2
  check "$mode: ping b2 -> a2 (IPv4)" xm_ns b2 ping -c 3 -i 0.2 -W 2 -q 10.1.1.3
  check "$mode: ping a1 -> b1 (IPv6)" xm_ns a1 ping -6 -c 3 -i 0.2 -W 2 -q fd00:1:2::2
  check "$mode: ping a1 -> a2 (same node)" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.1.3
  check "$mode: UDP a1 -> b1, 2000 datagrams" udp_check "$mode-a1b1" a1 b1 10.1.2.2 2000
  check "$mode: UDP b1 -> a1, 2000 datagrams" udp_check "$mode-b1a1" b1 a1 10.1.1.2 2000
  check "$mode: UDP a2 -> b2 over IPv6" udp_check "$mode-v6" a2 b2 fd00:1:2::3 1000
  check "$mode: TCP a1 -> b1, $TCP_BYTES bytes verified" tcp_check "$mode-big" a1 b1 10.1.2.2 "$TCP_BYTES"
  check "$mode: TCP b2 -> a2, 8 MiB verified" tcp_check "$mode-back" b2 a2 10.1.1.3 8388608
  check "$mode: TCP a2 -> b1 over IPv6, 8 MiB verified" tcp_check "$mode-v6" a2 b1 fd00:1:2::2 8388608

  enc=$(stat_of node-a encapsulated)
  dec=$(stat_of node-b decapsulated)
  check "$mode: node-a encapsulated ($enc) and node-b decapsulated ($dec) traffic" test "$enc" -gt 70000 -a "$dec" -gt 70000
  for n in node-a node-b; do
    for r in malformed_ip bad_ip_checksum malformed_l4 tx_ring_full no_headroom bad_vxlan_header bad_geneve_header; do
      v=$(stat_of $n drops.$r)
      [ "$v" = 0 ] || fail "$mode: $n counted $v $r drops"
    done
  done
  check "$mode: status healthy and native XDP" bash -c "'$XM_BUILD/xdpmeshctl' --socket '$XM_WORK/node-a.sock' status -o json | grep -q '\"xdp_mode\":\"native\"'"
  xm_cleanup
  XM_WORK=$(mktemp -d /tmp/${XM_PREFIX}XXXXXX)
done
finish
