/* SPDX-License-Identifier: MIT */
/*
 * Internal core: the context, endpoints, the transmit queue every stream
 * path shares, the hooks the layers above conn install, and what the layers
 * call of each other. Paths include it for the structs; their contract is
 * backend.h. Users see only include/wirepath/wirepath.h.
 *
 * Threading: a context and its endpoints belong to one thread; nothing here
 * is locked. Lifetimes: endpoints are freed only at the end of
 * wp_ctx_progress (or in wp_ctx_destroy), once closed, released by their
 * owner, unreferenced by live server calls and with no I/O in flight in the
 * kernel (io_uring), so a pointer seen in an event batch stays valid for the
 * whole batch.
 */
#ifndef WP_CORE_H
#define WP_CORE_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "wirepath/wirepath.h"
#include "frame.h"
#include "rx.h"
#include "meter/counters.h"
#include "backend.h"

#define WP_STAGE_BLK (64u << 10) /* staging block: headers + small payloads */
#define WP_COPY_MAX 512u         /* payloads up to this are staged (copied) */
#define WP_IOV_MAX 256u          /* iovecs per send submission */

struct wp_ctx;
struct wp_ep;

/* ---- transmit queue ------------------------------------------------ */

struct wp_stage_blk {
	struct wp_stage_blk *next; /* free list */
	uint32_t fill;
	uint32_t refs; /* segments still referencing bytes here */
	uint8_t data[WP_STAGE_BLK];
};

/* One piece of the byte stream to send, in order. */
struct wp_seg {
	const uint8_t *p;
	uint32_t len;
	uint8_t done_flag;        /* sent (and, for zero-copy, notified) */
	uint8_t zc;               /* large payload: eligible for SEND_ZC */
	struct wp_stage_blk *blk; /* staged bytes, or NULL for a caller's payload */
	wp_done_fn done;
	void *arg;
};

/* Ring of segments with absolute indices: [head, sent) handed to the kernel
 * and awaiting completion, [sent, tail) not yet handed. sent_off is how much
 * of seg[sent] went already (partial write). */
struct wp_txq {
	struct wp_seg *seg;
	uint64_t mask;
	uint64_t head, sent, tail;
	uint64_t handed; /* segments below this were handed to the kernel
				    * (uring: submitted, maybe not yet completed) */
	uint32_t sent_off;
	struct wp_stage_blk *cur; /* staging block being appended to */
};

/* ---- registered memory ------------------------------------------- */

struct wp_mr {
	struct wp_mr *next;
	struct wp_ctx *ctx;
	uint8_t *addr;
	size_t len;
	uint32_t refs;
	int idx;          /* backend buffer index (uring fixed buffer), -1 if none */
	uint32_t id, key; /* how peers name it (wp_mr_export) */
	bool exported;    /* peers may place bytes in it / read from it */
	int memfd;        /* wp_mr_alloc: the shareable backing, else -1 */
};

/* ---- endpoints ----------------------------------------------------- */

enum wp_ep_state { WP_EPS_CONNECTING = 1, WP_EPS_OPEN, WP_EPS_LISTEN, WP_EPS_CLOSED };

/* ---- layers above conn --------------------------------------------- */

/*
 * Layers point one way: frame < conn < rpc < xfer. conn names nothing above
 * it: the upper layers (and the front door's frame guard) install what conn
 * calls when they attach to a context. Each keeps its per-endpoint and
 * per-context state in a struct defined in its own file, reached through
 * ep->up[id] and ctx->up[id].
 */
enum wp_layer_id {
	WP_LAYER_RPC,   /* rpc.c: call slots, server calls, handlers, deadlines */
	WP_LAYER_XFER,  /* xfer.c: the bulk transfer being placed from the stream */
	WP_LAYER_GUARD, /* src/policy/auth.c: tenant keys (frame tags) */
	WP_LAYERS
};

struct wp_layer_ops {
	/* The endpoint closed (once, from the one shutdown routine): fail
	 * what is pending with status. May be NULL. */
	void (*ep_closed)(struct wp_ep *ep, int status);
	/* The endpoint is being freed: release ep->up[id]. May be NULL. */
	void (*ep_free)(struct wp_ep *ep);
	/* The context is being destroyed: release ctx->up[id]. May be NULL. */
	void (*ctx_free)(struct wp_ctx *ctx);
};

/* A handler for one received frame type. Returns 0, or < 0 for a frame that
 * has no business here (conn closes the connection as unexpected). */
