#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time over a copy of the seed corpus.
# FUZZ_SECONDS overrides the budget (default 60). Fails on any crash.
set -euo pipefail
target=$1 seeds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/ 2>/dev/null || true
"$target" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=3000 -print_final_stats=1 "$work" 2>&1 | tail -20
