/* SPDX-License-Identifier: MIT */
/*
 * Versioned options structs, as libbpf's OPTS_VALID / OPTS_GET. Every
 * public *_opts struct starts with `size_t sz`: the size of the struct the
 * caller was compiled against. A struct may then grow at its end without
 * breaking a caller built against an older or newer header:
 * - older caller (sz smaller than this library's struct): a field that ends
 *   beyond sz was never set by it and takes its default (WP_OPTS_GET), so
 *   sz 0 means all defaults;
 * - newer caller (sz larger): accepted only if every byte past the last
 *   field this library knows is zero, i.e. the fields it cannot honour are
 *   at their defaults (WP_OPTS_VALID); otherwise the call fails with -EINVAL
 *   rather than silently ignore a request.
 * Consumers read every field through WP_OPTS_GET, never directly, and
 * name their struct's last field in WP_OPTS_VALID (padding after it counts
 * as unknown bytes, as in libbpf: *_opts_init zeroes it).
 */
#ifndef WP_OPTS_H
#define WP_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define wp_offsetofend(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Bytes [known, sz) of opts are all zero. */
static inline bool wp_opts_tail_zero(const void *opts, size_t known, size_t sz)
{
	const uint8_t *p = opts;

	for (size_t i = known; i < sz; i++)
		if (p[i])
			return false;
	return true;
}

/* opts NULL, or nothing set past `last`, the last field this library knows. */
#define WP_OPTS_VALID(opts, last)                                              \
	(!(opts) || (opts)->sz <= wp_offsetofend(__typeof__(*(opts)), last) || \
	 wp_opts_tail_zero((opts), wp_offsetofend(__typeof__(*(opts)), last), (opts)->sz))

/* The caller's struct reaches to the end of field. */
#define WP_OPTS_HAS(opts, field) \
	((opts) && (opts)->sz >= wp_offsetofend(__typeof__(*(opts)), field))

/* The caller's field, or fallback when its struct is too old to have it. */
#define WP_OPTS_GET(opts, field, fallback) (WP_OPTS_HAS(opts, field) ? (opts)->field : (fallback))

#endif
