#!/bin/bash
# mutants.sh - show that the simulator can fail: run it against Raft cores
# with one planted bug each and require that every bug is caught.
#
# Usage: tests/sim/mutants.sh BUILD_DIR N...
#
# For each N, BUILD_DIR/mutant-N/dsc-sim (libcommon built with
# -DRAFT_MUTANT=N, see libcommon/raft_internal.h) runs the CI seed budget
# from a fixed base and stops at the first violating seed. A mutant is
# "passed" when it is caught. Ends with "N passed, N failed"; exits 1 if
# any mutant survives or cannot run.
#
# Environment: MUTANT_SEEDS (default 1000), MUTANT_BASE (default fixed),
# MUTANT_JOBS (default 2).
set -u

usage() {
	echo 'usage: tests/sim/mutants.sh BUILD_DIR N...' >&2
	exit 2
}

[ $# -ge 2 ] || usage
build=$1
shift

seeds=${MUTANT_SEEDS:-1000}
base=${MUTANT_BASE:-0x5eedfacade}
jobs=${MUTANT_JOBS:-2}

# The mutants planted in libcommon/raft*.c, by number.
names=(
	''
	'vote granted without the up-to-date log check'
	'leader commits a previous-term entry by counting replicas'
	'changed term or vote not reported for saving'
	'leader or candidate adopts a higher term without stepping down'
	'ready hands out entries past the commit index'
	'leader skips saving its new entries but counts them as saved'
	'follower truncates after the previous index even when entries match'
	'leader answers ReadIndex without a heartbeat round'
)

passed=0
failed=0
for n in "$@"; do
	name=${names[$n]:-unknown mutant}
	bin=$build/mutant-$n/dsc-sim
	if [ ! -x "$bin" ]; then
		echo "mutant $n ($name): not built: $bin"
		failed=$((failed + 1))
		continue
	fi
	out=$("$bin" --seeds "$seeds" --base "$base" --until-violation \
		--jobs "$jobs" 2>/dev/null)
	line=$(printf '%s\n' "$out" | grep '^sim: first violation: ' | tail -n 1)
	if [ -n "$line" ]; then
		# "sim: first violation: seed S after K seeds"
		rest=${line#sim: first violation: seed }
		seed=${rest%% after *}
		count=${rest#* after }
		count=${count%% seeds}
		why=$(printf '%s\n' "$out" | grep '^FAIL seed ' | head -n 1)
		why=${why#*: step }
		echo "mutant $n ($name): caught by seed $seed after $count seeds"
		echo "    step $why"
		passed=$((passed + 1))
	else
		echo "mutant $n: NOT caught ($name; $seeds seeds from base $base)"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
