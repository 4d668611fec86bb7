// SPDX-License-Identifier: MIT
/*
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
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"

#define RD_BUF (32u << 10) /* receive and send buffer size */
#define RD_RQ 32u          /* receive buffers per connection = the peer's credits */
#define RD_SB 32u          /* send buffers per connection */
#define RD_SQ 256u         /* send queue depth: sends, credits, writes, reads */
#define RD_MAXDEV 4
#define RD_EVENTS 16
#define RD_WC 32
#define RD_CREDIT_AT (RD_RQ / 4) /* owed credits worth a message of their own */
#define RD_TIMEOUT_MS 2000       /* address and route resolution */
#define RD_MAGIC 0x57505244u     /* "WPRD" */

/* The immediate: kind in the top byte, credits handed back in the low 16. */
enum { RD_IMM_DATA = 1, RD_IMM_CREDIT = 2, RD_IMM_MR = 3, RD_IMM_WRITE = 4 };
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

struct rd_dev {
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
};

/* A region's registrations, per device: local (lkey) and, once exported,
 * remote-accessible (the rkey peers use). */
struct rd_mr {
	struct ibv_mr *l[RD_MAXDEV], *r[RD_MAXDEV];
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
	/* What happened (explain). */
	uint64_t sends, credit_msgs, writes, reads, writes_in, advs, recvs, wc_err, stalls;
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
};

struct rd_remote {
	struct rd_remote *next;
	uint32_t id, key, rkey;
	uint64_t addr, len;
};

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
	uint32_t *adv, nadv, adv_cap;    /* region ids to advertise */
	struct rd_xfer *xq, **xq_tail;   /* transfers being posted, in order */
	struct rd_xfer *xs[RD_SQ];       /* by slot: posted, completions awaited */
	struct rd_xfer *live;            /* posted or queued, not finished */
	struct rd_remote *remote;
	struct ibv_wc stash[RD_WC]; /* taken by arm's look, handled by the next poll */
	uint32_t nstash;
};

static struct rd_ctx *rctx(const struct wp_ctx *ctx)
{
	return ctx->bk;
}

/* ---- probes ------------------------------------------------------------ */

/* Devices and their first port, for real: open each, query the port. */
static int rd_scan(char *buf, size_t len, int *active)
{
	struct ibv_device **l;
	int n = 0, off = 0;

	*active = 0;
	l = ibv_get_device_list(&n);
	if (!l) {
		int err = errno ? errno : ENOSYS;

		snprintf(buf, len, "ibv_get_device_list: %s", strerror(err));
		return -err;
	}
	if (n == 0) {
		ibv_free_device_list(l);
		snprintf(buf, len,
			 "ibv_get_device_list: no RDMA device (soft-RoCE: rdma link add rxe0 type "
			 "rxe netdev IFACE)");
		return -ENODEV;
	}
	for (int i = 0; i < n && off < (int)len; i++) {
		struct ibv_context *v = ibv_open_device(l[i]);
		struct ibv_port_attr pa;
		const char *st = "cannot open";

		if (v && ibv_query_port(v, 1, &pa) == 0) {
			st = pa.state == IBV_PORT_ACTIVE ? "ACTIVE" : "not active";
			*active += pa.state == IBV_PORT_ACTIVE;
		}
		off += snprintf(buf + off, len - off, "%s%s port 1 %s%s", i ? ", " : "",
				ibv_get_device_name(l[i]), st,
				v && pa.link_layer == IBV_LINK_LAYER_ETHERNET ? " (RoCE)" : "");
		if (v)
			ibv_close_device(v);
	}
	ibv_free_device_list(l);
	return *active ? 0 : -ENETDOWN;
}

static void rd_probe(void)
{
	char d[140];
	int active, ret = rd_scan(d, sizeof(d), &active);
	struct rdma_event_channel *ch;

	wp_probe_add("path.rdma", ret, "%s", d);
	ch = rdma_create_event_channel();
	ret = ch ? 0 : -errno;
	wp_probe_add("path.rdma.cm", ret, "rdma_create_event_channel: %s",
		     ch ? "ok (/dev/infiniband/rdma_cm)" : strerror(-ret));
	if (ch)
		rdma_destroy_event_channel(ch);
}

static int rd_available(char *why, size_t len)
{
	int active, ret = rd_scan(why, len, &active);
	struct rdma_event_channel *ch;

	if (ret < 0)
		return ret;
	ch = rdma_create_event_channel();
	if (!ch) {
		ret = -errno;
		snprintf(why, len, "rdma_create_event_channel: %s", strerror(errno));
		return ret;
	}
	rdma_destroy_event_channel(ch);
	return 0;
}

/* ---- context ----------------------------------------------------------- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static void rd_fini(struct wp_ctx *ctx);
static void ep_release(struct wp_ep *ep);

/* Every device rdma_cm knows gets a protection domain and a completion
 * channel now, so regions can be registered before the first connection. */
