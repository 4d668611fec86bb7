/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness: a server context on its own thread (or in a
 * forked child) listening on 127.0.0.1 with a free port, plus helpers to
 * drive a client context until a condition holds or a deadline passes.
 */
#ifndef WP_HARNESS_H
#define WP_HARNESS_H

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "testlib.h"
#include "wirepath/wirepath.h"

#ifdef WP_TEST_AUTH
/*
 * The same test under authentication v2 (tests/integ/test_*_auth.c): every
 * server the harness starts has a policy, every client the harness connects
 * runs the handshake, so every frame of the test travels in records.
 */
#include "wirepath/policy.h"

static const char h_auth_rules[] =
	"default drop\ntenant t id 1 key 000102030405060708090a0b0c0d0e0f admin\n";
static const uint8_t h_auth_key[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static inline void h_auth_server(struct wp_ctx *ctx)
{
	static struct wp_policy *pol;

	if (!pol)
		CHECK(wp_policy_parse("harness.rules", h_auth_rules, sizeof(h_auth_rules) - 1,
				      &pol) == 0);
	CHECK(wp_ctx_set_policy(ctx, pol) == 0);
}

static inline void h_auth_client(struct wp_ep *ep)
{
	CHECK(wp_ep_set_tenant_key(ep, 1, h_auth_key) == 0);
}
#endif

struct srv {
	const char *path;
	struct wp_ctx *ctx;
	struct wp_ep *l;
	int port;
	atomic_int stop;
	pthread_t th;
	void (*setup)(struct srv *s); /* register handlers, before listening */
	void (*tick)(struct srv *s);  /* called every loop round */
	void *user;
	uint32_t frame_timeout_ms; /* 0: the default */
	uint32_t max_frame;        /* 0: the default */
	uint64_t rx_budget;        /* 0: the default */
};

static void h_log(void *arg, enum wp_log_level lvl, const char *msg)
{
	if (getenv("WP_TEST_VERBOSE") || lvl == WP_LOG_ERR)
		fprintf(stderr, "[%s] %s\n", (const char *)arg, msg);
}

static inline void h_opts(struct wp_ctx_opts *o, const char *who)
{
	wp_ctx_opts_init(o);
	o->select = WP_SELECT_REQUIRE;
	o->log = h_log;
	o->log_arg = (void *)who;
	o->log_level = WP_LOG_DEBUG;
	/* Exercise the zero-copy machinery (notifications, ordering, buffer
	 * release) even on loopback, where it would normally switch itself off. */
	o->zc_always = 1;
	/* WP_TEST_ZC_THRESHOLD=513: every payload that is not staged asks for
	 * zero copy (tests/run.sh runs the rpc and stream suites so on tcp). */
	if (getenv("WP_TEST_ZC_THRESHOLD"))
		o->zc_threshold = (uint32_t)strtoul(getenv("WP_TEST_ZC_THRESHOLD"), NULL, 0);
	/* WP_TEST_URING_ZCRX=SPEC: the uring path receives with RECV_ZC
	 * (tests/uring_zcrx.sh runs the suites so where a queue registers). */
	if (getenv("WP_TEST_URING_ZCRX"))
		snprintf(o->uring_zcrx, sizeof(o->uring_zcrx), "%s", getenv("WP_TEST_URING_ZCRX"));
}

/* shm listens on abstract unix names: port 0 asks the kernel for a free
 * one (autobind), whose five hex digits wp_ep_local_port returns. */
static inline void h_uri(char *buf, size_t len, const char *path, int port)
{
	if (!strcmp(path, "shm") && port == 0)
		snprintf(buf, len, "shm://@");
	else if (!strcmp(path, "shm"))
		snprintf(buf, len, "shm://@%05x", port);
	else if (!strcmp(path, "xsk")) /* tests/netns/xsk_suite.sh: the server's veth */
		snprintf(buf, len, "xsk://%s:%d",
			 getenv("WP_TEST_XSK_SRV") ? getenv("WP_TEST_XSK_SRV") : "127.0.0.1", port);
	else /* WP_TEST_HOST: the VM's NIC address for rdma on soft-RoCE */
		snprintf(buf, len, "%s://%s:%d", path,
			 getenv("WP_TEST_HOST") ? getenv("WP_TEST_HOST") : "127.0.0.1", port);
}

/*
 * xsk runs between two network namespaces (tests/netns/xsk_suite.sh): the
 * process lives in the client's, and the server's listen (its interface,
 * program and AF_XDP sockets) is made in WP_TEST_XSK_NS by this thread,
 * which then comes back. Sockets keep the namespace they were made in.
 * Returns the namespace to come back to, or -1 when there is none.
 */
static inline int h_ns_enter(const char *path)
{
	const char *ns = getenv("WP_TEST_XSK_NS");
	int old, fd;

	if (strcmp(path, "xsk") || !ns)
		return -1;
	old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	fd = open(ns, O_RDONLY | O_CLOEXEC);
	CHECK(old >= 0 && fd >= 0);
	CHECK(setns(fd, CLONE_NEWNET) == 0);
	close(fd);
	return old;
}

static inline void h_ns_leave(int old)
{
	if (old < 0)
		return;
	CHECK(setns(old, CLONE_NEWNET) == 0);
	close(old);
}

static inline int srv_open(struct srv *s, const struct wp_ep_cbs *cbs)
{
	struct wp_ctx_opts o;
	char uri[64];
	int ret, ns;

	h_opts(&o, "server");
	if (s->frame_timeout_ms)
		o.frame_timeout_ms = s->frame_timeout_ms;
	if (s->max_frame)
		o.max_frame = s->max_frame;
	if (s->rx_budget)
		o.rx_budget = s->rx_budget;
	ret = wp_ctx_create(&o, &s->ctx);
	if (ret < 0)
		return ret;
	if (s->setup)
		s->setup(s);
#ifdef WP_TEST_AUTH
	h_auth_server(s->ctx);
#endif
	h_uri(uri, sizeof(uri), s->path, 0);
	ns = h_ns_enter(s->path);
	ret = wp_listen(s->ctx, uri, cbs, &s->l);
	h_ns_leave(ns);
	if (ret < 0) {
		/* Nothing of the context outlives a skip: LeakSanitizer cannot
		 * see pointers UCX keeps in its own mappings. */
		wp_ctx_destroy(s->ctx);
		s->ctx = NULL;
		return ret;
	}
	s->port = wp_ep_local_port(s->l);
	return 0;
}

static void *srv_loop(void *arg)
{
	struct srv *s = arg;

	while (!atomic_load(&s->stop)) {
		wp_ctx_progress(s->ctx, 2000);
		if (s->tick)
			s->tick(s);
	}
	wp_ctx_destroy(s->ctx);
	return NULL;
}

/* Start a server thread. Skips (77) if the path cannot start: that is setup. */
static inline void srv_start(struct srv *s, const struct wp_ep_cbs *cbs)
{
	int ret = srv_open(s, cbs);

	if (ret == -ENOSYS || ret == -EOPNOTSUPP || ret == -EPERM || ret == -ENODEV)
		SKIP("path %s unavailable here: %s", s->path, strerror(-ret));
	CHECK(ret == 0);
	CHECK(pthread_create(&s->th, NULL, srv_loop, s) == 0);
}

static inline void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
}

