/* SPDX-License-Identifier: MIT */
/*
 * The rdma path's private state and the calls its files make of each other:
 * device.c (probes, the context's devices, protection domains and completion
 * channels, the registration cache and region advertisements, explain, the
 * ops table), cm.c (rdma_cm: listen, connect, accept, the QP and its buffers,
 * cm events, close), qp.c (frames over SEND/RECV with credits, completions,
 * the progress round) and xfer.c (bulk transfers by RDMA WRITE and READ into
 * the peers' advertised regions).
 *
 * The rdma path: reliable-connected (RC) queue pairs set up by rdma_cm, on
 * rdma-core's libibverbs and librdmacm (docs/architecture.md, "rdma").
 *
 * A stream path: frames are queued in the shared transmit queue and the
 * flush copies them, in order, into send buffers of a registered pool and
 * posts each as one SEND_WITH_IMM; each RECV completion hands its bytes to
 * the shared parser (frames inside one buffer are delivered in place). RC
 * is reliable and ordered, so the byte stream needs nothing more.
 *
 * Flow control is by credits, so a SEND never finds the receiver without a
 * posted buffer (no RNR: the QPs are connected with rnr_retry 0, so a slip
 * would break the connection loudly instead of stalling it). A side may
 * send only while it holds a credit: one for each receive buffer the peer
 * has posted. The peer hands credits back in the low 16 bits of every
 * immediate it sends, once it has re-posted the buffers; when it has no
 * data to carry them it sends a credit-only message once a quarter of its
 * buffers are owed. Data never takes the last credit, which is kept for a
 * credit-only message, so two sides that both run low can always tell each
 * other (docs/architecture.md says why this cannot deadlock).
 *
 * Bulk transfers (wp_xfer_post) go straight into the peer's exported region
 * by RDMA WRITE, the last one WRITE_WITH_IMM (the peer learns the transfer
 * landed and it takes a credit like any message), or come from it by RDMA
 * READ. Exporting a region registers it for remote access and advertises
 * (id, key, address, rkey, length) to every connection in-band, ahead of
 * any frame queued later, so a wp_rkey sent after the export always finds
 * its advertisement first. A transfer whose region was not advertised on
 * this connection goes by XFER frames instead.
 *
 * Completions: one completion channel per device, in the context's epoll
 * with the rdma_cm event channel. A poll that finds no work arms every CQ
 * (ibv_req_notify_cq), polls once more (a completion that raced the arm
 * raises no event), and only then sleeps; each CQ event is acknowledged at
 * once (ibv_ack_cq_events). busy_poll never arms: the core spins on poll(0).
 *
 * Errors: a failed work completion or a DISCONNECTED / DEVICE_REMOVAL event
 * fails the connection; its pending calls and transfers fail with it
 * (-ECONNRESET), nothing waits on a dead peer.
 */
#ifndef WP_RDMA_H
#define WP_RDMA_H

#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "core/core.h"

/*
 * Pinned per connection: (RD_RQ + RD_SB) x RD_BUF = 256 KiB, so the default
 * RLIMIT_MEMLOCK (8 MiB) holds about 30 connections (32 KiB x 32 + 32 took
 * 2 MiB: 4). A frame larger than a buffer is split across several SENDs
 * (a stream path: the parser reassembles). Fewer buffers rather than smaller
 * ones: the cost is per message (in the VM, test_rpc took 2.5x as long with
 * 16 x 8 KiB as with 32 x 32 KiB, 1.2x with 8 x 16 KiB); 8 credits of
 * 16 KiB keep 128 KiB in flight, and bulk data goes by RDMA WRITE/READ.
 */
#define RD_BUF (16u << 10) /* receive and send buffer size */
#define RD_RQ 8u           /* receive buffers per connection = the peer's credits */
#define RD_SB 8u           /* send buffers per connection */
#define RD_SQ 256u         /* send queue depth: sends, credits, writes, reads */
#define RD_MAXDEV 4
/* epoll data: 0 the cm channel, 1 + i device i's CQ channel, RD_EV_ASYNC + i
 * its async events. */
