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
 * 2. Bulk transfers, against two peers: by default (no verbs here, so UCX's
 *    RMA would be software, which checks nothing on the target) they go as
 *    frames and no rkey is announced; with ucx_trust_rma on both sides they
 *    are RMA with the peer's packed rkey. Either way: an 8 MiB write in 3
 *    descriptors checked by the peer's checksum of its region, a read back
 *    compared byte for byte; a wrong key goes as frames and the peer refuses
 *    it (EACCES). With RMA, the peer deregisters its region while writes are
 *    in flight: it waits for our UNEXPORT_ACK, which we send only once the
 *    writes' flushes completed (they succeed, the peer does not crash on a
 *    put into unmapped memory), and a later write with that rkey goes as
 *    frames (EACCES).
 * 3. ucx_need: "rdma" where UCX has no verbs transport fails the connection
 *    under select=require with -EPROTONOSUPPORT and an ERR line naming what
 *    UCX chose; under prefer it connects and explain says NOT met; a need
 *    naming what UCX chose is met.
 *    The acceptor holds ucx_need too: a server under select=require refuses
 *    a connection UCX put elsewhere (the connector sees it closed).
 * 4. The trusting peer dies (SIGKILL) with RMA writes of 144 MiB and held
 *    calls in flight: every transfer and call completes exactly once (the
 *    calls with an error), the endpoint closes, wp_ctx_destroy frees
 *    everything (ASan's leak check at exit).
 * 5. In one process: 10 listeners on one context (the 10th accepts);
 *    rendezvous receives bounded by the receive budget (rx_budget = max_frame
 *    = 1 MiB, eight 1 MiB messages: all arrive whole and in order, some held
 *    back); a connection closed while a rendezvous receive is in flight, then
 *    the contexts destroyed (no use-after-free under ASan).
 *
 * wp-test-paths: ucx
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "harness.h"
#include "procs.h"

enum { M_RKEY = 1, M_SUM = 2, M_HOLD = 3, M_DEREG = 4 };

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

/* Deregister the exported region (waits for the client's UNEXPORT_ACK,
 * which follows its pending writes), then export a fresh one. */
static void p_dereg(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_ctx *ctx = arg;
	uint64_t t0 = wp_now_ns(), ns;

	wp_mr_deregister(peer_mr);
	ns = wp_now_ns() - t0;
	CHECK(wp_mr_alloc(ctx, REGION, &peer_mr) == 0);
	CHECK(wp_mr_export(peer_mr, &peer_rkey) == 0);
	CHECK(wp_call_reply(call, &ns, sizeof(ns), NULL, NULL) == 0);
}

static void peer_run(int wfd, int trust, const char *listen)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *l;

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.ucx_trust_rma = trust;
	CHECK(wp_ctx_create(&o, &ctx) == 0);
	CHECK(wp_mr_alloc(ctx, REGION, &peer_mr) == 0);
	CHECK(wp_mr_export(peer_mr, &peer_rkey) == 0);
	CHECK(wp_rpc_register(ctx, M_RKEY, p_rkey, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_SUM, p_sum, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_HOLD, p_hold, NULL) == 0);
	CHECK(wp_rpc_register(ctx, M_DEREG, p_dereg, ctx) == 0);
	CHECK(wp_listen(ctx, listen ? listen : "ucx://127.0.0.1:0", NULL, &l) == 0);
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

static struct wp_ctx *ctx_trust(enum wp_select sel, const char *need, int trust)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;

	wp_ctx_opts_init(&o);
	o.select = sel;
	o.ucx_trust_rma = trust;
	o.log = c_log;
	o.log_level = WP_LOG_WARN;
	snprintf(o.ucx_need, sizeof(o.ucx_need), "%s", need);
	CHECK(wp_ctx_create(&o, &c) == 0);
	return c;
}

