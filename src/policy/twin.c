// SPDX-License-Identifier: MIT
/*
 * The user-space twin: src/policy/decide.h compiled against plain arrays
 * instead of BPF maps. It is the front door where XDP is unavailable and the
 * reference the XDP program is tested against (tests/kern/), so it keeps
 * exactly the maps' state: two sets and an active index, slots shared by both
 * sets for buckets and tenant counters, per-set rule counters, and a reload
 * that follows the loader's steps (fill the inactive set, switch, clear the
 * old one).
 *
 * Source lookup is a scan of the set's prefixes sorted longest first: fine
 * for hundreds of prefixes; the XDP path has the kernel's LPM trie. A twin
 * belongs to one thread (like a context); the bucket lock is not needed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "decide.h"

struct wpp_env {
	uint32_t active;
	uint64_t now;
	struct wpp_config cfg[WPP_SETS];
	uint32_t n4[WPP_SETS], n6[WPP_SETS];
	struct wpp_e4 e4[WPP_SETS][WPP_MAX_PREFIXES]; /* longest prefix first */
	struct wpp_e6 e6[WPP_SETS][WPP_MAX_PREFIXES];
	struct wpp_tenant tenants[WPP_SETS][WPP_SLOTS];
	struct wpp_bucket buckets[WPP_SLOTS];
	struct wpp_cnt cnt[WPP_CNT_N];
	struct wpp_cnt tcnt[WPP_SLOTS * WPP_R__COUNT];
	struct wpp_cnt rcnt[WPP_SETS * WPP_MAX_RULES];
};

struct wp_twin {
	struct wpp_env env;
};

static __always_inline __u32 wpp_env_active(struct wpp_env *e)
{
	return e->active;
}

static __always_inline const struct wpp_config *wpp_env_config(struct wpp_env *e, __u32 set)
{
	return set < WPP_SETS ? &e->cfg[set] : NULL;
}

static int prefix_match(const uint8_t *addr, const uint8_t *pfx, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(addr, pfx, full))
		return 0;
	return !rest || !((addr[full] ^ pfx[full]) & (uint8_t)(0xff00 >> rest));
}

static __always_inline const struct wpp_lpm_val *wpp_env_lpm4(struct wpp_env *e,
							      const struct wpp_lpm4_key *k)
{
	uint32_t s = k->set & 1;

	for (uint32_t i = 0; i < e->n4[s]; i++)
		if (prefix_match(k->addr, e->e4[s][i].k.addr, e->e4[s][i].k.prefixlen - 8))
			return &e->e4[s][i].v;
	return NULL;
}

static __always_inline const struct wpp_lpm_val *wpp_env_lpm6(struct wpp_env *e,
							      const struct wpp_lpm6_key *k)
{
	uint32_t s = k->set & 1;

	for (uint32_t i = 0; i < e->n6[s]; i++)
		if (prefix_match(k->addr, e->e6[s][i].k.addr, e->e6[s][i].k.prefixlen - 8))
			return &e->e6[s][i].v;
	return NULL;
}

static __always_inline const struct wpp_tenant *wpp_env_tenant(struct wpp_env *e, __u32 set,
							       __u32 slot)
{
	return set < WPP_SETS && slot < WPP_SLOTS ? &e->tenants[set][slot] : NULL;
}

static __always_inline __u32 wpp_env_take(struct wpp_env *e, __u32 slot, const struct wpp_tenant *t,
					  const struct wpp_config *cfg, __u64 len)
{
	return wpp_tb_take(&e->buckets[slot], t, cfg->clock_ns ? cfg->clock_ns : e->now, len);
}

static __always_inline void wpp_env_count(struct wpp_env *e, __u32 idx, __u64 len)
{
	if (idx < WPP_CNT_N) {
		e->cnt[idx].pkts++;
		e->cnt[idx].bytes += len;
	}
}

static __always_inline void wpp_env_tcount(struct wpp_env *e, __u32 slot, __u32 reason, __u64 len)
{
	e->tcnt[slot * WPP_R__COUNT + reason].pkts++;
	e->tcnt[slot * WPP_R__COUNT + reason].bytes += len;
}

static __always_inline void wpp_env_rcount(struct wpp_env *e, __u32 set, __u32 rule, __u64 len)
{
	if (rule < WPP_MAX_RULES) {
		e->rcnt[set * WPP_MAX_RULES + rule].pkts++;
		e->rcnt[set * WPP_MAX_RULES + rule].bytes += len;
	}
}

