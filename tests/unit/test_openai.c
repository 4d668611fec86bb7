// SPDX-License-Identifier: MIT
/*
 * wirepathd's OpenAI codec (src/daemon/openai.c, sse.c): every streamed
 * event is one "data: {...}\n\n" that jansson parses into exactly the object
 * OpenAI sends; the escaper (quotes, backslashes, control characters,
 * invalid UTF-8 as U+FFFD, 4-byte UTF-8 passed through); the non-streamed
 * bodies; and request parsing with the field each error names.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "testlib.h"
#include "daemon/buf.h"
#include "daemon/openai.h"
#include "daemon/sse.h"

/* One SSE event: "data: " JSON "\n\n", nothing else, no "event:" line. */
static json_t *event_json(const struct wpd_buf *b)
{
	json_error_t je;
	json_t *j;

	CHECK(!b->oom && b->len > 8);
	CHECK(!memcmp(b->p, "data: ", 6));
	CHECK(!memcmp(b->p + b->len - 2, "\n\n", 2));
	CHECK(!memchr(b->p, '\n', b->len - 2)); /* one line */
	j = json_loadb(b->p + 6, b->len - 8, 0, &je);
	if (!j)
		fprintf(stderr, "not JSON (%s): %s\n", je.text, b->p);
	CHECK(j);
	return j;
}

static void expect_json(json_t *got, json_t *want)
{
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);

		fprintf(stderr, "got:  %s\nwant: %s\n", g, w);
		CHECK(0);
	}
	json_decref(got);
	json_decref(want);
}

static json_t *body_json(const struct wpd_buf *b)
{
	json_error_t je;
	json_t *j;

	CHECK(!b->oom && b->p);
	j = json_loadb(b->p, b->len, 0, &je);
	if (!j)
		fprintf(stderr, "not JSON (%s): %s\n", je.text, b->p);
	CHECK(j);
	return j;
}

#define CHUNK(obj, model, choices)                                                           \
	json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", "chatcmpl-7", "object", obj, "created", \
		  (json_int_t)1700000000, "model", model, "choices", choices)

