/* SPDX-License-Identifier: MIT */
/*
 * One HTTP request/response exchange on a client connection, as route
 * handlers see it (server.c implements it; the OpenAI routes, MCP and the
 * operational routes use it). The request is complete (head and body) when
 * a handler gets it; the handler answers now or later, with one complete
 * response or a stream (SSE over chunked transfer encoding).
 *
 * Lifetime: valid from the handler's call until the response is ended
 * (wpd_ex_reply, wpd_ex_error, wpd_ex_end) or, if the client goes away
 * first, until the abort callback returns. After either, the handler must
 * not touch it. A handler that answers later must set an abort callback,
 * so a client that disconnects mid-stream cancels its upstream work at once.
 */
#ifndef WPD_EXCHANGE_H
#define WPD_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

struct wpd_ex;
struct wpd_loop;
struct wpd_tenant;

const char *wpd_ex_method(const struct wpd_ex *ex); /* "GET", "POST", ... */
/* The request target's path, without the query (NUL-terminated). */
const char *wpd_ex_path(const struct wpd_ex *ex);
/* The query string after '?', or "" (NUL-terminated). */
const char *wpd_ex_query(const struct wpd_ex *ex);
/* The first header of that name (case-insensitive), NUL-terminated, or NULL. */
const char *wpd_ex_header(const struct wpd_ex *ex, const char *name);
/* The request body (de-chunked), and its length; "" for none. */
const char *wpd_ex_body(const struct wpd_ex *ex, size_t *len);
/* The tenant the request's API key maps to, or NULL (auth: none). */
const struct wpd_tenant *wpd_ex_tenant(const struct wpd_ex *ex);
struct wpd_loop *wpd_ex_loop(const struct wpd_ex *ex);
/* The client's address ("127.0.0.1", "unix"), for logs. */
const char *wpd_ex_peer(const struct wpd_ex *ex);
/* Set by the routes after authentication: the tenant, and whether the
 * request holds one of its concurrency slots (released when it ends). */
void wpd_ex_set_tenant(struct wpd_ex *ex, const struct wpd_tenant *t, int admitted);

/*
 * A complete response: status, Content-Type (NULL: none, for 202/204),
 * extra header lines (each "Name: value\r\n", or NULL), body. Ends the
 * exchange. Returns 0, or -ECONNRESET if the client is gone (the exchange
 * is ended either way).
 */
int wpd_ex_reply(struct wpd_ex *ex, int status, const char *ctype, const char *headers,
		 const void *body, size_t len);
/* The same with extra header lines (Retry-After, Allow, ...). */
int wpd_ex_error_h(struct wpd_ex *ex, int status, const char *headers, const char *type,
		   const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* An OpenAI-style error body {"error":{"message","type","param":null,"code"}}
 * (code NULL: null). Ends the exchange. */
int wpd_ex_error(struct wpd_ex *ex, int status, const char *type, const char *code, const char *fmt,
		 ...) __attribute__((format(printf, 5, 6)));

/* Start a streamed response: status line and headers (Content-Type:
 * text/event-stream, Cache-Control: no-cache, chunked), plus extra header
 * lines (or NULL). Returns 0 or -ECONNRESET. */
int wpd_ex_stream_begin(struct wpd_ex *ex, int status, const char *ctype, const char *headers);
/* Queue bytes (one or more whole SSE events) as one chunk. Never blocks;
 * past the output limit (limits.out_bytes) the client is too slow and is
 * dropped: the abort callback runs (deferred) and this returns -ENOBUFS. */
int wpd_ex_stream_send(struct wpd_ex *ex, const void *data, size_t len);
/* Bytes queued to this client and not yet written (for pacing a source). */
size_t wpd_ex_pending(const struct wpd_ex *ex);
/* End the stream (the last chunk). Ends the exchange. */
int wpd_ex_end(struct wpd_ex *ex);

/* Break the connection without ending the stream properly (no final
 * chunk): how a proxy tells its client that the upstream's response was
 * cut. Ends the exchange; the abort callback does not run. */
void wpd_ex_abort(struct wpd_ex *ex);

/* Called once if the client disconnects (or is dropped) before the exchange
 * ended; the exchange is gone when it returns. */
void wpd_ex_on_abort(struct wpd_ex *ex, void (*fn)(void *arg), void *arg);

/* For metrics and the access log: the route label ("chat", "mcp", ...),
 * the backend name, tokens streamed. Optional. */
void wpd_ex_label(struct wpd_ex *ex, const char *route, const char *backend);
void wpd_ex_add_tokens(struct wpd_ex *ex, uint32_t n);

#endif
