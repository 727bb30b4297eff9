#!/bin/sh
# tests/fuzz/libfuzzer.sh TARGET SCRATCH RUNS MAX_LEN DIR...: CTest's
# libfuzzer.NAME. Runs the libFuzzer target TARGET over every input in the
# DIRs (read only), then RUNS mutated executions, with a fixed seed; the
# inputs it adds go to SCRATCH, emptied first. A crash, a sanitizer report,
# a leak or an input running for more than a minute fails.
set -eu
target=$1
scratch=$2
runs=$3
max_len=$4
shift 4
rm -rf "$scratch"
mkdir -p "$scratch"
n=$(find "$@" -type f | wc -l)
exec "$target" -seed=1 -runs=$((n + runs)) -max_len="$max_len" -timeout=60 \
	-print_final_stats=1 "$scratch" "$@"
