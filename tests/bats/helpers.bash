# shellcheck shell=bash
# helpers.bash - real dsc-server processes on 127.0.0.x for the bats tests.
#
# Server N (1..5) is named sN, listens on 127.0.0.(N+1) (TESTING.md 4) on a
# port picked at random and checked free, and keeps everything under
# $BATS_FILE_TMPDIR/sN: data/ (its data dir), log, pid, port and status
# (its exit status once it ended). State lives in files, not variables,
# because every test runs in its own subshell: a test that restarts a server
# leaves the new PID for the next test and for teardown_file. Processes are
# stopped by the PID they were started with, checked against
# /proc/PID/cmdline so a reused PID is never signalled; never by name.
#
# Tools come from $DSC_BUILD (default: the sanitized build when it has
# dsc-server, else build/). Clients bind to 127.0.2.1. Every wait is
# bounded; timeouts are generous because the tests run under ASan on
# loaded two-core machines.
#
# Use from a .bats file:
#	load helpers
#	setup_file() { dsc_setup_file; start_cluster 3; }
#	teardown_file() { stop_all; }
#	teardown() { dump_logs_on_failure; }

bats_require_minimum_version 1.5.0

DSC_TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
DSC_CLIENT_IP=127.0.2.1
# Fast elections for tests: 50 ms ticks, elections after 0.5-1 s.
DSC_TUNING=(--tick-ms 50 --election-ticks 10)
# Bounds, in seconds.
DSC_START_WAIT=${DSC_START_WAIT:-30}
DSC_LEADER_WAIT=${DSC_LEADER_WAIT:-30}
DSC_CONVERGE_WAIT=${DSC_CONVERGE_WAIT:-40}
DSC_STOP_WAIT=${DSC_STOP_WAIT:-20}
DSC_RPC_TIMEOUT=${DSC_RPC_TIMEOUT:-10}

# ---- binaries -------------------------------------------------------------

