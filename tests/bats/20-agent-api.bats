#!/usr/bin/env bats
# 20-agent-api.bats - the agent's Consul-compatible HTTP API against a
# three-server cluster, with curl: every endpoint family, the index
# headers, blocking queries, bad input, POST /rpc, server failover and the
# last-known answer when no server answers.

load helpers

setup_file() {
	dsc_setup_file
	start_cluster 3
	start_agent 1
	wait_until 30 agent_synced 1
}
teardown_file() {
	local rc=0
	stop_agents || rc=1
	stop_all || rc=1
	return "$rc"
}
teardown() {
	agent_logs_on_failure
	dump_logs_on_failure
}

agent_synced() { curl -sf "$(agt_url 1)/v1/agent/self" >/dev/null; }

# acurl ARGS...: curl against agent 1 from the test client address;
# prints headers and body.
acurl() {
	curl -sS -i --max-time 30 --interface "$DSC_CLIENT_IP" "$@"
}
A() { echo "$(agt_url 1)$1"; }
# header NAME: its value in $output (curl -i).
header() {
	printf '%s\n' "$output" | tr -d '\r' |
	    sed -n "s/^$1: //Ip" | head -n 1
}
status() { printf '%s\n' "$output" | head -n 1 | awk '{print $2}'; }
body() { printf '%s\n' "$output" | tr -d '\r' | sed '1,/^$/d'; }

@test "catalog register, services, service, node, nodes, deregister" {
	run acurl -X PUT --data '{"node":"n1","address":"10.0.0.1",
	    "service":{"service":"web","id":"web-1","tags":["v1"],"port":80}}' \
	    "$(A /v1/catalog/register)"
	[ "$(status)" = 200 ]
	[ "$(body)" = true ]
	run acurl "$(A /v1/catalog/services)"
	[ "$(status)" = 200 ]
	[[ "$(header Content-Type)" == application/json* ]]
	[[ "$(body)" == *'"web":["v1"]'* ]]
	[ "$(header X-Consul-Index)" -ge 1 ]
	[ "$(header X-Consul-KnownLeader)" = true ]
	[ -n "$(header X-Consul-LastContact)" ]
	[ "$(header X-Consul-Effective-Consistency)" = leader ]
	run acurl "$(A /v1/catalog/service/web)"
	[[ "$(body)" == *'"ServiceID":"web-1"'* ]]
	[[ "$(body)" == *'"ServicePort":80'* ]]
	run acurl "$(A '/v1/catalog/service/web?tag=v2')"
	[ "$(body)" = '[]' ]
	run acurl "$(A /v1/catalog/node/n1)"
	[[ "$(body)" == *'"Services":{"web-1"'* ]]
	run acurl "$(A /v1/catalog/node/nope)"
	[ "$(status)" = 200 ]
	[ "$(body)" = null ]
	[ "$(header X-Consul-Index)" -ge 1 ]
	run acurl "$(A /v1/catalog/nodes)"
	[[ "$(body)" == *'"Node":"n1"'* ]]
	run acurl "$(A /v1/catalog/datacenters)"
	[ "$(body)" = '["dc1"]' ]
	run acurl -X PUT --data '{"Node":"n1","ServiceID":"web-1"}' \
	    "$(A /v1/catalog/deregister)"
	[ "$(body)" = true ]
	run acurl "$(A /v1/catalog/service/web)"
	[ "$(body)" = '[]' ]
}

@test "health service, checks, state, node with passing" {
	run acurl -X PUT --data '{"Node":"n2","Address":"10.0.0.2",
	    "Service":{"Service":"db","ID":"db-1","Port":5432},
	    "Check":{"CheckID":"db-ok","Name":"db","Status":"critical",
	    "ServiceID":"db-1"}}' "$(A /v1/catalog/register)"
	[ "$(body)" = true ]
	run acurl "$(A /v1/health/service/db)"
	[[ "$(body)" == *'"CheckID":"db-ok"'* ]]
	run acurl "$(A '/v1/health/service/db?passing')"
	[ "$(body)" = '[]' ]
	run acurl "$(A '/v1/health/service/db?passing=false')"
	[[ "$(body)" == *'"db-1"'* ]]
	run acurl "$(A '/v1/health/service/db?passing=maybe')"
	[ "$(status)" = 400 ]
	run acurl "$(A /v1/health/checks/db)"
	[[ "$(body)" == *'"Status":"critical"'* ]]
	run acurl "$(A /v1/health/state/critical)"
	[[ "$(body)" == *'"db-ok"'* ]]
	run acurl "$(A /v1/health/state/bogus)"
	[ "$(status)" = 400 ]
	run acurl "$(A /v1/health/node/n2)"
	[[ "$(body)" == *'"db-ok"'* ]]
	[ "$(header X-Consul-Index)" -ge 1 ]
	idx=$(header X-Consul-Index)
	# A check on another node moves neither n2's index nor its answer.
	run acurl -X PUT --data '{"Node":"n3","Address":"10.0.0.3",
	    "Check":{"CheckID":"other","Name":"o","Status":"critical"}}' \
	    "$(A /v1/catalog/register)"
	[ "$(body)" = true ]
	run acurl "$(A /v1/health/node/n2)"
	[ "$(header X-Consul-Index)" = "$idx" ]
	[[ "$(body)" != *'"other"'* ]]
	run acurl "$(A /v1/health/node/nope)"
	[ "$(status)" = 200 ]
	[ "$(body)" = '[]' ]
}