static int rd_init(struct wp_ctx *ctx)
{
	struct rd_ctx *r;
	int n = 0, ret = wp_epoll_bk_init(ctx, sizeof(struct rd_ctx));

	if (ret < 0)
		return ret;
	r = rctx(ctx);
	r->cm = rdma_create_event_channel();
	if (!r->cm) {
		ret = -errno;
		goto out;
	}
	ret = set_nonblock(r->cm->fd);
	if (ret == 0)
		ret = wp_epoll_ctl(ctx, EPOLL_CTL_ADD, r->cm->fd, EPOLLIN, 0);
	if (ret < 0)
		goto out;
	r->list = rdma_get_devices(&n);
	if (!r->list || n == 0) {
		ret = -ENODEV;
		goto out;
	}
	for (int i = 0; i < n && i < RD_MAXDEV; i++) {
		struct rd_dev *d = &r->dev[i];

		d->verbs = r->list[i];
		d->pd = ibv_alloc_pd(d->verbs);
		d->ch = d->pd ? ibv_create_comp_channel(d->verbs) : NULL;
		if (!d->ch) {
			ret = errno ? -errno : -ENOMEM;
			goto out;
		}
		r->ndev = i + 1;
		ret = set_nonblock(d->ch->fd);
		if (ret == 0)
			ret = wp_epoll_ctl(ctx, EPOLL_CTL_ADD, d->ch->fd, EPOLLIN, 1 + i);
		if (ret < 0)
			goto out;
	}
	snprintf(r->devname, sizeof(r->devname), "%s%s", ibv_get_device_name(r->list[0]->device),
		 n > 1 ? " (+ more)" : "");
	return 0;
out:
	rd_fini(ctx);
	return ret;
}

static void rd_fini(struct wp_ctx *ctx)
{
	struct rd_ctx *r = rctx(ctx);

	if (!r)
		return;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (ep->bk)
			ep_release(ep);
	for (uint32_t i = 0; i < r->nmrs; i++)
		for (int d = 0; d < RD_MAXDEV; d++) {
			if (r->mrs[i].l[d])
				ibv_dereg_mr(r->mrs[i].l[d]);
			if (r->mrs[i].r[d])
				ibv_dereg_mr(r->mrs[i].r[d]);
		}
	free(r->mrs);
	for (int i = 0; i < RD_MAXDEV; i++) {
		if (r->dev[i].ch)
			ibv_destroy_comp_channel(r->dev[i].ch);
		if (r->dev[i].pd)
			ibv_dealloc_pd(r->dev[i].pd);
	}
	if (r->list)
		rdma_free_devices(r->list);
	if (r->cm)
		rdma_destroy_event_channel(r->cm);
	wp_epoll_bk_fini(ctx);
}

/* ---- the registration cache ------------------------------------------ */

static void rd_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr);

/* mem.c caches regions (a range inside a registered one costs a list
 * walk); here each region is registered once per device. */
static int rd_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct rd_ctx *r = rctx(ctx);
	struct rd_mr *m;
	uint32_t i;

	for (i = 0; i < r->nmrs && r->mrs[i].used; i++)
		;
	if (i == r->nmrs) {
		struct rd_mr *n = realloc(r->mrs, (r->nmrs + 8) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		memset(n + r->nmrs, 0, 8 * sizeof(*n));
		r->mrs = n;
		r->nmrs += 8;
	}
	m = &r->mrs[i];
	for (int d = 0; d < r->ndev; d++) {
		m->l[d] = ibv_reg_mr(r->dev[d].pd, mr->addr, mr->len, IBV_ACCESS_LOCAL_WRITE);
		if (!m->l[d]) {
			int err = errno ? -errno : -ENOMEM;

			while (d-- > 0) {
				ibv_dereg_mr(m->l[d]);
				m->l[d] = NULL;
			}
			mr->idx = -1;
			return err;
		}
	}
	m->used = true;
	mr->idx = (int)i;
	if (mr->exported) /* exported before the path started */
		rd_mr_exported(ctx, mr);
	return 0;
}

static void rd_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct rd_ctx *r = rctx(ctx);
	struct rd_mr *m;

	if (!r || mr->idx < 0 || (uint32_t)mr->idx >= r->nmrs)
		return;
	m = &r->mrs[mr->idx];
	for (int d = 0; d < RD_MAXDEV; d++) {
		if (m->l[d])
			ibv_dereg_mr(m->l[d]);
		if (m->r[d])
			ibv_dereg_mr(m->r[d]);
	}
	memset(m, 0, sizeof(*m));
	mr->idx = -1;
}

static struct rd_mr *rd_mr_of(struct wp_ctx *ctx, const struct wp_mr *mr)
{
	struct rd_ctx *r = rctx(ctx);

	return mr->idx >= 0 && (uint32_t)mr->idx < r->nmrs && r->mrs[mr->idx].used
		       ? &r->mrs[mr->idx]
		       : NULL;
}

static void adv_queue(struct wp_ep *ep, uint32_t id)
{
	struct rd_ep *re = ep->bk;

	/* Under a policy nothing is advertised: an rkey is valid on the whole
	 * protection domain and would reach a peer before (or without) its
	 * handshake, and RDMA moves bytes no record seals. Transfers go by
	 * frames, sealed like every other frame (rd_xfer_direct refuses). */
	if (ep->guard || ep->ctx->guard)
		return;
	if (re->nadv == re->adv_cap) {
		uint32_t cap = re->adv_cap ? re->adv_cap * 2 : 8;
		uint32_t *n = realloc(re->adv, cap * sizeof(*n));

		if (!n)
			return; /* that region's transfers go by frames */
		re->adv = n;
		re->adv_cap = cap;
	}
	re->adv[re->nadv++] = id;
	wp_ctx_mark_dirty(ep);
}

/* Exported: register for remote access (writes into it, reads from it) and
 * advertise it on every open connection. Regions never exported keep local
 * access only: their rkey never leaves this process. */
static void rd_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct rd_ctx *r = rctx(ctx);
	struct rd_mr *m = rd_mr_of(ctx, mr);

	if (!m)
		return;
	for (int d = 0; d < r->ndev; d++) {
		if (m->r[d])
			continue;
		m->r[d] = ibv_reg_mr(r->dev[d].pd, mr->addr, mr->len,
				     IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
					     IBV_ACCESS_REMOTE_READ);
		if (!m->r[d]) {
			wp_log(ctx, WP_LOG_WARN,
			       "rdma: region %u stays local (ibv_reg_mr for remote access: %s); "
			       "transfers to it go by frames",
			       mr->id, strerror(errno));
			return;
		}
	}
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (ep->state == WP_EPS_OPEN)
			adv_queue(ep, mr->id);
}