dsc_find_build() {
	local d
	if [ -n "${DSC_BUILD:-}" ]; then
		d=$DSC_BUILD
	elif [ -x "$DSC_TOP/build/san-address-undefined/dsc-server" ]; then
		d=$DSC_TOP/build/san-address-undefined
	else
		d=$DSC_TOP/build
	fi
	case $d in
	/*) ;;
	*) d=$DSC_TOP/$d ;;
	esac
	DSC_SERVER=$d/dsc-server
	DSC_RPC=$d/tests/tools/dsc-rpc
	DSC_WALCHECK=$d/tests/tools/walcheck
	export DSC_SERVER DSC_RPC DSC_WALCHECK
}

# Sanitizer reports must fail the process and say where (LSan included).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# setup_file's first call: binaries, the cluster key, a fresh state dir.
dsc_setup_file() {
	dsc_find_build
	local b
	for b in "$DSC_SERVER" "$DSC_RPC"; do
		if [ ! -x "$b" ]; then
			echo "# not built: $b (run make)" >&3
			return 1
		fi
	done
	DSC_KEY=$BATS_FILE_TMPDIR/cluster.key
	export DSC_KEY
	[ -e "$DSC_KEY" ] || "$DSC_SERVER" keygen "$DSC_KEY"
}

# ---- per-server state -----------------------------------------------------

srv_dir() { echo "$BATS_FILE_TMPDIR/s$1"; }
srv_ip() { echo "127.0.0.$(($1 + 1))"; }
srv_port() { cat "$(srv_dir "$1")/port"; }
srv_addr() { echo "$(srv_ip "$1"):$(srv_port "$1")"; }
srv_data() { echo "$(srv_dir "$1")/data"; }
srv_log() { echo "$(srv_dir "$1")/log"; }
srv_pid() { cat "$(srv_dir "$1")/pid" 2>/dev/null; }

# The servers that are members of the cluster, as "1 2 3".
members() { cat "$BATS_FILE_TMPDIR/members" 2>/dev/null; }
set_members() { echo "$*" >"$BATS_FILE_TMPDIR/members"; }

# Is PID (one of ours: its command line names our data dir) running?
pid_is_ours() {
	local pid=$1 dir=$2 state
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' \
	    "/proc/$pid/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$dir"
}

srv_running() { pid_is_ours "$(srv_pid "$1")" "$(srv_data "$1")"; }

# A random port in 10000-32767 (below the kernel's ephemeral range, so an
# outgoing connection never holds it) that IP can bind now.
pick_port() {
	local ip=$1 port i
	for i in $(seq 1 50); do
		port=$((10000 + RANDOM % 22768))
		if python3 - "$ip" "$port" <<'EOF'; then
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
EOF
			echo "$port"
			return 0
		fi
	done
	echo "pick_port: no free port on $ip after $i tries" >&2
	return 1
}

# ---- JSON and calls ---------------------------------------------------------

# jpy EXPR: evaluates the Python expression EXPR over d, the JSON on stdin;
# prints strings bare, other values as JSON.
jpy() {
	python3 -c '
import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
' "$1"
}

# rpc N METHOD [PARAMS] [dsc-rpc options...]: one call to server N only.
rpc() {
	local n=$1
	shift
	"$DSC_RPC" -k "$DSC_KEY" -b "$DSC_CLIENT_IP" -t "$DSC_RPC_TIMEOUT" \
	    -s "$(srv_addr "$n")" "$@"
}

# rpc_any METHOD [PARAMS]: a call that fails over across every member.
rpc_any() {
	local args=() n
	for n in $(members); do
		args+=(-s "$(srv_addr "$n")")
	done
	"$DSC_RPC" -k "$DSC_KEY" -b "$DSC_CLIENT_IP" -t "$DSC_RPC_TIMEOUT" \
	    "${args[@]}" "$@"
}

# ---- starting and stopping ----------------------------------------------------

# launch N ARGS...: starts dsc-server as server N in the background and
# waits until it accepts connections or exits. Returns 0 when up, else the
# server's exit status, with the end of its log on stderr. A wrapper
# subshell waits for the server and writes its exit status to sN/status,
# so any test can learn how a server ended (a shell can wait only for its
# own children), and a kill -9 is noted in the server's log rather than as
# job noise in the test's output.
launch() {
	local n=$1
	shift
	proc_launch "server s$n" "$(srv_dir "$n")" "$(srv_ip "$n")" \
	    "$(srv_port "$n")" "$DSC_SERVER" "$@"
}

# proc_launch WHAT DIR IP PORT PROGRAM ARGS...: what launch and
# agent_launch share: starts PROGRAM with ARGS, its output in DIR/log, its
# PID in DIR/pid and, once it ends, its exit status in DIR/status, and
# waits until IP:PORT accepts connections or it exits.
proc_launch() {
	local what=$1 dir=$2 ip=$3 port=$4 prog=$5 rc
	shift 5
	mkdir -p "$dir"
	rm -f "$dir/pid" "$dir/status"
	echo "--- start: ${prog##*/} $*" >>"$dir/log"
	(
		"$prog" "$@" </dev/null >>"$dir/log" 2>&1 &
		echo $! >"$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
		rc=0
		wait $! || rc=$?
		echo "--- exited $rc" >>"$dir/log"
		echo "$rc" >"$dir/status"
	) >>"$dir/log" 2>&1 3>&- &
	for _ in $(seq 1 $((DSC_START_WAIT * 10))); do
		if [ -f "$dir/status" ]; then
			rc=$(cat "$dir/status")
			echo "$what exited $rc at start:" >&2
			tail -n 20 "$dir/log" >&2
			return $((rc == 0 ? 1 : rc))
		fi
		if [ -f "$dir/pid" ] &&
		    (exec 9<>"/dev/tcp/$ip/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "$what did not open its port in ${DSC_START_WAIT}s" >&2
	return 1
}

# srv_status N: how server N last ended (its exit status), or nothing
# while it runs.
srv_status() { cat "$(srv_dir "$1")/status" 2>/dev/null; }

