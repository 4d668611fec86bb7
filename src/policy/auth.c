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
 * datagram frames with the same code (src/policy/siphash.h). The check and
 * the signing are a guard installed into conn (struct wp_guard_ops), so the
 * core never calls the front door by name. The received
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
	uint8_t key[16]; /* raw, for set-up proofs (shm: tenant_key) */
};

/* Per context (ctx->up[WP_LAYER_GUARD]): the tenants whose tags are accepted. */
struct wp_auth {
	uint32_t n;
	struct wp_auth_tenant t[]; /* sorted by id */
};

/* Per endpoint (ep->up[WP_LAYER_GUARD]): the key its frames are signed with. */
struct auth_ep {
	uint64_t k0, k1;
	uint8_t key[16]; /* raw, for set-up proofs (shm: ep_key) */
};

static const struct wp_guard_ops auth_guard;
static void auth_install(struct wp_ctx *ctx);

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

static int ep_key_set(struct wp_ep *ep, uint64_t k0, uint64_t k1, const uint8_t key[16])
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a) {
		a = malloc(sizeof(*a));
		if (!a)
			return -ENOMEM;
		auth_install(ep->ctx);
		ep->up[WP_LAYER_GUARD] = a;
	}
	a->k0 = k0;
	a->k1 = k1;
	memcpy(a->key, key, sizeof(a->key));
	ep->signer = &auth_guard;
	return 0;
}

int wp_ep_set_tenant_key(struct wp_ep *ep, uint32_t tenant, const uint8_t key[16])
{
	uint64_t k0, k1;
	int ret;

	wpp_key_split(key, &k0, &k1);
	ret = ep_key_set(ep, k0, k1, key);
	if (ret == 0)
		ep->tenant = tenant;
	return ret;
}

static void auth_sign(const struct wp_ep *ep, struct wp_frame_hdr *h)
{
	const struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	h->auth = hdr_tag(a->k0, a->k1, h);
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

static int auth_check(struct wp_ep *ep, const struct wp_frame_hdr *h)
{
	const struct wp_auth_tenant *t = auth_find(ep->ctx->up[WP_LAYER_GUARD], h->tenant);

	/* Proved at set-up (shm): the peer is the tenant, frame by frame. */
	if (ep->peer_verified)
		return h->tenant == ep->tenant ? 0 : -EACCES;
	if (!t || hdr_tag(t->k0, t->k1, h) != h->auth)
		return -EACCES;
	/* An accepted connection answers in the voice of whoever spoke first,
	 * so a client that checks tags can check ours. Out of memory, it
	 * answers unsigned and the client refuses that. */
	if (ep->accepted && !ep->signer && ep_key_set(ep, t->k0, t->k1, t->key) == 0)
		ep->tenant = t->id;
	return 0;
}

static bool auth_admin(const struct wp_ctx *ctx, uint32_t tenant)
{
	const struct wp_auth_tenant *t = auth_find(ctx->up[WP_LAYER_GUARD], tenant);

	return t && t->admin;
}

static int auth_tenant_key(const struct wp_ctx *ctx, uint32_t tenant, uint8_t key[16])
{
	const struct wp_auth_tenant *t = auth_find(ctx->up[WP_LAYER_GUARD], tenant);

	if (!t)
		return -ENOKEY;
	memcpy(key, t->key, 16);
	return 0;
}

static int auth_ep_key(const struct wp_ep *ep, uint8_t key[16])
{
	const struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a)
		return -ENOKEY;
	memcpy(key, a->key, 16);
	return 0;
}

static const struct wp_guard_ops auth_guard = {
	.check = auth_check,
	.sign = auth_sign,
	.admin = auth_admin,
	.tenant_key = auth_tenant_key,
	.ep_key = auth_ep_key,
};

static void auth_ep_free(struct wp_ep *ep)
{
	free(ep->up[WP_LAYER_GUARD]);
	ep->up[WP_LAYER_GUARD] = NULL;
	ep->signer = NULL;
}

static void auth_ctx_free(struct wp_ctx *ctx)
{
	free(ctx->up[WP_LAYER_GUARD]);
	ctx->up[WP_LAYER_GUARD] = NULL;
	ctx->guard = NULL;
}

static const struct wp_layer_ops auth_layer = {
	.ep_free = auth_ep_free,
	.ctx_free = auth_ctx_free,
};

/* The guard's state is released through conn's layer hooks. */
static void auth_install(struct wp_ctx *ctx)
{
	wp_conn_layer_set(ctx, WP_LAYER_GUARD, &auth_layer);
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
			memcpy(a->t[i].key, p->tenants[i].key, sizeof(a->t[i].key));
		}
		qsort(a->t, a->n, sizeof(a->t[0]), tenant_cmp);
	}
	auth_install(ctx);
	free(ctx->up[WP_LAYER_GUARD]);
	ctx->up[WP_LAYER_GUARD] = a;
	ctx->guard = a ? &auth_guard : NULL; /* conn checks every received frame */
	return 0;
}
