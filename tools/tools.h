/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared by the wirepath CLI's three parts: the command
 * dispatcher and helpers (wirepath.c), the stub server (serve.c) and the
 * bench (bench.c). It fixes the bench protocol both sides speak: the method
 * ids of the stub services and the little-endian request headers they parse,
 * so a bench client and a `wirepath serve` built from the same tree always
 * agree. Everything here is tool code: it uses only the public API.
 */
#ifndef WP_TOOLS_H
#define WP_TOOLS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "wirepath/wirepath.h"

/* ------------------------------------------------------------------ */
/* Bench protocol: stub services offered by `wirepath serve`           */
/* ------------------------------------------------------------------ */

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
 * Request [u64 bytes] -> the remote key (struct wp_rkey, fields little-endian:
 * u32 id, u32 key, u64 len, u32 flags, u32 pad) of an exported region of at
 * least `bytes` bytes, the target of `wirepath bench --workload kv`.
 */
#define WPB_KV 5u
#define WPB_KV_MAX (1ull << 30)

#define WPB_TOOL_HDR 8u
#define WPB_MEM_HDR 8u
#define WPB_MODEL_HDR 20u

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

/* ------------------------------------------------------------------ */
/* Commands (argv[0] is the command name)                              */
/* ------------------------------------------------------------------ */

int cmd_probe(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `wirepath bench --workload gpufeed` (tools/bench_gpufeed.c). */
int cmd_bench_gpufeed(int argc, char **argv);
int cmd_policy(int argc, char **argv); /* tools/policy.c */

/* Exit status for a bad flag or value (after one line that says what to do). */
#define EXIT_USAGE 2

/* ------------------------------------------------------------------ */
/* Helpers (wirepath.c)                                                */
/* ------------------------------------------------------------------ */

/* A growable string; on allocation failure `oom` is set and appends are dropped. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal (quotes included); NULL gives null. */
void sb_json_str(struct sbuf *b, const char *s);
/* Append a JSON number; NaN and infinities give null. */
void sb_json_num(struct sbuf *b, double v);
void sb_free(struct sbuf *b);

/* "EOPNOTSUPP", or "E<n>" when glibc has no name. */
const char *tool_errno_name(int err);
/* The probe table as a JSON array of {name, ok, err, errno, error, detail}. */
void tool_probes_json(struct sbuf *b);
/* wp_ctx_opts.log for tools: "wirepath: <level>: msg" on stderr. */
void tool_log(void *arg, enum wp_log_level level, const char *msg);

/*
 * Parse numbers in flags. Each returns 0 or -EINVAL (not a number, trailing
 * junk, out of [min, max]).
 * - tool_parse_u64: plain decimal.
 * - tool_parse_size: bytes with an optional K/KiB/M/MiB/G/GiB suffix.
 * - tool_parse_secs: seconds, decimal fraction allowed ("0.3").
 */
int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int tool_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int tool_parse_secs(const char *s, double min, double max, double *out);
/* Parse "require" | "prefer" | "any". */
int tool_parse_select(const char *s, enum wp_select *out);
const char *tool_select_name(enum wp_select s);

/*
 * Report a bad flag or value: "wirepath CMD: <message>; see 'wirepath CMD
 * --help'" on stderr. Returns EXIT_USAGE so callers can `return usage_error()`.
 */
int tool_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
