// SPDX-License-Identifier: MIT
/*
 * Helpers every wirepath command shares: a growable string for JSON output,
 * errno names, the log callback, strict number parsing for flags and the
 * one-line usage error. They sit below the commands: a command may use them,
 * they use nothing of any command (declarations in util.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------------ */
/* Strings                                                             */
/* ------------------------------------------------------------------ */

static int sb_reserve(struct sbuf *b, size_t more)
{
	size_t need = b->len + more + 1;
	char *p;

	if (b->oom)
		return -1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 1024;

	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sb_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_json_str(struct sbuf *b, const char *s)
{
	if (!s) {
		sb_printf(b, "null");
		return;
	}
	sb_printf(b, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"':
			sb_printf(b, "\\\"");
			break;
		case '\\':
			sb_printf(b, "\\\\");
			break;
		case '\n':
			sb_printf(b, "\\n");
			break;
		case '\t':
			sb_printf(b, "\\t");
			break;
		case '\r':
			sb_printf(b, "\\r");
			break;
		default:
			if (*c < 0x20)
				sb_printf(b, "\\u%04x", *c);
			else
				sb_printf(b, "%c", *c);
		}
	}
	sb_printf(b, "\"");
}

void sb_json_num(struct sbuf *b, double v)
{
	if (!isfinite(v))
		sb_printf(b, "null");
	else if (v == floor(v) && fabs(v) < 1e15)
		sb_printf(b, "%.0f", v);
	else
		sb_printf(b, "%.6g", v);
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

const char *tool_errno_name(int err)
{
	static __thread char buf[16];
	const char *n;

	if (err < 0)
		err = -err;
	if (err == 0)
		return "0";
	n = strerrorname_np(err);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

const char *tool_status_str(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "%s (%s)", strerror(-status), tool_errno_name(status));
	else
		snprintf(buf, len, "server answered status %d (%s)", status, strerror(status));
	return buf;
}

void tool_log(void *arg, enum wp_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "wirepath: %s: %s\n", (unsigned)level < 4 ? names[level] : "log", msg);
}

/* ------------------------------------------------------------------ */
/* Flag parsing                                                        */
/* ------------------------------------------------------------------ */

int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int tool_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} sfx[] = {
		{ "", 1 },           { "K", 1ull << 10 },   { "KiB", 1ull << 10 },
		{ "k", 1ull << 10 }, { "M", 1ull << 20 },   { "MiB", 1ull << 20 },
		{ "G", 1ull << 30 }, { "GiB", 1ull << 30 },
	};
	unsigned long long v;
	char *end;

	if (!s || !*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (strcmp(end, sfx[i].suffix))
			continue;
		if (v > UINT64_MAX / sfx[i].mult)
			return -EINVAL;
		v *= sfx[i].mult;
		if (v < min || v > max)
			return -EINVAL;
		*out = v;
		return 0;
	}
	return -EINVAL;
}

int tool_parse_secs(const char *s, double min, double max, double *out)
{
	double v;
	char *end;

	if (!s || !*s || ((*s < '0' || *s > '9') && *s != '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	/* An optional trailing "s" reads naturally ("--duration 5s"). */
	if (*end == 's')
		end++;
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int tool_parse_select(const char *s, enum wp_select *out)
{
	if (!strcmp(s, "require"))
		*out = WP_SELECT_REQUIRE;
	else if (!strcmp(s, "prefer"))
		*out = WP_SELECT_PREFER;
	else if (!strcmp(s, "any"))
		*out = WP_SELECT_ANY;
	else
		return -EINVAL;
	return 0;
}

void tool_help_entry(FILE *f, int col, const char *left, const char *help)
{
	int w = (int)strlen(left);

	/* Two spaces of indent and at least two before the text. */
	if (2 + w + 2 <= col)
		fprintf(f, "  %-*s", col - 2, left);
	else
		fprintf(f, "  %s\n%*s", left, col, "");
	for (const char *p = help; *p;) {
		size_t n = strcspn(p, "\n");

		fprintf(f, "%.*s\n", (int)n, p);
		p += n;
		if (*p == '\n' && *++p)
			fprintf(f, "%*s", col, "");
	}
}

int tool_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wirepath %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'wirepath %s --help'\n", cmd);
	return EXIT_USAGE;
}

/* ------------------------------------------------------------------ */
/* Probes                                                              */
/* ------------------------------------------------------------------ */

void tool_probes_json(struct sbuf *b)
{
	const struct wp_probe_result *r;
	int n = wp_probe_all(&r);

	sb_printf(b, "[");
	for (int i = 0; i < n; i++) {
		sb_printf(b, "%s{\"name\":", i ? "," : "");
		sb_json_str(b, r[i].name);
		sb_printf(b, ",\"ok\":%s,\"err\":%d,\"errno\":", r[i].ok ? "true" : "false",
			  r[i].err);
		sb_json_str(b, r[i].err ? tool_errno_name(r[i].err) : "");
		sb_printf(b, ",\"error\":");
		sb_json_str(b, r[i].err ? strerror(r[i].err) : "");
		sb_printf(b, ",\"detail\":");
		sb_json_str(b, r[i].detail);
		sb_printf(b, "}");
	}
	sb_printf(b, "]");
}
