#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The xsk path between two network namespaces joined by a veth pair (two
# rx queues per end, so one AF_XDP socket per queue), with --path xsk:
# test_xsk (peer death, 1e5 checksummed calls, fan-out 64, injected loss /
# reordering / duplication, XDP counters vs the path's), test_xsk_auth,
# test_xsk_hostile (replays, half-open sessions, malformed packets, a
# blocked receiver), test_rpc, test_ownership and test_stream (10^5 messages). The harness
# listens in the server's namespace and connects from the client's
# (tests/integ/harness.h). WP_XSK_SUITES picks others. Every name is unique to this
# run and removed on exit. Skips (77) only when root, ip, nsenter,
# namespaces, veth or AF_XDP are missing.
set -u
BUILD=${1:-build}
T=$(cd "$BUILD" && pwd)/tests
skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v nsenter >/dev/null || skip "no nsenter (util-linux)"
[ -x "$T/test_rpc" ] && [ -x "$T/test_xsk" ] || skip "$BUILD has no test_rpc or test_xsk"

id=$$
NS_S="wpxs$id" NS_C="wpxc$id" VS="wpxs$id" VC="wpxc$id"
cleanup() {
	ip netns del "$NS_S" 2>/dev/null
	ip netns del "$NS_C" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$NS_S" 2>/dev/null || skip "cannot create network namespaces"
ip netns add "$NS_C" || skip "cannot create network namespaces"
ip link add "$VC" netns "$NS_C" numtxqueues 2 numrxqueues 2 type veth peer name "$VS" \
	netns "$NS_S" numtxqueues 2 numrxqueues 2 2>/dev/null || skip "cannot create a veth pair"
s() { nsenter --net="/run/netns/$NS_S" "$@"; }
c() { nsenter --net="/run/netns/$NS_C" "$@"; }
s ip addr add 10.98.0.1/24 dev "$VS"
c ip addr add 10.98.0.2/24 dev "$VC"
s ip link set lo up
c ip link set lo up
s ip link set "$VS" up
c ip link set "$VC" up

# a veth with more rx queues than the path binds (8): its set-up fails
# after the program is attached (test_xsk_auth: nothing may stay behind)
if s ip link add "wpxq$id" numrxqueues 9 numtxqueues 9 type veth peer name "wpxr$id" 2>/dev/null; then
	s ip addr add 10.97.0.1/24 dev "wpxq$id"
	s ip link set "wpxq$id" up
	s ip link set "wpxr$id" up
	export WP_TEST_XSK_BADQ=10.97.0.1
fi

export WP_TEST_XSK_NS=/run/netns/$NS_S WP_TEST_XSK_SRV=10.98.0.1 WP_TEST_XSK_CLI=10.98.0.2 \
	WP_TEST_XSK_NOHOST=10.98.0.77
# Once the probe says AF_XDP works here, a test that skips (77: its listen
# or connect failed) is a failure, not a skip.
xdp_ok=
"$(cd "$BUILD" && pwd)/wirepath" probe 2>/dev/null | grep -q '^ *path.af_xdp *yes' && xdp_ok=1

rc=0
for t in ${WP_XSK_SUITES:-test_xsk test_xsk_auth test_xsk_hostile test_rpc test_ownership test_stream}; do
	[ -x "$T/$t" ] || continue
	t0=$(date +%s%N)
	out=$(c timeout 120 "$T/$t" --path xsk 2>&1)
	r=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	case $r in
	0) echo "PASS $t[xsk] ${ms} ms"; [ -n "${WP_XSK_VERBOSE:-}" ] && echo "$out" ;;
	77)
		if [ -n "$xdp_ok" ]; then
			echo "FAIL $t[xsk] skipped, but the probe says AF_XDP works: $(echo "$out" | tail -n 1)"
			rc=1
		else
			echo "SKIP $t[xsk]: $(echo "$out" | tail -n 1)"
			[ "$t" = test_xsk ] && skip "$out"
		fi
		;;
	*) echo "FAIL $t[xsk] rc=$r"; echo "$out" | tail -n 30; rc=1 ;;
	esac
done
exit $rc
