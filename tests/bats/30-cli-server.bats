#!/usr/bin/env bats
# 30-cli-server.bats - dsc-register, dsc-lookup and dsc-members against a
# real three-server cluster, talking to the servers directly (--server):
# registrations, every output format, tag filters, blocking waits, the
# negative answers and the exit-status table.

load helpers

setup_file() {
	dsc_setup_file
	start_cluster 3
}

teardown_file() { stop_all; }
teardown() { dump_logs_on_failure; }

# The tools of the build under test, signed with the cluster's key.
cli() {
	local tool=$1 args=() n
	shift
	for n in $(members); do
		srv_running "$n" && args+=(--server "$(srv_addr "$n")")
	done
	DSC_KEY_FILE=$DSC_KEY "$(dirname "$DSC_SERVER")/$tool" \
	    "${args[@]}" -t 10 "$@"
}

check_status() {
	local rc=0
	cli dsc-members --check >/dev/null 2>&1 || rc=$?
	echo "$rc"
}

register_web() {
	cli dsc-register web --id web1 --port 8080 --address 127.0.1.1 \
	    --tag v1 --tag prod --meta team=a --node n1
	cli dsc-register web --id web2 --port 8081 --address 127.0.1.2 \
	    --tag v1 --node n2
}

@test "a registration is visible to the next lookup" {
	register_web
	run -0 cli dsc-lookup web
	[ "${lines[0]}" = 127.0.1.1:8080 ]
	[ "${lines[1]}" = 127.0.1.2:8081 ]
	[ "${#lines[@]}" -eq 2 ]
}

@test "--tag filters, and repeated tags must all match" {
	run -0 cli dsc-lookup --tag v1 web
	[ "${#lines[@]}" -eq 2 ]
	run -0 cli dsc-lookup --tag v1 --tag prod web
	[ "$output" = 127.0.1.1:8080 ]
	run -1 cli dsc-lookup --tag prod --tag nope web
	[ "$output" = "dsc-lookup: no instance of service 'web' has every tag given" ]
}

@test "json, srv and env formats" {
	run -0 cli dsc-lookup --format json --tag prod web
	[ "$(jpy 'd[0]["Address"] + " " + str(d[0]["Port"]) + " " + d[0]["Node"] + " " + d[0]["Meta"]["team"] + " " + d[0]["Status"]' <<<"$output")" = \
	    "127.0.1.1 8080 n1 a passing" ]
	run -0 cli dsc-lookup --format srv web
	[ "${lines[0]}" = "1 1 8080 127.0.1.1" ]
	[ "${lines[1]}" = "1 1 8081 127.0.1.2" ]
	run -0 cli dsc-lookup --format env web
	eval "$output"
	[ "$WEB_COUNT" = 2 ]
	[ "$WEB_ADDR" = 127.0.1.1:8080 ]
	[ "$WEB_HOST" = 127.0.1.1 ]
	[ "$WEB_PORT" = 8080 ]
	[ "$WEB_ADDRS" = "127.0.1.1:8080 127.0.1.2:8081" ]
}

@test "--one prints one of the instances, not always the same" {
	local seen=""
	for _ in $(seq 1 30); do
		run -0 cli dsc-lookup --one web
		[ "${#lines[@]}" -eq 1 ]
		[[ "$output" == 127.0.1.1:8080 || "$output" == 127.0.1.2:8081 ]]
		[[ "$seen" == *"$output"* ]] || seen="$seen $output"
	done
	[ "$(wc -w <<<"$seen")" -eq 2 ]
}

@test "--list prints every service with its tags" {
	run -0 cli dsc-lookup --list
	[[ "$output" == *$'web\tprod,v1'* || "$output" == *$'web\tv1,prod'* ]]
	run -0 cli dsc-lookup --list --format json
	[ "$(jpy '",".join(sorted(d["web"]))' <<<"$output")" = prod,v1 ]
}

@test "--stale answers from any server the same once it caught up" {
	wait_converged
	run -0 cli dsc-lookup --stale web
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = 127.0.1.1:8080 ]
}

