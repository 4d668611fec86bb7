// SPDX-License-Identifier: MIT
/*
 * Reading a rule set back: reason names, counters per reason, verdict,
 * tenant and rule (struct wp_policy_stats and its JSON), and the rules
 * themselves (`show`). Everything works from a struct wpp_view, which the
 * XDP loader fills from the pinned maps and the twin from its arrays, so
 * `wirepath policy stats` prints the same thing whichever enforced the rules.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static const char *const reason_names[WPP_R__COUNT] = {
	[WPP_R_PASS] = "pass",
	[WPP_R_REDIRECT] = "redirect",
	[WPP_R_ARP] = "arp",
	[WPP_R_NDP] = "ndp",
	[WPP_R_NO_TENANT] = "no_tenant",
	[WPP_R_NON_IP] = "non_ip",
	[WPP_R_OTHER_L4] = "other_l4",
	[WPP_R_PORT] = "port",
	[WPP_R_RATE_PPS] = "rate_pps",
	[WPP_R_RATE_BPS] = "rate_bps",
	[WPP_R_AUTH] = "auth",
	[WPP_R_TENANT_MISMATCH] = "tenant_mismatch",
	[WPP_R_BAD_FRAME] = "bad_frame",
	[WPP_R_FRAGMENT] = "fragment",
	[WPP_R_TRUNC_L2] = "trunc_l2",
	[WPP_R_VLAN_DEPTH] = "vlan_depth",
	[WPP_R_BAD_IP] = "bad_ip",
	[WPP_R_BAD_L4] = "bad_l4",
	[WPP_R_IPV6_EXT] = "ipv6_ext",
};

_Static_assert(WPP_R__COUNT <= WP_POLICY_REASONS_MAX, "reasons do not fit the public stats");

unsigned wp_policy_reason_count(void)
{
	return WPP_R__COUNT;
}

const char *wp_policy_reason_name(unsigned reason)
{
	return reason < WPP_R__COUNT ? reason_names[reason] : "unknown";
}

const char *wp_verdict_name(int verdict)
{
	switch (verdict) {
	case WP_VERDICT_DROP:
		return "drop";
	case WP_VERDICT_PASS:
		return "pass";
	case WP_VERDICT_REDIRECT:
		return "redirect";
	}
	return "unknown";
}

/* Reasons a packet can get after its tenant is known (counted per tenant). */
static int tenant_reason(unsigned r)
{
	return r == WPP_R_PASS || r == WPP_R_REDIRECT || r == WPP_R_PORT || r == WPP_R_RATE_PPS ||
	       r == WPP_R_RATE_BPS || r == WPP_R_AUTH || r == WPP_R_TENANT_MISMATCH ||
	       r == WPP_R_BAD_FRAME;
}

void wp_policy_stats_free(struct wp_policy_stats *s)
{
	if (!s)
		return;
	free(s->tenants);
	free(s->rules);
	s->tenants = NULL;
	s->rules = NULL;
	s->ntenants = s->nrules = 0;
}

