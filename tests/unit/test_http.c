// SPDX-License-Identifier: MIT
/*
 * wirepathd's HTTP/1.1 request parser and response writer
 * (src/daemon/http.c): every refusal the parser makes, with its status
 * (smuggling shapes, limits, versions, methods), pipelining, and that the
 * way bytes are cut never changes the outcome (whole, byte by byte, split at
 * every offset of a chunked request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "daemon/buf.h"
#include "daemon/http.h"

#define H "Host: x\r\n"

static const struct wpd_http_limits small = { 1024, 4096 };

/* What a connection would see: bytes arrive step at a time (0 = all at
 * once; split > 0: first split bytes, then the rest); every request parsed,
 * the error, or "more" is written to out as text. */
static void transcript(const char *data, size_t len, const struct wpd_http_limits *lim, size_t step,
		       size_t split, struct wpd_buf *out)
{
	struct wpd_http_parser p;
	size_t off = 0, got = 0;

	wpd_http_init(&p, lim);
	while (got < len || off < got) {
		size_t used;
		struct wpd_http_req *r;
		int rc;

		if (off == got) {
			if (split)
				got = got < split ? (split < len ? split : len) : len;
			else
				got = step && len - got > step ? got + step : len;
		}
		rc = wpd_http_feed(&p, data + off, got - off, &used, &r);
		CHECK(used <= got - off);
		off += used;
		CHECK(wpd_http_mem(&p) <= p.lim.header_bytes + p.lim.body_bytes + 1);
		if (rc == 1) {
			CHECK(r == &p.req);
			wpd_buf_addf(out, "REQ %s %s ? %s 1.%d ka=%d ex=%d\n", r->method, r->path,
				     r->query, r->minor, r->keep_alive, r->expect_continue);
			for (uint32_t i = 0; i < r->nhdr; i++) {
				CHECK(strlen(r->hdr[i].name) == r->hdr[i].name_len);
				CHECK(strlen(r->hdr[i].value) == r->hdr[i].value_len);
				wpd_buf_addf(out, " %s=[%s]\n", r->hdr[i].name, r->hdr[i].value);
			}
			CHECK(r->body[r->body_len] == 0);
			CHECK(r->body_len <= p.lim.body_bytes);
			wpd_buf_addf(out, " body %zu [", r->body_len);
			wpd_buf_add(out, r->body, r->body_len);
			wpd_buf_adds(out, "]\n");
			CHECK(wpd_http_in_progress(&p) == 0);
			wpd_http_next(&p);
			continue;
		}
		if (rc < 0) {
			wpd_buf_addf(out, "ERR %d %s\n", p.status, p.why);
			CHECK(wpd_http_feed(&p, "x", 1, &used, &r) == -1 && used == 0);
			break;
		}
		CHECK(rc == 0);
		CHECK(off == got);
	}
	if (off == len && wpd_http_in_progress(&p))
		wpd_buf_addf(out, "MORE %d\n", wpd_http_in_progress(&p));
	wpd_http_fini(&p);
}

/* Whole, byte by byte, in 7-byte steps and split at every offset: the same
 * transcript. Returns it (caller frees). */
static char *parse_all_ways(const char *data, size_t len, const struct wpd_http_limits *lim)
{
	struct wpd_buf whole = { 0 }, b = { 0 };

	transcript(data, len, lim, 0, 0, &whole);
	CHECK(!whole.oom && whole.p);
	transcript(data, len, lim, 1, 0, &b);
	if (strcmp(whole.p, b.p)) {
		fprintf(stderr, "whole:\n%s\nbyte by byte:\n%s\n", whole.p, b.p);
		CHECK(0);
	}
	wpd_buf_reset(&b);
	transcript(data, len, lim, 7, 0, &b);
	CHECK(!strcmp(whole.p, b.p));
	for (size_t k = 1; k < len; k++) {
		wpd_buf_reset(&b);
		transcript(data, len, lim, 0, k, &b);
		if (strcmp(whole.p, b.p)) {
			fprintf(stderr, "split at %zu:\n%s\nwhole:\n%s\n", k, b.p, whole.p);
			CHECK(0);
		}
	}
	wpd_buf_free(&b);
	return whole.p;
}

static char *run(const char *s)
{
	return parse_all_ways(s, strlen(s), NULL);
}