/* ---- connection set-up ------------------------------------------------ */

static void rd_ep_init(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	re->di = -1;
	re->xq_tail = &re->xq;
}

static int post_recv(struct wp_ep *ep, uint32_t i)
{
	struct rd_ep *re = ep->bk;
	struct ibv_sge sge = { (uintptr_t)(re->rbuf + (size_t)i * RD_BUF), RD_BUF, re->rmr->lkey };
	struct ibv_recv_wr wr = { .wr_id = RD_WR(RD_WR_RECV, i), .sg_list = &sge, .num_sge = 1 },
			   *bad;

	return -ibv_post_recv(re->id->qp, &wr, &bad);
}

/* The QP and its buffers, on the device rdma_cm resolved for id: a CQ on
 * the device's completion channel, RD_RQ receives posted before the
 * connection is offered, so the peer's first SEND finds one. */
static int qp_setup(struct wp_ep *ep, struct rdma_cm_id *id)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	struct ibv_qp_init_attr qa = { 0 };
	int ret;

	re->id = id;
	id->context = ep;
	for (int i = 0; i < r->ndev; i++)
		if (r->dev[i].verbs == id->verbs)
			re->di = i;
	if (re->di < 0)
		return -ENODEV; /* a device that appeared after the context */
	re->dev = &r->dev[re->di];
	re->cq = ibv_create_cq(id->verbs, RD_SQ + RD_RQ, ep, re->dev->ch, 0);
	if (!re->cq)
		return errno ? -errno : -ENOMEM;
	qa.send_cq = re->cq;
	qa.recv_cq = re->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = RD_SQ;
	qa.cap.max_recv_wr = RD_RQ;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	qa.sq_sig_all = 1;
	if (rdma_create_qp(id, re->dev->pd, &qa))
		return errno ? -errno : -ENOMEM;
	re->qp = true;
	re->rbuf = aligned_alloc(4096, (size_t)RD_RQ * RD_BUF);
	re->sbuf = aligned_alloc(4096, (size_t)RD_SB * RD_BUF);
	if (!re->rbuf || !re->sbuf)
		return -ENOMEM;
	re->rmr = ibv_reg_mr(re->dev->pd, re->rbuf, (size_t)RD_RQ * RD_BUF, IBV_ACCESS_LOCAL_WRITE);
	re->smr = ibv_reg_mr(re->dev->pd, re->sbuf, (size_t)RD_SB * RD_BUF, 0);
	if (!re->rmr || !re->smr)
		return errno ? -errno : -ENOMEM;
	for (uint32_t i = 0; i < RD_SB; i++)
		re->sfree[i] = RD_SB - 1 - i;
	re->nsfree = RD_SB;
	for (uint32_t i = 0; i < RD_RQ; i++) {
		ret = post_recv(ep, i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void conn_param(struct wp_ep *ep, struct rdma_conn_param *cp, struct rd_hello *h)
{
	struct rd_ep *re = ep->bk;
	struct ibv_device_attr da;
	int rd = 16;

	if (ibv_query_device(re->id->verbs, &da) == 0 && da.max_qp_rd_atom < rd)
		rd = da.max_qp_rd_atom;
	*h = (struct rd_hello){ htole32(RD_MAGIC), htole32(1), htole32(RD_RQ), htole32(RD_BUF) };
	*cp = (struct rdma_conn_param){
		.private_data = h,
		.private_data_len = sizeof(*h),
		.responder_resources = (uint8_t)rd, /* RDMA READs the peer may have in flight */
		.initiator_depth = (uint8_t)rd,     /* ... and we */
		.retry_count = 7,     /* transport retries, then IBV_WC_RETRY_EXC_ERR */
		.rnr_retry_count = 0, /* credits: an RNR is a bug, fail loudly */
	};
}

/* The peer's hello: its credits and buffer size. */
static int hello_take(struct wp_ep *ep, const void *pd, uint8_t len)
{
	struct rd_ep *re = ep->bk;
	struct rd_hello h;

	if (!pd || len < sizeof(h))
		return -EPROTO;
	memcpy(&h, pd, sizeof(h));
	if (le32toh(h.magic) != RD_MAGIC || le32toh(h.version) != 1 || !le32toh(h.rq) ||
	    le32toh(h.buf) < 4096)
		return -EPROTO;
	re->credits = le32toh(h.rq) > 0xffff ? 0xffff : le32toh(h.rq);
	re->peer_buf = le32toh(h.buf) < RD_BUF ? le32toh(h.buf) : RD_BUF;
	return 0;
}

static int rd_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	int ret;

	if (rdma_create_id(r->cm, &re->id, ep, RDMA_PS_TCP))
		return -errno;
	if (rdma_bind_addr(re->id, (struct sockaddr *)sa) || rdma_listen(re->id, 128)) {
		ret = -errno;
		rdma_destroy_id(re->id);
		re->id = NULL;
		return ret;
	}
	ep->local_port = ntohs(rdma_get_src_port(re->id));
	ep->state = WP_EPS_LISTEN;
	return 0;
}

static int rd_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	int ret;

	if (rdma_create_id(r->cm, &re->id, ep, RDMA_PS_TCP))
		return -errno;
	if (rdma_resolve_addr(re->id, NULL, (struct sockaddr *)sa, RD_TIMEOUT_MS)) {
		ret = -errno;
		rdma_destroy_id(re->id);
		re->id = NULL;
		return ret;
	}
	ep->state = WP_EPS_CONNECTING;
	return 0;
}

