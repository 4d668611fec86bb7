// SPDX-License-Identifier: MIT
/*
 * Frame authentication v2 on stream connections (run once per path; the
 * attacks that need a TCP man in the middle or a raw socket run on the INET
 * paths, tcp and uring). A server whose context has a policy accepts only
 * peers that run the handshake and prove their tenant key, then only frames
 * in records whose tag checks:
 *  - a keyed client is served, with its answers checked the same way; stats
 *    answer the admin tenant only; with confidentiality the request's bytes
 *    never appear on the wire and the echo comes back intact;
 *  - no key (no_handshake), a wrong key on the client or on the server
 *    (handshake), an unknown tenant (bad_auth), a v1 peer (bad_version), a
 *    truncated handshake (truncated on the server; the client's calls fail
 *    with -EPROTO), a forged client proof (handshake) are refused;
 *  - through an in-test TCP relay: a recorded session replayed on a new
 *    connection to a fresh server (handshake: no call runs), a payload byte
 *    altered (bad_auth), two records swapped (replayed), a record from
 *    another connection spliced in (spliced);
 * each counted under its reason, and the handler never runs for them.
 * On shm (no byte stream, no records) the peer proves its key at set-up:
 * keyed tenants are served, stats answer the admin only, and no key, a wrong
 * key or an unknown tenant are refused at set-up (setup_refused, both sides).
 *
 * On rdma (a byte stream over SEND/RECV, in the VM: tests/vm/rdma.sh) the
 * handshake and records are those of tcp; the attacks through a TCP relay or
 * a raw socket run on tcp and uring only.
 *
 * wp-test-paths: tcp uring shm mem rdma (the paths with authentication v2
 * over a byte stream; a context with a policy refuses ucx, and xsk has its
 * own datagrams: test_xsk_auth between two namespaces)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "harness.h"
#include "wirepath/policy.h"

#define M_ECHO 0x100u

static const char rules[] = "default drop\n"
			    "tenant acme id 1 key 00112233445566778899aabbccddeeff admin\n"
			    "tenant beta id 2 key 0f0e0d0c0b0a09080706050403020100\n"
			    "tenant gamma id 3 key 0e0e0d0c0b0a09080706050403020100 confidential\n";
/* The same tenants, with acme's key different: a server holding a wrong key. */
static const char rules_bad[] = "default drop\n"
				"tenant acme id 1 key 00112233445566778899aabbccddee00 admin\n";
static const uint8_t ka[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t kb[16] = { 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
				0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };
static const uint8_t kg[16] = { 0x0e, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
				0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };
static const char secret[] = "CONFIDENTIAL-PAYLOAD-0123456789";

static struct wp_policy *pol, *pol_bad;
static atomic_int served;

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	atomic_fetch_add(&served, 1);
	wp_call_reply(call, req->data, req->len, NULL, NULL);
}

#define XLEN (3u << 20) /* three 1 MiB XFER frames, each a record of its own */

static struct wp_rkey srv_rkey; /* the first server's exported region */
static struct wp_mr *srv_mr;

static void setup(struct srv *s)
{
	struct wp_mr *mr;
	struct wp_rkey rk;

	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_ctx_set_policy(s->ctx, s->user ? s->user : pol) == 0);
	CHECK(wp_mr_alloc(s->ctx, XLEN, &mr) == 0);
	CHECK(wp_mr_export(mr, &rk) == 0);
	if (!srv_mr) {
		srv_mr = mr;
		srv_rkey = rk;
	}
}

struct xres {
	int done, status;
};

static void on_xfer(void *arg, int status, const struct wp_xfer_stats *st)
{
	struct xres *r = arg;

	r->done = 1;
	r->status = status;
}

/* A keyed client writes XLEN bytes into the server's region and reads them
 * back; returns the write's status (the read runs only if it succeeded). */
