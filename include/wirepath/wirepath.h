/* SPDX-License-Identifier: MIT */
/*
 * wirepath: the host data path for agentic-AI serving.
 *
 * This is the whole public API: a context (one progress engine, one
 * thread), endpoints addressed by URI, a frame-level message API, RPC on top
 * (request/response, streams, deadlines, cancellation), the process meter and
 * latency histograms.
 *
 * Conventions
 * - Functions return >= 0 on success or a negative errno. Constructors take
 *   an out-pointer. -EAGAIN / -ENOBUFS mean back-pressure, not failure.
 * - A context and everything created from it belong to one thread. Nothing
 *   blocks except wp_ctx_progress(), which waits at most its timeout.
 * - Callbacks run from inside wp_ctx_progress() (never from inside the call
 *   that queued the work), so a callback may safely queue more work.
 * - Errors are reported one way: the return value says what (-errno), the
 *   log says why, in one line at WP_LOG_ERR. There is no error string to
 *   fetch afterwards. The library never prints: it logs through the
 *   context's callback (wp_ctx_opts.log) or, for calls without a context
 *   and contexts without a callback, the process hook (wp_set_log).
 * - Options structs (*_opts) start with `size_t sz`, the size the caller was
 *   built with, as libbpf's do: fill them with their *_opts_init function
 *   (or set .sz = sizeof(struct ...) in a zeroed struct). Fields beyond sz
 *   take their defaults, so sz 0 means all defaults; a caller built against
 *   a newer header may set sz larger than this library knows only if the
 *   fields it does not know are zero, else the call fails with -EINVAL.
 *
 * Buffer ownership (one contract for every path)
 * - SEND: a payload given to a send function with a completion callback
 *   (`done` != NULL) belongs to the library until `done` runs; the caller must
 *   neither modify nor free it before then. On zero-copy paths `done` runs only
 *   after the kernel has released the pages (io_uring notification CQE), not
 *   when the bytes were queued. A payload given without a completion callback
 *   is copied before the call returns (counted as bytes copied in the meter)
 *   and the caller may reuse it at once. Payloads of 512 bytes or less are
 *   always copied into the frame's staging block (cheaper than an iovec of
 *   their own); with a completion, `done` then runs at the next progress.
 * - A send function that returns an error took nothing: `done` never runs.
 * - RECEIVE: a received payload (struct wp_msg) is lent to the callback that
 *   delivers it. It stays valid until that callback returns, unless the
 *   callback calls wp_msg_keep(), after which it stays valid until
 *   wp_msg_release(). Receive is in place (the payload points into the
 *   transport's receive buffer: the read buffer on tcp, the provided buffer
 *   on uring, the sender's shared arena or heap on shm), so wp_msg_keep()
 *   copies the payload out (counted as bytes copied) and the receive buffer
 *   goes back at once (on shm: the sender's completion runs).
 * - shm: a payload outside this endpoint's shared heap (wp_ep_buf_alloc) is
 *   copied into the shared arena when sent (counted; `done` then runs at the
 *   next progress); one inside it is handed over in place and `done` runs
 *   when the peer has released it.
 */
#ifndef WIREPATH_WIREPATH_H
#define WIREPATH_WIREPATH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WP_API __attribute__((visibility("default")))

#define WP_VERSION_MAJOR 0
#define WP_VERSION_MINOR 1

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

enum wp_log_level { WP_LOG_ERR = 0, WP_LOG_WARN = 1, WP_LOG_INFO = 2, WP_LOG_DEBUG = 3 };

/* msg is one line without a newline, shorter than WP_LOG_LINE_MAX, lent to
 * the call. */
typedef void (*wp_log_fn)(void *arg, enum wp_log_level level, const char *msg);

#define WP_LOG_LINE_MAX 512

/*
 * The process-wide log hook, as libxdp's libxdp_set_print: where calls that
 * have no context log (wp_policy_parse*, wp_policy_xdp_*, the probes), and
 * where a context whose wp_ctx_opts.log is NULL logs (a GPU feed's failed
 * open, say). Messages above level are dropped unformatted. fn NULL
 * discards everything (the default). Returns the previous hook.
 *
 * Thread-safe: call it from any thread, at any time. The hook may run on
 * any thread, concurrently with itself. When wp_set_log returns, the
 * previous hook is not running and will not be called again (its arg may be
 * freed). The hook must not call wp_set_log or the probes (wp_probe_*: it
 * may be their answers being logged); either deadlocks.
 */
WP_API wp_log_fn wp_set_log(wp_log_fn fn, void *arg, enum wp_log_level level);

/* ------------------------------------------------------------------ */
/* Paths and capability probes                                         */
/* ------------------------------------------------------------------ */

/* How strictly the path named in a URI must be honoured. */
enum wp_select {
	WP_SELECT_REQUIRE = 0, /* fail with the probe's errno if unavailable */
	WP_SELECT_PREFER = 1,  /* fall back to the next best, logged at WARN and explained */
	WP_SELECT_ANY = 2,     /* best available; the URI scheme is only an address family */
};

/* Capability bits a path declares (wp_path_caps()). */
#define WP_CAP_STREAM (1u << 0)   /* reliable ordered byte stream underneath */
#define WP_CAP_BATCH (1u << 1)    /* many frames to many endpoints cost one syscall */
#define WP_CAP_ZC_SEND (1u << 2)  /* zero-copy send available (may still be copied) */
#define WP_CAP_MSHOT_RX (1u << 3) /* multishot receive into provided buffers */
#define WP_CAP_SQPOLL (1u << 4)   /* kernel submission polling thread */
#define WP_CAP_BUSY_POLL (1u << 5)
#define WP_CAP_INET \
	(1u << 6) /* addressed by host:port: may stand in for another such
				   * path under WP_SELECT_PREFER and ANY */

