# SPDX-License-Identifier: MIT
# Thin wrapper over meson/ninja. `make demo` and `make test` install what they
# need (scripts/deps.sh), so both work on a fresh Debian 12 machine.
BUILD ?= build
ASAN_BUILD ?= build-asan
DEMO_ARGS ?=

.PHONY: all deps demo test test-asan fuzz fuzz-long soak driver format clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

deps:
	@bash scripts/deps.sh

# The real-stack bench (bench/stacks/run.py): a conventional nginx stack,
# wirepathd and the native paths, open loop, side by side; about a minute.
# DEMO_ARGS=--full for the whole workload and a long sweep, --closed-loop for
# the native paths' closed-loop maximum throughput (wirepath bench).
demo: deps
	@$(MAKE) --no-print-directory all
	python3 bench/stacks/run.py --build $(BUILD) --json results/latest.json --svg results/latest.svg $(DEMO_ARGS)

test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run.sh $(BUILD)

# The libFuzzer smoke runs once, in `make test`: its targets are clang builds
# with ASan + UBSan already, the same binaries here (3 min saved in CI).
test-asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(ASAN_BUILD)
	@WP_NO_FUZZ=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		bash tests/run.sh $(ASAN_BUILD)

# libFuzzer on every target (tests/fuzz/run.sh; docs/testing.md, "Fuzzing"):
# `make fuzz` for FUZZ_SECS each; `make fuzz-long` until FUZZ_LONG_RUNS
# executions each (issue 12: at least 10 M), FUZZ_JOBS targets at a time.
# Both end with the table docs/performance.md records.
FUZZ_SECS ?= 60
FUZZ_LONG_RUNS ?= 10000000
FUZZ_JOBS ?= 1
fuzz: deps
	@bash tests/fuzz/run.sh -j $(FUZZ_JOBS) $(BUILD) $(FUZZ_SECS)

fuzz-long: deps
	@FUZZ_RUNS=$(FUZZ_LONG_RUNS) bash tests/fuzz/run.sh -j $(FUZZ_JOBS) $(BUILD) 0

# The soak (docs/soak.md): SOAK_SECS (default 1800) of agentic load over
# tcp, uring and shm at once with faults injected; the verdict (0 acknowledged
# calls lost or corrupted, RSS and fds flat) and a JSON record in SOAK_OUT.
# Not part of `make test` (which runs a 20-second smoke of it).
SOAK_SECS ?= 1800
SOAK_OUT ?= results/soak-$(shell date -u +%Y%m%dT%H%M%SZ).json
SOAK_ARGS ?=
soak: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/wirepath soak --secs $(SOAK_SECS) --out $(SOAK_OUT) $(SOAK_ARGS)

# The edu PCI DMA driver (kernel/edu, docs/kernel.md), built with kbuild
# against Debian's 6.1 headers (linux-headers-amd64) into $(BUILD)/kernel-edu.
driver: deps
	$(MAKE) -C kernel/edu OUT=$(abspath $(BUILD))/kernel-edu

# Kernel style (.clang-format) over the C sources and headers git tracks, so
# build directories and generated files (BPF skeletons, vmlinux.h) are never
# touched; src/gpu/kitchen.cu is CUDA C++ and left alone. Not part of the
# build or the tests: install clang-format (Debian 12: 14) yourself.
CLANG_FORMAT ?= clang-format
format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "make format: $(CLANG_FORMAT) not found (apt-get install clang-format)"; exit 1; }
	@git ls-files -z -- '*.c' '*.h' | xargs -0 -r $(CLANG_FORMAT) -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
