// SPDX-License-Identifier: MIT
/*
 * Endpoints, common to every stream backend: the transmit queue (staging of
 * headers and small payloads, caller payloads referenced in place, in-order
 * completion), receive dispatch, and failure handling. A backend only moves
 * bytes: it takes iovecs from wp_txq_iov() and reports progress with
 * wp_txq_advance(); it hands received chunks to wp_conn_input().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

/* ---- staging blocks -------------------------------------------------- */

static struct wp_stage_blk *blk_get(struct wp_ctx *ctx)
{
	struct wp_stage_blk *b = ctx->blk_free;

	if (b) {
		ctx->blk_free = b->next;
	} else {
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
	}
	b->next = NULL;
	b->fill = 0;
	b->refs = 0;
	return b;
}

static void blk_put(struct wp_ctx *ctx, struct wp_stage_blk *b)
{
	b->next = ctx->blk_free;
	ctx->blk_free = b;
}

/* Reserve n (<= WP_STAGE_BLK) contiguous staging bytes. */
static uint8_t *stage_reserve(struct wp_ep *ep, uint32_t n, struct wp_stage_blk **blk)
{
	struct wp_txq *q = &ep->tx;
	struct wp_stage_blk *b = q->cur;

	if (b && b->fill + n > WP_STAGE_BLK) {
		if (b->refs == 0) {
			b->fill = 0; /* nothing references it: reuse in place */
		} else {
			q->cur = NULL; /* freed when its last segment completes */
			b = NULL;
		}
	}
	if (!b) {
		b = blk_get(ep->ctx);
		if (!b)
			return NULL;
		q->cur = b;
	}
	*blk = b;
	b->fill += n;
	return b->data + b->fill - n;
}

/* ---- segment ring ---------------------------------------------------- */

static int txq_grow(struct wp_txq *q)
{
	uint64_t cap = q->mask ? (q->mask + 1) * 2 : 64;
	struct wp_seg *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (uint64_t i = q->head; i != q->tail; i++)
		s[i & (cap - 1)] = q->seg[i & q->mask];
	free(q->seg);
	q->seg = s;
	q->mask = cap - 1;
	return 0;
}

static struct wp_seg *txq_push(struct wp_txq *q)
{
	if (!q->seg || q->tail - q->head > q->mask) {
		if (txq_grow(q) < 0)
			return NULL;
	}
	return &q->seg[q->tail++ & q->mask];
}

void wp_copy_done(void *arg, int status)
{
	free(arg);
}

int wp_payload_copy(const void **data, size_t len, wp_done_fn *done, void **arg)
{
	void *copy = malloc(len);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, *data, len);
	WP_CNT_ADD(bytes_copied, len);
	*data = copy;
	*done = wp_copy_done;
	*arg = copy;
	return 0;
}

static void seg_complete(struct wp_ep *ep, struct wp_seg *s, int status)
{
	struct wp_txq *q = &ep->tx;

	if (s->blk) {
		if (--s->blk->refs == 0 && s->blk != q->cur)
			blk_put(ep->ctx, s->blk);
	} else if (s->done) {
		if (status == 0)
			s->done(s->arg, 0);
		else
			wp_defer(ep->ctx, s->done, s->arg, status);
	}
}

int wp_conn_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		 wp_done_fn done, void *arg)
{
	if (ep->state != WP_EPS_OPEN && ep->state != WP_EPS_CONNECTING)
		return -ENOTCONN;
	if (len > ep->ctx->o.max_frame)
		return -EMSGSIZE;
	ep->active = true; /* the idle timer (limits.c) */
	return ep->fast.send(ep, h, data, len, done, arg);
}

int wp_txq_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		wp_done_fn done, void *arg)
{
	return wp_txq_send2(ep, h, NULL, 0, data, len, done, arg);
}

