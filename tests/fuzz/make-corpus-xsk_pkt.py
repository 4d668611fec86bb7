#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Seeds for tests/fuzz/fuzz_xsk_pkt.c: the xsk path's packets as the UMEM
# holds them (Ethernet, IPv4, UDP, the 40-byte frame header, the 24-byte
# prefix, the fragment; src/transport/xsk/wire.h): one of each control
# kind, a keyed SYN, whole, fragment and bundle data packets, a sealed-looking
# one, and near misses for each check (IPv4, UDP, frame, lengths, a bundle
# record of another tenant or cut short, an offset that wraps). Writes
# tests/fuzz/corpus-xsk_pkt/.
import os
import struct

MAGIC = 0x31465057
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-xsk_pkt")
os.makedirs(out, exist_ok=True)
CTL = 0xC5


def hdr(typ, method, rest, tenant=1, req_id=0, aux=0, auth=0, flags=0):
    return struct.pack("<IBBHIIQIIQ", MAGIC, 2, typ, flags, tenant, method, req_id, rest, aux,
                       auth)


def prefix(sid, seq, ack, mlen, off):
    return struct.pack("<QIIII", sid, seq, ack, mlen, off)


def frame(udp_payload, ip_total=None, udp_len=None, frag=0, proto=17, ihl=5, pad=0,
          ethertype=0x0800):
    ulen = 8 + len(udp_payload) if udp_len is None else udp_len
    tot = ihl * 4 + 8 + len(udp_payload) if ip_total is None else ip_total
    eth = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]) + struct.pack(">H", ethertype)
    ip = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 0, frag, 64, proto, 0,
                     bytes([10, 98, 0, 2]), bytes([10, 98, 0, 1]))
    ip += b"\0" * (ihl * 4 - 20)
    udp = struct.pack(">HHHH", 40000, 41000, ulen, 0)
    return eth + ip + udp + udp_payload + b"\0" * pad


def pkt(typ, method, body, **kw):
    return hdr(typ, method, len(body), **kw) + body


def data(sid, seq, mlen, off, frag, typ=2, method=1, tenant=1):
    return pkt(typ, method, prefix(sid, seq, 1, mlen, off) + frag, tenant=tenant)


seeds = {}
sid = 0x1122334455667788
for kind, name in [(1, "syn"), (2, "synack"), (3, "ack"), (4, "fin"), (5, "rst"), (6, "ping"),
                   (7, "pong"), (8, "nak")]:
    seeds["ctl-" + name] = frame(pkt(CTL, kind, prefix(sid, 0, 1, 0, 0)))
hs = struct.pack("<I", 0) + bytes(range(32))
seeds["ctl-syn-keyed"] = frame(pkt(CTL, 1, prefix(sid, 0, 1, 0, 0) + hs, req_id=sid,
                                   aux=0x5A5A5A5A, auth=0x0102030405060708))
seeds["data-whole"] = frame(data(sid, 1, 64, 0, bytes(64)))
seeds["data-empty"] = frame(data(sid, 1, 0, 0, b""))
seeds["data-first-frag"] = frame(data(sid, 1, 5000, 0, bytes(1400)))
seeds["data-last-frag"] = frame(data(sid, 4, 5000, 4200, bytes(800)))
rec = lambda t, body, tenant=1: hdr(t, 1, len(body), tenant=tenant) + body
first = bytes(100)
bundle = first + rec(2, bytes(50)) + rec(3, bytes(10)) + rec(2, b"")
seeds["data-bundle"] = frame(data(sid, 2, len(first), 0, bundle))
seeds["data-bundle-other-tenant"] = frame(data(sid, 2, len(first), 0,
                                               first + rec(2, bytes(8), tenant=2)))
seeds["data-bundle-cut"] = frame(data(sid, 2, len(first), 0, first + rec(2, bytes(60))[:-10]))
seeds["data-bundle-short-hdr"] = frame(data(sid, 2, len(first), 0, first + bytes(20)))
seeds["data-off-wraps"] = frame(data(sid, 3, 5000, 0xFFFFFF00, bytes(0x100)))
seeds["data-too-big"] = frame(data(sid, 3, 0x7FFFFFFF, 0, bytes(100)))
seeds["data-sealed"] = frame(pkt(2, 1, bytes(range(24 + 40 + 32)), auth=0x99))
seeds["data-padded"] = frame(data(sid, 1, 4, 0, b"abcd"), pad=20)
good = data(sid, 1, 16, 0, bytes(16))
seeds["bad-ethertype"] = frame(good, ethertype=0x86DD)
seeds["bad-ip-fragment"] = frame(good, frag=0x2000)
seeds["bad-ip-proto"] = frame(good, proto=6)
seeds["bad-ip-ihl"] = frame(good, ihl=4)
seeds["ip-options"] = frame(good, ihl=6)
seeds["bad-ip-total-long"] = frame(good, ip_total=2000)
seeds["bad-udp-len-long"] = frame(good, udp_len=1000)
seeds["bad-udp-len-short"] = frame(good, udp_len=7)
seeds["bad-frame-len"] = frame(hdr(2, 1, 999) + prefix(sid, 1, 1, 0, 0))
seeds["bad-frame-short"] = frame(hdr(2, 1, 10)[:30])
seeds["bad-magic"] = frame(b"XXXX" + good[4:])
seeds["truncated"] = frame(good)[:50]
for name, b in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(b)
print(f"{len(seeds)} seeds in {out}")
