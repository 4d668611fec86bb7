#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An HTTP upstream MCP server (src/daemon/mcp_http.c): server-everything in
# streamable-HTTP mode behind wirepathd as the MCP server "everything".
# The MCP TypeScript SDK client lists and calls its tools through /mcp;
# a curl session survives the upstream's restart (the daemon initializes
# again and resends the call); with the upstream down a call fails fast
# with a JSON-RPC error and /readyz says MCP is down; it comes back up.
. "$(dirname "$0")/lib.sh" "$1"
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/node/setup.sh" || exit $?
everything="$here/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
[ -f "$everything" ] || wpd_fail "setup.sh passed but $everything is missing"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
UP_PID=""
up_start() {
	PORT=$port node "$everything" streamableHttp >>"$T/everything.log" 2>&1 &
	UP_PID=$!
	PIDS+=("$UP_PID")
	for _ in $(seq 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/mcp")" != 000 ] && return 0
		kill -0 "$UP_PID" 2>/dev/null || { tail "$T/everything.log"; wpd_fail "server-everything exited"; }
		sleep 0.05
	done
	wpd_fail "server-everything did not listen on $port"
}
up_stop() {
	kill -TERM "$UP_PID"
	wait "$UP_PID" 2>/dev/null
	UP_PID=""
}
ready_wait() { # want: ready or down
	for _ in $(seq 200); do
		code=$(curl -s -o "$T/ready" -w '%{http_code}' "$WPD_URL/readyz")
		[ "$1" = ready ] && [ "$code" = 200 ] && return 0
		[ "$1" = down ] && [ "$code" = 503 ] && return 0
		sleep 0.05
	done
	wpd_fail "/readyz never became $1 (last: $code $(cat "$T/ready"))"
}

up_start
rules=$(wpd_rules)
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
policy: $rules
backends:
  - {name: everything, http: "http://127.0.0.1:$port/mcp", timeout: 20s}
mcp:
  servers:
    - {name: everything, backend: everything, prefix: everything_}
CONF
ready_wait ready
ok "the upstream initialized (/readyz ready)"

export WP_BASE_URL=$WPD_URL WP_API_KEY=$KEY_A
(cd "$here/node" && node mcp_client.mjs --tools everything_echo,everything_get-sum) ||
	wpd_fail "mcp_client.mjs through the http upstream"
ok "the SDK client listed and called everything_echo, everything_get-sum"

# A curl session: initialize, notifications/initialized, tools/call.
H=(-H "Authorization: Bearer $KEY_A" -H "Content-Type: application/json"
	-H "Accept: application/json, text/event-stream")
curl -s -D "$T/ih" -o "$T/ib" "${H[@]}" "$WPD_URL/mcp" \
	-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
sid=$(tr -d '\r' <"$T/ih" | awk 'tolower($1) == "mcp-session-id:" {print $2}')
[ -n "$sid" ] || wpd_fail "no Mcp-Session-Id from initialize: $(cat "$T/ih" "$T/ib")"
H+=(-H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25")
code=$(curl -s -o /dev/null -w '%{http_code}' "${H[@]}" "$WPD_URL/mcp" \
	-d '{"jsonrpc":"2.0","method":"notifications/initialized"}')
[ "$code" = 202 ] || wpd_fail "notifications/initialized: HTTP $code"
call() { # id text -> the answer in $T/call$1
	curl -s -m 30 -o "$T/call$1" -w '%{http_code}' "${H[@]}" "$WPD_URL/mcp" \
		-d '{"jsonrpc":"2.0","id":'"$1"',"method":"tools/call","params":{"name":"everything_echo","arguments":{"message":"'"$2"'"}}}'
}
echo_ok() { # id text
	python3 - "$T/call$1" "$1" "$2" <<'PY' || wpd_fail "call $2: $(cat "$T/call$1")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["id"] == int(sys.argv[2]), r
text = r["result"]["content"][0]["text"]
assert sys.argv[3] in text, text
PY
}
code=$(call 2 before-restart)
[ "$code" = 200 ] || wpd_fail "call before the restart: HTTP $code $(cat "$T/call2")"
echo_ok 2 before-restart
ok "curl session: echo before the upstream restart"

# Progress: the upstream's SSE progress events reach the client with its
# own token, then the answer.
curl -sN -m 30 -D "$T/ph" -o "$T/prog" "${H[@]}" "$WPD_URL/mcp" \
	-d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"everything_trigger-long-running-operation","arguments":{"duration":1,"steps":2},"_meta":{"progressToken":"tok-7"}}}'