static int e4_cmp(const void *a, const void *b)
{
	const struct wpp_e4 *x = a, *y = b;

	return x->k.prefixlen > y->k.prefixlen ? -1 : x->k.prefixlen < y->k.prefixlen;
}

static int e6_cmp(const void *a, const void *b)
{
	const struct wpp_e6 *x = a, *y = b;

	return x->k.prefixlen > y->k.prefixlen ? -1 : x->k.prefixlen < y->k.prefixlen;
}

static void clear_set(struct wpp_env *e, uint32_t set)
{
	memset(&e->cfg[set], 0, sizeof(e->cfg[set]));
	memset(e->tenants[set], 0, sizeof(e->tenants[set]));
	e->n4[set] = e->n6[set] = 0;
}

/* The loader's reload, step for step (xdp.c: policy_apply). */
static int twin_apply(struct wpp_env *e, const struct wp_policy *p, int first)
{
	uint32_t old = e->active, nw = first ? 0 : !old;
	struct wpp_image *img = malloc(sizeof(*img));
	int ret;

	if (!img)
		return -ENOMEM;
	ret = wpp_image_build(p, nw, first ? NULL : e->tenants[old], img);
	if (ret < 0)
		goto out_free;
	/* 1. Fill the inactive set completely. */
	clear_set(e, nw);
	memset(&e->rcnt[nw * WPP_MAX_RULES], 0, WPP_MAX_RULES * sizeof(struct wpp_cnt));
	for (uint32_t i = 0; i < img->ntenants; i++)
		e->tenants[nw][img->slot[i]] = img->tenant[i];
	memcpy(e->e4[nw], img->e4, img->n4 * sizeof(img->e4[0]));
	memcpy(e->e6[nw], img->e6, img->n6 * sizeof(img->e6[0]));
	e->n4[nw] = img->n4;
	e->n6[nw] = img->n6;
	qsort(e->e4[nw], img->n4, sizeof(img->e4[0]), e4_cmp);
	qsort(e->e6[nw], img->n6, sizeof(img->e6[0]), e6_cmp);
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		if (img->fresh[s])
			memset(&e->tcnt[s * WPP_R__COUNT], 0,
			       WPP_R__COUNT * sizeof(struct wpp_cnt));
		if (img->reset_bucket[s])
			memset(&e->buckets[s], 0, sizeof(e->buckets[s]));
	}
	e->cfg[nw] = img->cfg;
	/* 2. Switch. 3. Clear the old set (in XDP: after a grace period). */
	e->active = nw;
	if (!first)
		clear_set(e, old);
out_free:
	free(img);
	return ret;
}

int wp_twin_create(const struct wp_policy *p, struct wp_twin **out)
{
	struct wp_twin *t = calloc(1, sizeof(*t));
	int ret;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	ret = twin_apply(&t->env, p, 1);
	if (ret < 0) {
		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

int wp_twin_reload(struct wp_twin *t, const struct wp_policy *p)
{
	return twin_apply(&t->env, p, 0);
}

void wp_twin_destroy(struct wp_twin *t)
{
	free(t);
}

int wp_twin_decide(struct wp_twin *t, const void *pkt, size_t len, uint64_t now_ns,
		   unsigned *reason)
{
	const uint8_t *d = pkt;
	uint32_t res;

	t->env.now = now_ns ? now_ns : 1;
	/* The whole frame is in one buffer here: never WPP_RES_MORE. */
	res = wpp_decide(&t->env, d, d + len, len, 0);
	if (reason)
		*reason = WPP_RES_REASON(res);
	return (int)WPP_RES_VERDICT(res);
}

int wp_twin_stats(const struct wp_twin *t, struct wp_policy_stats *out)
{
	const struct wpp_env *e = &t->env;
	struct wpp_view v;

	memset(&v, 0, sizeof(v));
	v.active = e->active;
	v.cfg = e->cfg[e->active];
	v.tenants = e->tenants[e->active];
	v.n4 = e->n4[e->active];
	v.n6 = e->n6[e->active];
	v.e4 = e->e4[e->active];
	v.e6 = e->e6[e->active];
	memcpy(v.cnt, e->cnt, sizeof(v.cnt));
	v.tcnt = e->tcnt;
	v.rcnt = &e->rcnt[e->active * WPP_MAX_RULES];
	return wpp_stats_build(&v, out);
}
