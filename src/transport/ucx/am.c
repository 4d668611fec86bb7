// SPDX-License-Identifier: MIT
/*
 * Frames as UCP active messages: sending (the wire header as the AM header),
 * receiving (held in place, copied, or a rendezvous received into a buffer
 * of the validated length) and delivery per connection in arrival order.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "ucx.h"

static void ucx_rx_push(struct wp_ep *ep, struct ucx_rx *r)
{
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_ctx *uc = uctx_of(ep->ctx);

	r->ep = ep;
	if (!ue->rxq_tail)
		ue->rxq_tail = &ue->rxq;
	*ue->rxq_tail = r;
	ue->rxq_tail = &r->next;
	if (!ue->on_rx) {
		ue->on_rx = true;
		ue->next_rx = uc->rx_list;
		uc->rx_list = ep;
	}
}

/* ---- the receive budget ------------------------------------------------- */

/*
 * Receive memory is charged to the context's budget (wp_ctx_opts.rx_budget,
 * shared with nothing else on this path): a rendezvous receive's buffer
 * while it lives, and the copies of messages UCX cannot keep. A rendezvous
 * waits for room (its data stays with the sender: back-pressure); a copy
 * cannot wait (the data is gone after the callback), so a copy with no room
 * closes its connection: only a peer that keeps sending behind a rendezvous
 * held back gets there.
 */
static bool rx_claim(struct wp_ctx *ctx, struct ucx_rx *r, size_t len, uint64_t lim)
{
	struct wp_rx_budget *b = &ctx->lim.budget;

	if (b->claimed + len > lim)
		return false;
	b->claimed += len;
	b->used += len;
	r->claim = (uint32_t)len;
	return true;
}

static void rx_unclaim(struct wp_ctx *ctx, struct ucx_rx *r)
{
	struct wp_rx_budget *b = &ctx->lim.budget;

	if (!r->claim)
		return;
	b->claimed -= r->claim;
	b->used -= r->claim;
	b->freed++;
	r->claim = 0;
}

/* May a rendezvous receive of len bytes be posted now? */
bool ucx_rndv_room(struct wp_ctx *ctx, size_t len)
{
	const struct wp_rx_budget *b = &ctx->lim.budget;

	if (uctx_of(ctx)->rndv_posted >= UCX_RNDV_MAX)
		return false;
	return b->claimed + len <= (len > WP_RX_SMALL ? b->big_limit : b->limit);
}

void ucx_rx_release(struct ucx_ctx *uc, struct ucx_rx *r)
{
	if (r->ep)
		rx_unclaim(r->ep->ctx, r);
	if (r->kind == RX_HELD && r->len)
		ucp_am_data_release(uc->w, r->data);
	else if (r->kind == RX_RNDV && !r->started && r->data)
		ucp_am_data_release(uc->w, r->data); /* drops the rendezvous */
	free(r->buf);
	free(r);
}

/* ---- sending ------------------------------------------------------------ */

static struct ucx_sreq *sreq_get(struct ucx_ctx *uc)
{
	struct ucx_sreq *s = uc->sfree;

	if (s) {
		uc->sfree = s->next;
		return s;
	}
	return malloc(sizeof(*s));
}

static void sreq_put(struct ucx_ctx *uc, struct ucx_sreq *s)
{
	free(s->blob);
	s->blob = NULL;
	s->next = uc->sfree;
	uc->sfree = s;
}

static void ucx_send_cb(void *request, ucs_status_t status, void *user_data)
{
	struct ucx_sreq *s = user_data;
	struct wp_ep *ep = s->ep;

	ep->io_inflight--;
	if (s->done)
		wp_defer(ep->ctx, s->done, s->arg, ucx_errno(status));
	ucx_req_done(&s->rq);
	sreq_put(uctx_of(ep->ctx), s);
}

static void ucx_send_abort(struct ucx_req *rq)
{
	ucx_send_cb(rq->handle, UCS_ERR_CANCELED, ucx_container(rq, struct ucx_sreq, rq));
}

/* One active message: header (copied into the request) and data (the
 * caller's until done runs). Returns 0 (done deferred, or runs at the
 * completion) or -errno (nothing taken). */
