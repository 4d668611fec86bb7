/* SPDX-License-Identifier: MIT */
/*
 * The cryptography frame authentication v2 stands on, all from OpenSSL 3's
 * libcrypto (no home-made primitives): random nonces, HKDF-SHA256 (RFC 5869)
 * for per-connection keys, HMAC-SHA256 for handshake proofs, a constant-time
 * compare, and AES-256-GCM (with the TLS 1.3 per-record nonce: a fixed IV
 * XOR the record's sequence number) for per-frame integrity, optionally with
 * confidentiality. Integrity only is GCM with the protected bytes as
 * additional data and nothing encrypted (GMAC), so the same key, nonce and
 * tag rules apply either way.
 *
 * A struct wp_aead is one direction of one connection: it must never see the
 * same sequence number twice (callers use a counter), and it belongs to one
 * thread like the rest of a context.
 */
#ifndef WP_AUTH_CRYPTO_H
#define WP_AUTH_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define WP_AUTH_NONCE 32u  /* handshake nonce bytes, each side */
#define WP_AUTH_KEYLEN 32u /* AES-256 */
#define WP_AUTH_IVLEN 12u  /* GCM nonce */
#define WP_AUTH_TAG 16u    /* GCM tag, full length */
#define WP_AUTH_HMAC 32u   /* HMAC-SHA256 output */

/* Fill buf with n bytes from the OpenSSL CSPRNG. 0 or -EIO. */
int wp_auth_random(void *buf, size_t n);

/*
 * HKDF-SHA256: extract with salt from the input key material, expand with
 * the label (info) into out[0..outlen). 0, -EINVAL (outlen too long), -EIO.
 */
int wp_auth_hkdf(const void *ikm, size_t ikmlen, const void *salt, size_t saltlen,
		 const char *label, void *out, size_t outlen);

/* HMAC-SHA256 over the concatenation of n iovecs. 0 or -EIO. */
int wp_auth_hmac(const void *key, size_t keylen, const struct iovec *iov, int n,
		 uint8_t out[WP_AUTH_HMAC]);

/* Constant-time equality of two n-byte strings. */
bool wp_auth_equal(const void *a, const void *b, size_t n);

struct wp_aead {
	void *ctx; /* EVP_CIPHER_CTX, key schedule kept across records */
	uint8_t iv[WP_AUTH_IVLEN];
	bool seal; /* this direction protects (true) or verifies (false) */
};

/* Key one direction. 0, -ENOMEM, -EIO. */
int wp_aead_init(struct wp_aead *a, const uint8_t key[WP_AUTH_KEYLEN],
		 const uint8_t iv[WP_AUTH_IVLEN], bool seal);
void wp_aead_fini(struct wp_aead *a);

/*
 * Protect one record numbered seq: aad (n iovecs) is authenticated, and the
 * len bytes at buf are encrypted in place (len 0: integrity only). The tag
 * goes to tag. 0 or -EIO.
 */
int wp_aead_seal(struct wp_aead *a, uint64_t seq, const struct iovec *aad, int n, uint8_t *buf,
		 size_t len, uint8_t tag[WP_AUTH_TAG]);

/*
 * Verify one record: the same aad, the len bytes at buf decrypted in place
 * (len 0: integrity only), checked against tag. 0, or -EBADMSG when the tag
 * does not match (buf's contents are then undefined), or -EIO.
 */
int wp_aead_open(struct wp_aead *a, uint64_t seq, const struct iovec *aad, int n, uint8_t *buf,
		 size_t len, const uint8_t tag[WP_AUTH_TAG]);

/*
 * The same record piece by piece, for bytes that arrive or are queued in
 * pieces (a batch of frames, a bulk transfer placed as it arrives): begin
 * with the record's sequence number, then all additional data (aad, any
 * number of calls), then the bytes to encrypt or decrypt in place (crypt, any
 * number of calls; none for integrity only), then end: sealing writes the
 * tag, opening checks it (0, or -EBADMSG). GCM takes all additional data
 * before any encrypted byte: aad after crypt is an error (-EIO). Each returns
 * 0 or -EIO.
 */
int wp_aead_begin(struct wp_aead *a, uint64_t seq);
int wp_aead_aad(struct wp_aead *a, const void *p, size_t n);
int wp_aead_crypt(struct wp_aead *a, uint8_t *buf, size_t n);
int wp_aead_end(struct wp_aead *a, uint8_t tag[WP_AUTH_TAG]);

#endif
