// SPDX-License-Identifier: MIT
/*
 * The native service contracts (include/wirepath/service.h) as `wirepath
 * serve` implements them (tools/svc.c, the same code serve links), once per
 * path: a client calls every method and checks every byte that comes back.
 *
 * - models: the ids, '\n'-separated;
 * - generate: the exact TEXT chunks in order (--token-text words, and the
 *   generator's text for a fixed prompt, pinned), then one FINISH with the
 *   right reason and counts, and nothing after it; pacing respected;
 *   cancellation (wp_rpc_cancel, and a client that goes away) stops the
 *   stream and is counted; bad requests refused with the right status;
 * - embed: one unit vector per input, deterministic; bad inputs refused;
 * - tools/list: the exact MCP Tool JSON; tools/call: echo, add, sized
 *   (size, content and delay), argument errors as isError results,
 *   protocol errors as call errors.
 * Finally the services' counters must match what the test did, exactly.
 * On the paths a process can listen on (not mem), the same again through
 * `wirepath serve` itself: its flags, and its counters line after a cancel;
 * and examples/model_service.c, the echo model.
 */
#include <math.h>
#include <poll.h>

#include "harness.h"
#include "procs.h"
#include "svc.h"
#include "wirepath/service.h"

/* One service per server thread; the test reads its counters through a
 * snapshot the server's tick takes under a lock. */
struct side {
	struct svc_opts o;
	struct sched sched;
	struct svc *svc;
	pthread_mutex_t mu;
	struct svc_stats snap;
};

static void side_setup(struct srv *s)
{
	struct side *d = s->user;

	CHECK(svc_create(&d->o, &d->sched, &d->svc) == 0);
	CHECK(svc_register(d->svc, s->ctx) == 0);
}

static void side_tick(struct srv *s)
{
	struct side *d = s->user;

	sched_run(&d->sched, wp_now_ns());
	pthread_mutex_lock(&d->mu);
	d->snap = *svc_stats(d->svc);
	pthread_mutex_unlock(&d->mu);
}

static struct svc_stats side_stats(struct side *d)
{
	struct svc_stats st;

	pthread_mutex_lock(&d->mu);
	st = d->snap;
	pthread_mutex_unlock(&d->mu);
	return st;
}

/* ---- client ---------------------------------------------------------- */

#define MAXC 64

struct res {
	int done, status;
	uint32_t n;     /* chunks received */
	uint32_t after; /* chunks after a FINISH chunk (must stay 0) */
	int finished;   /* a FINISH chunk arrived */
	char *c[MAXC];  /* copies of the first MAXC chunks */
	uint32_t len[MAXC];
	uint64_t at[MAXC];  /* arrival, wp_now_ns() */
	uint32_t cancel_at; /* cancel once this many chunks arrived (0: never) */
	struct wp_ep *ep;
	uint64_t id;
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	if (r->finished)
		r->after++;
	if (m->len && ((const char *)m->data)[0] == WP_SVC_CHUNK_FINISH)
		r->finished = 1;
	if (r->n < MAXC) {
		r->c[r->n] = malloc(m->len + 1);
		CHECK(r->c[r->n]);
		memcpy(r->c[r->n], m->data, m->len);
		r->c[r->n][m->len] = '\0';
		r->len[r->n] = m->len;
		r->at[r->n] = wp_now_ns();
	}
	r->n++;
	if (r->cancel_at && r->n == r->cancel_at)
		CHECK(wp_rpc_cancel(r->ep, r->id) == 0);
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	CHECK(!r->done);
	r->done = 1;
	r->status = status;
}

static void res_free(struct res *r)
{
	for (uint32_t i = 0; i < r->n && i < MAXC; i++)
		free(r->c[i]);
	memset(r, 0, sizeof(*r));
}

