// SPDX-License-Identifier: MIT
/*
 * MCP in wirepathd (src/daemon/mcp.c, mcp_stdio.c) driven end to end
 * through wpd_mcp_handle, with real stdio children: tests/daemon/mcp_peer.py,
 * a small MCP server in Python (tools echo, add, slow; modes normal,
 * crash-after-N, garbage, silent). The HTTP side is a recording double of
 * the exchange API (exchange.h, below: the test's "client"); tenants and
 * the native tool service are doubles too (their real code is other
 * engineers' files). The loop is the daemon's own (loop.c).
 *
 * Checked: aggregation and prefixes, routing, allow-lists, session
 * 400/404, version header 400, Origin 403, Accept 406, batches (2025-03-26
 * only), progress as SSE, pass-through at /mcp/NAME, a crash failing its
 * call at once and the child restarting with a growing backoff while
 * sessions survive, garbage counted and survived, a silent child killed
 * at 10 s, a disconnect reaching the child as notifications/cancelled, a
 * client's notifications/cancelled, session limits (503) and expiry, reload,
 * and the stateless 2026-07-28 revision (server/discover, header checks).
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>
#include <wirepath/service.h>

#include "testlib.h"
#include "daemon/buf.h"
#include "daemon/config.h"
#include "daemon/exchange.h"
#include "daemon/loop.h"
#include "daemon/mcp.h"
#include "daemon/native.h"
#include "daemon/tenants.h"

static struct wpd_loop *loop;

/* ------------------------------------------------------------------ */
/* Test double: the exchange API, recording what MCP answers           */
/* ------------------------------------------------------------------ */

#define EX_HDRS 12
struct wpd_ex {
	const char *method;
	char *hname[EX_HDRS], *hval[EX_HDRS];
	int nh;
	char *body;
	size_t blen;
	const struct wpd_tenant *tenant;
	/* recorded */
	int status;
	char ctype[64];
	char hdrs[512];
	struct wpd_buf out;
	int streamed, ended;
	void (*abort_fn)(void *);
	void *abort_arg;
};

const char *wpd_ex_method(const struct wpd_ex *ex)
{
	return ex->method;
}
const char *wpd_ex_path(const struct wpd_ex *ex)
{
	(void)ex;
	return "/mcp";
}
const char *wpd_ex_query(const struct wpd_ex *ex)
{
	(void)ex;
	return "";
}
const char *wpd_ex_header(const struct wpd_ex *ex, const char *name)
{
	for (int i = 0; i < ex->nh; i++)
		if (!strcasecmp(ex->hname[i], name))
			return ex->hval[i];
	return NULL;
}
const char *wpd_ex_body(const struct wpd_ex *ex, size_t *len)
{
	*len = ex->blen;
	return ex->body ? ex->body : "";
}
const struct wpd_tenant *wpd_ex_tenant(const struct wpd_ex *ex)
{
	return ex->tenant;
}
struct wpd_loop *wpd_ex_loop(const struct wpd_ex *ex)
{
	(void)ex;
	return loop;
}
int wpd_ex_reply(struct wpd_ex *ex, int status, const char *ctype, const char *headers,
		 const void *body, size_t len)
{
	CHECK(!ex->ended && !ex->streamed);
	ex->status = status;
	snprintf(ex->ctype, sizeof(ex->ctype), "%s", ctype ? ctype : "");
	snprintf(ex->hdrs, sizeof(ex->hdrs), "%s", headers ? headers : "");
	wpd_buf_add(&ex->out, body, len);
	ex->ended = 1;
	return 0;
}
int wpd_ex_error(struct wpd_ex *ex, int status, const char *type, const char *code, const char *fmt,
		 ...)
{
	(void)type;
	(void)code;
	(void)fmt;
	return wpd_ex_reply(ex, status, "application/json", NULL, "{}", 2);
}
int wpd_ex_stream_begin(struct wpd_ex *ex, int status, const char *ctype, const char *headers)
{
	CHECK(!ex->ended && !ex->streamed);
	ex->status = status;
	ex->streamed = 1;
	snprintf(ex->ctype, sizeof(ex->ctype), "%s", ctype ? ctype : "");
	snprintf(ex->hdrs, sizeof(ex->hdrs), "%s", headers ? headers : "");
	return 0;
}
int wpd_ex_stream_send(struct wpd_ex *ex, const void *data, size_t len)
{
	CHECK(ex->streamed && !ex->ended);
	wpd_buf_add(&ex->out, data, len);
	return 0;
}
size_t wpd_ex_pending(const struct wpd_ex *ex)
{
	(void)ex;
	return 0;
}
int wpd_ex_end(struct wpd_ex *ex)
{
	CHECK(ex->streamed && !ex->ended);
	ex->ended = 1;
	return 0;
}
void wpd_ex_on_abort(struct wpd_ex *ex, void (*fn)(void *arg), void *arg)
{
	ex->abort_fn = fn;
	ex->abort_arg = arg;
}
void wpd_ex_label(struct wpd_ex *ex, const char *route, const char *backend)
{
	(void)ex;
	(void)route;
	(void)backend;
}
void wpd_ex_add_tokens(struct wpd_ex *ex, uint32_t n)
{
	(void)ex;
	(void)n;
}

/* ------------------------------------------------------------------ */
/* Test double: tenants (allow-lists with globs, as tenants.h says)   */
/* ------------------------------------------------------------------ */

struct wpd_tenant {
	const char *name;
	const char *allow[4]; /* NULL-terminated; none = all */
};

int wpd_tenant_tool_ok(const struct wpd_tenant *t, const char *tool)
{
	if (!t->allow[0])
		return 1;
	for (int i = 0; t->allow[i]; i++)
		if (!fnmatch(t->allow[i], tool, 0))
			return 1;
	return 0;
}
const char *wpd_tenant_name(const struct wpd_tenant *t)
{
	return t->name;
}

