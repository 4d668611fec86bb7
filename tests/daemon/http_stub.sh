#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wp_http_stub (bench/stacks/http_stub.c), the conventional stack's HTTP
# services for the real-stack bench: streamed and whole chat answers (chunk
# count, role, finish, usage, [DONE], chunked framing), the token pacing,
# MCP initialize / tools/list / tools/call with a service time (exact size,
# took at least the service time), the JSON-RPC errors, clients that leave
# mid-stream (counted, timers cancelled, the process stays flat), a unix
# listener, bad options, and wirepathd using the stub as an `http` model
# backend and an `http` MCP upstream; the stub's text for a prompt is the
# very text `wirepath serve` generates behind wirepathd. About 3 s.
. "$(dirname "$0")/lib.sh" "$1"
here=$(cd "$(dirname "$0")" && pwd)
STUB="$BUILD/wp_http_stub"
[ -x "$STUB" ] || skip "wp_http_stub not built"

# stub_start NAME ARGS...: start a stub, wait for its `port N` line.
stub_start() {
	local name=$1; shift
	"$STUB" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	local pid=$!
	PIDS+=("$pid")
	eval "STUB_PID_$name=$pid"
	for _ in $(seq 100); do
		if grep -q '^\(port\|unix\) ' "$T/$name.out"; then
			eval "STUB_PORT_$name=$(awk '/^port/ {print $2}' "$T/$name.out")"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { cat "$T/$name.err"; wpd_fail "stub $name died"; }
		sleep 0.05
	done
	wpd_fail "stub $name did not print its port"
}

# stub_stats PID ERRFILE: SIGUSR1, then the last JSON line of its stderr.
stub_stats() {
	local n
	n=$(grep -c '^{' "$2")
	kill -USR1 "$1"
	for _ in $(seq 100); do
		[ "$(grep -c '^{' "$2")" -gt "$n" ] && break
		sleep 0.02
	done
	grep '^{' "$2" | tail -n 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Bad options: a clear line and exit 2.
for bad in "--tokens 0" "--tokens x" "--ttft-us -1" "--listen 1.2.3.4" "--bogus" ""; do
	# shellcheck disable=SC2086
	"$STUB" $bad >"$T/bad.out" 2>&1
	rc=$?
	[ $rc -eq 2 ] || wpd_fail "wp_http_stub $bad: exit $rc, want 2"
	grep -q "wp_http_stub" "$T/bad.out" || wpd_fail "wp_http_stub $bad: no message"
done
ok "bad options: exit 2 with a message"

stub_start a --listen 127.0.0.1:0 --tokens 8 --token-interval-us 20000 --quiet
U="http://127.0.0.1:$STUB_PORT_a"
[ "$(curl -s "$U/healthz")" = ok ] || wpd_fail "healthz"

# Streaming: 10 tokens 20 ms apart take at least 180 ms; chunked, one
# content chunk per token, role first, finish "length", usage, [DONE].
req='{"model":"m1","stream":true,"max_tokens":10,"stream_options":{"include_usage":true},
      "messages":[{"role":"user","content":"plan the next step"}]}'
t0=$(now_ms)
curl -s -N -D "$T/s.head" -o "$T/s.body" "$U/v1/chat/completions" -d "$req" || wpd_fail "stream"
dt=$(($(now_ms) - t0))
[ $dt -ge 180 ] || wpd_fail "10 tokens at 20 ms took $dt ms (< 180)"
grep -qi '^transfer-encoding: chunked' "$T/s.head" || wpd_fail "stream not chunked"
grep -qi '^content-type: text/event-stream' "$T/s.head" || wpd_fail "stream not text/event-stream"
python3 "$here/check_sse.py" "$T/s.body" chat 1 10 || wpd_fail "stream bytes"
grep -q '"finish_reason":"length"' "$T/s.body" || wpd_fail "finish_reason length"
ok "stream: 10 tokens in $dt ms"

# Without max_tokens: --tokens (8) and finish "stop", as `wirepath serve`.
curl -s -N -o "$T/d.body" "$U/v1/chat/completions" \
	-d '{"model":"m1","stream":true,"messages":[{"role":"user","content":"plan the next step"}]}'
