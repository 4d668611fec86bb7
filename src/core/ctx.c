// SPDX-License-Identifier: MIT
/*
 * The context: the paths (built in and registered), path selection (require
 * / prefer / any, never silent), the progress loop every path shares
 * (deferred callbacks, pollers, the flush loop around the path's poll,
 * busy-polling, endpoint reclamation), embedding in another event loop
 * (wp_ctx_fd, wp_ctx_arm), URIs, listen and connect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "core.h"
#include "opts.h"

/* ---- the paths: built in (src/registry.c), then registered ----------- */

#define MAX_PATHS 16

static const struct wp_backend_ops *paths[MAX_PATHS];
static int npaths = -1;
static pthread_mutex_t paths_lock = PTHREAD_MUTEX_INITIALIZER;

/* Under paths_lock. */
static void paths_init(void)
{
	if (npaths >= 0)
		return;
	npaths = 0;
	for (int i = 0; wp_registry_paths[i] && npaths < MAX_PATHS; i++)
		paths[npaths++] = wp_registry_paths[i];
}

int wp_backend_register(const struct wp_backend_ops *ops)
{
	int ret = 0;

	pthread_mutex_lock(&paths_lock);
	paths_init();
	for (int i = 0; i < npaths; i++)
		if (!strcmp(paths[i]->name, ops->name))
			ret = -EEXIST;
	if (ret == 0 && npaths == MAX_PATHS)
		ret = -ENOSPC;
	if (ret == 0)
		paths[npaths++] = ops;
	pthread_mutex_unlock(&paths_lock);
	return ret;
}

int wp_paths(const struct wp_backend_ops *const **out)
{
	int n;

	pthread_mutex_lock(&paths_lock);
	paths_init();
	n = npaths;
	pthread_mutex_unlock(&paths_lock);
	*out = paths;
	return n;
}

/* Paths addressed by host:port (what `any` and `prefer` may swap between). */
static bool inet_path(const struct wp_backend_ops *b)
{
	return b->caps & WP_CAP_INET;
}

void wp_ctx_opts_init(struct wp_ctx_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->select = WP_SELECT_PREFER;
	o->max_frame = WP_FRAME_MAX_DEFAULT;
	o->zc_threshold = 16u << 10;
	o->rx_buf_size = 64u << 10;
	o->rx_buf_count = 64;
	o->spin_us = 50;
	o->shm_slots = 1024;
	o->shm_arena_mb = 4;
	o->shm_heap_mb = 16;
	o->log_level = WP_LOG_WARN;
	o->rx_budget = WP_RX_BUDGET_DEFAULT;
	o->frame_timeout_ms = WP_FRAME_TIMEOUT_DEFAULT_MS;
	o->handshake_timeout_ms = WP_HANDSHAKE_TIMEOUT_DEFAULT_MS;
	o->sz = sizeof(*o);
}

/* The caller's options over the defaults in *d: a field its struct is too
 * old to have keeps its default (opts.h). Every field, by name. */
static void opts_take(struct wp_ctx_opts *d, const struct wp_ctx_opts *o)
{
#define TAKE(f) (d->f = WP_OPTS_GET(o, f, d->f))
	TAKE(select);
	TAKE(max_frame);
	TAKE(zc_threshold);
	TAKE(zc_always);
	TAKE(sqpoll);
	TAKE(busy_poll);
	TAKE(rx_buf_size);
	TAKE(rx_buf_count);
	TAKE(spin_us);
	TAKE(shm_slots);
	TAKE(shm_arena_mb);
	TAKE(shm_heap_mb);
	TAKE(log);
	TAKE(log_arg);
	TAKE(log_level);
	TAKE(shm_same_uid);
	TAKE(rx_budget);
	TAKE(conns_max);
	TAKE(conns_per_source);
	TAKE(conns_per_tenant);
	TAKE(frame_timeout_ms);
	TAKE(idle_timeout_ms);
	TAKE(handshake_timeout_ms);
	TAKE(ucx_trust_rma);
#undef TAKE
	if (WP_OPTS_HAS(o, ucx_need)) {
		memcpy(d->ucx_need, o->ucx_need, sizeof(d->ucx_need));
		d->ucx_need[sizeof(d->ucx_need) - 1] = 0;
	}
	if (WP_OPTS_HAS(o, uring_zcrx)) {
		memcpy(d->uring_zcrx, o->uring_zcrx, sizeof(d->uring_zcrx));
		d->uring_zcrx[sizeof(d->uring_zcrx) - 1] = 0;
	}
}

