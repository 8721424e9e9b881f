#!/usr/bin/env bats
# 13-server-liveness.bats - node liveness on a three-server cluster with a
# short node TTL: heartbeats (node.heartbeat) keep a node's serfHealth check
# passing, silence turns it critical and drops the node's services from
# passing answers, a new leader gives every node a full TTL of grace, and
# status.members and status.peers say who is alive and reachable.
#
# The tests run in order on one cluster; each says what it expects to find.

load helpers

# Short, but long enough for a few dsc-rpc calls in a row (each one a
# process start, under ASan, on a loaded machine) to fit in it.
TTL=5
# A node goes critical between TTL and 1.25 TTL after its last heartbeat,
# plus a commit; the rest is slack.
CRITICAL_WAIT=30

setup_file() {
	dsc_setup_file
	start_cluster 3 --node-ttl "${TTL}s"
}
teardown_file() { stop_all; }
teardown() {
	quiet
	dump_logs_on_failure
}

# beat NODE [dsc-rpc args...]: one heartbeat for NODE, wherever the leader is.
beat() {
	local node=$1
	shift
	rpc_any node.heartbeat "{\"Node\":\"$node\",\"Address\":\"127.0.9.1\"}" \
	    "$@"
}

# serf_of NODE: "STATUS MODIFYINDEX" of NODE's serfHealth check, or "none".
serf_of() {
	rpc_any health.state '{"State":"any"}' | jpy "next(('%s %d' % (c['Status'],
	    c['ModifyIndex']) for c in d['checks'] if c['Node'] == '$1' and
	    c['CheckID'] == 'serfHealth'), 'none')"
}

serf_is() { [ "$(serf_of "$1" | cut -d' ' -f1)" = "$2" ]; }

# passing SERVICE: the nodes of SERVICE's instances whose checks all pass.
passing() {
	rpc_any health.service "{\"Service\":\"$1\",\"Passing\":true}" |
	    jpy '" ".join(sorted(i["Node"]["Node"] for i in d["instances"]))'
}

# register NODE SERVICE: a service with a passing check on existing NODE.
register() {
	rpc_any -w catalog.register "{\"Node\":\"$1\",\"SkipNodeUpdate\":true,
	    \"Service\":{\"ID\":\"$2-1\",\"Service\":\"$2\",\"Port\":80},
	    \"Check\":{\"CheckID\":\"service:$2-1\",\"ServiceID\":\"$2-1\",
	    \"Status\":\"passing\"}}"
}

# members_of N [PARAMS]: server N's status.members as
# "name type role status" lines.
members_of() {
	local params=${2:-'{}'}
	rpc "$1" status.members "$params" -t 3 |
	    jpy '"\n".join("%s %s %s %s" % (m["Name"], m["Type"],
	        m["Role"] or "-", m["Status"]) for m in d["members"])'
}

# beat_loop NODE SECS: heartbeats every 0.3 s for SECS seconds; each call
# is bounded to 1 s so a call stuck in an election does not starve the
# next one.
beat_loop() {
	local deadline=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$deadline" ]; do
		DSC_RPC_TIMEOUT=1 beat "$1" >/dev/null 2>&1
		sleep 0.3
	done
}

# beating NODE: a beat_loop in the background (for at most a minute) until
# quiet, so that checks which take several slow calls see NODE alive.
beating() {
	beat_loop "$1" 60 3>&- &
	echo $! >>"$BATS_FILE_TMPDIR/beaters"
}
quiet() {
	local pid
	[ -f "$BATS_FILE_TMPDIR/beaters" ] || return 0
	while read -r pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done <"$BATS_FILE_TMPDIR/beaters"
	rm -f "$BATS_FILE_TMPDIR/beaters"
}

