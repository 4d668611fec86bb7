#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A hostile streamable-HTTP MCP server for tests/daemon/mcp_http.sh.

  mcp_http_peer.py PORT_FILE

Listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE). Sessions
are spec-style: an unknown Mcp-Session-Id gets 404. Tools, by name:
  echo      answers as JSON {content: [{type: text, text: ARG}]}
  sse       answers as SSE: a garbage event, a progress event, the result
  big       an SSE event of 5 MiB (over the daemon's 4 MiB)
  fail500   HTTP 500 with a text body
  tail      SSE whose last event lacks its ending (no newline at all)
  forget    answers, then forgets every session (the next call gets 404)
"""
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sessions = set()
inits = 0


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="application/json", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global inits
        n = int(self.headers.get("Content-Length", "0"))
        msg = json.loads(self.rfile.read(n))
        sid = self.headers.get("Mcp-Session-Id")
        if msg.get("method") == "initialize":
            inits += 1
            sid = uuid.uuid4().hex
            sessions.add(sid)
            res = {"protocolVersion": msg["params"]["protocolVersion"],
                   "capabilities": {"tools": {}},
                   "serverInfo": {"name": "peer", "version": str(inits)}}
            self.reply(200, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": res}),
                       extra={"Mcp-Session-Id": sid})
            return
        if sid not in sessions:
            self.reply(404, json.dumps({"jsonrpc": "2.0", "id": None,
                                        "error": {"code": -32001, "message": "Session not found"}}))
            return
        if self.headers.get("MCP-Protocol-Version") is None:
            self.reply(400, "no MCP-Protocol-Version", "text/plain")
            return
        if "id" not in msg:
            self.reply(202, b"")
            return
        mid, method = msg["id"], msg.get("method")
        if method == "tools/list":
            tools = [{"name": t, "inputSchema": {"type": "object"}}
                     for t in ("echo", "sse", "big", "fail500", "forget", "tail")]
            self.reply(200, json.dumps({"jsonrpc": "2.0", "id": mid, "result": {"tools": tools}}))
            return
        if method != "tools/call":
            self.reply(200, json.dumps({"jsonrpc": "2.0", "id": mid,
                                        "error": {"code": -32601, "message": "no"}}))
            return
        name = msg["params"]["name"]
        arg = json.dumps(msg["params"].get("arguments", {}))
        result = {"jsonrpc": "2.0", "id": mid,
                  "result": {"content": [{"type": "text", "text": f"{name} {arg} init {inits}"}]}}
        if name == "fail500":
            self.reply(500, "internal trouble", "text/plain")
        elif name == "tail":
            self.reply(200, "data: " + json.dumps(result), "text/event-stream")
        elif name == "big":
            self.reply(200, "data: " + "x" * (5 << 20) + "\n\n", "text/event-stream")
        elif name == "sse":
            tok = msg["params"].get("_meta", {}).get("progressToken")
            ev = "data: {not json\n\n"
            if tok is not None:
                p = {"jsonrpc": "2.0", "method": "notifications/progress",
                     "params": {"progressToken": tok, "progress": 1, "total": 2}}
                ev += "event: message\ndata: " + json.dumps(p) + "\r\n\r\n"
            ev += "id: 1\ndata: " + json.dumps(result) + "\n\n"
            self.reply(200, ev, "text/event-stream")
        else:
            if name == "forget":
                sessions.clear()
            self.reply(200, json.dumps(result))


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
