#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CLI smoke test: `wirepath probe` (text and JSON), a one-second bench over
# tcp and uring whose JSON must parse and show steps on every available path,
# and the usage-error contract (bad flags exit 2 with one line; a missing
# workload file fails with a message). Usage: tests/cli_smoke.sh BUILD
# Exit 0 pass, 1 fail, 77 skip (only when BUILD has no wirepath binary).
set -u
BUILD=${1:-build}
WP="$BUILD/wirepath"
[ -x "$WP" ] || { echo "skip: $WP is not built"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wirepath-smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

# Run "$@" expecting exit status $1 (or "nonzero"); stderr must say something.
expect_status() {
	local want=$1; shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ "$want" = nonzero ]; then
		[ $rc -ne 0 ] || fail "'$*' exited 0, expected a failure"
	else
		[ $rc -eq "$want" ] || { cat "$tmp/err"; fail "'$*' exited $rc, expected $want"; }
	fi
	[ -s "$tmp/err" ] || fail "'$*' failed without a message on stderr"
	echo "ok: '$*' -> $rc: $(head -n 1 "$tmp/err")"
}

# --- probe ---------------------------------------------------------------
"$WP" probe >"$tmp/probe.txt" || fail "wirepath probe exited $?"
grep -qE '^  tcp +yes' "$tmp/probe.txt" || { cat "$tmp/probe.txt"; fail "probe does not list tcp as available"; }
"$WP" probe --json >"$tmp/probe.json" || fail "wirepath probe --json exited $?"
python3 -m json.tool "$tmp/probe.json" >/dev/null || fail "probe --json is not valid JSON"
python3 - "$tmp/probe.json" <<'EOF' || fail "probe --json lacks fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["probes"], "no probes"
for p in d["probes"]:
    for k in ("name", "ok", "err", "detail"):
        assert k in p, f"probe without {k}: {p}"
    # a refusal is a real attempt's errno, named, and the reason in words
    assert p["ok"] or (p["err"] and p["errno"] and p["detail"]), \
        f"probe {p['name']} says no without an errno and a reason: {p}"
names = {p["name"] for p in d["probes"]}
# the mechanisms issue 15 names: each probed for real, not a fixed string
ok = {p["name"] for p in d["probes"] if p["ok"]}
want = ["tcp.msg_zerocopy", "gpu.gpudirect"]
if "path.xsk" in names:
    want.append("path.af_xdp")
if "uring" in ok:
    want += ["uring.send_zc", "uring.zcrx.lo", "uring.zcrx.nodev"]
for w in want:
    assert w in names, f"no {w} probe"
EOF
echo "ok: probe, probe --json"

# --- help and version ----------------------------------------------------
"$WP" help >/dev/null || fail "wirepath help exited $?"
"$WP" --help >/dev/null || fail "wirepath --help exited $?"
"$WP" bench --help | grep -q -- '--paths' || fail "bench --help does not document --paths"
"$WP" serve --help | grep -q -- '--listen' || fail "serve --help does not document --listen"
"$WP" version | grep -q '^wirepath ' || fail "wirepath version prints no version"

# --- bench ---------------------------------------------------------------
"$WP" bench --paths tcp,uring,shm --duration 1 --warmup 0.3 --agents 2 \
	--json "$tmp/x.json" --quiet >"$tmp/bench.out" 2>"$tmp/bench.err"
rc=$?
cat "$tmp/bench.out"
[ $rc -eq 0 ] || { cat "$tmp/bench.err"; fail "bench exited $rc"; }
python3 -m json.tool "$tmp/x.json" >/dev/null || fail "bench JSON does not parse"
python3 - "$tmp/x.json" <<'EOF' || fail "bench JSON is incomplete"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["host"]["probes"] and d["host"]["cpus"] >= 1 and d["host"]["kernel"]
assert d["workload"]["name"] == "agentic"
res = {r["path"]: r for r in d["results"]}
assert set(res) == {"tcp", "uring", "shm"}, res.keys()
assert res["tcp"]["available"], "tcp unavailable"
for name, r in res.items():
    if not r["available"]:
        print(f"{name}: unavailable: {r['reason']}")
        assert r["reason"]
        continue
    assert r["ok"], f"{name}: {r.get('error')}"
    assert r["steps_per_s"] > 0, f"{name}: steps_per_s {r['steps_per_s']}"
    assert r["cpu_us_per_step"] > 0
    # shm makes no syscalls while busy: zero per step is its point.
    assert r["syscalls_per_step"] > 0 or name == "shm"
    assert r["syscalls_source"] in ("kernel", "library")
    assert r["lib_syscalls_per_step"] > 0 or name == "shm"
    t = r["tool_rtt_us"]
    assert 0 < t["p50"] <= t["p90"] <= t["p99"] <= t["p999"], t
    assert r["explain"]["client"] and r["explain"]["server"]
    assert r["client"] and r["server"]
    print(f"{name}: {r['steps_per_s']:.0f} steps/s, {r['cpu_us_per_step']:.1f} CPU us/step, "
          f"{r['syscalls_per_step']:.1f} syscalls/step ({r['syscalls_source']})")