static int ucx_am_send(struct wp_ep *ep, unsigned id, const void *hdr, size_t hlen,
		       const void *data, size_t len, wp_done_fn done, void *arg, void *blob)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_sreq *s;
	ucs_status_ptr_t p;
	ucp_request_param_t rp = {
		.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
				UCP_OP_ATTR_FIELD_FLAGS,
		.cb.send = ucx_send_cb,
		.flags = UCP_AM_SEND_FLAG_REPLY,
	};

	if (!ue->uep || ue->closed || ue->err != UCS_OK)
		return -ENOTCONN;
	s = sreq_get(uc);
	if (!s)
		return -ENOMEM;
	s->ep = ep;
	s->done = done;
	s->arg = arg;
	s->blob = blob;
	if (hlen)
		memcpy(s->hdr, hdr, hlen);
	rp.user_data = s;
	p = ucp_am_send_nbx(ue->uep, id, hlen ? s->hdr : NULL, hlen, data, len, &rp);
	if (p == NULL) {
		if (done)
			wp_defer(ep->ctx, done, arg, 0);
		sreq_put(uc, s);
		return 0;
	}
	if (UCS_PTR_IS_ERR(p)) {
		s->blob = NULL; /* the caller still owns it */
		sreq_put(uc, s);
		return ucx_errno(UCS_PTR_STATUS(p));
	}
	ucx_req_hold(ep->ctx, &s->rq, p, ucx_send_abort);
	ep->io_inflight++;
	return 0;
}

/* A control message whose bytes are copied (the copy freed at completion). */
int ucx_ctl_send(struct wp_ep *ep, unsigned id, const void *a, size_t alen, const void *b,
		 size_t blen)
{
	uint8_t *blob = malloc(alen + blen + 1);
	int ret;

	if (!blob)
		return -ENOMEM;
	if (alen)
		memcpy(blob, a, alen);
	if (blen)
		memcpy(blob + alen, b, blen);
	ret = ucx_am_send(ep, id, NULL, 0, blob, alen + blen, NULL, NULL, blob);
	if (ret < 0)
		free(blob);
	return ret;
}

static int ucx_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		    wp_done_fn done, void *arg)
{
	uint8_t hdr[WP_FRAME_HDR];
	bool copied = false;
	int ret;

	/* Without a completion the payload is copied now (counted): UCX may
	 * still read it after this call returns. */
	if (!done && len) {
		ret = wp_payload_copy(&data, len, &done, &arg);
		if (ret < 0)
			return ret;
		copied = true;
	}
	{
		struct wp_frame_hdr hh = *h;

		hh.len = (uint32_t)len;
		if (!hh.tenant)
			hh.tenant = ep->tenant;
		wp_frame_encode(&hh, hdr);
	}
	ret = ucx_am_send(ep, UCX_AM_FRAME, hdr, sizeof(hdr), data, len, done, arg, NULL);
	if (ret < 0 && copied)
		wp_copy_done(arg, ret);
	if (ret == 0) {
		WP_CNT_ADD(msgs_tx, 1);
		WP_CNT_ADD(bytes_tx, WP_FRAME_HDR + len);
	}
	return ret;
}

/* Sends go to UCX at once (ucx_send): nothing waits for a burst. */
static void ucx_flush(struct wp_ep *ep)
{
}

const struct wp_fast_ops ucx_fast = { .send = ucx_send, .flush = ucx_flush };

/* ---- receiving ---------------------------------------------------------- */

/* Copy a message UCX cannot leave with us, charged to the receive budget;
 * without room or memory the connection fails (false: r is released). */
static bool rx_copy(struct wp_ctx *ctx, struct wp_ep *ep, struct ucx_rx *r, const void *data,
		    size_t len)
{
	if (!rx_claim(ctx, r, len, ctx->lim.budget.limit) || !(r->buf = malloc(len))) {
		ucx_fail(ep, r->claim ? UCS_ERR_NO_MEMORY : UCS_ERR_EXCEEDS_LIMIT);
		ucx_rx_release(uctx_of(ctx), r);
		return false;
	}
	memcpy(r->buf, data, len);
	r->data = r->buf;
	return true;
}

