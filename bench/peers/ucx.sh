#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# UCX's ucx_perftest next to wirepath's shared-memory path, side by side in
# one run on this host: tag_lat (8 and 64 B) over posix shared memory, tag_bw
# with 4 MiB messages over posix shared memory and over cma (reference), then
# `wirepath bench --paths shm` (pingpong, busy-poll) and `--paths shm,tcp`
# (kv). Reports round-trip latency, GB/s and CPU per op / per GB with both
# sides counted, the issue's three ratios, and writes everything to JSON.
# See bench/peers/README.md ("UCX: ucx.sh") for what is run and the caveats.
#
#   bench/peers/ucx.sh [--duration S] [--build DIR] [--json FILE] [--pin SRV_CPU,CLI_CPU]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

duration=2
build=build
json=results/peers_ucx.json
pin=""
usage() {
	echo "usage: bench/peers/ucx.sh [--duration S (per run, default 2)] [--build DIR (default build)]"
	echo "                          [--json FILE (default results/peers_ucx.json)]"
	echo "                          [--pin SRV_CPU,CLI_CPU (ucx_perftest server and client on these two CPUs,"
	echo "                           the wirepath bench on both; default: unpinned)]"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=${2:?--duration needs seconds}; shift 2 ;;
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	--json) json=${2:?--json needs a file}; shift 2 ;;
	--pin) pin=${2:?--pin needs two CPU numbers, SRV,CLI}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "peers: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case "$duration" in
''|*[!0-9]*|0) echo "peers: --duration must be a whole number of seconds > 0" >&2; exit 2 ;;
esac

say() { echo "peers: $*"; }
command -v python3 >/dev/null || { echo "peers: python3 is required (apt-get install python3)" >&2; exit 1; }
# the interpreter itself, not a wrapper (a pyenv shim runs python as its
# child): the server's wrapper must be the PID that `$!` records
pybin=$(python3 -c 'import sys; print(sys.executable)')
py() { "$pybin" "$here/peers.py" "$@"; }

# --pin A,B: the server under taskset -c A, the client under taskset -c B
# (taskset execs the tool, so the PID is the tool's). Both sides spin, so
# unlike run.sh's --pin they must not share one CPU.
pre_srv=() pre_cli=() pre_wp=()
if [ -n "$pin" ]; then
	[[ $pin =~ ^[0-9]+,[0-9]+$ ]] || { echo "peers: --pin needs two CPUs, SRV,CLI (e.g. 0,1): both sides spin, one CPU cannot hold them" >&2; exit 2; }
	command -v taskset >/dev/null || { echo "peers: --pin needs taskset (apt-get install util-linux)" >&2; exit 1; }
	[ "${pin%,*}" != "${pin#*,}" ] || { echo "peers: --pin $pin: the two CPUs must differ (both sides spin)" >&2; exit 2; }
	for c in "${pin%,*}" "${pin#*,}"; do
		taskset -c "$c" true 2>/dev/null || { echo "peers: --pin: CPU $c is not usable here (0..$(( $(nproc) - 1 )))" >&2; exit 2; }
	done
	pre_srv=(taskset -c "${pin%,*}")
	pre_cli=(taskset -c "${pin#*,}")
	pre_wp=(taskset -c "$pin")
fi

# --- tools ------------------------------------------------------------------
if ! command -v ucx_perftest >/dev/null || ! command -v ucx_info >/dev/null; then
	say "installing the peer tools (scripts/deps.sh --peers)"
	bash "$root/scripts/deps.sh" --peers || echo "peers: scripts/deps.sh --peers failed" >&2
fi
for t in ucx_perftest ucx_info; do
	command -v "$t" >/dev/null || {
		echo "peers: '$t' is missing after 'scripts/deps.sh --peers'; install the Debian package ucx-utils and run again" >&2
		exit 1
	}
done

