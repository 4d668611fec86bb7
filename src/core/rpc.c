// SPDX-License-Identifier: MIT
/*
 * RPC over frames: request ids, many calls in flight per endpoint, unary and
 * streamed responses, deadlines, cancellation, and a clear error for every
 * pending call when the peer goes away. The server side dispatches REQ frames
 * to registered handlers and answers the built-in stats method.
 *
 * Client calls live in a per-endpoint slot table: id = (generation << 32) |
 * slot, so a lookup is one index plus an id compare, and a late answer to a
 * cancelled or timed-out call (its slot reused with a new generation) is
 * recognised and ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

struct wp_pending {           /* a client call in flight */
	uint64_t id;          /* 0 = free slot */
	uint64_t deadline_ns; /* 0 = none */
	void (*on_data)(void *arg, struct wp_msg *chunk);
	void (*on_done)(void *arg, int status);
	void *arg;
	uint32_t next_free;
};

struct wp_call {
	struct wp_ep *ep;
	struct wp_call *prev, *next; /* rpc_ep->srv_calls */
	uint64_t req_id;
	uint32_t method;
	bool cancelled;
	bool ended;
};

/* Per endpoint (ep->up[WP_LAYER_RPC]), made at its first call. */
struct rpc_ep {
	/* client calls: slot table, id = (gen << 32) | slot */
	struct wp_pending *calls;
	uint32_t calls_cap, calls_live, free_head;
	uint32_t gen;
	struct wp_call *srv_calls; /* server calls in progress */
};

struct rpc_handler {
	uint32_t method;
	wp_handler_fn fn;
	void *arg;
};

/* Per context (ctx->up[WP_LAYER_RPC]). */
struct rpc_ctx {
	struct rpc_handler *handlers;
	uint32_t nhandlers;
	uint64_t next_deadline;     /* earliest client-call deadline, 0 = none */
	struct wp_poller deadlines; /* on ctx->pollers once a deadline was set */
	bool deadlines_on;
	struct wp_ctx *ctx;
};

static struct rpc_ctx *rctx(const struct wp_ctx *ctx)
{
	return ctx->up[WP_LAYER_RPC];
}

static struct rpc_ep *rep(const struct wp_ep *ep)
{
	return ep->up[WP_LAYER_RPC];
}

/* The endpoint's RPC state, made on first use; NULL if out of memory. */
static struct rpc_ep *rep_get(struct wp_ep *ep)
{
	struct rpc_ep *r = ep->up[WP_LAYER_RPC];

	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->gen = 1;
	r->free_head = UINT32_MAX;
	ep->up[WP_LAYER_RPC] = r;
	return r;
}

static struct wp_pending *pending_find(struct wp_ep *ep, uint64_t id)
{
	struct rpc_ep *r = rep(ep);
	uint32_t slot = (uint32_t)id;

	if (!r || slot >= r->calls_cap || r->calls[slot].id != id || id == 0)
		return NULL;
	return &r->calls[slot];
}