python3 "$here/check_sse.py" "$T/d.body" chat 0 8 || wpd_fail "default tokens"
grep -q '"finish_reason":"stop"' "$T/d.body" || wpd_fail "finish_reason stop"

# Not streamed: one chat.completion after ttft + (n-1) intervals.
t0=$(now_ms)
curl -s -o "$T/n.body" "$U/v1/chat/completions" \
	-d '{"model":"m1","max_completion_tokens":5,"messages":[{"role":"user","content":"plan the next step"}]}'
dt=$(($(now_ms) - t0))
[ $dt -ge 80 ] || wpd_fail "5 tokens at 20 ms answered after $dt ms (< 80)"
python3 - "$T/n.body" "$T/s.body" <<'PY' || wpd_fail "non-streamed body"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["object"] == "chat.completion", b
c = b["choices"][0]
assert c["finish_reason"] == "length" and b["usage"]["completion_tokens"] == 5, b
assert b["usage"]["prompt_tokens"] == 5, b  # "user: plan the next step"
# the same prompt: the first 5 tokens of the streamed answer
ev = [json.loads(l[6:]) for l in open(sys.argv[2]).read().split("\n\n") if l.startswith("data: {")]
text = "".join(e["choices"][0]["delta"].get("content") or "" for e in ev if e["choices"])
words = text.split(" ")
assert c["message"]["content"] == " ".join(words[:5]), (c["message"]["content"], text)
PY
ok "non-streamed: 5 tokens after $dt ms, the streamed text's first 5 words"
bad=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/chat/completions" -d '{"model":"m1"}')
[ "$bad" = 400 ] || wpd_fail "a chat request without messages: $bad, want 400"

# MCP: initialize (revision echoed or the default), notifications (202),
# tools/list, tools/call sized after its service time, errors.
python3 - "$U/mcp" <<'PY' || wpd_fail "MCP"
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
H = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
def post(body, hdr=H, raw=False):
    c.request("POST", "/mcp", body if raw else json.dumps(body), hdr)
    r = c.getresponse()
    return r, r.read()
