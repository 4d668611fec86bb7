#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The front door under a flood (docs/performance.md, "Front door under a
# flood"). Needs root; makes two network namespaces joined by a veth pair
# (tests/netns/lib.sh) and removes them on exit. Nothing leaves them.
#
#   A (sender)  10.99.1.2: the agents (wirepath bench --peer), and wp_flood
#               sending through an AF_PACKET socket on A's veth
#   B (host)    10.99.0.1: wirepath serve on tcp:7000, the datagram endpoint
#               (wp_flood recv) on udp:7100, and the front door on B's veth
#
# Part 1, agentic workload under a flood, rounds of three modes side by side:
#   base  policy in XDP, no flood
#   xdp   policy in XDP, flood at --pps
#   twin  no XDP: the datagram endpoint runs the user-space twin on every
#         datagram (the same decision function, wp_twin_decide), flood at --pps
# and reports tool calls/s (legit throughput) and the datagram endpoint's
# CPU, i.e. the user-space CPU the flood cost the host.
#
# Part 2, drop rate per core: the flood at full speed, the sender pinned to
# CPU 0 (veth delivers in the sender's softirq, so the filter runs there too):
#   floor        no filter, frames addressed to another MAC: the stack's own
#                cheapest drop (IP input discards "other host" frames); the
#                cost of sending and delivering a frame on veth
#   xdp          the policy in native XDP
#   xdp-generic  the same program in generic (skb) mode
#   nft-ingress  the same filtering as an nftables netdev ingress chain
#   nft-raw      the same as an ip prerouting chain at raw priority
# and reports packets dropped per CPU-second (sender included), CPU per
# packet above the floor, and the XDP program's own run time per packet
# (kernel.bpf_stats_enabled, restored afterwards).
#
# usage: bench/flood/run.sh [--build DIR] [--secs S] [--rounds N] [--pps R]
#                           [--drop-secs S] [--size BYTES] [--json FILE]
#                           [--skip-agentic] [--skip-drop]
# --size: UDP payload bytes of each flood frame (default 64).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build SECS=3 ROUNDS=7 PPS=20000,100000 DROP_SECS=4 JSON=$ROOT/results/flood.json
SKIP_DROP=0 SKIP_AGENTIC=0 SIZE=64
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--pps) PPS=$2; shift ;;
	--drop-secs) DROP_SECS=$2; shift ;;
	--json) JSON=$2; shift ;;
	--skip-drop) SKIP_DROP=1 ;;
	--skip-agentic) SKIP_AGENTIC=1 ;;
	--size) SIZE=$2; shift ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d'; exit 0 ;;
	*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

. "$ROOT/tests/netns/lib.sh"
netns_setup "$BUILD"
FL=$(cd "$BUILD" && pwd)/wp_flood
[ -x "$FL" ] || skip "$BUILD has no wp_flood (run make)"
command -v nft >/dev/null || skip "no nft: run scripts/deps.sh (Debian's nftables)"
command -v taskset >/dev/null || skip "no taskset (util-linux)"
in_b sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
	"net.ipv4.conf.$VB.rp_filter=0" 2>/dev/null
VB_MAC=$(in_b ip -br link show dev "$VB" | awk '{ print $3 }')
# Background processes start through nsenter itself, which execs them, so $!
# is the process to signal (a shell function would put a subshell between).
bg_a() { nsenter --net="/run/netns/$NS_A" "$@" & }
bg_b() { nsenter --net="/run/netns/$NS_B" "$@" & }
ROWS=$TMPD/rows.jsonl
: >"$ROWS"
say() { echo "flood: $*" >&2; }

cat >"$TMPD/front.rules" <<RULES
# The host's front door: one tenant, its agents' prefix, the RPC port and
# the datagram port; everything else is dropped.
default drop
datagram 7100
tenant acme id 1 key $keyhex_a admin
  allow 10.99.1.0/24
  ports tcp:7000 udp:7100
RULES