@test "an unknown service is a negative answer, -q keeps it quiet" {
	run -1 cli dsc-lookup no-such-service
	[ "$output" = "dsc-lookup: unknown service 'no-such-service'" ]
	run -1 cli dsc-lookup -q no-such-service
	[ -z "$output" ]
}

@test "a TTL check keeps an instance out until a cron job passes it" {
	cli dsc-register api --id api1 --port 9000 --address 127.0.1.3 \
	    --check-ttl 30s --node n1
	run -1 cli dsc-lookup api
	[ "$output" = "dsc-lookup: no healthy instance of service 'api' (1 not passing)" ]
	run -0 cli dsc-lookup --all api
	[ "$output" = $'127.0.1.3:9000\tcritical' ]
	cli dsc-register --node n1 pass service:api1 --note "all good"
	run -0 cli dsc-lookup api
	[ "$output" = 127.0.1.3:9000 ]
	cli dsc-register --node n1 warn service:api1
	run -0 cli dsc-lookup --all api
	[ "$output" = $'127.0.1.3:9000\twarning' ]
	cli dsc-register --node n1 fail service:api1
	run -1 cli dsc-lookup -q api
}

@test "maintenance mode takes a service out and back" {
	cli dsc-register --node n2 maintenance on web2 --reason "disk swap"
	run -0 cli dsc-lookup web
	[ "$output" = 127.0.1.1:8080 ]
	run -0 cli dsc-lookup --all web
	[[ "$output" == *$'127.0.1.2:8081\tmaintenance'* ]]
	cli dsc-register --node n2 maintenance off web2
	run -0 cli dsc-lookup web
	[ "${#lines[@]}" -eq 2 ]
}

@test "--wait returns when the answer changes" {
	cli dsc-register db --id db1 --port 5432 --address 127.0.1.4 --node n1
	(sleep 2 && cli dsc-register db --id db2 --port 5433 \
	    --address 127.0.1.5 --node n2) &
	run -0 cli dsc-lookup -t 30 --wait db
	wait
	[ "${#lines[@]}" -eq 2 ]
	[[ "$output" == *127.0.1.5:5433* ]]
}

@test "--wait with no change is a timeout: exit 3" {
	local start=$SECONDS
	run -3 cli dsc-lookup -t 2 --wait db
	[ "${lines[0]}" = "dsc-lookup: error: service 'db' did not change within 2000 ms" ]
	[ $((SECONDS - start)) -lt 8 ]
}

@test "--deregister removes one instance" {
	cli dsc-register --node n2 --deregister db2
	run -0 cli dsc-lookup db
	[ "$output" = 127.0.1.4:5432 ]
}

@test "a definition file registers its services" {
	cat >"$BATS_TEST_TMPDIR/def.json" <<'EOF'
{"service": {"name": "cache", "id": "cache1", "port": 6379,
  "address": "127.0.1.6", "tags": ["redis"]}}
EOF
	cli dsc-register --node n1 --file "$BATS_TEST_TMPDIR/def.json"
	run -0 cli dsc-lookup --tag redis cache
	[ "$output" = 127.0.1.6:6379 ]
}

@test "a malformed definition file: file, line and column, exit 4" {
	printf '{"service": {\n  "name": "bad",\n  "port": 1,,\n}}\n' \
	    >"$BATS_TEST_TMPDIR/bad.json"
	run -4 cli dsc-register --node n1 --file "$BATS_TEST_TMPDIR/bad.json"
	[[ "$output" == "dsc-register: error: $BATS_TEST_TMPDIR/bad.json:3:"* ]]
	[ "${#lines[@]}" -eq 1 ]
	run -1 cli dsc-lookup -q bad
}

