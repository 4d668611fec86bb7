// SPDX-License-Identifier: MIT
/*
 * The native service stubs (svc.h; the contracts: include/wirepath/service.h;
 * what each answers: docs/daemon.md, "Native backends").
 *
 * The model is a token generator. Its text is deterministic so that tests
 * can check it byte for byte: with --token-text the words given, repeated in
 * order; otherwise words drawn from a fixed list of 64 by a hash of the
 * prompt and the token's index (the same prompt always gives the same
 * text). A request with max_tokens N gets exactly N tokens and finish
 * reason "length"; max_tokens 0 gets the configured count and "stop".
 * Tokens are paced by a job on the owner's heap (sched_heap.h), never by
 * sleeping; back to back (interval 0) a stream yields after SVC_BURST
 * tokens so one long answer cannot hold the loop.
 *
 * Replies that are built per call (embeddings, tool results) are malloc'd
 * and freed by their send's completion: the library reads them in place.
 * Tool arguments and results are JSON through jansson.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "svc.h"
#include "wirepath/service.h"

/* Tokens sent back to back before a stream lets the loop run other work. */
#define SVC_BURST 64

struct svc {
	struct sched *sched;
	struct svc_stats st;
	uint32_t tokens, interval_us, ttft_us, decode_step_us;
	uint32_t n_models;
	char *model[SVC_MODELS_MAX];
	size_t model_len[SVC_MODELS_MAX];
	char *models_reply; /* the ids joined by '\n' */
	size_t models_reply_len;
	char *words_buf; /* --token-text, split in place */
	const char *word[SVC_WORDS_MAX];
	uint16_t word_len[SVC_WORDS_MAX];
	uint32_t n_words; /* 0: the generator */
	char *tools_json; /* the WP_SVC_TOOLS_LIST reply */
	size_t tools_json_len;
};

/* The tools, as MCP Tool objects (canonicalized through jansson at create). */
static const char svc_tools_src[] =
	"[{\"name\":\"echo\",\"description\":\"Returns its message argument as text.\","
	"\"inputSchema\":{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}},"
	"\"required\":[\"message\"]}},"
	"{\"name\":\"sized\",\"description\":\"Returns `bytes` bytes of text after `service_us` "
	"microseconds.\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"bytes\":{\"type\":"
	"\"integer\",\"minimum\":0,\"maximum\":8388608},\"service_us\":{\"type\":\"integer\","
	"\"minimum\":0,\"maximum\":60000000}},\"required\":[\"bytes\"]}},"
	"{\"name\":\"add\",\"description\":\"Returns the sum of a and b.\",\"inputSchema\":{"
	"\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":"
	"\"number\"}},\"required\":[\"a\",\"b\"]}}]";

static void svc_free_done(void *arg, int status)
{
	free(arg);
}

/* For replies that live as long as the service (built at create). */
static void svc_static_done(void *arg, int status)
{
}

/* A malloc'd reply, freed by the send's completion (or now, if refused). */
static void svc_reply_owned(struct svc *v, struct wp_call *call, char *buf, size_t len)
{
	if (wp_call_reply(call, buf, len, svc_free_done, buf) < 0) {
		v->st.send_errors++;
		free(buf);
	}
}

static void svc_refuse(struct svc *v, struct wp_call *call, uint32_t status, const char *why)
{
	v->st.bad_requests++;
	wp_call_error(call, status, why);
}