int wp_ctx_create(const struct wp_ctx_opts *o, struct wp_ctx **out)
{
	struct wp_ctx *ctx = calloc(1, sizeof(*ctx));
	struct wp_ctx_opts def;
	int ret;

	if (!ctx)
		return -ENOMEM;
	if (!WP_OPTS_VALID(o, uring_zcrx)) {
		wp_log_global(WP_LOG_ERR,
			      "wp_ctx_create: opts.sz %zu, but this library knows "
			      "%zu bytes of wp_ctx_opts and fields past them are set",
			      o->sz, sizeof(*o));
		free(ctx);
		return -EINVAL;
	}
	wp_ctx_opts_init(&def);
	ctx->o = def;
	opts_take(&ctx->o, o);
	if (!ctx->o.max_frame)
		ctx->o.max_frame = def.max_frame;
	if (!ctx->o.zc_threshold)
		ctx->o.zc_threshold = def.zc_threshold;
	if (!ctx->o.rx_buf_size)
		ctx->o.rx_buf_size = def.rx_buf_size;
	if (!ctx->o.rx_buf_count)
		ctx->o.rx_buf_count = def.rx_buf_count;
	if (!ctx->o.spin_us)
		ctx->o.spin_us = def.spin_us;
	if (!ctx->o.shm_slots)
		ctx->o.shm_slots = def.shm_slots;
	if (!ctx->o.shm_arena_mb)
		ctx->o.shm_arena_mb = def.shm_arena_mb;
	if (!ctx->o.shm_heap_mb)
		ctx->o.shm_heap_mb = def.shm_heap_mb;
	if (!ctx->o.rx_budget)
		ctx->o.rx_budget = def.rx_budget;
	if (!ctx->o.frame_timeout_ms)
		ctx->o.frame_timeout_ms = def.frame_timeout_ms;
	if (!ctx->o.handshake_timeout_ms)
		ctx->o.handshake_timeout_ms = def.handshake_timeout_ms;
	if (ctx->o.max_frame > (1u << 30) || ctx->o.select > WP_SELECT_ANY ||
	    (ctx->o.shm_slots & (ctx->o.shm_slots - 1)) || ctx->o.shm_slots < 8 ||
	    ctx->o.shm_slots > (1u << 20) || ctx->o.shm_arena_mb > 1024 ||
	    ctx->o.shm_heap_mb > 4096) {
		free(ctx);
		return -EINVAL;
	}
	if (ctx->o.rx_budget < ctx->o.max_frame) {
		/* A frame of max_frame could never be assembled. */
		wp_log_global(WP_LOG_ERR,
			      "wp_ctx_create: rx_budget %" PRIu64
			      " is below max_frame %u: the largest frame could never be "
			      "received",
			      ctx->o.rx_budget, ctx->o.max_frame);
		free(ctx);
		return -EINVAL;
	}
	wp_limits_init(ctx);
	/* The layers above conn install their frame handlers and methods. */
	ret = wp_rpc_attach(ctx);
	if (ret == 0)
		ret = wp_xfer_attach(ctx);
	if (ret < 0) {
		wp_ctx_destroy(ctx);
		return ret;
	}
	*out = ctx;
	return 0;
}

/*
 * A closed endpoint's sends that were in the kernel when it closed complete
 * once its last kernel op has (wp_txq_drop), not when its owner lets go:
 * the owner may be waiting for exactly those completions (a transfer whose
 * frames were in flight finishes only when they are given back).
 */