#define EXPECT(raw, want)                                                                         \
	do {                                                                                      \
		char *got_ = run(raw);                                                            \
		if (!strstr(got_, want)) {                                                        \
			fprintf(stderr, "%s:%d: want \"%s\" in:\n%s\n", __FILE__, __LINE__, want, \
				got_);                                                            \
			exit(1);                                                                  \
		}                                                                                 \
		free(got_);                                                                       \
	} while (0)

static void test_basic(void)
{
	EXPECT("GET /v1/models HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
	       "REQ GET /v1/models ?  1.1 ka=1 ex=0\n Host=[a]\n Accept=[*/*]\n body 0 []\n");
	EXPECT("GET /a/b?x=1&y=2 HTTP/1.1\r\n" H "\r\n", "REQ GET /a/b ? x=1&y=2 1.1");
	EXPECT("POST /v1/chat/completions HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello",
	       "body 5 [hello]");
	/* values trimmed, empty values, names' case kept, lookup case-insensitive */
	EXPECT("GET / HTTP/1.1\r\n" H "X-A: \t a b \t\r\nX-B:\r\nX-C:   \r\n\r\n",
	       " X-A=[a b]\n X-B=[]\n X-C=[]\n");
	/* empty lines before the request line are ignored (RFC 9112 2.2) */
	EXPECT("\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", "REQ GET / ?  1.1");
	/* absolute-form and OPTIONS * */
	EXPECT("GET http://example.com/p?q=1 HTTP/1.1\r\n" H "\r\n", "REQ GET /p ? q=1 1.1");
	EXPECT("GET http://example.com HTTP/1.1\r\n" H "\r\n", "REQ GET / ?  1.1");
	EXPECT("OPTIONS * HTTP/1.1\r\n" H "\r\n", "REQ OPTIONS * ?  1.1");
	EXPECT("HEAD / HTTP/1.1\r\n" H "\r\n", "REQ HEAD /");
	EXPECT("DELETE /mcp HTTP/1.1\r\n" H "\r\n", "REQ DELETE /mcp");
	/* an h2c upgrade offer is ignored: the answer is HTTP/1.1 */
	EXPECT("GET / HTTP/1.1\r\n" H "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
	       "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
	       "REQ GET / ?  1.1");

	struct wpd_http_parser p;
	struct wpd_http_req *r;
	size_t used;
	const char *req = "GET / HTTP/1.1\r\nhOsT: h1\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n";

	wpd_http_init(&p, NULL);
	CHECK(wpd_http_feed(&p, req, strlen(req), &used, &r) == 1 && used == strlen(req));
	CHECK(!strcmp(wpd_http_header(r, "Host"), "h1"));
	CHECK(!strcmp(wpd_http_header(r, "X-MULTI"), "1"));
	CHECK(wpd_http_header(r, "X-None") == NULL);
	CHECK(r->body_len == 0 && r->body[0] == 0);
	/* fed again before next: the same request, nothing consumed */
	CHECK(wpd_http_feed(&p, "GET", 3, &used, &r) == 1 && used == 0);
	wpd_http_fini(&p);
}

static void test_keepalive(void)
{
	EXPECT("GET / HTTP/1.0\r\n\r\n", "REQ GET / ?  1.0 ka=0");
	EXPECT("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "1.0 ka=1");
	EXPECT("GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n", "1.1 ka=0");
	EXPECT("GET / HTTP/1.1\r\n" H "\r\n", "1.1 ka=1");
}

static void test_pipelining(void)
{
	const char *s = "GET /1 HTTP/1.1\r\n" H "\r\n"
			"POST /2 HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\nabc"
			"POST /3 HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
			"2\r\nde\r\n1;ext=1\r\nf\r\n0\r\n\r\n"
			"GET /4 HTTP/1.1\r\n" H "Connection: close\r\n\r\n";
	char *t = run(s);

	CHECK(strstr(t, "REQ GET /1"));
	CHECK(strstr(
		t, "REQ POST /2 ?  1.1 ka=1 ex=0\n Host=[x]\n Content-Length=[3]\n body 3 [abc]"));
	CHECK(strstr(t, "REQ POST /3") && strstr(t, "body 3 [def]"));
	CHECK(strstr(t, "REQ GET /4 ?  1.1 ka=0"));
	CHECK(!strstr(t, "MORE") && !strstr(t, "ERR"));
	free(t);

	/* a request cut short: more needed, in the head (1) or the body (2) */
	EXPECT("GET / HTTP/1.1\r\nHo", "MORE 1");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 9\r\n\r\nabc", "MORE 2");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", "MORE 2");
}

