#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Front door, access control: with the policy in native XDP on B's veth,
# allowed flows pass (UDP, TCP, IPv6), denied ones drop (wrong port, unknown
# source), datagram frames with forged tags, another tenant's id or cut
# short drop, and the counters per tenant, reason and rule equal exactly
# what was sent. Usage: tests/netns/policy_acl.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"

cat >"$TMPD/acl.rules" <<RULES
default drop
datagram 7100
tenant acme id 1 key $keyhex_a
  allow 10.99.1.0/24 fd99::2/128
  ports udp:7000 tcp:7000 udp:7100
tenant beta id 2 key $keyhex_b
  allow 10.99.2.0/24
  ports udp:8000
RULES
policy_load "$TMPD/acl.rules"

# Receivers on B.
in_b "$TR" recv --bind 10.99.0.1 --port 7000 --secs 20 --idle-ms 20000 >"$TMPD/r4" &
in_b "$TR" recv --bind fd99::1 --port 7000 --secs 20 --idle-ms 20000 >"$TMPD/r6" &
in_b "$TR" recv --bind 10.99.0.1 --port 8000 --secs 20 --idle-ms 20000 >"$TMPD/r8" &
in_b "$TR" recv --bind 10.99.0.1 --port 7100 --secs 20 --idle-ms 20000 >"$TMPD/rf" &
for f in r4 r6 r8 rf; do wait_ready "$TMPD/$f"; done

snd() { in_a "$TR" send --dst "$@" >/dev/null || fail "sender failed: $*"; }
snd 10.99.0.1 --src 10.99.1.2 --port 7000 --count 200 --pps 20000            # acme: pass
snd 10.99.0.1 --src 10.99.1.2 --port 8000 --count 100 --pps 20000            # acme: port
snd 10.99.0.1 --src 10.99.2.2 --port 8000 --count 150 --pps 20000            # beta: pass
snd 10.99.0.1 --src 10.99.3.2 --port 7000 --count 50 --pps 20000 --seq-base 100000  # no tenant
snd fd99::1 --src fd99::2 --port 7000 --count 80 --pps 20000                 # acme v6: pass
snd fd99::1 --src fd99::3 --port 7000 --count 40 --pps 20000 --seq-base 100000      # no tenant
F="--port 7100 --pps 20000 --src 10.99.1.2"
snd 10.99.0.1 $F --count 60 --frame "1:$keyhex_a"                            # signed: pass
snd 10.99.0.1 $F --count 30 --frame "1:$keyhex_a" --forge --seq-base 1000    # forged: auth
snd 10.99.0.1 $F --count 20 --frame "2:$keyhex_b" --seq-base 2000            # beta's frame from acme
snd 10.99.0.1 $F --count 10 --frame "1:$keyhex_a" --short --seq-base 3000    # cut: bad_frame
senders_done "$TMPD/r4" "$TMPD/r6" "$TMPD/r8" "$TMPD/rf"
wait

got() { awk '/^received/ { print $4 }' "$TMPD/$1"; }
[ "$(got r4)" = 200 ] || fail "acme UDP 7000: received $(cat "$TMPD/r4"), want 200"
[ "$(got r6)" = 80 ] || fail "acme IPv6 UDP 7000: received $(cat "$TMPD/r6"), want 80"
[ "$(got r8)" = 150 ] || fail "beta UDP 8000: received $(cat "$TMPD/r8"), want 150"
[ "$(got rf)" = 60 ] || fail "signed frames: received $(cat "$TMPD/rf"), want 60"
note "received: acme v4 200, acme v6 80, beta 150, signed frames 60; nothing denied got through"

stats_json
python3 - "$TMPD/stats.json" <<'PY' || fail "counters do not match what was sent"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["policy"]
t = {x["name"]: x["reasons"] for x in p["tenants"]}
r = p["reasons"]
rules = {x["text"]: x["pkts"] for x in p["rules"]}
want = [
    ("acme pass", t["acme"]["pass"]["pkts"], 200 + 80 + 60),
    ("acme port", t["acme"]["port"]["pkts"], 100),
    ("acme auth", t["acme"]["auth"]["pkts"], 30),
    ("acme tenant_mismatch", t["acme"]["tenant_mismatch"]["pkts"], 20),
    ("acme bad_frame", t["acme"]["bad_frame"]["pkts"], 10),
    ("beta pass", t["beta"]["pass"]["pkts"], 150),
    ("no_tenant", r["no_tenant"]["pkts"], 50 + 40),
    ("rule acme ports udp:7100", rules["acme ports udp:7100"], 120),
    ("rule acme allow fd99::2/128", rules["acme allow fd99::2/128"], 80),
    ("rule beta ports udp:8000", rules["beta ports udp:8000"], 150),
]
bad = [f"{n}: counted {g}, sent {w}" for n, g, w in want if g != w]
for b in bad: print(b)
# bytes: every acme pass datagram is 14+20+8+8 (v4), 14+40+8+8 (v6) or a 48-byte frame
wb = 200 * 50 + 80 * 70 + 60 * (14 + 20 + 8 + 48)
if t["acme"]["pass"]["bytes"] != wb:
    print(f"acme pass bytes {t['acme']['pass']['bytes']} != {wb}"); bad.append(1)
print("counters:", ", ".join(f"{n}={g}" for n, g, w in want))
sys.exit(1 if bad else 0)
PY

# TCP: the allowed port connects, a denied port and an unknown source do not.
in_b "$TR" tcp-listen --bind 10.99.0.1 --port 7000 --secs 5 >"$TMPD/t1" &
in_b "$TR" tcp-listen --bind 10.99.0.1 --port 7001 --secs 5 >"$TMPD/t2" &
wait_ready "$TMPD/t1"; wait_ready "$TMPD/t2"
in_a "$TR" tcp-connect --src 10.99.1.2 --dst 10.99.0.1 --port 7000 --timeout-ms 2000 ||
	fail "acme could not connect to tcp:7000"
in_a "$TR" tcp-connect --src 10.99.1.2 --dst 10.99.0.1 --port 7001 --timeout-ms 500 &&
	fail "acme connected to tcp:7001, which it is not allowed"
in_a "$TR" tcp-connect --src 10.99.3.2 --dst 10.99.0.1 --port 7000 --timeout-ms 500 &&
	fail "an unknown source connected to tcp:7000"
note "tcp: acme -> 7000 connects; acme -> 7001 and unknown -> 7000 are dropped"

# Modes are reported as they are: generic when asked, and a second load refused.
in_b "$WP" policy load --dev "$VB" "$TMPD/acl.rules" >/dev/null 2>"$TMPD/err" &&
	fail "a second load on $VB succeeded"
grep -q "use 'wirepath policy reload" "$TMPD/err" || fail "second load: $(cat "$TMPD/err")"
in_b "$WP" policy unload --dev "$VB" >/dev/null || fail "unload failed"
in_b ip link show "$VB" | grep -q ' xdp' && fail "XDP still attached after unload"
out=$(in_b "$WP" policy load --generic --json --dev "$VB" "$TMPD/acl.rules") || fail "generic load"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["mode"]=="generic" and not d["fallback"], d' ||
	fail "generic load reported: $out"
in_b "$WP" policy unload --dev "$VB" >/dev/null || fail "unload (generic) failed"
note "second load refused; unload detaches; --generic reports generic mode"
echo "PASS"
