// SPDX-License-Identifier: MIT
/*
 * The ucx path's worker: the requests UCX holds, the progress round (UCX's
 * callbacks record, ucx_after acts), sleeping in epoll on the worker's event
 * fd, embedding, context set-up and teardown, and the ops table. The design
 * is described in ucx.h.
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

void ucx_req_hold(struct wp_ctx *ctx, struct ucx_req *rq, void *handle,
		  void (*abort)(struct ucx_req *))
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct ucx_req *h = &uc->inflight;

	rq->uc = uc;
	uc->held++;
	rq->handle = handle;
	rq->abort = abort;
	rq->next = h->next;
	rq->prev = h;
	h->next->prev = rq;
	h->next = rq;
}

/* The request completed: off the list; UCX gets the handle back. */
void ucx_req_done(struct ucx_req *rq)
{
	rq->prev->next = rq->next;
	rq->next->prev = rq->prev;
	rq->next = rq->prev = rq;
	rq->uc->held--;
	ucp_request_free(rq->handle);
	rq->handle = NULL;
}

int ucx_errno(ucs_status_t st)
{
	switch (st) {
	case UCS_OK:
		return 0;
	case UCS_ERR_NO_MEMORY:
		return -ENOMEM;
	case UCS_ERR_CANCELED:
		return -ECANCELED;
	case UCS_ERR_ENDPOINT_TIMEOUT:
	case UCS_ERR_TIMED_OUT:
		return -ETIMEDOUT;
	case UCS_ERR_UNREACHABLE:
		return -EHOSTUNREACH;
	case UCS_ERR_REJECTED:
		return -ECONNREFUSED;
	case UCS_ERR_BUSY:
		return -EBUSY;
	case UCS_ERR_UNSUPPORTED:
		return -EOPNOTSUPP;
	case UCS_ERR_INVALID_PARAM:
		return -EINVAL;
	case UCS_ERR_NO_DEVICE:
		return -ENODEV;
	case UCS_ERR_EXCEEDS_LIMIT:
		return -ENOBUFS;
	case UCS_ERR_CONNECTION_RESET:
	default:
		return -ECONNRESET;
	}
}

/* Act on what the callbacks recorded. Returns events handled. */
/* A connection failed (UCX's error callback, or an allocation that failed
 * inside a UCX callback): recorded, acted on by ucx_after. No allocation: the
 * list is intrusive, so a failure is never lost for lack of memory. */
void ucx_fail(struct wp_ep *ep, ucs_status_t st)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);

	if (ue->err != UCS_OK || ue->closed)
		return;
	ue->err = st;
	if (st == UCS_ERR_NO_MEMORY)
		uc->nomem++;
	if (!ue->on_failed) {
		ue->on_failed = true;
		ue->next_failed = uc->failed;
		uc->failed = ep;
		ep->io_inflight++; /* until acted on: the pointer stays valid */
	}
}

