// SPDX-License-Identifier: MIT
/*
 * wp_agents: the open-loop agent driver of the real-stack bench
 * (bench/stacks/run.py, docs/performance.md "Real stacks"). One thread runs
 * many agents' steps; the same step logic drives two clients:
 *
 *   --mode http --target http://HOST:PORT
 *     what an agent stack speaks today: OpenAI-compatible chat completions
 *     streamed as SSE (POST /v1/chat/completions) and MCP tools/call over
 *     streamable HTTP (POST --mcp-path), through libcurl's multi interface on
 *     this program's epoll loop (curl_multi_socket_action), HTTP/1.1 with
 *     keep-alive; every SSE chunk and every tool result is parsed as JSON
 *     (jansson), as a real client parses it;
 *   --mode native --target URI (tcp://, uring://, shm://)
 *     the wirepath protocol to `wirepath serve`'s native service contracts
 *     (include/wirepath/service.h): WP_SVC_GENERATE for the model, whose
 *     TEXT chunks are the tokens, and WP_SVC_TOOLS_CALL for tools, whose
 *     reply is the same MCP CallToolResult JSON, parsed the same way.
 *
 * A step: --mem-lookups memory lookups in parallel (the tool `sized` with
 * --mem-bytes and --mem-service-us), then one model call streaming --tokens
 * tokens (the service paces them; --token-interval-us is that pace, used to
 * measure the gaps' excess), then --fanout tool calls in parallel (`sized`
 * with --tool-bytes and --tool-service-us), then done.
 *
 * Open loop: step i is due at an arrival time drawn in advance (Poisson at
 * --rate, or fixed spacing), whatever happened before it. Its latency runs
 * from that due time, so a stack that falls behind cannot hide it
 * (coordinated omission, corrected as wrk2 does); "late" counts steps that
 * started more than --late-ms (1 ms) after their due time. At most --max-steps steps
 * run at once; arrivals beyond wait (their wait is in their latency).
 *
 * Prints one JSON object on stdout at the end: counts, errors, step latency,
 * tool-call RTT, time to first token, token gaps and their excess over the
 * pace, all as percentiles. Exit 0 when the run was made (errors are in the
 * JSON), 1 when it could not be made, 2 for bad arguments.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "wirepath/service.h"
#include "wirepath/wirepath.h"

#define LINE_MAX_BYTES 65536
#define MAX_EVENTS 256
#define NS_US 1000ull
#define NS_MS 1000000ull
#define NS_S 1000000000ull

enum mode { MODE_HTTP, MODE_NATIVE };
enum phase { PH_MEM, PH_MODEL, PH_TOOLS, PH_DONE };
enum err_kind { E_CONNECT, E_STATUS, E_PARSE, E_SHORT, E_TRANSPORT, E_TIMEOUT, E_N };
static const char *const err_names[E_N] = { "connect", "status",    "parse",
					    "short",   "transport", "timeout" };

struct cfg {
	enum mode mode;
	const char *target;
	const char *mcp_path;
	const char *model;
	const char *tool;
	const char *cafile;
	double rate;
	int fixed;
	double duration, warmup, grace;
	uint64_t seed;
	uint32_t tokens, token_interval_us;
	uint32_t fanout, tool_bytes, tool_service_us;
	uint32_t mem_lookups, mem_bytes, mem_service_us;
	uint32_t max_steps, conns;
	double late_ms;
	int verbose;
};

static struct cfg C = {
	.mode = MODE_HTTP,
	.mcp_path = "/mcp",
	.model = "wp-stub",
	.tool = "sized",
	.rate = 10,
	.duration = 5,
	.warmup = 1,
	.grace = 5,
	.seed = 1,
	.tokens = 520,
	.token_interval_us = 25000,
	.fanout = 8,
	.tool_bytes = 4096,
	.tool_service_us = 0,
	.mem_lookups = 2,
	.mem_bytes = 16384,
	.mem_service_us = 0,
	.max_steps = 20000,
	.conns = 0,
	.late_ms = 1,
};

struct step {
	uint64_t due_ns;   /* intended start (open loop) */
	uint64_t start_ns; /* actual start */
	enum phase ph;
	uint32_t pending; /* calls of the phase in flight */
	uint32_t tokens;
	uint64_t model_ns, last_tok_ns;
	int failed;
	int measured; /* due inside the measurement window */
	struct step *next;
};

/* A call in flight (either client). */
struct req {
	struct step *st;
	int model;
	uint64_t issue_ns;
	uint32_t want; /* tool: bytes expected */
	uint32_t service_us;
	/* http */
	CURL *e;
	char *line; /* SSE: the partial line */
	size_t line_len, line_cap;
	char *body; /* tool: the response body */
	size_t body_len, body_cap;
	int done_seen;
	char post[512];
	struct req *next;
};

