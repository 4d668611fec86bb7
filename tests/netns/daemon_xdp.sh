#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wirepathd --xdp (docs/daemon.md, "XDP at the edge"): the daemon runs in
# B, listening on B's veth address, and attaches the rules file's XDP
# program to that veth. One rules file drives both: the tenant owns A's
# first prefix and `ports tcp:PORT`, and its API key. Checked: the tenant's
# address gets 200 from /v1/models and a whole SSE stream; an address
# outside every prefix gets no connection (its SYN dropped: reason
# no_tenant), the tenant's address to a second listener of the same daemon
# on a port the tenant does not own likewise (reason port), although that
# listener answers inside B; the log says which XDP mode the daemon got;
# SIGTERM leaves no XDP on the veth and no pins. The daemon runs under
# nsenter --net, not `ip netns exec`, whose private /sys would hide its pins
# from `wirepath policy stats` (lib.sh; docs/daemon.md).
# Usage: tests/netns/daemon_xdp.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"
WPD=$(cd "$BUILD" && pwd)/wirepathd
here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$WPD" ] || skip "$BUILD has no wirepathd"
command -v curl >/dev/null || skip "no curl"

PORT=8080 PORT2=8081 # fresh namespaces: nothing else listens there
KEY="wpk-xdp-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
hash=$(printf %s "$KEY" | "$WP" policy hash-key) || fail "policy hash-key"
cat >"$TMPD/tenants.rules" <<RULES
default drop
tenant acme id 1 key $keyhex_a
  allow 10.99.1.0/24
  ports tcp:$PORT
  api_key $hash
RULES
"$WP" policy check "$TMPD/tenants.rules" >/dev/null || fail "rules file does not parse"
# Setup: can XDP load here at all? (load + unload with the CLI; the skip
# rules are lib.sh's). What the daemon gets is checked below.
out=$(in_b "$WP" policy load --json --dev "$VB" "$TMPD/tenants.rules" 2>&1) || {
	case $out in
	*EPERM*|*"Operation not permitted"*|*"needs root"*|*"not supported"*|*ENOTSUP*|*"not built"*)
		skip "XDP unavailable here: $out" ;;
	esac
	fail "policy load (setup probe): $out"
}
in_b "$WP" policy unload --dev "$VB" >/dev/null || fail "policy unload (setup probe)"

# The model service, in B on an abstract socket (B's own namespace).
svc="shm://@wpd-xdp-$$"
# Started with nsenter itself, not the in_b function, so that $! is the
# process (a backgrounded function is a subshell) and it can be stopped by PID.
MYPIDS=()
stop_mine() {
	local p
	for p in "${MYPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${MYPIDS[@]}"; do wait "$p" 2>/dev/null; done
	netns_cleanup
}
trap stop_mine EXIT
nsenter --net="/run/netns/$NS_B" "$WP" serve --listen "$svc" --token-text "red green blue" \
	--port-file "$TMPD/svc.port" >"$TMPD/svc.log" 2>&1 &
MYPIDS+=($!)
for _ in $(seq 100); do [ -s "$TMPD/svc.port" ] && break; sleep 0.05; done
[ -s "$TMPD/svc.port" ] || fail "wirepath serve did not start: $(cat "$TMPD/svc.log")"

cat >"$TMPD/wpd.yaml" <<CONF
listen:
  - tcp: 10.99.0.1:$PORT
  - tcp: 10.99.0.1:$PORT2
policy: $TMPD/tenants.rules
backends:
  - {name: local, native: "$svc"}
models:
  - {name: wp-stub, backend: local}
drain: 2s
CONF

log="$TMPD/wpd.log"
dfail() { echo "--- wirepathd log"; cat "$log"; fail "$*"; }

# nsenter --net keeps the host's mount namespace, so /sys/fs/bpf (and the
# pins that `wirepath policy stats` reads) are shared with this script.
nsenter --net="/run/netns/$NS_B" "$WPD" --config "$TMPD/wpd.yaml" --xdp "$VB" >"$log" 2>&1 &
WPD_PID=$!
MYPIDS+=($WPD_PID)
for _ in $(seq 200); do
	[ "$(grep -c 'ready: http://' "$log")" -ge 2 ] && break
	kill -0 $WPD_PID 2>/dev/null || dfail "wirepathd exited at start"
	sleep 0.05
