#!/usr/bin/env bats
# 10-server-auth.bats - requests and servers without the cluster key are
# refused: unauthenticated, replayed, tampered and skewed JSON-RPC requests
# get HTTP 401 (exit 4, "refused") and change nothing; a client or a server
# holding another key gets nowhere. Runs on a three-server cluster.

load helpers

setup_file() {
	dsc_setup_file
	start_cluster 3
	"$DSC_SERVER" keygen "$BATS_FILE_TMPDIR/wrong.key"
}
teardown_file() { stop_all; }
teardown() { dump_logs_on_failure; }

@test "a signed request is answered (the baseline for the refusals below)" {
	run -0 rpc 1 status.leader
	[[ "$output" == *'"leader":"127.0.0.'* ]]
}

@test "a request without authentication headers is refused" {
	run -4 rpc 1 --no-auth status.leader
	[[ "$output" == *"refused"* ]]
	[[ "$output" != *'"leader"'* ]]
}

@test "a replayed request is refused the second time" {
	run -4 rpc 2 --replay status.leader
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == *'"leader":"127.0.0.'* ]]
	[[ "${lines[1]}" == *"refused"* ]]
}

@test "a replayed write is applied once" {
	local idx
	run -4 rpc 1 --replay -w kv.put '{"Key":"auth/replayed","Value":"MQ=="}'
	[[ "${lines[0]}" == *'"ok":true'* ]]
	[[ "${lines[1]}" == *"refused"* ]]
	run -0 rpc 1 kv.get '{"Key":"auth/replayed"}'
	idx=$(jpy 'd["entries"][0]["ModifyIndex"]' <<<"$output")
	[ "$idx" = "$(jpy 'd["entries"][0]["CreateIndex"]' <<<"$output")" ]
}

@test "a request tampered with after signing is refused and changes nothing" {
	run -4 rpc 1 --tamper -w kv.put '{"Key":"auth/tampered","Value":"MQ=="}'
	[[ "$output" == *"refused"* ]]
	run -1 rpc 1 kv.get '{"Key":"auth/tampered","consistency":"consistent"}'
	run -1 rpc 3 kv.get '{"Key":"auth/tampered"}'
}

@test "a request signed with a clock off by two minutes is refused" {
	run -4 rpc 1 --skew 120 status.leader
	[[ "$output" == *"refused"* ]]
	run -4 rpc 1 --skew -120 status.leader
	[[ "$output" == *"refused"* ]]
	# Within the allowed skew (AUTH_REQ_SKEW, 30 s) it is fine.
	run -0 rpc 1 --skew 10 status.leader
	run -0 rpc 1 --skew -10 status.leader
}

@test "a client with another key is refused" {
	run -4 "$DSC_RPC" -k "$BATS_FILE_TMPDIR/wrong.key" -b "$DSC_CLIENT_IP" \
	    -s "$(srv_addr 1)" status.leader
	[[ "$output" == *"refused"* ]]
	run -4 "$DSC_RPC" -k "$BATS_FILE_TMPDIR/wrong.key" -b "$DSC_CLIENT_IP" \
	    -s "$(srv_addr 1)" -w kv.put '{"Key":"auth/wrongkey","Value":"MQ=="}'
	run -1 rpc 1 kv.get '{"Key":"auth/wrongkey"}'
}

# Does server N list a server named sNAME?
lists() { peers_of "$1" 2>/dev/null | grep -q "^s$2 "; }

@test "a server with another key is not let into the cluster" {
	local leader
	SRV_KEY=$BATS_FILE_TMPDIR/wrong.key start_server 4 \
	    --join "$(srv_addr 1)" --join "$(srv_addr 2)" --join "$(srv_addr 3)"
	leader=$(wait_for_leader)
	# Long enough for several join attempts (every 10 ticks of 50 ms).
	for _ in $(seq 1 15); do
		if lists "$leader" 4; then
			echo "s4 was let in: $(peers_of "$leader")"
			return 1
		fi
		srv_running 4
		sleep 0.2
	done
	run -0 peers_of "$leader"
	[ "${#lines[@]}" -eq 3 ]
	# It refuses our requests too: it holds the other key.
	run -4 rpc 4 status.leader
	[[ "$output" == *"refused"* ]]
	# And the cluster still works.
	run -0 put_key auth/after ok
	# The refused links were counted (status.stats), not just dropped.
	[ "$(stat_sum peers auth_failures)" -gt 0 ]
	stop_server 4
}

# stat_sum GROUP NAME: status.stats GROUP.NAME summed over servers 1-3.
stat_sum() {
	local n sum=0 v
	for n in 1 2 3; do
		v=$(rpc "$n" status.stats | jpy "d['$1']['$2']") || return 1
		sum=$((sum + v))
	done
	echo "$sum"
}

@test "after all the refusals the servers still agree" {
	wait_converged 1 2 3
	# Every refused request above was counted.
	[ "$(stat_sum rpc auth_failures)" -ge 4 ]
}
