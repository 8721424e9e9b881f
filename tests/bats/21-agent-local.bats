#!/usr/bin/env bats
# 21-agent-local.bats - the agent's own services and checks on a real
# three-server cluster: config-dir definitions and their reload (SIGHUP and
# PUT /v1/agent/reload), a bad file refused with its position, API
# registrations kept across a restart, anti-entropy restoring what was
# deleted behind the agent's back while leaving others' entries alone, TTL
# and HTTP checks and their transitions, maintenance, a killed agent's
# services leaving ?passing within the node TTL and coming back with it,
# and DeregisterCriticalServiceAfter.
#
# The tests run in order on one cluster and one agent, a1 (a2 only runs
# the service the last test expects reaped); each says what it expects to
# find.

load helpers

# Node TTL of the servers: short, but several heartbeats (every 2 s) long.
TTL=6
# Bounds, in seconds, generous for ASan on a loaded two-core machine.
# DeregisterCriticalServiceAfter's floor is a minute, checked every 5 s.
REAP_WAIT=150
SYNC_WAIT=30
CHECK_WAIT=30
# TTL + 25% + a commit + slack.
DEAD_WAIT=40

setup_file() {
	dsc_setup_file
	start_cluster 3 --node-ttl "${TTL}s"
	mkdir -p "$(agt_conf 1)"
	cat >"$(agt_conf 1)/10-web.json" <<-'JSON'
		{"service": {"name": "web", "id": "web-1", "port": 8080,
		  "tags": ["v1"],
		  "check": {"id": "web-alive", "ttl": "10m", "status": "passing"}}}
	JSON
	start_agent 1
	# a2 is never restarted: its service's check stays critical from its
	# start, so the service is reaped a minute later (the last test).
	mkdir -p "$(agt_conf 2)"
	cat >"$(agt_conf 2)/10-doomed.json" <<-'JSON'
		{"service": {"name": "doomed", "check": {"ttl": "1s",
		  "deregister_critical_service_after": "1m"}}}
	JSON
	start_agent 2
}
teardown_file() {
	stop_http_server
	stop_agents
	stop_all
}
teardown() {
	dump_logs_on_failure
	agent_logs_on_failure
}

# ---- helpers ------------------------------------------------------------------