int wp_txq_send2(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *pre, uint32_t prelen,
		 const void *data, size_t len, wp_done_fn done, void *arg)
{
	struct wp_ctx *ctx = ep->ctx;
	struct wp_txq *q = &ep->tx;
	struct wp_stage_blk *blk;
	struct wp_seg *s;
	struct wp_frame_hdr hh = *h;
	bool stage_payload;
	int mode = WP_TX_PLAIN;
	wp_done_fn user_done = NULL; /* run once its payload was copied (ENCRYPT) */
	void *user_arg = NULL;
	uint64_t first;
	uint8_t *p;

	/* Small payloads ride in the staging block right after their header:
	 * copying a few hundred bytes is cheaper than an iovec each, and a
	 * burst of small frames leaves as one contiguous range. */
	stage_payload = len <= WP_COPY_MAX;
	if (prelen > 64 || len + prelen > ctx->o.max_frame)
		return -EMSGSIZE;
	hh.len = (uint32_t)len + prelen;
	if (!hh.tenant)
		hh.tenant = ep->tenant;
	if (ep->guard) { /* authentication v2: hold, seal or encrypt */
		mode = ep->guard->tx(ep, &hh, pre, prelen, data, len, done, arg);
		if (mode < 0 || mode == WP_TX_HELD)
			return mode < 0 ? mode : 0;
		/* Encrypted in place: a caller's large payload is copied first. */
		if (mode == WP_TX_ENCRYPT && !stage_payload && done) {
			user_done = done;
			user_arg = arg;
			done = NULL;
		}
	}
	/* Large payload without a completion: the caller keeps its buffer, so
	 * we copy it (counted) before anything is queued, so a failure leaves
	 * the stream intact. */
	if (!stage_payload && !done && wp_payload_copy(&data, len, &done, &arg) < 0)
		return -ENOMEM;
	if (q->tail - q->head + 2 > q->mask + 1 && txq_grow(q) < 0)
		goto out_nomem;
	p = stage_reserve(ep, WP_FRAME_HDR + prelen + (stage_payload ? (uint32_t)len : 0), &blk);
	if (!p)
		goto out_nomem;
	wp_frame_encode(&hh, p);
	if (prelen)
		memcpy(p + WP_FRAME_HDR, pre, prelen);
	first = q->tail;
	s = txq_push(q);
	s->p = p;
	s->len = WP_FRAME_HDR + prelen;
	s->blk = blk;
	s->done = NULL;
	s->done_flag = 0;
	s->zc = 0;
	blk->refs++;
	if (stage_payload) {
		if (len) {
			memcpy(p + WP_FRAME_HDR + prelen, data, len);
			WP_CNT_ADD(bytes_copied, len);
		}
		s->len += (uint32_t)len;
		if (done)
			wp_defer(ctx, done, arg, 0); /* the caller's buffer is free now */
	} else {
		s = txq_push(q); /* cannot fail: room for two was ensured above */
		s->p = data;
		s->len = (uint32_t)len;
		s->blk = NULL;
		s->done = done;
		s->arg = arg;
		s->done_flag = 0;
		s->zc = len >= ctx->o.zc_threshold;
	}
	if (user_done)
		wp_defer(ctx, user_done, user_arg, 0); /* copied: the caller's buffer is free */
	WP_CNT_ADD(msgs_tx, 1);
	WP_CNT_ADD(bytes_tx, WP_FRAME_HDR + prelen + len);
	if (!ep->dirty && ep->state == WP_EPS_OPEN)
		wp_ctx_mark_dirty(ep);
	if (mode != WP_TX_PLAIN) {
		uint8_t *payload = stage_payload ? p + WP_FRAME_HDR + prelen : (uint8_t *)data;
		int ret = ep->guard->queued(ep, first, p, prelen, payload, len);

		/* Queued already: the stream cannot take it back, so it ends. */
		if (ret < 0)
			wp_conn_fail(ep, ret);
	}
	return 0;

out_nomem:
	if (done == wp_copy_done)
		free(arg);
	return -ENOMEM;
}

int wp_txq_raw(struct wp_ep *ep, const void *bytes, uint32_t n)
{
	struct wp_txq *q = &ep->tx;
	struct wp_stage_blk *blk;
	struct wp_seg *s;
	uint8_t *p;

	if (n > 4096)
		return -EMSGSIZE;
	if (q->tail - q->head + 1 > q->mask + 1 && txq_grow(q) < 0)
		return -ENOMEM;
	p = stage_reserve(ep, n, &blk);
	if (!p)
		return -ENOMEM;
	memcpy(p, bytes, n);
	s = txq_push(q);
	s->p = p;
	s->len = n;
	s->blk = blk;
	s->done = NULL;
	s->done_flag = 0;
	s->zc = 0;
	blk->refs++;
	WP_CNT_ADD(bytes_tx, n);
	if (!ep->dirty && ep->state == WP_EPS_OPEN)
		wp_ctx_mark_dirty(ep);
	return 0;
}

