// SPDX-License-Identifier: MIT
/*
 * Bulk transfers: write a local region into a peer's region, or read a
 * peer's region into a local one, as one request of many descriptors.
 *
 * A transfer rides on an RPC call slot, so deadlines, cancellation by the
 * peer's death and late answers work as for any call. On a path that can
 * map the peer's memory (shm, a region from wp_mr_alloc) the initiator
 * copies once and no frame is sent. Otherwise the bytes travel in XFER
 * frames of at most XFER_CHUNK payload bytes, each with a 16-byte placement
 * prefix (offset, region id, region key); the sender sends the region in
 * place and the receiver's parser hands every piece to xfer_place, which
 * copies it straight from the receive buffer into the region (frames are
 * never assembled). A write ends with the receiver's DATA+LAST answer
 * carrying its status and how many bytes it copied; a read is a REQ to the
 * library-served method WP_METHOD_XFER_READ, answered by XFER frames aimed
 * at the initiator's region and then DATA+LAST.
 */
#include <endian.h>
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define XFER_CHUNK (1u << 20)
#define XFER_MAX_DESC 1024u

/* Per endpoint (ep->up[WP_LAYER_XFER]): the transfer being placed from the
 * stream (receiver side), made at the first XFER frame. */
struct xfer_rx {
	uint64_t id;
	uint32_t err; /* positive status to answer with, 0 = fine */
	uint64_t copied;
	struct wp_mr *mr; /* last region placed into */
};

struct xfer {
	struct wp_ep *ep;
	enum wp_xfer_op op;
	void (*on_done)(void *arg, int status, const struct wp_xfer_stats *st);
	void *arg;
	struct wp_xfer_stats st;
	uint64_t t0, id;
	uint32_t sends_left; /* frames whose payload the kernel may still read */
	bool answered;
	int status;
};

/* READ request: header, then ndesc entries. */
struct xfer_read_req {
	uint32_t src_id, src_key, dst_id, dst_key;
	uint32_t ndesc, pad;
};
struct xfer_read_ent {
	uint64_t src_off, dst_off, len;
};

static void put_prefix(uint8_t *p, uint64_t off, uint32_t id, uint32_t key)
{
	uint64_t o = htole64(off);
	uint32_t i = htole32(id), k = htole32(key);

	memcpy(p, &o, 8);
	memcpy(p + 8, &i, 4);
	memcpy(p + 12, &k, 4);
}

static void get_prefix(const uint8_t *p, uint64_t *off, uint32_t *id, uint32_t *key)
{
	uint64_t o;
	uint32_t i, k;

	memcpy(&o, p, 8);
	memcpy(&i, p + 8, 4);
	memcpy(&k, p + 12, 4);
	*off = le64toh(o);
	*id = le32toh(i);
	*key = le32toh(k);
}

/* ---- receiver: placing bytes ------------------------------------------ */

static struct xfer_rx *xrx(const struct wp_ep *ep)
{
	return ep->up[WP_LAYER_XFER];
}

static void xfer_place(void *arg, const struct wp_frame_hdr *h, const uint8_t *prefix,
		       const uint8_t *piece, uint32_t off, uint32_t n)
{
	struct wp_ep *ep = arg;
	struct xfer_rx *x = xrx(ep);
	struct wp_mr *mr;
	uint64_t roff;
	uint32_t id, key;

	if (!x) {
		/* Out of memory: the pieces are dropped, and the frame's end
		 * (xfer_on_frame) answers ENOMEM. */
		x = calloc(1, sizeof(*x));
		if (!x)
			return;
		ep->up[WP_LAYER_XFER] = x;
	}
	mr = x->mr;
	if (x->id != h->req_id) {
		x->id = h->req_id;
		x->err = 0;
		x->copied = 0;
	}
	if (x->err || !n)
		return;
	get_prefix(prefix, &roff, &id, &key);
	if (!mr || mr->id != id || mr->key != key || !mr->exported) {
		mr = wp_mr_by_id(ep->ctx, id, key);
		if (!mr) {
			x->err = EACCES;
			return;
		}
		x->mr = mr;
	}
	if (roff > mr->len || (uint64_t)off + n > mr->len - roff) {
		x->err = ERANGE;
		return;
	}
	memcpy(mr->addr + roff + off, piece, n);
	WP_CNT_ADD(bytes_copied, n);
	x->copied += n;
}