static int pending_alloc(struct wp_ep *ep, struct wp_pending **out)
{
	struct rpc_ep *r = rep_get(ep);
	uint32_t slot;

	if (!r)
		return -ENOMEM;
	if (r->free_head == UINT32_MAX) {
		uint32_t cap = r->calls_cap ? r->calls_cap * 2 : 64;
		struct wp_pending *c = realloc(r->calls, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		memset(c + r->calls_cap, 0, (cap - r->calls_cap) * sizeof(*c));
		/* Chain the new slots, lowest first. */
		for (uint32_t i = cap; i-- > r->calls_cap;) {
			c[i].next_free = r->free_head;
			r->free_head = i;
		}
		r->calls = c;
		r->calls_cap = cap;
	}
	slot = r->free_head;
	r->free_head = r->calls[slot].next_free;
	r->calls[slot].id = ((uint64_t)r->gen++ << 32) | slot;
	if (r->gen == 0)
		r->gen = 1;
	r->calls_live++;
	*out = &r->calls[slot];
	return 0;
}

static void pending_free(struct wp_ep *ep, struct wp_pending *c)
{
	struct rpc_ep *r = rep(ep);
	uint32_t slot = (uint32_t)(c - r->calls);

	c->id = 0;
	c->next_free = r->free_head;
	r->free_head = slot;
	r->calls_live--;
}

static void count_status(int status)
{
	if (status == 0)
		WP_CNT_ADD(calls_ok, 1);
	else if (status == -ETIMEDOUT)
		WP_CNT_ADD(calls_timeout, 1);
	else if (status == -ECANCELED)
		WP_CNT_ADD(calls_cancelled, 1);
	else
		WP_CNT_ADD(calls_failed, 1);
}

/* Finish a call: free its slot first, so on_done may start new calls. */
static void pending_complete(struct wp_ep *ep, struct wp_pending *c, int status, bool defer)
{
	void (*fn)(void *, int) = c->on_done;
	void *arg = c->arg;

	pending_free(ep, c);
	count_status(status);
	if (!fn)
		return;
	if (defer)
		wp_defer(ep->ctx, fn, arg, status);
	else
		fn(arg, status);
}

static int send_ctl(struct wp_ep *ep, uint8_t type, uint64_t id, uint32_t method, uint32_t aux,
		    const void *data, size_t len, wp_done_fn done, void *arg)
{
	struct wp_frame_hdr h = { .type = type, .req_id = id, .method = method, .aux = aux };

	return wp_conn_send(ep, &h, data, len, done, arg);
}

int wp_rpc_send_ctl(struct wp_ep *ep, uint8_t type, uint16_t flags, uint64_t id, uint32_t method,
		    uint32_t aux, const void *data, size_t len)
{
	struct wp_frame_hdr h = { .type = type,
				  .flags = flags,
				  .req_id = id,
				  .method = method,
				  .aux = aux };

	return wp_conn_send(ep, &h, data, len, NULL, NULL);
}

/* ---- deadlines ------------------------------------------------------- */

/*
 * Deadlines are a poller on the context's progress loop: before the path may
 * sleep it caps the wait at the earliest deadline, after the round it
 * completes the calls that are due. Checked only when the earliest one is.
 */
static int64_t deadlines_max_wait(void *arg)
{
	struct rpc_ctx *rc = arg;
	uint64_t now;

	if (!rc->next_deadline)
		return -1;
	now = wp_now_ns();
	if (rc->next_deadline <= now)
		return 0;
	return (int64_t)((rc->next_deadline - now + 999) / 1000);
}

static int deadlines_poll(void *arg);

static void set_deadline(struct wp_ep *ep, struct wp_pending *c, int64_t deadline_us)
{
	struct rpc_ctx *rc = rctx(ep->ctx);

	c->deadline_ns = wp_now_ns() + (uint64_t)deadline_us * 1000;
	if (!rc->next_deadline || c->deadline_ns < rc->next_deadline)
		rc->next_deadline = c->deadline_ns;
	if (!rc->deadlines_on) {
		rc->deadlines = (struct wp_poller){ .max_wait = deadlines_max_wait,
						    .poll = deadlines_poll,
						    .arg = rc };
		wp_ctx_poller_add(ep->ctx, &rc->deadlines);
		rc->deadlines_on = true;
	}
}

/* A call slot whose frames the caller sends itself (bulk transfers). */
int wp_rpc_pending_new(struct wp_ep *ep, void (*on_data)(void *, struct wp_msg *),
		       void (*on_done)(void *, int), void *arg, int64_t deadline_us, uint64_t *id)
{
	struct wp_pending *c;
	int ret = pending_alloc(ep, &c);

	if (ret < 0)
		return ret;
	c->on_data = on_data;
	c->on_done = on_done;
	c->arg = arg;
	c->deadline_ns = 0;
	if (deadline_us > 0)
		set_deadline(ep, c, deadline_us);
	*id = c->id;
	return 0;
}

int wp_rpc_call(struct wp_ep *ep, const struct wp_call_params *p, uint64_t *id)
{
	struct wp_pending *c;
	int ret;

	if (ep->state != WP_EPS_OPEN && ep->state != WP_EPS_CONNECTING)
		return -ENOTCONN;
	if (p->req_len > ep->ctx->o.max_frame)
		return -EMSGSIZE;
	ret = pending_alloc(ep, &c);
	if (ret < 0)
		return ret;
	c->on_data = p->on_data;
	c->on_done = p->on_done;
	c->arg = p->arg;
	c->deadline_ns = 0;
	ret = send_ctl(ep, WP_FT_REQ, c->id, p->method, 0, p->req, p->req_len, p->req_done, p->arg);
	if (ret < 0) {
		pending_free(ep, c);
		return ret;
	}
	if (p->deadline_us > 0)
		set_deadline(ep, c, p->deadline_us);
	if (id)
		*id = c->id;
	return 0;
}

int wp_rpc_cancel(struct wp_ep *ep, uint64_t id)
{
	struct wp_pending *c = pending_find(ep, id);

	if (!c)
		return -ENOENT;
	if (ep->state == WP_EPS_OPEN || ep->state == WP_EPS_CONNECTING)
		send_ctl(ep, WP_FT_CANCEL, id, 0, 0, NULL, 0, NULL, NULL);
	pending_complete(ep, c, -ECANCELED, true);
	return 0;
}

uint32_t wp_ep_inflight(const struct wp_ep *ep)
{
	return rep(ep) ? rep(ep)->calls_live : 0;
}

/* The endpoint closed: every client call fails, server calls are cancelled. */
static void rpc_ep_closed(struct wp_ep *ep, int status)
{
	struct rpc_ep *r = rep(ep);

	if (!r)
		return;
	for (uint32_t i = 0; i < r->calls_cap && r->calls_live; i++)
		if (r->calls[i].id)
			pending_complete(ep, &r->calls[i], status, true);
	for (struct wp_call *k = r->srv_calls; k; k = k->next)
		k->cancelled = true;
}

static int deadlines_poll(void *arg)
{
	struct rpc_ctx *rc = arg;
	uint64_t next = 0, now;

	if (!rc->next_deadline)
		return 0;
	now = wp_now_ns();
	if (now < rc->next_deadline)
		return 0;
	for (struct wp_ep *ep = rc->ctx->eps; ep; ep = ep->next_all) {
		struct rpc_ep *r = rep(ep);

		for (uint32_t i = 0; r && i < r->calls_cap && r->calls_live; i++) {
			struct wp_pending *c = &r->calls[i];

			if (!c->id || !c->deadline_ns)
				continue;
			if (c->deadline_ns <= now) {
				if (ep->state == WP_EPS_OPEN)
					send_ctl(ep, WP_FT_CANCEL, c->id, 0, 0, NULL, 0, NULL,
						 NULL);
				pending_complete(ep, c, -ETIMEDOUT, false);
			} else if (!next || c->deadline_ns < next) {
				next = c->deadline_ns;
			}
		}
	}
	rc->next_deadline = next;
	return 0;
}

/* ---- server side ----------------------------------------------------- */

static int handler_set(struct wp_ctx *ctx, uint32_t method, wp_handler_fn fn, void *arg)
{
	struct rpc_ctx *rc = rctx(ctx);
	struct rpc_handler *h;

	for (uint32_t i = 0; i < rc->nhandlers; i++) {
		if (rc->handlers[i].method == method) {
			rc->handlers[i].fn = fn;
			rc->handlers[i].arg = arg;
			return 0;
		}
	}
	h = realloc(rc->handlers, (rc->nhandlers + 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc->handlers = h;
	h[rc->nhandlers++] = (struct rpc_handler){ method, fn, arg };
	return 0;
}

int wp_rpc_register(struct wp_ctx *ctx, uint32_t method, wp_handler_fn fn, void *arg)
{
	if (!fn || method >= WP_METHOD_RESERVED)
		return -EINVAL;
	return handler_set(ctx, method, fn, arg);
}

int wp_rpc_register_reserved(struct wp_ctx *ctx, uint32_t method, wp_handler_fn fn, void *arg)
{
	if (!fn || method < WP_METHOD_RESERVED)
		return -EINVAL;
	return handler_set(ctx, method, fn, arg);
}

static void call_free(struct wp_call *k)
{
	struct wp_ep *ep = k->ep;

	if (k->prev)
		k->prev->next = k->next;
	else
		rep(ep)->srv_calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	ep->refs--;
	free(k);
}

/* The built-in stats method: the process meter, for a remote bench. With a
 * front door, for admin tenants only. */
static void serve_stats(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_meter_snap s;
	uint64_t le[WP_METER_FIELDS];
	const uint64_t *v = (const uint64_t *)&s;

	/* A peer proved at set-up speaks only as its tenant (shm). */
	if (!wp_conn_admin(call->ep->ctx,
			   call->ep->peer_verified ? call->ep->tenant : req->tenant)) {
		wp_call_error(call, EACCES, "stats: tenant is not admin");
		return;
	}
	wp_meter_snapshot(&s);
	for (size_t i = 0; i < WP_METER_FIELDS; i++)
		le[i] = htole64(v[i]);
	wp_call_reply(call, le, sizeof(le), NULL, NULL);
}

static void serve_request(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct rpc_ctx *rc = rctx(ep->ctx);
	struct rpc_handler *hd = NULL;
	struct rpc_ep *r;
	struct wp_call *k;
	struct wp_msg m = { .data = payload,
			    .len = h->len,
			    .method = h->method,
			    .tenant = h->tenant,
			    .req_id = h->req_id };
	char why[64];

	for (uint32_t i = 0; i < rc->nhandlers; i++) {
		if (rc->handlers[i].method == h->method) {
			hd = &rc->handlers[i];
			break;
		}
	}
	if (!hd) {
		int n = snprintf(why, sizeof(why), "no handler for method %u", h->method);

		send_ctl(ep, WP_FT_ERR, h->req_id, h->method, ENOSYS, why, (size_t)n, NULL, NULL);
		return;
	}
	r = rep_get(ep);
	k = r ? calloc(1, sizeof(*k)) : NULL;
	if (!k) {
		send_ctl(ep, WP_FT_ERR, h->req_id, h->method, ENOMEM, "out of memory", 13, NULL,
			 NULL);
		return;
	}
	k->ep = ep;
	k->req_id = h->req_id;
	k->method = h->method;
	k->next = r->srv_calls;
	if (k->next)
		k->next->prev = k;
	r->srv_calls = k;
	ep->refs++;
	hd->fn(hd->arg, k, &m);
}

static int rpc_on_req(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	serve_request(ep, h, payload);
	return 0;
}

static int rpc_on_cancel(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	for (struct wp_call *k = rep(ep) ? rep(ep)->srv_calls : NULL; k; k = k->next) {
		if (k->req_id == h->req_id) {
			k->cancelled = true;
			break;
		}
	}
	return 0;
}

/* DATA, END and ERR: answers to our calls. Unknown ids are late answers to
 * calls that were cancelled or timed out: ignored, not a protocol error. */
static int rpc_on_answer(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct wp_pending *c = pending_find(ep, h->req_id);

	if (!c)
		return 0;
	if (h->type == WP_FT_DATA) {
		uint64_t id = c->id;

		if (c->on_data) {
			struct wp_msg m = { .data = payload,
					    .len = h->len,
					    .method = h->method,
					    .tenant = h->tenant,
					    .req_id = h->req_id };

			c->on_data(c->arg, &m);
			/* on_data may have cancelled the call or closed the endpoint. */
			c = pending_find(ep, id);
			if (!c)
				return 0;
		}
		if (h->flags & WP_FF_LAST)
			pending_complete(ep, c, (int)h->aux, false);
		return 0;
	}
	if (h->type == WP_FT_ERR) {
		wp_log(ep->ctx, WP_LOG_DEBUG, "call %llu failed on the server (%u): %.*s",
		       (unsigned long long)h->req_id, h->aux, (int)(h->len < 200 ? h->len : 200),
		       (const char *)payload);
		pending_complete(ep, c, h->aux ? (int)h->aux : EIO, false);
		return 0;
	}
	pending_complete(ep, c, (int)h->aux, false);
	return 0;
}

static int call_send(struct wp_call *k, uint8_t type, uint16_t flags, uint32_t aux,
		     const void *data, size_t len, wp_done_fn done, void *arg)
{
	struct wp_frame_hdr h = { .type = type,
				  .flags = flags,
				  .req_id = k->req_id,
				  .method = k->method,
				  .aux = aux };

	if (k->ended)
		return -EINVAL;
	if (k->ep->state != WP_EPS_OPEN)
		return -ENOTCONN;
	return wp_conn_send(k->ep, &h, data, len, done, arg);
}

/* Terminal answers free the handle even when the peer is gone: the handler
 * is done with it either way. A negative return means the payload was not
 * taken and `done` will not run. */
static int call_finish(struct wp_call *k, int ret)
{
	k->ended = true;
	call_free(k);
	return ret;
}

int wp_call_reply(struct wp_call *call, const void *data, size_t len, wp_done_fn done, void *arg)
{
	return call_finish(call, call_send(call, WP_FT_DATA, WP_FF_LAST, 0, data, len, done, arg));
}

int wp_call_reply_status(struct wp_call *call, uint32_t status, const void *data, size_t len)
{
	return call_finish(call,
			   call_send(call, WP_FT_DATA, WP_FF_LAST, status, data, len, NULL, NULL));
}

int wp_call_stream(struct wp_call *call, const void *data, size_t len, wp_done_fn done, void *arg)
{
	return call_send(call, WP_FT_DATA, 0, 0, data, len, done, arg);
}

int wp_call_end(struct wp_call *call, uint32_t status)
{
	return call_finish(call, call_send(call, WP_FT_END, 0, status, NULL, 0, NULL, NULL));
}

int wp_call_error(struct wp_call *call, uint32_t status, const char *why)
{
	size_t n = why ? strlen(why) : 0;

	return call_finish(call, call_send(call, WP_FT_ERR, 0, status ? status : EIO, why, n, NULL,
					   NULL));
}

int wp_call_cancelled(const struct wp_call *call)
{
	return call->cancelled || call->ep->state != WP_EPS_OPEN;
}

struct wp_ep *wp_call_ep(const struct wp_call *call)
{
	return call->ep;
}

uint64_t wp_call_id(const struct wp_call *call)
{
	return call->req_id;
}

/* ---- attaching to a context ------------------------------------------ */

/* Server calls the application still holds die with the endpoint (only
 * at context destruction: until then they hold it open). */
static void rpc_ep_free(struct wp_ep *ep)
{
	struct rpc_ep *r = rep(ep);

	if (!r)
		return;
	while (r->srv_calls) {
		struct wp_call *k = r->srv_calls;

		r->srv_calls = k->next;
		free(k);
	}
	free(r->calls);
	free(r);
	ep->up[WP_LAYER_RPC] = NULL;
}

static void rpc_ctx_free(struct wp_ctx *ctx)
{
	struct rpc_ctx *rc = rctx(ctx);

	if (!rc)
		return;
	if (rc->deadlines_on)
		wp_ctx_poller_del(ctx, &rc->deadlines);
	free(rc->handlers);
	free(rc);
	ctx->up[WP_LAYER_RPC] = NULL;
}

static const struct wp_layer_ops rpc_layer = {
	.ep_closed = rpc_ep_closed,
	.ep_free = rpc_ep_free,
	.ctx_free = rpc_ctx_free,
};

int wp_rpc_attach(struct wp_ctx *ctx)
{
	struct rpc_ctx *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return -ENOMEM;
	rc->ctx = ctx;
	ctx->up[WP_LAYER_RPC] = rc;
	wp_conn_layer_set(ctx, WP_LAYER_RPC, &rpc_layer);
	wp_conn_on_frame(ctx, WP_FT_REQ, rpc_on_req);
	wp_conn_on_frame(ctx, WP_FT_CANCEL, rpc_on_cancel);
	wp_conn_on_frame(ctx, WP_FT_DATA, rpc_on_answer);
	wp_conn_on_frame(ctx, WP_FT_END, rpc_on_answer);
	wp_conn_on_frame(ctx, WP_FT_ERR, rpc_on_answer);
	return wp_rpc_register_reserved(ctx, WP_METHOD_STATS, serve_stats, NULL);
}