/* Every live transfer fails with status (once each): the connection went. */
static void xfers_fail(struct wp_ep *ep, int status)
{
	struct rd_ep *re = ep->bk;

	memset(re->xs, 0, sizeof(re->xs));
	re->xq = NULL;
	re->xq_tail = &re->xq;
	while (re->live) {
		struct rd_xfer *x = re->live;

		re->live = x->lnext;
		wp_xfer_direct_done(x->st, x->status ? x->status : status);
		free(x->desc);
		free(x);
	}
}

static void xfer_unlink(struct rd_ep *re, struct rd_xfer *x)
{
	for (struct rd_xfer **pp = &re->live; *pp; pp = &(*pp)->lnext)
		if (*pp == x) {
			*pp = x->lnext;
			return;
		}
}

/* Stop: the QP goes (outstanding work requests die with it), the CM id
 * goes (a connected one tells the peer: DREQ), what was in flight fails. */
static void rd_close(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	if (!re->id)
		return;
	if (re->qp) {
		rdma_disconnect(re->id);
		rdma_destroy_qp(re->id);
		re->qp = false;
	}
	if (re->cq) {
		ibv_destroy_cq(re->cq);
		re->cq = NULL;
	}
	rdma_destroy_id(re->id);
	re->id = NULL;
	re->nstash = 0;
	xfers_fail(ep, -ECONNRESET);
}

/* What an endpoint holds of the device; before the context's protection
 * domains go (rd_fini), and again, harmlessly, from ep_free. */
static void ep_release(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	rd_close(ep);
	if (re->rmr)
		ibv_dereg_mr(re->rmr);
	if (re->smr)
		ibv_dereg_mr(re->smr);
	re->rmr = re->smr = NULL;
}

static void rd_ep_free(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	ep_release(ep);
	free(re->rbuf);
	free(re->sbuf);
	free(re->adv);
	while (re->remote) {
		struct rd_remote *n = re->remote->next;

		free(re->remote);
		re->remote = n;
	}
}

/* ---- sending ---------------------------------------------------------- */

static int post_send(struct wp_ep *ep, uint32_t buf, uint32_t len, uint32_t kind)
{
	struct rd_ep *re = ep->bk;
	struct ibv_sge sge = { (uintptr_t)(re->sbuf + (size_t)buf * RD_BUF), len, re->smr->lkey };
	struct ibv_send_wr wr = { .wr_id = RD_WR(RD_WR_SEND, buf),
				  .sg_list = len ? &sge : NULL,
				  .num_sge = len ? 1 : 0,
				  .opcode = IBV_WR_SEND_WITH_IMM,
				  .imm_data = RD_IMM(kind, re->owed) },
			   *bad;
	int ret = ibv_post_send(re->id->qp, &wr, &bad);

	if (ret)
		return -ret;
	re->owed = 0;
	re->credits--;
	re->sq_used++;
	return 0;
}

/* A message of kind with len bytes from the caller: a send buffer, a credit
 * (data keeps the last one back), a send queue slot. 1 sent, 0 no room. */
static int send_msg(struct wp_ep *ep, uint32_t kind, const void *p, uint32_t len)
{
	struct rd_ep *re = ep->bk;
	uint32_t b;
	int ret;

	if (!re->nsfree || re->sq_used >= RD_SQ || re->credits <= (kind == RD_IMM_CREDIT ? 0 : 1))
		return 0;
	b = re->sfree[--re->nsfree];
	if (len)
		memcpy(re->sbuf + (size_t)b * RD_BUF, p, len);
	ret = post_send(ep, b, len, kind);
	if (ret < 0) {
		re->sfree[re->nsfree++] = b;
		return ret;
	}
	return 1;
}

static int pump_xfers(struct wp_ep *ep);

static void rd_flush(struct wp_ep *ep)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	struct wp_txq *q = &ep->tx;
	struct iovec iov[64];
	int ret = 0;

	if (ep->state != WP_EPS_OPEN || !re->qp)
		return;
	/* Advertisements first: a wp_rkey queued after an export must find
	 * its region known on arrival. */
	while (re->nadv) {
		struct wp_mr *mr = NULL;
		struct rd_mr *m;
		struct rd_adv a;

		for (struct wp_mr *x = ep->ctx->mrs; x; x = x->next)
			if (x->id == re->adv[0] && x->exported)
				mr = x;
		m = mr ? rd_mr_of(ep->ctx, mr) : NULL;
		if (m && m->r[re->di]) {
			a = (struct rd_adv){ htole32(mr->id),
					     htole32(mr->key),
					     htole64((uintptr_t)mr->addr),
					     htole64(mr->len),
					     htole32(m->r[re->di]->rkey),
					     0 };
			ret = send_msg(ep, RD_IMM_MR, &a, sizeof(a));
			if (ret < 0)
				goto out;
			if (ret == 0)
				goto credit; /* blocked: frames wait behind it, credits must not */
			r->advs++;
		}
		memmove(re->adv, re->adv + 1, --re->nadv * sizeof(*re->adv));
	}
	while (wp_txq_pending(q)) {
		uint64_t idx = q->sent;
		size_t bytes, n = 0;
		int cnt = wp_txq_iov(q, &idx, q->sent_off, iov, 64, &bytes, false, NULL);
		uint32_t b;

		if (!re->nsfree || re->sq_used >= RD_SQ || re->credits <= 1) {
			r->stalls++;
			break;
		}
		b = re->sfree[--re->nsfree];
		for (int i = 0; i < cnt && n < re->peer_buf; i++) {
			size_t c = iov[i].iov_len < re->peer_buf - n ? iov[i].iov_len
								     : re->peer_buf - n;

			memcpy(re->sbuf + (size_t)b * RD_BUF + n, iov[i].iov_base, c);
			n += c;
		}
		ret = post_send(ep, b, (uint32_t)n, RD_IMM_DATA);
		if (ret < 0) {
			re->sfree[re->nsfree++] = b;
			goto out;
		}
		r->sends++;
		/* Copied into registered memory: the segments are done. */
		wp_txq_advance(ep, n, true);
	}
	ret = pump_xfers(ep);
	if (ret < 0)
		goto out;
