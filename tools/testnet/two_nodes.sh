# The standard two-node topology of the demo and the integration tests.
# Source after lib.sh. xm_two_nodes MODE [PORT] builds:
#   node-a (192.168.50.1) pods a1 10.1.1.2 / fd00:1:1::2, a2 10.1.1.3 / fd00:1:1::3
#   node-b (192.168.50.2) pods b1 10.1.2.2 / fd00:1:2::2, b2 10.1.2.3 / fd00:1:2::3
# and writes $XM_WORK/node-a.yaml and node-b.yaml (cluster mesh1, ID 1).

# Identities inside cluster 1's range (65536..131071).
XM_ID_WEB=65600
XM_ID_CLIENT=65601
XM_ID_DB=65602

xm_pod_entry() {  # INTERFACE IPV4 IPV6 IDENTITY APP
  cat <<YAML
  - interface: $1
    endpoints:
      - ipv4: $2
        ipv6: $3
        mac: $(xm_mac_of "$2")
        identity: $4
        labels: {app: $5}
YAML
}

xm_remote_entry() {  # NAME IP CIDR4 CIDR6 then pairs IP4 IP6 IDENTITY ...
  local name=$1 ip=$2 c4=$3 c6=$4
  shift 4
  cat <<YAML
  - name: $name
    ip: $ip
    pod_cidrs: [$c4, $c6]
    endpoints:
YAML
  while [ $# -ge 3 ]; do
    printf '      - {ipv4: %s, identity: %s}\n      - {ipv6: %s, identity: %s}\n' "$1" "$3" "$2" "$3"
    shift 3
  done
}

# The namespaces and links only (shared with two_clusters.sh).
xm_two_node_topology() {
  xm_node node-a
  xm_node node-b
  xm_wire node-a 192.168.50.1 node-b 192.168.50.2
  xm_pod node-a a1 lxc-a1 10.1.1.2 fd00:1:1::2
  xm_pod node-a a2 lxc-a2 10.1.1.3 fd00:1:1::3
  xm_pod node-b b1 lxc-b1 10.1.2.2 fd00:1:2::2
  xm_pod node-b b2 lxc-b2 10.1.2.3 fd00:1:2::3
}

xm_two_nodes() {
  local mode=${1:-vxlan} port=${2:-}
  xm_two_node_topology

  xm_node_config "$XM_WORK/node-a.yaml" node-a 1 192.168.50.1 "$mode"
  [ -n "$port" ] && echo "  port: $port" >>"$XM_WORK/node-a.yaml"
  {
    echo "pods:"
    xm_pod_entry lxc-a1 10.1.1.2 fd00:1:1::2 $XM_ID_WEB web
    xm_pod_entry lxc-a2 10.1.1.3 fd00:1:1::3 $XM_ID_CLIENT client
    echo "remote_nodes:"
    xm_remote_entry node-b 192.168.50.2 10.1.2.0/24 fd00:1:2::/64 \
      10.1.2.2 fd00:1:2::2 $XM_ID_WEB 10.1.2.3 fd00:1:2::3 $XM_ID_DB
  } >>"$XM_WORK/node-a.yaml"

  xm_node_config "$XM_WORK/node-b.yaml" node-b 1 192.168.50.2 "$mode"
  [ -n "$port" ] && echo "  port: $port" >>"$XM_WORK/node-b.yaml"
  {
    echo "pods:"
    xm_pod_entry lxc-b1 10.1.2.2 fd00:1:2::2 $XM_ID_WEB web
    xm_pod_entry lxc-b2 10.1.2.3 fd00:1:2::3 $XM_ID_DB db
    echo "remote_nodes:"
    xm_remote_entry node-a 192.168.50.1 10.1.1.0/24 fd00:1:1::/64 \
      10.1.1.2 fd00:1:1::2 $XM_ID_WEB 10.1.1.3 fd00:1:1::3 $XM_ID_CLIENT
  } >>"$XM_WORK/node-b.yaml"
}