static int ucx_after(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct wp_ep *list;
	int n = 0;

	list = uc->lst_list;
	uc->lst_list = NULL;
	while (list) {
		struct wp_ep *l = list;
		struct ucx_ep *ul = uep_of(l);

		list = ul->next_lst;
		ul->on_lst = false;
		n += ucx_accept(l);
		if (ul->creq && !ul->on_lst && l->state == WP_EPS_LISTEN) { /* paused */
			ul->on_lst = true;
			ul->next_lst = uc->lst_list;
			uc->lst_list = l;
		}
	}
	/* Frames first: what the peer sent before it died is delivered. */
	list = uc->rx_list;
	uc->rx_list = NULL;
	while (list) {
		struct wp_ep *ep = list;
		struct ucx_ep *ue = uep_of(ep);

		list = ue->next_rx;
		ue->on_rx = false;
		n += ucx_rx_deliver(ep);
		if (ue->rxq && !ue->on_rx) { /* a rendezvous still arriving */
			ue->on_rx = true;
			ue->next_rx = uc->rx_list;
			uc->rx_list = ep;
		}
	}
	n += ucx_acks_flush(ctx);
	while (uc->failed) {
		struct wp_ep *ep = uc->failed;
		struct ucx_ep *ue = uep_of(ep);

		uc->failed = ue->next_failed;
		ue->on_failed = false;
		ep->io_inflight--;
		if (ue->err_seen || ep->state == WP_EPS_CLOSED)
			continue;
		ue->err_seen = true;
		n++;
		if (ue->err == UCS_ERR_NO_MEMORY)
			wp_log_rl(
				ctx, WP_RL_REFUSE, WP_LOG_ERR,
				"ucx: out of memory for a message received: closing the connection "
				"(%llu so far)",
				(unsigned long long)uc->nomem);
		else if (ue->err == UCS_ERR_EXCEEDS_LIMIT)
			wp_log_rl(
				ctx, WP_RL_BUDGET, WP_LOG_WARN,
				"ucx: receive budget (%llu bytes) spent by messages queued behind a "
				"rendezvous held back: closing the connection",
				(unsigned long long)ctx->lim.budget.limit);
		else
			wp_log(ctx, WP_LOG_INFO, "ucx: connection error: %s",
			       ucs_status_string(ue->err));
		wp_conn_fail(ep,
			     ep->state == WP_EPS_CONNECTING && (ue->err == UCS_ERR_UNREACHABLE ||
								ue->err == UCS_ERR_REJECTED ||
								ue->err == UCS_ERR_CONNECTION_RESET)
				     ? -ECONNREFUSED
				     : ucx_errno(ue->err));
	}
	return n;
}

/* Progress until UCX has nothing more, then act. */
static int ucx_progress(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	int n = 0;

	while (ucp_worker_progress(uc->w))
		n++;
	return n + ucx_after(ctx);
}

/* Did the callbacks record anything for ucx_after to act on? A
 * rendezvous still arriving is not work: its completion wakes the worker. */
static bool ucx_recorded(const struct ucx_ctx *uc)
{
	if (uc->failed || uc->acks)
		return true;
	for (const struct wp_ep *l = uc->lst_list; l; l = uep_of(l)->next_lst)
		if (uep_of(l)->creq && !l->rx_paused)
			return true;
	for (const struct wp_ep *ep = uc->rx_list; ep; ep = uep_of(ep)->next_rx)
		for (const struct ucx_rx *r = uep_of(ep)->rxq; r; r = r->next) {
			if (r == uep_of(ep)->rxq && r->ready)
				return true;
			/* Held back by the budget or UCX_RNDV_MAX: what frees
			 * room (a completion, a delivery) is work of its own. */
			if (r->kind == RX_RNDV && !r->started && ucx_rndv_room(ep->ctx, r->len))
				return true;
		}
	return false;
}

static int ucx_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	uint64_t end;
	int n, ret;
	ucs_status_t st;

	n = ucx_progress(ctx);
	if (n || timeout_us == 0)
		return n;
	if (ctx->o.busy_poll) {
		end = timeout_us < 0 ? UINT64_MAX : wp_now_ns() + (uint64_t)timeout_us * 1000;
		while (!(n = ucx_progress(ctx)) && wp_now_ns() < end)
			__builtin_ia32_pause();
		return n;
	}
	/* A rendezvous held back that now has room (a delivery freed it). */
	if (ucx_recorded(uc))
		return ucx_progress(ctx);
	if (uc->held && (timeout_us < 0 || timeout_us > UCX_HELD_WAIT_US))
		timeout_us = UCX_HELD_WAIT_US;
	/* Arm, then sleep: BUSY means events came in since the progress. */
	st = ucp_worker_arm(uc->w);
	if (st == UCS_ERR_BUSY)
		return ucx_progress(ctx);
	if (st != UCS_OK)
		return ucx_errno(st);
	ret = wp_epoll_wait(ctx, uc->ev, UCX_EVENTS, timeout_us);
	if (ret < 0)
		return ret;
	return ucx_progress(ctx);
}

