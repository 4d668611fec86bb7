// SPDX-License-Identifier: MIT
/*
 * The front door on stream connections (run once per path): a server whose
 * context has a policy checks every received frame's tag right after its
 * header is decoded.
 *  - a client signing with its tenant key is served; its answers come back
 *    signed (a client with the same policy accepts them);
 *  - the stats method answers an admin tenant and refuses (EACCES) another;
 *  - a client without a key, or with a wrong key, or claiming another
 *    tenant's id, is closed as a bad frame: bad_frames.bad_auth counts each,
 *    and the handler never runs for them. On shm, where the peer proves the
 *    key at set-up, each is refused there instead, before any region is
 *    mapped: setup_refused counts its reason (no_auth, bad_proof, no_key) and
 *    the client's endpoint closes with -EACCES without ever connecting.
 *
 * Keys are set right after wp_connect returns, before the first progress
 * call, which is what shm's set-up needs (its hello leaves then).
 */
#include "harness.h"
#include "wirepath/policy.h"

#define M_ECHO 0x100u

static const char rules[] = "default drop\n"
			    "tenant acme id 1 key 00112233445566778899aabbccddeeff admin\n"
			    "tenant beta id 2 key 0f0e0d0c0b0a09080706050403020100\n";
static const uint8_t ka[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t kb[16] = { 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
				0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };

static struct wp_policy *pol;
static atomic_int served;

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	atomic_fetch_add(&served, 1);
	wp_call_reply(call, req->data, req->len, NULL, NULL);
}

static void setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_ctx_set_policy(s->ctx, pol) == 0);
}

struct res {
	int done, status, chunks;
};

static void on_data(void *arg, struct wp_msg *m)
{
	((struct res *)arg)->chunks++;
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	r->status = status;
	r->done = 1;
}

static int call(struct wp_ctx *c, struct wp_ep *ep, uint32_t method)
{
	struct res r = { 0 };
	struct wp_call_params p = { .method = method,
				    .req = "ping",
				    .req_len = 4,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = &r };

	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &r.done, 5000);
	return r.status;
}

static void kc_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct conn_wait *w = arg;

	if (ev == WP_EP_CONNECTED) {
		w->up = 1;
	} else {
		w->closed = 1;
		w->err = err;
	}
}

/* Connect with a tenant key (or just a tenant id) set before any progress. */
static struct wp_ep *keyed_connect(struct wp_ctx *c, const char *path, int port,
				   struct conn_wait *w, uint32_t tenant, const uint8_t *key)
{
	struct wp_ep_cbs cbs = { .event = kc_event, .arg = w };
	struct wp_ep *ep;
	char uri[64];

	h_uri(uri, sizeof(uri), path, port);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	if (key)
		CHECK(wp_ep_set_tenant_key(ep, tenant, key) == 0);
	else
		wp_ep_set_tenant(ep, tenant);
	return ep;
}

static struct wp_ep *keyed_up(struct wp_ctx *c, const char *path, int port, struct conn_wait *w,
			      uint32_t tenant, const uint8_t *key)
{
	struct wp_ep *ep = keyed_connect(c, path, port, w, tenant, key);

	while (!w->up && !w->closed)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK(w->up);
	return ep;
}

/* The change of setup_refused[r] from a to b. */
static uint64_t sr(const struct wp_meter_snap *a, const struct wp_meter_snap *b, int r)
{
	return b->setup_refused[r] - a->setup_refused[r];
}

/* A client that must be refused: connect, send, expect the close. On shm
 * the refusal comes at set-up: the server counts srv_reason, the client
 * cli_reason (both in this process's meter). */
