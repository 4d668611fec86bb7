#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The rdma path in a VM on soft-RoCE: boot the 6.1 kernel under qemu TCG with
# a virtio NIC (tests/vm/run.sh --nic), load rdma_rxe (crc32_generic first:
# without it rxe cannot attach; udp_tunnel, ip6_udp_tunnel, ib_core come as
# its dependencies), ib_uverbs and rdma_ucm, and run tests/vm/rdma_guest.sh:
# rxe0 on eth0, wirepath probe, test_rdma and the RPC integration suite over
# rdma://, client and server in the guest. One boot. Passes only if the
# guest's script passed.
#   tests/vm/rdma.sh BUILD [full|bench]
# Skips (77) only when setup finds qemu, the 6.1 kernel, busybox, the rdma
# path (not built: no libibverbs-dev / librdmacm-dev) or the rxe provider
# (ibverbs-providers) missing.
set -u
BUILD=${1:-build}
shift || true
top=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$BUILD" && pwd)

bash "$top/tests/vm/run.sh" --check-only --nic || exit $?
[ -x "$B/tests/test_rdma" ] && [ -x "$B/wirepath" ] || { echo "skip: $BUILD has no test_rdma or wirepath"; exit 77; }
"$B/wirepath" probe | grep -q 'path.rdma.*not built' &&
	{ echo "skip: the rdma path is not built ($("$B/wirepath" probe | grep path.rdma))"; exit 77; }
prov=$(ls /usr/lib/*/libibverbs/librxe-rdmav*.so 2>/dev/null | head -n 1)
[ -n "$prov" ] && [ -r /etc/libibverbs.d/rxe.driver ] ||
	{ echo "skip: no rxe provider (apt-get install ibverbs-providers)"; exit 77; }

files=(--lib "$prov" --lib /etc/libibverbs.d/rxe.driver --file "$B/wirepath")
for t in test_rdma test_rpc test_xfer test_stream test_ownership test_embed \
	test_policy_auth test_xfer_auth; do
	[ -x "$B/tests/$t" ] && files+=(--file "$B/tests/$t")
done
command -v rdma >/dev/null && files+=(--file "$(command -v rdma)")
if [ "${1:-}" = bench ]; then
	for p in ib_send_lat ib_write_bw; do
		command -v $p >/dev/null || { echo "bench: $p missing (apt-get install perftest)"; exit 1; }
		files+=(--file "$(command -v $p)")
	done
fi
out=$B/vm-rdma
mkdir -p "$out"
# Timeouts nest, each inside the one above, so a hang is reported by the
# innermost with its log, never killed silently from outside: tests/run.sh
# kills this script after WP_TEST_TIMEOUT (180 s); qemu is killed 20 s before
# that (building the initramfs and printing the log take the rest); the guest
# gives its tests what is left of qemu's time less 25 s (boot, rxe, the
# probe, the kernel log) and kills a test that outlives it (SIGTERM: the test
# prints nothing more, the script prints its log and "timed out").
tmo=$((${WP_TEST_TIMEOUT:-180} - 20))
[ "${1:-}" = "" ] || tmo=480
[ $tmo -ge 60 ] || { echo "rdma.sh: WP_TEST_TIMEOUT ${WP_TEST_TIMEOUT:-} leaves the VM under 60 s"; exit 1; }
bash "$top/tests/vm/run.sh" --nic --smp 2 --mem 1024 --timeout $tmo \
	--load crc32_generic --load rdma_rxe --load ib_uverbs --load rdma_ucm \
	"${files[@]}" --log "$out/console.log" "$top/tests/vm/rdma_guest.sh" $((tmo - 25)) "$@"
rc=$?
grep -v -e '^\[ *[0-9]' -e '^[A-Z0-9]*=' -e 'SeaBIOS\|Booting from\|iPXE\|Press Ctrl-B' "$out/console.log" |
	tr -d '\r' | grep -v '^$' | head -n 120
echo "console log: $out/console.log"
exit $rc