static struct {
	uint64_t t0, win0, win1, end;
	uint64_t started, done, failed, late, waited;
	uint64_t tokens, tool_calls, tool_fail, model_calls;
	uint64_t errors[E_N];
	struct wp_hist step, tool, tool_excess, ttft, gap, excess;
	uint64_t next_due;
	uint64_t arrivals; /* drawn so far */
	uint64_t rng;
	uint32_t running;
	struct step *waiting, **waiting_tail; /* arrivals over --max-steps */
	struct req *free_reqs;
	struct step *free_steps;
	volatile sig_atomic_t stop;
	char err[256];
} S;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "wp_agents: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint64_t rng_next(void)
{
	/* splitmix64: the arrival draws, reproducible from --seed */
	uint64_t z = (S.rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t next_gap_ns(void)
{
	double mean = 1e9 / C.rate;

	if (C.fixed)
		return (uint64_t)mean;
	/* exponential inter-arrival times: a Poisson process at --rate */
	double u = ((double)(rng_next() >> 11) + 0.5) / (double)(1ull << 53);

	return (uint64_t)(-log(u) * mean);
}

/* ------------------------------------------------------------------ */
/* The step logic, shared by both clients                              */
/* ------------------------------------------------------------------ */

struct client {
	int (*tool)(struct step *st, uint32_t bytes, uint32_t service_us);
	int (*model)(struct step *st);
};
static struct client CL;

static void count_err(enum err_kind k)
{
	S.errors[k]++;
}

static void step_advance(struct step *st);

static void step_free(struct step *st)
{
	st->next = S.free_steps;
	S.free_steps = st;
}

static void step_finish(struct step *st)
{
	uint64_t now = wp_now_ns();

	S.running--;
	if (st->measured) {
		if (st->failed) {
			S.failed++;
		} else {
			S.done++;
			wp_hist_add(&S.step, now - st->due_ns);
		}
	}
	step_free(st);
}

static void phase_call_done(struct step *st)
{
	if (--st->pending == 0)
		step_advance(st);
}

/* A tool or memory call ended: ok, or failed with why. Its RTT, and its
 * excess over the service time it asked for (the stack's own delay). */
static void tool_done(struct step *st, uint64_t issue_ns, uint32_t service_us, int ok)
{
	if (st->measured) {
		S.tool_calls++;
		if (ok) {
			uint64_t rtt = wp_now_ns() - issue_ns, svc = (uint64_t)service_us * NS_US;

			wp_hist_add(&S.tool, rtt);
			wp_hist_add(&S.tool_excess, rtt > svc ? rtt - svc : 0);
		} else
			S.tool_fail++;
	}
	if (!ok)
		st->failed = 1;
	phase_call_done(st);
}

static void model_token(struct step *st)
{
	uint64_t now = wp_now_ns();

	if (st->measured) {
		S.tokens++;
		if (st->tokens == 0) {
			wp_hist_add(&S.ttft, now - st->model_ns);
		} else {
			uint64_t gap = now - st->last_tok_ns;
			uint64_t pace = (uint64_t)C.token_interval_us * NS_US;

			wp_hist_add(&S.gap, gap);
			wp_hist_add(&S.excess, gap > pace ? gap - pace : 0);
		}
	}
	st->tokens++;
	st->last_tok_ns = now;
}

static void model_done(struct step *st, int ok)
{
	if (st->measured)
		S.model_calls++;
	if (ok && st->tokens != C.tokens) {
		count_err(E_SHORT);
		ok = 0;
	}
	if (!ok)
		st->failed = 1;
	phase_call_done(st);
}

static void step_advance(struct step *st)
{
	for (;;) {
		uint32_t n = 0;

		if (st->failed) {
			step_finish(st);
			return;
		}
		st->ph++;
		st->pending = 1; /* held while issuing: a call that ends at once
				  * does not finish the phase under us */
		switch (st->ph) {
		case PH_MODEL:
			if (CL.model(st) == 0)
				n = 1;
			else
				st->failed = 1;
			st->model_ns = wp_now_ns();
			break;
		case PH_TOOLS:
			for (uint32_t i = 0; i < C.fanout && !st->failed; i++) {
				if (CL.tool(st, C.tool_bytes, C.tool_service_us) == 0)
					n++;
				else
					st->failed = 1;
			}
			break;
		default:
			step_finish(st);
			return;
		}
		st->pending += n;
		if (--st->pending > 0)
			return;
	}
}

static void step_start(struct step *st)
{
	uint64_t now = wp_now_ns();

	st->start_ns = now;
	if (st->measured && now > st->due_ns + (uint64_t)(C.late_ms * 1e6))
		S.late++;
	S.running++;
	st->ph = PH_MEM;
	st->pending = 1;
	for (uint32_t i = 0; i < C.mem_lookups && !st->failed; i++) {
		if (CL.tool(st, C.mem_bytes, C.mem_service_us) == 0)
			st->pending++;
		else
			st->failed = 1;
	}
	if (--st->pending == 0)
		step_advance(st);
}

/* Start every step that is due (and has room); returns ns to the next due
 * arrival, or -1 when arrivals are over. */
static int64_t arrivals_run(void)
{
	uint64_t now = wp_now_ns();

	while (S.waiting && S.running < C.max_steps) {
		struct step *st = S.waiting;

		S.waiting = st->next;
		if (!S.waiting)
			S.waiting_tail = &S.waiting;
		step_start(st);
	}
	while (!S.stop && S.next_due <= now && S.next_due < S.win1) {
		struct step *st = S.free_steps;

		if (st)
			S.free_steps = st->next;
		else if (!(st = malloc(sizeof(*st))))
			die("out of memory for steps");
		memset(st, 0, sizeof(*st));
		st->due_ns = S.next_due;
		st->measured = st->due_ns >= S.win0;
		if (st->measured)
			S.started++;
		S.next_due += next_gap_ns();
		if (S.running >= C.max_steps) {
			if (st->measured)
				S.waited++;
			*S.waiting_tail = st;
			S.waiting_tail = &st->next;
			continue;
		}
		step_start(st);
		now = wp_now_ns();
	}
	if (S.stop || S.next_due >= S.win1)
		return -1;
	return (int64_t)(S.next_due - now);
}

static int tool_args(char *buf, size_t len, uint32_t bytes, uint32_t service_us)
{
	return snprintf(buf, len, "{\"bytes\":%u,\"service_us\":%u}", bytes, service_us);
}

/* The text of a CallToolResult's first content item; its length, or -1. */
static long tool_result_len(json_t *res)
{
	json_t *content = json_object_get(res, "content");
	json_t *item = json_array_get(content, 0);
	json_t *text = json_object_get(item, "text");

	if (!json_is_string(text) || json_is_true(json_object_get(res, "isError")))
		return -1;
	return (long)json_string_length(text);
}

/* ------------------------------------------------------------------ */
/* The http client: libcurl multi on epoll                              */
/* ------------------------------------------------------------------ */

static struct {
	CURLM *m;
	int ep;
	int64_t timeout_at; /* curl's timer, ns; -1 none */
	struct curl_slist *h_model, *h_mcp;
	char model_url[512], mcp_url[512];
	char session[256];
	uint64_t ids;
} H;

static struct req *req_get(struct step *st)
{
	struct req *r = S.free_reqs;

	if (r) {
		S.free_reqs = r->next;
	} else {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
	}
	r->st = st;
	r->issue_ns = wp_now_ns();
	r->line_len = r->body_len = 0;
	r->done_seen = 0;
	r->model = 0;
	return r;
}

static void req_put(struct req *r)
{
	r->next = S.free_reqs;
	S.free_reqs = r;
}

static int grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	if (need > (16u << 20))
		return -1;
	size_t c = *cap ? *cap : 4096;

	while (c < need)
		c *= 2;
	char *n = realloc(*p, c);

	if (!n)
		return -1;
	*p = n;
	*cap = c;
	return 0;
}

/* One SSE line of a chat stream: `data: {...}` chunks carry the tokens. */
static void sse_line(struct req *r, const char *l, size_t n)
{
	json_error_t je;
	json_t *j, *delta, *content;

	if (n && l[n - 1] == '\r')
		n--; /* CRLF line ends are allowed too */
	if (n < 6 || memcmp(l, "data: ", 6))
		return; /* blank separators, comments */
	l += 6;
	n -= 6;
	if (n == 6 && !memcmp(l, "[DONE]", 6)) {
		r->done_seen = 1;
		return;
	}
	j = json_loadb(l, n, 0, &je);
	if (!j) {
		count_err(E_PARSE);
		r->st->failed = 1;
		return;
	}
	delta = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
	content = json_object_get(delta, "content");
	if (json_is_string(content) && json_string_length(content) > 0)
		model_token(r->st);
	json_decref(j);
}

static size_t on_model_bytes(char *p, size_t sz, size_t nm, void *arg)
{
	struct req *r = arg;
	size_t n = sz * nm;

	for (size_t i = 0; i < n;) {
		char *nl = memchr(p + i, '\n', n - i);
		size_t take = nl ? (size_t)(nl - (p + i)) : n - i;

		if (r->line_len == 0 && nl) {
			sse_line(r, p + i, take); /* whole line in the buffer */
		} else {
			if (grow(&r->line, &r->line_cap, r->line_len + take + 1) < 0 ||
			    r->line_len + take > LINE_MAX_BYTES)
				return 0; /* aborts the transfer */
			memcpy(r->line + r->line_len, p + i, take);
			r->line_len += take;
			if (nl) {
				sse_line(r, r->line, r->line_len);
				r->line_len = 0;
			}
		}
		i += take + (nl ? 1 : 0);
	}
	return n;
}

static size_t on_body_bytes(char *p, size_t sz, size_t nm, void *arg)
{
	struct req *r = arg;
	size_t n = sz * nm;

	if (grow(&r->body, &r->body_cap, r->body_len + n + 1) < 0)
		return 0;
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	return n;
}

/* Start r's POST (r->post) to url on the multi handle; on failure r goes
 * back to the free list. */
static int easy_start(struct req *r, const char *url, struct curl_slist *headers,
		      size_t (*write_fn)(char *, size_t, size_t, void *))
{
	CURL *e = r->e;

	if (!e && !(e = r->e = curl_easy_init())) {
		req_put(r);
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	if (C.cafile)
		curl_easy_setopt(e, CURLOPT_CAINFO, C.cafile);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->post));
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_fn);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	if (curl_multi_add_handle(H.m, e) != CURLM_OK) {
		req_put(r);
		return -1;
	}
	return 0;
}

