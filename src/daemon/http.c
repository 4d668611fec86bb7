// SPDX-License-Identifier: MIT
/*
 * HTTP/1.1 request parsing over libhttp-parser, with the checks it does not
 * make, and response heads and chunks (http.h; docs/daemon.md, "HTTP
 * parsing").
 *
 * A request goes through three steps:
 *  1. head_take: bytes are scanned as they arrive (bare CR, bare LF,
 *     control characters) and copied into the head buffer; each complete
 *     line is checked (request line: version, method, target; header line:
 *     obs-fold, colon, name, and the framing headers Content-Length,
 *     Transfer-Encoding, Host). A bad line is refused when it ends, before
 *     the rest of the head arrives.
 *  2. head_parse: the complete head goes to http-parser in one call; its
 *     callbacks record the target and the header spans, which are then
 *     NUL-terminated in place.
 *  3. body_take: the body goes to http-parser as it arrives; it de-chunks.
 *     Chunked framing (the CRLF after a chunk's data, the size line, the
 *     CRLF that ends the body) is first checked byte by byte by
 *     frame_scan, and only then handed over, a chunk-size line at most: so
 *     http-parser never sees extensions longer than 256 bytes, sizes past
 *     the limit, trailers, or the stray bytes a non-strict build takes for
 *     the CRLF after a chunk, and every refusal is the same however the
 *     bytes were cut.
 * http-parser is paused at each chunk header and at the end of the
 * message, so a pipelined request's bytes are never consumed.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>
#include <strings.h>

#include "daemon/buf.h"
#include "daemon/http.h"

enum {
	WPD_HTTP_IDLE = 0,
	WPD_HTTP_HEAD = 1,
	WPD_HTTP_BODY = 2,
	WPD_HTTP_DONE = 3,
	WPD_HTTP_ERROR = 4,
};

enum { PAUSE_NONE = 0, PAUSE_CHUNK = 1, PAUSE_MSG = 2 };

#define HEAD_DEFAULT (16u << 10)
#define BODY_DEFAULT (1ull << 20)
#define HEAD_FIRST 1024           /* first head allocation */
#define BODY_FIRST 4096           /* first body allocation */
#define HEAD_KEEP 4096            /* kept between requests up to this size */
#define BODY_KEEP (16u << 10)     /* likewise */
#define CL_MAX 999999999999999ull /* 15 digits: far above any body limit, no overflow */

