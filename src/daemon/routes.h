/* SPDX-License-Identifier: MIT */
/*
 * wirepathd's routes: authentication and admission, the OpenAI-compatible
 * routes over native and http backends, MCP (mcp.h), and the operational
 * routes (/healthz, /readyz, /metrics). The route state of a generation
 * (server.h) is built here from its configuration; backends that survive a
 * reload unchanged (same name, kind and target) are shared, not reopened.
 */
#ifndef WPD_ROUTES_H
#define WPD_ROUTES_H

struct wpd_routes;
struct wpd_gen;
struct wpd_loop;
struct wpd_server;
struct wpd_ex;
struct wpd_buf;

/* Build g->routes for g->cfg (opening the backends it adds). prev is the
 * generation it replaces (NULL at start). Returns 0 or -errno, logged. */
int wpd_routes_build(struct wpd_loop *l, struct wpd_server *s, struct wpd_gen *g,
		     struct wpd_gen *prev);
void wpd_routes_free(struct wpd_routes *r);
/* The server's request handler. arg: the server. */
void wpd_routes_dispatch(void *arg, struct wpd_ex *ex);
/* Process-wide teardown (the MCP children, shared backends). */
void wpd_routes_shutdown(void);
/* Prometheus lines for backends (native, http, MCP). */
void wpd_routes_metrics(const struct wpd_gen *g, struct wpd_buf *out);
/* 1 when every backend of g is up. */
int wpd_routes_ready(const struct wpd_gen *g, struct wpd_buf *why);

#endif