static ucs_status_t ucx_am_cb(struct wp_ctx *ctx, unsigned id, const void *header, size_t hlen,
			      void *data, size_t len, const ucp_am_recv_param_t *param)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	bool rndv = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
	bool held = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_DATA;
	ucp_ep_h reply = param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP ? param->reply_ep
									    : NULL;
	struct wp_ep *ep = ucx_find(ctx, reply);
	struct ucx_rx *r;

	if (!ep || ep->state == WP_EPS_CLOSED || ep->state == WP_EPS_LISTEN)
		return rndv ? UCS_ERR_CANCELED : UCS_OK; /* dropped */
	if (id == UCX_AM_UNEXPORT_ACK) {
		/* Only counted here: ucx_mem_unregister progresses the worker
		 * (not ucx_after) while it waits for these. */
		if (!rndv && len == sizeof(struct ucx_rkey_msg) && uep_of(ep)->acks_owed)
			uep_of(ep)->acks_owed--;
		return rndv ? UCS_ERR_UNSUPPORTED : UCS_OK;
	}
	if ((id == UCX_AM_RKEY || id == UCX_AM_UNEXPORT) &&
	    (rndv || len < sizeof(struct ucx_rkey_msg) ||
	     len - sizeof(struct ucx_rkey_msg) > UCX_RKEY_MAX)) {
		wp_log_rl(ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "ucx: malformed region announcement (%zu bytes) ignored", len);
		return rndv ? UCS_ERR_UNSUPPORTED : UCS_OK;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		/* Never a silent drop: the connection fails (ucx_after). */
		ucx_fail(ep, UCS_ERR_NO_MEMORY);
		return rndv ? UCS_ERR_NO_MEMORY : UCS_OK;
	}
	uc->am_rx++;
	if (id == UCX_AM_RKEY || id == UCX_AM_UNEXPORT) {
		/* In order with HELLO: a connector decides whether it uses RMA
		 * when HELLO is delivered, and announcements may follow it
		 * within one progress. */
		r->kind = RX_CTL;
		r->reason = (int)id;
		r->ep = ep;
		if (!rx_copy(ctx, ep, r, data, len))
			return UCS_OK;
		r->len = len;
		r->ready = true;
		ucx_rx_push(ep, r);
		return UCS_OK;
	}
	if (id == UCX_AM_HELLO || id == UCX_AM_BYE) {
		r->kind = id == UCX_AM_HELLO ? RX_HELLO : RX_BYE;
		r->ready = true;
		ucx_rx_push(ep, r);
		return rndv ? UCS_ERR_UNSUPPORTED : UCS_OK;
	}
	if (hlen != WP_FRAME_HDR) {
		r->kind = RX_BAD;
		r->reason = WP_BAD_MAGIC;
	} else {
		int reason = 0, n = wp_frame_decode(header, hlen, ctx->o.max_frame, &r->h, &reason);

		if (n != (int)WP_FRAME_HDR || r->h.len != len) {
			r->kind = RX_BAD;
			r->reason = n < 0 ? reason : WP_BAD_TRUNCATED;
		}
	}
	if (r->kind == RX_BAD) {
		r->ready = true;
		ucx_rx_push(ep, r);
		return rndv ? UCS_ERR_REJECTED : UCS_OK;
	}
	r->len = len;
	if (rndv) {
		/* Received after progress returns, into a buffer of the
		 * validated length (ucx_rx_start). */
		r->kind = RX_RNDV;
		r->data = data;
		uc->am_rndv++;
		ucx_rx_push(ep, r);
		return UCS_INPROGRESS;
	}
	r->ready = true;
	if (held || !len) {
		static uint8_t empty[1];

		r->kind = RX_HELD;
		/* An empty payload still points somewhere, as on every path. */
		r->data = len ? data : empty;
		uc->am_held += len != 0;
		ucx_rx_push(ep, r);
		return len ? UCS_INPROGRESS : UCS_OK;
	}
	/* UCX cannot keep this data past the callback: copy it (counted). */
	r->kind = RX_COPY;
	r->ep = ep;
	if (!rx_copy(ctx, ep, r, data, len))
		return UCS_OK;
	WP_CNT_ADD(bytes_copied, len);
	uc->am_copied += len;
	ucx_rx_push(ep, r);
	return UCS_OK;
}

#define UCX_AM_HANDLER(n)                                                                         \
	static ucs_status_t ucx_am_cb_##n(void *arg, const void *header, size_t hlen, void *data, \
					  size_t len, const ucp_am_recv_param_t *param)           \
	{                                                                                         \
		return ucx_am_cb(arg, n, header, hlen, data, len, param);                         \
	}
