#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Coverage-guided fuzzing of the front door's rules parser and decision
# function (tests/fuzz/fuzz_rules.c) with libFuzzer: built with clang (ASan +
# UBSan) into BUILD/fuzz/, run for SECONDS on a temp copy of
# tests/fuzz/corpus-rules (the repo is never written).
#
# Usage: tests/fuzz/run_rules.sh BUILD SECONDS
# Exit: 0 clean run, 1 crash (input kept under BUILD/fuzz/) or build error,
#       77 clang or the libFuzzer runtime missing (setup, not the code).
set -u
BUILD=${1:?usage: tests/fuzz/run_rules.sh BUILD SECONDS}
SECS=${2:?usage: tests/fuzz/run_rules.sh BUILD SECONDS}
CLANG=${CLANG:-clang}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

command -v "$CLANG" >/dev/null 2>&1 || { echo "skip: $CLANG not found; apt-get install clang"; exit 77; }
mkdir -p "$BUILD/fuzz" || exit 1
out=$(cd "$BUILD/fuzz" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wp-fuzz-rules.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$tmp/probe.c"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
	echo "skip: $CLANG cannot link -fsanitize=fuzzer (Debian: apt-get install libclang-rt-$("$CLANG" -dumpversion | cut -d. -f1)-dev)"
	exit 77
fi

# The policy sources need only the public headers: xdp.c builds its
# "not built" stubs without WP_HAVE_XDP_POLICY, so no libbpf here.
bin="$out/fuzz_rules"
if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	-Iinclude -Isrc -Isrc/policy src/policy/rules.c src/policy/compile.c src/policy/stats.c \
	src/policy/twin.c src/policy/xdp.c src/core/log.c tests/fuzz/fuzz_rules.c -o "$bin"; then
	echo "FAIL: building $bin"
	exit 1
fi

mkdir "$tmp/corpus" && cp tests/fuzz/corpus-rules/* "$tmp/corpus/" || exit 1
log="$out/fuzz_rules.log"
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
"$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
	-print_final_stats=1 -artifact_prefix="$out/" ${FUZZ_ARGS:-} "$tmp/corpus" >"$log" 2>&1
rc=$?
execs=$(awk -F: '/^stat::number_of_executed_units:/ { gsub(/ /, "", $4); print $4 }' "$log")
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
echo "fuzz_rules: up to ${SECS}s, ${execs:-?} execs, ${cov:-no coverage line}, log $log"
crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
	grep -E 'ERROR|invariant failed|runtime error' "$log" | head -n 5
	echo "FAIL: fuzz_rules exited $rc${crash:+; input kept at $crash (reproduce: $bin $crash)}"
	exit 1
fi
exit 0