/* The request's model: one we serve, or empty (the first). 0 or refused. */
static int svc_model_check(struct svc *v, struct wp_call *call, const struct wp_svc_req *r)
{
	char why[WP_SVC_MODEL_MAX + 64];

	if (r->h.model_len == 0)
		return 0;
	for (uint32_t i = 0; i < v->n_models; i++)
		if (v->model_len[i] == r->h.model_len &&
		    !memcmp(v->model[i], r->model, r->h.model_len))
			return 0;
	snprintf(why, sizeof(why), "model '%.*s' is not served here", (int)r->h.model_len,
		 r->model);
	svc_refuse(v, call, ENOENT, why);
	return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* WP_SVC_GENERATE: a paced token stream                               */
/* ------------------------------------------------------------------ */

struct gen_job {
	struct sched_job sj;
	struct svc *v;
	uint64_t seed; /* the prompt's hash */
	uint32_t sent, total;
	uint32_t reason, prompt_tokens;
	uint32_t interval_us;
	uint64_t t0_ns; /* token 0's time (arrival + ttft); token i's is
			 * t0 + i * interval, on the decode clock if set */
};

/* Token i of a stream: 'T', a space before every token but the first, the word. */
static size_t gen_token(const struct gen_job *g, uint32_t i, char *out)
{
	const struct svc *v = g->v;
	const char *w;
	size_t n = 0, wl;

	if (v->n_words) {
		w = v->word[i % v->n_words];
		wl = v->word_len[i % v->n_words];
	} else {
		w = svc_gen_word(g->seed, i, &wl);
	}
	out[n++] = WP_SVC_CHUNK_TEXT;
	if (i)
		out[n++] = ' ';
	memcpy(out + n, w, wl);
	return n + wl;
}

static void gen_free(struct gen_job *g)
{
	free(g);
}

static int gen_run(struct sched_job *sj, uint64_t now)
{
	struct gen_job *g = (struct gen_job *)sj;
	struct svc *v = g->v;
	struct wp_call *call = sj->call;
	struct wp_svc_finish f;
	char tok[2 + SVC_WORD_MAX];
	uint32_t burst = 0;
	int rc;

	if (wp_call_cancelled(call)) {
		v->st.cancelled++;
		wp_call_end(call, ECANCELED);
		gen_free(g);
		return 1;
	}
	while (g->sent < g->total) {
		rc = wp_call_stream(call, tok, gen_token(g, g->sent, tok), NULL, NULL);
		if (rc == -EAGAIN || rc == -ENOBUFS)
			goto retry;
		if (rc < 0)
			goto fail;
		g->sent++;
		v->st.tokens++;
		if (g->sent == g->total)
			break;
		if (g->interval_us) {
			/* Token i at t0 + i * interval (as wp_http_stub does), so
			 * pacing does not drift with the loop's lateness and a
			 * decode step that does not divide the interval averages
			 * out; never in the past (no bursts to catch up). */
			sj->due = svc_decode_due(g->t0_ns +
							 (uint64_t)g->sent * g->interval_us * 1000,
						 g->v->decode_step_us);
			if (sj->due <= now)
				sj->due = now + 1;
			return 0;
		}
		if (++burst == SVC_BURST)
			goto retry;
	}
	wp_svc_finish_init(&f, g->reason, g->prompt_tokens, g->total);
	rc = wp_call_stream(call, &f, sizeof(f), NULL, NULL);
	if (rc == -EAGAIN || rc == -ENOBUFS)
		goto retry;
	if (rc < 0)
		goto fail;
	if (g->reason == WP_SVC_FINISH_LENGTH)
		v->st.finish_length++;
	else
		v->st.finish_stop++;
	wp_call_end(call, 0);
	gen_free(g);
	return 1;

retry:
	/* Strictly after now, so the loop does not run it again this round. */
	sj->due = now + 1;
	return 0;
fail:
	v->st.send_errors++;
	wp_call_end(call, EIO);
	gen_free(g);
	return 1;
}

static void gen_drop(struct sched_job *sj)
{
	wp_call_end(sj->call, ECANCELED);
	gen_free((struct gen_job *)sj);
}

static void on_generate(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct svc *v = arg;
	struct wp_svc_req r;
	struct gen_job *g;
	uint64_t now;

	if (wp_svc_req_parse(req->data, req->len, &r) < 0) {
		svc_refuse(v, call, EINVAL,
			   "malformed WP_SVC_GENERATE request (include/wirepath/service.h)");
		return;
	}
	if (r.h.kind != WP_SVC_KIND_CHAT && r.h.kind != WP_SVC_KIND_COMPLETION) {
		svc_refuse(v, call, EINVAL, "WP_SVC_GENERATE takes kind chat or completion");
		return;
	}
	if (svc_model_check(v, call, &r) < 0)
		return;
	g = calloc(1, sizeof(*g));
	if (!g) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		return;
	}
	v->st.generate++;
	g->v = v;
	g->seed = svc_fnv1a(r.prompt, r.h.prompt_len);
	g->prompt_tokens = svc_count_words(r.prompt, r.h.prompt_len);
	g->total = r.h.max_tokens ? r.h.max_tokens : v->tokens;
	g->reason = r.h.max_tokens ? WP_SVC_FINISH_LENGTH : WP_SVC_FINISH_STOP;
	g->interval_us = v->interval_us;
	g->sj.call = call;
	g->sj.run = gen_run;
	g->sj.drop = gen_drop;
	now = wp_now_ns();
	g->t0_ns = now + (uint64_t)v->ttft_us * 1000;
	g->sj.due = svc_decode_due(g->t0_ns, v->decode_step_us);
	if (g->sj.due <= now && gen_run(&g->sj, now))
		return;
	if (sched_add(v->sched, &g->sj) < 0) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		gen_free(g);
	}
}

