// SPDX-License-Identifier: MIT
/*
 * OpenSSL 3 behind the few calls frame authentication v2 needs (crypto.h).
 * The AEAD keeps one EVP_CIPHER_CTX per direction and re-initialises only
 * the nonce per record, so the AES key schedule is computed once per
 * connection, not per frame.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto.h"

int wp_auth_random(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

int wp_auth_hkdf(const void *ikm, size_t ikmlen, const void *salt, size_t saltlen,
		 const char *label, void *out, size_t outlen)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM p[5], *q = p;
	int ret = -EIO;

	if (outlen > 255 * 32)
		return -EINVAL;
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return -EIO;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!kctx)
		return -EIO;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label, strlen(label));
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, p) == 1)
		ret = 0;
	EVP_KDF_CTX_free(kctx);
	return ret;
}

int wp_auth_hmac(const void *key, size_t keylen, const struct iovec *iov, int n,
		 uint8_t out[WP_AUTH_HMAC])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM p[2];
	size_t olen = 0;
	int ret = -EIO;

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (!m)
		return -EIO;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(m, key, keylen, p) != 1)
		goto out;
	for (int i = 0; i < n; i++)
		if (EVP_MAC_update(m, iov[i].iov_base, iov[i].iov_len) != 1)
			goto out;
	if (EVP_MAC_final(m, out, &olen, WP_AUTH_HMAC) == 1 && olen == WP_AUTH_HMAC)
		ret = 0;
out:
	EVP_MAC_CTX_free(m);
	return ret;
}

bool wp_auth_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int wp_aead_init(struct wp_aead *a, const uint8_t key[WP_AUTH_KEYLEN],
		 const uint8_t iv[WP_AUTH_IVLEN], bool seal)
{
	/* An explicitly fetched cipher: the legacy EVP_aes_256_gcm() handle
	 * costs an implicit provider fetch, and the ex2 init calls take the
	 * provider's path directly (measured: about 290 ns per 40+240 B
	 * record against 500+ for the legacy calls). */
	EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok;

	memset(a, 0, sizeof(*a));
	if (!c || !ciph) {
		EVP_CIPHER_free(ciph);
		EVP_CIPHER_CTX_free(c);
		return ciph ? -ENOMEM : -EIO;
	}
	/* GCM's default nonce length is 12 bytes (WP_AUTH_IVLEN). */
	ok = EVP_CipherInit_ex2(c, ciph, key, iv, seal, NULL) == 1;
	EVP_CIPHER_free(ciph); /* the context keeps its own reference */
	if (!ok) {
		EVP_CIPHER_CTX_free(c);
		return -EIO;
	}
	a->ctx = c;
	memcpy(a->iv, iv, WP_AUTH_IVLEN);
	a->seal = seal;
	return 0;
}

void wp_aead_fini(struct wp_aead *a)
{
	EVP_CIPHER_CTX_free(a->ctx);
	OPENSSL_cleanse(a->iv, sizeof(a->iv));
	a->ctx = NULL;
}

/* TLS 1.3 (RFC 8446 5.3): the IV XOR the big-endian sequence number. */
static void record_nonce(const struct wp_aead *a, uint64_t seq, uint8_t nonce[WP_AUTH_IVLEN])
{
	memcpy(nonce, a->iv, WP_AUTH_IVLEN);
	for (int i = 0; i < 8; i++)
		nonce[WP_AUTH_IVLEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

static int record_begin(struct wp_aead *a, uint64_t seq, const struct iovec *aad, int n)
{
	EVP_CIPHER_CTX *c = a->ctx;
	uint8_t nonce[WP_AUTH_IVLEN];
	int outl;

	record_nonce(a, seq, nonce);
	if (EVP_CipherInit_ex2(c, NULL, NULL, nonce, a->seal, NULL) != 1)
		return -EIO;
	for (int i = 0; i < n; i++)
		if (aad[i].iov_len > INT_MAX ||
		    (aad[i].iov_len &&
		     EVP_CipherUpdate(c, NULL, &outl, aad[i].iov_base, (int)aad[i].iov_len) != 1))
			return -EIO;
	return 0;
}

int wp_aead_seal(struct wp_aead *a, uint64_t seq, const struct iovec *aad, int n, uint8_t *buf,
		 size_t len, uint8_t tag[WP_AUTH_TAG])
{
	EVP_CIPHER_CTX *c = a->ctx;
	int outl;

	if (!a->seal || len > INT_MAX || record_begin(a, seq, aad, n) < 0)
		return -EIO;
	if (len && EVP_CipherUpdate(c, buf, &outl, buf, (int)len) != 1)
		return -EIO;
	if (EVP_CipherFinal_ex(c, NULL, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WP_AUTH_TAG, tag) != 1)
		return -EIO;
	return 0;
}

int wp_aead_open(struct wp_aead *a, uint64_t seq, const struct iovec *aad, int n, uint8_t *buf,
		 size_t len, const uint8_t tag[WP_AUTH_TAG])
{
	EVP_CIPHER_CTX *c = a->ctx;
	uint8_t fin[16];
	int outl;

	if (a->seal || len > INT_MAX || record_begin(a, seq, aad, n) < 0)
		return -EIO;
	if (len && EVP_CipherUpdate(c, buf, &outl, buf, (int)len) != 1)
		return -EIO;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, WP_AUTH_TAG, (void *)tag) != 1)
		return -EIO;
	/* GCM's final step is where the tag is checked. */
	return EVP_CipherFinal_ex(c, fin, &outl) == 1 ? 0 : -EBADMSG;
}

/* ---- one record, piece by piece ------------------------------------- */

int wp_aead_begin(struct wp_aead *a, uint64_t seq)
{
	return record_begin(a, seq, NULL, 0);
}

int wp_aead_aad(struct wp_aead *a, const void *p, size_t n)
{
	int outl;

	while (n) {
		int k = n > INT_MAX ? INT_MAX : (int)n;

		if (EVP_CipherUpdate(a->ctx, NULL, &outl, p, k) != 1)
			return -EIO;
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
	return 0;
}

int wp_aead_crypt(struct wp_aead *a, uint8_t *buf, size_t n)
{
	int outl;

	while (n) {
		int k = n > INT_MAX ? INT_MAX : (int)n;

		if (EVP_CipherUpdate(a->ctx, buf, &outl, buf, k) != 1)
			return -EIO;
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

int wp_aead_end(struct wp_aead *a, uint8_t tag[WP_AUTH_TAG])
{
	EVP_CIPHER_CTX *c = a->ctx;
	uint8_t fin[16];
	int outl;

	if (a->seal)
		return EVP_CipherFinal_ex(c, fin, &outl) == 1 &&
				       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, WP_AUTH_TAG,
							   tag) == 1
			       ? 0
			       : -EIO;
	if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, WP_AUTH_TAG, tag) != 1)
		return -EIO;
	return EVP_CipherFinal_ex(c, fin, &outl) == 1 ? 0 : -EBADMSG;
}