r, b = post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
res = json.loads(b)["result"]
assert r.status == 200 and res["protocolVersion"] == "2025-06-18", b
assert res["capabilities"] == {"tools": {}} and res["serverInfo"]["name"], res
sid = r.getheader("Mcp-Session-Id")
assert sid and len(sid) >= 16, sid
r, b = post({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": "1999-01-01"}})
assert json.loads(b)["result"]["protocolVersion"] == "2025-11-25", b
H2 = dict(H, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"})
r, b = post({"jsonrpc": "2.0", "method": "notifications/initialized"}, H2)
assert r.status == 202 and b == b"", (r.status, b)
r, b = post({"jsonrpc": "2.0", "id": 3, "method": "ping"}, H2)
assert json.loads(b)["result"] == {}, b
r, b = post({"jsonrpc": "2.0", "id": "l", "method": "tools/list"})
tools = {t["name"]: t for t in json.loads(b)["result"]["tools"]}
assert set(tools) == {"sized", "echo"}, tools
props = tools["sized"]["inputSchema"]["properties"]
assert props["bytes"]["type"] == "integer" and props["service_us"]["type"] == "integer", props
t0 = time.monotonic()
r, b = post({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
             "params": {"name": "sized", "arguments": {"bytes": 100000, "service_us": 200000}}}, H2)
dt = time.monotonic() - t0
m = json.loads(b)
text = m["result"]["content"][0]["text"]
assert m["id"] == 4 and r.getheader("Content-Type") == "application/json", m
assert len(text) == 100000 and text == ("abcdefghijklmnopqrstuvwxyz" * 4000)[:100000]
assert dt >= 0.2, dt
# Accept: text/event-stream only: the answer as one SSE event.
r, b = post({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
             "params": {"name": "echo", "arguments": {"message": "hi\nthere"}}},
            {"Content-Type": "application/json", "Accept": "text/event-stream"})
assert r.getheader("Content-Type") == "text/event-stream", r.getheader("Content-Type")
ev = b.decode()
assert ev.startswith("event: message\ndata: ") and ev.endswith("\n\n") and ev.count("\n") == 3, ev
assert json.loads(ev.split("data: ", 1)[1])["result"]["content"][0]["text"] == "hi\nthere", ev
# Errors: not JSON 400 -32700; unknown method -32601; bad params -32602.
r, b = post("{nope", raw=True)
assert r.status == 400 and json.loads(b)["error"]["code"] == -32700, (r.status, b)
r, b = post({"jsonrpc": "2.0", "id": 6, "method": "resources/list"})
assert r.status == 200 and json.loads(b)["error"]["code"] == -32601, b
for args in ({"bytes": -1}, {"bytes": 8388609}, {"bytes": 1, "service_us": 60000001}, {}):
    r, b = post({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                 "params": {"name": "sized", "arguments": args}})
    assert r.status == 200 and json.loads(b)["error"]["code"] == -32602, (args, b)
r, b = post({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "nope"}})
assert json.loads(b)["error"]["code"] == -32602, b
print("mcp ok: sized 100000 bytes in %.0f ms" % (dt * 1000))
PY
ok "MCP"

# Clients that leave mid-stream: 100 streams that would last 20 s, cut
# after their first token, twice. Every one is counted, none stays active,
# and descriptors and memory are back where they were.
leave() {
	python3 - "$STUB_PORT_a" <<'PY' || wpd_fail "disconnecting clients"
import json, socket, sys
port = int(sys.argv[1])
body = json.dumps({"model": "m1", "stream": True, "max_tokens": 1000,
                   "messages": [{"role": "user", "content": "a long answer"}]}).encode()
req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\n\r\n" % len(body)) + body
socks = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
for s in socks:
    got = b""
    while b"delta\":{\"content\":\"" not in got or not got.endswith(b"\n\n\r\n"):
        d = s.recv(65536)
        assert d, "closed before the first token"
        got += d
for s in socks:
    s.close()
PY
}
fds() { ls "/proc/$STUB_PID_a/fd" | wc -l; }
leave
sleep 0.2
fd1=$(fds) rss1=$(wpd_rss "$STUB_PID_a")
st=$(stub_stats "$STUB_PID_a" "$T/a.err")
leave
sleep 0.2
fd2=$(fds) rss2=$(wpd_rss "$STUB_PID_a")
st=$(stub_stats "$STUB_PID_a" "$T/a.err")
# Under ASan freed memory sits in quarantine, so RSS grows by design there;
# its leak check at exit (the SIGTERM below must exit 0) stands in for it.
asan=0
grep -qa __asan_init "$STUB" && asan=1
python3 - "$st" "$fd1" "$fd2" "$rss1" "$rss2" "$asan" <<'PY' || wpd_fail "disconnects: $st"
import json, sys
s = json.loads(sys.argv[1])
fd1, fd2, rss1, rss2, asan = map(int, sys.argv[2:])
assert s["disconnects"] == 200 and s["active"] == 0, s
assert fd2 == fd1, (fd1, fd2)
assert asan or rss2 - rss1 < 2048, (rss1, rss2)   # KiB
PY
ok "200 clients left mid-stream: counted, none active, fds $fd1 -> $fd2, RSS $rss1 -> $rss2 KiB"

# A unix listener.
stub_start u --listen "unix:$T/stub.sock" --quiet
[ "$(curl -s --unix-socket "$T/stub.sock" http://x/healthz)" = ok ] || wpd_fail "unix listener"
grep -q "^unix $T/stub.sock" "$T/u.out" || wpd_fail "unix listener: no 'unix PATH' line"

# wirepathd in front: the stub as an http model backend and an http MCP
# upstream, next to `wirepath serve` as a native one (the same prompt must
# give the same words through all three).
wpd_serve svc "shm://@wpd-test-$$-stub" --token-interval-us 1000
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
auth: none
backends:
  - {name: native, native: "shm://@wpd-test-$$-stub"}
  - {name: stubm, http: "$U"}
  - {name: stubt, http: "$U/mcp"}
models:
  - {name: wp-stub, backend: native}
  - {name: stub-model, backend: stubm}
mcp:
  servers:
    - {name: stub, backend: stubt}
CONF
for _ in $(seq 100); do
	[ "$(curl -s "$WPD_URL/readyz")" = ready ] && break
	sleep 0.05
done
[ "$(curl -s "$WPD_URL/readyz")" = ready ] || wpd_fail "wirepathd not ready: $(curl -s "$WPD_URL/readyz")"
for m in stub-model wp-stub; do
	curl -s -N -o "$T/w-$m.body" "$WPD_URL/v1/chat/completions" -d "{\"model\":\"$m\",\"stream\":true,
		\"max_tokens\":10,\"stream_options\":{\"include_usage\":true},
		\"messages\":[{\"role\":\"user\",\"content\":\"plan the next step\"}]}"
done
want=$(python3 -c '
import json, sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]).read().split("\n\n") if l.startswith("data: {")]
print("".join(e["choices"][0]["delta"].get("content") or "" for e in ev if e["choices"]))' "$T/s.body")
python3 "$here/check_sse.py" "$T/w-stub-model.body" chat 1 10 "$want" || wpd_fail "stream through wirepathd"
python3 "$here/check_sse.py" "$T/w-wp-stub.body" chat 1 10 "$want" || wpd_fail "serve's text differs"
ok "wirepathd -> stub (http model): 10 tokens, the text serve generates: '$want'"

