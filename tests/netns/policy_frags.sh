#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Front door on a jumbo-MTU interface (xdp.frags): the veth pair at MTU 9000,
# where native XDP refuses the plain program (veth: "Peer MTU is too large to
# set XDP", which proves this test needs the frags-aware one); the loader
# must report the frags-aware program, in native mode and then in generic
# mode. Each time, datagrams of 5000 and 8900 bytes (signed, forged, another
# tenant's, from unknown and denied sources) cross it while A captures every
# frame it sends and decides each, whole, with the user-space twin
# (wpp_traffic twin): XDP's counters per verdict, reason, tenant and rule
# must equal the twin's exactly, packets and bytes, and what the receivers
# got must equal what both passed.
# Usage: tests/netns/policy_frags.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"

in_a ip link set dev "$VA" mtu 9000 || skip "veth refuses MTU 9000"
in_b ip link set dev "$VB" mtu 9000 || skip "veth refuses MTU 9000"
# Nothing but the test's frames may reach B's XDP, so that the capture on A
# and XDP's counters cover the same frames: no IPv6 (router solicitations,
# MLD) from A, and static neighbours both ways (no ARP).
in_a sysctl -qw "net.ipv6.conf.$VA.disable_ipv6=1"
mac_a=$(in_a ip -br link show dev "$VA" | awk '{ print $3 }')
mac_b=$(in_b ip -br link show dev "$VB" | awk '{ print $3 }')
in_a ip neigh replace 10.99.0.1 lladdr "$mac_b" dev "$VA" nud permanent
for a in 10.99.1.2 10.99.2.2 10.99.3.2 10.99.4.2; do
	in_b ip neigh replace "$a" lladdr "$mac_a" dev "$VB" nud permanent
done

cat >"$TMPD/frags.rules" <<RULES
default drop
datagram 7100
tenant acme id 1 key $keyhex_a
  allow 10.99.1.0/24
  ports udp:7000 udp:7100
tenant beta id 2 key $keyhex_b
  allow 10.99.2.0/24
  ports udp:8000
RULES

# The plain program cannot run natively at this MTU: the test needs frags.
if in_b "$WP" policy load --no-frags --native-only --dev "$VB" "$TMPD/frags.rules" \
	>/dev/null 2>"$TMPD/err"; then
	fail "the plain program attached natively to a veth at MTU 9000"
fi
case $(cat "$TMPD/err") in
*EPERM*|*"Operation not permitted"*|*"needs root"*) skip "XDP unavailable here: $(cat "$TMPD/err")" ;;
*"out of range"*|*"MTU"*) note "plain program refused natively: $(cat "$TMPD/err")" ;;
*) fail "plain program refused, but not for the MTU: $(cat "$TMPD/err")" ;;
esac
in_b ip link show "$VB" | grep -q ' xdp' && fail "XDP left attached after a refused load"

# load_mode native|generic: load, and require the frags-aware program.
load_mode() {
	local flag=--native-only out
	[ "$1" = generic ] && flag=--generic
	out=$(in_b "$WP" policy load $flag --json --dev "$VB" "$TMPD/frags.rules" 2>&1) || {
		case $out in
		*"frags-aware"*|*EINVAL*) skip "the kernel refused the frags-aware program: $out" ;;
		esac
		fail "policy load $flag: $out"
	}
	echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["mode"] == sys.argv[1], d
if not d["frags"]:
    print("SKIP: not frags-aware:", d["detail"]); sys.exit(77)
assert d["frags_error"] == "" and "frags-aware" in d["detail"], d
print("loaded:", d["detail"])' "$1"
	case $? in 0) ;; 77) skip "the kernel refused the frags-aware program" ;; *) fail "load $1: $out" ;; esac
	# A later process sees the same program.
	in_b "$WP" policy stats --dev "$VB" | head -n 1 | grep -q "frags-aware" ||
		fail "policy stats does not report the frags-aware program"
}