static void call_start(struct wp_ep *ep, uint32_t method, const void *req, uint32_t len,
		       struct res *r)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = len,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = r };

	r->ep = ep;
	CHECK(wp_rpc_call(ep, &p, &r->id) == 0);
}

/* Call and wait for the end; r holds the chunks and the status. */
static void call(struct wp_ctx *c, struct wp_ep *ep, uint32_t method, const void *req, uint32_t len,
		 struct res *r)
{
	memset(r, 0, sizeof(*r));
	call_start(ep, method, req, len, r);
	drive_until(c, &r->done, 10000);
}

/* A WP_SVC_GENERATE / WP_SVC_EMBED request, in buf; returns its length. */
static uint32_t gen_req(char *buf, size_t cap, uint32_t kind, uint32_t max_tokens,
			const char *model, const void *prompt, uint32_t plen)
{
	struct wp_svc_req_hdr h;
	const char *body = "{\"stream\":true}";
	uint32_t ml = (uint32_t)strlen(model), bl = (uint32_t)strlen(body);

	CHECK(sizeof(h) + ml + plen + bl <= cap);
	wp_svc_req_hdr_init(&h, kind, max_tokens, ml, plen, bl);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), model, ml);
	memcpy(buf + sizeof(h) + ml, prompt, plen);
	memcpy(buf + sizeof(h) + ml + plen, body, bl);
	return (uint32_t)sizeof(h) + ml + plen + bl;
}

/* The text chunks joined (without their type bytes). */
static void stream_text(const struct res *r, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < r->n && i < MAXC; i++) {
		if (r->c[i][0] != WP_SVC_CHUNK_TEXT)
			continue;
		CHECK(n + r->len[i] - 1 < cap);
		memcpy(out + n, r->c[i] + 1, r->len[i] - 1);
		n += r->len[i] - 1;
		out[n] = '\0';
	}
}

/* A whole stream: n TEXT chunks, then a FINISH with these values, ok. */
static void check_stream(const struct res *r, uint32_t ntext, uint32_t reason, uint32_t ptok)
{
	struct wp_svc_finish f;

	CHECK_EQ(r->status, 0);
	CHECK_EQ(r->n, ntext + 1);
	CHECK_EQ(r->after, 0);
	for (uint32_t i = 0; i < ntext; i++)
		CHECK_EQ(r->c[i][0], WP_SVC_CHUNK_TEXT);
	CHECK(wp_svc_finish_parse(r->c[ntext], r->len[ntext], &f) == 0);
	CHECK_EQ(f.reason, reason);
	CHECK_EQ(f.prompt_tokens, ptok);
	CHECK_EQ(f.completion_tokens, ntext);
}

static void expect_error(struct wp_ctx *c, struct wp_ep *ep, uint32_t method, const void *req,
			 uint32_t len, int status)
{
	struct res r;

	call(c, ep, method, req, len, &r);
	CHECK_EQ(r.status, status);
	CHECK_EQ(r.n, 0);
	res_free(&r);
}

/* tools/call with name and arguments; the reply as a string in r.c[0]. */
static void tool_call(struct wp_ctx *c, struct wp_ep *ep, const char *name, const char *args,
		      struct res *r)
{
	char buf[4096];
	struct wp_svc_tool_hdr h = { .name_len = htole32((uint32_t)strlen(name)) };
	size_t nl = strlen(name), al = strlen(args);

	CHECK(sizeof(h) + nl + al <= sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), name, nl);
	memcpy(buf + sizeof(h) + nl, args, al);
	call(c, ep, WP_SVC_TOOLS_CALL, buf, (uint32_t)(sizeof(h) + nl + al), r);
}

static void expect_tool(struct wp_ctx *c, struct wp_ep *ep, const char *name, const char *args,
			const char *want)
{
	struct res r;

	tool_call(c, ep, name, args, &r);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.n, 1);
	if (strcmp(r.c[0], want)) {
		fprintf(stderr, "tool %s %s:\n got  %s\n want %s\n", name, args, r.c[0], want);
		CHECK(0);
	}
	res_free(&r);
}