python3 - "$WPD_URL/mcp" <<'PY' || wpd_fail "MCP through wirepathd"
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
H = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
def post(body):
    c.request("POST", u.path, json.dumps(body), H)
    r = c.getresponse()
    return r, r.read()
r, b = post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
assert r.status == 200, (r.status, b)
H = dict(H, **{"Mcp-Session-Id": r.getheader("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"})
post({"jsonrpc": "2.0", "method": "notifications/initialized"})
r, b = post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
names = {t["name"] for t in json.loads(b)["result"]["tools"]}
assert {"stub_sized", "stub_echo"} <= names, names
t0 = time.monotonic()
r, b = post({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
             "params": {"name": "stub_sized", "arguments": {"bytes": 3000, "service_us": 50000}}})
dt = time.monotonic() - t0
text = json.loads(b)["result"]["content"][0]["text"]
assert len(text) == 3000 and dt >= 0.05, (len(text), dt)
PY
ok "wirepathd -> stub (http MCP upstream): tools/call stub_sized"

# Batched decoding (--decode-step-us): two streams started 20 ms apart get
# their tokens at the same ticks of a common 40 ms clock (a batching model
# server's decode steps), not 20 ms apart.
stub_start d --listen 127.0.0.1:0 --token-interval-us 40000 --decode-step-us 40000 --quiet
python3 - "$STUB_PORT_d" <<'PY' || wpd_fail "--decode-step-us: streams not in lockstep"
import json, socket, sys, threading, time
port = int(sys.argv[1])
body = json.dumps({"model": "wp-stub", "stream": True, "max_tokens": 12,
                   "messages": [{"role": "user", "content": "x"}]}).encode()
times = [[], []]
def stream(i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    buf = b""
    while b"[DONE]" not in buf:
        d = s.recv(65536)
        if not d:
            break
        now = time.monotonic()
        times[i] += [now] * (d.count(b'"content":"') - d.count(b'"content":""'))
        buf += d
    s.close()
ts = [threading.Thread(target=stream, args=(0,))]
ts[0].start()
time.sleep(0.020)
ts.append(threading.Thread(target=stream, args=(1,)))
ts[1].start()
for t in ts:
    t.join()
assert len(times[0]) == 12 and len(times[1]) == 12, times
# The first token may wait for the next tick; after it, both streams are on
# the same ticks (without the option they would be 20 ms apart). The median,
# so that a stall of this shared machine on one token does not decide.
# (stream 1's token i may share a tick with stream 0's token i + 1: compare
# each arrival with the nearest one of the other stream)
skew = sorted(min(abs(b - a) for a in times[0]) * 1000 for b in times[1][1:-1])
print("lockstep skew ms:", ["%.1f" % x for x in skew])
assert skew[len(skew) // 2] < 10, skew
PY
ok "--decode-step-us: two streams' tokens on the same 40 ms ticks"

# SIGTERM: exit 0, the counters line last.
kill -TERM "$STUB_PID_a"
wait "$STUB_PID_a"
rc=$?
[ $rc -eq 0 ] || wpd_fail "SIGTERM: exit $rc"
tail -n 1 "$T/a.err" | python3 -c 'import json, sys; s = json.load(sys.stdin); assert s["active"] == 0 and s["tool_calls"] >= 3, s' ||
	wpd_fail "no counters line at exit"
ok "SIGTERM: exit 0"
