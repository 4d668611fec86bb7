// SPDX-License-Identifier: MIT
/*
 * wp_http_stub: the conventional stack's HTTP services for the real-stack
 * bench (issue 14; bench/stacks/README.md, "wp_http_stub"). One process
 * serves what a conventional agent stack puts behind its gateway:
 *
 *   POST /v1/chat/completions, /v1/completions   an OpenAI-compatible model
 *        (SSE streaming or one JSON body), tokens paced like a real model
 *   POST /mcp                                    MCP tools over streamable HTTP
 *   GET  /healthz                                200 "ok"
 *
 * It is built on wirepathd's own server (src/daemon: the epoll loop and its
 * timers, the HTTP parser with its limits, the per-stream SSE template,
 * jansson for the requests), never on libwirepath's native paths: its CPU
 * counts in the conventional stack's cores, so it has to cost what a well
 * written C service costs, or the comparison would be against a slow
 * service rather than against the conventional stack.
 *
 * The bytes match wirepathd's in front of `wirepath serve`: the same chunks
 * (role, one delta per token, the finish chunk, the usage chunk when asked,
 * [DONE]) from the same template, the same words for the same prompt
 * (svc.h's generator), finish_reason "length" when the request set
 * max_tokens and "stop" when --tokens applied, serve's rule; and the same
 * `sized` tool text. Pacing uses the loop's timers, due times computed from
 * the request's arrival so lateness does not accumulate: never a sleep,
 * never a spin. A client that goes away cancels its timer at once
 * (wpd_ex_on_abort) and is counted.
 *
 * MCP is stateless here: initialize hands out an Mcp-Session-Id, and later
 * requests are served with it or without it (nothing is kept per session).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/buf.h"
#include "daemon/config.h"
#include "daemon/exchange.h"
#include "daemon/jsonrpc.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/openai.h"
#include "daemon/server.h"
#include "daemon/sse.h"
#include "svc.h"

int wpd_server_port(const struct wpd_server *s, uint32_t i); /* server.c */

#define STUB_TOKENS_MAX (1u << 20) /* --tokens and a request's max_tokens */
#define STUB_PACE_US_MAX 60000000u /* --ttft-us, --token-interval-us: 60 s */
#define STUB_BURST 64              /* back-to-back tokens before the loop runs again */
#define STUB_WORD_MAX 16           /* the generator's longest word, and its space */
#define STUB_MCP_DEFAULT "2025-11-25"

struct stub_stats {
	uint64_t requests;     /* every request the handler got */
	uint64_t streams;      /* chat/completions streamed (SSE) */
	uint64_t completions;  /* ... answered as one JSON body */
	uint64_t tokens;       /* tokens generated (streamed or in a body) */
	uint64_t mcp;          /* POST /mcp requests with an id (answered) */
	uint64_t tool_calls;   /* tools/call answered with a result */
	uint64_t disconnects;  /* clients gone before their answer: timers cancelled */
	uint64_t bad_requests; /* 4xx answers and JSON-RPC errors */
	uint64_t active;       /* streams, bodies and tool calls waiting on a timer */
};

struct stub {
	struct wpd_loop *loop;
	struct wpd_server *srv;
	uint32_t tokens, ttft_us, interval_us, decode_step_us;
	struct stub_stats st;
	struct wpd_buf ev;   /* scratch: one event or body at a time (one thread) */
	struct wpd_buf text; /* scratch: a non-streamed answer's text */
	json_t *tools;       /* the tools/list result */
	uint64_t rng;
	int stop;
};

/* What waits on a timer for one exchange: a token stream, a body, a tool
 * result. First member of each, so one abort serves all three. */
struct job {
	struct stub *s;
	struct wpd_ex *ex;
	struct wpd_timer t;
};

struct chat_job {
	struct job j; /* first */
	enum wpd_oai_kind kind;
	int stream, include_usage, length;
	uint32_t sent, total, prompt_tokens;
	uint64_t seed;     /* the prompt's hash (svc.h's generator) */
	uint64_t start_ns; /* the request's arrival: due times count from it */
	int64_t created;
	char cid[40];
	char model[128];
	struct wpd_sse_tmpl tmpl;
};