UCX_AM_HANDLER(0)
UCX_AM_HANDLER(1)
UCX_AM_HANDLER(2)
UCX_AM_HANDLER(3)
UCX_AM_HANDLER(4)
UCX_AM_HANDLER(5)
const ucp_am_recv_callback_t ucx_am_cbs[UCX_AM__COUNT] = {
	ucx_am_cb_0, ucx_am_cb_1, ucx_am_cb_2, ucx_am_cb_3, ucx_am_cb_4, ucx_am_cb_5,
};

static void ucx_rndv_cb(void *request, ucs_status_t status, size_t length, void *user_data)
{
	struct ucx_rx *r = user_data;

	r->ep->io_inflight--;
	uctx_of(r->ep->ctx)->rndv_posted--;
	r->ready = true;
	r->status = ucx_errno(status);
	ucx_req_done(&r->rq);
	if (r->orphan) { /* UCX is done with buf only now */
		rx_unclaim(r->ep->ctx, r);
		free(r->buf);
		free(r);
	}
}

static void ucx_rndv_abort(struct ucx_req *rq)
{
	ucx_rndv_cb(rq->handle, UCS_ERR_CANCELED, 0, ucx_container(rq, struct ucx_rx, rq));
}

/* Post the rendezvous receives queued on ep, in order, while the receive
 * budget has room and fewer than UCX_RNDV_MAX are posted; the rest wait
 * (UCX keeps their descriptors, the senders their data). */
static void ucx_rx_start(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);

	for (struct ucx_rx *r = uep_of(ep)->rxq; r; r = r->next) {
		ucp_request_param_t rp = { .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
							   UCP_OP_ATTR_FIELD_USER_DATA,
					   .cb.recv_am = ucx_rndv_cb,
					   .user_data = r };
		ucs_status_ptr_t sp;

		if (r->kind != RX_RNDV || r->started)
			continue;
		if (!ucx_rndv_room(ep->ctx, r->len)) {
			if (!r->waited)
				uc->rndv_waits++;
			r->waited = true;
			break;
		}
		r->started = true;
		rx_claim(ep->ctx, r, r->len, UINT64_MAX); /* room checked above */
		r->buf = malloc(r->len);
		if (!r->buf) {
			ucp_am_data_release(uc->w, r->data); /* drops it */
			uc->nomem++;
			r->status = -ENOMEM; /* the connection fails, logged */
			r->ready = true;
			continue;
		}
		sp = ucp_am_recv_data_nbx(uc->w, r->data, r->buf, r->len, &rp);
		r->data = r->buf; /* UCX owns the descriptor now */
		if (sp == NULL) {
			r->ready = true;
		} else if (UCS_PTR_IS_ERR(sp)) {
			r->status = ucx_errno(UCS_PTR_STATUS(sp));
			r->ready = true;
		} else {
			ucx_req_hold(ep->ctx, &r->rq, sp, ucx_rndv_abort);
			ep->io_inflight++;
			uc->rndv_posted++;
		}
	}
}

/* Deliver what is ready on ep, in order. */
int ucx_rx_deliver(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_rx *r;
	int n = 0;

	ucx_rx_start(ep);
	while ((r = ue->rxq) && r->ready) {
		ue->rxq = r->next;
		if (!ue->rxq)
			ue->rxq_tail = &ue->rxq;
		n++;
		if (ep->state == WP_EPS_CLOSED) {
			/* dropped with the connection */
		} else if (r->kind == RX_HELLO) {
			bool first = ep->state == WP_EPS_CONNECTING;
			int err = first ? ucx_up(ep) : 0;

			if (err)
				wp_conn_fail(ep, err);
			else if (first)
				ucx_announce(ep);
		} else if (r->kind == RX_BYE) {
			/* Before HELLO: the acceptor refused us (ucx_need). */
			wp_conn_fail(ep, ep->state == WP_EPS_CONNECTING ? -ECONNREFUSED : 0);
		} else if (r->kind == RX_CTL) {
			ucx_rkey_rx(ep, (unsigned)r->reason, r->data, r->len);
		} else if (r->kind == RX_BAD) {
			wp_conn_refuse(ep, r->reason, -EPROTO, "ucx: bad frame header from peer");
		} else if (r->status) {
			wp_log(ep->ctx, WP_LOG_WARN, "ucx: rendezvous receive of %zu bytes: %s",
			       r->len, strerror(-r->status));
			wp_conn_fail(ep, r->status);
		} else {
			ep->partial_since = 0;
			WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + r->len);
			wp_conn_deliver(ep, &r->h, r->data);
		}
		ucx_rx_release(uc, r);
	}
	return n;
}
