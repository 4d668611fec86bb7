#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Peer comparison, side by side in one run on this host, over 127.0.0.1 only:
# sockperf TCP ping-pong and throughput (64 B), nginx + wrk (4 KiB static file
# on keep-alive connections, 1 and 8 connections) and the wirepath bench (tcp
# and uring paths, one 1 KiB request -> one 4 KiB result per step, 1 and 8
# agents). Reports CPU microseconds per operation with both sides counted,
# the rate and p50/p99 latency, and writes everything to JSON.
# See bench/peers/README.md for what the comparison does and does not show.
#
#   bench/peers/run.sh [--duration S] [--build DIR] [--json FILE] [--workload WL] [--pin CPU]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

duration=5
build=build
json=results/peers.json
wl=bench/workloads/toolcall.wl
pin=""
busy=()
usage() {
	echo "usage: bench/peers/run.sh [--duration S (default 5)] [--build DIR (default build)]"
	echo "                          [--json FILE (default results/peers.json)] [--workload WL (default $wl)]"
	echo "                          [--pin CPU (run every server and client on this one CPU; default: unpinned)]"
	echo "                          [--busy-poll (wirepath spins instead of sleeping; the peers still sleep)]"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=${2:?--duration needs seconds}; shift 2 ;;
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	--json) json=${2:?--json needs a file}; shift 2 ;;
	--workload) wl=${2:?--workload needs a file}; shift 2 ;;
	--pin) pin=${2:?--pin needs a CPU number}; shift 2 ;;
	--busy-poll) busy=(--busy-poll); shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "peers: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case "$duration" in
''|*[!0-9]*|0) echo "peers: --duration must be a whole number of seconds > 0" >&2; exit 2 ;;
esac

say() { echo "peers: $*"; }
# --pin: every server and client runs under taskset on one CPU (taskset execs
# the tool, so $! is still the tool's PID)
pre=()
if [ -n "$pin" ]; then
	command -v taskset >/dev/null || { echo "peers: --pin needs taskset (apt-get install util-linux)" >&2; exit 1; }
	taskset -c "$pin" true 2>/dev/null || { echo "peers: --pin $pin: not a usable CPU here (0..$(( $(nproc) - 1 )))" >&2; exit 2; }
	pre=(taskset -c "$pin")
fi
py() { python3 "$here/peers.py" "$@"; }

command -v python3 >/dev/null || { echo "peers: python3 is required (apt-get install python3)" >&2; exit 1; }

# --- tools ------------------------------------------------------------------
# nginx lives in /usr/sbin, which a non-root PATH may lack
export PATH="$PATH:/usr/sbin:/sbin"
need_install=0
for t in sockperf nginx wrk; do command -v "$t" >/dev/null || need_install=1; done
if [ $need_install -eq 1 ]; then
	say "installing the peer tools (scripts/deps.sh --peers)"
	bash "$root/scripts/deps.sh" --peers || echo "peers: scripts/deps.sh --peers failed" >&2
fi
for t in sockperf nginx wrk; do
	command -v "$t" >/dev/null || {
		echo "peers: '$t' is missing after 'scripts/deps.sh --peers'; install the Debian package" \
			"($( [ $t = nginx ] && echo nginx-light || echo $t )) and run again" >&2
		exit 1
	}
done

# --- cleanup: every process we start, by PID; the temp dir -------------------
tmp=$(mktemp -d /tmp/wirepath-peers.XXXXXX)
pids=()
stop_pid() {
	# TERM, wait up to 2 s, then KILL; only PIDs we started
	local p=$1 _
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
	wait "$p" 2>/dev/null || true
}
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p"; done
	# the nginx worker (child of our master) exits with it; if the master was
	# killed hard, stop the worker we recorded by PID
	if [ -n "${ngx_worker:-}" ] && kill -0 "$ngx_worker" 2>/dev/null; then
		kill -KILL "$ngx_worker" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
	# until something accepts on 127.0.0.1:$1, or 5 s
	local port=$1 pid=$2 _
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 1
		python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),0.2); s.close()" \
			2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

read -r port_sp port_ng < <(py freeport 2)

python3 - "$tmp/versions.json" <<'EOF'
import json, subprocess, sys
def first(cmd):
	try:
		r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
		for line in (r.stdout + r.stderr).splitlines():
			if line.strip():
				return line.strip().replace("sockperf: ", "")
	except Exception as e:
		return "unknown (%s)" % e
	return "unknown"
json.dump({"sockperf": first(["sockperf", "--version"]), "nginx": first(["nginx", "-v"]),
	   "wrk": first(["wrk", "--version"])}, open(sys.argv[1], "w"))
EOF

say "host: $(uname -r), $(nproc) CPUs; duration ${duration}s per run; ports $port_sp (sockperf) $port_ng (nginx); tmp $tmp; $([ -n "$pin" ] && echo "all pinned to CPU $pin" || echo unpinned)"

# --- 1. sockperf --------------------------------------------------------------
say "[1/3] sockperf server on 127.0.0.1:$port_sp"
"${pre[@]}" sockperf server --tcp -i 127.0.0.1 -p "$port_sp" >"$tmp/sockperf_server.log" 2>&1 &
sp_pid=$!
pids+=("$sp_pid")
if wait_port "$port_sp" "$sp_pid"; then
	say "      ping-pong 64 B, ${duration}s"
	py measure --name "sockperf ping-pong 64 B" --parse sockperf-pp --watch "$sp_pid" \
		--out "$tmp/sockperf_pp.json" --log "$tmp/sockperf_pp.log" -- \
		"${pre[@]}" sockperf ping-pong --tcp -i 127.0.0.1 -p "$port_sp" -t "$duration" -m 64 --full-rtt
	say "      throughput 64 B, ${duration}s"
	py measure --name "sockperf throughput 64 B" --parse sockperf-tp --watch "$sp_pid" \
		--out "$tmp/sockperf_tp.json" --log "$tmp/sockperf_tp.log" -- \
		"${pre[@]}" sockperf throughput --tcp -i 127.0.0.1 -p "$port_sp" -t "$duration" -m 64