@test "kv put, get, raw, keys, recurse, cas, delete" {
	run acurl -X PUT --data-binary 'hello' "$(A '/v1/kv/app/a?flags=7')"
	[ "$(body)" = true ]
	run acurl -X PUT --data-binary 'x' "$(A '/v1/kv/app/sub/b')"
	[ "$(body)" = true ]
	run acurl "$(A /v1/kv/app/a)"
	[ "$(status)" = 200 ]
	[[ "$(body)" == *'"Value":"aGVsbG8="'* ]]
	[[ "$(body)" == *'"Flags":7'* ]]
	run acurl "$(A '/v1/kv/app/a?raw')"
	[ "$(body)" = hello ]
	run acurl "$(A '/v1/kv/app/?keys&separator=/')"
	[ "$(body)" = '["app/a","app/sub/"]' ]
	run acurl "$(A '/v1/kv/app?recurse')"
	[[ "$(body)" == *'"Key":"app/sub/b"'* ]]
	run acurl -X PUT --data-binary 'no' "$(A '/v1/kv/app/a?cas=0')"
	[ "$(body)" = false ]
	run acurl "$(A /v1/kv/missing)"
	[ "$(status)" = 404 ]
	[ "$(header X-Consul-Index)" -ge 1 ]
	run acurl -X DELETE "$(A '/v1/kv/app?recurse')"
	[ "$(body)" = true ]
	run acurl "$(A '/v1/kv/app?recurse')"
	[ "$(status)" = 404 ]
}

@test "kv refuses values over 512 KiB with 413" {
	head -c 600000 /dev/zero >"$BATS_TEST_TMPDIR/big"
	run acurl -X PUT --data-binary "@$BATS_TEST_TMPDIR/big" \
	    "$(A /v1/kv/big)"
	[ "$(status)" = 413 ]
}

@test "status leader and peers name the servers" {
	run acurl "$(A /v1/status/leader)"
	[[ "$(body)" == '"127.0.0.'* ]]
	run acurl "$(A /v1/status/peers)"
	[ "$(body | jpy 'len(d)')" = 3 ]
}

@test "bad input: 400 with a short reason, agent keeps serving" {
	run acurl -X PUT --data '{not json' "$(A /v1/catalog/register)"
	[ "$(status)" = 400 ]
	[[ "$(body)" == "Request decode failed"* ]]
	[[ "$(header Content-Type)" == text/plain* ]]
	run acurl -X PUT --data '{"Node":"x"}' "$(A /v1/catalog/register)"
	[ "$(status)" = 400 ]
	run acurl "$(A '/v1/catalog/services?stale&consistent')"
	[ "$(status)" = 400 ]
	run acurl "$(A '/v1/catalog/services?index=abc')"
	[ "$(status)" = 400 ]
	run acurl "$(A '/v1/catalog/services?index=1&wait=5d')"
	[ "$(status)" = 400 ]
	run acurl -X DELETE "$(A /v1/catalog/services)"
	[ "$(status)" = 405 ]
	[ -n "$(header Allow)" ]
	run acurl "$(A /v1/nowhere)"
	[ "$(status)" = 404 ]
	run acurl "$(A /v1/status/leader)"
	[ "$(status)" = 200 ]
}

@test "a blocking query returns on a change of its service" {
	local idx out="$BATS_TEST_TMPDIR/watch" pid
	run acurl "$(A /v1/health/service/blk)"
	idx=$(header X-Consul-Index)
	acurl "$(A "/v1/health/service/blk?index=$idx&wait=20s")" >"$out" &
	pid=$!
	sleep 1
	run acurl -X PUT --data '{"Node":"n3","Address":"10.0.0.3",
	    "Service":{"Service":"blk","Port":1}}' "$(A /v1/catalog/register)"
	[ "$(body)" = true ]
	wait "$pid"
	grep -q '"Service":"blk"' "$out"
	run cat "$out"
	[ "$(header X-Consul-Index)" -gt "$idx" ]
}

