#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wirepathd --placement dpu (docs/daemon.md, "DPU placement"): started in
# the host's namespace, the daemon joins namespace B (which holds the
# client-facing veth), pins itself to one CPU and attaches its XDP program
# there, while `wirepath serve` stays in the host namespace on a filesystem
# shm socket. Checked: every thread of the daemon is in B and allowed only
# that CPU (/proc/PID/task/*/status), the service is not in B; a client in
# A streams a chat completion through it (SSE checked to data: [DONE]);
# SIGTERM leaves no XDP behind. An abstract shm socket gets the warning, and
# really does not cross (the host's service on that name is never reached).
# Error paths: dpu without --netns or --cpus, --netns without dpu, a missing
# namespace, a bad CPU list: exit 2 or 1 with one clear line.
# Usage: tests/netns/daemon_dpu.sh BUILD   (exit 0/1/77)
. "$(dirname "$0")/lib.sh"
netns_setup "${1:-build}"
WPD=$(cd "$BUILD" && pwd)/wirepathd
here=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$WPD" ] || skip "$BUILD has no wirepathd"
command -v curl >/dev/null || skip "no curl"

PORT=8080
KEY="wpk-dpu-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
hash=$(printf %s "$KEY" | "$WP" policy hash-key) || fail "policy hash-key"
cat >"$TMPD/tenants.rules" <<RULES
default drop
tenant acme id 1 key $keyhex_a
  allow 10.99.1.0/24
  ports tcp:$PORT
  api_key $hash
RULES
# Setup: can XDP load here at all (the skip rules of lib.sh)?
out=$(in_b "$WP" policy load --json --dev "$VB" "$TMPD/tenants.rules" 2>&1) || {
	case $out in
	*EPERM*|*"Operation not permitted"*|*"needs root"*|*"not supported"*|*ENOTSUP*|*"not built"*)
		skip "XDP unavailable here: $out" ;;
	esac
	fail "policy load (setup probe): $out"
}
in_b "$WP" policy unload --dev "$VB" >/dev/null || fail "policy unload (setup probe)"
# The DPU's core: the last CPU this test may use.
CPU=$(python3 -c 'import os; print(max(os.sched_getaffinity(0)))')

MYPIDS=()
stop_mine() {
	local p
	for p in "${MYPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${MYPIDS[@]}"; do wait "$p" 2>/dev/null; done
	netns_cleanup
}
trap stop_mine EXIT

# serve_host NAME URI: a model service in the host (this) namespace.
serve_host() {
	"$WP" serve --listen "$2" --token-text "one two three" --port-file "$TMPD/$1.port" \
		>"$TMPD/$1.log" 2>&1 &
	MYPIDS+=($!)
	eval "SVC_$1=$!"
	for _ in $(seq 100); do [ -s "$TMPD/$1.port" ] && return 0; sleep 0.05; done
	fail "wirepath serve $1 did not start: $(cat "$TMPD/$1.log")"
}
serve_host fs "shm://$TMPD/svc.sock"

conf() { # PORT BACKEND_URI
	cat <<CONF
listen:
  - tcp: 10.99.0.1:$1
policy: $TMPD/tenants.rules
backends:
  - {name: host, native: "$2"}
models:
  - {name: wp-stub, backend: host}
drain: 2s
CONF
}
conf $PORT "shm://$TMPD/svc.sock" >"$TMPD/dpu.yaml"

log="$TMPD/wpd.log"
dfail() { echo "--- wirepathd log"; cat "$log"; fail "$*"; }
wait_ready() { # LOG PID
	for _ in $(seq 200); do
		grep -q 'ready: http://' "$1" && return 0
		kill -0 "$2" 2>/dev/null || dfail "wirepathd exited at start"
		sleep 0.05
	done
	dfail "wirepathd not ready"
}

# The daemon is started here, in the host namespace: it moves itself.
"$WPD" --config "$TMPD/dpu.yaml" --placement dpu --netns "$NS_B" --cpus "$CPU" --xdp "$VB" \
	>"$log" 2>&1 &
WPD_PID=$!
MYPIDS+=($WPD_PID)
wait_ready "$log" $WPD_PID
grep -q "placement dpu: in network namespace $NS_B" "$log" || dfail "no placement line"
note "wirepathd: $(grep -m1 -o 'placement dpu: in.*' "$log"); $(grep -m1 -o 'placement dpu: pinned.*' "$log")"
note "wirepathd: $(grep -m1 'info: XDP:' "$log" | sed 's/.*info: //')"