/* ------------------------------------------------------------------ */
/* WP_SVC_EMBED: one unit vector per input, from a hash of it          */
/* ------------------------------------------------------------------ */

static void embed_vector(const char *in, uint32_t len, float *out)
{
	uint64_t h = svc_fnv1a(in, len);
	double v[SVC_EMBED_DIM], norm = 0;

	for (int k = 0; k < SVC_EMBED_DIM; k++) {
		/* In [-1, 1); never all zero (the mix is a bijection of k). */
		v[k] = (double)(int64_t)svc_mix(h + (uint64_t)k) / 9223372036854775808.0;
		norm += v[k] * v[k];
	}
	norm = sqrt(norm);
	for (int k = 0; k < SVC_EMBED_DIM; k++)
		out[k] = (float)(v[k] / norm);
}

static void on_embed(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct svc *v = arg;
	struct wp_svc_embed_hdr eh;
	struct wp_svc_req r;
	uint32_t count = 0, words = 0;
	const char *why;
	size_t rlen;
	char *out;

	if (wp_svc_req_parse(req->data, req->len, &r) < 0) {
		svc_refuse(v, call, EINVAL,
			   "malformed WP_SVC_EMBED request (include/wirepath/service.h)");
		return;
	}
	if (r.h.kind != WP_SVC_KIND_EMBEDDING) {
		svc_refuse(v, call, EINVAL, "WP_SVC_EMBED takes kind embedding");
		return;
	}
	if (svc_model_check(v, call, &r) < 0)
		return;
	if (svc_embed_inputs(r.prompt, r.h.prompt_len, &count, &words, &why) < 0) {
		svc_refuse(v, call, EINVAL, why);
		return;
	}
	rlen = sizeof(eh) + (size_t)count * SVC_EMBED_DIM * sizeof(float);
	out = malloc(rlen);
	if (!out) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		return;
	}
	memset(&eh, 0, sizeof(eh));
	eh.count = htole32(count);
	eh.dim = htole32(SVC_EMBED_DIM);
	eh.prompt_tokens = htole32(words);
	memcpy(out, &eh, sizeof(eh));
	for (uint32_t i = 0, o = 0; i < count; i++) {
		float vec[SVC_EMBED_DIM];
		uint32_t n;

		memcpy(&n, r.prompt + o, 4);
		n = le32toh(n);
		embed_vector(r.prompt + o + 4, n, vec);
		for (int k = 0; k < SVC_EMBED_DIM; k++) {
			uint32_t bits;

			memcpy(&bits, &vec[k], 4);
			bits = htole32(bits);
			memcpy(out + sizeof(eh) + ((size_t)i * SVC_EMBED_DIM + k) * 4, &bits, 4);
		}
		o += 4 + n;
	}
	v->st.embed++;
	v->st.vectors += count;
	svc_reply_owned(v, call, out, rlen);
}

/* ------------------------------------------------------------------ */
/* WP_SVC_MODELS and WP_SVC_TOOLS_LIST: fixed replies                  */
/* ------------------------------------------------------------------ */

static void on_models(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct svc *v = arg;

	v->st.models++;
	/* Built once, never written again: sent in place, no completion work. */
	if (wp_call_reply(call, v->models_reply, v->models_reply_len, svc_static_done, NULL) < 0)
		v->st.send_errors++;
}

