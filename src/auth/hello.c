// SPDX-License-Identifier: MIT
/*
 * The v2 handshake messages and key schedule (hello.h). The session logic
 * that drives them lives in the guard (src/policy/auth.c).
 */
#include <errno.h>
#include <string.h>

#include "hello.h"

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t phase_len(uint32_t phase)
{
	switch (phase) {
	case WP_HELLO_CLIENT:
		return WP_HELLO_CLIENT_LEN;
	case WP_HELLO_SERVER:
		return WP_HELLO_SERVER_LEN;
	case WP_HELLO_PROOF:
		return WP_HELLO_PROOF_LEN;
	default:
		return 0;
	}
}

int wp_hello_parse(const struct wp_frame_hdr *h, const uint8_t *payload, struct wp_hello *out,
		   const char **why)
{
	uint32_t want = phase_len(h->aux);

	memset(out, 0, sizeof(*out));
	if (h->type != WP_FT_HELLO) {
		*why = "not a HELLO frame";
		return -EPROTO;
	}
	if (!want) {
		*why = "unknown handshake phase";
		return -EPROTO;
	}
	if (h->len != want) {
		*why = "handshake message of the wrong length";
		return -EPROTO;
	}
	if (h->flags || h->method || h->req_id || h->auth) {
		*why = "handshake header fields that must be zero are not";
		return -EPROTO;
	}
	if (h->aux != WP_HELLO_CLIENT && h->tenant) {
		*why = "only the client's first message names a tenant";
		return -EPROTO;
	}
	if (h->aux == WP_HELLO_CLIENT && !h->tenant) {
		*why = "handshake without a tenant";
		return -EPROTO;
	}
	out->phase = h->aux;
	out->tenant = h->tenant;
	switch (h->aux) {
	case WP_HELLO_CLIENT:
	case WP_HELLO_SERVER:
		out->flags = get32(payload);
		if (out->flags & ~WP_HELLO_F__KNOWN) {
			*why = "unknown handshake flags";
			return -EPROTO;
		}
		memcpy(out->nonce, payload + 4, WP_AUTH_NONCE);
		if (h->aux == WP_HELLO_SERVER)
			memcpy(out->proof, payload + 4 + WP_AUTH_NONCE, WP_AUTH_HMAC);
		break;
	default:
		memcpy(out->proof, payload, WP_AUTH_HMAC);
	}
	return 0;
}

uint32_t wp_hello_build(const struct wp_hello *m, uint8_t out[WP_FRAME_HDR + WP_HELLO_MAX])
{
	struct wp_frame_hdr h = { .type = WP_FT_HELLO,
				  .aux = m->phase,
				  .tenant = m->phase == WP_HELLO_CLIENT ? m->tenant : 0,
				  .len = phase_len(m->phase) };
	uint8_t *p = out + WP_FRAME_HDR;

	wp_frame_encode(&h, out);
	if (m->phase == WP_HELLO_PROOF) {
		memcpy(p, m->proof, WP_AUTH_HMAC);
	} else {
		put32(p, m->flags);
		memcpy(p + 4, m->nonce, WP_AUTH_NONCE);
		if (m->phase == WP_HELLO_SERVER)
			memcpy(p + 4 + WP_AUTH_NONCE, m->proof, WP_AUTH_HMAC);
	}
	return WP_FRAME_HDR + h.len;
}

int wp_hello_keys(const uint8_t *tenant_key, size_t keylen, const uint8_t cn[WP_AUTH_NONCE],
		  const uint8_t sn[WP_AUTH_NONCE], struct wp_session_keys *k)
{
	uint8_t salt[2 * WP_AUTH_NONCE], dir[WP_AUTH_KEYLEN + WP_AUTH_IVLEN], id[2];
	int ret;

	memcpy(salt, cn, WP_AUTH_NONCE);
	memcpy(salt + WP_AUTH_NONCE, sn, WP_AUTH_NONCE);
	ret = wp_auth_hkdf(tenant_key, keylen, salt, sizeof(salt), "wirepath/2 c2s", dir,
			   sizeof(dir));
	if (ret)
		return ret;
	memcpy(k->c2s_key, dir, WP_AUTH_KEYLEN);
	memcpy(k->c2s_iv, dir + WP_AUTH_KEYLEN, WP_AUTH_IVLEN);
	ret = wp_auth_hkdf(tenant_key, keylen, salt, sizeof(salt), "wirepath/2 s2c", dir,
			   sizeof(dir));
	if (ret)
		return ret;
	memcpy(k->s2c_key, dir, WP_AUTH_KEYLEN);
	memcpy(k->s2c_iv, dir + WP_AUTH_KEYLEN, WP_AUTH_IVLEN);
	ret = wp_auth_hkdf(tenant_key, keylen, salt, sizeof(salt), "wirepath/2 proof", k->proof_key,
			   sizeof(k->proof_key));
	if (ret)
		return ret;
	ret = wp_auth_hkdf(tenant_key, keylen, salt, sizeof(salt), "wirepath/2 conn id", id,
			   sizeof(id));
	k->conn_id = (uint16_t)(id[0] | id[1] << 8);
	memset(dir, 0, sizeof(dir));
	return ret;
}

int wp_hello_proof(const struct wp_session_keys *k, bool server, uint32_t tenant,
		   const struct wp_hello *client, const struct wp_hello *srv,
		   uint8_t out[WP_AUTH_HMAC])
{
	uint8_t t[4], cf[4], sf[4];
	struct iovec v[] = {
		{ (void *)(server ? "server" : "client"), 6 },
		{ (void *)"wirepath/2", 10 },
		{ t, 4 },
		{ cf, 4 },
		{ (void *)client->nonce, WP_AUTH_NONCE },
		{ sf, 4 },
		{ (void *)srv->nonce, WP_AUTH_NONCE },
	};

	put32(t, tenant);
	put32(cf, client->flags);
	put32(sf, srv->flags);
	return wp_auth_hmac(k->proof_key, sizeof(k->proof_key), v, (int)(sizeof(v) / sizeof(v[0])),
			    out);
}
