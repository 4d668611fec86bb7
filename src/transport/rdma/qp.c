// SPDX-License-Identifier: MIT
/*
 * The rdma path's data path on the QP: frames copied into registered send
 * buffers and posted as SEND_WITH_IMM under credits, RECV completions into the
 * shared parser, credit returns, completion handling, and the progress round
 * (CQ events acknowledged, every CQ polled, armed before sleeping).
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "rdma.h"

int rd_post_recv(struct wp_ep *ep, uint32_t i)
{
	struct rd_ep *re = ep->bk;
	struct ibv_sge sge = { (uintptr_t)(re->rbuf + (size_t)i * RD_BUF), RD_BUF, re->rmr->lkey };
	struct ibv_recv_wr wr = { .wr_id = RD_WR(RD_WR_RECV, i), .sg_list = &sge, .num_sge = 1 },
			   *bad;

	return -ibv_post_recv(re->id->qp, &wr, &bad);
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

void rd_flush(struct wp_ep *ep)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	struct wp_txq *q = &ep->tx;
	struct iovec iov[64];
	int ret = 0;

	if (ep->state != WP_EPS_OPEN || !re->qp)
		return;
	/* Control messages first, in order: a wp_rkey queued after an export
	 * must find its region known on arrival; withdrawals and their
	 * acknowledgements are not held back by frames. */
	while (re->nctl) {
		const struct rd_ctl *c = &re->ctl[0];

		if (c->kind == RD_IMM_MR) {
			struct wp_mr *mr = NULL;
			struct rd_mr *m;
			struct rd_adv a;
			uint8_t *st;

			for (struct wp_mr *x = ep->ctx->mrs; x; x = x->next)
				if (x->id == c->id && x->exported)
					mr = x;
			m = mr ? rd_mr_of(ep->ctx, mr) : NULL;
			/* Told, so it must be withdrawn before it goes: no
			 * record of it (out of memory), no advertisement. */
			st = m && m->r[re->di] ? rd_mst(re, (uint32_t)mr->idx) : NULL;
			if (st) {
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
				*st = RD_MS_ADV;
				r->advs++;
			}
		} else {
			struct rd_unadv u = { htole32(c->id), htole32(c->key) };

			ret = send_msg(ep, c->kind, &u, sizeof(u));
			if (ret < 0)
				goto out;
			if (ret == 0)
				goto credit;
		}
		memmove(re->ctl, re->ctl + 1, --re->nctl * sizeof(*re->ctl));
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
	ret = rd_pump_xfers(ep);
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

const struct wp_fast_ops rd_fast = { .flush = rd_flush };

/* ---- receiving and completions ----------------------------------------- */

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
	ret = rd_post_recv(ep, i);
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
		re->sq_used--;
		rd_xfer_wc(ep, i, wc->status == IBV_WC_SUCCESS);
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
		if ((wp_txq_pending(&ep->tx) || re->xq || re->nctl || re->owed >= RD_CREDIT_AT) &&
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
			rd_take_adv(ep, re->rbuf + (size_t)i * RD_BUF, wc->byte_len);
			break;
		case RD_IMM_WRITE:
			r->writes_in++;
			break;
		case RD_IMM_UNADV:
			rd_take_unadv(ep, re->rbuf + (size_t)i * RD_BUF, wc->byte_len);
			break;
		case RD_IMM_UNADV_ACK:
			rd_take_unadv_ack(ep, re->rbuf + (size_t)i * RD_BUF, wc->byte_len);
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
	if ((wp_txq_pending(&ep->tx) || re->xq || re->nctl || re->owed >= RD_CREDIT_AT) &&
	    !ep->dirty)
		wp_ctx_mark_dirty(ep);
}

/* Completions of one endpoint: stashed ones first, then its CQ. */
int rd_poll_ep(struct wp_ep *ep)
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

/* Async events of device d: a fatal QP error or a CQ error fails its
 * connection, the port going down (or the device dying) fails every
 * connection on it, at once, rather than at the next timeout. Each event is
 * acknowledged before it is handled: destroying a QP or CQ waits for its
 * events' acknowledgements. Others (port active, GID change...) are only
 * acknowledged. librdmacm shares the device's verbs context (and so this fd)
 * among every context of the process: an event may name another context's
 * QP, so endpoints are matched by pointer in this context's list only. */
static int async_events(struct wp_ctx *ctx, int d)
{
	struct rd_ctx *r = rctx(ctx);
	struct ibv_async_event ev;
	int n = 0;

	while (ibv_get_async_event(r->dev[d].verbs, &ev) == 0) {
		enum ibv_event_type t = ev.event_type;
		struct wp_ep *one = NULL;
		int port = 0, err = 0;

		switch (t) {
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_QP_ACCESS_ERR:
			one = ev.element.qp->qp_context;
			err = t == IBV_EVENT_QP_ACCESS_ERR ? -EACCES : -EIO;
			break;
		case IBV_EVENT_CQ_ERR:
			one = ev.element.cq->cq_context;
			err = -EIO;
			break;
		case IBV_EVENT_PORT_ERR:
			port = ev.element.port_num;
			err = -ENETDOWN;
			break;
		case IBV_EVENT_DEVICE_FATAL:
			err = -ENODEV;
			break;
		default:
			break;
		}
		ibv_ack_async_event(&ev);
		n++;
		if (!err)
			continue;
		r->async_err++;
		wp_log(ctx, WP_LOG_WARN, "rdma: %s: %s; failing %s",
		       ibv_get_device_name(r->dev[d].verbs->device), ibv_event_type_str(t),
		       one ? "its connection" : "every connection on it");
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
			struct rd_ep *re = ep->bk;

			if (!re || re->di != d || !re->id || (one && ep != one) ||
			    ep->state == WP_EPS_CLOSED || ep->state == WP_EPS_LISTEN)
				continue;
			if (port && re->id->port_num && re->id->port_num != port)
				continue;
			wp_conn_fail(ep, err);
		}
	}
	return n;
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
			n += rd_poll_ep(ep);
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
		uint64_t d = r->ev[i].data.u64;

		if (d == 0)
			n += rd_cm_events(ctx);
		else if (d >= RD_EV_ASYNC)
			n += async_events(ctx, (int)(d - RD_EV_ASYNC));
		else
			cq_events(ctx, (int)d - 1);
	}
	return n;
}

/* One look at the channels (a non-blocking epoll_wait says which have
 * events), every CQ polled; then, with nothing found, arm and sleep. */
int rd_poll(struct wp_ctx *ctx, int64_t timeout_us)
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

int rd_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	return arm_all(ctx);
}

/* Input paused (receive budget): buffers that fill are parked, not
 * re-posted, so the peer's credits run out; resumed, they go back. A paused
 * listener rejects connection requests (EMFILE backoff). */
void rd_rx_pause(struct wp_ep *ep, bool pause)
{
	struct rd_ep *re = ep->bk;

	if (pause || ep->state != WP_EPS_OPEN)
		return;
	while (re->nparked) {
		int ret = rd_post_recv(ep, re->parked[--re->nparked]);

		if (ret < 0) {
			wp_conn_fail(ep, ret);
			return;
		}
		re->owed++;
	}
	if (!ep->dirty)
		wp_ctx_mark_dirty(ep);
}
