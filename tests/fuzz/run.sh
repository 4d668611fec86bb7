#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Coverage-guided fuzzing of every target (tests/fuzz/fuzz_NAME.c) with
# libFuzzer. Configures a clang build of the library and the targets
# (ASan + UBSan, -fsanitize=fuzzer; meson -Dfuzz=true) in BUILD/fuzz/build,
# builds the targets asked for, and runs each on its corpus:
# BUILD/fuzz/NAME/corpus (what earlier runs found; new finds land there)
# plus the repository's corpus (tests/fuzz/corpus-NAME, frame:
# tests/fuzz/corpus; only read), with its dictionary tests/fuzz/NAME.dict if
# there is one and the flags on its source's "wp-fuzz-args:" line.
# Crash, leak, timeout and OOM inputs are kept under BUILD/fuzz/NAME/.
# Ends with a table (target, executions, seconds, exec/s, coverage, corpus,
# crashes) for docs/performance.md.
#
# Usage: tests/fuzz/run.sh [-j N] [--build-only] BUILD SECONDS [TARGET...]
#   SECONDS  per target; 0 = no time limit (then set FUZZ_RUNS)
#   TARGET   frame, rules, ... (default: every tests/fuzz/fuzz_*.c)
#   -j N     run N targets at a time (default 1; each uses one core)
#   --build-only  configure and build, run nothing (tests/run.sh gives a
#            cold clang build its own, longer timeout)
# Env: FUZZ_RUNS (stop each target after this many executions: -runs=),
#      FUZZ_ARGS (more libFuzzer flags), CLANG (default clang),
#      FUZZ_NICE (default 10: fuzzing yields to everything else).
# Exit: 0 every target ran clean; 1 a crash (its input kept, the command to
#       reproduce it printed) or a build error; 77 clang or the libFuzzer
#       runtime is missing (setup, not the code).
set -u
JOBS=1
BUILD_ONLY=
while :; do
	case ${1:-} in
	-j) JOBS=${2:?-j needs a number}; shift 2 ;;
	--build-only) BUILD_ONLY=1; shift ;;
	*) break ;;
	esac
done
BUILD=${1:?usage: tests/fuzz/run.sh [-j N] BUILD SECONDS [TARGET...]}
SECS=${2:?usage: tests/fuzz/run.sh [-j N] BUILD SECONDS [TARGET...]}
shift 2
CLANG=${CLANG:-clang}
RUNS=${FUZZ_RUNS:--1}
NICE=${FUZZ_NICE:-10}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1

if [ "$SECS" = 0 ] && [ "$RUNS" = -1 ] && [ -z "$BUILD_ONLY" ]; then
	echo "FAIL: SECONDS is 0 (no time limit) and FUZZ_RUNS is unset: the run would never end"
	exit 1
fi
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "skip: $CLANG not found; install clang (Debian: apt-get install clang)"
	exit 77
fi

mkdir -p "$BUILD/fuzz" || exit 1
out=$(cd "$BUILD/fuzz" && pwd)
fb="$out/build"
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

# Targets: those named, or every tests/fuzz/fuzz_*.c.
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		n=${f#tests/fuzz/fuzz_}
		targets+=("${n%.c}")
	done
fi
for t in "${targets[@]}"; do
	[ -f "tests/fuzz/fuzz_$t.c" ] || { echo "FAIL: no target tests/fuzz/fuzz_$t.c"; exit 1; }
done

# The clang build: the whole library instrumented for coverage
# (fuzzer-no-link), so a target may call anything in it; only the targets
# are linked with libFuzzer's main. CUDA stays out (nvcc is not clang).
if [ ! -f "$fb/build.ninja" ]; then
	echo "fuzz: configuring the clang build in $fb"
	if ! CC="$CLANG" nice -n "$NICE" meson setup "$fb" -Dfuzz=true -Dcuda=disabled \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
		>"$out/setup.log" 2>&1; then
		tail -n 20 "$out/setup.log"
		echo "FAIL: meson setup of the clang fuzz build (log $out/setup.log)"
		rm -rf "$fb"
		exit 1
	fi
fi
ninja_targets=()
for t in "${targets[@]}"; do
	ninja_targets+=("tests/fuzz_$t")
done
if ! nice -n "$NICE" ninja -C "$fb" -j "${FUZZ_BUILD_JOBS:-2}" "${ninja_targets[@]}" \
	>"$out/build.log" 2>&1; then
	grep -E "error|unknown target" "$out/build.log" | head -n 20
	grep -q "unknown target" "$out/build.log" &&
		echo "(a target needs its line in tests/meson.build's fuzz_targets)"
	echo "FAIL: building the fuzz targets (log $out/build.log)"
	exit 1
fi
if [ -n "$BUILD_ONLY" ]; then
	echo "fuzz: built ${ninja_targets[*]} in $fb"
	exit 0
fi

corpus_of() {
	case $1 in
	frame) echo tests/fuzz/corpus ;; # another helper's script writes it there
	*) echo "tests/fuzz/corpus-$1" ;;
	esac
}

