/* SPDX-License-Identifier: MIT */
/*
 * The native service contracts (include/wirepath/service.h) as stubs, for
 * `wirepath serve` and the tests (tests/integ/test_service.c): a model that
 * generates tokens at a configurable pace (WP_SVC_GENERATE), deterministic
 * embeddings (WP_SVC_EMBED), the model list (WP_SVC_MODELS), and three MCP
 * tools, echo, sized and add (WP_SVC_TOOLS_LIST, WP_SVC_TOOLS_CALL).
 * docs/daemon.md, "Native backends", is the reference for what each
 * answers; this file and svc.c are the implementation.
 *
 * Pacing uses the caller's job heap (sched_heap.h): the owner's loop runs
 * sched_run() and waits no longer than sched_timeout_us(). Everything runs
 * on the thread that drives the context.
 */
#ifndef WP_TOOLS_SVC_H
#define WP_TOOLS_SVC_H

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sched_heap.h"
#include "wirepath/wirepath.h"

#define SVC_MODELS_MAX 16
#define SVC_DEFAULT_MODEL "wp-stub"
#define SVC_DEFAULT_TOKENS 16
#define SVC_EMBED_DIM 16
#define SVC_EMBED_INPUTS_MAX 65536u  /* inputs in one embeddings request */
#define SVC_SIZED_MAX (8u << 20)     /* the `sized` tool's largest text */
#define SVC_SERVICE_US_MAX 60000000u /* the `sized` tool's longest wait: 60 s */
#define SVC_WORDS_MAX 4096           /* words in --token-text */
#define SVC_WORD_MAX 256             /* bytes in one of them */

struct svc_opts {
	const char *models[SVC_MODELS_MAX]; /* model ids served; none: SVC_DEFAULT_MODEL */
	uint32_t n_models;
	uint32_t tokens;            /* tokens when the request's max_tokens is 0 (0: 16) */
	uint32_t token_interval_us; /* between tokens; 0 = back to back */
	uint32_t ttft_us;           /* before the first token */
	uint32_t decode_step_us;    /* tokens leave on a common clock of this period,
				     * as a batching model server decodes every
				     * stream in lockstep (svc_decode_due); 0 = each
				     * stream on its own timer */
	const char *token_text;     /* words the model repeats in order; NULL: the
				     * generator (words drawn from a fixed list,
				     * seeded by the prompt) */
};

/* Counters, for serve's stats line and the tests. Plain integers written
 * by the context's thread. */
struct svc_stats {
	uint64_t generate;      /* WP_SVC_GENERATE calls accepted */
	uint64_t tokens;        /* TEXT chunks sent */
	uint64_t finish_stop;   /* streams finished: "stop" */
	uint64_t finish_length; /* ... "length" (max_tokens reached) */
	uint64_t cancelled;     /* streams stopped early: the client cancelled or went away */
	uint64_t embed;         /* WP_SVC_EMBED calls answered */
	uint64_t vectors;       /* ... vectors in them */
	uint64_t models;        /* WP_SVC_MODELS calls */
	uint64_t tools_list;    /* WP_SVC_TOOLS_LIST calls */
	uint64_t tools_call;    /* WP_SVC_TOOLS_CALL calls answered with a result */
	uint64_t tool_echo, tool_sized, tool_add;
	uint64_t tool_errors;     /* results with isError: true (bad arguments) */
	uint64_t tools_cancelled; /* `sized` calls whose client went away while waiting */
	uint64_t bad_requests;    /* refused with wp_call_error (malformed, unknown) */
	uint64_t send_errors;     /* a reply or chunk the library refused */
	uint64_t oom;             /* refused: out of memory */
};

struct svc;

/* Copies what it needs from o (the word list included). Returns 0,
 * -EINVAL (an empty or too long word list, a model id that is empty, too
 * long or has '\n') or -ENOMEM. */
int svc_create(const struct svc_opts *o, struct sched *sched, struct svc **out);
/* Register the five methods on ctx. Returns 0 or wp_rpc_register's error. */
int svc_register(struct svc *v, struct wp_ctx *ctx);
const struct svc_stats *svc_stats(const struct svc *v);
/* The counters as one JSON object (snprintf's return convention). */
int svc_stats_json(const struct svc *v, char *buf, size_t len);
/* Free v. Jobs still queued must have been dropped first (sched_fini). */
void svc_destroy(struct svc *v);

