// SPDX-License-Identifier: MIT
/*
 * OpenAI's streaming chunks from a template, and the JSON string escaper
 * every body of the daemon uses (sse.h). The hot path, wpd_sse_delta, is
 * one reserve of the worst case and a copy of prefix, escaped text and
 * suffix: no JSON tree, no printf (docs/daemon.md has its cost per token
 * next to jansson's).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sse.h"

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s (Unicode 15, table 3-7), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

size_t wpd_utf8_complete(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t k = len, back = 0;

	/* The last lead byte within 3 bytes of the end. */
	while (k > 0 && back < 4 && (s[k - 1] & 0xc0) == 0x80) {
		k--;
		back++;
	}
	if (k == 0 || back >= 4)
		return len;
	k--; /* s[k] is a lead (or ASCII) byte */
	{
		unsigned char c = s[k], lo = 0x80, hi = 0xbf;
		size_t need, have = len - k;

		if (c >= 0xc2 && c <= 0xdf)
			need = 2;
		else if (c >= 0xe0 && c <= 0xef)
			need = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 4;
		else
			return len;
		if (have >= need)
			return len; /* complete (valid or not: the escaper decides) */
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (have >= 2 && (s[k + 1] < lo || s[k + 1] > hi))
			return len; /* can never complete: invalid now */
		return k;
	}
}

/* Bytes that need attention: control characters, '"', '\\', non-ASCII. */
static const unsigned char needs[256] = {
	[0 ... 0x1f] = 1,
	['"'] = 1,
	['\\'] = 1,
	[0x80 ... 0xff] = 1,
};

/* Writes at most 6 bytes per input byte. */
static char *escape_to(char *w, const unsigned char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;

	while (i < len) {
		size_t run = i;

		while (run < len && !needs[s[run]])
			run++;
		if (run > i) {
			memcpy(w, s + i, run - i);
			w += run - i;
			i = run;
			if (i == len)
				break;
		}
		unsigned char c = s[i];

		if (c >= 0x80) {
			size_t n = utf8_seq(s + i, len - i);

			if (n) {
				memcpy(w, s + i, n);
				w += n;
				i += n;
			} else {
				memcpy(w, "\\ufffd", 6);
				w += 6;
				i++;
			}
			continue;
		}
		*w++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*w++ = (char)c;
			break;
		case '\b':
			*w++ = 'b';
			break;
		case '\f':
			*w++ = 'f';
			break;
		case '\n':
			*w++ = 'n';
			break;
		case '\r':
			*w++ = 'r';
			break;
		case '\t':
			*w++ = 't';
			break;
		default:
			memcpy(w, "u00", 3);
			w[3] = hex[c >> 4];
			w[4] = hex[c & 15];
			w += 5;
		}
		i++;
	}
	return w;
}

void wpd_json_escape(struct wpd_buf *out, const char *s, size_t len)
{
	char *w0, *w;

	if (len > (SIZE_MAX - 1) / 6) {
		out->oom = 1;
		return;
	}
	w0 = wpd_buf_reserve(out, len * 6);
	if (!w0)
		return;
	w = escape_to(w0, (const unsigned char *)s, len);
	wpd_buf_commit(out, (size_t)(w - w0));
}

/* ---- the template ---- */

static int tmpl_add(char *dst, uint32_t *len, uint32_t cap, const char *s, size_t n)
{
	if (n > cap - *len)
		return -EINVAL;
	memcpy(dst + *len, s, n);
	*len += (uint32_t)n;
	return 0;
}

static int tmpl_esc(char *dst, uint32_t *len, uint32_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n * 6 > cap - *len)
		return -EINVAL;
	*len += (uint32_t)(escape_to(dst + *len, (const unsigned char *)s, n) - (dst + *len));
	return 0;
}

static void tmpl_suffix(struct wpd_sse_tmpl *t)
{
	const char *s = t->kind == WPD_OAI_CHAT ? "\"}" : "\"";

	t->suf_len = 0;
	tmpl_add(t->suf, &t->suf_len, sizeof(t->suf), s, strlen(s));
	s = ",\"logprobs\":null,\"finish_reason\":null}]";
	tmpl_add(t->suf, &t->suf_len, sizeof(t->suf), s, strlen(s));
	if (t->usage_null) {
		s = ",\"usage\":null";
		tmpl_add(t->suf, &t->suf_len, sizeof(t->suf), s, strlen(s));
	}
	tmpl_add(t->suf, &t->suf_len, sizeof(t->suf), "}\n\n", 3);
}

