#!/bin/sh
# local-cluster.sh - what `make run` runs: three dsc-servers on this host,
# on 127.0.0.2-4 port 8300 (set DSC_PORT for another), and one dsc-agent
# serving the Consul API on 127.0.0.1:8500 (DSC_HTTP_PORT), with their data
# and key under DSC_RUN_DIR (default: build/run, kept between runs, so a
# second `make run` restarts the same cluster). The agent's config dir
# holds one service definition, "demo", checked by TCP. Logs go to
# DSC_RUN_DIR/*.log and are followed on the terminal. Ctrl-C (or SIGTERM)
# stops what it started, by PID, and waits for it.
#
# Usage: .ci/local-cluster.sh BUILD_DIR
set -eu

build=${1:?usage: local-cluster.sh BUILD_DIR}
server=$build/dsc-server
rpc=$build/tests/tools/dsc-rpc
agent=$build/dsc-agent
port=${DSC_PORT:-8300}
http=127.0.0.1:${DSC_HTTP_PORT:-8500}
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
servers=
for i in 2 3 4; do
	servers="$servers --server 127.0.0.$i:$port"
done
mkdir -p "$dir/agent.d"
[ -f "$dir/agent.d/demo.json" ] ||
	printf '%s\n' "{\"service\": {\"name\": \"demo\", \"address\": \"127.0.0.1\"," \
	    "  \"port\": ${http##*:}, \"tags\": [\"example\"]," \
	    "  \"check\": {\"tcp\": \"$http\", \"interval\": \"10s\"}}}" \
	    >"$dir/agent.d/demo.json"
# shellcheck disable=SC2086 # $servers is a list of flags
"$agent" --name local --bind 127.0.0.1 --http "$http" $servers \
    --data-dir "$dir/agent" --config-dir "$dir/agent.d" \
    --key-file "$dir/key" >>"$dir/agent.log" 2>&1 &
pids="$pids $!"
tail -n 0 -F "$dir/s1.log" "$dir/s2.log" "$dir/s3.log" "$dir/agent.log" &
pids="$pids $!"

# Say where things are once there is a leader (bounded: 30 s).
i=0
while [ "$i" -lt 60 ]; do
	if [ -x "$rpc" ] && leader=$("$rpc" -t 1 -k "$dir/key" \
	    -s "127.0.0.2:$port" status.leader 2>/dev/null) &&
	    [ "${leader#*\"known_leader\":true}" != "$leader" ]; then
		echo "local-cluster: up; leader: $leader" >&2
		echo "local-cluster: the Consul API: curl http://$http/v1/health/service/demo" >&2
		echo "local-cluster: try: export DSC_HTTP_ADDR=$http DSC_KEY_FILE=$dir/key" >&2
		echo "local-cluster:   $build/dsc-register web --port 8080 --check-ttl 30s" >&2
		echo "local-cluster:   $build/dsc-lookup --all web; $build/dsc-members" >&2
		break
	fi
	sleep 0.5
	i=$((i + 1))
done
wait