static void test_sse_chat(void)
{
	struct wpd_sse_tmpl t;
	struct wpd_buf b = { 0 };
	const char *model = "m\"od\\el";

	CHECK(wpd_sse_init(&t, WPD_OAI_CHAT, "chatcmpl-7", 1700000000, model) == 0);

	wpd_sse_role(&t, &b);
	expect_json(event_json(&b),
		    CHUNK("chat.completion.chunk", model,
			  json_pack("[{s:i, s:{s:s, s:s}, s:n, s:n}]", "index", 0, "delta", "role",
				    "assistant", "content", "", "logprobs", "finish_reason")));
	wpd_buf_reset(&b);

	wpd_sse_delta(&t, "Hello", 5, &b);
	expect_json(event_json(&b),
		    CHUNK("chat.completion.chunk", model,
			  json_pack("[{s:i, s:{s:s}, s:n, s:n}]", "index", 0, "delta", "content",
				    "Hello", "logprobs", "finish_reason")));
	wpd_buf_reset(&b);

	/* quotes, backslashes, newlines, control characters, 4-byte UTF-8 */
	const char *hard = "a\"b\\c\nd\te\x01\x1f\x7f \xf0\x9f\x98\x80 \xc3\xa9</script>";

	wpd_sse_delta(&t, hard, strlen(hard), &b);
	expect_json(event_json(&b),
		    CHUNK("chat.completion.chunk", model,
			  json_pack("[{s:i, s:{s:s}, s:n, s:n}]", "index", 0, "delta", "content",
				    hard, "logprobs", "finish_reason")));
	wpd_buf_reset(&b);

	/* invalid UTF-8: each bad byte is U+FFFD */
	wpd_sse_delta(&t,
		      "x\xff"
		      "y\xc3"
		      "z\xed\xa0\x80",
		      8, &b);
	expect_json(
		event_json(&b),
		CHUNK("chat.completion.chunk", model,
		      json_pack("[{s:i, s:{s:s}, s:n, s:n}]", "index", 0, "delta", "content",
				"x\xef\xbf\xbdy\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
				"logprobs", "finish_reason")));
	wpd_buf_reset(&b);

	/* an empty delta is still an event */
	wpd_sse_delta(&t, "", 0, &b);
	json_decref(event_json(&b));
	wpd_buf_reset(&b);

	wpd_sse_finish(&t, "length", &b);
	expect_json(event_json(&b), CHUNK("chat.completion.chunk", model,
					  json_pack("[{s:i, s:{}, s:n, s:s}]", "index", 0, "delta",
						    "logprobs", "finish_reason", "length")));
	wpd_buf_reset(&b);

	wpd_sse_usage(&t, 11, 22, &b);
	{
		json_t *want = CHUNK("chat.completion.chunk", model, json_array());

		json_object_set_new(want, "usage",
				    json_pack("{s:i, s:i, s:i}", "prompt_tokens", 11,
					      "completion_tokens", 22, "total_tokens", 33));
		expect_json(event_json(&b), want);
	}
	wpd_buf_reset(&b);

	wpd_sse_done(&b);
	CHECK(b.len == 14 && !memcmp(b.p, "data: [DONE]\n\n", 14));
	wpd_buf_reset(&b);

	/* include_usage: every chunk before the usage chunk has "usage": null */
	wpd_sse_usage_null(&t);
	wpd_sse_delta(&t, "x", 1, &b);
	{
		json_t *want = CHUNK("chat.completion.chunk", model,
				     json_pack("[{s:i, s:{s:s}, s:n, s:n}]", "index", 0, "delta",
					       "content", "x", "logprobs", "finish_reason"));

		json_object_set_new(want, "usage", json_null());
		expect_json(event_json(&b), want);
	}
	wpd_buf_reset(&b);
	wpd_sse_role(&t, &b);
	CHECK(strstr(b.p, ",\"usage\":null}\n\n"));
	json_decref(event_json(&b));
	wpd_buf_reset(&b);
	wpd_sse_finish(&t, NULL, &b);
	CHECK(strstr(b.p, "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"));
	json_decref(event_json(&b));
	wpd_buf_free(&b);

	/* embeddings do not stream; an id too long to fit is refused */
	CHECK(wpd_sse_init(&t, WPD_OAI_EMBEDDING, "x", 0, "m") == -EINVAL);
	{
		char big[400];

		memset(big, '"', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		CHECK(wpd_sse_init(&t, WPD_OAI_CHAT, big, 0, big) == -EINVAL);
	}
}

static void test_sse_completion(void)
{
	struct wpd_sse_tmpl t;
	struct wpd_buf b = { 0 };

	CHECK(wpd_sse_init(&t, WPD_OAI_COMPLETION, "chatcmpl-7", 1700000000, "gpt") == 0);
	wpd_sse_role(&t, &b); /* chat only: nothing */
	CHECK(b.len == 0);
	wpd_sse_delta(&t, "one two", 7, &b);
	expect_json(event_json(&b), CHUNK("text_completion", "gpt",
					  json_pack("[{s:i, s:s, s:n, s:n}]", "index", 0, "text",
						    "one two", "logprobs", "finish_reason")));
	wpd_buf_reset(&b);
	wpd_sse_finish(&t, "stop", &b);
	expect_json(event_json(&b), CHUNK("text_completion", "gpt",
					  json_pack("[{s:i, s:s, s:n, s:s}]", "index", 0, "text",
						    "", "logprobs", "finish_reason", "stop")));
	wpd_buf_free(&b);
}

static void escaped(const char *in, size_t n, const char *want)
{
	struct wpd_buf b = { 0 };

	wpd_json_escape(&b, in, n);
	if (strcmp(b.p, want)) {
		fprintf(stderr, "escape: got [%s] want [%s]\n", b.p, want);
		CHECK(0);
	}
	wpd_buf_free(&b);
}

static void test_escape(void)
{
	escaped("plain", 5, "plain");
	escaped("q\"b\\s/", 6, "q\\\"b\\\\s/");
	escaped("\b\f\n\r\t", 5, "\\b\\f\\n\\r\\t");
	escaped("\x01\x1f\x00", 3, "\\u0001\\u001f\\u0000");
	escaped("\x7f", 1, "\x7f"); /* DEL is valid in a JSON string */
	escaped("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
	escaped("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	escaped("\xe2\x80\xa8", 3, "\xe2\x80\xa8");
	escaped("\xff", 1, "\\ufffd");
	escaped("\x80", 1, "\\ufffd");
	escaped("\xc0\xaf", 2, "\\ufffd\\ufffd");                       /* overlong '/' */
	escaped("\xe0\x80\xaf", 3, "\\ufffd\\ufffd\\ufffd");            /* overlong */
	escaped("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd");            /* surrogate */
	escaped("\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"); /* > U+10FFFF */
	escaped("\xf0\x9f\x98", 3, "\\ufffd\\ufffd\\ufffd");            /* cut short */
	escaped("a\xc3", 2, "a\\ufffd");

	/* where a token source may cut */
	CHECK(wpd_utf8_complete("abc", 3) == 3);
	CHECK(wpd_utf8_complete("a\xf0\x9f\x98", 4) == 1);
	CHECK(wpd_utf8_complete("a\xf0\x9f", 3) == 1);
	CHECK(wpd_utf8_complete("a\xf0", 2) == 1);
	CHECK(wpd_utf8_complete("a\xf0\x9f\x98\x80", 5) == 5);
	CHECK(wpd_utf8_complete("a\xc3", 2) == 1);
	CHECK(wpd_utf8_complete("a\xc3\xa9", 3) == 3);
	CHECK(wpd_utf8_complete("a\xff", 2) == 2);     /* never valid: send it */
	CHECK(wpd_utf8_complete("a\xed\xa0", 3) == 3); /* a surrogate: never valid */
	CHECK(wpd_utf8_complete("\x80\x80\x80\x80", 4) == 4);
	CHECK(wpd_utf8_complete("", 0) == 0);
}

static void test_bodies(void)
{
	struct wpd_buf b = { 0 };

	wpd_oai_chat_body(&b, "chatcmpl-1", 1700000001, "m", "hi \"there\"", 10, "stop", 3, 4);
	expect_json(body_json(&b),
		    json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n, s:s}], "
			      "s:{s:i, s:i, s:i}}",
			      "id", "chatcmpl-1", "object", "chat.completion", "created",
			      (json_int_t)1700000001, "model", "m", "choices", "index", 0,
			      "message", "role", "assistant", "content", "hi \"there\"", "logprobs",
			      "finish_reason", "stop", "usage", "prompt_tokens", 3,
			      "completion_tokens", 4, "total_tokens", 7));
	wpd_buf_reset(&b);

	wpd_oai_completion_body(&b, "cmpl-1", 5, "m", "text", 4, "length", 1, 2);
	expect_json(body_json(&b),
		    json_pack("{s:s, s:s, s:I, s:s, s:[{s:s, s:i, s:n, s:s}], s:{s:i, s:i, s:i}}",
			      "id", "cmpl-1", "object", "text_completion", "created", (json_int_t)5,
			      "model", "m", "choices", "text", "text", "index", 0, "logprobs",
			      "finish_reason", "length", "usage", "prompt_tokens", 1,
			      "completion_tokens", 2, "total_tokens", 3));
	wpd_buf_reset(&b);

	/* embeddings: floats that round-trip, and base64 of the same floats */
	float v[6] = { 0.1f, -2.5e-8f, 3.0f, 1e30f, NAN, -0.0f };

	wpd_oai_embedding_body(&b, "emb", v, 2, 3, 9);
	{
		json_t *j = body_json(&b), *d = json_object_get(j, "data");

		CHECK(!strcmp(json_string_value(json_object_get(j, "object")), "list"));
		CHECK(!strcmp(json_string_value(json_object_get(j, "model")), "emb"));
		CHECK(json_integer_value(
			      json_object_get(json_object_get(j, "usage"), "prompt_tokens")) == 9);
		CHECK(json_integer_value(
			      json_object_get(json_object_get(j, "usage"), "total_tokens")) == 9);
		CHECK(json_array_size(d) == 2);
		for (size_t i = 0; i < 2; i++) {
			json_t *e = json_array_get(d, i), *a = json_object_get(e, "embedding");

			CHECK(!strcmp(json_string_value(json_object_get(e, "object")),
				      "embedding"));
			CHECK(json_integer_value(json_object_get(e, "index")) == (json_int_t)i);
			CHECK(json_array_size(a) == 3);
			for (size_t k = 0; k < 3; k++) {
				float want = isfinite(v[i * 3 + k]) ? v[i * 3 + k] : 0.0f;

				CHECK((float)json_number_value(json_array_get(a, k)) == want);
			}
		}
		json_decref(j);
	}
	wpd_buf_reset(&b);
	{
		/* base64 of little-endian floats, as the openai npm client decodes;
		 * 300 dimensions: more than one pass of the encoder */
		float big[300];

		for (int i = 0; i < 300; i++)
			big[i] = (float)i * 0.25f - 7.0f;
		wpd_oai_embedding_body_fmt(&b, "emb", big, 1, 300, 1, 1);
		json_t *j = body_json(&b);
		const char *s = json_string_value(json_object_get(
			json_array_get(json_object_get(j, "data"), 0), "embedding"));
		static const char tab[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		unsigned char raw[1200];
		size_t n = 0, len;
		uint32_t acc = 0;
		int bits = 0;

		CHECK(s);
		len = strlen(s);
		CHECK(len == 1600);
		for (size_t i = 0; i < len && s[i] != '='; i++) {
			acc = acc << 6 | (uint32_t)(strchr(tab, s[i]) - tab);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				raw[n++] = (unsigned char)(acc >> bits);
			}
		}
		CHECK(n == 1200);
		for (int i = 0; i < 300; i++) {
			uint32_t u = raw[4 * i] | raw[4 * i + 1] << 8 | raw[4 * i + 2] << 16 |
				     (uint32_t)raw[4 * i + 3] << 24;
			float f;

			memcpy(&f, &u, 4);
			CHECK(f == big[i]);
		}
		json_decref(j);
	}
	wpd_buf_reset(&b);

	wpd_oai_error_body(&b, "bad \"thing\"", "invalid_request_error", "messages", NULL);
	expect_json(body_json(&b),
		    json_pack("{s:{s:s, s:s, s:s, s:n}}", "error", "message", "bad \"thing\"",
			      "type", "invalid_request_error", "param", "messages", "code"));
	wpd_buf_reset(&b);
	wpd_oai_error_body(&b, "slow down", "rate_limit_error", NULL, "rate_limit_exceeded");
	expect_json(body_json(&b),
		    json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", "slow down", "type",
			      "rate_limit_error", "param", "code", "rate_limit_exceeded"));
	wpd_buf_reset(&b);

	const char *ids[] = { "llama", "e\"mb" };

	wpd_oai_models_body(&b, ids, 2, 42);
	expect_json(body_json(&b),
		    json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}", "object",
			      "list", "data", "id", "llama", "object", "model", "created", 42,
			      "owned_by", "wirepath", "id", "e\"mb", "object", "model", "created",
			      42, "owned_by", "wirepath"));
	wpd_buf_reset(&b);
	wpd_oai_models_body(&b, ids, 0, 42);
	CHECK(!strcmp(b.p, "{\"object\":\"list\",\"data\":[]}"));
	wpd_buf_free(&b);
}

