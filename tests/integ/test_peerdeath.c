// SPDX-License-Identifier: MIT
/*
 * A peer process dies (SIGKILL) with work in flight, once per path.
 *
 * 1. Server dies: a forked child runs a wirepath server that holds every
 *    call to method 3 and streams method 2 forever (a chunk a millisecond,
 *    from its loop's tick). Our client starts 32 held calls and a stream,
 *    waits for stream chunks, kills the child. Every pending call must end
 *    with on_done(-ECONNRESET) exactly once within 2 s, the endpoint reports
 *    WP_EP_CLOSED once, later calls and sends return -ENOTCONN, and
 *    wp_ctx_destroy frees everything (ASan's leak check runs at exit).
 * 2. Client dies: the server runs on a thread here; a forked child client
 *    starts held calls and a stream and is killed. The server sees
 *    WP_EP_CLOSED for that endpoint, wp_call_cancelled() turns true for every
 *    call it holds, answering them returns -ENOTCONN without a crash, and the
 *    server goes on serving a new client.
 * 3. Peer dies mid-send: our client sends an 8 MiB one-way message and an
 *    8 MiB request (both with completion callbacks) to a forked raw reader
 *    that takes 1 MiB and stalls, and is killed. Each completion runs exactly
 *    once, with 0 or a negative status, before the endpoint's owner closes it
 *    (the message's callback frees its buffer, so a second run would also
 *    be a double free under ASan). Then the same context sends large
 *    and small payloads intact on a new connection.
 *
 * Children are forked before this process has any thread, ask for SIGKILL if
 * we die (PR_SET_PDEATHSIG), and are killed and reaped by PID.
 *
 * wp-test-paths: tcp uring (forked TCP peers; shm's peer-death cases are in test_shm.c)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "harness.h"
#include "procs.h"
#include "core/frame.h"

enum { M_ECHO = 1, M_STREAM = 2, M_HOLD = 3, M_BIG = 4, M_SINK = 9 };

#define CHUNK 64 /* stream chunk: 8-byte sequence number + pattern */

static void chunk_fill(uint8_t *p, uint64_t seq)
{
	memcpy(p, &seq, 8);
	for (int i = 8; i < CHUNK; i++)
		p[i] = (uint8_t)(seq * 31 + (uint64_t)i);
}

/* ---- the server (in a child for case 1, on a thread for case 2) ------- */

#define MAX_CALLS 256

struct scall {
	struct wp_call *k;
	int stream;
	uint64_t seq;
};

/* Touched only by the server's thread. */
static struct scall scalls[MAX_CALLS];
static int nscalls;
static uint64_t next_tick_ns;

/* Results, read by the test thread (case 2). */
static atomic_int s_received;     /* held + stream calls taken */
static atomic_int s_up, s_closed; /* endpoint events */
static atomic_int s_closed_err;
static _Atomic(struct wp_ep *) s_first_ep, s_closed_ep;
static atomic_int s_dead_cancelled; /* calls on a dead endpoint seen as cancelled */
static atomic_int s_dead_enotconn;  /* ... whose answers all returned -ENOTCONN */
static atomic_int s_dead_other;     /* ... where some answer returned anything else */
static atomic_int s_live_ended;     /* calls cancelled by a live client, ended with 0 */

static void s_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	if (ev == WP_EP_CONNECTED) {
		struct wp_ep *none = NULL;

		atomic_compare_exchange_strong(&s_first_ep, &none, ep);
		atomic_fetch_add(&s_up, 1);
	} else {
		wp_ep_set_user(ep, ep); /* marks it dead for the tick */
		atomic_store(&s_closed_ep, ep);
		atomic_store(&s_closed_err, err);
		atomic_fetch_add(&s_closed, 1);
	}
}

static void s_take(struct wp_call *k, int stream)
{
	CHECK(nscalls < MAX_CALLS);
	scalls[nscalls++] = (struct scall){ .k = k, .stream = stream };
	atomic_fetch_add(&s_received, 1);
}

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	CHECK(wp_call_reply(call, req->data, req->len, NULL, NULL) == 0);
}

