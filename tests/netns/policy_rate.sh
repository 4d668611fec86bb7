#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Front door, rate limits: acme may send 2000 packets/s (burst 100), beta
# 400 KB/s (burst 20 KB). Each sends about three times its rate for ~2 s.
# What passes must be within TOL (15%) of burst + rate * the measured send
# time, what the receiver got must equal what XDP passed, and passed +
# rate-dropped must equal what was sent, exactly.
# Usage: tests/netns/policy_rate.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"
TOL=${WP_RATE_TOL:-0.15}

cat >"$TMPD/rate.rules" <<RULES
default drop
tenant acme id 1 key $keyhex_a
  allow 10.99.1.0/24
  ports udp:7000
  rate 2000pps burst 100
tenant beta id 2 key $keyhex_b
  allow 10.99.2.0/24
  ports udp:8000
  rate 400KB/s burst 20KB
RULES
policy_load "$TMPD/rate.rules"

in_b "$TR" recv --bind 10.99.0.1 --port 7000 --secs 20 --idle-ms 20000 >"$TMPD/ra" &
in_b "$TR" recv --bind 10.99.0.1 --port 8000 --secs 20 --idle-ms 20000 >"$TMPD/rb" &
wait_ready "$TMPD/ra"; wait_ready "$TMPD/rb"
# beta: 1000-byte Ethernet frames (14 + 20 + 8 + 958) at 1200/s = 1.2 MB/s
in_a "$TR" send --src 10.99.1.2 --dst 10.99.0.1 --port 7000 --count 12000 --pps 6000 >"$TMPD/sa" &
spa=$!
in_a "$TR" send --src 10.99.2.2 --dst 10.99.0.1 --port 8000 --count 2400 --pps 1200 \
	--size 958 >"$TMPD/sb" &
spb=$!
wait "$spa" "$spb"
senders_done "$TMPD/ra" "$TMPD/rb"
wait

stats_json
python3 - "$TMPD" "$TOL" <<'PY' || fail "rate limits did not hold"
import json, sys
d, tol = sys.argv[1], float(sys.argv[2])
p = json.load(open(d + "/stats.json"))["policy"]
t = {x["name"]: x["reasons"] for x in p["tenants"]}
def sent(f):
    w = open(f"{d}/{f}").read().split()
    return int(w[1]), float(w[3])
def got(f):
    w = [l for l in open(f"{d}/{f}") if l.startswith("received")][0].split()
    return int(w[3])
ok = True
for name, sf, rf, reason, rate, burst, size in (
        ("acme", "sa", "ra", "rate_pps", 2000, 100, 1),
        ("beta", "sb", "rb", "rate_bps", 400000, 20000, 1000)):
    n, secs = sent(sf)
    passed, dropped, rx = t[name]["pass"]["pkts"], t[name][reason]["pkts"], got(rf)
    expect = (burst + rate * secs) / size
    dev = passed / expect - 1
    line = (f"{name}: sent {n} in {secs:.3f}s, passed {passed} (expected {expect:.0f} = burst + "
            f"rate x time, {dev:+.1%}), {reason} {dropped}, received {rx}")
    print(line)
    if passed + dropped != n: print(f"  {name}: passed + dropped != sent"); ok = False
    if rx != passed: print(f"  {name}: the receiver got {rx}, XDP passed {passed}"); ok = False
    if abs(dev) > tol: print(f"  {name}: off by more than {tol:.0%}"); ok = False
sys.exit(0 if ok else 1)
PY
echo "PASS"
