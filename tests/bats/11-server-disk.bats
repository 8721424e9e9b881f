#!/usr/bin/env bats
# 11-server-disk.bats - a full disk never leads to an acknowledgement, and
# the server recovers by itself when space returns (DESIGN.md 4, TESTING.md
# 4(e)). One server whose data dir is a 2 MiB tmpfs with 64 KiB WAL
# segments, so filling the rest of the disk makes the next segment roll
# fail. Needs root for the mount; skipped otherwise.

load helpers

setup_file() {
	dsc_setup_file
	set_members 1
	DISK=$(srv_data 1)
	export DISK
	mkdir -p "$DISK"
	if [ "$(id -u)" -ne 0 ] ||
	    ! mount -t tmpfs -o size=2m dscdisk "$DISK" 2>/dev/null; then
		touch "$BATS_FILE_TMPDIR/no-tmpfs"
		return 0
	fi
	pick_port "$(srv_ip 1)" >"$(srv_dir 1)/port"
	first_start 1 --bootstrap-expect 1 --wal-segment-size 65536 \
	    --snapshot-every 0
	wait_for_leader "$DSC_LEADER_WAIT" >/dev/null
}

teardown_file() {
	stop_all
	[ -e "$BATS_FILE_TMPDIR/no-tmpfs" ] || umount "$DISK" 2>/dev/null || true
}

setup() {
	[ ! -e "$BATS_FILE_TMPDIR/no-tmpfs" ] || skip "needs root and tmpfs"
}
teardown() { dump_logs_on_failure; }

# A 2 KiB value, so a 64 KiB segment fills in a few dozen writes.
VALUE=$(head -c 1536 /dev/zero | tr '\0' 'x' | base64 -w0)

put_big() {
	rpc 1 -t 3 -w kv.put "{\"Key\":\"$1\",\"Value\":\"$VALUE\"}"
}

@test "with the disk full, writes fail and nothing failed is acknowledged" {
	local i rc=0
	put_big before >/dev/null
	echo before >"$BATS_FILE_TMPDIR/acked"
	# Fill every byte the WAL has not preallocated.
	dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null || true
	for i in $(seq 1 200); do
		rc=0
		put_big "k$i" >/dev/null 2>"$BATS_FILE_TMPDIR/err" || rc=$?
		[ "$rc" -eq 0 ] || break
		echo "k$i" >>"$BATS_FILE_TMPDIR/acked"
	done
	# A failure is temporary (exit 3), never a success.
	[ "$rc" -eq 3 ]
	# Once stalled, new writes are refused at once, saying why.
	run -3 put_big refused
	[[ "$output" == *"cannot write its log"* ]]
	# The server is still up and answers reads.
	srv_running 1
	rpc 1 kv.get '{"Key":"before","consistency":"stale"}' >/dev/null
}

@test "when space returns the server recovers and every acknowledged write is there" {
	rm -f "$DISK/filler"
	wait_until 20 put_big after
	echo after >>"$BATS_FILE_TMPDIR/acked"
	expect_keys "$BATS_FILE_TMPDIR/acked" 1
	grep -q "the log is writable again" "$(srv_log 1)"
}