# The same filtering in nftables (source prefix and ports; nftables cannot
# check a SipHash tag, so part 2 floods only disallowed sources).
nft_rules() { # HOOK: ingress | raw
	if [ "$1" = ingress ]; then
		cat <<NFT
table netdev wpflood {
	chain front {
		type filter hook ingress device "$VB" priority -500; policy accept;
		meta protocol arp accept
		ip saddr 10.99.1.0/24 tcp dport 7000 accept
		ip saddr 10.99.1.0/24 udp dport 7100 accept
		counter drop
	}
}
NFT
	else
		cat <<NFT
table ip wpflood {
	chain front {
		type filter hook prerouting priority raw; policy accept;
		ip saddr 10.99.1.0/24 tcp dport 7000 accept
		ip saddr 10.99.1.0/24 udp dport 7100 accept
		counter drop
	}
}
NFT
	fi
}
nft_drops() { in_b nft -j list table "$1" wpflood | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("rule", {}).get("expr", []):
        if "counter" in e: print(e["counter"]["packets"])'; }

XDP_ON=off
xdp_on() { # [native|generic]: the policy on B's veth in that mode
	local mode=${1:-native} flag=--native-only
	[ "$XDP_ON" = "$mode" ] && return
	[ "$XDP_ON" = off ] || xdp_off
	[ "$mode" = generic ] && flag=--generic
	in_b "$WP" policy load $flag --json --dev "$VB" "$TMPD/front.rules" >"$TMPD/load.json" 2>&1 ||
		fail "policy load ($mode): $(cat "$TMPD/load.json")"
	XDP_ON=$mode
}
xdp_off() { in_b "$WP" policy unload --dev "$VB" >/dev/null 2>&1; XDP_ON=off; }
xdp_drops() { # total packets the XDP program dropped so far
	in_b "$WP" policy stats --json --dev "$VB" | python3 -c '
import json, sys
print(json.load(sys.stdin)["policy"]["verdicts"]["drop"]["pkts"])' || fail "policy stats"; }

# /proc/stat busy ticks (user nice system irq softirq steal) per CPU: "cpu0 N cpu1 M ..."
cpu_ticks() { awk '/^cpu[0-9]/ { printf "%s %d ", $1, $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

flood_args() { # PPS SECS MIX [DST_MAC]
	echo "$FL" send --dev "$VA" --dst-mac "${4:-$VB_MAC}" --dst 10.99.0.1 --port 7100 \
		--mix "$3" --frame "1:$keyhex_a" --legit-src 10.99.1.2 --pps "$1" --secs "$2" \
		--size "$SIZE"
}

rx_pkts() { in_b ip -j -s link show dev "$VB" | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
# The XDP program's own run time, from the kernel's BPF run-time statistics:
# prog_stats_begin turns them on and prints "run_time_ns run_cnt" of the
# loaded program; prog_stats_end prints them again and restores the sysctl.
prog_stats() { bpftool -j prog show id "$(python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["prog_id"])' "$TMPD/load.json")" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("run_time_ns", 0), d.get("run_cnt", 0))'; }
prog_stats_begin() { sysctl -qw kernel.bpf_stats_enabled=1; prog_stats; }
prog_stats_end() { prog_stats; sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_WAS"; }
BPF_STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
trap 'sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_WAS"; netns_cleanup' EXIT

# ---------------------------------------------------------------- part 1
bg_b "$WP" serve --listen tcp://10.99.0.1:7000 --policy "$TMPD/front.rules" >"$TMPD/serve.out" 2>&1
SERVE=$!
for i in $(seq 100); do grep -q '7000' "$TMPD/serve.out" 2>/dev/null && break; sleep 0.05; done
kill -0 $SERVE 2>/dev/null || fail "wirepath serve did not start: $(cat "$TMPD/serve.out")"

run_mode() { # MODE ROUND RATE
	local mode=$1 round=$2 rate=$3 rpid fpid
	case $mode in base|xdp) xdp_on ;; twin) xdp_off ;; esac
	bg_b "$FL" recv --bind 10.99.0.1 --port 7100 --rules "$TMPD/front.rules" >"$TMPD/recv.out"
	rpid=$!
	wait_ready "$TMPD/recv.out"
	local x0=0 p0="0 0" p1="0 0"
	if [ "$mode" != twin ]; then
		x0=$(xdp_drops)
		p0=$(prog_stats_begin)
	fi
	local c0
	c0=$(cpu_ticks)
	if [ "$mode" != base ]; then
		# shellcheck disable=SC2046
		bg_a $(flood_args "$rate" "$(awk "BEGIN { print $SECS + 2 }")" both) >"$TMPD/send.out"
		fpid=$!
		sleep 0.3
	fi
	in_a "$WP" bench --peer tcp://10.99.0.1:7000 --paths tcp --tenant-key "1:$keyhex_a" --duration "$SECS" --warmup 0.5 \
		--agents 4 --json "$TMPD/bench.json" --quiet >"$TMPD/bench.out" 2>&1 ||
		fail "bench ($mode): $(tail -5 "$TMPD/bench.out")"
	local c1
	c1=$(cpu_ticks)
	[ -n "${fpid:-}" ] && { kill -INT "$fpid" 2>/dev/null; wait "$fpid"; }
	# After the sender stopped, so that every frame it counted was decided.
	local x1=0
	if [ "$mode" != twin ]; then
		x1=$(xdp_drops)
		p1=$(prog_stats_end)
	fi
	kill -INT "$rpid"
	wait "$rpid"
	[ "$mode" = base ] && echo '{}' >"$TMPD/send.out"
	python3 - "$mode" "$round" "$TMPD/bench.json" "$TMPD/recv.out" "$TMPD/send.out" \
		"$((x1 - x0))" "$c0" "$c1" "$rate" "$p0" "$p1" >>"$ROWS" <<'PY' || fail "could not read the $mode results"
import json, sys
mode, rnd, bj, rv, sd, xd = sys.argv[1:7]
rate = 0 if mode == "base" else float(sys.argv[9])
(t0, n0), (t1, n1) = (map(int, a.split()) for a in sys.argv[10:12])
b = json.load(open(bj))["results"][0]
r = [l for l in open(rv) if l.startswith("{")]
r = json.loads(r[-1])
s = json.loads(open(sd).read().strip() or "{}")
def ticks(t):
    w = t.split()
    return {w[i]: int(w[i + 1]) for i in range(0, len(w), 2)}
c0, c1 = ticks(sys.argv[7]), ticks(sys.argv[8])
print(json.dumps({"part": "agentic", "mode": mode, "round": int(rnd), "rate": rate,
    "steps_per_s": b["steps_per_s"], "tool_calls_per_s": b["steps_per_s"] * b["tool_calls_per_step"],
    "cpu_us_per_step": b["cpu_us_per_step"],
    "tool_rtt_p99_us": b["tool_rtt_us"]["p99"],
    "flood_sent": s.get("sent", 0), "flood_pps": s.get("pps", 0),
    "sender_cpu_s": s.get("cpu_user_s", 0) + s.get("cpu_sys_s", 0), "sender_secs": s.get("secs", 0),
    "endpoint_received": r["received"], "endpoint_reasons": r["reasons"],
    "endpoint_cpu_user_s": r["cpu_user_s"], "endpoint_cpu_sys_s": r["cpu_sys_s"],
    "xdp_dropped": int(xd), "xdp_prog_cpu_s": (t1 - t0) / 1e9, "xdp_prog_runs": n1 - n0,
    "machine_busy_s": sum(c1[k] - c0[k] for k in c1) / 100.0}))
PY
	say "$(tail -1 "$ROWS" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("round %d %-4s %6.0f: %7.0f tool calls/s, flood %6.0f pps, endpoint got %d datagrams, cpu %.3f s" % (d["round"], d["mode"], d["rate"], d["tool_calls_per_s"], d["flood_pps"], d["endpoint_received"], d["endpoint_cpu_user_s"] + d["endpoint_cpu_sys_s"]))')"
}

[ "$SKIP_AGENTIC" = 1 ] && ROUNDS_A=0 || ROUNDS_A=$ROUNDS
runs=(base:0)
for rate in $(echo "$PPS" | tr ',' ' '); do runs+=("xdp:$rate" "twin:$rate"); done
for r in $(seq "$ROUNDS_A"); do
	# Every mode once per round, the order rotated so that drift on a shared
	# machine does not favour one mode.
	for i in $(seq 0 $((${#runs[@]} - 1))); do
		mr=${runs[$(((i + r - 1) % ${#runs[@]}))]}
		run_mode "${mr%%:*}" "$r" "${mr##*:}"
	done
done
kill -TERM $SERVE
wait $SERVE 2>/dev/null
xdp_off

# ---------------------------------------------------------------- part 2
drop_mode() { # MODE
	local mode=$1 d0=0 d1=0 c0 c1 mac=$VB_MAC p0="0 0" p1="0 0"
	case $mode in
	floor) mac=02:00:00:00:00:01; d0=$(rx_pkts) ;;
	xdp|xdp-generic)
		[ "$mode" = xdp ] && xdp_on native || xdp_on generic
		d0=$(xdp_drops)
		p0=$(prog_stats_begin) ;;
	nft-ingress) nft_rules ingress | in_b nft -f - || fail "nft ingress rules refused" ;;
	nft-raw) nft_rules raw | in_b nft -f - || fail "nft raw rules refused" ;;
	esac
	c0=$(cpu_ticks)
	# shellcheck disable=SC2046
	in_a taskset -c 0 $(flood_args 0 "$DROP_SECS" disallowed "$mac") >"$TMPD/send.out" ||
		fail "flood sender ($mode): $(cat "$TMPD/send.out")"
	c1=$(cpu_ticks)
	case $mode in
	floor) d1=$(rx_pkts) ;;
	xdp|xdp-generic)
		d1=$(xdp_drops)
		p1=$(prog_stats_end)
		xdp_off ;;
	nft-ingress) d1=$(nft_drops netdev); in_b nft delete table netdev wpflood ;;
	nft-raw) d1=$(nft_drops ip); in_b nft delete table ip wpflood ;;
	esac
	python3 - "$mode" "$TMPD/send.out" "$((d1 - d0))" "$c0" "$c1" "$p0" "$p1" >>"$ROWS" <<'PY' || fail "could not read the $mode results"
import json, sys
mode, sd, dropped = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.loads(open(sd).read().strip())
def ticks(t):
    w = t.split()
    return {w[i]: int(w[i + 1]) for i in range(0, len(w), 2)}
c0, c1 = ticks(sys.argv[4]), ticks(sys.argv[5])
(t0, n0), (t1, n1) = (map(int, a.split()) for a in sys.argv[6:8])
busy = {k: (c1[k] - c0[k]) / 100.0 for k in c1}
tot = sum(busy.values())
row = {"part": "drop", "mode": mode, "sent": s["sent"], "secs": s["secs"],
    "sent_pps": s["pps"], "dropped": dropped, "drop_pps": dropped / s["secs"],
    "busy_s": busy, "drops_per_cpu_s": dropped / tot if tot else 0,
    "cpu_ns_per_pkt": tot * 1e9 / s["sent"] if s["sent"] else 0}
if n1 > n0:
    row["prog_runs"] = n1 - n0
    row["prog_ns_per_pkt"] = (t1 - t0) / (n1 - n0)
print(json.dumps(row))
PY
	say "$(tail -1 "$ROWS" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("drop %-11s: sent %8.0f pps, dropped %8.0f pps, %8.0f drops per CPU-second, %5.0f ns CPU per packet%s" % (d["mode"], d["sent_pps"], d["drop_pps"], d["drops_per_cpu_s"], d["cpu_ns_per_pkt"], ", program %.0f ns" % d["prog_ns_per_pkt"] if "prog_ns_per_pkt" in d else ""))')"
}
if [ "$SKIP_DROP" = 0 ]; then
	for r in $(seq "$ROUNDS"); do
		for m in floor xdp xdp-generic nft-ingress nft-raw; do drop_mode "$m"; done
	done
fi

# ---------------------------------------------------------------- summary
mkdir -p "$(dirname "$JSON")"
python3 "$ROOT/bench/flood/summary.py" "$ROWS" "$JSON" "$PPS" "$SECS" "$(uname -r)" "$(nproc)" ||
	fail "summary failed"
