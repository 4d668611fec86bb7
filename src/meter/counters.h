/* SPDX-License-Identifier: MIT */
/*
 * Always-on meter counters, internal side. Each thread owns one counter block
 * (a struct wp_meter_snap used as plain counters); only the owning thread
 * writes it, so an increment is a plain load + add + store with relaxed
 * atomic semantics (no lock prefix). wp_meter_snapshot() reads every block
 * with relaxed loads and adds the totals of threads that have exited.
 */
#ifndef WP_COUNTERS_H
#define WP_COUNTERS_H

#include "wirepath/wirepath.h"

extern __thread struct wp_meter_snap *wp_tls_cnt;
struct wp_meter_snap *wp_counters_attach(void);

static inline struct wp_meter_snap *wp_cnt(void)
{
	struct wp_meter_snap *c = wp_tls_cnt;

	if (__builtin_expect(c == NULL, 0))
		c = wp_counters_attach();
	return c;
}

/* Single writer per block: relaxed store is enough; readers pair with the
 * relaxed loads in wp_meter_snapshot() and tolerate a stale value. */
#define WP_CNT_ADD(field, n)                                                               \
	do {                                                                               \
		struct wp_meter_snap *c_ = wp_cnt();                                       \
		__atomic_store_n(&c_->field, c_->field + (uint64_t)(n), __ATOMIC_RELAXED); \
	} while (0)

#define WP_SYSCALL(kind) WP_CNT_ADD(syscalls[kind], 1)

#endif