@test "a blocking query with wait=1s times out with the same index" {
	local idx start
	run acurl "$(A /v1/catalog/service/quiet)"
	idx=$(header X-Consul-Index)
	start=$SECONDS
	run acurl "$(A "/v1/catalog/service/quiet?index=$idx&wait=1s")"
	[ "$(status)" = 200 ]
	[ "$(header X-Consul-Index)" = "$idx" ]
	[ $((SECONDS - start)) -le 5 ]
}

# stat NAME: agent 1's HTTP counter NAME (Stats.http of /v1/agent/self).
stat() {
	curl -s "$(A /v1/agent/self)" | jpy "d['Stats']['http']['$1']"
}
# pending: upstream calls agent 1 has in flight.
pending() {
	curl -s "$(A /v1/agent/self)" | jpy 'd["Stats"]["agent"]["pending_calls"]'
}
stat_is() { [ "$(stat "$1")" = "$2" ]; }

@test "a client that goes away frees its parked query" {
	local idx gone parked
	run acurl "$(A /v1/catalog/service/gone)"
	idx=$(header X-Consul-Index)
	gone=$(stat client_gone)
	parked=$(stat parked)
	# The watcher gives up after 2 s, long before its 60 s wait.
	run curl -s --max-time 2 \
	    "$(A "/v1/catalog/service/gone?index=$idx&wait=60s")"
	[ "$status" -eq 28 ]
	wait_until 10 stat_is client_gone "$((gone + 1))"
	wait_until 10 stat_is parked "$parked"
}

@test "a watcher of one service does not wake for another" {
	local idx start
	run acurl "$(A /v1/health/service/calm)"
	idx=$(header X-Consul-Index)
	start=$SECONDS
	(sleep 1; curl -s -X PUT --data '{"Node":"n4","Address":"10.0.0.4",
	    "Service":{"Service":"noisy","Port":1}}' \
	    "$(A /v1/catalog/register)" >/dev/null) &
	run acurl "$(A "/v1/health/service/calm?index=$idx&wait=3s")"
	wait
	[ "$(status)" = 200 ]
	[ "$(header X-Consul-Index)" = "$idx" ]
	[ $((SECONDS - start)) -ge 3 ]
}

@test "three hundred parked blocking queries, all woken by one change" {
	local idx
	run acurl "$(A /v1/health/service/many)"
	idx=$(header X-Consul-Index)
	python3 - "$(agt_ip 1)" "$(agt_port 1)" "$idx" \
	    "$BATS_TEST_TMPDIR/many" <<'PY' &
import socket, sys, time
ip, port, idx, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
socks = []
for _ in range(300):
    s = socket.create_connection((ip, port), timeout=60)
    s.sendall(("GET /v1/health/service/many?index=%s&wait=60s HTTP/1.1\r\n"
               "Host: x\r\n\r\n" % idx).encode())
    socks.append(s)
ok = 0
for s in socks:
    data = b""
    while b'"Service":"many"' not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    ok += b'"Service":"many"' in data
    s.close()
open(out, "w").write("%d\n" % ok)
PY
	wait_until 60 test_pending_at_least 300
	run acurl -X PUT --data '{"Node":"n5","Address":"10.0.0.5",
	    "Service":{"Service":"many","Port":1}}' "$(A /v1/catalog/register)"
	[ "$(body)" = true ]
	wait
	[ "$(cat "$BATS_TEST_TMPDIR/many")" = 300 ]
}
test_pending_at_least() { [ "$(pending)" -ge "$1" ]; }

@test "a second agent takes its settings from --config" {
	local conf=$BATS_FILE_TMPDIR/a2.json m servers=''
	dsc_find_agent
	mkdir -p "$(agt_dir 2)"
	pick_port "$(agt_ip 2)" >"$(agt_dir 2)/port"
	for m in $(members); do
		servers="$servers${servers:+,}\"$(srv_addr "$m")\""
	done
	cat >"$conf" <<JSON
{"name":"a2","bind":"$(agt_ip 2)","http":"$(agt_http 2)",
 "servers":[$servers],"data_dir":"$(agt_data 2)",
 "key_file":"$DSC_KEY","log_level":"debug"}
JSON
	# --data-dir again on the command line (the same value: flags win)
	# so that stop_agent recognises the process as ours.
	agent_launch 2 --config "$conf" --data-dir "$(agt_data 2)"
	run curl -s "$(agt_url 2)/v1/agent/self"
	[ "$(echo "$output" | jpy 'd["Config"]["NodeName"]')" = a2 ]
	run -0 stop_agent 2
	[ "$(agt_status 2)" = 0 ]
}

