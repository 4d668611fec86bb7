/* SPDX-License-Identifier: MIT */
/*
 * The backend interface: what a path implements, and what the core gives it.
 * docs/architecture.md ("How to add a path") is the recipe; tests/integ/
 * backend_mem.c is the smallest complete example (an in-process pair).
 *
 * The context owns the event loop: wp_ctx_progress runs deferred completions,
 * then the one flush loop (every endpoint on the dirty list gets its path's
 * transmit burst, fast.flush), then the path's poll (wait for and handle
 * completions and events), then the flush loop again so answers queued by
 * callbacks leave in the same round, then pollers and reaping. A path never
 * walks the dirty list itself; one that waits in a loop of its own (shm's
 * spin) calls wp_ctx_flush between its polls.
 *
 * Two kinds of path, told apart by capability bits, never by pointer:
 * - stream paths (WP_CAP_STREAM) move bytes: frames are queued in the shared
 *   transmit queue (ep->tx, by the core) and the path's flush takes iovecs
 *   from it (wp_txq_iov) and reports progress (wp_txq_advance); received
 *   chunks go to the shared parser (wp_conn_input);
 * - message paths move whole frames: their fast.send takes each frame, and
 *   whole received frames go to wp_conn_deliver.
 * Paths addressed by host:port carry WP_CAP_INET: only those may stand in
 * for each other under `prefer` and `any`.
 *
 * Threading: everything runs on the thread that drives the context, except
 * `available` and `probe`, which run from any thread (the probe table's
 * lock serialises probes).
 */
#ifndef WP_BACKEND_H
#define WP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wirepath/wirepath.h"
#include "frame.h"
#include "probe.h"

struct wp_ctx;
struct wp_ep;
struct wp_mr;
struct wp_admit;

/* Fast-path ops, copied into each endpoint at its creation. */
struct wp_fast_ops {
	/* Message paths: take one frame (state and size already checked by
	 * wp_conn_send; same contract). Stream paths leave it NULL: the core
	 * queues their frames in ep->tx. */
	int (*send)(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		    wp_done_fn done, void *arg);
	/* The transmit burst: hand what is queued for this open endpoint to
	 * the kernel (or the peer) now. Called by the context's flush loop. */
	void (*flush)(struct wp_ep *ep);
};

/* Control ops: one table per path. Unsupported ops point at the wp_no_*
 * defaults below, never NULL (except fast->send on stream paths). */