struct tool_job {
	struct job j; /* first */
	json_t *id;
	uint32_t bytes;
	int sse;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: ids must be unique, not secret. */
static uint64_t stub_rand(struct stub *s)
{
	if (!s->rng && getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng))
		s->rng = now_ns();
	s->rng |= 1;
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static void job_start(struct stub *s, struct job *j, struct wpd_ex *ex, void (*abort_fn)(void *))
{
	j->s = s;
	j->ex = ex;
	s->st.active++;
	wpd_ex_on_abort(ex, abort_fn, j);
}

static void job_done(struct job *j)
{
	wpd_timer_cancel(j->s->loop, &j->t);
	j->s->st.active--;
}

/* ------------------------------------------------------------------ */
/* The model: /v1/chat/completions, /v1/completions                     */
/* ------------------------------------------------------------------ */

static void chat_abort(void *arg)
{
	struct chat_job *c = arg;

	c->j.s->st.disconnects++;
	job_done(&c->j);
	free(c);
}

/* Token i: a space before every token but the first, then the word. */
static size_t chat_token(const struct chat_job *c, uint32_t i, char *out)
{
	size_t wl, n = 0;
	const char *w = svc_gen_word(c->seed, i, &wl);

	if (i)
		out[n++] = ' ';
	memcpy(out + n, w, wl);
	return n + wl;
}

static uint64_t chat_due(const struct chat_job *c, uint32_t i)
{
	const struct stub *s = c->j.s;

	return svc_decode_due(c->start_ns + (uint64_t)s->ttft_us * 1000 +
				      (uint64_t)i * s->interval_us * 1000,
			      s->decode_step_us);
}

static void chat_arm(struct chat_job *c, uint64_t due, wpd_timer_fn fn)
{
	uint64_t now = now_ns();

	wpd_timer_arm(c->j.s->loop, &c->j.t, due > now ? due - now : 0, fn, c);
}

/* A send refused (a slow client being dropped): end the exchange now,
 * cut, so nothing points at c, and free it. */
static void chat_cut(struct chat_job *c)
{
	c->j.s->st.disconnects++;
	wpd_ex_abort(c->j.ex);
	job_done(&c->j);
	free(c);
}

static void chat_tick(void *arg)
{
	struct chat_job *c = arg;
	struct stub *s = c->j.s;
	char tok[STUB_WORD_MAX + 1];

	for (uint32_t burst = 0;;) {
		wpd_buf_reset(&s->ev);
		wpd_sse_delta(&c->tmpl, tok, chat_token(c, c->sent, tok), &s->ev);
		c->sent++;
		s->st.tokens++;
		if (c->sent == c->total) {
			wpd_sse_finish(&c->tmpl, c->length ? "length" : "stop", &s->ev);
			if (c->include_usage)
				wpd_sse_usage(&c->tmpl, c->prompt_tokens, c->total, &s->ev);
			wpd_sse_done(&s->ev);
			if (s->ev.oom || wpd_ex_stream_send(c->j.ex, s->ev.p, s->ev.len) < 0) {
				chat_cut(c);
				return;
			}
			wpd_ex_end(c->j.ex);
			job_done(&c->j);
			free(c);
			return;
		}
		if (s->ev.oom || wpd_ex_stream_send(c->j.ex, s->ev.p, s->ev.len) < 0) {
			chat_cut(c);
			return;
		}
		if (s->interval_us) {
			chat_arm(c, chat_due(c, c->sent), chat_tick);
			return;
		}
		if (++burst == STUB_BURST) {
			wpd_timer_arm(s->loop, &c->j.t, 0, chat_tick, c);
			return;
		}
	}
}

/* Not streamed: the whole answer once every token's time has passed. */
static void chat_body(void *arg)
{
	struct chat_job *c = arg;
	struct stub *s = c->j.s;
	char tok[STUB_WORD_MAX + 1];
	const char *finish = c->length ? "length" : "stop";

	wpd_buf_reset(&s->text);
	wpd_buf_reset(&s->ev);
	for (uint32_t i = 0; i < c->total; i++)
		wpd_buf_add(&s->text, tok, chat_token(c, i, tok));
	if (s->text.oom) /* no text to escape: answered 500 below */
		s->ev.oom = 1;
	else if (c->kind == WPD_OAI_CHAT)
		wpd_oai_chat_body(&s->ev, c->cid, c->created, c->model, s->text.p, s->text.len,
				  finish, c->prompt_tokens, c->total);
	else
		wpd_oai_completion_body(&s->ev, c->cid, c->created, c->model, s->text.p,
					s->text.len, finish, c->prompt_tokens, c->total);
	if (s->text.oom || s->ev.oom) {
		wpd_ex_error(c->j.ex, 500, "server_error", NULL,
			     "out of memory building the response");
	} else {
		s->st.tokens += c->total;
		wpd_ex_reply(c->j.ex, 200, "application/json", NULL, s->ev.p, s->ev.len);
	}
	/* Big answers give their memory back. */
	if (s->text.alloc > (1u << 20))
		wpd_buf_free(&s->text);
	if (s->ev.alloc > (1u << 20))
		wpd_buf_free(&s->ev);
	job_done(&c->j);
	free(c);
}

static void chat(struct stub *s, struct wpd_ex *ex, enum wpd_oai_kind kind)
{
	struct wpd_oai_req rq;
	struct chat_job *c;
	const char *param = NULL;
	char err[256];
	size_t blen;
	const char *body = wpd_ex_body(ex, &blen);

	if (strcmp(wpd_ex_method(ex), "POST")) {
		s->st.bad_requests++;
		wpd_ex_error_h(ex, 405, "Allow: POST\r\n", "invalid_request_error", NULL,
			       "%s %s: only POST is allowed here", wpd_ex_method(ex),
			       wpd_ex_path(ex));
		return;
	}
	memset(&rq, 0, sizeof(rq));
	if (wpd_oai_parse(kind, body, blen, &rq, err, sizeof(err), &param) < 0) {
		struct wpd_buf eb = { 0 };

		s->st.bad_requests++;
		wpd_oai_error_body(&eb, err, "invalid_request_error", param, NULL);
		wpd_ex_reply(ex, 400, "application/json", NULL, eb.p, eb.len);
		wpd_buf_free(&eb);
		return;
	}
	if (rq.max_tokens > STUB_TOKENS_MAX) {
		s->st.bad_requests++;
		wpd_ex_error(ex, 400, "invalid_request_error", NULL,
			     "max_tokens %u is above this stub's limit of %u", rq.max_tokens,
			     STUB_TOKENS_MAX);
		wpd_oai_req_free(&rq);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		wpd_oai_req_free(&rq);
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	c->kind = kind;
	c->stream = rq.stream;
	c->include_usage = rq.include_usage;
	c->length = rq.max_tokens != 0;
	c->total = rq.max_tokens ? rq.max_tokens : s->tokens;
	c->seed = svc_fnv1a(rq.prompt.p, rq.prompt.len);
	c->prompt_tokens = svc_count_words(rq.prompt.p, rq.prompt.len);
	c->start_ns = now_ns();
	c->created = (int64_t)time(NULL);
	snprintf(c->model, sizeof(c->model), "%s", rq.model);
	wpd_oai_req_free(&rq);
	{
		static const char al[] =
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
		int n = snprintf(c->cid, sizeof(c->cid), "%s",
				 kind == WPD_OAI_CHAT ? "chatcmpl-" : "cmpl-");

		for (int k = 0; k < 24; k++)
			c->cid[n++] = al[stub_rand(s) % (sizeof(al) - 1)];
		c->cid[n] = 0;
	}
	/* The id and a model of at most 127 bytes always fit the template;
	 * checked all the same, since a chunk cut short would be invalid JSON. */
	if (c->stream && wpd_sse_init(&c->tmpl, kind, c->cid, c->created, c->model) < 0) {
		free(c);
		wpd_ex_error(ex, 500, "server_error", NULL, "the model id does not fit a chunk");
		return;
	}
	job_start(s, &c->j, ex, chat_abort);
	if (!c->stream) {
		s->st.completions++;
		chat_arm(c, chat_due(c, c->total - 1), chat_body);
		return;
	}
	s->st.streams++;
	if (c->include_usage)
		wpd_sse_usage_null(&c->tmpl); /* "usage":null on every chunk, as OpenAI */
	wpd_ex_stream_begin(ex, 200, "text/event-stream", NULL);
	if (kind == WPD_OAI_CHAT) {
		wpd_buf_reset(&s->ev);
		wpd_sse_role(&c->tmpl, &s->ev);
		if (s->ev.oom || wpd_ex_stream_send(ex, s->ev.p, s->ev.len) < 0) {
			chat_cut(c);
			return;
		}
	}
	chat_arm(c, chat_due(c, 0), chat_tick);
}

/* ------------------------------------------------------------------ */
/* MCP: POST /mcp (streamable HTTP, stateless)                          */
/* ------------------------------------------------------------------ */

static const char stub_tools_src[] =
	"{\"tools\":["
	"{\"name\":\"sized\",\"description\":\"Returns `bytes` letters of text after "
	"`service_us` microseconds.\",\"inputSchema\":{\"type\":\"object\",\"properties\":{"
	"\"bytes\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":8388608},"
	"\"service_us\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":60000000}},"
	"\"required\":[\"bytes\"]}},"
	"{\"name\":\"echo\",\"description\":\"Returns its message argument as text.\","
	"\"inputSchema\":{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}},"
	"\"required\":[\"message\"]}}]}";