static int http_model(struct step *st)
{
	struct req *r = req_get(st);

	if (!r)
		return -1;
	r->model = 1;
	snprintf(r->post, sizeof(r->post),
		 "{\"model\":\"%s\",\"stream\":true,\"max_tokens\":%u,\"messages\":"
		 "[{\"role\":\"user\",\"content\":\"plan the next step of task %llu\"}]}",
		 C.model, C.tokens, (unsigned long long)(st->due_ns & 0xffffff));
	return easy_start(r, H.model_url, H.h_model, on_model_bytes);
}

static int http_tool(struct step *st, uint32_t bytes, uint32_t service_us)
{
	struct req *r = req_get(st);
	char args[96];

	if (!r)
		return -1;
	r->want = bytes;
	r->service_us = service_us;
	tool_args(args, sizeof(args), bytes, service_us);
	snprintf(r->post, sizeof(r->post),
		 "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"tools/call\",\"params\":"
		 "{\"name\":\"%s\",\"arguments\":%s}}",
		 (unsigned long long)++H.ids, C.tool, args);
	return easy_start(r, H.mcp_url, H.h_mcp, on_body_bytes);
}

/* A tool response: JSON-RPC, as application/json or as one SSE event. */
static int tool_response_ok(struct req *r)
{
	const char *p = r->body;
	size_t n = r->body_len;
	json_error_t je;
	json_t *j;
	long got;

	if (n >= 6 && !memcmp(p, "event:", 6)) {
		const char *d = memmem(p, n, "\ndata: ", 7);

		if (!d)
			return 0;
		d += 7;
		n -= (size_t)(d - p);
		p = d;
	} else if (n >= 6 && !memcmp(p, "data: ", 6)) {
		p += 6;
		n -= 6;
	}
	j = json_loadb(p, n, JSON_DISABLE_EOF_CHECK, &je);
	if (!j) {
		count_err(E_PARSE);
		return 0;
	}
	got = tool_result_len(json_object_get(j, "result"));
	json_decref(j);
	if (got != (long)r->want) {
		count_err(got < 0 ? E_STATUS : E_SHORT);
		return 0;
	}
	return 1;
}

