// SPDX-License-Identifier: MIT
/*
 * Bulk transfers as RMA: regions mapped once (ucp_mem_map), exported regions'
 * packed rkeys announced to peers, a peer's rkeys unpacked and checked, and
 * each transfer as put/get per descriptor plus one flush.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "ucx.h"

/* ---- regions: mapping, rkeys ------------------------------------------- */

static struct ucx_memh *ucx_mh_find(struct ucx_ctx *uc, const struct wp_mr *mr)
{
	for (uint32_t i = 0; i < uc->nmh; i++)
		if (uc->mh[i].memh && uc->mh[i].mr == mr)
			return &uc->mh[i];
	return NULL;
}

int ucx_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	ucp_mem_map_params_t mp = { .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
						  UCP_MEM_MAP_PARAM_FIELD_LENGTH,
				    .address = mr->addr,
				    .length = mr->len };
	ucs_status_t st;
	uint32_t i;

	mr->idx = -1;
	if (!uc->rma) /* no RMA in this context: nothing to map for */
		return 0;
	for (i = 0; i < uc->nmh && uc->mh[i].memh; i++)
		;
	if (i == uc->nmh) {
		uint32_t n = uc->nmh ? uc->nmh * 2 : 16;
		struct ucx_memh *m = realloc(uc->mh, n * sizeof(*m));

		if (!m)
			return -ENOMEM;
		memset(m + uc->nmh, 0, (n - uc->nmh) * sizeof(*m));
		uc->mh = m;
		uc->nmh = n;
	}
	st = ucp_mem_map(uc->uctx, &mp, &uc->mh[i].memh);
	if (st != UCS_OK) {
		uc->mh[i].memh = NULL;
		wp_log(ctx, WP_LOG_WARN, "ucp_mem_map %p+%zu: %s", (void *)mr->addr, mr->len,
		       ucs_status_string(st));
		return ucx_errno(st);
	}
	uc->mh[i].mr = mr;
	return 0;
}

static void rkey_msg(const struct wp_mr *mr, struct ucx_rkey_msg *m)
{
	m->id = htole32(mr->id);
	m->key = htole32(mr->key);
	m->addr = htole64((uint64_t)(uintptr_t)mr->addr);
	m->len = htole64(mr->len);
}

/* The packed rkey of an exported region (packed at the first need). */
static struct ucx_memh *mr_packed(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct ucx_memh *m;
	ucs_status_t st;

	m = ucx_mh_find(uc, mr);
	if (!m && (ucx_mem_register(ctx, mr) < 0 || !(m = ucx_mh_find(uc, mr))))
		return NULL;
	if (m->rkey_buf)
		return m;
	st = ucp_rkey_pack(uc->uctx, m->memh, &m->rkey_buf, &m->rkey_len);
	if (st != UCS_OK) {
		m->rkey_buf = NULL;
		wp_log(ctx, WP_LOG_WARN, "ucp_rkey_pack (region %u): %s", mr->id,
		       ucs_status_string(st));
		return NULL;
	}
	return m;
}

void ucx_send_rkey(struct wp_ep *ep, struct wp_mr *mr)
{
	struct ucx_memh *m = mr_packed(ep->ctx, mr);
	struct ucx_rkey_msg msg;

	if (!m)
		return; /* transfers naming it go as frames */
	rkey_msg(mr, &msg);
	if (ucx_ctl_send(ep, UCX_AM_RKEY, &msg, sizeof(msg), m->rkey_buf, m->rkey_len) < 0)
		wp_log(ep->ctx, WP_LOG_WARN, "could not announce region %u's rkey", mr->id);
}

bool ucx_ep_live(const struct wp_ep *ep)
{
	const struct ucx_ep *ue = uep_of(ep);

	return ep->state == WP_EPS_OPEN && ue->uep && !ue->closed && ue->err == UCS_OK;
}

/* Announced only on connections that use RMA (ucx_rma_ok): elsewhere a
 * peer gets no rkey, and its transfers to the region go as frames. */
void ucx_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr)
{
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (ucx_ep_live(ep) && uep_of(ep)->rma_ok)
			ucx_send_rkey(ep, mr);
}

/* Has any connection an UNEXPORT unacknowledged? */
static bool acks_pending(struct wp_ctx *ctx)
{
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (uep_of(ep)->acks_owed && ucx_ep_live(ep))
			return true;
	return false;
}

/*
 * The region goes. If its rkey was announced, every peer that has it is
 * told (UNEXPORT) and acknowledges once it destroyed the rkey after its last
 * put or get with it completed (ucx_rrkey_put): only then is the memory
 * unmapped, so a transfer in flight never lands in memory the caller has
 * freed. This blocks wp_mr_deregister: it progresses the worker (its
 * callbacks only record) for at most UCX_UNEXPORT_WAIT_NS; a peer that has
 * not answered by then (hung, or too busy) has its connection closed
 * (-ETIMEDOUT) before the unmap.
 */
