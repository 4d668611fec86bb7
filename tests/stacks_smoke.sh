#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real-stack bench (bench/stacks/run.py, `make demo`) on a short run:
# 1. every stack (conventional, mesh, wirepathd, tcp, uring, shm) at one low
#    rate: the JSON carries every stack and every rate point, and every
#    measured step completed with no error (the SLO verdict is reported, not
#    asserted: this machine is shared);
# 2. the CPU accounting: on a point that burns enough CPU to be measured
#    (conventional at a higher rate), the figure (cgroup, else perf
#    task-clock) agrees with the sum of the tree's /proc/PID/stat times within
#    10 %, and perf's task-clock agrees too where the kernel counts it;
# 3. wp_agents and wp_treemeter refuse bad arguments with status 2.
# Skips (77) only when setup finds nginx or python3 missing.
set -u
BUILD=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1
fail() {
	echo "FAIL: $*"
	exit 1
}
command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }
command -v nginx >/dev/null || { echo "nginx missing (scripts/deps.sh installs nginx-light)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 3. Bad arguments.
for args in "--mode bogus --target x" "--mode http --target tcp://x" "--rate abc --target x" \
	"--mode http" "--no-such-flag 1 --target x"; do
	# shellcheck disable=SC2086
	"$BUILD/wp_agents" $args >/dev/null 2>&1
	[ $? -eq 2 ] || fail "wp_agents $args: want status 2"
done
"$BUILD/wp_treemeter" --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "wp_treemeter --bogus: want status 2"
echo "ok: bad arguments refused"

# 1. Every stack, one rate point.
python3 bench/stacks/run.py --build "$BUILD" --mesh --rates 20 --warmup 1 --duration 1.5 --grace 6 \
	--json "$tmp/all.json" --svg "$tmp/all.svg" >"$tmp/all.out" 2>&1
rc=$?
cat "$tmp/all.out"
[ $rc -eq 0 ] || fail "run.py exited $rc"
python3 - "$tmp/all.json" <<'EOF' || fail "the JSON is incomplete or a stack failed"
import json, sys
d = json.load(open(sys.argv[1]))
want = ["conventional", "mesh", "wirepathd", "tcp", "uring", "shm"]
assert d["stacks"] == want, d["stacks"]
for s in want:
    r = d["results"][s]
    if r["unavailable"]:
        print("unavailable: %s: %s" % (s, r["unavailable"]))
        assert s == "uring", "only uring may be unavailable here"
        continue
    assert [p["rate"] for p in r["points"]] == d["rates"], (s, r["points"])
    for p in r["points"]:
        assert p["steps"] > 0, (s, p)
        assert p["steps_done"] == p["steps"], (s, "steps not all done", p)
        assert sum(p["errors"].values()) == 0, (s, p["errors"], p.get("first_error"))
        assert p["cores"] > 0 and p["cpu_us_per_step"] > 0, (s, p)
        assert p["token_gap_us"]["n"] > 0 and p["tool_us"]["n"] > 0, (s, p)
        print("ok: %s at %g steps/s: %d steps, %.3f cores, SLO %s" % (s, p["rate"], p["steps"], p["cores"], p["slo_ok"]))
assert "verdict" in d or all(not d["results"][s]["knee"] for s in want)
print("ok: JSON has every stack and rate point")
EOF
[ -s "$tmp/all.svg" ] || fail "no chart written"
grep -q "<svg" "$tmp/all.svg" || fail "the chart is not an SVG"

# 1b. --tls: the HTTP stacks behind TLS 1.3 at the edge, every step done.
if command -v openssl >/dev/null; then
	python3 bench/stacks/run.py --build "$BUILD" --stacks conventional,wirepathd --tls --rates 10 --grace 6 \
		--warmup 0.5 --duration 1 --json "$tmp/tls.json" >"$tmp/tls.out" 2>&1 ||
		{ cat "$tmp/tls.out"; fail "run.py --tls failed"; }
	python3 - "$tmp/tls.json" <<'EOF' || fail "--tls: steps failed"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tls_edge"] is True
for s in ("conventional", "wirepathd"):
    p = d["results"][s]["points"][0]
    assert p["steps"] > 0 and p["steps_done"] == p["steps"] and sum(p["errors"].values()) == 0, (s, p)
print("ok: --tls: conventional and wirepathd, every step done over TLS")
EOF
fi

# 2. CPU accounting, on a point with enough CPU to measure (>= 0.3 s).
python3 bench/stacks/run.py --build "$BUILD" --stacks conventional --rates 150 --warmup 1 --duration 3 \
	--slo-token-ms 1000 --slo-tool-ms 1000 --json "$tmp/cpu.json" >"$tmp/cpu.out" 2>&1
rc=$?
cat "$tmp/cpu.out"
[ $rc -eq 0 ] || fail "run.py (accounting) exited $rc"
python3 - "$tmp/cpu.json" <<'EOF' || fail "CPU accounting disagrees with /proc"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["results"]["conventional"]["points"][0]
c = p["cpu_check"]
print("CPU over the window: figure %.3f s (%s), /proc sum %.3f s, perf task-clock %s s, cgroup %s s"
      % (c["primary_s"], p["cpu_source"], c["proc_s"], c["perf_s"], c["cgroup_s"]))
assert c["proc_s"] >= 0.3, "too little CPU to check (%.3f s)" % c["proc_s"]
for k in ("primary_s", "perf_s", "cgroup_s"):
    if c[k] is not None:
        r = c[k] / c["proc_s"]
        assert 0.9 <= r <= 1.1, "%s / proc = %.3f" % (k, r)
print("ok: the CPU figure agrees with /proc/PID/stat within 10 %")
EOF
echo PASS