static int xfer_on_frame(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct xfer_rx *x;

	if (h->len < WP_XFER_PREFIX)
		return -EPROTO;
	if (payload)
		xfer_place(ep, h, payload, payload + WP_XFER_PREFIX, 0, h->len - WP_XFER_PREFIX);
	else if (!xrx(ep) || xrx(ep)->id != h->req_id) /* streamed, all pieces empty */
		xfer_place(ep, h, ep->rx.xpre, NULL, 0, 0);
	x = xrx(ep);
	if (h->flags & WP_FF_LAST) {
		/* The last frame of a write: answer with status and our copies. */
		uint64_t copied = htole64(x && x->id == h->req_id ? x->copied : 0);
		uint32_t err = !x || x->id != h->req_id ? ENOMEM : x->err;

		wp_rpc_send_ctl(ep, WP_FT_DATA, WP_FF_LAST, h->req_id, h->method, err, &copied,
				sizeof(copied));
		if (x) {
			x->id = 0;
			x->mr = NULL;
		}
	}
	return 0;
}

/* ---- sending XFER frames --------------------------------------------- */

static void xfer_finish(struct xfer *x)
{
	x->st.ns = wp_now_ns() - x->t0;
	if (x->on_done)
		x->on_done(x->arg, x->status, &x->st);
	free(x);
}

static void xfer_maybe_finish(struct xfer *x)
{
	if (x->answered && x->sends_left == 0)
		xfer_finish(x);
}

static void xfer_send_done(void *arg, int status)
{
	struct xfer *x = arg;

	x->sends_left--;
	if (status < 0 && x->status == 0 && !x->answered)
		x->status = status;
	xfer_maybe_finish(x);
}

static void nop_done(void *arg, int status)
{
}

/*
 * Queue the frames moving [src, src+len) to (id, key, dst_off) on the peer.
 * done/arg run per frame (NULL: nop, the region outlives the frames).
 */
static int send_frames(struct wp_ep *ep, uint64_t req_id, bool last, const uint8_t *src,
		       uint64_t len, uint64_t dst_off, uint32_t id, uint32_t key, wp_done_fn done,
		       void *arg, uint32_t *frames)
{
	bool stream = ep->ctx->ops->caps & WP_CAP_STREAM;
	uint64_t sent = 0;

	do {
		uint32_t n = len - sent > XFER_CHUNK ? XFER_CHUNK : (uint32_t)(len - sent);
		bool fin = last && sent + n == len;
		struct wp_frame_hdr h = { .type = WP_FT_XFER,
					  .flags = fin ? WP_FF_LAST : 0,
					  .req_id = req_id };
		uint8_t pre[WP_XFER_PREFIX];
		int ret;

		put_prefix(pre, dst_off + sent, id, key);
		if (stream) {
			ret = wp_txq_send2(ep, &h, pre, WP_XFER_PREFIX, src + sent, n,
					   done ? done : nop_done, arg);
		} else {
			/* A path without gather (shm, region not mapped): one frame
			 * body, copied (counted), then copied into the arena. */
			uint8_t *body = malloc(WP_XFER_PREFIX + (size_t)n);

			if (!body)
				return -ENOMEM;
			memcpy(body, pre, WP_XFER_PREFIX);
			memcpy(body + WP_XFER_PREFIX, src + sent, n);
			WP_CNT_ADD(bytes_copied, n);
			ret = wp_conn_send(ep, &h, body, WP_XFER_PREFIX + (size_t)n, NULL, NULL);
			free(body);
			if (ret == 0 && done)
				wp_defer(ep->ctx, done, arg, 0);
		}
		if (ret < 0)
			return ret;
		(*frames)++;
		sent += n;
	} while (sent < len);
	return 0;
}