static void h_hold(void *arg, struct wp_call *call, struct wp_msg *req)
{
	s_take(call, 0); /* never answered while the client lives */
}

static void h_stream(void *arg, struct wp_call *call, struct wp_msg *req)
{
	s_take(call, 1);
}

static void s_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_STREAM, h_stream, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_HOLD, h_hold, NULL) == 0);
}

/* Every loop round: streams get a chunk per elapsed millisecond; calls whose
 * client went away (or cancelled) are answered and dropped. */
static void s_tick(struct srv *s)
{
	uint64_t now = wp_now_ns();
	int due = 0;

	if (now >= next_tick_ns) {
		due = next_tick_ns ? (int)((now - next_tick_ns) / 1000000) + 1 : 1;
		if (due > 4)
			due = 4;
		next_tick_ns = now + 1000000;
	}
	for (int i = 0; i < nscalls; i++) {
		struct scall *c = &scalls[i];
		int dead = wp_ep_user(wp_call_ep(c->k)) != NULL;

		if (wp_call_cancelled(c->k)) {
			if (dead) {
				uint8_t b[CHUNK];
				int ok = 1;

				atomic_fetch_add(&s_dead_cancelled, 1);
				chunk_fill(b, c->seq);
				if (c->stream &&
				    wp_call_stream(c->k, b, sizeof(b), NULL, NULL) != -ENOTCONN)
					ok = 0;
				if (wp_call_end(c->k, 0) != -ENOTCONN)
					ok = 0;
				atomic_fetch_add(ok ? &s_dead_enotconn : &s_dead_other, 1);
			} else {
				CHECK(wp_call_end(c->k, 0) == 0);
				atomic_fetch_add(&s_live_ended, 1);
			}
			scalls[i--] = scalls[--nscalls];
			continue;
		}
		for (int d = 0; c->stream && d < due; d++) {
			uint8_t b[CHUNK];

			chunk_fill(b, c->seq++);
			CHECK(wp_call_stream(c->k, b, sizeof(b), NULL, NULL) == 0);
		}
	}
}

/* ---- processes -------------------------------------------------------- */

/* ---- client side -------------------------------------------------------- */

struct cres {
	int done, ndone, status;
	uint64_t chunks;
	int bad_chunk;
};

static void c_on_data(void *arg, struct wp_msg *m)
{
	struct cres *r = arg;
	uint8_t want[CHUNK];

	chunk_fill(want, r->chunks);
	if (m->len != CHUNK || memcmp(m->data, want, CHUNK))
		r->bad_chunk = 1;
	r->chunks++;
}

static void c_on_done(void *arg, int status)
{
	struct cres *r = arg;

	r->ndone++;
	CHECK(r->ndone == 1); /* exactly once */
	r->done = 1;
	r->status = status;
}

struct cep {
	int up, closed, nclosed, err;
};

static void c_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct cep *e = arg;

	if (ev == WP_EP_CONNECTED) {
		e->up = 1;
	} else {
		e->closed = 1;
		e->nclosed++;
		e->err = err;
	}
}

static struct wp_ep *c_connect(struct wp_ctx *c, const char *path, int port, struct cep *e)
{
	struct wp_ep_cbs cbs = { .event = c_event, .arg = e };
	uint64_t end = wp_now_ns() + 5000000000ull;
	struct wp_ep *ep;
	char uri[64];

	h_uri(uri, sizeof(uri), path, port);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	while (!e->up && !e->closed) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(wp_now_ns() < end);
	}
	CHECK(e->up);
	return ep;
}