# traffic MODE: send the mix, compare XDP with the twin, unload.
traffic() {
	local mode=$1 f
	in_b "$TR" recv --bind 10.99.0.1 --port 7000 --secs 30 --idle-ms 20000 >"$TMPD/r7000" &
	in_b "$TR" recv --bind 10.99.0.1 --port 7100 --secs 30 --idle-ms 20000 >"$TMPD/r7100" &
	in_b "$TR" recv --bind 10.99.0.1 --port 8000 --secs 30 --idle-ms 20000 >"$TMPD/r8000" &
	in_a "$TR" twin --dev "$VA" --rules "$TMPD/frags.rules" --secs 30 --idle-ms 20000 \
		>"$TMPD/twin" &
	for f in r7000 r7100 r8000 twin; do wait_ready "$TMPD/$f"; done

	snd() { in_a "$TR" send --dst 10.99.0.1 --pps 5000 "$@" >/dev/null || fail "sender failed: $*"; }
	local A="--src 10.99.1.2" F="--port 7100 --frame 1:$keyhex_a"
	snd $A $F --size 5000 --count 40                                  # pass
	snd $A $F --size 8900 --count 40 --seq-base 100                   # pass
	snd $A $F --size 100 --count 20 --seq-base 200                    # pass (small)
	snd $A $F --size 8900 --count 20 --seq-base 1000 --forge          # auth
	snd $A --port 7100 --frame "2:$keyhex_b" --size 5000 --count 20 --seq-base 2000  # tenant_mismatch
	snd $A $F --count 10 --short --seq-base 3000                      # bad_frame
	snd $A --port 7000 --size 8000 --count 30                         # pass
	snd $A --port 7001 --size 6000 --count 20 --seq-base 4000         # port
	snd --src 10.99.2.2 --port 8000 --size 8900 --count 30            # beta: pass
	snd --src 10.99.2.2 --port 7100 --frame "2:$keyhex_b" --size 5000 --count 10 --seq-base 5000  # beta: port
	snd --src 10.99.3.2 --port 7000 --size 8900 --count 20 --seq-base 6000  # no_tenant
	senders_done "$TMPD/r7000" "$TMPD/r7100" "$TMPD/r8000" "$TMPD/twin"
	wait

	in_b "$WP" policy stats --json --dev "$VB" >"$TMPD/stats.json" || fail "policy stats failed"
	python3 - "$TMPD/stats.json" "$TMPD/twin" "$TMPD" "$mode" <<'PY' || fail "$mode: XDP and the twin disagree"
import json, sys
x = json.load(open(sys.argv[1]))
tw = json.loads(open(sys.argv[2]).read().split("\n", 1)[1])
d, mode = sys.argv[3], sys.argv[4]
xp, tp = x["policy"], tw["policy"]
bad = []
def same(what, a, b):
    if a != b:
        bad.append(f"{what}: xdp {a} twin {b}")
same("verdicts", xp["verdicts"], tp["verdicts"])
same("reasons", xp["reasons"], tp["reasons"])
same("tenants", {t["name"]: t["reasons"] for t in xp["tenants"]},
     {t["name"]: t["reasons"] for t in tp["tenants"]})
same("rules", {r["text"]: (r["pkts"], r["bytes"]) for r in xp["rules"]},
     {r["text"]: (r["pkts"], r["bytes"]) for r in tp["rules"]})
xsum = sum(v["pkts"] for v in xp["verdicts"].values())
same("frames", xsum, tw["frames"])
# What was sent, and what the receivers got: what both passed.
r = xp["reasons"]
want = {"pass": 40 + 40 + 20 + 30 + 30, "auth": 20, "tenant_mismatch": 20,
        "bad_frame": 10, "port": 20 + 10, "no_tenant": 20}
for k, n in want.items():
    same(f"{k} packets (sent {n})", r[k]["pkts"], n)
if tw["max_len"] < 8900 or tw["truncated"]:
    bad.append(f"frames were not jumbo: max {tw['max_len']}, truncated {tw['truncated']}")
got = {p: int(open(f"{d}/r{p}").read().split()[-3]) for p in ("7000", "7100", "8000")}
same("received by port", got, {p: tw["pass_by_port"].get(p, 0) for p in got})
same("received 7100", got["7100"], 100)
for b in bad:
    print(b)
print(f"{mode}: {xsum} frames up to {tw['max_len']} bytes; XDP = twin:",
      ", ".join(f"{k}={v['pkts']}/{v['bytes']}B" for k, v in r.items() if v["pkts"]))
sys.exit(1 if bad else 0)
PY
	in_b "$WP" policy unload --dev "$VB" >/dev/null || fail "unload failed"
}

load_mode native
traffic native
load_mode generic
traffic generic
echo "PASS"