static void test_chunked(void)
{
	char *t;

	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
	       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	       "body 11 [hello world]");
	/* hex in both cases, leading zeros, extensions (bounded, ignored) */
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n"
	       "0000A;name=\"v\" ;x\r\n0123456789\r\n0;last\r\n\r\n",
	       "body 10 [0123456789]");
	/* a body split at every offset (run() does all of them) */
	t = run("POST /c HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
		"1\r\na\r\n2\r\nbc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
		"GET /next HTTP/1.1\r\n" H "\r\n");
	CHECK(strstr(t, "body 19 [abc0123456789abcdef]") && strstr(t, "REQ GET /next"));
	free(t);
	/* framing refused */
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
	       "ERR 400 chunk data not followed by CRLF");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
	       "00000000000000001\r\na\r\n0\r\n\r\n",
	       "ERR 400 chunk size overflow");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
	       "fffffffffffffffff\r\n",
	       "ERR 413"); /* refused at the digit past the limit */
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
	       "0000000000000001\r\na\r\n0\r\n\r\n",
	       "body 1 [a]");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nz\r\n", "ERR 400");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
	       "ERR 400 invalid chunk size line");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n",
	       "ERR 400 bare LF in a chunk size line");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\x01b\r\nhello\r\n",
	       "ERR 400 control character in a chunk extension");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\rhello\r\n",
	       "ERR 400 bare CR in a chunk size line");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n",
	       "ERR 400 trailer fields");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\n",
	       "ERR 400 chunked body not ended by CRLF");

	/* extensions abuse: a chunk-size line longer than 256 bytes */
	char big[1024];
	int n = snprintf(big, sizeof(big),
			 "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n1;");
	memset(big + n, 'e', 300);
	big[n + 300] = 0;
	EXPECT(big, "ERR 400 chunk size line longer than 256 bytes");
}

