// SPDX-License-Identifier: MIT
/*
 * Datagram authentication v2 on the xsk path, between two network
 * namespaces (tests/netns/xsk_suite.sh sets WP_TEST_XSK_NS, WP_TEST_XSK_SRV
 * and WP_TEST_XSK_CLI). The server's context has a policy: its XDP program
 * carries the rules (the client's address belongs to tenant acme) and the
 * path takes authenticated sessions only.
 *  1. a keyed client (acme) is served: 2000 echo calls of 1..3000 bytes
 *     (several packets each), checksummed both ways; with confidentiality
 *     too (the server counts an encrypted session);
 *  2. a client without a key is refused at once (-ECONNREFUSED, the server
 *     counts hs_refused); a client with a wrong key never gets past XDP
 *     (its SYN's SipHash tag is wrong: xdp_auth) and its connect times out;
 *     meanwhile a connect to an address nobody holds on the link returns
 *     at once and fails after 3 s with -EHOSTUNREACH (no MAC);
 *  3. a plain UDP socket in the client's namespace sends datagrams to the
 *     port with a forged header tag (xdp_auth), and with another tenant's
 *     id and valid tag from acme's address (xdp_tenant): XDP drops them all
 *     before the redirect, and nothing runs;
 *  4. with WP_XSK_TEST_FAULTS on both sides: every sealed data packet may be
 *     sent twice byte for byte (a replay: drop_replay), have a payload byte
 *     flipped (drop_bad_tag), or be followed by an unsealed RST or FIN
 *     signed with the tenant key (ignored: unauth_ctl); 1000 calls each
 *     complete once, the handler ran exactly 1000 times, no session ended;
 *  5. after 200 (300 with the faults) one-way messages of 1..3000 bytes, the
 *     client closes at once: the server reads them all, in order and whole,
 *     then sees an orderly close (0), while the client's context delivers
 *     the tail and a FIN retransmitted until acknowledged;
 *  7. a raw peer that starts a 5000-byte message and then only pings: the
 *     server holds the bytes on its receive budget until frame_timeout_ms,
 *     then fails the session and gives them back;
 *  6. (WP_TEST_XSK_BADQ: an address on a veth with 9 rx queues) a set-up
 *     failing after the program is attached leaves nothing behind;
 *  8. a server listening without a policy, then given one: its plain session
 *     ends at once (-EACCES), a keyed one is served, and the XDP program
 *     has the rules (a forged tag is dropped there: xdp_auth).
 *  (Replays of the handshake, half-open sessions, malformed packets and a
 *  blocked receiver: test_xsk_hostile.c; the shared pieces: xsk_peer.h.)
 * wp-test-paths: xsk
 */
#include "xsk_peer.h"

static const uint8_t kb[16] = { 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
				0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };

/* ---- calls ---------------------------------------------------------------- */

struct call {
	int done, status;
	uint32_t n;
	uint64_t sum, got_sum;
	uint32_t got;
	uint8_t req[8 + 3000];
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

static void start(struct wp_ep *ep, struct call *c)
{
	struct wp_call_params p = { .method = M_ECHO,
				    .req = c->req,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = c };

	c->n = 1 + (uint32_t)(rnd() % 3000);
	c->done = 0;
	c->got = 0;
	c->got_sum = FNV_INIT;
	for (uint32_t i = 0; i < c->n; i++)
		c->req[8 + i] = (uint8_t)rnd();
	c->sum = fnv1a(c->req + 8, c->n, FNV_INIT);
	memcpy(c->req, &c->sum, 8);
	p.req_len = 8 + c->n;
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
}

/* n checksummed calls on ep, `inflight` at once. */
static void run_calls(struct wp_ctx *cx, struct wp_ep *ep, uint32_t n, int inflight)
{
	struct call *cs = calloc((size_t)inflight, sizeof(*cs));
	uint32_t started = 0, finished = 0;
	uint64_t last = wp_now_ns();

	CHECK(cs != NULL);
	for (int i = 0; i < inflight && started < n; i++, started++)
		start(ep, &cs[i]);
	while (finished < n) {
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
		if (wp_now_ns() - last > 3000000000ull) {
			fprintf(stderr, "client: %s\n", wp_ctx_explain(cx));
			fprintf(stderr, "server: %s\n", server_explain(cx));
			CHECK(!"no call finished for 3 s");
		}
		for (int i = 0; i < inflight; i++) {
			if (!cs[i].done || !cs[i].n)
				continue;
			if (cs[i].status)
				fprintf(stderr, "call failed: %d\n", cs[i].status);
			CHECK_EQ(cs[i].status, 0);
			CHECK_EQ(cs[i].got, cs[i].n);
			CHECK(cs[i].got_sum == cs[i].sum);
			finished++;
			last = wp_now_ns();
			cs[i].n = 0;
			if (started < n) {
				start(ep, &cs[i]);
				started++;
			}
		}
	}
	free(cs);
}

/* Connect with a key (key NULL: none). */
static struct wp_ep *dial_start(struct wp_ctx *cx, int port, struct conn_wait *w, uint32_t tenant,
				const uint8_t *key)
{
	return dial_flags(cx, port, w, tenant, key, 0);
}

/* ---- 3. raw datagrams from a plain UDP socket ------------------------------ */

static void raw_send(int fd, const struct sockaddr_in *to, uint32_t tenant, const uint8_t *key,
		     bool forge)
{
	uint8_t b[40 + 24 + 64];
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = WP_FT_REQ,
				  .tenant = tenant,
				  .method = M_ECHO,
				  .req_id = rnd() | 1,
				  .len = sizeof(b) - 40 };

