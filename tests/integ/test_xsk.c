// SPDX-License-Identifier: MIT
/*
 * The xsk path's own cases, between two network namespaces
 * (tests/netns/xsk_suite.sh sets WP_TEST_XSK_NS and WP_TEST_XSK_SRV):
 *  1. a peer killed mid-call (SIGKILL: no FIN, its XDP link gone with it):
 *     a call with a deadline fails at its deadline, one without fails when
 *     the session's liveness gives up (-ETIMEDOUT / -ECONNRESET);
 *  2. integrity: 10^5 echo calls of 1..1400 bytes, each payload checksummed
 *     by the server and the reply by the client, 64 in flight;
 *  3. fan-out: 64 endpoints, 8 calls each in flight, a 64 KiB reply every
 *     fourth (split into numbered packets and reassembled);
 *  4. the program's redirect counter equals the packets the path took from
 *     its rings, on both sides (nothing lost between XDP and the socket);
 *  5. loss, reordering and duplication injected on both transmit sides
 *     (WP_XSK_TEST_FAULTS): 3000 calls, each completes exactly once with
 *     the right bytes, and the path reports retransmissions and dropped
 *     duplicates; then 3000 small calls, whose bundles are lost, duplicated
 *     and reordered whole;
 *  6. bundles: 2*10^4 small calls (13..212 bytes), 64 in flight: several
 *     ride in one packet (the client sends fewer packets than calls, and
 *     counts the messages that joined a packet), each checksummed;
 *  7. control packets lost (10 %) and duplicated (5 %) on both sides
 *     (ctldrop, ctldup: SYN, SYNACK, ACK, NAK, PING, PONG), and data lost
 *     too (2 %): the connect succeeds, 2000 calls each complete once and
 *     the handler ran exactly 2000 times; then the client closes and the
 *     server sees an orderly close (0): the FIN, retransmitted until
 *     acknowledged, arrives after every call.
 * wp-test-paths: xsk
 */
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "harness.h"

enum { M_ECHO = 1, M_HOLD = 2 };

static uint8_t big[64 << 10];

static void noop_done(void *arg, int status)
{
}

/* Request: u32 reply length, u64 fnv of the rest, rest. Reply: the rest
 * echoed (or `big` when the length asks for it), after a checksum check. */
static atomic_uint served; /* handler runs */

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint32_t want;
	uint64_t sum;

	atomic_fetch_add(&served, 1);
	CHECK(req->len >= 12);
	memcpy(&want, req->data, 4);
	memcpy(&sum, (const uint8_t *)req->data + 4, 8);
	if (fnv1a((const uint8_t *)req->data + 12, req->len - 12, FNV_INIT) != sum) {
		CHECK(wp_call_error(call, 99, "checksum") == 0);
		return;
	}
	if (want == sizeof(big))
		CHECK(wp_call_reply(call, big, sizeof(big), noop_done, NULL) == 0);
	else
		CHECK(wp_call_reply(call, (const uint8_t *)req->data + 12, req->len - 12, NULL,
				    NULL) == 0);
}

static void h_hold(void *arg, struct wp_call *call, struct wp_msg *req)
{
	/* never answered: the process is killed with the call open */
}

static void srv_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_HOLD, h_hold, NULL) == 0);
}

/* The server's explain line, read on its own thread when asked. */
static atomic_int want_explain, have_explain;
static char srv_explain[2048];

static void srv_tick(struct srv *s)
{
	if (atomic_load(&want_explain) && !atomic_load(&have_explain)) {
		snprintf(srv_explain, sizeof(srv_explain), "%s", wp_ctx_explain(s->ctx));
		atomic_store(&have_explain, 1);
	}
}

/* ---- client side ------------------------------------------------------ */

struct call {
	int done, status;
	uint32_t len;
	uint64_t sum, got_sum;
	uint32_t got;
	uint8_t req[12 + 1400];
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct call *c = arg;

	c->got_sum = fnv1a(m->data, m->len, c->got_sum);
	c->got += m->len;
}

static void on_done(void *arg, int status)
{
	struct call *c = arg;

	CHECK(!c->done); /* exactly once */
	c->done = 1;
	c->status = status;
}

static uint64_t rng_s = 88172645463325252ull;
static uint32_t req_max = 1400; /* request payloads: 1..req_max random bytes */