/*
 * The generator's text and the sized tool's, inline so that other stubs of
 * the same contracts (bench/stacks/http_stub.c, the conventional stack's
 * HTTP services) produce the very same bytes for the same request.
 */

/* FNV-1a: the prompt's hash, the generator's seed. */
/*
 * Batched decoding: a model server with continuous batching (vLLM, TGI,
 * TensorRT-LLM) runs one decode step for every stream in its batch at
 * once, so each step yields one token per active stream at the same
 * moment. With step_us set, a token due at due_ns leaves at the next tick
 * of a common clock of that period (CLOCK_MONOTONIC, the same in every
 * process): every stream's tokens come out together, one wake-up per step
 * for the whole server instead of one per token. 0: due_ns unchanged.
 */
static inline uint64_t svc_decode_due(uint64_t due_ns, uint32_t step_us)
{
	uint64_t step = (uint64_t)step_us * 1000;

	return step ? (due_ns + step - 1) / step * step : due_ns;
}

static inline uint64_t svc_fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* splitmix64's finalizer: every output bit depends on every input bit. */
static inline uint64_t svc_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Word i of the generator's text for a prompt hashed to seed (without the
 * space that precedes every token but the first); *len its length. The
 * vocabulary: changing it changes every generated text (and the golden
 * text in tests/integ/test_service.c). */
static inline const char *svc_gen_word(uint64_t seed, uint32_t i, size_t *len)
{
	static const char *const vocab[64] = {
		"the",    "a",       "agent", "model",  "token",  "stream", "path",  "wire",
		"host",   "fast",    "slow",  "ring",   "frame",  "call",   "reply", "tool",
		"memory", "shared",  "queue", "kernel", "user",   "space",  "copy",  "zero",
		"byte",   "page",    "cache", "core",   "thread", "event",  "loop",  "poll",
		"send",   "receive", "open",  "close",  "ready",  "done",   "and",   "or",
		"with",   "without", "to",    "from",   "in",     "out",    "of",    "on",
		"is",     "was",     "will",  "can",    "not",    "every",  "one",   "two",
		"three",  "many",    "first", "last",   "next",   "new",    "old",   "now",
	};
	const char *w = vocab[svc_mix(seed ^ svc_mix(i)) & 63];

	*len = strlen(w);
	return w;
}

/* The sized tool's text: n letters, "abc...zabc..." (no JSON escaping needed). */
static inline void svc_sized_text(char *t, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		t[i] = (char)('a' + i % 26);
}

/*
 * Request parsing the handlers share with the fuzz target (tests/fuzz/
 * fuzz_service.c), inline so that it needs neither jansson nor a context.
 */

static inline int svc_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Whitespace-separated words in p[0..len): the rule for prompt_tokens. */
static inline uint32_t svc_count_words(const char *p, size_t len)
{
	uint32_t n = 0;
	int in = 0;

	for (size_t i = 0; i < len; i++) {
		if (svc_space(p[i])) {
			in = 0;
		} else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/*
 * An embeddings prompt: inputs [u32 len][bytes], exactly filling p[0..len).
 * On success (0) *count is 1..SVC_EMBED_INPUTS_MAX and *words their
 * svc_count_words total; otherwise -EINVAL and *why says what is wrong.
 */
static inline int svc_embed_inputs(const char *p, uint32_t len, uint32_t *count, uint32_t *words,
				   const char **why)
{
	uint32_t off = 0, n = 0, w = 0;

	while (off < len) {
		uint32_t l;

		if (len - off < 4) {
			*why = "embedding input: a length cut short";
			return -EINVAL;
		}
		memcpy(&l, p + off, 4);
		l = le32toh(l);
		off += 4;
		if (l > len - off) {
			*why = "embedding input longer than the prompt";
			return -EINVAL;
		}
		if (n == SVC_EMBED_INPUTS_MAX) {
			*why = "more than 65536 embedding inputs";
			return -EINVAL;
		}
		w += svc_count_words(p + off, l);
		off += l;
		n++;
	}
	if (n == 0) {
		*why = "no embedding inputs";
		return -EINVAL;
	}
	*count = n;
	*words = w;
	return 0;
}

#endif
