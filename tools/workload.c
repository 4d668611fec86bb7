/* SPDX-License-Identifier: MIT */
/*
 * Bench workloads: the built-in "agentic" and "classic" parameter sets
 * (basis: docs/workload.md), the parser for workload files
 * (format: bench/workloads/README.md), their limits, the tool-result size
 * distribution and the JSON form the bench records. One table of fields
 * drives the parser, the limits and the JSON writer, so a new field is one
 * row plus one enum entry. The parser fills a temporary and copies it out
 * only on success: a caller never sees a half-parsed workload.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workload.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define WL_SIZE_MAX (64 * MiB)
#define WL_BULK_MAX (1 * GiB)
#define WL_TIME_MAX (60ull * 1000 * 1000) /* 60 s in microseconds */
#define WL_FILE_MAX (1 * MiB)             /* a workload file is a few lines */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum wl_kind {
	WL_NAME,  /* 1-63 of [A-Za-z0-9._+-] */
	WL_COUNT, /* plain integer, no suffix */
	WL_SIZE,  /* bytes; suffix K, KiB, M, MiB, G, GiB */
	WL_TIME,  /* microseconds; suffix us or ms */
};

/* Field indices; the order is the order of the JSON output. */
enum {
	F_NAME,
	F_FANOUT,
	F_TOOL_REQ,
	F_TOOL_RESP,
	F_TOOL_P90,
	F_TOOL_P99,
	F_MEM_LOOKUPS,
	F_MEM_BYTES,
	F_MODEL_REQ,
	F_TOKENS,
	F_TOKEN_BYTES,
	F_TOKEN_BATCH,
	F_TEL_COUNTERS,
	F_TEL_HISTS,
	F_RETRY,
	F_TOOL_SVC,
	F_MEM_SVC,
	F_MODEL_SVC,
	F_TOKEN_IVL,
	F_BULK,
	F_NR
};

struct wl_field {
	const char *key;
	size_t off;
	enum wl_kind kind;
	bool wide; /* uint64_t rather than uint32_t */
	uint64_t min, max;
};

