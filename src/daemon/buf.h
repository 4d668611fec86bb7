/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer for the daemon: response bodies, SSE events and
 * the output queue of a client connection are built in these. Appends
 * never fail silently: on out-of-memory the buffer is marked broken (oom)
 * and every later append is a no-op, so a builder can append a whole
 * response and check once at the end. cap bounds growth (0 = 1 GiB): an
 * append past it sets oom too, which is how a slow client's output queue is
 * kept bounded.
 */
#ifndef WPD_BUF_H
#define WPD_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct wpd_buf {
	char *p;
	size_t len;   /* bytes in use, p[len] is always 0 when p != NULL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* growth limit; 0 = 1 GiB */
	int oom;      /* an append failed (memory or max): the contents are incomplete */
};

/* Make room for n more bytes; returns a pointer to write them at (then call
 * wpd_buf_commit), or NULL (oom set). */
char *wpd_buf_reserve(struct wpd_buf *b, size_t n);
static inline void wpd_buf_commit(struct wpd_buf *b, size_t n)
{
	b->len += n;
	b->p[b->len] = 0;
}
void wpd_buf_add(struct wpd_buf *b, const void *data, size_t n);
void wpd_buf_adds(struct wpd_buf *b, const char *s);
void wpd_buf_addf(struct wpd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wpd_buf_vaddf(struct wpd_buf *b, const char *fmt, va_list ap);
/* Drop the first n bytes (what a write consumed). */
void wpd_buf_consume(struct wpd_buf *b, size_t n);
/* Empty it, keeping the allocation (oom cleared). */
void wpd_buf_reset(struct wpd_buf *b);
void wpd_buf_free(struct wpd_buf *b);

#endif