/* RFC 9110 token characters. */
static const unsigned char tchars[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
	['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
	['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static int tchar(unsigned char c)
{
	return tchars[c];
}

/* Head bytes that need no attention: visible ASCII, SP, HTAB, obs-text. */
static const unsigned char plain[256] = {
	['\t'] = 1,
	[0x20 ... 0x7e] = 1,
	[0x80 ... 0xff] = 1,
};

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int fail(struct wpd_http_parser *p, int status, const char *why)
{
	if (p->phase != WPD_HTTP_ERROR) {
		p->phase = WPD_HTTP_ERROR;
		p->status = status;
		p->why = why;
	}
	return -1;
}

static int name_is(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(s, lit, n);
}

static void trim(const char **s, size_t *n)
{
	while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

void wpd_http_init(struct wpd_http_parser *p, const struct wpd_http_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim.header_bytes = lim && lim->header_bytes ? lim->header_bytes : HEAD_DEFAULT;
	p->lim.body_bytes = lim && lim->body_bytes ? lim->body_bytes : BODY_DEFAULT;
	if (p->lim.body_bytes > CL_MAX) /* so a chunk size is refused before it overflows */
		p->lim.body_bytes = CL_MAX;
}

void wpd_http_fini(struct wpd_http_parser *p)
{
	free(p->head);
	free(p->body);
	p->head = p->body = NULL;
	p->head_alloc = 0;
	p->body_alloc = 0;
}

void wpd_http_next(struct wpd_http_parser *p)
{
	struct wpd_http_limits lim = p->lim;
	char *head = p->head, *body = p->body;
	uint32_t head_alloc = p->head_alloc;
	size_t body_alloc = p->body_alloc;

	/* Keep small buffers for the next request; give large ones back, so an
	 * idle keep-alive connection holds little. */
	if (head_alloc > HEAD_KEEP) {
		free(head);
		head = NULL;
		head_alloc = 0;
	}
	if (body_alloc > BODY_KEEP) {
		free(body);
		body = NULL;
		body_alloc = 0;
	}
	memset(p, 0, sizeof(*p));
	p->lim = lim;
	p->head = head;
	p->head_alloc = head_alloc;
	p->body = body;
	p->body_alloc = body_alloc;
}

int wpd_http_in_progress(const struct wpd_http_parser *p)
{
	if (p->phase == WPD_HTTP_HEAD && p->head_len)
		return 1;
	return p->phase == WPD_HTTP_BODY ? 2 : 0;
}

int wpd_http_want_continue(const struct wpd_http_parser *p)
{
	return p->phase == WPD_HTTP_BODY && p->req.expect_continue && !p->req.body_len &&
	       !p->frame_len && !p->nchunks;
}

size_t wpd_http_mem(const struct wpd_http_parser *p)
{
	return (size_t)p->head_alloc + p->body_alloc;
}

const char *wpd_http_header(const struct wpd_http_req *r, const char *name)
{
	size_t n = strlen(name);

	for (uint32_t i = 0; i < r->nhdr; i++)
		if (r->hdr[i].name_len == n && !strcasecmp(r->hdr[i].name, name))
			return r->hdr[i].value;
	return NULL;
}

/* ---- step 1: the raw head, line by line ---- */

static int check_request_line(struct wpd_http_parser *p, const char *l, size_t n)
{
	static const char *const methods[] = { "GET", "POST", "DELETE", "HEAD", "OPTIONS" };
	const char *sp1, *sp2, *t, *v;
	size_t mlen, tlen, vlen, i;
	int known = 0;

	sp1 = memchr(l, ' ', n);
	if (!sp1)
		return fail(p, 400, "request line without a target");
	mlen = (size_t)(sp1 - l);
	t = sp1 + 1;
	sp2 = memchr(t, ' ', (size_t)(l + n - t));
	if (!sp2)
		return fail(p, 400,
			    "request line without an HTTP version (HTTP/0.9 is not served)");
	tlen = (size_t)(sp2 - t);
	v = sp2 + 1;
	vlen = (size_t)(l + n - v);
	/* The version first: the HTTP/2 preface "PRI * HTTP/2.0" is a 505,
	 * not an unknown method. */
	if (vlen != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return fail(p, 400, "malformed HTTP version in the request line");
	if (v[5] != '1')
		return fail(p, 505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 only)");
	p->req.minor = v[7] - '0';
	if (!mlen)
		return fail(p, 400, "empty method in the request line");
	for (i = 0; i < mlen; i++)
		if (!tchar((unsigned char)l[i]))
			return fail(p, 400, "invalid character in the method");
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i]) == mlen && !memcmp(l, methods[i], mlen))
			known = 1;
	if (!known)
		return fail(p, 501,
			    "method not implemented (GET, POST, DELETE, HEAD, OPTIONS only)");
	memcpy(p->req.method, l, mlen);
	p->req.method[mlen] = 0;
	if (!tlen)
		return fail(p, 400, "empty request target");
	for (i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c <= 0x20 || c >= 0x7f)
			return fail(p, 400, "invalid character in the request target");
		if (c == '#')
			return fail(p, 400, "fragment (#) in the request target");
	}
	if (t[0] == '/')
		return 0;
	if (tlen == 1 && t[0] == '*')
		return strcmp(p->req.method, "OPTIONS")
			       ? fail(p, 400, "request target * is for OPTIONS only")
			       : 0;
	if ((tlen > 7 && !strncasecmp(t, "http://", 7)) ||
	    (tlen > 8 && !strncasecmp(t, "https://", 8)))
		return 0;
	return fail(p, 400, "request target is neither a path nor an absolute URI");
}

static int check_te(struct wpd_http_parser *p, const char *v, size_t n)
{
	const char *end = v + n, *q = v;

	for (;;) {
		const char *c = memchr(q, ',', (size_t)(end - q));
		const char *e = q;
		size_t elen;

		if (!c)
			c = end;
		elen = (size_t)(c - q);
		trim(&e, &elen);
		if (!elen)
			return fail(p, 400, "empty element in Transfer-Encoding");
		if (p->te_chunked)
			p->te_after_chunked = 1;
		if (elen == 7 && !strncasecmp(e, "chunked", 7))
			p->te_chunked++;
		else
			p->te_other = 1;
		if (c == end)
			return 0;
		q = c + 1;
	}
}

static int check_header_line(struct wpd_http_parser *p, const char *l, size_t n)
{
	const char *colon, *v;
	size_t nlen, vlen, i;

	if (l[0] == ' ' || l[0] == '\t')
		return fail(p, 400, "obs-fold: a header line continues the one before");
	if (++p->nlines > WPD_HTTP_MAX_HEADERS)
		return fail(p, 431, "more than 64 header fields");
	colon = memchr(l, ':', n);
	if (!colon)
		return fail(p, 400, "header line without a colon");
	nlen = (size_t)(colon - l);
	if (!nlen)
		return fail(p, 400, "empty header name");
	for (i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)l[i];

		if (c == ' ' || c == '\t')
			return fail(p, 400, "whitespace between a header name and its colon");
		if (!tchar(c))
			return fail(p, 400, "invalid character in a header name");
	}
	/* The value's bytes were checked as they arrived (no CTL but HTAB). */
	v = colon + 1;
	vlen = (size_t)(l + n - v);
	trim(&v, &vlen);
	if (name_is(l, nlen, "content-length")) {
		uint64_t cl = 0;

		if (++p->ncl > 1)
			return fail(p, 400, "more than one Content-Length");
		if (!vlen)
			return fail(p, 400, "invalid Content-Length (not a decimal number)");
		for (i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9')
				return fail(p, 400,
					    "invalid Content-Length (not a decimal number)");
			cl = cl * 10 + (uint64_t)(v[i] - '0');
			if (cl > CL_MAX)
				return fail(p, 400, "invalid Content-Length (too large)");
		}
		p->cl = cl;
	} else if (name_is(l, nlen, "transfer-encoding")) {
		return check_te(p, v, vlen);
	} else if (name_is(l, nlen, "host")) {
		if (++p->nhost > 1)
			return fail(p, 400, "more than one Host header");
	} else if (name_is(l, nlen, "expect")) {
		if (p->req.minor >= 1 && vlen == 12 && !strncasecmp(v, "100-continue", 12))
			p->req.expect_continue = 1;
	}
	return 0;
}