static void settle_closed(struct wp_ctx *ctx)
{
	if (!ctx->nr_closed)
		return;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (ep->state == WP_EPS_CLOSED && !ep->io_inflight && ep->tx.head != ep->tx.tail)
			wp_txq_drop(ep, ep->tx_status);
}

static void reap(struct wp_ctx *ctx)
{
	struct wp_ep *ep, *next;

	if (!ctx->nr_closed)
		return;
	for (ep = ctx->eps; ep; ep = next) {
		next = ep->next_all;
		if (wp_ep_freeable(ep)) {
			ctx->nr_closed--;
			wp_ep_free(ep);
		}
	}
}

void wp_ctx_destroy(struct wp_ctx *ctx)
{
	if (!ctx)
		return;
	ctx->in_progress++;
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		wp_ep_close(ep);
	/* Server calls still held by the application die with the context
	 * (freed with their endpoint by the rpc layer). */
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		ep->refs = 0;
	wp_ctx_run_deferred(ctx);
	if (ctx->ops) {
		for (struct wp_mr *mr = ctx->mrs; mr; mr = mr->next)
			ctx->ops->mem_unregister(ctx, mr);
		ctx->ops->fini(ctx); /* reaps kernel ops still in flight */
	}
	wp_mr_free_all(ctx);
	while (ctx->eps)
		wp_ep_free(ctx->eps);
	for (int i = WP_LAYERS; i-- > 0;)
		if (ctx->layer[i] && ctx->layer[i]->ctx_free)
			ctx->layer[i]->ctx_free(ctx);
	wp_ctx_run_deferred(ctx);
	wp_limits_fini(ctx);
	while (ctx->blk_free) {
		struct wp_stage_blk *b = ctx->blk_free;

		ctx->blk_free = b->next;
		free(b);
	}
	free(ctx->defer);
	free(ctx);
}

/* One round of the path: what is queued leaves, the path waits for and
 * handles its events, and answers queued by their callbacks leave too. */
static int path_round(struct wp_ctx *ctx, int64_t timeout_us)
{
	int ret;

	wp_ctx_flush(ctx);
	ret = ctx->ops->poll(ctx, timeout_us);
	wp_ctx_flush(ctx);
	return ret;
}

int wp_ctx_progress(struct wp_ctx *ctx, int64_t timeout_us)
{
	int n = 0, ret;
	uint64_t end = 0;

	if (ctx->ndefer) {
		ctx->in_progress++;
		wp_ctx_run_deferred(ctx);
		ctx->in_progress--;
		timeout_us = 0; /* we did something; do not sleep */
		n++;
	}
	if (ctx->pollers)
		timeout_us = wp_ctx_pollers_cap(ctx, timeout_us);
	if (!ctx->ops) {
		if (!ctx->pollers)
			return n;
		/* No path yet, but GPU work to drive: sleep only as long as the
		 * pollers allow (never forever: nothing here can wake us). */
		ctx->in_progress++;
		ret = wp_ctx_pollers_run(ctx);
		if (!ret && timeout_us > 0) {
			struct timespec ts = { timeout_us / 1000000,
					       (timeout_us % 1000000) * 1000 };

			nanosleep(&ts, NULL);
			ret = wp_ctx_pollers_run(ctx);
		}
		wp_ctx_run_deferred(ctx);
		ctx->in_progress--;
		return n + ret;
	}

	ctx->in_progress++;
	if (ctx->o.busy_poll && timeout_us != 0) {
		/* Spin: never sleep in the kernel. Costs a core, saves the wake-up. */
		if (timeout_us > 0)
			end = wp_now_ns() + (uint64_t)timeout_us * 1000;
		for (;;) {
			ret = path_round(ctx, 0);
			if (ret != 0 || ctx->ndefer)
				break;
			if (end && wp_now_ns() >= end)
				break;
			__builtin_ia32_pause();
		}
	} else {
		ret = path_round(ctx, timeout_us);
	}
	if (ret > 0)
		n += ret;
	if (ctx->pollers)
		n += wp_ctx_pollers_run(ctx);
	settle_closed(ctx);
	wp_ctx_run_deferred(ctx);
	reap(ctx);
	ctx->in_progress--;
	return ret < 0 ? ret : n;
}

