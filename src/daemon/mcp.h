/* SPDX-License-Identifier: MIT */
/*
 * MCP in wirepathd (docs/daemon.md, "MCP"): streamable HTTP at /mcp (every
 * configured server aggregated, tools prefixed per server) and /mcp/NAME
 * (one server), sessions, protocol-version negotiation, per-tenant tool
 * allow-lists, and the backends MCP servers run behind: stdio children
 * (restarted on crash with backoff), native tool services
 * (include/wirepath/service.h) and streamable-HTTP upstreams.
 */
#ifndef WPD_MCP_H
#define WPD_MCP_H

struct wpd_mcp;
struct wpd_loop;
struct wpd_config;
struct wpd_native;
struct wpd_ex;
struct wpd_buf;

/* natives[i] is the open native backend for config backend i, or NULL for
 * other kinds. Starts stdio children. Returns 0 or -errno. */
int wpd_mcp_create(struct wpd_loop *l, const struct wpd_config *c, struct wpd_native **natives,
		   struct wpd_mcp **out);
/* Stops children (SIGTERM, then SIGKILL after 2 s), fails pending calls. */
void wpd_mcp_destroy(struct wpd_mcp *m);
/* Adopt a new configuration (SIGHUP): servers kept by name keep their
 * children and sessions; removed ones stop; sessions that used a removed
 * server get 404 next time (the client re-initializes). c must outlive m
 * or the next reload. */
int wpd_mcp_reload(struct wpd_mcp *m, const struct wpd_config *c, struct wpd_native **natives);
/* Serve one request to /mcp (server NULL) or /mcp/NAME. */
void wpd_mcp_handle(struct wpd_mcp *m, struct wpd_ex *ex, const char *server);
/* Prometheus text lines: backend up/restarts, sessions, calls. */
void wpd_mcp_metrics(const struct wpd_mcp *m, struct wpd_buf *out);
/* 1 when every configured server is up (for /readyz). */
int wpd_mcp_ready(const struct wpd_mcp *m);

#endif