typedef int (*wp_frame_fn)(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload);

/* What the guard wants done with a frame being queued (wp_guard_ops.tx). */
enum wp_guard_tx {
	WP_TX_PLAIN,   /* queue it as is (no records on this connection) */
	WP_TX_HELD,    /* the guard keeps it until the handshake ends */
	WP_TX_RECORD,  /* queue it; it joins the open record (integrity) */
	WP_TX_ENCRYPT, /* queue it with its payload in writable memory (staged or
			* copied, counted): the guard encrypts it in place */
};

/*
 * Frame authentication v2 (src/policy/auth.c, docs/protocol.md), installed
 * into conn: ctx->guard judges the first frame of every connection a context
 * with a policy accepts; ep->guard is the endpoint's own once it has one (a
 * connecting endpoint with a tenant key, an accepted one that began its
 * handshake). conn calls the guard by these hooks only.
 */
struct wp_guard_ops {
	/*
	 * A received frame, right after its header was decoded and its payload
	 * arrived (payload NULL: an XFER frame placed piecewise). 0: dispatch
	 * it now. 1: the guard took it: a handshake message, or a frame held
	 * until its record's tag checks (the guard then dispatches it with
	 * wp_conn_dispatch), or a refusal (the guard counted it, logged it and
	 * closed the endpoint).
	 */
	int (*check)(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload);
	/* The end of one received chunk: held frames that point into it are
	 * copied out (counted). May be NULL. */
	void (*chunk_end)(struct wp_ep *ep);
	/* Is a received record open (frames held for its seal)? Its number in
	 * *rec: the frame-completion timeout runs per record (limits.c).
	 * May be NULL. */
	bool (*rx_open)(const struct wp_ep *ep, uint64_t *rec);
	/* A frame is about to be queued (h final but for h->auth, which the
	 * guard sets): enum wp_guard_tx, or < 0 (the send fails with it). */
	int (*tx)(struct wp_ep *ep, struct wp_frame_hdr *h, const void *pre, uint32_t prelen,
		  const void *data, size_t len, wp_done_fn done, void *arg);
	/* It was queued (RECORD, ENCRYPT): first is its first segment, hdr its
	 * staged header (prefix right after it), payload its payload (writable
	 * for ENCRYPT). 0 or < 0 (conn fails the endpoint). */
	int (*queued)(struct wp_ep *ep, uint64_t first, uint8_t *hdr, uint32_t prelen,
		      uint8_t *payload, size_t len);
	/* Right before the path's transmit burst: close the open record. */
	void (*flush)(struct wp_ep *ep);
	/* The endpoint is closing: the status its pending calls fail with
	 * (given the default; the guard says -EACCES or -EPROTO when it
	 * refused the peer or the handshake never finished). */
	int (*closing)(struct wp_ep *ep, int status);
	/* May this tenant use the reserved methods (stats)? */
	bool (*admin)(const struct wp_ctx *ctx, uint32_t tenant);
	/* The raw 16-byte key of a tenant of ctx's policy, for a path that
	 * authenticates its peer at set-up (shm). 0 or -ENOKEY. */
	int (*tenant_key)(const struct wp_ctx *ctx, uint32_t tenant, uint8_t key[16]);
	/* The key ep authenticates with (wp_ep_set_tenant_key; ep->guard is
	 * this guard). 0 or -ENOKEY. */
	int (*ep_key)(const struct wp_ep *ep, uint8_t key[16]);
	/* The guard runs a handshake of its own and calls
	 * wp_conn_handshake_done itself when it completes; otherwise the core
	 * calls it at the first frame delivered. */
	bool owns_handshake;
};

struct wp_ep {
	struct wp_ctx *ctx;
	struct wp_fast_ops fast;
	enum wp_ep_state state;
	int fd;
	int err;              /* why it closed */
	int tx_status;        /* what its queued sends complete with once closed */
	bool accepted;        /* freed by the library after WP_EP_CLOSED */
	bool owner_released;  /* wp_ep_close called (or accepted + closed) */
	bool dirty;           /* on ctx->dirty list */
	uint32_t refs;        /* holds by upper layers (live server calls) */
	uint32_t io_inflight; /* kernel ops (uring) that still reference us */
	struct wp_ep_cbs cbs;
	void *user;
	uint32_t tenant; /* default tenant of the frames it sends */
	int local_port;
	const struct wp_guard_ops *guard; /* this endpoint's frame guard, or NULL */
	/* Set by the path with `tenant` when the peer proved the tenant's key
	 * at set-up (shm): every frame on it comes from that tenant, so no
	 * per-frame tag, record or handshake is needed (the guard's check only
	 * requires the frame's tenant to be ep->tenant). */
	bool peer_verified;
	bool peer_cred; /* peer_pid/uid/gid are the kernel's (SO_PEERCRED) */
	int32_t peer_pid;
	uint32_t peer_uid, peer_gid;
	bool records_tx; /* the guard seals what it sends: never write a plain frame */