static int rule_cmp(const void *a, const void *b)
{
	const struct wp_policy_rule_stats *x = a, *y = b;

	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

int wpp_stats_build(const struct wpp_view *v, struct wp_policy_stats *out)
{
	uint32_t nt = 0, nr = v->n4 + v->n6;

	memset(out, 0, sizeof(*out));
	out->nreasons = WPP_R__COUNT;
	out->default_verdict = v->cfg.default_verdict;
	out->active_set = v->active;
	for (int r = 0; r < WPP_R__COUNT; r++) {
		out->reason[r].pkts = v->cnt[r].pkts;
		out->reason[r].bytes = v->cnt[r].bytes;
	}
	for (int i = 0; i < WPP_V__COUNT; i++) {
		out->verdict[i].pkts = v->cnt[WPP_CNT_VERDICT + i].pkts;
		out->verdict[i].bytes = v->cnt[WPP_CNT_VERDICT + i].bytes;
	}
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		if (v->tenants[s].flags & WPP_TF_VALID) {
			nt++;
			nr += v->tenants[s].nranges;
		}
	}
	out->tenants = calloc(nt ? nt : 1, sizeof(*out->tenants));
	out->rules = calloc(nr ? nr : 1, sizeof(*out->rules));
	if (!out->tenants || !out->rules) {
		wp_policy_stats_free(out);
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		const struct wpp_tenant *t = &v->tenants[s];
		struct wp_policy_tenant_stats *ts;

		if (!(t->flags & WPP_TF_VALID))
			continue;
		ts = &out->tenants[out->ntenants++];
		ts->id = t->id;
		ts->slot = s;
		snprintf(ts->name, sizeof(ts->name), "%.*s", WPP_NAME_MAX - 1, t->name);
		for (int r = 0; r < WPP_R__COUNT; r++) {
			const struct wpp_cnt *c = &v->tcnt[s * WPP_R__COUNT + r];

			ts->reason[r] = (struct wp_policy_count){ c->pkts, c->bytes };
		}
		for (uint32_t j = 0; j < t->nranges && j < WPP_MAX_RANGES; j++) {
			struct wp_policy_rule_stats *rs = &out->rules[out->nrules++];
			char spec[32];
			const struct wpp_range *g = &t->ranges[j];

			wpp_fmt_range(spec, sizeof(spec), g->lo, g->hi,
				      g->proto == (WPP_P_TCP | WPP_P_UDP) ? 0 : g->proto);
			rs->rule = g->rule;
			rs->tenant_id = t->id;
			snprintf(rs->text, sizeof(rs->text), "%s ports %s", ts->name, spec);
		}
	}
	for (uint32_t i = 0; i < v->n4 + v->n6; i++) {
		const struct wpp_lpm_val *lv = i < v->n4 ? &v->e4[i].v : &v->e6[i - v->n4].v;
		struct wp_policy_rule_stats *rs = &out->rules[out->nrules++];
		char pfx[48]; /* an IPv6 prefix is at most 43 characters */
		const char *name = "?";

		if (i < v->n4)
			wpp_fmt_prefix(pfx, sizeof(pfx), v->e4[i].k.addr, 0,
				       v->e4[i].k.prefixlen - 8);
		else
			wpp_fmt_prefix(pfx, sizeof(pfx), v->e6[i - v->n4].k.addr, 1,
				       v->e6[i - v->n4].k.prefixlen - 8);
		if (lv->slot < WPP_SLOTS && (v->tenants[lv->slot].flags & WPP_TF_VALID)) {
			name = v->tenants[lv->slot].name;
			rs->tenant_id = v->tenants[lv->slot].id;
		}
		rs->rule = lv->rule;
		snprintf(rs->text, sizeof(rs->text), "%.*s allow %s", WPP_NAME_MAX - 1, name, pfx);
	}
	for (uint32_t i = 0; i < out->nrules; i++) {
		uint32_t r = out->rules[i].rule;

		if (r < WPP_MAX_RULES)
			out->rules[i].c = (struct wp_policy_count){ v->rcnt[r].pkts,
								    v->rcnt[r].bytes };
	}
	qsort(out->rules, out->nrules, sizeof(*out->rules), rule_cmp);
	return 0;
}

/* ---- JSON ------------------------------------------------------------------ */

struct jb {
	char *buf;
	size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void jf(struct jb *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(b->n < b->len ? b->buf + b->n : NULL, b->n < b->len ? b->len - b->n : 0, fmt,
		      ap);
	va_end(ap);
	if (k > 0)
		b->n += (size_t)k;
}

static void jstr(struct jb *b, const char *s)
{
	jf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			jf(b, "\\%c", c);
		else if (c < 0x20)
			jf(b, "\\u%04x", c);
		else
			jf(b, "%c", c);
	}
	jf(b, "\"");
}

static void jcount(struct jb *b, const struct wp_policy_count *c)
{
	jf(b, "{\"pkts\":%llu,\"bytes\":%llu}", (unsigned long long)c->pkts,
	   (unsigned long long)c->bytes);
}

int wp_policy_stats_json(const struct wp_policy_stats *s, char *buf, size_t len)
{
	struct jb b = { buf, len, 0 };

	if (len)
		buf[0] = '\0';
	jf(&b, "{\"active_set\":%u,\"default\":\"%s\",\"verdicts\":{", s->active_set,
	   wp_verdict_name((int)s->default_verdict));
	for (int i = 0; i < 3; i++) {
		jf(&b, "%s\"%s\":", i ? "," : "", wp_verdict_name(i));
		jcount(&b, &s->verdict[i]);
	}
	jf(&b, "},\"reasons\":{");
	for (unsigned r = 0; r < s->nreasons && r < WP_POLICY_REASONS_MAX; r++) {
		jf(&b, "%s\"%s\":", r ? "," : "", wp_policy_reason_name(r));
		jcount(&b, &s->reason[r]);
	}
	jf(&b, "},\"tenants\":[");
	for (uint32_t i = 0; i < s->ntenants; i++) {
		const struct wp_policy_tenant_stats *t = &s->tenants[i];
		int first = 1;

		jf(&b, "%s{\"id\":%u,\"name\":", i ? "," : "", t->id);
		jstr(&b, t->name);
		jf(&b, ",\"slot\":%u,\"reasons\":{", t->slot);
		for (unsigned r = 0; r < s->nreasons && r < WP_POLICY_REASONS_MAX; r++) {
			if (!tenant_reason(r))
				continue;
			jf(&b, "%s\"%s\":", first ? "" : ",", wp_policy_reason_name(r));
			jcount(&b, &t->reason[r]);
			first = 0;
		}
		jf(&b, "}}");
	}
	jf(&b, "],\"rules\":[");
	for (uint32_t i = 0; i < s->nrules; i++) {
		const struct wp_policy_rule_stats *r = &s->rules[i];

		jf(&b, "%s{\"rule\":%u,\"tenant\":%u,\"text\":", i ? "," : "", r->rule,
		   r->tenant_id);
		jstr(&b, r->text);
		jf(&b, ",\"pkts\":%llu,\"bytes\":%llu}", (unsigned long long)r->c.pkts,
		   (unsigned long long)r->c.bytes);
	}
	jf(&b, "]}");
	return (int)b.n;
}

