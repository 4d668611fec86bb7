/* SPDX-License-Identifier: MIT */
/*
 * /metrics (Prometheus text format 0.0.4) and the JSON-lines access log:
 * per route, tenant and backend, requests by status code, latency
 * histograms, bytes and SSE tokens; the server's gauges (connections,
 * active exchanges and streams); the daemon's own CPU time, memory and fds.
 */
#ifndef WPD_METRICS_H
#define WPD_METRICS_H

#include <stdint.h>

struct wpd_server;
struct wpd_ex;
struct wpd_buf;

int wpd_metrics_init(const char *access_log);
/* Reopen the access log (SIGHUP, after logrotate), or switch it. */
int wpd_metrics_access_log(const char *path);
void wpd_metrics_fini(void);
/* The server's exchange-done hook (server.h wpd_ex_done_fn). */
void wpd_metrics_done(void *arg, const struct wpd_ex *ex, int status, uint64_t dur_ns,
		      uint64_t bytes_in, uint64_t bytes_out, uint32_t tokens, const char *route,
		      const char *backend);
void wpd_metrics_render(const struct wpd_server *s, struct wpd_buf *out);

#endif
