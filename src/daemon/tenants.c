// SPDX-License-Identifier: MIT
/*
 * wirepathd's tenants (tenants.h, docs/daemon.md "Tenants"): built from the
 * rules file through libwirepath's public API (wp_policy_parse_file_err,
 * wp_policy_tenant_gateway), so the daemon, the XDP program and stream
 * authentication read one file one way.
 *
 * API keys: only SHA-256 digests are kept. A presented bearer token is
 * hashed and looked up in an open-addressing table indexed by the digest's
 * first bytes (uniformly spread, and an attacker learns nothing from
 * timing about digests of tokens it does not hold), then compared with
 * CRYPTO_memcmp.
 *
 * Limits: token buckets on a nanosecond clock the caller passes (tests
 * drive it), levels kept in nano-tokens (tokens * 1e9) with 128-bit
 * intermediates, so per-hour rates and long idle gaps neither truncate nor
 * overflow. The generated-token bucket may go into debt: tokens are charged
 * after they were produced, and the next request waits until it is repaid.
 *
 * Live state (in-flight count, bucket levels) lives in a small object of
 * its own that a reload shares between the old tenant and the new one with
 * the same id (wpd_tenants_carry): requests that started before the reload
 * end on the old tenant object and still release the slot the new one
 * counts. All of it is used from the daemon's loop thread; only the set's
 * reference count is atomic.
 */
#include <errno.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenants.h"
#include "wirepath/policy.h"

#define NS 1000000000ull

/* The live part of a tenant, shared across reloads by tenant id. */
struct tstate {
	uint32_t refs; /* tenant objects pointing here (loop thread only) */
	uint32_t inflight;
	__int128 req_level, tok_level;     /* nano-tokens; tok may be negative (debt) */
	uint64_t req_last_ns, tok_last_ns; /* 0: never used (starts full) */
};

struct wpd_tenant {
	struct wpd_tenants *set;
	struct wp_policy_gateway gw; /* glob pointers point into set->pol */
	char name[32];
	uint32_t id;
	struct tstate *st;
};

struct slot {
	uint8_t digest[32];
	int32_t tenant; /* -1: empty */
};

struct wpd_tenants {
	struct wp_policy *pol;
	uint32_t n;
	struct wpd_tenant *t;
	uint32_t nslots; /* a power of two, at most half full */
	struct slot *slots;
	atomic_uint refs; /* the owner's (until wpd_tenants_free) + requests' */
};

static void tstate_put(struct tstate *s)
{
	if (s && --s->refs == 0)
		free(s);
}

static void set_destroy(struct wpd_tenants *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		tstate_put(t->t[i].st);
	free(t->t);
	free(t->slots);
	wp_policy_free(t->pol);
	free(t);
}

static uint32_t slot_of(const uint8_t d[32], uint32_t mask)
{
	uint32_t h;

	memcpy(&h, d, sizeof(h));
	return h & mask;
}

static int add_digest(struct wpd_tenants *t, const uint8_t d[32], int32_t tenant)
{
	uint32_t mask = t->nslots - 1, i = slot_of(d, mask);

	while (t->slots[i].tenant >= 0) {
		if (CRYPTO_memcmp(t->slots[i].digest, d, 32) == 0)
			return -EEXIST; /* the parser refuses this; never trust twice */
		i = (i + 1) & mask;
	}
	memcpy(t->slots[i].digest, d, 32);
	t->slots[i].tenant = tenant;
	return 0;
}