static void http_done(CURL *e, CURLcode res)
{
	struct req *r = NULL;
	long code = 0;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(H.m, e);
	int ok = res == CURLE_OK && code == 200;

	if (!ok) {
		if (res == CURLE_COULDNT_CONNECT)
			count_err(E_CONNECT);
		else if (res == CURLE_OPERATION_TIMEDOUT)
			count_err(E_TIMEOUT);
		else if (res != CURLE_OK)
			count_err(E_TRANSPORT);
		else
			count_err(E_STATUS);
		if (C.verbose && S.err[0] == 0)
			snprintf(S.err, sizeof(S.err), "%s: curl %d (%s), HTTP %ld",
				 r->model ? "model" : "tool", (int)res, curl_easy_strerror(res),
				 code);
	}
	struct step *st = r->st;
	uint64_t issue = r->issue_ns;
	uint32_t svc = r->service_us;

	if (r->model) {
		if (ok && !r->done_seen) {
			count_err(E_SHORT);
			ok = 0;
		}
		req_put(r);
		model_done(st, ok);
	} else {
		if (ok)
			ok = tool_response_ok(r);
		req_put(r);
		tool_done(st, issue, svc, ok);
	}
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct epoll_event ev = { 0 };

	(void)e;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (sockp)
			epoll_ctl(H.ep, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(H.m, s, NULL);
		return 0;
	}
	ev.data.fd = s;
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	/* curl may close an fd and get the same number back for a new
	 * socket: whatever epoll thinks, make it watch this one now. */
	int ret = epoll_ctl(H.ep, sockp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev);

	if (ret < 0 && errno == ENOENT)
		ret = epoll_ctl(H.ep, EPOLL_CTL_ADD, s, &ev);
	else if (ret < 0 && errno == EEXIST)
		ret = epoll_ctl(H.ep, EPOLL_CTL_MOD, s, &ev);
	if (ret < 0)
		die("epoll_ctl on curl's socket %d: %s", (int)s, strerror(errno));
	if (!sockp)
		curl_multi_assign(H.m, s, (void *)1);
	return 0;
}

static int on_timer(CURLM *m, long ms, void *userp)
{
	(void)m;
	(void)userp;
	H.timeout_at = ms < 0 ? -1 : (int64_t)(wp_now_ns() + (uint64_t)ms * NS_MS);
	return 0;
}

static void http_drain(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(H.m, &left)))
		if (msg->msg == CURLMSG_DONE)
			http_done(msg->easy_handle, msg->data.result);
}

/* MCP initialize, once: the session every tool call carries (a server
 * without sessions gives none, and none is sent). */
static size_t on_init_header(char *p, size_t sz, size_t nm, void *arg)
{
	size_t n = sz * nm;

	(void)arg;
	if (n > 16 && !strncasecmp(p, "Mcp-Session-Id:", 15)) {
		const char *v = p + 15;
		size_t vl = n - 15;

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(H.session))
			snprintf(H.session, sizeof(H.session), "%.*s", (int)vl, v);
	}
	return n;
}

static size_t on_discard(char *p, size_t sz, size_t nm, void *arg)
{
	(void)p;
	(void)arg;
	return sz * nm;
}

static void http_mcp_init(void)
{
	static const char init[] =
		"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":"
		"{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
		"\"clientInfo\":{\"name\":\"wp_agents\",\"version\":\"1\"}}}";
	static const char inited[] =
		"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
	CURL *e = curl_easy_init();
	long code = 0;
	CURLcode res;

	if (!e)
		die("curl_easy_init failed");
	curl_easy_setopt(e, CURLOPT_URL, H.mcp_url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, H.h_mcp);
	if (C.cafile)
		curl_easy_setopt(e, CURLOPT_CAINFO, C.cafile);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, init);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_init_header);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	res = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (res != CURLE_OK || code != 200)
		die("MCP initialize at %s failed: %s, HTTP %ld", H.mcp_url, curl_easy_strerror(res),
		    code);
	if (H.session[0]) {
		char h[300];

		snprintf(h, sizeof(h), "Mcp-Session-Id: %s", H.session);
		H.h_mcp = curl_slist_append(H.h_mcp, h);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, H.h_mcp);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, inited);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, NULL);
	res = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (res != CURLE_OK || code / 100 != 2)
		die("MCP notifications/initialized at %s failed: %s, HTTP %ld", H.mcp_url,
		    curl_easy_strerror(res), code);
	curl_easy_cleanup(e);
}

