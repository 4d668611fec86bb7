#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The gateway benchmark of issue 13 (docs/performance.md, "Gateway
# (wirepathd)"): wirepathd next to Debian's nginx and next to no proxy at
# all, side by side in one run, on 127.0.0.1. Every scenario interleaves its
# targets (direct, wirepathd, nginx; direct, wirepathd, nginx; ...) so the
# drift of this shared machine falls on all of them alike, and every "added"
# figure is the median over rounds of (via - direct) within one round.
#
#   1. latency: added latency per proxied request at a fixed rate (1k req/s,
#      open loop: sse_load --rate), 1 KiB non-streaming chat POST, static
#      nginx upstream; p50/p90/p99 direct, via wirepathd, via nginx.
#   2. saturation: wrk, the same POST, closed loop; req/s per proxy core and
#      proxy CPU per request (/proc/PID/stat utime+stime; nginx 1 worker).
#   3. SSE: sse_load streams against wirepathd fronting `wirepath serve`
#      (native backend over shm: "direct"), through a second wirepathd (http
#      backend) and through nginx (proxy_buffering off); then many streams
#      at once against direct (10,000 in the full run), then the native
#      backend on shm vs on uring.
#   4. DPU placement: TODO (below).
#
# Writes results/gateway-DATE.json (--json FILE to choose) and a summary,
# printed and written next to it (.txt). Installs nothing: the tools come
# from `scripts/deps.sh --peers` (nginx-light, wrk). Every process it starts
# is stopped by PID at exit; its files live in one temp dir, removed at exit.
#
#   bench/gateway/run.sh [--quick] [--build DIR] [--json FILE] [--rounds N]
#                        [--rate R] [--sse-streams N] [--scale "N N ..."]
#                        [--native-streams N] [--pace-us N]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

build=build
json=""
quick=0
# Full-run sizes; --quick makes every scenario about 5 s.
rounds=3
rate=1000
lat_secs=10
lat_conns=32
sat_secs=10
sat_conns=32
pace_us=25000
sse_streams=100
sse_tokens=40
sse_secs=10
# stream counts at once: up to the target, with steps below it to find what
# this host sustains when the target is beyond it
scale="250 500 1000 2500 10000"
scale_secs=10
native_streams=1000
native_secs=10
warm_secs=1
o_rounds="" o_rate="" o_sse="" o_scale="" o_native="" o_pace=""

usage() {
	echo "usage: bench/gateway/run.sh [--quick] [--build DIR (build)] [--json FILE (results/gateway-DATE.json)]"
	echo "                            [--rounds N (3)] [--rate R (1000)] [--sse-streams N (100)]"
	echo "                            [--scale \"N N ...\" (250 500 1000 2500 10000)] [--native-streams N (1000)]"
	echo "                            [--pace-us N (25000)]"
	echo "  --quick   every scenario about 5 s at tiny sizes (the smoke test's mode)"
}
cmdline="bench/gateway/run.sh $*"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1; shift ;;
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	--json) json=${2:?--json needs a file}; shift 2 ;;
	--rounds) o_rounds=${2:?--rounds needs a number}; shift 2 ;;
	--rate) o_rate=${2:?--rate needs req/s}; shift 2 ;;
	--sse-streams) o_sse=${2:?--sse-streams needs a number}; shift 2 ;;
	--scale) o_scale=${2:?--scale needs stream counts}; shift 2 ;;
	--native-streams) o_native=${2:?--native-streams needs a number}; shift 2 ;;
	--pace-us) o_pace=${2:?--pace-us needs microseconds}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "gateway: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
if [ $quick -eq 1 ]; then
	rounds=1 lat_secs=1 lat_conns=8 sat_secs=1 sat_conns=8
	sse_streams=16 sse_tokens=8 sse_secs=1 scale="100" scale_secs=1
	native_streams=32 native_secs=1 warm_secs=0.3
fi
rounds=${o_rounds:-$rounds} rate=${o_rate:-$rate} sse_streams=${o_sse:-$sse_streams}
scale=${o_scale:-$scale} native_streams=${o_native:-$native_streams} pace_us=${o_pace:-$pace_us}
for v in "$rounds" "$rate" "$sse_streams" "$native_streams" "$pace_us" $scale; do
	case "$v" in
	''|*[!0-9]*|0) echo "gateway: counts, rates and paces are whole numbers > 0 (got '$v')" >&2; exit 2 ;;
	esac
done
stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ -n "$json" ] || json="results/gateway-$stamp.json"
mkdir -p "$(dirname "$json")"