#define FIELD(idx, k, kd, mn, mx) \
	[idx] = { #k, offsetof(struct wl, k), kd, sizeof(((struct wl *)0)->k) == 8, mn, mx }

/*
 * Single-field limits. Minimums that only matter when a feature is used
 * (tool_req_bytes >= 8 when fanout > 0, ...) are cross-field checks in
 * wl_check(), so that unused fields may be 0.
 */
static const struct wl_field wl_fields[F_NR] = {
	[F_NAME] = { "name", offsetof(struct wl, name), WL_NAME, false, 0, 0 },
	FIELD(F_FANOUT, fanout, WL_COUNT, 0, 1024),
	FIELD(F_TOOL_REQ, tool_req_bytes, WL_SIZE, 0, WL_SIZE_MAX),
	FIELD(F_TOOL_RESP, tool_resp_bytes, WL_SIZE, 1, WL_SIZE_MAX),
	FIELD(F_TOOL_P90, tool_resp_p90_bytes, WL_SIZE, 1, WL_SIZE_MAX),
	FIELD(F_TOOL_P99, tool_resp_p99_bytes, WL_SIZE, 1, WL_SIZE_MAX),
	FIELD(F_MEM_LOOKUPS, mem_lookups, WL_COUNT, 0, 64),
	FIELD(F_MEM_BYTES, mem_bytes, WL_SIZE, 0, WL_SIZE_MAX),
	FIELD(F_MODEL_REQ, model_req_bytes, WL_SIZE, 0, WL_SIZE_MAX),
	FIELD(F_TOKENS, tokens, WL_COUNT, 0, 1u << 20),
	FIELD(F_TOKEN_BYTES, token_bytes, WL_SIZE, 0, WL_SIZE_MAX),
	FIELD(F_TOKEN_BATCH, token_batch, WL_COUNT, 1, 1u << 20),
	FIELD(F_TEL_COUNTERS, telemetry_counters, WL_COUNT, 0, 65536),
	FIELD(F_TEL_HISTS, telemetry_hists, WL_COUNT, 0, 4096),
	FIELD(F_RETRY, retry_pct, WL_COUNT, 0, 100),
	FIELD(F_TOOL_SVC, tool_service_us, WL_TIME, 0, WL_TIME_MAX),
	FIELD(F_MEM_SVC, mem_service_us, WL_TIME, 0, WL_TIME_MAX),
	FIELD(F_MODEL_SVC, model_service_us, WL_TIME, 0, WL_TIME_MAX),
	FIELD(F_TOKEN_IVL, token_interval_us, WL_TIME, 0, WL_TIME_MAX),
	FIELD(F_BULK, bulk_bytes, WL_SIZE, 0, WL_BULK_MAX),
};

/* Basis for each value: docs/workload.md. */
static const struct wl wl_builtins[] = {
	{
		.name = "agentic",
		.fanout = 8,
		.tool_req_bytes = 1024,
		.tool_resp_bytes = 4096,
		.tool_resp_p90_bytes = 16384,
		.tool_resp_p99_bytes = 65536,
		.mem_lookups = 2,
		.mem_bytes = 16384,
		.model_req_bytes = 4096,
		.tokens = 520,
		.token_bytes = 4,
		.token_batch = 1,
		.telemetry_counters = 10,
		.telemetry_hists = 2,
	},
	{
		/* Single-shot inference: one request, one token stream. */
		.name = "classic",
		.tool_resp_bytes = 4096, /* unused (fanout 0); keeps p50 <= p90 <= p99 */
		.tool_resp_p90_bytes = 4096,
		.tool_resp_p99_bytes = 4096,
		.model_req_bytes = 8192,
		.tokens = 520,
		.token_bytes = 4,
		.token_batch = 1,
		.telemetry_counters = 10,
		.telemetry_hists = 2,
	},
};

static uint64_t wl_get(const struct wl *w, int i)
{
	const char *p = (const char *)w + wl_fields[i].off;

	if (wl_fields[i].wide)
		return *(const uint64_t *)(const void *)p;
	return *(const uint32_t *)(const void *)p;
}

static void wl_set(struct wl *w, int i, uint64_t v)
{
	char *p = (char *)w + wl_fields[i].off;

	if (wl_fields[i].wide)
		*(uint64_t *)(void *)p = v;
	else
		*(uint32_t *)(void *)p = (uint32_t)v;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A limit in the unit a person would write it in: "64 MiB", "60 s". */
static const char *fmt_limit(enum wl_kind kind, uint64_t v, char *buf, size_t len)
{
	if (kind == WL_SIZE && v && v % GiB == 0)
		snprintf(buf, len, "%llu GiB", (unsigned long long)(v / GiB));
	else if (kind == WL_SIZE && v && v % MiB == 0)
		snprintf(buf, len, "%llu MiB", (unsigned long long)(v / MiB));
	else if (kind == WL_SIZE && v && v % KiB == 0)
		snprintf(buf, len, "%llu KiB", (unsigned long long)(v / KiB));
	else if (kind == WL_TIME && v && v % 1000000 == 0)
		snprintf(buf, len, "%llu s", (unsigned long long)(v / 1000000));
	else if (kind == WL_TIME)
		snprintf(buf, len, "%llu us", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

/* 0 if s[0..n) is a valid workload name. */
static int name_check(const char *s, size_t n, char *msg, size_t mlen)
{
	if (n == 0) {
		set_err(msg, mlen, "empty name");
		return -EINVAL;
	}
	if (n >= sizeof(((struct wl *)0)->name)) {
		set_err(msg, mlen, "name is %zu bytes long (max %zu)", n,
			sizeof(((struct wl *)0)->name) - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!name_char_ok(s[i])) {
			set_err(msg, mlen, "bad name '%.*s': use only A-Z a-z 0-9 . _ + -",
				(int)(n > 63 ? 63 : n), s);
			return -EINVAL;
		}
	}
	return 0;
}

static int range_check(const struct wl *w, int i, char *msg, size_t mlen)
{
	const struct wl_field *f = &wl_fields[i];
	uint64_t v = wl_get(w, i);
	char lo[32], hi[32];

	if (v >= f->min && v <= f->max)
		return 0;
	set_err(msg, mlen, "%s = %llu is out of range (%s..%s)", f->key, (unsigned long long)v,
		fmt_limit(f->kind, f->min, lo, sizeof(lo)),
		fmt_limit(f->kind, f->max, hi, sizeof(hi)));
	return -EINVAL;
}

#define B(f) (1u << (f))

/*
 * All limits. On failure writes the reason (no location) to msg and the
 * fields to blame to *blame, so the parser can name the line that broke it.
 */
static int wl_check(const struct wl *w, char *msg, size_t mlen, uint32_t *blame)
{
	uint64_t stream;

	*blame = B(F_NAME);
	if (name_check(w->name, strnlen(w->name, sizeof(w->name)), msg, mlen))
		return -EINVAL;
	for (int i = F_NAME + 1; i < F_NR; i++) {
		*blame = B(i);
		if (range_check(w, i, msg, mlen))
			return -EINVAL;
	}

	*blame = B(F_TOOL_RESP) | B(F_TOOL_P90);
	if (w->tool_resp_bytes > w->tool_resp_p90_bytes) {
		set_err(msg, mlen,
			"tool_resp_bytes (%u) > tool_resp_p90_bytes (%u): need p50 <= p90 <= p99",
			w->tool_resp_bytes, w->tool_resp_p90_bytes);
		return -EINVAL;
	}
	*blame = B(F_TOOL_P90) | B(F_TOOL_P99);
	if (w->tool_resp_p90_bytes > w->tool_resp_p99_bytes) {
		set_err(msg, mlen,
			"tool_resp_p90_bytes (%u) > tool_resp_p99_bytes (%u): "
			"need p50 <= p90 <= p99",
			w->tool_resp_p90_bytes, w->tool_resp_p99_bytes);
		return -EINVAL;
	}
	*blame = B(F_FANOUT) | B(F_TOOL_REQ);
	if (w->fanout && w->tool_req_bytes < 8) {
		set_err(msg, mlen,
			"tool_req_bytes = %u is out of range: need >= 8 when fanout > 0 "
			"(the request carries an 8-byte header)",
			w->tool_req_bytes);
		return -EINVAL;
	}
	*blame = B(F_MEM_LOOKUPS) | B(F_MEM_BYTES);
	if (w->mem_lookups && w->mem_bytes < 16) {
		set_err(msg, mlen,
			"mem_bytes = %u is out of range: need >= 16 when mem_lookups > 0",
			w->mem_bytes);
		return -EINVAL;
	}
	/* model_req_bytes = 0 means "no model call this step". */
	*blame = B(F_MODEL_REQ);
	if (w->model_req_bytes && w->model_req_bytes < 16) {
		set_err(msg, mlen,
			"model_req_bytes = %u is out of range: need 0 (no model call) or >= 16",
			w->model_req_bytes);
		return -EINVAL;
	}
	*blame = B(F_TOKENS) | B(F_MODEL_REQ);
	if (w->tokens && !w->model_req_bytes) {
		set_err(msg, mlen,
			"tokens = %u needs a model call: set model_req_bytes >= 16 or tokens = 0",
			w->tokens);
		return -EINVAL;
	}
	*blame = B(F_TOKENS) | B(F_TOKEN_BYTES);
	if (w->tokens && !w->token_bytes) {
		set_err(msg, mlen, "token_bytes = 0 is out of range: need >= 1 when tokens > 0");
		return -EINVAL;
	}
	stream = (uint64_t)w->tokens * w->token_bytes;
	if (stream > WL_SIZE_MAX) {
		set_err(msg, mlen,
			"tokens * token_bytes = %llu is out of range: the stream per step is "
			"at most 64 MiB",
			(unsigned long long)stream);
		return -EINVAL;
	}
	*blame = 0;
	return 0;
}

int wl_validate(const struct wl *w, char *err, size_t errlen)
{
	uint32_t blame;

	return wl_check(w, err, errlen, &blame);
}

int wl_builtin(const char *name, struct wl *w)
{
	for (size_t i = 0; i < ARRAY_SIZE(wl_builtins); i++) {
		if (!strcmp(name, wl_builtins[i].name)) {
			*w = wl_builtins[i];
			return 0;
		}
	}
	return -ENOENT;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
		(*e)--;
}

static bool tok_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !memcmp(s, lit, n);
}

/* At most this much of a bad value is quoted back in a message. */
#define QUOTE(n) ((int)((n) > 40 ? 40 : (n)))

/* Parse s[0..n) (non-empty, trimmed) as a value of field f. */
static int parse_number(const struct wl_field *f, const char *s, size_t n, uint64_t *out, char *msg,
			size_t mlen)
{
	uint64_t v = 0, mult = 1, limit = f->wide ? UINT64_MAX : UINT32_MAX;
	const char *suf;
	size_t i = 0, slen;
	char lo[32], hi[32];

	if (s[0] == '-') {
		set_err(msg, mlen, "%s: negative value '%.*s'", f->key, QUOTE(n), s);
		return -EINVAL;
	}
	if (s[0] < '0' || s[0] > '9') {
		set_err(msg, mlen, "%s: bad number '%.*s'", f->key, QUOTE(n), s);
		return -EINVAL;
	}
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			goto overflow;
		v = v * 10 + d;
	}
	while (i < n && is_blank(s[i]))
		i++;
	suf = s + i;
	slen = n - i;

	switch (f->kind) {
	case WL_SIZE:
		if (!slen)
			mult = 1;
		else if (tok_eq(suf, slen, "K") || tok_eq(suf, slen, "KiB"))
			mult = KiB;
		else if (tok_eq(suf, slen, "M") || tok_eq(suf, slen, "MiB"))
			mult = MiB;
		else if (tok_eq(suf, slen, "G") || tok_eq(suf, slen, "GiB"))
			mult = GiB;
		else
			goto bad_suffix;
		break;
	case WL_TIME:
		if (!slen || tok_eq(suf, slen, "us"))
			mult = 1;
		else if (tok_eq(suf, slen, "ms"))
			mult = 1000;
		else
			goto bad_suffix;
		break;
	default:
		if (slen) {
			set_err(msg, mlen, "%s: bad number '%.*s' (a count takes no suffix)",
				f->key, QUOTE(n), s);
			return -EINVAL;
		}
	}
	if (v > UINT64_MAX / mult || v * mult > limit)
		goto overflow;
	v *= mult;
	if (v < f->min || v > f->max) {
		set_err(msg, mlen, "%s = %.*s is out of range (%s..%s)", f->key, QUOTE(n), s,
			fmt_limit(f->kind, f->min, lo, sizeof(lo)),
			fmt_limit(f->kind, f->max, hi, sizeof(hi)));
		return -EINVAL;
	}
	*out = v;
	return 0;

overflow:
	set_err(msg, mlen, "%s = %.*s: overflow (does not fit in %d bits; max %s)", f->key,
		QUOTE(n), s, f->wide ? 64 : 32, fmt_limit(f->kind, f->max, hi, sizeof(hi)));
	return -EINVAL;
bad_suffix:
	set_err(msg, mlen, "%s: bad number '%.*s' (suffix: %s)", f->key, QUOTE(n), s,
		f->kind == WL_SIZE ? "K, KiB, M, MiB, G or GiB" : "us or ms");
	return -EINVAL;
}

static int field_index(const char *k, size_t n)
{
	for (int i = 0; i < F_NR; i++)
		if (tok_eq(k, n, wl_fields[i].key))
			return i;
	return -1;
}

/*
 * The parser proper. text[0..len) need not be NUL-terminated. def_name
 * (may be NULL) names the result when the text sets no `name`.
 */
static int wl_parse(const char *text, size_t len, const char *origin, const char *def_name,
		    struct wl *w, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned int lines[F_NR] = { 0 };
	unsigned int lineno = 0, base_line = 0, line;
	bool any_key = false;
	uint32_t blame;
	char msg[256];
	struct wl t;

	wl_builtin("agentic", &t);
	/* A UTF-8 byte order mark is not part of the first key. */
	if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e = eol ? eol : end, *hash, *eq, *ks, *ke, *vs, *ve;
		uint64_t v;
		int i;

		lineno++;
		p = eol ? eol + 1 : end;
		if (memchr(s, '\0', (size_t)(e - s))) {
			set_err(msg, sizeof(msg), "NUL byte in line");
			goto fail;
		}
		hash = memchr(s, '#', (size_t)(e - s));
		if (hash)
			e = hash;
		trim(&s, &e);
		if (s == e)
			continue;
		eq = memchr(s, '=', (size_t)(e - s));
		if (!eq) {
			set_err(msg, sizeof(msg), "missing '=' in '%.*s' (expected 'key = value')",
				QUOTE(e - s), s);
			goto fail;
		}
		ks = s;
		ke = eq;
		vs = eq + 1;
		ve = e;
		trim(&ks, &ke);
		trim(&vs, &ve);
		if (ks == ke) {
			set_err(msg, sizeof(msg), "missing key before '='");
			goto fail;
		}
		if (vs == ve) {
			set_err(msg, sizeof(msg), "missing value for '%.*s'", QUOTE(ke - ks), ks);
			goto fail;
		}

		if (tok_eq(ks, (size_t)(ke - ks), "base")) {
			if (base_line) {
				set_err(msg, sizeof(msg),
					"duplicate key 'base' (first set on line %u)", base_line);
				goto fail;
			}
			if (any_key) {
				set_err(msg, sizeof(msg),
					"'base' must come before every other key");
				goto fail;
			}
			base_line = lineno;
			if (!tok_eq(vs, (size_t)(ve - vs), "agentic") &&
			    !tok_eq(vs, (size_t)(ve - vs), "classic")) {
				set_err(msg, sizeof(msg),
					"unknown base '%.*s' (agentic or classic)", QUOTE(ve - vs),
					vs);
				goto fail;
			}
			wl_builtin(*vs == 'a' ? "agentic" : "classic", &t);
			continue;
		}

		i = field_index(ks, (size_t)(ke - ks));
		if (i < 0) {
			set_err(msg, sizeof(msg), "unknown key '%.*s'", QUOTE(ke - ks), ks);
			goto fail;
		}
		if (lines[i]) {
			set_err(msg, sizeof(msg), "duplicate key '%s' (first set on line %u)",
				wl_fields[i].key, lines[i]);
			goto fail;
		}
		lines[i] = lineno;
		any_key = true;

		if (wl_fields[i].kind == WL_NAME) {
			if (name_check(vs, (size_t)(ve - vs), msg, sizeof(msg)))
				goto fail;
			memset(t.name, 0, sizeof(t.name));
			memcpy(t.name, vs, (size_t)(ve - vs));
			continue;
		}
		if (parse_number(&wl_fields[i], vs, (size_t)(ve - vs), &v, msg, sizeof(msg)))
			goto fail;
		wl_set(&t, i, v);
	}

	if (!lines[F_NAME] && def_name && !name_check(def_name, strlen(def_name), NULL, 0)) {
		memset(t.name, 0, sizeof(t.name));
		memcpy(t.name, def_name, strlen(def_name));
	}

	if (wl_check(&t, msg, sizeof(msg), &blame)) {
		/* Blame the last line that set one of the fields involved. */
		lineno = 0;
		for (int i = 0; i < F_NR; i++)
			if ((blame & B(i)) && lines[i] > lineno)
				lineno = lines[i];
		if (!lineno)
			lineno = base_line;
		goto fail;
	}
	*w = t;
	return 0;

fail:
	line = lineno;
	if (line)
		set_err(err, errlen, "%s:%u: %s", origin, line, msg);
	else
		set_err(err, errlen, "%s: %s", origin, msg);
	return -EINVAL;
}

int wl_parse_string(const char *text, const char *origin, struct wl *w, char *err, size_t errlen)
{
	return wl_parse(text, strlen(text), origin ? origin : "<string>", NULL, w, err, errlen);
}

int wl_parse_buf(const void *text, size_t len, const char *origin, struct wl *w, char *err,
		 size_t errlen)
{
	return wl_parse(len ? text : "", len, origin ? origin : "<buffer>", NULL, w, err, errlen);
}

/* "bench/workloads/fanout64.wl" -> "fanout64"; odd characters become '_'. */
static void name_from_path(const char *path, char *out, size_t len)
{
	const char *b = strrchr(path, '/');
	size_t n;

	b = b ? b + 1 : path;
	n = strlen(b);
	if (n > 3 && !strcmp(b + n - 3, ".wl"))
		n -= 3;
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = name_char_ok(b[i]) ? b[i] : '_';
	out[n] = '\0';
}

int wl_parse_file(const char *path, struct wl *w, char *err, size_t errlen)
{
	char def_name[sizeof(w->name)];
	size_t len = 0;
	struct stat st;
	char *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-ret));
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		set_err(err, errlen, "%s: not a regular file", path);
		goto out_close_fd;
	}
	/* One byte over the limit tells "too large" from "exactly the limit". */
	buf = malloc(WL_FILE_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
		goto out_close_fd;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, WL_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			set_err(err, errlen, "%s: %s", path, strerror(-ret));
			goto out_free_buf;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > WL_FILE_MAX) {
			ret = -EFBIG;
			set_err(err, errlen, "%s: file too large (max 1 MiB)", path);
			goto out_free_buf;
		}
	}
	name_from_path(path, def_name, sizeof(def_name));
	ret = wl_parse(buf, len, path, def_name, w, err, errlen);

