# SPDX-License-Identifier: MIT
# Shared setup for the front-door netns tests: two fresh network namespaces
# joined by a veth pair, every name unique to this run, all removed on exit.
# Traffic stays inside them. Commands run in a namespace through nsenter
# --net (not `ip netns exec`, which gives each command a private /sys and so
# a private bpffs: the policy pins must outlive one command).
#
#   A (sender)  veth $VA: 10.99.1.2 10.99.2.2 10.99.3.2 10.99.4.2 /16, fd99::2 fd99::3 /64
#   B (policy)  veth $VB: 10.99.0.1/16, fd99::1/64; XDP policy on $VB
#
# Sourcing scripts call netns_setup BUILD; skip (77) only when root, ip,
# nsenter, namespaces or veth are missing, or BPF/XDP refuses to load.
set -u

skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
note() { echo "$*"; }

in_a() { nsenter --net="/run/netns/$NS_A" "$@"; }
in_b() { nsenter --net="/run/netns/$NS_B" "$@"; }

netns_cleanup() {
	local pids
	pids=$(jobs -p)
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait 2>/dev/null
	[ -n "${NS_B:-}" ] && in_b "$WP" policy unload --dev "$VB" >/dev/null 2>&1
	[ -n "${NS_A:-}" ] && ip netns del "$NS_A" 2>/dev/null
	[ -n "${NS_B:-}" ] && ip netns del "$NS_B" 2>/dev/null
	[ -n "${TMPD:-}" ] && rm -rf "$TMPD"
}

netns_setup() {
	BUILD=${1:-build}
	WP=$(cd "$BUILD" && pwd)/wirepath
	TR=$(cd "$BUILD" && pwd)/tests/wpp_traffic
	[ -x "$WP" ] && [ -x "$TR" ] || skip "$BUILD has no wirepath or tests/wpp_traffic"
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"
	command -v ip >/dev/null || skip "no ip (iproute2)"
	command -v nsenter >/dev/null || skip "no nsenter (util-linux)"
	command -v python3 >/dev/null || skip "no python3 (checks JSON)"
	local id=$$
	NS_A="wpfa$id" NS_B="wpfb$id" VA="wpva$id" VB="wpvb$id"
	TMPD=$(mktemp -d "${TMPDIR:-/tmp}/wp-netns.XXXXXX") || fail "mktemp"
	trap netns_cleanup EXIT
	ip netns add "$NS_A" 2>/dev/null || skip "cannot create network namespaces"
	ip netns add "$NS_B" || skip "cannot create network namespaces"
	ip link add "$VA" netns "$NS_A" type veth peer name "$VB" netns "$NS_B" 2>/dev/null ||
		skip "cannot create a veth pair"
	in_a ip addr add 10.99.1.2/16 dev "$VA"
	in_a ip addr add 10.99.2.2/16 dev "$VA"
	in_a ip addr add 10.99.3.2/16 dev "$VA"
	in_a ip addr add 10.99.4.2/16 dev "$VA"
	in_a ip -6 addr add fd99::2/64 dev "$VA" nodad
	in_a ip -6 addr add fd99::3/64 dev "$VA" nodad
	in_b ip addr add 10.99.0.1/16 dev "$VB"
	in_b ip -6 addr add fd99::1/64 dev "$VB" nodad
	in_a ip link set lo up
	in_b ip link set lo up
	in_a ip link set "$VA" up
	in_b ip link set "$VB" up
	# B keeps its replies from being the test: larger socket buffers.
	in_b sysctl -qw net.core.rmem_max=16777216 2>/dev/null
}

# policy_load RULES: native XDP on $VB; skip if BPF/XDP cannot load at all.
policy_load() {
	local out
	out=$(in_b "$WP" policy load --native-only --json --dev "$VB" "$1" 2>&1) || {
		case $out in
		*EPERM*|*"Operation not permitted"*|*"needs root"*|*"not supported"*|*ENOTSUP*)
			skip "XDP unavailable here: $out" ;;
		esac
		fail "policy load: $out"
	}
	echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["mode"]=="native", d' ||
		fail "policy load did not report native mode: $out"
	note "loaded: $(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["detail"])')"
}

# stats_json: the policy counters as JSON into $TMPD/stats.json
stats_json() {
	in_b "$WP" policy stats --json --dev "$VB" >"$TMPD/stats.json" || fail "policy stats failed"
}

# The senders are done: tell the background receivers (wpp_traffic recv and
# twin, by the PID each printed after "ready") to stop 1 s after their last
# frame. Their own idle window can then be long (a busy machine starts each
# sender slowly) without slowing the test down.
senders_done() {
	local f pid
	for f in "$@"; do
		pid=$(awk '/^ready [0-9]+$/ { print $2; exit }' "$f")
		[ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null
	done
	return 0
}

# Wait until a background receiver printed "ready" into its output file.
wait_ready() {
	local f=$1 i
	for i in $(seq 100); do
		grep -q ready "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "receiver did not start: $(cat "$f")"
}

keyhex_a=00112233445566778899aabbccddeeff
keyhex_b=0f0e0d0c0b0a09080706050403020100
