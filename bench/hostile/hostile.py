#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile peers against a wirepath server (docs/limits.md), for
bench/hostile/run.sh: N raw TCP connections, split in three kinds, each
re-opened as soon as the server closes it, until SIGTERM:

- partial: a valid header declaring a maximum-size frame (16 MiB), then as
  much of its payload as the server takes, never the last byte;
- slowloris: a header sent one byte every 0.5 s;
- idle: connects and sends nothing.

Prints one JSON line at exit: how many of each were opened and how many the
server closed, and the payload bytes pushed."""
import json
import select
import signal
import socket
import struct
import sys
import time

MAGIC, VERSION, FT_MSG = 0x31465057, 2, 1  # wire version 2 (docs/protocol.md)
MAX_FRAME = 16 << 20


def header(length):
    # magic u32, version u8, type u8, flags u16, tenant u32, method u32,
    # req_id u64, len u32, aux u32, auth u64: 40 bytes, little-endian
    return struct.pack("<IBBHIIQIIQ", MAGIC, VERSION, FT_MSG, 0, 0, 0, 0, length, 0, 0)


def main():
    if len(sys.argv) != 4:
        print("usage: hostile.py HOST PORT N", file=sys.stderr)
        return 2
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kinds = ["partial", "slowloris", "idle"]
    stats = {k: {"opened": 0, "closed_by_server": 0} for k in kinds}
    stats["partial_bytes"] = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    hdr = header(MAX_FRAME)
    chunk = bytes(1 << 16)
    conns = {}  # socket -> [kind, bytes sent, next slowloris time]

    def open_one(kind):
        try:
            s = socket.create_connection((host, port), timeout=2)
        except OSError:
            return
        s.setblocking(False)
        conns[s] = [kind, 0, time.time()]
        stats[kind]["opened"] += 1
        if kind == "partial":
            s.send(hdr)

    for i in range(n):
        open_one(kinds[i % 3])
    while not stop:
        want_w = [s for s, c in conns.items() if c[0] == "partial" and c[1] < MAX_FRAME - 1]
        r, w, _ = select.select(list(conns), want_w, [], 0.1)
        for s in r:
            try:
                if s.recv(4096):
                    continue  # a CLOSE frame: the EOF follows
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                pass
            kind = conns.pop(s)[0]
            stats[kind]["closed_by_server"] += 1
            s.close()
            open_one(kind)
        for s in w:
            c = conns.get(s)
            if not c:
                continue
            try:
                k = s.send(chunk[: min(len(chunk), MAX_FRAME - 1 - c[1])])
                c[1] += k
                stats["partial_bytes"] += k
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
        now = time.time()
        for s, c in list(conns.items()):
            if c[0] == "slowloris" and now >= c[2] and c[1] < len(hdr) - 1:
                try:
                    s.send(hdr[c[1] : c[1] + 1])
                    c[1] += 1
                except OSError:
                    pass
                c[2] = now + 0.5
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
