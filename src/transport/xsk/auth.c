// SPDX-License-Identifier: MIT
/*
 * The xsk path's datagram authentication v2 (docs/protocol.md, "On the xsk
 * path"): the seal of an outgoing packet, the hello on the SYN and SYNACK
 * (keys, nonces, proofs), the server's acceptance of a SYN, and its
 * confirmation of the client by the first sealed datagram.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "xsk.h"

/* Seal body (frame header + prefix, n bytes) and frag into out: the prefix
 * and fragment are the datagram's payload. The length, or < 0. */
int xsk_seal_into(struct xsk_ctx *xc, struct xsk_ep *s, const uint8_t *body, uint32_t n,
		  const uint8_t *frag, uint32_t fn, uint8_t *out)
{
	struct wp_frame_hdr h = { .type = body[5] == XSK_T_CTL ? WP_FT_SEAL : body[5],
				  .flags = get16(body + 6),
				  .method = get32(body + 12),
				  .req_id = get64(body + 16),
				  .aux = get32(body + 28) };
	uint8_t *pl = out + WP_FRAME_HDR + WP_DGRAM_PREFIX;
	int ret;

	memcpy(pl, body + WP_FRAME_HDR, n - WP_FRAME_HDR);
	if (fn)
		memcpy(pl + n - WP_FRAME_HDR, frag, fn);
	ret = wp_dgram_seal(s->ds, &h, pl, n - WP_FRAME_HDR + fn, (uint32_t)xc->mtu, out,
			    XSK_FRAME - XSK_HDRS);
	if (ret >= 0)
		xc->st.sealed++;
	return ret;
}

/* A SYN refused before any session exists: counted, said once a second, and
 * answered with a plain reset (the client's connect fails at once). */
static void syn_refuse(struct wp_ctx *ctx, const uint8_t *pkt, uint64_t sid, int reason,
		       const char *why, uint32_t tenant)
{
	struct xsk_ctx *xc = ctx->bk;

	xc->st.hs_refused++;
	WP_CNT_ADD(setup_refused[reason], 1);
	wp_log_rl(ctx, WP_RL_REFUSE, WP_LOG_WARN, "xsk: refusing a session of tenant %u: %s",
		  tenant, why);
	xsk_rst_to(xc, pkt, sid);
}

/* The server's side of the handshake (the SYN's hello, hs: flags, nonce_c):
 * keys, the server's nonce and proof. The session seals from now on; the
 * client is confirmed by its first sealed datagram. 0 or -errno. */
static int syn_keys(struct wp_ctx *ctx, struct xsk_ep *s, const uint8_t *hs)
{
	struct wp_hello c = { .phase = WP_HELLO_CLIENT, .tenant = s->tenant, .flags = s->hs_flags };
	struct wp_hello v = { .phase = WP_HELLO_SERVER, .tenant = s->tenant, .flags = s->hs_flags };
	struct wp_session_keys k;
	int ret;

	memcpy(s->nonce_c, hs + 4, WP_AUTH_NONCE);
	memcpy(c.nonce, s->nonce_c, WP_AUTH_NONCE);
	ret = wp_auth_random(s->nonce_s, WP_AUTH_NONCE);
	memcpy(v.nonce, s->nonce_s, WP_AUTH_NONCE);
	if (ret == 0)
		ret = wp_hello_keys(s->key, 16, s->nonce_c, s->nonce_s, &k);
	if (ret == 0)
		ret = wp_hello_proof(&k, true, s->tenant, &c, &v, s->proof_s);
	OPENSSL_cleanse(&k, sizeof(k));
	if (ret < 0)
		return ret;
	s->ds = malloc(sizeof(*s->ds));
	if (!s->ds)
		return -ENOMEM;
	ret = wp_dgram_init(s->ds, s->key, s->tenant, s->nonce_c, s->nonce_s, false,
			    s->hs_flags & WP_HELLO_F_CONF);
	if (ret < 0) {
		free(s->ds);
		s->ds = NULL;
		return ret;
	}
	return 0;
}