@test "bad arguments are usage errors: exit 2, nothing sent" {
	run -2 cli dsc-lookup --no-such-flag web
	[ "$output" = "dsc-lookup: error: unknown option '--no-such-flag' (see 'dsc-lookup --help')" ]
	run -2 cli dsc-register web2x --port 0
	[[ "$output" == *"invalid port '0'"* ]]
	run -2 cli dsc-register web2x --port 80 --check-http http://x/ --interval 5x
	[[ "$output" == *"invalid duration '5x'"* ]]
	run -2 cli dsc-register web2x --port 80 --check-tcp a:1 --check-ttl 5s
	[[ "$output" == *"can't combine --check-tcp and --check-ttl"* ]]
	run -2 cli dsc-register web2x --port 80 --check-script true
	[[ "$output" == *"--check-script needs the agent"* ]]
	run -2 cli dsc-members --check --raft
	run -2 cli dsc-lookup --format xml web
	run -1 cli dsc-lookup -q web2x
}

@test "a key file others can read is refused: exit 4" {
	cp "$DSC_KEY" "$BATS_TEST_TMPDIR/open.key"
	chmod 644 "$BATS_TEST_TMPDIR/open.key"
	run -4 cli dsc-lookup --key-file "$BATS_TEST_TMPDIR/open.key" web
	[[ "$output" == "dsc-lookup: error: "*"open.key"* ]]
	run -4 cli dsc-lookup --key-file "$BATS_TEST_TMPDIR/missing.key" web
}

@test "an unreachable agent is a temporary failure in one shape" {
	local port
	port=$(pick_port 127.0.0.1)
	run -3 env DSC_KEY_FILE="$DSC_KEY" \
	    "$(dirname "$DSC_SERVER")/dsc-lookup" -t 2 \
	    --agent "127.0.0.1:$port" web
	[ "$output" = "dsc-lookup: error: unable to reach agent '127.0.0.1:$port': connection refused" ]
	run -3 env DSC_KEY_FILE="$DSC_KEY" CONSUL_HTTP_ADDR="http://127.0.0.1:$port" \
	    "$(dirname "$DSC_SERVER")/dsc-members" -t 2
	[ "$output" = "dsc-members: error: unable to reach agent '127.0.0.1:$port': connection refused" ]
}

@test "dsc-members lists the servers first in a table" {
	run -0 cli dsc-members
	[[ "${lines[0]}" =~ ^Node\ +Address\ +Status\ +Type\ +Build\ +DC$ ]]
	[[ "${lines[1]}" =~ ^s1\ +127\.0\.0\.2:[0-9]+\ +alive\ +server\  ]]
	[[ "${lines[3]}" =~ ^s3\ +127\.0\.0\.4:[0-9]+\ +alive\ +server\  ]]
	run -0 cli dsc-members --format json
	[ "$(jpy 'len([m for m in d if m["Type"] == "server"])' <<<"$output")" = 3 ]
	run -0 cli dsc-members --raft
	[[ "${lines[0]}" =~ ^Node\ +ID\ +Address\ +State\ +Voter\ +Term\ +LastIndex$ ]]
	[ "$(grep -c ' leader ' <<<"$output")" = 1 ]
}

@test "dsc-members --check: 0 healthy, 1 with a server down, 3 without quorum" {
	local leader f1 f2 n
	run -0 cli dsc-members --check
	[[ "$output" == "ok: leader s"*", 3 of 3 voters reachable" ]]
	leader=$(wait_for_leader)
	for n in 1 2 3; do
		[ "$n" = "$leader" ] && continue
		if [ -z "${f1:-}" ]; then f1=$n; else f2=$n; fi
	done
	kill9_server "$f1" || true
	# The leader notices within an election timeout.
	for _ in $(seq 1 100); do
		[ "$(check_status)" = 1 ] && break
		sleep 0.2
	done
	run -1 cli dsc-members --check
	[[ "$output" == "degraded: leader s$leader, 2 of 3 voters reachable; unreachable: s$f1" ]]
	kill9_server "$f2" || true
	for _ in $(seq 1 100); do
		[ "$(check_status)" = 3 ] && break
		sleep 0.2
	done
	run -3 cli dsc-members -t 3 --check
	[[ "$output" == "no leader"* || "$output" == "no quorum"* ]]
}