static void http_setup(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		die("curl_global_init failed");
	snprintf(H.model_url, sizeof(H.model_url), "%s/v1/chat/completions", C.target);
	snprintf(H.mcp_url, sizeof(H.mcp_url), "%s%s", C.target, C.mcp_path);
	/* "Expect:" off: no 100-continue round trip on any POST */
	H.h_model = curl_slist_append(NULL, "Content-Type: application/json");
	H.h_model = curl_slist_append(H.h_model, "Accept: text/event-stream");
	H.h_model = curl_slist_append(H.h_model, "Expect:");
	H.h_mcp = curl_slist_append(NULL, "Content-Type: application/json");
	H.h_mcp = curl_slist_append(H.h_mcp, "Accept: application/json, text/event-stream");
	H.h_mcp = curl_slist_append(H.h_mcp, "MCP-Protocol-Version: 2025-11-25");
	H.h_mcp = curl_slist_append(H.h_mcp, "Expect:");
	if (!H.h_model || !H.h_mcp)
		die("out of memory");
	if (C.fanout || C.mem_lookups)
		http_mcp_init();
	H.m = curl_multi_init();
	H.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!H.m || H.ep < 0)
		die("curl_multi_init or epoll_create1 failed");
	H.timeout_at = -1;
	curl_multi_setopt(H.m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(H.m, CURLMOPT_TIMERFUNCTION, on_timer);
	if (C.conns) {
		curl_multi_setopt(H.m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)C.conns);
		curl_multi_setopt(H.m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)C.conns);
	}
	/* keep every connection a finished stream leaves: the next steps reuse
	 * them (keep-alive), as a long-running agent process does */
	curl_multi_setopt(H.m, CURLMOPT_MAXCONNECTS, (long)(C.conns ? C.conns : 100000));
	CL.model = http_model;
	CL.tool = http_tool;
}

