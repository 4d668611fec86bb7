// SPDX-License-Identifier: MIT
/*
 * The rules file parser (format: docs/policy.md). Line based, whitespace
 * separated, '#' starts a comment. Everything is checked before anything is
 * returned: a file with one bad line yields no policy at all, only -EINVAL
 * and the first error, logged as "FILE:LINE: reason" through the process
 * log hook (wp_set_log), so a bad file can never partially apply.
 *
 * This is code that reads operator input and, in a daemon, possibly input
 * from elsewhere: it never trusts a length, bounds every copy, and is fuzzed
 * (tests/fuzz/fuzz_rules.c; its replay runs in every `make test`).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "policy.h"

#define LINE_MAX_LEN 1024
#define TOK_MAX 256
#define FILE_MAX (4u << 20)  /* a rules file larger than this is a mistake */
#define BURST_BYTES_MIN 1514 /* one full-size Ethernet frame */

struct parser {
	const char *name;
	struct wp_policy *p;
	struct wpp_rtenant *cur;
	uint32_t line;
	int has_default;
	char *err; /* the _err variants: the error goes here, not to the log */
	size_t errlen;
};

/* The parse error: one line to the process log hook (there is no context). */
__attribute__((format(printf, 2, 3))) static int perr(struct parser *ps, const char *fmt, ...)
{
	char why[WP_LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (ps->err)
		snprintf(ps->err, ps->errlen, "%s:%u: %s", ps->name, ps->line, why);
	else
		wp_log_global(WP_LOG_ERR, "%s:%u: %s", ps->name, ps->line, why);
	return -EINVAL;
}

/* A file-level error ("PATH: reason"): logged, or into err. */
__attribute__((format(printf, 3, 4))) static void ferr(char *err, size_t errlen, const char *fmt,
						       ...)
{
	char why[WP_LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (err)
		snprintf(err, errlen, "%s", why);
	else
		wp_log_global(WP_LOG_ERR, "%s", why);
}

/* ---- numbers ------------------------------------------------------------ */

/* Decimal digits only, no sign, no overflow: s[0..n). */
static int parse_u64n(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	return parse_u64n(s, strlen(s), out);
}

static size_t digits(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

struct unit {
	const char *name;
	uint64_t mult;
};

/* "NUMBER" followed by exactly one of units (or "" when allowed). */
static int parse_with_unit(const char *s, const struct unit *u, size_t nu, uint64_t *out,
			   int *is_frac)
{
	size_t n = digits(s);
	uint64_t v;

	*is_frac = s[n] == '.' || s[n] == ',';
	if (parse_u64n(s, n, &v) < 0)
		return -1;
	for (size_t i = 0; i < nu; i++) {
		if (strcmp(s + n, u[i].name))
			continue;
		if (u[i].mult && v > UINT64_MAX / u[i].mult)
			return -1;
		*out = v * u[i].mult;
		return 0;
	}
	return -1;
}

static const struct unit pps_units[] = {
	{ "pps", 1 },
	{ "kpps", 1000 },
	{ "Mpps", 1000000 },
};
static const struct unit bps_units[] = {
	{ "B/s", 1 },
	{ "KB/s", 1000 },
	{ "MB/s", 1000000 },
	{ "GB/s", 1000000000 },
	{ "KiB/s", 1ull << 10 },
	{ "MiB/s", 1ull << 20 },
	{ "GiB/s", 1ull << 30 },
};
static const struct unit pkt_burst_units[] = {
	{ "", 1 },
	{ "p", 1 },
	{ "k", 1000 },
	{ "M", 1000000 },
};
static const struct unit byte_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "KB", 1000 },
	{ "MB", 1000000 },
	{ "GB", 1000000000 },
	{ "KiB", 1ull << 10 },
	{ "MiB", 1ull << 20 },
	{ "GiB", 1ull << 30 },
};

/* ---- tokens ------------------------------------------------------------- */

struct toks {
	int n;
	const char *t[TOK_MAX];
};

/* Split buf in place at whitespace; ';' is a token of its own. */
static int tokenize(struct parser *ps, char *buf, struct toks *tk)
{
	char *s = buf;

	tk->n = 0;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s)
			break;
		if (tk->n == TOK_MAX)
			return perr(ps, "more than %d words on one line; split it", TOK_MAX);
		if (*s == ';') {
			tk->t[tk->n++] = ";";
			*s++ = '\0';
			continue;
		}
		tk->t[tk->n++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != ';')
			s++;
		if (*s == ';') {
			/* "2000;" -> "2000" ";" : keep the ';' as a token */
			*s = '\0';
			if (tk->n == TOK_MAX)
				return perr(ps, "more than %d words on one line; split it",
					    TOK_MAX);
			tk->t[tk->n++] = ";";
			s++;
		} else if (*s) {
			*s++ = '\0';
		}
	}
	return 0;
}

/* ---- statements --------------------------------------------------------- */

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= WPP_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int wp_policy_key_parse(const char *s, uint8_t key[16])
{
	int zero = 1;

	if (!s || strlen(s) != 32)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[i] = (uint8_t)(hi << 4 | lo);
		zero &= key[i] == 0;
	}
	return zero ? -EDOM : 0;
}

