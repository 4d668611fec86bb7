// SPDX-License-Identifier: MIT
/*
 * The rdma path with a forked peer (tests/vm/rdma.sh runs it on soft-RoCE):
 * RPC echoes from 1 B to 1 MiB (credits, many sends per frame), bulk writes
 * and reads by RDMA between exported regions checked against the peer's own
 * checksum, the explain string's counters, then the peer killed (SIGKILL)
 * with 192 MiB of writes and 16 calls in flight: every one completes exactly
 * once, those cut off with an error, the endpoint closes, nothing hangs.
 * A transfer queued for send-queue slots times out at its deadline; a
 * region in flight is not deregistered (EBUSY); the peer deregistering a
 * region we write into withdraws it first (EBUSY until we acknowledge), so
 * our connection survives and later writes are refused by frames.
 *
 * With --rtt N it only measures: N echo round trips of 2 bytes, one at a
 * time (WP_RDMA_BUSY=1: both sides busy-poll), for docs/performance.md next
 * to perftest's ib_send_lat (tests/vm/rdma.sh BUILD bench).
 *
 * wp-test-paths: rdma
 */
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "harness.h"
#include "procs.h"

#define RLEN (16u << 20)
#define M_RKEY 1u
#define M_SUM 2u
#define M_ECHO 3u
#define M_RKEY2 4u    /* a second region of the peer's, exported */
#define M_DEREG 5u    /* the peer deregisters it: the first call's return */
#define M_DEREG_ST 6u /* ... and whether a later call has succeeded */

static struct wp_mr *peer_mr, *peer_mr2;
static int dereg_pending, dereg_done;
static int many_mode; /* --many: no regions, pinned memory under the default limit */
static int saw_memlock;

/* The client's log in --many: did the failed connection name the limit? */
static void many_log(void *arg, enum wp_log_level lvl, const char *msg)
{
	if (strstr(msg, "RLIMIT_MEMLOCK"))
		saw_memlock = 1;
	h_log(arg, lvl, msg);
}

/* Pinned pages count against RLIMIT_MEMLOCK only without CAP_IPC_LOCK
 * (root in the VM has it): drop it, and set the limit to the kernel's
 * default, 8 MiB, as an unprivileged user gets it. */
static void default_memlock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	struct rlimit rl = { 8u << 20, 8u << 20 };

	CHECK(syscall(SYS_capget, &h, d) == 0);
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
	CHECK(syscall(SYS_capset, &h, d) == 0);
	CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void h_rkey(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_rkey rk;

	CHECK(wp_mr_export(peer_mr, &rk) == 0);
	CHECK(wp_call_reply(call, &rk, sizeof(rk), NULL, NULL) == 0);
}

/* The checksum of [off, off + len) of the peer's region, computed there. */
static void h_sum(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint64_t a[2], h;

	CHECK(req->len == sizeof(a));
	memcpy(a, req->data, sizeof(a));
	CHECK(a[0] <= RLEN && a[1] <= RLEN - a[0]);
	h = fnv((uint8_t *)wp_mr_addr(peer_mr) + a[0], a[1]);
	CHECK(wp_call_reply(call, &h, sizeof(h), NULL, NULL) == 0);
}

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	CHECK(wp_call_reply(call, req->data, req->len, NULL, NULL) == 0);
}

static void h_rkey2(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_rkey rk;

	CHECK(wp_mr_export(peer_mr2, &rk) == 0);
	CHECK(wp_call_reply(call, &rk, sizeof(rk), NULL, NULL) == 0);
}

/* Deregister the advertised region: refused (-EBUSY) until the client has
 * acknowledged the withdrawal; the peer's loop calls again until it works. */
static void h_dereg(void *arg, struct wp_call *call, struct wp_msg *req)
{
	int32_t ret = wp_mr_deregister(peer_mr2);

	dereg_pending = ret == -EBUSY;
	dereg_done = ret == 0;
	CHECK(wp_call_reply(call, &ret, sizeof(ret), NULL, NULL) == 0);
}

static void h_dereg_st(void *arg, struct wp_call *call, struct wp_msg *req)
{
	int32_t done = dereg_done;

	CHECK(wp_call_reply(call, &done, sizeof(done), NULL, NULL) == 0);
}