#define RD_EV_ASYNC 64
#define RD_EVENTS 16
#define RD_WC 32
#define RD_CREDIT_AT (RD_RQ / 4) /* owed credits worth a message of their own */
#define RD_TIMEOUT_MS 2000       /* address and route resolution */
#define RD_MAGIC 0x57505244u     /* "WPRD" */
#define RD_VERSION 2             /* 2: advertisements are withdrawn (RD_IMM_UNADV) */

/* The immediate: kind in the top byte, credits handed back in the low 16. */
enum {
	RD_IMM_DATA = 1,
	RD_IMM_CREDIT = 2,
	RD_IMM_MR = 3,        /* a region advertisement (struct rd_adv) */
	RD_IMM_WRITE = 4,     /* a transfer's last RDMA WRITE landed */
	RD_IMM_UNADV = 5,     /* an advertisement withdrawn (struct rd_unadv) */
	RD_IMM_UNADV_ACK = 6, /* ... and the peer no longer reaches it (struct rd_unadv) */
};
#define RD_IMM(kind, cr) (htonl(((uint32_t)(kind) << 24) | ((cr)&0xffffu)))

/* wr_id: kind in the top byte, an index below. */
enum { RD_WR_RECV = 1, RD_WR_SEND, RD_WR_XFER };
#define RD_WR(kind, i) (((uint64_t)(kind) << 56) | (i))

/* What each side says in rdma_connect's and rdma_accept's private data. */
struct rd_hello {
	uint32_t magic, version;
	uint32_t rq, buf; /* posted receive buffers (initial credits), their size */
};

/* A region advertisement (RD_IMM_MR), little-endian. */
struct rd_adv {
	uint32_t id, key;
	uint64_t addr, len;
	uint32_t rkey, pad;
};

/* A withdrawal (RD_IMM_UNADV) and its acknowledgement, little-endian. */
struct rd_unadv {
	uint32_t id, key;
};

/* A control message queued for the flush, ahead of frames: RD_IMM_MR,
 * RD_IMM_UNADV, RD_IMM_UNADV_ACK (id and key of the region). */
struct rd_ctl {
	uint32_t kind, id, key;
};

/* Per connection and region slot (rd_ep.mst): what the peer was told. */
enum { RD_MS_NONE = 0, RD_MS_ADV, RD_MS_WD /* withdrawal sent, acknowledgement awaited */ };

struct rd_dev {
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
};

/* A region's registrations, per device: local (lkey) and, once exported,
 * remote-accessible (the rkey peers use). */
struct rd_mr {
	struct ibv_mr *l[RD_MAXDEV], *r[RD_MAXDEV];
	uint32_t busy; /* RDMA transfers in flight from or into it (wp_mr_deregister: EBUSY) */
	bool used;
};

struct rd_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[RD_EVENTS];
	struct rdma_event_channel *cm;
	struct ibv_context **list; /* rdma_get_devices */
	struct rd_dev dev[RD_MAXDEV];
	int ndev;
	struct rd_mr *mrs; /* wp_mr.idx indexes it */
	uint32_t nmrs;
	struct wp_poller deadlines; /* queued transfers' deadlines (xfer.c) */
	/* What happened (explain). */
	uint64_t sends, credit_msgs, writes, reads, writes_in, advs, recvs, wc_err, stalls;
	uint64_t timeouts, async_err, withdrawn;
	char devname[64];
};

/* A transfer moving by RDMA (posted from xfer_direct, pumped by flush). */
struct rd_xfer {
	struct rd_xfer *next;  /* the posting queue */
	struct rd_xfer *lnext; /* every live transfer of the endpoint */
	struct wp_xfer_params p;
	struct wp_xfer_desc *desc; /* copy */
	struct wp_xfer_stats *st;
	uint64_t raddr;
	uint32_t rkey, lkey;
	uint32_t posted, left; /* descriptors posted, completions awaited */
	int status;
	int lidx;             /* the local region's slot in rd_ctx.mrs: its busy count */
	struct rd_remote *rm; /* the peer's region: its inflight count */
	uint64_t deadline_ns; /* while queued (not all posted); 0: none */
	bool stopped;         /* no more posts: ends when the posted ones complete */
};

struct rd_remote {
	struct rd_remote *next;
	uint32_t id, key, rkey;
	uint64_t addr, len;
	uint32_t inflight; /* our work requests on it not yet completed */
	uint8_t gone;      /* RD_RM_*: no new transfers; freed when inflight is 0 */
};
enum { RD_RM_LIVE = 0, RD_RM_REPLACED, RD_RM_WITHDRAWN /* acknowledged when freed */ };