/* 1 when the client accepts text/event-stream but not application/json
 * (none of application/json, application/any, any/any). */
static int sse_only(const char *accept)
{
	if (!accept || !strcasestr(accept, "text/event-stream"))
		return 0;
	return !strcasestr(accept, "application/json") && !strcasestr(accept, "application/*") &&
	       !strstr(accept, "*/*");
}

/* Answer with body (a JSON-RPC message, compact: no newline in it) as JSON
 * or as one SSE event. */
static void mcp_send(struct wpd_ex *ex, int status, int sse, const char *hdr, const char *msg,
		     size_t len)
{
	struct wpd_buf b = { 0 };

	if (!sse) {
		wpd_ex_reply(ex, status, "application/json", hdr, msg, len);
		return;
	}
	wpd_buf_adds(&b, "event: message\ndata: ");
	wpd_buf_add(&b, msg, len);
	wpd_buf_adds(&b, "\n\n");
	if (b.oom)
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
	else
		wpd_ex_reply(ex, status, "text/event-stream", hdr, b.p, b.len);
	wpd_buf_free(&b);
}

/* Send msg (stolen) and free it. */
static void mcp_answer(struct wpd_ex *ex, int status, int sse, const char *hdr, json_t *msg)
{
	size_t len;
	char *t = msg ? wpd_rpc_dump(msg, &len) : NULL;

	json_decref(msg);
	if (!t) {
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	mcp_send(ex, status, sse, hdr, t, len);
	free(t);
}

static void mcp_error(struct stub *s, struct wpd_ex *ex, int status, int sse, const json_t *id,
		      int code, const char *why)
{
	s->st.bad_requests++;
	mcp_answer(ex, status, sse, NULL, wpd_rpc_error(id, code, why, NULL));
}

/* The sized tool's answer, written without a tree (8 MiB of letters). */
static void tool_sized_answer(struct tool_job *t)
{
	static const char pre[] = ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"";
	struct stub *s = t->j.s;
	struct wpd_buf *b = &s->ev;
	char *id = json_dumps(t->id, JSON_COMPACT | JSON_ENCODE_ANY);
	char *w;

	wpd_buf_reset(b);
	if (t->sse)
		wpd_buf_adds(b, "event: message\ndata: ");
	wpd_buf_adds(b, "{\"jsonrpc\":\"2.0\",\"id\":");
	wpd_buf_adds(b, id ? id : "null");
	wpd_buf_adds(b, pre);
	w = wpd_buf_reserve(b, t->bytes);
	if (w) {
		svc_sized_text(w, t->bytes);
		wpd_buf_commit(b, t->bytes);
	}
	wpd_buf_adds(b, "\"}]}}");
	if (t->sse)
		wpd_buf_adds(b, "\n\n");
	if (!id || b->oom) {
		wpd_ex_error(t->j.ex, 500, "server_error", NULL, "out of memory");
	} else {
		s->st.tool_calls++;
		wpd_ex_reply(t->j.ex, 200, t->sse ? "text/event-stream" : "application/json", NULL,
			     b->p, b->len);
	}
	free(id);
	if (b->alloc > (1u << 20))
		wpd_buf_free(b);
}

static void tool_free(struct tool_job *t)
{
	job_done(&t->j);
	json_decref(t->id);
	free(t);
}

static void tool_due(void *arg)
{
	struct tool_job *t = arg;

	tool_sized_answer(t);
	tool_free(t);
}

static void tool_abort(void *arg)
{
	struct tool_job *t = arg;

	t->j.s->st.disconnects++;
	tool_free(t);
}

/* An integer argument in [0, max]; dflt if absent, -1 if not such an integer. */
static int64_t uint_arg(json_t *args, const char *key, int64_t max, int64_t dflt)
{
	json_t *x = json_object_get(args, key);

	if (!x)
		return dflt;
	if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > max)
		return -1;
	return (int64_t)json_integer_value(x);
}