# first_start N ARGS...: server N's first start, on the port in sN/port:
# --name sN --bind IP:PORT --data-dir --key-file, DSC_TUNING and ARGS
# (e.g. --bootstrap-expect 3 --join ...). SRV_KEY=FILE in the environment
# gives it another key than the cluster's.
first_start() {
	local n=$1
	shift
	launch "$n" --name "s$n" --bind "$(srv_addr "$n")" \
	    --data-dir "$(srv_data "$n")" --key-file "${SRV_KEY:-$DSC_KEY}" \
	    "${DSC_TUNING[@]}" "$@"
}

# start_server N ARGS...: first_start on a port picked now. A port taken
# between the pick and the start (exit 3) is replaced, a few times.
start_server() {
	local n=$1 rc
	shift
	mkdir -p "$(srv_dir "$n")"
	for _ in 1 2 3 4 5; do
		pick_port "$(srv_ip "$n")" >"$(srv_dir "$n")/port" || return 1
		rc=0
		first_start "$n" "$@" || rc=$?
		[ "$rc" -eq 3 ] || break
		rm -rf "$(srv_data "$n")"
	done
	return "$rc"
}

# restart_server N [ARGS...]: starts N again from its data dir alone.
restart_server() {
	local n=$1
	shift
	launch "$n" --data-dir "$(srv_data "$n")" --key-file "$DSC_KEY" \
	    "${DSC_TUNING[@]}" "$@"
}

# start_cluster N [ARGS...]: servers 1..N, each expecting N and joining the
# others (so their ports are picked first); returns once they agree on a
# leader.
start_cluster() {
	local count=$1 n m joins
	shift
	set_members "$(seq -s ' ' 1 "$count")"
	for n in $(members); do
		mkdir -p "$(srv_dir "$n")"
		pick_port "$(srv_ip "$n")" >"$(srv_dir "$n")/port" || return 1
	done
	for n in $(members); do
		joins=()
		for m in $(members); do
			[ "$m" = "$n" ] || joins+=(--join "$(srv_addr "$m")")
		done
		first_start "$n" --bootstrap-expect "$count" "${joins[@]}" \
		    "$@" || return 1
	done
	wait_for_leader "$DSC_LEADER_WAIT" >/dev/null
}

# wait_stopped N SECS: waits for server N's exit status; 1 on timeout.
wait_stopped() {
	local n=$1
	for _ in $(seq 1 $(($2 * 10))); do
		[ -z "$(srv_status "$n")" ] || return 0
		sleep 0.1
	done
	return 1
}

# stop_server N [SIG]: SIG (default TERM) to server N, then waits for its
# exit status (srv_status); KILL after DSC_STOP_WAIT seconds. Returns 0
# when it ended by itself, 1 when KILL was needed.
stop_server() {
	local n=$1 sig=${2:-TERM} pid
	pid=$(srv_pid "$n")
	[ -n "$pid" ] || return 0
	if srv_running "$n"; then
		kill "-$sig" "$pid" 2>/dev/null
	fi
	wait_stopped "$n" "$DSC_STOP_WAIT" && return 0
	echo "server s$n (pid $pid) ignored SIG$sig for ${DSC_STOP_WAIT}s;" \
	    "killing it (stacks in its log)" >&2
	stacks "$pid" >>"$(srv_log "$n")" 2>&1
	kill -KILL "$pid" 2>/dev/null
	wait_stopped "$n" 5
	return 1
}

# stacks PID: where a stuck process is, for its log: kernel state and, when
# gdb is there, every thread's stack.
stacks() {
	echo "--- pid $1 stuck: $(grep '^State:' "/proc/$1/status")," \
	    "wchan $(cat "/proc/$1/wchan" 2>/dev/null)"
	if command -v gdb >/dev/null 2>&1; then
		timeout -k 5 30 gdb -p "$1" -batch -ex 'thread apply all bt' \
		    </dev/null 2>&1 | grep -E '^(#|Thread)'
	fi
}