static struct wp_ctx *ctx_need(enum wp_select sel, const char *need)
{
	return ctx_trust(sel, need, 0);
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

/* Write 3 descriptors, check them by the peer's checksums, read them back,
 * a wrong key refused. rma: expect RMA (no frames), else frames. */
static void bulk_checks(struct wp_ctx *c, struct wp_ep *ep, struct wp_mr *src, struct wp_mr *dst,
			const struct wp_rkey *rk0, bool rma)
{
	struct wp_xfer_desc d[3] = { { 0, 0, 4096 },
				     { 5000, 1u << 20, 777777 },
				     { 2u << 20, 16u << 20, 7u << 20 } };
	struct wp_xfer_desc back = { 0, 0, 24u << 20 };
	struct wp_rkey rk = *rk0;
	struct cres cr;
	struct xres xr;
	uint64_t t0 = wp_now_ns();

	test_fill(wp_mr_addr(src), 24u << 20, rma ? 7 : 8);
	xfer(c, ep, WP_XFER_WRITE, src, &rk, d, 3, &xr);
	CHECK_EQ(xr.status, 0);
	CHECK_EQ(xr.st.bytes, 4096 + 777777 + (7u << 20));
	if (rma) {
		CHECK_EQ(xr.st.frames, 0);
		CHECK_EQ(xr.st.direct, 1);
	} else {
		CHECK(xr.st.frames > 0);
		CHECK_EQ(xr.st.direct, 0);
	}
	printf("%s: write 3 desc (%llu B): %.2f ms, %u frames\n", rma ? "RMA" : "frames",
	       (unsigned long long)xr.st.bytes, (wp_now_ns() - t0) / 1e6, xr.st.frames);
	for (int i = 0; i < 3; i++) {
		uint64_t q[2] = { d[i].remote_off, d[i].len }, sum;

		call_wait(c, ep, M_SUM, q, sizeof(q), &cr);
		memcpy(&sum, cr.data, sizeof(sum));
		CHECK(sum ==
		      fnv1a((uint8_t *)wp_mr_addr(src) + d[i].local_off, d[i].len, FNV_INIT));
	}
	/* Read back what we wrote: byte for byte. */
	memset(wp_mr_addr(dst), 0xee, 24u << 20);
	xfer(c, ep, WP_XFER_READ, dst, &rk, &back, 1, &xr);
	CHECK_EQ(xr.status, 0);
	CHECK(rma ? xr.st.frames == 0 : xr.st.frames > 0);
	for (int i = 0; i < 3; i++)
		CHECK(memcmp((uint8_t *)wp_mr_addr(dst) + d[i].remote_off,
			     (uint8_t *)wp_mr_addr(src) + d[i].local_off, d[i].len) == 0);
	printf("%s: read 24 MiB: %.2f ms (%.2f GB/s)\n", rma ? "RMA" : "frames", xr.st.ns / 1e6,
	       (24u << 20) / (double)xr.st.ns);
	/* A wrong key: not RMA (we know no such rkey), the peer refuses. */
	rk.key ^= 1;
	xfer(c, ep, WP_XFER_WRITE, src, &rk, d, 1, &xr);
	CHECK_EQ(xr.status, EACCES);
}

/* ---- 5: one process, two contexts ----------------------------------------- */

struct side {
	struct wp_ep *acc; /* the last endpoint accepted */
	int accepted;
	int nmsg, bad;
	uint32_t next_seed;
};

static void s_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct side *sd = arg;

	if (ev == WP_EP_CONNECTED) {
		sd->acc = ep;
		sd->accepted++;
	}
}

/* Messages of 1 MiB, each test_fill'ed with seed = its index. */
static void s_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	static uint8_t want[1u << 20];
	struct side *sd = arg;

	test_fill(want, sizeof(want), sd->next_seed++);
	if (m->len != sizeof(want) || memcmp(m->data, want, sizeof(want)))
		sd->bad++;
	sd->nmsg++;
}

