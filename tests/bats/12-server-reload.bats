#!/usr/bin/env bats
# 12-server-reload.bats - SIGHUP re-reads the --config file and takes what
# a running server can change (per-peer address overrides, log level); a
# file that does not parse or holds a bad value changes nothing, and the
# server keeps serving either way.

load helpers

setup_file() {
	dsc_setup_file
	set_members 1
	mkdir -p "$(srv_dir 1)"
	echo '{"log_level":"info"}' >"$BATS_FILE_TMPDIR/conf.json"
	pick_port "$(srv_ip 1)" >"$(srv_dir 1)/port"
	first_start 1 --bootstrap-expect 1 --config "$BATS_FILE_TMPDIR/conf.json"
	wait_for_leader "$DSC_LEADER_WAIT" >/dev/null
}
teardown_file() { stop_all; }
teardown() { dump_logs_on_failure; }

@test "SIGHUP applies new peer addresses and log level" {
	echo '{"log_level":"debug","peers":{"s2":"127.0.0.3:9"}}' \
	    >"$BATS_FILE_TMPDIR/conf.json"
	kill -HUP "$(srv_pid 1)"
	wait_until 10 grep -q "reloaded .*1 peer address overrides, log level debug" \
	    "$(srv_log 1)"
	rpc 1 status.peers >/dev/null
}

@test "SIGHUP with a bad file changes nothing and the server goes on" {
	echo '{"log_level":"loud"}' >"$BATS_FILE_TMPDIR/conf.json"
	kill -HUP "$(srv_pid 1)"
	wait_until 10 grep -q "log_level must be .*nothing changed" "$(srv_log 1)"
	echo '{not json' >"$BATS_FILE_TMPDIR/conf.json"
	kill -HUP "$(srv_pid 1)"
	wait_until 10 grep -q "SIGHUP: .*nothing changed" "$(srv_log 1)"
	srv_running 1
	rpc 1 -w kv.put '{"Key":"after-hup","Value":"eA=="}' >/dev/null
}