/* ---- embedding in another event loop (docs/architecture.md) ---------- */

int wp_no_fd(struct wp_ctx *ctx)
{
	(void)ctx;
	return -EOPNOTSUPP;
}

int wp_no_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	(void)ctx;
	(void)timeout_us;
	return -EOPNOTSUPP;
}

int wp_ctx_fd(struct wp_ctx *ctx)
{
	if (!ctx->ops)
		return -ENOTCONN;
	return ctx->ops->fd(ctx);
}

/*
 * What wp_ctx_progress does before it sleeps, without the sleep: the pollers
 * cap the wait (and start queued GPU work), the flush loop sends, then the
 * path arms its wake-ups and looks once more. Work found on the way is
 * -EAGAIN, a timer already due included: a loop that progresses only the
 * contexts whose fd was ready still runs it.
 */
int wp_ctx_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	int64_t t = -1;
	int nr_closed, ret;

	if (timeout_us)
		*timeout_us = -1;
	if (!ctx->ops)
		return -ENOTCONN;
	if (ctx->in_progress)
		return -EINPROGRESS; /* from a callback: the flush loop may be running */
	if (ctx->ndefer)
		return -EAGAIN;
	if (ctx->pollers) {
		t = wp_ctx_pollers_cap(ctx, -1);
		if (t == 0)
			return -EAGAIN;
	}
	/* The flush may fail a connection, whose callbacks may close
	 * endpoints: they must not be freed under the flush loop. */
	nr_closed = ctx->nr_closed;
	ctx->in_progress++;
	wp_ctx_flush(ctx);
	ctx->in_progress--;
	/* Completions the flush deferred, output queued by its callbacks, an
	 * endpoint it closed (reaped by the next progress). */
	if (ctx->ndefer || ctx->dirty || ctx->nr_closed > nr_closed)
		return -EAGAIN;
	ret = ctx->ops->arm(ctx, &t);
	if (ret < 0)
		return ret;
	if (ctx->ndefer || ctx->dirty)
		return -EAGAIN;
	if (timeout_us)
		*timeout_us = t;
	return 0;
}

const char *wp_ctx_path(const struct wp_ctx *ctx)
{
	return ctx->ops ? ctx->ops->name : NULL;
}

/* Rebuilt at each call: a path's explain may report what the kernel did
 * since (tcp: zero-copy sends notified as copied). */
const char *wp_ctx_explain(const struct wp_ctx *ctx)
{
	struct wp_ctx *c = (struct wp_ctx *)ctx; /* the cached line only */
	char bk[1536];

	if (!ctx->ops)
		return "no path chosen yet (no endpoint)";
	ctx->ops->explain(c, bk, sizeof(bk));
	snprintf(c->explain, sizeof(c->explain), "%s: %s%s", ctx->ops->name, bk, ctx->explain_tail);
	return ctx->explain;
}

uint32_t wp_path_caps(const struct wp_ctx *ctx)
{
	return ctx->ops ? ctx->ops->caps : 0;
}

/* "scheme://rest": the scheme into buf; returns rest, or NULL. */
static const char *uri_scheme(const char *uri, char *scheme, size_t slen)
{
	const char *sep = strstr(uri, "://");

	if (!sep || (size_t)(sep - uri) >= slen || sep == uri)
		return NULL;
	memcpy(scheme, uri, (size_t)(sep - uri));
	scheme[sep - uri] = '\0';
	return sep + 3;
}