/* ---- initiator ------------------------------------------------------ */

static void xfer_on_data(void *arg, struct wp_msg *m)
{
	struct xfer *x = arg;
	struct xfer_rx *r = xrx(x->ep);
	uint64_t c;

	if (m->len >= sizeof(c)) {
		memcpy(&c, m->data, sizeof(c));
		x->st.copied_remote = le64toh(c);
	}
	/* A read placed into our own region: did every piece land? */
	if (x->op == WP_XFER_READ && r && r->id == x->id) {
		if (r->err && !x->status)
			x->status = (int)r->err;
		x->st.copied_local = r->copied;
		r->id = 0;
		r->mr = NULL;
	}
}

static void xfer_on_done(void *arg, int status)
{
	struct xfer *x = arg;

	x->answered = true;
	if (!x->status)
		x->status = status;
	xfer_maybe_finish(x);
}

static void direct_done(void *arg, int status)
{
	xfer_finish(arg);
}

void wp_xfer_direct_done(struct wp_xfer_stats *st, int status)
{
	struct xfer *x = (struct xfer *)((char *)st - offsetof(struct xfer, st));

	x->status = status;
	wp_defer(x->ep->ctx, direct_done, x, status);
}

int wp_no_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p, struct wp_xfer_stats *st)
{
	return -EOPNOTSUPP;
}

void wp_no_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr)
{
}

static int check_params(struct wp_ep *ep, const struct wp_xfer_params *p, uint64_t *total)
{
	*total = 0;
	if (!p || !p->local || !p->remote || !p->desc || !p->ndesc || p->ndesc > XFER_MAX_DESC ||
	    p->local->ctx != ep->ctx || (p->op != WP_XFER_WRITE && p->op != WP_XFER_READ))
		return -EINVAL;
	for (uint32_t i = 0; i < p->ndesc; i++) {
		const struct wp_xfer_desc *d = &p->desc[i];

		if (d->local_off > p->local->len || d->len > p->local->len - d->local_off ||
		    d->remote_off > p->remote->len || d->len > p->remote->len - d->remote_off)
			return -EINVAL;
		*total += d->len;
	}
	return 0;
}

int wp_xfer_post(struct wp_ep *ep, const struct wp_xfer_params *p)
{
	struct wp_ctx *ctx;
	struct xfer *x;
	uint64_t total;
	int ret;

	if (!ep)
		return -EINVAL;
	ctx = ep->ctx;
	ret = check_params(ep, p, &total);
	if (ret < 0)
		return ret;
	if (ep->state != WP_EPS_OPEN)
		return -ENOTCONN;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->ep = ep;
	x->op = p->op;
	x->on_done = p->on_done;
	x->arg = p->arg;
	x->t0 = wp_now_ns();
	x->st.bytes = total;

	/* Mapped memory: the whole transfer is one memcpy per descriptor. */
	ret = ctx->ops->xfer_direct(ep, p, &x->st);
	if (ret == 0 || ret == 1) {
		/* 1: posted (rdma); the path calls wp_xfer_direct_done. */
		x->st.direct = 1;
		if (ret == 0)
			wp_defer(ctx, direct_done, x, 0);
		return 0;
	}
	if (ret != -EOPNOTSUPP) {
		free(x);
		return ret;
	}

	ret = wp_rpc_pending_new(ep, xfer_on_data, xfer_on_done, x, p->deadline_us, &x->id);
	if (ret < 0) {
		free(x);
		return ret;
	}
	if (p->op == WP_XFER_WRITE) {
		for (uint32_t i = 0; i < p->ndesc && ret == 0; i++) {
			const struct wp_xfer_desc *d = &p->desc[i];
			uint32_t before = x->st.frames;

			ret = send_frames(ep, x->id, i + 1 == p->ndesc,
					  p->local->addr + d->local_off, d->len, d->remote_off,
					  p->remote->id, p->remote->key, xfer_send_done, x,
					  &x->st.frames);
			x->sends_left += x->st.frames - before;
		}
	} else {
		size_t n = sizeof(struct xfer_read_req) + p->ndesc * sizeof(struct xfer_read_ent);
		struct xfer_read_req *r = malloc(n);
		struct xfer_read_ent *e = (struct xfer_read_ent *)(r + 1);

		if (!r) {
			ret = -ENOMEM;
		} else {
			wp_mr_export(p->local, NULL); /* the answer lands in it */
			*r = (struct xfer_read_req){
				htole32(p->remote->id), htole32(p->remote->key),
				htole32(p->local->id),  htole32(p->local->key),
				htole32(p->ndesc),      0
			};
			for (uint32_t i = 0; i < p->ndesc; i++)
				e[i] = (struct xfer_read_ent){ htole64(p->desc[i].remote_off),
							       htole64(p->desc[i].local_off),
							       htole64(p->desc[i].len) };
			ret = wp_rpc_send_ctl(ep, WP_FT_REQ, 0, x->id, WP_METHOD_XFER_READ, 0, r,
					      n);
			free(r);
			x->st.frames = 1;
		}
	}
	if (ret < 0) {
		/* Some frames may be queued already: cancel the call (the peer
		 * drops the answer) and report the error through on_done once
		 * those frames are done with the region. */
		x->status = ret;
		wp_rpc_cancel(ep, x->id);
	}
	return 0;
}