# api METHOD PATH [BODY]: one HTTP request to agent 1; prints the body and
# then, on its own line, the HTTP status.
api() {
	local args=(-sS --max-time 20 -X "$1" -w '\n%{http_code}')
	[ $# -lt 3 ] || args+=(--data-binary "$3")
	curl "${args[@]}" "$(agt_url 1)$2"
}

# api_ok METHOD PATH [BODY]: as api, failing unless the status is 200;
# prints the body only.
api_ok() {
	local out
	out=$(api "$@") || return 1
	if [ "${out##*$'\n'}" != 200 ]; then
		echo "$1 $2: ${out}" >&2
		return 1
	fi
	printf '%s\n' "${out%$'\n'*}"
}

# ids_of_service NAME [QUERY]: the ServiceIDs /v1/catalog/service/NAME
# lists, sorted, one line.
ids_of_service() {
	api_ok GET "/v1/catalog/service/$1" |
	    jpy "' '.join(sorted(e['ServiceID'] for e in d))"
}

# passing_of NAME: the ServiceIDs in /v1/health/service/NAME?passing.
passing_of() {
	api_ok GET "/v1/health/service/$1?passing" |
	    jpy "' '.join(sorted(e['Service']['ID'] for e in d))"
}

# check_status ID: the Status of check ID on a1 in the catalog, or "none".
check_status() {
	api_ok GET /v1/health/node/a1 |
	    jpy "next((c['Status'] for c in d if c['CheckID'] == '$1'), 'none')"
}

check_output() {
	api_ok GET /v1/health/node/a1 |
	    jpy "next((c['Output'] for c in d if c['CheckID'] == '$1'), '')"
}

services_are() { [ "$(ids_of_service "$1")" = "$2" ]; }
passing_is() { [ "$(passing_of "$1")" = "$2" ]; }
status_is() { [ "$(check_status "$1")" = "$2" ]; }

# A small HTTP server for HTTP checks, on a client address, by PID.
HTTP_IP=127.0.2.9
start_http_server() {
	local port
	port=$(pick_port "$HTTP_IP")
	echo "$port" >"$BATS_FILE_TMPDIR/http.port"
	mkdir -p "$BATS_FILE_TMPDIR/www"
	echo ok >"$BATS_FILE_TMPDIR/www/health"
	python3 -m http.server --bind "$HTTP_IP" --directory \
	    "$BATS_FILE_TMPDIR/www" "$port" >"$BATS_FILE_TMPDIR/http.log" \
	    2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/http.pid"
	wait_until 20 bash -c "exec 9<>/dev/tcp/$HTTP_IP/$port" 2>/dev/null
}
stop_http_server() {
	local pid
	pid=$(cat "$BATS_FILE_TMPDIR/http.pid" 2>/dev/null) || return 0
	rm -f "$BATS_FILE_TMPDIR/http.pid"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# ---- config dir ---------------------------------------------------------------

@test "config-dir services are in the catalog and passing" {
	wait_until "$SYNC_WAIT" services_are web web-1
	wait_until "$SYNC_WAIT" passing_is web web-1
	run api_ok GET /v1/agent/services
	[ "$status" -eq 0 ]
	[ "$(jpy "d['web-1']['Service'] + ' ' + str(d['web-1']['Port'])" \
	    <<<"$output")" = "web 8080" ]
	[ "$(check_status web-alive)" = passing ]
	wait_until "$SYNC_WAIT" services_are doomed doomed
}

@test "SIGHUP reads files added and removed" {
	cat >"$(agt_conf 1)/20-db.json" <<-'JSON'
		{"services": [{"name": "db", "id": "db-1", "port": 5432},
		              {"name": "db", "id": "db-2", "port": 5433}]}
	JSON
	kill -HUP "$(agt_pid 1)"
	wait_until "$SYNC_WAIT" services_are db "db-1 db-2"
	rm "$(agt_conf 1)/20-db.json"
	kill -HUP "$(agt_pid 1)"
	wait_until "$SYNC_WAIT" services_are db ""
	services_are web web-1
}

@test "PUT /v1/agent/reload reads a new file" {
	cat >"$(agt_conf 1)/30-cache.json" <<-'JSON'
		{"service": {"name": "cache", "port": 6379}}
	JSON
	api_ok PUT /v1/agent/reload
	wait_until "$SYNC_WAIT" services_are cache cache
}

@test "a bad file is refused with file:line:col and nothing changes" {
	printf '{"service": {"name": "bad",\n  port: 1}}\n' \
	    >"$(agt_conf 1)/40-bad.json"
	rm "$(agt_conf 1)/30-cache.json"
	run api PUT /v1/agent/reload
	[ "${output##*$'\n'}" != 200 ]
	[[ "$output" == *"40-bad.json:2:"* ]]
	kill -HUP "$(agt_pid 1)"
	wait_until 10 grep -q "40-bad.json:2:" "$(agt_log 1)"
	agt_running 1
	# cache.json's removal waits for a good config dir.
	sleep 1
	services_are cache cache
	services_are web web-1
	rm "$(agt_conf 1)/40-bad.json"
	api_ok PUT /v1/agent/reload
	wait_until "$SYNC_WAIT" services_are cache ""
}

@test "an invalid registration is a 400 and stores nothing" {
	run api PUT /v1/agent/service/register '{"Name":"neg","Port":-1}'
	[ "${output##*$'\n'}" = 400 ]
	[[ "$output" == *"Port"* ]]
	run api PUT /v1/agent/service/register \
	    '{"Name":"odd","Check":{"GRPC":"x:1","Interval":"1s"}}'
	[ "${output##*$'\n'}" = 400 ]
	run api_ok GET /v1/agent/services
	[[ "$output" != *neg* && "$output" != *odd* ]]
}

# ---- API registrations ------------------------------------------------------

@test "API registrations survive an agent restart" {
	api_ok PUT /v1/agent/service/register \
	    '{"name":"api","id":"api-1","port":9000,"tags":["x"],
	      "check":{"ttl":"10m","status":"passing"}}'
	services_are api api-1
	stop_agent 1
	[ "$(agt_status 1)" = 0 ]
	restart_agent 1
	run api_ok GET /v1/agent/services
	[ "$status" -eq 0 ]
	[ "$(jpy "d['api-1']['Tags']" <<<"$output")" = '["x"]' ]
	run api_ok GET /v1/agent/checks
	[ "$(jpy "d['service:api-1']['ServiceID']" <<<"$output")" = api-1 ]
	services_are api api-1
}

@test "deregistration through the agent removes service and checks" {
	api_ok PUT /v1/agent/service/register '{"Name":"tmp","Check":{"TTL":"1m"}}'
	services_are tmp tmp
	api_ok PUT /v1/agent/service/deregister/tmp
	services_are tmp ""
	status_is service:tmp none
}

# ---- anti-entropy -------------------------------------------------------------

@test "anti-entropy restores a service deleted behind the agent's back" {
	api_ok PUT /v1/catalog/deregister '{"Node":"a1","ServiceID":"api-1"}'
	services_are api ""
	# A reload runs a full sync at once instead of at the next period.
	api_ok PUT /v1/agent/reload
	wait_until "$SYNC_WAIT" services_are api api-1
	wait_until "$SYNC_WAIT" status_is service:api-1 passing
}

@test "entries others registered on the agent's node are left alone" {
	api_ok PUT /v1/catalog/register '{"Node":"a1","Address":"127.0.1.1",
	    "SkipNodeUpdate":true,"Service":{"Service":"ext","ID":"ext-1"}}'
	services_are ext ext-1
	api_ok PUT /v1/agent/reload
	wait_until "$SYNC_WAIT" services_are api api-1
	sleep 1
	services_are ext ext-1
	run api_ok GET /v1/agent/services
	[[ "$output" != *ext-1* ]]
	api_ok PUT /v1/catalog/deregister '{"Node":"a1","ServiceID":"ext-1"}'
}

