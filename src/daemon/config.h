/* SPDX-License-Identifier: MIT */
/*
 * wirepathd's configuration: the YAML file (docs/daemon.md, "Configuration")
 * parsed and validated into one immutable struct. A reload parses a new one
 * completely before the daemon swaps it in, so a running daemon has either
 * the old configuration or the new one, never half of each.
 *
 * Tenants, API keys and per-tenant limits are not here: they live in the
 * rules file (`policy:`), the same file the XDP program and stream
 * authentication use (docs/policy.md), parsed by libwirepath's
 * wp_policy_parse_file.
 */
#ifndef WPD_CONFIG_H
#define WPD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WPD_NAME_MAX 64

enum wpd_listen_kind { WPD_LISTEN_TCP = 1, WPD_LISTEN_UNIX = 2 };
enum wpd_io_kind { WPD_IO_EPOLL = 1, WPD_IO_URING = 2 };

struct wpd_listen {
	enum wpd_listen_kind kind;
	char addr[256];      /* tcp: "HOST:PORT" (HOST may be [v6]); unix: a path, or @name */
	enum wpd_io_kind io; /* default epoll */
	char tls_cert[256];  /* PEM files; both empty = plain HTTP */
	char tls_key[256];
	int line; /* where it was declared, for messages */
};

enum wpd_backend_kind { WPD_BACKEND_NATIVE = 1, WPD_BACKEND_HTTP = 2, WPD_BACKEND_STDIO = 3 };

struct wpd_backend {
	char name[WPD_NAME_MAX];
	enum wpd_backend_kind kind;
	char uri[256];       /* native: a wirepath URI (shm://@name, uring://h:p, tcp://h:p) */
	char url[256];       /* http: "http://HOST:PORT[/prefix]" (no TLS upstream) */
	char **argv;         /* stdio: the command and its arguments, NULL-terminated */
	char **env;          /* stdio: extra "NAME=value" entries, NULL-terminated, or NULL */
	uint32_t pool;       /* http: keep-alive connections kept (default 64) */
	uint32_t timeout_ms; /* per request to this backend (default 300000) */
	int line;
};

/* A model id served by a backend (/v1/models lists them). */
struct wpd_model {
	char name[WPD_NAME_MAX];
	uint32_t backend; /* index into backends */
	int line;
};

/* An MCP server aggregated at /mcp (tools prefixed) and reachable alone at
 * /mcp/NAME. */
struct wpd_mcp_server {
	char name[WPD_NAME_MAX];
	uint32_t backend;          /* index into backends (stdio, http or native) */
	char prefix[WPD_NAME_MAX]; /* default "NAME_" */
	int line;
};

struct wpd_limits {
	uint32_t conns_max;           /* client connections (default 10000) */
	uint32_t header_bytes;        /* request line + headers (default 16 KiB) */
	uint64_t body_bytes;          /* request body (default 1 MiB) */
	uint32_t header_timeout_ms;   /* whole request head (default 10 s) */
	uint32_t body_timeout_ms;     /* whole body once the head is in (default 30 s) */
	uint32_t idle_timeout_ms;     /* keep-alive idle (default 60 s) */
	uint64_t rx_budget;           /* bytes of request data held at once (default 256 MiB) */
	uint64_t out_bytes;           /* a slow client's queued output before it is dropped
				      * (default 8 MiB) */
	uint32_t mcp_sessions_max;    /* default 10000 */
	uint32_t mcp_session_idle_ms; /* an unused session expires (default 30 min) */
};

struct wpd_config {
	char path[256]; /* the file it came from */
	struct wpd_listen *listen;
	uint32_t nlisten;
	struct wpd_backend *backends;
	uint32_t nbackends;
	struct wpd_model *models;
	uint32_t nmodels;
	struct wpd_mcp_server *mcp;
	uint32_t nmcp;
	char **mcp_origins; /* allowed Origin values, NULL-terminated; NULL = only
			     * requests without Origin or from localhost */
	char policy[256];   /* rules file path; empty = no tenants, no auth (refused
			     * unless `auth: none` is set explicitly) */
	int auth_none;      /* `auth: none`: serve without API keys (local use) */
	char xdp_iface[64]; /* attach the policy's XDP program here (--xdp overrides) */
	struct wpd_limits limits;
	int metrics;          /* serve /metrics (default 1) */
	char access_log[256]; /* JSON lines; empty = off */
	char user[64];        /* drop privileges to this user after binding; empty = stay */
	uint32_t drain_ms;    /* SIGTERM: wait this long for streams (default 10 s) */
	int policy_line;      /* where `policy:` and `xdp:` were (0: absent), */
	int xdp_line;         /* for messages about them */
};

/*
 * Parse and validate path. On success *out is a new config (wpd_config_free).
 * On failure returns -EINVAL (or -errno for I/O) and writes one line
 * "FILE:LINE: reason" into err (for a file-level problem, "FILE: reason").
 */
int wpd_config_load(const char *path, struct wpd_config **out, char *err, size_t errlen);
/* The same from memory; name is what messages call the file. */
int wpd_config_parse(const char *name, const char *text, size_t len, struct wpd_config **out,
		     char *err, size_t errlen);
void wpd_config_free(struct wpd_config *c);

/* Index of the backend called name, or -1. */
int wpd_config_backend(const struct wpd_config *c, const char *name);

/*
 * `wirepathd --check FILE`: load the configuration and the rules file it
 * names (tenants, API keys), check that TLS files are readable and the XDP
 * interface exists, and print one line to out: "FILE: ok (N listeners, N
 * backends, N models, N MCP servers, N tenants)" or the first error
 * ("FILE:LINE: reason"). Returns 0 (ok) or 1.
 */
int wpd_config_check(const char *path, FILE *out);

#endif