static int xfer_session(const char *path, int port, unsigned flags)
{
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	struct wp_ep *ep = client_connect(c, path, port, &w, NULL, NULL);
	struct wp_mr *src, *dst;
	struct wp_xfer_desc d = { .len = XLEN };
	struct wp_xfer_params p = { .op = WP_XFER_WRITE,
				    .remote = &srv_rkey,
				    .desc = &d,
				    .ndesc = 1,
				    .deadline_us = 10000000,
				    .on_done = on_xfer };
	struct xres r = { 0 };
	static uint32_t seed = 7;

	CHECK_EQ(wp_ep_set_tenant_key_flags(ep, 1, ka, flags), 0);
	CHECK(wp_mr_alloc(c, XLEN, &src) == 0);
	CHECK(wp_mr_alloc(c, XLEN, &dst) == 0);
	test_fill(wp_mr_addr(src), XLEN, ++seed);
	p.local = src;
	p.arg = &r;
	CHECK_EQ(wp_xfer_post(ep, &p), 0);
	drive_until(c, &r.done, 20000);
	if (r.status == 0) {
		int wst = r.status;

		memset(&r, 0, sizeof(r));
		p.op = WP_XFER_READ;
		p.local = dst;
		CHECK_EQ(wp_xfer_post(ep, &p), 0);
		drive_until(c, &r.done, 20000);
		CHECK_EQ(r.status, 0);
		CHECK(!memcmp(wp_mr_addr(src), wp_mr_addr(dst), XLEN)); /* intact both ways */
		r.status = wst;
	}
	wp_ep_close(ep);
	wp_mr_deregister(src);
	wp_mr_deregister(dst);
	wp_ctx_destroy(c);
	return r.status;
}

struct res {
	int done, status, chunks;
	char echo[64];
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	r->chunks++;
	if (m->len < sizeof(r->echo))
		memcpy(r->echo, m->data, m->len);
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	r->status = status;
	r->done = 1;
}

/* Start a call; on a connection already closed it fails at once (r->done). */
static int call_try(struct wp_ep *ep, uint32_t method, const char *req, struct res *r)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = strlen(req),
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = r };
	int ret;

	memset(r, 0, sizeof(*r));
	ret = wp_rpc_call(ep, &p, NULL);
	if (ret < 0) {
		r->done = 1;
		r->status = ret;
	}
	return ret;
}

static void call_start(struct wp_ep *ep, uint32_t method, const char *req, struct res *r)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = strlen(req),
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = r };

	memset(r, 0, sizeof(*r));
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
}

static int call(struct wp_ctx *c, struct wp_ep *ep, uint32_t method)
{
	struct res r;

	call_start(ep, method, "ping", &r);
	drive_until(c, &r.done, 5000);
	if (method == M_ECHO && r.status == 0)
		CHECK(!strcmp(r.echo, "ping")); /* intact through the records */
	return r.status;
}

static uint64_t bad(int reason)
{
	struct wp_meter_snap s;

	wp_meter_snapshot(&s);
	return s.bad_frames[reason];
}

/* The server counts on its own thread: wait a moment for it. */
static void wait_count(int reason, uint64_t before, uint64_t want)
{
	for (int i = 0; i < 300 && bad(reason) - before < want; i++)
		usleep(10000);
	if (bad(reason) - before != want)
		fprintf(stderr, "reason %s: counted %llu, want %llu\n", wp_bad_reason_name(reason),
			(unsigned long long)(bad(reason) - before), (unsigned long long)want);
	CHECK_EQ(bad(reason) - before, want);
}