static int c_call(struct wp_ep *ep, uint32_t method, struct cres *r, uint32_t arg32)
{
	struct wp_call_params p = { .method = method,
				    .req = &arg32,
				    .req_len = 4,
				    .on_data = c_on_data,
				    .on_done = c_on_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	return wp_rpc_call(ep, &p, NULL);
}

struct eres {
	int done, status;
	uint32_t got;
	uint64_t sum;
};

static void e_on_data(void *arg, struct wp_msg *m)
{
	struct eres *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->got += m->len;
}

static void e_on_done(void *arg, int status)
{
	struct eres *r = arg;

	CHECK(!r->done); /* exactly once */
	r->done = 1;
	r->status = status;
}

/* One checksummed echo through ep. */
static void c_echo_check(struct wp_ctx *c, struct wp_ep *ep)
{
	static uint8_t buf[3000];
	struct eres r = { .sum = FNV_INIT };
	struct wp_call_params p = { .method = M_ECHO,
				    .req = buf,
				    .req_len = sizeof(buf),
				    .on_data = e_on_data,
				    .on_done = e_on_done,
				    .arg = &r };

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 5);
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &r.done, 3000);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.got, sizeof(buf));
	CHECK(r.sum == fnv1a(buf, sizeof(buf), FNV_INIT));
}

/* ---- case 1: the server process dies ---------------------------------- */

#define NHELD 32

