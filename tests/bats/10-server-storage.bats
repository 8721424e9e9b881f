#!/usr/bin/env bats
# 10-server-storage.bats - what a server does with its data dir damaged
# (DESIGN.md 4, TESTING.md 4(f)): a torn tail of the open WAL segment is
# repaired at start; a flipped byte with records after it stops the server
# with exit 4 and a message naming file and offset; and a follower whose
# data dir is wiped is restored from the leader's snapshot. Three servers
# that keep only 4 log entries behind a snapshot, so a wiped follower
# cannot be served from the log.
#
# The tests run in order on one cluster; a damaged server is looked at
# with tests/tools/walcheck only while it is stopped.

load helpers

setup_file() {
	dsc_setup_file
	[ -x "$DSC_WALCHECK" ] || { echo "# not built: $DSC_WALCHECK" >&3; return 1; }
	start_cluster 3 --snapshot-trailing 4
}
teardown_file() { stop_all; }
teardown() { dump_logs_on_failure; }

# A follower of the current leader, not yet damaged by an earlier test.
follower() {
	local leader n
	leader=$(wait_for_leader)
	for n in 1 2 3; do
		[ "$n" = "$leader" ] || [ -e "$(srv_dir "$n")/damaged" ] ||
		    { echo "$n"; return 0; }
	done
	return 1
}

# last_segment N: "FILE OFFSET" of server N's last WAL segment, where its
# records end (walcheck's summary line).
last_segment() {
	"$DSC_WALCHECK" "$(srv_data "$1")" |
	    sed -n "s/.*last '\\(wal\\/[^']*\\)' ends at offset \\([0-9]*\\).*/\\1 \\2/p"
}

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xff]))
EOF
}

@test "a truncated WAL tail is repaired at start, and the server catches up" {
	local f seg off repair
	write_keys torn 1 20
	f=$(follower)
	wait_converged
	stop_server "$f"
	read -r seg off < <(last_segment "$f")
	[ -n "$seg" ] && [ "$off" -gt 64 ]
	# A torn write: the last record loses its last 7 bytes.
	truncate -s $((off - 7)) "$(srv_data "$f")/$seg"
	run -1 "$DSC_WALCHECK" "$(srv_data "$f")"
	repair=$(sed -n 's/^walcheck: repair needed: //p' <<<"$output")
	[ -n "$repair" ]

	restart_server "$f"
	write_keys torn 21 25
	wait_converged
	expect_keys "$BATS_FILE_TMPDIR/acked" 1 2 3
	# It logged what it repaired, in walcheck's words.
	grep -qF -- "$repair" "$(srv_log "$f")"
}

@test "a flipped byte with records after it stops the server with exit 4" {
	local f seg off
	write_keys flip 1 20
	f=$(follower)
	wait_converged
	stop_server "$f"
	touch "$(srv_dir "$f")/damaged"
	echo "$f" >"$BATS_FILE_TMPDIR/damaged"
	read -r seg off < <(last_segment "$f")
	[ "$off" -gt 1000 ]
	# Half-way through: a record with many records after it.
	flip_byte "$(srv_data "$f")/$seg" $((off / 2))
	run -4 "$DSC_WALCHECK" "$(srv_data "$f")"

	run -4 timeout -k 5 60 "$DSC_SERVER" --data-dir "$(srv_data "$f")" \
	    --key-file "$DSC_KEY" "${DSC_TUNING[@]}"
	[[ "$output" == *"${seg#wal/}"* ]]
	[[ "$output" == *"offset"* ]]
	# The other two go on.
	run -0 put_key flip/after ok
}

@test "a flipped byte in a sealed segment stops the server with exit 4" {
	"$DSC_SERVER" --help 2>&1 | grep -q -- --wal-segment-size ||
	    skip "dsc-server has no --wal-segment-size: one 64 MiB segment"
	local seg off
	set_members 5
	start_server 5 --bootstrap-expect 1 --wal-segment-size 4096
	write_keys sealed 1 60
	# Those went to this one-server cluster, not to servers 1-3, whose
	# acknowledged writes the later tests look for.
	sed -i '/^sealed\//d' "$BATS_FILE_TMPDIR/acked"
	stop_server 5
	seg=$(find "$(srv_data 5)/wal" -name '*.wal' | sort | head -n 1)
	[ "$(find "$(srv_data 5)/wal" -name '*.wal' | wc -l)" -ge 2 ]
	off=$(($(stat -c %s "$seg") / 2))
	flip_byte "$seg" "$off"
	run -4 timeout -k 5 60 "$DSC_SERVER" --data-dir "$(srv_data 5)" \
	    --key-file "$DSC_KEY" "${DSC_TUNING[@]}"
	[[ "$output" == *"$(basename "$seg")"* ]]
	set_members 1 2 3
}

@test "a snapshot is taken, and a wiped follower is restored from it" {
	local leader f snap n joins=()
	leader=$(wait_for_leader 30 1 2 3)
	write_keys snap 1 10
	run -0 rpc "$leader" operator.snapshot
	snap=$(jpy 'd["snapshot_index"]' <<<"$output")
	[ "$snap" -gt 0 ]
	ls "$(srv_data "$leader")"/snap/*.snap
	write_keys snap 11 20

	# The damaged server leaves the cluster and comes back empty.
	f=$(cat "$BATS_FILE_TMPDIR/damaged")
	run -0 rpc_any operator.remove_server "{\"Name\":\"s$f\"}"
	rm -rf "$(srv_data "$f")"
	for n in 1 2 3; do
		[ "$n" = "$f" ] || joins+=(--join "$(srv_addr "$n")")
	done
	start_server "$f" --snapshot-every 100000 "${joins[@]}"
	wait_until 60 voter_in "$leader" "$f"
	wait_converged 1 2 3
	expect_keys "$BATS_FILE_TMPDIR/acked" "$f"
	# What it holds came as a snapshot: it takes none of its own.
	ls "$(srv_data "$f")"/snap/*.snap
}

voter_in() { peers_of "$1" 2>/dev/null | grep -q "^s$2 voter "; }
