#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus for fuzz_handshake into tests/fuzz/corpus-handshake/.

The three v2 handshake messages (src/auth/hello.h, docs/protocol.md), alone
and back to back, with and without confidentiality, plus one seed per
refusal the parser knows (phase, length, flags, fields that must be zero,
tenant where it must not be). Output is deterministic.

Usage: tests/fuzz/make-corpus-handshake.py [OUTDIR].
"""
import os
import struct
import sys

HDR = struct.Struct("<4sBBHIIQIIQ")  # magic ver type flags tenant method req_id len aux auth
HELLO = 9
NONCE_C = bytes(range(32))
NONCE_S = bytes(range(100, 132))
PROOF = bytes([0xA5] * 32)


def hello(phase, payload, tenant=0, flags=0, method=0, req_id=0, auth=0, length=None):
    n = len(payload) if length is None else length
    return HDR.pack(b"WPF1", 2, HELLO, flags, tenant, method, req_id, n, phase, auth) + payload


def client(f=0, tenant=1):
    return hello(1, struct.pack("<I", f) + NONCE_C, tenant=tenant)


def server(f=0):
    return hello(2, struct.pack("<I", f) + NONCE_S + PROOF)


def proof():
    return hello(3, PROOF)


SEEDS = {
    "client": client(),
    "client-conf": client(1),
    "server": server(),
    "server-conf": server(1),
    "proof": proof(),
    "all-three": client() + server() + proof(),
    "bad-phase": hello(4, PROOF),
    "bad-length": hello(1, struct.pack("<I", 0) + NONCE_C[:31], tenant=1),
    "bad-flags": client(2),
    "nonzero-req-id": hello(3, PROOF, req_id=5),
    "tenant-on-proof": hello(3, PROOF, tenant=1),
    "no-tenant": client(tenant=0),
    "truncated": client()[:50],
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus-handshake")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