static void case_server_dies(const char *path)
{
	static struct cres held[NHELD], stream;
	struct wp_meter_snap m0, m1;
	struct cep e = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	int pfd[2], port = 0, all;
	pid_t pid;
	uint64_t t0;

	CHECK(pipe(pfd) == 0);
	pid = fork_child();
	if (pid == 0) {
		static struct srv s;
		int ret;

		close(pfd[0]);
		s.path = path;
		s.setup = s_setup;
		s.tick = s_tick;
		ret = srv_open(&s, NULL);
		pipe_write_int(pfd[1], ret < 0 ? ret : s.port);
		if (ret < 0)
			_exit(1);
		srv_loop(&s); /* never stops: we get SIGKILL */
		_exit(1);
	}
	close(pfd[1]);
	if (pipe_read_int(pfd[0], 5000, &port) < 0)
		port = -EIO;
	close(pfd[0]);
	if (port == -ENOSYS || port == -EOPNOTSUPP || port == -EPERM) {
		kill_child(pid);
		SKIP("path %s unavailable here: %s", path, strerror(-port));
	}
	CHECK(port > 0);

	c = client_ctx(path);
	ep = c_connect(c, path, port, &e);
	c_echo_check(c, ep);
	wp_meter_snapshot(&m0);
	for (int i = 0; i < NHELD; i++)
		CHECK(c_call(ep, M_HOLD, &held[i], (uint32_t)i) == 0);
	CHECK(c_call(ep, M_STREAM, &stream, 0) == 0);
	CHECK_EQ(wp_ep_inflight(ep), NHELD + 1);
	{
		uint64_t end = wp_now_ns() + 5000000000ull;

		while (stream.chunks < 20) {
			CHECK(wp_ctx_progress(c, 1000) >= 0);
			CHECK(wp_now_ns() < end);
		}
	}
	CHECK(!stream.bad_chunk && !stream.done);
	for (int i = 0; i < NHELD; i++)
		CHECK(!held[i].done);
	CHECK(!e.closed);

	kill_child(pid);
	t0 = wp_now_ns();
	do {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		all = stream.done && e.closed;
		for (int i = 0; i < NHELD; i++)
			all &= held[i].done;
		if (wp_now_ns() - t0 > 2000000000ull) {
			fprintf(stderr, "pending calls not all completed 2 s after the kill\n");
			exit(1);
		}
	} while (!all);
	printf("  server killed: %d held calls + 1 stream (%llu chunks) failed in %.1f ms, "
	       "WP_EP_CLOSED err %d\n",
	       NHELD, (unsigned long long)stream.chunks, (double)(wp_now_ns() - t0) / 1e6, e.err);
	for (int i = 0; i < NHELD; i++)
		CHECK_EQ(held[i].status, -ECONNRESET);
	CHECK_EQ(stream.status, -ECONNRESET);
	CHECK(!stream.bad_chunk);
	CHECK_EQ(e.nclosed, 1);
	CHECK(e.err == 0 || e.err == -ECONNRESET);
	CHECK_EQ(wp_ep_inflight(ep), 0);

	/* The endpoint is dead: new work is refused at once. */
	{
		struct cres r;
		uint8_t b[600] = { 0 };

		CHECK_EQ(c_call(ep, M_ECHO, &r, 0), -ENOTCONN);
		CHECK_EQ(wp_ep_send_msg(ep, M_SINK, b, 10, NULL, NULL), -ENOTCONN);
		CHECK_EQ(wp_ep_send_msg(ep, M_SINK, b, sizeof(b), NULL, NULL), -ENOTCONN);
		CHECK_EQ(wp_rpc_cancel(ep, 1), -ENOENT);
		CHECK(!r.done);
	}
	/* Nothing more happens: no second completion, no second event (the
	 * callbacks CHECK exactly-once themselves). */
	for (int i = 0; i < 50; i++)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK_EQ(e.nclosed, 1);
	wp_meter_snapshot(&m1);
	CHECK_EQ(m1.calls_failed - m0.calls_failed, NHELD + 1);
	CHECK_EQ(m1.calls_ok - m0.calls_ok, 0);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

/* ---- case 2: the client process dies ---------------------------------- */

#define NHELD2 16

static void child_client(const char *path, int port_fd, int ready_fd)
{
	static struct cres held[NHELD2], stream;
	struct cep e = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	int port;

	if (pipe_read_int(port_fd, 10000, &port) < 0 || port <= 0)
		_exit(1);
	c = client_ctx(path);
	ep = c_connect(c, path, port, &e);
	for (int i = 0; i < NHELD2; i++)
		CHECK(c_call(ep, M_HOLD, &held[i], (uint32_t)i) == 0);
	CHECK(c_call(ep, M_STREAM, &stream, 0) == 0);
	while (stream.chunks < 10)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	pipe_write_int(ready_fd, 1);
	for (;;)
		wp_ctx_progress(c, 1000); /* until SIGKILL */
}

static void case_client_dies(const char *path)
{
	static struct srv s;
	struct wp_ep_cbs scbs = { .event = s_event };
	int port_pipe[2], ready_pipe[2], ready = 0;
	struct cep e = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct cres st;
	pid_t pid;
	uint64_t t0;

	CHECK(pipe(port_pipe) == 0 && pipe(ready_pipe) == 0);
	pid = fork_child(); /* before the server thread exists */
	if (pid == 0) {
		close(port_pipe[1]);
		close(ready_pipe[0]);
		child_client(path, port_pipe[0], ready_pipe[1]);
		_exit(1);
	}
	close(port_pipe[0]);
	close(ready_pipe[1]);
	nscalls = 0;
	next_tick_ns = 0;
	s.path = path;
	s.setup = s_setup;
	s.tick = s_tick;
	srv_start(&s, &scbs);
	pipe_write_int(port_pipe[1], s.port);
	CHECK(pipe_read_int(ready_pipe[0], 10000, &ready) == 0 && ready == 1);
	close(port_pipe[1]);
	close(ready_pipe[0]);
	CHECK_EQ(atomic_load(&s_received), NHELD2 + 1);
	CHECK_EQ(atomic_load(&s_up), 1);
	CHECK_EQ(atomic_load(&s_closed), 0);

	kill_child(pid);
	t0 = wp_now_ns();
	while (atomic_load(&s_closed) < 1 ||
	       atomic_load(&s_dead_enotconn) + atomic_load(&s_dead_other) < NHELD2 + 1) {
		if (wp_now_ns() - t0 > 2000000000ull) {
			fprintf(stderr, "server: closed %d, answered %d+%d of %d within 2 s\n",
				atomic_load(&s_closed), atomic_load(&s_dead_enotconn),
				atomic_load(&s_dead_other), NHELD2 + 1);
			exit(1);
		}
		usleep(1000);
	}
	printf("  client killed: server saw WP_EP_CLOSED (err %d) in %.1f ms; %d calls "
	       "cancelled, answers refused with -ENOTCONN\n",
	       atomic_load(&s_closed_err), (double)(wp_now_ns() - t0) / 1e6,
	       atomic_load(&s_dead_cancelled));
	CHECK_EQ(atomic_load(&s_closed), 1);
	CHECK(atomic_load(&s_closed_ep) == atomic_load(&s_first_ep));
	{
		int err = atomic_load(&s_closed_err);

		CHECK(err == 0 || err == -ECONNRESET || err == -EPIPE);
	}
	CHECK_EQ(atomic_load(&s_dead_cancelled), NHELD2 + 1);
	CHECK_EQ(atomic_load(&s_dead_enotconn), NHELD2 + 1);
	CHECK_EQ(atomic_load(&s_dead_other), 0);

	/* The server goes on: a new client gets echoes and a stream. */
	c = client_ctx(path);
	ep = c_connect(c, path, s.port, &e);
	c_echo_check(c, ep);
	{
		uint64_t id, end = wp_now_ns() + 3000000000ull;
		uint32_t zero = 0;
		struct wp_call_params p = { .method = M_STREAM,
					    .req = &zero,
					    .req_len = 4,
					    .on_data = c_on_data,
					    .on_done = c_on_done,
					    .arg = &st };

		memset(&st, 0, sizeof(st));
		CHECK(wp_rpc_call(ep, &p, &id) == 0);
		while (st.chunks < 10) {
			CHECK(wp_ctx_progress(c, 1000) >= 0);
			CHECK(wp_now_ns() < end);
		}
		CHECK(!st.bad_chunk);
		CHECK(wp_rpc_cancel(ep, id) == 0);
		drive_until(c, &st.done, 2000);
		CHECK_EQ(st.status, -ECANCELED);
		while (atomic_load(&s_live_ended) < 1) {
			CHECK(wp_ctx_progress(c, 1000) >= 0);
			CHECK(wp_now_ns() < end);
		}
	}
	c_echo_check(c, ep);
	CHECK_EQ(atomic_load(&s_closed), 1);
	printf("  server still serving a new client (echo, stream, cancel)\n");
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
}

/* ---- case 3: the peer dies while we send 8 MiB -------------------------- */

#define BIG (8u << 20)

struct bigsend {
	uint8_t *buf;
	int ndone;
	int status;
};

static void big_done(void *arg, int status)
{
	struct bigsend *b = arg;

	b->ndone++;
	b->status = status;
	CHECK(b->ndone == 1);
	free(b->buf); /* a second run would be a double free */
	b->buf = NULL;
}

struct bigcall {
	int nreq_done, req_status;
	int ndone, status;
};

static void bigcall_req_done(void *arg, int status)
{
	struct bigcall *b = arg;

	b->nreq_done++;
	b->req_status = status;
	CHECK(b->nreq_done == 1);
}

static void bigcall_done(void *arg, int status)
{
	struct bigcall *b = arg;

	b->ndone++;
	b->status = status;
	CHECK(b->ndone == 1);
}

/* The child: a plain TCP reader with a small receive buffer that takes
 * 1 MiB, says so, and stalls. */
static void child_reader(int port_fd, int mid_fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), fd, rcv = 64 << 10;
	static uint8_t buf[64 << 10];
	size_t got = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		_exit(1);
	pipe_write_int(port_fd, ntohs(a.sin_port));
	fd = accept(l, NULL, NULL);
	if (fd < 0)
		_exit(1);
	while (got < (1u << 20)) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			_exit(1);
		got += (size_t)n;
	}
	pipe_write_int(mid_fd, (int)got);
	for (;;)
		pause(); /* until SIGKILL */
}

