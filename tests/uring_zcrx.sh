#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# io_uring zero-copy receive for real: where some registration succeeds
# (`wirepath probe`: uring.zcrx.nodev, the device-less copy mode of newer
# kernels, or queue 0 of an interface whose driver has the queue API), the
# uring path's suites run with every connection receiving by RECV_ZC
# (WP_TEST_URING_ZCRX, tests/integ/harness.h): test_uring_zcrx (RECV_ZC
# counted in explain, every chunk given back), test_rpc, test_stream and
# test_ownership. Traffic stays on loopback: the kernel copies it into the
# area (its copy fallback), so this checks the path, not the NIC's DMA.
# Skips (77) at setup where nothing registers, with the probe's reasons
# (here: EOPNOTSUPP on lo, veth, virtio_net; EINVAL for device-less mode
# before the kernel had it).
set -u
BUILD=${1:-build}
WP=$BUILD/wirepath
T=$BUILD/tests
[ -x "$WP" ] && [ -x "$T/test_uring_zcrx" ] || { echo "$BUILD has no wirepath or test_uring_zcrx"; exit 77; }
probe=$("$WP" probe | grep -E '^  uring\.zcrx\.')
spec=$(printf '%s\n' "$probe" | awk '$2 == "yes" { sub(/^uring\.zcrx\./, "", $1); print $1; exit }')
if [ -z "$spec" ]; then
	printf '%s\n' "$probe"
	echo "no interface queue or mode registers for io_uring zero-copy receive here (see above)"
	exit 77
fi
[ "$spec" = nodev ] || spec="$spec:0"
echo "RECV_ZC with uring_zcrx=$spec"
rc=0
for t in test_uring_zcrx test_rpc test_stream test_ownership; do
	if WP_TEST_URING_ZCRX=$spec "$T/$t" --path uring >"$BUILD/test-logs/uring_zcrx_$t.log" 2>&1; then
		echo "PASS $t (uring, RECV_ZC)"
	else
		echo "FAIL $t (uring, RECV_ZC): $BUILD/test-logs/uring_zcrx_$t.log"
		tail -n 20 "$BUILD/test-logs/uring_zcrx_$t.log"
		rc=1
	fi
done
exit $rc