# --- cleanup: the one server we run at a time, by PID; the temp dir ----------
tmp=$(mktemp -d /tmp/wirepath-peers-ucx.XXXXXX)
srv_pid=""
stop_pid() {
	# TERM, wait up to 2 s, then KILL; only PIDs we started
	local p=$1 _
	kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
	wait "$p" 2>/dev/null || true
}
cleanup() {
	# the server runs under `peers.py child`, which forwards TERM to it and
	# has it killed (PR_SET_PDEATHSIG) if the wrapper itself is killed
	if [ -n "$srv_pid" ]; then stop_pid "$srv_pid"; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One ucx_perftest server + client pair, over 127.0.0.1:
#   ucx_pair KEY TLS TEST SIZE ITERS WARMUP
# server: `ucx_perftest -p PORT` under `peers.py child` (its rusage when it
# exits); client: `ucx_perftest 127.0.0.1 -p PORT -t TEST -s SIZE -n ITERS
# -w WARMUP` under `peers.py measure` (its rusage, the parsed Final line).
# UCX_LOG_LEVEL=info makes both print the transports they chose.
ucx_pair() {
	local key=$1 tls=$2 test=$3 size=$4 iters=$5 warm=$6 port _
	port=$(py freeport 1)
	# started directly, not through the py function, so that $! is the
	# wrapper (a backgrounded function would be a subshell)
	"$pybin" "$here/peers.py" child --out "$tmp/$key.srv.json" --log "$tmp/$key.srv.log" -- \
		"${pre_srv[@]}" env UCX_TLS="$tls" UCX_LOG_LEVEL=info ucx_perftest -p "$port" &
	srv_pid=$!
	# no probe connection: the server would take it for the client
	if ! py listening "$port" "$srv_pid" 5; then
		echo "peers: ucx_perftest server ($key) did not listen on port $port: $(tail -n 1 "$tmp/$key.srv.log" 2>/dev/null)" >&2
		echo "server did not listen on port $port: $(tail -n 1 "$tmp/$key.srv.log" 2>/dev/null)" >"$tmp/$key.unavailable"
		stop_pid "$srv_pid"; srv_pid=""
		return 1
	fi
	py measure --name "$key" --parse ucx --settle 0 \
		--out "$tmp/$key.cli.json" --log "$tmp/$key.cli.log" -- \
		"${pre_cli[@]}" env UCX_TLS="$tls" UCX_LOG_LEVEL=info \
		ucx_perftest 127.0.0.1 -p "$port" -t "$test" -s "$size" -n "$iters" -w "$warm"
	# the server exits by itself once the test is over: give it 5 s
	for _ in $(seq 50); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
	stop_pid "$srv_pid"
	srv_pid=""
}

# A short calibration run sizes the measured run to about $duration seconds
# (ucx_perftest 1.13 has no time limit, only -n; the count is kept within
# bounds, since this VM's speed can change between the two runs).
#   ucx_test KEY NAME TLS TEST SIZE WARMUP CAL_ITERS
ucx_test() {
	local key=$1 name=$2 tls=$3 test=$4 size=$5 warm=$6 cal=$7 n
	if ucx_pair "${key}_cal" "$tls" "$test" "$size" "$cal" "$warm"; then
		n=$(py ucx-iters --test "$test" --size "$size" --duration "$duration" --cal "$tmp/${key}_cal.cli.json")
		say "      $name: $n iterations (+$warm warm-up), UCX_TLS=$tls"
		ucx_pair "$key" "$tls" "$test" "$size" "$n" "$warm" || true
	else
		cp "$tmp/${key}_cal.unavailable" "$tmp/$key.unavailable" 2>/dev/null || true
	fi
	py ucx-row --dir "$tmp" --key "$key" --name "$name" --test "$test" --tls "$tls" \
		--size "$size" --warmup "$warm"
}

python3 - "$tmp/versions.json" <<'EOF'
import json, subprocess, sys
def out(cmd):
	try:
		r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
		return r.stdout + r.stderr
	except Exception as e:
		return "unknown (%s)" % e
v = out(["ucx_info", "-v"]).splitlines()
ver = v[0].replace("# Version", "").strip() if v else "unknown"
# transports UCX finds on this host (ucx_info -d: "Transport: posix" lines)
tls = sorted({l.split(":", 1)[1].strip() for l in out(["ucx_info", "-d"]).splitlines()
	      if l.strip().startswith("# ") and "Transport:" in l})
# the protocol table of an endpoint UCX builds with each setting (thresholds:
# eager short / eager bcopy / rendezvous, and the lanes); 'self' is left out
# here because ucx_info connects to itself, where 'self' would win
ep = {}
for t in ("posix", "posix,cma"):
	import os
	r = subprocess.run(["ucx_info", "-u", "t", "-e"], capture_output=True, text=True,
			   timeout=10, env=dict(os.environ, UCX_TLS=t))
	ep["UCX_TLS=" + t] = [l.lstrip("# ").rstrip() for l in r.stdout.splitlines()
			       if "lane[" in l or "tag_send:" in l]
json.dump({"ucx": ver, "ucx_transports_available": tls, "ucx_info_endpoint": ep},
	  open(sys.argv[1], "w"))
EOF

say "host: $(uname -r), $(nproc) CPUs; UCX $(python3 -c "import json;print(json.load(open('$tmp/versions.json'))['ucx'])"), transports here: $(python3 -c "import json;print(' '.join(json.load(open('$tmp/versions.json'))['ucx_transports_available']))"); ~${duration}s per run; tmp $tmp; $([ -n "$pin" ] && echo "server on CPU ${pin%,*}, client on CPU ${pin#*,}" || echo unpinned)"
say "note: ucx_perftest busy-polls: each run keeps one CPU per side fully busy"

wp_unavailable=""
wp="$build/wirepath"
if [ ! -x "$wp" ]; then
	wp_unavailable="$wp not built (run: make)"
elif ! "$wp" bench --help 2>&1 | grep -qw shm; then
	wp_unavailable="'$wp bench --help' does not list shm in --paths"
fi

# --- 1. latency: ucx tag_lat over posix shared memory --------------------------
say "[1/4] ucx_perftest tag_lat over shared memory (UCX_TLS=posix,self)"
for s in 8 64; do
	ucx_test "ucx_lat_$s" "ucx tag_lat $s B" posix,self tag_lat "$s" 10000 200000
done

# --- 2. latency: wirepath shm pingpong, spinning ---------------------------------
# Round trips between two spinning processes on this VM come in several
# speeds that switch from run to run, even within one (see the README):
# tag_lat 64 B (the pingpong workload's message size) runs again right after
# the bench, and tag_bw posix after the kv bench, so each comparison is
# bracketed and a switch shows.
# The pingpong workload is a file (64 B request, 64 B result, one call per
# step); a bench that knows the name "pingpong" also works.
pp_wl=bench/workloads/pingpong.wl
[ -f "$pp_wl" ] || pp_wl=pingpong
if [ -z "$wp_unavailable" ]; then
	say "[2/4] wirepath bench --paths shm --workload $pp_wl --agents 1 --busy-poll, ${duration}s"
	py measure --name "wirepath bench shm pingpong" --out "$tmp/wp_lat_ext.json" \
		--log "$tmp/wp_lat.log" --settle 0 -- \
		"${pre_wp[@]}" "$wp" bench --paths shm --workload "$pp_wl" --agents 1 --busy-poll \
		--duration "$duration" --json "$tmp/wp_lat.json" --quiet
	if [ -s "$tmp/wp_lat.json" ]; then
		say "      ucx_perftest tag_lat 64 B again, right after the bench"
		ucx_test ucx_lat_64_after "ucx tag_lat 64 B (after)" posix,self tag_lat 64 10000 200000
	fi
else
	say "[2/4] wirepath: unavailable: $wp_unavailable"
fi

# --- 3. bandwidth: ucx tag_bw 4 MiB, posix and cma -------------------------------
say "[3/4] ucx_perftest tag_bw 4 MiB: posix shared memory, then cma (reference)"
ucx_test ucx_bw_posix "ucx tag_bw 4 MiB posix" posix,self tag_bw 4194304 20 100
# cma has no active messages: posix carries the tag protocol's eager part and
# the rendezvous handshake, cma (process_vm_readv) the 4 MiB payloads
ucx_test ucx_bw_cma "ucx tag_bw 4 MiB cma" posix,cma,self tag_bw 4194304 20 100

# --- 4. bulk: wirepath kv, shm and tcp ---------------------------------------------
if [ -z "$wp_unavailable" ]; then
	# kv sweeps 64 KiB..64 MiB; its --duration is per size (default 1 s), so
	# it is left at the bench's default: 6 sizes x 2 paths, about 15 s
	say "[4/4] wirepath bench --paths shm,tcp --workload kv (the bench's default 1 s per size and path)"
	py measure --name "wirepath bench shm,tcp kv" --out "$tmp/wp_kv_ext.json" \
		--log "$tmp/wp_kv.log" --settle 0 -- \
		"${pre_wp[@]}" "$wp" bench --paths shm,tcp --workload kv \
		--json "$tmp/wp_kv.json" --quiet
	if [ -s "$tmp/wp_kv.json" ]; then
		say "      ucx_perftest tag_bw 4 MiB posix again, right after the bench"
		ucx_test ucx_bw_posix_after "ucx tag_bw 4 MiB posix (after)" posix,self tag_bw 4194304 20 100
	fi
else
	say "[4/4] wirepath: unavailable: $wp_unavailable"
fi

# --- report ---------------------------------------------------------------------
mkdir -p "$(dirname "$json")"
# keep the tail of the wirepath bench output with its rows
python3 - "$tmp" <<'EOF'
import json, os, sys
d = sys.argv[1]
for key in ("wp_lat", "wp_kv"):
	f, log = os.path.join(d, key + "_ext.json"), os.path.join(d, key + ".log")
	if os.path.exists(f) and os.path.exists(log):
		row = json.load(open(f))
		row["output"] = open(log, errors="replace").read()[-3000:]
		json.dump(row, open(f, "w"), indent=1)
EOF
py ucx-report --dir "$tmp" --json "$json" --duration "$duration" --pin "$pin" \
	--wp-unavailable "$wp_unavailable"
