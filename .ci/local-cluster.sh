#!/bin/sh
# local-cluster.sh - what `make run` runs: three dsc-servers on this host,
# on 127.0.0.2-4 port 8300 (set DSC_PORT for another), with their data and
# key under DSC_RUN_DIR (default: build/run, kept between runs, so a second
# `make run` restarts the same cluster). Logs go to DSC_RUN_DIR/sN.log and
# are followed on the terminal. Ctrl-C (or SIGTERM) stops the servers it
# started, by their PIDs, and waits for them.
#
# Usage: .ci/local-cluster.sh BUILD_DIR
set -eu

build=${1:?usage: local-cluster.sh BUILD_DIR}
server=$build/dsc-server
rpc=$build/tests/tools/dsc-rpc
port=${DSC_PORT:-8300}
dir=${DSC_RUN_DIR:-build/run}
pids=

stop() {
	trap - INT TERM EXIT
	[ -n "$pids" ] || exit 0
	echo "local-cluster: stopping servers ($pids)" >&2
	# shellcheck disable=SC2086 # word splitting intended: a PID list
	kill -TERM $pids 2>/dev/null || true
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	exit 0
}
trap stop INT TERM EXIT

mkdir -p "$dir"
chmod 700 "$dir"
[ -f "$dir/key" ] || "$server" keygen "$dir/key"

joins=
for i in 2 3 4; do
	joins="$joins --join 127.0.0.$i:$port"
done
for i in 2 3 4; do
	n=s$((i - 1))
	# shellcheck disable=SC2086 # $joins is a list of flags
	"$server" --name "$n" --bind "127.0.0.$i:$port" \
	    --data-dir "$dir/$n" --key-file "$dir/key" \
	    --bootstrap-expect 3 $joins >>"$dir/$n.log" 2>&1 &
	pids="$pids $!"
done
tail -n 0 -F "$dir/s1.log" "$dir/s2.log" "$dir/s3.log" &
pids="$pids $!"

# Say where things are once there is a leader (bounded: 30 s).
i=0
while [ "$i" -lt 60 ]; do
	if [ -x "$rpc" ] && leader=$("$rpc" -t 1 -k "$dir/key" \
	    -s "127.0.0.2:$port" status.leader 2>/dev/null); then
		echo "local-cluster: up; leader: $leader" >&2
		echo "local-cluster: try: $rpc -k $dir/key -s 127.0.0.2:$port status.peers" >&2
		break
	fi
	sleep 0.5
	i=$((i + 1))
done
wait
