#!/usr/bin/env bash
# Bad configuration and a bad environment: a clear message naming the fix,
# a non-zero exit, and nothing half-started (no XDP program, no API socket).
. "$(dirname "$0")/common.sh"

xm_two_nodes vxlan
A="$XM_WORK/node-a.yaml"

# expect_fail NAME EXIT_CODE MESSAGE CONFIG [prefix command...]
expect_fail() {
  local name=$1 want_rc=$2 msg=$3 cfg=$4
  shift 4
  local rc=0 log="$XM_WORK/$name.log"
  ip netns exec "${XM_PREFIX}node-a" "$@" "$XM_BUILD/xdpmeshd" --config "$cfg" >"$log" 2>&1 || rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$msg" "$log" && ! ip -n "${XM_PREFIX}node-a" link show wire0 | grep -q xdp &&
    [ ! -e "$XM_WORK/node-a.sock" ]; then
    ok "$name: exit $rc, \"$msg\""
  else
    fail "$name: exit $rc (want $want_rc), log: $(cat "$log")"
  fi
}

rc=0; out=$("$XM_BUILD/xdpmeshd" --config "$A" --check-config 2>&1) || rc=$?
check "--check-config accepts a valid config and starts nothing" bash -c "[ $rc = 0 ] && ! ip -n ${XM_PREFIX}node-a link show wire0 | grep -q xdp"
rc=0; "$XM_BUILD/xdpmeshd" --config /nonexistent.yaml --check-config >/dev/null 2>&1 || rc=$?
check "--check-config rejects a bad one (exit $rc)" test "$rc" = 2

expect_fail missing-file 2 "/nonexistent.yaml: cannot open the config file" /nonexistent.yaml

sed 's/^tunnel:/tunel:/' "$A" >"$XM_WORK/typo.yaml"
expect_fail unknown-key 2 "typo.yaml:9:1: tunel: unknown key" "$XM_WORK/typo.yaml"

sed 's/identity: 65600/identity: 500/' "$A" >"$XM_WORK/range.yaml"
expect_fail identity-range 2 "pods[0].endpoints[0].identity: identity 500 is outside cluster 1's range [65536, 131071]" "$XM_WORK/range.yaml"

sed 's/interface: lxc-a2/interface: lxc-zz/' "$A" >"$XM_WORK/noif.yaml"
expect_fail missing-interface 1 "interface 'lxc-zz' does not exist in this network namespace" "$XM_WORK/noif.yaml"

xm_ns node-a ip link set wire0 mtu 9000
expect_fail mtu-too-large 1 "wire0: MTU 9000 is too large for XDP (at most 3400); lower it: ip link set dev wire0 mtu 1500" "$A"
xm_ns node-a ip link set wire0 mtu 1500

sed 's/^tunnel:/dataplane: {queues: 4}\ntunnel:/' "$A" >"$XM_WORK/queues.yaml"
expect_fail too-many-queues 1 "wire0 has 1 rx queue(s) but dataplane.queues is 4; they must match" "$XM_WORK/queues.yaml"

xm_ns node-a ip addr flush dev wire0
sed '/^  ip: /d' "$A" >"$XM_WORK/noip.yaml"
expect_fail uplink-without-ip 1 "uplink wire0 has no IPv4 address" "$XM_WORK/noip.yaml"
xm_ns node-a ip addr add 192.168.50.1/24 dev wire0

chmod 755 "$XM_WORK"  # readable by the unprivileged user
sed 's/ipv4: 10.1.1.3/ipv4: 192.168.50.1/' "$A" >"$XM_WORK/nodeip.yaml"
expect_fail endpoint-with-node-ip 1 "endpoint 192.168.50.1 on lxc-a2 uses an address of this node" "$XM_WORK/nodeip.yaml"

expect_fail not-root 1 "(run as root" "$A" setpriv --reuid=65534 --regid=65534 --clear-groups

# A second daemon on the same API socket must not disturb the first.
xm_start_daemon node-a "$A" "$XM_WORK/first.log"
rc=0; xm_ns node-a "$XM_BUILD/xdpmeshd" --config "$A" >"$XM_WORK/second.log" 2>&1 || rc=$?
check "a second daemon on the same interfaces is refused (exit $rc): $(tail -1 "$XM_WORK/second.log")" \
  bash -c "[ $rc = 1 ] && grep -q 'wire0 is in use by another xdpmeshd (pid ${XM_PIDS[-1]})' '$XM_WORK/second.log'"
check "the first daemon still serves traffic" xm_ns a1 ping -c 2 -i 0.2 -W 2 -q 10.1.1.3
check "the first daemon is still healthy" ctl node-a status
finish