	for (size_t i = 40; i < sizeof(b); i++)
		b[i] = (uint8_t)rnd();
	wp_frame_encode(&h, b);
	wp_frame_sign(key, b);
	if (forge)
		b[33] ^= 0x40; /* one bit of the tag */
	CHECK(sendto(fd, b, sizeof(b), 0, (const struct sockaddr *)to, sizeof(*to)) ==
	      (ssize_t)sizeof(b));
}

/* A SYN without the hello, with acme's valid header tag: past XDP, the
 * path refuses it (hs_refused) and answers with a reset. */
static void raw_syn(int fd, const struct sockaddr_in *to)
{
	uint8_t b[40 + 24] = { 0 };
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = 1,
				  .tenant = 1,
				  .method = 1 /* SYN */,
				  .len = 24 };
	uint64_t sid = rnd() | 1;

	wp_frame_encode(&h, b);
	b[5] = 0xc5; /* the path's control type */
	memcpy(b + 40, &sid, 8);
	wp_frame_sign(ka, b);
	CHECK(sendto(fd, b, sizeof(b), 0, (const struct sockaddr *)to, sizeof(*to)) ==
	      (ssize_t)sizeof(b));
}

/* ---- 5. an orderly close after all data ------------------------------------ */

/* n messages, then close at once (most still unacknowledged): the peer
 * reads all n, then an orderly close; the client's context keeps running
 * the closed session until its FIN is acked. */
static void close_after(struct wp_ctx *cx, struct wp_ep *ep, uint32_t n)
{
	static uint8_t b[12 + 3000];
	int ok0 = atomic_load(&closed_ok);
	uint64_t t0;

	atomic_store(&msgs_ok, 0);
	atomic_store(&msgs_bad, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t len = 1 + (uint32_t)(rnd() % 3000);
		uint64_t sum;

		for (uint32_t j = 0; j < len; j++)
			b[12 + j] = (uint8_t)rnd();
		sum = fnv1a(b + 12, len, FNV_INIT);
		memcpy(b, &i, 4);
		memcpy(b + 4, &sum, 8);
		CHECK_EQ(wp_ep_send_msg(ep, 7, b, 12 + len, NULL, NULL), 0);
	}
	wp_ep_close(ep);
	t0 = wp_now_ns();
	while (atomic_load(&closed_ok) == ok0 && !atomic_load(&closed_err)) {
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
		CHECK(wp_now_ns() - t0 < 5000000000ull);
	}
	CHECK_EQ(atomic_load(&closed_err), 0);
	CHECK_EQ(atomic_load(&msgs_bad), 0);
	CHECK_EQ(atomic_load(&msgs_ok), (int)n);
	printf("orderly close: %u messages, then 0, in %.2f s\n", n,
	       (double)(wp_now_ns() - t0) / 1e9);
}

/* ---- 7. a message never completed ------------------------------------------ */

/* A peer (a plain UDP socket speaking the path's protocol to a server
 * without a policy) starts a message of 5000 bytes, sends its first packet
 * and then only pings: the server's reassembly holds 5000 bytes of its
 * receive budget until frame_timeout_ms (300 ms here), then fails the
 * session (-ETIMEDOUT) and gives them back. */