	struct wp_rx rx;
	struct wp_txq tx;

	void *up[WP_LAYERS]; /* each upper layer's per-endpoint state */

	struct wp_ep *next_all, *prev_all; /* ctx->eps */
	struct wp_ep *next_dirty;
	void *bk; /* backend private */

	/* Limits and timers (limits.c, docs/limits.md). Times are
	 * CLOCK_MONOTONIC_COARSE ns read by the sweep, never per frame. */
	bool active;    /* bytes moved since the last sweep (set per chunk/frame) */
	bool hs_done;   /* setup finished (wp_conn_handshake_done) */
	bool rx_paused; /* input stopped: budget spent, or (listener) accept backoff */
	bool counted;   /* an accepted endpoint in ctx->lim.nconns */
	uint64_t last_active, hs_since, partial_since;
	uint64_t rec_since, rec_open;               /* the guard's open record, since when */
	struct wp_lim_node *src_node, *tenant_node; /* counted against these */
	uint8_t *stash; /* budget-paused: received bytes the parser could not take */
	uint32_t stash_len;
	uint32_t backoff_ms; /* listener: the current accept backoff */
	uint64_t resume_at;  /* listener: when accepting resumes */
};

/* ---- context ------------------------------------------------------- */

struct wp_deferred {
	wp_done_fn fn;
	void *arg;
	int status;
};

/*
 * Extra work driven by wp_ctx_progress that has no file descriptor to wait
 * on (the GPU feed: CUDA events). max_wait runs before the path may sleep:
 * it starts what is queued and returns the longest sleep (us) it tolerates,
 * -1 for no limit. poll runs after the path's round (and on a context with
 * no path yet): it runs what completed and returns the events handled.
 */
struct wp_poller {
	struct wp_poller *next;
	int64_t (*max_wait)(void *arg);
	int (*poll)(void *arg);
	void *arg;
};

/* ---- limits (limits.c) ----------------------------------------------- */

#define WP_RX_BUDGET_DEFAULT (256ull << 20)
#define WP_FRAME_TIMEOUT_DEFAULT_MS 30000u
#define WP_HANDSHAKE_TIMEOUT_DEFAULT_MS 10000u

/* Count of accepted endpoints per key (a source address, a tenant). */
struct wp_lim_node {
	struct wp_lim_node *next;
	uint8_t key[16];
	uint32_t n;
};
#define WP_LIM_BUCKETS 256

/* What an accepted connection is counted against (wp_conn_admit). */
struct wp_admit {
	uint8_t src[16]; /* IPv6 or v4-mapped address */
	bool has_src;
};

/* Rate-limited log lines: one per interval per key, then a count. */
enum wp_rl_key { WP_RL_ACCEPT, WP_RL_REFUSE, WP_RL_TIMEOUT, WP_RL_BUDGET, WP_RL__COUNT };
struct wp_ratelimit {
	uint64_t next_ns;    /* the next line may go at this time */
	uint64_t suppressed; /* lines dropped since the last one */
};

struct wp_limits {
	struct wp_rx_budget budget;
	uint64_t seen_freed; /* budget.freed when paused readers last retried */
	uint32_t nconns;     /* accepted endpoints open (or setting up) */
	uint32_t npaused;    /* connections paused by the budget */
	uint32_t nbackoff;   /* listeners paused by accept errors */
	uint64_t sweep_ns, next_sweep;
	bool timers; /* any timeout enabled */
	bool started;
	struct wp_poller poller;
	struct wp_lim_node *src[WP_LIM_BUCKETS], *tenant[WP_LIM_BUCKETS];
	struct wp_ratelimit rl[WP_RL__COUNT];
};

