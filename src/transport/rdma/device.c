// SPDX-License-Identifier: MIT
/*
 * The rdma path's devices: probes (each device opened, its port queried), the
 * context (a protection domain and a completion channel per device, the
 * rdma_cm event channel, all in the context's epoll), the registration cache
 * (each region registered once per device; exported regions a second time
 * for remote access) and region advertisements, explain, the ops table.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "rdma.h"

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
		/* Async events (port down, QP fatal, CQ error) fail connections. */
		if (ret == 0)
			ret = set_nonblock(d->verbs->async_fd);
		if (ret == 0)
			ret = wp_epoll_ctl(ctx, EPOLL_CTL_ADD, d->verbs->async_fd, EPOLLIN,
					   RD_EV_ASYNC + i);
		if (ret < 0)
			goto out;
	}
	rd_xfer_deadlines(ctx, true);
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
	rd_xfer_deadlines(ctx, false);
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (ep->bk)
			rd_ep_release(ep);
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

struct rd_mr *rd_mr_of(struct wp_ctx *ctx, const struct wp_mr *mr)
{
	struct rd_ctx *r = rctx(ctx);

	return mr->idx >= 0 && (uint32_t)mr->idx < r->nmrs && r->mrs[mr->idx].used
		       ? &r->mrs[mr->idx]
		       : NULL;
}

void rd_adv_queue(struct wp_ep *ep, uint32_t id)
{
	/* Under a policy nothing is advertised: an rkey is valid on the whole
	 * protection domain and would reach a peer before (or without) its
	 * handshake, and RDMA moves bytes no record seals. Transfers go by
	 * frames, sealed like every other frame (rd_xfer_direct refuses). */
	if (ep->guard || ep->ctx->guard)
		return;
	rd_ctl_queue(ep, RD_IMM_MR, id, 0); /* out of memory: its transfers go by frames */
}

int rd_ctl_queue(struct wp_ep *ep, uint32_t kind, uint32_t id, uint32_t key)
{
	struct rd_ep *re = ep->bk;

	if (re->nctl == re->ctl_cap) {
		uint32_t cap = re->ctl_cap ? re->ctl_cap * 2 : 8;
		struct rd_ctl *n = realloc(re->ctl, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		re->ctl = n;
		re->ctl_cap = cap;
	}
	re->ctl[re->nctl++] = (struct rd_ctl){ kind, id, key };
	wp_ctx_mark_dirty(ep);
	return 0;
}

uint8_t *rd_mst(struct rd_ep *re, uint32_t slot)
{
	if (slot >= re->nmst) {
		uint32_t n = slot + 8;
		uint8_t *m = realloc(re->mst, n);

		if (!m)
			return NULL;
		memset(m + re->nmst, 0, n - re->nmst);
		re->mst = m;
		re->nmst = n;
	}
	return &re->mst[slot];
}

/* ---- withdrawing an advertised region -------------------------------------
 * A peer that was told a region's rkey may be writing into it or reading
 * it at any moment, and once the registration goes its next access fails
 * with a remote access error that breaks its connection. So the last
 * wp_mr_deregister of an advertised region withdraws it instead: the region
 * stops being exported (frames naming it are refused, no new connection
 * hears of it), adverts not yet sent are dropped, and every open connection
 * that was told gets RD_IMM_UNADV. The peer stops posting to it (queued
 * transfers end with EACCES, as the frames path would answer), waits for
 * the work requests it already posted, forgets it and answers
 * RD_IMM_UNADV_ACK. Until every such connection has answered (or closed:
 * its QP is gone, nothing more arrives through it) the call is refused with
 * -EBUSY and the caller calls again; the remote registration goes at the
 * last acknowledgement, the region itself when the call succeeds. */

static bool withdrawal_pending(struct wp_ctx *ctx, uint32_t slot)
{
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct rd_ep *re = ep->bk;

		if (re && ep->state == WP_EPS_OPEN && re->qp && slot < re->nmst &&
		    re->mst[slot] == RD_MS_WD)
			return true;
	}
	return false;
}