static uint64_t rnd(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return rng_s;
}

static int start(struct wp_ep *ep, struct call *c, bool want_big, int64_t deadline_us)
{
	uint32_t n = 1 + (uint32_t)(rnd() % req_max), want = want_big ? sizeof(big) : n;
	struct wp_call_params p = { .method = M_ECHO,
				    .req = c->req,
				    .deadline_us = deadline_us,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = c };

	memset(c, 0, 12);
	c->done = 0;
	c->got = 0;
	c->got_sum = FNV_INIT;
	for (uint32_t i = 0; i < n; i++)
		c->req[12 + i] = (uint8_t)rnd();
	c->sum = fnv1a(c->req + 12, n, FNV_INIT);
	c->len = want;
	memcpy(c->req, &want, 4);
	memcpy(c->req + 4, &c->sum, 8);
	p.req_len = 12 + n;
	return wp_rpc_call(ep, &p, NULL);
}

static void check_reply(const struct call *c)
{
	if (c->status != 0)
		fprintf(stderr, "call failed: %d\n", c->status);
	CHECK_EQ(c->status, 0);
	CHECK_EQ(c->got, c->len);
	if (c->len == sizeof(big))
		CHECK(c->got_sum == fnv1a(big, sizeof(big), FNV_INIT));
	else
		CHECK(c->got_sum == c->sum);
}

/* n calls over eps (round robin), `inflight` at once per endpoint. */
static void run_calls(struct wp_ctx *cx, struct wp_ep **eps, int neps, uint32_t n, int inflight,
		      int big_every, int64_t deadline_us)
{
	int slots = neps * inflight;
	struct call *cs = calloc((size_t)slots, sizeof(*cs));
	uint32_t started = 0, finished = 0;

	CHECK(cs != NULL);
	for (int i = 0; i < slots && started < n; i++, started++)
		CHECK(start(eps[i % neps], &cs[i], big_every && started % (uint32_t)big_every == 0,
			    deadline_us) == 0);
	uint64_t last = wp_now_ns();

	while (finished < n) {
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
		if (wp_now_ns() - last > 3000000000ull) {
			for (int i = 0; i < slots; i++)
				if (!cs[i].done && cs[i].len)
					fprintf(stderr, "stuck: slot %d ep %d len %u got %u\n", i,
						i % neps, cs[i].len, cs[i].got);
			fprintf(stderr, "%s\n", wp_ctx_explain(cx));
			CHECK(!"no call finished for 3 s");
		}
		for (int i = 0; i < slots; i++) {
			if (!cs[i].done || cs[i].len == 0)
				continue;
			check_reply(&cs[i]);
			finished++;
			last = wp_now_ns();
			cs[i].len = 0;
			if (started < n) {
				CHECK(start(eps[i % neps], &cs[i],
					    big_every && started % (uint32_t)big_every == 0,
					    deadline_us) == 0);
				started++;
			}
		}
	}
	free(cs);
}

static long long stat_of(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	CHECK(p != NULL);
	return atoll(p + strlen(key));
}

/* ---- 1. a peer killed mid-call ------------------------------------------ */

static void peer_death(const char *path)
{
	int pfd[2], port = 0;
	struct conn_wait w = { 0 };
	struct call a, b;
	struct wp_ctx *cx;
	struct wp_ep *ep;
	pid_t pid;
	uint64_t t0;

	CHECK(pipe(pfd) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) { /* the server, in its namespace, on one thread */
		static struct srv s;

		close(pfd[0]);
		s.path = path;
		s.setup = srv_setup;
		if (srv_open(&s, NULL) < 0)
			_exit(77);
		CHECK(write(pfd[1], &s.port, sizeof(s.port)) == sizeof(s.port));
		for (;;)
			wp_ctx_progress(s.ctx, 100000);
	}
	close(pfd[1]);
	if (read(pfd[0], &port, sizeof(port)) != sizeof(port)) {
		int st;

		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
			SKIP("path xsk unavailable here");
		CHECK(!"the server child died");
	}
	close(pfd[0]);
	cx = client_ctx(path);
	ep = client_connect(cx, path, port, &w, NULL, NULL);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	{
		struct wp_call_params p = { .method = M_HOLD,
					    .req = "x",
					    .req_len = 1,
					    .deadline_us = 1000000,
					    .on_done = on_done,
					    .arg = &a };

		CHECK(wp_rpc_call(ep, &p, NULL) == 0);
		p.deadline_us = 0;
		p.arg = &b;
		CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	}
	/* both requests reach the server (acked) before it dies */
	t0 = wp_now_ns();
	while (wp_now_ns() - t0 < 100000000ull)
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (!a.done)
		CHECK(wp_ctx_progress(cx, 100000) >= 0);
	CHECK_EQ(a.status, -ETIMEDOUT);
	CHECK(wp_now_ns() - t0 < 1500000000ull); /* at its deadline */
	while (!b.done) {
		CHECK(wp_ctx_progress(cx, 100000) >= 0);
		CHECK(wp_now_ns() - t0 < 6000000000ull); /* liveness: 3 s of silence */
	}
	CHECK(b.status == -ETIMEDOUT || b.status == -ECONNRESET);
	printf("peer death: deadline call %d, plain call %d after %.2f s\n", a.status, b.status,
	       (double)(wp_now_ns() - t0) / 1e9);
	wp_ep_close(ep);
	wp_ctx_destroy(cx);
}