# Run one target; write its table row to $out/$1/result.
run_target() {
	local t=$1 bin="$fb/tests/fuzz_$1" dir="$out/$1" seeds args log t0 t1 rc
	local execs eps cov corp crash ncrash secs
	seeds=$(corpus_of "$t")
	log="$dir/fuzz.log"
	mkdir -p "$dir/corpus"
	rm -f "$dir/result"
	if [ ! -d "$seeds" ]; then
		echo "FAIL: fuzz_$t has no corpus directory $seeds (a few small seeds: docs/testing.md)"
		echo "| $t | - | - | - | - | - | no corpus $seeds |" >"$dir/result"
		return 1
	fi
	args=$(sed -n 's/.*wp-fuzz-args: *//p' "tests/fuzz/fuzz_$t.c" | head -n 1)
	[ -f "tests/fuzz/$t.dict" ] && args="$args -dict=tests/fuzz/$t.dict"
	t0=$(date +%s%N)
	# The flag lists split on purpose.
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	nice -n "$NICE" "$bin" -max_total_time="$SECS" -runs="$RUNS" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" \
		$args ${FUZZ_ARGS:-} "$dir/corpus" "$seeds" >"$log" 2>&1
	rc=$? # libFuzzer's own failure status is 77 (-error_exitcode): never pass it on
	t1=$(date +%s%N)
	secs=$(((t1 - t0) / 1000000000))
	execs=$(awk -F: '/^stat::number_of_executed_units:/ { gsub(/ /, "", $4); print $4 }' "$log")
	eps=$(awk -F: '/^stat::average_exec_per_sec:/ { gsub(/ /, "", $4); print $4 }' "$log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 "/" $4 }')
	corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 }')
	crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
	ncrash=$(sed -n 's/.*Test unit written to //p' "$log" | wc -l)
	if [ "$rc" -ne 0 ] && [ "$ncrash" -eq 0 ]; then
		ncrash="exit $rc"
	fi
	echo "| $t | ${execs:-?} | $secs | ${eps:-?} | ${cov:-?} | ${corp:-?} | $ncrash |" >"$dir/result"
	echo "fuzz_$t: ${execs:-?} execs in ${secs}s, ${eps:-?} exec/s, cov/ft ${cov:-?}," \
		"corpus ${corp:-?}, log $log"
	if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
		grep -E 'ERROR|invariant failed|runtime error' "$log" | head -n 5
		if [ -n "$crash" ]; then
			echo "FAIL: fuzz_$t found a crash; input kept at $crash" \
				"(reproduce: $bin $crash, or $BUILD/tests/test_fuzz_$t $crash)"
		else
			echo "FAIL: fuzz_$t exited with status $rc; see $log"
		fi
		return 1
	fi
	return 0
}

fail=0
running=0
for t in "${targets[@]}"; do
	if [ "$JOBS" -le 1 ]; then
		run_target "$t" || fail=1
		continue
	fi
	run_target "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n || fail=1
		running=$((running - 1))
	fi
done
while [ "$running" -gt 0 ]; do
	wait -n || fail=1
	running=$((running - 1))
done

echo
echo "| target | executions | seconds | exec/s | cov/ft | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in "${targets[@]}"; do
	cat "$out/$t/result" 2>/dev/null || echo "| $t | - | - | - | - | - | did not run |"
done
exit "$fail"