credit:
	if (re->owed >= RD_CREDIT_AT) {
		ret = send_msg(ep, RD_IMM_CREDIT, NULL, 0);
		if (ret > 0)
			r->credit_msgs++;
	}
out:
	if (ret < 0)
		wp_conn_fail(ep, ret);
}

static const struct wp_fast_ops rd_fast = { .flush = rd_flush };

/* ---- bulk transfers: RDMA WRITE (with immediate) and READ ------------- */

static struct rd_remote *remote_find(struct rd_ep *re, uint32_t id, uint32_t key)
{
	for (struct rd_remote *m = re->remote; m; m = m->next)
		if (m->id == id)
			return m->key == key ? m : NULL;
	return NULL;
}

/* Post what the send queue and credits allow, transfers in order. */
static int pump_xfers(struct wp_ep *ep)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;

	while (re->xq) {
		struct rd_xfer *x = re->xq;

		while (x->posted < x->p.ndesc) {
			const struct wp_xfer_desc *d = &x->desc[x->posted];
			bool last = x->posted + 1 == x->p.ndesc,
			     imm = last && x->p.op == WP_XFER_WRITE;
			struct ibv_sge sge = { (uintptr_t)(x->p.local->addr + d->local_off),
					       (uint32_t)d->len, x->lkey };
			struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;
			uint32_t slot;
			int ret;

			if (re->sq_used >= RD_SQ || (imm && re->credits <= 1))
				return 0;
			for (slot = 0; slot < RD_SQ && re->xs[slot]; slot++)
				;
			if (slot == RD_SQ)
				return 0;
			wr.wr_id = RD_WR(RD_WR_XFER, slot);
			wr.opcode = x->p.op == WP_XFER_READ ? IBV_WR_RDMA_READ
				    : imm                   ? IBV_WR_RDMA_WRITE_WITH_IMM
							    : IBV_WR_RDMA_WRITE;
			if (imm)
				wr.imm_data = RD_IMM(RD_IMM_WRITE, re->owed);
			wr.wr.rdma.remote_addr = x->raddr + d->remote_off;
			wr.wr.rdma.rkey = x->rkey;
			ret = ibv_post_send(re->id->qp, &wr, &bad);
			if (ret)
				return -ret;
			if (imm) {
				re->owed = 0;
				re->credits--;
			}
			re->sq_used++;
			re->xs[slot] = x;
			x->posted++;
			x->left++;
			if (x->p.op == WP_XFER_READ)
				r->reads++;
			else
				r->writes++;
		}
		re->xq = x->next;
		if (!re->xq)
			re->xq_tail = &re->xq;
	}
	return 0;
}

/* Descriptors longer than a work request can carry are not split: they go
 * by frames (a verbs message is at most 2^31 bytes). */
static int rd_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p,
			  struct wp_xfer_stats *st)
{
	struct rd_ep *re = ep->bk;
	struct rd_remote *rm;
	struct rd_mr *m;
	struct rd_xfer *x;
	int ret;

	if (!re->qp || re->di < 0 || ep->guard || ep->ctx->guard)
		return -EOPNOTSUPP; /* frames: a policy seals them (adv_queue) */
	rm = remote_find(re, p->remote->id, p->remote->key);
	m = rd_mr_of(ep->ctx, p->local);
	if (!rm || !m || !m->l[re->di] || rm->len < p->remote->len)
		return -EOPNOTSUPP;
	for (uint32_t i = 0; i < p->ndesc; i++)
		if (p->desc[i].len > (1ull << 31) || !p->desc[i].len)
			return -EOPNOTSUPP;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->desc = malloc(p->ndesc * sizeof(*x->desc));
	if (!x->desc) {
		free(x);
		return -ENOMEM;
	}
	memcpy(x->desc, p->desc, p->ndesc * sizeof(*x->desc));
	x->p = *p;
	x->p.desc = x->desc;
	x->st = st;
	x->raddr = rm->addr;
	x->rkey = rm->rkey;
	x->lkey = m->l[re->di]->lkey;
	*re->xq_tail = x;
	re->xq_tail = &x->next;
	x->lnext = re->live;
	re->live = x;
	ret = pump_xfers(ep);
	if (ret < 0) {
		wp_conn_fail(ep, ret); /* fails x too, through close */
		return 1;
	}
	if (re->xq)
		wp_ctx_mark_dirty(ep); /* the rest when the send queue drains */
	return 1;
}

/* ---- receiving and completions ----------------------------------------- */

