/* SPDX-License-Identifier: MIT */
/*
 * The ucx path: wirepath over UCX's UCP layer (Debian 12: UCX 1.13.1), for
 * traffic between hosts on whatever fabric UCX finds (tcp, shared memory,
 * verbs). A message path (docs/architecture.md, "ucx"):
 *
 * - One ucp context and worker per wirepath context, thread mode single.
 *   The worker's event fd (ucp_worker_get_efd) sits in the context's epoll
 *   set; poll progresses the worker, and before sleeping arms it
 *   (ucp_worker_arm: UCS_ERR_BUSY means events arrived meanwhile, so
 *   progress again instead of sleeping). busy_poll spins on progress.
 * - Connections by sockaddr: ucp_listener_create, connection requests queued
 *   by the listener's callback and accepted after progress returns;
 *   connectors ucp_ep_create with the sockaddr. Every endpoint uses
 *   UCP_ERR_HANDLING_MODE_PEER, so a dead peer fails its requests and calls
 *   the error callback. The acceptor sends HELLO once its endpoint exists:
 *   the connector's WP_EP_CONNECTED waits for it (UCX has no connect
 *   completion of its own in the client-server flow).
 * - Frames are active messages: the 40-byte wire header is the AM header,
 *   the payload the AM data (ucp_am_send_nbx; UCX switches to rendezvous
 *   above its threshold). Received data UCX can keep (UCP_AM_RECV_ATTR_FLAG_DATA)
 *   is held in place (UCS_INPROGRESS) and given back with
 *   ucp_am_data_release once the frame's callback returned (the ownership
 *   contract: lent to the callback, wp_msg_keep copies); rendezvous data is
 *   received (ucp_am_recv_data_nbx) into a buffer of the frame's validated
 *   length. Frames are delivered per connection in arrival order, a
 *   rendezvous frame holding back those behind it until its data is in.
 * - Bulk transfers are RMA (xfer_direct): regions are mapped once with
 *   ucp_mem_map when registered (the registration cache in mem.c), an
 *   exported region's rkey is packed (ucp_rkey_pack) and sent to every
 *   connection (RKEY messages, not frames), and the peer names it with the
 *   wp_rkey's id and key; a transfer is ucp_put_nbx / ucp_get_nbx per
 *   descriptor and one ucp_ep_flush_nbx, whose completion is the transfer's.
 * - explain names the lanes UCX selected, from UCX's own endpoint dump
 *   (ucp_ep_print_info: 1.13's ucp_ep_query reports no transports), and
 *   wp_ctx_opts.ucx_need checks them: under select=require a connection UCX
 *   put on another transport fails with -EPROTONOSUPPORT and an ERR line.
 *
 * Every UCX callback runs inside ucp_worker_progress, which must not be
 * re-entered: callbacks only record (queue a frame, a connection request, an
 * error) and the poll acts on what they recorded once progress returned.
 */
#ifndef WP_UCX_H
#define WP_UCX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include <ucp/api/ucp.h>

#include "core/core.h"

enum {
	UCX_AM_FRAME = 0,        /* header: the wire header; data: the payload */
	UCX_AM_HELLO = 1,        /* acceptor -> connector: accepted */
	UCX_AM_RKEY = 2,         /* a region was exported: struct ucx_rkey_msg + packed rkey */
	UCX_AM_UNEXPORT = 3,     /* a region is gone: struct ucx_rkey_msg */
	UCX_AM_BYE = 4,          /* orderly close: EOF after the frames before it */
	UCX_AM_UNEXPORT_ACK = 5, /* struct ucx_rkey_msg: that rkey is destroyed, no RMA with it
				  * is pending */
	UCX_AM__COUNT
};

#define UCX_EVENTS 16
#define UCX_RKEY_MAX 4096u   /* packed rkey bytes accepted from a peer */
#define UCX_PEER_RKEYS 4096u /* regions a peer may announce per connection */
#define UCX_CONNREQ_MAX 128u /* connection requests waiting per listener */
#define UCX_CLOSE_WAIT_NS 1000000000ull
/* How long deregistering an announced region waits for the peers' UNEXPORT
 * acknowledgements before it closes the connections that did not answer. */
#define UCX_UNEXPORT_WAIT_NS 1000000000ull
/* Rendezvous receives posted at once per context: more wait in UCX (the
 * sender's data stays with the sender) until one completes. Each is also
 * charged to the receive budget (wp_ctx_opts.rx_budget) while it lives. */
