# etcd (3.4, Debian etcd-server) for bash tests: source this file.
#
#   pid=$(xm_etcd_start NAME DIR PORT [NETNS] [tls|plain])
#       Starts one single-member etcd named NAME: data in DIR/NAME.etcd (kept, so
#       a second start of the same NAME/DIR/PORT is a restart with the same data
#       and etcd cluster ID), log in DIR/NAME.log, client URL
#       https://IP:PORT (tls, the default) or http://IP:PORT (plain), peer URL
#       http://IP:PORT+1. Waits until it answers (10 s at most), writes the
#       connection settings to DIR/NAME.env and prints the PID. Returns 1 (and
#       prints the log tail) when etcd exits or does not answer in time.
#       NETNS ("" or "-" = none): a network namespace name; "$XM_PREFIX$NETNS" is
#       used when no namespace is literally called NETNS (lib.sh's node names).
#       tls: --client-cert-auth with DIR/pki/ca.crt (XM_ETCD_PKI overrides the
#       directory); the PKI is made by etcd_certs.sh when DIR/pki/ca.crt is
#       missing (SANs: IP and 127.0.0.1).
#       Fixed flags: --max-txn-ops 4096 --max-request-bytes 10485760
#       --auto-compaction-retention 0 --quota-backend-bytes $XM_ETCD_QUOTA_BYTES
#       (default 8 GiB). Port 2379/2380 are refused (a packaged etcd may own them).
#     Environment read by xm_etcd_start:
#       XM_ETCD_IP           listen/advertise IP (default 127.0.0.1, or the first
#                            global IPv4 address of NETNS when one is given)
#       XM_ETCD_PKI          certificate directory (default DIR/pki)
#       XM_ETCD_SERVER_CERT  server cert base name in the PKI dir (default server;
#                            expired-server for the expired-server-cert test)
#       XM_ETCD_EXTRA_ARGS   extra etcd flags, word-split (e.g. "--snapshot-count 10000")
#   xm_etcd_stop PID
#       SIGTERM, wait up to 10 s, then SIGKILL. Refuses a PID that is not an etcd
#       process (never signals anything else).
#   xm_etcd_use DIR NAME
#       Selects that etcd for the wrappers below (loads DIR/NAME.env into
#       XM_ETCD_ENDPOINT, XM_ETCD_CACERT, XM_ETCD_CERT, XM_ETCD_KEY, XM_ETCD_NETNS).
#       xm_etcd_start run in $(...) cannot set them in the caller: call this.
#       Override XM_ETCD_CERT/XM_ETCD_KEY afterwards to try another client cert.
#   xm_etcd_ctl ARGS...          ETCDCTL_API=3 etcdctl with the selected etcd
#   xm_etcd_put KEY VALUE
#   xm_etcd_get KEY [ARGS...]    e.g. --prefix, --print-value-only, --keys-only
#   xm_etcd_del KEY [ARGS...]    e.g. --prefix
#   xm_mesh_sim SUBCOMMAND ARGS...   tools/mesh-sim with the selected etcd's
#                                    --endpoint/--cacert/--cert/--key

XM_ETCD_SH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XM_MESH_SIM=${XM_MESH_SIM:-$XM_ETCD_SH_DIR/../mesh-sim}

# Resolve a NETNS argument to an existing namespace name (or "" for none).
_xm_etcd_netns() {
  local ns=$1
  if [ -z "$ns" ] || [ "$ns" = "-" ]; then
    echo ""
  elif [ -e "/run/netns/$ns" ]; then
    echo "$ns"
  elif [ -e "/run/netns/${XM_PREFIX:-}$ns" ]; then
    echo "${XM_PREFIX:-}$ns"
  else
    echo "xm_etcd: no network namespace $ns" >&2
    return 1
  fi
}

