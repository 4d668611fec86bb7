// SPDX-License-Identifier: MIT
/*
 * The shm path under load, under peer death and under attack. Every payload
 * carries its sequence number, its length and an FNV-1a checksum of its body
 * (struct phdr; payloads shorter than that are a pattern derived from the
 * sequence number), and receivers check all three.
 *
 * 1. Ring wrap-around and back-pressure: a client with 8-slot rings, a 1 MiB
 *    arena and a 1 MiB heap sends WP_SHM_N (default 10^6) one-way messages of
 *    mixed sizes (0 B, 1..512 B, some 64 KiB): most from wp_ep_buf_alloc
 *    buffers with a completion (handed over in place), the rest from plain
 *    memory without one (copied; the buffer is poisoned right after the call).
 *    Every send returns 0 (a full ring or arena queues inside the library);
 *    the server thread sees every message once, in order, intact. The meter
 *    shows in-place payloads were not copied.
 * 2. 256 concurrent RPCs with distinct payloads (half of the requests in
 *    place) echoed back, then a stream of 1000 chunks, over 8-slot rings.
 * 3. A buffer comes back only when the peer released it: 16 heap buffers are
 *    sent, poisoned (0xdd) in their completion and refilled for the next
 *    message; the server spins 20 us before it checksums each one, so an early
 *    completion shows up as a bad checksum. Then a sender that waits in
 *    wp_ctx_progress for nothing but an in-place completion must be woken
 *    when the peer releases the buffer (here 5 ms later), not at its timeout.
 * 4. Peer death (children forked while this process has no thread, dying
 *    with us through PR_SET_PDEATHSIG, killed and reaped by PID):
 *    a. the consumer stops reading and is killed while the producer has
 *       in-place, copied and RPC sends queued: within 2 s the endpoint reports
 *       WP_EP_CLOSED, every completion runs exactly once (0 for what the peer
 *       released, negative for the rest), calls fail with -ECONNRESET, and the
 *       same context then works with a new server;
 *    b. the producer is killed mid-stream: the server sees WP_EP_CLOSED within
 *       2 s and every message it was given was intact and in order;
 *    c. after both, no "wirepath-shm" mapping is left in /proc/self/maps and
 *       the number of open fds is back where it started.
 * 5. A hostile peer, written by hand here against the layout the library itself
 *    uses (src/transport/shm/layout.h): hellos that must be refused (no fds,
 *    unsealed memfd, geometry out of bounds, region smaller than its geometry,
 *    doorbells that are not eventfds, ...) leave the server serving; after a
 *    correct handshake, bad descriptors (bad magic, version or type, payload
 *    outside the producer's arena and heap, prod index beyond the ring,
 *    releases of descriptors never published, bytes on the setup socket) each
 *    close only that connection and count the right bad_frames reason, and
 *    ringing the closed connection's doorbell afterwards reaches nothing (the
 *    endpoint is freed); doorbells handed over without EFD_NONBLOCK, one kept
 *    full, must not block the server. A normal client keeps echoing checksummed
 *    calls throughout.
 *
 * Environment: WP_SHM_N sets the message count of case 1 (cases 3 and 4b use
 * a fiftieth of it, at least 1000 and 2000): the valgrind run in tests/run.sh
 * uses 20000, and every case runs under valgrind (forked children included).
 * WP_SHM_SKIP="4 5" leaves cases out, for debugging.
 *
 * wp-test-paths: shm
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness.h"
#include "procs.h"
#include "core/frame.h"
#include "transport/shm/layout.h"

enum { M_ECHO = 1, M_STREAM = 2, M_SPIN = 3, M_SLOWMSG = 4, M_RAW = 5 };

/* ---- payloads ----------------------------------------------------------- */

#define PTAG 0x73686d31u
struct phdr {
	uint64_t seq;
	uint32_t len;
	uint32_t tag;
	uint64_t sum; /* FNV-1a of the bytes after this header */
};
#define PHDR ((uint32_t)sizeof(struct phdr))

static uint8_t small_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)((seq * 131 + i * 7) ^ 0x5a);
}

static void pay_fill(uint8_t *p, uint64_t seq, uint32_t len)
{
	struct phdr h;
	uint8_t x = (uint8_t)(seq * 131);

	if (len < PHDR) {
		for (uint32_t i = 0; i < len; i++)
			p[i] = small_byte(seq, i);
		return;
	}
	for (uint32_t i = PHDR; i < len; i++)
		p[i] = (uint8_t)(x + i * 7 + (i >> 9));
	h = (struct phdr){ seq, len, PTAG, fnv1a(p + PHDR, len - PHDR, FNV_INIT) };
	memcpy(p, &h, PHDR);
}

/* 0 if p[0..len) is what pay_fill(seq, len) wrote. */
static int pay_check(const void *data, uint32_t len, uint64_t seq)
{
	const uint8_t *p = data;
	struct phdr h;

	if (len < PHDR) {
		for (uint32_t i = 0; i < len; i++)
			if (p[i] != small_byte(seq, i))
				return -1;
		return 0;
	}
	memcpy(&h, p, PHDR);
	if (h.seq != seq || h.len != len || h.tag != PTAG)
		return -1;
	return fnv1a(p + PHDR, len - PHDR, FNV_INIT) == h.sum ? 0 : -1;
}

static void spin_ns(uint64_t ns)
{
	uint64_t t0 = wp_now_ns();

	while (wp_now_ns() - t0 < ns)
		__builtin_ia32_pause();
}

/* ---- process resources --------------------------------------------------- */

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	CHECK(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Mappings of a wirepath shm region (memfd "wirepath-shm"). */
static int shm_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	CHECK(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "wirepath-shm"))
			n++;
	fclose(f);
	return n;
}

/* ---- contexts and endpoints --------------------------------------------- */

static struct wp_ctx *mk_ctx(const char *who, uint32_t slots, uint32_t arena_mb, uint32_t heap_mb)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;

	h_opts(&o, who);
	o.shm_slots = slots;
	o.shm_arena_mb = arena_mb;
	o.shm_heap_mb = heap_mb;
	CHECK(wp_ctx_create(&o, &c) == 0);
	return c;
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

static struct wp_ep *c_connect(struct wp_ctx *c, int port, struct cep *e)
{
	struct wp_ep_cbs cbs = { .event = c_event, .arg = e };
	uint64_t end = wp_now_ns() + 5000000000ull;
	struct wp_ep *ep;
	char uri[64];
	int ret;

	memset(e, 0, sizeof(*e));
	h_uri(uri, sizeof(uri), "shm", port);
	ret = wp_connect(c, uri, &cbs, &ep);
	if (ret == -ENOSYS || ret == -EOPNOTSUPP || ret == -EPERM)
		SKIP("shm unavailable here: %s", strerror(-ret));
	CHECK_EQ(ret, 0);
	while (!e->up && !e->closed) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(wp_now_ns() < end);
	}
	CHECK(e->up);
	return ep;
}

/* ---- server handlers (every server here runs these) ----------------------- */

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	CHECK(wp_call_reply(call, req->data, req->len, NULL, NULL) == 0);
}

#define CHUNK 64

static void chunk_fill(uint8_t *p, uint32_t seq)
{
	memcpy(p, &seq, 4);
	for (uint32_t i = 4; i < CHUNK; i++)
		p[i] = (uint8_t)(seq * 31 + i);
}

static void h_stream(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint32_t n;
	uint8_t b[CHUNK];

	CHECK_EQ(req->len, 4);
	memcpy(&n, req->data, 4);
	for (uint32_t i = 0; i < n; i++) {
		chunk_fill(b, i);
		CHECK(wp_call_stream(call, b, sizeof(b), NULL, NULL) == 0);
	}
	CHECK(wp_call_end(call, 0) == 0);
}

static void s_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_STREAM, h_stream, NULL) == 0);
}