say() { echo "gateway: $*" >&2; }
die() { echo "gateway: $*" >&2; exit 1; }
py() { python3 "$here/gateway.py" "$@"; }

# --- tools (installed by scripts/deps.sh --peers, never here) ----------------
export PATH="$PATH:/usr/sbin:/sbin"
command -v python3 >/dev/null || die "python3 is required (apt-get install python3)"
command -v nginx >/dev/null || die "nginx is missing: run scripts/deps.sh --peers (nginx-light)"
command -v wrk >/dev/null || die "wrk is missing: run scripts/deps.sh --peers (wrk)"
build=$(cd "$build" 2>/dev/null && pwd) || die "no build directory '$build' (meson setup build && ninja -C build)"
WPD=$build/wirepathd WP=$build/wirepath LOAD=$build/sse_load
for f in "$WPD" "$WP" "$LOAD"; do
	[ -x "$f" ] || die "$f is not built (ninja -C $build)"
done

# 10,000 streams are 10,000 sockets for the client, the proxy and the daemon
# behind it: raise the descriptor limit (children inherit it).
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=1048576
ngx_conns=$((nofile > 32868 ? 32768 : nofile - 100))

# --- processes: every one started here, stopped by PID at exit ---------------
tmp=$(mktemp -d /tmp/wirepath-gateway.XXXXXX)
pids=()
stop_pid() {
	# TERM, up to 3 s, then KILL; only PIDs this script started
	local p=$1 _
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null || true
}
cleanup() {
	local p
	for p in "${pids[@]}"; do stop_pid "$p"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
	# until something accepts on 127.0.0.1:$1 (5 s), while $2 lives
	local port=$1 pid=$2 _
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# nginx_start NAME PORT BODY: an nginx (1 worker, daemon off, its own prefix
# in the temp dir) serving BODY, the http block's server/upstream lines.
# Sets NGX_PID (the master; its worker is its child).
nginx_start() {
	local name=$1 port=$2 body=$3 d="$tmp/$1"
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $nofile;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $ngx_conns; }
http {
	access_log off;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
$body
}
EOF
	nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout" 2>&1 &
	NGX_PID=$!
	pids+=("$NGX_PID")
	wait_port "$port" "$NGX_PID" || { cat "$d/error.log" "$d/stdout" >&2 2>/dev/null; die "nginx ($name) did not start"; }
}

# The upstream of scenarios 1 and 2: the lightest honest OpenAI-compatible
# server, nginx answering every chat POST with one fixed completion.
resp='{"id":"chatcmpl-gw","object":"chat.completion","created":1700000000,"model":"wp-stub","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog."},"finish_reason":"stop"}],"usage":{"prompt_tokens":240,"completion_tokens":10,"total_tokens":250}}'
nginx_static() {
	nginx_start "$1" "$2" "	server {
		listen 127.0.0.1:$2 backlog=16384;
		location / {
			default_type application/json;
			return 200 '$resp';
		}
	}"
}
# nginx as the reverse proxy: keep-alive pool to the upstream, streaming
# passthrough (proxy_buffering off), as one would deploy it for SSE.
nginx_proxy() {
	nginx_start "$1" "$2" "	upstream up {
		server 127.0.0.1:$3;
		keepalive 256;
		keepalive_requests 1000000;
		keepalive_timeout 300s;
	}
	server {
		listen 127.0.0.1:$2 backlog=16384;
		location / {
			proxy_pass http://up;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
			proxy_buffering off;
			proxy_read_timeout 300s;
		}
	}"
}

# wpd_start NAME: wirepathd with the config on stdin, listening on a port it
# picks; sets WPD_PID and WPD_PORT once it logs "ready: http://ADDR port N".
wpd_start() {
	local name=$1 conf="$tmp/$1.yaml" log="$tmp/$1.log" _
	cat >"$conf"
	"$WPD" --config "$conf" --log-level info >"$log" 2>&1 &
	WPD_PID=$!
	pids+=("$WPD_PID")
	for _ in $(seq 200); do
		WPD_PORT=$(sed -n 's/.*ready: http:\/\/[^ ]* port \([0-9]*\).*/\1/p' "$log" | head -n 1)
		[ -n "$WPD_PORT" ] && return 0
		kill -0 "$WPD_PID" 2>/dev/null || break
		sleep 0.05
	done
	tail -n 20 "$log" >&2
	die "wirepathd ($name) did not become ready (config $conf above)"
}
# wait until a wirepathd's backends are up (/readyz answers "ready")
wpd_ready() {
	local _ resp
	for _ in $(seq 200); do
		resp=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
			printf 'GET /readyz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n' >&3 &&
			timeout 2 cat <&3) 2>/dev/null || true)
		case $resp in "HTTP/1.1 200"*) return 0 ;; esac
		sleep 0.05
	done
	die "wirepathd on port $1: /readyz never said ready"
}
wpd_limits="limits: {conns: 100000, rx_budget: 1GiB}"