static uint32_t embed_inputs(char *buf, const char *const *in, int n)
{
	uint32_t off = 0;

	for (int i = 0; i < n; i++) {
		uint32_t l = (uint32_t)strlen(in[i]), le = htole32(l);

		memcpy(buf + off, &le, 4);
		memcpy(buf + off + 4, in[i], l);
		off += 4 + l;
	}
	return off;
}

/* ---- the checks ------------------------------------------------------ */

/* Server A: --model-name m1 --model-name m2 --tokens 5
 * --token-text "alpha beta gamma", no pacing. */
static void test_words(struct wp_ctx *c, struct wp_ep *ep)
{
	char req[1024], text[1024];
	struct res r;
	uint32_t len;

	call(c, ep, WP_SVC_MODELS, NULL, 0, &r);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.n, 1);
	CHECK(r.len[0] == 5 && !memcmp(r.c[0], "m1\nm2", 5));
	res_free(&r);

	/* max_tokens 0: the configured 5, "stop"; prompt_tokens: 3 words. */
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "m1", " hello  there\tworld\n", 20);
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 5, WP_SVC_FINISH_STOP, 3);
	CHECK(!strcmp(r.c[0], "Talpha") && !strcmp(r.c[1], "T beta") &&
	      !strcmp(r.c[2], "T gamma") && !strcmp(r.c[3], "T alpha") &&
	      !strcmp(r.c[4], "T beta"));
	res_free(&r);

	/* max_tokens 7: exactly 7, "length"; the second model; no model = the first. */
	len = gen_req(req, sizeof(req), WP_SVC_KIND_COMPLETION, 7, "m2", "one", 3);
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 7, WP_SVC_FINISH_LENGTH, 1);
	stream_text(&r, text, sizeof(text));
	CHECK(!strcmp(text, "alpha beta gamma alpha beta gamma alpha"));
	res_free(&r);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_COMPLETION, 1, "", "", 0);
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 1, WP_SVC_FINISH_LENGTH, 0);
	CHECK(!strcmp(r.c[0], "Talpha"));
	res_free(&r);

	/* Refusals: unknown model, wrong kind, malformed. */
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "gpt-4", "x", 1);
	expect_error(c, ep, WP_SVC_GENERATE, req, len, ENOENT);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m1", "x", 1);
	expect_error(c, ep, WP_SVC_GENERATE, req, len, EINVAL);
	expect_error(c, ep, WP_SVC_GENERATE, req, len - 1, EINVAL); /* lengths disagree */
	expect_error(c, ep, WP_SVC_GENERATE, req, 8, EINVAL);       /* short */
}

