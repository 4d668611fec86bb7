// SPDX-License-Identifier: MIT
/*
 * What only the ucx path has (docs/architecture.md, "ucx"), against a peer
 * in another process (a forked child), so UCX selects what it would between
 * two processes of one host (shared memory unless UCX_TLS says otherwise;
 * tests/netns/ucx.sh runs this binary across two network namespaces with
 * UCX_TLS=tcp, WP_UCX_PEER=host:port naming a `wirepath`-less peer of its
 * own: the child of the other namespace).
 *
 * 1. The probe says UCX is there, and explain names the lanes UCX selected
 *    (from UCX's own endpoint dump), with a transport on each data lane; with
 *    WP_UCX_EXPECT=NAME,... every data lane is on one of them. Without it
 *    (same host) the test sets UCX_MM_ERROR_HANDLING=y and requires frames
 *    on a shared-memory lane (sysv or posix).
 * 2. Bulk transfers are RMA with the peer's packed rkey: an 8 MiB write in 3
 *    descriptors checked by the peer's checksum of its region, a read back
 *    compared byte for byte, no frames; a wrong key goes as frames and the
 *    peer refuses it (EACCES).
 * 3. ucx_need: "rdma" where UCX has no verbs transport fails the connection
 *    under select=require with -EPROTONOSUPPORT and an ERR line naming what
 *    UCX chose; under prefer it connects and explain says NOT met; a need
 *    naming what UCX chose is met.
 * 4. The peer dies (SIGKILL) with RMA writes of 32 MiB and held calls in
 *    flight: every transfer and call completes exactly once (the calls with
 *    an error), the endpoint closes, wp_ctx_destroy frees everything (ASan's
 *    leak check at exit).
 *
 * wp-test-paths: ucx
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "harness.h"
#include "procs.h"

enum { M_RKEY = 1, M_SUM = 2, M_HOLD = 3 };

#define REGION (64u << 20)
#define NBIG 6

/* ---- the peer (a forked child) ----------------------------------------- */

static struct wp_mr *peer_mr;
static struct wp_rkey peer_rkey;

static void p_rkey(void *arg, struct wp_call *call, struct wp_msg *req)
{
	CHECK(wp_call_reply(call, &peer_rkey, sizeof(peer_rkey), NULL, NULL) == 0);
}

static void p_sum(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint64_t q[2], sum;

	CHECK_EQ(req->len, sizeof(q));
	memcpy(q, req->data, sizeof(q));
	CHECK(q[0] <= REGION && q[1] <= REGION - q[0]);
	sum = fnv1a((uint8_t *)wp_mr_addr(peer_mr) + q[0], q[1], FNV_INIT);
	CHECK(wp_call_reply(call, &sum, sizeof(sum), NULL, NULL) == 0);
}

static void p_hold(void *arg, struct wp_call *call, struct wp_msg *req)
{
	/* never answered: the client's call ends when we die */
}

static void peer_run(int wfd)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *l;

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	CHECK(wp_ctx_create(&o, &ctx) == 0);
	CHECK(wp_mr_alloc(ctx, REGION, &peer_mr) == 0);
	CHECK(wp_mr_export(peer_mr, &peer_rkey) == 0);
	CHECK(wp_rpc_register(ctx, M_RKEY, p_rkey, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_SUM, p_sum, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_HOLD, p_hold, NULL) == 0);
	CHECK(wp_listen(ctx,
			getenv("WP_UCX_LISTEN") ? getenv("WP_UCX_LISTEN") : "ucx://127.0.0.1:0",
			NULL, &l) == 0);
	pipe_write_int(wfd, wp_ep_local_port(l));
	for (;;)
		wp_ctx_progress(ctx, 100000);
}

/* ---- the client ---------------------------------------------------------- */

struct cres {
	int done, status;
	uint8_t data[64];
	uint32_t len;
};

static void c_data(void *arg, struct wp_msg *m)
{
	struct cres *r = arg;

	if (m->len <= sizeof(r->data)) {
		memcpy(r->data, m->data, m->len);
		r->len = m->len;
	}
}

static void c_done(void *arg, int status)
{
	struct cres *r = arg;

	CHECK(!r->done);
	r->done = 1;
	r->status = status;
}

