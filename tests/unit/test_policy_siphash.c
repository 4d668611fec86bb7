// SPDX-License-Identifier: MIT
/*
 * SipHash-2-4 against the reference vectors (Aumasson and Bernstein; the
 * reference implementation's vectors_sip64: key 00..0f, message 00..n-1 for
 * n = 0..63), the fixed 32-byte form the XDP program uses against the
 * general one, and the frame tag helpers (which bytes are covered).
 */
#include "testlib.h"
#include "wirepath/policy.h"
#include "policy/siphash.h"

static const uint64_t vec[64] = {
	0x726fdb47dd0e0e31ull, 0x74f839c593dc67fdull, 0x0d6c8009d9a94f5aull, 0x85676696d7fb7e2dull,
	0xcf2794e0277187b7ull, 0x18765564cd99a68dull, 0xcbc9466e58fee3ceull, 0xab0200f58b01d137ull,
	0x93f5f5799a932462ull, 0x9e0082df0ba9e4b0ull, 0x7a5dbbc594ddb9f3ull, 0xf4b32f46226bada7ull,
	0x751e8fbc860ee5fbull, 0x14ea5627c0843d90ull, 0xf723ca908e7af2eeull, 0xa129ca6149be45e5ull,
	0x3f2acc7f57c29bdbull, 0x699ae9f52cbe4794ull, 0x4bc1b3f0968dd39cull, 0xbb6dc91da77961bdull,
	0xbed65cf21aa2ee98ull, 0xd0f2cbb02e3b67c7ull, 0x93536795e3a33e88ull, 0xa80c038ccd5ccec8ull,
	0xb8ad50c6f649af94ull, 0xbce192de8a85b8eaull, 0x17d835b85bbb15f3ull, 0x2f2e6163076bcfadull,
	0xde4daaaca71dc9a5ull, 0xa6a2506687956571ull, 0xad87a3535c49ef28ull, 0x32d892fad841c342ull,
	0x7127512f72f27cceull, 0xa7f32346f95978e3ull, 0x12e0b01abb051238ull, 0x15e034d40fa197aeull,
	0x314dffbe0815a3b4ull, 0x027990f029623981ull, 0xcadcd4e59ef40c4dull, 0x9abfd8766a33735cull,
	0x0e3ea96b5304a7d0ull, 0xad0c42d6fc585992ull, 0x187306c89bc215a9ull, 0xd4a60abcf3792b95ull,
	0xf935451de4f21df2ull, 0xa9538f0419755787ull, 0xdb9acddff56ca510ull, 0xd06c98cd5c0975ebull,
	0xe612a3cb9ecba951ull, 0xc766e62cfcadaf96ull, 0xee64435a9752fe72ull, 0xa192d576b245165aull,
	0x0a8787bf8ecb74b2ull, 0x81b3e73d20b49b6full, 0x7fa8220ba3b2eceaull, 0x245731c13ca42499ull,
	0xb78dbfaf3a8d83bdull, 0xea1ad565322a1a0bull, 0x60e61c23a3795013ull, 0x6606d7e446282b93ull,
	0x6ca4ecb15c5f91e1ull, 0x9f626da15c9625f3ull, 0xe51b38608ef25f57ull, 0x958a324ceb064572ull,
};

int main(void)
{
	uint8_t key[16], msg[64], hdr[40];
	uint64_t k0, k1, x = 0x1234567;

	test_watchdog(30);
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (int n = 0; n < 64; n++) {
		uint64_t got = wp_siphash24(key, msg, (size_t)n);

		if (got != vec[n]) {
			fprintf(stderr, "siphash len %d: got %016llx want %016llx\n", n,
				(unsigned long long)got, (unsigned long long)vec[n]);
			return 1;
		}
	}
	/* The paper's worked example: 15 bytes 00..0e -> a129ca6149be45e5. */
	CHECK(wp_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);

	/* The fixed 32-byte form (XDP) equals the general one. */
	k0 = 0x0706050403020100ull;
	k1 = 0x0f0e0d0c0b0a0908ull;
	CHECK(wpp_siphash24_32(k0, k1, msg) == vec[32]);
	for (int it = 0; it < 10000; it++) {
		uint8_t m[32];

		for (int i = 0; i < 32; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			m[i] = (uint8_t)(x >> 56);
		}
		x = x * 6364136223846793005ull + 1;
		CHECK(wpp_siphash24_32(x, ~x, m) == wpp_siphash24(x, ~x, m, 32));
	}

	/* Frame tags: bytes 0..31 are covered, the tag bytes are not. */
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, "WPF1\x01\x01", 6);
	hdr[8] = 7; /* tenant 7 */
	CHECK(wp_frame_tag(key, hdr) == wp_siphash24(key, hdr, 32));
	wp_frame_sign(key, hdr);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(hdr[32 + i], (uint8_t)(wp_frame_tag(key, hdr) >> (8 * i)));
	{
		uint64_t t = wp_frame_tag(key, hdr);

		hdr[39] ^= 0xff; /* the tag itself is not covered */
		CHECK(wp_frame_tag(key, hdr) == t);
		for (int i = 0; i < 32; i++) { /* every other header byte is */
			hdr[i] ^= 1;
			CHECK(wp_frame_tag(key, hdr) != t);
			hdr[i] ^= 1;
		}
	}
	printf("test_policy_siphash: 64 reference vectors, 32-byte form, frame tag coverage\n");
	return 0;
}