static void drive2(struct wp_ctx *a, struct wp_ctx *b, volatile int *flag, int want, int ms)
{
	uint64_t end = wp_now_ns() + (uint64_t)ms * 1000000;

	while (*flag < want) {
		CHECK(wp_ctx_progress(a, 0) >= 0);
		CHECK(wp_ctx_progress(b, 0) >= 0);
		CHECK(wp_now_ns() < end);
	}
}

static uint64_t explain_num(struct wp_ctx *c, const char *after)
{
	const char *p = strstr(wp_ctx_explain(c), after);

	CHECK(p != NULL);
	p += strlen(after);
	return strtoull(p, NULL, 10);
}

static void sent_done(void *arg, int status)
{
	int *n = arg;

	(*n)++;
}

static void one_process(void)
{
	static uint8_t big[8][1u << 20];
	struct side sd = { 0 };
	struct wp_ep_cbs lcbs = { .event = s_event, .msg = s_msg, .arg = &sd };
	struct wp_ctx_opts o;
	struct wp_ctx *r, *snd;
	struct wp_ep *l[10], *ep;
	struct conn_wait w;
	char uri[64];
	int sent = 0;

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.max_frame = 1u << 20;
	o.rx_budget = 1u << 20; /* one rendezvous receive at a time */
	o.log = c_log;
	o.log_level = WP_LOG_WARN;
	CHECK(wp_ctx_create(&o, &r) == 0);
	for (int i = 0; i < 10; i++)
		CHECK(wp_listen(r, "ucx://127.0.0.1:0", &lcbs, &l[i]) == 0);
	snd = ctx_need(WP_SELECT_REQUIRE, "");
	snprintf(uri, sizeof(uri), "ucx://127.0.0.1:%d", wp_ep_local_port(l[9]));
	memset(&w, 0, sizeof(w));
	CHECK(wp_connect(snd, uri, &(struct wp_ep_cbs){ .event = h_ep_event, .arg = &w }, &ep) ==
	      0);
	drive2(snd, r, &w.up, 1, 10000);
	drive2(snd, r, &sd.accepted, 1, 10000);
	printf("10 listeners: the 10th accepted\n");

	/* Eight 1 MiB messages (rendezvous) under a 1 MiB receive budget. */
	for (int i = 0; i < 8; i++) {
		test_fill(big[i], sizeof(big[i]), (uint32_t)i);
		CHECK(wp_ep_send_msg(ep, 7, big[i], sizeof(big[i]), sent_done, &sent) == 0);
	}
	drive2(snd, r, &sd.nmsg, 8, 20000);
	CHECK_EQ(sd.bad, 0);
	drive2(r, snd, &sent, 8, 10000);
	CHECK(explain_num(r, "copied, ") > 0); /* "N rendezvous held back" */
	printf("8 x 1 MiB under a 1 MiB budget: whole, in order; %llu rendezvous held back\n",
	       (unsigned long long)explain_num(r, "copied, "));

	/* Close the receiving end while a rendezvous receive is in flight. */
	{
		uint64_t rndv0 = explain_num(r, "held in place, ");
		struct wp_ep *acc = sd.acc;
		int n = 0;

		CHECK(wp_ep_send_msg(ep, 7, big[0], sizeof(big[0]), sent_done, &sent) == 0);
		/* Progress the receiver until it posted the receive (counted in
		 * explain), without letting the sender push the data. */
		CHECK(wp_ctx_progress(snd, 0) >= 0);
		for (n = 0; n < 2000 && explain_num(r, "held in place, ") == rndv0; n++)
			CHECK(wp_ctx_progress(r, 1000) >= 0);
		CHECK(explain_num(r, "held in place, ") == rndv0 + 1);
		wp_ep_close(acc);
		for (int i = 0; i < 20; i++) {
			CHECK(wp_ctx_progress(r, 0) >= 0);
			CHECK(wp_ctx_progress(snd, 0) >= 0);
		}
		printf("closed with a rendezvous receive in flight\n");
	}
	wp_ctx_destroy(r); /* UCX finishes or cancels the receive: no write into freed memory */
	drive2(snd, snd, &sent, 9, 10000);
	wp_ctx_destroy(snd);
}