/* Embedding: never act here (no callback may run inside wp_ctx_arm):
 * progress UCX, whose callbacks only record, and say -EAGAIN if they did. */
static int ucx_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	ucs_status_t st;
	int n = 0;

	while (ucp_worker_progress(uc->w))
		n++;
	if (n || ucx_recorded(uc))
		return -EAGAIN;
	st = ucp_worker_arm(uc->w);
	if (st == UCS_ERR_BUSY)
		return -EAGAIN;
	if (uc->held && timeout_us && (*timeout_us < 0 || *timeout_us > UCX_HELD_WAIT_US))
		*timeout_us = UCX_HELD_WAIT_US;
	return st == UCS_OK ? 0 : ucx_errno(st);
}

static int ucx_init(struct wp_ctx *ctx)
{
	ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
				   .thread_mode = UCS_THREAD_MODE_SINGLE };
	struct ucx_ctx *uc;
	char why[160];
	ucs_status_t st;
	int ret;

	ret = wp_epoll_bk_init(ctx, sizeof(struct ucx_ctx));
	if (ret < 0)
		return ret;
	uc = uctx_of(ctx);
	uc->efd = -1;
	uc->inflight.next = uc->inflight.prev = &uc->inflight;
	snprintf(uc->need, sizeof(uc->need), "%s", ctx->o.ucx_need);
	/*
	 * UCP's software RMA (its put/get handlers over tcp or shared memory)
	 * writes and reads wherever a peer says, checking no rkey: it is
	 * registered only with UCP_FEATURE_RMA. So RMA is on only where the
	 * user trusts peers with this process's memory (ucx_trust_rma), or
	 * where UCX has verbs transports, whose rkeys the NIC checks; then
	 * each connection uses RMA only if all its rma lanes are verbs
	 * (ucx_rma_ok), and bulk transfers go as frames otherwise.
	 */
	uc->trust_rma = ctx->o.ucx_trust_rma;
	uc->rma = uc->trust_rma;
	ret = ucx_open(&uc->uctx,
		       UCP_FEATURE_AM | UCP_FEATURE_WAKEUP | (uc->rma ? UCP_FEATURE_RMA : 0), why,
		       sizeof(why));
	if (ret == 0 && !uc->rma && ucx_has_verbs(uc->uctx)) {
		ucp_cleanup(uc->uctx);
		uc->rma = true;
		ret = ucx_open(&uc->uctx, UCP_FEATURE_AM | UCP_FEATURE_WAKEUP | UCP_FEATURE_RMA,
			       why, sizeof(why));
	}
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "ucx: %s", why);
		goto out_epoll;
	}
	st = ucp_worker_create(uc->uctx, &wp, &uc->w);
	if (st != UCS_OK) {
		wp_log(ctx, WP_LOG_ERR, "ucx: ucp_worker_create: %s", ucs_status_string(st));
		ret = ucx_errno(st);
		goto out_cleanup;
	}
	for (unsigned id = 0; id < UCX_AM__COUNT; id++) {
		ucp_am_handler_param_t ah = { .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
							    UCP_AM_HANDLER_PARAM_FIELD_CB |
							    UCP_AM_HANDLER_PARAM_FIELD_ARG |
							    UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
					      .id = id,
					      .flags = UCP_AM_FLAG_WHOLE_MSG,
					      .cb = ucx_am_cbs[id],
					      .arg = ctx };

		st = ucp_worker_set_am_recv_handler(uc->w, &ah);
		if (st != UCS_OK) {
			wp_log(ctx, WP_LOG_ERR, "ucx: ucp_worker_set_am_recv_handler: %s",
			       ucs_status_string(st));
			ret = ucx_errno(st);
			goto out_worker;
		}
	}
	st = ucp_worker_get_efd(uc->w, &uc->efd);
	if (st != UCS_OK) {
		wp_log(ctx, WP_LOG_ERR, "ucx: ucp_worker_get_efd: %s", ucs_status_string(st));
		ret = ucx_errno(st);
		goto out_worker;
	}
	ret = wp_epoll_ctl(ctx, EPOLL_CTL_ADD, uc->efd, EPOLLIN, 0);
	if (ret < 0)
		goto out_worker;
	return 0;

