// SPDX-License-Identifier: MIT
/*
 * wirepathd's configuration file (docs/daemon.md, "Configuration"): YAML
 * read with libfyaml's document API and checked into one immutable struct
 * wpd_config. Everything is validated before anything is returned, and the
 * first problem is one line "FILE:LINE: reason" naming the line of the
 * offending node: unknown keys (with a did-you-mean), wrong types, bad
 * addresses, URIs, durations and sizes, duplicate names, references to
 * unknown backends or to a backend of the wrong kind, limits out of range.
 *
 * The file is operator input, but a daemon may also be handed one it did
 * not write: the input is bounded (1 MiB), aliases and tags are refused
 * (no billion-laughs expansion), libfyaml's depth limit stays on, every
 * list has a maximum, and every copy is bounded. Fuzzed by
 * tests/fuzz/fuzz_config.c.
 *
 * libfyaml 0.7.12 has no start mark for collection nodes, so a node's line
 * is its own for a scalar and its first key's or item's for a mapping or
 * a sequence; an empty collection gets the line of the key holding it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define CFG_FILE_MAX (1u << 20)
#define CFG_LISTEN_MAX 16
#define CFG_BACKENDS_MAX 256
#define CFG_MODELS_MAX 1024
#define CFG_MCP_MAX 64
#define CFG_ORIGINS_MAX 64
#define CFG_ARGV_MAX 64
#define CFG_ENV_MAX 64
#define CFG_ARG_LEN 4096 /* one argv or env entry */
#define CFG_SHOW 48      /* bytes of a user's word quoted in a message */

struct cp {
	const char *name;
	char *err;
	size_t errlen;
	struct wpd_config *c;
	int failed;
};

/* Quote user text safely inside a one-line message: control and non-ASCII
 * bytes become '?', long words are cut with "...". */
static const char *shown(const char *s, char buf[CFG_SHOW])
{
	size_t i = 0;

	for (; s[i] && i < CFG_SHOW - 4; i++)
		buf[i] = (s[i] < 0x20 || s[i] >= 0x7f) ? '?' : s[i];
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* The first error wins; later ones (there are none: every caller returns
 * at once) would not overwrite it. */
__attribute__((format(printf, 3, 4))) static int cerr(struct cp *cp, int line, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	if (cp->failed)
		return -EINVAL;
	cp->failed = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (cp->err && cp->errlen) {
		if (line > 0)
			snprintf(cp->err, cp->errlen, "%s:%d: %s", cp->name, line, why);
		else
			snprintf(cp->err, cp->errlen, "%s: %s", cp->name, why);
	}
	return -EINVAL;
}

/* ---- nodes ---------------------------------------------------------------- */

/* 1-based line of n (see the file comment); dflt when it has none. */
static int nline(struct fy_node *n, int dflt)
{
	void *it = NULL;

	if (!n)
		return dflt;
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR: {
		struct fy_token *t = fy_node_get_scalar_token(n);
		const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;

		return m ? m->line + 1 : dflt;
	}
	case FYNT_MAPPING: {
		struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);

		return p ? nline(fy_node_pair_key(p), dflt) : dflt;
	}
	case FYNT_SEQUENCE:
		return nline(fy_node_sequence_iterate(n, &it), dflt);
	}
	return dflt;
}

static const char *type_name(struct fy_node *n)
{
	switch (fy_node_get_type(n)) {
	case FYNT_MAPPING:
		return "a mapping";
	case FYNT_SEQUENCE:
		return "a list";
	default:
		return "a scalar";
	}
}

/* What every node we read must pass: no aliases, no tags. */
static int node_ok(struct cp *cp, struct fy_node *n, int line)
{
	size_t tl = 0;

	if (!n)
		return 0;
	if (fy_node_is_alias(n))
		return cerr(cp, nline(n, line),
			    "aliases (*name) are not supported; write the value out");
	if (fy_node_get_tag(n, &tl) && tl)
		return cerr(cp, nline(n, line), "tags (!!type) are not supported; remove it");
	return 0;
}

