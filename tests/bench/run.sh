#!/bin/sh
# run.sh - what `make bench` runs: installs what is missing, builds the
# plain optimized flavour, runs bench.py within what is left of ten minutes.
#
# Usage: tests/bench/run.sh BUILDROOT [MAKE]
# The table lands in BUILDROOT/bench/table.md, raw results in
# BUILDROOT/bench/results.jsonl (tests/bench/README.md).
set -eu

root=${1:?usage: run.sh BUILDROOT [MAKE]}
make=${2:-make}
# The whole run is bounded; installing and building take their share.
total=${BENCH_TOTAL_SECS:-600}
start=$(date +%s)

left() { echo $((total - ($(date +%s) - start))); }

# The project's build dependencies, then etcd and its client.
timeout 240 .ci/deps.sh
timeout "$(($(left) > 300 ? 240 : $(left) / 2))" \
    .ci/deps.sh etcd-server etcd-client python3

# Optimized, never sanitized: the numbers are the product's. A program
# that does not build (yet) leaves its rows out; bench.py says which.
if ! "$make" -k --no-print-directory SANITIZE= BUILDROOT="$root" all \
    "$root/tests/tools/dsc-load" "$root/tests/tools/dsc-rpc" \
    "$root/tests/tools/fsync-probe"; then
	echo "bench: warning: not everything built; measuring what did" >&2
fi

budget=$(($(left) - 30))
if [ "$budget" -lt 120 ]; then
	echo "bench: error: only ${budget}s left of ${total}s after install" \
	    "and build" >&2
	exit 3
fi
# bench.py stops everything it started on SIGTERM; KILL is the backstop.
exec timeout -k 10 "$((budget + 20))" python3 tests/bench/bench.py \
    --build "$root" --out "$root/bench" --budget "$budget"
