#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helpers of bench/gateway/run.sh (standard library only).

  gateway.py freeport N               N free TCP ports on 127.0.0.1
  gateway.py rec RAW SCEN TGT ROUND FILE KEY=VAL...
                                      append one measurement to RAW (JSON lines):
                                      FILE is sse_load's JSON or wrk's text output
  gateway.py report RAW META OUT      build the result JSON and print the summary

Every figure the report gives comes from RAW; the rounds are interleaved
(A B C, A B C, ...), and an "added" figure is the median over rounds of
(via - direct) within each round, so drift between rounds cancels.
"""
import json
import os
import re
import socket
import statistics
import sys

# Targets of issue 13 ("Performance").
TARGET_ADDED_P50_US = 50
TARGET_ADDED_P99_US = 150
TARGET_RPS_PER_CORE = 24000
TARGET_CPU_RATIO = 0.7
TARGET_ADDED_TTFT_US = 50
TARGET_ADDED_TOKEN_US = 5
TARGET_STREAMS = 10000


def freeport(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def parse_wrk(text):
    out = {"tool": "wrk"}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        out["requests"] = int(m.group(1))
        dur = float(m.group(2))
        out["duration_s"] = dur * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}.get(m.group(3), 1)
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    if "requests" not in out:
        out["error"] = "wrk printed no result: " + text.strip()[-300:]
    return out


def rec(raw, scen, tgt, rnd, path, kv):
    row = {"scenario": scen, "target": tgt, "round": int(rnd)}
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        text = ""
        row["error"] = f"no output: {e}"
    if text.lstrip().startswith("{"):
        try:
            row["load"] = json.loads(text.strip().splitlines()[-1])
        except ValueError:
            row["error"] = "bad JSON from sse_load: " + text[-300:]
    elif text:
        row["load"] = parse_wrk(text)
    for item in kv:
        k, _, v = item.partition("=")
        try:
            row[k] = float(v)
        except ValueError:
            row[k] = v
    with open(raw, "a") as f:
        f.write(json.dumps(row) + "\n")


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 1) if xs else None


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def rows_of(rows, scen):
    return [r for r in rows if r["scenario"] == scen]


def targets_in(rows):
    seen = []
    for r in rows:
        if r["target"] not in seen:
            seen.append(r["target"])
    return seen


def errors_of(rs):
    n = 0
    for r in rs:
        n += int(get(r, "load", "errors") or 0)
        n += int(get(r, "load", "non2xx") or 0) + int(get(r, "load", "socket_errors") or 0)
        if "error" in r or get(r, "load", "error"):
            n += 1
    return n


def paired(rows, tgt, fn):
    """Median over rounds of fn(via row) - fn(direct row) in the same round."""
    diffs = []
    for r in rows:
        if r["target"] != tgt:
            continue
        d = [x for x in rows if x["target"] == "direct" and x["round"] == r["round"]]
        if d and fn(r) is not None and fn(d[0]) is not None:
            diffs.append(fn(r) - fn(d[0]))
    return med(diffs)


def report_latency(rows):
    rs = rows_of(rows, "latency")
    if not rs:
        return None
    out = {"how": "sse_load --rate (open loop; latency from each request's due time to its "
                  "last response byte), 1 KiB non-streaming chat POST, static nginx upstream",
           "rounds": rs}
    for t in targets_in(rs):
        tr = [r for r in rs if r["target"] == t]
        e = {"errors": errors_of(tr)}
        for p in ("p50", "p90", "p99", "p999", "max"):
            e[p + "_us"] = med([get(r, "load", "latency_us", p) for r in tr])
        e["service_p50_us"] = med([get(r, "load", "service_us", "p50") for r in tr])
        e["late_sends"] = sum(int(get(r, "load", "late") or 0) for r in tr)
        e["achieved_rps"] = med([get(r, "load", "achieved_rps") for r in tr])
        cpu = [(r.get("proxy_cpu_s"), get(r, "load", "done")) for r in tr]
        cpu = [c * 1e6 / n for c, n in cpu if c is not None and n]
        if cpu:
            e["proxy_cpu_us_per_req"] = med(cpu)
        out[t] = e
    added = {}
    for t in targets_in(rs):
        if t == "direct":
            continue
        added[t] = {p + "_us": paired(rs, t, lambda r, p=p: get(r, "load", "latency_us", p))
                    for p in ("p50", "p90", "p99")}
    out["added"] = added
    w = added.get("wirepathd", {})
    out["target"] = {"added_p50_us": TARGET_ADDED_P50_US, "added_p99_us": TARGET_ADDED_P99_US}
    if w.get("p50_us") is not None:
        out["met"] = {"p50": w["p50_us"] <= TARGET_ADDED_P50_US,
                      "p99": w["p99_us"] <= TARGET_ADDED_P99_US}
    return out


def report_saturation(rows):
    rs = rows_of(rows, "saturation")
    if not rs:
        return None
    out = {"how": "wrk -t1 (closed loop, keep-alive), 1 KiB chat POST; proxy CPU from "
                  "/proc/PID/stat utime+stime over the run (nginx: master + its 1 worker)",
           "rounds": rs}
    for t in targets_in(rs):
        tr = [r for r in rs if r["target"] == t]
        e = {"errors": errors_of(tr), "rps": med([get(r, "load", "rps") for r in tr])}
        per_core, per_req, host = [], [], []
        for r in tr:
            n, c = get(r, "load", "requests"), r.get("proxy_cpu_s")
            if n and c:
                per_core.append(n / c)
                per_req.append(c * 1e6 / n)
            if n and r.get("host_cpu_s"):
                host.append(r["host_cpu_s"] * 1e6 / n)
        if per_core:
            e["proxy_cpu_s"] = med([r.get("proxy_cpu_s") for r in tr])
            e["rps_per_proxy_core"] = med(per_core)
            e["proxy_cpu_us_per_req"] = med(per_req)
        if host:
            e["host_cpu_us_per_req"] = med(host)
        out[t] = e
    w, n = out.get("wirepathd", {}), out.get("nginx", {})
    out["target"] = {"rps_per_core": TARGET_RPS_PER_CORE, "cpu_ratio_vs_nginx": TARGET_CPU_RATIO}
    if w.get("proxy_cpu_us_per_req") and n.get("proxy_cpu_us_per_req"):
        out["cpu_ratio_wirepathd_over_nginx"] = round(
            w["proxy_cpu_us_per_req"] / n["proxy_cpu_us_per_req"], 3)
        out["met"] = {"rps_per_core": w["rps_per_proxy_core"] >= TARGET_RPS_PER_CORE,
                      "cpu_ratio": out["cpu_ratio_wirepathd_over_nginx"] <= TARGET_CPU_RATIO}
    return out


def sse_entry(tr):
    e = {"errors": errors_of(tr),
         "streams": med([get(r, "load", "connections") for r in tr]),
         "streams_done": sum(int(get(r, "load", "streams_done") or 0) for r in tr),
         "stalled": sum(int(get(r, "load", "stalled") or 0) for r in tr),
         "tokens_per_s": med([get(r, "load", "tokens_per_s") for r in tr])}
    for p in ("p50", "p99", "max"):
        e["ttft_" + p + "_us"] = med([get(r, "load", "ttft_us", p) for r in tr])
    for p in ("p50", "p99", "max"):
        e["gap_" + p + "_us"] = med([get(r, "load", "gap_us", p) for r in tr])
        e["gap_excess_" + p + "_us"] = med([get(r, "load", "gap_excess_us", p) for r in tr])
    cpu = [(r.get("proxy_cpu_s"), get(r, "load", "tokens")) for r in tr]
    cpu = [c * 1e6 / n for c, n in cpu if c is not None and n]
    if cpu:
        e["proxy_cpu_us_per_token"] = med(cpu)
    cpu = [(r.get("upstream_cpu_s"), get(r, "load", "tokens")) for r in tr]
    cpu = [c * 1e6 / n for c, n in cpu if c is not None and n]
    if cpu:
        e["upstream_cpu_us_per_token"] = med(cpu)
    return e


def report_sse(rows):
    rs = rows_of(rows, "sse")
    out = {}
    if rs:
        out["how"] = ("sse_load (stream mode): N keep-alive connections, one stream:true chat "
                      "request after another; direct = wirepathd with a native backend "
                      "(wirepath serve over shm); via = a second wirepathd (http backend) "
                      "or nginx (proxy_buffering off) in front of it")
        out["pace_us"] = get(rs[0], "load", "pace_us")
        out["tokens_per_stream"] = get(rs[0], "load", "tokens_per_stream")
        out["rounds"] = rs
        for t in targets_in(rs):
            out[t] = sse_entry([r for r in rs if r["target"] == t])
        added = {}
        for t in targets_in(rs):
            if t == "direct":
                continue
            added[t] = {
                "ttft_p50_us": paired(rs, t, lambda r: get(r, "load", "ttft_us", "p50")),
                "ttft_p99_us": paired(rs, t, lambda r: get(r, "load", "ttft_us", "p99")),
                "per_token_p50_us": paired(rs, t,
                                           lambda r: get(r, "load", "gap_excess_us", "p50")),
                "per_token_p99_us": paired(rs, t,
                                           lambda r: get(r, "load", "gap_excess_us", "p99")),
            }
        out["added"] = added
        out["target"] = {"added_ttft_us": TARGET_ADDED_TTFT_US,
                         "added_per_token_us": TARGET_ADDED_TOKEN_US}
        w = added.get("wirepathd", {})
        if w.get("ttft_p50_us") is not None and w.get("per_token_p50_us") is not None:
            out["met"] = {"ttft": w["ttft_p50_us"] <= TARGET_ADDED_TTFT_US,
                          "per_token": w["per_token_p50_us"] <= TARGET_ADDED_TOKEN_US}
    sc = rows_of(rows, "scale")
    if sc:
        levels = []
        for t in targets_in(sc):
            e = sse_entry([r for r in sc if r["target"] == t])
            e["level"] = t
            levels.append(e)
        ok = [lv["streams"] for lv in levels
              if lv["stalled"] == 0 and lv["errors"] == 0 and lv["streams_done"] > 0]
        out["scale"] = {
            "how": "sse_load against direct (wirepathd + native shm backend), all streams "
                   "open at once (started spread over the ramp), one token per pace each",
            "levels": levels, "rounds": sc,
            "sustained_streams": max(ok) if ok else 0,
            "target_streams": TARGET_STREAMS,
            "met": bool(ok) and max(ok) >= TARGET_STREAMS}
    nt = rows_of(rows, "native")
    if nt:
        out["native_paths"] = {"how": "the same stream load against wirepathd with its native "
                                      "backend on shm and on uring (interleaved rounds)",
                               "rounds": nt}
        for t in targets_in(nt):
            out["native_paths"][t] = sse_entry([r for r in nt if r["target"] == t])
    return out or None


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 100:
        return f"{x:.0f}{unit}"
    return f"{x}{unit}"


def verdict(met, key):
    if not met or key not in met:
        return "n/a"
    return "met" if met[key] else "MISSED"


def summary(res):
    L = []
    h = res["host"]
    L.append(f"gateway bench {res['date']} ({'quick' if res['quick'] else 'full'}), "
             f"{h['nproc']} CPUs, load {h['loadavg_start']} -> {h['loadavg_end']}")
    for t, why in res.get("unavailable", {}).items():
        L.append(f"  {t}: unavailable: {why}")
    lat = res.get("latency")
    if lat:
        L.append(f"1. added latency at {res['config']['rate']} req/s "
                 "(open loop, us; p50 / p90 / p99):")
        for t in ("direct", "wirepathd", "nginx"):
            if t in lat:
                e = lat[t]
                L.append(f"   {t:10s} {fmt(e['p50_us'])} / {fmt(e['p90_us'])} / "
                         f"{fmt(e['p99_us'])}   errors {e['errors']}")
        for t, a in lat["added"].items():
            L.append(f"   added {t:10s} {fmt(a['p50_us'])} / {fmt(a['p90_us'])} / "
                     f"{fmt(a['p99_us'])}")
        m = lat.get("met")
        L.append(f"   targets: p50 <= {TARGET_ADDED_P50_US} us {verdict(m, 'p50')}, "
                 f"p99 <= {TARGET_ADDED_P99_US} us {verdict(m, 'p99')}")
    sat = res.get("saturation")
    if sat:
        L.append("2. saturation (wrk, 1 KiB POST): req/s, req/s per proxy core, proxy CPU us/req")
        for t in ("direct", "wirepathd", "nginx"):
            if t in sat:
                e = sat[t]
                L.append(f"   {t:10s} {fmt(e.get('rps'))}  {fmt(e.get('rps_per_proxy_core'))}  "
                         f"{fmt(e.get('proxy_cpu_us_per_req'))}   errors {e['errors']}")
        m = sat.get("met")
        L.append(f"   targets: >= {TARGET_RPS_PER_CORE} req/s per core "
                 f"{verdict(m, 'rps_per_core')}; CPU/req wirepathd/nginx = "
                 f"{fmt(sat.get('cpu_ratio_wirepathd_over_nginx'))} (<= {TARGET_CPU_RATIO}) "
                 f"{verdict(m, 'cpu_ratio')}")
    sse = res.get("sse")
    if sse:
        if "added" in sse:
            L.append(f"3. SSE ({fmt(sse.get('pace_us'))} us pace): TTFT p50/p99, gap excess "
                     "p50/p99 (us)")
            for t in ("direct", "wirepathd", "nginx"):
                if t in sse:
                    e = sse[t]
                    L.append(f"   {t:10s} {fmt(e['ttft_p50_us'])} / {fmt(e['ttft_p99_us'])}   "
                             f"{fmt(e['gap_excess_p50_us'])} / {fmt(e['gap_excess_p99_us'])}   "
                             f"stalled {e['stalled']} errors {e['errors']}")
            for t, a in sse["added"].items():
                L.append(f"   added {t:10s} TTFT {fmt(a['ttft_p50_us'])} / "
                         f"{fmt(a['ttft_p99_us'])}, per token {fmt(a['per_token_p50_us'])} / "
                         f"{fmt(a['per_token_p99_us'])}")
            m = sse.get("met")
            L.append(f"   targets: TTFT <= {TARGET_ADDED_TTFT_US} us {verdict(m, 'ttft')}, "
                     f"per token <= {TARGET_ADDED_TOKEN_US} us {verdict(m, 'per_token')}")
        if "scale" in sse:
            sc = sse["scale"]
            for lv in sc["levels"]:
                L.append(f"   {fmt(lv['streams'])} streams: stalled {lv['stalled']}, errors "
                         f"{lv['errors']}, gap max {fmt(lv['gap_max_us'])} us, "
                         f"{fmt(lv['tokens_per_s'])} tokens/s")
            L.append(f"   sustained without a stall: {sc['sustained_streams']} streams "
                     f"(target {TARGET_STREAMS}: {'met' if sc['met'] else 'MISSED'})")
        if "native_paths" in sse:
            for t in ("shm", "uring"):
                e = sse["native_paths"].get(t)
                if e:
                    L.append(f"   native {t:6s} TTFT p50 {fmt(e['ttft_p50_us'])} us, gap excess "
                             f"p99 {fmt(e['gap_excess_p99_us'])} us, daemon CPU "
                             f"{fmt(e.get('proxy_cpu_us_per_token'))} us/token, errors "
                             f"{e['errors']}")
    L.append("4. DPU placement: TODO (see run.sh)")
    return "\n".join(L)


def report(raw, meta, out):
    rows = []
    if os.path.exists(raw):
        with open(raw) as f:
            rows = [json.loads(x) for x in f if x.strip()]
    with open(meta) as f:
        res = json.load(f)
    for name, fn in (("latency", report_latency), ("saturation", report_saturation),
                     ("sse", report_sse)):
        v = fn(rows)
        if v:
            res[name] = v
    res["dpu"] = {"status": "todo",
                  "why": "needs wirepathd --placement dpu --netns NAME --cpus LIST "
                         "(still being built); see the TODO section of run.sh"}
    text = summary(res)
    res["summary"] = text.splitlines()
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print(text)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "freeport":
        freeport(int(argv[2]))
    elif cmd == "rec":
        rec(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7:])
    elif cmd == "report":
        report(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