@test "bad command lines and keys: exit 2 and 4" {
	dsc_find_agent
	run -2 "$DSC_AGENT" --no-such-flag
	run -2 "$DSC_AGENT" --name a9 --data-dir "$BATS_TEST_TMPDIR/d" \
	    --key-file "$DSC_KEY"
	cp "$DSC_KEY" "$BATS_TEST_TMPDIR/open.key"
	chmod 644 "$BATS_TEST_TMPDIR/open.key"
	run -4 "$DSC_AGENT" --name a9 --server 127.0.0.2:1 \
	    --data-dir "$BATS_TEST_TMPDIR/d" --key-file "$BATS_TEST_TMPDIR/open.key"
	run -0 "$DSC_AGENT" --help
	[[ "$output" == *"--enable-script-checks"* ]]
}

@test "agent self, members, services and checks" {
	run acurl "$(A /v1/agent/self)"
	[ "$(body | jpy 'd["Config"]["NodeName"]')" = a1 ]
	[ "$(body | jpy 'd["Config"]["Datacenter"]')" = dc1 ]
	run acurl "$(A /v1/agent/members)"
	[ "$(status)" = 200 ]
	[[ "$(body)" == *'"Name":"s1"'* ]]
	run acurl "$(A /v1/agent/services)"
	[ "$(status)" = 200 ]
	run acurl "$(A /v1/agent/checks)"
	[ "$(status)" = 200 ]
}

@test "agent service and TTL check round trip" {
	run acurl -X PUT --data '{"name":"api","id":"api-1","port":9000,
	    "check":{"ttl":"30s"}}' "$(A /v1/agent/service/register)"
	[ "$(status)" = 200 ]
	run acurl "$(A /v1/agent/service/api-1)"
	[[ "$(body)" == *'"Service":"api"'* ]]
	run acurl "$(A '/v1/agent/check/pass/service:api-1?note=ok')"
	[ "$(status)" = 200 ]
	run acurl "$(A '/v1/health/service/api?passing')"
	[[ "$(body)" == *'"api-1"'* ]]
	run acurl "$(A /v1/agent/check/pass/nope)"
	[ "$(status)" = 500 ]
	[[ "$(body)" == *'CheckID "nope" does not have associated TTL'* ]]
	run acurl "$(A /v1/agent/service/deregister/api-1)"
	[ "$(status)" = 200 ]
	run acurl "$(A /v1/agent/service/api-1)"
	[ "$(status)" = 404 ]
}

@test "POST /rpc answers agent methods and forwards the rest" {
	run "$DSC_RPC" -k "$DSC_KEY" -b "$DSC_CLIENT_IP" -t 10 \
	    -s "$(agt_http 1)" agent.self
	[ "$status" -eq 0 ]
	[[ "$output" == *'"name":"a1"'* ]]
	run "$DSC_RPC" -k "$DSC_KEY" -b "$DSC_CLIENT_IP" -t 10 \
	    -s "$(agt_http 1)" status.leader
	[ "$status" -eq 0 ]
	[[ "$output" == *'"leader":"127.0.0.'* ]]
	run "$DSC_RPC" -k "$DSC_KEY" -b "$DSC_CLIENT_IP" -t 10 \
	    -s "$(agt_http 1)" kv.get '{"Key":"no/such"}'
	[ "$status" -eq 1 ]
	run "$DSC_RPC" -k "$DSC_KEY" -b "$DSC_CLIENT_IP" -t 10 \
	    -s "$(agt_http 1)" --no-auth status.leader
	[ "$status" -eq 4 ]
}

@test "a killed server: the agent fails over" {
	local l f
	l=$(wait_for_leader)
	for f in $(members); do [ "$f" = "$l" ] || break; done
	kill9_server "$f"
	run acurl -X PUT --data-binary 'v' "$(A /v1/kv/failover)"
	[ "$(body)" = true ]
	run acurl "$(A /v1/kv/failover)"
	[ "$(status)" = 200 ]
	restart_server "$f"
}

@test "no server answers: a stale read comes from the last answer" {
	run acurl "$(A '/v1/catalog/services?stale')"
	[ "$(status)" = 200 ]
	local want
	want=$(body)
	for n in $(members); do stop_server "$n" KILL || true; done
	run acurl "$(A '/v1/catalog/services?stale')"
	[ "$(status)" = 200 ]
	[ "$(body)" = "$want" ]
	[ "$(header X-Consul-KnownLeader)" = false ]
	[ -n "$(header X-Consul-LastContact)" ]
	run acurl "$(A '/v1/catalog/services')"
	[ "$(status)" = 500 ]
}
