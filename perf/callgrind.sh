#!/usr/bin/env bash
# Instructions per packet of the pipeline, from callgrind: runs N1 and N2
# batches of 64 and divides the difference, so setup cost cancels out.
# Stable on noisy machines (counts instructions, not time).
set -euo pipefail
BUILD=${1:-build}
N1=200 N2=1200
count() {
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$BUILD/perf/pipeline_bench" --fixed-batches "$1" "$2" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
  rm -f "$out"
}
printf '%-12s %s\n' case instructions/packet
for c in encap-64 encap-1400 decap-64 decap-1400 service-egress-64; do
  a=$(count $N1 "$c")
  b=$(count $N2 "$c")
  printf '%-12s %s\n' "$c" "$(( (b - a) / ((N2 - N1) * 64) ))"
done