static void test_smuggling(void)
{
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	       "ERR 400 Content-Length together with Transfer-Encoding");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	       "ERR 400 Content-Length together with Transfer-Encoding");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	       "ERR 400 more than one Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\nhello",
	       "ERR 400 invalid Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\nhello",
	       "ERR 400 invalid Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n",
	       "ERR 400 invalid Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 1 0\r\n\r\n",
	       "ERR 400 invalid Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n",
	       "ERR 400 invalid Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", "ERR 400 invalid Content-Length");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n",
	       "ERR 400 invalid Content-Length (too large)");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551617\r\n\r\n",
	       "ERR 400 invalid Content-Length (too large)");
	/* leading zeros and surrounding whitespace are fine */
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length:  003 \r\n\r\nabc", "body 3 [abc]");

	/* Transfer-Encoding: chunked, exactly */
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n",
	       "ERR 501 transfer coding not implemented");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n",
	       "ERR 501 transfer coding not implemented");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", "ERR 501");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n",
	       "ERR 400 chunked is not the last transfer coding");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n",
	       "ERR 400 chunked applied more than once");
	EXPECT("POST / HTTP/1.1\r\n" H
	       "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	       "ERR 400 chunked applied more than once");
	EXPECT("POST / HTTP/1.1\r\n" H
	       "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
	       "ERR 400 chunked is not the last");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", "ERR 400 empty element");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked,\r\n\r\n",
	       "ERR 400 empty element");
	EXPECT("POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", "ERR 501");

	/* line ends: CRLF only */
	EXPECT("GET / HTTP/1.1\n" H "\r\n", "ERR 400 bare LF");
	EXPECT("GET / HTTP/1.1\r\nHost: x\n\r\n", "ERR 400 bare LF");
	EXPECT("GET / HTTP/1.1\r\n" H "\n", "ERR 400 bare LF");
	EXPECT("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", "ERR 400 bare CR");
	EXPECT("GET / HTTP/1.1\r\r\n" H "\r\n", "ERR 400 bare CR");
	/* obs-fold, control characters, whitespace before the colon */
	EXPECT("GET / HTTP/1.1\r\n" H "X-A: 1\r\n 2\r\n\r\n", "ERR 400 obs-fold");
	EXPECT("GET / HTTP/1.1\r\n" H "X-A: 1\r\n\t2\r\n\r\n", "ERR 400 obs-fold");
	EXPECT("GET / HTTP/1.1\r\n" H "X-A: a\x01b\r\n\r\n", "ERR 400 control character");
	EXPECT("GET / HTTP/1.1\r\n" H "X-A: a\x7f\r\n\r\n", "ERR 400 control character");
	char nul[] = "GET / HTTP/1.1\r\n" H "X-A: a_b\r\n\r\n";

	*strchr(nul, '_') = 0;
	{
		char *t = parse_all_ways(nul, sizeof(nul) - 1, NULL);

		CHECK(strstr(t, "ERR 400 control character"));
		free(t);
	}
	EXPECT("GET / HTTP/1.1\r\n" H "X-A: a\tb\r\n\r\n", "X-A=[a\tb]"); /* HTAB is fine */
	EXPECT("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "ERR 400 whitespace between a header name");
	EXPECT("POST / HTTP/1.1\r\n" H "Content-Length : 5\r\n\r\nhello",
	       "ERR 400 whitespace between a header name");
	EXPECT("GET / HTTP/1.1\r\n" H "X-A\t: 1\r\n\r\n", "ERR 400 whitespace between");
	EXPECT("GET / HTTP/1.1\r\n" H "NoColon\r\n\r\n", "ERR 400 header line without a colon");
	EXPECT("GET / HTTP/1.1\r\n" H ": v\r\n\r\n", "ERR 400 empty header name");
	EXPECT("GET / HTTP/1.1\r\n" H "X(A): v\r\n\r\n",
	       "ERR 400 invalid character in a header name");
	/* Host: exactly one in HTTP/1.1 */
	EXPECT("GET / HTTP/1.1\r\n\r\n", "ERR 400 HTTP/1.1 request without a Host header");
	EXPECT("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "ERR 400 more than one Host");
}

static void test_versions_methods(void)
{
	EXPECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "ERR 505");
	EXPECT("GET / HTTP/2.0\r\n" H "\r\n", "ERR 505");
	EXPECT("GET / HTTP/0.9\r\n\r\n", "ERR 505");
	EXPECT("GET /\r\n", "ERR 400 request line without an HTTP version");
	EXPECT("GET\r\n", "ERR 400 request line without a target");
	EXPECT("GET / HTTP/1.10\r\n" H "\r\n", "ERR 400 malformed HTTP version");
	EXPECT("GET / http/1.1\r\n" H "\r\n", "ERR 400 malformed HTTP version");
	EXPECT("GET  / HTTP/1.1\r\n" H "\r\n", "ERR 400");
	EXPECT("GET / HTTP/1.1 \r\n" H "\r\n", "ERR 400 malformed HTTP version");
	EXPECT("PUT / HTTP/1.1\r\n" H "\r\n", "ERR 501 method not implemented");
	EXPECT("PATCH / HTTP/1.1\r\n" H "\r\n", "ERR 501");
	EXPECT("CONNECT a:443 HTTP/1.1\r\n" H "\r\n", "ERR 501");
	EXPECT("TRACE / HTTP/1.1\r\n" H "\r\n", "ERR 501");
	EXPECT("get / HTTP/1.1\r\n" H "\r\n", "ERR 501");
	EXPECT("FOO / HTTP/1.1\r\n" H "\r\n", "ERR 501");
	EXPECT("G(T / HTTP/1.1\r\n" H "\r\n", "ERR 400 invalid character in the method");
	EXPECT("GET * HTTP/1.1\r\n" H "\r\n", "ERR 400 request target * is for OPTIONS only");
	EXPECT("GET /a#f HTTP/1.1\r\n" H "\r\n", "ERR 400 fragment");
	EXPECT("GET /\xc3\xa9 HTTP/1.1\r\n" H "\r\n",
	       "ERR 400 invalid character in the request target");
	EXPECT("GET a/b HTTP/1.1\r\n" H "\r\n", "ERR 400 request target is neither");
	EXPECT("GET http://u:p@h/ HTTP/1.1\r\n" H "\r\n", "ERR 400 userinfo");
}