/* One checksummed echo, driven to completion. */
struct eres {
	int done, ndone, status;
	uint32_t got;
	uint64_t sum;
};

static void e_data(void *arg, struct wp_msg *m)
{
	struct eres *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->got += m->len;
}

static void e_done(void *arg, int status)
{
	struct eres *r = arg;

	r->ndone++;
	CHECK(r->ndone == 1);
	r->done = 1;
	r->status = status;
}

static int echo_start(struct wp_ep *ep, struct eres *r, const uint8_t *buf, uint32_t len)
{
	struct wp_call_params p = { .method = M_ECHO,
				    .req = buf,
				    .req_len = len,
				    .on_data = e_data,
				    .on_done = e_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	r->sum = FNV_INIT;
	return wp_rpc_call(ep, &p, NULL);
}

static void echo_check(struct wp_ctx *c, struct wp_ep *ep)
{
	static uint8_t buf[3000];
	struct eres r;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 5);
	CHECK(echo_start(ep, &r, buf, sizeof(buf)) == 0);
	drive_until(c, &r.done, 3000);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.got, sizeof(buf));
	CHECK(r.sum == fnv1a(buf, sizeof(buf), FNV_INIT));
}

/* ======================================================================== */
/* 4a. The consumer dies with sends queued                                   */
/* ======================================================================== */

#define A_MAX 1024
#define A_BEFORE 300 /* sent before the child reports */
#define A_AFTER 120  /* sent after it stopped reading: these queue up */
#define A_CALLS 4

static uint32_t a_len(uint64_t seq)
{
	return PHDR + (uint32_t)(seq * 37 % 2000);
}

/* The child: a server that takes ~100 messages, reports, and stops reading. */
static int ch_n, ch_bad;

static void ch_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	uint64_t seq = (uint64_t)ch_n++;

	if (m->method != seq + 1 || m->len != a_len(seq) || pay_check(m->data, m->len, seq))
		ch_bad++;
}

static void child_stalling_server(int port_fd, int rep_fd)
{
	struct wp_ep_cbs cbs = { .msg = ch_msg };
	struct wp_ctx *c = mk_ctx("child-server", 0, 0, 0);
	struct wp_ep *l;
	int ret = wp_listen(c, "shm://@", &cbs, &l);

	pipe_write_int(port_fd, ret < 0 ? ret : wp_ep_local_port(l));
	if (ret < 0)
		_exit(1);
	while (ch_n < 100)
		wp_ctx_progress(c, 1000);
	/* Everything delivered was released when its callback returned. */
	pipe_write_int(rep_fd, ch_n);
	pipe_write_int(rep_fd, ch_bad);
	for (;;)
		pause(); /* never reads again; SIGKILL ends it */
}

enum { A_INPLACE = 0, A_COPY_DONE = 1, A_COPY = 2 };

struct asend {
	int mode;
	int ndone;
	int status;
	uint8_t *buf;   /* in place: the heap buffer */
	uint8_t *plain; /* copied with a completion: ours again only at done */
};

static struct asend as[A_MAX];
static struct wp_ep *a_ep;

static void a_done(void *arg, int status)
{
	struct asend *s = arg;

	s->ndone++;
	CHECK(s->ndone == 1); /* exactly once */
	s->status = status;
	if (s->buf) {
		memset(s->buf, 0xdd, a_len((uint64_t)(s - as))); /* ours again */
		wp_ep_buf_free(a_ep, s->buf);
		s->buf = NULL;
	}
	if (s->plain) {
		memset(s->plain, 0xdd, a_len((uint64_t)(s - as)));
		free(s->plain);
		s->plain = NULL;
	}
}

static void a_send(uint64_t seq)
{
	static uint8_t scratch[4096];
	struct asend *s = &as[seq];
	uint32_t len = a_len(seq);

	CHECK(seq < A_MAX);
	s->mode = (int)(seq % 3);
	if (s->mode == A_INPLACE) {
		s->buf = wp_ep_buf_alloc(a_ep, len);
		CHECK(s->buf); /* 1 MiB heap, a few hundred KiB in use at most */
		pay_fill(s->buf, seq, len);
		CHECK_EQ(wp_ep_send_msg(a_ep, (uint32_t)seq + 1, s->buf, len, a_done, s), 0);
	} else if (s->mode == A_COPY_DONE) {
		/* Plain memory with a completion: the library's until done. */
		s->plain = malloc(len);
		CHECK(s->plain);
		pay_fill(s->plain, seq, len);
		CHECK_EQ(wp_ep_send_msg(a_ep, (uint32_t)seq + 1, s->plain, len, a_done, s), 0);
	} else {
		pay_fill(scratch, seq, len);
		CHECK_EQ(wp_ep_send_msg(a_ep, (uint32_t)seq + 1, scratch, len, NULL, NULL), 0);
		memset(scratch, 0xee, len); /* ours at once: it was copied */
	}
}

static struct eres a_calls[A_CALLS];