#define UCX_RNDV_MAX 16u
/*
 * The longest sleep while UCX holds requests of any kind. UCX 1.13's shared-memory
 * transports (sysv, posix) queue a send the peer's FIFO has no room for and
 * retry it only from our progress; the peer freeing room signals nothing
 * our worker's event fd sees, so a sender asleep in epoll would never send
 * it (test_embed's 1000-chunk stream hung so). While UCX holds a request
 * (a send, a flush, a rendezvous receive, a close: uc->held) the sleep is
 * capped to this; idle contexts still sleep without limit.
 */
#define UCX_HELD_WAIT_US 1000

/* A request UCX still holds (a send, a flush, a rendezvous receive, a
 * close), on the context's list until its callback runs: at destroy, those
 * that never complete (an unresponsive peer) are given back to UCX and
 * their owners told -ECONNABORTED, since UCX asserts on a worker destroyed
 * with requests the user did not release. */
struct ucx_req {
	struct ucx_req *prev, *next;
	struct ucx_ctx *uc;
	void *handle;
	void (*abort)(struct ucx_req *rq);
};

#define ucx_container(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* An exported region, as announced (little-endian on the wire). */
struct ucx_rkey_msg {
	uint32_t id, key;
	uint64_t addr, len;
};

/* A peer's region we may address. refs: one while on ue->rkeys, one per
 * transfer posted with it (until its flush completed): ucp_rkey_destroy runs
 * at the last, never under a pending put or get. ack: the peer withdrew it
 * (UNEXPORT) and is told UNEXPORT_ACK once it is destroyed. */
struct ucx_rrkey {
	struct ucx_rrkey *next;
	struct wp_ep *ep;
	uint32_t id, key;
	uint64_t addr, len;
	ucp_rkey_h rkey;
	uint32_t refs;
	bool ack;
};

enum ucx_rx_kind { RX_HELD, RX_COPY, RX_RNDV, RX_HELLO, RX_BYE, RX_BAD, RX_CTL };

/* One received message, in arrival order on its connection. */
struct ucx_rx {
	struct ucx_rx *next;
	struct wp_ep *ep;
	uint8_t kind;
	bool ready;   /* data in place (a rendezvous: received) */
	bool started; /* rendezvous receive posted */
	bool orphan;  /* its endpoint let go while UCX still writes into buf */
	bool waited;  /* rendezvous held back (counted once) */
	int status;   /* 0, or a failed rendezvous receive */
	int reason;   /* RX_BAD: enum wp_bad_reason; RX_CTL: the AM id */
	struct ucx_req rq;
	struct wp_frame_hdr h;
	void *data; /* held UCX data, the rendezvous descriptor, or our buffer */
	size_t len;
	void *buf;      /* ours to free (RX_COPY, RX_RNDV) */
	uint32_t claim; /* bytes charged to the receive budget (buf) */
};

struct ucx_connreq {
	struct ucx_connreq *next;
	ucp_conn_request_h req;
};

struct ucx_ep {
	ucp_ep_h uep;
	ucp_listener_h lst;
	struct ucx_connreq *creq, **creq_tail; /* listener: waiting requests */
	uint32_t ncreq;
	struct ucx_rx *rxq, **rxq_tail;
	struct wp_ep *next_rx; /* on the context's list of connections with rx */
	bool on_rx;
	struct wp_ep *next_lst; /* listener: on the list of those with requests */
	bool on_lst;
	struct wp_ep *next_failed; /* on the list of failures to act on */
	bool on_failed;
	ucs_status_t err; /* set by the error callback */
	bool err_seen;    /* acted upon */
	bool closed;      /* ucp_ep_close_nbx issued */
	struct ucx_req close_rq;
	struct wp_ep *ep;
	struct ucx_rrkey *rkeys;
	uint32_t nrkeys;
	uint32_t acks_owed; /* UNEXPORTs sent, not yet acknowledged */
	bool rma_ok;        /* direct RMA on this connection (ucx_rma_ok) */
	char lanes[480];    /* what UCX selected, from ucp_ep_print_info */
	char tls[96];       /* the transports of the data lanes, comma-separated */
	char rma_tls[96];   /* the transports of the rma lanes, comma-separated */
};

/* A region we mapped (ucp_mem_map). mr->idx stays -1: wp_mr_is_pinned
 * means pinned by the kernel for io_uring, and on tcp UCX pins nothing. */
struct ucx_memh {
	const struct wp_mr *mr;
	ucp_mem_h memh; /* NULL: free slot */
	void *rkey_buf; /* packed at export */
	size_t rkey_len;
};

struct ucx_sreq {
	struct ucx_sreq *next;
	struct ucx_req rq;
	struct wp_ep *ep;
	wp_done_fn done;
	void *arg;
	void *blob; /* control messages: freed at completion */
	uint8_t hdr[WP_FRAME_HDR];
};

