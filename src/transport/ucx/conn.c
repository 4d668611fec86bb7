// SPDX-License-Identifier: MIT
/*
 * The ucx path's connections: listeners (connection requests queued by
 * UCX's callback, accepted after progress), connectors, the error callback,
 * a connection coming up (lanes held to ucx_need, rkeys announced) and
 * closing (orderly BYE, cancelled rendezvous receives).
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

/* ---- endpoint lookup and bookkeeping ----------------------------------- */

/* The endpoint a message came from (its reply ep), or NULL. */
struct wp_ep *ucx_find(struct wp_ctx *ctx, ucp_ep_h uep)
{
	struct ucx_ctx *uc = uctx_of(ctx);

	if (!uep)
		return NULL;
	if (uc->last_uep == uep && uc->last_ep)
		return uc->last_ep;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (uep_of(ep)->uep == uep && !uep_of(ep)->closed) {
			uc->last_uep = uep;
			uc->last_ep = ep;
			return ep;
		}
	return NULL;
}

/* The connection is up: see what UCX chose, hold it to ucx_need, decide
 * whether it uses RMA. Returns 0, or -EPROTONOSUPPORT (the caller fails
 * the connection). */
int ucx_up(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;
	struct ucx_ep *ue = uep_of(ep);
	char bad[32], why[200];

	ucx_lanes(ep);
	if (!ucx_need_met(ctx, ue, bad, sizeof(bad))) {
		if (ctx->o.select == WP_SELECT_REQUIRE) {
			wp_log(ctx, WP_LOG_ERR,
			       "ucx: UCX put this connection on %s (lanes: %s) but ucx_need=%s is "
			       "required (select=require): refusing it",
			       bad, ue->lanes, uctx_of(ctx)->need);
			return -EPROTONOSUPPORT;
		}
		wp_log(ctx, WP_LOG_WARN,
		       "ucx: UCX put this connection on %s (lanes: %s), not on ucx_need=%s; "
		       "keeping it (select=%s)",
		       bad, ue->lanes, uctx_of(ctx)->need,
		       ctx->o.select == WP_SELECT_PREFER ? "prefer" : "any");
	}
	/* Decided once, before any rkey is announced on it. */
	ue->rma_ok = ucx_rma_ok(ctx, ue, why, sizeof(why));
	wp_log(ctx, WP_LOG_DEBUG, "ucx: bulk transfers on this connection: %s", why);
	wp_conn_established(ep);
	return 0;
}

/* Announce our exported regions on a connection that uses RMA. After HELLO
 * on the wire: the connector decides whether it uses RMA when HELLO is
 * delivered, and takes announcements only from then on. */
void ucx_announce(struct wp_ep *ep)
{
	for (struct wp_mr *mr = ep->ctx->mrs; mr && ucx_ep_live(ep) && uep_of(ep)->rma_ok;
	     mr = mr->next)
		if (mr->exported)
			ucx_send_rkey(ep, mr);
}

/* ---- connections -------------------------------------------------------- */

/* Listener l has connection requests for ucx_after (any number of
 * listeners: the list is intrusive). */
static void ucx_lst_mark(struct ucx_ctx *uc, struct wp_ep *l)
{
	struct ucx_ep *ul = uep_of(l);

	if (ul->on_lst)
		return;
	ul->on_lst = true;
	ul->next_lst = uc->lst_list;
	uc->lst_list = l;
}

static void ucx_err_cb(void *arg, ucp_ep_h uep, ucs_status_t status)
{
	ucx_fail(arg, status);
}

static ucp_ep_params_t ep_params(struct wp_ep *ep)
{
	return (ucp_ep_params_t){
		.field_mask = UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER,
		.err_mode = UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = { .cb = ucx_err_cb, .arg = ep },
	};
}

static void ucx_conn_cb(ucp_conn_request_h req, void *arg)
{
	struct wp_ep *l = arg;
	struct ucx_ep *ul = uep_of(l);
	struct ucx_ctx *uc = uctx_of(l->ctx);
	struct ucx_connreq *c;

	if (ul->ncreq >= UCX_CONNREQ_MAX || !(c = calloc(1, sizeof(*c)))) {
		ucp_listener_reject(ul->lst, req);
		wp_log_rl(l->ctx, WP_RL_ACCEPT, WP_LOG_WARN,
			  "ucx: %u connection requests waiting: one rejected", ul->ncreq);
		return;
	}
	c->req = req;
	if (!ul->creq_tail)
		ul->creq_tail = &ul->creq;
	*ul->creq_tail = c;
	ul->creq_tail = &c->next;
	ul->ncreq++;
	ucx_lst_mark(uc, l);
}

