#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarise bench/flood/run.sh's rows: medians over rounds per mode, the
ratios the front door is judged by, a table on stdout and one JSON file.

usage: summary.py ROWS.jsonl OUT.json PPS SECS KERNEL NCPU
"""
import json
import statistics
import sys


def med(rows, key):
    v = [r[key] for r in rows]
    return statistics.median(v) if v else 0.0


def main():
    rows_f, out_f, pps, secs, kernel, ncpu = sys.argv[1:7]
    rows = [json.loads(l) for l in open(rows_f) if l.strip()]
    out = {"kernel": kernel, "cpus": int(ncpu), "flood_pps_asked": pps,
           "secs_per_run": float(secs), "rows": rows}

    agr = [r for r in rows if r["part"] == "agentic"]
    rates = sorted({r["rate"] for r in agr if r["mode"] != "base"})
    keys = ("tool_calls_per_s", "steps_per_s", "cpu_us_per_step", "tool_rtt_p99_us", "flood_pps",
            "endpoint_received", "endpoint_cpu_user_s", "endpoint_cpu_sys_s", "xdp_dropped",
            "xdp_prog_cpu_s", "xdp_prog_runs",
            "sender_cpu_s", "machine_busy_s")
    base_rows = [r for r in agr if r["mode"] == "base"]
    if base_rows and rates:
        s = {"base": {k: med(base_rows, k) for k in keys}}
        s["base"]["rounds"] = len(base_rows)
        base = s["base"]["tool_calls_per_s"]
        for rate in rates:
            for m in ("xdp", "twin"):
                rs = [r for r in agr if r["mode"] == m and r["rate"] == rate]
                if not rs:
                    continue
                x = {k: med(rs, k) for k in keys}
                x["rounds"] = len(rs)
                x["throughput_vs_base"] = x["tool_calls_per_s"] / base if base else 0.0
                # Paired: each round's run against that round's no-flood run
                # (neighbours in time, so slow drift on a shared machine cancels).
                bt = {r["round"]: r["tool_calls_per_s"] for r in base_rows}
                pr = sorted(r["tool_calls_per_s"] / bt[r["round"]] for r in rs
                            if bt.get(r["round"]))
                x["paired_vs_base_median"] = statistics.median(pr) if pr else 0.0
                x["paired_vs_base_range"] = [pr[0], pr[-1]] if pr else []
                cpu = x["endpoint_cpu_user_s"] + x["endpoint_cpu_sys_s"]
                x["endpoint_cpu_s"] = cpu
                x["endpoint_cpu_ns_per_flood_pkt"] = (cpu * 1e9 / x["endpoint_received"]
                                                      if x["endpoint_received"] else 0.0)
                # The sender shares this machine's cores: its CPU (which includes
                # the kernel's veth delivery, and the XDP program, since veth
                # delivers in the sender's context) as a share of all cores.
                ss = med(rs, "sender_secs")
                x["sender_share_of_machine"] = (x["sender_cpu_s"] / ss / float(ncpu)
                                                if ss else 0.0)
                s["%s@%d" % (m, rate)] = x
        out["agentic"] = s
        print("Part 1: agentic workload (4 agents, tcp, frames signed and checked) while A "
              "floods udp:7100 with disallowed sources and forged tags; medians of %d rounds"
              % s["base"]["rounds"])
        print("| mode | flood pps | tool calls/s | vs no flood (paired per round: median, range)"
              " | sender's share of the cores"
              " | datagrams reaching user space | endpoint CPU user / sys (s) | per datagram"
              " | XDP program CPU (s), all packets |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, x in s.items():
            print("| %s | %.0f | %.0f | %s | %s | %.0f | %.3f / %.3f | %s | %s |" % (
                name.split("@")[0], x["flood_pps"], x["tool_calls_per_s"],
                "%.3f (%.2f..%.2f)" % (x["paired_vs_base_median"], *x["paired_vs_base_range"])
                if name != "base" else "1",
                "%.1f%%" % (100 * x["sender_share_of_machine"]) if name != "base" else "-",
                x["endpoint_received"], x["endpoint_cpu_user_s"], x["endpoint_cpu_sys_s"],
                "%.0f ns" % x["endpoint_cpu_ns_per_flood_pkt"]
                if x["endpoint_received"] else "-",
                "%.4f" % x["xdp_prog_cpu_s"] if not name.startswith("twin") else "-"))
        for rate in rates:
            a, b = s.get("xdp@%d" % rate), s.get("twin@%d" % rate)
            if not a or not b:
                continue
            print("At %.0f pps: user-space CPU on the flood XDP %.3f s vs twin %.3f s; legit "
                  "tool calls (paired median) XDP %.3f of no-flood (goal >= 0.9), twin %.3f" % (
                      rate, a["endpoint_cpu_s"], b["endpoint_cpu_s"],
                      a["paired_vs_base_median"], b["paired_vs_base_median"]))

    dr = {m: [r for r in rows if r["part"] == "drop" and r["mode"] == m]
          for m in ("floor", "xdp", "xdp-generic", "nft-ingress", "nft-raw")}
    if all(dr.values()):
        d = {}
        for m, rs in dr.items():
            d[m] = {k: med(rs, k) for k in ("sent_pps", "drop_pps", "drops_per_cpu_s",
                                             "cpu_ns_per_pkt")}
            d[m]["rounds"] = len(rs)
        for m in ("xdp", "xdp-generic"):
            d[m]["prog_ns_per_pkt"] = med(dr[m], "prog_ns_per_pkt") \
                if all("prog_ns_per_pkt" in r for r in dr[m]) else None
        floor = d["floor"]["cpu_ns_per_pkt"]
        for m in ("xdp", "xdp-generic", "nft-ingress", "nft-raw"):
            d[m]["above_floor_ns_per_pkt"] = d[m]["cpu_ns_per_pkt"] - floor
        for m in ("nft-ingress", "nft-raw"):
            for x in ("xdp", "xdp-generic"):
                d[m]["%s_per_core_vs_this" % x] = (d[x]["drops_per_cpu_s"] / d[m]["drops_per_cpu_s"]
                                                   if d[m]["drops_per_cpu_s"] else 0.0)
        out["drop"] = d
        print()
        print("Part 2: disallowed-source flood at full speed, sender pinned to CPU 0 "
              "(veth delivers on the sending core); medians of %d rounds" % d["floor"]["rounds"])
        print("| mode | sent pps | dropped pps | drops per CPU-second | CPU ns per packet"
              " | above floor |")
        print("|---|---|---|---|---|---|")
        for m in ("floor", "xdp", "xdp-generic", "nft-ingress", "nft-raw"):
            x = d[m]
            print("| %s | %.0f | %.0f | %.0f | %.0f | %s |" % (
                m, x["sent_pps"], x["drop_pps"], x["drops_per_cpu_s"], x["cpu_ns_per_pkt"],
                "%+.0f ns" % x["above_floor_ns_per_pkt"] if m != "floor" else "-"))
        for m in ("nft-ingress", "nft-raw"):
            print("vs %s, drops per CPU-second: native XDP %.2fx, generic XDP %.2fx" % (
                m, d[m]["xdp_per_core_vs_this"], d[m]["xdp-generic_per_core_vs_this"]))
        for m in ("xdp", "xdp-generic"):
            if d[m]["prog_ns_per_pkt"]:
                print("%s program alone (bpf_stats): %.0f ns per packet = %.2e drops per "
                      "core-second" % (m, d[m]["prog_ns_per_pkt"], 1e9 / d[m]["prog_ns_per_pkt"]))
    with open(out_f, "w") as f:
        json.dump(out, f, indent=1)
    print("\nresults: %s" % out_f)


if __name__ == "__main__":
    main()
