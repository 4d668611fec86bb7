#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ucx path next to UCX's own benchmark, across two network namespaces
# joined by a veth pair (uxA 10.78.0.1 -> uxB 10.78.0.2), UCX_TLS=tcp on
# every process so both sides run over the same transport
# (docs/performance.md, "ucx"):
#   1. RPC round trip: bench/ucx_rtt (one call in flight against `wirepath
#      serve`, 64-byte answers) vs `ucx_perftest -t ucp_am_lat -s 64`
#      (one-way latency: doubled for the round trip); goal <= 1.3x;
#   2. bulk put: `wirepath bench --workload kv --ucx-trust-rma` (wp_xfer_post
#      writes: RMA puts; tcp's RMA is software, which checks nothing on the
#      target, so without the opt-in on both sides the writes go as frames) vs `ucx_perftest -t ucp_put_bw`, 1 MiB and 16 MiB; goal >= 0.9x;
#      CPU s per GB from the kv sweep.
# Needs root and ucx_perftest (scripts/deps.sh --peers). Prints the raw lines
# and one JSON object per figure. Run it under `flock /work/bench.lock`.
#
# Usage: bench/ucx/run.sh [BUILD] [N calls (default 20000)] [kv secs per size (default 1)]
set -u
BUILD=$(cd "${1:-build}" && pwd)
N=${2:-20000}
SECS=${3:-1}
command -v ucx_perftest >/dev/null || { echo "ucx_perftest missing: scripts/deps.sh --peers" >&2; exit 2; }
[ -x "$BUILD/ucx_rtt" ] || { echo "$BUILD/ucx_rtt not built" >&2; exit 2; }
A=uxA.$$ B=uxB.$$
PORT=$((30000 + $$ % 10000))
cleanup() {
	local p
	p=$(jobs -p)
	[ -n "$p" ] && kill $p 2>/dev/null
	wait 2>/dev/null
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$A" && ip netns add "$B" || { echo "cannot create namespaces (root?)" >&2; exit 2; }
ip link add uxa type veth peer name uxb &&
	ip link set uxa netns "$A" && ip link set uxb netns "$B" &&
	ip -n "$A" addr add 10.78.0.1/24 dev uxa && ip -n "$B" addr add 10.78.0.2/24 dev uxb &&
	ip -n "$A" link set uxa up && ip -n "$B" link set uxb up &&
	ip -n "$A" link set lo up && ip -n "$B" link set lo up || { echo "veth setup failed" >&2; exit 2; }
for _ in $(seq 50); do
	ip -n "$B" link show uxb | grep -q LOWER_UP && break
	sleep 0.1
done
export UCX_TLS=tcp
# `ip netns exec` gives each side the namespace's /sys, where UCX finds its devices.
# Background processes start with ip itself, not through in_b: jobs -p
# (cleanup) then names the process (ip netns exec execs it), not a subshell.
in_a() { ip netns exec "$A" "$@"; }
in_b() { ip netns exec "$B" "$@"; }

# perftest TEST SIZE ITERS: the server in B, the client in A; the Final line.
perftest() {
	ip netns exec "$B" ucx_perftest -p "$PORT" >/dev/null 2>&1 &
	local srv=$! out
	sleep 0.5
	out=$(in_a ucx_perftest 10.78.0.2 -p "$PORT" -t "$1" -s "$2" -n "$3" -w $(($3 / 10)) 2>&1 | grep '^Final:')
	wait "$srv" 2>/dev/null
	echo "$out"
}

echo "# 1. round trip, 64 B"
pf=$(perftest ucp_am_lat 64 "$N")
PORT=$((PORT + 1))
echo "ucx_perftest ucp_am_lat 64 B: $pf"
ip netns exec "$B" "$BUILD/wirepath" serve --ucx-trust-rma --listen "ucx://10.78.0.2:$PORT" >/dev/null 2>&1 &
for _ in $(seq 50); do
	ip netns exec "$B" ss -ltnH "sport = :$PORT" | grep -q . && break
	sleep 0.1
done
wp=$(in_a "$BUILD/ucx_rtt" "ucx://10.78.0.2:$PORT" "$N" 64)
echo "wirepath ucx_rtt: $wp"
# Busy-polling on both sides, as ucx_perftest's client and server do.
PB=$((PORT + 100))
ip netns exec "$B" "$BUILD/wirepath" serve --busy-poll --listen "ucx://10.78.0.2:$PB" >/dev/null 2>&1 &
bsrv=$!
for _ in $(seq 50); do
	ip netns exec "$B" ss -ltnH "sport = :$PB" | grep -q . && break
	sleep 0.1
done
wpb=$(in_a "$BUILD/ucx_rtt" "ucx://10.78.0.2:$PB" "$N" 64 --busy-poll)
kill "$bsrv" 2>/dev/null
echo "wirepath ucx_rtt --busy-poll: $wpb"
python3 - "$pf" "$wp" "$wpb" <<'PY'
import json, sys
f = sys.argv[1].split()
pf_p50, pf_avg = float(f[2]), float(f[3])          # one-way, us
wp, wpb = json.loads(sys.argv[2]), json.loads(sys.argv[3])
for name, w in (("sleeping", wp), ("busy_poll", wpb)):
    print(json.dumps({"figure": "rtt_64B_" + name, "ucx_perftest_am_lat_rtt_us_p50": 2 * pf_p50,
                      "wirepath_rtt_us_p50": w["rtt_us_p50"], "wirepath_rtt_us_mean": w["rtt_us_mean"],
                      "ratio_p50": round(w["rtt_us_p50"] / (2 * pf_p50), 2), "goal": "<= 1.3",
                      "client_cpu_us_per_call": w["client_cpu_us_per_call"]}))
PY
P2=$PORT
PORT=$((PORT + 1))

echo "# 2. bulk put"
for sz in 1048576 16777216; do
	pf=$(perftest ucp_put_bw "$sz" $((sz >= 16777216 ? 100 : 1000)))
	PORT=$((PORT + 1))
	echo "ucx_perftest ucp_put_bw $sz B: $pf"
	echo "{\"figure\": \"ucp_put_bw_$sz\", \"MBps_overall\": $(echo "$pf" | awk '{print $7}')}"
done
in_a "$BUILD/wirepath" bench --peer "ucx://10.78.0.2:$P2" --paths ucx --workload kv --ucx-trust-rma \
	--duration "$SECS" --warmup 0.2 --agents 1 --json /tmp/ucx_kv.$$.json --quiet 2>&1 | tail -n 20
python3 - /tmp/ucx_kv.$$.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps(d.get("results", d))[:4000])
PY
rm -f /tmp/ucx_kv.$$.json /tmp/ucx_kv.$$.dat
