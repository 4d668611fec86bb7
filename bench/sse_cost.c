// SPDX-License-Identifier: MIT
/*
 * What one streamed token costs to encode as an OpenAI SSE chunk, three
 * ways (docs/daemon.md, "OpenAI encoding"): wpd_sse_delta (the per-stream
 * template, what wirepathd does), a jansson tree built per token and
 * json_dumps'd (what the issue forbids on the hot path), and one jansson
 * tree kept for the stream with only the delta's string replaced. Each
 * output is checked to parse to the same object once. One thread, a
 * one-off program: run it by hand, niced. Times are the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), so a busy machine's preemptions do not count.
 *
 *   nice build/sse_cost [TOKENS]     (default 2000000)
 *
 * Prints one JSON line: ns per token each way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon/buf.h"
#include "daemon/sse.h"

static const char *const words[] = { " the",    " model", " said",        ":",
				     " \"hi\"", "\n",     " caf\xc3\xa9", " \xf0\x9f\x98\x80",
				     " token",  "s" };
#define NWORDS (sizeof(words) / sizeof(words[0]))

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static json_t *chunk_tree(const char *text)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s}, s:n, s:n}]}", "id",
			 "chatcmpl-0123456789abcdef", "object", "chat.completion.chunk", "created",
			 (json_int_t)1700000000, "model", "llama-3.1-8b-instruct", "choices",
			 "index", 0, "delta", "content", text, "logprobs", "finish_reason");
}

/* "data: " + the tree + "\n\n" */
static void emit_tree(json_t *j, struct wpd_buf *out)
{
	char *s = json_dumps(j, JSON_COMPACT);

	wpd_buf_add(out, "data: ", 6);
	wpd_buf_adds(out, s);
	wpd_buf_add(out, "\n\n", 2);
	free(s);
}

static void same_object(const char *a, const char *b)
{
	json_t *ja = json_loads(a + 6, JSON_DISABLE_EOF_CHECK, NULL);
	json_t *jb = json_loads(b + 6, JSON_DISABLE_EOF_CHECK, NULL);

	if (!ja || !jb || !json_equal(ja, jb)) {
		fprintf(stderr, "sse_cost: the encodings differ:\n%s%s", a, b);
		exit(1);
	}
	json_decref(ja);
	json_decref(jb);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	struct wpd_sse_tmpl t;
	struct wpd_buf out = { 0 }, a = { 0 }, b = { 0 };
	double t0, tmpl_ns, tree_ns, reuse_ns;
	size_t bytes = 0;
	json_t *kept, *content;

	if (n < 1000)
		n = 1000;
	if (wpd_sse_init(&t, WPD_OAI_CHAT, "chatcmpl-0123456789abcdef", 1700000000,
			 "llama-3.1-8b-instruct")) {
		fprintf(stderr, "sse_cost: wpd_sse_init failed\n");
		return 1;
	}
	/* the three produce the same object */
	for (size_t w = 0; w < NWORDS; w++) {
		json_t *j = chunk_tree(words[w]);

		wpd_buf_reset(&a);
		wpd_buf_reset(&b);
		wpd_sse_delta(&t, words[w], strlen(words[w]), &a);
		emit_tree(j, &b);
		same_object(a.p, b.p);
		json_decref(j);
	}

	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		const char *w = words[i % NWORDS];

		wpd_sse_delta(&t, w, strlen(w), &out);
		if (out.len > 60000) { /* a socket write's worth, then drained */
			bytes += out.len;
			wpd_buf_reset(&out);
		}
	}
	tmpl_ns = (now_ns() - t0) / (double)n;
	bytes += out.len;
	wpd_buf_reset(&out);

	long m = n / 4;

	t0 = now_ns();
	for (long i = 0; i < m; i++) {
		json_t *j = chunk_tree(words[i % NWORDS]);

		emit_tree(j, &out);
		json_decref(j);
		if (out.len > 60000)
			wpd_buf_reset(&out);
	}
	tree_ns = (now_ns() - t0) / (double)m;
	wpd_buf_reset(&out);

	kept = chunk_tree("");
	content = json_object_get(
		json_object_get(json_array_get(json_object_get(kept, "choices"), 0), "delta"),
		"content");
	t0 = now_ns();
	for (long i = 0; i < m; i++) {
		json_string_set(content, words[i % NWORDS]);
		emit_tree(kept, &out);
		if (out.len > 60000)
			wpd_buf_reset(&out);
	}
	reuse_ns = (now_ns() - t0) / (double)m;
	json_decref(kept);

	printf("{\"tokens\":%ld,\"event_bytes_avg\":%.1f,\"template_ns_per_token\":%.1f,"
	       "\"jansson_tree_ns_per_token\":%.1f,\"jansson_kept_tree_ns_per_token\":%.1f,"
	       "\"tree_over_template\":%.1f}\n",
	       n, (double)bytes / (double)n, tmpl_ns, tree_ns, reuse_ns, tree_ns / tmpl_ns);
	wpd_buf_free(&out);
	wpd_buf_free(&a);
	wpd_buf_free(&b);
	return 0;
}
