// SPDX-License-Identifier: MIT
/*
 * Embedding contexts in another event loop (wp_ctx_fd, wp_ctx_arm), once per
 * path: a server context and a client context in one thread, driven only by
 * arming both and sleeping in one epoll_wait of the test's own, whose timeout
 * is the earliest timer wp_ctx_arm returned (-1 when none). wp_ctx_progress
 * only ever runs with a timeout of 0.
 *
 * Unary calls with checksummed payloads, a stream of 1000 chunks (through a
 * 64-slot shm ring, so back-pressure wake-ups are exercised too), a deadline
 * that fires with nothing on any fd (a timer-only wake-up, and few turns:
 * no busy loop while idle), 10000 ping-pongs with the library's own timers
 * off, so every sleep is epoll_wait(-1) and a lost wake-up hangs (an alarm
 * then fails the test), and a peer close noticed through the fd. After a
 * sleep a context is progressed only when its own fd was ready (a due timer
 * shows as -EAGAIN from the next arm), the strictest loop the contract
 * allows: a wake-up that goes to the wrong fd, or nowhere, hangs.
 */
#include <stdbool.h>
#include <sys/epoll.h>

#include "harness.h"

enum { M_ECHO = 1, M_STREAM = 2, M_HOLD = 3 };

#define NSTREAM 1000
#define NPING 10000

/* ---- the embedding loop ------------------------------------------------ */

struct emb {
	int epfd;
	struct wp_ctx *ctx[2]; /* 0: server, 1: client */
	int fd[2];
	bool strict; /* progress only the contexts whose fd was ready, never on
		      * a timeout alone */
	uint64_t turns, timeouts, eintr, eagain, progressed;
};

/* The context's fd joins our epoll set once its path has started. */
static void emb_watch(struct emb *E, int i)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
	int fd;

	if (E->fd[i] >= 0)
		return;
	fd = wp_ctx_fd(E->ctx[i]);
	if (fd == -ENOTCONN)
		return;
	CHECK(fd >= 0);
	CHECK_EQ(wp_ctx_fd(E->ctx[i]), fd); /* one fd for the context's life */
	CHECK(epoll_ctl(E->epfd, EPOLL_CTL_ADD, fd, &ev) == 0);
	E->fd[i] = fd;
}

static void srv_tick(void);

/* The application's work follows every progress: what it queues leaves at
 * the next arm. */
static void progress(struct emb *E, int i)
{
	CHECK(wp_ctx_progress(E->ctx[i], 0) >= 0);
	srv_tick();
}

/* Arm every context, running progress(0) while one has work. Returns the
 * earliest timer, in ms rounded up, or -1. */
static int arm_all(struct emb *E)
{
	int64_t tmin = -1;

	for (int i = 0; i < 2; i++) {
		int64_t t = -2;
		int ret;

		emb_watch(E, i);
		if (E->fd[i] < 0)
			continue;
		while ((ret = wp_ctx_arm(E->ctx[i], &t)) == -EAGAIN) {
			progress(E, i);
			E->eagain++;
		}
		CHECK_EQ(ret, 0);
		CHECK(t >= -1);
		if (t >= 0 && (tmin < 0 || t < tmin))
			tmin = t;
	}
	return tmin < 0 ? -1 : (int)((tmin + 999) / 1000);
}

/* Sleep in our own epoll until a fd is ready or the timer, then progress. */
static void sleep_progress(struct emb *E, int ms)
{
	struct epoll_event ev[4];
	bool ready[2] = { false, false };
	int n;

	E->turns++;
	n = epoll_wait(E->epfd, ev, 4, ms);
	if (n < 0) {
		/* io_uring task work interrupts a sleeping thread on rings
		 * without task-run deferral: a wake-up like any other. */
		CHECK(errno == EINTR);
		E->eintr++;
		n = 0;
	} else if (n == 0) {
		CHECK(ms >= 0); /* a sleep without a timer never times out */
		E->timeouts++;
	}
	for (int k = 0; k < n; k++)
		ready[ev[k].data.u32] = true;
	for (int i = 0; i < 2; i++) {
		/* A timer that came due shows in the next wp_ctx_arm (-EAGAIN). */
		if (E->fd[i] < 0 || (E->strict && !ready[i]))
			continue;
		progress(E, i);
		E->progressed++;
	}
}

/* The embedding loop until cond holds (checked after arming too: callbacks
 * run there, and nothing may be left to wake us for). */
#define DRIVE(E, cond)                            \
	do {                                      \
		while (!(cond)) {                 \
			int ms_ = arm_all(E);     \
			if (cond)                 \
				break;            \
			sleep_progress((E), ms_); \
		}                                 \
	} while (0)

