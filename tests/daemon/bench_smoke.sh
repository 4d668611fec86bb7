#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The gateway benchmark's smoke test (make test): bench/gateway/run.sh
# --quick (every scenario about 5 s at tiny sizes: direct, via wirepathd,
# via nginx; SSE through both; a few streams at once; native shm vs uring)
# must finish, and its JSON must hold every figure docs/performance.md
# reports, with every request answered (no errors). It does not judge the
# figures: a loaded test machine is no place for that.
# Skips (77) only when nginx or wrk is missing (scripts/deps.sh installs them)
# or the build has no wirepathd (as the other tests/daemon scripts).
set -u
BUILD=${1:?usage: $0 BUILD}
top=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
for t in nginx wrk python3; do
	command -v "$t" >/dev/null || { echo "$t not installed (scripts/deps.sh installs it)"; exit 77; }
done
# as tests/daemon/lib.sh: a build without the daemon has nothing to measure
[ -x "$BUILD/wirepathd" ] || { echo "wirepathd not built"; exit 77; }
out=$(mktemp -d /tmp/wpd-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT

timeout --kill-after=5 100 bash "$top/bench/gateway/run.sh" --quick --build "$BUILD" \
	--json "$out/gateway.json" || { echo "FAIL: bench/gateway/run.sh --quick exited $?"; exit 1; }

python3 - "$out/gateway.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = []

def need(path, positive=False):
    d = r
    for p in path.split("."):
        if not isinstance(d, dict) or p not in d:
            bad.append(f"missing {path}")
            return None
        d = d[p]
    if d is None:
        bad.append(f"{path} is null")
    elif positive and not d > 0:
        bad.append(f"{path} = {d}, expected > 0")
    return d

for t in ("direct", "wirepathd", "nginx"):
    for f in ("p50_us", "p90_us", "p99_us"):
        need(f"latency.{t}.{f}", positive=True)
    if need(f"latency.{t}.errors") not in (0, None):
        bad.append(f"latency.{t}: {r['latency'][t]['errors']} errors")
    need(f"saturation.{t}.rps", positive=True)
    if need(f"saturation.{t}.errors") not in (0, None):
        bad.append(f"saturation.{t}: {r['saturation'][t]['errors']} errors")
    for f in ("ttft_p50_us", "ttft_p99_us", "gap_p50_us", "gap_excess_p50_us",
              "gap_excess_p99_us", "gap_max_us"):
        need(f"sse.{t}.{f}")
    need(f"sse.{t}.streams_done", positive=True)
    need(f"sse.{t}.stalled")
    if need(f"sse.{t}.errors") not in (0, None):
        bad.append(f"sse.{t}: {r['sse'][t]['errors']} errors")
for t in ("wirepathd", "nginx"):
    for f in ("p50_us", "p90_us", "p99_us"):
        need(f"latency.added.{t}.{f}")
    need(f"latency.{t}.proxy_cpu_us_per_req", positive=True)
    need(f"saturation.{t}.rps_per_proxy_core", positive=True)
    need(f"saturation.{t}.proxy_cpu_us_per_req", positive=True)
    for f in ("ttft_p50_us", "ttft_p99_us", "per_token_p50_us", "per_token_p99_us"):
        need(f"sse.added.{t}.{f}")
need("saturation.cpu_ratio_wirepathd_over_nginx", positive=True)
need("latency.met.p50"); need("latency.met.p99")
need("saturation.met.rps_per_core"); need("saturation.met.cpu_ratio")
need("sse.met.ttft"); need("sse.met.per_token")
need("sse.scale.sustained_streams"); need("sse.scale.met")
for lv in r.get("sse", {}).get("scale", {}).get("levels", []):
    if lv.get("errors"):
        bad.append(f"sse.scale {lv.get('level')} streams: {lv['errors']} errors")
    if not lv.get("streams_done"):
        bad.append(f"sse.scale {lv.get('level')} streams: none finished")
paths = ["shm"] + (["uring"] if r.get("config", {}).get("uring") else [])
for p in paths:
    need(f"sse.native_paths.{p}.ttft_p50_us", positive=True)
    need(f"sse.native_paths.{p}.streams_done", positive=True)
    if need(f"sse.native_paths.{p}.errors") not in (0, None):
        bad.append(f"sse.native_paths.{p}: errors")
need("dpu.status")
need("host.loadavg_start")
if bad:
    print("FAIL: gateway.json:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("ok: gateway.json has every figure, and no request failed")
PY