static void case_consumer_dies(void)
{
	static uint8_t req[A_CALLS][100];
	int port_pipe[2], rep_pipe[2], port = 0, R = -1, bad = -1, fd0, all;
	uint64_t seq = 0, t0, end;
	int released = 0, inflight_inplace = 0, posted = 0, queued = 0;
	struct cep e;
	struct wp_ctx *c;
	pid_t pid;

	printf("4a. consumer killed with sends queued\n");
	fd0 = fd_count();
	CHECK(pipe(port_pipe) == 0 && pipe(rep_pipe) == 0);
	pid = fork_child();
	if (pid == 0) {
		close(port_pipe[0]);
		close(rep_pipe[0]);
		child_stalling_server(port_pipe[1], rep_pipe[1]);
		_exit(1);
	}
	close(port_pipe[1]);
	close(rep_pipe[1]);
	if (pipe_read_int(port_pipe[0], 5000, &port) < 0)
		port = -EIO;
	close(port_pipe[0]);
	if (port == -ENOSYS || port == -EOPNOTSUPP || port == -EPERM) {
		kill_child(pid);
		SKIP("shm unavailable here: %s", strerror(-port));
	}
	CHECK(port > 0);

	c = mk_ctx("client", 8, 1, 1);
	a_ep = c_connect(c, port, &e);

	/* Send until the child has taken its ~100 and stopped. */
	end = wp_now_ns() + 5000000000ull;
	for (;;) {
		struct pollfd pf = { .fd = rep_pipe[0], .events = POLLIN };

		if (seq < A_BEFORE)
			a_send(seq++);
		CHECK(wp_ctx_progress(c, seq < A_BEFORE ? 0 : 1000) >= 0);
		if (poll(&pf, 1, 0) == 1)
			break;
		CHECK(wp_now_ns() < end);
	}
	CHECK(pipe_read_int(rep_pipe[0], 1000, &R) == 0 &&
	      pipe_read_int(rep_pipe[0], 1000, &bad) == 0);
	close(rep_pipe[0]);
	CHECK_EQ(bad, 0);
	CHECK(R >= 100 && R <= (int)seq);
	/* The child is stalled now: everything else queues. */
	for (int i = 0; i < A_AFTER; i++) {
		a_send(seq++);
		if (i % 8 == 0)
			CHECK(wp_ctx_progress(c, 0) >= 0);
	}
	for (int i = 0; i < A_CALLS; i++) {
		memset(req[i], 'a' + i, sizeof(req[i]));
		CHECK(echo_start(a_ep, &a_calls[i], req[i], sizeof(req[i])) == 0);
	}
	for (int i = 0; i < 20; i++)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	/* Back-pressure built up: what the peer released completed with 0,
	 * nothing else; copied sends with a completion that are still waiting
	 * for ring room have not completed. */
	for (uint64_t i = 0; i < seq; i++) {
		if (as[i].mode == A_INPLACE) {
			if ((int)i < R) {
				CHECK_EQ(as[i].ndone, 1);
				CHECK_EQ(as[i].status, 0);
				released++;
			} else {
				CHECK_EQ(as[i].ndone, 0);
				inflight_inplace++;
			}
		} else if (as[i].mode == A_COPY_DONE) {
			if (as[i].ndone)
				posted++;
			else
				queued++;
		}
	}
	CHECK(queued > 0);
	CHECK(!e.closed);
	CHECK_EQ(wp_ep_inflight(a_ep), A_CALLS);
	printf("  child read %d of %llu messages and stalled; in place: %d released, %d held; "
	       "copied with completion: %d posted, %d queued; %d calls queued\n",
	       R, (unsigned long long)seq, released, inflight_inplace, posted, queued, A_CALLS);

	kill_child(pid);
	t0 = wp_now_ns();
	do {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		all = e.closed;
		for (uint64_t i = 0; i < seq; i++)
			if (as[i].mode != A_COPY)
				all &= as[i].ndone == 1;
		for (int i = 0; i < A_CALLS; i++)
			all &= a_calls[i].done;
		if (wp_now_ns() - t0 > 2000000000ull) {
			fprintf(stderr,
				"4a: not everything completed 2 s after the kill (closed %d)\n",
				e.closed);
			exit(1);
		}
	} while (!all);
	printf("  killed: WP_EP_CLOSED (err %d) and every completion in %.1f ms\n", e.err,
	       (double)(wp_now_ns() - t0) / 1e6);
	CHECK_EQ(e.nclosed, 1);
	CHECK(e.err == 0 || e.err == -ECONNRESET);
	{
		int seen_neg = 0, neg_copy = 0, neg_inplace = 0;

		for (uint64_t i = 0; i < seq; i++) {
			if (as[i].mode == A_INPLACE) {
				CHECK_EQ(as[i].ndone, 1);
				if ((int)i < R) {
					CHECK_EQ(as[i].status, 0);
				} else {
					CHECK(as[i].status < 0);
					neg_inplace++;
				}
			} else if (as[i].mode == A_COPY_DONE) {
				/* Those that reached the ring (a prefix) with 0. */
				CHECK_EQ(as[i].ndone, 1);
				CHECK(as[i].status <= 0);
				if (as[i].status < 0) {
					seen_neg = 1;
					neg_copy++;
				} else {
					CHECK(!seen_neg);
				}
			}
		}
		CHECK_EQ(neg_copy, queued);
		CHECK_EQ(neg_inplace, inflight_inplace);
	}
	for (int i = 0; i < A_CALLS; i++)
		CHECK_EQ(a_calls[i].status, -ECONNRESET);
	CHECK_EQ(wp_ep_inflight(a_ep), 0);
	{
		uint8_t b[64] = { 0 };
		struct eres r;

		CHECK_EQ(wp_ep_send_msg(a_ep, 1, b, sizeof(b), NULL, NULL), -ENOTCONN);
		CHECK_EQ(echo_start(a_ep, &r, b, sizeof(b)), -ENOTCONN);
	}
	for (int i = 0; i < 20; i++)
		CHECK(wp_ctx_progress(c, 1000) >= 0); /* no second completion or event */
	CHECK_EQ(e.nclosed, 1);
	wp_ep_close(a_ep);
	CHECK(wp_ctx_progress(c, 0) >= 0);
	CHECK_EQ(shm_maps(), 0);
	printf("  after wp_ep_close: no wirepath-shm mapping left\n");

	/* The same context works with a new server. */
	{
		static struct srv s;
		struct wp_ep *ep2;
		struct cep e2;

		memset(&s, 0, sizeof(s));
		s.path = "shm";
		s.setup = s_setup;
		srv_start(&s, NULL);
		ep2 = c_connect(c, s.port, &e2);
		for (int i = 0; i < 20; i++)
			echo_check(c, ep2);
		CHECK(!e2.closed);
		wp_ep_close(ep2);
		srv_stop(&s); /* joined: no thread is left for the next fork */
		printf("  same context, new server: 20 checksummed echoes\n");
	}
	wp_ctx_destroy(c);
	CHECK_EQ(shm_maps(), 0);
	CHECK_EQ(fd_count(), fd0);
}

/* ======================================================================== */
/* 4b. The producer dies mid-stream                                          */
/* ======================================================================== */

static uint32_t b_len(uint64_t seq)
{
	return PHDR + (uint32_t)(seq * 53 % 4000);
}

static struct wp_ep *bc_ep;

static void bc_free(void *arg, int status)
{
	wp_ep_buf_free(bc_ep, arg);
}

static void child_streaming_client(int port_fd, int ready_fd)
{
	struct wp_ctx *c;
	struct cep e;
	int port;

	if (pipe_read_int(port_fd, 10000, &port) < 0 || port <= 0)
		_exit(1);
	c = mk_ctx("child-client", 64, 1, 4);
	bc_ep = c_connect(c, port, &e);
	pipe_write_int(ready_fd, 1);
	for (uint64_t seq = 0;; seq++) {
		uint32_t len = b_len(seq);
		uint8_t *b;

		while (!(b = wp_ep_buf_alloc(bc_ep, len)))
			wp_ctx_progress(c, 1000); /* heap full: wait for releases */
		pay_fill(b, seq, len);
		if (wp_ep_send_msg(bc_ep, (uint32_t)seq + 1, b, len, bc_free, b) != 0)
			_exit(3);
		if (seq % 8 == 7)
			wp_ctx_progress(c, 0);
	}
}

static uint64_t b_got, b_bad, b_after_kill;
static int b_killed;
static struct cep b_se; /* the server-side endpoint's events */
static int b_nconn;

static void b_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	if (ev == WP_EP_CONNECTED)
		b_nconn++;
	c_event(&b_se, ep, ev, err);
}

static void b_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	uint64_t seq = b_got++;

	if (m->method != seq + 1 || m->len != b_len(seq) || pay_check(m->data, m->len, seq)) {
		if (!b_bad++)
			fprintf(stderr, "4b: message %llu is not what was sent\n",
				(unsigned long long)seq);
	}
	if (b_killed)
		b_after_kill++;
}

static void case_producer_dies(uint64_t target)
{
	struct wp_ep_cbs cbs = { .event = b_event, .msg = b_msg };
	int port_pipe[2], ready_pipe[2], ready = 0, fd0;
	struct wp_ctx *s;
	struct wp_ep *l;
	uint64_t t0, end, at_kill;
	pid_t pid;

	printf("4b. producer killed mid-stream\n");
	fd0 = fd_count();
	CHECK(pipe(port_pipe) == 0 && pipe(ready_pipe) == 0);
	pid = fork_child();
	if (pid == 0) {
		close(port_pipe[1]);
		close(ready_pipe[0]);
		child_streaming_client(port_pipe[0], ready_pipe[1]);
		_exit(1);
	}
	close(port_pipe[0]);
	close(ready_pipe[1]);
	s = mk_ctx("server", 0, 0, 0);
	CHECK_EQ(wp_listen(s, "shm://@", &cbs, &l), 0);
	pipe_write_int(port_pipe[1], wp_ep_local_port(l));
	close(port_pipe[1]);
	end = wp_now_ns() + 10000000000ull;
	while (b_got < target) {
		CHECK(wp_ctx_progress(s, 1000) >= 0);
		CHECK(!b_se.closed);
		if (wp_now_ns() > end) {
			fprintf(stderr, "4b: only %llu messages in 10 s\n",
				(unsigned long long)b_got);
			exit(1);
		}
	}
	CHECK(pipe_read_int(ready_pipe[0], 1000, &ready) == 0 && ready == 1);
	close(ready_pipe[0]);
	CHECK(shm_maps() > 0); /* split in several VMAs by the read-only peer parts */
	at_kill = b_got;
	kill_child(pid);
	b_killed = 1;
	t0 = wp_now_ns();
	while (!b_se.closed) {
		CHECK(wp_ctx_progress(s, 1000) >= 0);
		if (wp_now_ns() - t0 > 2000000000ull) {
			fprintf(stderr, "4b: no WP_EP_CLOSED 2 s after the kill\n");
			exit(1);
		}
	}
	printf("  killed after %llu messages; WP_EP_CLOSED (err %d) in %.1f ms; %llu more "
	       "delivered after the kill; all %llu intact and in order\n",
	       (unsigned long long)at_kill, b_se.err, (double)(wp_now_ns() - t0) / 1e6,
	       (unsigned long long)b_after_kill, (unsigned long long)b_got);
	CHECK_EQ(b_bad, 0);
	CHECK_EQ(b_nconn, 1);
	CHECK_EQ(b_se.nclosed, 1);
	CHECK(b_se.err == 0 || b_se.err == -ECONNRESET);
	/* The accepted endpoint is the library's: freed at the end of a progress. */
	CHECK(wp_ctx_progress(s, 0) >= 0);
	CHECK_EQ(shm_maps(), 0);
	wp_ep_close(l);
	wp_ctx_destroy(s);
	CHECK_EQ(shm_maps(), 0);
	CHECK_EQ(fd_count(), fd0);
	printf("  no wirepath-shm mapping and no fd left (%d fds, as before)\n", fd0);
}