struct wp_ctx {
	struct wp_ctx_opts o;
	const struct wp_backend_ops *ops;
	void *bk;
	char explain[2048];     /* wp_ctx_explain's line, rebuilt at each call */
	char explain_tail[256]; /* its selection part: fixed when the path is chosen */
	struct wp_ep *eps;
	struct wp_ep *dirty;
	struct wp_deferred *defer;
	uint32_t ndefer, defer_cap;
	struct wp_stage_blk *blk_free;
	struct wp_mr *mrs;
	uint32_t next_mr_id;
	int in_progress;
	int nr_closed;             /* endpoints awaiting free */
	struct wp_poller *pollers; /* wp_ctx_poller_add */
	/* Installed by the layers above conn (see wp_layer_ops). */
	const struct wp_layer_ops *layer[WP_LAYERS];
	void *up[WP_LAYERS]; /* each upper layer's per-context state */
	wp_frame_fn on_frame[WP_FT__MAX + 1];
	wp_rx_place_fn rx_place;          /* bulk pieces placed straight from the stream */
	const struct wp_guard_ops *guard; /* checks received frames, or NULL */
	struct wp_limits lim;             /* limits.c */
};

/* What wp_ctx_explain adds while a context requires authentication v2. */
#define WP_AUTH_EXPLAIN                                                                   \
	"; stream peers must run authentication v2: a handshake proving the tenant key, " \
	"then AES-256-GCM records (TLS 1.3-style, in user space, not kTLS)"

/* ---- internal functions ------------------------------------------- */

/* log.c: to ctx's callback, or to the process hook (wp_set_log) when ctx
 * is NULL or has none. */