# ---- checks ---------------------------------------------------------------------

@test "a TTL check turns passing when fed and critical when it expires" {
	api_ok PUT /v1/agent/service/register \
	    '{"Name":"hb","Check":{"CheckID":"hb-ttl","TTL":"10s"}}'
	status_is hb-ttl critical
	api_ok PUT "/v1/agent/check/pass/hb-ttl?note=alive"
	status_is hb-ttl passing
	[ "$(check_output hb-ttl)" = alive ]
	passing_is hb hb
	wait_until "$CHECK_WAIT" status_is hb-ttl critical
	[[ "$(check_output hb-ttl)" == *"TTL expired"* ]]
	passing_is hb ""
	run api PUT /v1/agent/check/pass/no-such-check
	[[ "$output" == *'CheckID "no-such-check" does not have associated TTL'* ]]
}

@test "an HTTP check goes passing, then critical when its server stops" {
	start_http_server
	local url
	url="http://$HTTP_IP:$(cat "$BATS_FILE_TMPDIR/http.port")/health"
	api_ok PUT /v1/agent/service/register "{\"Name\":\"site\",
	    \"Check\":{\"HTTP\":\"$url\",\"Interval\":\"1s\",\"Timeout\":\"2s\"}}"
	wait_until "$CHECK_WAIT" status_is service:site passing
	wait_until "$SYNC_WAIT" passing_is site site
	[[ "$(check_output service:site)" == *"200"* ]]
	stop_http_server
	wait_until "$CHECK_WAIT" status_is service:site critical
	passing_is site ""
}

@test "maintenance adds a critical check and takes the service out" {
	api_ok PUT "/v1/agent/service/maintenance/api-1?enable=true&reason=upgrade"
	status_is _service_maintenance:api-1 critical
	passing_is api ""
	api_ok PUT "/v1/agent/service/maintenance/api-1?enable=false"
	status_is _service_maintenance:api-1 none
	wait_until "$SYNC_WAIT" passing_is api api-1
}

# ---- liveness -------------------------------------------------------------------

# web_passing_on_servers: whether the servers list web-1 as passing (the
# agent may be dead, so this asks them directly).
web_passing_on_servers() {
	rpc_any health.service '{"Service":"web","Passing":true}' |
	    jpy "any(e['Service']['ID'] == 'web-1' for e in d['instances'])" |
	    grep -qx true
}
web_not_passing_on_servers() { ! web_passing_on_servers; }

@test "a killed agent's services leave ?passing and come back with it" {
	wait_until "$SYNC_WAIT" passing_is web web-1
	web_passing_on_servers
	stop_agent 1 KILL
	wait_until "$DEAD_WAIT" web_not_passing_on_servers
	restart_agent 1
	wait_until "$DEAD_WAIT" web_passing_on_servers
	wait_until "$DEAD_WAIT" passing_is web web-1
}

@test "a service critical past DeregisterCriticalServiceAfter is deregistered" {
	wait_until "$REAP_WAIT" services_are doomed ""
	grep -q "deregistering service 'doomed'" "$(agt_log 2)"
	agt_running 2
}