out_free_buf:
	free(buf);
out_close_fd:
	close(fd);
	return ret;
}

int wl_load(const char *name_or_path, struct wl *w, char *err, size_t errlen)
{
	int ret;

	if (!wl_builtin(name_or_path, w))
		return 0;
	ret = wl_parse_file(name_or_path, w, err, errlen);
	if (ret == -ENOENT)
		set_err(err, errlen,
			"%s: not a built-in workload (agentic, classic) nor an existing file",
			name_or_path);
	return ret;
}

/*
 * Size of one tool result for a uniform draw r: piecewise log-linear (linear
 * in log(size)) through (0, lo), (0.5, p50), (0.9, p90), (0.99, p99),
 * (1, p99). Log-linear because result sizes spread over decades and the
 * quantiles are given as ratios. The lower tail is not measured: lo is
 * p50 / min(2, p90 / p50), i.e. half the median, but never spread wider
 * than the upper tail, so p50 = p90 = p99 gives one fixed size (toolcall.wl)
 * and the agentic default gives lo = p50 / 2. Monotone in r for a valid
 * workload; rounded to the nearest byte, clamped to [1, 64 MiB].
 */
uint32_t wl_tool_resp_size(const struct wl *w, double r)
{
	static const double rq[] = { 0.0, 0.5, 0.9, 0.99, 1.0 };
	double q[5], lo, hi, t, s;
	int k;

	q[1] = w->tool_resp_bytes ? w->tool_resp_bytes : 1;
	q[2] = w->tool_resp_p90_bytes ? w->tool_resp_p90_bytes : 1;
	q[0] = floor(q[2] >= 2 * q[1] ? q[1] / 2 : q[1] * q[1] / q[2]);
	if (q[0] < 1)
		q[0] = 1;
	if (q[0] > q[1]) /* only when p50 > p90, which wl_validate rejects */
		q[0] = q[1];
	q[3] = w->tool_resp_p99_bytes ? w->tool_resp_p99_bytes : 1;
	q[4] = q[3];

	if (isnan(r))
		r = 0.5;
	if (r <= 0.0)
		r = 0.0;
	if (r >= 1.0)
		r = 1.0;
	for (k = 0; k < 3 && r >= rq[k + 1]; k++)
		;
	lo = q[k];
	hi = q[k + 1];
	if (lo == hi || r == rq[k]) {
		s = lo;
	} else {
		t = (r - rq[k]) / (rq[k + 1] - rq[k]);
		s = exp(log(lo) + (log(hi) - log(lo)) * t);
	}
	s = nearbyint(s);
	if (s < 1)
		s = 1;
	if (s > (double)WL_SIZE_MAX)
		s = (double)WL_SIZE_MAX;
	return (uint32_t)s;
}

struct jbuf {
	char *buf;
	size_t len;
	size_t pos; /* bytes the whole output needs, like snprintf's return */
};

static void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	bool room = b->buf && b->pos < b->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? b->buf + b->pos : NULL, room ? b->len - b->pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->pos += (size_t)n;
}

int wl_to_json(const struct wl *w, char *buf, size_t len)
{
	struct jbuf b = { buf, len, 0 };
	size_t n = strnlen(w->name, sizeof(w->name));

	if (buf && len)
		buf[0] = '\0';
	jb_printf(&b, "{\"name\":\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w->name[i];

		if (c == '"' || c == '\\')
			jb_printf(&b, "\\%c", c);
		else if (c < 0x20)
			jb_printf(&b, "\\u%04x", c);
		else
			jb_printf(&b, "%c", c);
	}
	jb_printf(&b, "\"");
	for (int i = F_NAME + 1; i < F_NR; i++)
		jb_printf(&b, ",\"%s\":%llu", wl_fields[i].key, (unsigned long long)wl_get(w, i));
	jb_printf(&b, "}");
	return (int)b.pos;
}