/* Section 1 + 2 against one peer; 4 (peer death) when pid != 0. */
static void against(const char *uri, bool trust, pid_t pid)
{
	const char *expect = getenv("WP_UCX_EXPECT");
	struct wp_ctx *c = ctx_trust(WP_SELECT_REQUIRE, expect ? expect : "", trust);
	struct conn_wait w;
	struct wp_ep *ep = connect_to(c, uri, &w);
	bool rma;
	struct wp_mr *src, *dst;
	struct wp_rkey rk;
	struct cres cr;
	struct xres xr;

	CHECK(w.up);
	printf("explain: %s\n", wp_ctx_explain(c));
	check_lanes(wp_ctx_explain(c));
	/* RMA where trusted; without trust only where every rma lane is
	 * verbs, which the probe says UCX cannot have here. */
	rma = trust;
	if (!trust) {
		const struct wp_probe_result *rd = wp_probe_get("path.ucx.rdma");

		CHECK(rd);
		if (!rd->ok)
			CHECK(strstr(wp_ctx_explain(c), "bulk transfers: frames (UCX has no verbs "
							"transport here") != NULL);
		else
			rma = strstr(wp_ctx_explain(c), "bulk transfers: RMA") != NULL;
	} else {
		CHECK(strstr(wp_ctx_explain(c), "bulk transfers: RMA put/get (ucx_trust_rma") !=
		      NULL);
	}
	call_wait(c, ep, M_RKEY, NULL, 0, &cr);
	CHECK_EQ(cr.len, sizeof(rk));
	memcpy(&rk, cr.data, sizeof(rk));
	CHECK(wp_mr_alloc(c, 24u << 20, &src) == 0);
	CHECK(wp_mr_alloc(c, 24u << 20, &dst) == 0);
	bulk_checks(c, ep, src, dst, &rk, rma);
	printf("explain: %s\n", wp_ctx_explain(c));

	if (trust) {
		/* The peer deregisters with our writes in flight. */
		struct wp_xfer_desc bd = { 0, 0, 8u << 20 };
		struct xres wx[2];
		struct cres dr;
		uint64_t ns;

		for (int i = 0; i < 2; i++) {
			struct wp_xfer_params p = { .op = WP_XFER_WRITE,
						    .local = src,
						    .remote = &rk,
						    .desc = &bd,
						    .ndesc = 1,
						    .on_done = x_done,
						    .arg = &wx[i] };

			memset(&wx[i], 0, sizeof(wx[i]));
			CHECK(wp_xfer_post(ep, &p) == 0);
		}
		call_wait(c, ep, M_DEREG, NULL, 0, &dr);
		memcpy(&ns, dr.data, sizeof(ns));
		drive_until(c, &wx[1].done, 10000);
		drive_until(c, &wx[0].done, 10000);
		for (int i = 0; i < 2; i++) {
			CHECK_EQ(wx[i].status, 0);
			CHECK_EQ(wx[i].st.direct, 1);
		}
		/* The rkey is gone here too: frames, and the peer refuses. */
		xfer(c, ep, WP_XFER_WRITE, src, &rk, &bd, 1, &xr);
		CHECK_EQ(xr.status, EACCES);
		CHECK(xr.st.frames > 0);
		printf("RMA: the peer deregistered with 16 MiB of writes in flight: it waited "
		       "%.2f ms for our acknowledgement, the writes succeeded, the old rkey is "
		       "refused\n",
		       ns / 1e6);
		call_wait(c, ep, M_RKEY, NULL, 0, &cr); /* the fresh region */
		memcpy(&rk, cr.data, sizeof(rk));
	}

	/* 4 (forked peer only): it dies with RMA and calls in flight. */
	if (pid && rma) {
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
								 .arg = &big[0] }) == -ENOTCONN);
	} else if (pid) {
		kill_child(pid);
	}
	wp_mr_deregister(src);
	wp_mr_deregister(dst);
	wp_ctx_destroy(c);
}