struct wp_probe_result {
	const char *name; /* "uring.send_zc", "tcp", ... */
	int ok;           /* 1 available, 0 not */
	int err;          /* errno a real attempt returned (0 if ok) */
	char detail[160]; /* one line: what was tried and what the kernel said */
};

/*
 * Run (once; answers are cached per process) every capability probe. Each
 * probe really exercises the feature. Returns the number of results and points
 * *out at a static table. Thread-safe.
 */
WP_API int wp_probe_all(const struct wp_probe_result **out);
/* Look one probe up by name; NULL if unknown. */
WP_API const struct wp_probe_result *wp_probe_get(const char *name);

/* ------------------------------------------------------------------ */
/* Context                                                             */
/* ------------------------------------------------------------------ */

struct wp_ctx;
struct wp_ep;
struct wp_msg;
struct wp_call;

struct wp_ctx_opts {
	size_t sz;             /* sizeof(struct wp_ctx_opts): wp_ctx_opts_init sets it */
	enum wp_select select; /* default WP_SELECT_PREFER */
	uint32_t max_frame;    /* max payload bytes per frame; 0 = 16 MiB */
	uint32_t zc_threshold; /* uring: SEND_ZC, tcp: MSG_ZEROCOPY at or above this
				   * payload; 0 = 16 KiB, UINT32_MAX = never */
	int zc_always;         /* uring, tcp: keep asking for zero copy even on
				   * connections where the kernel copied the first 16 sends */
	int sqpoll;            /* uring: 1 = IORING_SETUP_SQPOLL */
	int busy_poll;         /* never sleep in wp_ctx_progress; spin instead */
	uint32_t rx_buf_size;  /* uring provided buffer size; 0 = 64 KiB */
	uint32_t rx_buf_count; /* uring provided buffers; 0 = 64 */
	int64_t spin_us;       /* shm: poll the rings this long before sleeping on
				   * the doorbell, while most recent idle gaps were
				   * that short (adaptive; 0 = default 50 us, -1 =
				   * never spin; busy_poll = never sleep) */
	uint32_t shm_slots;    /* shm: ring descriptors per direction (power of
				   * two; 0 = 1024) */
	uint32_t shm_arena_mb; /* shm: per-direction arena for payloads the library
				   * copies in (0 = 4 MiB) */
	uint32_t shm_heap_mb;  /* shm: per-direction heap for wp_ep_buf_alloc, read
				   * in place by the peer (0 = 16 MiB) */
	wp_log_fn log;         /* NULL: the process hook (wp_set_log; by default
				   * that discards) */
	void *log_arg;
	enum wp_log_level log_level; /* default WP_LOG_WARN */
	int shm_same_uid;            /* shm: accept only connectors whose uid (SO_PEERCRED)
				   * is this process's effective uid (0 = any uid) */
	/*
	 * Limits for a server exposed to peers it does not trust
	 * (docs/limits.md). Receive memory: frames split across reads are
	 * assembled in memory charged to this context; a peer can never make
	 * the context allocate past rx_budget. When an assembly would exceed it
	 * the connection stops being read (back-pressure: the kernel's socket
	 * buffer holds the rest) until memory frees; large assemblies stop at
	 * 7/8 of the budget so small split frames still find room. Frames that
	 * arrive whole in one read cost nothing against it.
	 */
	uint64_t rx_budget; /* bytes; 0 = 256 MiB; at least max_frame */
	/* Accepted connections open at once: in the context, from one source
	 * address (tcp, uring), bound to one tenant (the front door). 0 = no
	 * limit (the default for all three: the fd limit bounds the first and
	 * is handled without spinning). Refusals are counted in the meter. */
	uint32_t conns_max;
	uint32_t conns_per_source;
	uint32_t conns_per_tenant;
	/* Timeouts, in ms, checked by a sweep at a fraction of the shortest
	 * (10 ms to 1 s): a started frame must complete within frame_timeout_ms
	 * (0 = 30 s; UINT32_MAX = never), a connection with no bytes either way
	 * for idle_timeout_ms is closed (0 = never, the default: pooled RPC
	 * connections idle between bursts), an accepted endpoint must finish
	 * its setup (shm: hello/ack; stream paths: its first frame; with an
	 * authenticating front door: its handshake) within
	 * handshake_timeout_ms (0 = 10 s; UINT32_MAX = never). */
	uint32_t frame_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t handshake_timeout_ms;
	/*
	 * ucx: the transports UCX must carry this context's connections on, a
	 * comma list of UCX transport names (tcp, posix, sysv, cma, rc_verbs,
	 * ...) or classes (rdma: any rc_, ud_ or dc_ transport; shm: posix,
	 * sysv, cma, xpmem, knem, self); "" = whatever UCX picks. Every
	 * connection's data lanes (what UCX reports it selected) are held to
	 * it: select=require refuses a connection UCX put elsewhere
	 * (-EPROTONOSUPPORT, logged at ERR), prefer and any keep it (WARN).
	 * wp_ctx_explain names the lanes either way.
	 */
	char ucx_need[64];
	/*
	 * ucx: trust the peer with this process's memory. UCX's software RMA
	 * (over tcp, sysv/posix shared memory, cma) checks nothing on the
	 * target: a peer that can issue RMA reads and writes wherever it likes
	 * in this process, rkey or not. By default (0) the ucx path uses RMA
	 * only on connections whose every rma lane is a verbs transport (the
	 * NIC checks the rkey), announces rkeys only there, and does not even
	 * enable UCX's RMA where UCX has no verbs transport; bulk transfers go
	 * as frames elsewhere. 1: RMA on every connection, whatever transport
	 * (set it on both sides; wp_ctx_explain says which applies and why).
	 */
	int ucx_trust_rma;
	/*
	 * uring: io_uring zero-copy receive (Linux 6.15+; docs/architecture.md,
	 * "uring: zero-copy receive"): "IFNAME" or "IFNAME:QUEUE" registers
	 * that NIC rx queue (IORING_REGISTER_ZCRX_IFQ, CAP_NET_ADMIN) and every
	 * connection receives with IORING_OP_RECV_ZC; "nodev" the device-less
	 * copy mode of newer kernels; "" = off (the default: provided buffers).
	 * The NIC must split headers from data and the flows must be steered
	 * to that queue (ethtool -N) for the payload to arrive without a copy.
	 * Where registration is refused, select=require fails the context's
	 * first listen or connect with the kernel's errno; prefer and any log
	 * a WARN and receive as usual. wp_ctx_explain says which, and why.
	 */
	char uring_zcrx[32];
	/* New fields go here, at the end (src/core/ctx.c takes each by name). */
};