/* A hang here is a lost wake-up: the alarm says so and fails the test. */
static const char *phase = "setup";

static void on_alarm(int sig)
{
	static const char m[] = "test_embed: watchdog fired: a wake-up was lost in phase ";

	(void)sig;
	if (write(2, m, sizeof(m) - 1) < 0 || write(2, phase, strlen(phase)) < 0 ||
	    write(2, "\n", 1) < 0) {
	}
	_exit(1);
}

static void watchdog(const char *what, unsigned seconds)
{
	phase = what;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

/* ---- server ------------------------------------------------------------ */

static struct wp_ep *srv_ep;    /* the accepted connection */
static struct wp_call *held[8]; /* M_HOLD calls, never answered */
static int nheld;

static void srv_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	(void)arg;
	(void)err;
	if (ev == WP_EP_CONNECTED && !srv_ep)
		srv_ep = ep;
}

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	(void)arg;
	CHECK(wp_call_reply(call, req->data, req->len, NULL, NULL) == 0); /* copied */
}

/* Chunk i: its index, then (i * 37) % 4096 bytes of test_fill(seed + i). */
static size_t chunk_make(uint8_t *buf, uint32_t seed, uint32_t i)
{
	size_t len = (i * 37u) % 4096u;

	memcpy(buf, &i, 4);
	test_fill(buf + 4, len, seed + i);
	return 4 + len;
}

static void h_stream(void *arg, struct wp_call *call, struct wp_msg *req)
{
	static uint8_t buf[4 + 4096];
	uint32_t hdr[2];

	(void)arg;
	CHECK_EQ(req->len, sizeof(hdr));
	memcpy(hdr, req->data, sizeof(hdr));
	for (uint32_t i = 0; i < hdr[0]; i++)
		CHECK(wp_call_stream(call, buf, chunk_make(buf, hdr[1], i), NULL, NULL) == 0);
	CHECK(wp_call_end(call, 0) == 0);
}

static void h_hold(void *arg, struct wp_call *call, struct wp_msg *req)
{
	(void)req;
	/* Never from a callback: the flush loop may be running. */
	CHECK_EQ(wp_ctx_arm(arg, NULL), -EINPROGRESS);
	CHECK(nheld < 8);
	held[nheld++] = call;
}

/* Held calls end once their client gave up (deadline, close). */
static void srv_tick(void)
{
	for (int i = 0; i < nheld; i++)
		if (held[i] && wp_call_cancelled(held[i])) {
			wp_call_end(held[i], 0);
			held[i] = NULL;
		}
}

/* ---- client ------------------------------------------------------------ */

struct res {
	int done, status;
	uint32_t chunks, seed;
	uint64_t want_sum, sum;
	int bad;
};

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	CHECK(!r->done); /* exactly once */
	r->done = 1;
	r->status = status;
}

static void on_echo(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->chunks++;
}

static void on_chunk(void *arg, struct wp_msg *m)
{
	static uint8_t want[4 + 4096];
	struct res *r = arg;
	size_t len = chunk_make(want, r->seed, r->chunks);

	if (m->len != len || memcmp(m->data, want, len))
		r->bad++;
	r->chunks++;
}

static void call(struct wp_ep *ep, uint32_t method, const void *req, uint32_t len,
		 int64_t deadline_us, void (*on_data)(void *, struct wp_msg *), struct res *r)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = len,
				    .deadline_us = deadline_us,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = r };

	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
}

/* Ping-pong: each answer's callback sends the next call. */
struct ping {
	struct wp_ep *ep;
	uint64_t next, done;
	int bad;
};

static void ping_send(struct ping *pg);

static void ping_data(void *arg, struct wp_msg *m)
{
	struct ping *pg = arg;

	if (m->len != 8 || memcmp(m->data, &pg->done, 8))
		pg->bad++;
}

static void ping_done(void *arg, int status)
{
	struct ping *pg = arg;

	if (status)
		pg->bad++;
	pg->done++;
	if (pg->next < NPING)
		ping_send(pg);
}

static void ping_send(struct ping *pg)
{
	struct wp_call_params p = { .method = M_ECHO,
				    .req = &pg->next,
				    .req_len = 8,
				    .on_data = ping_data,
				    .on_done = ping_done,
				    .arg = pg };

	CHECK(wp_rpc_call(pg->ep, &p, NULL) == 0);
	pg->next++;
}

static struct conn_wait cw;

/* ---- the test ------------------------------------------------------------ */