static void http_loop(uint64_t until)
{
	struct epoll_event ev[MAX_EVENTS];

	for (;;) {
		uint64_t now = wp_now_ns();
		int64_t due = arrivals_run();
		int64_t wait_ns = due;
		int running = 0;

		now = wp_now_ns();
		if (now >= until || (due < 0 && S.running == 0 && !S.waiting))
			return;
		if (H.timeout_at >= 0) {
			int64_t t = H.timeout_at - (int64_t)now;

			if (t < 0)
				t = 0;
			if (wait_ns < 0 || t < wait_ns)
				wait_ns = t;
		}
		if (wait_ns < 0 || wait_ns > (int64_t)(until - now))
			wait_ns = (int64_t)(until - now);
		int n = epoll_wait(H.ep, ev, MAX_EVENTS, (int)((wait_ns + 999999) / 1000000));

		for (int i = 0; i < n; i++) {
			int fl = 0;

			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				fl |= CURL_CSELECT_IN;
			if (ev[i].events & EPOLLOUT)
				fl |= CURL_CSELECT_OUT;
			if (ev[i].events & EPOLLERR)
				fl |= CURL_CSELECT_ERR;
			curl_multi_socket_action(H.m, ev[i].data.fd, fl, &running);
		}
		if (H.timeout_at >= 0 && (int64_t)wp_now_ns() >= H.timeout_at) {
			H.timeout_at = -1;
			curl_multi_socket_action(H.m, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		http_drain();
	}
}

/* ------------------------------------------------------------------ */
/* The native client: wirepath's service contracts                     */
/* ------------------------------------------------------------------ */

#define NATIVE_EPS_MAX 64

static struct {
	struct wp_ctx *ctx;
	struct wp_ep *ep[NATIVE_EPS_MAX];
	uint32_t n, up, closed, rr;
	int close_err;
	uint8_t model_req[1024];
	uint32_t model_req_len;
} N;

struct nreq {
	struct step *st;
	uint64_t issue_ns;
	uint32_t want, service_us;
	int model_ok;
	uint8_t msg[160];
};

static void n_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	(void)arg;
	(void)ep;
	if (ev == WP_EP_CONNECTED) {
		N.up++;
	} else {
		N.closed++;
		N.close_err = err;
	}
}

static struct wp_ep *n_pick(void)
{
	return N.ep[N.rr++ % N.n];
}

static void n_model_data(void *arg, struct wp_msg *chunk)
{
	struct nreq *q = arg;

	if (chunk->len >= 1 && ((const uint8_t *)chunk->data)[0] == WP_SVC_CHUNK_TEXT) {
		if (chunk->len > 1)
			model_token(q->st);
	} else if (chunk->len >= 1 && ((const uint8_t *)chunk->data)[0] == WP_SVC_CHUNK_FINISH) {
		struct wp_svc_finish f;

		q->model_ok = wp_svc_finish_parse(chunk->data, chunk->len, &f) == 0;
		if (!q->model_ok)
			count_err(E_PARSE);
	} else {
		count_err(E_PARSE);
	}
}

static void n_model_done(void *arg, int status)
{
	struct nreq *q = arg;
	int ok = status == 0 && q->model_ok;

	if (status != 0)
		count_err(status > 0 ? E_STATUS : E_TRANSPORT);
	else if (!q->model_ok)
		count_err(E_SHORT);
	struct step *st = q->st;

	free(q);
	model_done(st, ok);
}

static int native_model(struct step *st)
{
	struct nreq *q = calloc(1, sizeof(*q));
	struct wp_call_params p = { 0 };

	if (!q)
		return -1;
	q->st = st;
	p.method = WP_SVC_GENERATE;
	p.req = N.model_req;
	p.req_len = N.model_req_len;
	p.on_data = n_model_data;
	p.on_done = n_model_done;
	p.arg = q;
	if (wp_rpc_call(n_pick(), &p, NULL) < 0) {
		count_err(E_TRANSPORT);
		free(q);
		return -1;
	}
	return 0;
}

static void n_tool_data(void *arg, struct wp_msg *chunk)
{
	struct nreq *q = arg;
	json_error_t je;
	json_t *j = json_loadb(chunk->data, chunk->len, 0, &je);
	long got;

	if (!j) {
		count_err(E_PARSE);
		return;
	}
	got = tool_result_len(j);
	json_decref(j);
	if (got == (long)q->want)
		q->model_ok = 1;
	else
		count_err(got < 0 ? E_STATUS : E_SHORT);
}

static void n_tool_done(void *arg, int status)
{
	struct nreq *q = arg;
	struct step *st = q->st;
	uint64_t issue = q->issue_ns;
	uint32_t svc = q->service_us;
	int ok = status == 0 && q->model_ok;

	if (status != 0)
		count_err(status > 0 ? E_STATUS : E_TRANSPORT);
	free(q);
	tool_done(st, issue, svc, ok);
}

static int native_tool(struct step *st, uint32_t bytes, uint32_t service_us)
{
	struct nreq *q = calloc(1, sizeof(*q));
	struct wp_call_params p = { 0 };
	struct wp_svc_tool_hdr h = { 0 };
	size_t nl = strlen(C.tool);
	int al;

	if (!q)
		return -1;
	q->st = st;
	q->issue_ns = wp_now_ns();
	q->want = bytes;
	q->service_us = service_us;
	h.name_len = htole32((uint32_t)nl);
	memcpy(q->msg, &h, sizeof(h));
	memcpy(q->msg + sizeof(h), C.tool, nl);
	al = tool_args((char *)q->msg + sizeof(h) + nl, sizeof(q->msg) - sizeof(h) - nl, bytes,
		       service_us);
	p.method = WP_SVC_TOOLS_CALL;
	p.req = q->msg;
	p.req_len = (uint32_t)(sizeof(h) + nl + (size_t)al);
	p.on_data = n_tool_data;
	p.on_done = n_tool_done;
	p.arg = q;
	if (wp_rpc_call(n_pick(), &p, NULL) < 0) {
		count_err(E_TRANSPORT);
		free(q);
		return -1;
	}
	return 0;
}

static void native_setup(void)
{
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs = { .event = n_event };
	struct wp_svc_req_hdr h;
	char prompt[64];
	size_t ml = strlen(C.model), pl;
	uint64_t deadline;
	int ret;

	wp_ctx_opts_init(&o);
	if ((ret = wp_ctx_create(&o, &N.ctx)) < 0)
		die("wp_ctx_create: %s", strerror(-ret));
	N.n = C.conns ? C.conns : 1;
	if (N.n > NATIVE_EPS_MAX)
		die("--conns: at most %d endpoints in native mode", NATIVE_EPS_MAX);
	for (uint32_t i = 0; i < N.n; i++)
		if ((ret = wp_connect(N.ctx, C.target, &cbs, &N.ep[i])) < 0)
			die("connect %s: %s", C.target, strerror(-ret));
	deadline = wp_now_ns() + 5 * NS_S;
	while (N.up + N.closed < N.n && wp_now_ns() < deadline)
		wp_ctx_progress(N.ctx, 100000);
	if (N.up < N.n)
		die("connect %s: %u of %u endpoints up (%s)", C.target, N.up, N.n,
		    N.closed ? strerror(-N.close_err) : "timed out");
	/* The model request: the same prompt the http client sends. */
	pl = (size_t)snprintf(prompt, sizeof(prompt), "user: plan the next step of a task");
	if (sizeof(h) + ml + pl > sizeof(N.model_req))
		die("--model too long");
	wp_svc_req_hdr_init(&h, WP_SVC_KIND_CHAT, C.tokens, (uint32_t)ml, (uint32_t)pl, 0);
	memcpy(N.model_req, &h, sizeof(h));
	memcpy(N.model_req + sizeof(h), C.model, ml);
	memcpy(N.model_req + sizeof(h) + ml, prompt, pl);
	N.model_req_len = (uint32_t)(sizeof(h) + ml + pl);
	CL.model = native_model;
	CL.tool = native_tool;
}

static void native_loop(uint64_t until)
{
	for (;;) {
		int64_t due = arrivals_run();
		uint64_t now = wp_now_ns();
		int64_t wait_ns;

		if (now >= until || (due < 0 && S.running == 0 && !S.waiting))
			return;
		if (N.closed)
			die("%s: an endpoint closed mid-run (%s)", C.target,
			    strerror(-N.close_err));
		wait_ns = due < 0 ? (int64_t)(until - now) : due;
		if (wait_ns > (int64_t)(until - now))
			wait_ns = (int64_t)(until - now);
		int ret = wp_ctx_progress(N.ctx, wait_ns / 1000);

		if (ret < 0 && ret != -EINTR)
			die("wp_ctx_progress: %s", strerror(-ret));
	}
}

/* ------------------------------------------------------------------ */
/* Options, report                                                      */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wp_agents --mode http|native --target URL|URI [options]\n"
		"  --rate R             steps started per second (open loop; default 10)\n"
		"  --arrivals poisson|fixed  inter-arrival times (default poisson)\n"
		"  --duration S         measured seconds (default 5), after --warmup S (1)\n"
		"  --grace S            after the window, wait this long for measured steps (5)\n"
		"  --seed N             arrival draws (default 1)\n"
		"  --tokens N           tokens per model call (520)\n"
		"  --token-interval-us N  the model's pace, for the gap excess (25000)\n"
		"  --fanout N           tool calls per step, in parallel (8)\n"
		"  --tool-bytes N       tool result bytes (4096); --tool-service-us N (0)\n"
		"  --mem-lookups N      memory lookups per step (2); --mem-bytes N (16384);\n"
		"                       --mem-service-us N (0)\n"
		"  --max-steps N        steps at once, arrivals beyond wait (20000)\n"
		"  --late-ms X          a step starting this long after its due time is late (1)\n"
		"  --conns N            http: connection cap (0: none); native: endpoints (1)\n"
		"  --model NAME (wp-stub)  --tool NAME (sized)  --mcp-path PATH (/mcp)\n"
		"  --cafile PEM         https: trust this certificate (the edge's)\n"
		"  --verbose            the first error's details on stderr\n");
}

