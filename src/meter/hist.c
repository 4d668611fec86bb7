// SPDX-License-Identifier: MIT
/*
 * Log-linear latency histograms (the HdrHistogram idea with 16 sub-buckets
 * per power of two). Values 0..31 have exact buckets; above that, a value v
 * with highest set bit m lands in one of 16 equal-width buckets covering
 * [2^m, 2^(m+1)), each 2^(m-4) wide, so a bucket's width is at most 1/16 of
 * its lower bound and its midpoint is within 1/32 of any value in it.
 *
 * Index: shift = max(m - 4, 0), idx = (shift << 4) + (v >> shift). For
 * v < 32 that is v itself; for larger v, v >> shift is in [16, 32), so each
 * power of two gets 16 consecutive slots. UINT64_MAX maps to 59 * 16 + 31 =
 * 975, inside WP_HIST_BUCKETS (1024). wp_hist_add is on the hot path, so it
 * computes this without branches (clz plus a conditional move).
 */
#include <stdint.h>
#include <string.h>

#include "wirepath/wirepath.h"

_Static_assert(WP_HIST_SUB == 16, "bucket math below assumes 16 sub-buckets");
_Static_assert(WP_HIST_BUCKETS >= 59 * 16 + 32, "UINT64_MAX must have a bucket");

static inline unsigned hist_shift(uint64_t v)
{
	/* v | 1: clz(0) is undefined; 0 and 1 both land in exact bucket space. */
	unsigned msb = 63u - (unsigned)__builtin_clzll(v | 1);

	return msb > 4 ? msb - 4 : 0;
}

static inline unsigned hist_index(uint64_t v)
{
	unsigned shift = hist_shift(v);

	return (shift << 4) + (unsigned)(v >> shift);
}

/* Lowest value and width of bucket idx (inverse of hist_index). */
static inline void hist_bucket(unsigned idx, uint64_t *lo, uint64_t *width)
{
	unsigned hi = idx >> 4;
	unsigned shift = hi > 1 ? hi - 1 : 0;

	*lo = (uint64_t)(idx - (shift << 4)) << shift;
	*width = 1ull << shift;
}

void wp_hist_init(struct wp_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* sum wraps modulo 2^64 (only with absurd values, e.g. UINT64_MAX samples). */
void wp_hist_add(struct wp_hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += v;
	h->min = v < h->min ? v : h->min;
	h->max = v > h->max ? v : h->max;
}

void wp_hist_merge(struct wp_hist *dst, const struct wp_hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < WP_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/*
 * The value of rank ceil(q * count) (1-based, at least 1): the midpoint of its
 * bucket, clamped to [min, max] (both exact). q <= 0 gives min, q >= 1 max.
 */
uint64_t wp_hist_quantile(const struct wp_hist *h, double q)
{
	uint64_t rank, seen = 0;
	double r;

	if (!h->count)
		return 0;
	if (!(q > 0)) /* also catches NaN */
		return h->min;
	if (q >= 1)
		return h->max;

	/* ceil() by hand: the library does not link libm. */
	r = q * (double)h->count;
	if (r >= (double)h->count) {
		rank = h->count; /* also keeps the conversion below in range */
	} else {
		rank = (uint64_t)r;
		if ((double)rank < r)
			rank++;
		if (rank < 1)
			rank = 1;
	}

	for (unsigned i = 0; i < WP_HIST_BUCKETS; i++) {
		uint64_t lo, width, mid;

		seen += h->b[i];
		if (seen < rank)
			continue;
		hist_bucket(i, &lo, &width);
		mid = lo + (width - 1) / 2; /* no overflow: lo + width - 1 <= UINT64_MAX */
		if (mid < h->min)
			mid = h->min;
		if (mid > h->max)
			mid = h->max;
		return mid;
	}
	/* Buckets disagree with count (a torn or corrupt histogram). */
	return h->max;
}