int wp_policy_tenant_key_parse(const char *s, uint32_t *tenant, uint8_t key[16])
{
	const char *colon = s ? strchr(s, ':') : NULL;
	unsigned long long v = 0;
	uint8_t k[16];

	if (!colon || colon == s || colon - s > 10)
		return -EINVAL;
	for (const char *c = s; c < colon; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*c - '0');
	}
	if (v == 0 || v > UINT32_MAX || wp_policy_key_parse(colon + 1, k) < 0)
		return -EINVAL;
	*tenant = (uint32_t)v;
	memcpy(key, k, 16);
	return 0;
}

static int st_default(struct parser *ps, const struct toks *tk)
{
	if (tk->n != 2 || (strcmp(tk->t[1], "pass") && strcmp(tk->t[1], "drop")))
		return perr(ps, "expected 'default pass' or 'default drop'");
	if (ps->has_default)
		return perr(ps, "a second 'default' line; there must be exactly one");
	ps->has_default = 1;
	ps->p->default_verdict = strcmp(tk->t[1], "pass") ? WPP_V_DROP : WPP_V_PASS;
	return 0;
}

/* "[tcp:|udp:]PORT[-PORT]" */
static int parse_ports(struct parser *ps, const char *s, uint8_t dflt_proto, uint16_t *lo,
		       uint16_t *hi, uint8_t *proto)
{
	const char *spec = s, *dash;
	uint64_t a, b;

	*proto = dflt_proto;
	if (!strncmp(s, "tcp:", 4)) {
		*proto = WPP_P_TCP;
		s += 4;
	} else if (!strncmp(s, "udp:", 4)) {
		*proto = WPP_P_UDP;
		s += 4;
	} else if (strchr(s, ':')) {
		return perr(ps, "'%s': the protocol must be tcp: or udp:", spec);
	}
	dash = strchr(s, '-');
	if (dash) {
		if (parse_u64n(s, (size_t)(dash - s), &a) < 0 || parse_u64(dash + 1, &b) < 0)
			return perr(ps, "'%s' is not a port or a range like 7000-7010", spec);
	} else {
		if (parse_u64(s, &a) < 0)
			return perr(ps, "'%s' is not a port or a range like 7000-7010", spec);
		b = a;
	}
	if (a < 1 || a > 65535 || b < 1 || b > 65535)
		return perr(ps, "'%s': ports are 1..65535", spec);
	if (a > b)
		return perr(ps, "'%s': the range runs backwards", spec);
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

static int st_datagram(struct parser *ps, const struct toks *tk)
{
	if (tk->n < 2)
		return perr(ps, "expected 'datagram PORT...' (UDP ports that carry wirepath "
				"frames)");
	for (int i = 1; i < tk->n; i++) {
		uint16_t lo, hi;
		uint8_t proto;
		int ret = parse_ports(ps, tk->t[i], WPP_P_UDP, &lo, &hi, &proto);

		if (ret < 0)
			return ret;
		if (proto != WPP_P_UDP)
			return perr(ps, "'%s': datagram ports are UDP", tk->t[i]);
		if (ps->p->ndgram == WPP_MAX_DGRAM)
			return perr(ps, "more than %d datagram port ranges", WPP_MAX_DGRAM);
		ps->p->dgram[ps->p->ndgram].lo = lo;
		ps->p->dgram[ps->p->ndgram].hi = hi;
		ps->p->ndgram++;
	}
	return 0;
}

static int st_tenant(struct parser *ps, const struct toks *tk)
{
	struct wp_policy *p = ps->p;
	struct wpp_rtenant *t;
	int have_id = 0, have_key = 0;

	if (tk->n < 2)
		return perr(ps, "expected 'tenant NAME id N key HEX32 [admin] [redirect] "
				"[confidential]'");
	if (!valid_name(tk->t[1]))
		return perr(ps, "tenant name '%.40s' must be 1..%d of A-Z a-z 0-9 _ - .", tk->t[1],
			    WPP_NAME_MAX - 1);
	if (p->ntenants == WPP_MAX_TENANTS)
		return perr(ps, "more than %d tenants", WPP_MAX_TENANTS);
	for (uint32_t i = 0; i < p->ntenants; i++)
		if (!strcmp(p->tenants[i].name, tk->t[1]))
			return perr(ps, "tenant '%s' is already defined at line %u", tk->t[1],
				    p->tenants[i].line);
	t = &p->tenants[p->ntenants];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", tk->t[1]);
	t->line = ps->line;
	for (int i = 2; i < tk->n; i++) {
		const char *w = tk->t[i];

		if (!strcmp(w, "id")) {
			uint64_t v;

			if (have_id)
				return perr(ps, "'id' given twice");
			if (i + 1 >= tk->n || parse_u64(tk->t[i + 1], &v) < 0 || v == 0 ||
			    v > UINT32_MAX)
				return perr(ps, "'id' needs a number 1..4294967295 (0 means no "
						"tenant)");
			t->id = (uint32_t)v;
			have_id = 1;
			i++;
		} else if (!strcmp(w, "key")) {
			int r;

			if (have_key)
				return perr(ps, "'key' given twice");
			if (i + 1 >= tk->n)
				return perr(ps, "'key' needs 32 hex digits (16 bytes)");
			r = wp_policy_key_parse(tk->t[i + 1], t->key);
			if (r == -EDOM)
				return perr(ps, "the key is all zeros; use a random one "
						"(e.g. `head -c16 /dev/urandom | xxd -p`)");
			if (r < 0)
				return perr(ps, "'key' needs exactly 32 hex digits (16 bytes)");
			have_key = 1;
			i++;
		} else if (!strcmp(w, "admin")) {
			t->flags |= WP_POLICY_TENANT_ADMIN;
		} else if (!strcmp(w, "redirect")) {
			t->flags |= WP_POLICY_TENANT_REDIRECT;
		} else if (!strcmp(w, "confidential")) {
			t->flags |= WP_POLICY_TENANT_CONFIDENTIAL;
		} else {
			return perr(ps,
				    "unknown tenant option '%.40s' (id, key, admin, redirect, "
				    "confidential)",
				    w);
		}
	}
	if (!have_id)
		return perr(ps, "tenant '%s' has no 'id N'", t->name);
	if (!have_key)
		return perr(ps, "tenant '%s' has no 'key HEX32'", t->name);
	for (uint32_t i = 0; i < p->ntenants; i++) {
		if (p->tenants[i].id == t->id)
			return perr(ps, "id %u is already tenant '%s' (line %u)", t->id,
				    p->tenants[i].name, p->tenants[i].line);
		if (!memcmp(p->tenants[i].key, t->key, 16))
			return perr(ps,
				    "same key as tenant '%s' (line %u); every tenant needs its own",
				    p->tenants[i].name, p->tenants[i].line);
	}
	p->ntenants++;
	ps->cur = t;
	return 0;
}

static int parse_prefix(struct parser *ps, const char *s, struct wpp_rprefix *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t plen;
	int v6 = strchr(s, ':') != NULL, bits;

	if (alen == 0 || alen >= sizeof(addr))
		return perr(ps, "'%.60s' is not an address prefix like 10.0.0.0/8 or fd00::/8", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, out->addr) != 1)
		return perr(ps, "'%.60s' is not an address prefix like 10.0.0.0/8 or fd00::/8", s);
	bits = v6 ? 128 : 32;
	if (slash) {
		if (parse_u64(slash + 1, &plen) < 0 || plen > (uint64_t)bits)
			return perr(ps, "'%.60s': the prefix length must be 0..%d", s, bits);
	} else {
		plen = (uint64_t)bits;
	}
	/* Host bits set is almost always a typo (10.0.0.1/8): refuse it. */
	for (int b = (int)plen; b < bits; b++) {
		if (out->addr[b / 8] & (0x80 >> (b % 8))) {
			char good[64];
			struct wpp_rprefix g = *out;

			for (int c = (int)plen; c < bits; c++)
				g.addr[c / 8] &= (uint8_t) ~(0x80 >> (c % 8));
			wpp_fmt_prefix(good, sizeof(good), g.addr, v6, (unsigned)plen);
			return perr(ps, "'%.60s' has host bits set; did you mean %s?", s, good);
		}
	}
	out->v6 = (uint8_t)v6;
	out->len = (uint8_t)plen;
	out->line = ps->line;
	return 0;
}

