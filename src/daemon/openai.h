/* SPDX-License-Identifier: MIT */
/*
 * The OpenAI-compatible API's requests and non-streamed responses
 * (docs/daemon.md, "OpenAI encoding"). A request is parsed once with
 * jansson into struct wpd_oai_req (the tree is freed before the call
 * returns); responses are written straight into a wpd_buf with the strings
 * escaped by wpd_json_escape (sse.h), no tree. Streamed responses: sse.h.
 */
#ifndef WPD_OPENAI_H
#define WPD_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/buf.h"

enum wpd_oai_kind { WPD_OAI_CHAT = 1, WPD_OAI_COMPLETION = 2, WPD_OAI_EMBEDDING = 3 };

/* Inputs of one embedding request at most (OpenAI's limit). */
#define WPD_OAI_MAX_INPUTS 2048

struct wpd_oai_req {
	enum wpd_oai_kind kind;
	char model[128];
	int stream;          /* "stream": true */
	int include_usage;   /* stream_options.include_usage */
	uint32_t max_tokens; /* max_completion_tokens, else max_tokens; 0 = unset */
	/* chat: messages rendered as "role: content\n" lines (content a string,
	 *       or the text parts of a content array joined by "\n");
	 * completion: the prompt string (or array of strings joined by "\n");
	 * embedding: each input as [u32 little-endian len][bytes]. */
	struct wpd_buf prompt;
	uint32_t ninputs; /* embedding: how many inputs */
	int base64;       /* embedding: "encoding_format": "base64" (what the
			   * openai npm client asks for by default) */
};

/*
 * Parse and validate a request body of this kind. Returns 0 (free r with
 * wpd_oai_req_free), -EINVAL with err = an OpenAI-style message naming the
 * bad field ("'messages' must be a non-empty array") and *param = the
 * field's name (a static string) or NULL, or -ENOMEM. On failure r holds
 * nothing to free.
 */
int wpd_oai_parse(enum wpd_oai_kind kind, const char *body, size_t len, struct wpd_oai_req *r,
		  char *err, size_t errlen, const char **param);
void wpd_oai_req_free(struct wpd_oai_req *r);
/* The top-level "model" of a body that is only passed through, without a
 * JSON tree: 0 and model set when certain, -EAGAIN when the caller must
 * parse with wpd_oai_parse (escapes, a duplicate, malformed JSON, no model,
 * longer than cap - 1). Never a different answer from jansson's. */
int wpd_oai_peek_model(const char *body, size_t len, char *model, size_t cap);

/* Non-streamed bodies. id is the caller's ("chatcmpl-...", "cmpl-..."),
 * created Unix seconds, finish "stop" / "length" / ... */
void wpd_oai_chat_body(struct wpd_buf *out, const char *id, int64_t created, const char *model,
		       const char *text, size_t len, const char *finish, uint32_t prompt_tokens,
		       uint32_t completion_tokens);
void wpd_oai_completion_body(struct wpd_buf *out, const char *id, int64_t created,
			     const char *model, const char *text, size_t len, const char *finish,
			     uint32_t prompt_tokens, uint32_t completion_tokens);
/* count vectors of dim floats, v[i * dim + j]; as JSON numbers (%.9g, which
 * round-trips a float; NaN and infinities, which JSON cannot carry, as 0). */
void wpd_oai_embedding_body(struct wpd_buf *out, const char *model, const float *v, uint32_t count,
			    uint32_t dim, uint32_t prompt_tokens);
/* The same with base64 set: each embedding a base64 string of its floats,
 * little-endian (OpenAI's "encoding_format": "base64"). */
void wpd_oai_embedding_body_fmt(struct wpd_buf *out, const char *model, const float *v,
				uint32_t count, uint32_t dim, uint32_t prompt_tokens, int base64);
/* {"error":{"message":...,"type":...,"param":...,"code":...}}; NULL param or
 * code is JSON null. */
void wpd_oai_error_body(struct wpd_buf *out, const char *message, const char *type,
			const char *param, const char *code);
/* {"object":"list","data":[{"id","object":"model","created","owned_by":"wirepath"}]} */
void wpd_oai_models_body(struct wpd_buf *out, const char *const *ids, uint32_t n, int64_t created);

#endif