/* Drive ctx until *flag becomes non-zero; fail the test after ms, naming
 * the caller's line. */
#define drive_until(ctx, flag, ms) drive_until_at(ctx, flag, ms, __FILE__, __LINE__)
static inline void drive_until_at(struct wp_ctx *ctx, volatile int *flag, int ms, const char *file,
				  int line)
{
	uint64_t end = wp_now_ns() + (uint64_t)ms * 1000000;

	while (!*flag) {
		CHECK(wp_ctx_progress(ctx, 1000) >= 0);
		if (wp_now_ns() > end) {
			fprintf(stderr, "%s:%d: timed out after %d ms waiting for a condition\n",
				file, line, ms);
			exit(1);
		}
	}
}

static inline struct wp_ctx *client_ctx(const char *path)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;

	h_opts(&o, "client");
	CHECK(wp_ctx_create(&o, &c) == 0);
	return c;
}

struct conn_wait {
	int up, closed, err;
};

static void h_ep_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct conn_wait *w = arg;

	if (ev == WP_EP_CONNECTED)
		w->up = 1;
	else {
		w->closed = 1;
		w->err = err;
	}
}

/* Connect and wait until the endpoint is up. */
static inline struct wp_ep *client_connect(struct wp_ctx *c, const char *path, int port,
					   struct conn_wait *w,
					   void (*msg)(void *, struct wp_ep *, struct wp_msg *),
					   void *msg_arg)
{
	struct wp_ep_cbs cbs = { .event = h_ep_event, .msg = msg, .arg = w };
	struct wp_ep *ep;
	char uri[64];

	(void)msg_arg;
	h_uri(uri, sizeof(uri), path, port);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
#ifdef WP_TEST_AUTH
	h_auth_client(ep);
#endif
	while (!w->up && !w->closed)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK(w->up);
	return ep;
}

#endif
