/* SPDX-License-Identifier: MIT */
/*
 * What the xsk tests with a policy and raw peers share (test_xsk_auth.c,
 * test_xsk_hostile.c; tests/netns/xsk_suite.sh runs both between two
 * namespaces): the policy (the client's address WP_TEST_XSK_CLI belongs to
 * tenant acme), an echo server with and without it, the server's explain
 * read on its own thread, a client's dial, and a raw peer: a plain UDP
 * socket in the client's namespace speaking the path's protocol.
 */
#ifndef WP_XSK_PEER_H
#define WP_XSK_PEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "harness.h"
#include "core/frame.h"
#include "transport/xsk/xsk.h"
#include "wirepath/policy.h"

enum { M_ECHO = 1 };

static const uint8_t ka[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

static struct wp_policy *pol;
static atomic_int served;

/* Request: u64 fnv of the rest, rest. Reply: the rest, after the check. */
static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint64_t sum;

	atomic_fetch_add(&served, 1);
	CHECK(req->len >= 8);
	memcpy(&sum, req->data, 8);
	if (fnv1a((const uint8_t *)req->data + 8, req->len - 8, FNV_INIT) != sum) {
		CHECK(wp_call_error(call, 99, "checksum") == 0);
		return;
	}
	CHECK(wp_call_reply(call, (const uint8_t *)req->data + 8, req->len - 8, NULL, NULL) == 0);
}

static void srv_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_ctx_set_policy(s->ctx, pol) == 0);
}

/* The server's explain line, read on its own thread when asked. */
static atomic_int want_explain, have_explain;
static char srv_explain[4096];

static void srv_tick(struct srv *s)
{
	if (atomic_load(&want_explain) && !atomic_load(&have_explain)) {
		snprintf(srv_explain, sizeof(srv_explain), "%s", wp_ctx_explain(s->ctx));
		atomic_store(&have_explain, 1);
	}
}

static const char *server_explain(struct wp_ctx *cx)
{
	atomic_store(&have_explain, 0);
	atomic_store(&want_explain, 1);
	while (!atomic_load(&have_explain))
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
	atomic_store(&want_explain, 0);
	return srv_explain;
}

static long long stat_of(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	if (!p)
		fprintf(stderr, "no %s in: %s\n", key, line);
	CHECK(p != NULL);
	return atoll(p + strlen(key));
}


static uint64_t rng_s = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return rng_s;
}


static struct wp_ep *dial_flags(struct wp_ctx *cx, int port, struct conn_wait *w, uint32_t tenant,
				const uint8_t *key, unsigned flags)
{
	struct wp_ep_cbs cbs = { .event = h_ep_event, .arg = w };
	struct wp_ep *ep;
	char uri[64];

	memset(w, 0, sizeof(*w));
	h_uri(uri, sizeof(uri), "xsk", port);
	CHECK(wp_connect(cx, uri, &cbs, &ep) == 0);
	if (key)
		CHECK(wp_ep_set_tenant_key_flags(ep, tenant, key, flags) == 0);
	return ep;
}


/* ... and wait until it is up or closed. */
static struct wp_ep *dial(struct wp_ctx *cx, int port, struct conn_wait *w, uint32_t tenant,
			  const uint8_t *key, unsigned flags)
{
	struct wp_ep *ep = dial_flags(cx, port, w, tenant, key, flags);

	while (!w->up && !w->closed)
		CHECK(wp_ctx_progress(cx, 1000) >= 0);
	return ep;
}


/* ---- raw peers ---------------------------------------------------------- */

/* A plain UDP socket in the client's namespace, aimed at the server's port. */
static int raw_open(int port, struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	memset(to, 0, sizeof(*to));
	to->sin_family = AF_INET;
	to->sin_port = htons((uint16_t)port);
	CHECK(inet_pton(AF_INET, getenv("WP_TEST_XSK_SRV"), &to->sin_addr) == 1);
	return fd;
}

/* Drive cx for ms milliseconds (the server runs on its own thread). */
static void drive_ms(struct wp_ctx *cx, unsigned ms)
{
	uint64_t t0 = wp_now_ns();

	while (wp_now_ns() - t0 < (uint64_t)ms * 1000000)
		CHECK(wp_ctx_progress(cx, 10000) >= 0);
}

/* Server side: one-way messages (u32 index, u64 fnv of the rest, rest) must
 * arrive in order and whole; then the session must close with 0. */
static atomic_int msgs_ok, msgs_bad, closed_ok, closed_err;

static void srv_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	uint32_t idx;
	uint64_t sum;

	if (m->len < 12) {
		atomic_fetch_add(&msgs_bad, 1);
		return;
	}
	memcpy(&idx, m->data, 4);
	memcpy(&sum, (const uint8_t *)m->data + 4, 8);
	if (idx != (uint32_t)atomic_load(&msgs_ok) ||
	    fnv1a((const uint8_t *)m->data + 12, m->len - 12, FNV_INIT) != sum)
		atomic_fetch_add(&msgs_bad, 1);
	else
		atomic_fetch_add(&msgs_ok, 1);
}

static void srv_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	if (ev != WP_EP_CLOSED)
		return;
	if (err == 0)
		atomic_fetch_add(&closed_ok, 1);
	else
		atomic_store(&closed_err, err);
}

static const struct wp_ep_cbs srv_cbs = { .event = srv_event, .msg = srv_msg };

/* One plain path packet from the raw socket: kind 0 = data (a MSG frame,
 * fragment of n bytes at offset 0 of a mlen-byte message), else control. */
static void raw_pkt(int fd, const struct sockaddr_in *to, uint64_t sid, uint32_t kind, uint32_t seq,
		    uint32_t mlen, uint32_t n)
{
	static uint8_t b[40 + 24 + 1200];
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = WP_FT_MSG,
				  .method = kind ? kind : 7,
				  .len = 24 + n };
	uint32_t one = 1, zero = 0;

	wp_frame_encode(&h, b);
	if (kind)
		b[5] = 0xc5;
	memcpy(b + 40, &sid, 8);
	memcpy(b + 48, &seq, 4);
	memcpy(b + 52, &one, 4); /* ack */
	memcpy(b + 56, &mlen, 4);
	memcpy(b + 60, &zero, 4); /* offset */
	memset(b + 64, 0xab, n);
	CHECK(sendto(fd, b, 64 + n, 0, (const struct sockaddr *)to, sizeof(*to)) ==
	      (ssize_t)(64 + n));
}


static void srv_setup_plain(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
}


/* The policy: acme (id 1, key ka) owns the client's address WP_TEST_XSK_CLI;
 * beta (id 2, key kb) owns 192.0.2.0/24. Skips unless run by xsk_suite.sh. */
static void xsk_peer_policy(int argc, char **argv)
{
	const char *path = test_path(argc, argv), *cli = getenv("WP_TEST_XSK_CLI");
	char rules[512];

	if (strcmp(path, "xsk") || !getenv("WP_TEST_XSK_NS") || !cli ||
	    !getenv("WP_TEST_XSK_NOHOST"))
		SKIP("runs from tests/netns/xsk_suite.sh (--path xsk between two namespaces)");
	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 1 key 00112233445566778899aabbccddeeff admin\n"
		 "  allow %s\n"
		 "tenant beta id 2 key 0f0e0d0c0b0a09080706050403020100\n"
		 "  allow 192.0.2.0/24\n",
		 cli);
	CHECK(wp_policy_parse("xsk_auth.rules", rules, strlen(rules), &pol) == 0);
}

#endif
