#!/usr/bin/env bash
# Our encryption stages (perf/crypto_bench) against `openssl speed`, on the
# same core, each of our benchmarks right after its openssl figure, so the
# ratios hold on a noisy machine even when absolute figures drift:
#   seal rows vs `openssl speed -evp CIPHER`, open rows vs `openssl speed
#   -decrypt -evp CIPHER`, at 1420 and 64 bytes (1420 = our inner IP packet;
#   openssl's buffer is the same size).
# openssl speed -evp streams one keyed context over all its blocks (no
# per-message key setup or tag check): the cipher's ceiling, not a per-packet
# implementation. Both sides divide by CPU time (openssl's default user time,
# Google Benchmark's CPU time), so preemption costs neither side; a busy
# hyperthread sibling or VM steal still slows both, hence the pairing.
# Usage: perf/crypto_vs_openssl.sh BUILD/perf/crypto_bench
#   CRYPTO_CPU (core, default 1), OSSL_SECONDS (default 3),
#   BENCH_MIN_TIME (seconds per benchmark, default 0.5), BENCH_REPS (default 3: medians)
# Not part of the test suite: it measures, it does not check.
set -euo pipefail
BENCH=${1:?usage: $0 path/to/crypto_bench}
[ -x "$BENCH" ] || { echo "crypto_vs_openssl: $BENCH is not an executable" >&2; exit 1; }
for tool in openssl jq taskset awk; do
  command -v $tool >/dev/null || { echo "crypto_vs_openssl: $tool missing" >&2; exit 1; }
done
CPU=${CRYPTO_CPU:-1}
OSSL_SECONDS=${OSSL_SECONDS:-3}
MIN_TIME=${BENCH_MIN_TIME:-0.5}
REPS=${BENCH_REPS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ossl [-decrypt] CIPHER BYTES: bytes/s. openssl prints "The 'numbers' are in
# 1000s of bytes per second processed.", a "type  N bytes" header, then
# "NAME  VALUEk".
ossl() {
  local dir=()
  if [ "$1" = -decrypt ]; then dir=(-decrypt); shift; fi
  local out
  out=$(taskset -c "$CPU" openssl speed "${dir[@]}" -evp "$1" -bytes "$2" -seconds "$OSSL_SECONDS" 2>/dev/null)
  grep -q "in 1000s of bytes per second" <<<"$out" || { echo "crypto_vs_openssl: unexpected openssl output" >&2; exit 1; }
  awk '/^type/ { getline; v = $NF; if (v !~ /^[0-9.]+k$/) exit 1; sub(/k$/, "", v); printf "%.0f\n", v * 1000; found = 1 }
       END { if (!found) exit 1 }' <<<"$out"
}

# run_bench FILTER OUT.json: medians over BENCH_REPS repetitions; fails on a benchmark's error.
run_bench() {
  taskset -c "$CPU" "$BENCH" --benchmark_filter="$1" --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
    --benchmark_out="$2" --benchmark_out_format=json >&2
  if jq -e '[.benchmarks[] | select(.error_occurred == true)] | length > 0' "$2" >/dev/null; then
    jq -r '.benchmarks[] | select(.error_occurred == true) | "crypto_vs_openssl: \(.name): \(.error_message)"' "$2" >&2
    exit 1
  fi
}

# bench FILE NAME FIELD: the median (the only run when BENCH_REPS=1).
bench() {
  jq -r --arg n "$2" --arg f "$3" '[.benchmarks[] | select(.run_name == $n)]
    | (map(select(.aggregate_name == "median")) + map(select(.run_type == "iteration")))[0][$f] // empty' "$1"
}

# row LABEL BENCHMARK [-decrypt] CIPHER BYTES: openssl, then our benchmark
# right after it, so that the pair sees the same machine (on a shared VM the
# core's speed drifts by up to 2x over a minute; within a pair it does not).
row() {
  local label=$1 name=$2
  shift 2
  local bytes=${*: -1}
  echo "openssl speed $* / $name on cpu $CPU ..." >&2
  local ossl_bps ours_bps ours_pps
  ossl_bps=$(ossl "$@")
  run_bench "^$name\$" "$TMP/row.json"
  ours_bps=$(bench "$TMP/row.json" "$name" bytes_per_second)
  ours_pps=$(bench "$TMP/row.json" "$name" items_per_second)
  [ -n "$ours_bps" ] || { echo "crypto_vs_openssl: no result for $name" >&2; exit 1; }
  awk -v l="$label" -v o="$ours_bps" -v p="$ours_pps" -v s="$ossl_bps" -v b="$bytes" 'BEGIN {
    printf "%-30s %10.2f %10.2f %8.0f%% %12.2f %12.2f\n", l, o * 8 / 1e9, s * 8 / 1e9, 100 * o / s, p / 1e6, s / b / 1e6 }' >>"$TMP/table"
}

for size in 1420 64; do
  row "WireGuard seal $size B"       "BM_WireguardSeal/$size" chacha20-poly1305 "$size"
  row "WireGuard open $size B"       "BM_WireguardOpen/$size" -decrypt chacha20-poly1305 "$size"
  row "ESP AES-128-GCM seal $size B" "BM_EspSeal/$size"       aes-128-gcm "$size"
  row "ESP AES-128-GCM open $size B" "BM_EspOpen/$size"       -decrypt aes-128-gcm "$size"
  row "raw ChaChaPoly::seal $size B" "BM_ChaChaPolyRaw/$size" chacha20-poly1305 "$size"
  row "raw AesGcm::seal $size B"     "BM_AesGcmRaw/$size"     aes-128-gcm "$size"
done
run_bench '^BM_(CopyOnly|WireguardOpen|EspOpen)/' "$TMP/copy.json"

echo
echo "One core (cpu $CPU), batches of 64 through the stage functions; Gbit/s of inner IP packet bytes;"
echo "each row's openssl figure measured just before it (open rows: openssl speed -decrypt)."
printf "%-30s %10s %10s %9s %12s %12s\n" case "ours Gb/s" "ossl Gb/s" ratio "ours Mpkt/s" "ossl Mpkt/s"
cat "$TMP/table"

# The open figures include restoring their 64 ciphertexts each batch (measured together, one run).
echo
for size in 1420 64; do
  awk -v c="$(bench "$TMP/copy.json" "BM_CopyOnly/$size" cpu_time)" \
      -v w="$(bench "$TMP/copy.json" "BM_WireguardOpen/$size" cpu_time)" \
      -v e="$(bench "$TMP/copy.json" "BM_EspOpen/$size" cpu_time)" -v s="$size" 'BEGIN {
    printf "ciphertext restore (BM_CopyOnly/%s): %.2f us per batch = %.0f%% of WireGuard open, %.0f%% of ESP open\n",
           s, c / 1e3, 100 * c / w, 100 * c / e }'
done