int wp_txq_iov(const struct wp_txq *q, uint64_t *idx, uint32_t off, struct iovec *iov, int max,
	       size_t *bytes, bool split_zc, bool *is_zc)
{
	uint64_t i = *idx;
	int n = 0;
	size_t total = 0;
	bool zc = false;

	for (; i != q->tail; i++) {
		struct wp_seg *s = &q->seg[i & q->mask];
		const uint8_t *p = s->p;
		size_t len = s->len;

		if (split_zc && s->zc) {
			if (n == 0) { /* a zero-copy payload goes alone */
				iov[0].iov_base = (void *)(p + off);
				iov[0].iov_len = len - off;
				total = len - off;
				n = 1;
				zc = true;
				i++;
			}
			break;
		}
		p += off;
		len -= off;
		off = 0;
		if (n > 0 && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
			iov[n - 1].iov_len += len; /* contiguous staging: merge */
		} else {
			if (n == max)
				break;
			iov[n].iov_base = (void *)p;
			iov[n].iov_len = len;
			n++;
		}
		total += len;
	}
	*idx = i;
	*bytes = total;
	if (is_zc)
		*is_zc = zc;
	return n;
}

static void txq_release(struct wp_ep *ep)
{
	struct wp_txq *q = &ep->tx;

	while (q->head != q->sent) {
		struct wp_seg *s = &q->seg[q->head & q->mask];

		if (!s->done_flag)
			break;
		q->head++;
		seg_complete(ep, s, 0);
	}
}

void wp_txq_advance(struct wp_ep *ep, size_t n, bool mark_done)
{
	struct wp_txq *q = &ep->tx;

	while (n > 0 && q->sent != q->tail) {
		struct wp_seg *s = &q->seg[q->sent & q->mask];
		size_t rem = s->len - q->sent_off;

		if (n < rem) {
			q->sent_off += (uint32_t)n;
			break;
		}
		n -= rem;
		q->sent_off = 0;
		if (mark_done)
			s->done_flag = 1;
		q->sent++;
	}
	if (mark_done)
		txq_release(ep);
}

void wp_txq_release_range(struct wp_ep *ep, uint64_t from, uint64_t upto)
{
	struct wp_txq *q = &ep->tx;

	for (uint64_t i = from; i != upto; i++)
		q->seg[i & q->mask].done_flag = 1;
	txq_release(ep);
}

void wp_txq_drop(struct wp_ep *ep, int status)
{
	struct wp_txq *q = &ep->tx;

	/* q->handed is stale once the queue has moved past it. */
	uint64_t handed = q->handed - q->sent <= q->tail - q->sent ? q->handed : q->sent;

	/* Never handed to the kernel: complete (with the error) now. */
	if (!ep->io_inflight)
		handed = q->sent;
	while (q->tail != handed) {
		struct wp_seg *s = &q->seg[--q->tail & q->mask];

		seg_complete(ep, s, status);
	}
	q->sent_off = 0;
	/* Handed to the kernel (uring sends submitted but not completed, zero-copy
	 * sends awaiting their notification): the kernel may still read these
	 * pages, so their owners get them back only once no kernel op is in
	 * flight (wp_txq_release_range, or wp_ep_free after the last CQE). */
	if (ep->io_inflight)
		return;
	while (q->head != q->sent) {
		struct wp_seg *s = &q->seg[q->head++ & q->mask];

		seg_complete(ep, s, s->done_flag ? 0 : status);
	}
}

/* ---- endpoints ----------------------------------------------------- */

struct wp_ep *wp_ep_alloc(struct wp_ctx *ctx, const struct wp_ep_cbs *cbs)
{
	struct wp_ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	if (ctx->ops->ep_size && !(ep->bk = calloc(1, ctx->ops->ep_size))) {
		free(ep);
		return NULL;
	}
	ep->ctx = ctx;
	ep->fast = *ctx->ops->fast;
	/* Stream paths' frames go to the shared transmit queue; their flush
	 * takes them from there. */
	if (ctx->ops->caps & WP_CAP_STREAM)
		ep->fast.send = wp_txq_send;
	ep->fd = -1;
	if (cbs)
		ep->cbs = *cbs;
	wp_rx_init(&ep->rx, ctx->o.max_frame);
	ep->rx.budget = &ctx->lim.budget; /* assembly memory is the context's */
	/* Bulk transfers land without assembly, except where a guard will
	 * judge the peer: nothing is placed before it proved its key (the
	 * guard installs placement when its records start). */
	ep->rx.place = ctx->guard ? NULL : ctx->rx_place;
	ep->next_all = ctx->eps;
	if (ctx->eps)
		ctx->eps->prev_all = ep;
	ctx->eps = ep;
	ctx->ops->ep_init(ep);
	return ep;
}