/* ======================================================================== */
/* 1. Ring wrap-around and back-pressure                                     */
/* ======================================================================== */

#define C1_BIG (64u << 10)
#define C1_SLOTS 8

static uint32_t c1_len(uint64_t seq)
{
	if (seq % 4096 == 4000)
		return C1_BIG;
	if (seq % 10 == 3)
		return 0;
	return 1 + (uint32_t)(((seq * 2654435761u) >> 8) % 512);
}

static int c1_inplace(uint64_t seq, uint32_t len)
{
	if (!len)
		return 0;
	if (len == C1_BIG)
		return seq % 8192 == 4000; /* every other big one */
	return seq % 4 != 1;
}

static uint64_t c1_expect; /* server thread */
static _Atomic uint64_t c1_recv;
static atomic_int c1_bad;

static void c1_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	uint64_t seq = c1_expect++;

	if (m->method != (uint32_t)seq + 1 || m->len != c1_len(seq) ||
	    pay_check(m->data, m->len, seq)) {
		if (atomic_fetch_add(&c1_bad, 1) == 0)
			fprintf(stderr,
				"1: message %llu (method %u, %u bytes) is not what was sent\n",
				(unsigned long long)seq, m->method, m->len);
	}
	atomic_store_explicit(&c1_recv, seq + 1, memory_order_release);
}

static struct wp_ep *c1_ep;
static uint64_t c1_ndone;

static void c1_done(void *arg, int status)
{
	CHECK_EQ(status, 0);
	wp_ep_buf_free(c1_ep, arg);
	c1_ndone++;
}

static void case_ring(uint64_t n)
{
	static struct srv s;
	static uint8_t scratch[C1_BIG];
	struct wp_ep_cbs scbs = { .msg = c1_msg };
	struct wp_meter_snap m0, m1;
	uint64_t ninplace = 0, inplace_bytes = 0, copied_bytes = 0, ncopied = 0;
	uint64_t queued = 0, max_out = 0, heap_full = 0, throttled = 0, t0, t1, end, dcopied;
	struct wp_ctx *c;
	struct cep e;

	printf("1. ring wrap-around and back-pressure: %llu messages, %u-slot rings, 1 MiB arena "
	       "and heap\n",
	       (unsigned long long)n, C1_SLOTS);
	CHECK(n < 0xfff00000u);
	memset(&s, 0, sizeof(s));
	s.path = "shm";
	srv_start(&s, &scbs);
	c = mk_ctx("client", C1_SLOTS, 1, 1);
	c1_ep = c_connect(c, s.port, &e);
	printf("  %s\n", wp_ctx_explain(c));
	wp_meter_snapshot(&m0);
	t0 = wp_now_ns();
	for (uint64_t seq = 0; seq < n; seq++) {
		uint32_t len = c1_len(seq);
		uint64_t out = seq - atomic_load_explicit(&c1_recv, memory_order_acquire);

		/* More undelivered than the ring holds: this send waits inside
		 * the library (the call still returns 0). */
		if (out >= C1_SLOTS)
			queued++;
		if (out > max_out)
			max_out = out;
		/* Keep the library's queue (and its copies) bounded. */
		if (out > 4096) {
			throttled++;
			while (seq - atomic_load_explicit(&c1_recv, memory_order_acquire) > 1024)
				CHECK(wp_ctx_progress(c, 1000) >= 0);
		}
		if (c1_inplace(seq, len)) {
			uint8_t *b;

			while (!(b = wp_ep_buf_alloc(c1_ep, len))) {
				heap_full++; /* back-pressure of the heap itself */
				CHECK(wp_ctx_progress(c, 1000) >= 0);
			}
			pay_fill(b, seq, len);
			CHECK_EQ(wp_ep_send_msg(c1_ep, (uint32_t)seq + 1, b, len, c1_done, b), 0);
			ninplace++;
			inplace_bytes += len;
		} else {
			pay_fill(scratch, seq, len);
			CHECK_EQ(wp_ep_send_msg(c1_ep, (uint32_t)seq + 1, scratch, len, NULL, NULL),
				 0);
			memset(scratch, 0xee, len); /* ours at once: it must have been copied */
			ncopied++;
			copied_bytes += len;
		}
		if (seq % 16 == 15)
			CHECK(wp_ctx_progress(c, 0) >= 0);
	}
	end = wp_now_ns() + 30000000000ull;
	while (atomic_load(&c1_recv) < n || c1_ndone < ninplace) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		if (wp_now_ns() > end) {
			fprintf(stderr, "1: %llu of %llu delivered, %llu of %llu completions\n",
				(unsigned long long)atomic_load(&c1_recv), (unsigned long long)n,
				(unsigned long long)c1_ndone, (unsigned long long)ninplace);
			exit(1);
		}
	}
	t1 = wp_now_ns();
	wp_meter_snapshot(&m1);
	CHECK(!e.closed);
	CHECK_EQ(atomic_load(&c1_bad), 0);
	CHECK_EQ(atomic_load(&c1_recv), n);
	CHECK_EQ(c1_ndone, ninplace);
	/* The server thread sends nothing and copies nothing on receive. */
	CHECK_EQ(m1.msgs_tx - m0.msgs_tx, n);
	dcopied = m1.bytes_copied - m0.bytes_copied;
	printf("  %llu messages in %.2f s (%.2f M msg/s, %.0f MB/s of payload); %llu in place "
	       "(%.1f MB), %llu copied (%.1f MB)\n",
	       (unsigned long long)n, (double)(t1 - t0) / 1e9, (double)n * 1e3 / (double)(t1 - t0),
	       (double)(inplace_bytes + copied_bytes) * 1e3 / (double)(t1 - t0),
	       (unsigned long long)ninplace, (double)inplace_bytes / 1e6,
	       (unsigned long long)ncopied, (double)copied_bytes / 1e6);
	printf("  back-pressure: %llu sends made with the ring full (queued inside the library), "
	       "at most %llu undelivered, %llu heap-full waits, %llu test throttles\n",
	       (unsigned long long)queued, (unsigned long long)max_out,
	       (unsigned long long)heap_full, (unsigned long long)throttled);
	printf("  meter: %.1f MB copied for %.1f MB of copied payloads (a copied send that had "
	       "to queue is copied twice), none of the %.1f MB in place\n",
	       (double)dcopied / 1e6, (double)copied_bytes / 1e6, (double)inplace_bytes / 1e6);
	/* Copied payloads are counted once (straight into the arena) or twice
	 * (kept while queued, then into the arena); in-place ones never. The
	 * test is only meaningful if in-place bytes would break the bound. */
	CHECK(inplace_bytes > copied_bytes + (1u << 20));
	CHECK(dcopied >= copied_bytes);
	CHECK(dcopied <= 2 * copied_bytes + (1u << 20));
	CHECK(queued > 0);
	wp_ep_close(c1_ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
}