void ucx_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	struct ucx_memh *m = ucx_mh_find(uc, mr);

	if (!m)
		return;
	if (m->rkey_buf) {
		uint64_t end = wp_now_ns() + UCX_UNEXPORT_WAIT_NS;
		struct ucx_rkey_msg msg;

		rkey_msg(mr, &msg);
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
			if (ucx_ep_live(ep) && uep_of(ep)->rma_ok &&
			    ucx_ctl_send(ep, UCX_AM_UNEXPORT, &msg, sizeof(msg), NULL, 0) == 0)
				uep_of(ep)->acks_owed++;
		while (acks_pending(ctx) && wp_now_ns() < end) {
			struct pollfd pf = { .fd = uc->efd, .events = POLLIN };

			if (ucp_worker_progress(uc->w))
				continue;
			/* Sleep in 1 ms steps: see UCX_HELD_WAIT_US. */
			if (ucp_worker_arm(uc->w) == UCS_OK)
				poll(&pf, 1, 1);
		}
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
			struct ucx_ep *ue = uep_of(ep);

			if (!ue->acks_owed || !ucx_ep_live(ep))
				continue;
			wp_log(ctx, WP_LOG_WARN,
			       "ucx: region %u deregistered: a peer did not acknowledge its "
			       "withdrawal within %llu ms: closing that connection before the "
			       "memory goes",
			       mr->id, (unsigned long long)(UCX_UNEXPORT_WAIT_NS / 1000000));
			ucx_fail(ep, UCS_ERR_TIMED_OUT);
			ucx_close(ep); /* forced (ue->err): the peer can no longer reach it */
		}
		ucp_rkey_buffer_release(m->rkey_buf);
		m->rkey_buf = NULL;
	}
	ucp_mem_unmap(uc->uctx, m->memh);
	m->memh = NULL;
	m->mr = NULL;
}

/* Drop a reference to r; at the last, destroy the rkey (no put or get with
 * it is pending any more) and, if the peer withdrew it, queue the
 * acknowledgement for ucx_after (this may run inside a UCX callback). */
void ucx_rrkey_put(struct ucx_rrkey *r)
{
	struct ucx_ctx *uc;

	if (--r->refs)
		return;
	ucp_rkey_destroy(r->rkey);
	r->rkey = NULL;
	if (!r->ack) {
		free(r);
		return;
	}
	uc = uctx_of(r->ep->ctx);
	r->next = uc->acks;
	uc->acks = r;
	r->ep->io_inflight++; /* until ucx_after sent it */
}

/* Tell the peer its region id is forgotten here. */
static void send_ack(struct wp_ep *ep, uint32_t id)
{
	struct ucx_rkey_msg msg = { .id = htole32(id) };

	if (ucx_ep_live(ep) &&
	    ucx_ctl_send(ep, UCX_AM_UNEXPORT_ACK, &msg, sizeof(msg), NULL, 0) < 0)
		wp_log(ep->ctx, WP_LOG_WARN, "ucx: could not acknowledge region %u's withdrawal",
		       id);
}

/* Send the acknowledgements queued by ucx_rrkey_put. */
int ucx_acks_flush(struct wp_ctx *ctx)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	int n = 0;

	while (uc->acks) {
		struct ucx_rrkey *r = uc->acks;

		uc->acks = r->next;
		r->ep->io_inflight--;
		if (r->ep->state != WP_EPS_CLOSED)
			send_ack(r->ep, r->id);
		free(r);
		n++;
	}
	return n;
}

/* Forget the peer's region id (off the list; destroyed at the last
 * reference). ack: the peer withdrew it and waits for our answer. */
void ucx_rrkey_drop(struct ucx_ep *ue, uint32_t id, bool ack)
{
	for (struct ucx_rrkey **pp = &ue->rkeys; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct ucx_rrkey *r = *pp;

			*pp = r->next;
			ue->nrkeys--;
			r->ack = ack;
			ucx_rrkey_put(r);
			return;
		}
	if (ack) /* never unpacked here (frames only, or refused): nothing pending */
		send_ack(ue->ep, id);
}