void wp_ep_free(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;

	/*
	 * Still on the flush list: its owner closed it outside
	 * wp_ctx_progress (freed at once) or it is reaped at the end of a
	 * round, after output was queued since the last flush (a completion
	 * deferred to the end of the round sent more). The flush loop must
	 * never see it again. Found by the soak under ASan.
	 */
	if (ep->dirty) {
		for (struct wp_ep **pp = &ctx->dirty; *pp; pp = &(*pp)->next_dirty)
			if (*pp == ep) {
				*pp = ep->next_dirty;
				break;
			}
		ep->dirty = false;
	}
	if (ep->prev_all)
		ep->prev_all->next_all = ep->next_all;
	else
		ctx->eps = ep->next_all;
	if (ep->next_all)
		ep->next_all->prev_all = ep->prev_all;
	ep->io_inflight = 0;
	wp_txq_drop(ep, -ECONNABORTED);
	if (ep->tx.cur)
		blk_put(ctx, ep->tx.cur);
	free(ep->tx.seg);
	wp_rx_free(&ep->rx);
	free(ep->stash);
	for (int i = WP_LAYERS; i-- > 0;)
		if (ctx->layer[i] && ctx->layer[i]->ep_free)
			ctx->layer[i]->ep_free(ep);
	ctx->ops->ep_free(ep);
	free(ep->bk);
	free(ep);
}

bool wp_ep_freeable(const struct wp_ep *ep)
{
	return ep->state == WP_EPS_CLOSED && ep->owner_released && ep->refs == 0 &&
	       ep->io_inflight == 0;
}

void wp_conn_established(struct wp_ep *ep)
{
	ep->state = WP_EPS_OPEN;
	WP_CNT_ADD(conns_opened, 1);
	if (wp_txq_pending(&ep->tx) && !ep->dirty)
		wp_ctx_mark_dirty(ep);
	if (ep->cbs.event)
		ep->cbs.event(ep->cbs.arg, ep, WP_EP_CONNECTED, 0);
}

/*
 * The one shutdown routine, for every close path: the transport stops, queued
 * sends complete with send_status (or later, once the kernel lets go of
 * their pages), the layers above fail what is pending with call_status, and
 * the endpoint waits for its owner and its holds before it is freed.
 */
static void conn_shutdown(struct wp_ep *ep, int err, int send_status, int call_status,
			  bool by_owner)
{
	struct wp_ctx *ctx = ep->ctx;

	/* A connect its owner gave up on did not fail. */
	if (ep->state == WP_EPS_CONNECTING && !by_owner)
		WP_CNT_ADD(conns_failed, 1);
	else if (ep->state == WP_EPS_OPEN)
		WP_CNT_ADD(conns_closed, 1);
	wp_limits_ep_closed(ep); /* uncounted, paused bytes dropped */
	ep->state = WP_EPS_CLOSED;
	ep->err = err;
	if (ep->guard && ep->guard->closing)
		call_status = ep->guard->closing(ep, call_status);
	ctx->ops->close(ep);
	/* Assembly memory goes back to the budget now, not when the owner
	 * lets go: paused readers may resume with it. The buffer itself
	 * stays until wp_ep_free: a callback that closed us may still read
	 * the payload it was lent. */
	wp_rx_unbudget(&ep->rx);
	ep->tx_status = send_status;
	wp_txq_drop(ep, send_status);
	for (int i = WP_LAYERS; i-- > 0;)
		if (ctx->layer[i] && ctx->layer[i]->ep_closed)
			ctx->layer[i]->ep_closed(ep, call_status);
	ctx->nr_closed++;
}

void wp_conn_fail(struct wp_ep *ep, int err)
{
	struct wp_ctx *ctx = ep->ctx;

	if (ep->state == WP_EPS_CLOSED)
		return;
	conn_shutdown(ep, err, err ? err : -ECONNRESET, -ECONNRESET, false);
	if (err)
		wp_log(ctx, err == -ECONNRESET ? WP_LOG_INFO : WP_LOG_WARN,
		       "endpoint fd %d closed: %s", ep->fd, strerror(-err));
	if (ep->cbs.event)
		ep->cbs.event(ep->cbs.arg, ep, WP_EP_CLOSED, err);
	if (ep->accepted)
		ep->owner_released = true;
}