else
	why="sockperf server did not start: $(tail -n 1 "$tmp/sockperf_server.log")"
	echo "peers: $why" >&2
	for k in pp tp; do echo "$why" >"$tmp/sockperf_$k.unavailable"; done
fi
stop_pid "$sp_pid"

# --- 2. nginx + wrk -----------------------------------------------------------
ng="$tmp/nginx"
mkdir -p "$ng/www"
head -c 4096 /dev/urandom >"$ng/www/4k"
# the worker runs as an unprivileged user when we are root: it must be able
# to read the file; mktemp made the dir 0700
chmod 755 "$tmp" "$ng" "$ng/www"
chmod 644 "$ng/www/4k"
# Everything under $ng: pid, error log, temp paths (Debian's compiled-in
# defaults are /var/lib/nginx/*). sendfile and open_file_cache are the usual
# tuning for static files: the peer gets its best shot.
cat >"$ng/nginx.conf" <<EOF
worker_processes 1;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $ng/body;
	proxy_temp_path $ng/proxy;
	fastcgi_temp_path $ng/fastcgi;
	uwsgi_temp_path $ng/uwsgi;
	scgi_temp_path $ng/scgi;
	sendfile on;
	tcp_nodelay on;
	open_file_cache max=16 inactive=600s;
	open_file_cache_valid 600s;
	keepalive_timeout 600s;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$port_ng;
		root $ng/www;
		location = /4k { default_type application/octet-stream; }
	}
}
EOF
say "[2/3] nginx (1 worker) on 127.0.0.1:$port_ng, config $ng/nginx.conf"
"${pre[@]}" nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/stderr.log" -g 'daemon off;' >"$ng/stdout.log" 2>&1 &
ng_pid=$!
pids+=("$ng_pid")
if wait_port "$port_ng" "$ng_pid"; then
	ngx_worker=$(ps -o pid= --ppid "$ng_pid" | tr -d ' ' | head -n 1)
	say "      master pid $ng_pid, worker pid ${ngx_worker:-?}"
	code=$(python3 -c "import urllib.request; r=urllib.request.urlopen('http://127.0.0.1:$port_ng/4k'); print(r.status, len(r.read()))" 2>&1 || true)
	[ "$code" = "200 4096" ] || echo "peers: warning: GET /4k answered '$code', expected '200 4096'" >&2
	for c in 1 8; do
		say "      wrk -t1 -c$c, ${duration}s"
		py measure --name "nginx+wrk 4 KiB c$c" --parse wrk --watch "$ng_pid" \
			--out "$tmp/wrk_c$c.json" --log "$tmp/wrk_c$c.log" -- \
			"${pre[@]}" wrk -t1 -c"$c" -d"$duration" --latency "http://127.0.0.1:$port_ng/4k"
	done
else
	why="nginx did not start: $(tail -n 1 "$ng/stderr.log" 2>/dev/null)"
	echo "peers: $why" >&2
	for c in 1 8; do echo "$why" >"$tmp/wrk_c$c.unavailable"; done
fi
stop_pid "$ng_pid"

# --- 3. wirepath bench --------------------------------------------------------
wp_unavailable=""
wp="$build/wirepath"
if [ ! -x "$wp" ]; then
	wp_unavailable="$wp not built (run: make)"
elif [ ! -f "$wl" ]; then
	wp_unavailable="workload $wl missing"
fi
if [ -z "$wp_unavailable" ]; then
	for a in 1 8; do
		say "[3/3] wirepath bench --paths tcp,uring --agents $a, ${duration}s per path"
		# the bench reports its own CPU per step (agent + server sides);
		# measure the whole process too, as a cross-check
		py measure --name "wirepath bench agents $a" --out "$tmp/wp${a}_ext.json" \
			--log "$tmp/wp$a.log" --settle 0 -- \
			"${pre[@]}" "$wp" bench --paths tcp,uring --workload "$wl" --duration "$duration" \
			--agents "$a" --json "$tmp/wp$a.json" --quiet "${busy[@]}"
		if [ "$(python3 -c "import json;print(json.load(open('$tmp/wp${a}_ext.json'))['rc'])")" != 0 ]; then
			echo "peers: wirepath bench (agents $a) failed: $(tail -n 3 "$tmp/wp$a.log")" >&2
		fi
	done
else
	say "[3/3] wirepath: unavailable: $wp_unavailable"
fi

# --- report -------------------------------------------------------------------
mkdir -p "$(dirname "$json")"
# keep the raw tool output with the report
python3 - "$tmp" <<'EOF'
import glob, json, os, sys
d = sys.argv[1]
for f in glob.glob(os.path.join(d, "*.json")):
	key = os.path.basename(f)[:-5]
	log = os.path.join(d, key + ".log")
	if key.endswith("_ext"):
		log = os.path.join(d, key[:-4] + ".log")
	if not os.path.exists(log):
		continue
	try:
		row = json.load(open(f))
	except ValueError:
		continue
	if isinstance(row, dict) and "cmd" in row:
		row["output"] = open(log, errors="replace").read()[-6000:]
		json.dump(row, open(f, "w"), indent=1)
EOF
py report --dir "$tmp" --json "$json" --duration "$duration" --wp-unavailable "$wp_unavailable" --pin "$pin"
