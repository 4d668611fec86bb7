/* SPDX-License-Identifier: MIT */
/*
 * The v2 handshake on stream connections (docs/protocol.md, "Handshake"):
 * three HELLO frames that prove both sides hold the tenant key and derive
 * fresh per-connection keys from both sides' nonces.
 *
 *   client -> server  HELLO(aux 1)  flags, client nonce          (tenant in the header)
 *   server -> client  HELLO(aux 2)  flags accepted, server nonce, server proof
 *   client -> server  HELLO(aux 3)  client proof
 *
 * The parser is pure (no state, no allocation) so it is fuzzed on its own
 * (tests/fuzz/fuzz_handshake.c); the key schedule and the proofs are
 * HKDF-SHA256 and HMAC-SHA256 from crypto.h.
 */
#ifndef WP_AUTH_HELLO_H
#define WP_AUTH_HELLO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/frame.h"
#include "crypto.h"

enum wp_hello_phase { WP_HELLO_CLIENT = 1, WP_HELLO_SERVER = 2, WP_HELLO_PROOF = 3 };

#define WP_HELLO_F_CONF 1u /* confidentiality: payloads encrypted */
#define WP_HELLO_F__KNOWN WP_HELLO_F_CONF

#define WP_HELLO_CLIENT_LEN (4 + WP_AUTH_NONCE)
#define WP_HELLO_SERVER_LEN (4 + WP_AUTH_NONCE + WP_AUTH_HMAC)
#define WP_HELLO_PROOF_LEN WP_AUTH_HMAC
#define WP_HELLO_MAX WP_HELLO_SERVER_LEN

struct wp_hello {
	uint32_t phase; /* enum wp_hello_phase */
	uint32_t tenant;
	uint32_t flags;
	uint8_t nonce[WP_AUTH_NONCE]; /* CLIENT, SERVER */
	uint8_t proof[WP_AUTH_HMAC];  /* SERVER, PROOF */
};

/*
 * Parse a HELLO frame (h->type == WP_FT_HELLO, payload h->len bytes). 0, or
 * -EPROTO with *why set to a static one-line reason: unknown phase, wrong
 * length for the phase, unknown flags, fields that must be zero.
 */
int wp_hello_parse(const struct wp_frame_hdr *h, const uint8_t *payload, struct wp_hello *out,
		   const char **why);

/* Encode m as a whole frame (header + payload) into out; returns its length. */
uint32_t wp_hello_build(const struct wp_hello *m, uint8_t out[WP_FRAME_HDR + WP_HELLO_MAX]);

/* What one connection derives from the tenant key and both nonces. */
struct wp_session_keys {
	uint8_t c2s_key[WP_AUTH_KEYLEN], c2s_iv[WP_AUTH_IVLEN];
	uint8_t s2c_key[WP_AUTH_KEYLEN], s2c_iv[WP_AUTH_IVLEN];
	uint8_t proof_key[WP_AUTH_HMAC];
	uint16_t conn_id; /* in every record frame's auth field: tells a spliced frame apart */
};

/*
 * Keys of one connection: HKDF-SHA256 with ikm = the tenant key, salt =
 * client nonce || server nonce and one label per output. 0 or -EIO.
 */
int wp_hello_keys(const uint8_t *tenant_key, size_t keylen, const uint8_t cn[WP_AUTH_NONCE],
		  const uint8_t sn[WP_AUTH_NONCE], struct wp_session_keys *k);

/*
 * A proof: HMAC-SHA256(proof key, "server" or "client" || transcript), the
 * transcript being "wirepath/2" || tenant (LE) || client flags || client
 * nonce || server flags || server nonce. 0 or -EIO.
 */
int wp_hello_proof(const struct wp_session_keys *k, bool server, uint32_t tenant,
		   const struct wp_hello *client, const struct wp_hello *srv,
		   uint8_t out[WP_AUTH_HMAC]);

#endif
