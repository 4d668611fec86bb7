/* SPDX-License-Identifier: MIT */
/*
 * HTTP upstreams (backends of kind http): a keep-alive connection pool to
 * one origin, and proxied requests whose response streams back as it
 * arrives (head, then body bytes de-chunked, then done), never buffered
 * whole. Plain HTTP/1.1 over TCP; an upstream's TLS is out of scope (it
 * sits on the same host or a trusted network; docs/daemon.md).
 */
#ifndef WPD_UPSTREAM_H
#define WPD_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct wpd_loop;
struct wpd_upstream;
struct wpd_up_req;

struct wpd_up_cbs {
	/* The response head: status and Content-Type ("" if none). */
	void (*head)(void *arg, int status, const char *ctype);
	/* Body bytes as they arrive (chunked encoding removed). */
	void (*body)(void *arg, const char *data, size_t len);
	/* Exactly once: 0 (whole response), or -errno (-ECONNREFUSED,
	 * -ETIMEDOUT, -EPROTO for a malformed response, ...). After it the
	 * request is gone. */
	void (*done)(void *arg, int err);
	void *arg;
	/* Optional, before head: each response header whose name fits 31
	 * bytes and whose value fits 255 (longer ones are not reported). */
	void (*header)(void *arg, const char *name, const char *value);
};

/* url: "http://HOST:PORT[/base]". pool: idle connections kept. */
int wpd_upstream_open(struct wpd_loop *l, const char *name, const char *url, uint32_t pool,
		      uint32_t timeout_ms, struct wpd_upstream **out);
/* Cancels requests still in flight (no callbacks run: as wpd_upstream_cancel)
 * and frees. */
void wpd_upstream_close(struct wpd_upstream *u);
/* Send one request: path is appended to the url's base; headers are extra
 * lines ("Name: value\r\n"), Host, Content-Length and Connection are
 * added. Callbacks run from the loop, never inside this call. */
int wpd_upstream_request(struct wpd_upstream *u, const char *method, const char *path,
			 const char *headers, const void *body, size_t len,
			 const struct wpd_up_cbs *cbs, struct wpd_up_req **out);
/* Cancel: the connection is closed (the upstream sees the client leave),
 * no callback runs afterwards. */
void wpd_upstream_cancel(struct wpd_up_req *r);
/* For /metrics and /readyz. */
struct wpd_upstream_stats {
	uint64_t requests, errors, connects, reused, idle, active, retries;
	int up; /* the last connect or request succeeded */
};
void wpd_upstream_stats(const struct wpd_upstream *u, struct wpd_upstream_stats *out);

#endif
