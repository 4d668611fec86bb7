#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Small RPCs between two network namespaces joined by a veth pair: the xsk
# path, a kernel UDP echo (recvmmsg/sendmmsg), uring and tcp; 64 B-1 KiB,
# one call in flight (RTT) and 32 in flight (throughput). One JSON line per
# run (build/xsk_cost). Root; run it under flock /work/bench.lock.
#   bench/xsk/run.sh [BUILD] [SECS]
set -eu
BUILD=${1:-build}
SECS=${2:-2}
B=$(cd "$BUILD" && pwd)/xsk_cost
id=$$
S=wpbs$id C=wpbc$id
cleanup() { ip netns del "$S" 2>/dev/null; ip netns del "$C" 2>/dev/null; }
trap cleanup EXIT
ip netns add "$S"
ip netns add "$C"
ip link add "$C" netns "$C" type veth peer name "$S" netns "$S"
nsenter --net="/run/netns/$S" ip addr add 10.97.0.1/24 dev "$S"
nsenter --net="/run/netns/$C" ip addr add 10.97.0.2/24 dev "$C"
for n in "$S" "$C"; do
	nsenter --net="/run/netns/$n" ip link set lo up
	nsenter --net="/run/netns/$n" ip link set "$n" up
done
for inflight in 1 32; do
	for size in 64 1024; do
		for mode in xsk udp uring tcp; do
			nsenter --net="/run/netns/$C" "$B" --srv-ns "/run/netns/$S" --srv 10.97.0.1 \
				--mode "$mode" --size "$size" --secs "$SECS" --inflight "$inflight"
		done
	done
done
