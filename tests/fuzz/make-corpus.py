#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus for the frame fuzz target into tests/fuzz/corpus/.

Seeds are small on purpose (the replay test mutates them 100000 times): a
valid frame of every type (XFER with its placement prefix), frames back to
back, a frame split mid-payload and mid-header (truncated), a header
declaring more than the fuzz target's 1 MiB limit, frames around its small
(5000-byte) limit, and a few malformed headers. The layout mirrors
src/core/frame.c and docs/protocol.md: 40 bytes, little-endian.

Usage: tests/fuzz/make-corpus.py [OUTDIR]. Output is deterministic.
"""
import os
import struct
import sys

MAGIC = b"WPF1"
VERSION = 2
HDR = struct.Struct("<4sBBHIIQIIQ")  # magic ver type flags tenant method req_id len aux auth
assert HDR.size == 40

MSG, REQ, DATA, END, ERR, CANCEL, CLOSE, XFER = range(1, 9)
FF_LAST = 1
FUZZ_MAX = 1 << 20  # FUZZ_MAX_PAYLOAD in fuzz_frame.c
SMALL_MAX_METHOD = 0x80  # bit 7 of the first frame's method: fuzz_frame's 5000-byte limit


def frame(ftype, payload=b"", flags=0, tenant=7, method=0x100, req_id=1, aux=0, auth=0,
          length=None, magic=MAGIC, version=VERSION):
    n = len(payload) if length is None else length
    return HDR.pack(magic, version, ftype, flags, tenant, method, req_id, n, aux, auth) + payload


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    seeds = {
        # One valid frame of each type, as the RPC layer uses them.
        "msg": frame(MSG, b"hello agent", method=0x42),
        "req": frame(REQ, b'{"tool":"grep","q":"x"}', method=0x10, req_id=1),
        "data": frame(DATA, bytes(range(64)), method=0x10, req_id=1),
        "data-last": frame(DATA, b"tok", flags=FF_LAST, method=0x10, req_id=2, aux=0),
        "end": frame(END, method=0x10, req_id=1, aux=0),
        "err": frame(ERR, b"no such tool", method=0x10, req_id=3, aux=404),
        "cancel": frame(CANCEL, req_id=4),
        "close": frame(CLOSE, b"bad magic", aux=0),
        "stats-req": frame(REQ, method=0xFFFF0001, req_id=9),
        "empty-msg": frame(MSG, tenant=0, method=0, req_id=0),
        # A whole RPC exchange back to back, and two frames back to back.
        "two-frames": frame(MSG, b"a" * 10) + frame(MSG, b"b" * 20, req_id=2),
        "rpc-stream": (frame(REQ, b"q", req_id=5) + frame(DATA, b"t1", req_id=5) +
                       frame(DATA, b"t2", req_id=5) + frame(END, req_id=5, aux=0)),
        # A frame larger than small chunks (assembled across chunks).
        "data-300": frame(DATA, bytes((i * 7) & 0xFF for i in range(300)), req_id=6),
        # Truncated: mid-payload, and mid-header after a good frame.
        "truncated-payload": frame(DATA, b"x" * 100, req_id=7)[:70],
        "truncated-header": frame(MSG, b"ok") + frame(MSG, b"cut")[:17],
        # Oversized: declares max + 1 (a header alone, nothing follows).
        "too-big": frame(DATA, length=FUZZ_MAX + 1, req_id=8),
        "too-big-u32max": frame(DATA, length=0xFFFFFFFF, req_id=8),
        # Bulk transfer: a 16-byte placement prefix (offset, region id, key)
        # then the bytes, as xfer.c sends them; one shorter than the prefix.
        "xfer": frame(XFER, struct.pack("<QII", 4096, 3, 0xC0FFEE) +
                      bytes((i * 13) & 0xFF for i in range(200)), req_id=11, flags=FF_LAST),
        "xfer-short": frame(XFER, b"0123456789", req_id=12) + frame(END, req_id=12),
        # Under fuzz_frame's small limit (method bit 7): a frame that makes the
        # assembly buffer grow past it, and one over it.
        "small-max": frame(DATA, bytes(4500), method=SMALL_MAX_METHOD, req_id=13),
        "small-max-too-big": frame(DATA, b"x" * 40, method=SMALL_MAX_METHOD, req_id=14) +
                             frame(DATA, length=5001, req_id=14),
        # Malformed headers, one reason each, after a good frame.
        "bad-magic": frame(MSG, b"ok") + frame(MSG, b"x", magic=b"WPF2"),
        "bad-version": frame(MSG, b"ok") + frame(MSG, b"x", version=1),
        "bad-type": frame(MSG, b"ok") + frame(0, b"x"),
        "bad-flags": frame(MSG, b"ok") + frame(DATA, b"x", flags=0x8000),
    }
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