/* A peer announced (or withdrew) a region: bytes it controls, checked. */
void ucx_rkey_rx(struct wp_ep *ep, unsigned id, const uint8_t *p, size_t len)
{
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_rkey_msg m;
	struct ucx_rrkey *r;
	ucs_status_t st;

	if (len < sizeof(m) || (id == UCX_AM_RKEY && len - sizeof(m) > UCX_RKEY_MAX)) {
		wp_log_rl(ep->ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "ucx: malformed region announcement (%zu bytes) ignored", len);
		return;
	}
	memcpy(&m, p, sizeof(m));
	ucx_rrkey_drop(ue, le32toh(m.id), id == UCX_AM_UNEXPORT);
	if (id == UCX_AM_UNEXPORT)
		return;
	if (!ue->rma_ok) {
		/* The peer trusts us; we do not use RMA here (ucx_rma_ok). */
		wp_log(ep->ctx, WP_LOG_DEBUG,
		       "ucx: region %u announced, but bulk transfers on this connection go as "
		       "frames",
		       le32toh(m.id));
		return;
	}
	if (ue->nrkeys >= UCX_PEER_RKEYS || !ue->uep) {
		wp_log_rl(ep->ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "ucx: peer announced more than %u regions: region %u ignored",
			  UCX_PEER_RKEYS, le32toh(m.id));
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		wp_log(ep->ctx, WP_LOG_WARN,
		       "ucx: out of memory for region %u's rkey: transfers to it go as frames",
		       le32toh(m.id));
		return;
	}
	st = ucp_ep_rkey_unpack(ue->uep, p + sizeof(m), &r->rkey);
	if (st != UCS_OK) {
		wp_log(ep->ctx, WP_LOG_WARN, "ucx: ucp_ep_rkey_unpack (region %u): %s",
		       le32toh(m.id), ucs_status_string(st));
		free(r);
		return;
	}
	r->ep = ep;
	r->refs = 1; /* on the list */
	r->id = le32toh(m.id);
	r->key = le32toh(m.key);
	r->addr = le64toh(m.addr);
	r->len = le64toh(m.len);
	r->next = ue->rkeys;
	ue->rkeys = r;
	ue->nrkeys++;
}

/* ---- bulk transfers as RMA -------------------------------------------- */

static void ucx_flush_cb(void *request, ucs_status_t status, void *user_data)
{
	struct ucx_xfer *x = user_data;
	struct wp_ep *ep = x->ep;

	ep->io_inflight--;
	wp_xfer_direct_done(x->st, x->status ? x->status : ucx_errno(status)); /* deferred */
	ucx_req_done(&x->rq);
	ucx_rrkey_put(x->rk); /* every put and get with it is over */
	free(x);
}

static void ucx_flush_abort(struct ucx_req *rq)
{
	ucx_flush_cb(rq->handle, UCS_ERR_CANCELED, ucx_container(rq, struct ucx_xfer, rq));
}

int ucx_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p, struct wp_xfer_stats *st)
{
	struct ucx_ctx *uc = uctx_of(ep->ctx);
	struct ucx_ep *ue = uep_of(ep);
	struct ucx_memh *lm;
	struct ucx_rrkey *r;
	struct ucx_xfer *x;
	ucs_status_ptr_t sp;
	ucp_request_param_t rp = { 0 };
	uint64_t total = 0;

	if (!ucx_ep_live(ep))
		return -ENOTCONN;
	if (!ue->rma_ok) /* software RMA, not trusted (ucx_rma_ok): frames */
		return -EOPNOTSUPP;
	for (r = ue->rkeys; r && r->id != p->remote->id; r = r->next)
		;
	/* Unknown region or key, or ranges past it: frames, and the peer
	 * answers EACCES or ERANGE as on every path. */
	if (!r || r->key != p->remote->key)
		return -EOPNOTSUPP;
	for (uint32_t i = 0; i < p->ndesc; i++)
		if (p->desc[i].remote_off > r->len ||
		    p->desc[i].len > r->len - p->desc[i].remote_off)
			return -EOPNOTSUPP;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ep = ep;
	x->st = st;
	x->rk = r;
	r->refs++; /* ucp_rkey_destroy waits for this transfer's flush */
	lm = ucx_mh_find(uc, p->local);
	if (lm) { /* mapped once at registration: UCX maps nothing per transfer */
		rp.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
		rp.memh = lm->memh;
	}
	for (uint32_t i = 0; i < p->ndesc && !x->status; i++) {
		const struct wp_xfer_desc *d = &p->desc[i];
		void *local = p->local->addr + d->local_off;
		uint64_t raddr = r->addr + d->remote_off;

		if (!d->len)
			continue;
		sp = p->op == WP_XFER_WRITE
			     ? ucp_put_nbx(ue->uep, local, d->len, raddr, r->rkey, &rp)
			     : ucp_get_nbx(ue->uep, local, d->len, raddr, r->rkey, &rp);
		if (UCS_PTR_IS_ERR(sp))
			x->status = ucx_errno(UCS_PTR_STATUS(sp));
		else if (sp)
			ucp_request_free(sp); /* completes with the flush below */
		total += d->len;
		uc->rma_ops++;
	}
	uc->rma_bytes += total;
	st->copied_local = 0;
	st->copied_remote = 0;
	/* The flush completes when every put has landed in the peer's region
	 * and every get in ours. */
	rp = (ucp_request_param_t){ .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
						    UCP_OP_ATTR_FIELD_USER_DATA,
				    .cb.send = ucx_flush_cb,
				    .user_data = x };
	sp = ucp_ep_flush_nbx(ue->uep, &rp);
	if (sp == NULL || UCS_PTR_IS_ERR(sp)) {
		int err = sp ? ucx_errno(UCS_PTR_STATUS(sp)) : 0;

		wp_xfer_direct_done(st, x->status ? x->status : err); /* deferred */
		ucx_rrkey_put(r);
		free(x);
		return 1;
	}
	ucx_req_hold(ep->ctx, &x->rq, sp, ucx_flush_abort);
	ep->io_inflight++;
	return 1;
}
