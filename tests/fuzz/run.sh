#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Coverage-guided fuzzing of the frame decoder and receive parser with
# libFuzzer: build tests/fuzz/fuzz_frame.c with clang (ASan + UBSan) into
# BUILD/fuzz/, run it for SECONDS on a copy of tests/fuzz/corpus in a temp
# dir (the repo is never written), and fail with the crash file's path if it
# finds one.
#
# Usage: tests/fuzz/run.sh BUILD SECONDS
# Exit: 0 clean run, 1 crash (input kept under BUILD/fuzz/) or build error,
#       77 clang or the libFuzzer runtime missing (setup, not the code).
# Env: CLANG (default clang), FUZZ_ARGS (extra libFuzzer flags).
set -u
BUILD=${1:?usage: tests/fuzz/run.sh BUILD SECONDS}
SECS=${2:?usage: tests/fuzz/run.sh BUILD SECONDS}
CLANG=${CLANG:-clang}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "skip: $CLANG not found; install clang (Debian: apt-get install clang)"
	exit 77
fi

mkdir -p "$BUILD/fuzz" || exit 1
out=$(cd "$BUILD/fuzz" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wp-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# Setup probe: can this clang link a libFuzzer binary at all?
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$tmp/probe.c"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" \
	>"$tmp/probe.log" 2>&1; then
	echo "skip: $CLANG cannot link -fsanitize=fuzzer (libFuzzer or sanitizer runtime missing;" \
		"Debian: apt-get install libclang-rt-$("$CLANG" -dumpversion | cut -d. -f1)-dev):" \
		"$(head -n 1 "$tmp/probe.log")"
	exit 77
fi

# From here on a failure is the code's: frame.c and rx.c need only the public
# header for enum values, so they build standalone.
bin="$out/fuzz_frame"
if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	-Iinclude -Isrc src/core/frame.c src/core/rx.c tests/fuzz/fuzz_frame.c -o "$bin"; then
	echo "FAIL: building $bin"
	exit 1
fi

mkdir "$tmp/corpus" && cp tests/fuzz/corpus/* "$tmp/corpus/" || exit 1
# Crash, leak, timeout and OOM inputs land in BUILD/fuzz/ (artifact_prefix),
# new corpus entries only in the temp copy.
log="$out/fuzz_frame.log"
# FUZZ_ARGS is a list of flags: split on purpose.
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
"$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	-print_final_stats=1 -artifact_prefix="$out/" ${FUZZ_ARGS:-} "$tmp/corpus" >"$log" 2>&1
rc=$? # libFuzzer's own failure status is 77 (-error_exitcode): never pass it on

# One summary line: executions, speed, coverage.
stats=$(awk -F: '/^stat::number_of_executed_units:/ { gsub(/ /, "", $4); printf "%s execs, ", $4 }
	/^stat::average_exec_per_sec:/ { gsub(/ /, "", $4); printf "%s exec/s, ", $4 }
	/^stat::peak_rss_mb:/ { gsub(/ /, "", $4); printf "peak rss %s MB, ", $4 }' "$log")
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
ninputs=$(find "$tmp/corpus" -type f | wc -l)
echo "fuzz_frame: up to ${SECS}s, ${stats}${cov:-no coverage line}, corpus $ninputs inputs," \
	"log $log"

crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
	grep -E 'ERROR|invariant failed|runtime error' "$log" | head -n 5
	if [ -n "$crash" ]; then
		echo "FAIL: fuzzer found a crash; input kept at $crash (reproduce: $bin $crash)"
	else
		echo "FAIL: fuzzer exited with status $rc; see $log"
	fi
	exit 1
fi
exit 0
