// SPDX-License-Identifier: MIT
/* The daemon's growable byte buffer (buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/buf.h"

#define WPD_BUF_MAX_DEFAULT (1ull << 30)

char *wpd_buf_reserve(struct wpd_buf *b, size_t n)
{
	size_t max = b->max ? b->max : WPD_BUF_MAX_DEFAULT;
	size_t need;

	if (b->oom)
		return NULL;
	need = b->len + n + 1; /* the terminating 0 */
	if (n > max || b->len + n > max) {
		b->oom = 1;
		return NULL;
	}
	if (need > b->alloc) {
		size_t a = b->alloc ? b->alloc : 256;
		char *p;

		while (a < need)
			a *= 2;
		p = realloc(b->p, a);
		if (!p) {
			b->oom = 1;
			return NULL;
		}
		b->p = p;
		b->alloc = a;
	}
	return b->p + b->len;
}

void wpd_buf_add(struct wpd_buf *b, const void *data, size_t n)
{
	char *w = wpd_buf_reserve(b, n);

	if (!w)
		return;
	if (n)
		memcpy(w, data, n);
	wpd_buf_commit(b, n);
}

void wpd_buf_adds(struct wpd_buf *b, const char *s)
{
	wpd_buf_add(b, s, strlen(s));
}

void wpd_buf_vaddf(struct wpd_buf *b, const char *fmt, va_list ap)
{
	char tmp[256];
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n < sizeof(tmp)) {
		wpd_buf_add(b, tmp, (size_t)n);
		return;
	}
	char *w = wpd_buf_reserve(b, (size_t)n);

	if (!w)
		return;
	vsnprintf(w, (size_t)n + 1, fmt, ap);
	wpd_buf_commit(b, (size_t)n);
}

void wpd_buf_addf(struct wpd_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wpd_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void wpd_buf_consume(struct wpd_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = 0;
}

void wpd_buf_reset(struct wpd_buf *b)
{
	b->len = 0;
	b->oom = 0;
	if (b->p)
		b->p[0] = 0;
}

void wpd_buf_free(struct wpd_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->alloc = 0;
	b->oom = 0;
}