void wp_conn_drop(struct wp_ep *ep, int err)
{
	if (ep->state == WP_EPS_CLOSED)
		return;
	conn_shutdown(ep, err, err, -ECONNRESET, false);
	if (ep->cbs.event)
		ep->cbs.event(ep->cbs.arg, ep, WP_EP_CLOSED, err);
	if (ep->accepted)
		ep->owner_released = true;
}

void wp_conn_eof(struct wp_ep *ep)
{
	if (wp_rx_partial(&ep->rx)) {
		WP_CNT_ADD(bad_frames[WP_BAD_TRUNCATED], 1);
		wp_conn_fail(ep, -EPIPE);
	} else {
		wp_conn_fail(ep, 0);
	}
}

void wp_ep_accept_failed(struct wp_ep *ep, int err)
{
	ep->accepted = true; /* freed by the library once closed */
	ep->state = WP_EPS_CONNECTING;
	wp_conn_fail(ep, err);
}

void wp_conn_layer_set(struct wp_ctx *ctx, enum wp_layer_id id, const struct wp_layer_ops *ops)
{
	ctx->layer[id] = ops;
}

void wp_conn_on_frame(struct wp_ctx *ctx, uint8_t type, wp_frame_fn fn)
{
	if (type <= WP_FT__MAX)
		ctx->on_frame[type] = fn;
}

bool wp_conn_admin(const struct wp_ctx *ctx, uint32_t tenant)
{
	return !ctx->guard || ctx->guard->admin(ctx, tenant);
}

