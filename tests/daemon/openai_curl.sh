#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wirepathd's OpenAI-compatible routes with curl, in front of `wirepath
# serve` over shm and over uring: streaming (byte format checked by
# check_sse.py), non-streaming, completions, embeddings, models, keep-alive,
# and the errors (400, 401, 404, 405, 429 with Retry-After) with OpenAI
# bodies; /healthz, /readyz, /metrics.
#
# Sourced by uring_edge.sh with WPD_EDGE_IO=uring (and WPD_PATHS=shm): the
# same checks against a listener with `io: uring`.
. "$(dirname "$0")/lib.sh" "$1"
EDGE_IO=${WPD_EDGE_IO:-epoll}
here=$(cd "$(dirname "$0")" && pwd)
WPD_BETA_RATE=2 WPD_BETA_BURST=2
rules=$(wpd_rules)

run_path() {
	local path=$1 uri
	case $path in
	shm) uri="shm://@wpd-test-$$-shm"; wpd_serve svc_shm "$uri" --token-text "alpha beta gamma" ;;
	uring)
		if ! "$WP" probe --json | grep -q '"name":"uring","ok":true'; then
			echo "uring path unavailable here: skipping its half"; return 0
		fi
		wpd_serve svc_uring "uring://127.0.0.1:0" --token-text "alpha beta gamma"
		uri="uring://127.0.0.1:$(cat "$T/svc_uring.port")" ;;
	esac
	wpd_start <<CONF
listen:
  - {tcp: 127.0.0.1:0, io: $EDGE_IO}
policy: $rules
backends:
  - {name: local, native: "$uri"}
models:
  - {name: wp-stub, backend: local}
  - {name: wp-big, backend: local}
CONF
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$WPD_URL/readyz")" = 200 ] && break
		sleep 0.05
	done
	[ "$(curl -s "$WPD_URL/readyz")" = ready ] || wpd_fail "$path: /readyz not ready"
	local A=(-H "Authorization: Bearer $KEY_A" -H "Content-Type: application/json")

	# Streaming chat with usage: 5 tokens ("alpha beta gamma alpha beta").
	curl -sN "${A[@]}" "$WPD_URL/v1/chat/completions" -o "$T/s1" -D "$T/h1" \
		-d '{"model":"wp-stub","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"messages":[{"role":"user","content":"hi there"}]}' ||
		wpd_fail "$path: stream request"
	grep -qi '^content-type: text/event-stream' "$T/h1" || wpd_fail "$path: stream content-type"
	grep -qi '^transfer-encoding: chunked' "$T/h1" || wpd_fail "$path: stream not chunked"
	python3 "$here/check_sse.py" "$T/s1" chat 1 5 "alpha beta gamma alpha beta" || wpd_fail "$path: stream format"
	# Without usage.
	curl -sN "${A[@]}" "$WPD_URL/v1/chat/completions" -o "$T/s2" \
		-d '{"model":"wp-stub","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"x"}]}'
	python3 "$here/check_sse.py" "$T/s2" chat 0 3 || wpd_fail "$path: stream without usage"
	# Completions, streaming.
	curl -sN "${A[@]}" "$WPD_URL/v1/completions" -o "$T/s3" \
		-d '{"model":"wp-stub","stream":true,"stream_options":{"include_usage":true},"max_tokens":4,"prompt":"once upon"}'
	python3 "$here/check_sse.py" "$T/s3" completion 1 4 || wpd_fail "$path: completion stream"
	# Non-streaming chat.
	curl -s "${A[@]}" "$WPD_URL/v1/chat/completions" -o "$T/c1" \
		-d '{"model":"wp-stub","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}'
	python3 - "$T/c1" <<'PY' || wpd_fail "$path: non-streaming chat"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["object"] == "chat.completion", r
assert r["id"].startswith("chatcmpl-"), r
m = r["choices"][0]
assert m["message"]["role"] == "assistant" and m["message"]["content"] == "alpha beta gamma", m
assert m["finish_reason"] == "length", m
u = r["usage"]
assert u["completion_tokens"] == 3 and u["total_tokens"] == u["prompt_tokens"] + 3, u
print("chat ok:", m["message"]["content"])
PY
	# Embeddings.
	curl -s "${A[@]}" "$WPD_URL/v1/embeddings" -o "$T/e1" -d '{"model":"wp-stub","input":["a","b c"]}'
	python3 - "$T/e1" <<'PY' || wpd_fail "$path: embeddings"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["object"] == "list" and len(r["data"]) == 2, r
for i, d in enumerate(r["data"]):
    assert d["object"] == "embedding" and d["index"] == i and len(d["embedding"]) == 16, d
    assert abs(sum(x * x for x in d["embedding"]) - 1) < 1e-3