static void peer(const char *path, int wfd)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *l;
	char uri[64];
	int ret;

	h_opts(&o, "peer");
	o.busy_poll = getenv("WP_RDMA_BUSY") != NULL;
	CHECK(wp_ctx_create(&o, &ctx) == 0);
	if (!many_mode) {
		CHECK(wp_mr_alloc(ctx, RLEN, &peer_mr) == 0);
		CHECK(wp_mr_alloc(ctx, 1u << 20, &peer_mr2) == 0);
	}
	CHECK(wp_rpc_register(ctx, M_RKEY2, h_rkey2, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_DEREG, h_dereg, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_DEREG_ST, h_dereg_st, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_RKEY, h_rkey, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_SUM, h_sum, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_ECHO, h_echo, NULL) == 0);
	h_uri(uri, sizeof(uri), path, 0);
	ret = wp_listen(ctx, uri, NULL, &l);
	pipe_write_int(wfd, ret < 0 ? ret : wp_ep_local_port(l));
	if (ret < 0)
		pause(); /* the parent kills us */
	for (;;) {
		wp_ctx_progress(ctx, 10000);
		if (dereg_pending && wp_mr_deregister(peer_mr2) == 0) {
			dereg_pending = 0;
			dereg_done = 1;
		}
	}
}

struct call {
	int done, status;
	uint8_t *got;
	uint32_t len;
};

static void c_data(void *arg, struct wp_msg *m)
{
	struct call *c = arg;

	c->got = realloc(c->got, c->len + m->len);
	CHECK(c->got || !m->len);
	if (m->len)
		memcpy(c->got + c->len, m->data, m->len);
	c->len += m->len;
}

static void c_done(void *arg, int status)
{
	struct call *c = arg;

	CHECK(!c->done);
	c->done = 1;
	c->status = status;
}

static void call(struct wp_ctx *ctx, struct wp_ep *ep, uint32_t m, const void *req, uint32_t len,
		 struct call *c)
{
	struct wp_call_params p = { .method = m,
				    .req = req,
				    .req_len = len,
				    .deadline_us = 30000000,
				    .on_data = c_data,
				    .on_done = c_done,
				    .arg = c };

	memset(c, 0, sizeof(*c));
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	if (ctx)
		drive_until(ctx, &c->done, 30000);
}

static uint64_t remote_sum(struct wp_ctx *ctx, struct wp_ep *ep, uint64_t off, uint64_t len)
{
	uint64_t a[2] = { off, len }, h;
	struct call c;

	call(ctx, ep, M_SUM, a, sizeof(a), &c);
	CHECK_EQ(c.status, 0);
	CHECK_EQ(c.len, sizeof(h));
	memcpy(&h, c.got, sizeof(h));
	free(c.got);
	return h;
}

struct xres {
	int done, status;
	struct wp_xfer_stats st;
};

static void x_done(void *arg, int status, const struct wp_xfer_stats *st)
{
	struct xres *r = arg;

	CHECK(!r->done); /* exactly once */
	r->done = 1;
	r->status = status;
	r->st = *st;
}