done
[ "$(grep -c 'ready: http://' "$log")" -ge 2 ] || dfail "wirepathd not ready"
mode=$(grep -m1 "info: XDP: .* on $VB " "$log" | sed 's/.*info: //')
[ -n "$mode" ] || dfail "the log does not say which XDP mode the daemon got"
note "wirepathd: $mode"
if grep -q "XDP on $VB runs in generic mode" "$log"; then
	note "generic, why: $(grep -m1 -o 'generic mode ([^)]*)' "$log")"
else
	case $mode in *native*) ;; *) dfail "mode line names neither native nor generic: $mode" ;; esac
fi
in_b ip link show "$VB" | grep -q ' xdp' || dfail "no XDP program on $VB while wirepathd runs"

stat_json() { in_b "$WP" policy stats --json --dev "$VB" >"$TMPD/$1.json" || fail "policy stats"; }
counter() { # FILE no_tenant | FILE tenant REASON
	python3 - "$@" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["policy"]
if sys.argv[2] == "no_tenant":
    print(p["reasons"]["no_tenant"]["pkts"])
else:
    t = {x["name"]: x["reasons"] for x in p["tenants"]}
    print(t[sys.argv[2]][sys.argv[3]]["pkts"])
PY
}

# The tenant's address, through XDP: models and a stream.
url="http://10.99.0.1:$PORT"
code=$(in_a curl -s --interface 10.99.1.2 --max-time 10 -o "$TMPD/models.json" -w '%{http_code}' \
	-H "Authorization: Bearer $KEY" "$url/v1/models")
[ "$code" = 200 ] || dfail "tenant's address: /v1/models gave $code, want 200"
grep -q '"id":"wp-stub"' "$TMPD/models.json" || dfail "models: $(cat "$TMPD/models.json")"
in_a curl -sN --interface 10.99.1.2 --max-time 10 -o "$TMPD/sse" -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json' "$url/v1/chat/completions" \
	-d '{"model":"wp-stub","stream":true,"max_tokens":4,"messages":[{"role":"user","content":"hi"}]}' ||
	dfail "tenant's stream failed"
python3 "$here/daemon/check_sse.py" "$TMPD/sse" chat 0 4 "red green blue red" ||
	dfail "tenant's stream is not a whole SSE stream"
code=$(in_a curl -s --interface 10.99.1.2 --max-time 10 -o /dev/null -w '%{http_code}' \
	"$url/v1/models")
[ "$code" = 401 ] || dfail "no API key: $code, want 401 (XDP passes the packets, the key check is the daemon's)"
note "10.99.1.2 (acme) -> :$PORT: 200 /v1/models, a 4-token stream, 401 without the key"

# An address outside every prefix: the SYN is dropped, so the connect
# times out (curl 28), where a missing listener would be refused (7).
stat_json before
in_a curl -s --interface 10.99.3.2 --connect-timeout 2 -o /dev/null \
	-H "Authorization: Bearer $KEY" "$url/v1/models"
rc=$?
[ $rc -eq 28 ] || dfail "10.99.3.2 (no tenant): curl exit $rc, want 28 (connection timed out)"
stat_json after
a=$(counter "$TMPD/before.json" no_tenant) b=$(counter "$TMPD/after.json" no_tenant)
[ "$b" -gt "$a" ] || dfail "no_tenant counter did not move ($a -> $b)"
note "10.99.3.2 (no tenant) -> :$PORT: timed out; no_tenant drops $a -> $b (SYN + retries)"

