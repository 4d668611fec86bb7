// SPDX-License-Identifier: MIT
/*
 * Versioned options structs (src/core/opts.h, the libbpf OPTS_* rules):
 * a caller built against an older header (smaller sz) gets defaults for
 * the fields it cannot have set; one built against a newer header (larger
 * sz) is accepted only when the fields this library does not know are
 * zero; sz 0 means all defaults. First the macros on a toy struct in two
 * versions, then wp_ctx_create, which must take every field by name.
 */
#include <errno.h>
#include <stddef.h>

#include "testlib.h"
#include "core/core.h"
#include "core/opts.h"

/* The toy struct as this "library" knows it, and as a newer header has it. */
struct toy_opts {
	size_t sz;
	int a;
	long b;
	char c;
};

struct toy_opts_v2 {
	size_t sz;
	int a;
	long b;
	char c;
	char d; /* lands in v1's tail padding: still a field v1 does not know */
	long e;
};

/* The consumer, compiled against struct toy_opts: defaults a=1, b=2, c=3. */
static int toy_consume(const struct toy_opts *o, int *a, long *b, char *c)
{
	if (!WP_OPTS_VALID(o, c))
		return -EINVAL;
	*a = WP_OPTS_GET(o, a, 1);
	*b = WP_OPTS_GET(o, b, 2);
	*c = WP_OPTS_GET(o, c, 3);
	return 0;
}

static void test_macros(void)
{
	struct toy_opts v1;
	struct toy_opts_v2 v2;
	int a;
	long b;
	char c;

	/* NULL: all defaults. */
	CHECK_EQ(toy_consume(NULL, &a, &b, &c), 0);
	CHECK(a == 1 && b == 2 && c == 3);

	/* sz 0: all defaults, whatever the fields hold. */
	memset(&v1, 0x7f, sizeof(v1));
	v1.sz = 0;
	CHECK_EQ(toy_consume(&v1, &a, &b, &c), 0);
	CHECK(a == 1 && b == 2 && c == 3);

	/* Exactly this version. */
	memset(&v1, 0, sizeof(v1)); /* padding too: it is past c */
	v1.sz = sizeof(v1);
	v1.a = 10;
	v1.b = 20;
	v1.c = 30;
	CHECK_EQ(toy_consume(&v1, &a, &b, &c), 0);
	CHECK(a == 10 && b == 20 && c == 30);

	/* An older caller that ends after a: b and c are defaults. */
	v1.sz = wp_offsetofend(struct toy_opts, a);
	CHECK_EQ(toy_consume(&v1, &a, &b, &c), 0);
	CHECK(a == 10 && b == 2 && c == 3);
	/* A size that cuts b in half: b is missing, not half-read. */
	v1.sz = offsetof(struct toy_opts, b) + 4;
	CHECK_EQ(toy_consume(&v1, &a, &b, &c), 0);
	CHECK(a == 10 && b == 2 && c == 3);

	/* A newer caller with the new fields zero: accepted. */
	memset(&v2, 0, sizeof(v2));
	v2.sz = sizeof(v2);
	v2.a = 11;
	v2.b = 21;
	v2.c = 31;
	CHECK_EQ(toy_consume((const struct toy_opts *)&v2, &a, &b, &c), 0);
	CHECK(a == 11 && b == 21 && c == 31);
	/* ... with a new field set: refused, also the one in the old padding. */
	v2.e = 5;
	CHECK_EQ(toy_consume((const struct toy_opts *)&v2, &a, &b, &c), -EINVAL);
	v2.e = 0;
	v2.d = 1;
	CHECK_EQ(toy_consume((const struct toy_opts *)&v2, &a, &b, &c), -EINVAL);
	/* ... unless its sz says the caller's struct ends before it. */
	v2.sz = wp_offsetofend(struct toy_opts_v2, c);
	CHECK_EQ(toy_consume((const struct toy_opts *)&v2, &a, &b, &c), 0);
	printf("ok   macros: NULL and sz 0 default, old sz defaults the rest, new sz needs a "
	       "zero tail\n");
}

/* Every wp_ctx_opts field set to a valid non-default value arrives. */
static void test_ctx_every_field(void)
{
	static int marker;
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;

	wp_ctx_opts_init(&o);
	CHECK_EQ(o.sz, sizeof(o));
	o.select = WP_SELECT_ANY;
	o.max_frame = 1u << 20;
	o.zc_threshold = 4096;
	o.zc_always = 1;
	o.sqpoll = 1;
	o.busy_poll = 1;
	o.rx_buf_size = 8192;
	o.rx_buf_count = 16;
	o.spin_us = 7;
	o.shm_slots = 64;
	o.shm_arena_mb = 2;
	o.shm_heap_mb = 3;
	o.log = test_log_fn;
	o.log_arg = &marker;
	o.log_level = WP_LOG_DEBUG;
	CHECK_EQ(wp_ctx_create(&o, &ctx), 0);
	/* A field left out of the copy would differ here. */
	CHECK(!memcmp(&ctx->o, &o, sizeof(o)));
	wp_ctx_destroy(ctx);
	printf("ok   wp_ctx_create takes every field of a current caller\n");
}

static void test_ctx_versions(void)
{
	struct {
		struct wp_ctx_opts o;
		uint64_t newer[2]; /* fields of a header newer than this library */
	} big;
	struct wp_ctx_opts o, def;
	struct wp_ctx *ctx;

	wp_ctx_opts_init(&def);

	/* sz 0: every field takes its default, whatever it holds. */
	memset(&o, 0, sizeof(o));
	o.select = WP_SELECT_ANY;
	o.max_frame = 4096;
	o.log_level = WP_LOG_DEBUG;
	CHECK_EQ(wp_ctx_create(&o, &ctx), 0);
	CHECK(!memcmp(&ctx->o, &def, sizeof(def)));
	wp_ctx_destroy(ctx);

	/* An old caller whose struct ends after max_frame. */
	o.sz = wp_offsetofend(struct wp_ctx_opts, max_frame);
	CHECK_EQ(wp_ctx_create(&o, &ctx), 0);
	CHECK_EQ(ctx->o.select, WP_SELECT_ANY);
	CHECK_EQ(ctx->o.max_frame, 4096);
	CHECK_EQ(ctx->o.log_level, def.log_level);
	CHECK_EQ(ctx->o.shm_slots, def.shm_slots);
	wp_ctx_destroy(ctx);

	/* A newer caller: zero tail accepted, a set field refused and logged. */
	memset(&big, 0, sizeof(big));
	wp_ctx_opts_init(&big.o);
	big.o.sz = sizeof(big);
	big.o.max_frame = 8192;
	CHECK_EQ(wp_ctx_create(&big.o, &ctx), 0);
	CHECK_EQ(ctx->o.max_frame, 8192);
	wp_ctx_destroy(ctx);
	big.newer[1] = 1;
	test_log_capture();
	ctx = NULL;
	CHECK_EQ(wp_ctx_create(&big.o, &ctx), -EINVAL);
	CHECK(ctx == NULL);
	CHECK_EQ(test_log.errs, 1);
	CHECK(strstr(test_log.last, "wp_ctx_opts"));
	wp_set_log(NULL, NULL, WP_LOG_ERR);
	printf("ok   wp_ctx_create: sz 0 defaults, old sz defaults the rest, newer sz needs a "
	       "zero tail\n");
}

int main(void)
{
	test_watchdog(30);
	test_macros();
	test_ctx_every_field();
	test_ctx_versions();
	printf("PASS test_opts\n");
	return 0;
}
