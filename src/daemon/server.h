/* SPDX-License-Identifier: MIT */
/*
 * The daemon's server: listeners, client connections (HTTP/1.1 keep-alive,
 * one exchange at a time per connection, pipelined requests queued), the
 * exchange API (exchange.h), limits and timeouts, graceful drain, and the
 * generation swap that makes a reload atomic. Routing is in routes.c.
 */
#ifndef WPD_SERVER_H
#define WPD_SERVER_H

#include <stdint.h>

#include "daemon/buf.h"

struct wpd_server;
struct wpd_loop;
struct wpd_config;
struct wpd_tenants;
struct wpd_ex;
struct wpd_gen;

/*
 * Everything a request sees that a reload replaces: the configuration,
 * the tenants, and the route state built from them (backends, MCP). An
 * exchange holds a reference to the generation it started in, so a reload
 * never changes a request half-way; a generation is freed at its last
 * reference after it was replaced.
 */
struct wpd_gen {
	struct wpd_config *cfg;
	struct wpd_tenants *tenants; /* NULL with auth: none */
	struct wpd_routes *routes;   /* routes.c */
	uint32_t refs;
	uint64_t id; /* 1, 2, ... one per successful load */
	/* Set when installed: the last reference frees the generation from a
	 * deferred call, never inside the backend callback that dropped it
	 * (freeing a native backend destroys its context, which must not
	 * happen inside that context's own progress). */
	struct wpd_loop *loop;
};

int wpd_server_create(struct wpd_loop *l, struct wpd_server **out);
/* Bind every listener of cfg (before privileges are dropped). Returns 0 or
 * -errno with the reason logged. */
int wpd_server_bind(struct wpd_server *s, const struct wpd_config *cfg);
/* Install g as the current generation (takes the caller's reference). The
 * previous one is released. */
void wpd_server_set_gen(struct wpd_server *s, struct wpd_gen *g);
struct wpd_gen *wpd_server_gen(struct wpd_server *s);
void wpd_gen_put(struct wpd_gen *g);
/* Start accepting. */
int wpd_server_start(struct wpd_server *s);
/* Stop accepting, let exchanges in flight finish (Connection: close on
 * their responses), close idle connections. wpd_server_drained says when
 * nothing is left. */
void wpd_server_drain(struct wpd_server *s);
int wpd_server_drained(const struct wpd_server *s);
void wpd_server_destroy(struct wpd_server *s);

/* For /metrics: open connections, active exchanges, streams. */
struct wpd_server_stats {
	uint64_t conns_open, conns_total, conns_refused;
	uint64_t exchanges_active, streams_active;
	uint64_t bad_requests, timeouts, slow_clients, aborts;
	uint64_t rx_mem; /* bytes of request data held */
};
void wpd_server_stats(const struct wpd_server *s, struct wpd_server_stats *out);
/* Listener i's name and the edge it really got ("epoll" or "uring": io:
 * uring falls back to epoll for TLS and where io_uring is unavailable).
 * Returns 0, or -ENOENT past the last listener. */
int wpd_server_listener(const struct wpd_server *s, uint32_t i, const char **name, const char **io);
/* The io_uring edge's counters: 1 with *out filled, 0 when it is not set up. */
struct wpd_uedge_stats;
int wpd_server_uring_stats(const struct wpd_server *s, struct wpd_uedge_stats *out);

/* Exchange internals the routes need. */
struct wpd_gen *wpd_ex_gen(const struct wpd_ex *ex);
/* Called by routes at the end of each exchange, for metrics and the
 * access log (set by the daemon). */
typedef void (*wpd_ex_done_fn)(void *arg, const struct wpd_ex *ex, int status, uint64_t dur_ns,
			       uint64_t bytes_in, uint64_t bytes_out, uint32_t tokens,
			       const char *route, const char *backend);
void wpd_server_on_done(struct wpd_server *s, wpd_ex_done_fn fn, void *arg);
/* The request handler: routes.c's wpd_routes_dispatch. */
typedef void (*wpd_handler_fn)(void *arg, struct wpd_ex *ex);
void wpd_server_handler(struct wpd_server *s, wpd_handler_fn fn, void *arg);

#endif
