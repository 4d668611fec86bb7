// SPDX-License-Identifier: MIT
/*
 * Limits for a server exposed to peers it does not trust (docs/limits.md):
 * - the receive budget: assembly memory of every connection is charged to
 *   the context (struct wp_rx_budget, rx.c); a connection the budget cannot
 *   serve stops being read (the path's rx_pause) and keeps the bytes it had
 *   in hand, in order, until memory frees;
 * - connection limits per context, per source address and per tenant;
 * - accept errors that would spin (EMFILE...) pause the listener with a
 *   backoff, as libuv and nginx do, with a rate-limited log line;
 * - timeouts (frame completion, idle, handshake), swept by one poller at a
 *   fraction of the shortest timeout with CLOCK_MONOTONIC_COARSE: the data
 *   path only sets a flag (ep->active) or clears a field per frame, never
 *   reads a clock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

#define SEC_NS 1000000000ull
#define MS_NS 1000000ull
#define SWEEP_MIN_NS (10 * MS_NS)
#define SWEEP_MAX_NS SEC_NS
#define BACKOFF_MIN_MS 10u
#define BACKOFF_MAX_MS 1000u
/* A paused connection keeps what was already on its way when it paused: at
 * most one read on tcp (64 KiB), on uring the completions of the round that
 * paused it (at most the provided-buffer ring: rx_buf_count x rx_buf_size,
 * 4 MiB by default, shared by every connection in that round). More means
 * the path could not stop, and the partial frame is shed. */
static uint64_t stash_max(const struct wp_ctx *ctx)
{
	return (1u << 20) + (uint64_t)ctx->o.rx_buf_size * ctx->o.rx_buf_count;
}

/* ---- rate-limited log ------------------------------------------------ */

void wp_log_rl(struct wp_ctx *ctx, enum wp_rl_key key, enum wp_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!wp_vlog_rl(ctx, &ctx->lim.rl[key], SEC_NS, lvl, fmt, ap))
		WP_CNT_ADD(log_suppressed, 1);
	va_end(ap);
}

/* ---- counts per key ------------------------------------------------- */

static unsigned lim_hash(const uint8_t key[16])
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	a ^= b * 0x9e3779b97f4a7c15ull;
	return (unsigned)((a * 0xff51afd7ed558ccdull) >> 56) % WP_LIM_BUCKETS;
}

static struct wp_lim_node *lim_find(struct wp_lim_node **tab, const uint8_t key[16], bool make)
{
	struct wp_lim_node **b = &tab[lim_hash(key)], *n;

	for (n = *b; n; n = n->next)
		if (!memcmp(n->key, key, 16))
			return n;
	if (!make || !(n = calloc(1, sizeof(*n))))
		return NULL;
	memcpy(n->key, key, 16);
	n->next = *b;
	*b = n;
	return n;
}

static void lim_put(struct wp_lim_node **tab, struct wp_lim_node *node)
{
	struct wp_lim_node **b;

	if (--node->n)
		return;
	for (b = &tab[lim_hash(node->key)]; *b; b = &(*b)->next) {
		if (*b == node) {
			*b = node->next;
			free(node);
			return;
		}
	}
}

static void lim_tab_free(struct wp_lim_node **tab)
{
	for (int i = 0; i < WP_LIM_BUCKETS; i++) {
		while (tab[i]) {
			struct wp_lim_node *n = tab[i];

			tab[i] = n->next;
			free(n);
		}
	}
}

/* ---- the sweep ------------------------------------------------------- */

static uint64_t ms_ns(uint32_t ms)
{
	return ms == UINT32_MAX ? 0 : (uint64_t)ms * MS_NS;
}

