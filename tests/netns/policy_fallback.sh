#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Front door, native-to-generic fallback: on a device whose driver has no
# native XDP (a VXLAN device over the veth pair), `policy load` must fall
# back to generic mode and say so (mode generic, fallback true, native's
# errno, a detail line and stderr that name it), `--native-only` must refuse
# with the reason, and the generic program must really enforce the rules:
# traffic from A through the tunnel passes or drops as the rules say, with
# exact counters. Usage: tests/netns/policy_fallback.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"

# VXLAN 42 between A (10.99.1.2) and B (10.99.0.1); inner 10.97.0.0/24.
DM="wpvx$$"
in_b ip link add "$DM" type vxlan id 42 local 10.99.0.1 remote 10.99.1.2 dstport 4789 \
	dev "$VB" 2>/dev/null || skip "no vxlan devices here"
in_a ip link add "wpvxa$$" type vxlan id 42 local 10.99.1.2 remote 10.99.0.1 dstport 4789 \
	dev "$VA" || fail "vxlan on A"
in_b ip addr add 10.97.0.1/24 dev "$DM"
in_a ip addr add 10.97.0.2/24 dev "wpvxa$$"
in_a ip addr add 10.97.0.3/24 dev "wpvxa$$"
in_b ip link set "$DM" up
in_a ip link set "wpvxa$$" up

cat >"$TMPD/fb.rules" <<RULES
default drop
tenant acme id 1 key $keyhex_a
  allow 10.97.0.2/32
  ports udp:7000
RULES

out=$(in_b "$WP" policy load --native-only --json --dev "$DM" "$TMPD/fb.rules" 2>&1) &&
	fail "--native-only loaded on a dummy device: $out"
case $out in
*EPERM*|*"Operation not permitted"*) skip "BPF not permitted here: $out" ;;
esac
echo "$out" | grep -qi "native" || fail "--native-only refusal does not say why: $out"
note "native-only refused: $out"

out=$(in_b "$WP" policy load --json --dev "$DM" "$TMPD/fb.rules" 2>"$TMPD/err") ||
	fail "load with fallback failed: $out $(cat "$TMPD/err")"
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["mode"] == "generic", d
assert d["fallback"] is True, d
assert d["native_error"], d
assert "generic" in d["detail"].lower(), d
print("fallback reported:", d["detail"])' || fail "fallback not reported as such: $out"
grep -qi "generic" "$TMPD/err" || fail "the fallback was not reported loudly on stderr: $(cat "$TMPD/err")"
in_b ip -d link show "$DM" | grep -q "xdpgeneric" || fail "no generic XDP program on $DM"
# A later process cannot know the load fell back; it must not claim it was asked.
in_b "$WP" policy stats --dev "$DM" | head -1 | grep -q "as asked" &&
	fail "policy stats says the fallback was asked for: $(in_b "$WP" policy stats --dev "$DM" | head -1)"

# The generic program enforces the rules on what reaches the macvlan.
in_b "$TR" recv --bind 10.97.0.1 --port 7000 --secs 15 --idle-ms 20000 >"$TMPD/r" &
wait_ready "$TMPD/r"
in_a "$TR" send --dst 10.97.0.1 --src 10.97.0.2 --port 7000 --count 100 --pps 20000 >/dev/null ||
	fail "sender (acme)"
in_a "$TR" send --dst 10.97.0.1 --src 10.97.0.3 --port 7000 --count 40 --pps 20000 \
	--seq-base 100000 >/dev/null || fail "sender (no tenant)"
senders_done "$TMPD/r"
wait
[ "$(awk '/^received/ { print $4 }' "$TMPD/r")" = 100 ] ||
	fail "through generic XDP: received $(cat "$TMPD/r"), want the 100 allowed"
in_b "$WP" policy stats --json --dev "$DM" >"$TMPD/stats.json" || fail "stats on the generic program"
python3 - "$TMPD/stats.json" <<'PY' || fail "generic-mode counters do not match what was sent"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["policy"]
t = {x["name"]: x["reasons"] for x in p["tenants"]}
got = (t["acme"]["pass"]["pkts"], p["reasons"]["no_tenant"]["pkts"])
print("generic counters: acme pass %d, no_tenant %d" % got)
sys.exit(0 if got == (100, 40) else 1)
PY
in_b "$WP" policy unload --dev "$DM" >/dev/null || fail "unload of the generic program"
in_b ip -d link show "$DM" | grep -q "xdp" && fail "XDP still attached to $DM after unload"
note "vxlan: native refused, generic used and reported, rules enforced, unloaded cleanly"
