#!/usr/bin/env bats
# 10-server-cli.bats - dsc-server's command line on its own: keygen, usage,
# key files, a busy port, SIGTERM, and a restart from the data dir alone.
# One single-server cluster (s5 on 127.0.0.6) is started by the tests that
# need it.

load helpers

setup_file() { dsc_setup_file; }
teardown_file() { stop_all; }
teardown() { dump_logs_on_failure; }

# A server that must refuse to start: run in the foreground, bounded.
refuse() {
	timeout -k 5 30 "$DSC_SERVER" "$@"
}

@test "keygen writes a 0600 base64 key and refuses to overwrite it" {
	local k=$BATS_TEST_TMPDIR/k before
	run -0 "$DSC_SERVER" keygen "$k"
	[ "$(stat -c %a "$k")" = 600 ]
	[ "$(head -c 44 "$k" | base64 -d | wc -c)" -eq 32 ]
	before=$(cat "$k")
	run -4 "$DSC_SERVER" keygen "$k"
	[[ "$output" == *"$k"* ]]
	[ "$(cat "$k")" = "$before" ]
}

@test "usage errors exit 2; --help exits 0" {
	run -2 "$DSC_SERVER" --no-such-flag
	run -2 "$DSC_SERVER" keygen
	run -0 "$DSC_SERVER" --help
	[[ "$output" == *"--data-dir"* ]]
}

@test "a missing, unprotected or malformed key file is a permanent failure" {
	local d=$BATS_TEST_TMPDIR/data k=$BATS_TEST_TMPDIR/k
	local args=(--name s5 --bind 127.0.0.6:1 --data-dir "$d"
	    --bootstrap-expect 1)

	run -4 refuse "${args[@]}" --key-file "$BATS_TEST_TMPDIR/none"
	[[ "$output" == *"$BATS_TEST_TMPDIR/none"* ]]

	cp "$DSC_KEY" "$k"
	chmod 644 "$k"
	run -4 refuse "${args[@]}" --key-file "$k"
	[[ "$output" == *"$k"* ]]

	echo "not a key" >"$k"
	chmod 600 "$k"
	run -4 refuse "${args[@]}" --key-file "$k"
}

@test "a single server elects itself and serves writes and reads" {
	set_members 5
	start_server 5 --bootstrap-expect 1
	run -0 wait_for_leader 20
	[ "$output" = 5 ]
	run -0 put_key cli/a hello
	[[ "$output" == *'"ok":true'* ]]
	run -0 rpc 5 kv.get '{"Key":"cli/a"}'
	[ "$(echo "$output" | jpy 'd["entries"][0]["Value"]' | base64 -d)" = hello ]
	run -1 rpc 5 kv.get '{"Key":"cli/none"}'
}

@test "a second server on a busy address exits 3" {
	srv_running 5 || skip "needs the single server above"
	run -3 refuse --name other --bind "$(srv_addr 5)" \
	    --data-dir "$BATS_TEST_TMPDIR/other" --key-file "$DSC_KEY" \
	    --bootstrap-expect 1
}

@test "SIGTERM stops the server cleanly with exit 0" {
	srv_running 5 || skip "needs the single server above"
	stop_server 5 TERM
	[ "$(srv_status 5)" = 0 ]
}

@test "a restart with only --data-dir and --key-file keeps name, address and data" {
	restart_server 5
	run -0 wait_for_leader 20 5
	[ "$output" = 5 ]
	run -0 rpc 5 status.leader
	[ "$(echo "$output" | jpy 'd["leader_name"]')" = s5 ]
	[ "$(echo "$output" | jpy 'd["leader"]')" = "$(srv_addr 5)" ]
	run -0 rpc 5 kv.get '{"Key":"cli/a"}'
	[ "$(echo "$output" | jpy 'd["entries"][0]["Value"]' | base64 -d)" = hello ]
}
