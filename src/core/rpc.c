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

static struct wp_pending *pending_find(struct wp_ep *ep, uint64_t id)
{
	uint32_t slot = (uint32_t)id;

	if (slot >= ep->calls_cap || ep->calls[slot].id != id || id == 0)
		return NULL;
	return &ep->calls[slot];
}

static int pending_alloc(struct wp_ep *ep, struct wp_pending **out)
{
	uint32_t slot;

	if (ep->free_head == UINT32_MAX) {
		uint32_t cap = ep->calls_cap ? ep->calls_cap * 2 : 64;
		struct wp_pending *c = realloc(ep->calls, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		memset(c + ep->calls_cap, 0, (cap - ep->calls_cap) * sizeof(*c));
		/* Chain the new slots, lowest first. */
		for (uint32_t i = cap; i-- > ep->calls_cap;) {
			c[i].next_free = ep->free_head;
			ep->free_head = i;
		}
		ep->calls = c;
		ep->calls_cap = cap;
	}
	slot = ep->free_head;
	ep->free_head = ep->calls[slot].next_free;
	ep->calls[slot].id = ((uint64_t)ep->gen++ << 32) | slot;
	if (ep->gen == 0)
		ep->gen = 1;
	ep->calls_live++;
	*out = &ep->calls[slot];
	return 0;
}

static void pending_free(struct wp_ep *ep, struct wp_pending *c)
{
	uint32_t slot = (uint32_t)(c - ep->calls);

	c->id = 0;
	c->next_free = ep->free_head;
	ep->free_head = slot;
	ep->calls_live--;
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
	struct wp_frame_hdr h = { .type = type, .flags = flags, .req_id = id, .method = method,
				  .aux = aux };

	return wp_conn_send(ep, &h, data, len, NULL, NULL);
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
	if (deadline_us > 0) {
		c->deadline_ns = wp_now_ns() + (uint64_t)deadline_us * 1000;
		if (!ep->ctx->next_deadline || c->deadline_ns < ep->ctx->next_deadline)
			ep->ctx->next_deadline = c->deadline_ns;
	}
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
	ret = send_ctl(ep, WP_FT_REQ, c->id, p->method, 0, p->req, p->req_len, p->req_done,
		       p->arg);
	if (ret < 0) {
		pending_free(ep, c);
		return ret;
	}
	if (p->deadline_us > 0) {
		c->deadline_ns = wp_now_ns() + (uint64_t)p->deadline_us * 1000;
		if (!ep->ctx->next_deadline || c->deadline_ns < ep->ctx->next_deadline)
			ep->ctx->next_deadline = c->deadline_ns;
	}
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
	return ep->calls_live;
}

void wp_rpc_fail_all(struct wp_ep *ep, int status)
{
	for (uint32_t i = 0; i < ep->calls_cap && ep->calls_live; i++)
		if (ep->calls[i].id)
			pending_complete(ep, &ep->calls[i], status, true);
	for (struct wp_call *k = ep->srv_calls; k; k = k->next)
		k->cancelled = true;
}

void wp_rpc_check_deadlines(struct wp_ctx *ctx, uint64_t now)
{
	uint64_t next = 0;

	if (!ctx->next_deadline || now < ctx->next_deadline)
		return;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		for (uint32_t i = 0; i < ep->calls_cap && ep->calls_live; i++) {
			struct wp_pending *c = &ep->calls[i];

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
	ctx->next_deadline = next;
}

void wp_rpc_free(struct wp_ep *ep)
{
	free(ep->calls);
	ep->calls = NULL;
	ep->calls_cap = 0;
}

/* ---- server side ----------------------------------------------------- */

int wp_rpc_register(struct wp_ctx *ctx, uint32_t method, wp_handler_fn fn, void *arg)
{
	struct wp_handler *h;

	if (!fn || method >= WP_METHOD_RESERVED)
		return -EINVAL;
	for (uint32_t i = 0; i < ctx->nhandlers; i++) {
		if (ctx->handlers[i].method == method) {
			ctx->handlers[i].fn = fn;
			ctx->handlers[i].arg = arg;
			return 0;
		}
	}
	h = realloc(ctx->handlers, (ctx->nhandlers + 1) * sizeof(*h));
	if (!h)
		return -ENOMEM;
	ctx->handlers = h;
	h[ctx->nhandlers++] = (struct wp_handler){ method, fn, arg };
	return 0;
}

static void call_free(struct wp_call *k)
{
	struct wp_ep *ep = k->ep;

	if (k->prev)
		k->prev->next = k->next;
	else
		ep->srv_calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	ep->refs--;
	free(k);
}

static void serve_stats(struct wp_ep *ep, uint64_t id)
{
	struct wp_frame_hdr h = { .type = WP_FT_DATA, .flags = WP_FF_LAST, .req_id = id,
				  .method = WP_METHOD_STATS };
	struct wp_meter_snap s;
	uint64_t le[WP_METER_FIELDS];
	const uint64_t *v = (const uint64_t *)&s;

	wp_meter_snapshot(&s);
	for (size_t i = 0; i < WP_METER_FIELDS; i++)
		le[i] = htole64(v[i]);

	wp_conn_send(ep, &h, le, sizeof(le), NULL, NULL);
}

static void serve_request(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct wp_ctx *ctx = ep->ctx;
	struct wp_handler *hd = NULL;
	struct wp_call *k;
	struct wp_msg m = { .data = payload, .len = h->len, .method = h->method,
			    .tenant = h->tenant, .req_id = h->req_id };
	char why[64];

	if (h->method == WP_METHOD_STATS) {
		/* With a policy, the process meter is for admin tenants only. */
		if (ctx->auth && !wp_auth_admin(ctx, h->tenant)) {
			send_ctl(ep, WP_FT_ERR, h->req_id, h->method, EACCES,
				 "stats: tenant is not admin", 26, NULL, NULL);
			return;
		}
		serve_stats(ep, h->req_id);
		return;
	}
	if (h->method == WP_METHOD_XFER_READ) {
		wp_xfer_serve_read(ep, h, payload);
		return;
	}
	for (uint32_t i = 0; i < ctx->nhandlers; i++) {
		if (ctx->handlers[i].method == h->method) {
			hd = &ctx->handlers[i];
			break;
		}
	}
	if (!hd) {
		int n = snprintf(why, sizeof(why), "no handler for method %u", h->method);

		send_ctl(ep, WP_FT_ERR, h->req_id, h->method, ENOSYS, why, (size_t)n, NULL, NULL);
		return;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		send_ctl(ep, WP_FT_ERR, h->req_id, h->method, ENOMEM, "out of memory", 13, NULL,
			 NULL);
		return;
	}
	k->ep = ep;
	k->req_id = h->req_id;
	k->method = h->method;
	k->next = ep->srv_calls;
	if (k->next)
		k->next->prev = k;
	ep->srv_calls = k;
	ep->refs++;
	hd->fn(hd->arg, k, &m);
}

int wp_rpc_input(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct wp_pending *c;

	switch (h->type) {
	case WP_FT_REQ:
		serve_request(ep, h, payload);
		return 0;
	case WP_FT_CANCEL:
		for (struct wp_call *k = ep->srv_calls; k; k = k->next) {
			if (k->req_id == h->req_id) {
				k->cancelled = true;
				break;
			}
		}
		return 0;
	case WP_FT_DATA:
	case WP_FT_END:
	case WP_FT_ERR:
		break;
	default:
		return -EPROTO;
	}

	/* Answers to our calls. Unknown ids are late answers to calls that were
	 * cancelled or timed out: ignored, not a protocol error. */
	c = pending_find(ep, h->req_id);
	if (!c)
		return 0;
	if (h->type == WP_FT_DATA) {
		uint64_t id = c->id;

		if (c->on_data) {
			struct wp_msg m = { .data = payload, .len = h->len, .method = h->method,
					    .tenant = h->tenant, .req_id = h->req_id };

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
	struct wp_frame_hdr h = { .type = type, .flags = flags, .req_id = k->req_id,
				  .method = k->method, .aux = aux };

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

int wp_call_reply(struct wp_call *call, const void *data, size_t len, wp_done_fn done,
		  void *arg)
{
	return call_finish(call, call_send(call, WP_FT_DATA, WP_FF_LAST, 0, data, len, done, arg));
}

int wp_call_stream(struct wp_call *call, const void *data, size_t len, wp_done_fn done,
		   void *arg)
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

	return call_finish(call, call_send(call, WP_FT_ERR, 0, status ? status : EIO, why, n,
					   NULL, NULL));
}

int wp_call_cancelled(const struct wp_call *call)
{
	return call->cancelled || call->ep->state != WP_EPS_OPEN;
}

struct wp_ep *wp_call_ep(const struct wp_call *call)
{
	return call->ep;
}