/* ---- show ------------------------------------------------------------------- */

struct ord {
	uint32_t rule, i;
};

static int ord_cmp(const void *a, const void *b)
{
	const struct ord *x = a, *y = b;

	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

int wpp_policy_from_view(const struct wpp_view *v, struct wp_policy **out)
{
	struct wp_policy *p = calloc(1, sizeof(*p));
	uint32_t idx_of[WPP_SLOTS], nall;
	struct ord *order;

	if (!p)
		return -ENOMEM;
	snprintf(p->source, sizeof(p->source), "(loaded)");
	p->default_verdict = v->cfg.default_verdict;
	p->ndgram = v->cfg.ndgram < WPP_MAX_DGRAM ? v->cfg.ndgram : WPP_MAX_DGRAM;
	for (uint32_t i = 0; i < p->ndgram; i++) {
		p->dgram[i].lo = v->cfg.dgram[i].lo;
		p->dgram[i].hi = v->cfg.dgram[i].hi;
	}
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		const struct wpp_tenant *t = &v->tenants[s];
		struct wpp_rtenant *r;

		idx_of[s] = UINT32_MAX;
		if (!(t->flags & WPP_TF_VALID) || p->ntenants == WPP_MAX_TENANTS)
			continue;
		idx_of[s] = p->ntenants;
		r = &p->tenants[p->ntenants++];
		snprintf(r->name, sizeof(r->name), "%.*s", WPP_NAME_MAX - 1, t->name);
		r->id = t->id;
		r->flags = ((t->flags & WPP_TF_ADMIN) ? WP_POLICY_TENANT_ADMIN : 0) |
			   ((t->flags & WPP_TF_REDIRECT) ? WP_POLICY_TENANT_REDIRECT : 0) |
			   ((t->flags & WPP_TF_CONF) ? WP_POLICY_TENANT_CONFIDENTIAL : 0);
		wpp_key_join(t->k0, t->k1, r->key);
		if (t->pps) {
			r->pps = t->pps;
			r->pps_burst = t->pps_cap / WPP_NS;
		}
		if (t->bps) {
			r->bps = t->bps;
			r->bps_burst = t->bps_cap / WPP_NS;
		}
		r->nranges = t->nranges < WPP_MAX_RANGES ? t->nranges : WPP_MAX_RANGES;
		for (uint32_t j = 0; j < r->nranges; j++) {
			r->ranges[j].lo = t->ranges[j].lo;
			r->ranges[j].hi = t->ranges[j].hi;
			r->ranges[j].proto = t->ranges[j].proto;
		}
	}
	/* Prefixes in rule order, which is file order. */
	nall = v->n4 + v->n6;
	order = calloc(nall ? nall : 1, sizeof(*order));
	if (!order) {
		free(p);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nall; i++) {
		order[i].rule = i < v->n4 ? v->e4[i].v.rule : v->e6[i - v->n4].v.rule;
		order[i].i = i;
	}
	qsort(order, nall, sizeof(*order), ord_cmp);
	for (uint32_t k = 0; k < nall && p->nprefixes < 2 * WPP_MAX_PREFIXES; k++) {
		uint32_t i = order[k].i;
		const struct wpp_lpm_val *lv = i < v->n4 ? &v->e4[i].v : &v->e6[i - v->n4].v;
		struct wpp_rprefix *x;

		if (lv->slot >= WPP_SLOTS || idx_of[lv->slot] == UINT32_MAX)
			continue;
		x = &p->prefixes[p->nprefixes++];
		x->tenant = (uint16_t)idx_of[lv->slot];
		if (i < v->n4) {
			x->v6 = 0;
			x->len = (uint8_t)(v->e4[i].k.prefixlen - 8);
			memcpy(x->addr, v->e4[i].k.addr, 4);
			p->n4++;
		} else {
			x->v6 = 1;
			x->len = (uint8_t)(v->e6[i - v->n4].k.prefixlen - 8);
			memcpy(x->addr, v->e6[i - v->n4].k.addr, 16);
			p->n6++;
		}
	}
	free(order);
	*out = p;
	return 0;
}
