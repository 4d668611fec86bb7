// SPDX-License-Identifier: MIT
/*
 * The xsk path against hostile and stuck peers, between two network
 * namespaces (tests/netns/xsk_suite.sh; the shared pieces: xsk_peer.h):
 *  1. acme's key in a raw peer: a valid keyed SYN opens a half-open session;
 *     the same SYN replayed under another session id is refused
 *     (hs_unbound: the tag binds it), with another nonce under its own id
 *     ignored; 100 more valid SYNs leave 64 half-open (the tenant's cap;
 *     the oldest evicted) and, 3 s later, none (expired unproved); 600
 *     signed packets for sessions nobody knows draw at most the reply
 *     bucket's resets (reply_limited); then that SYN with another nonce,
 *     its id unknown again, is refused (the tag binds the hello too);
 *  2. a raw peer (no policy) opens sessions and sends one malformed data
 *     packet on each: a bundle record of another tenant, a record cut
 *     short, a fragment past its message, an offset that wraps 32 bits;
 *     each session ends at once with -EPROTO, counted in bad_frames;
 *  3. a receiver that cannot take data for longer than the liveness limit:
 *     a raw peer holds 50000 of the server's 64 KiB receive budget for 4 s
 *     (an unfinished message, until frame_timeout_ms), so a client's
 *     20000-byte calls are not taken; the server's ACKs say it is blocked
 *     and the client keeps the session: all 8 calls complete once the
 *     budget is back, after more than 3 s.
 * wp-test-paths: xsk
 */
#include "xsk_peer.h"

/* ---- 1. replays, half-open sessions, the reply bucket ---------------------- */

/* A keyed SYN as the path makes it (tx.c): acme's hello (flags 0, nonce),
 * the tag over a header that binds the session id and the hello. *len: its
 * length. */
static void keyed_syn(uint8_t *b, size_t *len, uint64_t sid, const uint8_t *nonce)
{
	uint8_t hs[XSK_HS_SYN] = { 0 };
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = 1,
				  .tenant = 1,
				  .method = XSK_SYN,
				  .req_id = sid,
				  .len = XSK_PREFIX + XSK_HS_SYN };

	memcpy(hs + 4, nonce, WP_AUTH_NONCE);
	h.aux = xsk_hs_digest(ka, hs, sizeof(hs));
	memset(b, 0, WP_FRAME_HDR + XSK_PREFIX);
	wp_frame_encode(&h, b);
	b[5] = XSK_T_CTL;
	memcpy(b + WP_FRAME_HDR, &sid, 8);
	memcpy(b + WP_FRAME_HDR + XSK_PREFIX, hs, sizeof(hs));
	wp_frame_sign(ka, b);
	*len = WP_FRAME_HDR + XSK_PREFIX + XSK_HS_SYN;
}

static void send_raw(int fd, const struct sockaddr_in *to, const uint8_t *b, size_t n)
{
	CHECK(sendto(fd, b, n, 0, (const struct sockaddr *)to, sizeof(*to)) == (ssize_t)n);
}

/* Drive the client context until the server's explain shows key >= want
 * (at most 2 s). */
static long long wait_stat(struct wp_ctx *cx, const char *key, long long want)
{
	uint64_t t0 = wp_now_ns();
	long long v;

	while ((v = stat_of(server_explain(cx), key)) < want && wp_now_ns() - t0 < 2000000000ull)
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
	return v;
}