struct wp_backend_ops {
	const char *name; /* the URI scheme */
	uint32_t caps;    /* WP_CAP_*: what it offers; callers test these */
	const struct wp_fast_ops *fast;
	/* Can this path run here? Cheap; 0 or -errno with a reason in why. */
	int (*available)(char *why, size_t len);
	/* Report this path's probes with wp_probe_add: each one a real attempt
	 * on the running kernel, with what it returned. */
	void (*probe)(void);
	/* The address after "scheme://" (wp_addr_parse_inet for host:port). */
	int (*addr_parse)(const char *rest, struct sockaddr_storage *ss, socklen_t *salen);
	int (*init)(struct wp_ctx *ctx);
	void (*fini)(struct wp_ctx *ctx);
	int (*listen)(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
	int (*connect)(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
	/* Stop I/O and close the fd; may leave kernel ops in flight (ep->io_inflight). */
	void (*close)(struct wp_ep *ep);
	/* Completion polling: wait at most timeout_us (-1 forever, 0 not at
	 * all) for events, handle them (received bytes or frames, finished
	 * sends, accepts, connects). Returns events handled or -errno. */
	int (*poll)(struct wp_ctx *ctx, int64_t timeout_us);
	/* What was really obtained (options, modes, downgrades). */
	void (*explain)(struct wp_ctx *ctx, char *buf, size_t len);
	/* Registered memory: 0 or -errno; sets mr->idx when the kernel holds it. */
	int (*mem_register)(struct wp_ctx *ctx, struct wp_mr *mr);
	void (*mem_unregister)(struct wp_ctx *ctx, struct wp_mr *mr);
	/* The last reference is about to go (wp_mr_deregister): 0, or -EBUSY
	 * while the path still uses the region (transfers in flight, peers
	 * that may still reach it); the path starts what ends that use and
	 * the caller calls again. Optional: NULL means never busy. */
	int (*mem_busy)(struct wp_ctx *ctx, struct wp_mr *mr);
	/* The context's policy changed (wp_ctx_set_policy, already installed
	 * for user space): a path that also enforces it below user space
	 * (xsk: its XDP program) takes the new rules now. 0 or -errno.
	 * Optional: NULL means nothing to update. */
	int (*policy_changed)(struct wp_ctx *ctx);
	/* Each endpoint's private state: ep->bk is ep_size zeroed bytes the
	 * core allocates with the endpoint and frees after ep_free; ep_init
	 * sets what zero does not (fds to -1). */
	size_t ep_size;
	void (*ep_init)(struct wp_ep *ep);
	/* The endpoint is being freed: release what ep->bk holds. */
	void (*ep_free)(struct wp_ep *ep);
	/* Send buffers for wp_ep_buf_alloc: memory a send from is cheapest
	 * (shm: the shared heap the peer reads in place). */
	void *(*buf_alloc)(struct wp_ep *ep, size_t len);
	void (*buf_free)(struct wp_ep *ep, void *buf);
	/* A URI the peer can connect to, for a listening endpoint. */
	int (*local_uri)(const struct wp_ep *ep, char *buf, size_t len);
	/* A region was exported: offer it to peers that can map it. */
	void (*mr_exported)(struct wp_ctx *ctx, struct wp_mr *mr);
	/* Move a transfer without frames: 0 moved now (mapped memory), 1 posted
	 * (the path calls wp_xfer_direct_done(st, status) exactly once later,
	 * also when the endpoint closes; st lives until then), -EOPNOTSUPP
	 * (frames), or -errno. */
	int (*xfer_direct)(struct wp_ep *ep, const struct wp_xfer_params *p,
			   struct wp_xfer_stats *st);
	/* Receive memory (wp_ctx_pools with ep == NULL, wp_ep_pools): fill up
	 * to max ranges, return how many there are. */
	int (*pools)(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		     uint32_t max);
	/* Stop (pause true) or resume taking input from ep: reads on a
	 * connection (the receive budget is spent: the kernel's socket buffer
	 * holds what the peer sends meanwhile), accepts on a listener (EMFILE
	 * backoff). Bytes already on their way may still arrive after a pause
	 * (the core keeps them). Events that end the connection (error, hang-up)
	 * must still be reported. wp_no_rx_pause: the path cannot (shm frames
	 * need no assembly memory; its listener then keeps accepting). */
	void (*rx_pause)(struct wp_ep *ep, bool pause);
	/*
	 * Embedding in another event loop (wp_ctx_fd, wp_ctx_arm; docs/
	 * architecture.md, "Embedding"). fd: the one descriptor that becomes
	 * readable (level-triggered) when the path may have work; made at the
	 * first call if need be, owned by the context, or -errno. arm: the
	 * core has run the flush loop; make every event that creates work
	 * from now on make fd readable (submit what the flush queued, set
	 * "sleeping" flags), then look once more: -EAGAIN if work is already
	 * there (the caller runs wp_ctx_progress(ctx, 0) and arms again), else
	 * 0. May lower *timeout_us (-1: no limit) for the path's own timers.
	 * The next poll after an arm that returned 0 undoes what arm set.
	 * wp_no_fd / wp_no_arm: the path cannot be embedded (-EOPNOTSUPP).
	 */
	int (*fd)(struct wp_ctx *ctx);
	int (*arm)(struct wp_ctx *ctx, int64_t *timeout_us);
};

/* ---- registration (ctx.c, src/registry.c) ---------------------------- */

/* Paths built into the library, best first (what `any` picks), NULL-ended. */
extern const struct wp_backend_ops *const wp_registry_paths[];

/* Paths this version knows but the build left out (meson said why). */
struct wp_absent_path {
	const char *name, *why;
};
extern const struct wp_absent_path wp_registry_absent[];

/* Add a path at run time (a test backend; before the first context).
 * 0, -EEXIST (a path of that name), -ENOSPC. */
int wp_backend_register(const struct wp_backend_ops *ops);
/* Every path, built in then registered. Returns the count. */
int wp_paths(const struct wp_backend_ops *const **out);

/* ---- what the core gives every path (conn.c, loop.c, ctx.c) ----------- */

/* The endpoint has output: the next flush loop runs its fast.flush. */
void wp_ctx_mark_dirty(struct wp_ep *ep);
/* The flush loop: every dirty open endpoint's transmit burst, now. */
void wp_ctx_flush(struct wp_ctx *ctx);

/* A new endpoint with its zeroed ep->bk and ep_init run (an accepted
 * connection: copy the listener's cbs), or NULL when out of memory. */
struct wp_ep *wp_ep_alloc(struct wp_ctx *ctx, const struct wp_ep_cbs *cbs);
/* An accepted endpoint that could not be set up: closed, counted as a failed
 * connection, freed at the next reap. */
void wp_ep_accept_failed(struct wp_ep *ep, int err);
/*
 * Accepting, with the context's limits (docs/limits.md). Before allocating an
 * endpoint for an accepted descriptor, wp_conn_admit checks conns_max and
 * conns_per_source (peer: the accepted address, NULL where there is none,
 * as on shm): 0, or -EUSERS (counted, logged at a limited rate): close the
 * descriptor, no endpoint. After wp_ep_alloc (and ep->accepted = true),
 * wp_conn_admitted counts the endpoint until it closes.
 */
int wp_conn_admit(struct wp_ctx *ctx, const struct sockaddr *peer, socklen_t len,
		  struct wp_admit *a);
void wp_conn_admitted(struct wp_ep *ep, const struct wp_admit *a);
/*
 * accept failed on listener l with err. EMFILE, ENFILE, ENOBUFS and ENOMEM
 * (out of descriptors or memory: retrying at once spins) pause accepting
 * (rx_pause) for a backoff of 10 ms doubling to 1 s, resumed early when one
 * of our endpoints closes; counted, logged at a limited rate. Other errors
 * are logged at a limited rate. Returns true if accepting was paused.
 */
bool wp_accept_error(struct wp_ep *l, int err);
/* An accept succeeded: the next error starts its backoff at 10 ms again. */
void wp_accept_ok(struct wp_ep *l);
/*
 * The accept loop's step for paths that accept4 on a non-blocking listening
 * socket lfd (tcp; shm's unix socket, inet false: conns_max only): the next
 * connection, admitted against the limits, as a new endpoint (accepted,
 * counted) whose descriptor is *fd for the caller to own. NULL when there is
 * nothing more to accept now: EAGAIN, or an error (an EMFILE pauses the
 * listener: wp_accept_error). Refused connections and endpoints that could
 * not be allocated are closed here, counted and logged at a limited rate.
 */
struct wp_ep *wp_accept_next(struct wp_ep *l, int lfd, bool inet, int *fd);
/* The connection is up (connect completed or accepted). */
void wp_conn_established(struct wp_ep *ep);
/* Orderly EOF (err 0) or an error from the transport: close, fail what is
 * pending, tell the owner. */
void wp_conn_fail(struct wp_ep *ep, int err);
/* Stream paths: the peer's orderly EOF. A frame cut short by it is counted
 * (WP_BAD_TRUNCATED) and closes with -EPIPE; else a clean close. */
void wp_conn_eof(struct wp_ep *ep);
/* Stream paths: received bytes, any chunking. Returns 0, or -EPROTO / -ENOMEM
 * after closing the endpoint (a CLOSE frame attempted and counted). */
int wp_conn_input(struct wp_ep *ep, const uint8_t *p, size_t len);
/* Message paths: one whole frame whose header was validated. Returns non-zero
 * when the endpoint closed and no more frames should be fed. */
int wp_conn_deliver(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload);

/* A payload sent without a completion outlives the call: keep a counted copy
 * whose completion, wp_copy_done, frees it. 0 or -ENOMEM. */
int wp_payload_copy(const void **data, size_t len, wp_done_fn *done, void **arg);
void wp_copy_done(void *arg, int status);

/* Stream paths: the shared transmit queue (struct wp_txq in core.h). */
int wp_txq_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		wp_done_fn done, void *arg);
struct wp_txq;
struct iovec;
/* Gather iovecs from segment *idx (first one from byte off), merging
 * contiguous staging. With split_zc, stops before a zero-copy-eligible
 * segment, or returns that segment alone (*is_zc = true) if it comes first.
 * Advances *idx past what was gathered. Returns the iovec count. */
int wp_txq_iov(const struct wp_txq *q, uint64_t *idx, uint32_t off, struct iovec *iov, int max,
	       size_t *bytes, bool split_zc, bool *is_zc);
/* n more bytes were accepted by the kernel; mark_done: segments fully sent
 * are complete now (copying send); else they wait for wp_txq_release_range. */
void wp_txq_advance(struct wp_ep *ep, size_t n, bool mark_done);
/* Zero-copy notification: segments [from, upto) are complete. */
void wp_txq_release_range(struct wp_ep *ep, uint64_t from, uint64_t upto);

/* TCP sockets shared by the host:port paths. */
int wp_addr_parse_inet(const char *rest, struct sockaddr_storage *ss, socklen_t *salen);
/* A TCP socket with TCP_NODELAY (counted syscalls). Returns fd or -errno. */
int wp_sock_stream(int family, bool nonblock);
/* Socket, bind, listen, local port into ep; ep->fd and state set on success. */
int wp_sock_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen, bool nonblock);