# Run a command in the selected/given namespace ("" = here).
_xm_etcd_in() {
  local ns=$1
  shift
  if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

xm_etcd_start() {
  local name=$1 dir=$2 port=$3 ns mode=${5:-tls}
  if [ -z "$name" ] || [ -z "$dir" ] || [ -z "$port" ]; then
    echo "usage: xm_etcd_start NAME DIR PORT [NETNS] [tls|plain]" >&2
    return 2
  fi
  case $mode in tls|plain) ;; *) echo "xm_etcd_start: mode must be tls or plain" >&2; return 2;; esac
  if [ "$port" -lt 1024 ] || [ "$port" -gt 65534 ] || [ "$port" = 2379 ] || [ "$port" = 2378 ] || [ "$port" = 2380 ]; then
    echo "xm_etcd_start: refusing port $port (and $((port + 1)) for peers): 2379/2380 may belong to a packaged etcd" >&2
    return 2
  fi
  ns=$(_xm_etcd_netns "${4:-}") || return 1
  local ip=${XM_ETCD_IP:-}
  if [ -z "$ip" ] && [ -n "$ns" ]; then
    ip=$(ip netns exec "$ns" ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
  fi
  ip=${ip:-127.0.0.1}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local pki=${XM_ETCD_PKI:-$dir/pki} scheme=http
  local -a tlsargs=() ctlargs=()
  if [ "$mode" = tls ]; then
    scheme=https
    if [ ! -f "$pki/ca.crt" ]; then
      local -a sans=("$ip")
      [ "$ip" = 127.0.0.1 ] || sans+=(127.0.0.1)
      bash "$XM_ETCD_SH_DIR/etcd_certs.sh" "$pki" "${sans[@]}" || return 1
    fi
    local srv=${XM_ETCD_SERVER_CERT:-server}
    tlsargs=(--cert-file "$pki/$srv.crt" --key-file "$pki/$srv.key"
      --client-cert-auth --trusted-ca-file "$pki/ca.crt")
    # The readiness probe skips server verification so that a deliberately
    # expired server certificate still counts as "answering".
    ctlargs=(--cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key" --insecure-skip-tls-verify)
  fi
  local url="$scheme://$ip:$port" peer="http://$ip:$((port + 1))" log="$dir/$name.log"
  # A simple command (no function, no subshell) so that $! is etcd itself
  # (ip netns exec execs it).
  local -a pre=()
  [ -n "$ns" ] && pre=(ip netns exec "$ns")
  # shellcheck disable=SC2086
  "${pre[@]}" /usr/bin/etcd --name "$name" --data-dir "$dir/$name.etcd" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$name=$peer" --initial-cluster-state new \
    --initial-cluster-token "xm-$name" \
    --max-txn-ops 4096 --max-request-bytes 10485760 \
    --auto-compaction-retention 0 \
    --quota-backend-bytes "${XM_ETCD_QUOTA_BYTES:-8589934592}" \
    "${tlsargs[@]}" ${XM_ETCD_EXTRA_ARGS:-} \
    </dev/null >>"$log" 2>&1 &
  local pid=$!
  local deadline=$((SECONDS + 10))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "xm_etcd_start: etcd $name exited; log tail:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    if _xm_etcd_in "$ns" env ETCDCTL_API=3 /usr/bin/etcdctl --endpoints "$url" "${ctlargs[@]}" \
        --dial-timeout 1s --command-timeout 1s endpoint health >/dev/null 2>&1; then
      break
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "xm_etcd_start: etcd $name did not answer on $url within 10 s; log tail:" >&2
      tail -n 20 "$log" >&2
      kill -TERM "$pid" 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
  {
    printf 'XM_ETCD_ENDPOINT=%q\n' "$url"
    if [ "$mode" = tls ]; then
      printf 'XM_ETCD_CACERT=%q\nXM_ETCD_CERT=%q\nXM_ETCD_KEY=%q\n' \
        "$pki/ca.crt" "$pki/client.crt" "$pki/client.key"
    else
      printf 'XM_ETCD_CACERT=\nXM_ETCD_CERT=\nXM_ETCD_KEY=\n'
    fi
    printf 'XM_ETCD_NETNS=%q\nXM_ETCD_PID=%q\n' "$ns" "$pid"
  } >"$dir/$name.env"
  # Select it too (effective only when not called in a subshell).
  # shellcheck disable=SC1090
  . "$dir/$name.env"
  echo "$pid"
}

xm_etcd_stop() {
  local pid=$1 comm
  if [ -z "$pid" ]; then
    echo "usage: xm_etcd_stop PID" >&2
    return 2
  fi
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0  # already gone
  if [ "$comm" != etcd ]; then
    echo "xm_etcd_stop: PID $pid is '$comm', not etcd; not signalling it" >&2
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || return 0
  local _ state
  for _ in $(seq 1 100); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
    [ "$state" = Z ] && break
    sleep 0.1
  done
  if [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
    echo "xm_etcd_stop: etcd $pid ignored SIGTERM for 10 s; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null  # reap it when it is our child
  return 0
}

xm_etcd_use() {
  local f="$1/$2.env"
  if [ ! -f "$f" ]; then
    echo "xm_etcd_use: no $f (was xm_etcd_start $2 $1 ... run?)" >&2
    return 1
  fi
  # shellcheck disable=SC1090
  . "$f"
}

xm_etcd_ctl() {
  if [ -z "${XM_ETCD_ENDPOINT:-}" ]; then
    echo "xm_etcd_ctl: no etcd selected (xm_etcd_use DIR NAME)" >&2
    return 2
  fi
  local -a a=(--endpoints "$XM_ETCD_ENDPOINT")
  [ -n "${XM_ETCD_CACERT:-}" ] && a+=(--cacert "$XM_ETCD_CACERT")
  [ -n "${XM_ETCD_CERT:-}" ] && a+=(--cert "$XM_ETCD_CERT" --key "$XM_ETCD_KEY")
  _xm_etcd_in "${XM_ETCD_NETNS:-}" env ETCDCTL_API=3 /usr/bin/etcdctl "${a[@]}" "$@"
}

xm_etcd_put() { xm_etcd_ctl put -- "$1" "$2"; }
xm_etcd_get() { xm_etcd_ctl get "${@:2}" -- "$1"; }
xm_etcd_del() { xm_etcd_ctl del "${@:2}" -- "$1"; }

xm_mesh_sim() {
  if [ -z "${XM_ETCD_ENDPOINT:-}" ]; then
    echo "xm_mesh_sim: no etcd selected (xm_etcd_use DIR NAME)" >&2
    return 2
  fi
  local -a a=(--endpoint "$XM_ETCD_ENDPOINT")
  [ -n "${XM_ETCD_CACERT:-}" ] && a+=(--cacert "$XM_ETCD_CACERT")
  [ -n "${XM_ETCD_CERT:-}" ] && a+=(--cert "$XM_ETCD_CERT" --key "$XM_ETCD_KEY")
  _xm_etcd_in "${XM_ETCD_NETNS:-}" /usr/bin/python3 "$XM_MESH_SIM" "$1" "${a[@]}" "${@:2}"
}