static void phase_half_open(void)
{
	static struct srv s;
	struct sockaddr_in to;
	struct wp_ctx *cx = client_ctx("xsk");
	uint8_t b[WP_FRAME_HDR + XSK_PREFIX + XSK_HS_SYN], nonce[WP_AUTH_NONCE];
	uint64_t sid = rnd() | 1, other = rnd() | 1, t0;
	long long resets0, resets, limited, unauth0;
	const char *ex;
	size_t n;
	int fd;

	memset(&s, 0, sizeof(s));
	s.path = "xsk";
	s.setup = srv_setup;
	s.tick = srv_tick;
	srv_start(&s, &srv_cbs);
	fd = raw_open(s.port, &to);
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)rnd();

	/* a valid SYN: one half-open session */
	keyed_syn(b, &n, sid, nonce);
	send_raw(fd, &to, b, n);
	CHECK_EQ(wait_stat(cx, "half_open=", 1), 1);
	/* replayed under another id (the prefix): refused; with another
	 * nonce under its own id: not the session's hello, ignored */
	ex = server_explain(cx);
	unauth0 = stat_of(ex, "unauth_ctl=");
	memcpy(b + WP_FRAME_HDR, &other, 8);
	send_raw(fd, &to, b, n);
	CHECK_EQ(wait_stat(cx, "hs_unbound=", 1), 1);
	keyed_syn(b, &n, sid, nonce);
	b[WP_FRAME_HDR + XSK_PREFIX + 4] ^= 1;
	send_raw(fd, &to, b, n);
	CHECK_EQ(wait_stat(cx, "unauth_ctl=", unauth0 + 1), unauth0 + 1);
	ex = server_explain(cx);
	CHECK_EQ(stat_of(ex, "half_open="), 1);
	/* a key holder's flood: 100 more, the tenant's cap holds */
	for (int i = 0; i < 100; i++) {
		keyed_syn(b, &n, rnd() | 1, nonce);
		send_raw(fd, &to, b, n);
	}
	CHECK(wait_stat(cx, "hs_evicted=", 101 - XSK_HALF_OPEN_TENANT) >=
	      101 - XSK_HALF_OPEN_TENANT);
	ex = server_explain(cx);
	CHECK_EQ(stat_of(ex, "half_open="), XSK_HALF_OPEN_TENANT);
	printf("half-open: 101 valid SYNs, %lld held, %lld evicted, %lld unbound replays refused\n",
	       stat_of(ex, "half_open="), stat_of(ex, "hs_evicted="), stat_of(ex, "hs_unbound="));
	/* the reply bucket: signed pings for sessions nobody knows */
	resets0 = stat_of(ex, "resets=");
	t0 = wp_now_ns();
	for (int i = 0; i < 600; i++) {
		uint8_t p[WP_FRAME_HDR + XSK_PREFIX] = { 0 };
		struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
					  .version = WP_FRAME_VERSION,
					  .type = 1,
					  .tenant = 1,
					  .method = XSK_PING,
					  .len = XSK_PREFIX };
		uint64_t id = rnd() | 1;

		wp_frame_encode(&h, p);
		p[5] = XSK_T_CTL;
		memcpy(p + WP_FRAME_HDR, &id, 8);
		wp_frame_sign(ka, p);
		send_raw(fd, &to, p, sizeof(p));
	}
	limited = wait_stat(cx, "reply_limited=", 1);
	ex = server_explain(cx);
	resets = stat_of(ex, "resets=") - resets0;
	printf("reply bucket: 600 packets of unknown sessions in %.1f ms: %lld resets, %lld not "
	       "answered\n",
	       (double)(wp_now_ns() - t0) / 1e6, resets, stat_of(ex, "reply_limited="));
	CHECK(limited > 0);
	CHECK(resets <= XSK_REPLY_BURST + (long long)((wp_now_ns() - t0) / 1000000) + 1);
	/* none proves the key: 3 s after their SYNs they are gone */
	t0 = wp_now_ns();
	while (stat_of(server_explain(cx), "half_open=") > 0) {
		CHECK(wp_ctx_progress(cx, 50000) >= 0);
		CHECK(wp_now_ns() - t0 < 5000000000ull);
	}
	ex = server_explain(cx);
	CHECK(stat_of(ex, "hs_expired=") >= XSK_HALF_OPEN_TENANT);
	printf("half-open: all expired after %.2f s (hs_expired=%lld)\n",
	       (double)(wp_now_ns() - t0) / 1e9, stat_of(ex, "hs_expired="));
	/* the id is unknown again: that SYN with another nonce is refused
	 * (the tag binds the hello's digest too) */
	keyed_syn(b, &n, sid, nonce);
	b[WP_FRAME_HDR + XSK_PREFIX + 4] ^= 1;
	send_raw(fd, &to, b, n);
	CHECK_EQ(wait_stat(cx, "hs_unbound=", 2), 2);
	CHECK_EQ(stat_of(server_explain(cx), "half_open="), 0);
	close(fd);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