int ucx_accept(struct wp_ep *l)
{
	struct ucx_ep *ul = uep_of(l);
	struct ucx_connreq *c;
	int n = 0;

	while (!l->rx_paused && l->state == WP_EPS_LISTEN && (c = ul->creq)) {
		ucp_conn_request_attr_t ca = { .field_mask =
						       UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR };
		struct wp_admit adm;
		ucp_ep_params_t p;
		struct wp_ep *ep;
		ucs_status_t st;
		bool have_addr;
		int ret;

		ul->creq = c->next;
		if (!ul->creq)
			ul->creq_tail = &ul->creq;
		ul->ncreq--;
		n++;
		have_addr = ucp_conn_request_query(c->req, &ca) == UCS_OK;
		if (wp_conn_admit(l->ctx, have_addr ? (struct sockaddr *)&ca.client_address : NULL,
				  have_addr ? sizeof(ca.client_address) : 0, &adm) < 0) {
			ucp_listener_reject(ul->lst, c->req);
			free(c);
			continue;
		}
		ep = wp_ep_alloc(l->ctx, &l->cbs);
		if (!ep) {
			ucp_listener_reject(ul->lst, c->req);
			free(c);
			wp_accept_error(l, -ENOMEM);
			continue;
		}
		ep->accepted = true;
		wp_conn_admitted(ep, &adm);
		p = ep_params(ep);
		p.field_mask |= UCP_EP_PARAM_FIELD_CONN_REQUEST;
		p.conn_request = c->req;
		free(c);
		st = ucp_ep_create(uctx_of(l->ctx)->w, &p, &uep_of(ep)->uep);
		if (st != UCS_OK) {
			uep_of(ep)->uep = NULL;
			wp_log_rl(l->ctx, WP_RL_ACCEPT, WP_LOG_WARN,
				  "ucx: ucp_ep_create (accept): %s", ucs_status_string(st));
			wp_ep_accept_failed(ep, ucx_errno(st));
			continue;
		}
		wp_accept_ok(l);
		/* The connector's CONNECTED waits for HELLO. */
		ret = ucx_up(ep);
		if (!ret)
			ret = ucx_ctl_send(ep, UCX_AM_HELLO, NULL, 0, NULL, 0);
		if (ret < 0)
			wp_ep_accept_failed(ep, ret);
		else
			ucx_announce(ep);
	}
	return n;
}

static void ucx_close_cb(void *request, ucs_status_t status, void *user_data)
{
	struct wp_ep *ep = user_data;

	ep->io_inflight--;
	ucx_req_done(&uep_of(ep)->close_rq);
}

static void ucx_close_abort(struct ucx_req *rq)
{
	ucx_close_cb(rq->handle, UCS_ERR_CANCELED, ucx_container(rq, struct ucx_ep, close_rq)->ep);
}

/* Everything ep holds from UCX but its ucp endpoint: queued messages,
 * rkeys, waiting connection requests. Idempotent. */
void ucx_ep_release(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);

	if (!uc)
		return;
	while (ue->rxq) {
		struct ucx_rx *r = ue->rxq;

		ue->rxq = r->next;
		if (r->kind == RX_RNDV && r->started && !r->ready) {
			/* A rendezvous receive in flight: UCX writes into r->buf
			 * until its callback runs. Cancel it; the callback frees
			 * both (the endpoint stays until then: io_inflight). */
			r->orphan = true;
			ucp_request_cancel(uc->w, r->rq.handle);
			continue;
		}
		ucx_rx_release(uc, r);
	}
	ue->rxq_tail = &ue->rxq;
	while (ue->rkeys)
		ucx_rrkey_drop(ue, ue->rkeys->id, false);
	ue->acks_owed = 0;
	while (ue->creq) {
		struct ucx_connreq *c = ue->creq;

		ue->creq = c->next;
		if (ue->lst)
			ucp_listener_reject(ue->lst, c->req);
		free(c);
	}
	ue->creq_tail = &ue->creq;
	ue->ncreq = 0;
}

