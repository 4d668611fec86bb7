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
 *    and the handler never runs for them.
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

/* A client that must be refused: connect, send, expect the close. */
static void refused(const char *path, int port, uint32_t tenant, const uint8_t *key)
{
	struct wp_ctx *c = client_ctx(path);
	struct conn_wait w = { 0 };
	struct wp_ep *ep = client_connect(c, path, port, &w, NULL, NULL);
	struct wp_meter_snap a, b;
	struct res r = { 0 };
	struct wp_call_params p = { .method = M_ECHO,
				    .req = "x",
				    .req_len = 1,
				    .on_done = on_done,
				    .arg = &r };
	int before = atomic_load(&served);

	if (key)
		wp_ep_set_tenant_key(ep, tenant, key);
	else
		wp_ep_set_tenant(ep, tenant);
	wp_meter_snapshot(&a);
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &w.closed, 5000);
	drive_until(c, &r.done, 5000);
	CHECK(r.status < 0); /* the call failed with the connection */
	/* the server counts it when it closes (its thread; wait a moment) */
	for (int i = 0; i < 200; i++) {
		wp_meter_snapshot(&b);
		if (b.bad_frames[WP_BAD_AUTH] > a.bad_frames[WP_BAD_AUTH])
			break;
		usleep(10000);
	}
	CHECK_EQ(b.bad_frames[WP_BAD_AUTH] - a.bad_frames[WP_BAD_AUTH], 1);
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
	ep = client_connect(c, path, s.port, &w, NULL, NULL);
	CHECK(wp_ep_set_tenant_key(ep, 1, ka) == 0);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), 0);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK(!w.closed);
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	/* beta: served, but stats is for admins. */
	c = client_ctx(path);
	memset(&w, 0, sizeof(w));
	ep = client_connect(c, path, s.port, &w, NULL, NULL);
	wp_ep_set_tenant_key(ep, 2, kb);
	CHECK_EQ(call(c, ep, M_ECHO), 0);
	CHECK_EQ(call(c, ep, WP_METHOD_STATS), EACCES);
	CHECK_EQ(call(c, ep, M_ECHO), 0); /* the connection stays up */
	wp_ep_close(ep);
	wp_ctx_destroy(c);

	/* Refused: no key, a wrong key, acme's id with beta's key, an unknown tenant. */
	refused(path, s.port, 1, NULL);
	refused(path, s.port, 1, wrong);
	refused(path, s.port, 1, kb);
	refused(path, s.port, 9, ka);

	srv_stop(&s);
	wp_policy_free(pol);
	printf("test_policy_auth[%s]: signed tenants served, stats only for admin, 4 forgeries "
	       "closed as bad_auth\n",
	       path);
	return 0;
}
