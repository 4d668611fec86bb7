/* SPDX-License-Identifier: MIT */
/*
 * The stub server's wire contract: the methods `wirepath serve` offers
 * (tools/serve.c) and the bench calls (tools/bench_*.c), and the exact bytes
 * of each request and reply. Both sides encode and decode through the
 * helpers below and nowhere else, so a bench and a server built from the
 * same tree cannot disagree about a layout; change a layout here and both
 * sides change with it.
 *
 * Every field is little-endian. A request may be longer than its header:
 * tool requests carry filler (the workload's request size) after it, and the
 * server reads only the header. The library's own stats call
 * (WP_METHOD_STATS) is the library's contract, not this one.
 */
#ifndef WP_STUB_PROTO_H
#define WP_STUB_PROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "wirepath/wirepath.h"

/* Request [u32 resp_size][u32 service_us] ... -> one reply of resp_size bytes. */
#define WPB_TOOL 1u
/* Request [u32 bytes][u32 service_us] -> a reply of `bytes` bytes. */
#define WPB_MEM 2u
/*
 * Request [u32 tokens][u32 token_bytes][u32 token_batch][u32 service_us]
 * [u32 interval_us] -> after service_us, ceil(tokens / token_batch) stream
 * chunks of token_bytes * token_batch bytes (the last one shorter), one every
 * interval_us, then the end of the stream.
 */
#define WPB_MODEL 3u
/* One-way message (wp_ep_send_msg): per-step telemetry, counted, no reply. */
#define WPB_TELEMETRY 4u
/*
 * Request [u64 bytes] -> the remote key (struct wp_rkey: u32 id, u32 key,
 * u64 len, u32 flags, u32 pad) of an exported region of at least `bytes`
 * bytes, the target of `wirepath bench --workload kv`.
 */
#define WPB_KV 5u
/* The highest method id above, for tables indexed by method. */
#define WPB_METHOD_MAX WPB_KV

#define WPB_KV_MAX (1ull << 30)

#define WPB_TOOL_HDR 8u
#define WPB_MEM_HDR 8u
#define WPB_MODEL_HDR 20u
#define WPB_KV_HDR 8u
#define WPB_KV_REPLY 24u

/*
 * Replies larger than this go out as a stream of chunks of this size (the
 * library's default max_frame); the client checks only the byte total. The
 * server's static pattern buffer has exactly this size.
 */
#define WPB_CHUNK_MAX (16u << 20)

static inline void wpb_put32(void *p, uint32_t v)
{
	uint8_t *b = p;

	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline void wpb_put64(void *p, uint64_t v)
{
	wpb_put32(p, (uint32_t)v);
	wpb_put32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t wpb_get32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t wpb_get64(const void *p)
{
	return (uint64_t)wpb_get32(p) | (uint64_t)wpb_get32((const uint8_t *)p + 4) << 32;
}

/* The byte every payload carries at offset i (server replies, client requests). */
static inline uint8_t wpb_pattern(size_t i)
{
	return (uint8_t)(i * 131u + 7u);
}

static inline const char *wpb_method_name(uint32_t method)
{
	switch (method) {
	case WPB_TOOL:
		return "tool";
	case WPB_MEM:
		return "memory";
	case WPB_MODEL:
		return "model";
	case WPB_TELEMETRY:
		return "telemetry";
	case WPB_KV:
		return "kv";
	}
	return "?";
}

/* ------------------------------------------------------------------ */
/* WPB_TOOL and WPB_MEM: [u32 bytes][u32 service_us]                   */
/* ------------------------------------------------------------------ */

_Static_assert(WPB_TOOL_HDR == WPB_MEM_HDR, "tool and memory requests share one header");

struct wpb_bytes_req {
	uint32_t bytes;      /* the reply's size */
	uint32_t service_us; /* how long the server waits before replying */
};

/* p holds at least WPB_TOOL_HDR (== WPB_MEM_HDR) bytes. */
static inline void wpb_bytes_req_put(void *p, const struct wpb_bytes_req *r)
{
	wpb_put32(p, r->bytes);
	wpb_put32((uint8_t *)p + 4, r->service_us);
}

/* 0, or -EINVAL for a request shorter than its header. */
static inline int wpb_bytes_req_get(const void *p, uint32_t len, struct wpb_bytes_req *r)
{
	if (len < WPB_TOOL_HDR)
		return -EINVAL;
	r->bytes = wpb_get32(p);
	r->service_us = wpb_get32((const uint8_t *)p + 4);
	return 0;
}

/* ------------------------------------------------------------------ */
/* WPB_MODEL: a paced token stream                                     */
/* ------------------------------------------------------------------ */

struct wpb_model_req {
	uint32_t tokens;
	uint32_t token_bytes;
	uint32_t token_batch; /* tokens per stream chunk; never 0 */
	uint32_t service_us;  /* before the first chunk */
	uint32_t interval_us; /* between chunks */
};

/* p holds at least WPB_MODEL_HDR bytes. */
static inline void wpb_model_req_put(void *p, const struct wpb_model_req *r)
{
	uint8_t *b = p;

	wpb_put32(b, r->tokens);
	wpb_put32(b + 4, r->token_bytes);
	wpb_put32(b + 8, r->token_batch);
	wpb_put32(b + 12, r->service_us);
	wpb_put32(b + 16, r->interval_us);
}

static inline int wpb_model_req_get(const void *p, uint32_t len, struct wpb_model_req *r)
{
	const uint8_t *b = p;

	if (len < WPB_MODEL_HDR)
		return -EINVAL;
	r->tokens = wpb_get32(b);
	r->token_bytes = wpb_get32(b + 4);
	r->token_batch = wpb_get32(b + 8);
	r->service_us = wpb_get32(b + 12);
	r->interval_us = wpb_get32(b + 16);
	return 0;
}

/* Stream chunks the server sends for `tokens` in batches of `batch` (> 0). */
static inline uint32_t wpb_model_chunks(uint32_t tokens, uint32_t batch)
{
	return tokens ? (uint32_t)(((uint64_t)tokens + batch - 1) / batch) : 0;
}

/* ------------------------------------------------------------------ */
/* WPB_KV: [u64 bytes] -> the region's remote key                      */
/* ------------------------------------------------------------------ */

static inline void wpb_kv_reply_put(void *p, const struct wp_rkey *rk)
{
	uint8_t *b = p;

	wpb_put32(b, rk->id);
	wpb_put32(b + 4, rk->key);
	wpb_put64(b + 8, rk->len);
	wpb_put32(b + 16, rk->flags);
	wpb_put32(b + 20, 0);
}

static inline int wpb_kv_reply_get(const void *p, uint32_t len, struct wp_rkey *rk)
{
	const uint8_t *b = p;

	if (len < WPB_KV_REPLY)
		return -EINVAL;
	rk->id = wpb_get32(b);
	rk->key = wpb_get32(b + 4);
	rk->len = wpb_get64(b + 8);
	rk->flags = wpb_get32(b + 16);
	rk->pad = 0;
	return 0;
}

#endif