static void test_embed(struct wp_ctx *c, struct wp_ep *ep)
{
	static const char *const in3[] = { "hello world", "", "x" };
	static const char *const in1[] = { "x" };
	char prompt[256], req[1024];
	struct wp_svc_embed_hdr eh;
	struct res r, r1;
	uint32_t plen, len;

	plen = embed_inputs(prompt, in3, 3);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m2", prompt, plen);
	call(c, ep, WP_SVC_EMBED, req, len, &r);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.n, 1);
	CHECK_EQ(r.len[0], sizeof(eh) + 3 * SVC_EMBED_DIM * 4);
	memcpy(&eh, r.c[0], sizeof(eh));
	CHECK_EQ(le32toh(eh.count), 3);
	CHECK_EQ(le32toh(eh.dim), SVC_EMBED_DIM);
	CHECK_EQ(le32toh(eh.prompt_tokens), 3);
	for (int i = 0; i < 3; i++) {
		double norm = 0;

		for (int k = 0; k < SVC_EMBED_DIM; k++) {
			uint32_t bits;
			float f;

			memcpy(&bits, r.c[0] + sizeof(eh) + (i * SVC_EMBED_DIM + k) * 4, 4);
			bits = le32toh(bits);
			memcpy(&f, &bits, 4);
			CHECK(isfinite(f));
			norm += (double)f * f;
		}
		CHECK(fabs(norm - 1) < 1e-5);
	}
	/* Different inputs, different vectors; the same input, the same bytes. */
	CHECK(memcmp(r.c[0] + sizeof(eh), r.c[0] + sizeof(eh) + 64, 64));
	plen = embed_inputs(prompt, in1, 1);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m1", prompt, plen);
	call(c, ep, WP_SVC_EMBED, req, len, &r1);
	CHECK_EQ(r1.status, 0);
	CHECK_EQ(r1.len[0], sizeof(eh) + 64);
	CHECK(!memcmp(r1.c[0] + sizeof(eh), r.c[0] + sizeof(eh) + 128, 64));
	res_free(&r);
	res_free(&r1);

	/* Refusals: no inputs, an input longer than the prompt, a cut length,
	 * the wrong kind, an unknown model. */
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m1", "", 0);
	expect_error(c, ep, WP_SVC_EMBED, req, len, EINVAL);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m1", "\x09\0\0\0abc", 7);
	expect_error(c, ep, WP_SVC_EMBED, req, len, EINVAL);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m1", "\x01\0\0\0a\x01", 6);
	expect_error(c, ep, WP_SVC_EMBED, req, len, EINVAL);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "m1", prompt, plen);
	expect_error(c, ep, WP_SVC_EMBED, req, len, EINVAL);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_EMBEDDING, 0, "m3", prompt, plen);
	expect_error(c, ep, WP_SVC_EMBED, req, len, ENOENT);
}

static const char tools_json[] =
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

#define TEXT(s) "{\"content\":[{\"type\":\"text\",\"text\":\"" s "\"}]}"
#define ERROR(s) "{\"content\":[{\"type\":\"text\",\"text\":\"" s "\"}],\"isError\":true}"

static void test_tools(struct wp_ctx *c, struct wp_ep *ep)
{
	struct wp_svc_tool_hdr h = { 0 };
	struct res r;
	uint64_t t0;
	size_t pre;

	call(c, ep, WP_SVC_TOOLS_LIST, NULL, 0, &r);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.n, 1);
	CHECK(!strcmp(r.c[0], tools_json));
	res_free(&r);

	expect_tool(c, ep, "echo", "{\"message\":\"hi \\\"there\\\" \\u00e9\"}",
		    TEXT("hi \\\"there\\\" \xc3\xa9"));
	expect_tool(c, ep, "echo", "{\"message\":\"\"}", TEXT(""));
	expect_tool(c, ep, "echo", "", ERROR("echo: 'message' must be a string"));
	expect_tool(c, ep, "echo", "{\"message\":5}", ERROR("echo: 'message' must be a string"));
	expect_tool(c, ep, "add", "{\"a\":2,\"b\":3}", TEXT("5"));
	expect_tool(c, ep, "add", "{\"a\":-9007199254740993,\"b\":1}", TEXT("-9007199254740992"));
	expect_tool(c, ep, "add", "{\"a\":0.5,\"b\":0.25}", TEXT("0.75"));
	expect_tool(c, ep, "add", "{\"a\":1,\"b\":\"2\"}",
		    ERROR("add: 'a' and 'b' must be numbers"));
	expect_tool(c, ep, "sized", "{\"bytes\":30}", TEXT("abcdefghijklmnopqrstuvwxyzabcd"));
	expect_tool(c, ep, "sized", "{\"bytes\":8388609}",
		    ERROR("sized: 'bytes' must be an integer in [0, 8388608] and 'service_us' one "
			  "in [0, 60000000]"));
	expect_tool(c, ep, "sized", "{\"bytes\":1,\"service_us\":-1}",
		    ERROR("sized: 'bytes' must be an integer in [0, 8388608] and 'service_us' one "
			  "in [0, 60000000]"));

	/* A large result after a wait: every byte, and not early. */
	t0 = wp_now_ns();
	tool_call(c, ep, "sized", "{\"bytes\":300000,\"service_us\":30000}", &r);
	CHECK(wp_now_ns() - t0 >= 30000000ull);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.n, 1);
	pre = strlen("{\"content\":[{\"type\":\"text\",\"text\":\"");
	CHECK_EQ(r.len[0], pre + 300000 + 4);
	CHECK(!memcmp(r.c[0], TEXT(""), pre));
	for (uint32_t i = 0; i < 300000; i++)
		CHECK(r.c[0][pre + i] == (char)('a' + i % 26));
	CHECK(!strcmp(r.c[0] + pre + 300000, "\"}]}"));
	res_free(&r);

	/* Protocol errors: an unknown tool, arguments that are not a JSON
	 * object, a header whose name length is 0 or past the end. */
	tool_call(c, ep, "nope", "{}", &r);
	CHECK_EQ(r.status, ENOENT);
	res_free(&r);
	tool_call(c, ep, "echo", "{\"message\":", &r);
	CHECK_EQ(r.status, EINVAL);
	res_free(&r);
	tool_call(c, ep, "echo", "[1]", &r);
	CHECK_EQ(r.status, EINVAL);
	res_free(&r);
	tool_call(c, ep, "echo", "{\"message\":\"a\",\"message\":\"b\"}", &r);
	CHECK_EQ(r.status, EINVAL);
	res_free(&r);
	expect_error(c, ep, WP_SVC_TOOLS_CALL, &h, sizeof(h), EINVAL);
	h.name_len = htole32(9);
	expect_error(c, ep, WP_SVC_TOOLS_CALL, &h, sizeof(h), EINVAL);
}

