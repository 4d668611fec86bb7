// SPDX-License-Identifier: MIT
/*
 * The front door on stream connections: frame tags. A sender with a tenant
 * key (wp_ep_set_tenant_key) signs every frame it queues; a context with a
 * policy (wp_ctx_set_policy) checks every frame it receives right after the
 * header is decoded, before the frame is dispatched (src/core/conn.c,
 * wp_conn_deliver), and answers reserved methods only for admin tenants.
 *
 * The tag is SipHash-2-4 keyed by the tenant's 16-byte key over header bytes
 * 0..31 (everything but the tag); the XDP program checks the same tag on
 * datagram frames with the same code (src/policy/siphash.h). The received
 * header is re-encoded to get those bytes: the codec is exact (decode then
 * encode gives the bytes back; tests/fuzz checks it), and it keeps the check
 * independent of which path delivered the frame.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "policy.h"
#include "siphash.h"

struct wp_auth_tenant {
	uint32_t id;
	uint32_t admin;
	uint64_t k0, k1;
};

struct wp_auth {
	uint32_t n;
	struct wp_auth_tenant t[]; /* sorted by id */
};

uint64_t wp_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	uint64_t k0, k1;

	wpp_key_split(key, &k0, &k1);
	return wpp_siphash24(k0, k1, data, len);
}

uint64_t wp_frame_tag(const uint8_t key[16], const void *hdr)
{
	uint64_t k0, k1;

	wpp_key_split(key, &k0, &k1);
	return wpp_siphash24_32(k0, k1, hdr);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void wp_frame_sign(const uint8_t key[16], void *hdr)
{
	put_le64((uint8_t *)hdr + WPP_FRAME_AUTH_COVER, wp_frame_tag(key, hdr));
}

static uint64_t hdr_tag(uint64_t k0, uint64_t k1, const struct wp_frame_hdr *h)
{
	uint8_t b[WP_FRAME_HDR];

	wp_frame_encode(h, b);
	return wpp_siphash24_32(k0, k1, b);
}

int wp_ep_set_tenant_key(struct wp_ep *ep, uint32_t tenant, const uint8_t key[16])
{
	ep->tenant = tenant;
	wpp_key_split(key, &ep->auth_k0, &ep->auth_k1);
	ep->auth_sign = true;
	return 0;
}

void wp_auth_sign(const struct wp_ep *ep, struct wp_frame_hdr *h)
{
	h->auth = hdr_tag(ep->auth_k0, ep->auth_k1, h);
}

static const struct wp_auth_tenant *auth_find(const struct wp_auth *a, uint32_t id)
{
	uint32_t lo = 0, hi = a->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a->t[mid].id == id)
			return &a->t[mid];
		if (a->t[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int wp_auth_check(struct wp_ep *ep, const struct wp_frame_hdr *h)
{
	const struct wp_auth_tenant *t = auth_find(ep->ctx->auth, h->tenant);

	if (!t || hdr_tag(t->k0, t->k1, h) != h->auth)
		return -EACCES;
	/* An accepted connection answers in the voice of whoever spoke first,
	 * so a client that checks tags can check ours. */
	if (ep->accepted && !ep->auth_sign) {
		ep->tenant = t->id;
		ep->auth_k0 = t->k0;
		ep->auth_k1 = t->k1;
		ep->auth_sign = true;
	}
	return 0;
}

bool wp_auth_admin(const struct wp_ctx *ctx, uint32_t tenant)
{
	const struct wp_auth_tenant *t = auth_find(ctx->auth, tenant);

	return t && t->admin;
}

void wp_auth_free(struct wp_auth *a)
{
	free(a);
}

static int tenant_cmp(const void *a, const void *b)
{
	const struct wp_auth_tenant *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int wp_ctx_set_policy(struct wp_ctx *ctx, const struct wp_policy *p)
{
	struct wp_auth *a = NULL;

	if (p) {
		a = malloc(sizeof(*a) + p->ntenants * sizeof(a->t[0]));
		if (!a)
			return -ENOMEM;
		a->n = p->ntenants;
		for (uint32_t i = 0; i < p->ntenants; i++) {
			a->t[i].id = p->tenants[i].id;
			a->t[i].admin = !!(p->tenants[i].flags & WP_POLICY_TENANT_ADMIN);
			wpp_key_split(p->tenants[i].key, &a->t[i].k0, &a->t[i].k1);
		}
		qsort(a->t, a->n, sizeof(a->t[0]), tenant_cmp);
	}
	wp_auth_free(ctx->auth);
	ctx->auth = a;
	return 0;
}