void wp_log(struct wp_ctx *ctx, enum wp_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Rate-limited (log.c): at most one line per interval_ns for the key whose
 * state is rl; the next line that goes says how many were suppressed
 * ("... (N more suppressed)"). Returns 1 if the line went, 0 if suppressed. */
int wp_vlog_rl(struct wp_ctx *ctx, struct wp_ratelimit *rl, uint64_t interval_ns,
	       enum wp_log_level lvl, const char *fmt, va_list ap);
/* One line per second per key of the context; suppressed lines are counted
 * in the meter (log_suppressed). limits.c. */
void wp_log_rl(struct wp_ctx *ctx, enum wp_rl_key key, enum wp_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* CLOCK_MONOTONIC_COARSE in ns (a vDSO read, a few ns; ticks every 1-4 ms). */
uint64_t wp_coarse_ns(void);
/* To the process hook: for calls that have no context. */
void wp_log_global(enum wp_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void wp_vlog_global(enum wp_log_level lvl, const char *fmt, va_list ap);

/* loop.c: below every layer */
void wp_defer(struct wp_ctx *ctx, wp_done_fn fn, void *arg, int status);
void wp_ctx_run_deferred(struct wp_ctx *ctx);
/* The shortest sleep any poller tolerates caps timeout_us; then run them. */
int64_t wp_ctx_pollers_cap(struct wp_ctx *ctx, int64_t timeout_us);
int wp_ctx_pollers_run(struct wp_ctx *ctx);
/* Drive p from every wp_ctx_progress until wp_ctx_poller_del (p is the
 * caller's memory and must outlive the registration). */
void wp_ctx_poller_add(struct wp_ctx *ctx, struct wp_poller *p);
void wp_ctx_poller_del(struct wp_ctx *ctx, struct wp_poller *p);

/* conn.c */
void wp_ep_free(struct wp_ep *ep);
bool wp_ep_freeable(const struct wp_ep *ep);
/* Queue one frame: header + payload. done == NULL: payload copied.
 * Checks state and size, then calls ep->fast.send. */
int wp_conn_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		 wp_done_fn done, void *arg);
/* The same with a small prefix (<= 64 B, copied) between header and payload. */
int wp_txq_send2(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *pre, uint32_t prelen,
		 const void *data, size_t len, wp_done_fn done, void *arg);
/* Install an upper layer (at context creation or first use). */
void wp_conn_layer_set(struct wp_ctx *ctx, enum wp_layer_id id, const struct wp_layer_ops *ops);
/* Install the handler of one received frame type. */
void wp_conn_on_frame(struct wp_ctx *ctx, uint8_t type, wp_frame_fn fn);
/* May tenant use the reserved methods? True without a guard. */
bool wp_conn_admin(const struct wp_ctx *ctx, uint32_t tenant);
/* A frame with no business here: count it, tell the peer, close. */
void wp_conn_unexpected(struct wp_ep *ep);
/* Dispatch a received frame the guard let through (or held until its record
 * checked out). 1 if the endpoint closed meanwhile, else 0. */
int wp_conn_dispatch(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload);
/* Count reason, log line, tell the peer (reason) when it still can read
 * a plain frame, and close with err. */
void wp_conn_refuse(struct wp_ep *ep, int reason, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Queue n raw bytes (a handshake message, a record's seal), staged. */
int wp_txq_raw(struct wp_ep *ep, const void *bytes, uint32_t n);
/* Complete all segments with status (connection gone). */
void wp_txq_drop(struct wp_ep *ep, int status);
/* Anything queued that was not handed to the kernel yet? */
static inline bool wp_txq_pending(const struct wp_txq *q)
{
	return q->sent != q->tail;
}

/*
 * The endpoint's tenant is known (the front door authenticated it): count it
 * against conns_per_tenant. Idempotent (a bound endpoint returns 0).
 * Returns 0, or -EUSERS over the limit (counted): the caller closes.
 * Only accepted endpoints are counted.
 */
int wp_conn_tenant_bind(struct wp_ep *ep, uint32_t tenant);
/* The endpoint finished its setup: its handshake timer stops. Idempotent.
 * The core calls it at the first frame delivered unless the guard
 * owns_handshake; shm calls it when the hello/ack completes. */
void wp_conn_handshake_done(struct wp_ep *ep);
/* The parser's deliver callback for an endpoint (arg = ep), and what a
 * failed feed does (-EPROTO with reason: counted, CLOSE sent, closed). */
int wp_conn_rx_deliver(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload);
/* Feed len bytes to ep's parser (wp_rx_feed), then let the guard copy out
 * held frames that point into them; bytes copied are counted. */
int wp_conn_feed(struct wp_ep *ep, const uint8_t *p, size_t len, int *reason);
void wp_conn_rx_error(struct wp_ep *ep, int ret, int reason);
/* Close without a log line of its own (the caller counts and rate-limits):
 * timeouts, limits, shed frames. */
void wp_conn_drop(struct wp_ep *ep, int err);

/* limits.c: the receive budget, connection limits, accept backoff, timeouts */
void wp_limits_init(struct wp_ctx *ctx);
void wp_limits_fini(struct wp_ctx *ctx);
/* The path started: the sweep poller starts driving timers. */
void wp_limits_start(struct wp_ctx *ctx);
/* An endpoint closed: uncount it, give back its paused bytes, wake paused
 * listeners (a descriptor was freed). */
void wp_limits_ep_closed(struct wp_ep *ep);
/* The parser could not take bytes [p, p + len) for lack of budget: keep them
 * (in order) and stop reading ep. Returns 0, or -ENOBUFS after shedding. */
int wp_limits_rx_full(struct wp_ep *ep, const uint8_t *p, size_t len);

/* mem.c */
void wp_mr_attach_all(struct wp_ctx *ctx);
void wp_mr_free_all(struct wp_ctx *ctx);
/* An exported region by the id and key a peer named it with, or NULL. */
struct wp_mr *wp_mr_by_id(struct wp_ctx *ctx, uint32_t id, uint32_t key);

/* xfer.c */
/* Attach bulk transfers to a new context (XFER frames, the read method). */
int wp_xfer_attach(struct wp_ctx *ctx);

/* rpc.c */
/* Attach RPC to a new context (frame handlers, the stats method). */
int wp_rpc_attach(struct wp_ctx *ctx);
/* Register a library-served method (>= WP_METHOD_RESERVED), as a user
 * registers theirs with wp_rpc_register. */
int wp_rpc_register_reserved(struct wp_ctx *ctx, uint32_t method, wp_handler_fn fn, void *arg);
/* The request id of a server call, and its terminal answer with a status
 * (DATA|LAST, aux = status). */
uint64_t wp_call_id(const struct wp_call *call);
int wp_call_reply_status(struct wp_call *call, uint32_t status, const void *data, size_t len);
int wp_rpc_pending_new(struct wp_ep *ep, void (*on_data)(void *, struct wp_msg *),
		       void (*on_done)(void *, int), void *arg, int64_t deadline_us, uint64_t *id);
int wp_rpc_send_ctl(struct wp_ep *ep, uint8_t type, uint16_t flags, uint64_t id, uint32_t method,
		    uint32_t aux, const void *data, size_t len);

#endif
