// SPDX-License-Identifier: MIT
/*
 * The cryptography under frame authentication v2 (src/auth/crypto.c), held
 * to published vectors: HKDF-SHA256 (RFC 5869 test case 1), HMAC-SHA256
 * (RFC 4231 test case 2), AES-256-GCM (McGrew-Viega GCM spec test cases 13
 * and 14), then the properties the record layer relies on: a sealed record
 * opens, and a flipped bit anywhere, another sequence number or another key
 * does not.
 */
#include <string.h>

#include "testlib.h"
#include "auth/crypto.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		CHECK(sscanf(h + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
}

static void check_hex(const uint8_t *got, const char *want)
{
	size_t n = strlen(want) / 2;
	uint8_t w[128];

	CHECK(n <= sizeof(w));
	unhex(want, w, n);
	if (memcmp(got, w, n)) {
		fprintf(stderr, "want %s\n got ", want);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%02x", got[i]);
		fprintf(stderr, "\n");
		CHECK(0);
	}
}

static void test_hkdf(void)
{
	uint8_t ikm[22], salt[13], okm[42];
	char info[11];

	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (char)(0xf0 + i);
	info[10] = 0;
	CHECK_EQ(wp_auth_hkdf(ikm, sizeof(ikm), salt, sizeof(salt), info, okm, sizeof(okm)), 0);
	check_hex(okm, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		       "34007208d5b887185865");
}