/* ---- 2. malformed data packets end the session -------------------------- */

/* A data packet (a MSG frame of tenant 0) carrying frag (n bytes) as the
 * fragment at off of an mlen-byte message. */
static void raw_data(int fd, const struct sockaddr_in *to, uint64_t sid, uint32_t mlen,
		     uint32_t off, const uint8_t *frag, uint32_t n)
{
	uint8_t b[WP_FRAME_HDR + XSK_PREFIX + 1200];
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = WP_FT_MSG,
				  .method = 7,
				  .len = XSK_PREFIX + n };
	uint32_t seq = 1, ack = 1;

	CHECK(n <= 1200);
	wp_frame_encode(&h, b);
	memcpy(b + WP_FRAME_HDR, &sid, 8);
	memcpy(b + WP_FRAME_HDR + 8, &seq, 4);
	memcpy(b + WP_FRAME_HDR + 12, &ack, 4);
	memcpy(b + WP_FRAME_HDR + 16, &mlen, 4);
	memcpy(b + WP_FRAME_HDR + 20, &off, 4);
	memcpy(b + WP_FRAME_HDR + XSK_PREFIX, frag, n);
	send_raw(fd, to, b, WP_FRAME_HDR + XSK_PREFIX + n);
}

static void phase_bad_packets(void)
{
	static struct srv s;
	struct sockaddr_in to;
	struct wp_ctx *cx = client_ctx("xsk");
	struct wp_meter_snap m0, m1, d;
	uint8_t frag[300] = { 0 };
	struct wp_frame_hdr rh = { .magic = WP_FRAME_MAGIC,
				   .version = WP_FRAME_VERSION,
				   .type = WP_FT_MSG,
				   .method = 7,
				   .len = 40 };
	static const char *what[] = { "a bundle record of another tenant", "a record cut short",
				      "a fragment past its message", "an offset that wraps" };
	int fd;

	memset(&s, 0, sizeof(s));
	s.path = "xsk";
	s.tick = srv_tick;
	srv_start(&s, &srv_cbs);
	fd = raw_open(s.port, &to);
	wp_meter_snapshot(&m0);
	for (int c = 0; c < 4; c++) {
		uint64_t sid = rnd() | 1, t0;

		atomic_store(&closed_err, 0);
		raw_pkt(fd, &to, sid, 1 /* SYN */, 0, 0, 0);
		drive_ms(cx, 50);
		switch (c) {
		case 0: /* 10 B, then a record of tenant 5 */
			rh.tenant = 5;
			wp_frame_encode(&rh, frag + 10);
			raw_data(fd, &to, sid, 10, 0, frag, 10 + WP_FRAME_HDR + 40);
			break;
		case 1: /* 10 B, then a record whose 40 B are 39 */
			rh.tenant = 0;
			wp_frame_encode(&rh, frag + 10);
			raw_data(fd, &to, sid, 10, 0, frag, 10 + WP_FRAME_HDR + 39);
			break;
		case 2: /* 100 B at 0 of a 5000-byte message would be a first
			 * fragment; at 4950 it runs 50 B past the end */
			raw_data(fd, &to, sid, 5000, 4950, frag, 100);
			break;
		default: /* 0xffffff00 + 256 wraps to 0 */
			raw_data(fd, &to, sid, 5000, 0xffffff00u, frag, 256);
			break;
		}
		t0 = wp_now_ns();
		while (!atomic_load(&closed_err)) {
			CHECK(wp_ctx_progress(cx, 10000) >= 0);
			CHECK(wp_now_ns() - t0 < 1000000000ull); /* at once, not at a timeout */
		}
		CHECK_EQ(atomic_load(&closed_err), -EPROTO);
		printf("malformed: %s: the session ended with -EPROTO in %.1f ms\n", what[c],
		       (double)(wp_now_ns() - t0) / 1e6);
	}
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &d);
	CHECK(d.bad_frames[WP_BAD_AUTH] >= 1);
	CHECK(d.bad_frames[WP_BAD_TRUNCATED] >= 3);
	close(fd);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}

