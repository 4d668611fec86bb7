// SPDX-License-Identifier: MIT
/*
 * The rdma path's bulk transfers: RDMA WRITE (the last WITH_IMM) and RDMA
 * READ straight between a local region and a peer's advertised one, posted
 * as the send queue and credits allow; the peers' advertisements.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rdma.h"

/* The local region is free of this transfer: deregistration may proceed. */
static void region_put(struct wp_ctx *ctx, struct rd_xfer *x)
{
	struct rd_ctx *r = rctx(ctx);

	if (x->lidx >= 0 && (uint32_t)x->lidx < r->nmrs && r->mrs[x->lidx].busy)
		r->mrs[x->lidx].busy--;
}

void rd_xfers_fail(struct wp_ep *ep, int status)
{
	struct rd_ep *re = ep->bk;

	memset(re->xs, 0, sizeof(re->xs));
	re->xq = NULL;
	re->xq_tail = &re->xq;
	while (re->live) {
		struct rd_xfer *x = re->live;

		re->live = x->lnext;
		region_put(ep->ctx, x);
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

/* Over: the caller hears once, the region is released. */
static void xfer_finish(struct wp_ep *ep, struct rd_xfer *x, int status)
{
	x->st->bytes = 0;
	for (uint32_t k = 0; k < x->posted; k++)
		x->st->bytes += x->desc[k].len;
	xfer_unlink(ep->bk, x);
	region_put(ep->ctx, x);
	wp_xfer_direct_done(x->st, status);
	free(x->desc);
	free(x);
}

static void remote_release(struct wp_ep *ep, struct rd_remote *m);

void rd_xfer_wc(struct wp_ep *ep, uint32_t slot, bool ok)
{
	struct rd_ep *re = ep->bk;
	struct rd_xfer *x = re->xs[slot];
	struct rd_remote *rm;

	re->xs[slot] = NULL;
	if (!x)
		return;
	rm = x->rm;
	if (!ok && !x->status)
		x->status = -EIO;
	if (--x->left == 0 && (x->posted == x->p.ndesc || x->stopped))
		xfer_finish(ep, x, x->status);
	if (--rm->inflight == 0 && rm->gone)
		remote_release(ep, rm);
}

/* Take x off the posting queue: no more of it is posted. It ends now if
 * nothing of it is in flight, else when the last posted piece completes
 * (the HCA may still be reading or writing the region until then). */
static void xfer_stop(struct wp_ep *ep, struct rd_xfer *x, int status)
{
	struct rd_ep *re = ep->bk;
	struct rd_xfer **pp = &re->xq, *prev = NULL;

	while (*pp && *pp != x) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp) {
		*pp = x->next;
		if (re->xq_tail == &x->next)
			re->xq_tail = prev ? &prev->next : &re->xq;
	}
	x->next = NULL;
	x->stopped = true;
	if (!x->status)
		x->status = status;
	if (x->left == 0)
		xfer_finish(ep, x, x->status);
}

/* ---- deadlines of queued transfers ---------------------------------------
 * A transfer waits in the posting queue for send-queue slots (and, for the
 * last piece of a write, a credit). There the call's deadline_us applies:
 * at it the transfer stops with -ETIMEDOUT. Pieces already posted are not
 * recalled: the transport's retries bound them (retry_count 7 of the local
 * ACK timeout), and the transfer ends when they complete. */

static int64_t dl_wait(void *arg)
{
	struct wp_ctx *ctx = arg;
	uint64_t now = 0, first = 0;

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct rd_ep *re = ep->bk;

		for (struct rd_xfer *x = re ? re->xq : NULL; x; x = x->next)
			if (x->deadline_ns && (!first || x->deadline_ns < first))
				first = x->deadline_ns;
	}
	if (!first)
		return -1;
	now = wp_now_ns();
	return first <= now ? 0 : (int64_t)((first - now + 999) / 1000);
}

static int dl_poll(void *arg)
{
	struct wp_ctx *ctx = arg;
	uint64_t now = 0;
	int n = 0;

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct rd_ep *re = ep->bk;
		struct rd_xfer *x, *next;

		for (x = re ? re->xq : NULL; x; x = next) {
			next = x->next;
			if (!x->deadline_ns)
				continue;
			if (!now)
				now = wp_now_ns();
			if (now < x->deadline_ns)
				continue;
			rctx(ctx)->timeouts++;
			xfer_stop(ep, x, -ETIMEDOUT);
			n++;
		}
	}
	return n;
}

