/* SPDX-License-Identifier: MIT */
/*
 * Server-sent events in OpenAI's streaming format, without a JSON tree per
 * token (docs/daemon.md, "OpenAI encoding"). wpd_sse_init renders once per
 * stream everything of a chunk that does not change (id, object, created,
 * model, the choice's opening); each token is then prefix + the escaped
 * delta + suffix, one reserve and three copies.
 *
 * Each event is "data: {...}\n\n" with no "event:" line, as OpenAI sends
 * them and the official clients parse them: the role chunk (chat), the
 * content chunks, the last choice chunk with finish_reason, the usage chunk
 * (choices []) when stream_options.include_usage was set, then
 * "data: [DONE]\n\n".
 */
#ifndef WPD_SSE_H
#define WPD_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/buf.h"
#include "daemon/openai.h"

/* "data: " + {"id":...,"model":...,"choices":[ + the delta's opening: the
 * id and the model escaped (at most 6 bytes per input byte). */
#define WPD_SSE_PRE_MAX 1280

struct wpd_sse_tmpl {
	enum wpd_oai_kind kind;
	int usage_null;    /* every chunk carries "usage":null (include_usage) */
	uint32_t head_len; /* pre[0..head_len): "data: {...,\"choices\":[" */
	uint32_t pre_len;  /* pre: head + the choice up to the delta's text */
	uint32_t suf_len;
	char pre[WPD_SSE_PRE_MAX];
	char suf[96];
};

/* kind chat or completion; id and model as they go out (escaped here).
 * Returns 0, or -EINVAL (embedding, or id and model too long to fit). */
int wpd_sse_init(struct wpd_sse_tmpl *t, enum wpd_oai_kind kind, const char *id, int64_t created,
		 const char *model);
/* stream_options.include_usage was set: every chunk before the usage chunk
 * carries "usage":null, as OpenAI's do. */
void wpd_sse_usage_null(struct wpd_sse_tmpl *t);
/* Chat only: the first chunk, delta {"role":"assistant","content":""}. */
void wpd_sse_role(const struct wpd_sse_tmpl *t, struct wpd_buf *out);
/* One "data: {...}\n\n" carrying text as the delta. */
void wpd_sse_delta(const struct wpd_sse_tmpl *t, const char *text, size_t len, struct wpd_buf *out);
/* The last choice chunk: empty delta ({} for chat, "" text for completion)
 * and finish_reason (NULL: "stop"). */
void wpd_sse_finish(const struct wpd_sse_tmpl *t, const char *reason, struct wpd_buf *out);
/* choices [] and usage {prompt_tokens, completion_tokens, total_tokens}. */
void wpd_sse_usage(const struct wpd_sse_tmpl *t, uint32_t prompt, uint32_t completion,
		   struct wpd_buf *out);
/* "data: [DONE]\n\n" */
void wpd_sse_done(struct wpd_buf *out);

/* JSON string content (no quotes): '"' and '\' escaped, \b \f \n \r \t as
 * such, other control characters as \u00XX, each byte of invalid UTF-8
 * (overlong, surrogate, above U+10FFFF, cut short) as \ufffd; valid UTF-8
 * (4-byte sequences included) passes through. */
void wpd_json_escape(struct wpd_buf *out, const char *s, size_t len);
/* How many bytes of s[0..len) end on a character boundary: a token source
 * that cuts a multi-byte character in two keeps the tail (at most 3 bytes)
 * for the next delta instead of sending it as \ufffd. */
size_t wpd_utf8_complete(const char *s, size_t len);

#endif