/* ---- 3. a receiver blocked longer than the liveness limit ----------------- */

static atomic_int big_done, big_ok;

static void big_on_done(void *arg, int status)
{
	atomic_fetch_add(&big_done, 1);
	if (status == 0)
		atomic_fetch_add(&big_ok, 1);
}

static void phase_blocked(void)
{
	static struct srv s;
	static uint8_t req[20000];
	struct sockaddr_in to;
	struct wp_ctx *cx = client_ctx("xsk");
	struct conn_wait w;
	struct wp_ep *ep;
	uint64_t sid = rnd() | 1, t0, sum, ping_at = 0;
	int fd;

	memset(&s, 0, sizeof(s));
	s.path = "xsk";
	s.setup = srv_setup_plain;
	s.tick = srv_tick;
	s.frame_timeout_ms = 4000;
	s.max_frame = 64 << 10;
	s.rx_budget = 64 << 10;
	srv_start(&s, &srv_cbs);
	fd = raw_open(s.port, &to);
	/* the raw peer claims 50000 bytes and then only pings */
	raw_pkt(fd, &to, sid, 1 /* SYN */, 0, 0, 0);
	drive_ms(cx, 50);
	raw_pkt(fd, &to, sid, 0, 1, 50000, 1000);
	t0 = wp_now_ns();
	while (stat_of(server_explain(cx), "rx_budget_claimed=") != 50000)
		CHECK(wp_now_ns() - t0 < 1000000000ull);
	/* the client's calls: 8 x 20000 bytes, none fits the budget left */
	for (size_t i = 8; i < sizeof(req); i++)
		req[i] = (uint8_t)(i * 7);
	sum = fnv1a(req + 8, sizeof(req) - 8, FNV_INIT);
	memcpy(req, &sum, 8);
	ep = dial(cx, s.port, &w, 0, NULL, 0);
	CHECK(w.up);
	atomic_store(&big_done, 0);
	atomic_store(&big_ok, 0);
	t0 = wp_now_ns();
	for (int i = 0; i < 8; i++) {
		struct wp_call_params p = { .method = M_ECHO,
					    .req = req,
					    .req_len = sizeof(req),
					    .deadline_us = 10000000,
					    .on_done = big_on_done };

		CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	}
	while (atomic_load(&big_done) < 8) {
		CHECK(wp_ctx_progress(cx, 50000) >= 0);
		if (wp_now_ns() - t0 < 3800000000ull && wp_now_ns() - ping_at > 100000000ull) {
			raw_pkt(fd, &to, sid, 6 /* PING */, 0, 0, 0); /* the raw peer lives */
			ping_at = wp_now_ns();
		}
		CHECK(!w.closed);
		CHECK(wp_now_ns() - t0 < 8000000000ull);
	}
	CHECK_EQ(atomic_load(&big_ok), 8);
	printf("blocked receiver: 8 calls of 20000 B waited %.2f s for the budget, all done, "
	       "session kept\n",
	       (double)(wp_now_ns() - t0) / 1e9);
	CHECK(wp_now_ns() - t0 > 3000000000ull); /* past the liveness limit */
	wp_ep_close(ep);
	close(fd);
	wp_ctx_destroy(cx);
	srv_stop(&s);
}


int main(int argc, char **argv)
{
	test_watchdog(60);
	xsk_peer_policy(argc, argv);
	phase_half_open();
	phase_bad_packets();
	phase_blocked();
	wp_policy_free(pol);
	printf("ok\n");
	return 0;
}