static void take_adv(struct wp_ep *ep, const uint8_t *p, uint32_t len)
{
	struct rd_ep *re = ep->bk;
	struct rd_remote *m;
	struct rd_adv a;

	if (len != sizeof(a)) {
		wp_conn_fail(ep, -EPROTO);
		return;
	}
	memcpy(&a, p, sizeof(a));
	m = remote_find(re, le32toh(a.id), le32toh(a.key));
	if (!m) {
		/* An id seen before with another key is a new region. */
		for (struct rd_remote **pp = &re->remote; *pp; pp = &(*pp)->next)
			if ((*pp)->id == le32toh(a.id)) {
				m = *pp;
				*pp = m->next;
				free(m);
				break;
			}
		m = calloc(1, sizeof(*m));
		if (!m)
			return; /* its transfers go by frames */
		m->next = re->remote;
		re->remote = m;
	}
	m->id = le32toh(a.id);
	m->key = le32toh(a.key);
	m->addr = le64toh(a.addr);
	m->len = le64toh(a.len);
	m->rkey = le32toh(a.rkey);
}

/* A receive buffer is free again: post it now, or park it while input is
 * paused (the peer then runs out of credits: that is the back-pressure). */
static int recv_done(struct wp_ep *ep, uint32_t i)
{
	struct rd_ep *re = ep->bk;
	int ret;

	if (ep->rx_paused) {
		re->parked[re->nparked++] = i;
		return 0;
	}
	ret = post_recv(ep, i);
	if (ret < 0)
		return ret;
	re->owed++;
	if (re->owed >= RD_CREDIT_AT && !ep->dirty)
		wp_ctx_mark_dirty(ep);
	return 0;
}

static const char *wc_str(enum ibv_wc_status s)
{
	return ibv_wc_status_str(s);
}

static void handle_wc(struct wp_ep *ep, const struct ibv_wc *wc)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	uint32_t kind = (uint32_t)(wc->wr_id >> 56), i = (uint32_t)(wc->wr_id & 0xffffffffu);
	int ret;

	if (kind == RD_WR_SEND) {
		re->sq_used--;
		re->sfree[re->nsfree++] = i;
	} else if (kind == RD_WR_XFER) {
		struct rd_xfer *x = re->xs[i];

		re->sq_used--;
		re->xs[i] = NULL;
		if (x) {
			if (wc->status != IBV_WC_SUCCESS && !x->status)
				x->status = -EIO;
			if (--x->left == 0 && x->posted == x->p.ndesc) {
				x->st->bytes = 0;
				for (uint32_t k = 0; k < x->p.ndesc; k++)
					x->st->bytes += x->desc[k].len;
				xfer_unlink(re, x);
				wp_xfer_direct_done(x->st, x->status);
				free(x->desc);
				free(x);
			}
		}
	}
	if (wc->status != IBV_WC_SUCCESS) {
		r->wc_err++;
		if (ep->state == WP_EPS_OPEN) {
			wp_log(ep->ctx, WP_LOG_WARN, "rdma: work completion failed: %s (vendor %u)",
			       wc_str(wc->status), wc->vendor_err);
			wp_conn_fail(ep,
				     wc->status == IBV_WC_RETRY_EXC_ERR ? -ETIMEDOUT : -ECONNRESET);
		}
		return;
	}
	if (kind != RD_WR_RECV) {
		if ((wp_txq_pending(&ep->tx) || re->xq || re->nadv || re->owed >= RD_CREDIT_AT) &&
		    !ep->dirty)
			wp_ctx_mark_dirty(ep);
		return;
	}
	r->recvs++;
	if (wc->wc_flags & IBV_WC_WITH_IMM) {
		uint32_t imm = ntohl(wc->imm_data);

		re->credits += imm & 0xffffu;
		switch (imm >> 24) {
		case RD_IMM_DATA:
			if (wc->byte_len &&
			    wp_conn_input(ep, re->rbuf + (size_t)i * RD_BUF, wc->byte_len) < 0)
				return; /* closed */
			break;
		case RD_IMM_MR:
			take_adv(ep, re->rbuf + (size_t)i * RD_BUF, wc->byte_len);
			break;
		case RD_IMM_WRITE:
			r->writes_in++;
			break;
		case RD_IMM_CREDIT:
			break;
		default:
			wp_conn_fail(ep, -EPROTO);
			return;
		}
	} else {
		wp_conn_fail(ep, -EPROTO); /* every message of ours carries one */
		return;
	}
	if (ep->state != WP_EPS_OPEN)
		return;
	ret = recv_done(ep, i);
	if (ret < 0) {
		wp_conn_fail(ep, ret);
		return;
	}
	if ((wp_txq_pending(&ep->tx) || re->xq || re->nadv || re->owed >= RD_CREDIT_AT) &&
	    !ep->dirty)
		wp_ctx_mark_dirty(ep);
}

/* Completions of one endpoint: stashed ones first, then its CQ. */
static int poll_ep(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;
	struct ibv_wc wc[RD_WC];
	int n = 0, total = 0;

	if (re->nstash) {
		n = (int)re->nstash;
		memcpy(wc, re->stash, n * sizeof(*wc));
		re->nstash = 0;
		for (int i = 0; i < n && re->cq; i++)
			handle_wc(ep, &wc[i]);
		total += n;
	}
	while (re->cq && (n = ibv_poll_cq(re->cq, RD_WC, wc)) > 0) {
		total += n;
		for (int i = 0; i < n && re->cq; i++)
			handle_wc(ep, &wc[i]);
		if (n < RD_WC)
			break;
	}
	if (n < 0 && re->cq && ep->state == WP_EPS_OPEN)
		wp_conn_fail(ep, -EIO);
	return total;
}

/* ---- rdma_cm events ------------------------------------------------------ */