/* A missing value: `key:` alone, `~` or `null`. */
static int is_null(struct fy_node *n)
{
	const char *s;
	size_t len = 0;

	if (!n)
		return 1;
	if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
		return 0;
	s = fy_node_get_scalar(n, &len);
	return !s || len == 0 || (len == 1 && s[0] == '~') ||
	       (len == 4 &&
		(!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* A scalar's text, NUL-terminated, or an error naming what was expected. */
static int scalar(struct cp *cp, struct fy_node *n, int line, const char *key, const char *what,
		  const char **out, size_t *len)
{
	int ret = node_ok(cp, n, line);

	if (ret)
		return ret;
	if (is_null(n))
		return cerr(cp, nline(n, line), "'%s' has no value; expected %s", key, what);
	if (fy_node_get_type(n) != FYNT_SCALAR)
		return cerr(cp, nline(n, line), "'%s' must be %s, not %s", key, what, type_name(n));
	*out = fy_node_get_scalar0(n);
	*len = fy_node_get_scalar_length(n);
	if (!*out)
		return -ENOMEM;
	if (strlen(*out) != *len)
		return cerr(cp, nline(n, line), "'%s' contains a NUL byte", key);
	return 0;
}

/* A string of 1..size-1 bytes without control characters. */
static int get_str(struct cp *cp, struct fy_node *n, int line, const char *key, char *buf,
		   size_t size)
{
	const char *s;
	size_t len;
	int ret = scalar(cp, n, line, key, "a string", &s, &len);

	if (ret)
		return ret;
	if (len == 0)
		return cerr(cp, nline(n, line), "'%s' is empty", key);
	if (len >= size)
		return cerr(cp, nline(n, line), "'%s' is longer than %zu bytes", key, size - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return cerr(cp, nline(n, line), "'%s' contains a control character", key);
	memcpy(buf, s, len + 1);
	return 0;
}

/* Numbers and booleans are plain scalars: a quoted "64" is a string. */
static int plain(struct cp *cp, struct fy_node *n, int line, const char *key, const char *what,
		 const char **s)
{
	size_t len;
	int ret = scalar(cp, n, line, key, what, s, &len);

	if (ret)
		return ret;
	if (fy_node_get_style(n) != FYNS_PLAIN) {
		char b[CFG_SHOW];

		return cerr(cp, nline(n, line), "'%s' must be %s, not the quoted string \"%s\"",
			    key, what, shown(*s, b));
	}
	return 0;
}

static int get_bool(struct cp *cp, struct fy_node *n, int line, const char *key, int *out)
{
	const char *s;
	char b[CFG_SHOW];
	int ret = plain(cp, n, line, key, "true or false", &s);

	if (ret)
		return ret;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		*out = 1;
	else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		*out = 0;
	else
		return cerr(cp, nline(n, line), "'%s' must be true or false, not '%s'", key,
			    shown(s, b));
	return 0;
}

/* Decimal digits, no sign, no overflow; *end = the first other byte. */
static int digits_u64(const char *s, uint64_t *v, const char **end)
{
	uint64_t x = 0;
	size_t i = 0;

	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	*v = x;
	*end = s + i;
	return 0;
}

static int get_u64(struct cp *cp, struct fy_node *n, int line, const char *key, uint64_t lo,
		   uint64_t hi, uint64_t *out)
{
	const char *s, *end;
	char b[CFG_SHOW];
	uint64_t v;
	int ret = plain(cp, n, line, key, "a number", &s);

	if (ret)
		return ret;
	if (digits_u64(s, &v, &end) < 0 || *end)
		return cerr(cp, nline(n, line), "'%s' must be a whole number, not '%s'", key,
			    shown(s, b));
	if (v < lo || v > hi)
		return cerr(cp, nline(n, line), "'%s' is %llu; it must be %llu..%llu", key,
			    (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
	*out = v;
	return 0;
}

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit dur_units[] = {
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60000 },
	{ "h", 3600000 },
};

static const struct unit size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "KiB", 1ull << 10 },
	{ "MiB", 1ull << 20 },
	{ "GiB", 1ull << 30 },
	{ "KB", 1000 },
	{ "MB", 1000000 },
	{ "GB", 1000000000 },
};

/* "NUMBER UNIT" (no space) into the base unit; -1 bad, -2 overflow. */
static int with_unit(const char *s, const struct unit *u, size_t nu, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (digits_u64(s, &v, &end) < 0)
		return -1;
	for (size_t i = 0; i < nu; i++) {
		if (strcmp(end, u[i].name))
			continue;
		if (v > UINT64_MAX / u[i].mult)
			return -2;
		*out = v * u[i].mult;
		return 0;
	}
	return -1;
}

static void fmt_ms(char *buf, size_t len, uint64_t ms)
{
	if (ms % 3600000 == 0 && ms)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0 && ms)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void fmt_size(char *buf, size_t len, uint64_t v)
{
	if (v % (1ull << 30) == 0 && v)
		snprintf(buf, len, "%lluGiB", (unsigned long long)(v >> 30));
	else if (v % (1ull << 20) == 0 && v)
		snprintf(buf, len, "%lluMiB", (unsigned long long)(v >> 20));
	else if (v % (1ull << 10) == 0 && v)
		snprintf(buf, len, "%lluKiB", (unsigned long long)(v >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* A duration ("10s", "500ms", "2m", "1h") in lo..hi milliseconds. */
static int get_dur(struct cp *cp, struct fy_node *n, int line, const char *key, uint64_t lo,
		   uint64_t hi, uint32_t *out_ms)
{
	const char *s;
	char b[CFG_SHOW], l[32], h[32];
	uint64_t v;
	int ret = plain(cp, n, line, key, "a duration like 10s", &s);

	if (ret)
		return ret;
	ret = with_unit(s, dur_units, sizeof(dur_units) / sizeof(dur_units[0]), &v);
	if (ret == -1) {
		const char *end;
		uint64_t x;

		if (digits_u64(s, &x, &end) == 0 && !*end)
			return cerr(cp, nline(n, line),
				    "'%s': '%s' needs a unit: ms, s, m or h (like %llus)", key,
				    shown(s, b), (unsigned long long)x);
		return cerr(cp, nline(n, line),
			    "'%s': '%s' is not a duration; use a whole number with ms, s, m or h "
			    "(500ms, 10s, 2m, 1h)",
			    key, shown(s, b));
	}
	fmt_ms(l, sizeof(l), lo);
	fmt_ms(h, sizeof(h), hi);
	if (ret < 0 || v < lo || v > hi)
		return cerr(cp, nline(n, line), "'%s': %s is out of range %s..%s", key, shown(s, b),
			    l, h);
	*out_ms = (uint32_t)v;
	return 0;
}

/* A size ("16KiB", "1MiB", plain bytes) in lo..hi bytes. */
static int get_size(struct cp *cp, struct fy_node *n, int line, const char *key, uint64_t lo,
		    uint64_t hi, uint64_t *out)
{
	const char *s;
	char b[CFG_SHOW], l[32], h[32];
	uint64_t v;
	int ret = plain(cp, n, line, key, "a size like 16KiB", &s);

	if (ret)
		return ret;
	ret = with_unit(s, size_units, sizeof(size_units) / sizeof(size_units[0]), &v);
	if (ret == -1)
		return cerr(cp, nline(n, line),
			    "'%s': '%s' is not a size; use bytes or a whole number with KiB, "
			    "MiB, GiB (16KiB) or KB, MB, GB",
			    key, shown(s, b));
	fmt_size(l, sizeof(l), lo);
	fmt_size(h, sizeof(h), hi);
	if (ret < 0 || v < lo || v > hi)
		return cerr(cp, nline(n, line), "'%s': %s is out of range %s..%s", key, shown(s, b),
			    l, h);
	*out = v;
	return 0;
}

/* ---- keys ------------------------------------------------------------------ */

/* Edit distance with transpositions (optimal string alignment), for
 * did-you-mean; short words only. */
static size_t edits(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[33][33];

	if (la > 32 || lb > 32)
		return 99;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* The closest of words to w, if close enough to be a typo. */
static const char *closest(const char *w, const char *const *words, size_t n)
{
	const char *best = NULL;
	size_t bd = 99;

	for (size_t i = 0; i < n; i++) {
		size_t d = edits(w, words[i]), ok = strlen(words[i]) >= 5 ? 2 : 1;

		if (d <= ok && d < bd) {
			bd = d;
			best = words[i];
		}
	}
	return best;
}

static void list_words(char *buf, size_t len, const char *const *words, size_t n)
{
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", words[i]);
}

/* An unknown word among words: "unknown WHAT 'x'; did you mean 'y'?" or
 * the list of the valid ones. */
static int unknown(struct cp *cp, int line, const char *what, const char *where, const char *w,
		   const char *const *words, size_t n)
{
	char b[CFG_SHOW], all[512];
	const char *near = closest(w, words, n);

	if (near)
		return cerr(cp, line, "unknown %s '%s'%s%s; did you mean '%s'?", what, shown(w, b),
			    where[0] ? " in " : "", where, near);
	list_words(all, sizeof(all), words, n);
	return cerr(cp, line, "unknown %s '%s'%s%s (%s)", what, shown(w, b), where[0] ? " in " : "",
		    where, all);
}

/* A mapping's pair: its key as a known word (index into keys), its value,
 * and the key's line. Returns the index or < 0 (the error is set). */
static int map_key(struct cp *cp, struct fy_node_pair *p, const char *where,
		   const char *const *keys, size_t nkeys, struct fy_node **val, int *line, int dflt)
{
	struct fy_node *k = fy_node_pair_key(p);
	const char *s;
	int ret;

	*val = fy_node_pair_value(p);
	*line = nline(k, nline(*val, dflt));
	ret = node_ok(cp, k, *line);
	if (ret)
		return ret;
	if (!k || fy_node_get_type(k) != FYNT_SCALAR || !(s = fy_node_get_scalar0(k)))
		return cerr(cp, *line, "keys must be names%s%s", where[0] ? " in " : "", where);
	for (size_t i = 0; i < nkeys; i++)
		if (!strcmp(s, keys[i]))
			return node_ok(cp, *val, *line) ? -EINVAL : (int)i;
	return unknown(cp, *line, "key", where, s, keys, nkeys);
}

static int want_map(struct cp *cp, struct fy_node *n, int line, const char *key)
{
	if (is_null(n))
		return cerr(cp, line, "'%s' has no value; expected a mapping", key);
	if (fy_node_get_type(n) != FYNT_MAPPING)
		return cerr(cp, nline(n, line), "'%s' must be a mapping (key: value), not %s", key,
			    type_name(n));
	return 0;
}

static int want_seq(struct cp *cp, struct fy_node *n, int line, const char *key, int max,
		    int *count)
{
	if (is_null(n))
		return cerr(cp, line, "'%s' has no value; expected a list", key);
	if (fy_node_get_type(n) != FYNT_SEQUENCE)
		return cerr(cp, nline(n, line), "'%s' must be a list (- item), not %s", key,
			    type_name(n));
	*count = fy_node_sequence_item_count(n);
	if (*count > max)
		return cerr(cp, nline(n, line), "'%s' has %d entries; at most %d", key, *count,
			    max);
	return 0;
}

/* ---- values ---------------------------------------------------------------- */

/* A name: 1..WPD_NAME_MAX-1 of A-Z a-z 0-9 _ - . */
static int get_name(struct cp *cp, struct fy_node *n, int line, const char *key, char *buf)
{
	char b[CFG_SHOW];
	int ret = get_str(cp, n, line, key, buf, WPD_NAME_MAX);

	if (ret)
		return ret;
	for (const char *c = buf; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
			return cerr(cp, nline(n, line),
				    "'%s' is not a name: use 1..%d of A-Z a-z 0-9 _ - .",
				    shown(buf, b), WPD_NAME_MAX - 1);
	return 0;
}

/* "HOST:PORT": an IPv4 literal, [IPv6] or (hosts_ok) a DNS name. */
static int check_hostport(const char *s, int hosts_ok, int port_lo, const char **why)
{
	char host[256];
	const char *colon, *h = s;
	size_t hl;
	uint64_t port;
	const char *end;
	unsigned char a[16];

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':') {
			*why = "an IPv6 address is written [ADDR]:PORT";
			return -1;
		}
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "needs a port: HOST:PORT";
			return -1;
		}
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl)) {
			*why = "an IPv6 address is written [ADDR]:PORT";
			return -1;
		}
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*why = "the host is missing";
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (digits_u64(colon + 1, &port, &end) < 0 || *end || port < (uint64_t)port_lo ||
	    port > 65535) {
		*why = port_lo ? "the port must be 1..65535" : "the port must be 0..65535";
		return -1;
	}
	if (s[0] == '[')
		return inet_pton(AF_INET6, host, a) == 1 ? 0 : (*why = "bad IPv6 address", -1);
	if (inet_pton(AF_INET, host, a) == 1)
		return 0;
	if (!hosts_ok && strcmp(host, "localhost")) {
		*why = "listen on an IP address (127.0.0.1, 0.0.0.0, [::1]) or localhost";
		return -1;
	}
	for (size_t i = 0; i < hl; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.')) {
			*why = "bad host name";
			return -1;
		}
	}
	if (host[strspn(host, "0123456789.")] == '\0') {
		*why = "bad IPv4 address";
		return -1;
	}
	return 0;
}

/* Paths the daemon opens are relative to the config file's folder. */
static int resolve(struct cp *cp, int line, const char *key, char *path, size_t size)
{
	const char *slash = strrchr(cp->c->path, '/');
	char tmp[512];
	int n;

	if (!cp->c->path[0] || path[0] == '/' || path[0] == '@' || !slash)
		return 0;
	n = snprintf(tmp, sizeof(tmp), "%.*s/%s", (int)(slash - cp->c->path), cp->c->path, path);
	if (n < 0 || (size_t)n >= size)
		return cerr(cp, line, "'%s': the path relative to %s is longer than %zu bytes", key,
			    cp->c->path, size - 1);
	memcpy(path, tmp, (size_t)n + 1);
	return 0;
}

static const char *const listen_keys[] = { "tcp", "unix", "io", "tls" };

static int parse_listen1(struct cp *cp, struct fy_node *n, int line, struct wpd_listen *l)
{
	struct fy_node_pair *p;
	struct fy_node *v;
	void *it = NULL;
	char b[CFG_SHOW];
	int k, kl, ret;

	l->line = nline(n, line);
	l->io = WPD_IO_EPOLL;
	ret = want_map(cp, n, line, "listen entry");
	if (ret)
		return ret;
	while ((p = fy_node_mapping_iterate(n, &it))) {
		k = map_key(cp, p, "a listener", listen_keys, 4, &v, &kl, l->line);
		if (k < 0)
			return k;
		switch (k) {
		case 0:
		case 1: {
			const char *why;

			if (l->kind)
				return cerr(cp, kl, "a listener is either tcp or unix, not both");
			l->kind = k == 0 ? WPD_LISTEN_TCP : WPD_LISTEN_UNIX;
			ret = get_str(cp, v, kl, listen_keys[k], l->addr, sizeof(l->addr));
			if (ret)
				return ret;
			if (k == 0 && check_hostport(l->addr, 0, 0, &why) < 0)
				return cerr(cp, nline(v, kl), "tcp: '%s': %s", shown(l->addr, b),
					    why);
			if (k == 1) {
				if (strlen(l->addr) > 107)
					return cerr(cp, nline(v, kl),
						    "unix: a socket path is at most 107 bytes");
				if (!strcmp(l->addr, "@"))
					return cerr(cp, nline(v, kl),
						    "unix: '@' needs a name (@wirepathd)");
				ret = resolve(cp, nline(v, kl), "unix", l->addr, 108);
				if (ret)
					return ret;
			}
			break;
		}
		case 2: {
			char io[WPD_NAME_MAX];
			static const char *const ios[] = { "epoll", "uring" };

			ret = get_str(cp, v, kl, "io", io, sizeof(io));
			if (ret)
				return ret;
			if (!strcmp(io, "epoll"))
				l->io = WPD_IO_EPOLL;
			else if (!strcmp(io, "uring"))
				l->io = WPD_IO_URING;
			else
				return unknown(cp, nline(v, kl), "io", "", io, ios, 2);
			break;
		}
		case 3: {
			static const char *const tk[] = { "cert", "key" };
			struct fy_node_pair *q;
			struct fy_node *tv;
			void *it2 = NULL;
			int ql;

			ret = want_map(cp, v, kl, "tls");
			if (ret)
				return ret;
			while ((q = fy_node_mapping_iterate(v, &it2))) {
				int j = map_key(cp, q, "tls", tk, 2, &tv, &ql, kl);
				char *dst = j == 0 ? l->tls_cert : l->tls_key;

				if (j < 0)
					return j;
				ret = get_str(cp, tv, ql, tk[j], dst, sizeof(l->tls_cert));
				if (!ret)
					ret = resolve(cp, ql, tk[j], dst, sizeof(l->tls_cert));
				if (ret)
					return ret;
			}
			if (!l->tls_cert[0] || !l->tls_key[0])
				return cerr(cp, nline(v, kl),
					    "tls needs both cert and key (PEM files)");
			break;
		}
		}
	}
	if (!l->kind)
		return cerr(cp, l->line, "a listener needs tcp: HOST:PORT or unix: PATH");
	return 0;
}

static int parse_listen(struct cp *cp, struct fy_node *n, int line)
{
	struct wpd_config *c = cp->c;
	struct fy_node *x;
	void *it = NULL;
	int count, ret = want_seq(cp, n, line, "listen", CFG_LISTEN_MAX, &count);

	if (ret)
		return ret;
	if (count == 0)
		return cerr(cp, line, "'listen' is empty; at least one listener is needed");
	c->listen = calloc((size_t)count, sizeof(*c->listen));
	if (!c->listen)
		return -ENOMEM;
	while ((x = fy_node_sequence_iterate(n, &it))) {
		struct wpd_listen *l = &c->listen[c->nlisten];

		ret = node_ok(cp, x, line);
		if (!ret)
			ret = parse_listen1(cp, x, line, l);
		if (ret)
			return ret;
		for (uint32_t i = 0; i < c->nlisten; i++)
			if (c->listen[i].kind == l->kind && !strcmp(c->listen[i].addr, l->addr))
				return cerr(cp, l->line, "'%s' is already a listener (line %d)",
					    l->addr, c->listen[i].line);
		c->nlisten++;
	}
	return 0;
}

/* wirepath URIs (wp_connect): tcp://, uring://, any:// HOST:PORT; shm://@NAME or
 * shm:///PATH. */
static int check_native(const char *u, const char **why)
{
	static const char *const inet[] = { "tcp://", "uring://", "any://" };

	for (size_t i = 0; i < 3; i++)
		if (!strncmp(u, inet[i], strlen(inet[i])))
			return check_hostport(u + strlen(inet[i]), 1, 1, why);
	if (!strncmp(u, "shm://", 6)) {
		const char *r = u + 6;

		if ((r[0] == '@' && r[1]) || (r[0] == '/' && r[1]))
			return 0;
		*why = "a shm URI is shm://@NAME or shm:///PATH";
		return -1;
	}
	*why = "use tcp://HOST:PORT, uring://HOST:PORT, any://HOST:PORT, shm://@NAME or "
	       "shm:///PATH";
	return -1;
}

/* http://HOST:PORT[/prefix] */
static int check_http(const char *u, const char **why)
{
	char hp[300];
	const char *r, *slash;
	size_t n;

	if (!strncmp(u, "https://", 8)) {
		*why = "TLS to an upstream is not supported; use http://";
		return -1;
	}
	if (strncmp(u, "http://", 7)) {
		*why = "expected http://HOST:PORT[/prefix]";
		return -1;
	}
	r = u + 7;
	slash = strchr(r, '/');
	n = slash ? (size_t)(slash - r) : strlen(r);
	if (n >= sizeof(hp)) {
		*why = "the host is too long";
		return -1;
	}
	memcpy(hp, r, n);
	hp[n] = '\0';
	if (strchr(hp, '@')) {
		*why = "credentials in the URL are not supported";
		return -1;
	}
	if (check_hostport(hp, 1, 1, why) < 0)
		return -1;
	for (const char *c = slash; c && *c; c++)
		if (*c == '?' || *c == '#' || *c == ' ' || *c == '%') {
			*why = "the prefix is a plain path (no '?', '#', '%' or spaces)";
			return -1;
		}
	return 0;
}

static int valid_env_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int dup_str(const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int parse_argv(struct cp *cp, struct fy_node *v, int kl, struct wpd_backend *b)
{
	struct fy_node *x;
	void *it = NULL;
	int count, i = 0, ret = want_seq(cp, v, kl, "stdio", CFG_ARGV_MAX, &count);

	if (ret)
		return ret;
	if (count == 0)
		return cerr(cp, kl, "'stdio' is empty; expected [command, arg, ...]");
	b->argv = calloc((size_t)count + 1, sizeof(char *));
	if (!b->argv)
		return -ENOMEM;
	while ((x = fy_node_sequence_iterate(v, &it))) {
		char *arg = malloc(CFG_ARG_LEN);

		if (!arg)
			return -ENOMEM;
		ret = get_str(cp, x, kl, "stdio", arg, CFG_ARG_LEN);
		if (!ret)
			ret = dup_str(arg, &b->argv[i]);
		free(arg);
		if (ret)
			return ret;
		i++;
	}
	return 0;
}

static int parse_env(struct cp *cp, struct fy_node *v, int kl, struct wpd_backend *b)
{
	struct fy_node_pair *p;
	void *it = NULL;
	int count, i = 0, ret = want_map(cp, v, kl, "env");

	if (ret)
		return ret;
	count = fy_node_mapping_item_count(v);
	if (count > CFG_ENV_MAX)
		return cerr(cp, nline(v, kl), "'env' has %d entries; at most %d", count,
			    CFG_ENV_MAX);
	b->env = calloc((size_t)count + 1, sizeof(char *));
	if (!b->env)
		return -ENOMEM;
	while ((p = fy_node_mapping_iterate(v, &it))) {
		struct fy_node *k = fy_node_pair_key(p), *val = fy_node_pair_value(p);
		int line = nline(k, kl);
		const char *name, *s;
		char b2[CFG_SHOW];
		size_t len;

		ret = scalar(cp, k, line, "env", "a variable name", &name, &len);
		if (ret)
			return ret;
		if (!valid_env_name(name))
			return cerr(cp, line,
				    "env: '%s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
				    shown(name, b2));
		ret = scalar(cp, val, line, name, "a string", &s, &len);
		if (ret)
			return ret;
		if (len + strlen(name) + 2 > CFG_ARG_LEN)
			return cerr(cp, line, "env: %s is longer than %d bytes", name,
				    CFG_ARG_LEN - 2);
		b->env[i] = malloc(strlen(name) + len + 2);
		if (!b->env[i])
			return -ENOMEM;
		sprintf(b->env[i], "%s=%s", name, s);
		i++;
	}
	return 0;
}

static const char *const backend_keys[] = { "name", "native", "http",   "stdio",
					    "env",  "pool",   "timeout" };

static int parse_backend1(struct cp *cp, struct fy_node *n, int line, struct wpd_backend *b)
{
	struct fy_node_pair *p;
	struct fy_node *v;
	void *it = NULL;
	int kline[7] = { 0 }, kind_line = 0, ret, kl, k;
	char bb[CFG_SHOW];
	uint64_t u;

	b->line = nline(n, line);
	b->pool = 64;
	b->timeout_ms = 300000;
	ret = want_map(cp, n, line, "backends entry");
	if (ret)
		return ret;
	while ((p = fy_node_mapping_iterate(n, &it))) {
		const char *why;

		k = map_key(cp, p, "a backend", backend_keys, 7, &v, &kl, b->line);
		if (k < 0)
			return k;
		kline[k] = kl;
		if (k >= 1 && k <= 3) {
			if (b->kind)
				return cerr(cp, kl,
					    "a backend is one of native, http or stdio; this one "
					    "already has %s (line %d)",
					    backend_keys[b->kind == WPD_BACKEND_NATIVE ? 1
							 : b->kind == WPD_BACKEND_HTTP ? 2
										       : 3],
					    kind_line);
			kind_line = kl;
		}
		switch (k) {
		case 0:
			ret = get_name(cp, v, kl, "name", b->name);
			break;
		case 1:
			b->kind = WPD_BACKEND_NATIVE;
			ret = get_str(cp, v, kl, "native", b->uri, sizeof(b->uri));
			if (!ret && check_native(b->uri, &why) < 0)
				ret = cerr(cp, nline(v, kl), "native: '%s': %s", shown(b->uri, bb),
					   why);
			break;
		case 2:
			b->kind = WPD_BACKEND_HTTP;
			ret = get_str(cp, v, kl, "http", b->url, sizeof(b->url));
			if (!ret && check_http(b->url, &why) < 0)
				ret = cerr(cp, nline(v, kl), "http: '%s': %s", shown(b->url, bb),
					   why);
			break;
		case 3:
			b->kind = WPD_BACKEND_STDIO;
			ret = parse_argv(cp, v, kl, b);
			break;
		case 4:
			ret = parse_env(cp, v, kl, b);
			break;
		case 5:
			ret = get_u64(cp, v, kl, "pool", 1, 4096, &u);
			b->pool = (uint32_t)u;
			break;
		case 6:
			ret = get_dur(cp, v, kl, "timeout", 1, 24 * 3600000ull, &b->timeout_ms);
			break;
		}
		if (ret)
			return ret;
	}
	if (!b->name[0])
		return cerr(cp, b->line, "a backend needs a name");
	if (!b->kind)
		return cerr(cp, b->line, "backend '%s' needs one of native, http or stdio",
			    b->name);
	if (kline[4] && b->kind != WPD_BACKEND_STDIO)
		return cerr(cp, kline[4], "backend '%s': 'env' is for stdio backends", b->name);
	if (kline[5] && b->kind != WPD_BACKEND_HTTP)
		return cerr(cp, kline[5], "backend '%s': 'pool' is for http backends", b->name);
	return 0;
}

static int parse_backends(struct cp *cp, struct fy_node *n, int line)
{
	struct wpd_config *c = cp->c;
	struct fy_node *x;
	void *it = NULL;
	int count, ret = want_seq(cp, n, line, "backends", CFG_BACKENDS_MAX, &count);

	if (ret)
		return ret;
	c->backends = calloc((size_t)count + 1, sizeof(*c->backends));
	if (!c->backends)
		return -ENOMEM;
	while ((x = fy_node_sequence_iterate(n, &it))) {
		struct wpd_backend *b = &c->backends[c->nbackends];
		int dup;

		/* counted now, so wpd_config_free frees what a failure left */
		c->nbackends++;
		ret = node_ok(cp, x, line);
		if (!ret)
			ret = parse_backend1(cp, x, line, b);
		if (ret)
			return ret;
		dup = wpd_config_backend(c, b->name);
		if (dup >= 0 && (uint32_t)dup != c->nbackends - 1)
			return cerr(cp, b->line, "backend '%s' is already defined at line %d",
				    b->name, c->backends[dup].line);
	}
	return 0;
}

/* "backend: NAME" resolved to an index; models need one that speaks
 * OpenAI (native or http). */
static int backend_ref(struct cp *cp, struct fy_node *v, int kl, const char *owner,
		       const char *oname, uint32_t *out)
{
	struct wpd_config *c = cp->c;
	char name[WPD_NAME_MAX], b[CFG_SHOW];
	const char *words[CFG_BACKENDS_MAX];
	int i, ret = get_str(cp, v, kl, "backend", name, sizeof(name));

	if (ret)
		return ret;
	i = wpd_config_backend(c, name);
	if (i < 0) {
		const char *near;

		for (uint32_t j = 0; j < c->nbackends; j++)
			words[j] = c->backends[j].name;
		near = closest(name, words, c->nbackends);
		if (near)
			return cerr(cp, nline(v, kl),
				    "%s '%s': no backend '%s'; did you mean '%s'?", owner, oname,
				    shown(name, b), near);
		return cerr(cp, nline(v, kl), "%s '%s': no backend '%s' in 'backends'", owner,
			    oname, shown(name, b));
	}
	*out = (uint32_t)i;
	return 0;
}

static const char *const model_keys[] = { "name", "backend" };

static int parse_models(struct cp *cp, struct fy_node *n, int line)
{
	struct wpd_config *c = cp->c;
	struct fy_node *x;
	void *it = NULL;
	int count, ret = want_seq(cp, n, line, "models", CFG_MODELS_MAX, &count);

	if (ret)
		return ret;
	c->models = calloc((size_t)count + 1, sizeof(*c->models));
	if (!c->models)
		return -ENOMEM;
	while ((x = fy_node_sequence_iterate(n, &it))) {
		struct wpd_model *m = &c->models[c->nmodels];
		struct fy_node_pair *p;
		struct fy_node *v, *bnode = NULL;
		void *it2 = NULL;
		int kl, bl = 0;
		char b[CFG_SHOW];

		m->line = nline(x, line);
		ret = node_ok(cp, x, line);
		if (!ret)
			ret = want_map(cp, x, line, "models entry");
		if (ret)
			return ret;
		while ((p = fy_node_mapping_iterate(x, &it2))) {
			int k = map_key(cp, p, "a model", model_keys, 2, &v, &kl, m->line);

			if (k < 0)
				return k;
			if (k == 0) {
				ret = get_str(cp, v, kl, "name", m->name, sizeof(m->name));
				if (ret)
					return ret;
				for (const char *s = m->name; *s; s++)
					if (*s <= ' ' || *s >= 0x7f || *s == '"' || *s == '\\')
						return cerr(cp, nline(v, kl),
							    "model name '%s': printable ASCII "
							    "without spaces, quotes or '\\'",
							    shown(m->name, b));
			} else {
				bnode = v;
				bl = kl;
			}
		}
		if (!m->name[0])
			return cerr(cp, m->line, "a model needs a name");
		if (!bnode)
			return cerr(cp, m->line, "model '%s' needs a backend", m->name);
		ret = backend_ref(cp, bnode, bl, "model", m->name, &m->backend);
		if (ret)
			return ret;
		if (c->backends[m->backend].kind == WPD_BACKEND_STDIO)
			return cerr(cp, nline(bnode, bl),
				    "model '%s': backend '%s' is stdio, which serves MCP tools, "
				    "not models; use a native or http backend",
				    m->name, c->backends[m->backend].name);
		for (uint32_t i = 0; i < c->nmodels; i++)
			if (!strcmp(c->models[i].name, m->name))
				return cerr(cp, m->line, "model '%s' is already defined at line %d",
					    m->name, c->models[i].line);
		c->nmodels++;
	}
	return 0;
}

static const char *const server_keys[] = { "name", "backend", "prefix" };

static int parse_servers(struct cp *cp, struct fy_node *n, int line)
{
	struct wpd_config *c = cp->c;
	struct fy_node *x;
	void *it = NULL;
	int count, ret = want_seq(cp, n, line, "servers", CFG_MCP_MAX, &count);

	if (ret)
		return ret;
	c->mcp = calloc((size_t)count + 1, sizeof(*c->mcp));
	if (!c->mcp)
		return -ENOMEM;
	while ((x = fy_node_sequence_iterate(n, &it))) {
		struct wpd_mcp_server *s = &c->mcp[c->nmcp];
		struct fy_node_pair *p;
		struct fy_node *v, *bnode = NULL;
		void *it2 = NULL;
		int kl, bl = 0, pl = 0, has_prefix = 0;

		s->line = nline(x, line);
		ret = node_ok(cp, x, line);
		if (!ret)
			ret = want_map(cp, x, line, "servers entry");
		if (ret)
			return ret;
		while ((p = fy_node_mapping_iterate(x, &it2))) {
			int k = map_key(cp, p, "an MCP server", server_keys, 3, &v, &kl, s->line);

			if (k < 0)
				return k;
			if (k == 0) {
				ret = get_name(cp, v, kl, "name", s->name);
			} else if (k == 1) {
				bnode = v;
				bl = kl;
			} else {
				ret = get_name(cp, v, kl, "prefix", s->prefix);
				has_prefix = 1;
				pl = nline(v, kl);
			}
			if (ret)
				return ret;
		}
		if (!s->name[0])
			return cerr(cp, s->line, "an MCP server needs a name");
		if (!bnode)
			return cerr(cp, s->line, "MCP server '%s' needs a backend", s->name);
		ret = backend_ref(cp, bnode, bl, "MCP server", s->name, &s->backend);
		if (ret)
			return ret;
		if (!has_prefix) {
			pl = s->line;
			if (strlen(s->name) + 1 >= sizeof(s->prefix))
				return cerr(
					cp, s->line,
					"MCP server '%s': the default prefix NAME_ is too long; "
					"set 'prefix'",
					s->name);
			snprintf(s->prefix, sizeof(s->prefix), "%s_", s->name);
		}
		for (uint32_t i = 0; i < c->nmcp; i++) {
			const struct wpd_mcp_server *o = &c->mcp[i];
			size_t a = strlen(o->prefix), b = strlen(s->prefix);

			if (!strcmp(o->name, s->name))
				return cerr(cp, s->line,
					    "MCP server '%s' is already defined at line %d",
					    s->name, o->line);
			if (!strncmp(o->prefix, s->prefix, a < b ? a : b))
				return cerr(cp, pl,
					    "MCP server '%s': prefix '%s' and server '%s''s prefix "
					    "'%s' (line %d) overlap; tool names would be ambiguous",
					    s->name, s->prefix, o->name, o->prefix, o->line);
		}
		c->nmcp++;
	}
	return 0;
}

/* An Origin value: http(s)://HOST[:PORT], nothing after. */
static int check_origin(const char *o)
{
	const char *r;

	if (!strncmp(o, "http://", 7))
		r = o + 7;
	else if (!strncmp(o, "https://", 8))
		r = o + 8;
	else
		return -1;
	if (!*r || *r == ':')
		return -1;
	for (; *r; r++)
		if (*r == '/' || *r <= ' ' || *r >= 0x7f || *r == '?' || *r == '#' || *r == '@')
			return -1;
	return 0;
}

static int parse_origins(struct cp *cp, struct fy_node *n, int line)
{
	struct wpd_config *c = cp->c;
	struct fy_node *x;
	void *it = NULL;
	int count, i = 0, ret = want_seq(cp, n, line, "origins", CFG_ORIGINS_MAX, &count);

	if (ret)
		return ret;
	c->mcp_origins = calloc((size_t)count + 1, sizeof(char *));
	if (!c->mcp_origins)
		return -ENOMEM;
	while ((x = fy_node_sequence_iterate(n, &it))) {
		char o[256], b[CFG_SHOW];

		ret = get_str(cp, x, line, "origins", o, sizeof(o));
		if (ret)
			return ret;
		if (check_origin(o) < 0)
			return cerr(cp, nline(x, line),
				    "origins: '%s' is not an origin like http://localhost:3000 "
				    "(scheme, host, optional port; no path)",
				    shown(o, b));
		ret = dup_str(o, &c->mcp_origins[i++]);
		if (ret)
			return ret;
	}
	return 0;
}

static const char *const mcp_keys[] = { "servers", "origins" };

static int parse_mcp(struct cp *cp, struct fy_node *n, int line)
{
	struct fy_node_pair *p;
	struct fy_node *v;
	void *it = NULL;
	int kl, ret = want_map(cp, n, line, "mcp");

	if (ret)
		return ret;
	while ((p = fy_node_mapping_iterate(n, &it))) {
		int k = map_key(cp, p, "mcp", mcp_keys, 2, &v, &kl, line);

		if (k < 0)
			return k;
		ret = k == 0 ? parse_servers(cp, v, kl) : parse_origins(cp, v, kl);
		if (ret)
			return ret;
	}
	return 0;
}

static const char *const limit_keys[] = {
	"conns",        "header_bytes", "body_bytes", "header_timeout", "body_timeout",
	"idle_timeout", "rx_budget",    "out_bytes",  "mcp_sessions",   "mcp_session_idle",
};

static int parse_limits(struct cp *cp, struct fy_node *n, int line)
{
	struct wpd_limits *l = &cp->c->limits;
	struct fy_node_pair *p;
	struct fy_node *v;
	void *it = NULL;
	int kl, rx_line = 0, ret = want_map(cp, n, line, "limits");
	uint64_t u;
	char a[32], b[32];

	if (ret)
		return ret;
	while ((p = fy_node_mapping_iterate(n, &it))) {
		int k = map_key(cp, p, "limits", limit_keys, 10, &v, &kl, line);

		if (k < 0)
			return k;
		switch (k) {
		case 0:
			ret = get_u64(cp, v, kl, "conns", 1, 1000000, &u);
			l->conns_max = (uint32_t)u;
			break;
		case 1:
			ret = get_size(cp, v, kl, "header_bytes", 1024, 1 << 20, &u);
			l->header_bytes = (uint32_t)u;
			break;
		case 2:
			ret = get_size(cp, v, kl, "body_bytes", 1024, 1ull << 30, &l->body_bytes);
			break;
		case 3:
			ret = get_dur(cp, v, kl, "header_timeout", 100, 3600000,
				      &l->header_timeout_ms);
			break;
		case 4:
			ret = get_dur(cp, v, kl, "body_timeout", 100, 3600000, &l->body_timeout_ms);
			break;
		case 5:
			ret = get_dur(cp, v, kl, "idle_timeout", 100, 3600000, &l->idle_timeout_ms);
			break;
		case 6:
			ret = get_size(cp, v, kl, "rx_budget", 1 << 20, 64ull << 30, &l->rx_budget);
			rx_line = nline(v, kl);
			break;
		case 7:
			ret = get_size(cp, v, kl, "out_bytes", 64 << 10, 1ull << 30, &l->out_bytes);
			break;
		case 8:
			ret = get_u64(cp, v, kl, "mcp_sessions", 1, 1000000, &u);
			l->mcp_sessions_max = (uint32_t)u;
			break;
		case 9:
			ret = get_dur(cp, v, kl, "mcp_session_idle", 1000, 7 * 24 * 3600000u,
				      &l->mcp_session_idle_ms);
			break;
		}
		if (ret)
			return ret;
	}
	/* One whole request must fit the budget, or none is ever served. */
	if (l->rx_budget < l->body_bytes + l->header_bytes) {
		fmt_size(a, sizeof(a), l->rx_budget);
		fmt_size(b, sizeof(b), l->body_bytes + l->header_bytes);
		return cerr(cp, rx_line ? rx_line : nline(n, line),
			    "limits: rx_budget %s is below header_bytes + body_bytes (%s): a "
			    "largest request could never be whole",
			    a, b);
	}
	return 0;
}

/* ---- the document ------------------------------------------------------------ */

enum {
	K_LISTEN,
	K_POLICY,
	K_AUTH,
	K_XDP,
	K_BACKENDS,
	K_MODELS,
	K_MCP,
	K_LIMITS,
	K_METRICS,
	K_ACCESS_LOG,
	K_USER,
	K_DRAIN,
	K__COUNT
};
static const char *const top_keys[] = { "listen",   "policy",     "auth", "xdp",
					"backends", "models",     "mcp",  "limits",
					"metrics",  "access_log", "user", "drain" };

static void defaults(struct wpd_config *c)
{
	c->limits = (struct wpd_limits){
		.conns_max = 10000,
		.header_bytes = 16 << 10,
		.body_bytes = 1 << 20,
		.header_timeout_ms = 10000,
		.body_timeout_ms = 30000,
		.idle_timeout_ms = 60000,
		.rx_budget = 256ull << 20,
		.out_bytes = 8 << 20,
		.mcp_sessions_max = 10000,
		.mcp_session_idle_ms = 30 * 60000,
	};
	c->metrics = 1;
	c->drain_ms = 10000;
}

static int parse_root(struct cp *cp, struct fy_node *root)
{
	struct wpd_config *c = cp->c;
	struct fy_node *val[K__COUNT] = { 0 };
	int line[K__COUNT] = { 0 }, first = nline(root, 1), ret;
	struct fy_node_pair *p;
	void *it = NULL;
	char b[CFG_SHOW];

	if (root) {
		ret = node_ok(cp, root, 1);
		if (ret)
			return ret;
		if (is_null(root))
			root = NULL;
		else if (fy_node_get_type(root) != FYNT_MAPPING)
			return cerr(cp, first,
				    "the configuration must be a mapping (listen:, backends:, "
				    "...), not %s",
				    type_name(root));
	}
	while (root && (p = fy_node_mapping_iterate(root, &it))) {
		struct fy_node *v;
		int kl, k = map_key(cp, p, "", top_keys, K__COUNT, &v, &kl, first);

		if (k < 0)
			return k;
		val[k] = v;
		line[k] = kl;
	}
	/* In dependency order: backends before what names them. */
	if (!line[K_LISTEN])
		return cerr(cp, first,
			    "no listener: add 'listen:' with at least one entry "
			    "(- tcp: 127.0.0.1:8080)");
	ret = parse_listen(cp, val[K_LISTEN], line[K_LISTEN]);
	if (ret)
		return ret;
	if (line[K_POLICY]) {
		ret = get_str(cp, val[K_POLICY], line[K_POLICY], "policy", c->policy,
			      sizeof(c->policy));
		if (!ret)
			ret = resolve(cp, line[K_POLICY], "policy", c->policy, sizeof(c->policy));
		if (ret)
			return ret;
		c->policy_line = line[K_POLICY];
	}
	if (line[K_AUTH]) {
		char a[16];

		ret = get_str(cp, val[K_AUTH], line[K_AUTH], "auth", a, sizeof(a));
		if (ret == -EINVAL) {
			cp->failed = 0;
			return cerr(cp, nline(val[K_AUTH], line[K_AUTH]),
				    "'auth' can only be 'none' (serve without API keys); API keys "
				    "come from the 'policy' rules file");
		}
		if (ret)
			return ret;
		if (strcmp(a, "none"))
			return cerr(cp, nline(val[K_AUTH], line[K_AUTH]),
				    "'auth: %s': 'auth' can only be 'none' (serve without API "
				    "keys); API keys come from the 'policy' rules file",
				    shown(a, b));
		c->auth_none = 1;
	}
	if (line[K_POLICY] && line[K_AUTH])
		return cerr(cp, line[K_AUTH] > line[K_POLICY] ? line[K_AUTH] : line[K_POLICY],
			    "'policy' and 'auth: none' contradict: keep one");
	if (!line[K_POLICY] && !line[K_AUTH])
		return cerr(cp, first,
			    "no 'policy' (the rules file with tenants and API keys) and no "
			    "'auth: none'; one is required");
	if (line[K_XDP]) {
		ret = get_str(cp, val[K_XDP], line[K_XDP], "xdp", c->xdp_iface,
			      sizeof(c->xdp_iface));
		if (ret)
			return ret;
		if (strlen(c->xdp_iface) >= IF_NAMESIZE || strchr(c->xdp_iface, '/') ||
		    strchr(c->xdp_iface, ' ') || !strcmp(c->xdp_iface, ".") ||
		    !strcmp(c->xdp_iface, ".."))
			return cerr(cp, nline(val[K_XDP], line[K_XDP]),
				    "xdp: '%s' is not an interface name (1..%d bytes, no '/' or "
				    "spaces)",
				    shown(c->xdp_iface, b), IF_NAMESIZE - 1);
		c->xdp_line = line[K_XDP];
	}
	if (line[K_BACKENDS]) {
		ret = parse_backends(cp, val[K_BACKENDS], line[K_BACKENDS]);
		if (ret)
			return ret;
	}
	if (line[K_MODELS]) {
		ret = parse_models(cp, val[K_MODELS], line[K_MODELS]);
		if (ret)
			return ret;
	}
	if (line[K_MCP]) {
		ret = parse_mcp(cp, val[K_MCP], line[K_MCP]);
		if (ret)
			return ret;
	}
	if (line[K_LIMITS]) {
		ret = parse_limits(cp, val[K_LIMITS], line[K_LIMITS]);
		if (ret)
			return ret;
	}
	if (line[K_METRICS]) {
		ret = get_bool(cp, val[K_METRICS], line[K_METRICS], "metrics", &c->metrics);
		if (ret)
			return ret;
	}
	if (line[K_ACCESS_LOG]) {
		ret = get_str(cp, val[K_ACCESS_LOG], line[K_ACCESS_LOG], "access_log",
			      c->access_log, sizeof(c->access_log));
		if (!ret)
			ret = resolve(cp, line[K_ACCESS_LOG], "access_log", c->access_log,
				      sizeof(c->access_log));
		if (ret)
			return ret;
	}
	if (line[K_USER]) {
		ret = get_str(cp, val[K_USER], line[K_USER], "user", c->user, sizeof(c->user));
		if (ret)
			return ret;
		for (const char *s = c->user; *s; s++)
			if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
				return cerr(cp, nline(val[K_USER], line[K_USER]),
					    "user: '%s' is not a user name", shown(c->user, b));
	}
	if (line[K_DRAIN]) {
		ret = get_dur(cp, val[K_DRAIN], line[K_DRAIN], "drain", 0, 3600000, &c->drain_ms);
		if (ret)
			return ret;
	}
	return 0;
}

/* libfyaml's own errors (syntax, duplicate keys): its first, as FILE:LINE. */
static int yaml_error(struct cp *cp, struct fy_diag *diag, int lines)
{
	struct fy_diag_error *e;
	void *it = NULL;

	while ((e = fy_diag_errors_iterate(diag, &it))) {
		char msg[256];

		if (e->type < FYET_ERROR)
			continue;
		snprintf(msg, sizeof(msg), "%s", e->msg ? e->msg : "YAML error");
		for (char *s = msg; *s; s++)
			if ((unsigned char)*s < 0x20)
				*s = ' ';
		/* at the end of input without a final newline libfyaml counts
		 * one line more than there is */
		return cerr(cp,
			    e->line < 1       ? 1
			    : e->line > lines ? lines
					      : e->line,
			    "YAML: %s", msg);
	}
	return cerr(cp, 1, "YAML: the document could not be parsed");
}

/*
 * YAML is UTF-8; libfyaml 0.7.12 loops forever on some invalid sequences
 * (one in a directive line: "%@\xcb"), so invalid UTF-8 is refused before
 * it sees the text. Returns 0, the 1-based line of the first bad byte, or
 * minus the line of a CR without LF.
 */
static int utf8_bad_line(const unsigned char *s, size_t len)
{
	int line = 1;

	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			/* a CR alone breaks a line for YAML, not for our line
			 * numbers (nor for most editors): refuse it */
			if (c == '\r' && (i + 1 == len || s[i + 1] != '\n'))
				return -line;
			line += c == '\n';
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return line;
		}
		if (len - i <= n)
			return line;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return line;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return line;
		i += n + 1;
	}
	return 0;
}

int wpd_config_parse(const char *name, const char *text, size_t len, struct wpd_config **out,
		     char *err, size_t errlen)
{
	struct cp cp = { .name = name ? name : "(config)", .err = err, .errlen = errlen };
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg;
	struct fy_diag *diag;
	struct fy_parser *fyp;
	struct fy_document *doc = NULL, *more;
	int ret, lines = 1;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len > CFG_FILE_MAX)
		return cerr(&cp, 0, "larger than %u bytes", CFG_FILE_MAX);
	if (len &&
	    memchr(text, '\0', len)) /* memchr(NULL, 0) is undefined (the fuzzer's empty input) */
		return cerr(&cp, 0, "contains a NUL byte: not a text file?");
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	ret = utf8_bad_line((const unsigned char *)text, len);
	if (ret > 0)
		return cerr(&cp, ret, "not valid UTF-8");
	if (ret < 0)
		return cerr(&cp, -ret, "a CR without LF; end lines with LF or CR LF");
	cp.c = calloc(1, sizeof(*cp.c));
	if (!cp.c)
		return -ENOMEM;
	defaults(cp.c);
	if (strlen(cp.name) >= sizeof(cp.c->path)) {
		ret = cerr(&cp, 0, "the file name is longer than %zu bytes",
			   sizeof(cp.c->path) - 1);
		goto out_free;
	}
	snprintf(cp.c->path, sizeof(cp.c->path), "%s", cp.name);

	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.level = FYET_ERROR;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		ret = -ENOMEM;
		goto out_free;
	}
	fy_diag_set_collect_errors(diag, true);
	pcfg = (struct fy_parse_cfg){ .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 |
					       FYPCF_JSON_NONE,
				      .diag = diag };
	fyp = fy_parser_create(&pcfg);
	if (!fyp) {
		ret = -ENOMEM;
		goto out_diag;
	}
	if (fy_parser_set_string(fyp, len ? text : "", len)) {
		ret = -ENOMEM;
		goto out_parser;
	}
	doc = fy_parse_load_document(fyp);
	if (!doc && fy_parser_get_stream_error(fyp)) {
		ret = yaml_error(&cp, diag, lines);
		goto out_parser;
	}
	/* A second document ('---') would be silently ignored: refuse it. */
	if (doc) {
		more = fy_parse_load_document(fyp);
		if (more) {
			ret = cerr(&cp, nline(fy_document_root(more), 1),
				   "a second YAML document ('---'): the configuration is one "
				   "document");
			fy_parse_document_destroy(fyp, more);
			goto out_doc;
		}
		if (fy_parser_get_stream_error(fyp)) {
			ret = yaml_error(&cp, diag, lines);
			goto out_doc;
		}
	}
	ret = parse_root(&cp, doc ? fy_document_root(doc) : NULL);
	if (ret == -ENOMEM && !cp.failed)
		cerr(&cp, 0, "out of memory");
out_doc:
	if (doc)
		fy_parse_document_destroy(fyp, doc);
out_parser:
	fy_parser_destroy(fyp);
out_diag:
	fy_diag_destroy(diag);
out_free:
	if (ret) {
		wpd_config_free(cp.c);
		return ret;
	}
	*out = cp.c;
	return 0;
}

int wpd_config_load(const char *path, struct wpd_config **out, char *err, size_t errlen)
{
	struct stat st;
	char *text, none[1];
	size_t have = 0;
	ssize_t n;
	int fd, ret;

	*out = NULL;
	if (!err || !errlen) {
		err = none;
		errlen = sizeof(none);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > CFG_FILE_MAX) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EFBIG;
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
			 CFG_FILE_MAX);
		close(fd);
		return ret;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	while (have < (size_t)st.st_size) {
		n = read(fd, text + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: read: %s", path, strerror(-ret));
			free(text);
			close(fd);
			return ret;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	ret = wpd_config_parse(path, text, have, out, err, errlen);
	free(text);
	return ret;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void wpd_config_free(struct wpd_config *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->nbackends; i++) {
		free_strv(c->backends[i].argv);
		free_strv(c->backends[i].env);
	}
	free(c->backends);
	free(c->listen);
	free(c->models);
	free(c->mcp);
	free_strv(c->mcp_origins);
	free(c);
}

int wpd_config_backend(const struct wpd_config *c, const char *name)
{
	for (uint32_t i = 0; i < c->nbackends; i++)
		if (!strcmp(c->backends[i].name, name))
			return (int)i;
	return -1;
}