int wpd_tenants_load(const char *rules_path, struct wpd_tenants **out, char *err, size_t errlen)
{
	struct wpd_tenants *t;
	uint32_t keys = 0;
	char none[1];
	int ret;

	*out = NULL;
	if (!err || !errlen) {
		err = none;
		errlen = sizeof(none);
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	atomic_init(&t->refs, 1);
	ret = wp_policy_parse_file_err(rules_path, &t->pol, err, errlen);
	if (ret < 0) {
		free(t);
		return ret;
	}
	t->n = (uint32_t)wp_policy_tenant_count(t->pol);
	t->t = calloc(t->n ? t->n : 1, sizeof(*t->t));
	if (!t->t)
		goto out_nomem;
	for (uint32_t i = 0; i < t->n; i++) {
		struct wpd_tenant *x = &t->t[i];
		struct wp_policy_tenant pt;

		x->set = t;
		x->gw.sz = sizeof(x->gw);
		if (wp_policy_tenant_get(t->pol, i, &pt) < 0 ||
		    wp_policy_tenant_gateway(t->pol, i, &x->gw) < 0) {
			snprintf(err, errlen, "%s: tenant %u could not be read back", rules_path,
				 i);
			set_destroy(t);
			return -EINVAL;
		}
		memcpy(x->name, pt.name, sizeof(x->name));
		x->id = pt.id;
		x->st = calloc(1, sizeof(*x->st));
		if (!x->st)
			goto out_nomem;
		x->st->refs = 1;
		keys += x->gw.nkeys;
	}
	t->nslots = 8;
	while (t->nslots < 2 * keys)
		t->nslots *= 2;
	t->slots = malloc(t->nslots * sizeof(*t->slots));
	if (!t->slots)
		goto out_nomem;
	for (uint32_t i = 0; i < t->nslots; i++)
		t->slots[i].tenant = -1;
	for (uint32_t i = 0; i < t->n; i++) {
		for (uint32_t k = 0; k < t->t[i].gw.nkeys; k++) {
			if (add_digest(t, t->t[i].gw.api_key_sha256[k], (int32_t)i) < 0) {
				snprintf(err, errlen, "%s: tenant '%s': an api_key given twice",
					 rules_path, t->t[i].name);
				set_destroy(t);
				return -EINVAL;
			}
		}
	}
	*out = t;
	return 0;

out_nomem:
	snprintf(err, errlen, "%s: out of memory", rules_path);
	set_destroy(t);
	return -ENOMEM;
}

void wpd_tenants_get(struct wpd_tenants *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void wpd_tenants_put(struct wpd_tenants *t)
{
	/* acq_rel: the last put sees every other holder's writes before freeing */
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		set_destroy(t);
}

void wpd_tenants_free(struct wpd_tenants *t)
{
	wpd_tenants_put(t);
}

void wpd_tenants_carry(struct wpd_tenants *nw, struct wpd_tenants *old)
{
	if (!nw || !old)
		return;
	for (uint32_t i = 0; i < nw->n; i++) {
		struct wpd_tenant *x = &nw->t[i];

		for (uint32_t j = 0; j < old->n; j++) {
			if (old->t[j].id != x->id)
				continue;
			/* share the old state: in-flight requests release into it,
			 * and the buckets keep their levels (clamped to the new
			 * bursts at the next refill) */
			tstate_put(x->st);
			x->st = old->t[j].st;
			x->st->refs++;
			break;
		}
	}
}

uint32_t wpd_tenants_count(const struct wpd_tenants *t)
{
	return t ? t->n : 0;
}

const struct wpd_tenant *wpd_tenants_at(const struct wpd_tenants *t, uint32_t i)
{
	return t && i < t->n ? &t->t[i] : NULL;
}

const struct wpd_tenant *wpd_tenants_auth(const struct wpd_tenants *t, const char *token,
					  size_t len)
{
	uint8_t d[32];
	unsigned int dlen = 0;
	uint32_t mask, i;

	if (!t || !token || len == 0 || !t->nslots)
		return NULL;
	if (!EVP_Digest(token, len, d, &dlen, EVP_sha256(), NULL) || dlen != sizeof(d))
		return NULL;
	mask = t->nslots - 1;
	for (i = slot_of(d, mask); t->slots[i].tenant >= 0; i = (i + 1) & mask)
		if (CRYPTO_memcmp(t->slots[i].digest, d, 32) == 0)
			return &t->t[t->slots[i].tenant];
	return NULL;
}

const char *wpd_tenant_name(const struct wpd_tenant *t)
{
	return t->name;
}

uint32_t wpd_tenant_id(const struct wpd_tenant *t)
{
	return t->id;
}

struct wpd_tenants *wpd_tenant_set(const struct wpd_tenant *t)
{
	return t->set;
}

uint32_t wpd_tenant_inflight(const struct wpd_tenant *t)
{
	return t->st->inflight;
}

/* Refill a bucket of `rate` per `per_s` seconds up to burst, at now_ns. */
static void refill(__int128 *level, uint64_t *last, uint64_t rate, uint32_t per_s, uint64_t burst,
		   uint64_t now_ns)
{
	__int128 cap = (__int128)burst * NS;

	if (*last == 0) { /* first use: full */
		*level = cap;
		*last = now_ns;
		return;
	}
	if (now_ns > *last) {
		/* nano-tokens gained: elapsed_ns * rate / per_s (< 2^128: the
		 * elapsed time is at most 2^64 ns, rate at most 1e11) */
		*level += (__int128)(now_ns - *last) * rate / per_s;
		*last = now_ns;
	}
	if (*level > cap)
		*level = cap;
}

/* Whole seconds until level reaches want (>= 1). */
static uint32_t wait_s(__int128 level, __int128 want, uint64_t rate, uint32_t per_s)
{
	__int128 missing = want - level, ns;

	if (missing <= 0)
		return 1;
	/* ns = missing * per_s / rate, rounded up */
	ns = (missing * per_s + rate - 1) / rate;
	ns = (ns + NS - 1) / NS;
	if (ns < 1)
		return 1;
	return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

enum wpd_admit wpd_tenant_admit(struct wpd_tenant *t, uint64_t now_ns, uint32_t *retry_after_s)
{
	const struct wp_policy_gateway *g = &t->gw;
	struct tstate *s = t->st;

	*retry_after_s = 0;
	if (g->concurrency && s->inflight >= g->concurrency) {
		*retry_after_s = 1;
		return WPD_ADMIT_CONCURRENCY;
	}
	if (g->tokens) {
		refill(&s->tok_level, &s->tok_last_ns, g->tokens, g->tokens_period_s,
		       g->tokens_burst, now_ns);
		if (s->tok_level <= 0) {
			*retry_after_s = wait_s(s->tok_level, 1, g->tokens, g->tokens_period_s);
			return WPD_ADMIT_TOKENS;
		}
	}
	if (g->requests) {
		refill(&s->req_level, &s->req_last_ns, g->requests, g->requests_period_s,
		       g->requests_burst, now_ns);
		if (s->req_level < (__int128)NS) {
			*retry_after_s = wait_s(s->req_level, NS, g->requests,
						g->requests_period_s);
			return WPD_ADMIT_RATE;
		}
		s->req_level -= NS;
	}
	s->inflight++;
	return WPD_ADMIT_OK;
}

void wpd_tenant_done(struct wpd_tenant *t)
{
	if (t->st->inflight)
		t->st->inflight--;
}

void wpd_tenant_charge_tokens(struct wpd_tenant *t, uint64_t now_ns, uint32_t n)
{
	const struct wp_policy_gateway *g = &t->gw;
	struct tstate *s = t->st;

	if (!g->tokens || !n)
		return;
	refill(&s->tok_level, &s->tok_last_ns, g->tokens, g->tokens_period_s, g->tokens_burst,
	       now_ns);
	s->tok_level -= (__int128)n * NS;
}

static int allowed(const char *const *globs, uint32_t n, const char *name)
{
	if (n == 0)
		return 1;
	if (!name)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (fnmatch(globs[i], name, 0) == 0)
			return 1;
	return 0;
}

int wpd_tenant_model_ok(const struct wpd_tenant *t, const char *model)
{
	return allowed(t->gw.models, t->gw.nmodels, model);
}

int wpd_tenant_tool_ok(const struct wpd_tenant *t, const char *tool)
{
	return allowed(t->gw.tools, t->gw.ntools, tool);
}
