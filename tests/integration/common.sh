# Shared by the integration tests (tier 'netns'): root, throwaway namespaces,
# torn down on exit. Source it first; it sources the topology library.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (network namespaces, XDP)"
  exit 77
fi

XM_SOURCE=${XM_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
XM_BUILD=${XM_BUILD:-$XM_SOURCE/build}
XM_PREFIX=${XM_PREFIX:-xt$$-}
XM_TRAFFIC="/usr/bin/python3 $XM_SOURCE/tools/testnet/traffic.py"
. "$XM_SOURCE/tools/testnet/lib.sh"
. "$XM_SOURCE/tools/testnet/two_nodes.sh"
trap 'rc=$?; xm_cleanup; exit $rc' EXIT

XM_FAILS=0
ok() { echo "ok - $*"; }
fail() {
  echo "FAIL - $*"
  XM_FAILS=$((XM_FAILS + 1))
}
check() {  # check DESCRIPTION COMMAND...: runs the command, records ok/FAIL
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
  if [ "$XM_FAILS" -ne 0 ]; then
    echo "$XM_FAILS check(s) failed; daemon logs:"
    for f in "$XM_WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -30 "$f"; }; done
    exit 1
  fi
  echo "all checks passed"
}

# json FIELD_PATH: reads JSON on stdin, prints the value at a dotted path
# (numbers index arrays), e.g. json workers.0.drops.no_route
json() {
  /usr/bin/python3 -c '
import json, sys
v = json.loads(sys.stdin.readline())
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$1"
}

ctl() {  # ctl NODE ARGS...: xdpmeshctl against that node's daemon
  "$XM_BUILD/xdpmeshctl" --socket "$XM_WORK/$1.sock" "${@:2}"
}

# stat_of NODE KEY: a worker-0 counter of the node, e.g. stat_of node-a drops.no_route
stat_of() { ctl "$1" stats -o json | json "workers.0.$2"; }

# drops_except NODE [REASON...]: total drops of the node except the reasons named
drops_except() {
  ctl "$1" stats -o json | /usr/bin/python3 -c '
import json, sys
skip = set(sys.argv[1:])
w = json.loads(sys.stdin.readline())["workers"]
print(sum(v for x in w for k, v in x["drops"].items() if k not in skip))' "${@:2}"
}

# udp_check NAME SRC_POD DST_POD DST_IP COUNT [RATE] [extra client args]: all datagrams arrive intact
udp_check() {
  local name=$1 src=$2 dst=$3 ip=$4 count=$5 rate=${6:-2000} v6=""
  [[ $ip == *:* ]] && v6=--v6
  local out="$XM_WORK/udp-$name.json" port=$((20000 + RANDOM % 20000))
  xm_ns "$dst" $XM_TRAFFIC udp-server --port $port --count "$count" --timeout 5 $v6 >"$out" &
  local spid=$!
  for _ in $(seq 50); do grep -q listening "$out" 2>/dev/null && break; sleep 0.05; done
  xm_ns "$src" $XM_TRAFFIC udp-client --host "$ip" --port $port --count "$count" --rate "$rate" >/dev/null
  wait $spid
  local got bad
  got=$(tail -1 "$out" | json received)
  bad=$(tail -1 "$out" | json bad)
  [ "$got" = "$count" ] && [ "$bad" = 0 ] || { echo "  $name: received $got/$count, bad $bad"; return 1; }
}

# tcp_check NAME SRC_POD DST_POD DST_IP BYTES: the stream arrives complete and unaltered
tcp_check() {
  local name=$1 src=$2 dst=$3 ip=$4 bytes=$5 v6=""
  [[ $ip == *:* ]] && v6=--v6
  local out="$XM_WORK/tcp-$name.json" port=$((20000 + RANDOM % 20000))
  xm_ns "$dst" $XM_TRAFFIC tcp-server --port $port --timeout 60 $v6 >"$out" &
  local spid=$!
  for _ in $(seq 50); do grep -q listening "$out" 2>/dev/null && break; sleep 0.05; done
  local sent
  sent=$(xm_ns "$src" $XM_TRAFFIC tcp-client --host "$ip" --port $port --bytes "$bytes" --timeout 60)
  wait $spid
  local got_bytes got_sha want_sha
  got_bytes=$(tail -1 "$out" | json bytes)
  got_sha=$(tail -1 "$out" | json sha256)
  want_sha=$(echo "$sent" | json sha256)
  echo "  $name: $(tail -1 "$out")"
  [ "$got_bytes" = "$bytes" ] && [ "$got_sha" = "$want_sha" ]
}