grep -qi '^content-type: text/event-stream' "$T/ph" || wpd_fail "progress: not SSE: $(cat "$T/ph" "$T/prog")"
python3 - "$T/prog" <<'PY' || wpd_fail "progress stream: $(cat "$T/prog")"
import json, sys
msgs = [json.loads(l[5:]) for l in open(sys.argv[1]) if l.startswith("data:")]
prog = [m for m in msgs if m.get("method") == "notifications/progress"]
assert len(prog) == 2 and all(m["params"]["progressToken"] == "tok-7" for m in prog), msgs
assert msgs[-1]["id"] == 7 and "result" in msgs[-1], msgs[-1]
PY
ok "progress: 2 upstream progress events forwarded with the client's token, then the result"

# Abort: the client leaves mid-call; the upstream is POSTed
# notifications/cancelled for it (server-everything logs each POST).
posts() { grep -c "Received MCP POST request" "$T/everything.log"; }
aborts0=$(wpd_metric wirepathd_mcp_aborts_total)
p0=$(posts)
curl -s -m 1 -o /dev/null "${H[@]}" "$WPD_URL/mcp" \
	-d '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"everything_trigger-long-running-operation","arguments":{"duration":5,"steps":5}}}'
# Two POSTs: the call, then notifications/cancelled.
for _ in $(seq 40); do [ "$(posts)" -ge $((p0 + 2)) ] && break; sleep 0.05; done
[ "$(posts)" -ge $((p0 + 2)) ] || wpd_fail "no POST (notifications/cancelled) reached the upstream after the abort ($p0 -> $(posts))"
[ "$(wpd_metric wirepathd_mcp_aborts_total)" -gt "${aborts0:-0}" ] || wpd_fail "the abort was not counted"
ok "abort: the upstream got a POST after the client left (notifications/cancelled)"

restarts0=$(wpd_metric 'wirepathd_mcp_backend_restarts_total{server="everything"}')
up_stop
up_start
code=$(call 3 after-restart)
[ "$code" = 200 ] || wpd_fail "call after the restart: HTTP $code $(cat "$T/call3")"
echo_ok 3 after-restart
restarts1=$(wpd_metric 'wirepathd_mcp_backend_restarts_total{server="everything"}')
[ "${restarts1:-0}" -gt "${restarts0:-0}" ] || wpd_fail "no re-initialize counted ($restarts0 -> $restarts1)"
ok "the same client session called echo after the upstream restarted (re-initialized: restarts $restarts0 -> $restarts1)"

# Upstream down: the call fails fast with a JSON-RPC error; /readyz down.
up_stop
t0=$(date +%s%N)
code=$(call 4 while-down)
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
python3 - "$T/call4" <<'PY' || wpd_fail "call while down (HTTP $code): $(cat "$T/call4")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["id"] == 4 and r["error"]["code"] == -32000, r
PY
[ "$ms" -lt 5000 ] || wpd_fail "the call while down took $ms ms"
ok "upstream down: the call failed with -32000 in $ms ms ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["message"])' "$T/call4"))"
ready_wait down
grep -q "mcp: a server is down" "$T/ready" || wpd_fail "/readyz: $(cat "$T/ready")"
[ "$(wpd_metric 'wirepathd_mcp_backend_up{server="everything"')" = 0 ] || wpd_fail "backend_up is not 0"
code=$(call 5 still-down)
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["error"]["code"] == -32000, r' "$T/call5" ||
	wpd_fail "a call while down (backoff): $(cat "$T/call5")"
ok "/readyz 503 ($(tr '\n' ' ' <"$T/ready")), wirepathd_mcp_backend_up 0, calls fail at once"