static double arg_num(const char *opt, const char *v, double lo, double hi)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || !(x >= lo && x <= hi)) {
		fprintf(stderr, "wp_agents: %s: '%s' is not a number in [%g, %g]\n", opt, v, lo,
			hi);
		exit(2);
	}
	return x;
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(o, "--verbose")) {
			C.verbose = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "wp_agents: %s needs a value (or is unknown)\n", o);
			usage(stderr);
			exit(2);
		}
		i++;
		if (!strcmp(o, "--mode")) {
			if (!strcmp(v, "http"))
				C.mode = MODE_HTTP;
			else if (!strcmp(v, "native"))
				C.mode = MODE_NATIVE;
			else {
				fprintf(stderr, "wp_agents: --mode: http or native, not '%s'\n", v);
				exit(2);
			}
		} else if (!strcmp(o, "--target")) {
			C.target = v;
		} else if (!strcmp(o, "--arrivals")) {
			if (strcmp(v, "poisson") && strcmp(v, "fixed")) {
				fprintf(stderr, "wp_agents: --arrivals: poisson or fixed\n");
				exit(2);
			}
			C.fixed = !strcmp(v, "fixed");
		} else if (!strcmp(o, "--rate")) {
			C.rate = arg_num(o, v, 0.001, 1e6);
		} else if (!strcmp(o, "--duration")) {
			C.duration = arg_num(o, v, 0.1, 86400);
		} else if (!strcmp(o, "--warmup")) {
			C.warmup = arg_num(o, v, 0, 3600);
		} else if (!strcmp(o, "--grace")) {
			C.grace = arg_num(o, v, 0, 3600);
		} else if (!strcmp(o, "--seed")) {
			C.seed = (uint64_t)arg_num(o, v, 0, 1e15);
		} else if (!strcmp(o, "--tokens")) {
			C.tokens = (uint32_t)arg_num(o, v, 1, 1e6);
		} else if (!strcmp(o, "--token-interval-us")) {
			C.token_interval_us = (uint32_t)arg_num(o, v, 0, 60e6);
		} else if (!strcmp(o, "--fanout")) {
			C.fanout = (uint32_t)arg_num(o, v, 0, 1024);
		} else if (!strcmp(o, "--tool-bytes")) {
			C.tool_bytes = (uint32_t)arg_num(o, v, 0, 8 << 20);
		} else if (!strcmp(o, "--tool-service-us")) {
			C.tool_service_us = (uint32_t)arg_num(o, v, 0, 60e6);
		} else if (!strcmp(o, "--mem-lookups")) {
			C.mem_lookups = (uint32_t)arg_num(o, v, 0, 1024);
		} else if (!strcmp(o, "--mem-bytes")) {
			C.mem_bytes = (uint32_t)arg_num(o, v, 0, 8 << 20);
		} else if (!strcmp(o, "--mem-service-us")) {
			C.mem_service_us = (uint32_t)arg_num(o, v, 0, 60e6);
		} else if (!strcmp(o, "--max-steps")) {
			C.max_steps = (uint32_t)arg_num(o, v, 1, 1e7);
		} else if (!strcmp(o, "--late-ms")) {
			C.late_ms = arg_num(o, v, 0, 60000);
		} else if (!strcmp(o, "--conns")) {
			C.conns = (uint32_t)arg_num(o, v, 0, 1e6);
		} else if (!strcmp(o, "--model")) {
			C.model = v;
		} else if (!strcmp(o, "--tool")) {
			C.tool = v;
		} else if (!strcmp(o, "--cafile")) {
			C.cafile = v;
		} else if (!strcmp(o, "--mcp-path")) {
			C.mcp_path = v;
		} else {
			fprintf(stderr, "wp_agents: unknown option %s\n", o);
			usage(stderr);
			exit(2);
		}
	}
	if (!C.target) {
		fprintf(stderr, "wp_agents: --target is required\n");
		exit(2);
	}
	for (const char *t = C.target; *t; t++)
		if (*t == '"' || *t == '\\' || (unsigned char)*t < 0x20) {
			fprintf(stderr, "wp_agents: --target: no quotes, backslashes or control "
					"characters\n");
			exit(2);
		}
	if (strlen(C.model) > 128 || strlen(C.tool) > 64 || strpbrk(C.model, "\"\\") ||
	    strpbrk(C.tool, "\"\\")) {
		fprintf(stderr, "wp_agents: --model and --tool: short names without quotes\n");
		exit(2);
	}
	if (C.mode == MODE_HTTP && strncmp(C.target, "http://", 7) &&
	    strncmp(C.target, "https://", 8)) {
		fprintf(stderr, "wp_agents: --mode http wants --target http[s]://HOST:PORT\n");
		exit(2);
	}
}

