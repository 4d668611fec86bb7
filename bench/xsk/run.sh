#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Small RPCs between two network namespaces joined by a veth pair: the xsk
# path, a kernel UDP echo (recvmmsg/sendmmsg), uring and tcp (EXTRA_MODES
# adds more: udp_spin, the UDP echo polling up to 50 us before it blocks);
# 64 B and
# 1 KiB, one call in flight (RTT) and 32 in flight (throughput). Then one-way
# receive: 64-byte datagrams blasted at a kernel UDP socket and at the xsk
# path (rx_udp, rx_xsk). REPS rounds, the modes interleaved within each, so
# a load that comes and goes touches every mode alike; one JSON line per run
# (build/xsk_cost), then bench/xsk/summary.py's table of medians. Root; run
# it under flock /work/bench.lock.
#   bench/xsk/run.sh [BUILD] [SECS] [REPS]
set -eu
BUILD=${1:-build}
SECS=${2:-1}
REPS=${3:-3}
B=$(cd "$BUILD" && pwd)/xsk_cost
HERE=$(cd "$(dirname "$0")" && pwd)
id=$$
S=wpbs$id C=wpbc$id
OUT=$(mktemp)
cleanup() {
	ip netns del "$S" 2>/dev/null
	ip netns del "$C" 2>/dev/null
	rm -f "$OUT"
}
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
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
run() { nsenter --net="/run/netns/$C" "$B" --srv-ns "/run/netns/$S" --srv 10.97.0.1 "$@" | tee -a "$OUT"; }
for rep in $(seq "$REPS"); do
	for inflight in 1 32; do
		for size in 64 1024; do
			for mode in xsk udp uring tcp ${EXTRA_MODES:-}; do
				run --mode "$mode" --size "$size" --secs "$SECS" --inflight "$inflight"
			done
		done
	done
	for mode in rx_xsk rx_udp; do
		run --mode "$mode" --secs "$SECS"
	done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$HERE/summary.py" <"$OUT"
