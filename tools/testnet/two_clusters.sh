# Two clusters that know each other only through etcd. Source after lib.sh,
# two_nodes.sh and etcd.sh. xm_two_clusters MODE builds the two-node wire of two_nodes.sh
# but makes node-a the only node of cluster "alpha" (ID 1) and node-b the only
# node of cluster "beta" (ID 2); each cluster has its own etcd (TLS) inside
# its node's namespace, port 23790. Pods carry labels and no identity: each
# node allocates its identities in its own etcd and publishes node + pods
# there; each reads the other cluster from a clustermesh config directory
# ($XM_WORK/cm-a holds "beta", $XM_WORK/cm-b holds "alpha").
#   node-a pods a1 10.1.1.2 / fd00:1:1::2 (app web), a2 10.1.1.3 / fd00:1:1::3 (app client)
#   node-b pods b1 10.1.2.2 / fd00:1:2::2 (app web), b2 10.1.2.3 / fd00:1:2::3 (app db)
# Sets XM_ETCD_A_PID and XM_ETCD_B_PID.

XM_ETCD_PORT=${XM_ETCD_PORT:-23790}

xm_labelled_pod() {  # INTERFACE IPV4 IPV6 APP NAME
  cat <<YAML
  - interface: $1
    endpoints:
      - ipv4: $2
        ipv6: $3
        mac: $(xm_mac_of "$2")
        labels: {app: $4}
        namespace: default
        name: $5
YAML
}

xm_etcd_client_file() {  # FILE ENDPOINT
  cat >"$1" <<YAML
endpoints:
- $2
trusted-ca-file: $XM_WORK/pki/ca.crt
cert-file: $XM_WORK/pki/client.crt
key-file: $XM_WORK/pki/client.key
YAML
}

xm_clustermesh_section() {  # CONFIG_DIR OWN_ETCD_FILE CIDR4 CIDR6
  cat <<YAML
clustermesh:
  config_dir: $1
  etcd: $2
  pod_cidrs: [$3, $4]
  status_check_interval: 1
  request_timeout: 2
  heartbeat_interval: 5
  failure_timeout: 10
YAML
}

xm_two_clusters() {
  local mode=${1:-vxlan}
  xm_two_node_topology

  bash "$XM_SOURCE/tools/testnet/etcd_certs.sh" "$XM_WORK/pki" 192.168.50.1 192.168.50.2 127.0.0.1 >/dev/null
  export XM_ETCD_PKI=$XM_WORK/pki
  XM_ETCD_A_PID=$(xm_etcd_start alpha "$XM_WORK" "$XM_ETCD_PORT" node-a tls)
  XM_ETCD_B_PID=$(xm_etcd_start beta "$XM_WORK" "$XM_ETCD_PORT" node-b tls)
  XM_PIDS+=("$XM_ETCD_A_PID" "$XM_ETCD_B_PID")  # stopped by xm_cleanup with the daemons
  mkdir -p "$XM_WORK/cm-a" "$XM_WORK/cm-b"
  xm_etcd_client_file "$XM_WORK/etcd-alpha.yaml" "https://192.168.50.1:$XM_ETCD_PORT"
  xm_etcd_client_file "$XM_WORK/etcd-beta.yaml" "https://192.168.50.2:$XM_ETCD_PORT"
  cp "$XM_WORK/etcd-beta.yaml" "$XM_WORK/cm-a/beta"
  cp "$XM_WORK/etcd-alpha.yaml" "$XM_WORK/cm-b/alpha"

  xm_node_config "$XM_WORK/node-a.yaml" node-a 1 192.168.50.1 "$mode" alpha
  {
    echo "pods:"
    xm_labelled_pod lxc-a1 10.1.1.2 fd00:1:1::2 web a1
    xm_labelled_pod lxc-a2 10.1.1.3 fd00:1:1::3 client a2
    xm_clustermesh_section "$XM_WORK/cm-a" "$XM_WORK/etcd-alpha.yaml" 10.1.1.0/24 fd00:1:1::/64
  } >>"$XM_WORK/node-a.yaml"
  xm_node_config "$XM_WORK/node-b.yaml" node-b 2 192.168.50.2 "$mode" beta
  {
    echo "pods:"
    xm_labelled_pod lxc-b1 10.1.2.2 fd00:1:2::2 web b1
    xm_labelled_pod lxc-b2 10.1.2.3 fd00:1:2::3 db b2
    xm_clustermesh_section "$XM_WORK/cm-b" "$XM_WORK/etcd-beta.yaml" 10.1.2.0/24 fd00:1:2::/64
  } >>"$XM_WORK/node-b.yaml"
}
