/* SPDX-License-Identifier: MIT */
/*
 * The service contracts wirepathd speaks to native backends (docs/daemon.md,
 * "Native backends"): how an OpenAI-style request becomes a model-service
 * RPC whose streamed chunks become SSE events, and how an MCP tools/call
 * becomes a tool-service RPC. Any program written against libwirepath can
 * be such a service: register handlers for these methods with
 * wp_rpc_register (examples/model_service.c; `wirepath serve` implements
 * both contracts as stubs).
 *
 * Header-only: plain little-endian structs and inline helpers, no library
 * symbols. All integers are little-endian; every length is checked by the
 * decoders against the message's length, so a decoder never reads past
 * what arrived.
 */
#ifndef WIREPATH_SERVICE_H
#define WIREPATH_SERVICE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Methods (below WP_METHOD_RESERVED, above the bench stubs' 1..5). */
#define WP_SVC_GENERATE 0x100u   /* model: stream of WP_SVC_CHUNK_* chunks */
#define WP_SVC_EMBED 0x101u      /* model: one reply, struct wp_svc_embed_hdr + floats */
#define WP_SVC_MODELS 0x102u     /* model: one reply, model ids separated by '\n' */
#define WP_SVC_TOOLS_LIST 0x110u /* tool: one reply, a JSON array of MCP Tool objects */
#define WP_SVC_TOOLS_CALL 0x111u /* tool: one reply, an MCP CallToolResult JSON object */

#define WP_SVC_VERSION 1u

enum wp_svc_kind {
	WP_SVC_KIND_CHAT = 1,       /* /v1/chat/completions: prompt = the messages, rendered */
	WP_SVC_KIND_COMPLETION = 2, /* /v1/completions: prompt = the prompt */
	WP_SVC_KIND_EMBEDDING = 3,  /* /v1/embeddings: prompt = inputs, each [u32 len][bytes] */
};

/*
 * WP_SVC_GENERATE and WP_SVC_EMBED requests: this header, then model_len
 * bytes of model id, prompt_len bytes of prompt, body_len bytes of the
 * client's JSON request body as received (for services that read other
 * parameters; may be 0 bytes).
 */
struct wp_svc_req_hdr {
	uint32_t version;    /* WP_SVC_VERSION */
	uint32_t kind;       /* enum wp_svc_kind */
	uint32_t max_tokens; /* 0: the service's default */
	uint32_t flags;      /* 0 */
	uint32_t model_len;
	uint32_t prompt_len;
	uint32_t body_len;
	uint32_t reserved; /* 0 */
};

/* A WP_SVC_GENERATE response chunk starts with one type byte. */
#define WP_SVC_CHUNK_TEXT 'T'   /* the rest: a UTF-8 text delta (one token, or a few) */
#define WP_SVC_CHUNK_FINISH 'F' /* struct wp_svc_finish; the last chunk of the stream */

enum wp_svc_finish_reason {
	WP_SVC_FINISH_STOP = 0,   /* "stop" */
	WP_SVC_FINISH_LENGTH = 1, /* "length": max_tokens reached */
};

struct wp_svc_finish {
	uint8_t type;   /* WP_SVC_CHUNK_FINISH */
	uint8_t reason; /* enum wp_svc_finish_reason */
	uint16_t reserved;
	uint32_t prompt_tokens;
	uint32_t completion_tokens;
};

/* A WP_SVC_EMBED reply: this header, then count * dim little-endian floats. */
struct wp_svc_embed_hdr {
	uint32_t count; /* one vector per input */
	uint32_t dim;
	uint32_t prompt_tokens;
	uint32_t reserved;
};

/* A WP_SVC_TOOLS_CALL request: this header, name_len bytes of tool name
 * (the backend's own name, without the daemon's prefix), then the rest of
 * the message: the call's `arguments` JSON object (may be empty = {}). */
struct wp_svc_tool_hdr {
	uint32_t name_len;
	uint32_t reserved;
};

/* Upper bounds a decoder enforces before trusting lengths. */
#define WP_SVC_MODEL_MAX 256u
#define WP_SVC_TOOL_NAME_MAX 256u