# Back: initialize is retried with backoff; the session works again.
up_start
ready_wait ready
code=$(call 6 back-again)
[ "$code" = 200 ] || wpd_fail "call after the upstream came back: HTTP $code $(cat "$T/call6")"
echo_ok 6 back-again
ok "the upstream came back: ready, and the same session calls echo"
kill -0 "$WPD_PID" || wpd_fail "wirepathd died"
up_stop

# A hostile upstream (tests/daemon/mcp_http_peer.py): spec-style 404 for a
# lost session, SSE with garbage, an event over 4 MiB, HTTP 500.
python3 "$here/mcp_http_peer.py" "$T/peer.port" >"$T/peer.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do [ -s "$T/peer.port" ] && break; sleep 0.05; done
[ -s "$T/peer.port" ] || wpd_fail "mcp_http_peer.py did not start: $(cat "$T/peer.log")"
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
policy: $rules
backends:
  - {name: peer, http: "http://127.0.0.1:$(cat "$T/peer.port")/mcp", timeout: 10s}
mcp:
  servers:
    - {name: peer, backend: peer}
CONF
ready_wait ready
H=(-H "Authorization: Bearer $KEY_A" -H "Content-Type: application/json"
	-H "Accept: application/json, text/event-stream")
curl -s -D "$T/ih" -o "$T/ib" "${H[@]}" "$WPD_URL/mcp" \
	-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
sid=$(tr -d '\r' <"$T/ih" | awk 'tolower($1) == "mcp-session-id:" {print $2}')
[ -n "$sid" ] || wpd_fail "no Mcp-Session-Id from initialize: $(cat "$T/ih" "$T/ib")"
H+=(-H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25")
pcall() { # id tool [meta] -> $T/p$1
	curl -s -m 20 -o "$T/p$1" "${H[@]}" "$WPD_URL/mcp" \
		-d '{"jsonrpc":"2.0","id":'"$1"',"method":"tools/call","params":{"name":"peer_'"$2"'","arguments":{"n":'"$1"'}'"${3:-}"'}}'
}
check() { # id python-expression on r (the last JSON-RPC message)
	python3 - "$T/p$1" "$2" <<'PY' || wpd_fail "call $1: $(head -c 400 "$T/p$1")"
import json, sys
t = open(sys.argv[1]).read()
msgs = [json.loads(l[5:]) for l in t.splitlines() if l.startswith("data:")] if t.startswith(("data:", "event:")) else [json.loads(t)]
r = msgs[-1]
assert eval(sys.argv[2]), msgs
PY
}
g0=$(wpd_metric 'wirepathd_mcp_backend_garbage_total{server="peer"}')
pcall 10 sse ',"_meta":{"progressToken":5}'
check 10 '"sse" in r["result"]["content"][0]["text"] and any(m.get("method") == "notifications/progress" and m["params"]["progressToken"] == 5 for m in msgs)'
g1=$(wpd_metric 'wirepathd_mcp_backend_garbage_total{server="peer"}')
[ "$g1" -gt "${g0:-0}" ] || wpd_fail "the garbage SSE event was not counted ($g0 -> $g1)"
ok "SSE with a garbage event: progress forwarded, answer matched, garbage counted ($g0 -> $g1)"
pcall 15 tail
check 15 '"tail" in r["result"]["content"][0]["text"]'
ok "an SSE answer cut before its blank line (and newline) is still read"
pcall 11 big
check 11 'r["error"]["code"] == -32000 and "4 MiB" in r["error"]["message"]'
pcall 12 fail500
check 12 'r["error"]["code"] == -32000 and "HTTP 500" in r["error"]["message"]'
ok "an event over 4 MiB and an HTTP 500 fail the call with -32000: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["message"])' "$T/p12")"
pcall 13 forget
check 13 '"init 1" in r["result"]["content"][0]["text"]'
pcall 14 echo
check 14 '"init 2" in r["result"]["content"][0]["text"]'
ok "a spec-style 404 (session lost) re-initializes and resends: the call answered from the new session"
kill -0 "$WPD_PID" || wpd_fail "wirepathd died"
echo PASS
