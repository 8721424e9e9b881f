#!/usr/bin/env bats
# 30-cli-agent.bats - dsc-register, dsc-lookup and dsc-members through a
# real dsc-agent (the default path: JSON-RPC to the agent's POST /rpc),
# in front of a three-server cluster.

load helpers

setup_file() {
	dsc_setup_file
	start_cluster 3
	start_agent 1
}

teardown_file() {
	stop_agents
	stop_all
}

teardown() {
	agent_logs_on_failure
	dump_logs_on_failure
}

# A tool of the build under test, pointed at agent 1 by the environment.
cli() {
	local tool=$1
	shift
	DSC_KEY_FILE=$DSC_KEY DSC_HTTP_ADDR="http://$(agt_http 1)" \
	    "$(dirname "$DSC_SERVER")/$tool" -t 10 "$@"
}

# wait_lookup SECS WANT ARGS...: until dsc-lookup ARGS prints WANT.
wait_lookup() {
	local secs=$1 want=$2 out
	shift 2
	for _ in $(seq 1 $((secs * 5))); do
		out=$(cli dsc-lookup -q "$@" 2>/dev/null) || true
		[ "$out" = "$want" ] && return 0
		sleep 0.2
	done
	echo "dsc-lookup $* printed '$out', not '$want'" >&2
	return 1
}

@test "a service registered through the agent is found, at the node's address" {
	cli dsc-register web --port 8080 --tag v1
	run -0 cli dsc-lookup web
	[ "$output" = "$(agt_ip 1):8080" ]
	run -0 cli dsc-lookup --format env web
	[[ "$output" == *"WEB_PORT='8080'"* ]]
}

@test "a TTL check is fed by pass, warn and fail" {
	cli dsc-register api --id api1 --port 9000 --address 127.0.1.50 \
	    --check-ttl 60s
	run -1 cli dsc-lookup api
	[ "$output" = "dsc-lookup: no healthy instance of service 'api' (1 not passing)" ]
	cli dsc-register pass service:api1 --note "cron ran"
	wait_lookup 10 127.0.1.50:9000 api
	cli dsc-register warn service:api1
	wait_lookup 10 $'127.0.1.50:9000\twarning' --all api
	cli dsc-register fail service:api1
	wait_lookup 10 "" api
}

@test "updating an unknown check is a negative answer" {
	run -1 cli dsc-register pass no-such-check
	[[ "$output" == "dsc-register: error: "*"no-such-check"* ]]
	[ "${#lines[@]}" -eq 1 ]
}

@test "--wait through the agent returns on a change" {
	(sleep 2 && cli dsc-register web --id web2 --port 8081 \
	    --address 127.0.1.51) &
	run -0 cli dsc-lookup -t 30 --wait web
	wait
	[ "${#lines[@]}" -eq 2 ]
	[[ "$output" == *127.0.1.51:8081* ]]
}

@test "maintenance on and off through the agent" {
	cli dsc-register maintenance on web2 --reason "kernel upgrade"
	wait_lookup 10 "$(agt_ip 1):8080" web
	cli dsc-register maintenance off web2
	run -0 cli dsc-lookup web
	[ "${#lines[@]}" -eq 2 ]
}

@test "a definition file, and deregistration" {
	cat >"$BATS_TEST_TMPDIR/def.json" <<'EOF'
{"service": {"name": "cache", "id": "cache1", "port": 6379,
  "tags": ["redis", "main"], "meta": {"tier": "1"}}}
EOF
	cli dsc-register --file "$BATS_TEST_TMPDIR/def.json"
	run -0 cli dsc-lookup --tag redis --tag main --format json cache
	[ "$(jpy 'd[0]["Meta"]["tier"] + " " + d[0]["ID"]' <<<"$output")" = "1 cache1" ]
	cli dsc-register --deregister cache1
	run -1 cli dsc-lookup cache
	[ "$output" = "dsc-lookup: unknown service 'cache'" ]
}

@test "a file with a services list registers each of them" {
	cat >"$BATS_TEST_TMPDIR/two.json" <<'EOF'
{"Services": [{"Name": "q1", "Port": 7001}, {"Name": "q2", "Port": 7002}]}
EOF
	cli dsc-register --file "$BATS_TEST_TMPDIR/two.json"
	run -0 cli dsc-lookup q1
	[ "$output" = "$(agt_ip 1):7001" ]
	run -0 cli dsc-lookup q2
	[ "$output" = "$(agt_ip 1):7002" ]
}

@test "a key the agent does not know is refused: exit 4, naming the agent" {
	"$DSC_SERVER" keygen "$BATS_TEST_TMPDIR/other.key"
	run -4 env DSC_KEY_FILE="$BATS_TEST_TMPDIR/other.key" \
	    "$(dirname "$DSC_SERVER")/dsc-lookup" --agent "$(agt_http 1)" web
	[[ "$output" == "dsc-lookup: error: agent '$(agt_http 1)' refused the request: "* ]]
}

@test "dsc-members through the agent: servers first, then the agent's node" {
	local out
	for _ in $(seq 1 50); do
		out=$(cli dsc-members) && [[ "$out" == *$'\na1 '* ]] && break
		sleep 0.2
	done
	run -0 cli dsc-members
	[[ "${lines[1]}" == s1\ * && "${lines[3]}" == s3\ * ]]
	[[ "${lines[4]}" =~ ^a1\ +127\.0\.1\.1\ +alive\ +client ]]
	run -0 cli dsc-members --check
	[[ "$output" == "ok: leader s"*", 3 of 3 voters reachable" ]]
}