static int st_allow(struct parser *ps, const struct toks *tk)
{
	struct wp_policy *p = ps->p;

	if (tk->n < 2)
		return perr(ps, "expected 'allow PREFIX...' (source prefixes of this tenant)");
	for (int i = 1; i < tk->n; i++) {
		struct wpp_rprefix x;
		int ret = parse_prefix(ps, tk->t[i], &x);

		if (ret < 0)
			return ret;
		if ((x.v6 ? p->n6 : p->n4) == WPP_MAX_PREFIXES)
			return perr(ps, "more than %d IPv%d prefixes", WPP_MAX_PREFIXES,
				    x.v6 ? 6 : 4);
		for (uint32_t j = 0; j < p->nprefixes; j++) {
			const struct wpp_rprefix *y = &p->prefixes[j];

			if (y->v6 == x.v6 && y->len == x.len && !memcmp(y->addr, x.addr, 16))
				return perr(ps, "%s is already allowed for tenant '%s' (line %u)",
					    tk->t[i], p->tenants[y->tenant].name, y->line);
		}
		x.tenant = (uint16_t)(ps->cur - p->tenants);
		p->prefixes[p->nprefixes++] = x;
		if (x.v6)
			p->n6++;
		else
			p->n4++;
	}
	return 0;
}

static int st_ports(struct parser *ps, const struct toks *tk)
{
	struct wpp_rtenant *t = ps->cur;

	if (tk->n < 2)
		return perr(ps, "expected 'ports SPEC...' like 'ports 7000 tcp:7001-7010 "
				"udp:7100'");
	for (int i = 1; i < tk->n; i++) {
		struct wpp_rrange r = { .line = ps->line };
		int ret = parse_ports(ps, tk->t[i], WPP_P_TCP | WPP_P_UDP, &r.lo, &r.hi, &r.proto);

		if (ret < 0)
			return ret;
		if (t->nranges == WPP_MAX_RANGES)
			return perr(ps, "tenant '%s' has more than %d port ranges", t->name,
				    WPP_MAX_RANGES);
		t->ranges[t->nranges++] = r;
	}
	return 0;
}

static int is_unit(const char *w, const struct unit *u, size_t nu)
{
	for (size_t i = 0; i < nu; i++)
		if (u[i].name[0] && !strcmp(w, u[i].name))
			return 1;
	return 0;
}

