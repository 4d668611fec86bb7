#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/xsk/run.sh's JSON lines (stdin) -> Markdown tables of medians:
the echo (xsk vs the kernel UDP echo, blocking and spinning, with uring and
tcp beside them) and one-way receive (rx_xsk vs rx_udp), with the issue's
goals judged on the medians: xsk CPU per call <= 0.6x UDP's, calls per CPU
second >= 1.5x."""
import json
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        d = json.loads(line)
        runs[(d["mode"], d.get("size", 64), d.get("inflight", 0))].append(d)


def med(mode, size, inflight, key):
    v = [r[key] for r in runs.get((mode, size, inflight), []) if key in r]
    return statistics.median(v) if v else float("nan")


def n(mode, size, inflight):
    return len(runs.get((mode, size, inflight), []))


print("| in flight, size | xsk CPU/call | UDP CPU/call | ratio (goal <= 0.6x) "
      "| xsk calls per CPU s | UDP calls per CPU s | ratio (goal >= 1.5x) "
      "| p50 / p99 xsk | p50 / p99 UDP | uring CPU/call | tcp CPU/call "
      "| xsk packets out+in per call | syscalls per call xsk / UDP |")
print("|" + "---|" * 13)
for inflight in (1, 32):
    for size in (64, 1024):
        if not n("xsk", size, inflight):
            continue
        x = med("xsk", size, inflight, "cpu_us_per_call")
        u = med("udp", size, inflight, "cpu_us_per_call")
        xc = med("xsk", size, inflight, "calls_per_cpu_s")
        uc = med("udp", size, inflight, "calls_per_cpu_s")
        ok1 = "met" if x <= 0.6 * u else "missed"
        ok2 = "met" if xc >= 1.5 * uc else "missed"
        print(f"| {inflight}, {size} B | {x:.2f} us | {u:.2f} us | {x / u:.2f}x ({ok1}) "
              f"| {xc:,.0f} | {uc:,.0f} | {xc / uc:.2f}x ({ok2}) "
              f"| {med('xsk', size, inflight, 'p50_us'):.0f} / "
              f"{med('xsk', size, inflight, 'p99_us'):.0f} us "
              f"| {med('udp', size, inflight, 'p50_us'):.0f} / "
              f"{med('udp', size, inflight, 'p99_us'):.0f} us "
              f"| {med('uring', size, inflight, 'cpu_us_per_call'):.2f} us "
              f"| {med('tcp', size, inflight, 'cpu_us_per_call'):.2f} us "
              f"| {med('xsk', size, inflight, 'pkts_out_per_call') + med('xsk', size, inflight, 'pkts_in_per_call'):.2f} "
              f"| {med('xsk', size, inflight, 'syscalls_per_call'):.2f} / "
              f"{med('udp', size, inflight, 'syscalls_per_call'):.2f} |")
print()
print("| one-way receive, 64 B | received pkts/s | process CPU per pkt (sender included) "
      "| pkts per process CPU s | receiver thread CPU per pkt | pkts per receiver CPU s |")
print("|---|---|---|---|---|---|")
for mode in ("rx_xsk", "rx_udp"):
    if not n(mode, 64, 0):
        continue
    print(f"| {mode} | {med(mode, 64, 0, 'rx_pps'):,.0f} "
          f"| {med(mode, 64, 0, 'cpu_ns_per_pkt'):,.0f} ns "
          f"| {med(mode, 64, 0, 'pkts_per_cpu_s'):,.0f} "
          f"| {med(mode, 64, 0, 'rx_thread_ns_per_pkt'):,.0f} ns "
          f"| {med(mode, 64, 0, 'pkts_per_rx_thread_cpu_s'):,.0f} |")
for extra in ("udp_spin", "xsk_busy", "udp_busy"):
    if not any(k[0] == extra for k in runs):
        continue
    print(f"\n{extra} (EXTRA_MODES), CPU per call, p50 / p99:")
    for inflight in (1, 32):
        for size in (64, 1024):
            if n(extra, size, inflight):
                print(f"- {inflight} in flight, {size} B: "
                      f"{med(extra, size, inflight, 'cpu_us_per_call'):.2f} us, "
                      f"{med(extra, size, inflight, 'p50_us'):.0f} / "
                      f"{med(extra, size, inflight, 'p99_us'):.0f} us")
reps = sorted({n(*k) for k in runs})
print(f"\nMedians of {'/'.join(map(str, reps))} runs per row.")
