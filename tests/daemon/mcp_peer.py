#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small MCP server on stdio (newline-delimited JSON-RPC), the real peer
wirepathd's MCP tests run as a child: tests/unit/test_mcp.c.

usage: mcp_peer.py MODE [LOGFILE]
  MODE  normal          serve tools echo, add, slow
        crash-after-N   serve N tools/call, exit(3) on the next one
        garbage         before each tools/call answer, write garbage: not
                        JSON, an answer to an id never asked, a line over
                        4 MiB, a JSON-RPC-shaped object without a method;
                        then the right answer
        silent          read everything, answer nothing (not even initialize),
                        ignore SIGTERM and stay after stdin closes: only
                        SIGKILL ends it
  LOGFILE  {"started": PID} first, then every message received, one line
           each (the test reads it to see, e.g., that notifications/cancelled
           arrived)

Tools: echo {text} -> the text; add {a, b} -> a + b as text; slow {ms} ->
"slept" after ms milliseconds, sending notifications/progress every 20 ms
when the request carried a progressToken; a slow call cancelled by
notifications/cancelled is never answered.
"""
import json
import os
import select
import signal
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "normal"
logf = open(sys.argv[2], "a", buffering=1) if len(sys.argv) > 2 else None
crash_after = int(mode.split("-")[-1]) if mode.startswith("crash-after-") else -1
calls = 0
slow = {}  # request id (as JSON text) -> [due, id, token, next progress, step]

TOOLS = [
    {"name": "echo", "description": "Echo the text back",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "add", "description": "Add two numbers",
     "inputSchema": {"type": "object",
                     "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}},
    {"name": "slow", "description": "Sleep ms milliseconds, with progress",
     "inputSchema": {"type": "object", "properties": {"ms": {"type": "number"}}}},
]


def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def raw(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def result(mid, res):
    send({"jsonrpc": "2.0", "id": mid, "result": res})


def text(s):
    return {"content": [{"type": "text", "text": s}], "isError": False}


def tools_call(msg):
    global calls
    mid, p = msg["id"], msg.get("params") or {}
    calls += 1
    if crash_after >= 0 and calls > crash_after:
        sys.stderr.write("mcp_peer: crashing as told\n")
        sys.stderr.flush()
        os._exit(3)
    if mode == "garbage":
        raw("this is not json\n")
        send({"jsonrpc": "2.0", "id": 987654, "result": {}})
        raw("x" * (5 << 20) + "\n")
        raw('{"jsonrpc":"2.0","params":{}}\n')
        raw("[1,2\n")
    name, args = p.get("name"), p.get("arguments") or {}
    if name == "echo":
        result(mid, text(str(args.get("text", ""))))
    elif name == "add":
        result(mid, text(str(args.get("a", 0) + args.get("b", 0))))
    elif name == "slow":
        ms = float(args.get("ms", 100))
        token = (p.get("_meta") or {}).get("progressToken")
        now = time.monotonic()
        slow[json.dumps(mid)] = [now + ms / 1000.0, mid, token, now + 0.02, 0]
    else:
        send({"jsonrpc": "2.0", "id": mid,
              "error": {"code": -32602, "message": "Unknown tool: %s" % name}})


def handle(msg):
    if logf:
        logf.write(json.dumps(msg, separators=(",", ":")) + "\n")
    if mode == "silent":
        return
    method, mid = msg.get("method"), msg.get("id")
    if method is None:
        return  # a response: we send no requests
    if mid is None:
        if method == "notifications/cancelled":
            slow.pop(json.dumps((msg.get("params") or {}).get("requestId")), None)
        return
    if method == "initialize":
        result(mid, {"protocolVersion": msg["params"]["protocolVersion"],
                     "capabilities": {"tools": {"listChanged": False}},
                     "serverInfo": {"name": "mcp_peer", "version": "1.0"},
                     "instructions": "test peer, mode " + mode})
    elif method == "ping":
        result(mid, {})
    elif method == "tools/list":
        result(mid, {"tools": TOOLS})
    elif method == "tools/call":
        tools_call(msg)
    else:
        send({"jsonrpc": "2.0", "id": mid,
              "error": {"code": -32601, "message": "Method not found: %s" % method}})


def tick():
    now = time.monotonic()
    for key, s in list(slow.items()):
        due, mid, token, nxt, step = s
        if token is not None and now >= nxt and now < due:
            s[4] += 1
            s[3] = now + 0.02
            send({"jsonrpc": "2.0", "method": "notifications/progress",
                  "params": {"progressToken": token, "progress": s[4]}})
        if now >= due:
            del slow[key]
            result(mid, text("slept"))


def main():
    sys.stderr.write("mcp_peer: started, mode %s, pid %d\n" % (mode, os.getpid()))
    sys.stderr.flush()
    if logf:
        logf.write(json.dumps({"started": os.getpid()}) + "\n")
    if mode == "silent":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    buf = b""
    fd = sys.stdin.fileno()
    while True:
        timeout = 0.01 if slow else None
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                while mode == "silent":
                    time.sleep(1)
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    handle(json.loads(line))
        tick()


main()