static void tools_call(struct stub *s, struct wpd_ex *ex, int sse, const struct wpd_rpc *r)
{
	json_t *name = json_object_get(r->params, "name");
	json_t *args = json_object_get(r->params, "arguments");
	struct tool_job *t;
	int64_t bytes, us;

	if (!json_is_string(name)) {
		mcp_error(s, ex, 200, sse, r->id, WPD_RPC_INVALID_PARAMS,
			  "tools/call: params.name must be a string");
		return;
	}
	if (args && !json_is_object(args)) {
		mcp_error(s, ex, 200, sse, r->id, WPD_RPC_INVALID_PARAMS,
			  "tools/call: params.arguments must be an object");
		return;
	}
	if (!strcmp(json_string_value(name), "echo")) {
		json_t *m = json_object_get(args, "message");
		json_t *res;

		if (!json_is_string(m)) {
			mcp_error(s, ex, 200, sse, r->id, WPD_RPC_INVALID_PARAMS,
				  "echo: 'message' must be a string");
			return;
		}
		res = json_pack("{s:[{s:s,s:O}]}", "content", "type", "text", "text", m);
		s->st.tool_calls++;
		mcp_answer(ex, 200, sse, NULL, res ? wpd_rpc_response(r->id, res) : NULL);
		return;
	}
	if (strcmp(json_string_value(name), "sized")) {
		mcp_error(s, ex, 200, sse, r->id, WPD_RPC_INVALID_PARAMS,
			  "Unknown tool: not sized or echo");
		return;
	}
	bytes = uint_arg(args, "bytes", SVC_SIZED_MAX, -1);
	us = uint_arg(args, "service_us", SVC_SERVICE_US_MAX, 0);
	if (bytes < 0 || us < 0) {
		mcp_error(s, ex, 200, sse, r->id, WPD_RPC_INVALID_PARAMS,
			  "sized: 'bytes' must be an integer in [0, 8388608] and 'service_us' "
			  "one in [0, 60000000]");
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	t->id = json_incref(r->id);
	t->bytes = (uint32_t)bytes;
	t->sse = sse;
	job_start(s, &t->j, ex, tool_abort);
	if (us == 0) {
		tool_due(t);
		return;
	}
	wpd_timer_arm(s->loop, &t->j.t, (uint64_t)us * 1000, tool_due, t);
}

static void initialize(struct stub *s, struct wpd_ex *ex, int sse, const struct wpd_rpc *r)
{
	static const char *const known[] = { "2025-03-26", "2025-06-18", "2025-11-25" };
	json_t *v = json_object_get(r->params, "protocolVersion");
	const char *ver = STUB_MCP_DEFAULT;
	char hdr[96];
	json_t *res;

	for (size_t i = 0; json_is_string(v) && i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(json_string_value(v), known[i]))
			ver = known[i];
	/* Nothing is kept per session: the id is only what clients expect. */
	snprintf(hdr, sizeof(hdr), "Mcp-Session-Id: %016" PRIx64 "%016" PRIx64 "\r\n", stub_rand(s),
		 stub_rand(s));
	res = json_pack("{s:s,s:{s:{}},s:{s:s,s:s}}", "protocolVersion", ver, "capabilities",
			"tools", "serverInfo", "name", "wp_http_stub", "version", "1");
	mcp_answer(ex, 200, sse, hdr, res ? wpd_rpc_response(r->id, res) : NULL);
}

static void mcp(struct stub *s, struct wpd_ex *ex)
{
	const char *why = NULL;
	struct wpd_rpc r;
	json_t *msg;
	size_t blen;
	const char *body = wpd_ex_body(ex, &blen);
	int sse = sse_only(wpd_ex_header(ex, "accept"));

	if (strcmp(wpd_ex_method(ex), "POST")) {
		/* No server-initiated stream (GET), no sessions to end (DELETE). */
		s->st.bad_requests++;
		wpd_ex_error_h(ex, 405, "Allow: POST\r\n", "invalid_request_error", NULL,
			       "%s /mcp: this MCP server takes POST only", wpd_ex_method(ex));
		return;
	}
	msg = wpd_rpc_load(body, blen, &why);
	if (!msg) {
		mcp_error(s, ex, 400, sse, NULL, WPD_RPC_PARSE_ERROR, why ? why : "Parse error");
		return;
	}
	if (json_is_array(msg)) {
		json_decref(msg);
		mcp_error(s, ex, 400, sse, NULL, WPD_RPC_INVALID_REQUEST,
			  "batches are not supported: one JSON-RPC message per POST");
		return;
	}
	switch (wpd_rpc_classify(msg, &r)) {
	case WPD_RPC_INVALID:
		mcp_error(s, ex, 400, sse, r.id, r.code, r.why);
		break;
	case WPD_RPC_NOTIFICATION:
	case WPD_RPC_RESPONSE:
	case WPD_RPC_ERROR:
		wpd_ex_reply(ex, 202, NULL, NULL, "", 0);
		break;
	case WPD_RPC_REQUEST:
		s->st.mcp++;
		if (r.params && !json_is_object(r.params))
			mcp_error(s, ex, 200, sse, r.id, WPD_RPC_INVALID_PARAMS,
				  "params must be an object");
		else if (!strcmp(r.method, "initialize"))
			initialize(s, ex, sse, &r);
		else if (!strcmp(r.method, "ping"))
			mcp_answer(ex, 200, sse, NULL, wpd_rpc_response(r.id, NULL));
		else if (!strcmp(r.method, "tools/list"))
			mcp_answer(ex, 200, sse, NULL,
				   wpd_rpc_response(r.id, json_incref(s->tools)));
		else if (!strcmp(r.method, "tools/call"))
			tools_call(s, ex, sse, &r);
		else
			mcp_error(s, ex, 200, sse, r.id, WPD_RPC_METHOD_NOT_FOUND,
				  "Method not found");
		break;
	}
	json_decref(msg);
}

/* ------------------------------------------------------------------ */
/* Requests, signals, options                                           */
/* ------------------------------------------------------------------ */

static void handle(void *arg, struct wpd_ex *ex)
{
	struct stub *s = arg;
	const char *path = wpd_ex_path(ex);

	s->st.requests++;
	if (!strcmp(path, "/v1/chat/completions")) {
		chat(s, ex, WPD_OAI_CHAT);
	} else if (!strcmp(path, "/v1/completions")) {
		chat(s, ex, WPD_OAI_COMPLETION);
	} else if (!strcmp(path, "/mcp")) {
		mcp(s, ex);
	} else if (!strcmp(path, "/healthz")) {
		wpd_ex_reply(ex, 200, "text/plain", NULL, "ok\n", 3);
	} else {
		s->st.bad_requests++;
		wpd_ex_error(ex, 404, "invalid_request_error", "unknown_url",
			     "Unknown request URL: %s %s.", wpd_ex_method(ex), path);
	}
}

static void print_stats(const struct stub *s)
{
	fprintf(stderr,
		"{\"requests\":%" PRIu64 ",\"streams\":%" PRIu64 ",\"completions\":%" PRIu64
		",\"tokens\":%" PRIu64 ",\"mcp\":%" PRIu64 ",\"tool_calls\":%" PRIu64
		",\"disconnects\":%" PRIu64 ",\"bad_requests\":%" PRIu64 ",\"active\":%" PRIu64
		"}\n",
		s->st.requests, s->st.streams, s->st.completions, s->st.tokens, s->st.mcp,
		s->st.tool_calls, s->st.disconnects, s->st.bad_requests, s->st.active);
	fflush(stderr);
}

struct sig {
	struct stub *s;
	int fd;
	struct wpd_io io;
};

static void on_signal(void *arg, uint32_t events)
{
	struct sig *g = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(g->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			print_stats(g->s);
		else
			g->s->stop = 1;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wp_http_stub --listen HOST:PORT|unix:PATH [options]\n"
		"\n"
		"The conventional stack's HTTP services for the real-stack bench\n"
		"(bench/stacks/README.md): an OpenAI-compatible model at /v1/chat/completions\n"
		"and /v1/completions (SSE streaming, tokens paced), MCP tools at /mcp\n"
		"(streamable HTTP, stateless: `sized` and `echo`), GET /healthz.\n"
		"\n"
		"  --listen ADDR            HOST:PORT (port 0: any; `port N` is printed on\n"
		"                           stdout once listening) or unix:PATH (@name: abstract)\n"
		"  --tokens N               tokens when a request sets no max_tokens (default 16)\n"
		"  --ttft-us N              before the first token (default 0)\n"
		"  --token-interval-us N    between tokens (default 0: back to back)\n"
		"  --decode-step-us N       batched decoding: tokens leave on a common clock\n"
		"                           of this period, every stream's together (0: off)\n"
		"  --conns N                client connections at once (default 10000, as\n"
		"                           wirepathd's limits.conns)\n"
		"  --quiet                  log warnings and errors only\n"
		"  -h, --help\n"
		"\n"
		"SIGUSR1 prints the counters as one JSON line on stderr (also at exit);\n"
		"SIGTERM and SIGINT stop it (exit 0).\n");
}

static int parse_num(const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end || errno || n < lo || n > hi) {
		fprintf(stderr, "wp_http_stub: %s '%s': expected a whole number in %u..%u\n", opt,
			v, lo, hi);
		return -EINVAL;
	}
	*out = (uint32_t)n;
	return 0;
}