static void ctl_drop(struct rd_ep *re, uint32_t kind, uint32_t id)
{
	for (uint32_t i = 0; i < re->nctl;) {
		if (re->ctl[i].kind == kind && re->ctl[i].id == id)
			memmove(&re->ctl[i], &re->ctl[i + 1], (--re->nctl - i) * sizeof(*re->ctl));
		else
			i++;
	}
}

/* The last reference is going: not while an RDMA transfer from or into the
 * region is in flight (the HCA would touch memory the caller may free), nor
 * while a peer that was told its rkey has not acknowledged the withdrawal
 * this starts (above). */
static int rd_mem_busy(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct rd_mr *m = rctx(ctx) ? rd_mr_of(ctx, mr) : NULL;
	uint32_t slot = (uint32_t)mr->idx;

	if (!m)
		return 0;
	if (m->busy)
		return -EBUSY;
	if (mr->exported)
		rctx(ctx)->withdrawn++;
	mr->exported = false;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct rd_ep *re = ep->bk;

		if (!re)
			continue;
		ctl_drop(re, RD_IMM_MR, mr->id);
		if (slot >= re->nmst || re->mst[slot] != RD_MS_ADV)
			continue;
		if (ep->state != WP_EPS_OPEN || !re->qp) {
			re->mst[slot] = RD_MS_NONE; /* its QP is gone */
			continue;
		}
		re->mst[slot] = RD_MS_WD;
		if (rd_ctl_queue(ep, RD_IMM_UNADV, mr->id, mr->key) < 0)
			wp_conn_fail(ep, -ENOMEM); /* cannot tell it: its QP goes instead */
	}
	return withdrawal_pending(ctx, slot) ? -EBUSY : 0;
}

void rd_take_unadv_ack(struct wp_ep *ep, const uint8_t *p, uint32_t len)
{
	struct rd_ctx *r = rctx(ep->ctx);
	struct rd_ep *re = ep->bk;
	struct wp_mr *mr = NULL;
	struct rd_unadv u;
	uint32_t slot;

	if (len != sizeof(u)) {
		wp_conn_fail(ep, -EPROTO);
		return;
	}
	memcpy(&u, p, sizeof(u));
	for (struct wp_mr *x = ep->ctx->mrs; x; x = x->next)
		if (x->id == le32toh(u.id) && x->key == le32toh(u.key))
			mr = x;
	if (!mr || mr->idx < 0)
		return; /* nothing of ours (the context lets regions go only after this) */
	slot = (uint32_t)mr->idx;
	if (slot < re->nmst && re->mst[slot] == RD_MS_WD)
		re->mst[slot] = RD_MS_NONE;
	if (!mr->exported && !withdrawal_pending(ep->ctx, slot) && slot < r->nmrs) {
		/* Nobody reaches it any more: the remote registration goes now,
		 * even if the caller does not call again. */
		for (int d = 0; d < RD_MAXDEV; d++)
			if (r->mrs[slot].r[d]) {
				ibv_dereg_mr(r->mrs[slot].r[d]);
				r->mrs[slot].r[d] = NULL;
			}
	}
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
			rd_adv_queue(ep, mr->id);
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
		"%llu writes, %llu reads, %llu transfers landed here, %llu advertisements (%llu regions "
		"withdrawn), %llu queued "
		"transfers timed out; %llu failed completions, %llu async errors; %s",
		r && r->devname[0] ? r->devname : "?", RD_SB, RD_BUF >> 10, RD_RQ, RD_BUF >> 10,
		(unsigned long long)(r ? r->sends : 0),
		(unsigned long long)(r ? r->credit_msgs : 0),
		(unsigned long long)(r ? r->stalls : 0), (unsigned long long)(r ? r->writes : 0),
		(unsigned long long)(r ? r->reads : 0), (unsigned long long)(r ? r->writes_in : 0),
		(unsigned long long)(r ? r->advs : 0), (unsigned long long)(r ? r->withdrawn : 0),
		(unsigned long long)(r ? r->timeouts : 0), (unsigned long long)(r ? r->wc_err : 0),
		(unsigned long long)(r ? r->async_err : 0),
		ctx->o.busy_poll
			? "busy-poll on (CQs never armed)"
			: "sleeps on the completion channel (armed, then polled once more)");
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
	.mem_busy = rd_mem_busy,
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