/* Fill *o with the defaults, sz included (the whole struct is zeroed first,
 * padding too). */
WP_API void wp_ctx_opts_init(struct wp_ctx_opts *o);

/*
 * Create a context. The path (backend) is chosen at the first listen or
 * connect from the URI scheme and o->select; every later endpoint of this
 * context uses the same path. o may be NULL (defaults); it is copied, not
 * kept. Returns 0, -EINVAL (a bad option, or fields past what this library
 * knows set: see "Options structs" above; logged through the process hook),
 * -ENOMEM. *out belongs to the caller (wp_ctx_destroy).
 */
WP_API int wp_ctx_create(const struct wp_ctx_opts *o, struct wp_ctx **out);
/* Close every endpoint (pending calls fail with -ECONNABORTED) and free. */
WP_API void wp_ctx_destroy(struct wp_ctx *ctx);

/*
 * Drive all I/O: flush queued sends (one batched submission), wait up to
 * timeout_us (0 = do not wait, -1 = forever) for at least one event, run the
 * callbacks. Returns the number of events handled, or -errno on a fatal
 * context error. Endpoint errors are reported through callbacks, not here.
 */
WP_API int wp_ctx_progress(struct wp_ctx *ctx, int64_t timeout_us);

/*
 * Embedding a context in another event loop (as UCX's ucp_worker_get_efd and
 * ucp_worker_arm): the caller sleeps in its own epoll_wait, with each
 * context's fd in its set, and never inside the library. One thread still
 * drives everything; only the sleep moves. A loop over contexts c[0..n):
 *
 *	for (;;) {
 *		int64_t t, tmin = -1;
 *
 *		for (i = 0; i < n; i++) {
 *			while ((ret = wp_ctx_arm(c[i], &t)) == -EAGAIN)
 *				wp_ctx_progress(c[i], 0);
 *			if (ret < 0)
 *				fail(ret);
 *			if (t >= 0 && (tmin < 0 || t < tmin))
 *				tmin = t;
 *		}
 *		epoll_wait(epfd, ev, max, tmin < 0 ? -1 : (tmin + 999) / 1000);
 *		for (i = 0; i < n; i++)	// or those whose fd was ready
 *			wp_ctx_progress(c[i], 0);
 *	}
 *
 * - On an embedded context, call wp_ctx_progress with a timeout of 0 only.
 *   After a sleep, progress every context whose fd was ready: that is what
 *   resets the fd (an eventfd, a doorbell); without it the fd stays
 *   readable. A timer that came due makes the next wp_ctx_arm say -EAGAIN.
 * - epoll_wait may fail with EINTR (io_uring task work wakes the thread on
 *   kernels without DEFER_TASKRUN): a wake-up like any other.
 * - A busy context can return -EAGAIN round after round: a loop that must
 *   stay fair to its own descriptors bounds the inner loop and then waits
 *   with a timeout of 0.
 *
 * wp_ctx_fd: a file descriptor that becomes readable when the context may
 * have work (poll or epoll it for EPOLLIN, level-triggered; it may also be
 * readable with no work, a spurious wake-up that wp_ctx_progress(ctx, 0)
 * absorbs). Valid once the path has started (the first listen or connect):
 * before that -ENOTCONN. The same fd for the context's life; owned by the
 * context: do not read it or close it, and take it out of your epoll set
 * before wp_ctx_destroy (which closes it). -EOPNOTSUPP on a path that cannot be
 * embedded. tcp and shm: the context's epoll fd (shm's doorbells and
 * sockets are in it); uring: an eventfd registered with the ring at the
 * first call (the ring's own fd does not do: with DEFER_TASKRUN completions
 * reach the ring only when its thread enters the kernel, and a poller of
 * the ring fd sleeps through them).
 */