/* The generator's text for this prompt, pinned: a change to the vocabulary
 * or the hash shows here (and in the daemon's tests that rely on it). */
#define GOLDEN_PROMPT "Write a haiku about shared memory."
#define GOLDEN_TEXT "slow model ring done memory with without in"

/* Server B: the generator, 8 tokens, one every 10 ms. */
static void test_paced(struct wp_ctx *c, struct wp_ep *ep, struct side *d)
{
	char req[1024], text[1024], text2[1024];
	struct svc_stats st;
	struct res r, r2;
	uint64_t span, t0;
	uint32_t len;

	call(c, ep, WP_SVC_MODELS, NULL, 0, &r);
	CHECK(r.n == 1 && !strcmp(r.c[0], "wp-stub"));
	res_free(&r);

	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "wp-stub", GOLDEN_PROMPT,
		      strlen(GOLDEN_PROMPT));
	t0 = wp_now_ns();
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 8, WP_SVC_FINISH_STOP, 6);
	stream_text(&r, text, sizeof(text));
	printf("generated: \"%s\"\n", text);
	CHECK(!strcmp(text, GOLDEN_TEXT));
	/* Tokens 0..7 at 10 ms steps: 70 ms from the first to the last (less a
	 * little: the first may be read late), the whole well under a second. */
	span = r.at[7] - r.at[0];
	printf("8 tokens at 10 ms: first to last %.1f ms\n", span / 1e6);
	CHECK(span >= 65000000ull);
	CHECK(wp_now_ns() - t0 < 2000000000ull);
	for (uint32_t i = 1; i < 8; i++)
		CHECK(r.at[i] > r.at[i - 1]);
	/* The same prompt, the same text; another prompt, another. */
	call(c, ep, WP_SVC_GENERATE, req, len, &r2);
	stream_text(&r2, text2, sizeof(text2));
	CHECK(!strcmp(text, text2));
	res_free(&r2);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "", "Write a limerick.", 17);
	call(c, ep, WP_SVC_GENERATE, req, len, &r2);
	check_stream(&r2, 8, WP_SVC_FINISH_STOP, 3);
	stream_text(&r2, text2, sizeof(text2));
	CHECK(strcmp(text, text2));
	res_free(&r2);
	res_free(&r);

	/* Cancel after 3 tokens of 1000 (10 s): the client sees -ECANCELED at
	 * once; the server stops the stream and counts it within a sweep. */
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 1000, "", "long", 4);
	memset(&r, 0, sizeof(r));
	r.cancel_at = 3;
	call_start(ep, WP_SVC_GENERATE, req, len, &r);
	drive_until(c, &r.done, 5000);
	CHECK_EQ(r.status, -ECANCELED);
	t0 = wp_now_ns();
	for (;;) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		st = side_stats(d);
		if (st.cancelled == 1)
			break;
		CHECK(wp_now_ns() - t0 < 2000000000ull);
	}
	printf("cancel seen by the service after %.1f ms\n", (wp_now_ns() - t0) / 1e6);
	/* No token after that: the count stays put. */
	t0 = wp_now_ns();
	while (wp_now_ns() - t0 < 60000000ull)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK(side_stats(d).tokens == st.tokens);
	CHECK(st.tokens < 3 * 8 + 10);
	res_free(&r);
}