static void refused(const char *path, int port, uint32_t tenant, const uint8_t *key, int srv_reason,
		    int cli_reason)
{
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	struct wp_ep *ep = keyed_connect(c, path, port, &w, tenant, key);
	int shm = !strcmp(path, "shm");
	struct wp_meter_snap a, b;
	struct res r = { 0 };
	struct wp_call_params p = { .method = M_ECHO,
				    .req = "x",
				    .req_len = 1,
				    .on_done = on_done,
				    .arg = &r };
	int before = atomic_load(&served);

	wp_meter_snapshot(&a);
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &w.closed, 5000);
	drive_until(c, &r.done, 5000);
	CHECK(r.status < 0); /* the call failed with the connection */
	/* the server counts it when it closes (its thread; wait a moment) */
	for (int i = 0; i < 200; i++) {
		wp_meter_snapshot(&b);
		if (shm ? (srv_reason == cli_reason
				   ? sr(&a, &b, srv_reason) >= 2
				   : sr(&a, &b, srv_reason) && sr(&a, &b, cli_reason))
			: b.bad_frames[WP_BAD_AUTH] > a.bad_frames[WP_BAD_AUTH])
			break;
		usleep(10000);
	}
	if (shm) {
		CHECK(!w.up); /* refused before the connection existed */
		CHECK_EQ(w.err, -EACCES);
		if (srv_reason == cli_reason) {
			CHECK_EQ(sr(&a, &b, srv_reason), 2);
		} else {
			CHECK_EQ(sr(&a, &b, srv_reason), 1);
			CHECK_EQ(sr(&a, &b, cli_reason), 1);
		}
		printf("  refused at set-up: server %s, client %s\n",
		       wp_setup_reason_name(srv_reason), wp_setup_reason_name(cli_reason));
		CHECK_EQ(b.bad_frames[WP_BAD_AUTH], a.bad_frames[WP_BAD_AUTH]);
	} else {
		CHECK_EQ(b.bad_frames[WP_BAD_AUTH] - a.bad_frames[WP_BAD_AUTH], 1);
	}
	CHECK_EQ(atomic_load(&served), before); /* never dispatched */
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

int main(int argc, char **argv)
{
	const char *path = test_path(argc, argv);
	struct srv s = { .path = path, .setup = setup };
	struct wp_ep_cbs cbs = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct conn_wait w = { 0 };
	static const uint8_t wrong[16] = { 1 };

	test_watchdog(60);
	CHECK(wp_policy_parse("auth.rules", rules, sizeof(rules) - 1, &pol) == 0);
	srv_start(&s, &cbs);

	/* acme (admin): served, stats allowed; answers signed and checked. */
	c = client_ctx(path);
	CHECK(wp_ctx_set_policy(c, pol) == 0);
	ep = keyed_up(c, path, s.port, &w, 1, ka);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), 0);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK(!w.closed);
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	/* beta: served, but stats is for admins. */
	c = client_ctx(path);
	memset(&w, 0, sizeof(w));
	ep = keyed_up(c, path, s.port, &w, 2, kb);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), EACCES);
	CHECK_EQ(call(c, ep, M_ECHO), 0); /* the connection stays up */
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	/* Refused: no key, a wrong key, acme's id with beta's key, an unknown tenant. */
	/* On shm: the server's reason, then the client's. A wrong key: the
	 * client finds the server's proof wrong first and says so. */
	refused(path, s.port, 1, NULL, WP_SETUP_NO_AUTH, WP_SETUP_REFUSED);
	refused(path, s.port, 1, wrong, WP_SETUP_BAD_PROOF, WP_SETUP_BAD_PROOF);
	refused(path, s.port, 1, kb, WP_SETUP_BAD_PROOF, WP_SETUP_BAD_PROOF);
	refused(path, s.port, 9, ka, WP_SETUP_NO_KEY, WP_SETUP_REFUSED);

	srv_stop(&s);
	wp_policy_free(pol);
	printf("test_policy_auth[%s]: signed tenants served, stats only for admin, 4 forgeries "
	       "refused (%s)\n",
	       path, strcmp(path, "shm") ? "closed as bad_auth" : "at set-up");
	return 0;
}
