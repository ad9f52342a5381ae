#!/bin/bash
# etcd_certs.sh DIR [SAN-IP...]: test PKI for etcd with client-certificate auth,
# made with the openssl CLI (EC P-256 keys, SHA-256). SAN-IPs default to
# 127.0.0.1. Files written to DIR (mode 0600 keys):
#
#   ca.crt ca.key                      the CA etcd trusts (--trusted-ca-file)
#   server.crt server.key              etcd server cert, CN=etcd-server, SAN = the
#                                      given IPs + DNS localhost; EKU serverAuth AND
#                                      clientAuth (etcd's own JSON gateway dials its
#                                      gRPC port with this cert)
#   client.crt client.key              client cert CN=remote (Cilium's read-only
#                                      user name), EKU clientAuth, signed by ca
#   wrong-ca.crt wrong-ca.key          a second, unrelated CA
#   wrong-client.crt wrong-client.key  CN=remote, signed by wrong-ca (etcd refuses it)
#   expired-client.crt/.key            CN=remote, signed by ca, valid from 30 days
#                                      ago until 1 day ago (`openssl verify`:
#                                      "certificate has expired")
#   expired-server.crt/.key            like server.crt (same SANs), expired the same way
#
# Valid certs are valid from now for 3650 days. Expired ones are issued
# with `openssl ca -startdate/-enddate` (openssl 3.0's `x509 -req` cannot set
# a start date in the past). Re-running overwrites everything in DIR.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [SAN-IP...]" >&2
  exit 2
fi
dir=$1
shift
ips=("$@")
[ ${#ips[@]} -gt 0 ] || ips=(127.0.0.1)

mkdir -p "$dir"
work=$(mktemp -d "$dir/.pki.XXXXXX")
trap 'rm -rf "$work"' EXIT

san="DNS:localhost"
for ip in "${ips[@]}"; do san="$san,IP:$ip"; done

# Key + CSR: newkey OUT_BASE CN
newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$1.key" 2>/dev/null
  chmod 600 "$dir/$1.key"
  openssl req -new -key "$dir/$1.key" -subj "/CN=$2" -out "$work/$1.csr"
}

# Self-signed CA: ca OUT_BASE CN
ca() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$1.key" 2>/dev/null
  chmod 600 "$dir/$1.key"
  openssl req -x509 -new -key "$dir/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$dir/$1.crt"
}

ext_server() {
  cat <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
}
ext_client() {
  cat <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
}

# Valid leaf: sign OUT_BASE CA_BASE EXTFUNC
sign() {
  "$3" >"$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$dir/$2.crt" -CAkey "$dir/$2.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
    -extfile "$work/$1.ext" -out "$dir/$1.crt" 2>/dev/null
}

# Expired leaf, valid [now-30d, now-1d]: sign_expired OUT_BASE CA_BASE EXTFUNC
sign_expired() {
  local cadir="$work/ca-$1"
  mkdir -p "$cadir/new"
  : >"$cadir/index.txt"
  openssl rand -hex 16 >"$cadir/serial"
  cat >"$cadir/ca.cnf" <<EOF
[ca]
default_ca = sim
[sim]
dir = $cadir
database = $cadir/index.txt
new_certs_dir = $cadir/new
serial = $cadir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
EOF
  "$3" >"$work/$1.ext"
  openssl ca -batch -notext -config "$cadir/ca.cnf" \
    -cert "$dir/$2.crt" -keyfile "$dir/$2.key" \
    -startdate "$(date -u -d '-30 days' +%Y%m%d%H%M%SZ)" \
    -enddate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" \
    -extfile "$work/$1.ext" -in "$work/$1.csr" -out "$dir/$1.crt" 2>/dev/null
}

ca ca xdpmesh-test-ca
ca wrong-ca xdpmesh-wrong-ca

newkey server etcd-server && sign server ca ext_server
newkey client remote && sign client ca ext_client
newkey wrong-client remote && sign wrong-client wrong-ca ext_client
newkey expired-client remote && sign_expired expired-client ca ext_client
newkey expired-server etcd-server && sign_expired expired-server ca ext_server

# Self-check: the good ones verify, the bad ones fail for the intended reason.
for c in server client; do
  openssl verify -CAfile "$dir/ca.crt" "$dir/$c.crt" >/dev/null
done
for c in expired-client expired-server; do
  out=$(openssl verify -CAfile "$dir/ca.crt" "$dir/$c.crt" 2>&1 || true)
  if [[ $out != *"certificate has expired"* ]]; then
    echo "etcd_certs.sh: $c.crt is not reported as expired" >&2
    exit 1
  fi
done
if openssl verify -CAfile "$dir/ca.crt" "$dir/wrong-client.crt" >/dev/null 2>&1; then
  echo "etcd_certs.sh: wrong-client.crt verifies against ca.crt" >&2
  exit 1
fi