/*
 * One rate: "10000pps burst 2000" or "100MB/s burst 1MB" (the number and
 * the unit may also be two words: "10000 pps").
 */
static int parse_rate(struct parser *ps, const struct toks *tk, int *i, int end)
{
	struct wpp_rtenant *t = ps->cur;
	char val[96];
	uint64_t rate, burst;
	int frac, bytes;

	if (*i >= end)
		return perr(ps, "expected a rate like '10000pps burst 2000' or "
				"'100MB/s burst 1MB'");
	snprintf(val, sizeof(val), "%s", tk->t[*i]);
	(*i)++;
	/* "10000 pps": join a bare number with the unit word that follows. */
	if (digits(val) == strlen(val) && *i < end &&
	    (is_unit(tk->t[*i], pps_units, 3) || is_unit(tk->t[*i], bps_units, 7))) {
		size_t n = strlen(val);

		snprintf(val + n, sizeof(val) - n, "%s", tk->t[*i]);
		(*i)++;
	}
	if (parse_with_unit(val, pps_units, 3, &rate, &frac) == 0) {
		bytes = 0;
	} else if (parse_with_unit(val, bps_units, 7, &rate, &frac) == 0) {
		bytes = 1;
	} else {
		const char *u = val + digits(val);

		if (frac)
			return perr(ps, "'%s': whole numbers only (write 1500KB/s, not 1.5MB/s)",
				    val);
		if (!strcmp(u, "bps") || !strcmp(u, "b/s") || !strcmp(u, "Mbps") ||
		    !strcmp(u, "Gbps") || !strcmp(u, "kbps"))
			return perr(ps,
				    "'%s': rates are in bytes per second (B/s, KB/s, MB/s, "
				    "GB/s, KiB/s, ...) or packets (pps, kpps, Mpps)",
				    val);
		return perr(ps,
			    "'%s' is not a rate: use a number with pps, kpps, Mpps, B/s, "
			    "KB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s",
			    val);
	}
	if (rate < 1 || rate > WPP_RATE_MAX)
		return perr(ps, "'%s': a rate must be 1..%llu per second", val,
			    (unsigned long long)WPP_RATE_MAX);
	if (*i >= end || strcmp(tk->t[*i], "burst"))
		return perr(ps, "'%s' needs 'burst N' after it (the bucket size)", val);
	(*i)++;
	if (*i >= end)
		return perr(ps, "'burst' needs a size");
	snprintf(val, sizeof(val), "%s", tk->t[*i]);
	(*i)++;
	if (digits(val) == strlen(val) && *i < end &&
	    (is_unit(tk->t[*i], byte_units, 8) || is_unit(tk->t[*i], pkt_burst_units, 4))) {
		size_t n = strlen(val);

		snprintf(val + n, sizeof(val) - n, "%s", tk->t[*i]);
		(*i)++;
	}
	if (bytes) {
		if (parse_with_unit(val, byte_units, 8, &burst, &frac) < 0)
			return perr(ps, "burst '%s' is not a size (B, KB, MB, GB, KiB, MiB, GiB)",
				    val);
		if (burst < BURST_BYTES_MIN)
			return perr(ps,
				    "burst %s is below one full-size Ethernet frame (%d B): "
				    "such packets could never pass",
				    val, BURST_BYTES_MIN);
	} else {
		if (parse_with_unit(val, pkt_burst_units, 4, &burst, &frac) < 0)
			return perr(ps, "burst '%s' is not a packet count", val);
		if (burst < 1)
			return perr(ps, "burst must be at least 1 packet");
	}
	if (burst > WPP_BURST_MAX)
		return perr(ps, "burst %s is above the limit of %llu", val,
			    (unsigned long long)WPP_BURST_MAX);
	if (bytes) {
		if (t->bps)
			return perr(ps, "tenant '%s' already has a byte rate", t->name);
		t->bps = rate;
		t->bps_burst = burst;
	} else {
		if (t->pps)
			return perr(ps, "tenant '%s' already has a packet rate", t->name);
		t->pps = rate;
		t->pps_burst = burst;
	}
	return 0;
}

static int st_rate(struct parser *ps, const struct toks *tk)
{
	int i = 1, ret;

	for (;;) {
		ret = parse_rate(ps, tk, &i, tk->n);
		if (ret < 0)
			return ret;
		if (i >= tk->n)
			return 0;
		if (strcmp(tk->t[i], ";"))
			return perr(ps,
				    "unexpected '%.40s' after a rate (separate two rates with "
				    "';')",
				    tk->t[i]);
		i++;
	}
}

/* ---- gateway statements (wirepathd's; docs/policy.md) ------------------- */