struct ucx_xfer {
	struct ucx_req rq;
	struct wp_ep *ep;
	struct wp_xfer_stats *st; /* the core's, until wp_xfer_direct_done */
	struct ucx_rrkey *rk;     /* a reference, dropped at the flush's completion */
	int status;
};

struct ucx_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[UCX_EVENTS];
	ucp_context_h uctx;
	ucp_worker_h w;
	int efd;
	struct wp_ep *rx_list;  /* connections with received messages queued */
	struct wp_ep *lst_list; /* listeners with connection requests */
	struct wp_ep *failed;   /* connections whose failure is to be acted on */
	struct ucx_rrkey *acks; /* UNEXPORT_ACKs to send (ucx_rrkey_put) */
	struct ucx_memh *mh;
	uint32_t nmh;
	struct ucx_sreq *sfree;
	struct ucx_req inflight; /* requests UCX holds: list head */
	struct wp_ep *last_ep;   /* lookup cache: reply ep -> endpoint */
	ucp_ep_h last_uep;
	uint32_t held;        /* requests UCX holds (see UCX_HELD_WAIT_US) */
	uint32_t rndv_posted; /* rendezvous receives posted (UCX_RNDV_MAX) */
	bool trust_rma;       /* wp_ctx_opts.ucx_trust_rma */
	bool rma;             /* UCP_FEATURE_RMA is on (trust_rma, or verbs found) */
	uint64_t am_rx, am_held, am_copied, am_rndv, rma_ops, rma_bytes;
	uint64_t nomem;      /* connections closed for a failed allocation */
	uint64_t rndv_waits; /* rendezvous receives held back (budget or UCX_RNDV_MAX) */
	char need[64];       /* wp_ctx_opts.ucx_need */
};

static inline struct ucx_ep *uep_of(const struct wp_ep *ep)
{
	return ep->bk;
}

static inline struct ucx_ctx *uctx_of(const struct wp_ctx *ctx)
{
	return ctx->bk;
}

/* worker.c */
void ucx_fail(struct wp_ep *ep, ucs_status_t st);
int ucx_errno(ucs_status_t st);
void ucx_req_done(struct ucx_req *rq);
void ucx_req_hold(struct wp_ctx *ctx, struct ucx_req *rq, void *handle,
		  void (*abort)(struct ucx_req *));

/* probe.c */
bool ucx_tok_in(const char *list, const char *seps, const char *tok);
bool ucx_rma_ok(const struct wp_ctx *ctx, const struct ucx_ep *ue, char *why, size_t len);
int ucx_available(char *why, size_t len);
void ucx_explain(struct wp_ctx *ctx, char *buf, size_t len);
void ucx_lanes(struct wp_ep *ep);
bool ucx_need_met(const struct wp_ctx *ctx, const struct ucx_ep *ue, char *bad, size_t len);
int ucx_open(ucp_context_h *uctx, uint64_t features, char *why, size_t len);
bool ucx_has_verbs(ucp_context_h uctx);
void ucx_probe(void);

/* conn.c */
int ucx_accept(struct wp_ep *l);
void ucx_close(struct wp_ep *ep);
int ucx_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
void ucx_ep_free(struct wp_ep *ep);
void ucx_ep_init(struct wp_ep *ep);
void ucx_ep_release(struct wp_ep *ep);
struct wp_ep *ucx_find(struct wp_ctx *ctx, ucp_ep_h uep);
int ucx_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
void ucx_rx_pause(struct wp_ep *ep, bool pause);
int ucx_up(struct wp_ep *ep);
void ucx_announce(struct wp_ep *ep);

/* am.c */
bool ucx_rndv_room(struct wp_ctx *ctx, size_t len);
extern const struct wp_fast_ops ucx_fast;
extern const ucp_am_recv_callback_t ucx_am_cbs[UCX_AM__COUNT];
int ucx_ctl_send(struct wp_ep *ep, unsigned id, const void *a, size_t alen, const void *b,
		 size_t blen);
int ucx_rx_deliver(struct wp_ep *ep);
void ucx_rx_release(struct ucx_ctx *uc, struct ucx_rx *r);

/* rma.c */
void ucx_rrkey_put(struct ucx_rrkey *r);
bool ucx_ep_live(const struct wp_ep *ep);
int ucx_mem_register(struct wp_ctx *ctx, struct wp_mr *mr);
void ucx_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr);
void ucx_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr);
void ucx_rkey_rx(struct wp_ep *ep, unsigned id, const uint8_t *p, size_t len);
void ucx_rrkey_drop(struct ucx_ep *ue, uint32_t id, bool ack);
int ucx_acks_flush(struct wp_ctx *ctx);
void ucx_send_rkey(struct wp_ep *ep, struct wp_mr *mr);
int ucx_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p, struct wp_xfer_stats *st);

#endif