# serve_start NAME URI: the native model service, paced; sets SVC_PID and
# SVC_PORT (what --port-file says: the port for tcp/uring).
serve_start() {
	local name=$1 uri=$2 _
	"$WP" serve --listen "$uri" --port-file "$tmp/$name.port" --token-interval-us "$pace_us" \
		>"$tmp/$name.log" 2>&1 &
	SVC_PID=$!
	pids+=("$SVC_PID")
	for _ in $(seq 100); do
		if [ -s "$tmp/$name.port" ]; then
			SVC_PORT=$(cat "$tmp/$name.port")
			return 0
		fi
		kill -0 "$SVC_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$tmp/$name.log" >&2
	die "wirepath serve ($name, $uri) did not start"
}

# --- one measurement ---------------------------------------------------------
# CPU in clock ticks, read in the shell (no process started per reading):
# utime + stime (fields 14 and 15 of /proc/PID/stat) of each PID and of its
# children (nginx's worker); the host's busy ticks from /proc/stat.
ticks_of() {
	local s f
	read -r s <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
	s=${s##*) }
	read -ra f <<<"$s"
	echo $((f[11] + f[12]))
}
cpu_ticks() {
	local p c t=0 kids
	for p in "$@"; do
		t=$((t + $(ticks_of "$p")))
		kids=$(cat "/proc/$p/task/$p/children" 2>/dev/null || true)
		for c in $kids; do t=$((t + $(ticks_of "$c"))); done
	done
	echo $t
}
host_ticks() {
	local cpu u n sy id io irq sirq st _
	read -r cpu u n sy id io irq sirq st _ </proc/stat
	echo $((u + n + sy + irq + sirq + st))
}
hz=$(getconf CLK_TCK)
secs() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.3f", (a - b) / hz }'; }
raw="$tmp/raw.jsonl"
: >"$raw"
# measure SCEN TARGET ROUND "PROXY PIDS" "UPSTREAM PIDS" CMD...: run CMD, its
# output to a file, CPU of both PID sets and of the host around it; append the
# row to $raw.
measure() {
	local scen=$1 tgt=$2 rnd=$3 ppids=$4 upids=$5 out="$tmp/out-$1-$2-$3"
	shift 5
	local p0 p1 u0 u1 h0 h1 rc=0
	# shellcheck disable=SC2086 # PID lists
	p0=$(cpu_ticks $ppids) u0=$(cpu_ticks $upids) h0=$(host_ticks)
	"$@" >"$out" 2>"$out.err" || rc=$?
	# shellcheck disable=SC2086
	p1=$(cpu_ticks $ppids) u1=$(cpu_ticks $upids) h1=$(host_ticks)
	[ $rc -eq 0 ] || { say "$scen/$tgt round $rnd: exit $rc: $(tail -n 3 "$out.err")"; cat "$out.err" >>"$out"; }
	local kv=(host_cpu_s="$(secs "$h1" "$h0")")
	[ -n "$ppids" ] && kv+=(proxy_cpu_s="$(secs "$p1" "$p0")")
	[ -n "$upids" ] && kv+=(upstream_cpu_s="$(secs "$u1" "$u0")")
	py rec "$raw" "$scen" "$tgt" "$rnd" "$out" "${kv[@]}"
}

body="$tmp/body.json"
"$LOAD" --print-body --body-bytes 1024 >"$body"
cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[$(cat "$body")]==]
EOF

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load0=$(loadavg)
say "load average at start: $load0 ($(nproc) CPUs); descriptors: $nofile"

# --- 1 and 2: a static upstream; wirepathd and nginx in front ---------------
read -r p_up p_ngx < <(py freeport 2)
nginx_static upstream "$p_up"
up_pid=$NGX_PID
wpd_start gw_http <<EOF
listen:
  - tcp: 127.0.0.1:0
auth: none
$wpd_limits
backends:
  - {name: up, http: "http://127.0.0.1:$p_up", pool: 256}
models:
  - {name: wp-stub, backend: up}