/* A client that goes away mid-stream: the service stops and counts it. */
static void test_client_gone(const char *path, int port, struct side *d)
{
	struct conn_wait w = { 0 };
	struct wp_ctx *c = client_ctx(path);
	struct wp_ep *ep = client_connect(c, path, port, &w, NULL, NULL);
	char req[256];
	struct res r;
	uint64_t t0;
	uint32_t len, before = (uint32_t)side_stats(d).cancelled;

	len = gen_req(req, sizeof(req), WP_SVC_KIND_COMPLETION, 1000, "", "bye", 3);
	memset(&r, 0, sizeof(r));
	call_start(ep, WP_SVC_GENERATE, req, len, &r);
	t0 = wp_now_ns();
	while (r.n < 2) {
		CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(wp_now_ns() - t0 < 5000000000ull);
	}
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	t0 = wp_now_ns();
	while (side_stats(d).cancelled != before + 1) {
		usleep(1000);
		CHECK(wp_now_ns() - t0 < 2000000000ull);
	}
	res_free(&r);
}

/* ---- the wirepath CLI ------------------------------------------------ */

/* The next line of the child's stdout within ms, into line; 0 or -1. */
static int read_line(int fd, char *line, size_t cap, int ms)
{
	size_t n = 0;
	uint64_t end = wp_now_ns() + (uint64_t)ms * 1000000;

	while (n + 1 < cap) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(end - wp_now_ns()) / 1000000;

		if (left <= 0 || poll(&pf, 1, (int)left) != 1 || read(fd, line + n, 1) != 1)
			return -1;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return 0;
}

/* The first line starting with prefix; CHECK fails after ms. */
static void wait_line(int fd, const char *prefix, char *line, size_t cap, int ms)
{
	do {
		if (read_line(fd, line, cap, ms) < 0) {
			fprintf(stderr, "no line '%s...' from wirepath serve in %d ms\n", prefix,
				ms);
			CHECK(0);
		}
		printf("serve| %s\n", line);
	} while (strncmp(line, prefix, strlen(prefix)));
}

/*
 * `wirepath serve` itself, as the daemon's tests run it: its flags reach
 * the service (model ids, token count, text, pacing), and its "services:"
 * line (SIGUSR1, and at exit) counts a cancelled stream.
 */