static void phase_stall(void)
{
	static struct srv s;
	struct sockaddr_in to;
	struct wp_ctx *cx = client_ctx("xsk");
	uint64_t sid = rnd() | 1, t0;
	int fd, held = 0;

	memset(&s, 0, sizeof(s));
	atomic_store(&closed_err, 0);
	s.path = "xsk";
	s.tick = srv_tick;
	s.frame_timeout_ms = 300;
	srv_start(&s, &srv_cbs);
	fd = raw_open(s.port, &to);
	raw_pkt(fd, &to, sid, 1 /* SYN */, 0, 0, 0);
	drive_ms(cx, 50);
	raw_pkt(fd, &to, sid, 0, 1, 5000, 1000);
	t0 = wp_now_ns();
	while (!atomic_load(&closed_err)) {
		CHECK(wp_ctx_progress(cx, 50000) >= 0);
		raw_pkt(fd, &to, sid, 6 /* PING */, 0, 0, 0);
		if (!held && stat_of(server_explain(cx), "rx_budget_claimed=") == 5000)
			held = 1;
		CHECK(wp_now_ns() - t0 < 2500000000ull); /* before the 3 s liveness */
	}
	CHECK(held);
	CHECK_EQ(atomic_load(&closed_err), -ETIMEDOUT);
	CHECK(wp_now_ns() - t0 < 900000000ull); /* at frame_timeout_ms, not liveness */
	CHECK_EQ(stat_of(server_explain(cx), "rx_budget_claimed="), 0);
	printf("never completed: 5000 bytes held, session failed after %.2f s, budget back\n",
	       (double)(wp_now_ns() - t0) / 1e9);
	close(fd);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

/* ---- 8. a policy set while the program runs ------------------------------ */

static atomic_int want_policy, policy_ret = 1;

static void srv_tick_policy(struct srv *s)
{
	srv_tick(s);
	if (atomic_exchange(&want_policy, 0))
		atomic_store(&policy_ret, wp_ctx_set_policy(s->ctx, pol));
}

static void phase_late_policy(void)
{
	static struct srv s;
	struct sockaddr_in to;
	struct conn_wait w, w2;
	struct wp_ctx *cx;
	struct wp_ep *ep, *e2;
	long long auth0;
	const char *ex;
	uint64_t t0;
	int fd;

	memset(&s, 0, sizeof(s));
	s.path = "xsk";
	s.setup = srv_setup_plain;
	s.tick = srv_tick_policy;
	srv_start(&s, &srv_cbs);
	cx = client_ctx("xsk");
	ep = dial(cx, s.port, &w, 0, NULL, 0); /* no policy yet: a plain session */
	CHECK(w.up);
	run_calls(cx, ep, 50, 4);
	atomic_store(&closed_err, 0);
	atomic_store(&want_policy, 1);
	t0 = wp_now_ns();
	while (!w.closed) { /* the server ends it at once, not at a timeout */
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
		CHECK(wp_now_ns() - t0 < 1000000000ull);
	}
	CHECK_EQ(atomic_load(&policy_ret), 0);
	CHECK(w.err != 0);
	CHECK_EQ(atomic_load(&closed_err), -EACCES);
	printf("late policy: the plain session ended in %.1f ms (client %s)\n",
	       (double)(wp_now_ns() - t0) / 1e6, strerror(-w.err));
	wp_ep_close(ep);
	/* a keyed session is served, and XDP now has the rules: a forged tag
	 * dies there (before, the open program redirected every datagram) */
	e2 = dial(cx, s.port, &w2, 1, ka, 0);
	CHECK(w2.up);
	run_calls(cx, e2, 100, 4);
	auth0 = stat_of(server_explain(cx), "xdp_auth=");
	fd = raw_open(s.port, &to);
	for (int i = 0; i < 20; i++)
		raw_send(fd, &to, 1, ka, true);
	t0 = wp_now_ns();
	while (wp_now_ns() - t0 < 100000000ull)
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
	close(fd);
	ex = server_explain(cx);
	CHECK_EQ(stat_of(ex, "xdp_auth=") - auth0, 20);
	run_calls(cx, e2, 20, 4);
	wp_ep_close(e2);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

/* ---- phases --------------------------------------------------------------- */

static void phase_main(void)
{
	static struct srv s;
	struct conn_wait w;
	struct wp_ctx *cx;
	struct wp_ep *ep;
	const char *ex;
	struct sockaddr_in to;
	long long auth0, ten0, hs0;
	int before, fd;
	uint64_t t0;

	memset(&s, 0, sizeof(s));
	s.path = "xsk";
	s.setup = srv_setup;
	s.tick = srv_tick;
	srv_start(&s, &srv_cbs);
	cx = client_ctx("xsk");

	/* 1. keyed, integrity; then keyed with confidentiality */
	ep = dial(cx, s.port, &w, 1, ka, 0);
	CHECK(w.up);
	t0 = wp_now_ns();
	run_calls(cx, ep, 2000, 16);
	printf("keyed: 2000 calls of 1..3000 B in %.2f s\n", (double)(wp_now_ns() - t0) / 1e9);
	CHECK_EQ(atomic_load(&served), 2000);
	{
		struct conn_wait w2;
		struct wp_ep *e2 = dial(cx, s.port, &w2, 1, ka, WP_TENANT_KEY_CONFIDENTIAL);

		CHECK(w2.up);
		run_calls(cx, e2, 200, 8);
		ex = server_explain(cx);
		CHECK(stat_of(ex, "keyed=") >= 2);
		CHECK(stat_of(ex, "confidential=") >= 1);
		wp_ep_close(e2);
	}
	CHECK_EQ(atomic_load(&served), 2200);
	/* every reassembly's claim on the receive budget went back */
	CHECK_EQ(stat_of(server_explain(cx), "rx_budget_claimed="), 0);

	/* 2. no key, a wrong key: their SYNs die in XDP (tenant 0 is not the
	 * source's tenant; the tag is not acme's), both connects time out
	 * (together: the liveness limit is 3 s) */
	{
		struct conn_wait w2, w3, w4;
		struct wp_ep *e2, *e3, *e4;
		char nohost[64];
		long long ten0;

		snprintf(nohost, sizeof(nohost), "xsk://%s:%d", getenv("WP_TEST_XSK_NOHOST"),
			 s.port);
		ex = server_explain(cx);
		auth0 = stat_of(ex, "xdp_auth=");
		ten0 = stat_of(ex, "xdp_tenant=");
		memset(&w2, 0, sizeof(w2));
		memset(&w3, 0, sizeof(w3));
		memset(&w4, 0, sizeof(w4));
		e2 = dial_start(cx, s.port, &w2, 0, NULL);
		e3 = dial_start(cx, s.port, &w3, 1, kb);
		/* meanwhile: no host at this address on the link. wp_connect
		 * does not wait for ARP; the SYN does, within the connect's
		 * 3 s, then -EHOSTUNREACH */
		t0 = wp_now_ns();
		CHECK(wp_connect(cx, nohost, &(struct wp_ep_cbs){ .event = h_ep_event, .arg = &w4 },
				 &e4) == 0);
		CHECK(wp_now_ns() - t0 < 50000000ull);
		while (!w2.closed || !w3.closed || !w4.closed)
			CHECK(wp_ctx_progress(cx, 10000) >= 0);
		CHECK(!w2.up && !w3.up && !w4.up);
		CHECK_EQ(w2.err, -ETIMEDOUT);
		CHECK_EQ(w3.err, -ETIMEDOUT);
		CHECK_EQ(w4.err, -EHOSTUNREACH);
		wp_ep_close(e2);
		wp_ep_close(e3);
		wp_ep_close(e4);
		ex = server_explain(cx);
		CHECK(stat_of(ex, "xdp_auth=") > auth0);
		CHECK(stat_of(ex, "xdp_tenant=") > ten0);
		CHECK_EQ(stat_of(ex, "keyed="), 1);
		printf("refused in XDP: no key (%lld SYNs), a wrong key (%lld SYNs)\n",
		       stat_of(ex, "xdp_tenant=") - ten0, stat_of(ex, "xdp_auth=") - auth0);
	}

	/* 3. raw datagrams to the port: forged tags, another tenant's frames */
	ex = server_explain(cx);
	auth0 = stat_of(ex, "xdp_auth=");
	ten0 = stat_of(ex, "xdp_tenant=");
	before = atomic_load(&served);
	fd = raw_open(s.port, &to);
	for (int i = 0; i < 50; i++) {
		raw_send(fd, &to, 1, ka, true);  /* acme's header, tag forged */
		raw_send(fd, &to, 2, kb, false); /* beta's, valid, from acme's address */
	}
	hs0 = stat_of(ex, "hs_refused=");
	raw_syn(fd, &to);
	t0 = wp_now_ns();
	while (wp_now_ns() - t0 < 100000000ull)
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
	close(fd);
	ex = server_explain(cx);
	CHECK_EQ(stat_of(ex, "xdp_auth=") - auth0, 50);
	CHECK_EQ(stat_of(ex, "xdp_tenant=") - ten0, 50);
	CHECK_EQ(stat_of(ex, "hs_refused=") - hs0, 1);
	CHECK_EQ(atomic_load(&served), before);
	/* the session still works */
	run_calls(cx, ep, 100, 4);
	printf("server: %s\n", server_explain(cx));
	close_after(cx, ep, 200);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

static void phase_faults(void)
{
	static struct srv s;
	struct conn_wait w;
	struct wp_ctx *cx;
	struct wp_ep *ep;
	const char *ex;
	char cli[4096];
	uint64_t t0;

	memset(&s, 0, sizeof(s));
	atomic_store(&served, 0);
	setenv("WP_XSK_TEST_FAULTS", "dup=5,corrupt=5,plainctl=5,drop=2,reorder=2,seed=11", 1);
	s.path = "xsk";
	s.setup = srv_setup;
	s.tick = srv_tick;
	srv_start(&s, &srv_cbs);
	cx = client_ctx("xsk");
	ep = dial(cx, s.port, &w, 1, ka, 0);
	unsetenv("WP_XSK_TEST_FAULTS"); /* read when the path starts */
	CHECK(w.up);
	t0 = wp_now_ns();
	run_calls(cx, ep, 1000, 8);
	printf("faults: 1000 calls in %.2f s\n", (double)(wp_now_ns() - t0) / 1e9);
	CHECK(!w.closed);
	CHECK_EQ(atomic_load(&served), 1000); /* each request ran exactly once */
	CHECK_EQ(stat_of(server_explain(cx), "rx_budget_claimed="), 0);
	ex = server_explain(cx);
	snprintf(cli, sizeof(cli), "%s", wp_ctx_explain(cx));
	printf("client: %s\nserver: %s\n", cli, ex);
	/* both directions saw replays, broken tags and unsealed control */
	CHECK(stat_of(ex, "drop_replay=") > 0 && stat_of(cli, "drop_replay=") > 0);
	CHECK(stat_of(ex, "drop_bad_tag=") > 0 && stat_of(cli, "drop_bad_tag=") > 0);
	CHECK(stat_of(ex, "unauth_ctl=") > 0 && stat_of(cli, "unauth_ctl=") > 0);
	close_after(cx, ep, 300); /* loss, replays, broken tags: the FIN too */
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

/* 6. A set-up that fails half-way (an interface with more rx queues than
 * the path binds: refused after the program and the UMEM exist) leaves
 * nothing behind: the same listen again fails the same way, not EBUSY on a
 * program still attached to the interface. */
static void setup_failure(const char *addr)
{
	struct wp_ctx_opts o;
	struct wp_ctx *c;
	struct wp_ep *l;
	char uri[64];
	int ns, r1, r2;

	h_opts(&o, "badq");
	CHECK(wp_ctx_create(&o, &c) == 0);
	snprintf(uri, sizeof(uri), "xsk://%s:0", addr);
	ns = h_ns_enter("xsk");
	r1 = wp_listen(c, uri, NULL, &l);
	r2 = wp_listen(c, uri, NULL, &l);
	h_ns_leave(ns);
	CHECK_EQ(r1, -EOPNOTSUPP);
	CHECK_EQ(r2, -EOPNOTSUPP);
	wp_ctx_destroy(c);
	printf("set-up failure: refused twice the same way (%s), nothing left attached\n",
	       strerror(-r2));
}

int main(int argc, char **argv)
{
	test_watchdog(60);
	xsk_peer_policy(argc, argv);
	if (getenv("WP_TEST_XSK_BADQ"))
		setup_failure(getenv("WP_TEST_XSK_BADQ"));
	phase_main();
	phase_faults();
	phase_stall();
	phase_late_policy();
	wp_policy_free(pol);
	printf("ok\n");
	return 0;
}
