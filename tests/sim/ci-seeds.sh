#!/bin/bash
# ci-seeds.sh - re-pick the fixed CI seeds of sim.c (ci_seeds[]).
#
# Usage: tests/sim/ci-seeds.sh DSC_SIM [CANDIDATES [PICK]]
#
# Traces CANDIDATES seeds (default 200) with DSC_SIM, notes which of the
# features below each trace shows, then picks PICK seeds (default 32):
# first a greedy cover of every feature, then the richest seeds, keeping
# 3- and 5-node clusters even. Prints the picks as C array lines to paste
# into sim.c. Run it after a change that alters what seeds do.
set -eu

usage() {
	echo 'usage: tests/sim/ci-seeds.sh DSC_SIM [CANDIDATES [PICK]]' >&2
	exit 2
}

[ $# -ge 1 ] || usage
sim=$1
candidates=${2:-200}
pick=${3:-32}

# feature name, then the extended regular expression that shows it
features='
n3|: 3 nodes,
n5|: 5 nodes,
noprevote|pre-vote off
nocq|check-quorum off
skew|clock skew up to [1-9]
p_isolate|PARTITION isolate leader
p_split|PARTITION split
p_bridge|PARTITION bridge
p_oneway|PARTITION one-way
p_nosend|cannot send
p_norecv|cannot receive
p_link|PARTITION link
crash|CRASH n
crash_lose|losing unsynced
crash_vote|crash right after
pause|PAUSE n
c_add|proposes add learner
c_promote|proposes promote
c_demote|proposes demote
c_remove|proposes remove
c_self|CONF n([0-9]+) proposes (remove|demote) n\1 
transfer|TRANSFER
snap_install|restored snapshot
drop|DROP
dup|DUP
delay|DELAY
step_down_removed|no longer a voter
step_down_cq|no quorum heard
read_fail|read [0-9]+ at n[0-9]+ failed
decom|decommission'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in $(seq 1 "$candidates"); do
	seed=$(printf '0x%016x' $(((i * 2654435761) % 4294967291)))
	"$sim" --seed "$seed" --trace >"$tmp/trace" || true
	line=$seed
	while IFS='|' read -r name re; do
		[ -n "$name" ] || continue
		if grep -Eq -e "$re" "$tmp/trace"; then
			line="$line $name"
		fi
	done <<<"$features"
	echo "$line"
done >"$tmp/features"

awk -v pick="$pick" '
{
	seed[NR] = $1
	for (i = 2; i <= NF; i++) {
		has[NR, $i] = 1
		all[$i] = 1
	}
	nf[NR] = NF - 1
	size[NR] = has[NR, "n5"] ? 5 : 3
}
END {
	n = NR
	# Greedy cover of every feature.
	for (;;) {
		best = 0
		bestnew = 0
		for (s = 1; s <= n; s++) {
			if (taken[s])
				continue
			new = 0
			for (f in all)
				if (has[s, f] && !covered[f])
					new++
			if (new > bestnew) {
				bestnew = new
				best = s
			}
		}
		if (best == 0)
			break
		taken[best] = 1
		count++
		by[size[best]]++
		for (f in all)
			if (has[best, f])
				covered[f] = 1
	}
	# Fill with the richest seeds, alternating cluster sizes.
	while (count < pick) {
		want = by[3] <= by[5] ? 3 : 5
		best = 0
		for (s = 1; s <= n; s++)
			if (!taken[s] && size[s] == want &&
			    (best == 0 || nf[s] > nf[best]))
				best = s
		if (best == 0)
			break
		taken[best] = 1
		count++
		by[want]++
	}
	for (s = 1; s <= n; s++)
		if (taken[s])
			printf "\t%s,\t/* %d nodes */\n", seed[s], size[s]
	for (f in all)
		nall++
	for (f in covered)
		ncov++
	printf "ci-seeds: %d seeds cover %d of %d features seen\n", count,
	    ncov, nall > "/dev/stderr"
}' "$tmp/features"
