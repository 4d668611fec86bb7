// SPDX-License-Identifier: MIT
/*
 * The shm path's adaptive spin policy (src/transport/shm/shm.h,
 * shm_spin_learn): a fresh context spins; a run of idle gaps longer than
 * the budget (paced tokens, tool service times) turns spinning off within a
 * few gaps; a run of short gaps (a closed loop, a burst) turns it back on;
 * mixed traffic spins while at least half of the recent gaps were short;
 * the estimate stays within [0, 1] whatever the sequence.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "transport/shm/shm.h"

static int fails;

#define CHECK(c)                                                                \
	do {                                                                    \
		if (!(c)) {                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
			fails++;                                                \
		}                                                               \
	} while (0)

int main(void)
{
	const uint64_t spin = 50000; /* 50 us, the default */
	uint32_t h = SHM_SPIN_ONE;
	int n;

	CHECK(shm_spin_wanted(h));
	/* Paced: 25 ms gaps. Off within 8 gaps. */
	for (n = 0; shm_spin_wanted(h) && n < 100; n++)
		shm_spin_learn(&h, 25000000, spin);
	CHECK(n <= 8);
	CHECK(!shm_spin_wanted(h));
	/* Many more long gaps: stays off, never below 0. */
	for (int i = 0; i < 1000; i++)
		shm_spin_learn(&h, 1000000000ull, spin);
	CHECK(!shm_spin_wanted(h));
	CHECK(h < SHM_SPIN_ONE / 16);
	/* A closed loop: 2 us gaps. Back on within 8 gaps. */
	for (n = 0; !shm_spin_wanted(h) && n < 100; n++)
		shm_spin_learn(&h, 2000, spin);
	CHECK(n <= 8);
	for (int i = 0; i < 1000; i++)
		shm_spin_learn(&h, 2000, spin);
	CHECK(h <= SHM_SPIN_ONE && h > SHM_SPIN_ONE - SHM_SPIN_ONE / 16);
	/* Exactly at the budget counts as short. */
	h = 0;
	for (int i = 0; i < 50; i++)
		shm_spin_learn(&h, spin, spin);
	CHECK(shm_spin_wanted(h));
	/* Mixed: 3 short, 1 long -> spins; 1 short, 3 long -> does not. */
	h = SHM_SPIN_ONE;
	for (int i = 0; i < 400; i++)
		shm_spin_learn(&h, i % 4 == 3 ? 10000000 : 1000, spin);
	CHECK(shm_spin_wanted(h));
	for (int i = 0; i < 400; i++)
		shm_spin_learn(&h, i % 4 == 3 ? 1000 : 10000000, spin);
	CHECK(!shm_spin_wanted(h));
	if (fails)
		return 1;
	printf("ok: adaptive spin policy\n");
	return 0;
}
