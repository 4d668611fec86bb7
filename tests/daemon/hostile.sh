#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wirepathd under hostile traffic (hostile.py): malformed requests,
# smuggling shapes, huge heads and bodies, slowloris, 10k idle connections
# and an abort storm, each while a good client keeps calling. wirepathd must
# answer each correctly, never stop serving the good client, keep its memory
# bounded, and cancel every aborted stream's model call.
. "$(dirname "$0")/lib.sh" "$1"
wpd_serve svc "shm://@wpd-test-$$-h" --token-interval-us 2000
ulimit -n 65536 2>/dev/null || true
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
auth: none
backends:
  - {name: local, native: "shm://@wpd-test-$$-h"}
models:
  - {name: wp-stub, backend: local}
limits: {conns: 20000, header_bytes: 16KiB, body_bytes: 1MiB, header_timeout: 2s, body_timeout: 2s, idle_timeout: 60s}
CONF
for _ in $(seq 100); do [ "$(curl -s "$WPD_URL/readyz")" = ready ] && break; sleep 0.05; done
port=${WPD_URL##*:}
python3 "$(dirname "$0")/hostile.py" 127.0.0.1 "$port" "$WPD_PID" || wpd_fail "hostile traffic"
kill -0 "$WPD_PID" || wpd_fail "wirepathd died"
sleep 0.5
active=$(wpd_metric "wirepathd_active_streams")
[ "$active" = 0 ] || wpd_fail "$active streams still active after the abort storm"
aborts=$(wpd_metric "wirepathd_aborts_total")
[ "${aborts:-0}" -ge 300 ] || wpd_fail "only ${aborts:-0} aborts counted"
kill -USR1 "$SERVE_PID_svc"; sleep 0.3
cancelled=$(grep -o '"cancelled":[0-9]*' "$T/svc.log" | tail -n 1 | cut -d: -f2)
[ "${cancelled:-0}" -ge 290 ] || wpd_fail "serve saw only ${cancelled:-0} cancels for 300 aborted streams"
ok "abort storm: $aborts aborts, $cancelled model calls cancelled"
echo PASS
