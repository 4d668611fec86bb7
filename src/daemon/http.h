/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 requests as wirepathd receives them, and the bytes of its
 * responses (docs/daemon.md, "HTTP parsing").
 *
 * Parsing is Debian's libhttp-parser 2.9.4 (the parser Node.js used for a
 * decade) with a lexical check in front of it: http-parser tolerates bare
 * LF line ends, obs-fold, whitespace before a colon and, built without
 * HTTP_PARSER_STRICT, a chunk's data not followed by CRLF, and its chunk
 * extensions are unbounded. Each of those is a request-smuggling shape
 * when another HTTP hop frames the same bytes differently, so the raw bytes
 * of the head are checked line by line as they arrive (before http-parser
 * sees them), and so are the framing bytes of a chunked body (size lines,
 * the CRLFs around data).
 * http-parser then does the parse proper: the target, the header spans,
 * the version, keep-alive, de-chunking.
 *
 * Memory: the head is copied into a buffer that grows to at most
 * header_bytes, the body into one that grows as bytes arrive to at most
 * body_bytes + 1; both are kept between requests when small. One parser per
 * connection, one thread.
 */
#ifndef WPD_HTTP_H
#define WPD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

struct wpd_buf;

#define WPD_HTTP_MAX_HEADERS 64
/* A chunk-size line (size, extensions, CRLF) longer than this is refused:
 * http-parser would skip any number of extension bytes. */
#define WPD_HTTP_CHUNK_LINE_MAX 256

struct wpd_http_hdr {
	const char *name, *value; /* NUL-terminated, in the parser's own memory */
	uint32_t name_len, value_len;
};

struct wpd_http_req {
	char method[16];     /* "GET", "POST", ... */
	char *path;          /* target path without query, NUL-terminated (not percent-decoded) */
	char *query;         /* after '?', or "" */
	int minor;           /* HTTP/1.x */
	int keep_alive;      /* what http_should_keep_alive says */
	int expect_continue; /* Expect: 100-continue was sent (HTTP/1.1) */
	struct wpd_http_hdr hdr[WPD_HTTP_MAX_HEADERS];
	uint32_t nhdr;
	char *body; /* de-chunked body, NUL-terminated; "" when none */
	size_t body_len;
};

/* 0 = the default: 16 KiB of head (request line, headers, final CRLF),
 * 1 MiB of body. */
struct wpd_http_limits {
	uint32_t header_bytes;
	uint64_t body_bytes;
};

/* Everything below req is private to http.c; defined here so a connection
 * embeds its parser. */
struct wpd_http_parser {
	struct wpd_http_req req;
	int status;      /* after -1: the HTTP status to answer */
	const char *why; /* after -1: one line, a static string */

	http_parser hp;
	struct wpd_http_limits lim;
	int phase; /* WPD_HTTP_* in http.c */
	/* the head: raw bytes as received, checked line by line */
	char *head;
	uint32_t head_len, head_alloc;
	uint32_t line_start; /* offset of the line being received */
	uint32_t rl_start;   /* offset of the request line (after empty lines) */
	uint32_t nlines;     /* header lines (the request line not counted) */
	int rl_done;         /* the request line is complete */
	int ncl, nhost, te_chunked, te_other, te_after_chunked;
	uint64_t cl;
	/* what http-parser's callbacks saw */
	int cb_field; /* the last header callback was a field name */
	const char *url;
	size_t url_len;
	int hp_nhdr;
	int paused_at; /* the callback that paused http-parser */
	int cb_status; /* a callback's own refusal (status, why) */
	const char *cb_why;
	/* the body */
	char *body;
	size_t body_alloc;
	uint64_t body_max; /* Content-Length, or body_bytes for chunked */
	int chunked;
	uint32_t nchunks;
	int last_chunk;      /* the size-0 chunk came: only CRLF may follow */
	int in_ext;          /* size line: 0 digits, 1 whitespace after them, 2 extensions */
	uint64_t chunk_size; /* the size line just checked */
	uint64_t data_left;  /* bytes of the current chunk's data still to come */
	char frame[WPD_HTTP_CHUNK_LINE_MAX + 4]; /* CRLF + size line + CRLF */
	uint32_t frame_len;
	char nul[2]; /* "" for an empty query or body */
};

/* lim NULL or zero fields: the defaults. */
void wpd_http_init(struct wpd_http_parser *p, const struct wpd_http_limits *lim);
void wpd_http_fini(struct wpd_http_parser *p);

/*
 * Feed bytes; *used = bytes consumed. Returns 1 when a whole request is
 * parsed (*req points at it, valid until wpd_http_next; bytes after it are
 * NOT consumed: pipelining; fed again before wpd_http_next, it returns 1 and
 * consumes nothing), 0 when it needs more (every byte was consumed), or -1 on
 * a bad request: p->status is the HTTP status to answer (400, 413, 414, 431,
 * 501, 505) and p->why one line (a static string) saying why. After -1 the
 * connection must be closed; later calls return -1 again.
 */
int wpd_http_feed(struct wpd_http_parser *p, const char *data, size_t len, size_t *used,
		  struct wpd_http_req **req);
/* The request was handled: get ready for the next one on the same connection. */
void wpd_http_next(struct wpd_http_parser *p);
/* 1 once any byte of a request has been fed and the request is not yet
 * complete (for timeouts), 2 once the head is complete and the body is being
 * read; 0 otherwise (idle, complete, or refused). */
int wpd_http_in_progress(const struct wpd_http_parser *p);
/* 1 while the head is complete, carried "Expect: 100-continue" and the body
 * has not arrived: the server sends "HTTP/1.1 100 Continue\r\n\r\n" once. */
int wpd_http_want_continue(const struct wpd_http_parser *p);
/* Heap bytes it holds (for the receive budget). */
size_t wpd_http_mem(const struct wpd_http_parser *p);
/* The first header of that name (case-insensitive), or NULL. */
const char *wpd_http_header(const struct wpd_http_req *r, const char *name);

/* Response writing (into a wpd_buf; a failed append marks it oom). */
const char *wpd_http_reason(int status); /* "OK", "Not Found", ...; "Unknown" */
/*
 * Status line + Content-Type (if ctype) + Content-Length (clen >= 0) or
 * Transfer-Encoding: chunked (clen == -1) or neither (clen <= -2; and always
 * for 1xx and 204, which must carry neither) + Connection: keep-alive/close
 * + extra (whole lines, each ending in CRLF, or NULL) + CRLF. No Date.
 */
void wpd_http_head(struct wpd_buf *out, int status, const char *ctype, int64_t clen, int keep_alive,
		   const char *extra);
/* One chunk ("%zx\r\n" data "\r\n"); len 0 writes nothing. */
void wpd_http_chunk(struct wpd_buf *out, const void *data, size_t len);
/* The last chunk: "0\r\n\r\n". */
void wpd_http_chunk_end(struct wpd_buf *out);

#endif