static void call_wait(struct wp_ctx *c, struct wp_ep *ep, uint32_t method, const void *req,
		      uint32_t len, struct cres *r)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = len,
				    .on_data = c_data,
				    .on_done = c_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &r->done, 10000);
	CHECK_EQ(r->status, 0);
}

struct xres {
	int done, status;
	struct wp_xfer_stats st;
};

static void x_done(void *arg, int status, const struct wp_xfer_stats *st)
{
	struct xres *r = arg;

	CHECK(!r->done);
	r->done = 1;
	r->status = status;
	r->st = *st;
}

static void xfer(struct wp_ctx *c, struct wp_ep *ep, enum wp_xfer_op op, struct wp_mr *mr,
		 const struct wp_rkey *rk, const struct wp_xfer_desc *d, uint32_t n, struct xres *r)
{
	struct wp_xfer_params p = { .op = op,
				    .local = mr,
				    .remote = rk,
				    .desc = d,
				    .ndesc = n,
				    .on_done = x_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	CHECK(wp_xfer_post(ep, &p) == 0);
	drive_until(c, &r->done, 20000);
}

/* Lines the library logged at ERR that mention ucx_need. */
static char need_line[WP_LOG_LINE_MAX];

static void c_log(void *arg, enum wp_log_level lvl, const char *msg)
{
	if (lvl <= WP_LOG_WARN && strstr(msg, "ucx_need"))
		snprintf(need_line, sizeof(need_line), "%s: %s", lvl == WP_LOG_ERR ? "ERR" : "WARN",
			 msg);
	if (getenv("WP_TEST_VERBOSE") || lvl == WP_LOG_ERR)
		fprintf(stderr, "[client] %s\n", msg);
}

static struct wp_ctx *ctx_need(enum wp_select sel, const char *need)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;

	wp_ctx_opts_init(&o);
	o.select = sel;
	o.log = c_log;
	o.log_level = WP_LOG_WARN;
	snprintf(o.ucx_need, sizeof(o.ucx_need), "%s", need);
	CHECK(wp_ctx_create(&o, &c) == 0);
	return c;
}

static struct wp_ep *connect_to(struct wp_ctx *c, const char *uri, struct conn_wait *w)
{
	struct wp_ep_cbs cbs = { .event = h_ep_event, .arg = w };
	struct wp_ep *ep;

	uint64_t end = wp_now_ns() + 10000000000ull;

	memset(w, 0, sizeof(*w));
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	while (!w->up && !w->closed) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(wp_now_ns() < end);
	}
	return ep;
}

static bool shm_lanes; /* same host: a shared-memory transport carries the frames */

/* The transports of the data lanes explain names ("tcp/lo.0 (am ...)"). */
static void check_lanes(const char *ex)
{
	const char *want = getenv("WP_UCX_EXPECT");
	const char *l = strstr(ex, "lanes UCX selected: ");

	CHECK(l != NULL);
	CHECK(strstr(l, "tcp/") || strstr(l, "posix/") || strstr(l, "sysv/") || strstr(l, "cma/") ||
	      strstr(l, "self/") || strstr(l, "rc_") || strstr(l, "ud_"));
	if (shm_lanes) /* the am lane */
		CHECK(strstr(l, "sysv/memory.0 (am") || strstr(l, "posix/memory.0 (am"));
	if (want) {
		char need[64];

		snprintf(need, sizeof(need), "ucx_need=%s: met", want);
		CHECK(strstr(ex, need) != NULL);
	}
}