ns_b=$(stat -L -c %i "/run/netns/$NS_B")
ns_host=$(stat -L -c %i /proc/self/ns/net)
for task in /proc/$WPD_PID/task/*; do
	[ "$(stat -L -c %i "$task/ns/net")" = "$ns_b" ] || dfail "thread ${task##*/} is not in $NS_B"
	c=$(awk '/^Cpus_allowed_list/ {print $2}' "$task/status")
	[ "$c" = "$CPU" ] || dfail "thread ${task##*/}: Cpus_allowed_list $c, want $CPU"
done
[ "$(stat -L -c %i "/proc/$SVC_fs/ns/net")" = "$ns_host" ] || fail "the service left the host namespace"
in_b ip link show "$VB" | grep -q ' xdp' || dfail "no XDP program on $VB in $NS_B"
note "$(ls /proc/$WPD_PID/task | wc -l) thread(s) of wirepathd in $NS_B, Cpus_allowed_list $CPU; serve in the host namespace"

# A client in A streams a chat completion: A -> veth -> XDP -> the daemon in
# B -> shm (filesystem socket, across namespaces) -> serve in the host.
url="http://10.99.0.1:$PORT"
in_a curl -sN --interface 10.99.1.2 --max-time 10 -o "$TMPD/sse" -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json' "$url/v1/chat/completions" \
	-d '{"model":"wp-stub","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"messages":[{"role":"user","content":"hello dpu"}]}' ||
	dfail "the client's stream failed"
python3 "$here/daemon/check_sse.py" "$TMPD/sse" chat 1 5 "one two three one two" ||
	dfail "the stream is not whole"
tail -c 14 "$TMPD/sse" | grep -q '^data: \[DONE\]$' || dfail "the stream does not end with data: [DONE]"
in_a curl -s --interface 10.99.3.2 --connect-timeout 2 -o /dev/null "$url/healthz"
rc=$?
[ $rc -eq 28 ] || dfail "an address outside every prefix: curl exit $rc, want 28 (dropped in XDP)"
note "A (10.99.1.2) streamed 5 tokens through the DPU namespace, ending data: [DONE]; 10.99.3.2 dropped"

kill -TERM $WPD_PID
wait $WPD_PID
rc=$?
[ $rc -eq 0 ] || dfail "wirepathd exited $rc after SIGTERM, want 0"
in_b ip link show "$VB" | grep -q ' xdp' && dfail "XDP still on $VB after wirepathd exited"
note "SIGTERM: exit 0, no XDP left on $VB"

# An abstract socket belongs to a network namespace: warned, and the host's
# service on that very name is not reached from B.
abs="shm://@wpd-dpu-$$"
serve_host abs "$abs"
conf $((PORT + 1)) "$abs" >"$TMPD/abs.yaml"
log="$TMPD/wpd-abs.log"
"$WPD" --config "$TMPD/abs.yaml" --placement dpu --netns "$NS_B" --cpus "$CPU" >"$log" 2>&1 &
pid=$!
MYPIDS+=($pid)
wait_ready "$log" $pid
grep -q "is an abstract socket" "$log" || dfail "no warning for the abstract socket $abs"
note "warned: $(grep -m1 -o 'backend host: .*' "$log" | cut -c1-140)..."
sleep 1
code=$(in_b curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://10.99.0.1:$((PORT + 1))/readyz")
[ "$code" = 503 ] || dfail "/readyz with an abstract backend from the DPU namespace: $code, want 503"
kill -TERM $pid
wait $pid
note "the abstract backend is unreachable from $NS_B (/readyz 503), as warned"

# Error paths: one clear line, exit 2 (usage) or 1 (the namespace or CPUs).
log="$TMPD/err.log"
expect() { # RC PATTERN ARGS...
	local want=$1 pat=$2 rc
	shift 2
	timeout 10 "$WPD" --config "$TMPD/dpu.yaml" "$@" >"$log" 2>&1
	rc=$?
	[ $rc -eq "$want" ] || { cat "$log"; fail "wirepathd $*: exit $rc, want $want"; }
	grep -q -- "$pat" "$log" || { cat "$log"; fail "wirepathd $*: no line matching '$pat'"; }
	note "wirepathd $*: exit $rc: $(grep -m1 -- "$pat" "$log" | sed 's/^.*wirepathd: //')"
}
expect 2 "needs --netns" --placement dpu --cpus "$CPU"
expect 2 "needs --cpus" --placement dpu --netns "$NS_B"
expect 2 "only with --placement dpu" --netns "$NS_B"
expect 1 "/run/netns/wpd-no-such-ns" --placement dpu --netns wpd-no-such-ns --cpus "$CPU"
expect 2 "not a namespace name" --placement dpu --netns ../etc --cpus "$CPU"
expect 1 "use a list like" --placement dpu --netns "$NS_B" --cpus 1-x
expect 1 "none of these CPUs" --placement dpu --netns "$NS_B" --cpus 1000
echo "PASS"