# The second listener answers inside B (lo, no XDP), but the tenant's
# address cannot reach it over the veth: its port is not the tenant's.
code=$(in_b curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://10.99.0.1:$PORT2/healthz")
[ "$code" = 200 ] || dfail ":$PORT2 from inside B: $code, want 200 (the listener is there)"
in_a curl -s --interface 10.99.1.2 --connect-timeout 2 -o /dev/null \
	-H "Authorization: Bearer $KEY" "http://10.99.0.1:$PORT2/v1/models"
rc=$?
[ $rc -eq 28 ] || dfail "acme -> :$PORT2: curl exit $rc, want 28 (connection timed out)"
stat_json port
a=$(counter "$TMPD/after.json" acme port) b=$(counter "$TMPD/port.json" acme port)
[ "$b" -gt "$a" ] || dfail "acme's port counter did not move ($a -> $b)"
p=$(counter "$TMPD/port.json" acme pass)
[ "$p" -gt 0 ] || dfail "acme's pass counter is 0 after its requests were served"
note ":$PORT2 answers inside B; acme -> :$PORT2 over the veth timed out; port drops $a -> $b; acme pass $p"

# SIGTERM: drain, exit 0, and no XDP (or pins) left behind.
kill -TERM $WPD_PID
wait $WPD_PID
rc=$?
[ $rc -eq 0 ] || dfail "wirepathd exited $rc after SIGTERM, want 0"
in_b ip link show "$VB" | grep -q ' xdp' && dfail "XDP still on $VB after wirepathd exited"
ls -d /sys/fs/bpf/wirepath/"$VB"* 2>/dev/null && dfail "pins left under /sys/fs/bpf/wirepath"
note "SIGTERM: exit 0, $VB has no XDP program, no pins left"

# Again with `user: nobody`: the daemon drops root after the attach, and
# its keeper (root, forked before the drop) reloads the XDP rules on SIGHUP
# and detaches at exit. The reload gives acme the second port.
if getent passwd nobody >/dev/null; then
	chmod 755 "$TMPD"
	printf 'user: nobody\n' >>"$TMPD/wpd.yaml"
	chmod 644 "$TMPD/wpd.yaml" "$TMPD/tenants.rules"
	log="$TMPD/wpd-user.log"
	nsenter --net="/run/netns/$NS_B" "$WPD" --config "$TMPD/wpd.yaml" --xdp "$VB" >"$log" 2>&1 &
	WPD_PID=$!
	MYPIDS+=($WPD_PID)
	for _ in $(seq 200); do
		[ "$(grep -c 'ready: http://' "$log")" -ge 2 ] && break
		kill -0 $WPD_PID 2>/dev/null || dfail "wirepathd (user: nobody) exited at start"
		sleep 0.05
	done
	grep -q "running as nobody" "$log" || dfail "no privilege drop"
	keeper=$(sed -n 's/.*kept by pid \([0-9]*\).*/\1/p' "$log")
	[ -n "$keeper" ] || dfail "no XDP keeper with user: nobody"
	[ "$(awk '/^Uid/ {print $2}' /proc/$WPD_PID/status)" != 0 ] || dfail "the daemon still runs as root"
	in_a curl -s --interface 10.99.1.2 --connect-timeout 2 -o /dev/null "http://10.99.0.1:$PORT2/healthz"
	[ $? -eq 28 ] || dfail "acme -> :$PORT2 before the reload was not dropped"
	sed -i "s/ports tcp:$PORT\$/ports tcp:$PORT tcp:$PORT2/" "$TMPD/tenants.rules"
	kill -HUP $WPD_PID
	for _ in $(seq 100); do grep -q "reload: XDP rules on $VB from" "$log" && break; sleep 0.05; done
	grep -q "reload: XDP rules on $VB from" "$log" || dfail "SIGHUP did not reload the XDP rules"
	code=$(in_a curl -s --interface 10.99.1.2 --max-time 5 -o /dev/null -w '%{http_code}' \
		"http://10.99.0.1:$PORT2/healthz")
	[ "$code" = 200 ] || dfail "acme -> :$PORT2 after the reload: $code, want 200"
	kill -TERM $WPD_PID
	wait $WPD_PID
	rc=$?
	[ $rc -eq 0 ] || dfail "wirepathd (user: nobody) exited $rc after SIGTERM"
	kill -0 "$keeper" 2>/dev/null && dfail "the keeper (pid $keeper) outlived the daemon"
	in_b ip link show "$VB" | grep -q ' xdp' && dfail "XDP left on $VB by a daemon running as nobody"
	note "user: nobody: keeper pid $keeper; SIGHUP opened :$PORT2 in XDP; SIGTERM detached it"
else
	note "no user nobody here: the privilege-drop leg is left out"
fi
echo "PASS"
