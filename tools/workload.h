/* SPDX-License-Identifier: MIT */
/*
 * Bench workloads: the parameters of one agent step (basis: docs/workload.md),
 * parsed from a workload file (format: bench/workloads/README.md)
 * or taken from a built-in ("agentic", "classic").
 */
#ifndef WP_WORKLOAD_H
#define WP_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

struct wl {
	char name[64];
	uint32_t fanout;              /* tool calls per step, issued in parallel */
	uint32_t tool_req_bytes;      /* request payload per tool call */
	uint32_t tool_resp_bytes;     /* tool result, median */
	uint32_t tool_resp_p90_bytes; /* tool result at the 90th percentile */
	uint32_t tool_resp_p99_bytes; /* tool result at the 99th percentile */
	uint32_t mem_lookups;         /* memory/KV lookups per step, in parallel */
	uint32_t mem_bytes;           /* bytes returned per lookup */
	uint32_t model_req_bytes;     /* prompt/context bytes sent to the model per step */
	uint32_t tokens;              /* output tokens streamed per step */
	uint32_t token_bytes;         /* bytes per token */
	uint32_t token_batch;         /* tokens coalesced per stream frame (1 = none) */
	uint32_t telemetry_counters;  /* counters in the per-step telemetry event */
	uint32_t telemetry_hists;     /* histograms in the per-step telemetry event */
	uint32_t retry_pct;           /* percent of tool calls retried once */
	uint32_t tool_service_us;     /* server-side service time per tool call */
	uint32_t mem_service_us;      /* per memory lookup */
	uint32_t model_service_us;    /* per model call, before the first token */
	uint32_t token_interval_us;   /* between stream frames */
	uint64_t bulk_bytes;          /* bulk context transfer per step (0 = none) */
};

/* Fill w with a built-in workload: "agentic" or "classic". -ENOENT if unknown. */
int wl_builtin(const char *name, struct wl *w);
/*
 * Parse a workload file. Keys not given keep the "agentic" defaults. On error
 * returns -EINVAL and writes "FILE:LINE: reason" into err.
 */
int wl_parse_file(const char *path, struct wl *w, char *err, size_t errlen);
/* Same for text in memory; `origin` names it in error messages. */
int wl_parse_string(const char *text, const char *origin, struct wl *w, char *err, size_t errlen);
/* Same for len bytes that need not be NUL-terminated (what a file holds: a
 * NUL byte in a line is an error, as in a file). */
int wl_parse_buf(const void *text, size_t len, const char *origin, struct wl *w, char *err,
		 size_t errlen);
/* Load by name or path: a built-in name first, else a file. */
int wl_load(const char *name_or_path, struct wl *w, char *err, size_t errlen);
/* Check cross-field limits (fanout <= 1024, sizes <= 64 MiB, p50 <= p90 <= p99...). */
int wl_validate(const struct wl *w, char *err, size_t errlen);
/* Deterministic tool result size for draw r in [0,1): piecewise log-linear
 * through (0.5, p50), (0.9, p90), (0.99, p99). */
uint32_t wl_tool_resp_size(const struct wl *w, double r);
/* One JSON object with every field. Returns length like snprintf. */
int wl_to_json(const struct wl *w, char *buf, size_t len);

#endif
