#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# MSG_ZEROCOPY against plain sends on the tcp path, per payload size, on
# loopback and across a veth pair between two network namespaces this script
# creates and removes (zcA 10.77.0.1 -> zcB 10.77.0.2). Needs root for the
# namespaces; without them it says so and runs loopback only. One JSON row
# per size and mode (bench/zc_cost.c says what is measured).
#
# Usage: bench/zc/run.sh [BUILD] [SECS]    (default build, 0.5 s per row)
# Run it under `flock /work/bench.lock` on a shared machine.
set -u
BUILD=${1:-build}
SECS=${2:-0.5}
BIN="$BUILD/zc_cost"
[ -x "$BIN" ] || { echo "$BIN not built (ninja -C $BUILD)" >&2; exit 2; }

echo "# loopback (the kernel copies every zero-copy send here)"
nice -n 0 "$BIN" --secs "$SECS"

A=zcA.$$ B=zcB.$$
cleanup() { ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; }
trap cleanup EXIT
if ! ip netns add "$A" 2>/dev/null || ! ip netns add "$B" 2>/dev/null; then
	echo "# veth: skipped (cannot create network namespaces: not root?)"
	exit 0
fi
if ! ip link add zca type veth peer name zcb 2>/dev/null; then
	echo "# veth: skipped (cannot create a veth pair)"
	exit 0
fi
ip link set zca netns "$A" && ip link set zcb netns "$B" &&
	ip -n "$A" addr add 10.77.0.1/24 dev zca && ip -n "$B" addr add 10.77.0.2/24 dev zcb &&
	ip -n "$A" link set zca up && ip -n "$B" link set zcb up &&
	ip -n "$A" link set lo up && ip -n "$B" link set lo up || { echo "# veth: setup failed"; exit 1; }
echo "# veth between two namespaces (the kernel copies here too: veth has no DMA)"
"$BIN" --ns "$A,$B" --addr 10.77.0.2 --secs "$SECS"