static void test_limits(void)
{
	/* Static, not malloc: a NULL check the sanitized build's flow analysis
	 * could not see through made -Werror=array-bounds fire. */
	static char s[100000];
	char *t;
	int n;

	/* a target longer than the head limit: 414 */
	n = sprintf(s, "GET /");
	memset(s + n, 'a', 2000);
	strcpy(s + n + 2000, " HTTP/1.1\r\n" H "\r\n");
	t = parse_all_ways(s, strlen(s), &small);
	CHECK(strstr(t, "ERR 414"));
	free(t);
	/* a head larger than the limit: 431 */
	n = sprintf(s, "GET / HTTP/1.1\r\n" H "X-Big: ");
	memset(s + n, 'b', 2000);
	strcpy(s + n + 2000, "\r\n\r\n");
	t = parse_all_ways(s, strlen(s), &small);
	CHECK(strstr(t, "ERR 431 request head larger than the limit"));
	free(t);
	/* exactly at the limit: fine */
	n = sprintf(s, "GET / HTTP/1.1\r\n" H "X-Big: ");
	memset(s + n, 'b', 1024 - 4 - n);
	strcpy(s + 1024 - 4, "\r\n\r\n");
	CHECK(strlen(s) == 1024);
	t = parse_all_ways(s, strlen(s), &small);
	CHECK(strstr(t, "REQ GET /"));
	free(t);
	/* 64 header fields are fine, 65 are not */
	n = sprintf(s, "GET / HTTP/1.1\r\n" H);
	for (int i = 1; i < 64; i++)
		n += sprintf(s + n, "X-%d: %d\r\n", i, i);
	strcpy(s + n, "\r\n");
	t = run(s);
	CHECK(strstr(t, "REQ GET /") && strstr(t, "X-63=[63]"));
	free(t);
	sprintf(s + n, "X-64: 64\r\n\r\n");
	EXPECT(s, "ERR 431 more than 64 header fields");
	/* a body over the limit: Content-Length refused at the head, before
	 * the body comes; chunked as it grows */
	{
		const char *cl = "POST / HTTP/1.1\r\n" H "Content-Length: 4097\r\n\r\n";

		t = parse_all_ways(cl, strlen(cl), &small);
	}
	CHECK(strstr(t, "ERR 413"));
	free(t);
	n = sprintf(s, "POST / HTTP/1.1\r\n" H "Content-Length: 4096\r\n\r\n");
	memset(s + n, 'z', 4096);
	t = parse_all_ways(s, (size_t)n + 4096, &small);
	CHECK(strstr(t, "body 4096 [zzz"));
	free(t);
	n = sprintf(s, "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5; i++) {
		n += sprintf(s + n, "3e8\r\n");
		memset(s + n, 'a' + i, 1000);
		n += 1000;
		n += sprintf(s + n, "\r\n");
	}
	n += sprintf(s + n, "0\r\n\r\n");
	{
		struct wpd_buf b = { 0 };

		transcript(s, (size_t)n, &small, 0, 0, &b);
		CHECK(strstr(b.p, "ERR 413"));
		wpd_buf_reset(&b);
		transcript(s, (size_t)n, NULL, 0, 0, &b);
		CHECK(strstr(b.p, "body 5000 [aaa"));
		wpd_buf_free(&b);
	}
	/* memory: the parser holds at most the limits (checked in transcript
	 * after every feed), and little once idle */
	{
		struct wpd_http_parser p;
		struct wpd_http_req *r;
		size_t used;

		n = sprintf(s, "POST / HTTP/1.1\r\n" H "Content-Length: 4000\r\n\r\n");
		memset(s + n, 'q', 4000);
		wpd_http_init(&p, &small);
		CHECK(wpd_http_feed(&p, s, (size_t)n + 4000, &used, &r) == 1);
		CHECK(wpd_http_mem(&p) <= 1024 + 4001);
		wpd_http_next(&p);
		CHECK(wpd_http_mem(&p) <= 1024 + 4001);
		wpd_http_fini(&p);
		CHECK(wpd_http_mem(&p) == 0);
		/* the default limits, 16 KiB and 1 MiB, and a body bigger than
		 * the kept size: given back at next */
		n = sprintf(s, "POST / HTTP/1.1\r\n" H "Content-Length: 50000\r\n\r\n");
		memset(s + n, 'q', 50000);
		wpd_http_init(&p, NULL);
		CHECK(wpd_http_feed(&p, s, (size_t)n + 50000, &used, &r) == 1);
		CHECK(r->body_len == 50000 && wpd_http_mem(&p) >= 50001);
		wpd_http_next(&p);
		CHECK(wpd_http_mem(&p) <= 4096);
		wpd_http_fini(&p);
	}
}