/* The head is complete: the framing it asks for, as a whole. */
static int check_framing(struct wpd_http_parser *p)
{
	if (p->ncl && (p->te_chunked || p->te_other))
		return fail(p, 400, "Content-Length together with Transfer-Encoding");
	if (p->te_chunked > 1)
		return fail(p, 400, "chunked applied more than once in Transfer-Encoding");
	if (p->te_after_chunked)
		return fail(p, 400, "chunked is not the last transfer coding");
	if (p->te_other)
		return fail(p, 501, "transfer coding not implemented (chunked only)");
	if (p->req.minor >= 1 && !p->nhost)
		return fail(p, 400, "HTTP/1.1 request without a Host header");
	if (p->ncl && p->cl > p->lim.body_bytes)
		return fail(p, 413, "request body larger than the limit");
	return 0;
}

/* A line ended (its CRLF is the last two bytes of the head). Returns 1 at
 * the empty line that ends the head, 0 to go on, -1 refused. */
static int line_done(struct wpd_http_parser *p)
{
	uint32_t s = p->line_start, e = p->head_len - 2;

	p->line_start = p->head_len;
	if (!p->rl_done) {
		if (e == s) { /* RFC 9112 2.2: empty lines before a request are ignored */
			p->rl_start = p->head_len;
			return 0;
		}
		p->rl_done = 1;
		return check_request_line(p, p->head + s, e - s);
	}
	if (e == s)
		return check_framing(p) < 0 ? -1 : 1;
	return check_header_line(p, p->head + s, e - s);
}

static int head_grow(struct wpd_http_parser *p, uint32_t need)
{
	uint32_t a = p->head_alloc ? p->head_alloc : HEAD_FIRST;
	char *h;

	if (need <= p->head_alloc)
		return 0;
	while (a < need)
		a = a > UINT32_MAX / 2 ? UINT32_MAX : a * 2;
	if (a > p->lim.header_bytes)
		a = p->lim.header_bytes;
	h = realloc(p->head, a);
	if (!h)
		return fail(p, 431, "out of memory for the request head");
	p->head = h;
	p->head_alloc = a;
	return 0;
}

