// SPDX-License-Identifier: MIT
/*
 * OpenAI-compatible requests (parsed once per request with jansson) and
 * non-streamed response bodies (written straight into a buffer), openai.h.
 * Messages name the field at fault the way OpenAI's do ("'messages' must be
 * a non-empty array"), so a client's error says what to fix.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "daemon/openai.h"
#include "daemon/sse.h"

struct pctx {
	char *err;
	size_t errlen;
	const char **param;
};

static int bad(struct pctx *c, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct pctx *c, const char *param, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (c->errlen)
		vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	*c->param = param;
	return -EINVAL;
}

/* A member that is absent or null is "not set". */
static json_t *opt(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return v && !json_is_null(v) ? v : NULL;
}

static int get_bool(struct pctx *c, json_t *o, const char *key, int *out)
{
	json_t *v = opt(o, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return bad(c, key, "'%s' must be a boolean", key);
	*out = json_is_true(v);
	return 0;
}

static int get_count(struct pctx *c, json_t *o, const char *key, uint32_t *out)
{
	json_t *v = opt(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return bad(c, key, "'%s' must be a positive integer", key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static void add_u32le(struct wpd_buf *b, uint32_t v)
{
	unsigned char le[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
				(unsigned char)(v >> 24) };

	wpd_buf_add(b, le, 4);
}

static int parse_chat(struct pctx *c, json_t *root, struct wpd_oai_req *r)
{
	static const char *const roles[] = { "system",    "developer", "user",
					     "assistant", "tool",      "function" };
	json_t *msgs = opt(root, "messages"), *m;
	size_t i;

	if (!msgs)
		return bad(c, "messages", "'messages' is required");
	if (!json_is_array(msgs) || !json_array_size(msgs))
		return bad(c, "messages", "'messages' must be a non-empty array");
	json_array_foreach(msgs, i, m)
	{
		json_t *role, *content;
		const char *rs;
		size_t k;
		int known = 0;

		if (!json_is_object(m))
			return bad(c, "messages", "'messages[%zu]' must be an object", i);
		role = opt(m, "role");
		if (!role || !json_is_string(role))
			return bad(c, "messages", "'messages[%zu].role' is required (a string)", i);
		rs = json_string_value(role);
		for (k = 0; k < sizeof(roles) / sizeof(roles[0]); k++)
			known |= !strcmp(rs, roles[k]);
		if (!known)
			return bad(
				c, "messages",
				"Invalid value for 'messages[%zu].role': supported values are "
				"'system', 'developer', 'user', 'assistant', 'tool' and 'function'",
				i);
		content = opt(m, "content");
		wpd_buf_adds(&r->prompt, rs);
		wpd_buf_add(&r->prompt, ": ", 2);
		if (!content) {
			/* an assistant turn that only called tools */
			if (strcmp(rs, "assistant"))
				return bad(c, "messages", "'messages[%zu].content' is required", i);
		} else if (json_is_string(content)) {
			wpd_buf_add(&r->prompt, json_string_value(content),
				    json_string_length(content));
		} else if (json_is_array(content)) {
			json_t *part;
			size_t j;
			int first = 1;

			json_array_foreach(content, j, part)
			{
				json_t *type = opt(part, "type"), *text;

				if (!json_is_object(part) || !type || !json_is_string(type))
					return bad(c, "messages",
						   "'messages[%zu].content[%zu]' must be an object "
						   "with a string 'type'",
						   i, j);
				if (strcmp(json_string_value(type), "text"))
					continue; /* images, audio: not for a text model */
				text = opt(part, "text");
				if (!text || !json_is_string(text))
					return bad(
						c, "messages",
						"'messages[%zu].content[%zu].text' must be a string",
						i, j);
				if (!first)
					wpd_buf_add(&r->prompt, "\n", 1);
				first = 0;
				wpd_buf_add(&r->prompt, json_string_value(text),
					    json_string_length(text));
			}
		} else {
			return bad(c, "messages",
				   "'messages[%zu].content' must be a string or an array of "
				   "content parts",
				   i);
		}
		wpd_buf_add(&r->prompt, "\n", 1);
	}
	return 0;
}

static int parse_completion(struct pctx *c, json_t *root, struct wpd_oai_req *r)
{
	json_t *p = opt(root, "prompt"), *s;
	size_t i;

	if (!p)
		return bad(c, "prompt", "'prompt' is required");
	if (json_is_string(p)) {
		wpd_buf_add(&r->prompt, json_string_value(p), json_string_length(p));
		return 0;
	}
	if (!json_is_array(p) || !json_array_size(p))
		return bad(c, "prompt",
			   "'prompt' must be a string or a non-empty array of strings");
	json_array_foreach(p, i, s)
	{
		if (!json_is_string(s))
			return bad(c, "prompt",
				   "'prompt' must be a string or a non-empty array of strings "
				   "(token arrays are not accepted)");
		if (i)
			wpd_buf_add(&r->prompt, "\n", 1);
		wpd_buf_add(&r->prompt, json_string_value(s), json_string_length(s));
	}
	return 0;
}

static int add_input(struct pctx *c, json_t *s, struct wpd_oai_req *r)
{
	size_t n = json_string_length(s);

	if (!n)
		return bad(c, "input", "'input' must not contain empty strings");
	if (n > UINT32_MAX)
		return bad(c, "input", "'input' has a string longer than 4 GiB");
	add_u32le(&r->prompt, (uint32_t)n);
	wpd_buf_add(&r->prompt, json_string_value(s), n);
	r->ninputs++;
	return 0;
}

static int parse_embedding(struct pctx *c, json_t *root, struct wpd_oai_req *r)
{
	json_t *in = opt(root, "input"), *fmt = opt(root, "encoding_format"), *s;
	size_t i;

	if (fmt) {
		if (json_is_string(fmt) && !strcmp(json_string_value(fmt), "base64"))
			r->base64 = 1;
		else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "float"))
			return bad(c, "encoding_format",
				   "'encoding_format' must be 'float' or 'base64'");
	}
	if (!in)
		return bad(c, "input", "'input' is required");
	if (json_is_string(in))
		return add_input(c, in, r);
	if (!json_is_array(in) || !json_array_size(in))
		return bad(c, "input", "'input' must be a string or a non-empty array of strings");
	if (json_array_size(in) > WPD_OAI_MAX_INPUTS)
		return bad(c, "input", "'input' has more than %d items", WPD_OAI_MAX_INPUTS);
	json_array_foreach(in, i, s)
	{
		if (!json_is_string(s))
			return bad(c, "input",
				   "'input' must be a string or a non-empty array of strings "
				   "(token arrays are not accepted)");
		if (add_input(c, s, r) < 0)
			return -EINVAL;
	}
	return 0;
}

int wpd_oai_parse(enum wpd_oai_kind kind, const char *body, size_t len, struct wpd_oai_req *r,
		  char *err, size_t errlen, const char **param)
{
	struct pctx c = { err, errlen, param };
	json_error_t je;
	json_t *root, *v;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	*param = NULL;
	if (errlen)
		err[0] = 0;
	if (kind != WPD_OAI_CHAT && kind != WPD_OAI_COMPLETION && kind != WPD_OAI_EMBEDDING)
		return bad(&c, NULL, "unknown request kind");
	/* Duplicate keys refused: two "model" members would be read differently
	 * by the next hop. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return bad(&c, NULL,
			   "We could not parse the JSON body of your request: %s (line %d, "
			   "column %d)",
			   je.text, je.line, je.column);
	if (!json_is_object(root)) {
		ret = bad(&c, NULL, "The request body must be a JSON object");
		goto out;
	}
	v = opt(root, "model");
	if (!v) {
		ret = bad(&c, "model", "'model' is required");
		goto out;
	}
	if (!json_is_string(v) || !json_string_length(v)) {
		ret = bad(&c, "model", "'model' must be a non-empty string");
		goto out;
	}
	if (json_string_length(v) >= sizeof(r->model)) {
		ret = bad(&c, "model", "'model' is longer than %zu bytes", sizeof(r->model) - 1);
		goto out;
	}
	memcpy(r->model, json_string_value(v), json_string_length(v) + 1);
	if (kind != WPD_OAI_EMBEDDING) {
		json_t *so = opt(root, "stream_options"), *n = opt(root, "n");

		if ((ret = get_bool(&c, root, "stream", &r->stream)) < 0)
			goto out;
		if (so) {
			if (!r->stream) {
				ret = bad(&c, "stream_options",
					  "'stream_options' is only allowed when 'stream' is true");
				goto out;
			}
			if (!json_is_object(so)) {
				ret = bad(&c, "stream_options",
					  "'stream_options' must be an object");
				goto out;
			}
			if ((ret = get_bool(&c, so, "include_usage", &r->include_usage)) < 0) {
				*param = "stream_options";
				goto out;
			}
		}
		if ((ret = get_count(&c, root, "max_tokens", &r->max_tokens)) < 0 ||
		    (ret = get_count(&c, root, "max_completion_tokens", &r->max_tokens)) < 0)
			goto out;
		if (n && (!json_is_integer(n) || json_integer_value(n) != 1)) {
			ret = bad(&c, "n", "'n' must be 1 (one choice per request)");
			goto out;
		}
	}
	if (kind == WPD_OAI_CHAT)
		ret = parse_chat(&c, root, r);
	else if (kind == WPD_OAI_COMPLETION)
		ret = parse_completion(&c, root, r);
	else
		ret = parse_embedding(&c, root, r);
	if (!ret && r->prompt.oom)
		ret = -ENOMEM;
	if (ret == -ENOMEM)
		bad(&c, NULL, "out of memory");
out:
	json_decref(root);
	if (ret < 0) {
		wpd_buf_free(&r->prompt);
		memset(r, 0, sizeof(*r));
		r->kind = kind;
	}
	return ret;
}

void wpd_oai_req_free(struct wpd_oai_req *r)
{
	wpd_buf_free(&r->prompt);
}

/* ---- bodies ---- */

static void add_str(struct wpd_buf *b, const char *s)
{
	wpd_buf_add(b, "\"", 1);
	wpd_json_escape(b, s, strlen(s));
	wpd_buf_add(b, "\"", 1);
}

static void add_str_or_null(struct wpd_buf *b, const char *s)
{
	if (s)
		add_str(b, s);
	else
		wpd_buf_add(b, "null", 4);
}

static void add_usage(struct wpd_buf *b, uint32_t prompt, int with_completion, uint32_t completion)
{
	if (with_completion)
		wpd_buf_addf(b,
			     "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
			     "\"total_tokens\":%llu}",
			     prompt, completion, (unsigned long long)prompt + completion);
	else
		wpd_buf_addf(b, "\"usage\":{\"prompt_tokens\":%u,\"total_tokens\":%u}", prompt,
			     prompt);
}

static void body_head(struct wpd_buf *out, const char *id, const char *object, int64_t created,
		      const char *model)
{
	wpd_buf_adds(out, "{\"id\":");
	add_str(out, id);
	wpd_buf_addf(out, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object,
		     (long long)created);
	add_str(out, model);
}

void wpd_oai_chat_body(struct wpd_buf *out, const char *id, int64_t created, const char *model,
		       const char *text, size_t len, const char *finish, uint32_t prompt_tokens,
		       uint32_t completion_tokens)
{
	body_head(out, id, "chat.completion", created, model);
	wpd_buf_adds(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
			  "\"content\":\"");
	wpd_json_escape(out, text, len);
	wpd_buf_adds(out, "\"},\"logprobs\":null,\"finish_reason\":");
	add_str(out, finish ? finish : "stop");
	wpd_buf_adds(out, "}],");
	add_usage(out, prompt_tokens, 1, completion_tokens);
	wpd_buf_add(out, "}", 1);
}

void wpd_oai_completion_body(struct wpd_buf *out, const char *id, int64_t created,
			     const char *model, const char *text, size_t len, const char *finish,
			     uint32_t prompt_tokens, uint32_t completion_tokens)
{
	body_head(out, id, "text_completion", created, model);
	wpd_buf_adds(out, ",\"choices\":[{\"text\":\"");
	wpd_json_escape(out, text, len);
	wpd_buf_adds(out, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":");
	add_str(out, finish ? finish : "stop");
	wpd_buf_adds(out, "}],");
	add_usage(out, prompt_tokens, 1, completion_tokens);
	wpd_buf_add(out, "}", 1);
}

static void add_base64(struct wpd_buf *b, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *w0 = wpd_buf_reserve(b, (n + 2) / 3 * 4), *w = w0;
	size_t i;

	if (!w)
		return;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		*w++ = tab[v >> 18];
		*w++ = tab[(v >> 12) & 63];
		*w++ = tab[(v >> 6) & 63];
		*w++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);

		*w++ = tab[v >> 18];
		*w++ = tab[(v >> 12) & 63];
		*w++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*w++ = '=';
	}
	wpd_buf_commit(b, (size_t)(w - w0));
}

void wpd_oai_embedding_body_fmt(struct wpd_buf *out, const char *model, const float *v,
				uint32_t count, uint32_t dim, uint32_t prompt_tokens, int base64)
{
	wpd_buf_adds(out, "{\"object\":\"list\",\"data\":[");
	for (uint32_t i = 0; i < count; i++) {
		const float *e = v + (size_t)i * dim;

		wpd_buf_addf(out, "%s{\"object\":\"embedding\",\"index\":%u,\"embedding\":",
			     i ? "," : "", i);
		if (base64) {
			unsigned char le[4 * 256];
			uint32_t j = 0;

			/* little-endian floats, in whole groups of 3 bytes per
			 * pass so the base64 of the pieces concatenates */
			wpd_buf_add(out, "\"", 1);
			while (j < dim) {
				uint32_t k = 0;

				for (; j < dim && k + 4 <= 3 * 4 * 64; j++, k += 4) {
					uint32_t u;

					memcpy(&u, &e[j], 4);
					le[k] = (unsigned char)u;
					le[k + 1] = (unsigned char)(u >> 8);
					le[k + 2] = (unsigned char)(u >> 16);
					le[k + 3] = (unsigned char)(u >> 24);
				}
				add_base64(out, le, k);
			}
			wpd_buf_add(out, "\"", 1);
		} else {
			wpd_buf_add(out, "[", 1);
			for (uint32_t j = 0; j < dim; j++)
				wpd_buf_addf(out, "%s%.9g", j ? "," : "",
					     isfinite(e[j]) ? (double)e[j] : 0.0);
			wpd_buf_add(out, "]", 1);
		}
		wpd_buf_add(out, "}", 1);
	}
	wpd_buf_adds(out, "],\"model\":");
	add_str(out, model);
	wpd_buf_add(out, ",", 1);
	add_usage(out, prompt_tokens, 0, 0);
	wpd_buf_add(out, "}", 1);
}

void wpd_oai_embedding_body(struct wpd_buf *out, const char *model, const float *v, uint32_t count,
			    uint32_t dim, uint32_t prompt_tokens)
{
	wpd_oai_embedding_body_fmt(out, model, v, count, dim, prompt_tokens, 0);
}

void wpd_oai_error_body(struct wpd_buf *out, const char *message, const char *type,
			const char *param, const char *code)
{
	wpd_buf_adds(out, "{\"error\":{\"message\":");
	add_str(out, message ? message : "");
	wpd_buf_adds(out, ",\"type\":");
	add_str(out, type ? type : "invalid_request_error");
	wpd_buf_adds(out, ",\"param\":");
	add_str_or_null(out, param);
	wpd_buf_adds(out, ",\"code\":");
	add_str_or_null(out, code);
	wpd_buf_adds(out, "}}");
}

void wpd_oai_models_body(struct wpd_buf *out, const char *const *ids, uint32_t n, int64_t created)
{
	wpd_buf_adds(out, "{\"object\":\"list\",\"data\":[");
	for (uint32_t i = 0; i < n; i++) {
		wpd_buf_adds(out, i ? ",{\"id\":" : "{\"id\":");
		add_str(out, ids[i]);
		wpd_buf_addf(out,
			     ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"wirepath\"}",
			     (long long)created);
	}
	wpd_buf_adds(out, "]}");
}

/*
 * The model of a request that is only passed through (an http backend),
 * without building a JSON tree: the gateway bench's profile had jansson at
 * a third of the daemon's CPU on that path, for one string (docs/daemon.md,
 * "Benchmark"). A scan of the top-level object that answers only when the
 * answer is certain: the key spelled plainly (no escapes), exactly once, its
 * value a string without escapes, and the object well-formed to its end. In
 * every other case it returns -EAGAIN and the caller parses with jansson,
 * which refuses what must be refused (duplicate keys, bad JSON), so the
 * daemon and the upstream can never read two different models from one
 * body. tests/fuzz/fuzz_openai.c checks the two agree on every input.
 */
static size_t ws(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* Past a string starting at p[i] == '"'; 0 if unterminated or has a raw
 * control char. *esc: it had a backslash. */
static size_t skip_str(const char *p, size_t i, size_t n, int *esc)
{
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			*esc = 1;
			i++;
		}
	}
	return 0;
}