/* A keyed client that must be refused: its call fails, the handler never runs. */
static void refused_n(const char *path, int port, uint32_t tenant, const uint8_t *key, int reason,
		      int want_status, uint64_t want_count)
{
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	struct wp_ep *ep = client_connect(c, path, port, &w, NULL, NULL);
	uint64_t before = bad(reason);
	int before_served = atomic_load(&served);
	struct res r;

	if (key)
		CHECK_EQ(wp_ep_set_tenant_key(ep, tenant, key), 0);
	else
		wp_ep_set_tenant(ep, tenant);
	call_start(ep, M_ECHO, "x", &r);
	drive_until(c, &w.closed, 5000);
	drive_until(c, &r.done, 5000);
	CHECK(r.status < 0); /* the call failed with the connection */
	if (want_status)
		CHECK_EQ(r.status, want_status);
	wait_count(reason, before, want_count);
	CHECK_EQ(atomic_load(&served), before_served); /* never dispatched */
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

static void refused(const char *path, int port, uint32_t tenant, const uint8_t *key, int reason,
		    int want_status)
{
	refused_n(path, port, tenant, key, reason, want_status, 1);
}

/* ---- raw sockets and a relay (INET paths) --------------------------------- */

static int tcp_to(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

static int tcp_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(fd, 4) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Send all of buf, then read until the peer closes (bounded by 5 s). */
static size_t send_then_drain(int fd, const void *buf, size_t len, uint8_t *in, size_t cap)
{
	size_t got = 0;
	struct timeval tv = { .tv_sec = 5 };

	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	if (len)
		CHECK((size_t)send(fd, buf, len, MSG_NOSIGNAL) == len);
	for (;;) {
		ssize_t n = recv(fd, in + got, cap - got, 0);

		/* This thread submits to io_uring rings: the kernel's task-work
		 * notification interrupts a receive that has a timeout (EINTR,
		 * not restarted). */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				fprintf(stderr, "send_then_drain: recv after %zu bytes: %s\n", got,
					strerror(errno));
			break;
		}
		got += (size_t)n;
		if (got == cap)
			got = 0; /* only the end matters */
	}
	return got;
}

enum relay_mode {
	R_PASS,
	R_ALTER,
	R_REORDER,
	R_SPLICE,
	R_BAD_PROOF,
	R_ALTER_XFER,
	R_TRICKLE,
	R_NOSEAL
};

struct relay {
	enum relay_mode mode;
	int lfd, port, srv_port;
	pthread_t th;
	uint8_t rec[1 << 16]; /* client -> server bytes as forwarded */
	size_t rec_len;
	uint8_t rec1[4096]; /* the client's second data record (a splice source) */
	size_t rec1_len;
	const uint8_t *splice;
	size_t splice_len;
	int broken; /* the server side failed: stop */
	int nrec;   /* records forwarded */
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Forward to the server. A server that hung up (or stopped reading: sends
 * time out) ends the relay, which then hangs up on the client too. */
static void fwd(struct relay *r, int fd, const uint8_t *p, size_t n)
{
	if (r->rec_len + n <= sizeof(r->rec)) {
		memcpy(r->rec + r->rec_len, p, n);
		r->rec_len += n;
	}
	/* R_TRICKLE: records after the first go one byte per segment, so the
	 * server reads headers split at every offset (the handshake and the
	 * first record pass whole: the server then has no assembly buffer). */
	bool trickle = r->mode == R_TRICKLE && n >= 40 && p[5] != 9 && r->nrec++ > 0;

	for (size_t i = 0; trickle && i < n && !r->broken; i++) {
		if (send(fd, p + i, 1, MSG_NOSIGNAL) != 1)
			r->broken = 1;
		usleep(200);
	}
	if (!trickle && n && !r->broken && send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
		r->broken = 1;
}

/*
 * The man in the middle: server -> client bytes pass; client -> server
 * bytes are cut into frames and records (a record ends with its SEAL frame)
 * and, from the second data record on, tampered with as the mode says.
 */
static void *relay_main(void *arg)
{
	struct relay *r = arg;
	int c = accept(r->lfd, NULL, NULL), s;
	static uint8_t in[1 << 16], recbuf[3 << 20], held[1 << 15];
	size_t in_len = 0, rec_len = 0, held_len = 0;
	int k = 0; /* data records seen */
	struct timeval tv = { .tv_sec = 3 };

	CHECK(c >= 0);
	s = tcp_to(r->srv_port);
	r->broken = 0;
	CHECK(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
	while (!r->broken) {
		struct pollfd pf[2] = { { c, POLLIN, 0 }, { s, POLLIN, 0 } };
		uint8_t buf[4096];
		ssize_t n;

		if (poll(pf, 2, 5000) <= 0)
			break;
		if (pf[1].revents) {
			n = recv(s, buf, sizeof(buf), 0);
			if (n <= 0)
				break;
			if (send(c, buf, (size_t)n, MSG_NOSIGNAL) < 0)
				break;
		}
		if (!pf[0].revents)
			continue;
		n = recv(c, in + in_len, sizeof(in) - in_len, 0);
		if (n <= 0)
			break;
		in_len += (size_t)n;
		for (;;) {
			size_t flen;

			if (in_len < 40)
				break;
			flen = 40 + le32(in + 24);
			if (in_len < flen) {
				if (flen > sizeof(in)) { /* a large frame: take it in pieces */
					CHECK(rec_len + flen <= sizeof(recbuf));
					memcpy(recbuf + rec_len, in, in_len);
					while (in_len < flen) {
						n = recv(c, recbuf + rec_len + in_len,
							 flen - in_len, 0);
						if (n <= 0)
							goto out;
						in_len += (size_t)n;
					}
					rec_len += flen;
					in_len = 0;
				}
				break;
			}
			if (in[5] == 9) { /* HELLO: the handshake passes (or its proof is forged) */
				if (r->mode == R_BAD_PROOF && le32(in + 28) == 3)
					in[40] ^= 1;
				fwd(r, s, in, flen);
			} else {
				CHECK(rec_len + flen <= sizeof(recbuf));
				memcpy(recbuf + rec_len, in, flen);
				rec_len += flen;
				if (in[5] == 10) { /* SEAL: a whole record */
					if (r->mode == R_ALTER_XFER && recbuf[5] == 8)
						recbuf[40 + 16 + 1000] ^= 0x01; /* a placed byte */
					if (k == 1 && rec_len <= sizeof(r->rec1)) {
						memcpy(r->rec1, recbuf, rec_len);
						r->rec1_len = rec_len;
					}
					if (k == 1 && r->mode == R_ALTER) {
						recbuf[rec_len - 40 - 1] ^=
							0x20; /* a payload byte */
						fwd(r, s, recbuf, rec_len);
					} else if (k == 1 && r->mode == R_REORDER) {
						memcpy(held, recbuf, rec_len);
						held_len = rec_len;
					} else if (k == 2 && r->mode == R_REORDER) {
						fwd(r, s, recbuf, rec_len);
						fwd(r, s, held, held_len);
					} else if (r->mode == R_NOSEAL) {
						/* The record without its seal, then
						 * nothing: held frames, never judged. */
						struct timeval t5 = { .tv_sec = 5 };
						uint8_t b[256];

						fwd(r, s, recbuf, rec_len - 40);
						/* Hold both ends open until the server
						 * hangs up (or 5 s pass). */
						CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &t5,
								 sizeof(t5)) == 0);
						while (recv(s, b, sizeof(b), 0) > 0) {
						}
						goto out;
					} else if (k == 1 && r->mode == R_SPLICE) {
						fwd(r, s, r->splice, r->splice_len);
					} else {
						fwd(r, s, recbuf, rec_len);
					}
					k++;
					rec_len = 0;
				}
			}
			memmove(in, in + flen, in_len - flen);
			in_len -= flen;
		}
	}
out:
	close(c);
	close(s);
	return NULL;
}

static void relay_start(struct relay *r, enum relay_mode mode, int srv_port)
{
	r->mode = mode;
	r->srv_port = srv_port;
	r->rec_len = 0;
	r->nrec = 0;
	r->lfd = tcp_listener(&r->port);
	CHECK(pthread_create(&r->th, NULL, relay_main, r) == 0);
}

static void relay_stop(struct relay *r)
{
	pthread_join(r->th, NULL);
	close(r->lfd);
}

static bool has(const uint8_t *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(p + i, s, k))
			return true;
	return false;
}

/*
 * A session through the relay: a first call (record 0, always passed), then
 * two calls in two records (1 and 2) that the relay may tamper with. Returns
 * how many of the three calls succeeded.
 */
static int relay_session(const char *path, struct relay *r, unsigned flags)
{
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	struct wp_ep *ep = client_connect(c, path, r->port, &w, NULL, NULL);
	struct res r0, r1, r2;
	int ok = 0;

	CHECK_EQ(wp_ep_set_tenant_key_flags(ep, 1, ka, flags), 0);
	call_start(ep, M_ECHO, secret, &r0);
	drive_until(c, &r0.done, 5000);
	ok += r0.status == 0 && !strcmp(r0.echo, secret);
	call_try(ep, M_ECHO, "second", &r1);
	CHECK(wp_ctx_progress(c, 0) >= 0); /* its own record */
	call_try(ep, M_ECHO, "third", &r2);
	drive_until(c, &r1.done, 5000);
	drive_until(c, &r2.done, 5000);
	ok += r1.status == 0 && !strcmp(r1.echo, "second");
	ok += r2.status == 0 && !strcmp(r2.echo, "third");
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	relay_stop(r);
	return ok;
}

/*
 * Honest traffic cut at every byte: an empty message first in its record
 * (its header split, so the parser hands no payload), then a call in the
 * same record. Both must pass the guard: an empty frame is not a placed
 * transfer.
 */
static void trickle(const char *path, struct srv *s)
{
	static struct relay r;
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct conn_wait w = { 0 };
	struct res r0;

	relay_start(&r, R_TRICKLE, s->port);
	c = client_ctx(path);
	ep = client_connect(c, path, r.port, &w, NULL, NULL);
	CHECK_EQ(wp_ep_set_tenant_key_flags(ep, 1, ka, 0), 0);
	call_start(ep, M_ECHO, secret, &r0); /* the handshake, then a whole record */
	drive_until(c, &r0.done, 10000);
	CHECK_EQ(r0.status, 0);
	/* One burst, so one record: the empty message, then a call. */
	CHECK_EQ(wp_ep_send_msg(ep, M_ECHO, NULL, 0, NULL, NULL), 0);
	call_start(ep, M_ECHO, secret, &r0);
	drive_until(c, &r0.done, 10000);
	CHECK_EQ(r0.status, 0);
	CHECK(!strcmp(r0.echo, secret));
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	relay_stop(&r);
}

/*
 * A key holder that sends a record and never its seal: its frames are held
 * (and charged to the budget) until the record completes, so the
 * frame-completion timeout closes the connection, and no call runs.
 */
static void unsealed(const char *path)
{
	static struct relay r;
	struct srv s = { .path = path, .setup = setup, .frame_timeout_ms = 800 };
	struct wp_ep_cbs cbs = { 0 };
	struct wp_meter_snap m0, m1;
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct conn_wait w = { 0 };
	struct res r0;
	int before;

	srv_start(&s, &cbs);
	wp_meter_snapshot(&m0);
	before = atomic_load(&served);
	relay_start(&r, R_NOSEAL, s.port);
	c = client_ctx(path);
	ep = client_connect(c, path, r.port, &w, NULL, NULL);
	CHECK_EQ(wp_ep_set_tenant_key_flags(ep, 1, ka, 0), 0);
	call_start(ep, M_ECHO, secret, &r0);
	for (int i = 0; i < 300; i++) {
		CHECK(wp_ctx_progress(c, 10000) >= 0);
		wp_meter_snapshot(&m1);
		if (m1.timeouts_frame > m0.timeouts_frame)
			break;
	}
	CHECK_EQ(m1.timeouts_frame - m0.timeouts_frame, 1);
	CHECK_EQ(atomic_load(&served), before);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	relay_stop(&r);
	srv_stop(&s);
}

static void attacks(const char *path, struct srv *s)
{
	static struct relay r, r2;
	static uint8_t in[1 << 16];
	struct srv fresh = { .path = path, .setup = setup };
	struct wp_ep_cbs cbs = { 0 };
	int before;
	uint64_t b0;

	/* A clean session, recorded: the request is on the wire in clear. */
	relay_start(&r, R_PASS, s->port);
	CHECK_EQ(relay_session(path, &r, 0), 3);
	CHECK(has(r.rec, r.rec_len, secret));
	CHECK(r.rec1_len > 0);

	/* Replayed on a new connection to a fresh server: its nonce is new, so
	 * the recorded proof fails and no call runs. */
	srv_start(&fresh, &cbs);
	before = atomic_load(&served);
	b0 = bad(WP_BAD_HANDSHAKE);
	{
		int fd = tcp_to(fresh.port);

		send_then_drain(fd, r.rec, r.rec_len, in, sizeof(in));
		close(fd);
	}
	wait_count(WP_BAD_HANDSHAKE, b0, 1);
	CHECK_EQ(atomic_load(&served), before);
	/* ... and to the same server, on a new connection. */
	b0 = bad(WP_BAD_HANDSHAKE);
	{
		int fd = tcp_to(s->port);

		send_then_drain(fd, r.rec, r.rec_len, in, sizeof(in));
		close(fd);
	}
	wait_count(WP_BAD_HANDSHAKE, b0, 1);
	CHECK_EQ(atomic_load(&served), before);
	srv_stop(&fresh);

	/* A payload byte altered in record 1: its tag fails; record 0 was served. */
	before = atomic_load(&served);
	b0 = bad(WP_BAD_AUTH);
	relay_start(&r2, R_ALTER, s->port);
	CHECK_EQ(relay_session(path, &r2, 0), 1);
	wait_count(WP_BAD_AUTH, b0, 1);
	CHECK_EQ(atomic_load(&served), before + 1);

	/* Records 1 and 2 swapped: out of sequence. */
	before = atomic_load(&served);
	b0 = bad(WP_BAD_REPLAY);
	relay_start(&r2, R_REORDER, s->port);
	CHECK_EQ(relay_session(path, &r2, 0), 1);
	wait_count(WP_BAD_REPLAY, b0, 1);
	CHECK_EQ(atomic_load(&served), before + 1);

	/* Record 1 replaced by the first session's record 1: another connection's. */
	before = atomic_load(&served);
	b0 = bad(WP_BAD_SPLICED);
	r2.splice = r.rec1;
	r2.splice_len = r.rec1_len;
	relay_start(&r2, R_SPLICE, s->port);
	CHECK_EQ(relay_session(path, &r2, 0), 1);
	wait_count(WP_BAD_SPLICED, b0, 1);
	CHECK_EQ(atomic_load(&served), before + 1);

	/* The client's proof forged: the server refuses it itself. */
	before = atomic_load(&served);
	b0 = bad(WP_BAD_HANDSHAKE);
	relay_start(&r2, R_BAD_PROOF, s->port);
	CHECK_EQ(relay_session(path, &r2, 0), 0);
	wait_count(WP_BAD_HANDSHAKE, b0, 1);
	CHECK_EQ(atomic_load(&served), before);

	/* A byte of a bulk transfer altered on the way: placed already, but its
	 * record's tag fails, so the write is never acknowledged. */
	b0 = bad(WP_BAD_AUTH);
	relay_start(&r2, R_ALTER_XFER, s->port);
	CHECK(xfer_session(path, r2.port, 0) < 0);
	relay_stop(&r2);
	wait_count(WP_BAD_AUTH, b0, 1);

	/* Confidentiality: served, and the request never appears on the wire. */
	relay_start(&r2, R_PASS, s->port);
	CHECK_EQ(relay_session(path, &r2, WP_TENANT_KEY_CONFIDENTIAL), 3);
	CHECK(!has(r2.rec, r2.rec_len, secret));
	CHECK(!has(r2.rec, r2.rec_len, "second"));
}

/* Peers that are not wirepath v2 clients, on a raw socket. */
static void raw_peers(struct srv *s)
{
	static uint8_t in[4096];
	uint8_t v1[48] = { 'W', 'P', 'F', '1', 1, 1 }; /* a v1 MSG */
	uint8_t hello[40] = { 'W', 'P', 'F', '1', 2, 9 };
	int before = atomic_load(&served), fd;
	uint64_t b0 = bad(WP_BAD_VERSION);
	size_t n;

	v1[8] = 1;  /* tenant 1 */
	v1[24] = 8; /* 8 payload bytes */
	fd = tcp_to(s->port);
	n = send_then_drain(fd, v1, sizeof(v1), in, sizeof(in));
	close(fd);
	wait_count(WP_BAD_VERSION, b0, 1);
	/* The server told it why before hanging up: a CLOSE naming the reason. */
	CHECK(n >= 40 && in[5] == 7 && has(in, n, "bad_version"));

	/* A handshake cut short: truncated on the server, which stays up. */
	b0 = bad(WP_BAD_TRUNCATED);
	fd = tcp_to(s->port);
	send_then_drain(fd, hello, 20, in, 0), close(fd);
	wait_count(WP_BAD_TRUNCATED, b0, 1);
	CHECK_EQ(atomic_load(&served), before);

	/* A bulk transfer before any handshake, split across two sends so the
	 * parser would place it piece by piece, aimed at the server's region
	 * with its id and key (an on-path observer reads those from any
	 * integrity-only transfer): refused whole, and not a byte lands. */
	if (srv_mr) { /* s is the first server: its region */
		enum { XN = 40 + 16 + 8192 };
		static uint8_t xf[XN], before_bytes[8192];
		uint8_t *region = wp_mr_addr(srv_mr);

		memcpy(before_bytes, region, sizeof(before_bytes));
		memcpy(xf, (uint8_t[]){ 'W', 'P', 'F', '1', 2, 8 }, 6);
		xf[8] = 1;                   /* tenant 1 */
		xf[16] = 1;                  /* req_id */
		xf[24] = (16 + 8192) & 0xff; /* len, LE */
		xf[25] = (16 + 8192) >> 8;
		memcpy(xf + 48, &srv_rkey.id, 4); /* prefix: offset 0, id, key */
		memcpy(xf + 52, &srv_rkey.key, 4);
		for (int i = 56; i < XN; i++)
			xf[i] = (uint8_t)~region[i - 56]; /* differs from every byte there */
		b0 = bad(WP_BAD_NO_HANDSHAKE);
		fd = tcp_to(s->port);
		CHECK(send(fd, xf, 56 + 4096, MSG_NOSIGNAL) == 56 + 4096);
		usleep(100 * 1000); /* the server reads the first part on its own */
		send_then_drain(fd, xf + 56 + 4096, XN - 56 - 4096, in, sizeof(in));
		close(fd);
		wait_count(WP_BAD_NO_HANDSHAKE, b0, 1);
		CHECK(!memcmp(region, before_bytes, sizeof(before_bytes)));
	}
}

/* A server that hangs up after reading the client's HELLO: the client's call
 * fails with -EPROTO (the handshake never finished), counted. */
static void server_hangs_up(const char *path)
{
	int port, lfd = tcp_listener(&port), fd;
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	struct wp_ep *ep;
	struct res r;
	uint64_t b0 = bad(WP_BAD_HANDSHAKE);
	uint8_t buf[256];

	ep = client_connect(c, path, port, &w, NULL, NULL);
	CHECK_EQ(wp_ep_set_tenant_key(ep, 1, ka), 0);
	call_start(ep, M_ECHO, "x", &r);
	fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);
	while (wp_ctx_progress(c, 1000) >= 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) {
	}
	close(fd);
	drive_until(c, &r.done, 5000);
	CHECK_EQ(r.status, -EPROTO);
	CHECK_EQ(bad(WP_BAD_HANDSHAKE) - b0, 1);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	close(lfd);
}