static pid_t fork_peer(int trust, char *uri, size_t len)
{
	int pfd[2], port;
	pid_t pid;

	CHECK(pipe(pfd) == 0);
	pid = fork_child();
	if (pid == 0)
		peer_run(pfd[1], trust, NULL);
	CHECK(pipe_read_int(pfd[0], 10000, &port) == 0);
	snprintf(uri, len, "ucx://127.0.0.1:%d", port);
	close(pfd[0]);
	close(pfd[1]);
	return pid;
}

int main(int argc, char **argv)
{
	const struct wp_probe_result *pr, *rdma;
	char uri[128], turi[128];
	const char *peer = getenv("WP_UCX_PEER");
	pid_t pid = 0, tpid = 0;

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
		int pfd[2];

		CHECK(pipe(pfd) == 0);
		if (getenv("WP_UCX_LISTEN_TRUST") && fork_child() == 0)
			peer_run(pfd[1], 1, getenv("WP_UCX_LISTEN_TRUST"));
		peer_run(pfd[1], 0, getenv("WP_UCX_LISTEN"));
	}
	if (!peer) {
		pid = fork_peer(0, uri, sizeof(uri));
		tpid = fork_peer(1, turi, sizeof(turi));
	} else {
		snprintf(uri, sizeof(uri), "ucx://%s", peer);
		CHECK(getenv("WP_UCX_PEER_TRUST") != NULL);
		snprintf(turi, sizeof(turi), "ucx://%s", getenv("WP_UCX_PEER_TRUST"));
	}

	/* 1 + 2: lanes; bulk transfers as frames (default), then as RMA with
	 * the peer's rkey (ucx_trust_rma on both sides); 4: peer death. */
	against(uri, false, pid);
	against(turi, true, tpid);

	/* 3: ucx_need held against what UCX chose (an in-process server). */
	{
		static struct srv s = { .path = "ucx" };
		struct conn_wait w;
		struct wp_ctx *c;
		char suri[64];

		srv_start(&s, NULL);
		snprintf(suri, sizeof(suri), "ucx://127.0.0.1:%d", s.port);
		if (!rdma || !rdma->ok) {
			struct wp_ctx *sc;
			struct wp_ep *l, *ep;

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

			/* The acceptor requires rdma: it refuses the connection. */
			sc = ctx_need(WP_SELECT_REQUIRE, "rdma");
			CHECK(wp_listen(sc, "ucx://127.0.0.1:0", NULL, &l) == 0);
			snprintf(suri, sizeof(suri), "ucx://127.0.0.1:%d", wp_ep_local_port(l));
			c = ctx_need(WP_SELECT_PREFER, "");
			need_line[0] = 0;
			memset(&w, 0, sizeof(w));
			CHECK(wp_connect(c, suri,
					 &(struct wp_ep_cbs){ .event = h_ep_event, .arg = &w },
					 &ep) == 0);
			drive2(c, sc, &w.closed, 1, 10000);
			CHECK(!w.up);
			CHECK_EQ(w.err, -ECONNREFUSED);
			CHECK(!strncmp(need_line, "ERR: ucx: UCX put this connection on ", 37));
			printf("acceptor requires rdma: refused (connector: %s), logged \"%s\"\n",
			       strerror(-w.err), need_line);
			wp_ctx_destroy(c);
			wp_ctx_destroy(sc);
			snprintf(suri, sizeof(suri), "ucx://127.0.0.1:%d", s.port);
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

	/* 5: listeners, the receive budget, close during a rendezvous. */
	if (!peer)
		one_process();
	printf("ok\n");
	return 0;
}