/* "sha256:" and 64 hex digits: the SHA-256 of a bearer token. */
static int st_api_key(struct parser *ps, const struct toks *tk)
{
	struct wp_policy *p = ps->p;
	struct wpp_rtenant *t = ps->cur;
	uint8_t d[32];
	const char *h;

	if (tk->n != 2 || strncmp(tk->t[1], "sha256:", 7) || strlen(tk->t[1]) != 7 + 64)
		return perr(ps, "expected 'api_key sha256:HEX64', the SHA-256 of the token "
				"(`wirepath policy hash-key` prints it); never the token itself");
	h = tk->t[1] + 7;
	for (int i = 0; i < 32; i++) {
		int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return perr(ps, "'api_key' needs 64 hex digits after 'sha256:'");
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	for (uint32_t i = 0; i < p->ntenants; i++) {
		const struct wpp_rgw *g = &p->tenants[i].gw;

		for (uint32_t k = 0; k < g->nkeys; k++)
			if (!memcmp(g->keys[k], d, 32))
				return perr(ps,
					    "this api_key is already tenant '%s''s (line %u); "
					    "every token belongs to one tenant",
					    p->tenants[i].name, g->key_line[k]);
	}
	if (t->gw.nkeys == WP_POLICY_GW_KEYS_MAX)
		return perr(ps, "tenant '%s' has more than %d api_key lines", t->name,
			    WP_POLICY_GW_KEYS_MAX);
	memcpy(t->gw.keys[t->gw.nkeys], d, 32);
	t->gw.key_line[t->gw.nkeys++] = ps->line;
	return 0;
}

static const struct unit count_units[] = {
	{ "", 1 },
	{ "k", 1000 },
	{ "M", 1000000 },
};
static const struct unit period_units[] = {
	{ "/s", 1 },
	{ "/m", 60 },
	{ "/h", 3600 },
};

/* "requests N/s|/m|/h burst N", "tokens ..." */
static int st_gw_rate(struct parser *ps, const struct toks *tk)
{
	struct wpp_rgw *g = &ps->cur->gw;
	int tokens = tk->t[0][0] == 't';
	const char *what = tokens ? "token" : "request";
	uint64_t rate = 0, burst;
	uint32_t per = 0;
	size_t n;
	int frac;

	if (tk->n < 2)
		return perr(ps, "expected '%s N/s burst N' (or N/m, N/h)", tk->t[0]);
	n = digits(tk->t[1]);
	if (tk->t[1][n] == '.' || tk->t[1][n] == ',')
		return perr(ps, "'%.40s': whole numbers only (write 90/m, not 1.5/s)", tk->t[1]);
	if (parse_u64n(tk->t[1], n, &rate) < 0)
		return perr(ps,
			    "'%.40s' is not a rate: use N/s, N/m or N/h (per second, minute, "
			    "hour)",
			    tk->t[1]);
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(tk->t[1] + n, period_units[i].name))
			per = (uint32_t)period_units[i].mult;
	if (!per)
		return perr(ps,
			    "'%.40s' is not a rate: use N/s, N/m or N/h (per second, minute, "
			    "hour)",
			    tk->t[1]);
	if (rate < 1 || rate > WPP_RATE_MAX)
		return perr(ps, "'%s': a rate must be 1..%llu per period", tk->t[1],
			    (unsigned long long)WPP_RATE_MAX);
	if (tk->n < 3 || strcmp(tk->t[2], "burst"))
		return perr(ps, "'%s' needs 'burst N' after it (the bucket size)", tk->t[1]);
	if (tk->n < 4)
		return perr(ps, "'burst' needs a count");
	if (parse_with_unit(tk->t[3], count_units, 3, &burst, &frac) < 0)
		return perr(ps, "burst '%.40s' is not a count (digits, k or M allowed)", tk->t[3]);
	if (burst < 1 || burst > WPP_BURST_MAX)
		return perr(ps, "burst %s must be 1..%llu", tk->t[3],
			    (unsigned long long)WPP_BURST_MAX);
	if (tk->n > 4)
		return perr(ps, "unexpected '%.40s' after the %s rate", tk->t[4], what);
	if (tokens ? g->tok : g->req)
		return perr(ps, "tenant '%s' already has a %s rate", ps->cur->name, what);
	if (tokens) {
		g->tok = rate;
		g->tok_per = per;
		g->tok_burst = burst;
	} else {
		g->req = rate;
		g->req_per = per;
		g->req_burst = burst;
	}
	return 0;
}

#define GW_CONC_MAX 1000000

static int st_concurrency(struct parser *ps, const struct toks *tk)
{
	struct wpp_rgw *g = &ps->cur->gw;
	uint64_t v;

	if (tk->n != 2 || parse_u64(tk->t[1], &v) < 0 || v < 1 || v > GW_CONC_MAX)
		return perr(ps, "expected 'concurrency N' with N 1..%d (requests in flight)",
			    GW_CONC_MAX);
	if (g->conc)
		return perr(ps, "tenant '%s' already has a concurrency limit", ps->cur->name);
	g->conc = (uint32_t)v;
	return 0;
}

static const char *gw_glob(const struct wp_policy *p, uint32_t off)
{
	/* Never NULL: a policy without gateway lists has no pool, and
	 * gcc's sanitized builds (-Wformat-overflow) cannot see that no list
	 * then refers to it. */
	return p->gw_pool ? p->gw_pool + off : "";
}

/* A model or tool name glob: printable ASCII, '*' and '?' as wildcards. */
static int valid_glob(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= WP_POLICY_GW_GLOB_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '\\' || c == ';')
			return 0;
	}
	return 1;
}

