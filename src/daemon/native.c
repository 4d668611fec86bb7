// SPDX-License-Identifier: MIT
/*
 * Native backends (native.h): one wirepath context per backend, driven
 * from the daemon's loop through the embedding API, one endpoint to the
 * service, reconnected with backoff (100 ms doubling to 5 s) when it goes
 * away. The context is created once and kept: its path (shm, uring, tcp)
 * is chosen at the first connect and explained by wp_ctx_explain.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/native.h"

#define NATIVE_BACKOFF_MIN_NS 100000000ull
#define NATIVE_BACKOFF_MAX_NS 5000000000ull

struct wpd_native {
	struct wpd_loop *loop;
	char name[64];
	char uri[256];
	struct wp_ctx *ctx;
	struct wp_ep *ep; /* NULL while disconnected */
	int up;
	uint64_t backoff_ns;
	struct wpd_timer retry;
	uint64_t connects, disconnects;
};

static void native_connect(void *arg);

static void native_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct wpd_native *n = arg;

	if (ep != n->ep)
		return;
	if (ev == WP_EP_CONNECTED) {
		n->up = 1;
		n->connects++;
		n->backoff_ns = NATIVE_BACKOFF_MIN_NS;
		wpd_info("backend %s: connected to %s (%s)", n->name, n->uri,
			 wp_ctx_explain(n->ctx));
		return;
	}
	/* Closed, or the connect failed: the library frees the endpoint after
	 * this callback (we opened it, so we close it), then retry later. */
	if (n->up)
		wpd_warn("backend %s: connection to %s closed: %s; reconnecting", n->name, n->uri,
			 err ? strerror(-err) : "orderly");
	else
		wpd_log_rl("native-connect", WP_LOG_WARN, "backend %s: cannot connect to %s: %s",
			   n->name, n->uri, err ? strerror(-err) : "closed");
	n->disconnects += n->up;
	n->up = 0;
	wp_ep_close(ep);
	n->ep = NULL;
	wpd_timer_arm(n->loop, &n->retry, n->backoff_ns, native_connect, n);
	n->backoff_ns *= 2;
	if (n->backoff_ns > NATIVE_BACKOFF_MAX_NS)
		n->backoff_ns = NATIVE_BACKOFF_MAX_NS;
}

static void native_connect(void *arg)
{
	struct wpd_native *n = arg;
	struct wp_ep_cbs cbs = { .event = native_event, .arg = n };
	int ret;

	ret = wp_connect(n->ctx, n->uri, &cbs, &n->ep);
	if (ret < 0) {
		n->ep = NULL;
		wpd_log_rl("native-connect", WP_LOG_WARN, "backend %s: connect %s: %s", n->name,
			   n->uri, strerror(-ret));
		wpd_timer_arm(n->loop, &n->retry, n->backoff_ns, native_connect, n);
		if (n->backoff_ns < NATIVE_BACKOFF_MAX_NS)
			n->backoff_ns *= 2;
	}
}

int wpd_native_open(struct wpd_loop *l, const char *name, const char *uri, struct wpd_native **out)
{
	struct wpd_native *n = calloc(1, sizeof(*n));
	struct wp_ctx_opts o;
	int ret;

	if (!n)
		return -ENOMEM;
	n->loop = l;
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->uri, sizeof(n->uri), "%s", uri);
	n->backoff_ns = NATIVE_BACKOFF_MIN_NS;
	wp_ctx_opts_init(&o);
	o.log = wpd_log_lib;
	/* The daemon sleeps in its own loop: never spin inside the library
	 * (an embedded context is progressed with a zero timeout anyway). */
	o.spin_us = -1;
	ret = wp_ctx_create(&o, &n->ctx);
	if (ret < 0)
		goto out_free;
	ret = wpd_loop_add_ctx(l, n->ctx);
	if (ret < 0)
		goto out_ctx;
	native_connect(n);
	*out = n;
	return 0;
out_ctx:
	wp_ctx_destroy(n->ctx);
out_free:
	free(n);
	return ret;
}

void wpd_native_close(struct wpd_native *n)
{
	if (!n)
		return;
	wpd_timer_cancel(n->loop, &n->retry);
	wpd_loop_del_ctx(n->loop, n->ctx);
	/* Destroying the context fails pending calls with -ECONNABORTED
	 * (their on_done runs now), and closes the endpoint. */
	wp_ctx_destroy(n->ctx);
	free(n);
}

int wpd_native_up(const struct wpd_native *n)
{
	return n->up;
}

const char *wpd_native_name(const struct wpd_native *n)
{
	return n->name;
}

const char *wpd_native_explain(const struct wpd_native *n)
{
	const char *e = wp_ctx_explain(n->ctx);

	return e ? e : "";
}

int wpd_native_call(struct wpd_native *n, const struct wp_call_params *p, uint64_t *id)
{
	if (!n->up || !n->ep)
		return -ENOTCONN;
	return wp_rpc_call(n->ep, p, id);
}

int wpd_native_cancel(struct wpd_native *n, uint64_t id)
{
	if (!n->ep)
		return -ENOTCONN;
	return wp_rpc_cancel(n->ep, id);
}
