// SPDX-License-Identifier: MIT
/*
 * Rules -> one complete map set (struct wpp_image), and back: stats and
 * `show` read a set through struct wpp_view, whether it lives in pinned BPF
 * maps or in the twin. The XDP loader and the twin apply an image with the
 * same steps (see twin.c, xdp.c), so they assign the same slots and rule
 * numbers and their counters can be compared one to one.
 *
 * Slots: a tenant whose id is in the active set keeps its slot, so its
 * counters and its token bucket carry on across a reload; a new tenant gets a
 * slot the active set does not use, because packets still deciding with the
 * old set may touch that slot's bucket and counters until the switch has
 * settled. Rule numbers restart with every set: per tenant in file order,
 * its prefixes, then its port ranges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "siphash.h"

void wpp_key_split(const uint8_t key[16], uint64_t *k0, uint64_t *k1)
{
	*k0 = wpp_le64(key);
	*k1 = wpp_le64(key + 8);
}

void wpp_key_join(uint64_t k0, uint64_t k1, uint8_t key[16])
{
	for (int i = 0; i < 8; i++) {
		key[i] = (uint8_t)(k0 >> (8 * i));
		key[8 + i] = (uint8_t)(k1 >> (8 * i));
	}
}

static uint64_t div_ceil(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static void fill_tenant(const struct wpp_rtenant *r, struct wpp_tenant *t)
{
	memset(t, 0, sizeof(*t));
	t->id = r->id;
	t->flags = WPP_TF_VALID;
	if (r->flags & WP_POLICY_TENANT_ADMIN)
		t->flags |= WPP_TF_ADMIN;
	if (r->flags & WP_POLICY_TENANT_REDIRECT)
		t->flags |= WPP_TF_REDIRECT;
	if (r->flags & WP_POLICY_TENANT_CONFIDENTIAL)
		t->flags |= WPP_TF_CONF;
	{
		uint64_t k0, k1; /* __u64 is not uint64_t on every ABI */

		wpp_key_split(r->key, &k0, &k1);
		t->k0 = k0;
		t->k1 = k1;
	}
	if (r->pps) {
		t->pps = r->pps;
		t->pps_cap = r->pps_burst * WPP_NS;
		t->pps_fill_ns = div_ceil(t->pps_cap, t->pps);
	}
	if (r->bps) {
		t->bps = r->bps;
		t->bps_cap = r->bps_burst * WPP_NS;
		t->bps_fill_ns = div_ceil(t->bps_cap, t->bps);
	}
	t->nranges = r->nranges;
	for (uint32_t i = 0; i < r->nranges; i++) {
		t->ranges[i].lo = r->ranges[i].lo;
		t->ranges[i].hi = r->ranges[i].hi;
		t->ranges[i].proto = r->ranges[i].proto;
	}
	snprintf(t->name, sizeof(t->name), "%s", r->name);
}

int wpp_image_build(const struct wp_policy *p, uint32_t set, const struct wpp_tenant *old,
		    struct wpp_image *img)
{
	bool used[WPP_SLOTS] = { false };
	uint32_t rule = 0;

	memset(img, 0, sizeof(*img));
	img->set = set;
	img->cfg.valid = 1;
	img->cfg.default_verdict = p->default_verdict;
	img->cfg.ndgram = p->ndgram;
	for (uint32_t i = 0; i < p->ndgram; i++) {
		img->cfg.dgram[i].lo = p->dgram[i].lo;
		img->cfg.dgram[i].hi = p->dgram[i].hi;
	}
	img->cfg.xsk_lo = p->xsk_lo;
	img->cfg.xsk_hi = p->xsk_hi;
	img->cfg.xsk_open = p->xsk_open;
	img->cfg.xsk_addr = p->xsk_addr;
	img->ntenants = p->ntenants;

	/* Tenants that stay keep their slot. */
	for (uint32_t i = 0; i < p->ntenants; i++) {
		img->slot[i] = WPP_SLOTS;
		for (uint32_t s = 0; old && s < WPP_SLOTS; s++) {
			if ((old[s].flags & WPP_TF_VALID) && old[s].id == p->tenants[i].id) {
				img->slot[i] = s;
				used[s] = true;
				break;
			}
		}
	}
	/* New ones get a slot nobody in the old set uses. */
	for (uint32_t i = 0, s = 0; i < p->ntenants; i++) {
		if (img->slot[i] != WPP_SLOTS)
			continue;
		while (s < WPP_SLOTS && (used[s] || (old && (old[s].flags & WPP_TF_VALID))))
			s++;
		if (s == WPP_SLOTS)
			return -ENOSPC; /* cannot happen: WPP_SLOTS = 2 * WPP_MAX_TENANTS */
		img->slot[i] = s;
		used[s] = true;
		img->fresh[s] = true;
		img->reset_bucket[s] = true;
	}

	for (uint32_t i = 0; i < p->ntenants; i++) {
		struct wpp_tenant *t = &img->tenant[i];
		uint32_t s = img->slot[i];

		fill_tenant(&p->tenants[i], t);
		if (old && !img->fresh[s] &&
		    (old[s].pps != t->pps || old[s].pps_cap != t->pps_cap || old[s].bps != t->bps ||
		     old[s].bps_cap != t->bps_cap))
			img->reset_bucket[s] = true;
		for (uint32_t j = 0; j < p->nprefixes; j++) {
			const struct wpp_rprefix *x = &p->prefixes[j];

			if (x->tenant != i)
				continue;
			if (x->v6) {
				struct wpp_e6 *e = &img->e6[img->n6++];

				e->k.prefixlen = 8u + x->len;
				e->k.set = (uint8_t)set;
				memcpy(e->k.addr, x->addr, 16);
				e->v.slot = s;
				e->v.rule = rule++;
			} else {
				struct wpp_e4 *e = &img->e4[img->n4++];

				e->k.prefixlen = 8u + x->len;
				e->k.set = (uint8_t)set;
				memcpy(e->k.addr, x->addr, 4);
				e->v.slot = s;
				e->v.rule = rule++;
			}
		}
		for (uint32_t j = 0; j < t->nranges; j++)
			t->ranges[j].rule = (uint16_t)rule++;
	}
	img->nrules = rule;
	return 0;
}