/* "models GLOB..." / "tools GLOB...": appended, several lines allowed. */
static int st_globs(struct parser *ps, const struct toks *tk)
{
	struct wp_policy *p = ps->p;
	struct wpp_rgw *g = &ps->cur->gw;
	int tools = tk->t[0][0] == 't';
	uint32_t *list = tools ? g->tools : g->models;
	uint32_t *cnt = tools ? &g->ntools : &g->nmodels;

	if (tk->n < 2)
		return perr(ps, "expected '%s GLOB...' (names, '*' and '?' as wildcards)",
			    tk->t[0]);
	for (int i = 1; i < tk->n; i++) {
		const char *w = tk->t[i];
		size_t n = strlen(w);

		if (!valid_glob(w))
			return perr(ps,
				    "'%.40s' is not a name glob: 1..%d printable ASCII bytes, "
				    "'*' and '?' as wildcards, no '[', ']', '\\' or ';'",
				    w, WP_POLICY_GW_GLOB_LEN - 1);
		for (uint32_t j = 0; j < *cnt; j++)
			if (!strcmp(gw_glob(p, list[j]), w))
				return perr(ps, "'%s' is already in tenant '%s''s %s list", w,
					    ps->cur->name, tk->t[0]);
		if (*cnt == WP_POLICY_GW_GLOBS_MAX)
			return perr(ps, "tenant '%s' has more than %d %s globs", ps->cur->name,
				    WP_POLICY_GW_GLOBS_MAX, tk->t[0]);
		if (p->gw_pool_cap - p->gw_pool_len < n + 1) {
			uint32_t cap = p->gw_pool_cap ? p->gw_pool_cap * 2 : 1024;
			char *np;

			while (cap - p->gw_pool_len < n + 1)
				cap *= 2;
			np = realloc(p->gw_pool, cap);
			if (!np)
				return -ENOMEM;
			p->gw_pool = np;
			p->gw_pool_cap = cap;
		}
		memcpy(p->gw_pool + p->gw_pool_len, w, n + 1);
		list[(*cnt)++] = p->gw_pool_len;
		p->gw_pool_len += (uint32_t)n + 1;
	}
	return 0;
}

/* The statements that belong to the tenant line above them. */
static const struct {
	const char *name;
	int (*fn)(struct parser *ps, const struct toks *tk);
} tenant_sts[] = {
	{ "allow", st_allow },
	{ "ports", st_ports },
	{ "rate", st_rate },
	{ "api_key", st_api_key },
	{ "requests", st_gw_rate },
	{ "tokens", st_gw_rate },
	{ "concurrency", st_concurrency },
	{ "models", st_globs },
	{ "tools", st_globs },
};

static int statement(struct parser *ps, char *line)
{
	struct toks tk;
	const char *kw;
	int ret;

	ret = tokenize(ps, line, &tk);
	if (ret < 0 || tk.n == 0)
		return ret;
	kw = tk.t[0];
	if (!strcmp(kw, "default"))
		return st_default(ps, &tk);
	if (!strcmp(kw, "datagram"))
		return st_datagram(ps, &tk);
	if (!strcmp(kw, "tenant"))
		return st_tenant(ps, &tk);
	for (size_t i = 0; i < sizeof(tenant_sts) / sizeof(tenant_sts[0]); i++) {
		if (strcmp(kw, tenant_sts[i].name))
			continue;
		if (!ps->cur)
			return perr(ps, "'%s' before any 'tenant' line: it must follow one", kw);
		return tenant_sts[i].fn(ps, &tk);
	}
	return perr(ps,
		    "unknown statement '%.40s' (default, datagram, tenant, allow, ports, rate, "
		    "api_key, requests, tokens, concurrency, models, tools)",
		    kw);
}

static int parse_text(const char *name, const char *text, size_t len, struct wp_policy **out,
		      char *err, size_t errlen)
{
	struct parser ps = { .name = name ? name : "(rules)", .err = err, .errlen = errlen };
	char buf[LINE_MAX_LEN + 2];
	size_t pos = 0;
	int ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	ps.p = calloc(1, sizeof(*ps.p));
	if (!ps.p) {
		if (err)
			snprintf(err, errlen, "%s: out of memory", ps.name);
		return -ENOMEM;
	}
	snprintf(ps.p->source, sizeof(ps.p->source), "%s", ps.name);
	ps.p->default_verdict = WPP_V_DROP;

	while (pos < len) {
		size_t n = 0;
		int comment = 0;

		ps.line++;
		while (pos < len && text[pos] != '\n') {
			unsigned char c = (unsigned char)text[pos++];

			if (c == '#')
				comment = 1;
			if (comment)
				continue;
			if (c == '\0' || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
				ret = perr(&ps, "control byte 0x%02x: not a text file?", c);
				goto out_free;
			}
			if (n == LINE_MAX_LEN) {
				ret = perr(&ps, "line longer than %d bytes", LINE_MAX_LEN);
				goto out_free;
			}
			buf[n++] = (char)c;
		}
		pos++; /* the '\n' */
		buf[n] = '\0';
		ret = statement(&ps, buf);
		if (ret < 0)
			goto out_free;
	}
	if (!ps.has_default) {
		if (ps.line == 0)
			ps.line = 1;
		ret = perr(&ps, "no 'default pass' or 'default drop' line (exactly one is "
				"required)");
		goto out_free;
	}
	*out = ps.p;
	return 0;

out_free:
	if (ret == -ENOMEM && err)
		snprintf(err, errlen, "%s:%u: out of memory", ps.name, ps.line);
	wp_policy_free(ps.p);
	return ret;
}

