#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ucx path between two network namespaces over a veth pair, as between
# two hosts, with UCX_TLS=tcp (docs/testing.md, "ucx"):
# 1. test_ucx's client in A against its peers in B (10.99.0.1): the lanes UCX
#    selected are on tcp over the veth (WP_UCX_EXPECT=tcp, held by ucx_need
#    under select=require); writes of 8 MiB checked by the peer's checksum
#    and read back byte for byte, as frames against the default peer (tcp's
#    RMA is software: not trusted) and as RMA against the peer with
#    ucx_trust_rma (which also deregisters with writes in flight); a wrong
#    key refused, ucx_need=rdma refused loudly.
# 2. The RPC workload: `wirepath serve --listen ucx://10.99.0.1:P` in B,
#    `wirepath bench --peer ucx://10.99.0.1:P --paths ucx` in A for one
#    second: steps complete, calls fail nowhere.
# Skips (77) only when setup finds root, namespaces, veth or UCX missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
netns_setup "${1:-build}"
T=$(cd "$BUILD" && pwd)/tests/test_ucx
[ -x "$T" ] || skip "$BUILD has no tests/test_ucx"
"$WP" probe | grep -qE '^  path\.ucx +yes' || skip "ucx path not built or UCX unavailable: $("$WP" probe | grep 'path\.ucx ')"

PORT=$((20000 + $$ % 20000))
export UCX_TLS=tcp
# UCX finds its tcp devices in /sys/class/net: `ip netns exec` mounts the
# namespace's own /sys (nsenter --net keeps the host's, where the veth ends
# are not, so UCX would see no device but lo).
ux_a() { ip netns exec "$NS_A" "$@"; }
ux_b() { ip netns exec "$NS_B" "$@"; }

# wait_port NS PORT: until something listens (at most 10 s).
wait_port() {
	for _ in $(seq 100); do
		nsenter --net="/run/netns/$1" ss -ltnH "sport = :$2" | grep -q . && return 0
		sleep 0.1
	done
	fail "nothing listens on port $2 in $1"
}

# UCX lists its devices once, at ucp_init: the veth ends must be up by then.
for _ in $(seq 50); do
	ip -n "$NS_A" link show "$VA" | grep -q LOWER_UP && ip -n "$NS_B" link show "$VB" | grep -q LOWER_UP && break
	sleep 0.1
done

# 1. test_ucx across the namespaces.
# Background processes are started with ip itself, not through ux_b: $!
# is then the process (ip netns exec and env exec it), and kill reaches it.
# The trusting peer is the first one's child (it dies with it).
ip netns exec "$NS_B" env WP_UCX_PEER_ONLY=1 WP_UCX_LISTEN="ucx://10.99.0.1:$PORT" \
	WP_UCX_LISTEN_TRUST="ucx://10.99.0.1:$((PORT + 2))" "$T" --path ucx >"$TMPD/peer.log" 2>&1 &
peer=$!
wait_port "$NS_B" "$PORT"
wait_port "$NS_B" "$((PORT + 2))"
ux_a env WP_UCX_PEER="10.99.0.1:$PORT" WP_UCX_PEER_TRUST="10.99.0.1:$((PORT + 2))" WP_UCX_EXPECT=tcp \
	"$T" --path ucx >"$TMPD/client.log" 2>&1 ||
	{ cat "$TMPD/client.log" "$TMPD/peer.log"; fail "test_ucx across namespaces"; }
grep -q "lanes UCX selected: .*tcp/$VA" "$TMPD/client.log" ||
	{ cat "$TMPD/client.log"; fail "explain does not name tcp over $VA"; }
note "test_ucx across namespaces: $(grep -m1 -o 'lanes UCX selected: [^;]*; [^;]*' "$TMPD/client.log")"
grep '^frames: \|^RMA: ' "$TMPD/client.log"
kill "$peer" 2>/dev/null
wait "$peer" 2>/dev/null

# 2. The bench's RPC workload against a server in B.
P2=$((PORT + 1))
ip netns exec "$NS_B" "$WP" serve --listen "ucx://10.99.0.1:$P2" >"$TMPD/serve.log" 2>&1 &
srv=$!
wait_port "$NS_B" "$P2"
ux_a "$WP" bench --peer "ucx://10.99.0.1:$P2" --paths ucx --duration 1 --warmup 0.2 --agents 2 \
	--json "$TMPD/b.json" --quiet >"$TMPD/bench.log" 2>&1 ||
	{ cat "$TMPD/bench.log" "$TMPD/serve.log"; fail "wirepath bench --peer ucx://"; }
python3 - "$TMPD/b.json" <<'EOF' || { cat "$TMPD/bench.log"; fail "bench results"; }
import json, sys
d = json.load(open(sys.argv[1]))
r = [p for p in d["results"] if p["path"] == "ucx"][0]
assert r["ok"] and r["client"]["calls_failed"] == 0, r
assert r.get("steps", 0) > 0, r
print("bench over ucx across namespaces: %d steps, %.0f steps/s" % (r["steps"], r["steps_per_s"]))
EOF
kill "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
note "ok"