/* Feed a budget-paused connection what it kept; resume it if all went in. */
static void rx_retry(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;
	uint8_t *p = ep->stash;
	uint32_t len = ep->stash_len;
	int reason = 0, ret;

	ep->stash = NULL;
	ep->stash_len = 0;
	ret = wp_conn_feed(ep, p, len, &reason);
	if (ret == -ENOBUFS && ep->state == WP_EPS_OPEN) {
		/* Still no room: keep the rest, stay paused. */
		memmove(p, p + ep->rx.fed, len - ep->rx.fed);
		ep->stash = p;
		ep->stash_len = len - (uint32_t)ep->rx.fed;
		return;
	}
	free(p);
	if (ret < 0 && ret != -ENOBUFS) {
		wp_conn_rx_error(ep, ret, reason);
		return;
	}
	if (ep->state != WP_EPS_OPEN)
		return;
	ep->rx_paused = false;
	ctx->lim.npaused--;
	WP_CNT_ADD(rx_budget_resumes, 1);
	ctx->ops->rx_pause(ep, false);
}

static void rx_resume_all(struct wp_ctx *ctx)
{
	struct wp_limits *l = &ctx->lim;

	l->seen_freed = l->budget.freed;
	for (struct wp_ep *ep = ctx->eps; ep && l->npaused; ep = ep->next_all) {
		if (ep->state != WP_EPS_OPEN || !ep->rx_paused)
			continue;
		rx_retry(ep);
		/* Each retry that assembled a frame may have freed more. */
	}
}

static void timeout_close(struct wp_ep *ep, const char *what, uint64_t ms)
{
	wp_log_rl(ep->ctx, WP_RL_TIMEOUT, WP_LOG_WARN, "fd %d: %s timeout (%llu ms): closing",
		  ep->fd, what, (unsigned long long)ms);
	wp_conn_drop(ep, -ETIMEDOUT);
}

static void sweep(struct wp_ctx *ctx, uint64_t now)
{
	const struct wp_ctx_opts *o = &ctx->o;
	uint64_t frame_ns = ms_ns(o->frame_timeout_ms), idle_ns = ms_ns(o->idle_timeout_ms);
	uint64_t hs_ns = ms_ns(o->handshake_timeout_ms);

	/* Endpoints are freed only at the end of progress: closing one here
	 * leaves the list intact. */
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		if (ep->state == WP_EPS_LISTEN) {
			if (ep->rx_paused && now >= ep->resume_at) {
				ep->rx_paused = false;
				ctx->lim.nbackoff--;
				ctx->ops->rx_pause(ep, false);
			}
			continue;
		}
		if (ep->state == WP_EPS_CLOSED)
			continue;
		if (ep->active || !ep->last_active) {
			ep->active = false;
			ep->last_active = now;
		}
		if (ep->accepted && !ep->hs_done && hs_ns) {
			if (!ep->hs_since)
				ep->hs_since = now;
			else if (now - ep->hs_since >= hs_ns) {
				WP_CNT_ADD(timeouts_handshake, 1);
				timeout_close(ep, "handshake", hs_ns / MS_NS);
				continue;
			}
		}
		if (ep->state != WP_EPS_OPEN)
			continue;
		/* A record held for its seal must complete like a frame: the
		 * frames in it reset partial_since, so it has its own clock. */
		if (frame_ns && ep->guard && ep->guard->rx_open) {
			uint64_t rec;

			if (!ep->guard->rx_open(ep, &rec)) {
				ep->rec_since = 0;
			} else if (!ep->rec_since || rec != ep->rec_open) {
				ep->rec_since = now;
				ep->rec_open = rec;
			} else if (now - ep->rec_since >= frame_ns) {
				WP_CNT_ADD(timeouts_frame, 1);
				timeout_close(ep, "record completion", frame_ns / MS_NS);
				continue;
			}
		}
		if (frame_ns && (wp_rx_partial(&ep->rx) || ep->stash_len)) {
			/* wp_conn_deliver clears partial_since: a frame completed. */
			if (!ep->partial_since) {
				ep->partial_since = now;
			} else if (now - ep->partial_since >= frame_ns) {
				WP_CNT_ADD(timeouts_frame, 1);
				if (ep->rx_paused)
					WP_CNT_ADD(rx_partial_shed, 1);
				timeout_close(ep, "frame completion", frame_ns / MS_NS);
				continue;
			}
		} else {
			ep->partial_since = 0;
		}
		if (idle_ns && now - ep->last_active >= idle_ns) {
			WP_CNT_ADD(timeouts_idle, 1);
			timeout_close(ep, "idle", idle_ns / MS_NS);
		}
	}
}