static void test_cli(const char *path)
{
	char bin[1024], listen[64], line[2048], req[256], *uri;
	struct conn_wait w = { 0 };
	struct wp_ep_cbs cbs = { .event = h_ep_event, .arg = &w };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct res r;
	uint32_t len;
	int fds[2], st;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/wirepath", WP_BUILD_ROOT);
	CHECK(access(bin, X_OK) == 0);
	h_uri(listen, sizeof(listen), path, 0);
	CHECK(pipe(fds) == 0);
	pid = fork_child();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(bin, "wirepath", "serve", "--listen", listen, "--select", "require",
		      "--model-name", "cli-a", "--model-name", "cli-b", "--tokens", "3",
		      "--token-interval-us", "20000", "--token-text", "one two", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	wait_line(fds[0], "connect: ", line, sizeof(line), 10000);
	uri = line + strlen("connect: ");
	c = client_ctx(path);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	while (!w.up && !w.closed)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK(w.up);

	call(c, ep, WP_SVC_MODELS, NULL, 0, &r);
	CHECK(r.n == 1 && !strcmp(r.c[0], "cli-a\ncli-b"));
	res_free(&r);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "cli-b", "a b", 3);
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 3, WP_SVC_FINISH_STOP, 2);
	CHECK(!strcmp(r.c[0], "Tone") && !strcmp(r.c[1], "T two") && !strcmp(r.c[2], "T one"));
	CHECK(r.at[2] - r.at[0] >= 35000000ull);
	res_free(&r);
	memset(&r, 0, sizeof(r));
	r.cancel_at = 2;
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 1000, "cli-a", "a", 1);
	call_start(ep, WP_SVC_GENERATE, req, len, &r);
	drive_until(c, &r.done, 5000);
	CHECK_EQ(r.status, -ECANCELED);
	res_free(&r);

	/* The cancel reaches serve within a token interval or a sweep; ask
	 * until its line shows it. */
	for (int i = 0;; i++) {
		uint64_t t0 = wp_now_ns();

		while (wp_now_ns() - t0 < 20000000ull)
			CHECK(wp_ctx_progress(c, 1000) >= 0);
		CHECK(kill(pid, SIGUSR1) == 0);
		wait_line(fds[0], "services: ", line, sizeof(line), 5000);
		if (strstr(line, "\"cancelled\":1,"))
			break;
		CHECK(i < 100);
	}
	CHECK(strstr(line, "\"generate\":2,\"tokens\":"));
	CHECK(strstr(line, "\"finish_stop\":1,\"finish_length\":0,"));
	CHECK(strstr(line, "\"models\":1,"));
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	CHECK(kill(pid, SIGTERM) == 0);
	wait_line(fds[0], "services: ", line, sizeof(line), 5000);
	CHECK(strstr(line, "\"cancelled\":1,"));
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fds[0]);
}

/* examples/model_service.c: the echo model, as its comment says to run it. */
static void test_example(const char *path)
{
	char bin[1024], listen[64], line[512], req[256], text[256];
	struct conn_wait w = { 0 };
	struct wp_ep_cbs cbs = { .event = h_ep_event, .arg = &w };
	const char *at = "model_service: model 'echo' at ";
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct res r;
	uint32_t len;
	int fds[2], st;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/examples/model_service", WP_BUILD_ROOT);
	CHECK(access(bin, X_OK) == 0);
	h_uri(listen, sizeof(listen), path, 0);
	CHECK(pipe(fds) == 0);
	pid = fork_child();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(bin, "model_service", listen, "echo", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	wait_line(fds[0], at, line, sizeof(line), 10000);
	c = client_ctx(path);
	CHECK(wp_connect(c, line + strlen(at), &cbs, &ep) == 0);
	while (!w.up && !w.closed)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	CHECK(w.up);
	call(c, ep, WP_SVC_MODELS, NULL, 0, &r);
	CHECK(r.n == 1 && !strcmp(r.c[0], "echo"));
	res_free(&r);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "echo", "user: hi  there", 15);
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 3, WP_SVC_FINISH_STOP, 3);
	stream_text(&r, text, sizeof(text));
	CHECK(!strcmp(text, "user: hi there"));
	res_free(&r);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 2, "", "a b c", 5);
	call(c, ep, WP_SVC_GENERATE, req, len, &r);
	check_stream(&r, 2, WP_SVC_FINISH_LENGTH, 3);
	CHECK(!strcmp(r.c[0], "Ta") && !strcmp(r.c[1], "T b"));
	res_free(&r);
	len = gen_req(req, sizeof(req), WP_SVC_KIND_CHAT, 0, "other", "x", 1);
	expect_error(c, ep, WP_SVC_GENERATE, req, len, ENOENT);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	CHECK(kill(pid, SIGTERM) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fds[0]);
}