static void test_hmac(void)
{
	const char *data = "what do ya want for nothing?";
	struct iovec iov[2] = { { (void *)data, 10 }, { (void *)(data + 10), strlen(data) - 10 } };
	uint8_t mac[WP_AUTH_HMAC];

	CHECK_EQ(wp_auth_hmac("Jefe", 4, iov, 2, mac), 0);
	check_hex(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_gcm_vectors(void)
{
	uint8_t key[32] = { 0 }, iv[12] = { 0 }, tag[16], buf[16] = { 0 };
	struct wp_aead s, o;

	CHECK_EQ(wp_aead_init(&s, key, iv, true), 0);
	CHECK_EQ(wp_aead_init(&o, key, iv, false), 0);
	/* Test case 13: no plaintext, no AAD. */
	CHECK_EQ(wp_aead_seal(&s, 0, NULL, 0, NULL, 0, tag), 0);
	check_hex(tag, "530f8afbc74536b9a963b4f1c4cb738b");
	CHECK_EQ(wp_aead_open(&o, 0, NULL, 0, NULL, 0, tag), 0);
	/* Test case 14: 16 zero bytes. */
	CHECK_EQ(wp_aead_seal(&s, 0, NULL, 0, buf, sizeof(buf), tag), 0);
	check_hex(buf, "cea7403d4d606b6e074ec5d3baf39d18");
	check_hex(tag, "d0d1c8a799996bf0265b98b5d48ab919");
	CHECK_EQ(wp_aead_open(&o, 0, NULL, 0, buf, sizeof(buf), tag), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		CHECK_EQ(buf[i], 0);
	wp_aead_fini(&s);
	wp_aead_fini(&o);
}

static void test_records(void)
{
	uint8_t key[32], key2[32], iv[12], tag[16], hdr[40], msg[300], orig[300];
	struct iovec aad[2] = { { hdr, sizeof(hdr) }, { msg, sizeof(msg) } };
	struct wp_aead s, o, o2;

	CHECK_EQ(wp_auth_random(key, sizeof(key)), 0);
	CHECK_EQ(wp_auth_random(key2, sizeof(key2)), 0);
	CHECK_EQ(wp_auth_random(iv, sizeof(iv)), 0);
	CHECK_EQ(wp_auth_random(hdr, sizeof(hdr)), 0);
	CHECK_EQ(wp_auth_random(msg, sizeof(msg)), 0);
	memcpy(orig, msg, sizeof(msg));
	CHECK_EQ(wp_aead_init(&s, key, iv, true), 0);
	CHECK_EQ(wp_aead_init(&o, key, iv, false), 0);
	CHECK_EQ(wp_aead_init(&o2, key2, iv, false), 0);

	/* Integrity only: header and payload as additional data. */
	CHECK_EQ(wp_aead_seal(&s, 7, aad, 2, NULL, 0, tag), 0);
	CHECK_EQ(wp_aead_open(&o, 7, aad, 2, NULL, 0, tag), 0);
	CHECK_EQ(wp_aead_open(&o, 8, aad, 2, NULL, 0, tag), -EBADMSG);  /* replayed elsewhere */
	CHECK_EQ(wp_aead_open(&o2, 7, aad, 2, NULL, 0, tag), -EBADMSG); /* other key */
	for (size_t bit = 0; bit < 8 * (sizeof(hdr) + sizeof(msg)); bit += 37) {
		uint8_t *p = bit / 8 < sizeof(hdr) ? hdr + bit / 8 : msg + bit / 8 - sizeof(hdr);

		*p ^= (uint8_t)(1u << (bit % 8));
		CHECK_EQ(wp_aead_open(&o, 7, aad, 2, NULL, 0, tag), -EBADMSG);
		*p ^= (uint8_t)(1u << (bit % 8));
	}
	tag[15] ^= 1;
	CHECK_EQ(wp_aead_open(&o, 7, aad, 2, NULL, 0, tag), -EBADMSG);

	/* Confidentiality: the payload is encrypted in place. */
	CHECK_EQ(wp_aead_seal(&s, 9, aad, 1, msg, sizeof(msg), tag), 0);
	CHECK(memcmp(msg, orig, sizeof(msg)) != 0);
	CHECK_EQ(wp_aead_open(&o, 9, aad, 1, msg, sizeof(msg), tag), 0);
	CHECK(memcmp(msg, orig, sizeof(msg)) == 0);

	/* Seal and open are one direction each. */
	CHECK_EQ(wp_aead_open(&s, 9, aad, 1, msg, sizeof(msg), tag), -EIO);
	CHECK(wp_auth_equal(orig, msg, sizeof(msg)));
	CHECK(!wp_auth_equal(orig, key, 16));
	wp_aead_fini(&s);
	wp_aead_fini(&o);
	wp_aead_fini(&o2);
}

/* Piece by piece (a batch of frames, a transfer placed as it arrives) gives
 * the same tag as one call, for any cut, and the same ciphertext. */
static void test_pieces(void)
{
	uint8_t key[32], iv[12], tag[16], tag2[16], hdr[40], msg[1000], enc[1000], enc2[1000];
	struct iovec aad[2] = { { hdr, sizeof(hdr) }, { msg, sizeof(msg) } };
	struct wp_aead s, o;

	CHECK_EQ(wp_auth_random(key, sizeof(key)), 0);
	CHECK_EQ(wp_auth_random(iv, sizeof(iv)), 0);
	CHECK_EQ(wp_auth_random(hdr, sizeof(hdr)), 0);
	CHECK_EQ(wp_auth_random(msg, sizeof(msg)), 0);
	CHECK_EQ(wp_aead_init(&s, key, iv, true), 0);
	CHECK_EQ(wp_aead_init(&o, key, iv, false), 0);
	CHECK_EQ(wp_aead_seal(&s, 3, aad, 2, NULL, 0, tag), 0);
	for (size_t cut = 0; cut <= sizeof(msg); cut += 77) {
		CHECK_EQ(wp_aead_begin(&s, 3), 0);
		CHECK_EQ(wp_aead_aad(&s, hdr, 13), 0);
		CHECK_EQ(wp_aead_aad(&s, hdr + 13, sizeof(hdr) - 13), 0);
		CHECK_EQ(wp_aead_aad(&s, msg, cut), 0);
		CHECK_EQ(wp_aead_aad(&s, msg + cut, sizeof(msg) - cut), 0);
		CHECK_EQ(wp_aead_end(&s, tag2), 0);
		CHECK(!memcmp(tag, tag2, sizeof(tag)));
		CHECK_EQ(wp_aead_begin(&o, 3), 0);
		CHECK_EQ(wp_aead_aad(&o, hdr, sizeof(hdr)), 0);
		CHECK_EQ(wp_aead_aad(&o, msg, cut), 0);
		CHECK_EQ(wp_aead_aad(&o, msg + cut, sizeof(msg) - cut), 0);
		CHECK_EQ(wp_aead_end(&o, tag2), 0);
	}
	tag2[0] ^= 1;
	CHECK_EQ(wp_aead_begin(&o, 3), 0);
	CHECK_EQ(wp_aead_aad(&o, hdr, sizeof(hdr)), 0);
	CHECK_EQ(wp_aead_aad(&o, msg, sizeof(msg)), 0);
	CHECK_EQ(wp_aead_end(&o, tag2), -EBADMSG);

	/* Encrypted in two pieces = in one. */
	memcpy(enc, msg, sizeof(msg));
	memcpy(enc2, msg, sizeof(msg));
	CHECK_EQ(wp_aead_seal(&s, 4, aad, 1, enc, sizeof(enc), tag), 0);
	CHECK_EQ(wp_aead_begin(&s, 4), 0);
	CHECK_EQ(wp_aead_aad(&s, hdr, sizeof(hdr)), 0);
	CHECK_EQ(wp_aead_crypt(&s, enc2, 16), 0);
	CHECK_EQ(wp_aead_crypt(&s, enc2 + 16, sizeof(enc2) - 16), 0);
	CHECK_EQ(wp_aead_end(&s, tag2), 0);
	CHECK(!memcmp(enc, enc2, sizeof(enc)) && !memcmp(tag, tag2, sizeof(tag)));
	CHECK_EQ(wp_aead_begin(&o, 4), 0);
	CHECK_EQ(wp_aead_aad(&o, hdr, sizeof(hdr)), 0);
	CHECK_EQ(wp_aead_crypt(&o, enc2, 100), 0);
	CHECK_EQ(wp_aead_crypt(&o, enc2 + 100, sizeof(enc2) - 100), 0);
	CHECK_EQ(wp_aead_end(&o, tag2), 0);
	CHECK(!memcmp(enc2, msg, sizeof(msg)));
	wp_aead_fini(&s);
	wp_aead_fini(&o);
}

int main(void)
{
	test_hkdf();
	test_hmac();
	test_gcm_vectors();
	test_records();
	test_pieces();
	printf("auth crypto: vectors and record properties ok\n");
	return 0;
}
