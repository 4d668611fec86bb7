#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An http backend: wirepathd A proxies to an OpenAI-compatible upstream
# (wirepathd B in front of `wirepath serve`, a real OpenAI-compatible
# server). Checks streaming passthrough (events arrive while the upstream
# is still generating: never buffered), non-streaming bodies, the pool's
# reuse of keep-alive connections, that a client leaving mid-stream makes A
# close its upstream connection and the model stop (serve counts the
# cancel), and a clean 503 when the upstream is down.
. "$(dirname "$0")/lib.sh" "$1"
here=$(cd "$(dirname "$0")" && pwd)

wpd_serve svc "shm://@wpd-test-$$-up" --token-text "one two three" --token-interval-us 20000
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
auth: none
backends:
  - {name: local, native: "shm://@wpd-test-$$-up"}
models:
  - {name: wp-stub, backend: local}
CONF
UP_URL=$WPD_URL UP_PID=$WPD_PID UP_LOG=$WPD_LOG
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
auth: none
backends:
  - {name: up, http: "$UP_URL", pool: 8, timeout: 30s}
models:
  - {name: wp-stub, backend: up}
CONF
for _ in $(seq 100); do
	[ "$(curl -s "$UP_URL/readyz")" = ready ] && break
	sleep 0.05
done

# Streaming through A: 10 tokens 20 ms apart arrive spread over ~200 ms,
# not all at the end (passthrough).
python3 - "$WPD_URL" <<'PY' || wpd_fail "passthrough timing"
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
body = json.dumps({"model": "wp-stub", "stream": True, "max_tokens": 10,
                   "messages": [{"role": "user", "content": "go"}]})
t0 = time.monotonic()
c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
r = c.getresponse()
assert r.status == 200, r.status
times = []
buf = b""
while True:
    line = r.fp.readline()
    if not line:
        break
    if line.startswith(b"data: ") and b"content" in line and b'"content":""' not in line:
        times.append(time.monotonic() - t0)
    if line.startswith(b"data: [DONE]"):
        break
assert len(times) == 10, times
spread = times[-1] - times[0]
assert spread > 0.1, "tokens arrived together (%.3f s apart): buffered" % spread
print("passthrough ok: 10 tokens over %.0f ms" % (spread * 1000))
PY
curl -sN "$WPD_URL/v1/chat/completions" -o "$T/s" \
	-d '{"model":"wp-stub","stream":true,"stream_options":{"include_usage":true},"max_tokens":3,"messages":[{"role":"user","content":"x"}]}'
python3 "$here/check_sse.py" "$T/s" chat 1 3 "one two three" || wpd_fail "proxied stream format"
curl -s "$WPD_URL/v1/chat/completions" -d '{"model":"wp-stub","max_tokens":2,"messages":[{"role":"user","content":"x"}]}' |
	python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["choices"][0]["message"]["content"]=="one two", r' ||
	wpd_fail "proxied non-streaming"
for _ in $(seq 5); do
	curl -s -o /dev/null "$WPD_URL/v1/chat/completions" -d '{"model":"wp-stub","max_tokens":1,"messages":[{"role":"user","content":"x"}]}'
done
reused=$(wpd_metric 'wirepathd_upstream_reused_total{backend="up"}')
[ "${reused:-0}" -ge 4 ] || wpd_fail "pool: only ${reused:-0} reused upstream connections"
ok "pool reused $reused connections"

# Abort mid-stream: 200 tokens at 20 ms would take 4 s; leave after ~0.2 s.
kill -USR1 "$SERVE_PID_svc"; sleep 0.2
before=$(grep -o '"cancelled":[0-9]*' "$T/svc.log" | tail -n 1 | cut -d: -f2)
timeout 0.3 curl -sN "$WPD_URL/v1/chat/completions" -o /dev/null \
	-d '{"model":"wp-stub","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"x"}]}'
sleep 0.5
kill -USR1 "$SERVE_PID_svc"; sleep 0.2
after=$(grep -o '"cancelled":[0-9]*' "$T/svc.log" | tail -n 1 | cut -d: -f2)
[ "${after:-0}" -gt "${before:-0}" ] || wpd_fail "abort did not cancel the model (cancelled ${before:-?} -> ${after:-?}); serve log: $(tail -n 3 "$T/svc.log")"
ok "abort through two hops cancelled the model (serve cancelled: ${before:-0} -> $after)"

# Upstream down: 503/502 with an OpenAI error body, and A keeps serving.
kill -TERM "$UP_PID"; wait "$UP_PID" 2>/dev/null
code=$(curl -s -o "$T/err" -w '%{http_code}' "$WPD_URL/v1/chat/completions" -d '{"model":"wp-stub","messages":[{"role":"user","content":"x"}]}')
case $code in 502|503) ;; *) wpd_fail "upstream down -> $code $(cat "$T/err")" ;; esac
grep -q '"error"' "$T/err" || wpd_fail "upstream down: no error body"
[ "$(curl -s "$WPD_URL/healthz")" = ok ] || wpd_fail "A died with its upstream"
ok "upstream down -> $code"
echo PASS