static void hist_json(FILE *f, const char *name, const struct wp_hist *h, double div)
{
	fprintf(f,
		"\"%s\":{\"n\":%llu,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
		"\"max\":%.1f}",
		name, (unsigned long long)h->count,
		h->count ? (double)h->sum / (double)h->count / div : 0.0,
		(double)wp_hist_quantile(h, 0.5) / div, (double)wp_hist_quantile(h, 0.9) / div,
		(double)wp_hist_quantile(h, 0.99) / div, (double)(h->count ? h->max : 0) / div);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void on_signal(int sig)
{
	(void)sig;
	S.stop = 1;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	uint64_t measured_until;

	parse(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max; /* thousands of streams, a socket each */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	wp_hist_init(&S.step);
	wp_hist_init(&S.tool);
	wp_hist_init(&S.tool_excess);
	wp_hist_init(&S.ttft);
	wp_hist_init(&S.gap);
	wp_hist_init(&S.excess);
	S.waiting_tail = &S.waiting;
	S.rng = C.seed;
	if (C.mode == MODE_HTTP)
		http_setup();
	else
		native_setup();
	S.t0 = wp_now_ns();
	S.win0 = S.t0 + (uint64_t)(C.warmup * 1e9);
	S.win1 = S.win0 + (uint64_t)(C.duration * 1e9);
	S.next_due = S.t0;
	measured_until = S.win1 + (uint64_t)(C.grace * 1e9);
	if (C.mode == MODE_HTTP)
		http_loop(measured_until);
	else
		native_loop(measured_until);
	S.end = wp_now_ns();

	/* Steps still running at the end of the grace time: timed out. */
	uint64_t unfinished = S.started - S.done - S.failed;

	S.errors[E_TIMEOUT] += unfinished;
	printf("{\"mode\":\"%s\",\"target\":\"%s\",\"rate\":%.3f,\"arrivals\":\"%s\","
	       "\"warmup_s\":%.3f,\"duration_s\":%.3f,\"tokens_per_step\":%u,"
	       "\"token_interval_us\":%u,\"fanout\":%u,\"mem_lookups\":%u,"
	       "\"steps_started\":%llu,\"steps_done\":%llu,\"steps_failed\":%llu,"
	       "\"steps_unfinished\":%llu,\"late\":%llu,\"waited\":%llu,\"tokens\":%llu,"
	       "\"tool_calls\":%llu,\"tool_failed\":%llu,\"model_calls\":%llu,"
	       "\"interrupted\":%s,\"errors\":{",
	       C.mode == MODE_HTTP ? "http" : "native", C.target, C.rate,
	       C.fixed ? "fixed" : "poisson", C.warmup, C.duration, C.tokens, C.token_interval_us,
	       C.fanout, C.mem_lookups, (unsigned long long)S.started, (unsigned long long)S.done,
	       (unsigned long long)S.failed, (unsigned long long)unfinished,
	       (unsigned long long)S.late, (unsigned long long)S.waited,
	       (unsigned long long)S.tokens, (unsigned long long)S.tool_calls,
	       (unsigned long long)S.tool_fail, (unsigned long long)S.model_calls,
	       S.stop ? "true" : "false");
	for (int k = 0; k < E_N; k++)
		printf("%s\"%s\":%llu", k ? "," : "", err_names[k],
		       (unsigned long long)S.errors[k]);
	printf("},");
	hist_json(stdout, "step_ms", &S.step, 1e6);
	printf(",");
	hist_json(stdout, "tool_us", &S.tool, 1e3);
	printf(",");
	hist_json(stdout, "tool_excess_us", &S.tool_excess, 1e3);
	printf(",");
	hist_json(stdout, "ttft_us", &S.ttft, 1e3);
	printf(",");
	hist_json(stdout, "token_gap_us", &S.gap, 1e3);
	printf(",");
	hist_json(stdout, "token_excess_us", &S.excess, 1e3);
	printf(",\"explain\":");
	json_str(stdout, C.mode == MODE_NATIVE
				 ? wp_ctx_explain(N.ctx)
				 : "libcurl multi (curl_multi_socket_action on epoll)");
	if (S.err[0]) {
		printf(",\"first_error\":");
		json_str(stdout, S.err);
	}
	printf("}\n");
	fflush(stdout);
	if (C.mode == MODE_NATIVE) {
		for (uint32_t i = 0; i < N.n; i++)
			wp_ep_close(N.ep[i]);
		wp_ctx_destroy(N.ctx);
	}
	return 0;
}