/* ======================================================================== */
/* 2. Many calls in flight, and a long stream                                */
/* ======================================================================== */

#define NCALLS 256

struct c2call {
	int done, ndone, status;
	uint32_t got, want_len;
	uint64_t sum, want_sum;
	int nreq_done, req_status;
	uint8_t *buf; /* in-place request */
};

static struct c2call c2[NCALLS];
static struct wp_ep *c2_ep;

static void c2_data(void *arg, struct wp_msg *m)
{
	struct c2call *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->got += m->len;
}

static void c2_done(void *arg, int status)
{
	struct c2call *r = arg;

	r->ndone++;
	CHECK(r->ndone == 1);
	r->done = 1;
	r->status = status;
}

/* Shares arg with on_done (one arg per call). */
static void c2_req_done(void *arg, int status)
{
	struct c2call *r = arg;

	r->nreq_done++;
	CHECK(r->nreq_done == 1);
	r->req_status = status;
	memset(r->buf, 0xdd, r->want_len);
	wp_ep_buf_free(c2_ep, r->buf);
	r->buf = NULL;
}

struct c2stream {
	int done, status, bad;
	uint32_t chunks;
};

static void c2s_data(void *arg, struct wp_msg *m)
{
	struct c2stream *r = arg;
	uint8_t want[CHUNK];

	chunk_fill(want, r->chunks);
	if (m->len != CHUNK || memcmp(m->data, want, CHUNK))
		r->bad++;
	r->chunks++;
}

static void c2s_done(void *arg, int status)
{
	struct c2stream *r = arg;

	CHECK(!r->done);
	r->done = 1;
	r->status = status;
}

static void case_rpc(void)
{
	static struct srv s;
	static uint8_t scratch[5000];
	struct wp_ctx *c;
	struct cep e;
	uint64_t t0;

	printf("2. %d concurrent calls, then a 1000-chunk stream, over 8-slot rings\n", NCALLS);
	memset(&s, 0, sizeof(s));
	s.path = "shm";
	s.setup = s_setup;
	srv_start(&s, NULL);
	c = mk_ctx("client", 8, 1, 1);
	c2_ep = c_connect(c, s.port, &e);
	for (int round = 0; round < 4; round++) {
		int all = 0;

		t0 = wp_now_ns();
		for (int i = 0; i < NCALLS; i++) {
			struct c2call *r = &c2[i];
			uint32_t len = 4 + (uint32_t)((i * 97 + round * 1009) % 4500);
			struct wp_call_params p = { .method = M_ECHO,
						    .req_len = len,
						    .on_data = c2_data,
						    .on_done = c2_done,
						    .arg = r };
			uint8_t *b = scratch;

			memset(r, 0, sizeof(*r));
			r->sum = FNV_INIT;
			r->want_len = len;
			if ((i + round) % 2) {
				r->buf = b = wp_ep_buf_alloc(c2_ep, len);
				CHECK(b);
				p.req_done = c2_req_done;
			}
			for (uint32_t j = 0; j < len; j++)
				b[j] = (uint8_t)(i * 7 + j * 13 + round);
			memcpy(b, &i, sizeof(i));
			r->want_sum = fnv1a(b, len, FNV_INIT);
			p.req = b;
			CHECK_EQ(wp_rpc_call(c2_ep, &p, NULL), 0);
			if (b == scratch)
				memset(scratch, 0xee, len); /* copied at the call */
		}
		CHECK_EQ(wp_ep_inflight(c2_ep), NCALLS);
		while (!all) {
			CHECK(wp_ctx_progress(c, 1000) >= 0);
			CHECK(wp_now_ns() - t0 < 10000000000ull);
			all = 1;
			for (int i = 0; i < NCALLS; i++)
				all &= c2[i].done && (!((i + round) % 2) || c2[i].nreq_done);
		}
		for (int i = 0; i < NCALLS; i++) {
			CHECK_EQ(c2[i].status, 0);
			CHECK_EQ(c2[i].got, c2[i].want_len);
			CHECK(c2[i].sum == c2[i].want_sum);
			if ((i + round) % 2)
				CHECK_EQ(c2[i].req_status, 0);
		}
		CHECK_EQ(wp_ep_inflight(c2_ep), 0);
		if (round == 0)
			printf("  %d calls (half the requests in place) echoed intact in %.1f ms\n",
			       NCALLS, (double)(wp_now_ns() - t0) / 1e6);
	}
	{
		static struct c2stream st;
		uint32_t n = 1000;
		struct wp_call_params p = { .method = M_STREAM,
					    .req = &n,
					    .req_len = 4,
					    .on_data = c2s_data,
					    .on_done = c2s_done,
					    .arg = &st };

		t0 = wp_now_ns();
		CHECK_EQ(wp_rpc_call(c2_ep, &p, NULL), 0);
		drive_until(c, &st.done, 10000);
		CHECK_EQ(st.status, 0);
		CHECK_EQ(st.chunks, 1000);
		CHECK_EQ(st.bad, 0);
		printf("  stream: 1000 chunks in order and intact in %.1f ms\n",
		       (double)(wp_now_ns() - t0) / 1e6);
	}
	CHECK(!e.closed);
	wp_ep_close(c2_ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
}

/* ======================================================================== */
/* 3. A buffer is reused only after its completion                           */
/* ======================================================================== */

#define K3 16

struct c3buf {
	uint8_t *p;
	uint32_t len;
};

static struct c3buf c3b[K3];
static struct wp_ep *c3_ep;
static uint64_t c3_sent, c3_target, c3_ndone;

static uint64_t c3_expect; /* server thread */
static _Atomic uint64_t c3_recv;
static atomic_int c3_bad;

static void c3_done(void *arg, int status);

static void c3_send(struct c3buf *b)
{
	pay_fill(b->p, c3_sent++, b->len);
	CHECK_EQ(wp_ep_send_msg(c3_ep, M_SPIN, b->p, b->len, c3_done, b), 0);
}

static void c3_done(void *arg, int status)
{
	struct c3buf *b = arg;

	CHECK_EQ(status, 0);
	c3_ndone++;
	memset(b->p, 0xdd, b->len); /* the buffer is ours again: poison it */
	if (c3_sent < c3_target)
		c3_send(b);
}

static int slow_done;

static void slow_msg_done(void *arg, int status)
{
	CHECK_EQ(status, 0);
	slow_done++;
}

static void c3_srv_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	if (m->method == M_SLOWMSG) {
		spin_ns(5000000); /* holds the payload for 5 ms */
		return;
	}
	/* Hold the payload ~20 us before looking: a sender that got its buffer
	 * back early has poisoned or refilled it by now. */
	spin_ns(20000);
	if (m->method != M_SPIN || pay_check(m->data, m->len, c3_expect)) {
		if (atomic_fetch_add(&c3_bad, 1) == 0)
			fprintf(stderr, "3: message %llu changed under the receiver\n",
				(unsigned long long)c3_expect);
	}
	c3_expect++;
	atomic_store(&c3_recv, c3_expect);
}