EOF
w1_pid=$WPD_PID w1_port=$WPD_PORT
nginx_proxy proxy "$p_ngx" "$p_up"
n1_pid=$NGX_PID
declare -A port_of=([direct]=$p_up [wirepathd]=$w1_port [nginx]=$p_ngx)
declare -A proxy_of=([direct]="" [wirepathd]=$w1_pid [nginx]=$n1_pid)
targets=(direct wirepathd nginx)

say "1. latency: $rate req/s open loop, ${lat_secs}s x ${#targets[@]} targets x $rounds rounds"
for t in "${targets[@]}"; do
	"$LOAD" --connect "127.0.0.1:${port_of[$t]}" --rate "$rate" --conns "$lat_conns" \
		--duration "$warm_secs" >/dev/null 2>&1 || true
done
for r in $(seq "$rounds"); do
	for t in "${targets[@]}"; do
		measure latency "$t" "$r" "${proxy_of[$t]}" "$up_pid" \
			"$LOAD" --connect "127.0.0.1:${port_of[$t]}" --target "$t" --rate "$rate" \
			--conns "$lat_conns" --duration "$lat_secs" --grace 5
	done
done

say "2. saturation: wrk -t1 -c$sat_conns, ${sat_secs}s x ${#targets[@]} targets x $rounds rounds"
for r in $(seq "$rounds"); do
	for t in "${targets[@]}"; do
		measure saturation "$t" "$r" "${proxy_of[$t]}" "$up_pid" \
			wrk -t1 -c"$sat_conns" -d"${sat_secs}s" -s "$tmp/post.lua" \
			"http://127.0.0.1:${port_of[$t]}/v1/chat/completions"
	done
done
stop_pid "$w1_pid"
stop_pid "$n1_pid"
stop_pid "$up_pid"

# --- 3. SSE ------------------------------------------------------------------
serve_start svc_shm "shm://@wpgw-$$-shm"
s_shm=$SVC_PID
wpd_start gw_direct <<EOF
listen:
  - tcp: 127.0.0.1:0
auth: none
$wpd_limits
backends:
  - {name: local, native: "shm://@wpgw-$$-shm"}
models:
  - {name: wp-stub, backend: local}
EOF
d1_pid=$WPD_PID d1_port=$WPD_PORT
wpd_ready "$d1_port"
wpd_start gw_via <<EOF
listen:
  - tcp: 127.0.0.1:0
auth: none
$wpd_limits
backends:
  - {name: up, http: "http://127.0.0.1:$d1_port", pool: 4096}
models:
  - {name: wp-stub, backend: up}
EOF
d2_pid=$WPD_PID d2_port=$WPD_PORT
read -r p_ngx2 < <(py freeport 1)
nginx_proxy proxy_sse "$p_ngx2" "$d1_port"
n2_pid=$NGX_PID
port_of=([direct]=$d1_port [wirepathd]=$d2_port [nginx]=$p_ngx2)
proxy_of=([direct]="" [wirepathd]=$d2_pid [nginx]=$n2_pid)
sse_args=(--tokens "$sse_tokens" --pace-us "$pace_us" --grace 10)

say "3. SSE: $sse_streams streams x $sse_tokens tokens at ${pace_us} us, ${sse_secs}s x ${#targets[@]} x $rounds rounds"
for t in "${targets[@]}"; do
	"$LOAD" --connect "127.0.0.1:${port_of[$t]}" --streams "$sse_streams" "${sse_args[@]}" \
		--duration "$warm_secs" --ramp-ms 100 >/dev/null 2>&1 || true
done
for r in $(seq "$rounds"); do
	for t in "${targets[@]}"; do
		measure sse "$t" "$r" "${proxy_of[$t]}" "$d1_pid $s_shm" \
			"$LOAD" --connect "127.0.0.1:${port_of[$t]}" --target "$t" \
			--streams "$sse_streams" "${sse_args[@]}" --duration "$sse_secs" \
			--ramp-ms "$((pace_us / 1000))"
	done
done
stop_pid "$d2_pid"
stop_pid "$n2_pid"

# Many streams at once against wirepathd + native: started spread over a
# ramp of 0.5 ms per stream (at least one pace), so the connects do not
# arrive as one burst and the streams' token clocks are spread.
for n in $scale; do
	ramp=$((n / 2))
	[ "$ramp" -ge $((pace_us / 1000)) ] || ramp=$((pace_us / 1000))
	say "3. SSE scale: $n concurrent streams for ${scale_secs}s (+${ramp} ms ramp)"
	measure scale "$n" 1 "$d1_pid" "$s_shm" \
		"$LOAD" --connect "127.0.0.1:$d1_port" --target "$n" --streams "$n" "${sse_args[@]}" \
		--duration "$scale_secs" --ramp-ms "$ramp"