static void opts(struct wp_ctx_opts *o, const char *who)
{
	h_opts(o, who);
	o->log_level = WP_LOG_WARN;
	o->shm_slots = 64; /* the stream fills the ring: back-pressure wake-ups */
	/* The library's own timers off: a sleep without an RPC deadline is
	 * epoll_wait(-1), so a lost wake-up hangs instead of being rescued by
	 * the limits sweep a second later. */
	o->frame_timeout_ms = UINT32_MAX;
	o->handshake_timeout_ms = UINT32_MAX;
}

/* A context with the default timers reports the limits sweep (at most 1 s,
 * docs/limits.md) as its timeout; before its path starts it has no fd. */
static void check_default_timer(const char *path)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;
	struct wp_ep *l;
	int64_t t = -2;
	char uri[64];
	int ret;

	h_opts(&o, "timer");
	CHECK(wp_ctx_create(&o, &c) == 0);
	CHECK_EQ(wp_ctx_fd(c), -ENOTCONN);
	CHECK_EQ(wp_ctx_arm(c, &t), -ENOTCONN);
	h_uri(uri, sizeof(uri), path, 0);
	ret = wp_listen(c, uri, NULL, &l);
	if (ret == -ENOSYS || ret == -EOPNOTSUPP || ret == -EPERM)
		SKIP("path %s unavailable here: %s", path, strerror(-ret));
	CHECK_EQ(ret, 0);
	CHECK(wp_ctx_fd(c) >= 0);
	while ((ret = wp_ctx_arm(c, &t)) == -EAGAIN)
		CHECK(wp_ctx_progress(c, 0) >= 0);
	CHECK_EQ(ret, 0);
	CHECK(t >= 0 && t <= 1100000);
	ret = wp_ctx_arm(c, NULL); /* the timeout is optional */
	CHECK(ret == 0 || ret == -EAGAIN);
	wp_ctx_destroy(c);
}