static void on_tools_list(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct svc *v = arg;

	v->st.tools_list++;
	if (wp_call_reply(call, v->tools_json, v->tools_json_len, svc_static_done, NULL) < 0)
		v->st.send_errors++;
}

/* ------------------------------------------------------------------ */
/* WP_SVC_TOOLS_CALL: echo, sized, add                                 */
/* ------------------------------------------------------------------ */

/* A CallToolResult with one text item, as a malloc'd string (NULL: no memory). */
static char *tool_result(const char *text, size_t len, int is_error)
{
	json_t *res;
	char *s;

	if (is_error)
		res = json_pack("{s:[{s:s,s:s%}],s:b}", "content", "type", "text", "text", text,
				len, "isError", 1);
	else
		res = json_pack("{s:[{s:s,s:s%}]}", "content", "type", "text", "text", text, len);
	if (!res)
		return NULL;
	s = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	return s;
}

static void tool_answer(struct svc *v, struct wp_call *call, const char *text, int is_error)
{
	char *s = tool_result(text, strlen(text), is_error);

	if (!s) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		return;
	}
	v->st.tools_call++;
	v->st.tool_errors += is_error != 0;
	svc_reply_owned(v, call, s, strlen(s));
}

/* The sized tool's result: {"content":[{"type":"text","text":"abc..."}]}
 * with `bytes` letters, built without a JSON tree (letters need no escape). */
static char *sized_result(uint32_t bytes, size_t *len)
{
	static const char pre[] = "{\"content\":[{\"type\":\"text\",\"text\":\"";
	static const char post[] = "\"}]}";
	char *s = malloc(sizeof(pre) - 1 + bytes + sizeof(post) - 1);
	char *t;

	if (!s)
		return NULL;
	memcpy(s, pre, sizeof(pre) - 1);
	t = s + sizeof(pre) - 1;
	svc_sized_text(t, bytes);
	memcpy(t + bytes, post, sizeof(post) - 1);
	*len = sizeof(pre) - 1 + bytes + sizeof(post) - 1;
	return s;
}

struct sized_job {
	struct sched_job sj;
	struct svc *v;
	uint32_t bytes;
};

static int sized_send(struct svc *v, struct wp_call *call, uint32_t bytes)
{
	size_t len;
	char *s = sized_result(bytes, &len);

	if (!s) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	v->st.tools_call++;
	svc_reply_owned(v, call, s, len);
	return 0;
}

static int sized_run(struct sched_job *sj, uint64_t now)
{
	struct sized_job *z = (struct sized_job *)sj;

	if (wp_call_cancelled(sj->call)) {
		z->v->st.tools_cancelled++;
		wp_call_end(sj->call, ECANCELED);
	} else {
		sized_send(z->v, sj->call, z->bytes);
	}
	free(z);
	return 1;
}

static void sized_drop(struct sched_job *sj)
{
	wp_call_end(sj->call, ECANCELED);
	free(sj);
}

/* An integer argument in [0, max]; dflt if absent, -1 if not such an integer. */
static int64_t tool_uint_arg(json_t *args, const char *key, int64_t max, int64_t dflt)
{
	json_t *x = json_object_get(args, key);
	json_int_t n;

	if (!x)
		return dflt;
	if (!json_is_integer(x))
		return -1;
	n = json_integer_value(x);
	return n < 0 || n > max ? -1 : (int64_t)n;
}

static void tool_sized(struct svc *v, struct wp_call *call, json_t *args)
{
	int64_t bytes = tool_uint_arg(args, "bytes", SVC_SIZED_MAX, -1);
	int64_t us = tool_uint_arg(args, "service_us", SVC_SERVICE_US_MAX, 0);
	struct sized_job *z;

	v->st.tool_sized++;
	if (bytes < 0 || us < 0) {
		tool_answer(v, call,
			    "sized: 'bytes' must be an integer in [0, 8388608] and 'service_us' "
			    "one in [0, 60000000]",
			    1);
		return;
	}
	if (us == 0) {
		sized_send(v, call, (uint32_t)bytes);
		return;
	}
	z = calloc(1, sizeof(*z));
	if (!z) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		return;
	}
	z->v = v;
	z->bytes = (uint32_t)bytes;
	z->sj.call = call;
	z->sj.run = sized_run;
	z->sj.drop = sized_drop;
	z->sj.due = wp_now_ns() + (uint64_t)us * 1000;
	if (sched_add(v->sched, &z->sj) < 0) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		free(z);
	}
}