/* "host:port", host numeric, may be [v6]. */
int wp_addr_parse_inet(const char *h, struct sockaddr_storage *ss, socklen_t *salen)
{
	char host[256];
	const char *colon;
	size_t hl;
	long port;
	char *end;

	if (*h == '[') {
		const char *rb = strchr(h, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - h - 1);
		h++;
		colon = rb + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - h);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;

	memset(ss, 0, sizeof(*ss));
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			*salen = sizeof(*a4);
		} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			*salen = sizeof(*a6);
		} else {
			return -EINVAL; /* numeric addresses only: no hidden DNS lookups */
		}
	}
	return 0;
}

static const struct wp_backend_ops *backend_by_name(const char *name)
{
	const struct wp_backend_ops *const *b;
	int n = wp_paths(&b);

	for (int i = 0; i < n; i++)
		if (!strcmp(b[i]->name, name))
			return b[i];
	return NULL;
}

/* "tcp, uring, shm, any": for messages about an unknown scheme. */
static const char *known_paths(char *buf, size_t len)
{
	const struct wp_backend_ops *const *b;
	int n = wp_paths(&b);
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s, ", b[i]->name);
	if (off < len)
		snprintf(buf + off, len - off, "any");
	return buf;
}

static const char *select_name(enum wp_select s)
{
	return s == WP_SELECT_REQUIRE ? "require" : s == WP_SELECT_PREFER ? "prefer" : "any";
}

/* Why a path this version knows was left out of the build, or NULL. */
static const char *absent_why(const char *name)
{
	for (int i = 0; wp_registry_absent[i].name; i++)
		if (!strcmp(wp_registry_absent[i].name, name))
			return wp_registry_absent[i].why;
	return NULL;
}

/* The path a scheme names: *b is it, or NULL for `any` and for a path the
 * build left out (both host:port). -EPROTONOSUPPORT (logged) if unknown. */
static int path_lookup(struct wp_ctx *ctx, const char *scheme, const struct wp_backend_ops **b)
{
	char k[128];

	*b = backend_by_name(scheme);
	if (*b || !strcmp(scheme, "any") || absent_why(scheme))
		return 0;
	wp_log(ctx, WP_LOG_ERR, "unknown path '%s' (known: %s)", scheme, known_paths(k, sizeof(k)));
	return -EPROTONOSUPPORT;
}

/* A context runs one path: a later endpoint may name another only where
 * both are host:port paths and select allows it. */
static int check_same_path(struct wp_ctx *ctx, const char *scheme,
			   const struct wp_backend_ops *want)
{
	if (!strcmp(scheme, "any") || !strcmp(scheme, ctx->ops->name))
		return 0;
	if (ctx->o.select == WP_SELECT_REQUIRE || (want && !inet_path(want)) ||
	    !inet_path(ctx->ops)) {
		wp_log(ctx, WP_LOG_ERR,
		       "context runs path %s; '%s' required for this endpoint: "
		       "use one context per path",
		       ctx->ops->name, scheme);
		return -EXDEV;
	}
	wp_log(ctx, WP_LOG_WARN,
	       "endpoint asked for %s but this context runs %s (same wire "
	       "protocol; select=%s)",
	       scheme, ctx->ops->name, select_name(ctx->o.select));
	return 0;
}

/*
 * Choose and start the path at the first endpoint. want is the path the
 * scheme names (NULL: `any`, or a path the build left out, which is then
 * unavailable with meson's reason, like a path whose probe failed).
 */