/* ------------------------------------------------------------------ */
/* Test double: a native tool service (native.h) answering from the   */
/* loop, one tool "hello"                                              */
/* ------------------------------------------------------------------ */

struct native_pending {
	struct wp_call_params p;
	char req[512];
	uint32_t req_len;
	uint64_t id;
	int cancelled;
	struct wpd_timer t;
	int live;
};
struct wpd_native {
	int up;
	uint64_t next;
	struct native_pending pend[8];
	int cancels;
};

int wpd_native_up(const struct wpd_native *n)
{
	return n->up;
}
static void native_fire(void *arg)
{
	struct native_pending *np = arg;
	char reply[700];
	struct wp_msg msg = { 0 };
	const char *name, *args;
	uint32_t nlen, alen;

	np->live = 0;
	if (np->cancelled) {
		np->p.on_done(np->p.arg, -ECANCELED);
		return;
	}
	if (np->p.method == WP_SVC_TOOLS_LIST) {
		snprintf(reply, sizeof(reply),
			 "[{\"name\":\"hello\",\"inputSchema\":{\"type\":\"object\"}}]");
	} else {
		CHECK(wp_svc_tool_parse(np->req, np->req_len, &name, &nlen, &args, &alen) == 0);
		snprintf(reply, sizeof(reply),
			 "{\"content\":[{\"type\":\"text\",\"text\":\"%.*s says %.*s\"}]}",
			 (int)nlen, name, (int)alen, alen ? "hi" : "");
	}
	msg.data = reply;
	msg.len = (uint32_t)strlen(reply);
	np->p.on_data(np->p.arg, &msg);
	np->p.on_done(np->p.arg, 0);
}
int wpd_native_call(struct wpd_native *n, const struct wp_call_params *p, uint64_t *id)
{
	for (int i = 0; i < 8; i++) {
		struct native_pending *np = &n->pend[i];

		if (np->live)
			continue;
		memset(np, 0, sizeof(*np));
		np->p = *p;
		CHECK(p->req_len <= sizeof(np->req));
		memcpy(np->req, p->req, p->req_len);
		np->req_len = p->req_len;
		np->id = ++n->next;
		np->live = 1;
		wpd_timer_arm(loop, &np->t, 1000000, native_fire, np);
		*id = np->id;
		return 0;
	}
	return -EBUSY;
}
int wpd_native_cancel(struct wpd_native *n, uint64_t id)
{
	for (int i = 0; i < 8; i++)
		if (n->pend[i].live && n->pend[i].id == id) {
			n->pend[i].cancelled = 1;
			n->cancels++;
		}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The client side                                                     */
/* ------------------------------------------------------------------ */

static struct wpd_mcp *mcp;
static struct wpd_native nat = { .up = 1 };
static char peer_log[256], silent_log[256];
static const char *accept_both = "application/json, text/event-stream";

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pump_until(int (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (!cond(arg)) {
		if (mono_ms() > end) {
			fprintf(stderr, "timed out after %u ms waiting\n", ms);
			exit(1);
		}
		CHECK(wpd_loop_run_once(loop, 10000) >= 0);
	}
}

static void pump_ms(unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end)
		CHECK(wpd_loop_run_once(loop, 5000) >= 0);
}

static void ex_hdr(struct wpd_ex *ex, const char *name, const char *val)
{
	CHECK(ex->nh < EX_HDRS);
	ex->hname[ex->nh] = strdup(name);
	ex->hval[ex->nh] = strdup(val);
	ex->nh++;
}

static void ex_free(struct wpd_ex *ex)
{
	for (int i = 0; i < ex->nh; i++) {
		free(ex->hname[i]);
		free(ex->hval[i]);
	}
	free(ex->body);
	wpd_buf_free(&ex->out);
	free(ex);
}

/* Build a request; extra headers as "Name: value" strings, NULL-ended. */
static struct wpd_ex *ex_make(const char *method, const char *sid, const char *ver,
			      const struct wpd_tenant *t, const char *body, ...)
{
	struct wpd_ex *ex = calloc(1, sizeof(*ex));
	const char *h;
	int accept = 0, ctype = 0;
	va_list ap;

	CHECK(ex);
	ex->method = method;
	ex->tenant = t;
	va_start(ap, body);
	while ((h = va_arg(ap, const char *))) {
		char name[64];
		const char *colon = strchr(h, ':');

		snprintf(name, sizeof(name), "%.*s", (int)(colon - h), h);
		ex_hdr(ex, name, colon + 2);
		accept |= !strcasecmp(name, "Accept");
		ctype |= !strcasecmp(name, "Content-Type");
	}
	va_end(ap);
	if (!accept)
		ex_hdr(ex, "Accept", accept_both);
	if (!ctype)
		ex_hdr(ex, "Content-Type", "application/json");
	if (sid)
		ex_hdr(ex, "Mcp-Session-Id", sid);
	if (ver)
		ex_hdr(ex, "MCP-Protocol-Version", ver);
	if (body) {
		ex->body = strdup(body);
		ex->blen = strlen(body);
	}
	return ex;
}

static int ex_ended(void *arg)
{
	return ((struct wpd_ex *)arg)->ended;
}

/* The answer's JSON: the body, or for a stream the array of its events. */
static json_t *ex_json(struct wpd_ex *ex)
{
	json_t *v;

	if (!ex->streamed) {
		v = json_loadb(ex->out.p ? ex->out.p : "", ex->out.len, 0, NULL);
		return v;
	}
	v = json_array();
	for (char *p = ex->out.p; p && (p = strstr(p, "data: "));) {
		char *e = strstr(p, "\n\n");

		CHECK(e);
		json_array_append_new(v, json_loadb(p + 6, (size_t)(e - p - 6), 0, NULL));
		p = e + 2;
	}
	return v;
}

/* POST and wait for the whole answer. */
static struct wpd_ex *post_wait(const char *server, const char *sid, const char *ver,
				const struct wpd_tenant *t, const char *body)
{
	struct wpd_ex *ex = ex_make("POST", sid, ver, t, body, NULL);

	wpd_mcp_handle(mcp, ex, server);
	pump_until(ex_ended, ex, 20000);
	return ex;
}

static json_t *rpc(const char *server, const char *sid, const char *ver, const struct wpd_tenant *t,
		   const char *body, int status)
{
	struct wpd_ex *ex = post_wait(server, sid, ver, t, body);
	json_t *v;

	if (ex->status != status) {
		fprintf(stderr, "POST %s: status %d, expected %d: %.*s\n", body, ex->status, status,
			(int)ex->out.len, ex->out.p);
		exit(1);
	}
	v = ex_json(ex);
	ex_free(ex);
	return v;
}

static int error_code(json_t *v)
{
	return (int)json_integer_value(json_object_get(json_object_get(v, "error"), "code"));
}

static const char *text0(json_t *resp)
{
	json_t *c = json_object_get(json_object_get(resp, "result"), "content");

	return json_string_value(json_object_get(json_array_get(c, 0), "text"));
}

static int mcp_known(const char *v)
{
	return !strcmp(v, "2025-11-25") || !strcmp(v, "2025-06-18") || !strcmp(v, "2025-03-26");
}

/* initialize at server (NULL: /mcp); returns the session id (static). */
static const char *init_session(const char *server, const char *ver, char *sid)
{
	char body[256];
	struct wpd_ex *ex;
	const char *h;
	json_t *v;

	snprintf(body, sizeof(body),
		 "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
		 "\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
		 "\"version\":\"1\"}}}",
		 ver);
	ex = post_wait(server, NULL, NULL, NULL, body);
	CHECK_EQ(ex->status, 200);
	h = strstr(ex->hdrs, "Mcp-Session-Id: ");
	CHECK(h);
	snprintf(sid, 65, "%.64s", h + 16);
	CHECK_EQ(strspn(sid, "0123456789abcdef"), 64);
	v = ex_json(ex);
	CHECK(!strcmp(
		json_string_value(json_object_get(json_object_get(v, "result"), "protocolVersion")),
		mcp_known(ver) ? ver : "2025-11-25"));
	json_decref(v);
	ex_free(ex);
	return sid;
}

/* A counter from wpd_mcp_metrics: the value on the line starting with key. */
static long long metric(const char *key)
{
	struct wpd_buf b = { 0 };
	long long v = -1;
	char *p;

	wpd_mcp_metrics(mcp, &b);
	p = b.p ? strstr(b.p, key) : NULL;
	if (p)
		v = strtoll(p + strlen(key) + 1, NULL, 10);
	wpd_buf_free(&b);
	return v;
}

static int backend_up(void *arg)
{
	char key[128];

	snprintf(key, sizeof(key), "wirepathd_mcp_backend_up{server=\"%s\",kind=\"stdio\"}",
		 (const char *)arg);
	return metric(key) == 1;
}

static long long restarts(const char *server)
{
	char key[128];

	snprintf(key, sizeof(key), "wirepathd_mcp_backend_restarts_total{server=\"%s\"}", server);
	return metric(key);
}

static int log_has(void *arg)
{
	FILE *f = fopen(peer_log, "r");
	char line[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, (const char *)arg) != NULL;
	fclose(f);
	return found;
}

/* ---- the checks ---- */

static const struct wpd_tenant tenant_all = { "all", { NULL } };
static const struct wpd_tenant tenant_some = { "some", { "a_echo", "n_*", NULL } };

static void check_http_rules(void)
{
	char sid[65];
	struct wpd_ex *ex;
	json_t *v;
	const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";

	init_session(NULL, "2025-06-18", sid);
	/* a request without a session: 400; unknown: 404 */
	v = rpc(NULL, NULL, NULL, NULL, ping, 400);
	CHECK(json_is_null(json_object_get(v, "id")) && error_code(v) == -32600);
	json_decref(v);
	json_decref(rpc(NULL, "00ff", NULL, NULL, ping, 404));
	json_decref(rpc(NULL, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			NULL, NULL, ping, 404));
	/* the session works, with or without the version header */
	v = rpc(NULL, sid, "2025-06-18", NULL, ping, 200);
	CHECK(json_is_object(json_object_get(v, "result")));
	CHECK_EQ(json_integer_value(json_object_get(v, "id")), 1);
	json_decref(v);
	json_decref(rpc(NULL, sid, NULL, NULL, ping, 200));
	/* an unsupported version, or not the session's: 400 */
	json_decref(rpc(NULL, sid, "1999-01-01", NULL, ping, 400));
	json_decref(rpc(NULL, sid, "2025-03-26", NULL, ping, 400));
	json_decref(rpc(NULL, sid, "2026-07-28", NULL, ping, 400));
	/* Origin: none configured, so only localhost */
	ex = ex_make("POST", sid, NULL, NULL, ping, "Origin: https://evil.example", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 403);
	ex_free(ex);
	ex = ex_make("POST", sid, NULL, NULL, ping, "Origin: http://localhost.evil.example", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 403);
	ex_free(ex);
	ex = ex_make("POST", sid, NULL, NULL, ping, "Origin: http://localhost:6274", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 200);
	ex_free(ex);
	ex = ex_make("POST", sid, NULL, NULL, ping, "Origin: http://[::1]:80", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 200);
	ex_free(ex);
	/* Accept must list both; Content-Type must be JSON */
	ex = ex_make("POST", sid, NULL, NULL, ping, "Accept: application/json", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 406);
	ex_free(ex);
	ex = ex_make("POST", sid, NULL, NULL, ping, "Accept: */*", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 200);
	ex_free(ex);
	ex = ex_make("POST", sid, NULL, NULL, ping, "Content-Type: text/plain", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 415);
	ex_free(ex);
	/* GET: no stream offered; PUT: 405 */
	ex = ex_make("GET", sid, NULL, NULL, NULL, "Accept: text/event-stream", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 405 && strstr(ex->hdrs, "Allow: POST, DELETE"));
	ex_free(ex);
	/* JSON-RPC errors with the right ids */
	v = rpc(NULL, sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,", 400);
	CHECK(error_code(v) == -32700 && json_is_null(json_object_get(v, "id")));
	json_decref(v);
	v = rpc(NULL, sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":\"k\",\"method\":3}", 400);
	CHECK(error_code(v) == -32600 && !strcmp(json_string_value(json_object_get(v, "id")), "k"));
	json_decref(v);
	v = rpc(NULL, sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":\"m\",\"method\":\"resources/list\"}", 200);
	CHECK(error_code(v) == -32601 && !strcmp(json_string_value(json_object_get(v, "id")), "m"));
	json_decref(v);
	v = rpc(NULL, sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{}}", 200);
	CHECK(error_code(v) == -32602 && json_integer_value(json_object_get(v, "id")) == 2);
	json_decref(v);
	/* batches are 2025-03-26's only */
	json_decref(rpc(NULL, sid, NULL, NULL,
			"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", 400));
	/* notifications and responses: 202, no body */
	ex = post_wait(NULL, sid, NULL, NULL,
		       "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
	CHECK(ex->status == 202 && ex->out.len == 0);
	ex_free(ex);
	ex = post_wait(NULL, sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}");
	CHECK(ex->status == 202 && ex->out.len == 0);
	ex_free(ex);
	/* DELETE ends it */
	ex = ex_make("DELETE", sid, NULL, NULL, NULL, NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 200);
	ex_free(ex);
	json_decref(rpc(NULL, sid, NULL, NULL, ping, 404));
	/* an unknown server */
	json_decref(rpc("nope", NULL, NULL, NULL, ping, 404));
	/* initialize: an unknown revision gets the latest; a header naming an
	 * unsupported one is refused */
	init_session(NULL, "2024-01-01", sid);
	json_decref(rpc(NULL, NULL, "2030-01-01", NULL,
			"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
			"\"protocolVersion\":\"2025-06-18\"}}",
			400));
	printf("http rules: ok\n");
}

static int has_tool(json_t *v, const char *name)
{
	json_t *tools = json_object_get(json_object_get(v, "result"), "tools"), *t;
	size_t i;

	json_array_foreach(tools, i, t) if (!strcmp(json_string_value(json_object_get(t, "name")),
						    name)) return 1;
	return 0;
}

static void check_aggregate(void)
{
	char sid[65];
	json_t *v;
	const char *list = "{\"jsonrpc\":\"2.0\",\"id\":\"L\",\"method\":\"tools/list\"}";

	init_session(NULL, "2025-11-25", sid);
	v = rpc(NULL, sid, NULL, &tenant_all, list, 200);
	CHECK(has_tool(v, "a_echo") && has_tool(v, "a_add") && has_tool(v, "a_slow"));
	CHECK(has_tool(v, "c_echo") && has_tool(v, "g_echo") && has_tool(v, "n_hello"));
	CHECK(!has_tool(v, "echo") && !has_tool(v, "s_echo")); /* s never came up */
	CHECK(!json_object_get(json_object_get(v, "result"), "nextCursor"));
	json_decref(v);
	/* the allow-list filters the list and refuses the call */
	v = rpc(NULL, sid, NULL, &tenant_some, list, 200);
	CHECK(has_tool(v, "a_echo") && has_tool(v, "n_hello"));
	CHECK(!has_tool(v, "a_add") && !has_tool(v, "c_echo"));
	json_decref(v);
	v = rpc(NULL, sid, NULL, &tenant_some,
		"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"a_add\",\"arguments\":{\"a\":1,\"b\":2}}}",
		200);
	CHECK(error_code(v) == -32602);
	CHECK(strstr(json_string_value(json_object_get(json_object_get(v, "error"), "message")),
		     "not allowed"));
	json_decref(v);
	/* routing: the prefix is stripped, the answer carries our id */
	v = rpc(NULL, sid, NULL, &tenant_all,
		"{\"jsonrpc\":\"2.0\",\"id\":\"x-1\",\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"a_add\",\"arguments\":{\"a\":2,\"b\":40}}}",
		200);
	CHECK(!strcmp(json_string_value(json_object_get(v, "id")), "x-1"));
	CHECK(!strcmp(text0(v), "42"));
	json_decref(v);
	v = rpc(NULL, sid, NULL, &tenant_some,
		"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"n_hello\",\"arguments\":{\"x\":1}}}",
		200);
	CHECK(!strcmp(text0(v), "hello says hi"));
	json_decref(v);
	v = rpc(NULL, sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"zz_echo\"}}",
		200);
	CHECK(error_code(v) == -32602);
	json_decref(v);
	printf("aggregate: ok\n");
}

/* Two clients, the same request id, at once: each gets its own answer. */
static void check_concurrent(void)
{
	char s1[65], s2[65];
	struct wpd_ex *e1, *e2;
	json_t *v1, *v2;

	init_session(NULL, "2025-06-18", s1);
	init_session(NULL, "2025-06-18", s2);
	e1 = ex_make("POST", s1, NULL, NULL,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		     "\"a_echo\",\"arguments\":{\"text\":\"one\"}}}",
		     NULL);
	e2 = ex_make("POST", s2, NULL, NULL,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
		     "\"a_echo\",\"arguments\":{\"text\":\"two\"}}}",
		     NULL);
	wpd_mcp_handle(mcp, e1, NULL);
	wpd_mcp_handle(mcp, e2, NULL);
	pump_until(ex_ended, e1, 10000);
	pump_until(ex_ended, e2, 10000);
	v1 = ex_json(e1);
	v2 = ex_json(e2);
	CHECK(!strcmp(text0(v1), "one") && !strcmp(text0(v2), "two"));
	CHECK(json_integer_value(json_object_get(v1, "id")) == 1);
	json_decref(v1);
	json_decref(v2);
	ex_free(e1);
	ex_free(e2);
	printf("concurrent: ok\n");
}

static void check_progress(void)
{
	char sid[65];
	struct wpd_ex *ex;
	json_t *v, *last;
	size_t n, notes = 0;

	init_session(NULL, "2025-06-18", sid);
	ex = post_wait(
		NULL, sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"a_slow\",\"arguments\":{\"ms\":200},\"_meta\":{\"progressToken\":\"tk\"}}}");
	CHECK(ex->streamed && ex->status == 200 && !strcmp(ex->ctype, "text/event-stream"));
	v = ex_json(ex);
	n = json_array_size(v);
	CHECK(n >= 2);
	for (size_t i = 0; i + 1 < n; i++) {
		json_t *e = json_array_get(v, i);

		CHECK(!strcmp(json_string_value(json_object_get(e, "method")),
			      "notifications/progress"));
		CHECK(!strcmp(json_string_value(json_object_get(json_object_get(e, "params"),
								"progressToken")),
			      "tk"));
		notes++;
	}
	last = json_array_get(v, n - 1);
	CHECK(json_integer_value(json_object_get(last, "id")) == 9 &&
	      !strcmp(text0(last), "slept"));
	json_decref(v);
	ex_free(ex);
	/* without a token: plain JSON */
	v = rpc(NULL, sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"a_slow\",\"arguments\":{\"ms\":50}}}",
		200);
	CHECK(!strcmp(text0(v), "slept"));
	json_decref(v);
	printf("progress: ok (%zu notifications streamed)\n", notes);
}

/* A client that goes away mid-call: the child hears notifications/cancelled. */
static void check_abort(void)
{
	char sid[65];
	struct wpd_ex *ex;

	init_session(NULL, "2025-06-18", sid);
	ex = ex_make(
		"POST", sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"a_slow\",\"arguments\":{\"ms\":30000}}}",
		NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(!ex->ended && ex->abort_fn);
	pump_until(log_has, "\"ms\":30000", 5000); /* the child has it */
	ex->abort_fn(ex->abort_arg);
	ex_free(ex);
	pump_until(log_has, "\"reason\":\"client disconnected\"", 5000);
	CHECK(log_has("notifications/cancelled"));
	CHECK(metric("wirepathd_mcp_aborts_total") >= 1);
	/* the client's own notifications/cancelled ends its call */
	ex = ex_make("POST", sid, NULL, NULL,
		     "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\",\"params\":{"
		     "\"name\":\"a_slow\",\"arguments\":{\"ms\":20000}}}",
		     NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	pump_until(log_has, "\"ms\":20000", 5000);
	{
		struct wpd_ex *n = post_wait(
			NULL, sid, NULL, NULL,
			"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/"
			"cancelled\",\"params\":{\"requestId\":\"c1\",\"reason\":"
			"\"changed my mind\"}}");
		json_t *v;

		CHECK_EQ(n->status, 202);
		ex_free(n);
		pump_until(ex_ended, ex, 2000);
		v = ex_json(ex);
		CHECK(error_code(v) == -32800 &&
		      !strcmp(json_string_value(json_object_get(v, "id")), "c1"));
		json_decref(v);
	}
	ex_free(ex);
	pump_until(log_has, "changed my mind", 5000);
	/* a native call abandoned: wpd_native_cancel, and its late end ignored */
	ex = ex_make("POST", sid, NULL, NULL,
		     "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{"
		     "\"name\":\"n_hello\"}}",
		     NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(!ex->ended && ex->abort_fn && nat.cancels == 0);
	ex->abort_fn(ex->abort_arg);
	ex_free(ex);
	CHECK_EQ(nat.cancels, 1);
	pump_ms(20);
	printf("abort and cancel: ok\n");
}

static int crashed_and_back(void *arg)
{
	(void)arg;
	return restarts("c") >= 1 && backend_up("c");
}

static void check_crash(void)
{
	const char *call = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
			   "\"name\":\"c_echo\",\"arguments\":{\"text\":\"hi\"}}}";
	char sid[65];
	uint64_t t0, t1, t2;
	json_t *v;

	init_session(NULL, "2025-06-18", sid);
	for (int i = 0; i < 2; i++) {
		v = rpc(NULL, sid, NULL, NULL, call, 200);
		CHECK(!strcmp(text0(v), "hi"));
		json_decref(v);
	}
	/* the third call kills the child: the call fails at once */
	t0 = mono_ms();
	v = rpc(NULL, sid, NULL, NULL, call, 200);
	CHECK(error_code(v) == -32000);
	CHECK(mono_ms() - t0 < 5000); /* not the call timeout (300 s) */
	json_decref(v);
	/* meanwhile calls fail fast, then it is back (100 ms) */
	v = rpc(NULL, sid, NULL, NULL, call, 200);
	CHECK(error_code(v) == -32000);
	json_decref(v);
	CHECK_EQ(metric("wirepathd_mcp_backend_restart_delay_ms{server=\"c\"}"), 100);
	pump_until(crashed_and_back, NULL, 30000);
	t1 = mono_ms() - t0;
	CHECK(t1 >= 90);
	/* the session survived the restart */
	v = rpc(NULL, sid, NULL, NULL, call, 200);
	CHECK(!strcmp(text0(v), "hi"));
	json_decref(v);
	v = rpc(NULL, sid, NULL, NULL, call, 200);
	json_decref(v);
	/* third call of the new child: crash again, backoff now 200 ms */
	t0 = mono_ms();
	v = rpc(NULL, sid, NULL, NULL, call, 200);
	CHECK(error_code(v) == -32000);
	json_decref(v);
	CHECK_EQ(metric("wirepathd_mcp_backend_restart_delay_ms{server=\"c\"}"), 200);
	pump_until(backend_up, "c", 30000);
	t2 = mono_ms() - t0;
	CHECK(t2 >= 190);
	CHECK(restarts("c") == 2);
	printf("crash: ok (back after %llu ms, then %llu ms)\n", (unsigned long long)t1,
	       (unsigned long long)t2);
}

static void check_garbage(void)
{
	char sid[65];
	json_t *v;

	init_session(NULL, "2025-06-18", sid);
	for (int i = 0; i < 2; i++) {
		v = rpc(NULL, sid, NULL, NULL,
			"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
			"\"name\":\"g_echo\",\"arguments\":{\"text\":\"clean\"}}}",
			200);
		CHECK(!strcmp(text0(v), "clean"));
		json_decref(v);
	}
	/* per call: not JSON, a wrong id, a 5 MiB line, no method, a torn batch */
	CHECK(metric("wirepathd_mcp_backend_garbage_total{server=\"g\"}") >= 10);
	CHECK(restarts("g") == 0 && backend_up("g"));
	printf("garbage: ok (%lld lines counted)\n",
	       metric("wirepathd_mcp_backend_garbage_total{server=\"g\"}"));
}

static void check_passthrough(void)
{
	char sid[65], agg[65];
	json_t *v;

	init_session("a", "2025-06-18", sid);
	v = rpc("a", sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
		200);
	CHECK(has_tool(v, "echo") && has_tool(v, "slow") && !has_tool(v, "a_echo"));
	json_decref(v);
	v = rpc("a", sid, NULL, &tenant_some,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", 200);
	CHECK(has_tool(v, "echo") && !has_tool(v, "add"));
	json_decref(v);
	v = rpc("a", sid, NULL, &tenant_some,
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"add\",\"arguments\":{\"a\":1,\"b\":1}}}",
		200);
	CHECK(error_code(v) == -32602);
	json_decref(v);
	v = rpc("a", sid, NULL, NULL,
		"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"echo\",\"arguments\":{\"text\":\"direct\"}}}",
		200);
	CHECK(!strcmp(text0(v), "direct") && json_integer_value(json_object_get(v, "id")) == 3);
	json_decref(v);
	/* everything passes through: the peer's own -32601, ping */
	v = rpc("a", sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"prompts/list\"}",
		200);
	CHECK(error_code(v) == -32601);
	json_decref(v);
	pump_until(log_has, "prompts/list", 2000);
	json_decref(rpc("a", sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}",
			200));
	/* a session belongs to its route */
	init_session(NULL, "2025-06-18", agg);
	json_decref(rpc("a", agg, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
			404));
	json_decref(rpc(NULL, sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
			404));
	/* a native server passes through what it has: tools */
	init_session("n", "2025-06-18", sid);
	v = rpc("n", sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
		200);
	CHECK(has_tool(v, "hello"));
	json_decref(v);
	v = rpc("n", sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"prompts/list\"}",
		200);
	CHECK(error_code(v) == -32601);
	json_decref(v);
	printf("pass-through: ok\n");
}

static void check_batch(void)
{
	char sid[65];
	json_t *v;

	init_session(NULL, "2025-03-26", sid);
	v = rpc(NULL, sid, NULL, NULL,
		"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
		"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"a_add\",\"arguments\":{\"a\":3,\"b\":4}}},"
		"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nope\"}, 5]",
		200);
	CHECK(json_is_array(v) && json_array_size(v) == 4);
	for (size_t i = 0; i < 4; i++) {
		json_t *e = json_array_get(v, i), *id = json_object_get(e, "id");

		if (json_is_null(id))
			CHECK(error_code(e) == -32600);
		else if (json_integer_value(id) == 2)
			CHECK(!strcmp(text0(e), "7"));
		else if (json_integer_value(id) == 3)
			CHECK(error_code(e) == -32601);
		else
			CHECK(json_integer_value(id) == 1 && json_object_get(e, "result"));
	}
	json_decref(v);
	json_decref(rpc(NULL, sid, NULL, NULL, "[]", 400));
	v = rpc(NULL, sid, NULL, NULL, "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}]",
		202);
	json_decref(v);
	printf("batch: ok\n");
}

/* 2026-07-28: no session; _meta and the mirrored headers checked. */
#define META26                                                                   \
	"\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"," \
	"\"io.modelcontextprotocol/clientCapabilities\":{}}"

static json_t *rpc26(const char *server, const char *mhdr, const char *nhdr, const char *body,
		     int status)
{
	struct wpd_ex *ex;
	json_t *v;
	char mh[128], nh[256];

	snprintf(mh, sizeof(mh), "Mcp-Method: %s", mhdr ? mhdr : "");
	snprintf(nh, sizeof(nh), "Mcp-Name: %s", nhdr ? nhdr : "");
	if (nhdr)
		ex = ex_make("POST", NULL, "2026-07-28", NULL, body, mh, nh, NULL);
	else if (mhdr)
		ex = ex_make("POST", NULL, "2026-07-28", NULL, body, mh, NULL);
	else
		ex = ex_make("POST", NULL, "2026-07-28", NULL, body, NULL);
	wpd_mcp_handle(mcp, ex, server);
	pump_until(ex_ended, ex, 20000);
	if (ex->status != status) {
		fprintf(stderr, "POST %s: status %d, expected %d: %.*s\n", body, ex->status, status,
			(int)ex->out.len, ex->out.p);
		exit(1);
	}
	v = ex_json(ex);
	ex_free(ex);
	return v;
}

static const char *result_type(json_t *v)
{
	return json_string_value(json_object_get(json_object_get(v, "result"), "resultType"));
}

static void check_stateless(void)
{
	json_t *v, *sv;
	struct wpd_ex *ex;

	v = rpc26(NULL, "server/discover", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{" META26
		  "}}",
		  200);
	sv = json_object_get(json_object_get(v, "result"), "supportedVersions");
	CHECK(json_array_size(sv) == 4 &&
	      !strcmp(json_string_value(json_array_get(sv, 0)), "2026-07-28"));
	CHECK(!strcmp(result_type(v), "complete"));
	json_decref(v);
	v = rpc26(NULL, "tools/list", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{" META26
		  "}}",
		  200);
	CHECK(has_tool(v, "a_echo") && !strcmp(result_type(v), "complete"));
	json_decref(v);
	v = rpc26(NULL, "tools/call", "a_add",
		  "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
		  "\"a_add\",\"arguments\":{\"a\":5,\"b\":6}," META26 "}}",
		  200);
	CHECK(!strcmp(text0(v), "11") && !strcmp(result_type(v), "complete"));
	json_decref(v);
	/* Mcp-Name in the base64 sentinel form: "a_echo" */
	v = rpc26(NULL, "tools/call", "=?base64?YV9lY2hv?=",
		  "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
		  "\"a_echo\",\"arguments\":{\"text\":\"b64\"}," META26 "}}",
		  200);
	CHECK(!strcmp(text0(v), "b64"));
	json_decref(v);
	/* pass-through: the backend's capabilities and serverInfo */
	v = rpc26("a", "server/discover", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"server/discover\",\"params\":{" META26
		  "}}",
		  200);
	CHECK(!strcmp(json_string_value(json_object_get(
			      json_object_get(json_object_get(json_object_get(v, "result"), "_meta"),
					      "io.modelcontextprotocol/serverInfo"),
			      "name")),
		      "mcp_peer"));
	json_decref(v);
	/* header mismatches: -32020 */
	v = rpc26(NULL, "tools/list", "a_echo",
		  "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":"
		  "\"a_echo\"," META26 "}}",
		  400);
	CHECK(error_code(v) == -32020 && json_integer_value(json_object_get(v, "id")) == 6);
	json_decref(v);
	v = rpc26(NULL, "tools/call", "a_add",
		  "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":"
		  "\"a_echo\"," META26 "}}",
		  400);
	CHECK(error_code(v) == -32020);
	json_decref(v);
	v = rpc26(NULL, "tools/list", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
		  "\"io.modelcontextprotocol/protocolVersion\":\"2025-11-25\","
		  "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
		  400);
	CHECK(error_code(v) == -32020);
	json_decref(v);
	/* _meta missing: invalid params */
	v = rpc26(NULL, "tools/list", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/list\"}", 400);
	CHECK(error_code(v) == -32602);
	json_decref(v);
	/* removed and unknown methods: 404 with -32601 */
	v = rpc26(NULL, "ping", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"ping\",\"params\":{" META26 "}}",
		  404);
	CHECK(error_code(v) == -32601);
	json_decref(v);
	v = rpc26(NULL, "prompts/list", NULL,
		  "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"prompts/list\",\"params\":{" META26
		  "}}",
		  404);
	CHECK(error_code(v) == -32601);
	json_decref(v);
	/* an unsupported revision: -32022 with the supported list */
	ex = ex_make("POST", NULL, "2027-01-01", NULL, "{}", NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 400);
	v = ex_json(ex);
	CHECK(error_code(v) == -32022);
	CHECK(json_array_size(json_object_get(json_object_get(json_object_get(v, "error"), "data"),
					      "supported")) == 4);
	json_decref(v);
	ex_free(ex);
	/* no DELETE, no GET */
	ex = ex_make("DELETE", NULL, "2026-07-28", NULL, NULL, NULL);
	wpd_mcp_handle(mcp, ex, NULL);
	CHECK(ex->ended && ex->status == 405);
	ex_free(ex);
	printf("stateless 2026-07-28: ok\n");
}

static void check_limits(struct wpd_config *c)
{
	char sid[65], first[65];
	struct wpd_ex *ex;
	int made = 0;
	long long older;

	/* sessions made from here on expire after 1.2 s unused (the daemon
	 * reads the limit live); the other checks' sessions stay */
	c->limits.mcp_session_idle_ms = 1200;
	older = metric("wirepathd_mcp_sessions");
	init_session(NULL, "2025-06-18", first);
	for (;;) {
		ex = post_wait(
			NULL, NULL, NULL, NULL,
			"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
			"\"protocolVersion\":\"2025-06-18\"}}");
		if (ex->status == 503)
			break;
		CHECK_EQ(ex->status, 200);
		CHECK(++made <= (int)c->limits.mcp_sessions_max);
		ex_free(ex);
	}
	CHECK(strstr(ex->hdrs, "Retry-After: "));
	ex_free(ex);
	CHECK(metric("wirepathd_mcp_sessions_refused_total") >= 1);
	CHECK_EQ(metric("wirepathd_mcp_sessions"), c->limits.mcp_sessions_max);
	/* idle sessions expire; a session in use does not */
	for (int i = 0; i < 6; i++) {
		pump_ms(c->limits.mcp_session_idle_ms / 4);
		json_decref(rpc(NULL, first, NULL, NULL,
				"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 200));
	}
	CHECK_EQ(metric("wirepathd_mcp_sessions"), older + 1);
	init_session(NULL, "2025-06-18", sid);
	pump_ms(c->limits.mcp_session_idle_ms + 200);
	json_decref(rpc(NULL, sid, NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
			404));
	printf("limits: ok (%d sessions, then 503; expiry)\n", made);
}

/* The pid on the last {"started": PID} line of a peer's log. */
static pid_t last_started(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	pid_t pid = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "{\"started\": ", 12))
			pid = (pid_t)atoi(line + 12);
	fclose(f);
	return pid;
}

static int new_silent(void *arg)
{
	pid_t p = last_started(silent_log);

	return p > 0 && p != *(pid_t *)arg;
}

static int silent_restarted(void *arg)
{
	(void)arg;
	return restarts("s") >= 1;
}

int main(void)
{
	static char peer[512], log_arg[256];
	char *argv_a[] = { "python3", peer, "normal", log_arg, NULL };
	char *argv_c[] = { "python3", peer, "crash-after-2", NULL };
	char *argv_g[] = { "python3", peer, "garbage", NULL };
	char *argv_s[] = { "python3", peer, "silent", silent_log, NULL };
	struct wpd_backend bk[5] = {
		{ .name = "pa", .kind = WPD_BACKEND_STDIO, .argv = argv_a, .timeout_ms = 60000 },
		{ .name = "pc", .kind = WPD_BACKEND_STDIO, .argv = argv_c },
		{ .name = "pg", .kind = WPD_BACKEND_STDIO, .argv = argv_g },
		{ .name = "ps", .kind = WPD_BACKEND_STDIO, .argv = argv_s },
		{ .name = "pn", .kind = WPD_BACKEND_NATIVE, .uri = "shm://@x" },
	};
	struct wpd_mcp_server ms[5] = {
		{ .name = "a", .backend = 0 }, { .name = "c", .backend = 1 },
		{ .name = "g", .backend = 2 }, { .name = "s", .backend = 3 },
		{ .name = "n", .backend = 4 },
	};
	struct wpd_config c = { .backends = bk, .nbackends = 5, .mcp = ms, .nmcp = 5 };
	struct wpd_native *natives[5] = { NULL, NULL, NULL, NULL, &nat };
	uint64_t t0 = mono_ms();
	pid_t first_silent;

	test_watchdog(170);
	if (system("python3 -c 'import json, select' >/dev/null 2>&1"))
		SKIP("python3 not found (the MCP peer is a Python script)");
	snprintf(peer, sizeof(peer), "%s/tests/daemon/mcp_peer.py", WP_SRC_DIR);
	snprintf(peer_log, sizeof(peer_log), "/tmp/wp-mcp-peer-%d.log", (int)getpid());
	snprintf(log_arg, sizeof(log_arg), "%s", peer_log);
	unlink(peer_log);
	snprintf(silent_log, sizeof(silent_log), "/tmp/wp-mcp-silent-%d.log", (int)getpid());
	unlink(silent_log);
	c.limits.mcp_sessions_max = 40;
	/* long while the other checks run (children start slowly on a busy
	 * machine); check_limits shortens it, the daemon reads it live */
	c.limits.mcp_session_idle_ms = 60000;
	CHECK(wpd_loop_create(&loop) == 0);
	CHECK(wpd_mcp_create(loop, &c, natives, &mcp) == 0);
	CHECK(!wpd_mcp_ready(mcp));
	pump_until(backend_up, "a", 30000);
	pump_until(backend_up, "c", 30000);
	pump_until(backend_up, "g", 30000);
	printf("children up in %llu ms\n", (unsigned long long)(mono_ms() - t0));

	check_http_rules();
	check_aggregate();
	check_concurrent();
	check_progress();
	check_abort();
	check_crash();
	check_garbage();
	check_passthrough();
	check_batch();
	check_stateless();
	check_limits(&c);

	/* the silent child: killed 10 s after it was started, and restarted */
	CHECK(!wpd_mcp_ready(mcp));
	first_silent = last_started(silent_log);
	CHECK(first_silent > 0);
	pump_until(silent_restarted, NULL, 30000);
	CHECK(mono_ms() - t0 >= 10000);
	CHECK(kill(first_silent, 0) < 0 && errno == ESRCH); /* SIGKILLed and reaped */
	pump_until(new_silent, &first_silent, 30000);
	printf("silent: ok (killed after %llu ms)\n", (unsigned long long)(mono_ms() - t0));

	/* reload: s removed, a kept (same child), its sessions kept */
	{
		char sid[65];
		long long before = restarts("a");
		json_t *v;

		pid_t stubborn = last_started(silent_log);
		uint64_t t1;

		init_session("a", "2025-06-18", sid);
		c.nmcp = 3;
		/* s ignores SIGTERM: the reload must not wait for it */
		CHECK(stubborn > 0 && kill(stubborn, 0) == 0);
		t1 = mono_ms();
		CHECK(wpd_mcp_reload(mcp, &c, natives) == 0);
		CHECK(mono_ms() - t1 < 500);
		CHECK(wpd_mcp_ready(mcp)); /* a, c, g: all up */
		v = rpc("a", sid, NULL, NULL,
			"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
			"\"name\":\"echo\",\"arguments\":{\"text\":\"same\"}}}",
			200);
		CHECK(!strcmp(text0(v), "same"));
		json_decref(v);
		CHECK_EQ(restarts("a"), before);
		json_decref(rpc("s", sid, NULL, NULL,
				"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 404));
		/* ... and SIGKILLs it 2 s later, from the loop */
		pump_ms(1000);
		CHECK(kill(stubborn, 0) == 0);
		pump_ms(1500);
		CHECK(kill(stubborn, 0) < 0 && errno == ESRCH);
		printf("reload: ok\n");
	}
	wpd_mcp_destroy(mcp);
	/* every child stopped: nothing left to wait for */
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	wpd_loop_destroy(loop);
	unlink(peer_log);
	unlink(silent_log);
	printf("test_mcp: ok\n");
	return 0;
}
