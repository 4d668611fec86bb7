/* SPDX-License-Identifier: MIT */
/*
 * Inside MCP (mcp.c and its backends): the backend interface. A backend is
 * one MCP server as the daemon reaches it: a stdio child (mcp_stdio.c), a
 * streamable-HTTP upstream (mcp_http.c) or a native tool service (mcp.c). The daemon is the backend's only client: it
 * initializes the backend once and shares that backend session across all
 * client sessions, assigning its own request ids (so concurrent clients
 * never collide) and its own progress tokens.
 *
 * Calls: the caller fills a struct mcp_bcall (on_done, on_note, arg) and
 * owns its memory until on_done has run or it cancelled the call. on_done
 * never runs inside ops->call; it runs exactly once unless the caller
 * cancels first, with a response object (result or error; its id is the
 * backend's and is for the caller to replace), borrowed for the callback.
 */
#ifndef WPD_MCP_INT_H
#define WPD_MCP_INT_H

#include <stdint.h>

#include <jansson.h>
#include <wirepath/wirepath.h>

#include "daemon/config.h"
#include "daemon/loop.h"

struct wpd_mcp;
struct wpd_buf;
struct mcp_backend;

struct mcp_bcall {
	/* the caller's */
	void (*on_done)(struct mcp_bcall *bc, json_t *resp);
	void (*on_note)(struct mcp_bcall *bc,
			json_t *note); /* progress (token restored); may be NULL */
	void *arg;
	json_t *token; /* the client's progress token, or NULL (the backend's copy) */
	/* the backend's */
	struct mcp_backend *b;
	uint64_t bid;           /* the backend-side request id */
	void *priv;             /* native: the call's record (mcp.c) */
	struct wpd_timer timer; /* the backend's per-call timeout */
	struct mcp_bcall *next, *prev;
	int queued;  /* stdio: waiting for the child's initialize */
	json_t *req; /* stdio: the request, while queued; http: until answered */
	int retried; /* http: sent again once after the upstream lost its session */
};

/* A backend's list of calls in flight (stdio and http backends). */
static inline void mcp_bcall_link(struct mcp_bcall **head, struct mcp_bcall *bc)
{
	bc->prev = NULL;
	bc->next = *head;
	if (*head)
		(*head)->prev = bc;
	*head = bc;
}

static inline void mcp_bcall_unlink(struct mcp_bcall **head, struct mcp_bcall *bc)
{
	if (bc->prev)
		bc->prev->next = bc->next;
	else
		*head = bc->next;
	if (bc->next)
		bc->next->prev = bc->prev;
	bc->next = bc->prev = NULL;
}

struct mcp_backend_ops {
	/* Start a call of method with params (borrowed, copied; may be NULL).
	 * Returns 0, or -ENOTCONN (down, restarting: fail at once), -ENOBUFS
	 * (the child's input is full), -ENOMEM, -EOPNOTSUPP (the backend kind
	 * does not serve this method). */
	int (*call)(struct mcp_backend *b, const char *method, json_t *params,
		    struct mcp_bcall *bc);
	/* Cancel a call in flight: the backend is told (stdio:
	 * notifications/cancelled with its id; native: wp cancel); on_done
	 * will not run. */
	void (*cancel)(struct mcp_backend *b, struct mcp_bcall *bc, const char *reason);
	/* Forward a client notification (other than cancelled/initialized). */
	void (*notify)(struct mcp_backend *b, const char *method, json_t *params);
	/* Prometheus lines for this backend. */
	void (*metrics)(const struct mcp_backend *b, struct wpd_buf *out);
	/* Adopt a reloaded config entry of the same kind; returns 1 if the
	 * backend can keep running as is, 0 if it must be replaced. */
	int (*adopt)(struct mcp_backend *b, const struct wpd_backend *bc);
	void (*destroy)(struct mcp_backend *b);
};

struct mcp_backend {
	const struct mcp_backend_ops *ops;
	struct wpd_loop *loop;
	char name[WPD_NAME_MAX]; /* the MCP server's name */
	const char *kind;        /* "stdio", "native", "http" */
	int up;                  /* initialized and serving */
	json_t *init;            /* the backend's initialize result (capabilities,
				   * serverInfo, instructions), when up */
	uint32_t timeout_ms;     /* per call */
	uint64_t calls, call_errors, restarts, garbage;
	uint32_t restart_delay_ms; /* the backoff before the last (re)start */
};

/* Start a stdio backend for server name running bk (its argv and env).
 * Returns 0 or -errno (the child itself starts from the loop). */
int mcp_stdio_create(struct wpd_loop *l, const char *name, const struct wpd_backend *bk,
		     struct mcp_backend **out);

/* Start an http backend for server name: a streamable-HTTP MCP server at
 * bk->url (its path is the endpoint). Returns 0 or -errno (bad url);
 * initialize starts from the loop. */
int mcp_http_create(struct wpd_loop *l, const char *name, const struct wpd_backend *bk,
		    struct mcp_backend **out);

/* Finish stopping removed children (shutdown): each had SIGTERM when its
 * backend was destroyed and is polled from the loop meanwhile; this waits
 * out what is left of their 2 s, then SIGKILLs and reaps them. */
void mcp_stdio_stop_all(void);

/* An error response {"jsonrpc","id":null,"error":{code,message}} for a
 * backend's on_done (backends fail calls with these). */
json_t *mcp_error_resp(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* MCP's lines into the daemon's log (log.h, "mcp: ..."), rate limited per
 * source: a burst of 20, then 5 lines/s; the suppressed count comes with
 * the next line that passes. */
struct mcp_ratelimit {
	uint64_t t_ns;
	double tokens;
	uint64_t suppressed;
};
void mcp_log(struct mcp_ratelimit *rl, enum wp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The session-based revisions the daemon speaks, newest first (initialize
 * negotiates among these; the latest is what it speaks to its backends),
 * and the stateless one it serves besides (docs/daemon.md, "MCP"). */
extern const char *const mcp_versions[];
#define MCP_VERSION_LATEST "2025-11-25"
#define MCP_VERSION_STATELESS "2026-07-28"
int mcp_version_ok(const char *v);

#endif