/* ---- 2-5 ------------------------------------------------------------------ */

static void phase(const char *path, bool faults)
{
	static struct srv s;
	struct conn_wait w[64];
	struct wp_ep *eps[64];
	struct wp_ctx *cx;
	char cli[2048];
	long long tx0;
	uint64_t t0;

	memset(&s, 0, sizeof(s));
	memset(w, 0, sizeof(w));
	atomic_store(&want_explain, 0);
	atomic_store(&have_explain, 0);
	if (faults)
		setenv("WP_XSK_TEST_FAULTS", "drop=3,dup=3,reorder=3,seed=7", 1);
	s.path = path;
	s.setup = srv_setup;
	s.tick = srv_tick;
	srv_start(&s, NULL);
	cx = client_ctx(path);
	for (int i = 0; i < 64; i++)
		eps[i] = client_connect(cx, path, s.port, &w[i], NULL, NULL);
	unsetenv("WP_XSK_TEST_FAULTS"); /* read when the path starts: at the first connect */

	t0 = wp_now_ns();
	if (!faults) {
		run_calls(cx, eps, 1, 100000, 64, 0, 0);
		printf("integrity: 1e5 calls in %.2f s\n", (double)(wp_now_ns() - t0) / 1e9);
		t0 = wp_now_ns();
		run_calls(cx, eps, 64, 64 * 8 * 4, 8, 4, 0);
		printf("fan-out 64: %d calls (a 64 KiB reply every 4th) in %.2f s\n", 64 * 8 * 4,
		       (double)(wp_now_ns() - t0) / 1e9);
		t0 = wp_now_ns();
		snprintf(cli, sizeof(cli), "%s", wp_ctx_explain(cx));
		tx0 = stat_of(cli, "tx_pkts=");
		req_max = 200;
		run_calls(cx, eps, 1, 20000, 64, 0, 0);
		req_max = 1400;
		snprintf(cli, sizeof(cli), "%s", wp_ctx_explain(cx));
		printf("bundles: 2e4 small calls in %.2f s, %lld packets sent, %lld bundled\n",
		       (double)(wp_now_ns() - t0) / 1e9, stat_of(cli, "tx_pkts=") - tx0,
		       stat_of(cli, "bundled="));
		CHECK(stat_of(cli, "tx_pkts=") - tx0 < 20000);
		CHECK(stat_of(cli, "bundled=") > 0);
	} else {
		run_calls(cx, eps, 64, 3000, 2, 16, 20000000);
		req_max = 200;
		run_calls(cx, eps, 8, 3000, 8, 0, 20000000);
		req_max = 1400;
		printf("faults: 3000 calls, then 3000 small ones, in %.2f s\n",
		       (double)(wp_now_ns() - t0) / 1e9);
	}
	/* quiet: acks settle, then both sides' counters */
	t0 = wp_now_ns();
	while (wp_now_ns() - t0 < 200000000ull)
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
	atomic_store(&want_explain, 1);
	while (!atomic_load(&have_explain))
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
	snprintf(cli, sizeof(cli), "%s", wp_ctx_explain(cx));
	printf("client: %s\nserver: %s\n", cli, srv_explain);
	CHECK(strstr(cli, "copy mode") || strstr(cli, "ZERO COPY"));
	{
		/* the meter says what explain says (both contexts, 2 queues each) */
		struct wp_meter_snap m;

		wp_meter_snapshot(&m);
		CHECK(m.xsk_sockets_zc + m.xsk_sockets_copy >= 4);
		CHECK(strstr(cli, "copy mode") ? m.xsk_sockets_copy >= 2 : m.xsk_sockets_zc >= 2);
		CHECK(strstr(cli, "native XDP") ? m.xdp_native >= 2 : m.xdp_generic >= 2);
	}
	/* every packet the program redirected reached a ring or was counted
	 * by the kernel as dropped there (ring full, no fill frame) */
	CHECK_EQ(stat_of(cli, "redirected="),
		 stat_of(cli, "rx_pkts=") + stat_of(cli, "ring_drops="));
	CHECK_EQ(stat_of(srv_explain, "redirected="),
		 stat_of(srv_explain, "rx_pkts=") + stat_of(srv_explain, "ring_drops="));
	CHECK_EQ(stat_of(cli, "bad="), 0);
	if (faults) {
		CHECK(stat_of(cli, "retrans=") > 0 && stat_of(srv_explain, "retrans=") > 0);
		CHECK(stat_of(cli, "dups=") + stat_of(srv_explain, "dups=") > 0);
		CHECK(stat_of(cli, "faults=") > 0 && stat_of(srv_explain, "faults=") > 0);
	}
	for (int i = 0; i < 64; i++)
		wp_ep_close(eps[i]);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

/* ---- 7. control packets lost and duplicated ------------------------------- */

static atomic_int srv_closed, srv_close_err;

static void srv_ev(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	if (ev != WP_EP_CLOSED)
		return;
	atomic_store(&srv_close_err, err);
	atomic_store(&srv_closed, 1);
}

static void phase_ctl_loss(const char *path)
{
	static struct srv s;
	struct conn_wait w = { 0 };
	struct wp_ctx *cx;
	struct wp_ep *ep;
	char cli[2048];
	unsigned served0;
	uint64_t t0;

	memset(&s, 0, sizeof(s));
	atomic_store(&want_explain, 0);
	atomic_store(&have_explain, 0);
	setenv("WP_XSK_TEST_FAULTS", "ctldrop=10,ctldup=5,drop=2,seed=5", 1);
	s.path = path;
	s.setup = srv_setup;
	s.tick = srv_tick;
	srv_start(&s, &(struct wp_ep_cbs){ .event = srv_ev });
	cx = client_ctx(path);
	ep = client_connect(cx, path, s.port, &w, NULL, NULL);
	unsetenv("WP_XSK_TEST_FAULTS");
	served0 = atomic_load(&served);
	t0 = wp_now_ns();
	run_calls(cx, &ep, 1, 2000, 16, 0, 20000000);
	CHECK_EQ(atomic_load(&served) - served0, 2000); /* each ran once */
	printf("control loss: 2000 calls in %.2f s\n", (double)(wp_now_ns() - t0) / 1e9);
	wp_ep_close(ep);
	t0 = wp_now_ns();
	while (!atomic_load(&srv_closed)) {
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
		CHECK(wp_now_ns() - t0 < 3000000000ull);
	}
	CHECK_EQ(atomic_load(&srv_close_err), 0); /* orderly */
	printf("control loss: the server saw an orderly close after %.1f ms\n",
	       (double)(wp_now_ns() - t0) / 1e6);
	atomic_store(&want_explain, 1);
	while (!atomic_load(&have_explain))
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
	snprintf(cli, sizeof(cli), "%s", wp_ctx_explain(cx));
	printf("client: %s\nserver: %s\n", cli, srv_explain);
	CHECK(stat_of(cli, "faults=") > 0 && stat_of(srv_explain, "faults=") > 0);
	CHECK_EQ(stat_of(cli, "bad="), 0);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

int main(int argc, char **argv)
{
	const char *path;

	test_watchdog(100);
	path = test_path(argc, argv);
	if (strcmp(path, "xsk") || !getenv("WP_TEST_XSK_NS"))
		SKIP("runs from tests/netns/xsk_suite.sh (--path xsk between two namespaces)");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 5);
	peer_death(path); /* first: it forks before any thread exists */
	phase(path, false);
	phase(path, true);
	phase_ctl_loss(path);
	printf("ok\n");
	return 0;
}