kill9_server() { stop_server "$1" KILL; }

# teardown_file: stops every server this file started, by PID: SIGTERM to
# all at once, as at a machine's shutdown (stopping one after another is
# the rolling-restart case, which 10-server-cluster.bats tests on its
# own), then waits for each. Fails when one does not exit 0 on SIGTERM (a
# hang, a crash, a sanitizer report, a leak at exit).
stop_all() {
	local d n running='' bad=''
	for d in "$BATS_FILE_TMPDIR"/s*/; do
		[ -f "$d/pid" ] || continue
		n=${d%/}
		n=${n##*/s}
		srv_running "$n" || continue
		kill -TERM "$(srv_pid "$n")" 2>/dev/null
		running="$running $n"
	done
	for n in $running; do
		if ! stop_server "$n" TERM; then
			bad="$bad $n"
			echo "s$n ignored SIGTERM and was killed" >&2
		elif [ "$(srv_status "$n")" != 0 ]; then
			bad="$bad $n"
			echo "s$n exited $(srv_status "$n") on SIGTERM" >&2
		fi
	done
	for n in $bad; do
		echo "--- s$n log (last 40 lines)" >&2
		tail -n 40 "$(srv_log "$n")" >&2
	done
	[ -z "$bad" ]
}

# teardown: on failure, the end of every server's log.
dump_logs_on_failure() {
	logs_on_failure s
}

# logs_on_failure PREFIX: on failure, the end of the log of every process
# whose directory is PREFIX<n> (s: servers, a: agents).
logs_on_failure() {
	local d
	[ -z "${BATS_TEST_COMPLETED:-}" ] || return 0
	for d in "$BATS_FILE_TMPDIR/$1"*/; do
		[ -f "$d/log" ] || continue
		echo "--- ${d%/}/log (last 25 lines)"
		tail -n 25 "$d/log"
	done
}

# ---- the cluster's state ------------------------------------------------------

# wait_until SECS CMD...: polls CMD until it succeeds; 1 after SECS.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "gave up waiting for: $*" >&2
			return 1
		fi
		sleep 0.2
	done
}

# peers_of N: server N's status.peers as "name suffrage leader" lines.
peers_of() {
	rpc "$1" status.peers -t 3 |
	    jpy '"\n".join("%s %s %s" % (p["name"], p["suffrage"],
	        "leader" if p["leader"] else "-") for p in d["peers"])'
}

# leader_of N: the address server N says leads, or nothing.
leader_of() {
	rpc "$1" status.peers -t 3 2>/dev/null |
	    jpy 'next((p["addr"] for p in d["peers"] if p["leader"]), "")' \
	    2>/dev/null
}