static int choose_path(struct wp_ctx *ctx, const char *scheme, const struct wp_backend_ops *want)
{
	const struct wp_backend_ops *got = NULL;
	const struct wp_backend_ops *const *b;
	const char *absent = want ? NULL : absent_why(scheme);
	char why[200] = "", note[300] = "";
	int ret = 0, nb;

	if (want || absent) {
		if (want) {
			ret = want->available(why, sizeof(why));
		} else {
			snprintf(why, sizeof(why), "not built: %s", absent);
			ret = -ENOSYS;
		}
		if (ret == 0) {
			got = want;
		} else if (ctx->o.select == WP_SELECT_REQUIRE || (want && !inet_path(want))) {
			wp_log(ctx, WP_LOG_ERR, "path %s required but unavailable: %s", scheme,
			       why);
			return ret;
		} else {
			snprintf(note, sizeof(note), "; %s unavailable (%s), fell back (select=%s)",
				 scheme, why, select_name(ctx->o.select));
		}
	}
	nb = wp_paths(&b);
	for (int i = 0; !got && i < nb; i++) {
		char w2[200];

		if (b[i] == want || !inet_path(b[i]))
			continue;
		if (b[i]->available(w2, sizeof(w2)) == 0)
			got = b[i];
		else if (!ret)
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 "; %s unavailable (%s)", b[i]->name, w2);
	}
	if (!got) {
		wp_log(ctx, WP_LOG_ERR, "no path available%s", note);
		return -ENODEV;
	}
	if (ret)
		wp_log(ctx, WP_LOG_WARN, "path %s unavailable (%s): using %s instead (select=%s)",
		       scheme, why, got->name, select_name(ctx->o.select));
	ctx->ops = got;
	ret = got->init(ctx);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "path %s failed to start: %s", got->name, strerror(-ret));
		ctx->ops = NULL;
		return ret;
	}
	wp_mr_attach_all(ctx);
	wp_limits_start(ctx); /* timeouts, budget retries, accept backoff */
	snprintf(ctx->explain_tail, sizeof(ctx->explain_tail), " (select=%s%s%s)%s",
		 select_name(ctx->o.select), want || absent ? "" : ", picked as best available",
		 note, ctx->guard && (got->caps & WP_CAP_STREAM) ? WP_AUTH_EXPLAIN : "");
	wp_log(ctx, WP_LOG_INFO, "%s", wp_ctx_explain(ctx));
	return 0;
}

static int ep_open(struct wp_ctx *ctx, const char *uri, const struct wp_ep_cbs *cbs,
		   struct wp_ep **out, bool listen)
{
	const struct wp_backend_ops *want;
	struct sockaddr_storage ss;
	socklen_t salen;
	char scheme[16];
	const char *rest;
	struct wp_ep *ep;
	int ret;

	rest = uri_scheme(uri, scheme, sizeof(scheme));
	if (!rest) {
		ret = -EINVAL;
		goto bad_uri;
	}
	ret = path_lookup(ctx, scheme, &want);
	if (ret < 0)
		return ret;
	/* The path named reads its own address; `any` and a path the build left
	 * out are host:port, like every path that may stand in for another. */
	ret = want ? want->addr_parse(rest, &ss, &salen) : wp_addr_parse_inet(rest, &ss, &salen);
	if (ret < 0)
		goto bad_uri;
	ret = ctx->ops ? check_same_path(ctx, scheme, want) : choose_path(ctx, scheme, want);
	if (ret < 0)
		return ret;
	ep = wp_ep_alloc(ctx, cbs);
	if (!ep)
		return -ENOMEM;
	ret = listen ? ctx->ops->listen(ep, (struct sockaddr *)&ss, salen)
		     : ctx->ops->connect(ep, (struct sockaddr *)&ss, salen);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "%s %s: %s", listen ? "listen on" : "connect to", uri,
		       strerror(-ret));
		ep->state = WP_EPS_CLOSED;
		ep->owner_released = true;
		wp_ep_free(ep);
		return ret;
	}
	*out = ep;
	return 0;

bad_uri:
	wp_log(ctx, WP_LOG_ERR,
	       "bad URI '%s': want SCHEME://HOST:PORT with a numeric host, e.g. "
	       "tcp://127.0.0.1:7000, or shm:///path/to/socket or shm://@name",
	       uri);
	return ret;
}

int wp_listen(struct wp_ctx *ctx, const char *uri, const struct wp_ep_cbs *cbs, struct wp_ep **out)
{
	return ep_open(ctx, uri, cbs, out, true);
}

int wp_connect(struct wp_ctx *ctx, const char *uri, const struct wp_ep_cbs *cbs, struct wp_ep **out)
{
	return ep_open(ctx, uri, cbs, out, false);
}