void xsk_synack_send(struct xsk_ctx *xc, struct xsk_ep *s)
{
	uint8_t hs[XSK_HS_SYNACK];

	put32(hs, s->hs_flags);
	memcpy(hs + 4, s->nonce_s, WP_AUTH_NONCE);
	memcpy(hs + 4 + WP_AUTH_NONCE, s->proof_s, WP_AUTH_HMAC);
	xsk_ctl_send_hs(xc, s, XSK_SYNACK, 0, hs, sizeof(hs));
}

/* The hello's digest a handshake packet carries in aux, under the tenant
 * key (its own SipHash key: k0 differs from the header tag's), so the tag
 * over the header binds the hello too. */
uint32_t xsk_hs_digest(const uint8_t key[16], const uint8_t *hs, uint32_t hslen)
{
	uint64_t k0, k1, d;

	if (!hslen)
		return 0;
	wpp_key_split(key, &k0, &k1);
	d = wpp_siphash24(k0 ^ 0x6873646967657374ull /* "hsdigest" */, k1, hs, hslen);
	return (uint32_t)d;
}

/* Wipe what only the handshake needed. */
void xsk_hs_wipe(struct xsk_ep *s)
{
	OPENSSL_cleanse(s->key, sizeof(s->key));
	OPENSSL_cleanse(s->nonce_c, sizeof(s->nonce_c));
	OPENSSL_cleanse(s->nonce_s, sizeof(s->nonce_s));
	OPENSSL_cleanse(s->proof_s, sizeof(s->proof_s));
}