int wp_policy_parse(const char *name, const char *text, size_t len, struct wp_policy **out)
{
	return parse_text(name, text, len, out, NULL, 0);
}

int wp_policy_parse_err(const char *name, const char *text, size_t len, struct wp_policy **out,
			char *err, size_t errlen)
{
	return parse_text(name, text, len, out, err ? err : (char[1]){ 0 }, err ? errlen : 1);
}

static int parse_file(const char *path, struct wp_policy **out, char *err, size_t errlen)
{
	struct stat st;
	char *text;
	ssize_t n;
	size_t have = 0;
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		ferr(err, errlen, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EFBIG;
		ferr(err, errlen, "%s: not a regular file of at most %u bytes", path, FILE_MAX);
		close(fd);
		return ret;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		if (err)
			snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (have < (size_t)st.st_size) {
		n = read(fd, text + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	ret = parse_text(path, text, have, out, err, errlen);
	free(text);
	return ret;
}

int wp_policy_parse_file(const char *path, struct wp_policy **out)
{
	return parse_file(path, out, NULL, 0);
}

int wp_policy_parse_file_err(const char *path, struct wp_policy **out, char *err, size_t errlen)
{
	return parse_file(path, out, err ? err : (char[1]){ 0 }, err ? errlen : 1);
}

void wp_policy_free(struct wp_policy *p)
{
	if (!p)
		return;
	free(p->gw_pool);
	free(p);
}

int wp_policy_tenant_count(const struct wp_policy *p)
{
	return (int)p->ntenants;
}

int wp_policy_default(const struct wp_policy *p)
{
	return p->default_verdict == WPP_V_PASS ? WP_VERDICT_PASS : WP_VERDICT_DROP;
}

int wp_policy_tenant_get(const struct wp_policy *p, unsigned i, struct wp_policy_tenant *out)
{
	const struct wpp_rtenant *t;

	if (i >= p->ntenants)
		return -ENOENT;
	t = &p->tenants[i];
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", t->name);
	out->id = t->id;
	out->flags = t->flags;
	memcpy(out->key, t->key, 16);
	out->pps = t->pps;
	out->pps_burst = t->pps_burst;
	out->bps = t->bps;
	out->bps_burst = t->bps_burst;
	out->nranges = t->nranges;
	for (uint32_t j = 0; j < p->nprefixes; j++)
		out->nprefixes += p->prefixes[j].tenant == i;
	return 0;
}

int wp_policy_tenant_gateway(const struct wp_policy *p, unsigned i, struct wp_policy_gateway *out)
{
	const struct wpp_rgw *g;
	struct wp_policy_gateway v = { .sz = sizeof(v) };

	if (!out || out->sz < sizeof(v))
		return -EINVAL;
	if (i >= p->ntenants)
		return -ENOENT;
	g = &p->tenants[i].gw;
	v.nkeys = g->nkeys;
	memcpy(v.api_key_sha256, g->keys, sizeof(v.api_key_sha256));
	v.requests = g->req;
	v.requests_period_s = g->req_per;
	v.requests_burst = g->req_burst;
	v.tokens = g->tok;
	v.tokens_period_s = g->tok_per;
	v.tokens_burst = g->tok_burst;
	v.concurrency = g->conc;
	v.nmodels = g->nmodels;
	v.ntools = g->ntools;
	for (uint32_t j = 0; j < g->nmodels; j++)
		v.models[j] = gw_glob(p, g->models[j]);
	for (uint32_t j = 0; j < g->ntools; j++)
		v.tools[j] = gw_glob(p, g->tools[j]);
	/* this version's fields; a later caller's extra tail is left as it is */
	memcpy(out, &v, sizeof(v));
	return 0;
}

/* ---- formatting ----------------------------------------------------------- */

int wpp_fmt_prefix(char *buf, size_t len, const uint8_t *addr, int v6, unsigned plen)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	return snprintf(buf, len, "%s/%u", a, plen);
}

int wpp_fmt_range(char *buf, size_t len, uint16_t lo, uint16_t hi, uint8_t proto)
{
	const char *pfx = proto == WPP_P_TCP ? "tcp:" : proto == WPP_P_UDP ? "udp:" : "";

	if (lo == hi)
		return snprintf(buf, len, "%s%u", pfx, lo);
	return snprintf(buf, len, "%s%u-%u", pfx, lo, hi);
}

/* A rate in the largest unit that keeps it whole. */
static void fmt_rate(char *buf, size_t len, uint64_t v, int bytes)
{
	if (!bytes) {
		if (v % 1000000 == 0)
			snprintf(buf, len, "%lluMpps", (unsigned long long)(v / 1000000));
		else if (v % 1000 == 0)
			snprintf(buf, len, "%llukpps", (unsigned long long)(v / 1000));
		else
			snprintf(buf, len, "%llupps", (unsigned long long)v);
		return;
	}
	if (v % 1000000000 == 0)
		snprintf(buf, len, "%lluGB/s", (unsigned long long)(v / 1000000000));
	else if (v % 1000000 == 0)
		snprintf(buf, len, "%lluMB/s", (unsigned long long)(v / 1000000));
	else if (v % 1000 == 0)
		snprintf(buf, len, "%lluKB/s", (unsigned long long)(v / 1000));
	else
		snprintf(buf, len, "%lluB/s", (unsigned long long)v);
}

struct out {
	char *buf;
	size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(o->n < o->len ? o->buf + o->n : NULL, o->n < o->len ? o->len - o->n : 0, fmt,
		      ap);
	va_end(ap);
	if (k > 0)
		o->n += (size_t)k;
}

static const char *period_name(uint32_t per)
{
	return per == 3600 ? "h" : per == 60 ? "m" : "s";
}

/* One "  models a b c" list, cut into lines the parser takes back. */
static void dump_globs(struct out *o, const struct wp_policy *p, const char *kw,
		       const uint32_t *list, uint32_t n)
{
	size_t col = 0;

	for (uint32_t j = 0; j < n; j++) {
		const char *g = gw_glob(p, list[j]);

		if (col && col + 1 + strlen(g) > LINE_MAX_LEN - 8) {
			outf(o, "\n");
			col = 0;
		}
		if (!col) {
			outf(o, "  %s", kw);
			col = 2 + strlen(kw);
		}
		outf(o, " %s", g);
		col += 1 + strlen(g);
	}
	if (col)
		outf(o, "\n");
}

static void dump_gw(struct out *o, const struct wp_policy *p, const struct wpp_rtenant *t,
		    unsigned flags)
{
	const struct wpp_rgw *g = &t->gw;

	for (uint32_t k = 0; k < g->nkeys; k++) {
		outf(o, "  api_key sha256:");
		if (flags & WP_POLICY_DUMP_KEYS) {
			for (int b = 0; b < 32; b++)
				outf(o, "%02x", g->keys[k][b]);
		} else {
			outf(o, "redacted");
		}
		outf(o, "\n");
	}
	if (g->req)
		outf(o, "  requests %llu/%s burst %llu\n", (unsigned long long)g->req,
		     period_name(g->req_per), (unsigned long long)g->req_burst);
	if (g->tok)
		outf(o, "  tokens %llu/%s burst %llu\n", (unsigned long long)g->tok,
		     period_name(g->tok_per), (unsigned long long)g->tok_burst);
	if (g->conc)
		outf(o, "  concurrency %u\n", g->conc);
	dump_globs(o, p, "models", g->models, g->nmodels);
	dump_globs(o, p, "tools", g->tools, g->ntools);
}

int wp_policy_dump(const struct wp_policy *p, unsigned flags, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	char s[96];

	if (len)
		buf[0] = '\0';
	if (!(flags & WP_POLICY_DUMP_KEYS))
		outf(&o, "# keys redacted (--keys prints them)\n");
	outf(&o, "default %s\n", p->default_verdict == WPP_V_PASS ? "pass" : "drop");
	if (p->ndgram) {
		outf(&o, "datagram");
		for (uint32_t i = 0; i < p->ndgram; i++) {
			wpp_fmt_range(s, sizeof(s), p->dgram[i].lo, p->dgram[i].hi, 0);
			outf(&o, " %s", s);
		}
		outf(&o, "\n");
	}
	for (uint32_t i = 0; i < p->ntenants; i++) {
		const struct wpp_rtenant *t = &p->tenants[i];
		int any = 0; /* prefixes on the current allow line (8 per line) */

		outf(&o, "tenant %s id %u key ", t->name, t->id);
		if (flags & WP_POLICY_DUMP_KEYS) {
			for (int k = 0; k < 16; k++)
				outf(&o, "%02x", t->key[k]);
		} else {
			outf(&o, "redacted");
		}
		outf(&o, "%s%s%s\n", t->flags & WP_POLICY_TENANT_ADMIN ? " admin" : "",
		     t->flags & WP_POLICY_TENANT_REDIRECT ? " redirect" : "",
		     t->flags & WP_POLICY_TENANT_CONFIDENTIAL ? " confidential" : "");
		for (uint32_t j = 0; j < p->nprefixes; j++) {
			const struct wpp_rprefix *x = &p->prefixes[j];

			if (x->tenant != i)
				continue;
			wpp_fmt_prefix(s, sizeof(s), x->addr, x->v6, x->len);
			outf(&o, "%s %s", any ? "" : "  allow", s);
			if (++any == 8) {
				outf(&o, "\n");
				any = 0;
			}
		}
		if (any)
			outf(&o, "\n");
		if (t->nranges) {
			outf(&o, "  ports");
			for (uint32_t j = 0; j < t->nranges; j++) {
				wpp_fmt_range(s, sizeof(s), t->ranges[j].lo, t->ranges[j].hi,
					      t->ranges[j].proto == (WPP_P_TCP | WPP_P_UDP)
						      ? 0
						      : t->ranges[j].proto);
				outf(&o, " %s", s);
			}
			outf(&o, "\n");
		}
		if (t->pps || t->bps) {
			outf(&o, "  rate");
			if (t->pps) {
				fmt_rate(s, sizeof(s), t->pps, 0);
				outf(&o, " %s burst %llu", s, (unsigned long long)t->pps_burst);
			}
			if (t->bps) {
				fmt_rate(s, sizeof(s), t->bps, 1);
				outf(&o, "%s %s burst %llu", t->pps ? " ;" : "", s,
				     (unsigned long long)t->bps_burst);
			}
			outf(&o, "\n");
		}
		dump_gw(&o, p, t, flags);
	}
	return (int)o.n;
}
