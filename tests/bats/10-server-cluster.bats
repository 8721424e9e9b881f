#!/usr/bin/env bats
# 10-server-cluster.bats - a three-server cluster on 127.0.0.2-4 through
# elections, a leader killed mid-write, a restart, a join and a removal.
#
# The tests run in order on one cluster (started once per file, as
# starting servers under ASan is the slow part); each leaves the cluster
# healthy for the next, and each says what it expects to find.

load helpers

setup_file() {
	dsc_setup_file
	start_cluster 3
}
teardown_file() { stop_all; }
teardown() { dump_logs_on_failure; }

# Writes PREFIX/1..COUNT one by one through any member and appends each
# acknowledged key to ACKED; a write that fails has an unknown outcome and
# is not listed. Runs in the background while the leader is killed.
writer() {
	local acked=$1 prefix=$2 count=$3 i key
	for i in $(seq 1 "$count"); do
		key=$prefix/$(printf '%04d' "$i")
		if put_key "$key" "v$i" >/dev/null 2>&1; then
			echo "$key" >>"$acked"
		fi
	done
}

@test "three servers elect exactly one leader and agree on it" {
	local leader n addr
	leader=$(wait_for_leader)
	addr=$(srv_addr "$leader")
	for n in 1 2 3; do
		run -0 peers_of "$n"
		[ "${#lines[@]}" -eq 3 ]
		[ "$(grep -c ' voter ' <<<"$output")" -eq 3 ]
		[ "$(grep -c ' leader$' <<<"$output")" -eq 1 ]
		grep -qx "s$leader voter leader" <<<"$output"
		run -0 rpc "$n" status.leader
		[ "$(jpy 'd["leader"]' <<<"$output")" = "$addr" ]
		[ "$(jpy 'd["leader_name"]' <<<"$output")" = "s$leader" ]
	done
}

@test "a write through a follower is readable on every server" {
	local leader f n
	leader=$(wait_for_leader)
	f=$((leader % 3 + 1))
	run -0 rpc "$f" -w kv.put '{"Key":"via/follower","Value":"aGk="}'
	[ "$(jpy 'd["ok"]' <<<"$output")" = true ]
	[ "$(jpy 'd["index"]' <<<"$output")" -gt 0 ]
	for n in 1 2 3; do
		# A default read is linearizable, on a follower too.
		run -0 rpc "$n" kv.get '{"Key":"via/follower"}'
		[ "$(jpy 'd["entries"][0]["Value"]' <<<"$output")" = aGk= ]
	done
	wait_converged
}

@test "kill -9 the leader while a client writes: a new leader, no acknowledged write lost" {
	local old new acked=$BATS_FILE_TMPDIR/acked at_kill wpid i survivors
	old=$(wait_for_leader)
	: >"$acked"
	writer "$acked" kill 40 3>&- &
	wpid=$!
	for i in $(seq 1 600); do
		[ "$(wc -l <"$acked")" -lt 10 ] || break
		sleep 0.1
	done
	[ "$(wc -l <"$acked")" -ge 10 ]
	kill9_server "$old"
	at_kill=$(wc -l <"$acked")
	wait "$wpid"
	echo "$old" >"$BATS_FILE_TMPDIR/killed"

	survivors=$(for i in 1 2 3; do [ "$i" = "$old" ] || echo "$i"; done)
	# shellcheck disable=SC2086 # a list of numbers
	new=$(wait_for_leader "$DSC_LEADER_WAIT" $survivors)
	[ "$new" != "$old" ]
	# Writes went on after the kill.
	[ "$(wc -l <"$acked")" -gt "$at_kill" ]
	# shellcheck disable=SC2086
	wait_converged $survivors
	# shellcheck disable=SC2086
	expect_keys "$acked" $survivors
}

@test "the old leader, restarted, catches up" {
	local old
	old=$(cat "$BATS_FILE_TMPDIR/killed")
	restart_server "$old"
	wait_for_leader >/dev/null
	put_key after/restart yes
	echo after/restart >>"$BATS_FILE_TMPDIR/acked"
	wait_converged 1 2 3
	expect_keys "$BATS_FILE_TMPDIR/acked" 1 2 3
}

# Does server N's view of the cluster list sNAME as a voter?
is_voter() { peers_of "$1" 2>/dev/null | grep -q "^s$2 voter "; }
# ... or not at all?
is_gone() { ! peers_of "$1" 2>/dev/null | grep -q "^s$2 "; }

@test "a fourth server joins as a voter and gets the data" {
	local leader
	start_server 4 --join "$(srv_addr 1)" --join "$(srv_addr 2)" \
	    --join "$(srv_addr 3)"
	set_members 1 2 3 4
	leader=$(wait_for_leader)
	wait_until 30 is_voter "$leader" 4
	run -0 peers_of "$leader"
	[ "${#lines[@]}" -eq 4 ]
	write_keys join 1 5
	wait_converged 1 2 3 4
	expect_keys "$BATS_FILE_TMPDIR/acked" 4
}

@test "SIGTERM on the leader exits 0, even right after a follower stopped" {
	local leader f bad=
	# The leader hands over to its most caught-up follower before it
	# exits; one that has just gone must not keep it waiting for ever.
	# Each follower in turn, so that whichever it would pick is tried.
	for f in $(members); do
		leader=$(wait_for_leader)
		[ "$f" != "$leader" ] || continue
		stop_server "$f"
		DSC_STOP_WAIT=15 stop_server "$leader" ||
		    bad="$bad s$leader(after s$f stopped)"
		[ "$(srv_status "$leader")" = 0 ] ||
		    bad="$bad s$leader(exit $(srv_status "$leader"))"
		# Both back, whatever happened, for the tests after this one.
		restart_server "$f"
		restart_server "$leader"
	done
	wait_for_leader >/dev/null
	wait_converged
	[ -z "$bad" ] || { echo "leaders that did not stop cleanly:$bad"; false; }
}

@test "a server is removed, and the rest go on" {
	local leader r n rest
	leader=$(wait_for_leader)
	# A follower among the first three.
	for r in 1 2 3; do
		[ "$r" = "$leader" ] || break
	done
	run -0 rpc_any operator.remove_server "{\"Name\":\"s$r\"}"
	rest=$(for n in 1 2 3 4; do [ "$n" = "$r" ] || echo "$n"; done)
	# shellcheck disable=SC2086 # a list of numbers
	set_members $rest
	wait_until 30 is_gone "$leader" "$r"
	run -0 peers_of "$leader"
	[ "${#lines[@]}" -eq 3 ]
	stop_server "$r"
	write_keys removed 1 5
	# shellcheck disable=SC2086
	wait_converged $rest
	# shellcheck disable=SC2086
	expect_keys "$BATS_FILE_TMPDIR/acked" $rest
	# A new election among the three still works.
	leader=$(wait_for_leader)
	kill9_server "$leader"
	rest=$(for n in $rest; do [ "$n" = "$leader" ] || echo "$n"; done)
	# shellcheck disable=SC2086
	set_members $rest
	run -0 put_key removed/after-kill yes
}