static int xpost(struct wp_ep *ep, enum wp_xfer_op op, struct wp_mr *mr, const struct wp_rkey *rk,
		 const struct wp_xfer_desc *d, uint32_t n, struct xres *r)
{
	struct wp_xfer_params p = { .op = op,
				    .local = mr,
				    .remote = rk,
				    .desc = d,
				    .ndesc = n,
				    .on_done = x_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	return wp_xfer_post(ep, &p);
}

int main(int argc, char **argv)
{
	const char *path = test_path(argc, argv);
	struct conn_wait w = { 0 };
	struct wp_ctx *ctx;
	struct wp_ep *ep;
	struct wp_mr *src, *dst;
	struct wp_rkey rk;
	struct call c;
	struct xres r;
	int fds[2], port;
	pid_t pid;
	uint8_t *sp, *dp;
	const char *ex;

	test_watchdog(150);
	many_mode = argc > 3 && !strcmp(argv[3], "--many");
	if (many_mode)
		default_memlock(); /* the peer too */
	/* The peer first: nothing of ours is registered when it forks. */
	CHECK(pipe(fds) == 0);
	pid = fork_child();
	if (pid == 0) {
		close(fds[0]);
		peer(path, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	CHECK(pipe_read_int(fds[0], 20000, &port) == 0);
	if (port == -ENOSYS || port == -ENODEV || port == -EOPNOTSUPP || port == -ENETDOWN) {
		kill_child(pid);
		SKIP("path %s unavailable here: %s", path, strerror(-port));
	}
	CHECK(port > 0);
	if (many_mode) {
		/* Many connections under the default RLIMIT_MEMLOCK (8 MiB),
		 * each pinning its buffers on both sides, each echoing; then,
		 * with the limit below what is pinned, one more fails with
		 * -ENOMEM and a log line naming RLIMIT_MEMLOCK. */
		enum { N = 24, LEN = 20000 };
		static struct conn_wait ws[N];
		static struct call cs[N];
		static uint8_t b[N][LEN];
		struct wp_ep *eps[N], *x;
		struct conn_wait wx = { 0 };
		struct wp_ep_cbs cbs = { .event = h_ep_event, .arg = &wx };
		struct rlimit rl;
		struct wp_ctx_opts o;
		char uri[64];
		int left;

		h_opts(&o, "client");
		o.log = many_log;
		CHECK(wp_ctx_create(&o, &ctx) == 0);
		for (int i = 0; i < N; i++)
			eps[i] = client_connect(ctx, path, port, &ws[i], NULL, NULL);
		for (int i = 0; i < N; i++) {
			test_fill(b[i], LEN, 100 + i);
			call(NULL, eps[i], M_ECHO, b[i], LEN, &cs[i]);
		}
		do {
			CHECK(wp_ctx_progress(ctx, 1000) >= 0);
			left = 0;
			for (int i = 0; i < N; i++)
				left += !cs[i].done;
		} while (left);
		for (int i = 0; i < N; i++) {
			CHECK_EQ(cs[i].status, 0);
			CHECK_EQ(cs[i].len, LEN);
			CHECK(!memcmp(cs[i].got, b[i], LEN));
			CHECK(!ws[i].closed);
			free(cs[i].got);
		}
		CHECK(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		printf("%d connections, each echoing %d B, under RLIMIT_MEMLOCK %llu KiB without "
		       "CAP_IPC_LOCK\n",
		       N, LEN, (unsigned long long)rl.rlim_cur >> 10);
		rl.rlim_cur = 128u << 10;
		CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		h_uri(uri, sizeof(uri), path, port);
		CHECK(wp_connect(ctx, uri, &cbs, &x) == 0);
		while (!wx.closed)
			CHECK(wp_ctx_progress(ctx, 1000) >= 0);
		printf("one more under a 128 KiB limit: %s (log names RLIMIT_MEMLOCK: %s)\n",
		       strerror(-wx.err), saw_memlock ? "yes" : "no");
		CHECK(!wx.up);
		CHECK_EQ(wx.err, -ENOMEM);
		CHECK(saw_memlock);
		kill_child(pid);
		wp_ctx_destroy(ctx);
		printf("ok\n");
		return 0;
	}
	{
		struct wp_ctx_opts o;

		h_opts(&o, "client");
		o.busy_poll = getenv("WP_RDMA_BUSY") != NULL;
		CHECK(wp_ctx_create(&o, &ctx) == 0);
	}
	ep = client_connect(ctx, path, port, &w, NULL, NULL);
	printf("path: %s\n", wp_ctx_explain(ctx));
	if (argc > 4 && !strcmp(argv[3], "--rtt")) {
		int n = atoi(argv[4]);
		uint64_t t0;

		call(ctx, ep, M_ECHO, "hi", 2, &c); /* warm */
		free(c.got);
		t0 = wp_now_ns();
		for (int i = 0; i < n; i++) {
			call(ctx, ep, M_ECHO, "hi", 2, &c);
			CHECK_EQ(c.status, 0);
			free(c.got);
		}
		printf("rpc round trip (2 B echo, %s): %d in %.1f ms, %.1f us each\n",
		       getenv("WP_RDMA_BUSY") ? "busy-poll" : "completion channel", n,
		       (wp_now_ns() - t0) / 1e6, (wp_now_ns() - t0) / 1e3 / n);
		kill_child(pid);
		wp_ep_close(ep);
		wp_ctx_destroy(ctx);
		return 0;
	}

	if (argc > 3 && !strcmp(argv[3], "--port-down")) {
		/* The guest's NIC goes down under a live connection: rxe raises
		 * IBV_EVENT_PORT_ERR, and the connection fails at once with
		 * -ENETDOWN instead of waiting for the transport's retries
		 * (tests/vm/rdma_guest.sh runs this last: it takes eth0 down). */
		uint64_t t0;

		call(ctx, ep, M_ECHO, "hi", 2, &c);
		CHECK_EQ(c.status, 0);
		free(c.got);
		call(NULL, ep, M_ECHO, "hi", 2, &c);
		CHECK(system("ip link set eth0 down") == 0);
		t0 = wp_now_ns();
		while (!w.closed) {
			CHECK(wp_ctx_progress(ctx, 1000) >= 0);
			CHECK(wp_now_ns() - t0 < 10000000000ull);
		}
		drive_until(ctx, &c.done, 10000);
		printf("port down: endpoint closed (%s) after %.1f ms, the call in flight: %s\n",
		       strerror(-w.err), (wp_now_ns() - t0) / 1e6, strerror(-c.status));
		CHECK_EQ(w.err, -ENETDOWN);
		CHECK(c.status < 0);
		CHECK(strstr(wp_ctx_explain(ctx), " 1 async errors") != NULL);
		free(c.got);
		CHECK(system("ip link set eth0 up") == 0);
		kill_child(pid);
		wp_ctx_destroy(ctx);
		printf("ok\n");
		return 0;
	}

	/* 1. Echoes across the buffer and credit boundaries. */
	{
		static const uint32_t sizes[] = { 1,     100,   4096,  16344,  16384,
						  32728, 32768, 70000, 300000, 1u << 20 };
		uint8_t *b = malloc(1u << 20);

		CHECK(b);
		for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			test_fill(b, sizes[i], 40 + i);
			call(ctx, ep, M_ECHO, b, sizes[i], &c);
			CHECK_EQ(c.status, 0);
			CHECK_EQ(c.len, sizes[i]);
			CHECK(memcmp(c.got, b, sizes[i]) == 0);
			free(c.got);
		}
		/* 200 small calls in flight at once: more than the credits. */
		{
			struct call many[200];
			int left = 200;

			for (int i = 0; i < 200; i++)
				call(NULL, ep, M_ECHO, &i, sizeof(i), &many[i]);
			while (left) {
				CHECK(wp_ctx_progress(ctx, 1000) >= 0);
				left = 0;
				for (int i = 0; i < 200; i++)
					left += !many[i].done;
			}
			for (int i = 0; i < 200; i++) {
				CHECK_EQ(many[i].status, 0);
				CHECK_EQ(many[i].len, sizeof(int));
				CHECK(!memcmp(many[i].got, &i, sizeof(int)));
				free(many[i].got);
			}
		}
		free(b);
		printf("echo 1 B..1 MiB and 200 in flight: ok\n");
	}

	/* 2. The peer's region key: exported there, advertised to us first. */
	call(ctx, ep, M_RKEY, NULL, 0, &c);
	CHECK_EQ(c.status, 0);
	CHECK_EQ(c.len, sizeof(rk));
	memcpy(&rk, c.got, sizeof(rk));
	free(c.got);
	CHECK(wp_mr_alloc(ctx, RLEN, &src) == 0);
	CHECK(wp_mr_alloc(ctx, RLEN, &dst) == 0);
	sp = wp_mr_addr(src);
	dp = wp_mr_addr(dst);
	CHECK(wp_mr_is_pinned(src)); /* registered with the device */

	/* 3. Writes by RDMA, checked by the peer's own checksum. */
	{
		struct wp_xfer_desc d[3] = { { 0, 0, 100 },
					     { 1000, 5003, 77777 },
					     { 4u << 20, 8u << 20, 3u << 20 } };

		test_fill(sp, RLEN, 7);
		CHECK(xpost(ep, WP_XFER_WRITE, src, &rk, d, 3, &r) == 0);
		CHECK_EQ(r.done, 0);
		drive_until(ctx, &r.done, 30000);
		CHECK_EQ(r.status, 0);
		CHECK_EQ(r.st.direct, 1);
		CHECK_EQ(r.st.frames, 0);
		CHECK_EQ(r.st.bytes, 100 + 77777 + (3u << 20));
		for (int i = 0; i < 3; i++)
			CHECK_EQ(remote_sum(ctx, ep, d[i].remote_off, d[i].len),
				 fnv(sp + d[i].local_off, d[i].len));
		printf("write 3 desc: %llu B in %.2f ms by RDMA\n", (unsigned long long)r.st.bytes,
		       r.st.ns / 1e6);
	}
	/* 4. 16 MiB in one write, then read back by RDMA READ. */
	{
		struct wp_xfer_desc d = { 0, 0, RLEN };

		test_fill(sp, RLEN, 11);
		CHECK(xpost(ep, WP_XFER_WRITE, src, &rk, &d, 1, &r) == 0);
		drive_until(ctx, &r.done, 60000);
		CHECK_EQ(r.status, 0);
		CHECK_EQ(remote_sum(ctx, ep, 0, RLEN), fnv(sp, RLEN));
		printf("write 16 MiB: %.2f ms (%.1f MB/s)\n", r.st.ns / 1e6, RLEN * 1e3 / r.st.ns);
		memset(dp, 0xee, RLEN);
		d = (struct wp_xfer_desc){ 0, 4096, RLEN - 8192 };
		CHECK(xpost(ep, WP_XFER_READ, dst, &rk, &d, 1, &r) == 0);
		drive_until(ctx, &r.done, 60000);
		CHECK_EQ(r.status, 0);
		CHECK_EQ(r.st.frames, 0);
		CHECK(memcmp(dp, sp + 4096, RLEN - 8192) == 0);
		CHECK(dp[RLEN - 8192] == 0xee);
		printf("read 16 MiB - 8 KiB: %.2f ms (%.1f MB/s)\n", r.st.ns / 1e6,
		       (RLEN - 8192) * 1e3 / r.st.ns);
	}
	/* 5. A wrong key is not advertised: frames, refused by the peer. */
	{
		struct wp_rkey bad = rk;
		struct wp_xfer_desc d = { 0, 0, 4096 };

		bad.key ^= 0x5a5a5a5a;
		CHECK(xpost(ep, WP_XFER_WRITE, src, &bad, &d, 1, &r) == 0);
		drive_until(ctx, &r.done, 30000);
		CHECK_EQ(r.status, EACCES);
	}
	/* 6. A transfer queued behind another (1024 pieces: more than the
	 * send queue holds) gets its deadline: -ETIMEDOUT, once; the region
	 * both are posted from cannot be deregistered while they live. */
	{
		static struct wp_xfer_desc d[1024];
		struct wp_mr *tmp;
		struct xres a, b;
		struct wp_xfer_params p = { .op = WP_XFER_WRITE,
					    .remote = &rk,
					    .desc = d,
					    .ndesc = 1,
					    .deadline_us = 1,
					    .on_done = x_done,
					    .arg = &b };

		CHECK(wp_mr_alloc(ctx, 1u << 20, &tmp) == 0);
		test_fill(wp_mr_addr(tmp), 1u << 20, 13);
		for (int i = 0; i < 1024; i++)
			d[i] = (struct wp_xfer_desc){ (uint64_t)i << 10, (uint64_t)i << 10, 1024 };
		CHECK(xpost(ep, WP_XFER_WRITE, tmp, &rk, d, 1024, &a) == 0);
		memset(&b, 0, sizeof(b));
		p.local = tmp;
		CHECK(wp_xfer_post(ep, &p) == 0);
		CHECK_EQ(wp_mr_deregister(tmp), -EBUSY); /* in flight: refused, kept */
		drive_until(ctx, &b.done, 30000);
		CHECK_EQ(b.status, -ETIMEDOUT);
		drive_until(ctx, &a.done, 30000);
		CHECK_EQ(a.status, 0);
		CHECK_EQ(a.st.direct, 1);
		CHECK_EQ(remote_sum(ctx, ep, 0, 1u << 20), fnv(wp_mr_addr(tmp), 1u << 20));
		CHECK_EQ(wp_mr_deregister(tmp), 0);
		printf("queued transfer past its deadline: %s; the region refused "
		       "deregistration while in flight\n",
		       strerror(-b.status));
	}
	/* 7. The peer deregisters a region it advertised to us while our
	 * writes into it are in flight: the call is refused (EBUSY) and the
	 * advertisement withdrawn; our queued pieces stop (EACCES), posted ones
	 * complete, we acknowledge, the peer's next call succeeds. A later write
	 * goes by frames and is refused (EACCES). The connection lives. */
	{
		static struct wp_xfer_desc d[1024];
		struct wp_rkey rk2;
		struct xres a, b;
		int32_t first, done = 0;
		uint64_t t0;

		call(ctx, ep, M_RKEY2, NULL, 0, &c);
		CHECK_EQ(c.status, 0);
		CHECK_EQ(c.len, sizeof(rk2));
		memcpy(&rk2, c.got, sizeof(rk2));
		free(c.got);
		d[0] = (struct wp_xfer_desc){ 0, 0, 1u << 20 };
		CHECK(xpost(ep, WP_XFER_WRITE, src, &rk2, d, 1, &a) == 0);
		drive_until(ctx, &a.done, 30000);
		CHECK_EQ(a.status, 0);
		CHECK_EQ(a.st.direct, 1);
		for (int i = 0; i < 1024; i++)
			d[i] = (struct wp_xfer_desc){ (uint64_t)i << 10, (uint64_t)i << 10, 1024 };
		CHECK(xpost(ep, WP_XFER_WRITE, src, &rk2, d, 1024, &a) == 0);
		call(ctx, ep, M_DEREG, NULL, 0, &c);
		CHECK_EQ(c.status, 0);
		CHECK_EQ(c.len, sizeof(first));
		memcpy(&first, c.got, sizeof(first));
		free(c.got);
		CHECK_EQ(first, -EBUSY);
		drive_until(ctx, &a.done, 30000);
		CHECK(a.status == 0 || a.status == EACCES);
		t0 = wp_now_ns();
		while (!done) {
			call(ctx, ep, M_DEREG_ST, NULL, 0, &c);
			CHECK_EQ(c.status, 0);
			memcpy(&done, c.got, sizeof(done));
			free(c.got);
			CHECK(wp_now_ns() - t0 < 10000000000ull);
		}
		CHECK(xpost(ep, WP_XFER_WRITE, src, &rk2, d, 1, &b) == 0);
		drive_until(ctx, &b.done, 30000);
		CHECK_EQ(b.status, EACCES);
		CHECK_EQ(b.st.direct, 0);
		CHECK(!w.closed);
		printf("peer deregistered an advertised region under 1024 writes in flight: "
		       "refused (%s), withdrawn, done after %.1f ms; the write in flight: %s, a "
		       "later one refused by frames (EACCES); connection open\n",
		       strerror(-first), (wp_now_ns() - t0) / 1e6,
		       a.status ? "stopped (EACCES)" : "completed");
	}
	ex = wp_ctx_explain(ctx);
	printf("explain: %s\n", ex);
	CHECK(strstr(ex, "rdma_cm RC") != NULL);
	CHECK(strstr(ex, " 0 failed completions") != NULL);
	CHECK(!w.closed);

	/* 8. The peer killed with writes and calls in flight. */
	{
		enum { NX = 192, NC = 16 };
		static struct xres xr[NX];
		static struct call cs[NC];
		int done_before = 0, failed = 0, ok = 0, left;
		uint64_t t0;

		for (int i = 0; i < NX; i++) {
			struct wp_xfer_desc d = { (uint64_t)(i % 16) << 20,
						  (uint64_t)(i % 16) << 20, 1u << 20 };

			CHECK(xpost(ep, WP_XFER_WRITE, src, &rk, &d, 1, &xr[i]) == 0);
		}
		for (int i = 0; i < NC; i++)
			call(NULL, ep, M_ECHO, &i, sizeof(i), &cs[i]);
		/* Let some of it move, then kill. */
		while (!xr[0].done)
			CHECK(wp_ctx_progress(ctx, 1000) >= 0);
		CHECK(!xr[NX - 1].done);
		for (int i = 0; i < NX; i++)
			done_before += xr[i].done;
		kill_child(pid);
		t0 = wp_now_ns();
		do {
			CHECK(wp_ctx_progress(ctx, 1000) >= 0);
			left = 0;
			for (int i = 0; i < NX; i++)
				left += !xr[i].done;
			for (int i = 0; i < NC; i++)
				left += !cs[i].done;
			CHECK(wp_now_ns() - t0 < 60000000000ull); /* never a hang */
		} while (left || !w.closed);
		for (int i = 0; i < NX; i++) {
			ok += xr[i].status == 0;
			failed += xr[i].status != 0;
		}
		for (int i = 0; i < NC; i++)
			free(cs[i].got);
		printf("peer killed after %d of %d writes: %d ok, %d failed (first: %s), "
		       "endpoint closed (%s) after %.1f ms\n",
		       done_before, NX, ok, failed, failed ? strerror(-xr[NX - 1].status) : "-",
		       strerror(-w.err), (wp_now_ns() - t0) / 1e6);
		CHECK(failed > 0); /* it really was mid-transfer */
		CHECK(xr[NX - 1].status < 0);
	}
	wp_mr_deregister(src);
	wp_mr_deregister(dst);
	wp_ep_close(ep);
	wp_ctx_destroy(ctx);
	printf("ok\n");
	return 0;
}