void ucx_close(struct wp_ep *ep)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);

	if (uc->last_ep == ep)
		uc->last_ep = NULL;
	if (ue->on_rx) { /* freed once its owner lets go: off the list now */
		for (struct wp_ep **pp = &uc->rx_list; *pp; pp = &uep_of(*pp)->next_rx)
			if (*pp == ep) {
				*pp = ue->next_rx;
				break;
			}
		ue->on_rx = false;
	}
	if (ue->lst) {
		ucx_ep_release(ep); /* rejects the waiting requests */
		ucp_listener_destroy(ue->lst);
		ue->lst = NULL;
		if (ue->on_lst) {
			for (struct wp_ep **pp = &uc->lst_list; *pp; pp = &uep_of(*pp)->next_lst)
				if (*pp == ep) {
					*pp = ue->next_lst;
					break;
				}
			ue->on_lst = false;
		}
	}
	if (ue->uep && !ue->closed) {
		bool force = ue->err != UCS_OK;
		ucp_request_param_t rp = {
			.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
					UCP_OP_ATTR_FIELD_FLAGS,
			.cb.send = ucx_close_cb,
			.user_data = ep,
			.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
		};
		ucs_status_ptr_t sp;

		/* Orderly: the peer sees EOF after what we sent. */
		if (!force && ep->state != WP_EPS_CONNECTING)
			ucx_ctl_send(ep, UCX_AM_BYE, NULL, 0, NULL, 0);
		/* Messages queued but not delivered go now, while the worker
		 * that holds their data is sure to exist. */
		ucx_ep_release(ep);
		ue->closed = true;
		sp = ucp_ep_close_nbx(ue->uep, &rp);
		if (sp && !UCS_PTR_IS_ERR(sp)) {
			ucx_req_hold(ep->ctx, &ue->close_rq, sp, ucx_close_abort);
			ep->io_inflight++;
		}
	}
}

void ucx_ep_init(struct wp_ep *ep)
{
	struct ucx_ep *ue = uep_of(ep);

	ue->rxq_tail = &ue->rxq;
	ue->creq_tail = &ue->creq;
	ue->ep = ep;
}

void ucx_ep_free(struct wp_ep *ep)
{
	struct ucx_ep *ue = uep_of(ep);

	if (ep->ctx->bk && !ue->closed && (ue->uep || ue->lst))
		ucx_close(ep); /* a failed listen or connect */
	if (ep->ctx->bk)
		ucx_ep_release(ep);
}

int ucx_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	ucp_listener_params_t lp = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.sockaddr = { .addr = sa, .addrlen = salen },
		.conn_handler = { .cb = ucx_conn_cb, .arg = ep },
	};
	ucp_listener_attr_t la = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
	ucs_status_t st;

	if (ep->ctx->guard) {
		wp_log(ep->ctx, WP_LOG_ERR,
		       "ucx: authentication v2 runs on the stream paths; ucx has no records");
		return -EOPNOTSUPP;
	}
	st = ucp_listener_create(uc->w, &lp, &ue->lst);
	if (st != UCS_OK) {
		ue->lst = NULL;
		return st == UCS_ERR_BUSY ? -EADDRINUSE : ucx_errno(st);
	}
	if (ucp_listener_query(ue->lst, &la) == UCS_OK)
		ep->local_port = ntohs(la.sockaddr.ss_family == AF_INET6
					       ? ((struct sockaddr_in6 *)&la.sockaddr)->sin6_port
					       : ((struct sockaddr_in *)&la.sockaddr)->sin_port);
	ep->state = WP_EPS_LISTEN;
	return 0;
}

int ucx_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	ucp_ep_params_t p = ep_params(ep);
	ucs_status_t st;

	p.field_mask |= UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
	p.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
	p.sockaddr.addr = sa;
	p.sockaddr.addrlen = salen;
	st = ucp_ep_create(uc->w, &p, &uep_of(ep)->uep);
	if (st != UCS_OK) {
		uep_of(ep)->uep = NULL;
		return ucx_errno(st);
	}
	ep->state = WP_EPS_CONNECTING; /* open at the acceptor's HELLO */
	return 0;
}

void ucx_rx_pause(struct wp_ep *ep, bool pause)
{
	/* Listeners only: connection requests wait in our queue (UCX keeps
	 * them) until accepting resumes. Frames arrive whole (no assembly
	 * memory); the one large allocation, a rendezvous receive, waits for
	 * room in the receive budget by itself (ucx_rx_start). */
	if (ep->state == WP_EPS_LISTEN && !pause && uep_of(ep)->creq)
		ucx_lst_mark(uctx_of(ep->ctx), ep);
}