int main(int argc, char **argv)
{
	static struct srv sa, sb;
	static struct side da = {
		.o = { .models = { "m1", "m2" },
		       .n_models = 2,
		       .tokens = 5,
		       .token_text = "alpha  beta\tgamma" },
		.mu = PTHREAD_MUTEX_INITIALIZER,
	};
	static struct side db = {
		.o = { .tokens = 8, .token_interval_us = 10000 },
		.mu = PTHREAD_MUTEX_INITIALIZER,
	};
	struct conn_wait wa = { 0 }, wb = { 0 };
	struct svc_stats a, b;
	struct wp_ctx *c;
	struct wp_ep *ea, *eb;

	test_watchdog(60);
	sa.path = sb.path = test_path(argc, argv);
	sa.setup = sb.setup = side_setup;
	sa.tick = sb.tick = side_tick;
	sa.user = &da;
	sb.user = &db;
	srv_start(&sa, NULL);
	srv_start(&sb, NULL);
	c = client_ctx(sa.path);
	ea = client_connect(c, sa.path, sa.port, &wa, NULL, NULL);
	eb = client_connect(c, sb.path, sb.port, &wb, NULL, NULL);
	printf("path: %s\n", wp_ctx_explain(c));

	test_words(c, ea);
	test_embed(c, ea);
	test_tools(c, ea);
	test_paced(c, eb, &db);
	test_client_gone(sb.path, sb.port, &db);
	/* mem is a path inside this test binary: serve cannot listen on it. */
	if (strcmp(sa.path, "mem")) {
		test_cli(sa.path);
		test_example(sa.path);
	}

	wp_ep_close(ea);
	wp_ep_close(eb);
	wp_ctx_destroy(c);
	srv_stop(&sa);
	srv_stop(&sb);
	/* Every stream ended before its context went: nothing left to drop. */
	CHECK_EQ(da.sched.n, 0);
	CHECK_EQ(db.sched.n, 0);
	a = *svc_stats(da.svc);
	b = *svc_stats(db.svc);
	CHECK_EQ(a.generate, 3);
	CHECK_EQ(a.tokens, 5 + 7 + 1);
	CHECK_EQ(a.finish_stop, 1);
	CHECK_EQ(a.finish_length, 2);
	CHECK_EQ(a.cancelled, 0);
	CHECK_EQ(a.models, 1);
	CHECK_EQ(a.embed, 2);
	CHECK_EQ(a.vectors, 4);
	CHECK_EQ(a.tools_list, 1);
	CHECK_EQ(a.tools_call, 12);
	CHECK_EQ(a.tool_echo, 4);
	CHECK_EQ(a.tool_add, 4);
	CHECK_EQ(a.tool_sized, 4);
	CHECK_EQ(a.tool_errors, 5);
	/* generate 4, embed 5, tools 6 */
	CHECK_EQ(a.bad_requests, 4 + 5 + 6);
	CHECK_EQ(a.send_errors + a.oom, 0);
	CHECK_EQ(b.generate, 5);
	CHECK_EQ(b.finish_stop, 3);
	CHECK_EQ(b.cancelled, 2);
	CHECK_EQ(b.models, 1);
	sched_fini(&da.sched);
	sched_fini(&db.sched);
	svc_destroy(da.svc);
	svc_destroy(db.svc);
	printf("ok\n");
	return 0;
}