WP_API int wp_ctx_fd(struct wp_ctx *ctx);
/*
 * Prepare to sleep on wp_ctx_fd: flush queued sends, and return -EAGAIN if
 * there is work to do now (call wp_ctx_progress(ctx, 0) and arm again), or 0
 * when nothing is pending and every event that makes work will make the fd
 * readable. *timeout_us (may be NULL) receives the longest the caller may
 * sleep before calling wp_ctx_progress for the library's timers (RPC
 * deadlines, the limits sweep, accept backoff, GPU work in flight), -1 = no
 * timer (a timer already due is -EAGAIN). Like wp_ctx_progress it may run
 * callbacks (a send that fails closes its endpoint). Other errors:
 * -ENOTCONN before the path started, -EOPNOTSUPP (the path cannot be
 * embedded), -EINPROGRESS when called from one of the context's callbacks,
 * or a fatal -errno from the path.
 * shm: an armed context does not spin; its peers ring its doorbell (an
 * eventfd in the set) from their next publish on, exactly as they do for a
 * context asleep in wp_ctx_progress.
 */
WP_API int wp_ctx_arm(struct wp_ctx *ctx, int64_t *timeout_us);

/* The chosen path ("tcp", "uring") or NULL before the first endpoint. */
WP_API const char *wp_ctx_path(const struct wp_ctx *ctx);
/* One line: what path was chosen, with which options, and why, and what the
 * kernel did so far where it can downgrade silently (tcp: zero-copy sends
 * copied). Rebuilt at each call, from the thread driving ctx; valid until
 * the next call. */