static int64_t lim_max_wait(void *arg)
{
	struct wp_ctx *ctx = arg;
	struct wp_limits *l = &ctx->lim;
	uint64_t now, due = l->timers ? l->next_sweep : 0;

	if (l->npaused && l->budget.freed != l->seen_freed)
		return 0;
	if (l->nbackoff) {
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
			if (ep->state == WP_EPS_LISTEN && ep->rx_paused &&
			    (!due || ep->resume_at < due))
				due = ep->resume_at;
	}
	if (!due)
		return -1;
	now = wp_coarse_ns();
	/* The coarse clock lags by up to a tick: wake a little late, not early. */
	return due <= now ? 0 : (int64_t)((due - now) / 1000) + 1000;
}

static int lim_poll(void *arg)
{
	struct wp_ctx *ctx = arg;
	struct wp_limits *l = &ctx->lim;
	uint64_t now;

	if (l->npaused && l->budget.freed != l->seen_freed)
		rx_resume_all(ctx);
	if (!l->timers && !l->nbackoff)
		return 0;
	now = wp_coarse_ns();
	if (now < l->next_sweep && !l->nbackoff)
		return 0;
	if (now >= l->next_sweep)
		l->next_sweep = now + l->sweep_ns;
	sweep(ctx, now);
	return 0;
}

void wp_limits_init(struct wp_ctx *ctx)
{
	struct wp_limits *l = &ctx->lim;
	uint64_t shortest = 0;
	uint32_t t[3] = { ctx->o.frame_timeout_ms, ctx->o.idle_timeout_ms,
			  ctx->o.handshake_timeout_ms };

	l->budget.limit = ctx->o.rx_budget;
	l->budget.big_limit = ctx->o.rx_budget - ctx->o.rx_budget / 8;
	/* A budget close to max_frame: the largest frame must still fit. */
	if (l->budget.big_limit < ctx->o.max_frame)
		l->budget.big_limit = ctx->o.max_frame;
	for (int i = 0; i < 3; i++)
		if (ms_ns(t[i]) && (!shortest || ms_ns(t[i]) < shortest))
			shortest = ms_ns(t[i]);
	l->timers = shortest != 0;
	/* An eighth of the shortest timeout: a timeout fires between T and
	 * T + T/8 (+ a coarse tick). */
	l->sweep_ns = shortest / 8;
	if (l->sweep_ns < SWEEP_MIN_NS)
		l->sweep_ns = SWEEP_MIN_NS;
	if (l->sweep_ns > SWEEP_MAX_NS)
		l->sweep_ns = SWEEP_MAX_NS;
	l->poller.max_wait = lim_max_wait;
	l->poller.poll = lim_poll;
	l->poller.arg = ctx;
}

void wp_limits_start(struct wp_ctx *ctx)
{
	if (ctx->lim.started)
		return;
	ctx->lim.started = true;
	ctx->lim.next_sweep = wp_coarse_ns() + ctx->lim.sweep_ns;
	wp_ctx_poller_add(ctx, &ctx->lim.poller);
}

void wp_limits_fini(struct wp_ctx *ctx)
{
	if (ctx->lim.started)
		wp_ctx_poller_del(ctx, &ctx->lim.poller);
	ctx->lim.started = false;
	lim_tab_free(ctx->lim.src);
	lim_tab_free(ctx->lim.tenant);
}

/* ---- the receive budget ------------------------------------------- */