/*
 * After a connection died mid-send, the same context must still send
 * correctly on a new connection: several large payloads (zero-copy sized)
 * and small ones in one chain, to a raw reader in this process that checks
 * every frame's header and checksum. Send-op bookkeeping corrupted by the
 * failure (say, an op recycled twice) shows here.
 */
#define NAFTER 6

struct after {
	int ndone, status;
};

static void after_done(void *arg, int status)
{
	struct after *a = arg;

	a->ndone++;
	a->status = status;
	CHECK(a->ndone == 1);
}

static void send_after_failure(struct wp_ctx *c, const char *path)
{
	static uint8_t pay[NAFTER][256 << 10];
	static uint8_t rbuf[64 << 10];
	struct after a[NAFTER] = { { 0 } };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct cep e = { 0 };
	struct wp_ep *ep;
	int l, fd = -1, frames = 0, all;
	uint8_t hb[WP_FRAME_HDR];
	uint32_t hhave = 0, phave = 0;
	struct wp_frame_hdr h = { 0 };
	uint64_t sum = FNV_INIT, end;
	char uri[64];

	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 4) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&sa, &sl) == 0);
	h_uri(uri, sizeof(uri), path, ntohs(sa.sin_port));
	{
		struct wp_ep_cbs cbs = { .event = c_event, .arg = &e };

		CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	}
	end = wp_now_ns() + 3000000000ull;
	while (!e.up || fd < 0) {
		CHECK(!e.closed);
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		if (fd < 0)
			fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		CHECK(wp_now_ns() < end);
	}
	close(l);
	for (int i = 0; i < NAFTER; i++) {
		size_t len = i % 2 ? 300 : sizeof(pay[i]); /* small ones staged, large zero-copy */

		for (size_t j = 0; j < len; j++)
			pay[i][j] = (uint8_t)(j * 7 + (size_t)i * 131);
		CHECK(wp_ep_send_msg(ep, M_SINK + (uint32_t)i, pay[i], len, after_done, &a[i]) ==
		      0);
	}
	do {
		ssize_t n;

		CHECK(wp_ctx_progress(c, 500) >= 0);
		while ((n = read(fd, rbuf, sizeof(rbuf))) > 0) {
			for (ssize_t off = 0; off < n;) {
				if (hhave < WP_FRAME_HDR) {
					int reason;

					hb[hhave++] = rbuf[off++];
					if (hhave == WP_FRAME_HDR) {
						CHECK_EQ(wp_frame_decode(hb, WP_FRAME_HDR, 1u << 20,
									 &h, &reason),
							 WP_FRAME_HDR);
						CHECK_EQ(h.type, WP_FT_MSG);
						CHECK_EQ(h.method, M_SINK + (uint32_t)frames);
						phave = 0;
						sum = FNV_INIT;
					}
				} else {
					size_t take = h.len - phave;

					if (take > (size_t)(n - off))
						take = (size_t)(n - off);
					sum = fnv1a(rbuf + off, take, sum);
					phave += (uint32_t)take;
					off += (ssize_t)take;
				}
				if (hhave == WP_FRAME_HDR && phave == h.len) {
					CHECK(frames < NAFTER);
					CHECK_EQ(h.len, frames % 2 ? 300 : sizeof(pay[0]));
					CHECK(sum == fnv1a(pay[frames], h.len, FNV_INIT));
					frames++;
					hhave = 0;
				}
			}
		}
		CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
		all = frames == NAFTER;
		for (int i = 0; i < NAFTER; i++)
			all &= a[i].ndone == 1;
		CHECK(!e.closed);
		if (wp_now_ns() > end) {
			fprintf(stderr, "after the failure: %d of %d frames arrived\n", frames,
				NAFTER);
			exit(1);
		}
	} while (!all);
	for (int i = 0; i < NAFTER; i++)
		CHECK_EQ(a[i].status, 0);
	close(fd);
	wp_ep_close(ep);
	printf("  same context, new connection: %d frames (large zero-copy + small) intact\n",
	       NAFTER);
}