@test "a heartbeat creates the node with serfHealth passing" {
	local n
	run -0 beat a1
	beating a1
	[ "$(jpy 'd["ok"]' <<<"$output")" = true ]
	[ "$(jpy 'd["ttl_ms"]' <<<"$output")" -eq $((TTL * 1000)) ]
	[ "$(jpy 'd["index"]' <<<"$output")" -gt 0 ]
	run -0 rpc_any catalog.node '{"Node":"a1"}'
	[ "$(jpy 'd["node"]["Address"]' <<<"$output")" = 127.0.9.1 ]
	run -0 rpc_any health.state '{"State":"passing"}'
	n=$(jpy "[c for c in d['checks'] if c['Node'] == 'a1']" <<<"$output")
	[ "$(jpy 'd[0]["CheckID"]' <<<"$n")" = serfHealth ]
	[ "$(jpy 'd[0]["Name"]' <<<"$n")" = "Serf Health Status" ]
	[ "$(jpy 'd[0]["Output"]' <<<"$n")" = "Agent alive and reachable" ]
	run -0 register a1 web
	# A node of someone else's, with no serfHealth: liveness leaves it be.
	run -0 rpc_any -w catalog.register '{"Node":"plain","Address":"127.0.9.2",
	    "Service":{"ID":"web-1","Service":"web","Port":80}}'
	[ "$(passing web)" = "a1 plain" ]
}

@test "only the leader takes heartbeats; bad ones are refused" {
	local leader f
	leader=$(wait_for_leader)
	f=$((leader % 3 + 1))
	run -3 rpc "$f" node.heartbeat '{"Node":"a1","Address":"127.0.9.1"}' \
	    -t 2
	[[ "$output" == *"not the leader"* ]]
	run -0 rpc "$leader" node.heartbeat \
	    '{"Node":"a1","Address":"127.0.9.1"}'
	run -4 rpc "$leader" node.heartbeat '{"Node":"a1"}'
	[[ "$output" == *"'Address' is required"* ]]
	run -4 rpc "$leader" node.heartbeat \
	    '{"Node":"a b","Address":"127.0.9.1"}'
	run -4 rpc "$leader" node.heartbeat \
	    '{"Node":"a1","Address":"127.0.9.1","Extra":1}'
	[[ "$output" == *"unknown param 'Extra'"* ]]
	# The name the catalog refused left no node behind.
	run -1 rpc "$leader" catalog.node '{"Node":"a b"}'
}

@test "a silent node turns critical within the TTL and its services stop passing" {
	local start before
	run -0 beat a1
	start=$SECONDS
	wait_until "$CRITICAL_WAIT" serf_is a1 critical
	# Not before the TTL ran out.
	[ $((SECONDS - start)) -ge $((TTL - 1)) ]
	run -0 rpc_any health.state '{"State":"critical"}'
	[ "$(jpy "[c['Output'] for c in d['checks'] if c['Node'] == 'a1']" \
	    <<<"$output")" = '["Agent not live or unreachable"]' ]
	[ "$(passing web)" = plain ]
	# Still in the catalog, just not healthy.
	run -0 rpc_any catalog.service '{"Service":"web"}'
	[ "$(jpy 'len(d["instances"])' <<<"$output")" -eq 2 ]
	# The other node was never touched.
	[ "$(serf_of plain)" = none ]
	# It stays critical while silent: no more writes to it.
	before=$(serf_of a1)
	sleep "$TTL"
	[ "$(serf_of a1)" = "$before" ]
}

@test "a heartbeat brings a critical node back" {
	serf_is a1 critical
	run -0 beat a1
	beating a1
	# Answered once the registration committed: passing at once.
	serf_is a1 passing
	[ "$(passing web)" = "a1 plain" ]
}

@test "status.members lists the servers first, then the agents' nodes" {
	local leader n
	leader=$(wait_for_leader)
	run -0 beat a1
	run -0 beat a2
	beating a1
	beating a2
	run -0 members_of "$leader"
	[ "${lines[0]%% *}" = s1 ]
	[ "${lines[1]%% *}" = s2 ]
	[ "${lines[2]%% *}" = s3 ]
	[ "$(grep -c '^s. server ' <<<"$output")" -eq 3 ]
	grep -qx "s$leader server leader alive" <<<"$output"
	[ "${lines[3]%% *}" = a1 ]
	[ "${lines[4]}" = "a2 client - alive" ]
	# Nodes without serfHealth are not members.
	run ! grep -q '^plain ' <<<"$output"
	run -0 rpc "$leader" status.members
	[ "$(jpy 'd["members"][0]["Build"]' <<<"$output")" != "" ]
	[ "$(jpy 'd["members"][0]["DC"]' <<<"$output")" = dc1 ]
	[ "$(jpy 'd["members"][3]["Addr"]' <<<"$output")" = 127.0.9.1 ]
	# Every server tells the same story about who is a member.
	for n in 1 2 3; do
		run -0 members_of "$n"
		[ "${#lines[@]}" -eq 5 ]
	done
	# a2 falls silent and shows as failed.
	quiet
	wait_until "$CRITICAL_WAIT" serf_is a2 critical
	run -0 members_of "$leader"
	grep -qx "a2 client - failed" <<<"$output"
}