/* Best-effort CLOSE frame telling the peer why, before we hang up. */
static void send_close_frame(struct wp_ep *ep, int reason)
{
	uint8_t buf[WP_FRAME_HDR + 64];
	const char *why = wp_bad_reason_name(reason);
	size_t n = strlen(why);
	struct wp_frame_hdr h = { .type = WP_FT_CLOSE,
				  .aux = (uint32_t)reason,
				  .len = (uint32_t)n };

	/* Once the guard seals what we send, the peer refuses a plain frame:
	 * it sees the connection end instead. */
	if (ep->fd < 0 || ep->records_tx)
		return;
	wp_frame_encode(&h, buf);
	memcpy(buf + WP_FRAME_HDR, why, n);
	WP_SYSCALL(WP_SYS_WRITE);
	if (send(ep->fd, buf, WP_FRAME_HDR + n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* The peer may be gone or its window full: we close anyway. */
	}
}

void wp_conn_unexpected(struct wp_ep *ep)
{
	WP_CNT_ADD(bad_frames[WP_BAD_UNEXPECTED], 1);
	send_close_frame(ep, WP_BAD_UNEXPECTED);
	wp_conn_fail(ep, -EPROTO);
}

void wp_conn_refuse(struct wp_ep *ep, int reason, int err, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (ep->state == WP_EPS_CLOSED)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	WP_CNT_ADD(bad_frames[reason], 1);
	wp_log(ep->ctx, WP_LOG_WARN, "%s (%s): closing the connection", line,
	       wp_bad_reason_name(reason));
	send_close_frame(ep, reason);
	wp_conn_fail(ep, err);
}

int wp_conn_deliver(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	const struct wp_guard_ops *g = ep->guard ? ep->guard : ep->ctx->guard;

	/* Front door: with a guard, no frame is dispatched before the
	 * handshake, and none before its record's tag checks out
	 * (src/policy/auth.c). */
	if (g && g->check(ep, h, payload))
		return ep->state == WP_EPS_CLOSED ? 1 : 0;
	return wp_conn_dispatch(ep, h, payload);
}

int wp_conn_dispatch(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct wp_ctx *ctx = ep->ctx;
	wp_frame_fn fn;

	WP_CNT_ADD(msgs_rx, 1);
	/* The timers (limits.c): bytes moved, and the first frame ends the
	 * setup unless the guard runs a handshake (it says when it ends). */
	ep->active = true;
	if (__builtin_expect(!ep->hs_done, 0)) {
		const struct wp_guard_ops *g = ep->guard ? ep->guard : ctx->guard;

		if (!(g && g->owns_handshake))
			wp_conn_handshake_done(ep);
	}
	switch (h->type) {
	case WP_FT_MSG:
		if (ep->cbs.msg) {
			struct wp_msg m = { .data = payload,
					    .len = h->len,
					    .method = h->method,
					    .tenant = h->tenant,
					    .req_id = h->req_id };

			ep->cbs.msg(ep->cbs.arg, ep, &m);
		}
		break;
	case WP_FT_CLOSE:
		wp_log(ctx, WP_LOG_WARN, "peer closed the connection: %.*s",
		       (int)(h->len < 200 ? h->len : 200), (const char *)payload);
		wp_conn_fail(ep, -ECONNRESET);
		return 1;
	default:
		/* The decoder let only known types through; the layers above
		 * installed theirs when they attached to the context. */
		fn = h->type <= WP_FT__MAX ? ctx->on_frame[h->type] : NULL;
		if (!fn || fn(ep, h, payload) < 0) {
			wp_conn_unexpected(ep);
			return 1;
		}
	}
	/* A callback may have closed us: stop parsing this chunk. */
	return ep->state == WP_EPS_CLOSED ? 1 : 0;
}

int wp_conn_rx_deliver(void *arg, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct wp_ep *ep = arg;

	ep->partial_since = 0; /* a frame completed: the frame timer restarts */
	return wp_conn_deliver(ep, h, payload);
}

int wp_conn_feed(struct wp_ep *ep, const uint8_t *p, size_t len, int *reason)
{
	uint64_t copied0 = ep->rx.copied;
	int ret = wp_rx_feed(&ep->rx, p, len, wp_conn_rx_deliver, ep, reason);

	/* The chunk goes back to the path: held frames must not point into it. */
	if (ep->guard && ep->guard->chunk_end && ep->state != WP_EPS_CLOSED)
		ep->guard->chunk_end(ep);
	if (ep->rx.copied != copied0)
		WP_CNT_ADD(bytes_copied, ep->rx.copied - copied0);
	return ret;
}

void wp_conn_rx_error(struct wp_ep *ep, int ret, int reason)
{
	if (ret == -EPROTO) {
		WP_CNT_ADD(bad_frames[reason], 1);
		if (reason == WP_BAD_VERSION)
			wp_log(ep->ctx, WP_LOG_WARN,
			       "peer speaks wirepath frame v%u; this library speaks v%u: closing the "
			       "connection",
			       ep->rx.peer_version, WP_FRAME_VERSION);
		else
			wp_log(ep->ctx, WP_LOG_WARN,
			       "bad frame from peer (%s): closing the connection",
			       wp_bad_reason_name(reason));
		send_close_frame(ep, reason);
		wp_conn_fail(ep, -EPROTO);
	} else if (ret == -ENOMEM) {
		wp_conn_fail(ep, -ENOMEM);
	}
}

int wp_conn_input(struct wp_ep *ep, const uint8_t *p, size_t len)
{
	int reason = 0;
	int ret;

	WP_CNT_ADD(bytes_rx, len);
	ep->active = true; /* the idle timer (limits.c) */
	/* Paused for lack of receive budget: what still arrives (a path's
	 * reads in flight) queues behind what is waiting, in order. */
	if (__builtin_expect(ep->stash_len != 0, 0))
		return wp_limits_rx_full(ep, p, len);
	ret = wp_conn_feed(ep, p, len, &reason);
	if (ret == -ENOBUFS)
		return wp_limits_rx_full(ep, p + ep->rx.fed, len - ep->rx.fed);
	if (ret == -EPROTO || ret == -ENOMEM) {
		wp_conn_rx_error(ep, ret, reason);
		return ret;
	}
	return 0;
}

/* ---- sockets shared by the TCP-based paths ---------------------------- */

int wp_sock_stream(int family, bool nonblock)
{
	int fd, one = 1;

	WP_SYSCALL(WP_SYS_SOCKET);
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	/* Small RPCs must not wait for Nagle. */
	WP_SYSCALL(WP_SYS_SOCKET);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int wp_sock_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen, bool nonblock)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, ret;
	int fd = wp_sock_stream(sa->sa_family, nonblock);

	if (fd < 0)
		return fd;
	WP_SYSCALL(WP_SYS_SOCKET);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	WP_SYSCALL(WP_SYS_SOCKET);
	if (bind(fd, sa, salen) < 0)
		goto out_errno;
	WP_SYSCALL(WP_SYS_SOCKET);
	if (listen(fd, 1024) < 0)
		goto out_errno;
	WP_SYSCALL(WP_SYS_SOCKET);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto out_errno;
	ep->local_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							: ((struct sockaddr_in *)&ss)->sin_port);
	ep->fd = fd;
	ep->state = WP_EPS_LISTEN;
	return 0;