static void accept_req(struct wp_ep *l, struct rdma_cm_id *id, const void *pd, uint8_t pdlen)
{
	struct wp_ctx *ctx = l->ctx;
	struct rdma_conn_param cp;
	struct rd_hello h;
	struct wp_admit adm;
	struct wp_ep *ep;
	int ret;

	if (l->rx_paused || l->state != WP_EPS_LISTEN ||
	    wp_conn_admit(ctx, rdma_get_peer_addr(id), sizeof(struct sockaddr_storage), &adm) < 0) {
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return;
	}
	ep = wp_ep_alloc(ctx, &l->cbs);
	if (!ep) {
		wp_log_rl(ctx, WP_RL_ACCEPT, WP_LOG_ERR, "rdma accept: out of memory, rejecting");
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return;
	}
	ep->accepted = true;
	wp_conn_admitted(ep, &adm);
	ep->state = WP_EPS_CONNECTING;
	ret = qp_setup(ep, id);
	if (ret == 0)
		ret = hello_take(ep, pd, pdlen);
	if (ret == 0) {
		conn_param(ep, &cp, &h);
		ret = rdma_accept(id, &cp) ? -errno : 0;
	}
	if (ret < 0) {
		rdma_reject(id, NULL, 0);
		wp_accept_error(l, ret);
		wp_ep_accept_failed(ep, ret); /* close destroys the id */
		return;
	}
	wp_accept_ok(l);
}

static int cm_events(struct wp_ctx *ctx)
{
	struct rd_ctx *r = rctx(ctx);
	struct rdma_cm_event *ev;
	int n = 0;

	while (rdma_get_cm_event(r->cm, &ev) == 0) {
		enum rdma_cm_event_type type = ev->event;
		struct rdma_cm_id *id = ev->id;
		struct wp_ep *ep = id->context;
		struct wp_ep *l = ev->listen_id ? ev->listen_id->context : NULL;
		int status = ev->status;
		uint8_t pd[64], pdlen = 0;
		struct rd_ep *re;
		struct rdma_conn_param cp;
		struct rd_hello h;
		int ret;

		if (ev->param.conn.private_data && ev->param.conn.private_data_len) {
			pdlen = ev->param.conn.private_data_len < sizeof(pd)
					? ev->param.conn.private_data_len
					: sizeof(pd);
			memcpy(pd, ev->param.conn.private_data, pdlen);
		}
		/* Acknowledged before it is handled: destroying an id waits
		 * for its events' acknowledgements. */
		rdma_ack_cm_event(ev);
		n++;
		if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
			accept_req(l, id, pdlen ? pd : NULL, pdlen);
			continue;
		}
		if (!ep || ep->state == WP_EPS_CLOSED)
			continue;
		re = ep->bk;
		switch (type) {
		case RDMA_CM_EVENT_ADDR_RESOLVED:
			if (rdma_resolve_route(id, RD_TIMEOUT_MS))
				wp_conn_fail(ep, -errno);
			break;
		case RDMA_CM_EVENT_ROUTE_RESOLVED:
			ret = qp_setup(ep, id);
			if (ret == 0) {
				conn_param(ep, &cp, &h);
				ret = rdma_connect(id, &cp) ? -errno : 0;
			}
			if (ret < 0)
				wp_conn_fail(ep, ret);
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			if (!ep->accepted && (ret = hello_take(ep, pdlen ? pd : NULL, pdlen)) < 0) {
				wp_conn_fail(ep, ret);
				break;
			}
			re->resolved = true;
			wp_conn_established(ep);
			for (struct wp_mr *mr = ctx->mrs; mr && ep->state == WP_EPS_OPEN;
			     mr = mr->next)
				if (mr->exported)
					adv_queue(ep, mr->id);
			break;
		case RDMA_CM_EVENT_ADDR_ERROR:
		case RDMA_CM_EVENT_ROUTE_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
			wp_conn_fail(ep, status < 0 ? status : -EHOSTUNREACH);
			break;
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
			wp_conn_fail(ep, -ECONNREFUSED);
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
			/* What the peer sent before it went is in the CQ: take
			 * it, then the end (a frame cut short is counted). */
			if (ep->state != WP_EPS_OPEN) {
				wp_conn_fail(ep, -ECONNRESET); /* before ESTABLISHED */
				break;
			}
			poll_ep(ep);
			if (ep->state == WP_EPS_OPEN)
				wp_conn_eof(ep);
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			wp_conn_fail(ep, -ENODEV);
			break;
		default:
			break;
		}
	}
	return n;
}

/* CQ events: acknowledge each at once; the CQ is polled by the caller. */
static void cq_events(struct wp_ctx *ctx, int d)
{
	struct rd_ctx *r = rctx(ctx);
	struct ibv_cq *cq;
	void *cqctx;

	while (ibv_get_cq_event(r->dev[d].ch, &cq, &cqctx) == 0) {
		struct wp_ep *ep = cqctx;

		ibv_ack_cq_events(cq, 1);
		((struct rd_ep *)ep->bk)->armed = false;
	}
}

/* Open connections only: an accepted one may hold the connector's first
 * messages before its own ESTABLISHED arrives; they wait in its CQ (their
 * buffers stay consumed, their credits owed) until then. */
static int poll_all(struct wp_ctx *ctx)
{
	int n = 0;

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct rd_ep *re = ep->bk;

		if (re && re->cq && ep->state == WP_EPS_OPEN)
			n += poll_ep(ep);
	}
	return n;
}

/* Arm every CQ, then look once more: a completion that arrived before the
 * arm raises no event, so it is taken now (stashed for the next poll). */