static void tool_echo(struct svc *v, struct wp_call *call, json_t *args)
{
	json_t *m = json_object_get(args, "message");
	char *s;

	v->st.tool_echo++;
	if (!json_is_string(m)) {
		tool_answer(v, call, "echo: 'message' must be a string", 1);
		return;
	}
	s = tool_result(json_string_value(m), json_string_length(m), 0);
	if (!s) {
		v->st.oom++;
		wp_call_error(call, ENOMEM, "out of memory");
		return;
	}
	v->st.tools_call++;
	svc_reply_owned(v, call, s, strlen(s));
}

static void tool_add(struct svc *v, struct wp_call *call, json_t *args)
{
	json_t *a = json_object_get(args, "a"), *b = json_object_get(args, "b");
	char text[64];
	long long sum;

	v->st.tool_add++;
	if (!json_is_number(a) || !json_is_number(b)) {
		tool_answer(v, call, "add: 'a' and 'b' must be numbers", 1);
		return;
	}
	if (json_is_integer(a) && json_is_integer(b) &&
	    !__builtin_add_overflow((long long)json_integer_value(a),
				    (long long)json_integer_value(b), &sum))
		snprintf(text, sizeof(text), "%lld", sum);
	else
		snprintf(text, sizeof(text), "%.17g", json_number_value(a) + json_number_value(b));
	tool_answer(v, call, text, 0);
}

static void on_tools_call(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct svc *v = arg;
	const char *name, *args;
	uint32_t name_len, args_len;
	json_error_t jerr;
	json_t *j;
	char why[WP_SVC_TOOL_NAME_MAX + 160];

	if (wp_svc_tool_parse(req->data, req->len, &name, &name_len, &args, &args_len) < 0) {
		svc_refuse(v, call, EINVAL,
			   "malformed WP_SVC_TOOLS_CALL request (include/wirepath/service.h)");
		return;
	}
	j = args_len ? json_loadb(args, args_len, JSON_REJECT_DUPLICATES, &jerr) : json_object();
	if (!j) {
		snprintf(why, sizeof(why), "arguments are not JSON: %s (column %d)", jerr.text,
			 jerr.column);
		svc_refuse(v, call, EINVAL, why);
		return;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		svc_refuse(v, call, EINVAL, "arguments must be a JSON object");
		return;
	}
	if (name_len == 4 && !memcmp(name, "echo", 4)) {
		tool_echo(v, call, j);
	} else if (name_len == 5 && !memcmp(name, "sized", 5)) {
		tool_sized(v, call, j);
	} else if (name_len == 3 && !memcmp(name, "add", 3)) {
		tool_add(v, call, j);
	} else {
		snprintf(why, sizeof(why), "unknown tool '%.*s'", (int)name_len, name);
		svc_refuse(v, call, ENOENT, why);
	}
	json_decref(j);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

static int svc_words(struct svc *v, const char *text)
{
	char *p;

	v->words_buf = strdup(text);
	if (!v->words_buf)
		return -ENOMEM;
	for (p = v->words_buf; *p;) {
		size_t n = 0;

		while (*p && svc_space(*p))
			p++;
		if (!*p)
			break;
		while (p[n] && !svc_space(p[n]))
			n++;
		if (n > SVC_WORD_MAX || v->n_words == SVC_WORDS_MAX)
			return -EINVAL;
		v->word[v->n_words] = p;
		v->word_len[v->n_words++] = (uint16_t)n;
		p += n;
	}
	return v->n_words ? 0 : -EINVAL;
}

static int svc_models(struct svc *v, const struct svc_opts *o)
{
	static const char *const dflt[1] = { SVC_DEFAULT_MODEL };
	const char *const *ids = o->n_models ? o->models : dflt;
	uint32_t n = o->n_models ? o->n_models : 1;
	size_t total = 0;

	if (n > SVC_MODELS_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		size_t len = strlen(ids[i]);

		if (len == 0 || len > WP_SVC_MODEL_MAX || strchr(ids[i], '\n'))
			return -EINVAL;
		v->model[i] = strdup(ids[i]);
		if (!v->model[i])
			return -ENOMEM;
		v->model_len[i] = len;
		v->n_models++;
		total += len + 1;
	}
	v->models_reply = malloc(total);
	if (!v->models_reply)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			v->models_reply[v->models_reply_len++] = '\n';
		memcpy(v->models_reply + v->models_reply_len, v->model[i], v->model_len[i]);
		v->models_reply_len += v->model_len[i];
	}
	return 0;
}