out_errno:
	ret = -errno;
	close(fd);
	return ret;
}

/* ---- public endpoint API ------------------------------------------- */

void wp_ep_close(struct wp_ep *ep)
{
	struct wp_ctx *ctx;

	if (!ep)
		return;
	ctx = ep->ctx;
	if (ep->state != WP_EPS_CLOSED)
		conn_shutdown(ep, -ECONNABORTED, -ECONNABORTED, -ECONNABORTED, true);
	ep->owner_released = true;
	if (!ctx->in_progress && wp_ep_freeable(ep)) {
		ctx->nr_closed--;
		wp_ep_free(ep);
	}
}

int wp_ep_local_port(const struct wp_ep *ep)
{
	return ep->local_port;
}

int wp_local_uri_inet(const struct wp_ep *ep, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s://127.0.0.1:%d", ep->ctx->ops->name, ep->local_port);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int wp_ep_local_uri(const struct wp_ep *ep, char *buf, size_t len)
{
	if (!ep || ep->state != WP_EPS_LISTEN)
		return -EINVAL;
	return ep->ctx->ops->local_uri(ep, buf, len);
}

void wp_no_ep_init(struct wp_ep *ep)
{
}

void wp_no_ep_free(struct wp_ep *ep)
{
}

/* Plain memory: a send from it is referenced in place (above 512 B). */
void *wp_buf_alloc_heap(struct wp_ep *ep, size_t len)
{
	void *p = NULL;

	if (!len || len > ep->ctx->o.max_frame || posix_memalign(&p, 64, len))
		return NULL;
	return p;
}

void wp_buf_free_heap(struct wp_ep *ep, void *buf)
{
	free(buf);
}

void *wp_ep_buf_alloc(struct wp_ep *ep, size_t len)
{
	if (!ep || ep->state == WP_EPS_CLOSED)
		return NULL;
	return ep->ctx->ops->buf_alloc(ep, len);
}

void wp_ep_buf_free(struct wp_ep *ep, void *buf)
{
	if (ep && buf)
		ep->ctx->ops->buf_free(ep, buf);
}

void wp_ep_set_user(struct wp_ep *ep, void *user)
{
	ep->user = user;
}

void *wp_ep_user(const struct wp_ep *ep)
{
	return ep->user;
}

void wp_ep_set_tenant(struct wp_ep *ep, uint32_t tenant)
{
	ep->tenant = tenant;
}

int wp_ep_peer(const struct wp_ep *ep, struct wp_ep_peer *out)
{
	if (ep->state != WP_EPS_OPEN)
		return -ENOTCONN;
	*out = (struct wp_ep_peer){ .pid = ep->peer_cred ? ep->peer_pid : -1,
				    .uid = ep->peer_cred ? ep->peer_uid : (uint32_t)-1,
				    .gid = ep->peer_cred ? ep->peer_gid : (uint32_t)-1,
				    .tenant = ep->peer_verified ? ep->tenant : 0,
				    .verified = ep->peer_verified,
				    .cred = ep->peer_cred };
	return 0;
}

int wp_ep_send_msg(struct wp_ep *ep, uint32_t method, const void *data, size_t len, wp_done_fn done,
		   void *arg)
{
	struct wp_frame_hdr h = { .type = WP_FT_MSG, .method = method };

	return wp_conn_send(ep, &h, data, len, done, arg);
}

struct wp_kept {
	struct wp_msg m;
	uint8_t data[];
};

struct wp_msg *wp_msg_keep(struct wp_msg *msg)
{
	struct wp_kept *k = malloc(sizeof(*k) + msg->len);

	if (!k)
		return NULL;
	k->m = *msg;
	memcpy(k->data, msg->data, msg->len);
	k->m.data = k->data;
	WP_CNT_ADD(bytes_copied, msg->len);
	return &k->m;
}

void wp_msg_release(struct wp_msg *msg)
{
	if (msg)
		free((struct wp_kept *)((char *)msg - offsetof(struct wp_kept, m)));
}