out_worker:
	ucp_worker_destroy(uc->w);
out_cleanup:
	ucp_cleanup(uc->uctx);
out_epoll:
	wp_epoll_bk_fini(ctx);
	return ret;
}

static void ucx_fini(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	uint64_t end = wp_now_ns() + UCX_CLOSE_WAIT_NS;
	bool busy;

	if (!uc)
		return;
	/* Closes and sends still in flight: at most 1 s, as on uring. */
	do {
		busy = false;
		while (ucp_worker_progress(uc->w))
			;
		while (uc->failed) {
			struct ucx_ep *ue = uep_of(uc->failed);

			uc->failed->io_inflight--;
			ue->on_failed = false;
			uc->failed = ue->next_failed;
		}
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
			struct ucx_ep *ue = uep_of(ep);

			if ((ue->uep && !ue->closed) || ue->lst) {
				ue->err = UCS_ERR_CANCELED;
				ucx_close(ep);
			}
			busy |= ep->io_inflight != 0;
		}
	} while (busy && wp_now_ns() < end);
	if (busy)
		wp_log(ctx, WP_LOG_WARN,
		       "ucx: requests still in flight after 1 s at destroy: aborted");
	while (uc->inflight.next != &uc->inflight)
		uc->inflight.next->abort(uc->inflight.next);
	wp_ctx_run_deferred(ctx);
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		ucx_ep_release(ep); /* the rkeys: destroyed now that no RMA is pending */
	while (uc->acks) {          /* nobody to tell any more */
		struct ucx_rrkey *r = uc->acks;

		uc->acks = r->next;
		free(r);
	}
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		uep_of(ep)->uep = NULL;
		ep->io_inflight = 0;
	}
	wp_epoll_ctl(ctx, EPOLL_CTL_DEL, uc->efd, 0, 0);
	ucp_worker_destroy(uc->w);
	for (uint32_t i = 0; i < uc->nmh; i++) {
		if (uc->mh[i].rkey_buf)
			ucp_rkey_buffer_release(uc->mh[i].rkey_buf);
		if (uc->mh[i].memh)
			ucp_mem_unmap(uc->uctx, uc->mh[i].memh);
	}
	ucp_cleanup(uc->uctx);
	free(uc->mh);
	while (uc->sfree) {
		struct ucx_sreq *s = uc->sfree;

		uc->sfree = s->next;
		free(s);
	}
	wp_epoll_bk_fini(ctx);
}

const struct wp_backend_ops wp_ucx_ops = {
	.name = "ucx",
	.caps = WP_CAP_BUSY_POLL,
	.fast = &ucx_fast,
	.available = ucx_available,
	.probe = ucx_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = ucx_init,
	.fini = ucx_fini,
	.listen = ucx_listen,
	.connect = ucx_connect,
	.close = ucx_close,
	.poll = ucx_poll,
	.explain = ucx_explain,
	.mem_register = ucx_mem_register,
	.mem_unregister = ucx_mem_unregister,
	.ep_size = sizeof(struct ucx_ep),
	.ep_init = ucx_ep_init,
	.ep_free = ucx_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = ucx_mr_exported,
	.xfer_direct = ucx_xfer_direct,
	.pools = wp_no_pools,
	.rx_pause = ucx_rx_pause,
	.fd = wp_epoll_fd, /* the worker's efd is in it */
	.arm = ucx_arm,
};