x = d["crossover"]
assert x["model_steps_per_s"] > 0 and x["best"] in res
for p in x["paths"]:
    assert p["bound"] in ("host", "model") and p["host_steps_per_core"] > 0
EOF
[ -s "$tmp/x.dat" ] || fail "no .dat table next to the JSON"
head -n 1 "$tmp/x.dat" | grep -q '^# path steps_per_s' || fail ".dat has no header"
echo "ok: bench tcp,uring,shm"

# --- bench --workload kv -------------------------------------------------
"$WP" bench --workload kv --paths tcp,shm --duration 0.1 --json "$tmp/kv.json" --quiet \
	>"$tmp/kv.out" 2>"$tmp/kv.err"
rc=$?
cat "$tmp/kv.out"
[ $rc -eq 0 ] || { cat "$tmp/kv.err"; fail "bench --workload kv exited $rc"; }
python3 - "$tmp/kv.json" <<'EOF' || fail "kv JSON is incomplete"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["workload"] == "kv"
rows = d["results"]
for path in ("tcp", "shm"):
    mine = [r for r in rows if r["path"] == path]
    assert [r["size"] for r in mine] == [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20], mine
    for r in mine:
        assert r["gb_per_s"] > 0 and r["cpu_s_per_gb"] > 0 and r["copied_bytes_per_byte"] >= 0, r
assert all(r["mapped"] for r in rows if r["path"] == "shm")
EOF
echo "ok: bench kv"

# --- the kitchen: the model stub on the GPU, or a clear refusal ------------
if "$WP" probe --json | python3 -c 'import json,sys; p={x["name"]: x for x in json.load(sys.stdin)["probes"]}; sys.exit(0 if p.get("gpu.cuda", {}).get("ok") else 1)'; then
	"$WP" bench --paths tcp --kitchen cuda --duration 0.3 --warmup 0.1 --quiet \
		--json "$tmp/kitchen.json" >"$tmp/kitchen.out" 2>&1 ||
		{ cat "$tmp/kitchen.out"; fail "bench --kitchen cuda failed on a host with a GPU"; }
	echo "ok: kitchen cuda (GPU present)"
else
	expect_status 1 "$WP" serve --listen tcp://127.0.0.1:0 --kitchen cuda
	grep -q -- "--kitchen sim" "$tmp/err" || fail "serve --kitchen cuda without a GPU does not say what to do: $(cat "$tmp/err")"
	echo "ok: kitchen cuda refused without a GPU: $(tail -n 1 "$tmp/err")"
fi
expect_status 2 "$WP" serve --listen tcp://127.0.0.1:0 --kitchen gpu
expect_status 2 "$WP" bench --kitchen cuda --peer tcp://127.0.0.1:1

# --- policy hash-key: the api_key line's value (docs/policy.md) ------------
out=$(printf 'test\n' | "$WP" policy hash-key) || fail "policy hash-key exited $?"
[ "$out" = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" ] ||
	fail "policy hash-key printed '$out', not SHA-256(test)"
printf 'default drop\ntenant a id 1 key 00112233445566778899aabbccddeeff\n  api_key %s\n' "$out" >"$tmp/gw.rules"
"$WP" policy check "$tmp/gw.rules" >/dev/null || fail "a hash-key digest does not check as an api_key"
expect_status 1 bash -c "printf '' | '$WP' policy hash-key"
echo "ok: policy hash-key"

# --- usage errors --------------------------------------------------------
expect_status 2 "$WP" bench --no-such-flag
expect_status 2 "$WP" bench --duration abc
expect_status 2 "$WP" bench --paths tcp,bogus
expect_status 2 "$WP" bench --agents
expect_status 2 "$WP" serve
expect_status 2 "$WP" probe --bogus
expect_status 2 "$WP" no-such-command
expect_status nonzero "$WP" bench --workload /nonexistent --duration 0.1 --warmup 0 --json "$tmp/never.json"
grep -q /nonexistent "$tmp/err" || fail "the missing workload file is not named in the message"
[ ! -e "$tmp/never.json" ] || fail "a failed bench wrote results"

echo "cli smoke: all passed"
exit 0