/* Paths that wait in epoll (src/core/epoll.c): ctx->bk is a zeroed struct of
 * size bytes whose first member is the epoll fd (int epfd). */
struct epoll_event;
int wp_epoll_bk_init(struct wp_ctx *ctx, size_t size);
void wp_epoll_bk_fini(struct wp_ctx *ctx);
int wp_epoll_ctl(struct wp_ctx *ctx, int op, int fd, uint32_t events, uint64_t data);
/* Wait at most timeout_us (-1 forever). Returns events, 0 on EINTR, or -errno. */
int wp_epoll_wait(struct wp_ctx *ctx, struct epoll_event *ev, int max, int64_t timeout_us);
/* Embedding: the epoll fd itself (level-triggered: readable while any fd the
 * path watches is ready), and an arm with nothing to do beyond the core's
 * flush (tcp, mem). */
int wp_epoll_fd(struct wp_ctx *ctx);
int wp_epoll_arm(struct wp_ctx *ctx, int64_t *timeout_us);

/* A transfer xfer_direct posted (returned 1) is over: its on_done runs from
 * the deferred completions with status (0, -errno, or a positive refusal). */
void wp_xfer_direct_done(struct wp_xfer_stats *st, int status);

/* Registered memory lookup (uring: a payload inside a fixed buffer). */
struct wp_mr *wp_mr_find(struct wp_ctx *ctx, const void *p, size_t len);

/* Defaults for ops a path has no special version of. */
void wp_no_ep_init(struct wp_ep *ep);                  /* zero will do */
void wp_no_ep_free(struct wp_ep *ep);                  /* holds nothing */
void *wp_buf_alloc_heap(struct wp_ep *ep, size_t len); /* plain memory */
void wp_buf_free_heap(struct wp_ep *ep, void *buf);
int wp_local_uri_inet(const struct wp_ep *ep, char *buf, size_t len);
int wp_no_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p, struct wp_xfer_stats *st);
void wp_no_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr);
int wp_no_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		uint32_t max);
int wp_no_mem_register(struct wp_ctx *ctx, struct wp_mr *mr); /* bookkeeping only */
void wp_no_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr);
void wp_no_rx_pause(struct wp_ep *ep, bool pause);      /* cannot: keeps reading */
int wp_no_fd(struct wp_ctx *ctx);                       /* cannot be embedded: */
int wp_no_arm(struct wp_ctx *ctx, int64_t *timeout_us); /* -EOPNOTSUPP */

#endif