static void case_reuse(uint64_t n)
{
	static struct srv s;
	struct wp_ep_cbs scbs = { .msg = c3_srv_msg };
	struct wp_ctx *c;
	struct cep e;
	uint64_t t0, end;

	printf("3. %d heap buffers reused only after their completion: %llu messages, the "
	       "receiver spins 20 us on each\n",
	       K3, (unsigned long long)n);
	memset(&s, 0, sizeof(s));
	s.path = "shm";
	srv_start(&s, &scbs);
	c = mk_ctx("client", 64, 1, 1);
	c3_ep = c_connect(c, s.port, &e);
	c3_target = n;
	for (int i = 0; i < K3; i++) {
		c3b[i].len = 256 + (uint32_t)i * 509;
		c3b[i].p = wp_ep_buf_alloc(c3_ep, c3b[i].len);
		CHECK(c3b[i].p);
	}
	t0 = wp_now_ns();
	for (int i = 0; i < K3; i++)
		c3_send(&c3b[i]);
	end = t0 + 30000000000ull;
	while (c3_ndone < n) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(wp_now_ns() < end);
	}
	CHECK_EQ(c3_sent, n);
	CHECK_EQ(atomic_load(&c3_recv), n);
	CHECK_EQ(atomic_load(&c3_bad), 0);
	printf("  %llu messages, none changed before its completion, in %.2f s\n",
	       (unsigned long long)n, (double)(wp_now_ns() - t0) / 1e9);

	/* Wake-up on release: the peer holds an in-place payload for 5 ms (far
	 * beyond our spin); the completion is our only event. */
	for (int i = 0; i < 5; i++) {
		uint8_t *b = c3b[0].p;
		uint64_t dt;

		CHECK_EQ(wp_ep_send_msg(c3_ep, M_SLOWMSG, b, 100, slow_msg_done, NULL), 0);
		t0 = wp_now_ns();
		while (slow_done == i) {
			CHECK(wp_ctx_progress(c, 2000000) >= 0);
			CHECK(wp_now_ns() - t0 < 10000000000ull);
		}
		dt = wp_now_ns() - t0;
		if (dt > 500000000ull) {
			fprintf(stderr,
				"3: an in-place completion 5 ms away took %.0f ms: the sender "
				"slept through the peer's release until its progress timeout\n",
				(double)dt / 1e6);
			exit(1);
		}
		if (i == 0)
			printf("  a sender waiting only for an in-place completion woke %.1f ms "
			       "after the send (peer held it 5 ms)\n",
			       (double)dt / 1e6);
	}
	for (int i = 0; i < K3; i++)
		wp_ep_buf_free(c3_ep, c3b[i].p);
	CHECK(!e.closed);
	wp_ep_close(c3_ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
}

/* ======================================================================== */
/* 5. A hostile peer                                                          */
/* ======================================================================== */

/*
 * The setup message, the control block, the descriptor and the geometry come
 * from src/transport/shm/layout.h, the header the library is built with; the
 * regions below are laid out with shm_geom_layout, which does not judge the
 * bounds (the server's check is what is being tested).
 */

/* The server: echoes, and checks M_RAW messages the raw peer sends. */
static atomic_int h_raw_ok, h_raw_bad, h_eproto_closed;

static void h_srv_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	if (ev == WP_EP_CLOSED && err == -EPROTO)
		atomic_fetch_add(&h_eproto_closed, 1);
}

static void h_srv_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	if (m->method == M_RAW && !pay_check(m->data, m->len, 777))
		atomic_fetch_add(&h_raw_ok, 1);
	else
		atomic_fetch_add(&h_raw_bad, 1);
}

/* A normal client that keeps checksummed echoes going throughout. */
struct normal {
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct cep e;
	struct eres r;
	uint8_t buf[2048];
	uint32_t len;
	uint64_t echoes;
};

static struct normal nc;

static void normal_next(void)
{
	nc.len = 1 + (uint32_t)(nc.echoes * 331 % sizeof(nc.buf));
	for (uint32_t i = 0; i < nc.len; i++)
		nc.buf[i] = (uint8_t)(nc.echoes + i * 3);
	CHECK_EQ(echo_start(nc.ep, &nc.r, nc.buf, nc.len), 0);
}

static void normal_pump(void)
{
	CHECK(wp_ctx_progress(nc.c, 200) >= 0);
	CHECK(!nc.e.closed);
	if (nc.r.done) {
		CHECK_EQ(nc.r.status, 0);
		CHECK_EQ(nc.r.got, nc.len);
		CHECK(nc.r.sum == fnv1a(nc.buf, nc.len, FNV_INIT));
		nc.echoes++;
		normal_next();
	}
}

static int raw_sock(int port)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "%05x", port);
	CHECK(connect(fd, (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 6) == 0);
	return fd;
}