/* shm: no handshake and no records; the peer proves its key at set-up
 * (src/transport/shm/setup.c), before any region is mapped. The key is set
 * right after wp_connect, before the first progress call, which is when
 * shm's hello leaves. */
static struct wp_ep *keyed_up(struct wp_ctx *c, const char *path, int port, struct conn_wait *w,
			      uint32_t tenant, const uint8_t *key)
{
	struct wp_ep_cbs cbs = { .event = h_ep_event, .arg = w };
	struct wp_ep *ep;
	char uri[64];

	h_uri(uri, sizeof(uri), path, port);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	if (key)
		CHECK(wp_ep_set_tenant_key(ep, tenant, key) == 0);
	else
		wp_ep_set_tenant(ep, tenant);
	while (!w->up && !w->closed)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	return ep;
}

static uint64_t setup_refused(int reason)
{
	struct wp_meter_snap s;

	wp_meter_snapshot(&s);
	return s.setup_refused[reason];
}

/* Refused at set-up: the server counts srv, the client cli (one process). */
static void shm_refused(const char *path, int port, uint32_t tenant, const uint8_t *key, int srv,
			int cli)
{
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	uint64_t s0 = setup_refused(srv), c0 = setup_refused(cli);
	int before = atomic_load(&served);
	struct wp_ep *ep = keyed_up(c, path, port, &w, tenant, key);

	CHECK(!w.up); /* refused before the connection existed */
	CHECK_EQ(w.err, -EACCES);
	for (int i = 0;
	     i < 300 && (srv == cli ? setup_refused(srv) - s0
				    : setup_refused(srv) - s0 + setup_refused(cli) - c0) < 2;
	     i++)
		usleep(10000);
	if (srv == cli) {
		CHECK_EQ(setup_refused(srv) - s0, 2);
	} else {
		CHECK_EQ(setup_refused(srv) - s0, 1);
		CHECK_EQ(setup_refused(cli) - c0, 1);
	}
	CHECK_EQ(atomic_load(&served), before);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

static void shm_flow(const char *path, struct srv *s)
{
	static const uint8_t wrong[16] = { 1 };
	struct conn_wait w = { 0 };
	struct wp_ctx *c = client_ctx(path);
	struct wp_ep *ep = keyed_up(c, path, s->port, &w, 1, ka);
	struct wp_ep_peer peer;

	CHECK(w.up);
	CHECK_EQ(wp_ep_peer(ep, &peer), 0);
	CHECK(peer.verified && peer.tenant == 1);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), 0);
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	c = client_ctx(path);
	memset(&w, 0, sizeof(w));
	ep = keyed_up(c, path, s->port, &w, 2, kb);
	CHECK(w.up);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), EACCES);
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	shm_refused(path, s->port, 1, NULL, WP_SETUP_NO_AUTH, WP_SETUP_REFUSED);
	shm_refused(path, s->port, 1, wrong, WP_SETUP_BAD_PROOF, WP_SETUP_BAD_PROOF);
	shm_refused(path, s->port, 1, kb, WP_SETUP_BAD_PROOF, WP_SETUP_BAD_PROOF);
	shm_refused(path, s->port, 9, ka, WP_SETUP_NO_KEY, WP_SETUP_REFUSED);
}