struct rd_ep {
	struct rdma_cm_id *id;
	struct rd_dev *dev;
	int di; /* device index */
	struct ibv_cq *cq;
	bool qp, armed, resolved;
	uint8_t *rbuf, *sbuf;
	struct ibv_mr *rmr, *smr;
	uint32_t sfree[RD_SB], nsfree;
	uint32_t credits, owed, sq_used, peer_buf;
	uint32_t parked[RD_RQ], nparked; /* received while paused: not re-posted */
	struct rd_ctl *ctl;              /* control messages to send, in order */
	uint32_t nctl, ctl_cap;
	uint8_t *mst; /* by region slot: RD_MS_* (what the peer was told) */
	uint32_t nmst;
	struct rd_xfer *xq, **xq_tail; /* transfers being posted, in order */
	struct rd_xfer *xs[RD_SQ];     /* by slot: posted, completions awaited */
	struct rd_xfer *live;          /* posted or queued, not finished */
	struct rd_remote *remote;
	struct ibv_wc stash[RD_WC]; /* taken by arm's look, handled by the next poll */
	uint32_t nstash;
};

static inline struct rd_ctx *rctx(const struct wp_ctx *ctx)
{
	return ctx->bk;
}

/* device.c */
struct rd_mr *rd_mr_of(struct wp_ctx *ctx, const struct wp_mr *mr);
/* Queue an advertisement of region id on ep (none under a policy). */
void rd_adv_queue(struct wp_ep *ep, uint32_t id);
/* Queue a control message (struct rd_ctl) for the next flush: 0 or -ENOMEM. */
int rd_ctl_queue(struct wp_ep *ep, uint32_t kind, uint32_t id, uint32_t key);
/* ep's state byte for region slot, grown on demand; NULL when out of memory. */
uint8_t *rd_mst(struct rd_ep *re, uint32_t slot);
/* The peer acknowledged a withdrawal (RD_IMM_UNADV_ACK). */
void rd_take_unadv_ack(struct wp_ep *ep, const uint8_t *p, uint32_t len);

/* cm.c */
void rd_ep_init(struct wp_ep *ep);
void rd_ep_free(struct wp_ep *ep);
/* What an endpoint holds of the device (before the protection domains go). */
void rd_ep_release(struct wp_ep *ep);
int rd_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
int rd_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
void rd_close(struct wp_ep *ep);
int rd_local_uri(const struct wp_ep *ep, char *buf, size_t len);
/* Every pending rdma_cm event; returns how many. */
int rd_cm_events(struct wp_ctx *ctx);

/* qp.c */
extern const struct wp_fast_ops rd_fast;
int rd_post_recv(struct wp_ep *ep, uint32_t i);
void rd_flush(struct wp_ep *ep);
/* Completions of one endpoint: stashed ones first, then its CQ. */
int rd_poll_ep(struct wp_ep *ep);
int rd_poll(struct wp_ctx *ctx, int64_t timeout_us);
int rd_arm(struct wp_ctx *ctx, int64_t *timeout_us);
void rd_rx_pause(struct wp_ep *ep, bool pause);

/* xfer.c */
int rd_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p, struct wp_xfer_stats *st);
/* Post what the send queue and credits allow, transfers in order. */
int rd_pump_xfers(struct wp_ep *ep);
/* Every live transfer fails with status (once each): the connection went. */
void rd_xfers_fail(struct wp_ep *ep, int status);
/* The work request in send-queue slot finished (ok: its completion's status). */
void rd_xfer_wc(struct wp_ep *ep, uint32_t slot, bool ok);
/* The poller that times out queued transfers (rd_init, rd_fini). */
void rd_xfer_deadlines(struct wp_ctx *ctx, bool on);
/* A region advertisement (RD_IMM_MR) from the peer. */
void rd_take_adv(struct wp_ep *ep, const uint8_t *p, uint32_t len);
/* The peer withdrew one (RD_IMM_UNADV): stop using it, acknowledge. */
void rd_take_unadv(struct wp_ep *ep, const uint8_t *p, uint32_t len);

#endif
