#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The edu driver (kernel/edu, docs/kernel.md) in a VM: build the module with
# kbuild against Debian's 6.1 headers, build edu_test, boot the 6.1 kernel
# under qemu TCG with -device edu and instruction counting (tests/vm/run.sh
# --icount: the card's 100 ms DMA timer costs no real time), and run
# tests/vm/edu_guest.sh there: one boot for every check. Passes only if the
# guest's script passed.
#   tests/vm/edu.sh BUILD [PAIRS THREADS PER_THREAD BENCH_N]
# Skips (77) only when setup finds qemu, the 6.1 kernel or its headers, or
# busybox missing; a module that fails to build is a failure.
set -u
BUILD=${1:-build}
shift || true
top=$(cd "$(dirname "$0")/../.." && pwd)
# The issue's 10^4 transfers: 5000 write/read pairs; with -icount they cost
# little real time (docs/kernel.md, docs/performance.md).
PAIRS=${1:-${EDU_PAIRS:-5000}} THREADS=${2:-${EDU_THREADS:-4}} PER=${3:-${EDU_PER:-100}}
BENCH=${4:-${EDU_BENCH:-200}}

bash "$top/tests/vm/run.sh" --check-only --device edu || exit $?
kdir=$(ls -d /lib/modules/6.1.*/build 2>/dev/null | sort -V | tail -n 1)
[ -n "$kdir" ] && [ -e "$kdir/Makefile" ] ||
	{ echo "skip: no 6.1 kernel headers (apt-get install linux-headers-amd64)"; exit 77; }
command -v make >/dev/null && command -v cc >/dev/null || { echo "skip: no make or cc"; exit 77; }

out=$(cd "$BUILD" && pwd)/vm-edu
mkdir -p "$out"
echo "== build kernel/edu against $kdir"
make -s -C "$top/kernel/edu" KDIR="$kdir" OUT="$out/ko" 2>&1 | grep -v "Skipping BTF" ||
	true
[ -f "$out/ko/edu.ko" ] && [ "$out/ko/edu.ko" -nt "$top/kernel/edu/edu.c" ] ||
	{ echo "FAIL: the module did not build"; exit 1; }
cc -O2 -g -Wall -Wextra -Werror -pthread -o "$out/edu_test" "$top/tests/vm/edu_test.c" ||
	{ echo "FAIL: edu_test did not build"; exit 1; }

# wirepath probe in the guest reports the card and the driver (dma.edu).
wp=""
[ -x "$BUILD/wirepath" ] && wp="--file $(cd "$BUILD" && pwd)/wirepath"
echo "== boot with -device edu: $PAIRS pairs, $THREADS x $PER concurrent, bench $BENCH"
bash "$top/tests/vm/run.sh" --icount --device edu --mem 256 --timeout 150 \
	--file "$out/ko/edu.ko" --file "$out/edu_test" $wp --log "$out/console.log" \
	"$top/tests/vm/edu_guest.sh" "$PAIRS" "$THREADS" "$PER" "$BENCH"
rc=$?
# The guest's own lines (the kernel's are in $out/console.log too).
grep -v -e '^\[ *[0-9]' -e '^[A-Z0-9]*=' -e 'SeaBIOS\|Booting from' "$out/console.log" | tr -d '\r' |
	grep -v '^$' | head -n 80
echo "console log: $out/console.log"
exit $rc