int main(int argc, char **argv)
{
	const struct wp_probe_result *pr, *rdma;
	int pfd[2], port;
	char uri[128];
	const char *peer = getenv("WP_UCX_PEER");
	pid_t pid = 0;

	test_watchdog(90);
	if (strcmp(test_path(argc, argv), "ucx"))
		SKIP("ucx only");
	/* Same host: shared memory (UCX 1.13 offers it to endpoints with
	 * peer-failure handling only so: openucx/ucx#8477), both sides. */
	if (!getenv("WP_UCX_EXPECT") && !getenv("UCX_MM_ERROR_HANDLING") &&
	    !getenv("WP_UCX_PEER") && !getenv("WP_UCX_PEER_ONLY")) {
		setenv("UCX_MM_ERROR_HANDLING", "y", 1);
		setenv("WP_UCX_EXPECT", "shm,tcp", 1);
		shm_lanes = true;
	}
	pr = wp_probe_get("path.ucx");
	rdma = wp_probe_get("path.ucx.rdma");
	if (!pr || !pr->ok)
		SKIP("ucx path unavailable: %s", pr ? pr->detail : "not built");
	printf("probe: %s\n", pr->detail);
	if (getenv("WP_UCX_PEER_ONLY")) { /* tests/netns/ucx.sh: the other side */
		CHECK(pipe(pfd) == 0);
		peer_run(pfd[1]);
	}
	if (!peer) {
		CHECK(pipe(pfd) == 0);
		pid = fork_child();
		if (pid == 0)
			peer_run(pfd[1]);
		CHECK(pipe_read_int(pfd[0], 10000, &port) == 0);
		snprintf(uri, sizeof(uri), "ucx://127.0.0.1:%d", port);
	} else {
		snprintf(uri, sizeof(uri), "ucx://%s", peer);
	}

	/* 1 + 2: lanes, RMA with the peer's rkey. */
	{
		const char *expect = getenv("WP_UCX_EXPECT");
		struct wp_ctx *c = ctx_need(WP_SELECT_REQUIRE, expect ? expect : "");
		struct conn_wait w;
		struct wp_ep *ep = connect_to(c, uri, &w);
		struct wp_xfer_desc d[3] = { { 0, 0, 4096 },
					     { 5000, 1u << 20, 777777 },
					     { 2u << 20, 16u << 20, 7u << 20 } };
		struct wp_xfer_desc back = { 0, 0, 24u << 20 };
		struct wp_mr *src, *dst;
		struct wp_rkey rk;
		struct cres cr;
		struct xres xr;
		uint64_t t0;

		CHECK(w.up);
		printf("explain: %s\n", wp_ctx_explain(c));
		check_lanes(wp_ctx_explain(c));
		call_wait(c, ep, M_RKEY, NULL, 0, &cr);
		CHECK_EQ(cr.len, sizeof(rk));
		memcpy(&rk, cr.data, sizeof(rk));
		CHECK(wp_mr_alloc(c, 24u << 20, &src) == 0);
		CHECK(wp_mr_alloc(c, 24u << 20, &dst) == 0);
		test_fill(wp_mr_addr(src), 24u << 20, 7);
		t0 = wp_now_ns();
		xfer(c, ep, WP_XFER_WRITE, src, &rk, d, 3, &xr);
		CHECK_EQ(xr.status, 0);
		CHECK_EQ(xr.st.frames, 0);
		CHECK_EQ(xr.st.direct, 1);
		CHECK_EQ(xr.st.bytes, 4096 + 777777 + (7u << 20));
		printf("write 3 desc (%llu B): %.2f ms, no frames\n",
		       (unsigned long long)xr.st.bytes, (wp_now_ns() - t0) / 1e6);
		for (int i = 0; i < 3; i++) {
			uint64_t q[2] = { d[i].remote_off, d[i].len }, sum;

			call_wait(c, ep, M_SUM, q, sizeof(q), &cr);
			memcpy(&sum, cr.data, sizeof(sum));
			CHECK(sum == fnv1a((uint8_t *)wp_mr_addr(src) + d[i].local_off, d[i].len,
					   FNV_INIT));
		}
		/* Read back what we wrote: byte for byte. */
		memset(wp_mr_addr(dst), 0xee, 24u << 20);
		xfer(c, ep, WP_XFER_READ, dst, &rk, &back, 1, &xr);
		CHECK_EQ(xr.status, 0);
		CHECK_EQ(xr.st.frames, 0);
		for (int i = 0; i < 3; i++)
			CHECK(memcmp((uint8_t *)wp_mr_addr(dst) + d[i].remote_off,
				     (uint8_t *)wp_mr_addr(src) + d[i].local_off, d[i].len) == 0);
		printf("read 24 MiB: %.2f ms (%.2f GB/s)\n", xr.st.ns / 1e6,
		       (24u << 20) / (double)xr.st.ns);
		/* A wrong key: not RMA (we know no such rkey), the peer refuses. */
		rk.key ^= 1;
		xfer(c, ep, WP_XFER_WRITE, src, &rk, d, 1, &xr);
		CHECK_EQ(xr.status, EACCES);
		rk.key ^= 1;
		printf("explain: %s\n", wp_ctx_explain(c));

		/* 4 (forked peer only): it dies with RMA and calls in flight. */
		if (pid) {
			struct xres big[NBIG];
			struct cres held[4];
			struct wp_xfer_desc bd = { 0, 0, 24u << 20 };
			uint64_t end;
			int left;

			for (int i = 0; i < 4; i++) {
				struct wp_call_params p = { .method = M_HOLD,
							    .on_data = c_data,
							    .on_done = c_done,
							    .arg = &held[i] };

				memset(&held[i], 0, sizeof(held[i]));
				CHECK(wp_rpc_call(ep, &p, NULL) == 0);
			}
			for (int i = 0; i < NBIG; i++) {
				struct wp_xfer_params p = { .op = WP_XFER_WRITE,
							    .local = src,
							    .remote = &rk,
							    .desc = &bd,
							    .ndesc = 1,
							    .on_done = x_done,
							    .arg = &big[i] };

				memset(&big[i], 0, sizeof(big[i]));
				CHECK(wp_xfer_post(ep, &p) == 0);
			}
			for (int i = 0; i < 3; i++)
				wp_ctx_progress(c, 0);
			kill_child(pid);
			end = wp_now_ns() + 10000000000ull;
			do {
				CHECK(wp_ctx_progress(c, 10000) >= 0);
				left = 0;
				for (int i = 0; i < NBIG; i++)
					left += !big[i].done;
				for (int i = 0; i < 4; i++)
					left += !held[i].done;
			} while ((left || !w.closed) && wp_now_ns() < end);
			CHECK_EQ(left, 0);
			CHECK(w.closed);
			for (int i = 0; i < 4; i++)
				CHECK(held[i].status < 0);
			for (int i = 0; i < NBIG; i++)
				printf("write %d after the kill: %d\n", i, big[i].status);
			CHECK(big[NBIG - 1].status != 0); /* 144 MiB cannot all have landed */
			printf("peer killed: the endpoint closed (%s), %d transfers and 4 calls "
			       "failed cleanly\n",
			       strerror(-w.err), NBIG);
			CHECK(wp_xfer_post(ep, &(struct wp_xfer_params){ .op = WP_XFER_WRITE,
									 .local = src,
									 .remote = &rk,
									 .desc = &bd,
									 .ndesc = 1,
									 .on_done = x_done,
									 .arg = &big[0] }) ==
			      -ENOTCONN);
		}
		wp_mr_deregister(src);
		wp_mr_deregister(dst);
		wp_ctx_destroy(c);
	}

	/* 3: ucx_need held against what UCX chose (an in-process server). */
	{
		static struct srv s = { .path = "ucx" };
		struct conn_wait w;
		struct wp_ctx *c;
		char suri[64];

		srv_start(&s, NULL);
		snprintf(suri, sizeof(suri), "ucx://127.0.0.1:%d", s.port);
		if (!rdma || !rdma->ok) {
			c = ctx_need(WP_SELECT_REQUIRE, "rdma");
			need_line[0] = 0;
			connect_to(c, suri, &w);
			CHECK(!w.up && w.closed);
			CHECK_EQ(w.err, -EPROTONOSUPPORT);
			CHECK(!strncmp(need_line, "ERR: ucx: UCX put this connection on ", 37));
			printf("require rdma: refused, logged \"%s\"\n", need_line);
			wp_ctx_destroy(c);

			c = ctx_need(WP_SELECT_PREFER, "rdma");
			need_line[0] = 0;
			connect_to(c, suri, &w);
			CHECK(w.up);
			CHECK(!strncmp(need_line, "WARN: ucx: UCX put this connection on ", 38));
			CHECK(strstr(wp_ctx_explain(c), "ucx_need=rdma: NOT met") != NULL);
			printf("prefer rdma: %s\n", wp_ctx_explain(c));
			wp_ctx_destroy(c);
		} else {
			printf("UCX has verbs transports here: the refusal case needs a host without\n");
		}
		c = ctx_need(WP_SELECT_REQUIRE, "tcp,shm");
		connect_to(c, suri, &w);
		CHECK(w.up);
		CHECK(strstr(wp_ctx_explain(c), "ucx_need=tcp,shm: met") != NULL);
		wp_ctx_destroy(c);
		srv_stop(&s);
	}
	printf("ok\n");
	return 0;
}