int svc_create(const struct svc_opts *o, struct sched *sched, struct svc **out)
{
	struct svc *v = calloc(1, sizeof(*v));
	json_t *tools;
	int rc;

	if (!v)
		return -ENOMEM;
	v->sched = sched;
	v->tokens = o->tokens ? o->tokens : SVC_DEFAULT_TOKENS;
	v->interval_us = o->token_interval_us;
	v->ttft_us = o->ttft_us;
	v->decode_step_us = o->decode_step_us;
	rc = svc_models(v, o);
	if (rc < 0)
		goto out_free;
	if (o->token_text) {
		rc = svc_words(v, o->token_text);
		if (rc < 0)
			goto out_free;
	}
	tools = json_loads(svc_tools_src, 0, NULL);
	if (!tools) { /* a typo in svc_tools_src: caught by the first test run */
		rc = -EINVAL;
		goto out_free;
	}
	v->tools_json = json_dumps(tools, JSON_COMPACT);
	json_decref(tools);
	if (!v->tools_json) {
		rc = -ENOMEM;
		goto out_free;
	}
	v->tools_json_len = strlen(v->tools_json);
	*out = v;
	return 0;

out_free:
	svc_destroy(v);
	return rc;
}

int svc_register(struct svc *v, struct wp_ctx *ctx)
{
	int rc;

	if ((rc = wp_rpc_register(ctx, WP_SVC_GENERATE, on_generate, v)) < 0 ||
	    (rc = wp_rpc_register(ctx, WP_SVC_EMBED, on_embed, v)) < 0 ||
	    (rc = wp_rpc_register(ctx, WP_SVC_MODELS, on_models, v)) < 0 ||
	    (rc = wp_rpc_register(ctx, WP_SVC_TOOLS_LIST, on_tools_list, v)) < 0 ||
	    (rc = wp_rpc_register(ctx, WP_SVC_TOOLS_CALL, on_tools_call, v)) < 0)
		return rc;
	return 0;
}

const struct svc_stats *svc_stats(const struct svc *v)
{
	return &v->st;
}

int svc_stats_json(const struct svc *v, char *buf, size_t len)
{
	const struct svc_stats *s = &v->st;

	return snprintf(
		buf, len,
		"{\"generate\":%" PRIu64 ",\"tokens\":%" PRIu64 ",\"finish_stop\":%" PRIu64
		",\"finish_length\":%" PRIu64 ",\"cancelled\":%" PRIu64 ",\"embed\":%" PRIu64
		",\"vectors\":%" PRIu64 ",\"models\":%" PRIu64 ",\"tools_list\":%" PRIu64
		",\"tools_call\":%" PRIu64 ",\"tool_echo\":%" PRIu64 ",\"tool_sized\":%" PRIu64
		",\"tool_add\":%" PRIu64 ",\"tool_errors\":%" PRIu64 ",\"tools_cancelled\":%" PRIu64
		",\"bad_requests\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"oom\":%" PRIu64 "}",
		s->generate, s->tokens, s->finish_stop, s->finish_length, s->cancelled, s->embed,
		s->vectors, s->models, s->tools_list, s->tools_call, s->tool_echo, s->tool_sized,
		s->tool_add, s->tool_errors, s->tools_cancelled, s->bad_requests, s->send_errors,
		s->oom);
}

void svc_destroy(struct svc *v)
{
	if (!v)
		return;
	for (uint32_t i = 0; i < v->n_models; i++)
		free(v->model[i]);
	free(v->models_reply);
	free(v->words_buf);
	free(v->tools_json);
	free(v);
}