static void case_dies_mid_send(const char *path)
{
	static struct bigsend bs;
	static struct bigcall bc;
	static uint8_t req[BIG];
	struct cep e = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	int port_pipe[2], mid_pipe[2], port = 0, got = 0;
	pid_t pid;
	uint64_t t0, end;

	CHECK(pipe(port_pipe) == 0 && pipe(mid_pipe) == 0);
	pid = fork_child();
	if (pid == 0) {
		close(port_pipe[0]);
		close(mid_pipe[0]);
		child_reader(port_pipe[1], mid_pipe[1]);
		_exit(1);
	}
	close(port_pipe[1]);
	close(mid_pipe[1]);
	CHECK(pipe_read_int(port_pipe[0], 5000, &port) == 0 && port > 0);
	close(port_pipe[0]);

	c = client_ctx(path);
	ep = c_connect(c, path, port, &e);
	bs.buf = malloc(BIG);
	CHECK(bs.buf);
	memset(bs.buf, 0xa5, BIG);
	memset(req, 0x3c, sizeof(req));
	CHECK(wp_ep_send_msg(ep, M_SINK, bs.buf, BIG, big_done, &bs) == 0);
	{
		struct wp_call_params p = { .method = M_BIG,
					    .req = req,
					    .req_len = BIG,
					    .req_done = bigcall_req_done,
					    .on_done = bigcall_done,
					    .arg = &bc };

		/* req_done and on_done share arg; they tell themselves apart. */
		CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	}
	CHECK_EQ(bs.ndone, 0); /* never from inside the call */

	/* Keep sending until the reader has taken its 1 MiB and stalled. */
	end = wp_now_ns() + 5000000000ull;
	for (;;) {
		struct pollfd pf = { .fd = mid_pipe[0], .events = POLLIN };

		CHECK(wp_ctx_progress(c, 1000) >= 0);
		if (poll(&pf, 1, 0) == 1)
			break;
		CHECK(wp_now_ns() < end);
	}
	CHECK(read(mid_pipe[0], &got, sizeof(got)) == (ssize_t)sizeof(got));
	close(mid_pipe[0]);
	for (int i = 0; i < 20; i++) /* fill the socket buffers */
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	printf("  reader took %d KiB and stalled; message done %s, request done %s\n", got >> 10,
	       bs.ndone ? "already" : "not yet", bc.nreq_done ? "already" : "not yet");
	CHECK(!e.closed);
	CHECK_EQ(bc.ndone, 0);

	kill_child(pid);
	t0 = wp_now_ns();
	while (!e.closed || !bs.ndone || !bc.nreq_done || !bc.ndone) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		if (wp_now_ns() - t0 > 2000000000ull)
			break; /* judged after destroy, at the latest */
	}
	printf("  reader killed after %.1f ms: closed=%d (err %d), message done x%d (%d), "
	       "request done x%d (%d), call done x%d (%d)\n",
	       (double)(wp_now_ns() - t0) / 1e6, e.closed, e.err, bs.ndone, bs.status, bc.nreq_done,
	       bc.req_status, bc.ndone, bc.status);
	CHECK_EQ(e.nclosed, 1);
	CHECK(e.err < 0);
	CHECK_EQ(bc.ndone, 1);
	CHECK_EQ(bc.status, -ECONNRESET);
	/* The sends' completions too, while the owner still holds the
	 * endpoint: what was in the kernel at the reset completes with the
	 * kernel's last op, not when the owner lets go (an owner waiting for
	 * them would wait forever). */
	CHECK_EQ(bs.ndone, 1);
	CHECK_EQ(bc.nreq_done, 1);
	for (int i = 0; i < 20; i++)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	send_after_failure(c, path);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	/* Exactly once each, by now at the latest; 0 or a negative status. */
	CHECK_EQ(bs.ndone, 1);
	CHECK(bs.status <= 0);
	CHECK(bs.buf == NULL);
	CHECK_EQ(bc.nreq_done, 1);
	CHECK(bc.req_status <= 0);
	CHECK_EQ(bc.ndone, 1);
}

int main(int argc, char **argv)
{
	const char *path = test_path(argc, argv);

	test_watchdog(25);
	signal(SIGPIPE, SIG_IGN);
	printf("path: %s\n", path);
	/* Cases that fork while this process has no thread first. */
	case_server_dies(path);
	case_dies_mid_send(path);
	case_client_dies(path);
	printf("ok\n");
	return 0;
}