void xsk_rx_syn(struct wp_ctx *ctx, const uint8_t *pkt, const uint8_t *hdr, uint32_t hslen,
		uint64_t sid, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;
	struct wp_ep *l = xc->listener, *ep;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	const uint8_t *hs = hdr + WP_FRAME_HDR + XSK_PREFIX;
	uint32_t tenant = get32(hdr + 8), flags = 0;
	struct xsk_ep hs_tmp; /* the handshake, before any endpoint exists */
	struct wp_admit adm;
	uint8_t key[16];
	struct xsk_ep *s;
	int ret;

	if (!l) {
		xsk_rst_to(xc, pkt, sid); /* no listener (closed): refused at once */
		return;
	}
	if (l->rx_paused)
		return; /* the client sends it again */
	/* A context with a policy takes authenticated sessions only: the SYN
	 * must carry a hello of a tenant in the policy, with its header tag
	 * (XDP checked it too where the program has the policy). */
	if (ctx->guard) {
		if (hslen != XSK_HS_SYN) {
			syn_refuse(ctx, pkt, sid, WP_SETUP_NO_AUTH,
				   "no tenant key (this context has a policy: the client must "
				   "call wp_ep_set_tenant_key)",
				   tenant);
			return;
		}
		if (!ctx->guard->tenant_key || ctx->guard->tenant_key(ctx, tenant, key) < 0) {
			syn_refuse(ctx, pkt, sid, WP_SETUP_NO_KEY, "not in the policy", tenant);
			return;
		}
		if (get64(hdr + 32) != wp_frame_tag(key, hdr)) {
			OPENSSL_cleanse(key, sizeof(key));
			xc->st.hs_refused++; /* a forgery: no answer */
			return;
		}
		/* The tagged header names this session id and this hello: a
		 * captured SYN replayed under another id or nonce is not. */
		if (get64(hdr + 16) != sid || get32(hdr + 28) != xsk_hs_digest(key, hs, hslen)) {
			OPENSSL_cleanse(key, sizeof(key));
			xc->st.hs_refused++;
			xc->st.hs_unbound++; /* a replay: no answer */
			return;
		}
		flags = get32(hs);
		if (flags & ~WP_HELLO_F__KNOWN) {
			OPENSSL_cleanse(key, sizeof(key));
			syn_refuse(ctx, pkt, sid, WP_SETUP_GARBAGE, "unknown hello flags", tenant);
			return;
		}
		if (!(flags & WP_HELLO_F_CONF) && wp_auth_tenant_confidential(ctx, tenant)) {
			OPENSSL_cleanse(key, sizeof(key));
			syn_refuse(ctx, pkt, sid, WP_SETUP_NO_AUTH,
				   "the tenant must ask for confidentiality (policy: "
				   "confidential)",
				   tenant);
			return;
		}
		memset(&hs_tmp, 0, sizeof(hs_tmp));
		hs_tmp.authn = true;
		hs_tmp.tenant = tenant;
		hs_tmp.hs_flags = flags;
		memcpy(hs_tmp.key, key, sizeof(key));
		OPENSSL_cleanse(key, sizeof(key));
		ret = syn_keys(ctx, &hs_tmp, hs);
		if (ret < 0) {
			xsk_hs_wipe(&hs_tmp);
			xsk_rst_to(xc, pkt, sid);
			return;
		}
	} else if (hslen) {
		syn_refuse(ctx, pkt, sid, WP_SETUP_NO_KEY,
			   "the client has a tenant key and this context has no policy to "
			   "prove it",
			   tenant);
		return;
	}
	memcpy(&peer.sin_addr, pkt + 26, 4);
	peer.sin_port = htons((uint16_t)(pkt[34] << 8 | pkt[35]));
	if (wp_conn_admit(ctx, (struct sockaddr *)&peer, sizeof(peer), &adm) < 0 ||
	    !(ep = wp_ep_alloc(ctx, &l->cbs))) {
		if (ctx->guard) {
			wp_dgram_fini(hs_tmp.ds);
			free(hs_tmp.ds);
			xsk_hs_wipe(&hs_tmp);
		}
		xsk_rst_to(xc, pkt, sid);
		return;
	}
	s = xep(ep);
	if (ctx->guard) {
		*s = hs_tmp; /* the keyed session and the handshake's fields */
		xsk_hs_wipe(&hs_tmp);
		/* The path's session id is the table's key for handshake and
		 * sealed packets alike; the keys are unique to the nonce pair,
		 * so the id is a lookup key, not a secret (the tag covers it). */
		s->ds->id = sid;
	}
	s->ep = ep;
	s->sid = sid;
	memcpy(s->peer_mac, pkt + 6, 6);
	s->have_mac = true;
	s->peer_ip = peer.sin_addr.s_addr;
	s->peer_port = ntohs(peer.sin_port);
	s->snd_una = s->snd_nxt = s->snd_max = s->rcv_nxt = 1;
	s->cwnd = XSK_WIN;
	s->last_rx = now;
	ep->accepted = true;
	ep->local_port = xc->port;
	wp_conn_admitted(ep, &adm);
	xsk_sess_add(xc, s);
	if (s->authn)
		xsk_half_open_add(xc, s); /* may end the oldest unproved one */
	s->opened = true;
	wp_conn_established(ep);
	s->synack_at = now;
	if (s->authn)
		xsk_synack_send(xc, s);
	else
		xsk_ctl_send(xc, s, XSK_SYNACK, 0);
	xsk_timer_at(xc, now + XSK_PING_NS);
}

/* Server: the client's first sealed datagram opened (keys only it and we
 * can hold, from our fresh nonce): it proved the tenant key. 0, or -1 when
 * the session was refused (conns_per_tenant). */
int xsk_confirm(struct wp_ep *ep, struct xsk_ep *s)
{
	ep->tenant = s->tenant;
	ep->peer_verified = true;
	s->confirmed = true;
	xsk_half_open_del(xctx(ep->ctx), s);
	xsk_hs_wipe(s);
	if (wp_conn_tenant_bind(ep, s->tenant) < 0) {
		xsk_sess_fail(ep, -EUSERS);
		return -1;
	}
	wp_conn_handshake_done(ep);
	wp_log(ep->ctx, WP_LOG_INFO, "xsk: session %llx: tenant %u proved its key%s",
	       (unsigned long long)s->sid, s->tenant, s->ds->encrypt ? " (confidentiality)" : "");
	return 0;
}

