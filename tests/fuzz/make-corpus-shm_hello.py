#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Seeds for tests/fuzz/fuzz_shm_hello.c: one of each shm setup message
# (src/transport/shm/layout.h), valid, plus a few near misses. Writes
# tests/fuzz/corpus-shm_hello/. Native little-endian, as both peers are on
# one host.
import os
import struct

MAGIC = 0x314D5057
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-shm_hello")
os.makedirs(out, exist_ok=True)


def layout(slots, arena, heap, align):
    def up(v):
        return (v + align - 1) & ~(align - 1)
    off = up(512)  # sizeof(struct shm_hdr) rounds up to one page either way
    for _ in range(2):
        off = up(off + slots * 64)
    for _ in range(2):
        off = up(off + arena)
    for _ in range(2):
        off = up(off + heap)
    return off


def v1(typ, status=0, geom=(0, 0, 0, 0), size=0, pid=1234, mr=(0, 0, 0)):
    slots, arena, heap, align = geom
    return struct.pack("<IHHiIQQQQiIIIQ", MAGIC, 1, typ, status, slots, arena, heap, align,
                       size, pid, mr[0], mr[1], 0, mr[2])


def v2(typ, status=0, tenant=1, geom=(0, 0, 0, 0), size=0, pid=1234, nonce=b"", proof=b""):
    slots, arena, heap, align = geom
    return struct.pack("<IHHiIIiQQQQ32s32sQ", MAGIC, 2, typ, status, tenant, slots, pid, arena,
                       heap, align, size, nonce.ljust(32, b"\0"), proof.ljust(32, b"\0"), 0)


g = (8, 64 << 10, 64 << 10, 4096)
sz = layout(*g)
gh = (1024, 4 << 20, 16 << 20, 2 << 20)
szh = layout(*gh)
seeds = {
    "v1-hello": v1(1, geom=g, size=sz),
    "v1-hello-huge": v1(1, geom=gh, size=szh),
    "v1-ack": v1(2),
    "v1-ack-refused": v1(2, status=-13),
    "v1-mr": v1(3, mr=(7, 0xDEADBEEF, 1 << 20)),
    "v1-hello-bad-size": v1(1, geom=g, size=sz + 4096),
    "auth-hello": v2(4, nonce=b"\x11" * 32),
    "auth-challenge": v2(5, nonce=b"\x22" * 32, proof=b"\x33" * 32),
    "auth-region": v2(6, geom=g, size=sz, proof=b"\x44" * 32),
    "auth-ack": v2(7),
    "auth-ack-refused": v2(7, status=-13),
    "auth-hello-truncated": v2(4, nonce=b"\x11" * 32)[:100],
    "auth-hello-version9": struct.pack("<IHH", MAGIC, 9, 4) + v2(4, nonce=b"\x11" * 32)[8:],
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