print("embeddings ok")
PY
	# Models: alpha sees both, beta only wp-stub.
	curl -s "${A[@]}" "$WPD_URL/v1/models" | python3 -c 'import json,sys; r=json.load(sys.stdin); ids=sorted(m["id"] for m in r["data"]); assert ids==["wp-big","wp-stub"], ids' ||
		wpd_fail "$path: models for alpha"
	curl -s -H "Authorization: Bearer $KEY_B" "$WPD_URL/v1/models" | python3 -c 'import json,sys; r=json.load(sys.stdin); ids=[m["id"] for m in r["data"]]; assert ids==["wp-stub"], ids' ||
		wpd_fail "$path: models for beta"
	# Keep-alive: three requests, one connection.
	local conns0 conns1
	conns0=$(wpd_metric "wirepathd_connections_total")
	curl -s "${A[@]}" "$WPD_URL/v1/models" "$WPD_URL/v1/models" "$WPD_URL/v1/models" -o /dev/null -o /dev/null -o /dev/null
	conns1=$(wpd_metric "wirepathd_connections_total")
	# +1 for the three, +1 for the metrics call itself.
	[ $((conns1 - conns0)) -eq 2 ] || wpd_fail "$path: keep-alive: $((conns1 - conns0)) new connections, want 2"
	# Errors, OpenAI-style.
	local code
	code=$(curl -s -o "$T/err" -w '%{http_code}' "$WPD_URL/v1/models")
	[ "$code" = 401 ] && grep -q '"code":"invalid_api_key"' "$T/err" || wpd_fail "$path: no key -> $code $(cat "$T/err")"
	code=$(curl -s -o "$T/err" -w '%{http_code}' -H "Authorization: Bearer nope" "$WPD_URL/v1/models")
	[ "$code" = 401 ] || wpd_fail "$path: bad key -> $code"
	code=$(curl -s -o "$T/err" -w '%{http_code}' "${A[@]}" "$WPD_URL/v1/chat/completions" -d '{"model":"nope","messages":[{"role":"user","content":"x"}]}')
	[ "$code" = 404 ] && grep -q '"code":"model_not_found"' "$T/err" || wpd_fail "$path: unknown model -> $code $(cat "$T/err")"
	code=$(curl -s -o "$T/err" -w '%{http_code}' -H "Authorization: Bearer $KEY_B" "$WPD_URL/v1/chat/completions" -d '{"model":"wp-big","messages":[{"role":"user","content":"x"}]}')
	[ "$code" = 404 ] || wpd_fail "$path: model not allowed for beta -> $code"
	code=$(curl -s -o "$T/err" -w '%{http_code}' "${A[@]}" "$WPD_URL/v1/chat/completions" -d '{"model":"wp-stub"}')
	[ "$code" = 400 ] && python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["type"]=="invalid_request_error" and e["message"], e' "$T/err" ||
		wpd_fail "$path: no messages -> $code $(cat "$T/err")"
	code=$(curl -s -o "$T/err" -w '%{http_code}' "${A[@]}" "$WPD_URL/v1/chat/completions" -d '{bad json')
	[ "$code" = 400 ] || wpd_fail "$path: bad json -> $code"
	code=$(curl -s -o "$T/err" -w '%{http_code}' "${A[@]}" -X GET "$WPD_URL/v1/chat/completions")
	[ "$code" = 405 ] || wpd_fail "$path: GET chat -> $code"
	code=$(curl -s -o "$T/err" -w '%{http_code}' "${A[@]}" "$WPD_URL/v1/nothing")
	[ "$code" = 404 ] || wpd_fail "$path: unknown route -> $code"
	# beta: 2 requests per second, burst 2: the third in a row gets 429.
	local got429=0
	for _ in 1 2 3 4; do
		code=$(curl -s -o "$T/err" -D "$T/h429" -w '%{http_code}' -H "Authorization: Bearer $KEY_B" "$WPD_URL/v1/models")
		if [ "$code" = 429 ]; then
			got429=1
			grep -qi '^retry-after: [1-9]' "$T/h429" || wpd_fail "$path: 429 without Retry-After"
			grep -q '"code":"rate_limit_exceeded"' "$T/err" || wpd_fail "$path: 429 body $(cat "$T/err")"
		fi
	done
	[ $got429 = 1 ] || wpd_fail "$path: beta's rate limit never refused"
	# Operations.
	[ "$(curl -s "$WPD_URL/healthz")" = ok ] || wpd_fail "$path: healthz"
	curl -s "$WPD_URL/metrics" >"$T/metrics"
	grep -q '^wirepathd_requests_total{route="chat",tenant="alpha",backend="local",code="200"} [1-9]' "$T/metrics" ||
		wpd_fail "$path: metrics lack chat requests: $(grep requests_total "$T/metrics" | head)"
	grep -q '^wirepathd_sse_tokens_total{route="chat",tenant="alpha",backend="local"} 1[0-9]' "$T/metrics" ||
		wpd_fail "$path: metrics lack tokens"
	grep -q '^process_cpu_seconds_total{mode="user"}' "$T/metrics" || wpd_fail "$path: metrics lack CPU"
	grep -q '^wirepathd_backend_up{backend="local",kind="native"} 1' "$T/metrics" || wpd_fail "$path: backend_up"
	grep -q "^wirepathd_listener_info{listener=\"http://127.0.0.1:0\",io=\"$EDGE_IO\"} 1" "$T/metrics" ||
		wpd_fail "$path: listener_info: $(grep listener_info "$T/metrics")"
	ok "$path: OpenAI routes (edge: $EDGE_IO) over $(grep -o 'connected to [^ ]* ([a-z]*' "$WPD_LOG" | head -n 1)"
	kill -TERM "$WPD_PID"
	wait "$WPD_PID" || wpd_fail "$path: wirepathd exit status $? after SIGTERM"
}

[ -n "${WPD_OPENAI_SOURCED:-}" ] && return 0
run_path shm
run_path uring
echo "PASS"
