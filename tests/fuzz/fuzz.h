/* SPDX-License-Identifier: MIT */
/*
 * What a fuzz target (tests/fuzz/fuzz_NAME.c) and the replay driver
 * (tests/fuzz/replay.c) share. A target is built two ways from the same
 * source: with clang -fsanitize=fuzzer (ASan + UBSan) as BUILD/fuzz/.../fuzz_NAME
 * for coverage-guided runs (tests/fuzz/run.sh), and with the project's
 * compiler into test_fuzz_NAME, which replays the corpus and deterministic
 * mutations of it on every `make test`. So a target uses no libFuzzer-only
 * API, keeps per-input work small (no per-input set-up that dominates, no
 * printing) and reports a broken invariant with FUZZ_CHECK (abort: libFuzzer
 * keeps the input, the replay driver saves it).
 *
 * How to add a target: docs/testing.md, "Fuzzing".
 */
#ifndef WP_FUZZ_H
#define WP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef WP_FUZZ_NAME
#define WP_FUZZ_NAME "fuzz" /* set by tests/meson.build */
#endif

/* The libFuzzer entry point every target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Optional: a structure-aware mutation the replay driver applies to a share
 * of its inputs besides its generic ones (libFuzzer does not call it; it has
 * its own mutators and the target's dictionary). Mutate buf[0..len) in place,
 * never beyond cap bytes, drawing randomness only from rnd() so replays are
 * deterministic, and return the new length. A target that has nothing
 * structure-specific to add does not define it.
 */
size_t wp_fuzz_mutate(uint8_t *buf, size_t len, size_t cap, uint64_t (*rnd)(void));

#define FUZZ_CHECK(cond)                                                                        \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "fuzz_%s: %s:%d: invariant failed: %s\n", WP_FUZZ_NAME, \
				__FILE__, __LINE__, #cond);                                     \
			abort();                                                                \
		}                                                                               \
	} while (0)

#endif