int wpd_sse_init(struct wpd_sse_tmpl *t, enum wpd_oai_kind kind, const char *id, int64_t created,
		 const char *model)
{
	char num[32];
	const char *object, *open;
	uint32_t cap = sizeof(t->pre);
	int r = 0;

	memset(t, 0, sizeof(*t));
	if (kind == WPD_OAI_CHAT) {
		object = "chat.completion.chunk";
		open = "{\"index\":0,\"delta\":{\"content\":\"";
	} else if (kind == WPD_OAI_COMPLETION) {
		object = "text_completion";
		open = "{\"index\":0,\"text\":\"";
	} else {
		return -EINVAL;
	}
	t->kind = kind;
	snprintf(num, sizeof(num), "%lld", (long long)created);
	r |= tmpl_add(t->pre, &t->pre_len, cap, "data: {\"id\":\"", 13);
	r |= tmpl_esc(t->pre, &t->pre_len, cap, id);
	r |= tmpl_add(t->pre, &t->pre_len, cap, "\",\"object\":\"", 12);
	r |= tmpl_add(t->pre, &t->pre_len, cap, object, strlen(object));
	r |= tmpl_add(t->pre, &t->pre_len, cap, "\",\"created\":", 12);
	r |= tmpl_add(t->pre, &t->pre_len, cap, num, strlen(num));
	r |= tmpl_add(t->pre, &t->pre_len, cap, ",\"model\":\"", 10);
	r |= tmpl_esc(t->pre, &t->pre_len, cap, model);
	r |= tmpl_add(t->pre, &t->pre_len, cap, "\",\"choices\":[", 13);
	t->head_len = t->pre_len;
	r |= tmpl_add(t->pre, &t->pre_len, cap, open, strlen(open));
	if (r) {
		memset(t, 0, sizeof(*t));
		return -EINVAL;
	}
	tmpl_suffix(t);
	return 0;
}

void wpd_sse_usage_null(struct wpd_sse_tmpl *t)
{
	t->usage_null = 1;
	tmpl_suffix(t);
}

void wpd_sse_delta(const struct wpd_sse_tmpl *t, const char *text, size_t len, struct wpd_buf *out)
{
	char *w0, *w;

	if (len > (SIZE_MAX - 4096) / 6) {
		out->oom = 1;
		return;
	}
	w0 = w = wpd_buf_reserve(out, t->pre_len + len * 6 + t->suf_len);
	if (!w)
		return;
	memcpy(w, t->pre, t->pre_len);
	w = escape_to(w + t->pre_len, (const unsigned char *)text, len);
	memcpy(w, t->suf, t->suf_len);
	w += t->suf_len;
	wpd_buf_commit(out, (size_t)(w - w0));
}

/* The head, a whole choice (or "]" closing an empty list), the end. */
static void event(const struct wpd_sse_tmpl *t, struct wpd_buf *out, const char *choice,
		  const char *reason)
{
	wpd_buf_add(out, t->pre, t->head_len);
	wpd_buf_adds(out, choice);
	if (reason) {
		wpd_json_escape(out, reason, strlen(reason));
		wpd_buf_adds(out, "\"}]");
	}
	if (t->usage_null)
		wpd_buf_adds(out, ",\"usage\":null");
	wpd_buf_add(out, "}\n\n", 3);
}

void wpd_sse_role(const struct wpd_sse_tmpl *t, struct wpd_buf *out)
{
	if (t->kind != WPD_OAI_CHAT)
		return;
	event(t, out,
	      "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	      "\"logprobs\":null,\"finish_reason\":null}]",
	      NULL);
}

void wpd_sse_finish(const struct wpd_sse_tmpl *t, const char *reason, struct wpd_buf *out)
{
	event(t, out,
	      t->kind == WPD_OAI_CHAT
		      ? "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\""
		      : "{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"",
	      reason ? reason : "stop");
}

void wpd_sse_usage(const struct wpd_sse_tmpl *t, uint32_t prompt, uint32_t completion,
		   struct wpd_buf *out)
{
	wpd_buf_add(out, t->pre, t->head_len);
	wpd_buf_addf(out,
		     "],\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
		     "\"total_tokens\":%llu}}\n\n",
		     prompt, completion, (unsigned long long)prompt + completion);
}

void wpd_sse_done(struct wpd_buf *out)
{
	wpd_buf_add(out, "data: [DONE]\n\n", 14);
}