/* Past one value (structure only: literals and numbers are left for
 * jansson to judge, which the caller's fallback would do). 0 on error. */
static size_t skip_val(const char *p, size_t i, size_t n)
{
	int depth = 0, esc;

	do {
		i = ws(p, i, n);
		if (i >= n)
			return 0;
		switch (p[i]) {
		case '"':
			i = skip_str(p, i, n, &esc);
			if (!i)
				return 0;
			break;
		case '{':
		case '[':
			if (++depth > 64)
				return 0;
			i++;
			break;
		case '}':
		case ']':
			if (--depth < 0)
				return 0;
			i++;
			break;
		case ',':
		case ':':
			if (!depth)
				return 0;
			i++;
			break;
		default:
			while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' &&
			       p[i] != '\n' && p[i] != '\r' && p[i] != '\t' && p[i] != '"' &&
			       p[i] != '{' && p[i] != '[' && p[i] != ':')
				i++;
		}
	} while (depth > 0);
	return i;
}

int wpd_oai_peek_model(const char *body, size_t len, char *model, size_t cap)
{
	size_t i = ws(body, 0, len), k, ks;
	int found = 0, esc;

	if (i >= len || body[i] != '{')
		return -EAGAIN;
	i = ws(body, i + 1, len);
	if (i < len && body[i] == '}')
		return -EAGAIN;
	for (;;) {
		if (i >= len || body[i] != '"')
			return -EAGAIN;
		esc = 0;
		ks = i + 1;
		k = skip_str(body, i, len, &esc);
		if (!k || esc)
			return -EAGAIN;
		i = ws(body, k, len);
		if (i >= len || body[i] != ':')
			return -EAGAIN;
		i = ws(body, i + 1, len);
		if (k - 1 - ks == 5 && !memcmp(body + ks, "model", 5)) {
			size_t vs = i + 1, ve;

			if (found || i >= len || body[i] != '"')
				return -EAGAIN;
			esc = 0;
			ve = skip_str(body, i, len, &esc);
			if (!ve || esc || ve - 1 - vs >= cap || ve - 1 == vs)
				return -EAGAIN;
			memcpy(model, body + vs, ve - 1 - vs);
			model[ve - 1 - vs] = 0;
			found = 1;
			i = ve;
		} else {
			i = skip_val(body, i, len);
			if (!i)
				return -EAGAIN;
		}
		i = ws(body, i, len);
		if (i < len && body[i] == ',') {
			i = ws(body, i + 1, len);
			continue;
		}
		if (i < len && body[i] == '}')
			break;
		return -EAGAIN;
	}
	if (ws(body, i + 1, len) != len)
		return -EAGAIN;
	return found ? 0 : -EAGAIN;
}