static void raw_sendmsg(int sock, const void *m, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { (void *)m, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	CHECK(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Wait (driving the normal client) for the server's answer on the setup
 * socket: 1 with *status for an ACK, 0 for the hang-up. */
static int raw_answer(int sock, int32_t *status)
{
	uint64_t end = wp_now_ns() + 2000000000ull;

	for (;;) {
		struct pollfd pf = { .fd = sock, .events = POLLIN };
		struct shm_wire_msg m;
		ssize_t n;

		normal_pump();
		if (poll(&pf, 1, 0) == 1) {
			n = recv(sock, &m, sizeof(m), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return 0;
			CHECK_EQ(n, sizeof(m));
			CHECK_EQ(m.magic, SHM_MAGIC);
			CHECK_EQ(m.type, SHM_MSG_ACK);
			*status = m.status;
			return 1;
		}
		if (wp_now_ns() > end) {
			fprintf(stderr,
				"5: the server did not answer on the setup socket in 2 s\n");
			exit(1);
		}
	}
}

static int memfd_region(uint64_t size, int seal)
{
	int fd = memfd_create("wirepath-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	if (seal)
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	return fd;
}

static struct shm_wire_msg hello_for(const struct shm_geom *g)
{
	return (struct shm_wire_msg){ .magic = SHM_MAGIC,
				      .version = SHM_VERSION,
				      .type = SHM_MSG_HELLO,
				      .slots = g->slots,
				      .arena = g->arena,
				      .heap = g->heap,
				      .align = g->align,
				      .size = g->size,
				      .pid = getpid() };
}

static uint64_t bad_total(const struct wp_meter_snap *s)
{
	uint64_t t = 0;

	for (int i = 0; i < WP_BAD__COUNT; i++)
		t += s->bad_frames[i];
	return t;
}

/* One hello that must be refused: ACK with an error, then the hang-up. The
 * memfd and doorbells are ours to close afterwards. */
enum {
	HB_NOFDS,
	HB_UNSEALED,
	HB_SLOTS,
	HB_ARENA,
	HB_SMALL,
	HB_NOT_HELLO,
	HB_VERSION,
	HB_NOMAGIC,
	HB_PIPE_BELL,
	HB_FILE,
	HB__COUNT
};
static const char *const hb_name[HB__COUNT] = {
	"hello without descriptors",
	"unsealed memfd",
	"slots not a power of two",
	"arena of 2 GiB",
	"region smaller than geometry",
	"not a hello",
	"unknown version",
	"region without magic",
	"doorbells that are pipes",
	"a regular file as region",
};

static void hostile_hello(int port, int kind)
{
	struct shm_geom g;
	struct shm_wire_msg m;
	struct wp_meter_snap s0, s1;
	int fds[3] = { -1, -1, -1 }, nfds = 3, sock, got, pp[2] = { -1, -1 };
	int32_t status = 0;
	uint8_t *base;

	shm_geom_layout(&g, 8, 64 << 10, 64 << 10, 4096);
	m = hello_for(&g);
	fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(fds[1] >= 0 && fds[2] >= 0);
	switch (kind) {
	case HB_NOFDS:
		nfds = 0;
		break;
	case HB_UNSEALED:
		fds[0] = memfd_region(g.size, 0);
		break;
	case HB_SLOTS:
		shm_geom_layout(&g, 12, 64 << 10, 64 << 10, 4096);
		m = hello_for(&g);
		fds[0] = memfd_region(g.size, 1);
		break;
	case HB_ARENA:
		m.arena = 2ull << 30;
		fds[0] = memfd_region(g.size, 1);
		break;
	case HB_SMALL:
		fds[0] = memfd_region(g.size - 4096, 1);
		break;
	case HB_NOT_HELLO:
		m.magic = 0x11223344;
		fds[0] = memfd_region(g.size, 1);
		break;
	case HB_VERSION:
		m.version = 9;
		fds[0] = memfd_region(g.size, 1);
		break;
	case HB_NOMAGIC:
		fds[0] = memfd_region(g.size, 1); /* all zero: no header magic */
		break;
	case HB_PIPE_BELL:
		/* The server would write its wake-ups into a pipe nobody reads:
		 * a blocking write there hangs the server's thread. */
		fds[0] = memfd_region(g.size, 1);
		base = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
		CHECK(base != MAP_FAILED);
		((struct shm_hdr *)base)->magic = SHM_MAGIC;
		((struct shm_hdr *)base)->version = SHM_VERSION;
		((struct shm_hdr *)base)->size = g.size;
		munmap(base, g.size);
		CHECK(pipe(pp) == 0);
		close(fds[2]);
		fds[2] = pp[1]; /* the server's "peer doorbell" */
		break;
	case HB_FILE: {
		char tmpl[] = "/tmp/wp-shm-test-XXXXXX";

		fds[0] = mkstemp(tmpl);
		CHECK(fds[0] >= 0);
		unlink(tmpl);
		CHECK(ftruncate(fds[0], (off_t)g.size) == 0);
		break;
	}
	}
	wp_meter_snapshot(&s0);
	sock = raw_sock(port);
	raw_sendmsg(sock, &m, sizeof(m), fds, nfds);
	got = raw_answer(sock, &status);
	if (got == 1) {
		CHECK(status < 0);
		got = raw_answer(sock, &status);
	}
	CHECK_EQ(got, 0); /* and the hang-up */
	for (int i = 0; i < 10; i++)
		normal_pump();
	wp_meter_snapshot(&s1);
	/* Refused before anything was mapped: counted as not a wirepath hello
	 * (a region without magic is refused after mapping, uncounted). */
	if (kind != HB_NOMAGIC)
		CHECK_EQ(s1.bad_frames[WP_BAD_MAGIC] - s0.bad_frames[WP_BAD_MAGIC], 1);
	CHECK(bad_total(&s1) - bad_total(&s0) <= 1);
	close(sock);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (pp[0] >= 0)
		close(pp[0]);
	printf("  refused: %s\n", hb_name[kind]);
}

struct raw {
	int sock, efd_srv, efd_me;
	uint8_t *base;
	struct shm_geom g;
	struct shm_hdr *hdr;
	struct shm_desc *ring; /* ours: direction 0 */
	uint64_t prod;
};

static void raw_open_bells(struct raw *r, int port, int efd_flags)
{
	int fds[3];
	int32_t status = -1;
	struct shm_wire_msg m;
	int memfd;

	memset(r, 0, sizeof(*r));
	shm_geom_layout(&r->g, 8, 64 << 10, 64 << 10, 4096);
	memfd = memfd_region(r->g.size, 1);
	r->base = mmap(NULL, r->g.size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	CHECK(r->base != MAP_FAILED);
	r->hdr = (struct shm_hdr *)r->base;
	r->hdr->magic = SHM_MAGIC;
	r->hdr->version = SHM_VERSION;
	r->hdr->size = r->g.size;
	r->ring = (struct shm_desc *)(r->base + r->g.ring_off[0]);
	r->efd_srv = eventfd(0, EFD_CLOEXEC | efd_flags);
	r->efd_me = eventfd(0, EFD_CLOEXEC | efd_flags);
	CHECK(r->efd_srv >= 0 && r->efd_me >= 0);
	fds[0] = memfd;
	fds[1] = r->efd_srv; /* the acceptor waits on it */
	fds[2] = r->efd_me;
	m = hello_for(&r->g);
	r->sock = raw_sock(port);
	raw_sendmsg(r->sock, &m, sizeof(m), fds, 3);
	close(memfd);
	CHECK_EQ(raw_answer(r->sock, &status), 1);
	CHECK_EQ(status, 0);
}

static void raw_open(struct raw *r, int port)
{
	raw_open_bells(r, port, EFD_NONBLOCK);
}

static void raw_close(struct raw *r)
{
	close(r->sock);
	close(r->efd_srv);
	close(r->efd_me);
	munmap(r->base, r->g.size);
}

static void raw_bell(struct raw *r)
{
	uint64_t one = 1;

	CHECK(write(r->efd_srv, &one, sizeof(one)) == (ssize_t)sizeof(one));
}

/* Write one descriptor into our ring and publish it. */
static void raw_post(struct raw *r, const struct wp_frame_hdr *h, uint64_t off, int corrupt)
{
	struct shm_desc *d = &r->ring[r->prod & (r->g.slots - 1)];

	wp_frame_encode(h, d->hdr);
	if (corrupt == 1)
		d->hdr[0] ^= 0xff; /* magic */
	else if (corrupt == 2)
		d->hdr[4] = 9; /* version */
	d->off = off;
	atomic_store_explicit(&r->hdr->dir[0].prod, ++r->prod, memory_order_release);
	raw_bell(r);
}

/* A valid one-way message in our arena; waits until the server took it. */
static void raw_valid_msg(struct raw *r)
{
	struct wp_frame_hdr h = { .type = WP_FT_MSG, .method = M_RAW, .len = 200 };
	uint64_t off = r->g.arena_off[0] + (r->prod % 8) * 256;
	int before = atomic_load(&h_raw_ok);
	uint64_t end = wp_now_ns() + 2000000000ull;

	pay_fill(r->base + off, 777, 200);
	raw_post(r, &h, off, 0);
	while (atomic_load(&h_raw_ok) == before) {
		normal_pump();
		CHECK(wp_now_ns() < end);
	}
	CHECK_EQ(atomic_load(&h_raw_bad), 0);
}

enum {
	HD_MAGIC,
	HD_VERSION,
	HD_TYPE,
	HD_OFF_PEER_ARENA,
	HD_OFF_PAST_HEAP,
	HD_OFF_REGION,
	HD_PROD_JUMP,
	HD_CONS_JUMP,
	HD_SOCK_BYTES,
	HD__COUNT
};
static const struct {
	const char *name;
	int reason;
} hd[HD__COUNT] = {
	{ "descriptor header with a bad magic", WP_BAD_MAGIC },
	{ "descriptor header with a bad version", WP_BAD_VERSION },
	{ "descriptor of an unknown frame type", WP_BAD_TYPE },
	{ "payload in the consumer's own arena", WP_BAD_TOO_BIG },
	{ "payload running past the producer's heap", WP_BAD_TOO_BIG },
	{ "payload offset beyond the region", WP_BAD_TOO_BIG },
	{ "prod index beyond the ring", WP_BAD_UNEXPECTED },
	{ "release of descriptors never published", WP_BAD_UNEXPECTED },
	{ "bytes on the setup socket", WP_BAD_UNEXPECTED },
};

static void hostile_data(int port, int kind)
{
	struct wp_meter_snap s0, s1;
	struct wp_frame_hdr h = { .type = WP_FT_MSG, .method = M_RAW, .len = 200 };
	struct raw r;
	int32_t status;
	int eproto0 = atomic_load(&h_eproto_closed);
	uint64_t end;

	raw_open(&r, port);
	raw_valid_msg(&r); /* the connection works */
	raw_valid_msg(&r);
	wp_meter_snapshot(&s0);
	switch (kind) {
	case HD_MAGIC:
		raw_post(&r, &h, r.g.arena_off[0], 1);
		break;
	case HD_VERSION:
		raw_post(&r, &h, r.g.arena_off[0], 2);
		break;
	case HD_TYPE:
		h.type = 0x55;
		raw_post(&r, &h, r.g.arena_off[0], 0);
		break;
	case HD_OFF_PEER_ARENA:
		raw_post(&r, &h, r.g.arena_off[1], 0);
		break;
	case HD_OFF_PAST_HEAP:
		raw_post(&r, &h, r.g.heap_off[0] + r.g.heap - 64, 0);
		break;
	case HD_OFF_REGION:
		raw_post(&r, &h, r.g.size + 4096, 0);
		break;
	case HD_PROD_JUMP:
		atomic_store(&r.hdr->dir[0].prod, r.prod + r.g.slots + 1);
		raw_bell(&r);
		break;
	case HD_CONS_JUMP: {
		/* A request the server answers; then release more than it sent. */
		struct wp_frame_hdr q = { .type = WP_FT_REQ,
					  .method = M_ECHO,
					  .req_id = 1,
					  .len = 200 };
		uint64_t off = r.g.arena_off[0] + 4096;
		const struct shm_desc *rd = (const struct shm_desc *)(r.base + r.g.ring_off[1]);
		struct wp_frame_hdr a;
		int reason = 0;

		pay_fill(r.base + off, 777, 200);
		raw_post(&r, &q, off, 0);
		end = wp_now_ns() + 2000000000ull;
		while (atomic_load_explicit(&r.hdr->dir[1].prod, memory_order_acquire) < 1) {
			normal_pump();
			CHECK(wp_now_ns() < end);
		}
		/* Its answer is a well-formed frame in its own arena. */
		CHECK_EQ(wp_frame_decode(rd[0].hdr, WP_FRAME_HDR, 1u << 20, &a, &reason),
			 WP_FRAME_HDR);
		CHECK_EQ(a.type, WP_FT_DATA);
		CHECK_EQ(a.req_id, 1);
		CHECK_EQ(a.len, 200);
		CHECK(rd[0].off >= r.g.arena_off[1] &&
		      rd[0].off + 200 <= r.g.arena_off[1] + r.g.arena);
		CHECK_EQ(pay_check(r.base + rd[0].off, 200, 777), 0);
		wp_meter_snapshot(&s0);
		atomic_store(&r.hdr->dir[1].cons, 5);
		break;
	}
	case HD_SOCK_BYTES:
		CHECK(send(r.sock, "hello?", 6, MSG_NOSIGNAL) == 6);
		break;
	}
	CHECK_EQ(raw_answer(r.sock, &status), 0); /* only this connection closes */
	end = wp_now_ns() + 2000000000ull;
	while (atomic_load(&h_eproto_closed) == eproto0) {
		normal_pump();
		CHECK(wp_now_ns() < end);
	}
	/* Ring the closed connection's doorbell (we still hold the eventfd): the
	 * server must not hear it any more (its endpoint may be freed by now). */
	for (int i = 0; i < 3; i++) {
		uint64_t t = wp_now_ns();

		raw_bell(&r);
		while (wp_now_ns() - t < 10000000) /* several of its epoll rounds */
			normal_pump();
	}
	wp_meter_snapshot(&s1);
	CHECK_EQ(s1.bad_frames[hd[kind].reason] - s0.bad_frames[hd[kind].reason], 1);
	CHECK_EQ(bad_total(&s1) - bad_total(&s0), 1);
	CHECK_EQ(atomic_load(&h_eproto_closed), eproto0 + 1);
	CHECK_EQ(atomic_load(&h_raw_bad), 0);
	raw_close(&r);
	printf("  closed, bad_frames[%s] +1: %s\n", wp_bad_reason_name(hd[kind].reason),
	       hd[kind].name);
}

/*
 * Blocking doorbells: the peer hands over eventfds without EFD_NONBLOCK,
 * keeps the one the server rings full, and says it sleeps and waits for
 * room, so the server rings it after every batch. A blocking write there
 * would hang the server's thread (every connection with it); the server must
 * have made both non-blocking at the handshake and go on serving.
 */
static void hostile_blocking_bells(int port)
{
	uint64_t full = 0xfffffffffffffffeull, e0;
	struct wp_meter_snap s0, s1;
	int fl, eproto0 = atomic_load(&h_eproto_closed);
	struct raw r;

	wp_meter_snapshot(&s0);
	raw_open_bells(&r, port, 0);
	fl = fcntl(r.efd_me, F_GETFL);
	CHECK(fl >= 0 && (fl & O_NONBLOCK));
	fl = fcntl(r.efd_srv, F_GETFL);
	CHECK(fl >= 0 && (fl & O_NONBLOCK));
	CHECK(write(r.efd_me, &full, sizeof(full)) == (ssize_t)sizeof(full));
	atomic_store(&r.hdr->side[0].want_space, 1);
	atomic_store(&r.hdr->side[0].sleeping, 1);
	for (int i = 0; i < 4; i++)
		raw_valid_msg(&r); /* each one makes the server ring the full bell */
	e0 = nc.echoes;
	while (nc.echoes < e0 + 3)
		normal_pump(); /* the server thread is not stuck */
	raw_close(&r);
	for (int i = 0; i < 10; i++)
		normal_pump();
	wp_meter_snapshot(&s1);
	CHECK_EQ(bad_total(&s1) - bad_total(&s0), 0);
	CHECK_EQ(atomic_load(&h_eproto_closed), eproto0);
	printf("  accepted, made non-blocking: doorbells without EFD_NONBLOCK, one kept full\n");
}

static void case_hostile(void)
{
	static struct srv s;
	struct wp_ep_cbs scbs = { .event = h_srv_event, .msg = h_srv_msg };
	uint64_t e0;

	printf("5. hostile peer (raw unix socket + hand-made region)\n");
	memset(&s, 0, sizeof(s));
	s.path = "shm";
	s.setup = s_setup;
	srv_start(&s, &scbs);
	nc.c = mk_ctx("normal", 0, 0, 0);
	nc.ep = c_connect(nc.c, s.port, &nc.e);
	normal_next();
	for (int k = 0; k < HB__COUNT; k++) {
		e0 = nc.echoes;
		hostile_hello(s.port, k);
		while (nc.echoes < e0 + 3)
			normal_pump();
	}
	for (int k = 0; k < HD__COUNT; k++) {
		e0 = nc.echoes;
		hostile_data(s.port, k);
		while (nc.echoes < e0 + 3)
			normal_pump();
	}
	hostile_blocking_bells(s.port);
	/* The server still takes new clients. */
	{
		struct wp_ctx *c = mk_ctx("client", 0, 0, 0);
		struct wp_ep *ep;
		struct cep e;

		ep = c_connect(c, s.port, &e);
		echo_check(c, ep);
		wp_ep_close(ep);
		wp_ctx_destroy(c);
	}
	drive_until(nc.c, &nc.r.done, 3000);
	normal_pump();
	CHECK_EQ(nc.e.nclosed, 0);
	printf("  the normal client ran %llu checksummed echoes meanwhile, undisturbed; a new "
	       "client is served\n",
	       (unsigned long long)nc.echoes);
	wp_ep_close(nc.ep);
	wp_ctx_destroy(nc.c);
	srv_stop(&s);
}

/* WP_SHM_SKIP="4 5" leaves those cases out (for debugging). */
static int run_case(char id)
{
	const char *skip = getenv("WP_SHM_SKIP");

	if (skip && strchr(skip, id)) {
		printf("%c. skipped (WP_SHM_SKIP)\n", id);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	const char *env = getenv("WP_SHM_N");

	setvbuf(stdout, NULL, _IOLBF, 0);
	uint64_t n = env ? strtoull(env, NULL, 10) : 1000000;
	uint64_t n3 = n / 50 < 1000 ? 1000 : n / 50;

	test_watchdog(env ? 170 : 90);
	signal(SIGPIPE, SIG_IGN);
	/* shm only (run.sh passes --path shm; any other --path is ignored). */
	(void)argc;
	(void)argv;
	printf("path: shm\n");
	/* Forking cases first: this process has no thread yet (each case joins
	 * the server threads it starts). */
	if (run_case('4')) {
		case_consumer_dies();
		case_producer_dies(n / 50 < 2000 ? 2000 : n / 50);
	}
	if (run_case('5'))
		case_hostile();
	if (run_case('1'))
		case_ring(n);
	if (run_case('2'))
		case_rpc();
	if (run_case('3'))
		case_reuse(n3);
	printf("ok\n");
	return 0;
}