int main(int argc, char **argv)
{
	const char *path = test_path(argc, argv);
	struct wp_ep_cbs scbs = { .event = srv_event };
	struct wp_ep_cbs ccbs = { .event = h_ep_event, .arg = &cw };
	struct emb E = { .fd = { -1, -1 }, .strict = true };
	static uint8_t big[100 << 10];
	struct wp_ctx_opts o;
	struct wp_ep *l, *ep;
	struct wp_meter_snap m0, m1, md;
	struct ping pg = { 0 };
	struct res r;
	char uri[64];
	uint64_t t0, turns0, timeouts0;
	int ret;

	watchdog("setup", 60);
	check_default_timer(path);

	E.epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(E.epfd >= 0);
	opts(&o, "server");
	CHECK(wp_ctx_create(&o, &E.ctx[0]) == 0);
	opts(&o, "client");
	CHECK(wp_ctx_create(&o, &E.ctx[1]) == 0);
	CHECK(wp_rpc_register(E.ctx[0], M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_rpc_register(E.ctx[0], M_STREAM, h_stream, NULL) == 0);
	CHECK(wp_rpc_register(E.ctx[0], M_HOLD, h_hold, E.ctx[0]) == 0);
	h_uri(uri, sizeof(uri), path, 0);
	ret = wp_listen(E.ctx[0], uri, &scbs, &l);
	if (ret == -ENOSYS || ret == -EOPNOTSUPP || ret == -EPERM)
		SKIP("path %s unavailable here: %s", path, strerror(-ret));
	CHECK_EQ(ret, 0);
	CHECK(wp_ep_local_uri(l, uri, sizeof(uri)) == 0);
	CHECK(wp_connect(E.ctx[1], uri, &ccbs, &ep) == 0);
	fprintf(stderr, "%s\n", wp_ctx_explain(E.ctx[1]));
	DRIVE(&E, (cw.up && srv_ep) || cw.closed);
	CHECK(!cw.closed);

	/* Unary calls, 8 in flight, 0 to 100 KiB, checksummed. */
	watchdog("unary", 60);
	test_fill(big, sizeof(big), 7);
	for (int round = 0; round < 25; round++) {
		struct res rs[8];

		for (int k = 0; k < 8; k++) {
			uint32_t len = (uint32_t)((round * 8 + k) * 2731u) % sizeof(big);

			memset(&rs[k], 0, sizeof(rs[k]));
			rs[k].sum = FNV_INIT;
			rs[k].want_sum = fnv1a(big, len, FNV_INIT);
			call(ep, M_ECHO, big, len, 0, on_echo, &rs[k]);
		}
		for (int k = 0; k < 8; k++) {
			DRIVE(&E, rs[k].done);
			CHECK_EQ(rs[k].status, 0);
			CHECK_EQ(rs[k].chunks, 1);
			CHECK(rs[k].sum == rs[k].want_sum);
		}
	}

	/* A stream of 1000 chunks, in order, every byte checked. */
	watchdog("stream", 60);
	{
		uint32_t req[2] = { NSTREAM, 99 };

		memset(&r, 0, sizeof(r));
		r.seed = req[1];
		call(ep, M_STREAM, req, sizeof(req), 0, on_chunk, &r);
		DRIVE(&E, r.done);
		CHECK_EQ(r.status, 0);
		CHECK_EQ(r.chunks, NSTREAM);
		CHECK_EQ(r.bad, 0);
	}

	/* A deadline with nothing on any fd: only the timer wp_ctx_arm gave
	 * wakes us, after 50 ms, in a handful of turns (no busy loop). */
	watchdog("deadline", 30);
	memset(&r, 0, sizeof(r));
	t0 = wp_now_ns();
	turns0 = E.turns;
	timeouts0 = E.timeouts;
	call(ep, M_HOLD, "x", 1, 50000, NULL, &r);
	DRIVE(&E, r.done);
	CHECK_EQ(r.status, -ETIMEDOUT);
	CHECK(wp_now_ns() - t0 >= 50000000ull);
	CHECK(E.timeouts > timeouts0);
	fprintf(stderr, "deadline: %.1f ms, %llu turns, %llu timer wake-ups\n",
		(wp_now_ns() - t0) / 1e6, (unsigned long long)(E.turns - turns0),
		(unsigned long long)(E.timeouts - timeouts0));
	CHECK(E.turns - turns0 <= 40);
	DRIVE(&E, !held[nheld - 1]); /* the server hears of the cancel */

	/* 10000 ping-pongs, every sleep epoll_wait(-1), each context progressed
	 * only when its own fd woke us. */
	watchdog("ping-pong", 90);
	pg.ep = ep;
	timeouts0 = E.timeouts;
	wp_meter_snapshot(&m0);
	t0 = wp_now_ns();
	turns0 = E.turns;
	ping_send(&pg);
	DRIVE(&E, pg.done == NPING);
	CHECK_EQ(pg.bad, 0);
	CHECK_EQ(E.timeouts, timeouts0); /* no timer: every wake-up came from a fd */
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &md);
	/* What embedding costs per round trip, both sides together: the
	 * library's syscalls by kind (the meter) and our own epoll_waits. */
	fprintf(stderr,
		"ping-pong: %d round trips in %.1f ms; per round trip %.2f epoll_wait of ours, "
		"library syscalls %.2f (read %.2f, write %.2f, epoll_wait %.2f, uring_enter %.2f)\n",
		NPING, (wp_now_ns() - t0) / 1e6, (double)(E.turns - turns0) / NPING,
		(double)wp_meter_syscalls(&md) / NPING, (double)md.syscalls[WP_SYS_READ] / NPING,
		(double)md.syscalls[WP_SYS_WRITE] / NPING,
		(double)md.syscalls[WP_SYS_EPOLL_WAIT] / NPING,
		(double)md.syscalls[WP_SYS_URING_ENTER] / NPING);

	/* The server closes the connection with a call pending: the client
	 * hears of it through its fd alone. */
	watchdog("peer close", 30);
	memset(&r, 0, sizeof(r));
	nheld = 0;
	call(ep, M_HOLD, "y", 1, 0, NULL, &r);
	DRIVE(&E, nheld);
	wp_ep_close(srv_ep);
	DRIVE(&E, cw.closed && r.done);
	CHECK(r.status == -ECONNRESET || r.status == -ECONNABORTED);

	fprintf(stderr,
		"%s: %llu turns, %llu timer wake-ups, %llu EINTR, %llu progress(0) after "
		"-EAGAIN, %llu after a wake-up\n",
		path, (unsigned long long)E.turns, (unsigned long long)E.timeouts,
		(unsigned long long)E.eintr, (unsigned long long)E.eagain,
		(unsigned long long)E.progressed);
	alarm(0);
	for (int i = 0; i < 2; i++) /* the fds close with their contexts */
		CHECK(epoll_ctl(E.epfd, EPOLL_CTL_DEL, E.fd[i], NULL) == 0);
	wp_ep_close(ep);
	wp_ctx_destroy(E.ctx[1]);
	wp_ctx_destroy(E.ctx[0]);
	close(E.epfd);
	printf("test_embed[%s]: ok\n", path);
	return 0;
}