# index_of_addr ADDR: the server number listening at ADDR.
index_of_addr() {
	local n
	for n in 1 2 3 4 5; do
		[ -f "$(srv_dir "$n")/port" ] || continue
		if [ "$(srv_addr "$n")" = "$1" ]; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# wait_for_leader [SECS] [SERVERS...]: waits until every running member
# (or each of SERVERS) names the same leader, which is one of them; prints
# its number.
wait_for_leader() {
	local secs=${1:-$DSC_LEADER_WAIT} list n l first deadline
	shift || true
	list=${*:-$(members)}
	deadline=$((SECONDS + secs))
	while [ "$SECONDS" -lt "$deadline" ]; do
		first=
		for n in $list; do
			srv_running "$n" || continue
			l=$(leader_of "$n")
			if [ -z "$l" ] || { [ -n "$first" ] && [ "$l" != "$first" ]; }
			then
				first=
				break
			fi
			first=$l
		done
		if [ -n "$first" ] && n=$(index_of_addr "$first") &&
		    srv_running "$n" && [[ " $list " == *" $n "* ]]; then
			echo "$n"
			return 0
		fi
		sleep 0.2
	done
	echo "no agreed leader among {$list} after ${secs}s" >&2
	for n in $list; do
		echo "s$n: $(rpc "$n" status.peers -t 3 2>&1)" >&2
	done
	return 1
}

# digest_of N: "INDEX DIGEST" of server N's local state (a stale read).
digest_of() {
	rpc "$1" status.digest '{"consistency":"stale"}' -t 3 2>/dev/null |
	    jpy 'str(d["index"]) + " " + d["digest"]' 2>/dev/null
}

# wait_converged [SERVERS...]: waits until every running member (or each
# of SERVERS) reports the same index and digest.
wait_converged() {
	local list=${*:-$(members)} n d first deadline ok
	deadline=$((SECONDS + DSC_CONVERGE_WAIT))
	while [ "$SECONDS" -lt "$deadline" ]; do
		ok=1 first=
		for n in $list; do
			d=$(digest_of "$n")
			if [ -z "$d" ] || { [ -n "$first" ] && [ "$d" != "$first" ]; }
			then
				ok=
				break
			fi
			first=$d
		done
		[ -z "$ok" ] || return 0
		sleep 0.3
	done
	echo "servers {$list} did not converge in ${DSC_CONVERGE_WAIT}s:" >&2
	for n in $list; do
		echo "s$n: $(digest_of "$n")" >&2
	done
	return 1
}

# ---- data -------------------------------------------------------------------

# put_key KEY VALUE [dsc-rpc args...]: a KV write through any member.
put_key() {
	local key=$1 val
	val=$(printf '%s' "$2" | base64 -w0)
	shift 2
	rpc_any -w kv.put "{\"Key\":\"$key\",\"Value\":\"$val\"}" "$@"
}

# write_keys PREFIX FROM TO: writes PREFIX/IIII = vI for I in FROM..TO
# through any member, and lists the keys written in $BATS_FILE_TMPDIR/acked.
write_keys() {
	local i key
	for i in $(seq "$2" "$3"); do
		key=$1/$(printf '%04d' "$i")
		put_key "$key" "v$i" >/dev/null ||
		    { echo "write of $key failed" >&2; return 1; }
		echo "$key" >>"$BATS_FILE_TMPDIR/acked"
	done
}

# keys_on N PREFIX: the keys under PREFIX in server N's local state, one a
# line, sorted.
keys_on() {
	rpc "$1" kv.keys "{\"Prefix\":\"$2\",\"consistency\":\"stale\"}" |
	    jpy '"\n".join(sorted(d["keys"]))'
}

# expect_keys FILE SERVERS...: each server holds every key listed in FILE.
expect_keys() {
	local file=$1 n have missing
	shift
	for n in "$@"; do
		have=$(keys_on "$n" "") ||
		    { echo "kv.keys on s$n failed" >&2; return 1; }
		missing=$(sort <<<"$have" | comm -23 <(sort "$file") -)
		if [ -n "$missing" ]; then
			echo "s$n lacks: $(echo "$missing" | head -n 5 | tr '\n' ' ')" >&2
			return 1
		fi
	done
}

# ---- agents -------------------------------------------------------------------
#
# Agent N (1..9) is named aN, binds 127.0.1.N (TESTING.md 4: agents on
# 127.0.1.x), serves HTTP on a port picked at random and keeps its state
# under $BATS_FILE_TMPDIR/aN: data/, conf/ (its config dir), log, pid,
# port, status. Started and stopped by PID, like the servers.

agt_dir() { echo "$BATS_FILE_TMPDIR/a$1"; }
agt_ip() { echo "127.0.1.$1"; }
agt_port() { cat "$(agt_dir "$1")/port"; }
agt_http() { echo "$(agt_ip "$1"):$(agt_port "$1")"; }
agt_url() { echo "http://$(agt_http "$1")"; }
agt_data() { echo "$(agt_dir "$1")/data"; }
agt_conf() { echo "$(agt_dir "$1")/conf"; }
agt_log() { echo "$(agt_dir "$1")/log"; }
agt_pid() { cat "$(agt_dir "$1")/pid" 2>/dev/null; }
agt_status() { cat "$(agt_dir "$1")/status" 2>/dev/null; }
agt_running() { pid_is_ours "$(agt_pid "$1")" "$(agt_data "$1")"; }

# agent_launch N ARGS...: starts dsc-agent as agent N with ARGS and waits
# until its HTTP port accepts connections or it exits (as launch does for
# servers).
agent_launch() {
	local n=$1
	shift
	proc_launch "agent a$n" "$(agt_dir "$n")" "$(agt_ip "$n")" \
	    "$(agt_port "$n")" "$DSC_AGENT" "$@"
}

# agent_args N: the command line of agent N against every member server.
agent_args() {
	local n=$1 m
	printf '%s\n' --name "a$n" --bind "$(agt_ip "$n")" \
	    --http "$(agt_http "$n")" --data-dir "$(agt_data "$n")" \
	    --config-dir "$(agt_conf "$n")" --key-file "$DSC_KEY"
	for m in $(members); do
		printf '%s\n' --server "$(srv_addr "$m")"
	done
}

# start_agent N [ARGS...]: agent N against the member servers on a port
# picked now (picked again when taken before the start: exit 3).
start_agent() {
	local n=$1 rc args
	shift
	dsc_find_agent || return 1
	mkdir -p "$(agt_dir "$n")" "$(agt_conf "$n")" "$(agt_data "$n")"
	for _ in 1 2 3 4 5; do
		pick_port "$(agt_ip "$n")" >"$(agt_dir "$n")/port" || return 1
		mapfile -t args < <(agent_args "$n")
		rc=0
		agent_launch "$n" "${args[@]}" "$@" || rc=$?
		[ "$rc" -eq 3 ] || break
	done
	return "$rc"
}

# restart_agent N [ARGS...]: agent N again, same port, data and config.
restart_agent() {
	local n=$1 args
	shift
	mapfile -t args < <(agent_args "$n")
	agent_launch "$n" "${args[@]}" "$@"
}

# dsc_find_agent: DSC_AGENT next to the server binary.
dsc_find_agent() {
	[ -n "${DSC_SERVER:-}" ] || dsc_find_build
	DSC_AGENT=${DSC_AGENT:-$(dirname "$DSC_SERVER")/dsc-agent}
	export DSC_AGENT
	if [ ! -x "$DSC_AGENT" ]; then
		echo "# not built: $DSC_AGENT (run make)" >&3
		return 1
	fi
}

# stop_agent N [SIG]: SIG (default TERM) to agent N by PID, then waits for
# its exit status; KILL after DSC_STOP_WAIT seconds (returns 1 then).
stop_agent() {
	local n=$1 sig=${2:-TERM} pid
	pid=$(agt_pid "$n")
	[ -n "$pid" ] || return 0
	if agt_running "$n"; then
		kill "-$sig" "$pid" 2>/dev/null
	fi
	for _ in $(seq 1 $((DSC_STOP_WAIT * 10))); do
		[ -z "$(agt_status "$n")" ] || return 0
		sleep 0.1
	done
	echo "agent a$n (pid $pid) ignored SIG$sig; killing it" >&2
	kill -KILL "$pid" 2>/dev/null
	sleep 0.5
	return 1
}

# stop_agents: every agent this file started, by PID; fails when one did
# not exit 0 on SIGTERM. Call before stop_all in teardown_file.
stop_agents() {
	local d n bad=''
	for d in "$BATS_FILE_TMPDIR"/a*/; do
		[ -f "$d/pid" ] || continue
		n=${d%/}
		n=${n##*/a}
		agt_running "$n" || continue
		if ! stop_agent "$n" TERM || [ "$(agt_status "$n")" != 0 ]; then
			bad="$bad $n"
			echo "--- a$n exited $(agt_status "$n"); log:" >&2
			tail -n 40 "$(agt_log "$n")" >&2
		fi
	done
	[ -z "$bad" ]
}

# agent_logs_on_failure: teardown's helper for agents' logs.
agent_logs_on_failure() {
	logs_on_failure a
}
