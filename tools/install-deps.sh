#!/usr/bin/env bash
# Installs every Debian 12 package xdpmesh needs to build, demo and test.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

build_pkgs=(
  meson ninja-build pkg-config g++ clang llvm
  libxdp-dev libbpf-dev libelf-dev zlib1g-dev linux-libc-dev
  libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libssl-dev
  libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libbenchmark-dev
)
run_pkgs=(iproute2 procps ethtool iputils-ping etcd-server etcd-client python3-yaml)
test_pkgs=(tshark libclang-rt-14-dev python3 curl wireguard-go wireguard-tools python3-scapy python3-cryptography)
perf_pkgs=(iperf3)

want=("${build_pkgs[@]}" "${run_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  perf) want+=("${test_pkgs[@]}" "${perf_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|perf]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; the answer does not matter for root.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all ${#want[@]} packages present"
