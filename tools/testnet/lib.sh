# Shell library for throwaway network topologies: xdpmesh "nodes" are network
# namespaces joined by a veth "wire"; "pods" are namespaces behind veth pairs.
# Everything is named with $XM_PREFIX so concurrent runs do not collide, and
# xm_cleanup removes exactly what this run created (namespaces, PIDs it started).
# Source it; needs root and iproute2 + ethtool.

XM_PREFIX=${XM_PREFIX:-xm-}
XM_WORK=${XM_WORK:-$(mktemp -d /tmp/${XM_PREFIX}XXXXXX)}
XM_QUEUES=${XM_QUEUES:-1}  # rx/tx queues of every veth (one xdpmeshd worker per queue)
XM_PIDS=()
XM_NETNS=()

xm_ns() { ip netns exec "$XM_PREFIX$1" "${@:2}"; }

# MAC derived from an IPv4 address: 02:00:a.b.c.d (locally administered, unicast).
xm_mac_of() {
  local IFS=.
  set -- $1
  printf '02:00:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4"
}

# xm_node NAME: a node namespace with lo up. (xdpmeshd needs no bpffs.)
xm_node() {
  ip netns add "$XM_PREFIX$1"
  XM_NETNS+=("$XM_PREFIX$1")
  xm_ns "$1" ip link set lo up
}

# xm_wire NODE1 IP1 NODE2 IP2 [MTU]: a veth wire0 between two nodes, IPv4 /24.
# With XM_SWITCH=1 the wire runs through a bridge in namespace "switch", where
# a capture sees every frame (a tap on a node's own wire0 misses frames that
# XDP redirects or AF_XDP transmits).
xm_wire() {
  local mtu=${5:-1500}
  if [ -n "${XM_SWITCH:-}" ]; then
    ip netns add "${XM_PREFIX}switch"
    XM_NETNS+=("${XM_PREFIX}switch")
    xm_ns switch ip link add br0 type bridge
    xm_ns switch ip link set br0 up
    ip link add wire0 netns "$XM_PREFIX$1" type veth peer name port1 netns "${XM_PREFIX}switch"
    ip link add wire0 netns "$XM_PREFIX$3" type veth peer name port2 netns "${XM_PREFIX}switch"
    local p
    for p in port1 port2; do
      xm_ns switch ip link set "$p" mtu "$mtu" master br0 up
    done
  else
    ip link add wire0 netns "$XM_PREFIX$1" numtxqueues "$XM_QUEUES" numrxqueues "$XM_QUEUES" type veth \
      peer name wire0 netns "$XM_PREFIX$3" numtxqueues "$XM_QUEUES" numrxqueues "$XM_QUEUES"
  fi
  xm_ns "$1" ip link set wire0 mtu "$mtu" address "$(xm_mac_of "$2")"
  xm_ns "$3" ip link set wire0 mtu "$mtu" address "$(xm_mac_of "$4")"
  xm_ns "$1" ip addr add "$2/24" dev wire0
  xm_ns "$3" ip addr add "$4/24" dev wire0
  # A veth hands the peer checksums the sender left for offload (CHECKSUM_PARTIAL)
  # unfinished; a physical wire never carries such frames. Make the kernels
  # on both ends compute them, as a NIC would.
  xm_ns "$1" ethtool -K wire0 tx off >/dev/null 2>&1 || true
  xm_ns "$3" ethtool -K wire0 tx off >/dev/null 2>&1 || true
  xm_ns "$1" ip link set wire0 up
  xm_ns "$3" ip link set wire0 up
}

# xm_pod NODE POD HOST_IF IPV4 [IPV6] [MTU]: a pod namespace whose eth0 is
# paired with HOST_IF in the node. The pod routes everything on-link through
# eth0; the engine answers ARP/ND. The pod keeps veth's default offloads
# (checksum, TSO): the engine finishes offloaded checksums itself.
xm_pod() {
  local node=$1 pod=$2 hostif=$3 ip4=$4 ip6=${5:-} mtu=${6:-1450}
  ip netns add "$XM_PREFIX$pod"
  XM_NETNS+=("$XM_PREFIX$pod")
  xm_ns "$pod" ip link set lo up
  ip link add "$hostif" netns "$XM_PREFIX$node" numtxqueues "$XM_QUEUES" numrxqueues "$XM_QUEUES" type veth \
    peer name eth0 netns "$XM_PREFIX$pod" numtxqueues "$XM_QUEUES" numrxqueues "$XM_QUEUES"
  xm_ns "$pod" ip link set eth0 address "$(xm_mac_of "$ip4")" mtu "$mtu"
  xm_ns "$node" ip link set "$hostif" mtu 1500
  xm_ns "$pod" ip addr add "$ip4/32" dev eth0
  [ -n "$ip6" ] && xm_ns "$pod" ip -6 addr add "$ip6/128" dev eth0 nodad
  xm_ns "$pod" ip link set eth0 up
  xm_ns "$node" ip link set "$hostif" up
  xm_ns "$pod" ip route add default dev eth0
  [ -n "$ip6" ] && xm_ns "$pod" ip -6 route add default dev eth0
  return 0
}

# xm_start_daemon NODE CONFIG LOG: starts xdpmeshd in NODE, waits until its API answers.
xm_start_daemon() {
  local node=$1 cfg=$2 log=$3 sock
  sock=$(sed -n 's/^api_socket: *//p' "$cfg")
  ip netns exec "$XM_PREFIX$node" "$XM_BUILD/xdpmeshd" --config "$cfg" >"$log" 2>&1 &
  XM_PIDS+=($!)
  local pid=$!
  for _ in $(seq 1 100); do
    if "$XM_BUILD/xdpmeshctl" --socket "$sock" status >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "xdpmeshd in $node exited; log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "xdpmeshd in $node did not answer on $sock" >&2
  cat "$log" >&2
  return 1
}

# xm_stop_daemons: SIGTERM to every daemon this run started, then wait.
xm_stop_daemons() {
  local pid
  for pid in "${XM_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${XM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  XM_PIDS=()
}

xm_cleanup() {
  xm_stop_daemons
  local ns
  for ns in "${XM_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  XM_NETNS=()
  [ -n "${XM_KEEP_WORK:-}" ] || rm -rf "$XM_WORK"
}

# xm_node_config FILE NODE CLUSTER_ID NODE_IP MODE [CLUSTER]: writes a node's
# YAML header; callers append pods: and remote_nodes: sections.
xm_node_config() {
  local file=$1 node=$2 cid=$3 ip=$4 mode=$5 cluster=${6:-mesh1}
  cat >"$file" <<YAML
node:
  name: $node
  cluster: $cluster
  cluster_id: $cid
api_socket: $XM_WORK/$node.sock
uplink:
  interface: wire0
  ip: $ip
tunnel:
  mode: $mode
YAML
}