static int parse(enum wpd_oai_kind kind, const char *body, struct wpd_oai_req *r, char *err,
		 const char **param)
{
	return wpd_oai_parse(kind, body, strlen(body), r, err, 256, param);
}

static void parse_ok(enum wpd_oai_kind kind, const char *body, struct wpd_oai_req *r)
{
	char err[256];
	const char *param;
	int rc = parse(kind, body, r, err, &param);

	if (rc) {
		fprintf(stderr, "parse failed (%d): %s\n", rc, err);
		CHECK(0);
	}
	CHECK(!r->prompt.oom);
}

static void parse_bad(enum wpd_oai_kind kind, const char *body, const char *want_err,
		      const char *want_param)
{
	struct wpd_oai_req r;
	char err[256];
	const char *param = "unset";
	int rc = parse(kind, body, &r, err, &param);

	if (rc != -EINVAL || !strstr(err, want_err) ||
	    (want_param ? !param || strcmp(param, want_param) : param != NULL)) {
		fprintf(stderr, "body %s: rc %d err [%s] param [%s]; want [%s] [%s]\n", body, rc,
			err, param ? param : "(null)", want_err,
			want_param ? want_param : "(null)");
		CHECK(0);
	}
	CHECK(r.prompt.p == NULL);
}

static void test_parse(void)
{
	struct wpd_oai_req r;

	parse_ok(WPD_OAI_CHAT,
		 "{\"model\":\"llama\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
		 "\"max_tokens\":16,\"temperature\":0.5,\"messages\":["
		 "{\"role\":\"system\",\"content\":\"Be brief.\"},"
		 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},"
		 "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
		 "{\"type\":\"text\",\"text\":\"there\"}]},"
		 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
		 "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c1\"}]}",
		 &r);
	CHECK(r.kind == WPD_OAI_CHAT && !strcmp(r.model, "llama"));
	CHECK(r.stream == 1 && r.include_usage == 1 && r.max_tokens == 16);
	CHECK(!strcmp(r.prompt.p, "system: Be brief.\nuser: Hi\nthere\nassistant: \ntool: 42\n"));
	wpd_oai_req_free(&r);

	parse_ok(WPD_OAI_CHAT,
		 "{\"model\":\"m\",\"max_tokens\":5,\"max_completion_tokens\":7,\"n\":1,"
		 "\"stream\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		 &r);
	CHECK(r.stream == 0 && r.include_usage == 0 && r.max_tokens == 7);
	wpd_oai_req_free(&r);

	parse_ok(WPD_OAI_COMPLETION, "{\"model\":\"m\",\"prompt\":\"Once upon\"}", &r);
	CHECK(!strcmp(r.prompt.p, "Once upon") && r.max_tokens == 0);
	wpd_oai_req_free(&r);
	parse_ok(WPD_OAI_COMPLETION, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"],\"stream\":false}",
		 &r);
	CHECK(!strcmp(r.prompt.p, "a\nb"));
	wpd_oai_req_free(&r);

	parse_ok(WPD_OAI_EMBEDDING, "{\"model\":\"e\",\"input\":\"hello\"}", &r);
	CHECK(r.ninputs == 1 && r.prompt.len == 9 && !memcmp(r.prompt.p, "\x05\0\0\0hello", 9));
	CHECK(r.base64 == 0);
	wpd_oai_req_free(&r);
	parse_ok(WPD_OAI_EMBEDDING,
		 "{\"model\":\"e\",\"input\":[\"ab\",\"\xc3\xa9\"],\"encoding_format\":\"base64\"}",
		 &r);
	CHECK(r.ninputs == 2 && r.base64 == 1 && r.prompt.len == 12);
	CHECK(!memcmp(r.prompt.p, "\x02\0\0\0ab\x02\0\0\0\xc3\xa9", 12));
	wpd_oai_req_free(&r);

	/* errors, each naming its field */
	parse_bad(WPD_OAI_CHAT, "{\"model\":", "We could not parse the JSON body", NULL);
	parse_bad(WPD_OAI_CHAT, "[1]", "must be a JSON object", NULL);
	parse_bad(WPD_OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		  "'model' is required", "model");
	parse_bad(WPD_OAI_CHAT, "{\"model\":7,\"messages\":[]}",
		  "'model' must be a non-empty string", "model");
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"\",\"messages\":[]}", "'model' must be a non-empty",
		  "model");
	{
		char body[400];

		snprintf(body, sizeof(body), "{\"model\":\"%0200d\"}", 0);
		parse_bad(WPD_OAI_CHAT, body, "'model' is longer than 127 bytes", "model");
	}
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"m\"}", "'messages' is required", "messages");
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"m\",\"messages\":[]}",
		  "'messages' must be a non-empty array", "messages");
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"m\",\"messages\":\"hi\"}",
		  "'messages' must be a non-empty array", "messages");
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"m\",\"messages\":[1]}",
		  "'messages[0]' must be an object", "messages");
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
		  "'messages[0].role' is required", "messages");
	parse_bad(WPD_OAI_CHAT,
		  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
		  "{\"role\":\"robot\",\"content\":\"x\"}]}",
		  "Invalid value for 'messages[1].role'", "messages");
	parse_bad(WPD_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}",
		  "'messages[0].content' is required", "messages");
	parse_bad(WPD_OAI_CHAT,
		  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
		  "'messages[0].content' must be a string or an array", "messages");
	parse_bad(
		WPD_OAI_CHAT,
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}",
		"'messages[0].content[0]' must be an object with a string 'type'", "messages");
	parse_bad(
		WPD_OAI_CHAT,
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
		"'messages[0].content[0].text' must be a string", "messages");
	parse_bad(
		WPD_OAI_CHAT,
		"{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		"'stream' must be a boolean", "stream");
	parse_bad(WPD_OAI_CHAT,
		  "{\"model\":\"m\",\"stream_options\":{\"include_usage\":true},"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		  "'stream_options' is only allowed when 'stream' is true", "stream_options");
	parse_bad(WPD_OAI_CHAT,
		  "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":1},"
		  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		  "'include_usage' must be a boolean", "stream_options");
	parse_bad(
		WPD_OAI_CHAT,
		"{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		"'max_tokens' must be a positive integer", "max_tokens");
	parse_bad(
		WPD_OAI_CHAT,
		"{\"model\":\"m\",\"max_completion_tokens\":\"5\",\"messages\":[{\"role\":\"user\","
		"\"content\":\"x\"}]}",
		"'max_completion_tokens' must be a positive integer", "max_completion_tokens");
	parse_bad(WPD_OAI_CHAT,
		  "{\"model\":\"m\",\"max_tokens\":4294967296,\"messages\":[{\"role\":\"user\","
		  "\"content\":\"x\"}]}",
		  "'max_tokens' must be a positive integer", "max_tokens");
	parse_bad(WPD_OAI_CHAT,
		  "{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		  "'n' must be 1", "n");
	/* duplicate keys: read differently by different parsers, refused */
	parse_bad(
		WPD_OAI_CHAT,
		"{\"model\":\"a\",\"model\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		"We could not parse the JSON body", NULL);
	parse_bad(WPD_OAI_COMPLETION, "{\"model\":\"m\"}", "'prompt' is required", "prompt");
	parse_bad(WPD_OAI_COMPLETION, "{\"model\":\"m\",\"prompt\":[1,2,3]}",
		  "token arrays are not accepted", "prompt");
	parse_bad(WPD_OAI_COMPLETION, "{\"model\":\"m\",\"prompt\":[]}",
		  "'prompt' must be a string or a non-empty array", "prompt");
	parse_bad(WPD_OAI_EMBEDDING, "{\"model\":\"m\"}", "'input' is required", "input");
	parse_bad(WPD_OAI_EMBEDDING, "{\"model\":\"m\",\"input\":\"\"}",
		  "'input' must not contain empty strings", "input");
	parse_bad(WPD_OAI_EMBEDDING, "{\"model\":\"m\",\"input\":[\"a\",\"\"]}",
		  "'input' must not contain empty strings", "input");
	parse_bad(WPD_OAI_EMBEDDING, "{\"model\":\"m\",\"input\":{}}",
		  "'input' must be a string or a non-empty array", "input");
	parse_bad(WPD_OAI_EMBEDDING, "{\"model\":\"m\",\"input\":[[1,2]]}",
		  "token arrays are not accepted", "input");
	parse_bad(WPD_OAI_EMBEDDING,
		  "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"hex\"}",
		  "'encoding_format' must be 'float' or 'base64'", "encoding_format");
	{
		struct wpd_buf b = { 0 };

		wpd_buf_adds(&b, "{\"model\":\"m\",\"input\":[");
		for (int i = 0; i <= WPD_OAI_MAX_INPUTS; i++)
			wpd_buf_adds(&b, i ? ",\"a\"" : "\"a\"");
		wpd_buf_adds(&b, "]}");
		parse_bad(WPD_OAI_EMBEDDING, b.p, "'input' has more than 2048 items", "input");
		wpd_buf_free(&b);
	}
	/* a NUL inside the body is not JSON */
	{
		char err[256];
		const char *param;

		CHECK(wpd_oai_parse(WPD_OAI_COMPLETION, "{\"model\":\"m\",\"prompt\":\"a\0b\"}", 26,
				    &r, err, sizeof(err), &param) == -EINVAL);
		CHECK(err[0]);
	}
}

/* The pass-through peek: certain answers only, -EAGAIN for the rest. */
static void test_peek(void)
{
	static const struct {
		const char *body;
		const char *model; /* NULL: -EAGAIN */
	} c[] = {
		{ "{\"model\":\"m1\",\"messages\":[]}", "m1" },
		{ " { \"stream\" : true , \"model\" : \"gpt-x\" } \n", "gpt-x" },
		{ "{\"messages\":[{\"model\":\"inner\"}],\"model\":\"outer\"}", "outer" },
		{ "{\"a\":{\"b\":[1,2,{\"model\":\"x\"}]},\"model\":\"y\"}", "y" },
		{ "{\"a\":\"}\\\"model\\\":\",\"model\":\"z\"}", "z" },
		{ "{\"model\":\"a\",\"model\":\"b\"}", NULL }, /* duplicate */
		{ "{\"mod\\u0065l\":\"a\"}", NULL },           /* escaped key */
		{ "{\"model\":\"a\\u0062\"}", NULL },          /* escaped value */
		{ "{\"model\":7}", NULL },                     /* not a string */
		{ "{\"model\":\"\"}", NULL },                  /* empty */
		{ "{\"model\":\"a\"", NULL },                  /* unterminated */
		{ "{\"model\":\"a\"} x", NULL },               /* trailing bytes */
		{ "[\"model\",\"a\"]", NULL },                 /* not an object */
		{ "{\"x\":1}", NULL },                         /* no model */
	};
	char m[128];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int rc = wpd_oai_peek_model(c[i].body, strlen(c[i].body), m, sizeof(m));

		if (c[i].model) {
			CHECK(rc == 0 && !strcmp(m, c[i].model));
		} else {
			CHECK(rc == -EAGAIN);
		}
	}
}

int main(void)
{
	test_watchdog(60);
	test_peek();
	test_sse_chat();
	test_sse_completion();
	test_escape();
	test_bodies();
	test_parse();
	printf("test_openai: ok\n");
	return 0;
}
