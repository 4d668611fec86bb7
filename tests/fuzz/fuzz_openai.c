// SPDX-License-Identifier: MIT
/*
 * Fuzz target for wirepathd's OpenAI request parser and SSE encoder
 * (src/daemon/openai.c, sse.c): the JSON bodies any client with an API key
 * (or none, under `auth: none`) posts to /v1/chat/completions,
 * /v1/completions and /v1/embeddings. Built two ways (tests/fuzz/fuzz.h):
 * with libFuzzer by tests/fuzz/run.sh, and into test_fuzz_openai, which
 * replays tests/fuzz/corpus-openai/ and mutations of it, with the tokens of
 * tests/fuzz/openai.dict.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * The input's first byte picks the kind (1 chat, 2 completion, 3
 * embedding, anything else: all three); the rest is the body. Per kind:
 *  (a) no crash; wpd_oai_parse returns 0 or -EINVAL (-ENOMEM never, at
 *      these sizes);
 *  (b) an error comes with a message, a param that is NULL or a non-empty
 *      name, and nothing left to free;
 *  (c) a success has a model of 1..127 bytes, include_usage only with
 *      stream; an embedding's prompt is exactly ninputs records
 *      [u32 len > 0][bytes]; a chat prompt is "role: ...\n" lines;
 *  (d) the prompt, whatever its bytes, sent as an SSE delta (and the model
 *      in the template) is one "data: ...\n\n" event that jansson parses.
 * A broken invariant aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "daemon/openai.h"
#include "daemon/sse.h"
#include "fuzz.h"

static void check_event(const struct wpd_buf *b)
{
	json_t *j;

	FUZZ_CHECK(!b->oom && b->len > 8);
	FUZZ_CHECK(!memcmp(b->p, "data: ", 6) && !memcmp(b->p + b->len - 2, "\n\n", 2));
	FUZZ_CHECK(!memchr(b->p, '\n', b->len - 2));
	j = json_loadb(b->p + 6, b->len - 8, 0, NULL);
	FUZZ_CHECK(j && json_is_object(j));
	json_decref(j);
}

/* The pass-through peek never reads a model jansson would not. */
static void peek(const char *body, size_t len)
{
	char model[128];
	json_t *j, *m;

	if (wpd_oai_peek_model(body, len, model, sizeof(model)) != 0)
		return;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return; /* bad JSON: the upstream refuses it; no model to disagree on */
	m = json_object_get(j, "model");
	FUZZ_CHECK(m && json_is_string(m) && !strcmp(json_string_value(m), model));
	json_decref(j);
}

static void one(enum wpd_oai_kind kind, const char *body, size_t len)
{
	struct wpd_oai_req r;
	char err[256];
	const char *param = "unset";
	int rc = wpd_oai_parse(kind, body, len, &r, err, sizeof(err), &param);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc) {
		FUZZ_CHECK(err[0]);
		FUZZ_CHECK(!param || param[0]);
		FUZZ_CHECK(!r.prompt.p);
		return;
	}
	FUZZ_CHECK(r.kind == kind);
	FUZZ_CHECK(r.model[0] && strlen(r.model) < sizeof(r.model));
	FUZZ_CHECK(!r.include_usage || r.stream);
	FUZZ_CHECK(!r.prompt.oom);
	if (kind == WPD_OAI_EMBEDDING) {
		size_t off = 0;
		uint32_t n = 0;

		FUZZ_CHECK(r.ninputs >= 1 && r.ninputs <= WPD_OAI_MAX_INPUTS);
		while (off < r.prompt.len) {
			uint32_t l;

			FUZZ_CHECK(r.prompt.len - off >= 4);
			memcpy(&l, r.prompt.p + off, 4); /* little-endian host */
			FUZZ_CHECK(l > 0 && l <= r.prompt.len - off - 4);
			off += 4 + l;
			n++;
		}
		FUZZ_CHECK(n == r.ninputs);
	} else {
		struct wpd_sse_tmpl t;
		struct wpd_buf b = { 0 };

		if (kind == WPD_OAI_CHAT)
			FUZZ_CHECK(r.prompt.len >= 3 && r.prompt.p[r.prompt.len - 1] == '\n');
		FUZZ_CHECK(r.ninputs == 0);
		FUZZ_CHECK(wpd_sse_init(&t, kind, "chatcmpl-fuzz", 1, r.model) == 0);
		if (r.include_usage)
			wpd_sse_usage_null(&t);
		wpd_sse_delta(&t, r.prompt.p ? r.prompt.p : "", r.prompt.len, &b);
		check_event(&b);
		wpd_buf_free(&b);
	}
	wpd_oai_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;

	if (!size)
		return 0;
	body = (const char *)data + 1;
	peek(body, size - 1);
	peek((const char *)data, size);
	if (data[0] >= 1 && data[0] <= 3) {
		one((enum wpd_oai_kind)data[0], body, size - 1);
	} else {
		one(WPD_OAI_CHAT, body, size - 1);
		one(WPD_OAI_COMPLETION, body, size - 1);
		one(WPD_OAI_EMBEDDING, body, size - 1);
	}
	return 0;
}
