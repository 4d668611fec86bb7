#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wirepathd's io_uring edge (listeners with `io: uring`, src/daemon/uedge.c):
# 1. openai_curl.sh's checks (streaming, non-streaming, keep-alive, errors,
#    metrics, and wirepathd_listener_info{io="uring"}) against a uring listener;
# 2. hostile.py against it (malformed requests, smuggling shapes, slowloris,
#    1000 idle connections, 300 streams aborted mid-stream, each of which must
#    cancel its model call), with a good client served throughout;
# 3. the syscalls of 200 streamed tokens (4 streams x 50) on epoll vs uring,
#    by strace -c -f and by the edge's own counters: printed, not asserted.
# Skips (77) only when setup finds io_uring missing here.
here=$(cd "$(dirname "$0")" && pwd)
WPD_OPENAI_SOURCED=1 WPD_EDGE_IO=uring
. "$here/openai_curl.sh" "$1"
"$WP" probe --json | grep -q '"name":"uring","ok":true' || skip "io_uring unavailable here (wirepath probe)"

# 1. The OpenAI checks over a uring listener (the model over shm).
run_path shm

# 2. Hostile traffic on a uring listener.
wpd_serve svc "shm://@wpd-test-$$-h" --token-interval-us 2000
ulimit -n 65536 2>/dev/null || true
wpd_start <<CONF
listen:
  - {tcp: 127.0.0.1:0, io: uring}
auth: none
backends:
  - {name: local, native: "shm://@wpd-test-$$-h"}
models:
  - {name: wp-stub, backend: local}
limits: {conns: 20000, header_bytes: 16KiB, body_bytes: 1MiB, header_timeout: 2s, body_timeout: 2s, idle_timeout: 60s}
CONF
grep -q "listening on http://127.0.0.1:0 (io: uring)" "$WPD_LOG" || wpd_fail "the listener did not get the uring edge"
for _ in $(seq 100); do [ "$(curl -s "$WPD_URL/readyz")" = ready ] && break; sleep 0.05; done
port=${WPD_URL##*:}
WPD_IDLE_CONNS=1000 python3 "$here/hostile.py" 127.0.0.1 "$port" "$WPD_PID" || wpd_fail "hostile traffic (uring edge)"
kill -0 "$WPD_PID" || wpd_fail "wirepathd died"
sleep 0.5
[ "$(wpd_metric wirepathd_active_streams)" = 0 ] || wpd_fail "streams still active after the abort storm"
aborts=$(wpd_metric "wirepathd_aborts_total")
[ "${aborts:-0}" -ge 300 ] || wpd_fail "only ${aborts:-0} aborts counted"
kill -USR1 "$SERVE_PID_svc"; sleep 0.3
cancelled=$(grep -o '"cancelled":[0-9]*' "$T/svc.log" | tail -n 1 | cut -d: -f2)
[ "${cancelled:-0}" -ge 290 ] || wpd_fail "serve saw only ${cancelled:-0} cancels for 300 aborted streams"
conns=$(wpd_metric "wirepathd_connections ")
[ "${conns:-99}" -le 2 ] || wpd_fail "$conns connections still open after the clients left"
ok "uring edge: hostile traffic; $aborts aborts, $cancelled model calls cancelled"
kill -TERM "$WPD_PID"
wait "$WPD_PID" || wpd_fail "wirepathd exit status $? after SIGTERM (hostile)"

# 3. Syscalls for 200 streamed tokens, 4 concurrent streams of 50 tokens.
stream4() {
	local i pids=()
	for i in 1 2 3 4; do
		curl -sN -m 30 -o "$T/tok$i" "$WPD_URL/v1/chat/completions" \
			-d '{"model":"wp-stub","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"x"}]}' &
		pids+=($!)
	done
	wait "${pids[@]}" # not a bare wait: the daemons are children too
	for i in 1 2 3 4; do
		python3 "$here/check_sse.py" "$T/tok$i" chat 0 50 || wpd_fail "$1: stream $i"
	done
}
for io in epoll uring; do
	wpd_start <<CONF
listen:
  - {tcp: 127.0.0.1:0, io: $io}
auth: none
backends:
  - {name: local, native: "shm://@wpd-test-$$-h"}
models:
  - {name: wp-stub, backend: local}
CONF
	for _ in $(seq 100); do [ "$(curl -s "$WPD_URL/readyz")" = ready ] && break; sleep 0.05; done
	st=""
	if command -v strace >/dev/null; then
		strace -c -f -p "$WPD_PID" -o "$T/strace.$io" 2>/dev/null &
		st=$!
		sleep 0.5
	fi
	stream4 "$io"
	if [ -n "$st" ]; then
		kill -INT "$st" 2>/dev/null
		wait "$st" 2>/dev/null
		echo "syscalls, 200 tokens, edge $io (strace -c -f):"
		awk '$NF ~ /^(sendto|write|writev|read|recvfrom|epoll_wait|epoll_pwait|epoll_pwait2|epoll_ctl|io_uring_enter|total)$/ {printf "  %-16s %s\n", $NF, $4}' "$T/strace.$io"
	else
		echo "strace not installed: no syscall count for $io"
	fi
	[ "$io" = uring ] && curl -s "$WPD_URL/metrics" | grep '^wirepathd_uring_' | sed 's/^/  /'
	kill -TERM "$WPD_PID"
	wait "$WPD_PID" || wpd_fail "wirepathd exit status $? after SIGTERM ($io)"
done
echo PASS