/* Take head bytes up to and including the CRLF that ends the head. Returns
 * 1 with the head complete, 0 all taken and more needed, -1 refused. */
static int head_take(struct wpd_http_parser *p, const char *data, size_t len, size_t *took)
{
	size_t i = 0;

	while (i < len) {
		uint32_t room = p->lim.header_bytes - p->head_len;
		size_t n = len - i, j;
		int eol = 0, cr, r;

		if (!room)
			return fail(p, p->rl_done ? 431 : 414,
				    p->rl_done ? "request head larger than the limit"
					       : "request target longer than the head limit");
		if (n > room)
			n = room;
		/* CR only before LF, LF only after CR, no other control byte;
		 * runs of plain bytes skipped in a tight loop */
		cr = p->head_len && p->head[p->head_len - 1] == '\r';
		j = i;
		while (j < i + n) {
			unsigned char c = (unsigned char)data[j];

			if (cr) {
				if (c != '\n')
					return fail(p, 400, "bare CR in the request head");
				eol = 1;
				j++;
				break;
			}
			if (plain[c]) {
				for (j++; j < i + n && plain[(unsigned char)data[j]]; j++)
					;
				continue;
			}
			if (c == '\r') {
				cr = 1;
				j++;
				continue;
			}
			if (c == '\n')
				return fail(p, 400, "bare LF in the request head (CRLF required)");
			return fail(p, 400, "control character in the request head");
		}
		if (head_grow(p, p->head_len + (uint32_t)(j - i)) < 0)
			return -1;
		memcpy(p->head + p->head_len, data + i, j - i);
		p->head_len += (uint32_t)(j - i);
		i = j;
		*took = i;
		if (eol) {
			r = line_done(p);
			if (r)
				return r;
		}
	}
	*took = i;
	return 0;
}

/* ---- steps 2 and 3: http-parser's callbacks ---- */

static struct wpd_http_parser *of(http_parser *hp)
{
	return hp->data;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct wpd_http_parser *p = of(hp);

	if (!p->url)
		p->url = at;
	p->url_len = (size_t)(at + len - p->url);
	return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct wpd_http_parser *p = of(hp);
	struct wpd_http_hdr *h;

	if (p->phase == WPD_HTTP_BODY) {
		fail(p, 400, "trailer fields after a chunked body are not accepted");
		return 1;
	}
	/* The whole head is parsed in one call, so each name comes in one
	 * piece; a name without a value is followed by the next name. */
	if (p->hp_nhdr >= WPD_HTTP_MAX_HEADERS) {
		fail(p, 431, "more than 64 header fields");
		return 1;
	}
	h = &p->req.hdr[p->hp_nhdr++];
	h->name = at;
	h->name_len = (uint32_t)len;
	h->value = NULL;
	h->value_len = 0;
	return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct wpd_http_parser *p = of(hp);
	struct wpd_http_hdr *h;

	if (!p->hp_nhdr)
		return 1;
	h = &p->req.hdr[p->hp_nhdr - 1];
	if (!h->value)
		h->value = at;
	h->value_len = (uint32_t)(at + len - h->value);
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct wpd_http_parser *p = of(hp);

	p->req.keep_alive = http_should_keep_alive(hp);
	p->chunked = !!(hp->flags & F_CHUNKED);
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct wpd_http_parser *p = of(hp);
	size_t need;

	if (p->chunked)
		p->data_left -= len < p->data_left ? len : p->data_left;
	if (len > p->body_max - p->req.body_len) {
		fail(p, 413, "request body larger than the limit");
		return 1;
	}
	need = p->req.body_len + len + 1;
	if (need > p->body_alloc) {
		size_t a = p->body_alloc ? p->body_alloc : BODY_FIRST;
		char *b;

		while (a < need)
			a *= 2;
		if (a > p->body_max + 1)
			a = (size_t)p->body_max + 1;
		b = realloc(p->body, a);
		if (!b) {
			fail(p, 413, "out of memory for the request body");
			return 1;
		}
		p->body = b;
		p->body_alloc = a;
	}
	memcpy(p->body + p->req.body_len, at, len);
	p->req.body_len += len;
	return 0;
}