int wp_limits_rx_full(struct wp_ep *ep, const uint8_t *p, size_t len)
{
	struct wp_ctx *ctx = ep->ctx;
	uint8_t *s;

	if (ep->stash_len + len > stash_max(ctx)) {
		/* The path kept delivering after the pause (or cannot pause):
		 * what it holds would grow without bound. */
		WP_CNT_ADD(rx_partial_shed, 1);
		wp_log_rl(ctx, WP_RL_BUDGET, WP_LOG_WARN,
			  "fd %d: receive budget spent and %u bytes waiting: shedding the "
			  "partial frame and closing",
			  ep->fd, ep->stash_len + (uint32_t)len);
		wp_conn_drop(ep, -ENOBUFS);
		return -ENOBUFS;
	}
	if (len) {
		s = realloc(ep->stash, ep->stash_len + len);
		if (!s) {
			wp_conn_drop(ep, -ENOMEM);
			return -ENOBUFS;
		}
		memcpy(s + ep->stash_len, p, len);
		ep->stash = s;
		ep->stash_len += (uint32_t)len;
	}
	if (!ep->rx_paused) {
		ep->rx_paused = true;
		ctx->lim.npaused++;
		WP_CNT_ADD(rx_budget_pauses, 1);
		wp_log_rl(ctx, WP_RL_BUDGET, WP_LOG_WARN,
			  "receive budget (%llu bytes) spent: pausing reads on fd %d until "
			  "memory frees",
			  (unsigned long long)ctx->lim.budget.limit, ep->fd);
		ctx->ops->rx_pause(ep, true);
	}
	return 0;
}

/* ---- connection limits ---------------------------------------------- */

static void addr_key(const struct sockaddr *sa, struct wp_admit *a)
{
	memset(a->src, 0, sizeof(a->src));
	a->has_src = false;
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		/* v4-mapped, so a v4 peer is the same on a dual-stack listener */
		a->src[10] = a->src[11] = 0xff;
		memcpy(a->src + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		a->has_src = true;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a->src, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		a->has_src = true;
	}
}

int wp_conn_admit(struct wp_ctx *ctx, const struct sockaddr *peer, socklen_t len,
		  struct wp_admit *a)
{
	const struct wp_ctx_opts *o = &ctx->o;
	struct wp_lim_node *n;

	addr_key(len ? peer : NULL, a);
	if (o->conns_max && ctx->lim.nconns >= o->conns_max) {
		WP_CNT_ADD(refused_ctx, 1);
		wp_log_rl(ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "connection refused: %u connections open (conns_max)", ctx->lim.nconns);
		return -EUSERS;
	}
	if (o->conns_per_source && a->has_src && (n = lim_find(ctx->lim.src, a->src, false)) &&
	    n->n >= o->conns_per_source) {
		WP_CNT_ADD(refused_source, 1);
		wp_log_rl(ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "connection refused: %u open from that source (conns_per_source)", n->n);
		return -EUSERS;
	}
	return 0;
}

void wp_conn_admitted(struct wp_ep *ep, const struct wp_admit *a)
{
	struct wp_ctx *ctx = ep->ctx;

	ep->counted = true;
	ctx->lim.nconns++;
	ep->hs_since = wp_coarse_ns();
	ep->last_active = ep->hs_since;
	if (ctx->o.conns_per_source && a->has_src) {
		ep->src_node = lim_find(ctx->lim.src, a->src, true);
		if (ep->src_node) /* out of memory: not counted, never refused */
			ep->src_node->n++;
	}
}

int wp_conn_tenant_bind(struct wp_ep *ep, uint32_t tenant)
{
	struct wp_ctx *ctx = ep->ctx;
	uint8_t key[16] = { 0 };
	struct wp_lim_node *n;

	if (ep->tenant_node || !ep->accepted || !ctx->o.conns_per_tenant)
		return 0;
	memcpy(key, &tenant, sizeof(tenant));
	n = lim_find(ctx->lim.tenant, key, true);
	if (!n)
		return 0;
	if (n->n >= ctx->o.conns_per_tenant) {
		WP_CNT_ADD(refused_tenant, 1);
		wp_log_rl(ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "connection of tenant %u refused: %u open (conns_per_tenant)", tenant,
			  n->n);
		return -EUSERS; /* n->n >= 1 here: the node stays for the open ones */
	}
	n->n++;
	ep->tenant_node = n;
	return 0;
}

