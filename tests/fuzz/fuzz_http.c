// SPDX-License-Identifier: MIT
/*
 * Fuzz target for wirepathd's HTTP/1.1 request parser (src/daemon/http.c):
 * the bytes any TCP client sends before it proved anything. Built two ways
 * (tests/fuzz/fuzz.h): with libFuzzer by tests/fuzz/run.sh, and into
 * test_fuzz_http, which replays tests/fuzz/corpus-http/ (requests of every
 * shape the parser takes and refuses) and mutations of it, with the tokens
 * of tests/fuzz/http.dict.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * Per input, parsed as one connection's byte stream (pipelined requests
 * parsed in turn) with limits of 1 KiB of head and 2 KiB of body:
 *  (a) no crash; -1 always comes with a status in {400, 413, 414, 431, 501,
 *      505} and a reason; every later feed returns -1 again;
 *  (b) a parsed request: method one of the five served, path starting with
 *      '/' (or "*"), NUL-terminated strings whose lengths match, at most 64
 *      headers, body_len <= body_bytes and body[body_len] == 0;
 *  (c) the parser never holds more than head + body limits + 1 bytes;
 *  (d) fed byte by byte, and in two pieces cut where the input's first
 *      byte says, the same requests (a digest of every field) and the same
 *      outcome.
 * A broken invariant aborts.
 */
#include <stdint.h>
#include <string.h>

#include "daemon/http.h"
#include "fuzz.h"

static const struct wpd_http_limits lim = { 1024, 2048 };

struct outcome {
	uint64_t digest;
	uint32_t nreq;
	int status; /* 0: ended needing more, or clean */
	const char *why;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t mix_str(uint64_t h, const char *s, size_t n)
{
	FUZZ_CHECK(s && strlen(s) == n);
	return mix(mix(h, s, n), "\0", 1);
}

static void check_req(const struct wpd_http_req *r, struct outcome *o)
{
	static const char *const methods[] = { "GET", "POST", "DELETE", "HEAD", "OPTIONS" };
	int known = 0;
	uint64_t h = o->digest;

	for (size_t i = 0; i < 5; i++)
		known |= !strcmp(r->method, methods[i]);
	FUZZ_CHECK(known);
	FUZZ_CHECK(r->path && (r->path[0] == '/' || !strcmp(r->path, "*")));
	FUZZ_CHECK(r->query);
	FUZZ_CHECK(r->nhdr <= WPD_HTTP_MAX_HEADERS);
	FUZZ_CHECK(r->body && r->body_len <= lim.body_bytes && r->body[r->body_len] == 0);
	FUZZ_CHECK(r->minor >= 0 && r->minor <= 9);
	h = mix_str(h, r->method, strlen(r->method));
	h = mix_str(h, r->path, strlen(r->path));
	h = mix_str(h, r->query, strlen(r->query));
	for (uint32_t i = 0; i < r->nhdr; i++) {
		FUZZ_CHECK(r->hdr[i].name_len > 0);
		h = mix_str(h, r->hdr[i].name, r->hdr[i].name_len);
		h = mix_str(h, r->hdr[i].value, r->hdr[i].value_len);
		FUZZ_CHECK(wpd_http_header(r, r->hdr[i].name) != NULL);
	}
	h = mix(h, &r->body_len, sizeof(r->body_len));
	h = mix(h, r->body, r->body_len);
	h = mix(h, &r->minor, sizeof(r->minor));
	h = mix(h, &r->keep_alive, sizeof(r->keep_alive));
	h = mix(h, &r->expect_continue, sizeof(r->expect_continue));
	o->digest = h;
	o->nreq++;
}

/* One connection: bytes arrive step at a time (0: at once), or in two
 * pieces cut at split. */
static void run(const uint8_t *data, size_t len, size_t step, size_t split, struct outcome *o)
{
	struct wpd_http_parser p;
	size_t off = 0, got = 0;

	memset(o, 0, sizeof(*o));
	o->digest = 0xcbf29ce484222325ull;
	wpd_http_init(&p, &lim);
	while (got < len || off < got) {
		struct wpd_http_req *r;
		size_t used;
		int rc;

		if (off == got) {
			if (split)
				got = got < split && split < len ? split : len;
			else
				got = step && len - got > step ? got + step : len;
		}
		rc = wpd_http_feed(&p, (const char *)data + off, got - off, &used, &r);
		FUZZ_CHECK(used <= got - off);
		off += used;
		FUZZ_CHECK(wpd_http_mem(&p) <= lim.header_bytes + lim.body_bytes + 1);
		if (rc == 1) {
			FUZZ_CHECK(r == &p.req);
			check_req(r, o);
			wpd_http_next(&p);
			continue;
		}
		if (rc < 0) {
			FUZZ_CHECK(p.status == 400 || p.status == 413 || p.status == 414 ||
				   p.status == 431 || p.status == 501 || p.status == 505);
			FUZZ_CHECK(p.why && p.why[0]);
			FUZZ_CHECK(wpd_http_feed(&p, "x", 1, &used, &r) == -1 && used == 0);
			o->status = p.status;
			o->why = p.why;
			break;
		}
		FUZZ_CHECK(rc == 0 && off == got);
	}
	wpd_http_fini(&p);
}

static void same(const struct outcome *a, const struct outcome *b)
{
	FUZZ_CHECK(a->nreq == b->nreq);
	FUZZ_CHECK(a->digest == b->digest);
	FUZZ_CHECK(a->status == b->status);
	FUZZ_CHECK(a->why == b->why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, bytes, two;

	run(data, size, 0, 0, &whole);
	run(data, size, 1, 0, &bytes);
	same(&whole, &bytes);
	if (size > 1) {
		run(data, size, 0, 1 + data[0] % (size - 1), &two);
		same(&whole, &two);
	}
	return 0;
}