/* The server takes a wirepathd configuration: one listener, no
 * authentication, the default limits (header and body sizes, timeouts,
 * connections, a slow client's output). Returns 0, or -EINVAL with the
 * reason printed. */
static int make_config(const char *listen, uint32_t conns, struct wpd_config **out)
{
	const char *unix_path = !strncmp(listen, "unix:", 5) ? listen + 5 : NULL;
	const char *v = unix_path ? unix_path : listen;
	struct wpd_buf y = { 0 };
	char err[512];
	int ret;

	wpd_buf_addf(&y, "listen:\n  - %s: \"", unix_path ? "unix" : "tcp");
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "wp_http_stub: --listen: control characters in '%s'\n",
				listen);
			wpd_buf_free(&y);
			return -EINVAL;
		}
		if (*p == '"' || *p == '\\')
			wpd_buf_add(&y, "\\", 1);
		wpd_buf_add(&y, p, 1);
	}
	wpd_buf_adds(&y, "\"\nauth: none\nmetrics: false\n");
	if (conns)
		wpd_buf_addf(&y, "limits: {conns: %u}\n", conns);
	if (y.oom) {
		wpd_buf_free(&y);
		return -ENOMEM;
	}
	ret = wpd_config_parse("--listen", y.p, y.len, out, err, sizeof(err));
	wpd_buf_free(&y);
	if (ret < 0) {
		/* "--listen:2: reason": the line is ours, the reason theirs. */
		const char *why = strstr(err, ": ");

		fprintf(stderr, "wp_http_stub: --listen '%s': %s\n", listen, why ? why + 2 : err);
		return -EINVAL;
	}
	return 0;
}