/* ---- serving a read ------------------------------------------------------ */

/* WP_METHOD_XFER_READ, registered through rpc like any method: the answer
 * is XFER frames aimed at the initiator's region, then DATA+LAST. */
static void xfer_serve_read(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_ep *ep = wp_call_ep(call);
	const uint8_t *payload = req->data;
	struct xfer_read_req r;
	struct wp_mr *src;
	uint32_t n, frames = 0;
	uint64_t zero = 0;
	uint32_t status = 0;

	if (req->len < sizeof(r)) {
		status = EINVAL;
		goto out;
	}
	memcpy(&r, payload, sizeof(r));
	n = le32toh(r.ndesc);
	if (n == 0 || n > XFER_MAX_DESC ||
	    req->len != sizeof(r) + (uint64_t)n * sizeof(struct xfer_read_ent)) {
		status = EINVAL;
		goto out;
	}
	src = wp_mr_by_id(ep->ctx, le32toh(r.src_id), le32toh(r.src_key));
	if (!src) {
		status = EACCES;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct xfer_read_ent e;
		uint64_t so, doff, len;

		memcpy(&e, payload + sizeof(r) + i * sizeof(e), sizeof(e));
		so = le64toh(e.src_off);
		doff = le64toh(e.dst_off);
		len = le64toh(e.len);
		if (so > src->len || len > src->len - so) {
			status = ERANGE;
			goto out;
		}
		/* In place from the region (zero-copy sized on uring); the region
		 * must outlive the frames, as for any exported region. */
		if (send_frames(ep, wp_call_id(call), false, src->addr + so, len, doff,
				le32toh(r.dst_id), le32toh(r.dst_key), NULL, NULL, &frames) < 0) {
			status = ENOMEM;
			goto out;
		}
	}
out:
	wp_call_reply_status(call, status, &zero, sizeof(zero));
}

/* ---- attaching to a context ------------------------------------------ */

static void xfer_ep_free(struct wp_ep *ep)
{
	free(ep->up[WP_LAYER_XFER]);
	ep->up[WP_LAYER_XFER] = NULL;
}

static const struct wp_layer_ops xfer_layer = { .ep_free = xfer_ep_free };

int wp_xfer_attach(struct wp_ctx *ctx)
{
	wp_conn_layer_set(ctx, WP_LAYER_XFER, &xfer_layer);
	wp_conn_on_frame(ctx, WP_FT_XFER, xfer_on_frame);
	ctx->rx_place = xfer_place; /* bulk pieces land without assembly */
	return wp_rpc_register_reserved(ctx, WP_METHOD_XFER_READ, xfer_serve_read, NULL);
}