void rd_xfer_deadlines(struct wp_ctx *ctx, bool on)
{
	struct rd_ctx *r = rctx(ctx);

	if (on) {
		r->deadlines =
			(struct wp_poller){ .max_wait = dl_wait, .poll = dl_poll, .arg = ctx };
		wp_ctx_poller_add(ctx, &r->deadlines);
	} else if (r->deadlines.poll) {
		wp_ctx_poller_del(ctx, &r->deadlines);
		r->deadlines.poll = NULL;
	}
}

/* ---- bulk transfers: RDMA WRITE (with immediate) and READ ------------- */

static struct rd_remote *remote_find(struct rd_ep *re, uint32_t id, uint32_t key)
{
	for (struct rd_remote *m = re->remote; m; m = m->next)
		if (m->id == id && !m->gone)
			return m->key == key ? m : NULL;
	return NULL;
}

/* A peer's region nothing of ours uses any more: forgotten, and a
 * withdrawal acknowledged (the peer may now let it go). */
static void remote_release(struct wp_ep *ep, struct rd_remote *m)
{
	struct rd_ep *re = ep->bk;

	if (m->gone == RD_RM_WITHDRAWN && ep->state == WP_EPS_OPEN &&
	    rd_ctl_queue(ep, RD_IMM_UNADV_ACK, m->id, m->key) < 0)
		wp_conn_fail(ep, -ENOMEM); /* the peer sees the QP go instead */
	for (struct rd_remote **pp = &re->remote; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	free(m);
}

/* No new transfers to m: queued ones end with status (EACCES: the region is
 * no longer there for us, what the frames path would answer); m goes when
 * the work requests already posted to it have completed. */
static void remote_retire(struct wp_ep *ep, struct rd_remote *m, uint8_t why)
{
	struct rd_ep *re = ep->bk;
	struct rd_xfer *x, *next;

	m->gone = why;
	for (x = re->xq; x; x = next) {
		next = x->next;
		if (x->rm == m)
			xfer_stop(ep, x, EACCES);
	}
	if (!m->inflight)
		remote_release(ep, m);
}

/* Post what the send queue and credits allow, transfers in order. */
int rd_pump_xfers(struct wp_ep *ep)
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
			x->rm->inflight++;
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
int rd_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p, struct wp_xfer_stats *st)
{
	struct rd_ep *re = ep->bk;
	struct rd_remote *rm;
	struct rd_mr *m;
	struct rd_xfer *x;
	int ret;

	if (!re->qp || re->di < 0 || ep->guard || ep->ctx->guard)
		return -EOPNOTSUPP; /* frames: a policy seals them (rd_adv_queue) */
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
	/* The region stays registered while the transfer lives: its busy
	 * count makes wp_mr_deregister refuse (EBUSY) until it ends. */
	x->lidx = p->local->idx;
	m->busy++;
	if (p->deadline_us > 0)
		x->deadline_ns = wp_now_ns() + (uint64_t)p->deadline_us * 1000;
	x->raddr = rm->addr;
	x->rkey = rm->rkey;
	x->rm = rm;
	x->lkey = m->l[re->di]->lkey;
	*re->xq_tail = x;
	re->xq_tail = &x->next;
	x->lnext = re->live;
	re->live = x;
	ret = rd_pump_xfers(ep);
	if (ret < 0) {
		wp_conn_fail(ep, ret); /* fails x too, through close */
		return 1;
	}
	if (re->xq)
		wp_ctx_mark_dirty(ep); /* the rest when the send queue drains */
	return 1;
}

void rd_take_adv(struct wp_ep *ep, const uint8_t *p, uint32_t len)
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
		/* An id seen before with another key is a new region: the old
		 * one is retired (freed once our requests on it are done). */
		for (struct rd_remote *o = re->remote; o; o = o->next)
			if (o->id == le32toh(a.id) && !o->gone) {
				remote_retire(ep, o, RD_RM_REPLACED);
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

void rd_take_unadv(struct wp_ep *ep, const uint8_t *p, uint32_t len)
{
	struct rd_ep *re = ep->bk;
	struct rd_remote *m;
	struct rd_unadv u;

	if (len != sizeof(u)) {
		wp_conn_fail(ep, -EPROTO);
		return;
	}
	memcpy(&u, p, sizeof(u));
	m = remote_find(re, le32toh(u.id), le32toh(u.key));
	if (m) {
		remote_retire(ep, m, RD_RM_WITHDRAWN);
		return;
	}
	/* Never recorded (out of memory): nothing of ours reaches it. */
	if (rd_ctl_queue(ep, RD_IMM_UNADV_ACK, le32toh(u.id), le32toh(u.key)) < 0)
		wp_conn_fail(ep, -ENOMEM);
}