/* Client: the SYNACK's hello (flags, nonce_s, proof_s). The server proves
 * first; a wrong proof fails the connect with -EACCES. 0 or < 0. */
int xsk_synack_keys(struct wp_ep *ep, struct xsk_ep *s, const uint8_t *hs, uint32_t hslen)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct wp_hello c = { .phase = WP_HELLO_CLIENT, .tenant = s->tenant, .flags = s->hs_flags };
	struct wp_hello v = { .phase = WP_HELLO_SERVER, .tenant = s->tenant };
	struct wp_session_keys k;
	uint8_t want[WP_AUTH_HMAC];
	int ret;

	if (hslen != XSK_HS_SYNACK) {
		xc->st.hs_bad_proof++;
		wp_log(ep->ctx, WP_LOG_WARN,
		       "xsk: the server answered without proving tenant %u's key", s->tenant);
		return -EACCES;
	}
	v.flags = get32(hs);
	if ((v.flags & ~WP_HELLO_F__KNOWN) || v.flags != s->hs_flags) {
		xc->st.hs_bad_proof++;
		wp_log(ep->ctx, WP_LOG_WARN,
		       "xsk: the server's hello flags %#x differ from ours %#x (confidentiality)",
		       v.flags, s->hs_flags);
		return -EACCES;
	}
	memcpy(c.nonce, s->nonce_c, WP_AUTH_NONCE);
	memcpy(v.nonce, hs + 4, WP_AUTH_NONCE);
	ret = wp_hello_keys(s->key, 16, c.nonce, v.nonce, &k);
	if (ret == 0)
		ret = wp_hello_proof(&k, true, s->tenant, &c, &v, want);
	OPENSSL_cleanse(&k, sizeof(k));
	if (ret < 0)
		return ret;
	if (CRYPTO_memcmp(want, hs + 4 + WP_AUTH_NONCE, WP_AUTH_HMAC)) {
		xc->st.hs_bad_proof++;
		WP_CNT_ADD(bad_frames[WP_BAD_HANDSHAKE], 1);
		wp_log(ep->ctx, WP_LOG_WARN,
		       "xsk: the server's proof of tenant %u's key is wrong (the keys differ)",
		       s->tenant);
		return -EACCES;
	}
	s->ds = malloc(sizeof(*s->ds));
	if (!s->ds)
		return -ENOMEM;
	ret = wp_dgram_init(s->ds, s->key, s->tenant, c.nonce, v.nonce, true,
			    s->hs_flags & WP_HELLO_F_CONF);
	if (ret < 0) {
		free(s->ds);
		s->ds = NULL;
		return ret;
	}
	s->ds->id = s->sid;
	xsk_hs_wipe(s);
	ep->peer_verified = true;
	return 0;
}

/* Client: the SYN, with our hello when the endpoint has a tenant key
 * (wp_ep_set_tenant_key, right after wp_connect: the first SYN leaves from
 * the first progress round). Every SYN of a connect carries the same hello. */
void xsk_syn_send(struct xsk_ctx *xc, struct wp_ep *ep, struct xsk_ep *s)
{
	uint8_t hs[XSK_HS_SYN];

	if (!s->authn && ep->guard && ep->guard->ep_key && ep->guard->ep_key(ep, s->key) == 0) {
		if (wp_auth_random(s->nonce_c, WP_AUTH_NONCE) < 0) {
			xsk_hs_wipe(s);
			return; /* the next timer tries again */
		}
		s->authn = true;
		s->tenant = ep->tenant;
		s->hs_flags = wp_auth_ep_confidential(ep) ? WP_HELLO_F_CONF : 0;
	}
	if (!s->authn) {
		xsk_ctl_send(xc, s, XSK_SYN, 0);
		return;
	}
	put32(hs, s->hs_flags);
	memcpy(hs + 4, s->nonce_c, WP_AUTH_NONCE);
	xsk_ctl_send_hs(xc, s, XSK_SYN, 0, hs, sizeof(hs));
}
