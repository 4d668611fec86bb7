// SPDX-License-Identifier: MIT
/*
 * The rdma path's connections, through rdma_cm: listen, connect, accept (with
 * the connection limits), the RC QP and its registered buffers, the hello in
 * the private data, the cm events, close and teardown.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rdma.h"

/* ---- connection set-up ------------------------------------------------ */

void rd_ep_init(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	re->di = -1;
	re->xq_tail = &re->xq;
}

/* Registering pins pages, counted against RLIMIT_MEMLOCK (unless the
 * process has CAP_IPC_LOCK): say so, with the numbers, rather than a bare
 * ENOMEM at the owner's close callback. */
static int pin_failed(struct wp_ep *ep)
{
	int err = errno ? errno : ENOMEM;
	struct rlimit rl = { 0 };

	getrlimit(RLIMIT_MEMLOCK, &rl);
	if (rl.rlim_cur == RLIM_INFINITY)
		wp_log(ep->ctx, WP_LOG_ERR,
		       "rdma: cannot pin %u KiB of buffers for a connection (ibv_reg_mr: %s)",
		       (RD_RQ + RD_SB) * RD_BUF >> 10, strerror(err));
	else
		wp_log(ep->ctx, WP_LOG_ERR,
		       "rdma: cannot pin %u KiB of buffers for a connection (ibv_reg_mr: %s): "
		       "RLIMIT_MEMLOCK is %llu KiB and every connection pins %u KiB, registered "
		       "regions count too; raise it (ulimit -l, systemd LimitMEMLOCK=) or use "
		       "fewer connections",
		       (RD_RQ + RD_SB) * RD_BUF >> 10, strerror(err),
		       (unsigned long long)rl.rlim_cur >> 10, (RD_RQ + RD_SB) * RD_BUF >> 10);
	return err == EPERM || err == EAGAIN ? -ENOMEM : -err;
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
	qa.qp_context = ep; /* async events name the QP (rd_async_events) */
	if (rdma_create_qp(id, re->dev->pd, &qa))
		return errno ? -errno : -ENOMEM;
	re->qp = true;
	re->rbuf = aligned_alloc(4096, (size_t)RD_RQ * RD_BUF);
	re->sbuf = aligned_alloc(4096, (size_t)RD_SB * RD_BUF);
	if (!re->rbuf || !re->sbuf)
		return -ENOMEM;
	re->rmr = ibv_reg_mr(re->dev->pd, re->rbuf, (size_t)RD_RQ * RD_BUF, IBV_ACCESS_LOCAL_WRITE);
	re->smr = re->rmr ? ibv_reg_mr(re->dev->pd, re->sbuf, (size_t)RD_SB * RD_BUF, 0) : NULL;
	if (!re->rmr || !re->smr)
		return pin_failed(ep);
	for (uint32_t i = 0; i < RD_SB; i++)
		re->sfree[i] = RD_SB - 1 - i;
	re->nsfree = RD_SB;
	for (uint32_t i = 0; i < RD_RQ; i++) {
		ret = rd_post_recv(ep, i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* RDMA READs in flight per direction: at most 16, and what the device
 * allows: responder_resources (the peer's READs we serve at once) by
 * max_qp_rd_atom, initiator_depth (ours outstanding) by max_qp_init_rd_atom.
 * The acceptor also stays within what the connector offered: no more
 * responder resources than its initiator depth, no deeper than its
 * responder resources (peer: the request's values; NULL for the connector). */
static void conn_param(struct wp_ep *ep, struct rdma_conn_param *cp, struct rd_hello *h,
		       const struct rdma_conn_param *peer)
{
	struct rd_ep *re = ep->bk;
	struct ibv_device_attr da;
	int resp = 16, init = 16;

	if (ibv_query_device(re->id->verbs, &da) == 0) {
		if (da.max_qp_rd_atom < resp)
			resp = da.max_qp_rd_atom;
		if (da.max_qp_init_rd_atom < init)
			init = da.max_qp_init_rd_atom;
	}
	if (peer && peer->initiator_depth < resp)
		resp = peer->initiator_depth;
	if (peer && peer->responder_resources < init)
		init = peer->responder_resources;
	*h = (struct rd_hello){ htole32(RD_MAGIC), htole32(RD_VERSION), htole32(RD_RQ),
				htole32(RD_BUF) };
	*cp = (struct rdma_conn_param){
		.private_data = h,
		.private_data_len = sizeof(*h),
		.responder_resources = (uint8_t)resp, /* RDMA READs the peer may have in flight */
		.initiator_depth = (uint8_t)init,     /* ... and we */
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
	if (le32toh(h.magic) != RD_MAGIC || le32toh(h.version) != RD_VERSION || !le32toh(h.rq) ||
	    le32toh(h.buf) < 4096)
		return -EPROTO;
	re->credits = le32toh(h.rq) > 0xffff ? 0xffff : le32toh(h.rq);
	re->peer_buf = le32toh(h.buf) < RD_BUF ? le32toh(h.buf) : RD_BUF;
	return 0;
}

int rd_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
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

int rd_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
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

/* Stop: the QP goes (outstanding work requests die with it), the CM id
 * goes (a connected one tells the peer: DREQ), what was in flight fails. */
void rd_close(struct wp_ep *ep)
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
	rd_xfers_fail(ep, -ECONNRESET);
}

/* What an endpoint holds of the device; before the context's protection
 * domains go (rd_fini), and again, harmlessly, from ep_free. */
void rd_ep_release(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	rd_close(ep);
	if (re->rmr)
		ibv_dereg_mr(re->rmr);
	if (re->smr)
		ibv_dereg_mr(re->smr);
	re->rmr = re->smr = NULL;
}

void rd_ep_free(struct wp_ep *ep)
{
	struct rd_ep *re = ep->bk;

	rd_ep_release(ep);
	free(re->rbuf);
	free(re->sbuf);
	free(re->ctl);
	free(re->mst);
	while (re->remote) {
		struct rd_remote *n = re->remote->next;

		free(re->remote);
		re->remote = n;
	}
}

/* ---- rdma_cm events ------------------------------------------------------ */

static void accept_req(struct wp_ep *l, struct rdma_cm_id *id, const void *pd, uint8_t pdlen,
		       const struct rdma_conn_param *peer)
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
		conn_param(ep, &cp, &h, peer);
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

int rd_cm_events(struct wp_ctx *ctx)
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
		struct rdma_conn_param cp, peer = ev->param.conn;
		struct rd_hello h;
		int ret;

		peer.private_data = NULL; /* copied into pd below */
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
			accept_req(l, id, pdlen ? pd : NULL, pdlen, &peer);
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
				conn_param(ep, &cp, &h, NULL);
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
					rd_adv_queue(ep, mr->id);
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
			rd_poll_ep(ep);
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

int rd_local_uri(const struct wp_ep *ep, char *buf, size_t len)
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
