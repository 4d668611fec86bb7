// SPDX-License-Identifier: MIT
/*
 * Latency histogram: exact buckets for small values, quantiles of uniform and
 * log-normal data within 1/16 relative error of a sorted-array reference,
 * bucket math across the whole u64 range (UINT64_MAX included), merge, and
 * the empty histogram.
 */
#include <math.h>

#include "testlib.h"
#include "wirepath/wirepath.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static double rng_unit(void)
{
	return (double)(rng() >> 11) / 9007199254740992.0; /* [0, 1) */
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Same rank rule as wp_hist_quantile: ceil(q * n), at least 1, at most n. */
static uint64_t ref_quantile(const uint64_t *sorted, size_t n, double q)
{
	double r = q * (double)n;
	size_t rank;

	if (q <= 0)
		return sorted[0];
	if (r >= (double)n)
		return sorted[n - 1];
	rank = (size_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static int within(uint64_t got, uint64_t want, double rel)
{
	double d = (double)got - (double)want;

	if (d < 0)
		d = -d;
	/* +0.5: integer rounding of a bucket midpoint near zero. */
	return d <= rel * (double)want + 0.5;
}

static const double qs[] = { 0.0001, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999 };

static void check_against_ref(uint64_t *vals, size_t n, const char *what)
{
	struct wp_hist h;
	uint64_t sum = 0;

	wp_hist_init(&h);
	for (size_t i = 0; i < n; i++) {
		wp_hist_add(&h, vals[i]);
		sum += vals[i];
	}
	qsort(vals, n, sizeof(vals[0]), cmp_u64);
	CHECK_EQ(h.count, n);
	CHECK(h.sum == sum);
	CHECK(h.min == vals[0]);
	CHECK(h.max == vals[n - 1]);
	CHECK(wp_hist_quantile(&h, 0.0) == vals[0]);
	CHECK(wp_hist_quantile(&h, 1.0) == vals[n - 1]);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t got = wp_hist_quantile(&h, qs[i]);
		uint64_t want = ref_quantile(vals, n, qs[i]);

		if (!within(got, want, 1.0 / WP_HIST_SUB)) {
			fprintf(stderr, "%s: q=%g got %llu want %llu\n", what, qs[i],
				(unsigned long long)got, (unsigned long long)want);
			CHECK(0);
		}
	}
}

static void test_empty(void)
{
	struct wp_hist h, e;

	wp_hist_init(&h);
	CHECK_EQ(h.count, 0);
	CHECK(wp_hist_quantile(&h, 0.0) == 0);
	CHECK(wp_hist_quantile(&h, 0.5) == 0);
	CHECK(wp_hist_quantile(&h, 1.0) == 0);
	/* Merging two empty histograms stays empty (min must not become 0). */
	wp_hist_init(&e);
	wp_hist_merge(&h, &e);
	CHECK_EQ(h.count, 0);
	CHECK(wp_hist_quantile(&h, 0.5) == 0);
	wp_hist_add(&h, 5);
	CHECK(h.min == 5 && h.max == 5);
}

static void test_small_exact(void)
{
	struct wp_hist h;

	/* 0..31 have one bucket each: every rank comes back exactly. */
	wp_hist_init(&h);
	for (uint64_t v = 0; v < 32; v++)
		wp_hist_add(&h, v);
	for (int k = 1; k <= 32; k++)
		CHECK_EQ(wp_hist_quantile(&h, k / 32.0), k - 1);

	/* Repeated small values, out of order. */
	wp_hist_init(&h);
	for (int i = 0; i < 100; i++)
		wp_hist_add(&h, 3);
	for (int i = 0; i < 100; i++)
		wp_hist_add(&h, 1);
	for (int i = 0; i < 100; i++)
		wp_hist_add(&h, 17);
	CHECK_EQ(wp_hist_quantile(&h, 0.33), 1);
	CHECK_EQ(wp_hist_quantile(&h, 0.5), 3);
	CHECK_EQ(wp_hist_quantile(&h, 0.67), 17);
	CHECK_EQ(h.sum, 2100);
	CHECK_EQ(h.min, 1);
	CHECK_EQ(h.max, 17);
}

/*
 * Bucket math alone: with 0 and UINT64_MAX as the extremes, the median of
 * {0, v, UINT64_MAX} is v's bucket midpoint, unclamped. It must be within 1/32
 * (half a bucket) of v, over every magnitude and the powers of two edges.
 */
static void test_bucket_error(void)
{
	for (int m = 0; m < 64; m++) {
		uint64_t p = 1ull << m;
		uint64_t cand[] = { p,           p - 1,
				    p + 1,       p + (p >> 1),
				    p | (p - 1), p | (rng() & (p - 1)) };

		for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
			struct wp_hist h;
			uint64_t v = cand[i], got;

			wp_hist_init(&h);
			wp_hist_add(&h, 0);
			wp_hist_add(&h, v);
			wp_hist_add(&h, UINT64_MAX);
			got = wp_hist_quantile(&h, 0.5);
			if (!within(got, v, 1.0 / (2 * WP_HIST_SUB))) {
				fprintf(stderr, "bucket: v=%llu got %llu\n", (unsigned long long)v,
					(unsigned long long)got);
				CHECK(0);
			}
		}
	}
}

static void test_uniform(void)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));

	CHECK(v);
	for (size_t i = 0; i < n; i++)
		v[i] = rng() % 1000000;
	check_against_ref(v, n, "uniform");
	free(v);
}