void wp_conn_handshake_done(struct wp_ep *ep)
{
	ep->hs_done = true;
}

void wp_limits_ep_closed(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;
	struct wp_limits *l = &ctx->lim;

	if (ep->counted) {
		ep->counted = false;
		l->nconns--;
	}
	if (ep->src_node) {
		lim_put(l->src, ep->src_node);
		ep->src_node = NULL;
	}
	if (ep->tenant_node) {
		lim_put(l->tenant, ep->tenant_node);
		ep->tenant_node = NULL;
	}
	if (ep->rx_paused) {
		ep->rx_paused = false;
		if (ep->state == WP_EPS_LISTEN)
			l->nbackoff--;
		else
			l->npaused--;
	}
	free(ep->stash);
	ep->stash = NULL;
	ep->stash_len = 0;
	/* A descriptor came free: listeners waiting out EMFILE try now. */
	if (l->nbackoff) {
		uint64_t now = wp_coarse_ns();

		for (struct wp_ep *e = ctx->eps; e; e = e->next_all)
			if (e->state == WP_EPS_LISTEN && e->rx_paused)
				e->resume_at = now;
	}
}

/* ---- accept errors -------------------------------------------------- */

void wp_accept_ok(struct wp_ep *l)
{
	l->backoff_ms = 0;
}

struct wp_ep *wp_accept_next(struct wp_ep *l, int lfd, bool inet, int *fd)
{
	while (!l->rx_paused && l->state == WP_EPS_LISTEN) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct wp_admit adm;
		struct wp_ep *ep;
		int s;

		WP_SYSCALL(WP_SYS_ACCEPT);
		s = accept4(lfd, inet ? (struct sockaddr *)&peer : NULL, inet ? &plen : NULL,
			    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				wp_accept_error(l, -errno); /* EMFILE: pause, no spin */
			return NULL;
		}
		wp_accept_ok(l);
		if (wp_conn_admit(l->ctx, inet ? (struct sockaddr *)&peer : NULL, inet ? plen : 0,
				  &adm) < 0) {
			WP_SYSCALL(WP_SYS_CLOSE);
			close(s);
			continue;
		}
		ep = wp_ep_alloc(l->ctx, &l->cbs);
		if (!ep) {
			wp_log_rl(l->ctx, WP_RL_ACCEPT, WP_LOG_ERR,
				  "%s accept: out of memory, dropping connection",
				  l->ctx->ops->name);
			WP_SYSCALL(WP_SYS_CLOSE);
			close(s);
			continue;
		}
		ep->accepted = true;
		wp_conn_admitted(ep, &adm);
		*fd = s;
		return ep;
	}
	return NULL;
}

bool wp_accept_error(struct wp_ep *l, int err)
{
	struct wp_ctx *ctx = l->ctx;

	if (err != -EMFILE && err != -ENFILE && err != -ENOBUFS && err != -ENOMEM) {
		wp_log_rl(ctx, WP_RL_ACCEPT, WP_LOG_WARN, "accept: %s", strerror(-err));
		return false;
	}
	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (l->backoff_ms > BACKOFF_MAX_MS)
		l->backoff_ms = BACKOFF_MAX_MS;
	l->resume_at = wp_coarse_ns() + (uint64_t)l->backoff_ms * MS_NS;
	WP_CNT_ADD(accept_pauses, 1);
	wp_log_rl(ctx, WP_RL_ACCEPT, WP_LOG_WARN,
		  "accept: %s: pausing accepts for %u ms (until one of ours closes or the "
		  "backoff ends; raise RLIMIT_NOFILE or lower conns_max)",
		  strerror(-err), l->backoff_ms);
	if (!l->rx_paused) {
		l->rx_paused = true;
		ctx->lim.nbackoff++;
		ctx->ops->rx_pause(l, true);
	}
	return true;
}

void wp_no_rx_pause(struct wp_ep *ep, bool pause)
{
}