static int on_chunk_header(http_parser *hp)
{
	of(hp)->paused_at = PAUSE_CHUNK;
	http_parser_pause(hp, 1);
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	of(hp)->paused_at = PAUSE_MSG;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
};

static int hp_fail(struct wpd_http_parser *p, enum http_errno err)
{
	switch (err) {
	case HPE_HEADER_OVERFLOW:
		return fail(p, 431, http_errno_description(err));
	case HPE_INVALID_METHOD:
		return fail(p, 501, http_errno_description(err));
	case HPE_INVALID_VERSION:
		return fail(p, 505, http_errno_description(err));
	default:
		return fail(p, 400, http_errno_description(err));
	}
}

static int done(struct wpd_http_parser *p)
{
	p->phase = WPD_HTTP_DONE;
	if (p->body) {
		p->body[p->req.body_len] = 0;
		p->req.body = p->body;
	} else {
		p->req.body = p->nul;
	}
	return 1;
}

/* The head's spans, NUL-terminated in place (the bytes overwritten are the
 * ':' after a name, the OWS or CR after a value, the '?' and the SP after
 * the target: http-parser is done with them). */
static int head_finish(struct wpd_http_parser *p)
{
	struct http_parser_url u;
	char *url = (char *)p->url;

	if (!url || http_parser_parse_url(url, p->url_len, 0, &u))
		return fail(p, 400, "invalid request target");
	if (u.field_set & (1 << UF_USERINFO))
		return fail(p, 400, "userinfo in the request target");
	p->req.query = p->nul;
	if (u.field_set & (1 << UF_QUERY)) {
		p->req.query = url + u.field_data[UF_QUERY].off;
		p->req.query[u.field_data[UF_QUERY].len] = 0;
	}
	if (u.field_set & (1 << UF_PATH)) {
		p->req.path = url + u.field_data[UF_PATH].off;
		p->req.path[u.field_data[UF_PATH].len] = 0;
	} else {
		/* absolute-form without a path: "http://host" is "/" */
		url[0] = '/';
		url[1] = 0;
		p->req.path = url;
	}
	for (int i = 0; i < p->hp_nhdr; i++) {
		struct wpd_http_hdr *h = &p->req.hdr[i];
		char *name = (char *)h->name;

		name[h->name_len] = 0;
		while (h->value_len &&
		       (h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
			h->value_len--;
		/* An empty value is reported (if at all) as 0 bytes at the start
		 * of the next line: never write there. */
		if (!h->value || !h->value_len) {
			h->value = name + h->name_len; /* "" */
			h->value_len = 0;
			continue;
		}
		((char *)h->value)[h->value_len] = 0;
	}
	p->req.nhdr = (uint32_t)p->hp_nhdr;
	return 0;
}

static int head_parse(struct wpd_http_parser *p)
{
	size_t n = p->head_len - p->rl_start, c;
	enum http_errno err;

	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	c = http_parser_execute(&p->hp, &settings, p->head + p->rl_start, n);
	if (p->phase == WPD_HTTP_ERROR)
		return -1;
	err = HTTP_PARSER_ERRNO(&p->hp);
	if (err == HPE_PAUSED)
		http_parser_pause(&p->hp, 0);
	else if (err != HPE_OK)
		return hp_fail(p, err);
	/* The lexical check and http-parser must agree on the head. */
	if (c != n || (uint32_t)p->hp_nhdr != p->nlines || p->req.minor != p->hp.http_minor ||
	    p->hp.http_major != 1)
		return fail(p, 400, "request head the parser read differently");
	if (head_finish(p) < 0)
		return -1;
	if (p->paused_at == PAUSE_MSG)
		return done(p);
	p->paused_at = PAUSE_NONE;
	p->phase = WPD_HTTP_BODY;
	p->body_max = p->chunked ? p->lim.body_bytes : p->cl;
	return 0;
}

/*
 * Chunked framing, checked before http-parser sees it: from data_left == 0
 * up to the LF that ends a chunk-size line (or, after the last chunk, the
 * CRLF that ends the body). Takes at most that many bytes of d and returns
 * how many, or -1. Checking each byte in order, before any parse, makes the
 * outcome independent of how the bytes were cut.
 */
static ssize_t frame_scan(struct wpd_http_parser *p, const char *d, size_t n, int *complete)
{
	size_t i;

	*complete = 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		uint32_t at = p->frame_len;
		uint32_t lead = p->nchunks ? 2 : 0; /* the CRLF after the data */

		if (p->last_chunk) { /* no trailers: exactly CRLF */
			if (c != (unsigned char)"\r\n"[at])
				return c == '\n' || at
					       ? fail(p, 400,
						      "chunked body not ended by CRLF after the last chunk")
					       : fail(p, 400,
						      "trailer fields after a chunked body are not accepted");
		} else if (at < lead) {
			if (c != (unsigned char)"\r\n"[at])
				return fail(p, 400, "chunk data not followed by CRLF");
		} else if (at > lead && p->frame[at - 1] == '\r') {
			if (c != '\n')
				return fail(p, 400, "bare CR in a chunk size line");
		} else if (c == '\n') {
			return fail(p, 400, "bare LF in a chunk size line (CRLF required)");
		} else if (at == lead || (!p->in_ext && hexval(c) >= 0)) {
			/* the size, digit by digit: refused at the digit that
			 * makes it too large, before http-parser (which counts
			 * in 64 bits and gives up at 16 digits) */
			if (hexval(c) < 0)
				return fail(p, 400, "chunk size is not hexadecimal");
			if (at == lead)
				p->chunk_size = 0;
			if (at - lead >= 16)
				return fail(p, 400, "chunk size overflow");
			p->chunk_size = p->chunk_size * 16 + (uint64_t)hexval(c);
			if (p->chunk_size > p->body_max - p->req.body_len)
				return fail(p, 413, "request body larger than the limit");
		} else if (at - lead >= WPD_HTTP_CHUNK_LINE_MAX) {
			return fail(p, 400,
				    "chunk size line longer than 256 bytes (chunk extensions)");
		} else if (c == '\r') {
			if (p->in_ext == 1)
				return fail(p, 400, "invalid chunk size line");
		} else if (p->in_ext == 2) {
			/* chunk-ext: ignored, but no control characters */
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(p, 400, "control character in a chunk extension");
		} else if (c == ';') {
			p->in_ext = 2;
		} else if (c == ' ' || (c == '\t' && p->in_ext == 1)) {
			p->in_ext = 1; /* BWS before ';' */
		} else {
			return fail(p, 400, "invalid chunk size line");
		}
		p->frame[p->frame_len++] = (char)c;
		if (c == '\n' && (p->last_chunk || at > lead)) {
			*complete = 1;
			return (ssize_t)i + 1;
		}
	}
	return (ssize_t)n;
}

static int body_take(struct wpd_http_parser *p, const char *data, size_t len, size_t *took)
{
	size_t off = 0;

	*took = 0;
	while (off < len && p->phase == WPD_HTTP_BODY) {
		const char *d = data + off;
		size_t n = len - off, c;
		enum http_errno err;
		int complete = 0;

		if (p->chunked) {
			if (p->data_left) {
				if (n > p->data_left)
					n = (size_t)p->data_left;
			} else {
				ssize_t k = frame_scan(p, d, n, &complete);

				if (k < 0)
					return -1;
				n = (size_t)k;
			}
		}
		p->paused_at = PAUSE_NONE;
		c = http_parser_execute(&p->hp, &settings, d, n);
		if (p->phase == WPD_HTTP_ERROR)
			return -1;
		err = HTTP_PARSER_ERRNO(&p->hp);
		if (err == HPE_PAUSED)
			http_parser_pause(&p->hp, 0);
		else if (err != HPE_OK)
			return hp_fail(p, err);
		/* http-parser must stop exactly where the framing scan did */
		if (p->chunked ? c != n || complete != (p->paused_at != PAUSE_NONE)
			       : c != n && p->paused_at != PAUSE_MSG)
			return fail(p, 400, "request body the parser read differently");
		off += c;
		*took = off;
		if (p->paused_at == PAUSE_CHUNK) {
			if (p->hp.content_length != p->chunk_size)
				return fail(p, 400, "chunk size the parser read differently");
			p->data_left = p->chunk_size;
			p->last_chunk = !p->chunk_size;
			p->nchunks++;
			p->frame_len = 0;
			p->in_ext = 0;
		} else if (p->paused_at == PAUSE_MSG) {
			return done(p);
		}
	}
	return 0;
}

int wpd_http_feed(struct wpd_http_parser *p, const char *data, size_t len, size_t *used,
		  struct wpd_http_req **req)
{
	size_t off = 0, n = 0;
	int r;

	*used = 0;
	*req = NULL;
	if (p->phase == WPD_HTTP_ERROR)
		return -1;
	if (p->phase == WPD_HTTP_DONE) {
		*req = &p->req;
		return 1;
	}
	if (p->phase == WPD_HTTP_IDLE)
		p->phase = WPD_HTTP_HEAD;
	if (p->phase == WPD_HTTP_HEAD) {
		r = head_take(p, data, len, &n);
		off = n;
		*used = off;
		if (r <= 0)
			return r;
		if (head_parse(p) < 0)
			return -1;
	}
	if (p->phase == WPD_HTTP_BODY) {
		n = 0;
		r = body_take(p, data + off, len - off, &n);
		off += n;
		*used = off;
		if (r < 0)
			return -1;
	}
	if (p->phase != WPD_HTTP_DONE)
		return 0;
	*req = &p->req;
	return 1;
}

/* ---- responses ---- */

const char *wpd_http_reason(int status)
{
	const char *s = status >= 100 && status <= 999 ? http_status_str((enum http_status)status)
						       : "<unknown>";

	return s[0] == '<' ? "Unknown" : s;
}

static char *put(char *w, const char *s, size_t n)
{
	memcpy(w, s, n);
	return w + n;
}

static char *put_u64(char *w, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*w++ = tmp[--n];
	return w;
}

#define PUT_LIT(w, s) put(w, s, sizeof(s) - 1)

void wpd_http_head(struct wpd_buf *out, int status, const char *ctype, int64_t clen, int keep_alive,
		   const char *extra)
{
	const char *reason = wpd_http_reason(status);
	size_t rl = strlen(reason), cl = ctype ? strlen(ctype) : 0, el = extra ? strlen(extra) : 0;
	char *w0 = wpd_buf_reserve(out, 160 + rl + cl + el), *w = w0;

	if (!w)
		return;
	w = PUT_LIT(w, "HTTP/1.1 ");
	w = put_u64(w, (uint64_t)(status < 0 ? 0 : status) % 1000);
	*w++ = ' ';
	w = put(w, reason, rl);
	w = PUT_LIT(w, "\r\n");
	if (ctype) {
		w = PUT_LIT(w, "Content-Type: ");
		w = put(w, ctype, cl);
		w = PUT_LIT(w, "\r\n");
	}
	/* RFC 9110 8.6, 6.4.1: no length and no body framing in 1xx and 204. */
	if (status >= 200 && status != 204) {
		if (clen >= 0) {
			w = PUT_LIT(w, "Content-Length: ");
			w = put_u64(w, (uint64_t)clen);
			w = PUT_LIT(w, "\r\n");
		} else if (clen == -1) {
			w = PUT_LIT(w, "Transfer-Encoding: chunked\r\n");
		}
	}
	w = keep_alive ? PUT_LIT(w, "Connection: keep-alive\r\n")
		       : PUT_LIT(w, "Connection: close\r\n");
	if (el)
		w = put(w, extra, el);
	w = PUT_LIT(w, "\r\n");
	wpd_buf_commit(out, (size_t)(w - w0));
}

void wpd_http_chunk(struct wpd_buf *out, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *w0, *w;
	int shift = 60;

	if (!len)
		return;
	w0 = w = wpd_buf_reserve(out, len + 22);
	if (!w)
		return;
	while (shift > 0 && !((len >> shift) & 0xf))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*w++ = hex[(len >> shift) & 0xf];
	w = PUT_LIT(w, "\r\n");
	w = put(w, data, len);
	w = PUT_LIT(w, "\r\n");
	wpd_buf_commit(out, (size_t)(w - w0));
}

void wpd_http_chunk_end(struct wpd_buf *out)
{
	wpd_buf_add(out, "0\r\n\r\n", 5);
}