done

# The native backend on shm vs on uring, the same load.
uring_ok=1
"$WP" probe --json 2>/dev/null | grep -q '"name":"uring","ok":true' || uring_ok=0
if [ $uring_ok -eq 1 ]; then
	serve_start svc_uring "uring://127.0.0.1:0"
	s_uring=$SVC_PID
	wpd_start gw_uring <<EOF
listen:
  - tcp: 127.0.0.1:0
auth: none
$wpd_limits
backends:
  - {name: local, native: "uring://127.0.0.1:$SVC_PORT"}
models:
  - {name: wp-stub, backend: local}
EOF
	d3_pid=$WPD_PID d3_port=$WPD_PORT
	wpd_ready "$d3_port"
	say "3. native shm vs uring: $native_streams streams, ${native_secs}s x 2 x $rounds rounds"
	"$LOAD" --connect "127.0.0.1:$d3_port" --streams "$native_streams" "${sse_args[@]}" \
		--duration "$warm_secs" --ramp-ms 100 >/dev/null 2>&1 || true
	nramp=$((native_streams / 2))
	[ "$nramp" -ge $((pace_us / 1000)) ] || nramp=$((pace_us / 1000))
	for r in $(seq "$rounds"); do
		measure native shm "$r" "$d1_pid" "$s_shm" \
			"$LOAD" --connect "127.0.0.1:$d1_port" --target shm --streams "$native_streams" \
			"${sse_args[@]}" --duration "$native_secs" --ramp-ms "$nramp"
		measure native uring "$r" "$d3_pid" "$s_uring" \
			"$LOAD" --connect "127.0.0.1:$d3_port" --target uring --streams "$native_streams" \
			"${sse_args[@]}" --duration "$native_secs" --ramp-ms "$nramp"
	done
else
	say "3. native uring: the uring path is unavailable here (wirepath probe); shm only"
fi

# --- 4. DPU placement: TODO for the lead -------------------------------------
# TODO(issue 13, DPU placement): once `wirepathd --placement dpu --netns NAME
# --cpus LIST` lands, run scenario 1's load at 1k agent steps/s twice:
#   a. as above (wirepathd on the host's cores, unpinned), and
#   b. wirepathd started with --placement dpu --netns wpgw-dpu --cpus 1
#      (its edge and XDP program in its own namespace on its own core; the
#      client reaches it over the veth pair the daemon sets up; the native
#      service `wirepath serve` stays on the host side, over shm or uring).
# For each, record the host-side cores consumed per 1k steps/s: utime+stime
# of every process outside the DPU partition (`py cpu`), divided by the run's
# seconds and by (rate / 1000); with b, also the partition's own cores. Add a
# "dpu" object to the JSON (gateway.py report writes status "todo" now) and a
# line to the summary. On these machines the "DPU" is a core partition;
# docs/performance.md says what a BlueField would change.

load1=$(loadavg)
python3 - "$tmp/meta.json" <<EOF
import json, os, platform, subprocess, sys
def first(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        return ((r.stdout + r.stderr).strip().splitlines() or [""])[0]
    except Exception as e:
        return f"unavailable: {e}"
meta = {
    "bench": "gateway", "version": 1, "date": "$stamp", "quick": bool($quick),
    "host": {"nproc": os.cpu_count(), "kernel": platform.release(),
             "loadavg_start": "$load0", "loadavg_end": "$load1", "nofile": "$nofile"},
    "versions": {"nginx": first(["nginx", "-v"]), "wrk": first(["wrk", "-v"]),
                 "wirepath": first(["git", "-C", "$root", "describe", "--always", "--dirty"])},
    "config": {"rounds": $rounds, "rate": $rate, "lat_secs": $lat_secs, "lat_conns": $lat_conns,
               "sat_secs": $sat_secs, "sat_conns": $sat_conns, "body_bytes": 1024,
               "pace_us": $pace_us, "sse_streams": $sse_streams, "sse_tokens": $sse_tokens,
               "sse_secs": $sse_secs, "scale": [int(x) for x in "$scale".split()],
               "scale_secs": $scale_secs, "native_streams": $native_streams,
               "native_secs": $native_secs, "uring": bool($uring_ok)},
    "command": """$cmdline""",
}
json.dump(meta, open(sys.argv[1], "w"))
EOF
py report "$raw" "$tmp/meta.json" "$json" | tee "${json%.json}.txt"
say "wrote $json and ${json%.json}.txt"
