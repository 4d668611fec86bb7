#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Good clients under hostile load (issue 12, docs/limits.md): one `wirepath
# serve` with its default limits (or the flags given after --), the agentic
# bench against it twice in one run, first alone, then with N hostile
# connections open (bench/hostile/hostile.py: partial maximum-size frames,
# slowloris, idle, each re-opened when the server closes it), and the good
# clients' tool calls/s under attack as a ratio of the baseline. Issue 12
# asks for at least 0.80. Writes both bench results, the attackers' counts
# and the server's meter to JSON.
#
#   bench/hostile/run.sh [--path tcp|uring] [--hostile N] [--duration S]
#                        [--build DIR] [--json FILE] [-- SERVE_FLAGS...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

path=tcp
hostile=64
duration=10
build=build
json=results/hostile.json
usage() {
	echo "usage: bench/hostile/run.sh [--path tcp|uring (default tcp)] [--hostile N (default 64)]"
	echo "                            [--duration S (default 10, per run)] [--build DIR (default build)]"
	echo "                            [--json FILE (default results/hostile.json)] [-- SERVE_FLAGS...]"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--path) path=${2:?--path needs tcp or uring}; shift 2 ;;
	--hostile) hostile=${2:?--hostile needs a count}; shift 2 ;;
	--duration) duration=${2:?--duration needs seconds}; shift 2 ;;
	--build) build=${2:?--build needs a directory}; shift 2 ;;
	--json) json=${2:?--json needs a file}; shift 2 ;;
	--) shift; break ;;
	-h|--help) usage; exit 0 ;;
	*) echo "hostile: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case "$path" in tcp|uring) ;; *) echo "hostile: --path takes tcp or uring" >&2; exit 2 ;; esac
wp="$build/wirepath"
[ -x "$wp" ] || { echo "hostile: $wp is not built (make)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wirepath-hostile.XXXXXX")
srv_pid="" atk_pid=""
cleanup() {
	[ -n "$atk_pid" ] && kill "$atk_pid" 2>/dev/null || true
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

"$wp" serve --listen "$path://127.0.0.1:0" --select require --port-file "$tmp/port" "$@" \
	>"$tmp/serve.out" 2>"$tmp/serve.err" &
srv_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { cat "$tmp/serve.err" >&2; echo "hostile: the server did not start" >&2; exit 1; }
port=$(cat "$tmp/port")
peer="$path://127.0.0.1:$port"

bench() { # $1: the JSON file
	"$wp" bench --peer "$peer" --paths "$path" --duration "$duration" --warmup 1 --quiet \
		--json "$1" >/dev/null
}
echo "hostile: baseline, $duration s against $peer"
bench "$tmp/base.json"
echo "hostile: $hostile hostile connections, then the same again"
python3 "$here/hostile.py" 127.0.0.1 "$port" "$hostile" >"$tmp/attack.out" &
atk_pid=$!
sleep 1
bench "$tmp/attack.json"
kill -TERM "$atk_pid"
wait "$atk_pid" || true
atk_pid=""
kill -TERM "$srv_pid"
wait "$srv_pid" || true
srv_pid=""

mkdir -p "$(dirname "$json")"
python3 - "$tmp" "$json" "$path" "$hostile" "$duration" <<'PY'
import json, sys
tmp, out, path, n, dur = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def calls(f):
    r = json.load(open(f))["results"][0]
    return r, r["steps_per_s"] * r["tool_calls_per_step"]
base, b = calls(tmp + "/base.json")
att, a = calls(tmp + "/attack.json")
meter = None
for line in open(tmp + "/serve.out"):
    if line.startswith("meter: {"):
        meter = json.loads(line[7:])
attackers = json.loads(open(tmp + "/attack.out").read() or "{}")
res = {"path": path, "hostile": n, "duration_s": dur,
       "tool_calls_per_s": {"baseline": b, "under_attack": a},
       "ratio": a / b if b else None, "goal": 0.80,
       "attackers": attackers, "server_meter": meter,
       "baseline": base, "under_attack": att}
json.dump(res, open(out, "w"), indent=1)
lim = {k: meter[k] for k in ("rx_budget_pauses", "rx_partial_shed", "timeouts_frame",
       "timeouts_idle", "timeouts_handshake", "refused_ctx", "accept_pauses")} if meter else {}
print("hostile: %s, %d hostile connections: good tool calls/s %.0f alone, %.0f under attack: "
      "ratio %.2f (goal >= 0.80)" % (path, n, b, a, a / b if b else float("nan")))
print("hostile: attackers %s" % json.dumps(attackers))
print("hostile: server limits %s" % json.dumps(lim))
print("hostile: wrote %s" % out)
PY