@test "kill -9 the leader: the new one gives grace and a beating node never flaps" {
	local old new before i survivors loop
	old=$(wait_for_leader)
	run -0 beat steady
	serf_is steady passing
	before=$(serf_of steady)
	beat_loop steady $((6 * TTL + 20)) 3>&- &
	loop=$!
	sleep 1
	run -0 beat quiet
	kill9_server "$old"
	echo "$old" >"$BATS_FILE_TMPDIR/killed"
	survivors=$(for i in 1 2 3; do [ "$i" = "$old" ] || echo "$i"; done)
	# shellcheck disable=SC2086 # a list of numbers
	set_members $survivors
	# shellcheck disable=SC2086
	new=$(wait_for_leader "$DSC_LEADER_WAIT" $survivors)
	[ "$new" != "$old" ]
	# The silent one is marked, by a new leader, after its grace...
	wait_until $((CRITICAL_WAIT + TTL)) serf_is quiet critical
	# ... and a few TTLs on, the beating one was never written to: no
	# leader marked it, though none but the first had heard from it
	# when it took over.
	sleep $((2 * TTL))
	[ "$(serf_of steady)" = "$before" ]
	kill "$loop" 2>/dev/null || true
	wait "$loop" || true
	run -1 grep -l "liveness: node 'steady' silent" \
	    "$(srv_log 1)" "$(srv_log 2)" "$(srv_log 3)"
	for i in $survivors; do
		grep -q "liveness: node 'quiet' silent" "$(srv_log "$i")" &&
		    return 0
	done
	echo "no survivor marked 'quiet'"
	false
}

@test "a dead server is failed and unreachable on the leader" {
	local dead leader f
	dead=$(cat "$BATS_FILE_TMPDIR/killed")
	leader=$(wait_for_leader)
	run -0 members_of "$leader" '{"Leader":true}'
	grep -qx "s$dead server voter failed" <<<"$output"
	grep -qx "s$leader server leader alive" <<<"$output"
	run -0 rpc "$leader" status.peers '{"Leader":true}'
	[ "$(jpy "[p['reachable'] for p in d['peers'] if p['name'] == 's$dead']" \
	    <<<"$output")" = '[false]' ]
	[ "$(jpy "[p['reachable'] for p in d['peers'] if p['name'] == 's$leader']" \
	    <<<"$output")" = '[true]' ]
	[ "$(jpy "[p['last_contact_ms'] for p in d['peers'] if p['name'] == 's$dead'][0]" \
	    <<<"$output")" -gt 0 ]
	# Only the leader knows: a follower refuses, and failover finds it.
	for f in $(members); do
		[ "$f" = "$leader" ] || break
	done
	run -3 rpc "$f" status.members '{"Leader":true}' -t 2
	[[ "$output" == *"not the leader"* ]]
	run -0 rpc_any status.members '{"Leader":true}'
	run -4 rpc "$leader" status.peers '{"Leader":"yes"}'
	# Back, and reachable again.
	restart_server "$dead" --node-ttl "${TTL}s"
	set_members 1 2 3
	wait_for_leader >/dev/null
	is_up() {
		members_of "$(wait_for_leader)" '{"Leader":true}' |
		    grep -qx "s$dead server voter alive"
	}
	wait_until 30 is_up
}

@test "--node-ttl and node_ttl take a duration of 1s to 1h" {
	local d=$BATS_FILE_TMPDIR/ttl
	run -2 "$DSC_SERVER" --name x --data-dir "$d" --key-file "$DSC_KEY" \
	    --node-ttl 10
	[[ "$output" == *"--node-ttl: "*"'10'"* ]]
	run -2 "$DSC_SERVER" --name x --data-dir "$d" --key-file "$DSC_KEY" \
	    --node-ttl 500ms
	[[ "$output" == *"from 1s to 1h"* ]]
	run -2 "$DSC_SERVER" --name x --data-dir "$d" --key-file "$DSC_KEY" \
	    --node-ttl 2h
	echo '{"node_ttl":true}' >"$d.json"
	run -4 "$DSC_SERVER" --config "$d.json" --name x --data-dir "$d" \
	    --key-file "$DSC_KEY"
	[[ "$output" == *"node_ttl"* ]]
}