int main(int argc, char **argv)
{
	const char *path = test_path(argc, argv);
	struct srv s = { .path = path, .setup = setup };
	struct srv sb = { .path = path, .setup = setup };
	struct wp_ep_cbs cbs = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct conn_wait w = { 0 };
	static const uint8_t wrong[16] = { 1 };
	bool inet = !strcmp(path, "tcp") || !strcmp(path, "uring"); /* TCP relays */

	test_watchdog(120);
	CHECK(wp_policy_parse("auth.rules", rules, sizeof(rules) - 1, &pol) == 0);
	CHECK(wp_policy_parse("bad.rules", rules_bad, sizeof(rules_bad) - 1, &pol_bad) == 0);
	srv_start(&s, &cbs);
	if (!strcmp(path, "shm")) {
		shm_flow(path, &s);
		srv_stop(&s);
		wp_policy_free(pol);
		wp_policy_free(pol_bad);
		printf("test_policy_auth[%s]: no byte stream: keys proved at set-up, tenants "
		       "served, stats only for admin, 4 bad clients refused at set-up\n",
		       path);
		return 0;
	}

	/* acme (admin): served, stats allowed; the answers come in records too. */
	c = client_ctx(path);
	CHECK(wp_ctx_set_policy(c, pol) == 0);
	ep = client_connect(c, path, s.port, &w, NULL, NULL);
	CHECK(wp_ep_set_tenant_key(ep, 1, ka) == 0);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), 0);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK(!w.closed);
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	/* beta: served, but stats is for admins; with confidentiality too. */
	for (int conf = 0; conf < 2; conf++) {
		c = client_ctx(path);
		memset(&w, 0, sizeof(w));
		ep = client_connect(c, path, s.port, &w, NULL, NULL);
		CHECK_EQ(wp_ep_set_tenant_key_flags(ep, 2, kb,
						    conf ? WP_TENANT_KEY_CONFIDENTIAL : 0),
			 0);
		CHECK_EQ(call(c, ep, M_ECHO), 0);
		CHECK_EQ(call(c, ep, WP_METHOD_STATS), EACCES);
		CHECK_EQ(call(c, ep, M_ECHO), 0); /* the connection stays up */
		wp_ep_close(ep);
		wp_ctx_destroy(c);
	}

	/* Bulk transfers in records: placed piecewise (integrity), or assembled
	 * and decrypted (confidentiality); checked byte for byte both ways. */
	CHECK_EQ(xfer_session(path, s.port, 0), 0);
	CHECK_EQ(xfer_session(path, s.port, WP_TENANT_KEY_CONFIDENTIAL), 0);

	/* Refused: no key; a wrong key; acme's id with beta's key; an unknown
	 * tenant; a server holding a wrong key for acme. */
	refused(path, s.port, 1, NULL, WP_BAD_NO_HANDSHAKE, 0);
	refused(path, s.port, 1, wrong, WP_BAD_HANDSHAKE, -EACCES);
	refused(path, s.port, 1, kb, WP_BAD_HANDSHAKE, -EACCES);
	refused(path, s.port, 9, ka, WP_BAD_AUTH, 0);
	/* gamma must ask for confidentiality: refused by the server, and the
	 * client counts its unfinished handshake too (same process here). */
	refused_n(path, s.port, 3, kg, WP_BAD_HANDSHAKE, -EPROTO, 2);
	c = client_ctx(path);
	memset(&w, 0, sizeof(w));
	ep = client_connect(c, path, s.port, &w, NULL, NULL);
	CHECK_EQ(wp_ep_set_tenant_key_flags(ep, 3, kg, WP_TENANT_KEY_CONFIDENTIAL), 0);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	sb.user = pol_bad;
	srv_start(&sb, &cbs);
	refused(path, sb.port, 1, ka, WP_BAD_HANDSHAKE, -EACCES);
	srv_stop(&sb);

	if (inet) {
		raw_peers(&s);
		server_hangs_up(path);
		trickle(path, &s);
		unsealed(path);
		attacks(path, &s);
	}

	srv_stop(&s);
	wp_policy_free(pol);
	wp_policy_free(pol_bad);
	printf("test_policy_auth[%s]: v2 handshake + records served (integrity and "
	       "confidentiality), 3 MiB transfers both ways, stats only for admin, a tenant that "
	       "must encrypt, 6 bad clients refused%s\n",
	       path,
	       inet ? "; v1 peer, truncated handshake, replay to a fresh server, altered, "
		      "reordered, spliced records, a forged proof and an altered transfer "
		      "refused by reason"
		    : "");
	return 0;
}
