// SPDX-License-Identifier: MIT
/*
 * What frame authentication v2 costs per record (src/auth/crypto.c): ns per
 * AES-256-GCM seal and open of a 40-byte header plus a payload of 8 B (a
 * streamed token), 256 B (a tool call) and 4 KiB, integrity only (GMAC: the
 * payload is additional data) and encrypted; and the one-off handshake key
 * schedule (HKDF) and proof (HMAC). This is the number docs/protocol.md uses
 * to decide whether records batch frames, and the per-byte cost that stays
 * when they do (with ChaCha20-Poly1305 alongside, for comparison). Prints one
 * JSON object.
 *
 * Usage: auth_cost [ITERS]   (default 1000000)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "wirepath/wirepath.h"
#include "auth/crypto.h"

static double cost_record(uint64_t iters, size_t len, bool enc, bool seal)
{
	static uint8_t key[WP_AUTH_KEYLEN] = { 1 }, iv[WP_AUTH_IVLEN] = { 2 };
	uint8_t hdr[40] = { 'W', 'P', 'F', '1', 2 }, tag[WP_AUTH_TAG];
	uint8_t *buf = calloc(1, len ? len : 1);
	struct wp_aead s, o;
	struct iovec aad[2] = { { hdr, sizeof(hdr) }, { buf, len } };
	uint64_t t0, t;

	if (!buf || wp_aead_init(&s, key, iv, true) || wp_aead_init(&o, key, iv, false))
		exit(1);
	t0 = wp_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		if (seal)
			wp_aead_seal(&s, i, aad, enc ? 1 : 2, enc ? buf : NULL, enc ? len : 0, tag);
		else
			wp_aead_open(&o, i, aad, enc ? 1 : 2, enc ? buf : NULL, enc ? len : 0,
				     tag); /* fails the tag check: the same work */
	}
	t = wp_now_ns() - t0;
	wp_aead_fini(&s);
	wp_aead_fini(&o);
	free(buf);
	return (double)t / (double)iters;
}

/* For comparison only (records use AES-256-GCM): the same integrity-only
 * record with ChaCha20-Poly1305 from OpenSSL, the other TLS 1.3 AEAD. */
static double cost_chacha(uint64_t iters, size_t len)
{
	static const uint8_t key[32] = { 1 };
	uint8_t nonce[12] = { 2 }, hdr[40] = { 0 }, tag[16];
	uint8_t *buf = calloc(1, len ? len : 1);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint64_t t0;
	int outl;

	if (!buf || !c || EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce) != 1)
		exit(1);
	t0 = wp_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		nonce[0] = (uint8_t)i;
		EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce);
		EVP_EncryptUpdate(c, NULL, &outl, hdr, sizeof(hdr));
		EVP_EncryptUpdate(c, NULL, &outl, buf, (int)len);
		EVP_EncryptFinal_ex(c, tag, &outl);
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag);
	}
	t0 = wp_now_ns() - t0;
	EVP_CIPHER_CTX_free(c);
	free(buf);
	return (double)t0 / (double)iters;
}

static double cost_handshake(uint64_t iters)
{
	uint8_t ikm[16] = { 3 }, salt[64] = { 4 }, out[44], mac[WP_AUTH_HMAC];
	struct iovec v = { salt, sizeof(salt) };
	uint64_t t0 = wp_now_ns();

	for (uint64_t i = 0; i < iters; i++) {
		wp_auth_hkdf(ikm, sizeof(ikm), salt, sizeof(salt), "wp2 c2s", out, sizeof(out));
		wp_auth_hmac(out, 32, &v, 1, mac);
	}
	return (double)(wp_now_ns() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	static const size_t sizes[] = { 8, 256, 4096 };

	if (!iters)
		iters = 1;
	printf("{\"iters\":%" PRIu64, iters);
	for (int e = 0; e < 2; e++)
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
			printf(",\"%s_%zu_seal_ns\":%.1f,\"%s_%zu_open_ns\":%.1f",
			       e ? "enc" : "mac", sizes[k], cost_record(iters, sizes[k], e, true),
			       e ? "enc" : "mac", sizes[k], cost_record(iters, sizes[k], e, false));
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		printf(",\"chacha_mac_%zu_seal_ns\":%.1f", sizes[k], cost_chacha(iters, sizes[k]));
	printf(",\"hkdf_hmac_ns\":%.1f}\n", cost_handshake(iters / 100 ? iters / 100 : 1));
	return 0;
}
