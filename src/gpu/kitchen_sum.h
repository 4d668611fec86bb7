/* SPDX-License-Identifier: MIT */
/*
 * The kitchen checksum's arithmetic, shared word for word by the host
 * reference (feed.c: wp_gpu_kitchen_sum, what senders compute) and the GPU
 * kernel (kitchen.cu), so the two cannot drift apart. Plain C that nvcc also
 * compiles for the device.
 *
 * Definition: split the bytes into little-endian 64-bit words (the last one
 * zero-padded); sum mix(word_i, i) over all i mod 2^64; the result is
 * mix(sum, len). Mixing each word with its index makes the sum
 * order-sensitive (swapping two different words changes it); a plain sum of
 * the mixed words makes it parallel (any block of words can be summed by any
 * thread, in any order).
 */
#ifndef WP_GPU_KITCHEN_SUM_H
#define WP_GPU_KITCHEN_SUM_H

#include <stdint.h>

#ifdef __CUDACC__
#define WPK_FN __host__ __device__ static inline
#else
#define WPK_FN static inline
#endif

/* splitmix64's finaliser over the word xor its scaled index: a bijection of
 * the word for a given index, so no two distinct words of one position
 * collide, and neighbouring indices give unrelated outputs. */
WPK_FN uint64_t wpk_mix(uint64_t w, uint64_t i)
{
	uint64_t z = w ^ (i * 0x9e3779b97f4a7c15ull);

	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The final value: the sum of mixed words, mixed with the length (so
 * trailing zero bytes are not free). */
WPK_FN uint64_t wpk_final(uint64_t sum, uint64_t len)
{
	return wpk_mix(sum, len ^ 0x6b69746368656eull); /* "kitchen" */
}

/* Word i of p[0..len): little-endian, bytes past len read as zero. */
WPK_FN uint64_t wpk_word(const uint8_t *p, uint64_t len, uint64_t i)
{
	uint64_t off = i * 8, w = 0;
	uint64_t n = len - off < 8 ? len - off : 8;

	for (uint64_t k = 0; k < n; k++)
		w |= (uint64_t)p[off + k] << (8 * k);
	return w;
}

#endif
