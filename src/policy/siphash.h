/* SPDX-License-Identifier: MIT */
/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012): 2 compression rounds per 8-byte word, 4 finalisation rounds, a
 * 128-bit key given as two little-endian 64-bit halves, a 64-bit result.
 *
 * Compiles for BPF and for user space. wpp_siphash24_32() is the fixed
 * 32-byte form the XDP program runs over a frame header (bytes 0..31): no
 * loop over a variable length, nothing the verifier has to bound. The
 * general wpp_siphash24() is for user space and the test vectors; the unit
 * test checks that both agree.
 */
#ifndef WPP_SIPHASH_H
#define WPP_SIPHASH_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define WPP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define WPP_SIPROUND(v0, v1, v2, v3)   \
	do {                           \
		v0 += v1;              \
		v1 = WPP_ROTL(v1, 13); \
		v1 ^= v0;              \
		v0 = WPP_ROTL(v0, 32); \
		v2 += v3;              \
		v3 = WPP_ROTL(v3, 16); \
		v3 ^= v2;              \
		v0 += v3;              \
		v3 = WPP_ROTL(v3, 21); \
		v3 ^= v0;              \
		v2 += v1;              \
		v1 = WPP_ROTL(v1, 17); \
		v1 ^= v2;              \
		v2 = WPP_ROTL(v2, 32); \
	} while (0)

/* Little-endian load, byte by byte: independent of host order and alignment. */
static __always_inline __u64 wpp_le64(const __u8 *p)
{
	return (__u64)p[0] | (__u64)p[1] << 8 | (__u64)p[2] << 16 | (__u64)p[3] << 24 |
	       (__u64)p[4] << 32 | (__u64)p[5] << 40 | (__u64)p[6] << 48 | (__u64)p[7] << 56;
}

static __always_inline __u32 wpp_le32(const __u8 *p)
{
	return (__u32)p[0] | (__u32)p[1] << 8 | (__u32)p[2] << 16 | (__u32)p[3] << 24;
}

#define WPP_SIP_INIT(k0, k1)                                                        \
	__u64 v0 = 0x736f6d6570736575ull ^ (k0), v1 = 0x646f72616e646f6dull ^ (k1), \
	      v2 = 0x6c7967656e657261ull ^ (k0), v3 = 0x7465646279746573ull ^ (k1)

#define WPP_SIP_WORD(m)                       \
	do {                                  \
		v3 ^= (m);                    \
		WPP_SIPROUND(v0, v1, v2, v3); \
		WPP_SIPROUND(v0, v1, v2, v3); \
		v0 ^= (m);                    \
	} while (0)

#define WPP_SIP_FINAL()                       \
	do {                                  \
		v2 ^= 0xff;                   \
		WPP_SIPROUND(v0, v1, v2, v3); \
		WPP_SIPROUND(v0, v1, v2, v3); \
		WPP_SIPROUND(v0, v1, v2, v3); \
		WPP_SIPROUND(v0, v1, v2, v3); \
	} while (0)

/* SipHash-2-4 of exactly 32 bytes (a frame header without its tag). */
static __always_inline __u64 wpp_siphash24_32(__u64 k0, __u64 k1, const __u8 *m)
{
	WPP_SIP_INIT(k0, k1);

	WPP_SIP_WORD(wpp_le64(m));
	WPP_SIP_WORD(wpp_le64(m + 8));
	WPP_SIP_WORD(wpp_le64(m + 16));
	WPP_SIP_WORD(wpp_le64(m + 24));
	WPP_SIP_WORD(32ull << 56); /* last block: length, no tail bytes */
	WPP_SIP_FINAL();
	return v0 ^ v1 ^ v2 ^ v3;
}

#ifndef __bpf__
/* SipHash-2-4 of any length (user space). */
static inline __u64 wpp_siphash24(__u64 k0, __u64 k1, const void *data, __u64 len)
{
	const __u8 *m = (const __u8 *)data;
	__u64 b = len << 56, i;
	WPP_SIP_INIT(k0, k1);

	for (i = 0; i + 8 <= len; i += 8)
		WPP_SIP_WORD(wpp_le64(m + i));
	for (__u64 j = 0; i + j < len; j++)
		b |= (__u64)m[i + j] << (8 * j);
	WPP_SIP_WORD(b);
	WPP_SIP_FINAL();
	return v0 ^ v1 ^ v2 ^ v3;
}
#endif

#endif