static void test_lognormal(void)
{
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));

	CHECK(v);
	for (size_t i = 0; i < n; i++) {
		/* Box-Muller; median 20 us, sigma 1.5: spans ~5 decades like RPC latency. */
		double u1 = rng_unit(), u2 = rng_unit();
		double z = sqrt(-2.0 * log(u1 + 1e-300)) * cos(2 * M_PI * u2);

		v[i] = (uint64_t)(20000.0 * exp(1.5 * z));
	}
	check_against_ref(v, n, "lognormal");
	free(v);
}

static void test_merge(void)
{
	static struct wp_hist all, a, b, e;
	uint64_t before[WP_HIST_BUCKETS];

	wp_hist_init(&all);
	wp_hist_init(&a);
	wp_hist_init(&b);
	wp_hist_init(&e);
	for (int i = 0; i < 50000; i++) {
		uint64_t v = rng() >> (rng() % 64);

		wp_hist_add(&all, v);
		wp_hist_add(i & 1 ? &a : &b, v);
	}
	wp_hist_merge(&a, &b);
	CHECK(a.count == all.count);
	CHECK(a.sum == all.sum);
	CHECK(a.min == all.min);
	CHECK(a.max == all.max);
	CHECK(!memcmp(a.b, all.b, sizeof(a.b)));
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		CHECK(wp_hist_quantile(&a, qs[i]) == wp_hist_quantile(&all, qs[i]));

	/* Empty source: no change (in particular min stays put). */
	memcpy(before, a.b, sizeof(before));
	wp_hist_merge(&a, &e);
	CHECK(a.count == all.count && a.min == all.min && a.max == all.max);
	CHECK(!memcmp(a.b, before, sizeof(before)));

	/* Empty destination: becomes a copy of the source. */
	wp_hist_merge(&e, &all);
	CHECK(e.count == all.count && e.sum == all.sum);
	CHECK(e.min == all.min && e.max == all.max);
	CHECK(!memcmp(e.b, all.b, sizeof(e.b)));
}

static void test_huge(void)
{
	struct wp_hist h;
	uint64_t top = UINT64_MAX;

	wp_hist_init(&h);
	wp_hist_add(&h, top);
	CHECK_EQ(h.count, 1);
	CHECK(h.min == top && h.max == top);
	CHECK(wp_hist_quantile(&h, 0.5) == top);
	CHECK(wp_hist_quantile(&h, 1.0) == top);

	wp_hist_add(&h, top - 1);
	wp_hist_add(&h, 1ull << 63);
	wp_hist_add(&h, 0);
	CHECK(h.min == 0 && h.max == top);
	CHECK(within(wp_hist_quantile(&h, 0.5), 1ull << 63, 1.0 / WP_HIST_SUB));
	CHECK(within(wp_hist_quantile(&h, 0.75), top - 1, 1.0 / WP_HIST_SUB));
	CHECK(wp_hist_quantile(&h, 1.0) == top);
	CHECK(wp_hist_quantile(&h, 0.25) == 0);
	/* Out-of-range q is clamped, not undefined. */
	CHECK(wp_hist_quantile(&h, -1.0) == 0);
	CHECK(wp_hist_quantile(&h, 2.0) == top);
	CHECK(wp_hist_quantile(&h, NAN) == 0);
}

int main(void)
{
	test_watchdog(60);
	test_empty();
	test_small_exact();
	test_bucket_error();
	test_uniform();
	test_lognormal();
	test_merge();
	test_huge();
	printf("test_hist: ok\n");
	return 0;
}
