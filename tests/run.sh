#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the whole suite against a build directory and end with the line
# "N passed, N failed, N skipped". Exit status: 0 iff nothing failed.
# Each test is one binary: exit 0 pass, 77 skip, anything else fail.
# tests/integ/* run once per path (a source may narrow that with a line
# "wp-test-paths: tcp uring" when what it tests exists only on those paths).
# Every test runs under a timeout.
set -u
BUILD=${1:-build}
TIMEOUT=${WP_TEST_TIMEOUT:-180}
PATHS=${WP_TEST_PATHS:-tcp uring shm mem rdma ucx}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

pass=0 fail=0 skip=0
failed=()
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

run_one() {
	local label=$1; shift
	local log="$logdir/${label//[^A-Za-z0-9_.-]/_}.log"
	local t0 rc ms dt
	t0=$(date +%s%N)
	timeout --kill-after=10 "$TIMEOUT" "$@" >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	dt=$(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)))
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS  %-34s %6ss\n' "$label" "$dt" ;;
	77) skip=$((skip + 1)); printf 'SKIP  %-34s %s\n' "$label" "$(tail -n 1 "$log")" ;;
	*) fail=$((fail + 1)); failed+=("$label")
	   [ $rc -eq 124 ] && echo "(timed out after ${TIMEOUT}s)" >>"$log"
	   printf 'FAIL  %-34s rc=%d, log %s\n' "$label" "$rc" "$log"
	   tail -n 20 "$log" | sed 's/^/      | /' ;;
	esac
}

for t in "$BUILD"/tests/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	case " $(ls "$top/tests/integ" | sed 's/\.c$//' | tr '\n' ' ') " in
	*" $name "*)
		only=$(sed -n 's/.*wp-test-paths: *\([a-z ]*\).*/\1/p' "$top/tests/integ/$name.c" | head -n 1)
		for p in $PATHS; do
			case " ${only:-$PATHS} " in *" $p "*) run_one "$name[$p]" "$t" --path "$p" ;; esac
		done ;;
	*) run_one "$name" "$t" ;;
	esac
done

# The rpc suite over tcp with every payload that is not staged sent with
# MSG_ZEROCOPY (the threshold at its lowest, zc_always): nothing may regress
# with zero copy forced on (docs/paths.md, "MSG_ZEROCOPY").
case " $PATHS " in
*" tcp "*)
	for n in test_rpc test_xfer test_ownership test_peerdeath test_close_queued; do
		[ -x "$BUILD/tests/$n" ] || continue
		run_one "$n[tcp,zc>=513]" env WP_TEST_ZC_THRESHOLD=513 "$BUILD/tests/$n" --path tcp
	done ;;
esac

# io_uring zero-copy receive for real, where some queue registers (77 with
# the probe's reasons elsewhere, as here).
case " $PATHS " in
*" uring "*) run_one "uring_zcrx(RECV_ZC)" bash tests/uring_zcrx.sh "$BUILD" ;;
esac

# The shm path under valgrind (shared rings, forked peers, a hostile peer):
# test_shm with fewer messages, and test_rpc over shm. The wrapper skips (77,
# with the reason) when valgrind is missing, when the build is sanitized
# (valgrind cannot run ASan binaries: make test-asan) or with WP_NO_VALGRIND.
vg_wrap='t=$1
[ -z "${WP_NO_VALGRIND:-}" ] || { echo "WP_NO_VALGRIND is set"; exit 77; }
command -v valgrind >/dev/null || { echo "valgrind not installed (scripts/deps.sh installs it)"; exit 77; }
[ -x "$t" ] || { echo "$t not built"; exit 77; }
if grep -qa -e __asan_init -e __tsan_init "$t"; then echo "sanitized build: valgrind cannot run it"; exit 77; fi
exec valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite "$@"'
case " $PATHS " in
*" shm "*)
	run_one "valgrind:test_shm[shm]" env WP_SHM_N=20000 bash -c "$vg_wrap" vg "$BUILD/tests/test_shm" --path shm
	run_one "valgrind:test_rpc[shm]" bash -c "$vg_wrap" vg "$BUILD/tests/test_rpc" --path shm ;;
esac

# A short coverage-guided run of every fuzz target (libFuzzer, clang). The
# clang build comes first, on its own with three times the timeout: a cold
# one is a whole sanitized library, slow on a busy machine. The corpora are
# replayed without clang above, by the test_fuzz_* binaries.
if [ -z "${WP_NO_FUZZ:-}" ]; then
	TIMEOUT=$((TIMEOUT * 3)) run_one "fuzz_build(clang)" bash tests/fuzz/run.sh --build-only "$BUILD" 0
	for f in tests/fuzz/fuzz_*.c; do
		n=${f#tests/fuzz/fuzz_}
		n=${n%.c}
		run_one "fuzz_$n(libFuzzer,5s)" bash tests/fuzz/run.sh "$BUILD" 5 "$n"
	done
fi

# The network-namespace tests (each makes and removes its own namespaces
# and veth pair; 77 without root, netns, veth or XDP).
for t in tests/netns/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue
	run_one "netns/$(basename "$t" .sh)" bash "$t" "$BUILD"
done

# The VM tests (tests/vm/run.sh boots Debian's 6.1 kernel under qemu TCG):
# the edu DMA driver (kernel/edu) in one boot; 77 without qemu, the 6.1
# kernel or its headers.
run_one "vm/edu" bash tests/vm/edu.sh "$BUILD"
# The rdma path on soft-RoCE (rdma_rxe over the guest's virtio NIC): test_rdma
# and the RPC suite over rdma:// in one boot; 77 without qemu, the kernel, the
# rdma path (not built) or the rxe provider. Twice the timeout: one boot runs
# the rpc suite (500 MB through soft-RoCE under TCG), the rdma test and the
# auth suite over rdma, and a sanitized build on a busy host needs it;
# rdma.sh nests its own timeouts inside (WP_TEST_TIMEOUT) and reports a hang.
TIMEOUT=$((TIMEOUT * 2)) run_one "vm/rdma" env WP_TEST_TIMEOUT=$((TIMEOUT * 2)) bash tests/vm/rdma.sh "$BUILD"

# The export list: headers' WP_API, src/libwirepath.map and nm -D agree.
# wirepathd (docs/daemon.md): curl, the official clients, hostile traffic,
# reloads, TLS; each starts its own `wirepath serve` and wirepathd.
for t in tests/daemon/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue
	run_one "daemon/$(basename "$t" .sh)" bash "$t" "$BUILD"
done

run_one "exports" bash tests/check_exports.sh "$BUILD"

# CLI smoke: probe and a short bench on every path.
run_one "cli_probe" "$BUILD/wirepath" probe --json
run_one "cli_bench_smoke" bash tests/cli_smoke.sh "$BUILD"
# The real-stack bench (make demo): every stack on a short run, and its CPU
# accounting against /proc.
run_one "stacks_smoke" bash tests/stacks_smoke.sh "$BUILD"
# The soak's smoke: 20 s of every path at once with faults (make soak: 30 min).
run_one "soak_smoke(20s)" bash tests/soak_smoke.sh "$BUILD"

if [ ${#failed[@]} -gt 0 ]; then
	echo "failed: ${failed[*]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
