#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Front door, atomic reload: while acme streams sequence-numbered datagrams,
# the rules are reloaded over and over between two files that both allow the
# stream but differ everywhere else (acme's id and so its tenant slot, its
# prefix, its port range, the other tenants). A half-applied rule set would
# drop some of the stream (no tenant, no port); the receiver must get every
# sequence number and XDP must count no drop at all.
# Usage: tests/netns/policy_reload.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"

cat >"$TMPD/a.rules" <<RULES
default drop
tenant acme id 1 key $keyhex_a
  allow 10.99.1.0/24
  ports udp:7000
tenant beta id 2 key $keyhex_b
  allow 10.99.2.0/24
  ports udp:8000
RULES
cat >"$TMPD/b.rules" <<RULES
default drop
tenant other id 3 key $keyhex_b
  allow 10.99.4.0/24
  ports tcp:1-65535
tenant acme2 id 11 key $keyhex_a
  allow 10.99.0.0/17
  ports udp:6000-7000
RULES
policy_load "$TMPD/a.rules"

COUNT=${WP_RELOAD_COUNT:-30000}
in_b "$TR" recv --bind 10.99.0.1 --port 7000 --secs 30 --idle-ms 1500 >"$TMPD/r" &
rpid=$!
wait_ready "$TMPD/r"
in_a "$TR" send --src 10.99.1.2 --dst 10.99.0.1 --port 7000 --count "$COUNT" --pps 15000 \
	>"$TMPD/s" &
spid=$!
reloads=0
while kill -0 "$spid" 2>/dev/null; do
	f=$([ $((reloads % 2)) -eq 0 ] && echo b || echo a)
	in_b "$WP" policy reload --dev "$VB" "$TMPD/$f.rules" >/dev/null 2>"$TMPD/err" ||
		fail "reload failed: $(cat "$TMPD/err")"
	reloads=$((reloads + 1))
done
wait "$spid" || fail "sender failed"
wait "$rpid"
stats_json
read -r _ sent _ secs <"$TMPD/s"
read -r _ got _ uniq < <(grep ^received "$TMPD/r")
python3 - "$TMPD/stats.json" <<'PY' || fail "XDP dropped packets during reloads"
import json, sys
p = json.load(open(sys.argv[1]))["policy"]
drops = {k: v["pkts"] for k, v in p["reasons"].items()
         if k in ("no_tenant", "port", "rate_pps", "rate_bps", "bad_ip", "bad_l4")}
print("drop reasons during reloads:", drops)
sys.exit(1 if any(drops.values()) else 0)
PY
note "$reloads reloads while sending $sent datagrams in ${secs}s; received $got ($uniq unique)"
[ "$reloads" -ge 5 ] || fail "only $reloads reloads happened during the stream"
[ "$uniq" = "$sent" ] || fail "lost $((sent - uniq)) of $sent allowed datagrams across reloads"
echo "PASS"