/* Thousands of streams need thousands of descriptors: take the hard
 * limit, as nginx's worker_rlimit_nofile would be set for this load. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			wpd_warn("RLIMIT_NOFILE: %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "tokens", required_argument, NULL, 'n' },
		{ "ttft-us", required_argument, NULL, 'f' },
		{ "token-interval-us", required_argument, NULL, 'i' },
		{ "decode-step-us", required_argument, NULL, 'd' },
		{ "conns", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct stub s = { .tokens = SVC_DEFAULT_TOKENS };
	struct sig sg = { .s = &s, .fd = -1 };
	const char *listen = NULL;
	struct wpd_config *cfg = NULL;
	struct wpd_gen *g = NULL;
	json_error_t jerr;
	sigset_t ss;
	int o, quiet = 0, rc = 1, port;
	uint32_t conns = 0;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen = optarg;
			break;
		case 'n':
			if (parse_num("--tokens", optarg, 1, STUB_TOKENS_MAX, &s.tokens) < 0)
				return 2;
			break;
		case 'f':
			if (parse_num("--ttft-us", optarg, 0, STUB_PACE_US_MAX, &s.ttft_us) < 0)
				return 2;
			break;
		case 'i':
			if (parse_num("--token-interval-us", optarg, 0, STUB_PACE_US_MAX,
				      &s.interval_us) < 0)
				return 2;
			break;
		case 'c':
			if (parse_num("--conns", optarg, 1, 1000000, &conns) < 0)
				return 2;
			break;
		case 'd':
			if (parse_num("--decode-step-us", optarg, 0, STUB_PACE_US_MAX,
				      &s.decode_step_us) < 0)
				return 2;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !listen) {
		fprintf(stderr, "wp_http_stub: %s\n",
			optind < argc ? "unexpected arguments" : "--listen ADDR is required");
		usage(stderr);
		return 2;
	}
	if (make_config(listen, conns, &cfg) < 0)
		return 2;
	wpd_log_setup(quiet ? WP_LOG_WARN : WP_LOG_INFO, 0);
	wpd_log_prog("wp_http_stub");
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	s.tools = json_loads(stub_tools_src, 0, &jerr);
	g = calloc(1, sizeof(*g));
	if (!s.tools || !g) {
		wpd_err("out of memory");
		goto out_cfg;
	}
	g->refs = 1;
	g->cfg = cfg;
	cfg = NULL; /* the generation's */
	if (wpd_loop_create(&s.loop) < 0 || wpd_server_create(s.loop, &s.srv) < 0) {
		wpd_err("out of memory");
		goto out;
	}
	if (wpd_server_bind(s.srv, g->cfg) < 0)
		goto out;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sg.fd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sg.fd < 0 || wpd_io_add(s.loop, &sg.io, sg.fd, EPOLLIN, on_signal, &sg) < 0) {
		wpd_err("signalfd: %s", strerror(errno));
		goto out;
	}
	g->loop = s.loop; /* its last reference frees it from a deferred call */
	wpd_server_set_gen(s.srv, g);
	g = NULL; /* the server's */
	wpd_server_handler(s.srv, handle, &s);
	if (wpd_server_start(s.srv) < 0) {
		wpd_err("%s: cannot start accepting", listen);
		goto out;
	}
	port = wpd_server_port(s.srv, 0);
	if (port >= 0)
		printf("port %d\n", port);
	else
		printf("unix %s\n", listen + 5);
	fflush(stdout);
	wpd_info("serving on %s: %u tokens, ttft %u us, token interval %u us, decode step %u us",
		 listen, s.tokens, s.ttft_us, s.interval_us, s.decode_step_us);

	while (!s.stop) {
		int ret = wpd_loop_run_once(s.loop, -1);

		if (ret < 0) {
			wpd_err("event loop: %s", strerror(-ret));
			goto out;
		}
	}
	rc = 0;
out:
	/* Closing the connections aborts what is in flight: every job's
	 * timer is cancelled and the job freed by its abort. */
	wpd_server_destroy(s.srv);
	if (sg.fd >= 0) {
		wpd_io_del(s.loop, &sg.io);
		close(sg.fd);
	}
	if (s.loop) {
		wpd_loop_run_once(s.loop, 0); /* what the teardown deferred (frees) */
		wpd_loop_destroy(s.loop);
	}
	if (rc == 0)
		print_stats(&s);
out_cfg:
	wpd_gen_put(g);
	wpd_config_free(cfg);
	wpd_buf_free(&s.ev);
	wpd_buf_free(&s.text);
	json_decref(s.tools);
	return rc;
}