static void test_progress(void)
{
	struct wpd_http_parser p;
	struct wpd_http_req *r;
	size_t used;
	const char *head = "POST / HTTP/1.1\r\n" H
			   "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n";

	wpd_http_init(&p, NULL);
	CHECK(wpd_http_in_progress(&p) == 0);
	CHECK(wpd_http_feed(&p, head, 5, &used, &r) == 0 && used == 5);
	CHECK(wpd_http_in_progress(&p) == 1 && !wpd_http_want_continue(&p));
	CHECK(wpd_http_feed(&p, head + 5, strlen(head) - 5, &used, &r) == 0);
	CHECK(wpd_http_in_progress(&p) == 2 && wpd_http_want_continue(&p));
	CHECK(wpd_http_feed(&p, "ab", 2, &used, &r) == 0 && used == 2);
	CHECK(!wpd_http_want_continue(&p));
	CHECK(wpd_http_feed(&p, "cGET", 4, &used, &r) == 1 && used == 1);
	CHECK(r->expect_continue == 1 && !strcmp(r->body, "abc"));
	CHECK(wpd_http_in_progress(&p) == 0);
	wpd_http_next(&p);
	CHECK(wpd_http_in_progress(&p) == 0);
	/* a refusal: in_progress 0, and every later feed refused */
	CHECK(wpd_http_feed(&p, "GET / HTTP/1.1\n", 15, &used, &r) == -1);
	CHECK(p.status == 400 && p.why && wpd_http_in_progress(&p) == 0);
	wpd_http_fini(&p);
	/* Expect in HTTP/1.0 is ignored (RFC 9110 10.1.1) */
	EXPECT("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\na", "ex=0");
}

static void test_responses(void)
{
	struct wpd_buf b = { 0 };

	CHECK(!strcmp(wpd_http_reason(200), "OK"));
	CHECK(!strcmp(wpd_http_reason(404), "Not Found"));
	CHECK(!strcmp(wpd_http_reason(431), "Request Header Fields Too Large"));
	CHECK(!strcmp(wpd_http_reason(799), "Unknown"));
	wpd_http_head(&b, 200, "application/json", 12, 1, NULL);
	CHECK(!strcmp(b.p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			   "Content-Length: 12\r\nConnection: keep-alive\r\n\r\n"));
	wpd_buf_reset(&b);
	wpd_http_head(&b, 200, "text/event-stream", -1, 0, "Cache-Control: no-cache\r\n");
	CHECK(!strcmp(b.p, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			   "Transfer-Encoding: chunked\r\nConnection: close\r\n"
			   "Cache-Control: no-cache\r\n\r\n"));
	wpd_buf_reset(&b);
	wpd_http_head(&b, 204, NULL, 0, 1, NULL);
	CHECK(!strcmp(b.p, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"));
	wpd_buf_reset(&b);
	wpd_http_head(&b, 304, NULL, -2, 1, NULL);
	CHECK(!strcmp(b.p, "HTTP/1.1 304 Not Modified\r\nConnection: keep-alive\r\n\r\n"));
	wpd_buf_reset(&b);
	wpd_http_chunk(&b, "hello", 5);
	wpd_http_chunk(&b, "", 0);
	{
		char big[300];

		memset(big, 'x', sizeof(big));
		wpd_http_chunk(&b, big, sizeof(big));
	}
	wpd_http_chunk_end(&b);
	CHECK(b.len == 10 + 307 + 5 && !memcmp(b.p, "5\r\nhello\r\n12c\r\nxxx", 18));
	CHECK(!memcmp(b.p + b.len - 7, "\r\n0\r\n\r\n", 7));
	/* our own chunked output parses back */
	{
		struct wpd_buf req = { 0 };
		char *t;

		wpd_buf_adds(&req,
			     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
		wpd_buf_add(&req, b.p, b.len);
		t = parse_all_ways(req.p, req.len, NULL);
		CHECK(strstr(t, "body 305 [helloxxx"));
		free(t);
		wpd_buf_free(&req);
	}
	wpd_buf_free(&b);
}

int main(void)
{
	test_watchdog(120);
	test_basic();
	test_keepalive();
	test_pipelining();
	test_chunked();
	test_smuggling();
	test_versions_methods();
	test_limits();
	test_progress();
	test_responses();
	printf("test_http: ok\n");
	return 0;
}
