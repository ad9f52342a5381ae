#!/usr/bin/env bash
# `xdpmeshd kvstoremesh`: caches a remote cluster (its own TLS etcd, written by
# mesh-sim) into the local etcd under cilium/cache/..., byte for byte, with a
# cached cluster-config and cache canaries; status over its API socket.
. "$(dirname "$0")/common.sh"
. "$XM_SOURCE/tools/testnet/etcd.sh"

bash "$XM_SOURCE/tools/testnet/etcd_certs.sh" "$XM_WORK/pki" 127.0.0.1 >/dev/null
export XM_ETCD_PKI=$XM_WORK/pki
remote=$(xm_etcd_start remote "$XM_WORK" 23810 - tls)
local_pid=$(xm_etcd_start local "$XM_WORK" 23820 - tls)
XM_PIDS+=("$remote" "$local_pid")
xm_etcd_use "$XM_WORK" remote
xm_mesh_sim write --size 1 3 4 --first-cluster-id 2 --name-prefix cluster- --quiet
mkdir -p "$XM_WORK/cm"
for name in remote local; do
  . "$XM_WORK/$name.env"
  printf 'endpoints:\n- %s\ntrusted-ca-file: %s\ncert-file: %s\nkey-file: %s\n' "$XM_ETCD_ENDPOINT" \
    "$XM_ETCD_CACERT" "$XM_ETCD_CERT" "$XM_ETCD_KEY" >"$XM_WORK/$name.yaml"
done
cp "$XM_WORK/remote.yaml" "$XM_WORK/cm/cluster-2"
"$XM_BUILD/xdpmeshd" kvstoremesh --cluster cluster-1 --cluster-id 1 --clustermesh-config "$XM_WORK/cm" \
  --etcd "$XM_WORK/local.yaml" --api-socket "$XM_WORK/kvsm.sock" >"$XM_WORK/kvsm.log" 2>&1 &
XM_PIDS+=($!)
for _ in $(seq 1 50); do [ -S "$XM_WORK/kvsm.sock" ] && break; sleep 0.1; done
check "kvstoremesh reports cluster-2 ready" \
  "$XM_BUILD/xdpmeshctl" --socket "$XM_WORK/kvsm.sock" clustermesh status --wait --timeout 20
xm_etcd_use "$XM_WORK" local
for _ in $(seq 1 50); do
  [ "$(xm_etcd_get cilium/synced/cluster-2/ --prefix --keys-only | grep -c .)" = 4 ] && break
  sleep 0.1
done
check "four cache canaries" test "$(xm_etcd_get cilium/synced/cluster-2/ --prefix --keys-only | grep -c .)" = 4
cc=$(xm_etcd_get cilium/cluster-config/cluster-2 --print-value-only)
check "cluster-config copied with cached: true ($cc)" grep -q '"cached":true' <<<"$cc"
cached=$(xm_mesh_sim dump --prefix cilium/cache/ip/v1/cluster-2/ | sed 's|^cilium/cache/ip/v1/cluster-2/||')
xm_etcd_use "$XM_WORK" remote
source_=$(xm_mesh_sim dump --prefix cilium/state/ip/v1/default/ | sed 's|^cilium/state/ip/v1/default/||')
check "ipcache copied byte for byte ($(grep -c . <<<"$cached") entries)" test "$cached" = "$source_"
finish