WP_API const char *wp_ctx_explain(const struct wp_ctx *ctx);
WP_API uint32_t wp_path_caps(const struct wp_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */
/* ------------------------------------------------------------------ */

enum wp_ep_event {
	WP_EP_CONNECTED = 1, /* an accepted or connected endpoint is ready */
	WP_EP_CLOSED = 2,    /* closed; err says why (0: orderly, -EPROTO: bad frame, ...) */
};

struct wp_ep_cbs {
	/* Endpoint state changes. For a listener, called with the new endpoint. */
	void (*event)(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err);
	/* A one-way message (wp_ep_send_msg) arrived. msg is lent; see top. */
	void (*msg)(void *arg, struct wp_ep *ep, struct wp_msg *msg);
	void *arg;
};

/*
 * Listen on a URI: "tcp://HOST:PORT", "uring://HOST:PORT" or "any://HOST:PORT"
 * (both paths speak the same protocol over TCP, so a uring client can call a
 * tcp server). Port 0 picks a free port (see wp_ep_local_port). Accepted
 * endpoints inherit cbs. RPC requests are dispatched to handlers registered
 * with wp_rpc_register.
 *
 * Same-host shared memory: "shm:///path/to/socket" (a unix socket at that
 * path; a stale socket file nobody listens on is replaced), "shm://@name"
 * (an abstract unix socket), or "shm://@" to listen on a free abstract name
 * (wp_ep_local_uri says which). The unix socket only sets the connection up
 * (the shared memfd passes with SCM_RIGHTS) and tells either side when the
 * other dies; frames then travel through shared rings. `any` never picks shm
 * (its addresses are not host:port) and shm never falls back to another path.
 */
WP_API int wp_listen(struct wp_ctx *ctx, const char *uri, const struct wp_ep_cbs *cbs,
		     struct wp_ep **out);
/*
 * Connect to a URI. Returns at once; WP_EP_CONNECTED (or WP_EP_CLOSED with the
 * error) arrives from wp_ctx_progress. Sends queued before that are kept.
 */
WP_API int wp_connect(struct wp_ctx *ctx, const char *uri, const struct wp_ep_cbs *cbs,
		      struct wp_ep **out);
/* Close: pending calls complete with -ECONNABORTED, queued sends are dropped. */
WP_API void wp_ep_close(struct wp_ep *ep);
WP_API int wp_ep_local_port(const struct wp_ep *ep);
/* A URI a peer on this host can connect to, for a listening endpoint
 * ("tcp://127.0.0.1:PORT", "shm://@name"). Returns 0 or -errno. */
WP_API int wp_ep_local_uri(const struct wp_ep *ep, char *buf, size_t len);
WP_API void wp_ep_set_user(struct wp_ep *ep, void *user);
WP_API void *wp_ep_user(const struct wp_ep *ep);
/* Set the tenant id stamped on frames this endpoint sends. */
WP_API void wp_ep_set_tenant(struct wp_ep *ep, uint32_t tenant);

/* Who is at the other end of a connection, as the kernel and the set-up
 * exchange established it. */
struct wp_ep_peer {
	int32_t pid; /* SO_PEERCRED at connect time (shm); -1 if unknown */
	uint32_t uid, gid;
	uint32_t tenant; /* the tenant whose key the peer proved at set-up, or 0 */
	int verified;    /* 1: the peer proved the tenant's key at set-up (shm with a
			   * policy or a tenant key), so frames need no per-frame tag */
	int cred;        /* 1: pid, uid and gid are the kernel's (unix sockets) */
};
/*
 * Fill *out for ep. Returns 0, or -ENOTCONN before the endpoint is
 * established. On paths without peer credentials (tcp, uring) cred is 0 and
 * pid -1. Never blocks.
 */
WP_API int wp_ep_peer(const struct wp_ep *ep, struct wp_ep_peer *out);

typedef void (*wp_done_fn)(void *arg, int status);

/*
 * One-way message. With done != NULL the payload belongs to the library until
 * done(arg, status) runs; otherwise it is copied now. Returns 0, -EMSGSIZE
 * (len > max_frame), -ENOTCONN (endpoint closed).
 */
WP_API int wp_ep_send_msg(struct wp_ep *ep, uint32_t method, const void *data, size_t len,
			  wp_done_fn done, void *arg);

/*
 * Send buffers: memory that sends from this endpoint read in place. On shm it
 * lies in the shared heap the peer maps, so a payload written there crosses
 * with no copy at all; elsewhere it is 64-byte aligned heap memory. A buffer
 * is the caller's until passed to a send with a completion, and the caller's
 * again when that completion runs (on shm: when the peer has released it);
 * give it back with wp_ep_buf_free. Buffers belong to the endpoint: they stay
 * mapped until the endpoint is freed (after WP_EP_CLOSED and, for an endpoint
 * the caller opened, wp_ep_close). Returns NULL when the heap is full
 * (back-pressure) or len is 0 or above max_frame.
 */
WP_API void *wp_ep_buf_alloc(struct wp_ep *ep, size_t len);
WP_API void wp_ep_buf_free(struct wp_ep *ep, void *buf);

/* A received payload. */
struct wp_msg {
	const void *data;
	uint32_t len;
	uint32_t method;
	uint32_t tenant;
	uint64_t req_id;
};
/* Keep a lent message beyond its callback: returns an owned copy (counted
 * as bytes copied), or NULL if out of memory. */
WP_API struct wp_msg *wp_msg_keep(struct wp_msg *msg);
/* Release a kept message. */
WP_API void wp_msg_release(struct wp_msg *msg);

/* ------------------------------------------------------------------ */
/* Registered memory and buffer pools                                  */
/* ------------------------------------------------------------------ */

struct wp_mr;
struct wp_pool;

/*
 * Register [addr, addr+len) with the context's path, once: registering a
 * range that lies inside an already registered region returns that region
 * again (reference counted; the cache makes repeat registration free). On
 * uring the pages are pinned and entered in the ring's buffer table, so
 * zero-copy sends from them skip per-send page pinning (SEND_ZC with a fixed
 * buffer); on tcp registration is bookkeeping only. Pinned memory counts
 * against RLIMIT_MEMLOCK: beyond it the call fails with -ENOMEM and says so
 * in the log. May be called before the first endpoint: the registration is
 * then made when the path starts. Returns 0 or -errno.
 */
WP_API int wp_mr_register(struct wp_ctx *ctx, void *addr, size_t len, struct wp_mr **out);
/*
 * Drop one reference; the region is unregistered at the last one. Returns 0,
 * or -EBUSY when it is the last reference and the path still uses the region
 * (rdma: an RDMA transfer posted from or into it has not completed, or peers
 * were told its rkey and have not yet acknowledged its withdrawal, which
 * this call starts): nothing is dropped; progress the context and call
 * again (a round trip per peer). Other paths always return 0.
 */
WP_API int wp_mr_deregister(struct wp_mr *mr);
/* 1 if the kernel holds this region registered (uring), 0 if bookkeeping only. */
WP_API int wp_mr_is_pinned(const struct wp_mr *mr);

/*
 * A pool of `count` buffers of `size` bytes in one registered region.
 * wp_pool_get returns NULL when all are in use (back-pressure, not failure).
 * A buffer is the caller's from get until it is passed to a send with a
 * completion, and the caller's again when that completion runs; then give it
 * back with wp_pool_put.
 */
WP_API int wp_pool_create(struct wp_ctx *ctx, size_t size, uint32_t count, struct wp_pool **out);
WP_API void *wp_pool_get(struct wp_pool *pool);
WP_API void wp_pool_put(struct wp_pool *pool, void *buf);
WP_API uint32_t wp_pool_avail(const struct wp_pool *pool);
WP_API void wp_pool_destroy(struct wp_pool *pool);

/* ------------------------------------------------------------------ */
/* Receive memory: where received payloads lie                         */
/* ------------------------------------------------------------------ */

/*
 * The memory a path receives into, so that another device can register it
 * once (the GPU feed pins it with cudaHostRegister: a payload delivered in
 * place from it is then DMA'd with no host copy; include/wirepath/gpu.h).
 */
enum wp_mem_kind {
	WP_MEM_URING_RX = 1,     /* uring: the provided-buffer ring's buffers (every
				  * connection of the context receives into them) */
	WP_MEM_TCP_RX = 2,       /* tcp: one connection's read buffer */
	WP_MEM_SHM_RX_ARENA = 3, /* shm: the peer's arena (payloads its library copied in) */
	WP_MEM_SHM_RX_HEAP = 4,  /* shm: the peer's heap (payloads it wrote in place) */
	WP_MEM_SHM_TX_HEAP = 5,  /* shm: this side's heap (wp_ep_buf_alloc) */
	WP_MEM_RDMA_RX = 6,      /* rdma: one connection's pre-posted receive buffers */
};
#define WP_MEM_READONLY 1u /* mapped read-only in this process */

struct wp_mem_range {
	void *addr;
	size_t len;
	uint32_t kind;  /* enum wp_mem_kind */
	uint32_t flags; /* WP_MEM_READONLY */
};

/*
 * Fill out[0..max) with the context's receive memory (shared by all its
 * endpoints: the uring buffer ring) and return how many ranges there are
 * (may exceed max, like snprintf). 0 before the path has started (first
 * listen or connect) and on paths that receive per endpoint. The ranges stay
 * mapped until wp_ctx_destroy.
 */
WP_API int wp_ctx_pools(const struct wp_ctx *ctx, struct wp_mem_range *out, uint32_t max);
/*
 * The same for one endpoint's own receive memory (tcp: its read buffer; shm:
 * the peer's arena and heap, read-only here, and this side's heap). Valid
 * once WP_EP_CONNECTED ran; the ranges stay mapped until the endpoint is
 * freed, so unregister them from any device when WP_EP_CLOSED arrives.
 */
WP_API int wp_ep_pools(const struct wp_ep *ep, struct wp_mem_range *out, uint32_t max);

/* ------------------------------------------------------------------ */
/* Bulk transfers (context / KV movement)                              */
/* ------------------------------------------------------------------ */

/*
 * Memory the library allocates (a sealed memfd mapping, registered like
 * wp_mr_register), so that a same-host peer can map it: on shm a transfer to
 * or from such a region is a single memcpy by the initiator. Freed (unmapped)
 * at the last wp_mr_deregister. Returns 0 or -errno.
 */
WP_API int wp_mr_alloc(struct wp_ctx *ctx, size_t len, struct wp_mr **out);
WP_API void *wp_mr_addr(const struct wp_mr *mr);
WP_API size_t wp_mr_size(const struct wp_mr *mr);

/*
 * A remote key: what a peer needs to address a region of ours. Plain bytes:
 * send it to the peer any way you like (an RPC is the usual way). The key
 * field is random, so a peer cannot guess its way into other regions.
 */
struct wp_rkey {
	uint32_t id;
	uint32_t key;
	uint64_t len;
	uint32_t flags; /* WP_RKEY_SHARED: the region can be mapped on this host */
	uint32_t pad;
};
#define WP_RKEY_SHARED 1u

/*
 * Make a region reachable by peers (writes into it, reads from it) and fill
 * *out. On shm the region's memfd is offered to every connection (now and
 * later ones). Until exported, frames naming the region are refused.
 */
WP_API int wp_mr_export(struct wp_mr *mr, struct wp_rkey *out);

enum wp_xfer_op {
	WP_XFER_WRITE = 1, /* local region -> the peer's region */
	WP_XFER_READ = 2,  /* the peer's region -> local region */
};

struct wp_xfer_desc { /* one contiguous piece */
	uint64_t local_off;
	uint64_t remote_off;
	uint64_t len;
};

struct wp_xfer_stats {
	uint64_t bytes;         /* payload bytes moved */
	uint64_t ns;            /* post to completion */
	uint64_t copied_local;  /* bytes user space copied on this side */
	uint64_t copied_remote; /* ... on the peer's side, as it reported */
	uint32_t frames;        /* frames sent (0: mapped, no frames at all) */
	uint32_t direct;        /* 1: no frames: the peer's memory was mapped (shm)
				 * or reached by RMA (ucx) */
};

struct wp_xfer_params {
	enum wp_xfer_op op;
	struct wp_mr *local;          /* a region of this context */
	const struct wp_rkey *remote; /* from the peer's wp_mr_export */
	const struct wp_xfer_desc *desc;
	uint32_t ndesc;      /* 1..1024 */
	int64_t deadline_us; /* 0 = none */
	void (*on_done)(void *arg, int status, const struct wp_xfer_stats *st);
	void *arg;
};

/*
 * Post a transfer (a list of descriptors, like a NIXL transfer request). The
 * local region's bytes belong to the library until on_done runs, from
 * wp_ctx_progress, exactly once: status 0 when every byte is in the
 * destination (for a write: the peer said so), a negative errno (-ECONNRESET,
 * -ETIMEDOUT, ...) or the peer's positive refusal (EACCES: unknown region or
 * key, ERANGE: outside it). How it moves:
 * - shm, region mapped (WP_RKEY_SHARED): one memcpy by the initiator, no frames;
 * - rdma, region advertised on the connection (exported on the peer): RDMA
 *   WRITE (the last one with immediate data) or READ straight between the
 *   regions, no frames, no copies (direct = 1); deadline_us applies while
 *   the transfer waits to be posted (send-queue slots, a credit): it then
 *   ends with -ETIMEDOUT once its posted pieces are done; posted pieces are
 *   bounded by the transport's retries. Until on_done the local region
 *   cannot be deregistered (-EBUSY);
 * - tcp, uring (and shm otherwise): XFER frames of at most 1 MiB; the sender
 *   sends the region in place (uring: zero-copy send at or above zc_threshold,
 *   the kernel's COPIED verdict counted in the meter), the receiver places
 *   each piece straight from its receive buffer into the region (one copy).
 * A region used as a READ destination is exported by the call.
 * Returns 0, -EINVAL (bad descriptor or range), -ENOTCONN, -ENOMEM.
 */
WP_API int wp_xfer_post(struct wp_ep *ep, const struct wp_xfer_params *p);

/* ------------------------------------------------------------------ */
/* RPC                                                                 */
/* ------------------------------------------------------------------ */

/* Methods at or above this id are reserved for the library. */
#define WP_METHOD_RESERVED 0xffff0000u
#define WP_METHOD_STATS 0xffff0001u     /* answered by every server: its meter snapshot */
#define WP_METHOD_XFER_READ 0xffff0002u /* bulk read (wp_xfer_post), served by the library */

/*
 * Client side. on_data runs for each response chunk (a unary response is one
 * chunk; a stream is many), on_done exactly once with the final status:
 * 0 ok, a negative errno from the library (-ETIMEDOUT deadline, -ECANCELED,
 * -ECONNRESET peer went away, -ECONNABORTED endpoint closed), or the positive
 * application status the server gave in wp_call_end/wp_call_error.
 */
struct wp_call_params {
	uint32_t method;
	const void *req;
	uint32_t req_len;
	int64_t deadline_us; /* relative; 0 = none */
	/* With req_done != NULL the request belongs to the library until it runs;
	 * otherwise it is copied at the call. */
	wp_done_fn req_done;
	void (*on_data)(void *arg, struct wp_msg *chunk);
	void (*on_done)(void *arg, int status);
	void *arg;
};

/* Start a call. *id (optional) receives the request id for wp_rpc_cancel. */
WP_API int wp_rpc_call(struct wp_ep *ep, const struct wp_call_params *p, uint64_t *id);
/* Cancel: on_done(-ECANCELED) runs from the next progress; the server is told. */
WP_API int wp_rpc_cancel(struct wp_ep *ep, uint64_t id);
/* Calls in flight on this endpoint. */
WP_API uint32_t wp_ep_inflight(const struct wp_ep *ep);

/*
 * Server side. The handler gets the request (lent, as a wp_msg) and a call
 * handle. It answers, now or later, with wp_call_reply (one chunk and end),
 * or wp_call_stream (any number of chunks) then wp_call_end, or
 * wp_call_error. The handle stays valid until one of the three terminal
 * answers (reply, end, error) is called, which frees it whatever it returns
 * (-ENOTCONN if the client went away: check wp_call_cancelled to stop early).
 * Payload ownership follows the send contract above.
 */
typedef void (*wp_handler_fn)(void *arg, struct wp_call *call, struct wp_msg *req);

WP_API int wp_rpc_register(struct wp_ctx *ctx, uint32_t method, wp_handler_fn fn, void *arg);
WP_API int wp_call_reply(struct wp_call *call, const void *data, size_t len, wp_done_fn done,
			 void *arg);
WP_API int wp_call_stream(struct wp_call *call, const void *data, size_t len, wp_done_fn done,
			  void *arg);
WP_API int wp_call_end(struct wp_call *call, uint32_t status);
WP_API int wp_call_error(struct wp_call *call, uint32_t status, const char *why);
/* 1 if the client cancelled or went away: stop producing, then wp_call_end. */
WP_API int wp_call_cancelled(const struct wp_call *call);
WP_API struct wp_ep *wp_call_ep(const struct wp_call *call);

/* ------------------------------------------------------------------ */
/* The meter                                                           */
/* ------------------------------------------------------------------ */

enum wp_sys_kind {
	WP_SYS_READ = 0, /* read/readv/recv */
	WP_SYS_WRITE,    /* write/writev/send/sendmsg */
	WP_SYS_EPOLL_WAIT,
	WP_SYS_EPOLL_CTL,
	WP_SYS_URING_ENTER,
	WP_SYS_ACCEPT,
	WP_SYS_CONNECT,
	WP_SYS_SOCKET, /* socket, setsockopt, bind, listen, getsockname */
	WP_SYS_CLOSE,
	WP_SYS_OTHER,
	WP_SYS__COUNT
};

enum wp_bad_reason {
	WP_BAD_MAGIC = 0,
	WP_BAD_VERSION,
	WP_BAD_TYPE,
	WP_BAD_FLAGS,
	WP_BAD_TOO_BIG,
	WP_BAD_TRUNCATED,    /* peer closed mid-frame */
	WP_BAD_UNEXPECTED,   /* well-formed but not valid in this state */
	WP_BAD_AUTH,         /* record tag wrong (altered), tenant unknown or not the
			    * connection's (wp_ctx_set_policy) */
	WP_BAD_HANDSHAKE,    /* v2 handshake failed: a proof did not verify (wrong key on
			    * either side) or a malformed handshake message */
	WP_BAD_NO_HANDSHAKE, /* a frame where the handshake (or a record) must come first */
	WP_BAD_REPLAY,       /* record or frame out of sequence: replayed or reordered */
	WP_BAD_SPLICED,      /* a frame from another connection (its connection id) */
	WP_BAD__COUNT
};

/*
 * Why a connection was refused during set-up (shm: docs/protocol.md), on the
 * side that refused it. Each refusal is logged with the peer's pid and uid.
 */
enum wp_setup_reason {
	WP_SETUP_GARBAGE = 0, /* not a setup message here: size, magic, type, reserved bytes */
	WP_SETUP_VERSION,     /* a setup version this library does not speak */
	WP_SETUP_NO_AUTH,     /* an unauthenticated (v1) hello where a key proof is required */
	WP_SETUP_NO_KEY,      /* this side has no key for the tenant (no policy, unknown tenant) */
	WP_SETUP_BAD_PROOF,   /* the peer's proof of the tenant key is wrong */
	WP_SETUP_PEER_UID,    /* the peer's uid (SO_PEERCRED) is not allowed */
	WP_SETUP_REGION,      /* descriptors or region refused (count, kind, geometry, seals) */
	WP_SETUP_REFUSED,     /* connector: the acceptor refused us (its verdict's errno) */
	WP_SETUP__COUNT
};

/*
 * A snapshot of the process meter. All fields are u64 so a snapshot travels
 * over the stats call as a flat little-endian array (WP_METER_FIELDS values).
 */
struct wp_meter_snap {
	uint64_t version;     /* WP_METER_VERSION */
	uint64_t wall_ns;     /* CLOCK_MONOTONIC at the snapshot */
	uint64_t cpu_user_ns; /* getrusage(RUSAGE_SELF) */
	uint64_t cpu_sys_ns;
	uint64_t ctx_vol; /* voluntary context switches */
	uint64_t ctx_invol;
	uint64_t kernel_syscalls;         /* raw_syscalls:sys_enter for the process, or 0 */
	uint64_t kernel_syscalls_ok;      /* 1 if the above was counted by the kernel */
	uint64_t syscalls[WP_SYS__COUNT]; /* issued by the library, by kind */
	uint64_t msgs_tx, msgs_rx;        /* frames */
	uint64_t bytes_tx, bytes_rx;      /* wire bytes, headers included */
	uint64_t bytes_copied;            /* bytes copied by user space on the data path */
	uint64_t zc_sent;                 /* zero-copy sends requested */
	uint64_t zc_copied;               /* ... that the kernel reported as copied */
	uint64_t zc_disabled;             /* connections that stopped asking: all copied */
	uint64_t bad_frames[WP_BAD__COUNT];
	uint64_t conns_opened, conns_closed, conns_failed;
	uint64_t rx_ring_empty; /* uring: provided buffer ring ran dry (ENOBUFS) */
	uint64_t calls_ok, calls_failed, calls_timeout, calls_cancelled;
	uint64_t setup_refused[WP_SETUP__COUNT]; /* connections refused at set-up, by reason */
	uint64_t records_tx, records_rx;         /* authentication v2 records sealed, verified */
	/* Limits (docs/limits.md). */
	uint64_t rx_budget_pauses;   /* connections whose reads stopped: receive budget spent */
	uint64_t rx_budget_resumes;  /* ... resumed when memory freed */
	uint64_t rx_partial_shed;    /* partial frames dropped (stalled while paused, or
				     * more bytes in flight than a paused connection keeps) */
	uint64_t timeouts_frame;     /* closed: a started frame did not complete in time */
	uint64_t timeouts_idle;      /* closed: no bytes either way for idle_timeout_ms */
	uint64_t timeouts_handshake; /* closed: setup not finished in time */
	uint64_t refused_ctx;        /* accepts refused: conns_max */
	uint64_t refused_source;     /* accepts refused: conns_per_source */
	uint64_t refused_tenant;     /* connections closed: conns_per_tenant */
	uint64_t accept_pauses;      /* accepting paused (EMFILE, ENFILE, ENOBUFS, ENOMEM) */
	uint64_t log_suppressed;     /* log lines dropped by rate limiting */
	uint64_t zc_nobufs; /* tcp: zero-copy sends refused with ENOBUFS (optmem), sent by copy */
	/* What the kernel gave the xsk path (counted at each context's set-up)
	 * and io_uring zero-copy receive. */
	uint64_t xsk_sockets_zc;   /* AF_XDP sockets bound with XDP_ZEROCOPY */
	uint64_t xsk_sockets_copy; /* ... bound in copy mode (XDP_ZEROCOPY refused) */
	uint64_t xdp_native;       /* the path's XDP program attached in native (driver) mode */
	uint64_t xdp_generic;      /* ... in generic (skb) mode */
	uint64_t zcrx_bytes;       /* uring: bytes received by RECV_ZC into the zcrx area */
};
/* 2: bad_frames gained bad_auth; 3: setup_refused, authentication v2; 4: limits;
 * 5: zc_nobufs; 6: xsk modes, zcrx_bytes */
#define WP_METER_VERSION 6
#define WP_METER_FIELDS (sizeof(struct wp_meter_snap) / sizeof(uint64_t))

/* Take a snapshot of this process's meter (all threads). */
WP_API void wp_meter_snapshot(struct wp_meter_snap *s);
/* d = b - a, field by field (version and wall_ns kept from b, wall_ns as delta). */
WP_API void wp_meter_diff(const struct wp_meter_snap *a, const struct wp_meter_snap *b,
			  struct wp_meter_snap *d);
/* Sum of syscalls[] (what the library issued). */
WP_API uint64_t wp_meter_syscalls(const struct wp_meter_snap *s);
/* Write s as one JSON object. Returns bytes written (or needed, like snprintf). */
WP_API int wp_meter_json(const struct wp_meter_snap *s, char *buf, size_t len);
/*
 * Start counting this process's syscalls with the kernel tracepoint
 * raw_syscalls:sys_enter (needs tracefs mounted and perf permission). Returns 0
 * or -errno (then kernel_syscalls_ok stays 0). Threads created afterwards are
 * counted too.
 */
WP_API int wp_meter_kernel_syscalls_start(void);
WP_API const char *wp_sys_kind_name(enum wp_sys_kind k);
WP_API const char *wp_bad_reason_name(enum wp_bad_reason r);
WP_API const char *wp_setup_reason_name(enum wp_setup_reason r);

/* ------------------------------------------------------------------ */
/* Latency histograms (log-linear, like HdrHistogram with 16 sub-buckets) */
/* ------------------------------------------------------------------ */

#define WP_HIST_SUB 16
#define WP_HIST_BUCKETS (64 * WP_HIST_SUB)

struct wp_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint64_t b[WP_HIST_BUCKETS];
};

WP_API void wp_hist_init(struct wp_hist *h);
WP_API void wp_hist_add(struct wp_hist *h, uint64_t v);
WP_API void wp_hist_merge(struct wp_hist *dst, const struct wp_hist *src);
/* Value at quantile q in [0,1]; relative error below 1/WP_HIST_SUB. 0 if empty. */
WP_API uint64_t wp_hist_quantile(const struct wp_hist *h, double q);

/* Monotonic time in ns. */
WP_API uint64_t wp_now_ns(void);

/* Library version string. */
WP_API const char *wp_version(void);

#ifdef __cplusplus
}
#endif
#endif
