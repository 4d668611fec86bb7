// SPDX-License-Identifier: MIT
/*
 * The context's loop primitives, below every layer: deferred completions
 * (callbacks never run inside the call that queued the work), the dirty list
 * of endpoints with output to flush, and pollers (work without a file
 * descriptor: RPC deadlines, CUDA events). conn, rpc, xfer and the paths use
 * these; wp_ctx_progress (ctx.c) drives them.
 */
#include <stdlib.h>

#include "core.h"

void wp_ctx_run_deferred(struct wp_ctx *ctx)
{
	/* Callbacks may defer more; process until empty, in order. */
	for (uint32_t i = 0; i < ctx->ndefer; i++) {
		struct wp_deferred d = ctx->defer[i];

		d.fn(d.arg, d.status);
	}
	ctx->ndefer = 0;
}

void wp_defer(struct wp_ctx *ctx, wp_done_fn fn, void *arg, int status)
{
	if (ctx->ndefer == ctx->defer_cap) {
		uint32_t cap = ctx->defer_cap ? ctx->defer_cap * 2 : 64;
		struct wp_deferred *d = realloc(ctx->defer, cap * sizeof(*d));

		if (!d) {
			/* Cannot queue: run now rather than lose a completion. */
			fn(arg, status);
			return;
		}
		ctx->defer = d;
		ctx->defer_cap = cap;
	}
	ctx->defer[ctx->ndefer++] = (struct wp_deferred){ fn, arg, status };
}

void wp_ctx_mark_dirty(struct wp_ep *ep)
{
	if (ep->dirty)
		return;
	ep->dirty = true;
	ep->next_dirty = ep->ctx->dirty;
	ep->ctx->dirty = ep;
}

/*
 * The one flush loop: each endpoint with output gets its path's transmit
 * burst. An endpoint marked dirty again during the loop (a completion run by
 * the burst queued more) is flushed again before the loop ends, so nothing
 * queued here waits for the next round's sleep.
 */
void wp_ctx_flush(struct wp_ctx *ctx)
{
	while (ctx->dirty) {
		struct wp_ep *ep = ctx->dirty;

		ctx->dirty = ep->next_dirty;
		/* Authentication v2: the open record gets its seal, so the
		 * burst ends on a record boundary (docs/protocol.md). Still
		 * marked dirty here, so queueing the seal does not requeue us. */
		if (ep->state == WP_EPS_OPEN && ep->guard && ep->guard->flush)
			ep->guard->flush(ep);
		ep->dirty = false;
		if (ep->state == WP_EPS_OPEN)
			ep->fast.flush(ep);
	}
}

void wp_ctx_poller_add(struct wp_ctx *ctx, struct wp_poller *p)
{
	p->next = ctx->pollers;
	ctx->pollers = p;
}

void wp_ctx_poller_del(struct wp_ctx *ctx, struct wp_poller *p)
{
	for (struct wp_poller **pp = &ctx->pollers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

/* The shortest sleep any poller tolerates caps this round's wait. */
int64_t wp_ctx_pollers_cap(struct wp_ctx *ctx, int64_t timeout_us)
{
	for (struct wp_poller *p = ctx->pollers; p; p = p->next) {
		int64_t w = p->max_wait(p->arg);

		if (w >= 0 && (timeout_us < 0 || w < timeout_us))
			timeout_us = w;
	}
	return timeout_us;
}

int wp_ctx_pollers_run(struct wp_ctx *ctx)
{
	struct wp_poller *p, *next;
	int n = 0;

	/* A poller's callbacks may delete it (the feed closes): read next first. */
	for (p = ctx->pollers; p; p = next) {
		next = p->next;
		n += p->poll(p->arg);
	}
	return n;
}