static int arm_all(struct wp_ctx *ctx)
{
	int found = 0;

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct rd_ep *re = ep->bk;
		int n;

		if (!re || !re->cq || ep->state != WP_EPS_OPEN)
			continue;
		if (!re->armed) {
			if (ibv_req_notify_cq(re->cq, 0))
				return -EAGAIN; /* cannot sleep on it: keep polling */
			re->armed = true;
		}
		if (re->nstash < RD_WC) {
			n = ibv_poll_cq(re->cq, (int)(RD_WC - re->nstash), re->stash + re->nstash);
			if (n > 0)
				re->nstash += (uint32_t)n;
		}
		found += re->nstash != 0;
	}
	return found ? -EAGAIN : 0;
}

static int rd_events(struct wp_ctx *ctx, int nev)
{
	struct rd_ctx *r = rctx(ctx);
	int n = 0;

	for (int i = 0; i < nev; i++) {
		if (r->ev[i].data.u64 == 0)
			n += cm_events(ctx);
		else
			cq_events(ctx, (int)r->ev[i].data.u64 - 1);
	}
	return n;
}

/* One look at the channels (a non-blocking epoll_wait says which have
 * events), every CQ polled; then, with nothing found, arm and sleep. */
static int rd_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct rd_ctx *r = rctx(ctx);
	int n = 0, nev = wp_epoll_wait(ctx, r->ev, RD_EVENTS, 0);

	if (nev < 0)
		return nev;
	n += rd_events(ctx, nev);
	n += poll_all(ctx);
	if (n || timeout_us == 0)
		return n;
	if (arm_all(ctx) == -EAGAIN)
		return poll_all(ctx);
	nev = wp_epoll_wait(ctx, r->ev, RD_EVENTS, timeout_us);
	if (nev < 0)
		return nev;
	n = rd_events(ctx, nev);
	return n + poll_all(ctx);
}

static int rd_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	return arm_all(ctx);
}

/* Input paused (receive budget): buffers that fill are parked, not
 * re-posted, so the peer's credits run out; resumed, they go back. A paused
 * listener rejects connection requests (EMFILE backoff). */
static void rd_rx_pause(struct wp_ep *ep, bool pause)
{
	struct rd_ep *re = ep->bk;

	if (pause || ep->state != WP_EPS_OPEN)
		return;
	while (re->nparked) {
		int ret = post_recv(ep, re->parked[--re->nparked]);

		if (ret < 0) {
			wp_conn_fail(ep, ret);
			return;
		}
		re->owed++;
	}
	if (!ep->dirty)
		wp_ctx_mark_dirty(ep);
}

static void rd_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct rd_ctx *r = rctx(ctx);

	snprintf(
		buf, len,
		"rdma_cm RC queue pairs on %s; frames by SEND_WITH_IMM copied into %u x %u KiB "
		"registered send buffers, received into %u x %u KiB pre-posted buffers, parsed in "
		"place; credit flow control (rnr_retry 0): %llu sends, %llu credit-only messages, "
		"%llu stalls on credits; bulk by RDMA WRITE(_WITH_IMM)/READ into advertised regions: "
		"%llu writes, %llu reads, %llu transfers landed here, %llu advertisements; %llu failed "
		"completions; %s",
		r && r->devname[0] ? r->devname : "?", RD_SB, RD_BUF >> 10, RD_RQ, RD_BUF >> 10,
		(unsigned long long)(r ? r->sends : 0),
		(unsigned long long)(r ? r->credit_msgs : 0),
		(unsigned long long)(r ? r->stalls : 0), (unsigned long long)(r ? r->writes : 0),
		(unsigned long long)(r ? r->reads : 0), (unsigned long long)(r ? r->writes_in : 0),
		(unsigned long long)(r ? r->advs : 0), (unsigned long long)(r ? r->wc_err : 0),
		ctx->o.busy_poll
			? "busy-poll on (CQs never armed)"
			: "sleeps on the completion channel (armed, then polled once more)");
}

static int rd_local_uri(const struct wp_ep *ep, char *buf, size_t len)
{
	const struct rd_ep *re = ep->bk;
	char host[INET6_ADDRSTRLEN] = "127.0.0.1";
	const struct sockaddr *sa = re->id ? rdma_get_local_addr(re->id) : NULL;
	int n;

	if (sa && sa->sa_family == AF_INET &&
	    ((const struct sockaddr_in *)sa)->sin_addr.s_addr != htonl(INADDR_ANY))
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	n = snprintf(buf, len, "rdma://%s:%d", host, ep->local_port);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A connection receives into its registered receive buffers. */
static int rd_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		    uint32_t max)
{
	const struct rd_ep *re;

	if (!ep || !ep->bk)
		return 0;
	re = ep->bk;
	if (!re->rbuf)
		return 0;
	if (max)
		out[0] = (struct wp_mem_range){ re->rbuf, (size_t)RD_RQ * RD_BUF, WP_MEM_RDMA_RX,
						0 };
	return 1;
}

const struct wp_backend_ops wp_rdma_ops = {
	.name = "rdma",
	.fast = &rd_fast,
	.caps = WP_CAP_STREAM | WP_CAP_BUSY_POLL,
	.available = rd_available,
	.probe = rd_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = rd_init,
	.fini = rd_fini,
	.listen = rd_listen,
	.connect = rd_connect,
	.close = rd_close,
	.poll = rd_poll,
	.explain = rd_explain,
	.mem_register = rd_mem_register,
	.mem_unregister = rd_mem_unregister,
	.ep_size = sizeof(struct rd_ep),
	.ep_init = rd_ep_init,
	.ep_free = rd_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = rd_local_uri,
	.mr_exported = rd_mr_exported,
	.xfer_direct = rd_xfer_direct,
	.pools = rd_pools,
	.rx_pause = rd_rx_pause,
	.fd = wp_epoll_fd,
	.arm = rd_arm,
};