/* Decoded views into a received message (pointers into msg data). */
struct wp_svc_req {
	struct wp_svc_req_hdr h;
	const char *model;
	const char *prompt;
	const char *body;
};

/* Parse a WP_SVC_GENERATE / WP_SVC_EMBED request. Returns 0 or -EINVAL
 * (short, wrong version, lengths that do not add up to len). */
static inline int wp_svc_req_parse(const void *data, uint32_t len, struct wp_svc_req *r)
{
	const char *p = (const char *)data;
	uint64_t need;

	if (len < sizeof(r->h))
		return -22;
	memcpy(&r->h, p, sizeof(r->h));
	r->h.version = le32toh(r->h.version);
	r->h.kind = le32toh(r->h.kind);
	r->h.max_tokens = le32toh(r->h.max_tokens);
	r->h.flags = le32toh(r->h.flags);
	r->h.model_len = le32toh(r->h.model_len);
	r->h.prompt_len = le32toh(r->h.prompt_len);
	r->h.body_len = le32toh(r->h.body_len);
	if (r->h.version != WP_SVC_VERSION || r->h.model_len > WP_SVC_MODEL_MAX)
		return -22;
	if (r->h.kind < WP_SVC_KIND_CHAT || r->h.kind > WP_SVC_KIND_EMBEDDING)
		return -22;
	need = (uint64_t)sizeof(r->h) + r->h.model_len + r->h.prompt_len + r->h.body_len;
	if (need != len)
		return -22;
	r->model = p + sizeof(r->h);
	r->prompt = r->model + r->h.model_len;
	r->body = r->prompt + r->h.prompt_len;
	return 0;
}

/* The header of a request whose three parts follow; the caller writes the
 * parts after it. */
static inline void wp_svc_req_hdr_init(struct wp_svc_req_hdr *h, uint32_t kind, uint32_t max_tokens,
				       uint32_t model_len, uint32_t prompt_len, uint32_t body_len)
{
	memset(h, 0, sizeof(*h));
	h->version = htole32(WP_SVC_VERSION);
	h->kind = htole32(kind);
	h->max_tokens = htole32(max_tokens);
	h->model_len = htole32(model_len);
	h->prompt_len = htole32(prompt_len);
	h->body_len = htole32(body_len);
}

static inline void wp_svc_finish_init(struct wp_svc_finish *f, uint32_t reason,
				      uint32_t prompt_tokens, uint32_t completion_tokens)
{
	memset(f, 0, sizeof(*f));
	f->type = WP_SVC_CHUNK_FINISH;
	f->reason = (uint8_t)reason;
	f->prompt_tokens = htole32(prompt_tokens);
	f->completion_tokens = htole32(completion_tokens);
}

/* Parse a finish chunk. Returns 0 or -EINVAL. */
static inline int wp_svc_finish_parse(const void *data, uint32_t len, struct wp_svc_finish *f)
{
	if (len != sizeof(*f))
		return -22;
	memcpy(f, data, sizeof(*f));
	if (f->type != WP_SVC_CHUNK_FINISH || f->reason > WP_SVC_FINISH_LENGTH)
		return -22;
	f->prompt_tokens = le32toh(f->prompt_tokens);
	f->completion_tokens = le32toh(f->completion_tokens);
	return 0;
}

/* Parse a tools/call request: *name (name_len bytes, not terminated) and
 * *args (args_len bytes of JSON). Returns 0 or -EINVAL. */
static inline int wp_svc_tool_parse(const void *data, uint32_t len, const char **name,
				    uint32_t *name_len, const char **args, uint32_t *args_len)
{
	struct wp_svc_tool_hdr h;

	if (len < sizeof(h))
		return -22;
	memcpy(&h, data, sizeof(h));
	h.name_len = le32toh(h.name_len);
	if (h.name_len == 0 || h.name_len > WP_SVC_TOOL_NAME_MAX || h.name_len > len - sizeof(h))
		return -22;
	*name = (const char *)data + sizeof(h);
	*name_len = h.name_len;
	*args = *name + h.name_len;
	*args_len = len - (uint32_t)sizeof(h) - h.name_len;
	return 0;
}

#ifdef __cplusplus
}
#endif
#endif
