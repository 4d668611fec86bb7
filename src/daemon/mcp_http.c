// SPDX-License-Identifier: MIT
/*
 * MCP servers reached over streamable HTTP (an upstream at the backend's
 * url, whose path is the MCP endpoint: "http://127.0.0.1:3901/mcp"). As
 * with stdio children, the daemon is the upstream's one client: it
 * initializes once (keeping the upstream's Mcp-Session-Id and the
 * negotiated MCP-Protocol-Version, then POSTing notifications/initialized),
 * shares that session among all client sessions and numbers requests and
 * progress tokens itself. Each forwarded request is one POST (upstream.h's
 * pool, keep-alive) with Accept: application/json, text/event-stream; the
 * answer is read as JSON or as SSE (progress notifications forwarded as
 * they arrive, the response matched by id).
 *
 * What the upstream may do, and what happens:
 *  - refuse connections, reset, send a malformed response: the call fails
 *    with -32000, the backend goes down and initialize is retried after a
 *    backoff doubling from 100 ms to 30 s (100 ms again once it succeeds);
 *    calls while down fail at once (-ENOTCONN);
 *  - forget the session (restarted, expired: 404, or the 400 "No valid
 *    session ID" of SDK-based servers): initialize again, and send the
 *    call once more; client sessions never notice;
 *  - never answer: the call fails after timeout_ms and the upstream is
 *    sent notifications/cancelled; initialize has 10 s;
 *  - send a body or an SSE event over 4 MiB: the rest is dropped and the
 *    call fails; messages that are not JSON-RPC are counted as garbage;
 *  - send requests in its SSE stream (sampling, elicitation, roots): they
 *    are answered -32601 by a POST (ping: {}), as for stdio children.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/buf.h"
#include "daemon/jsonrpc.h"
#include "daemon/mcp_int.h"
#include "daemon/upstream.h"

#define HTTP_BODY_MAX WPD_RPC_MAX_BYTES /* a JSON body, an SSE event's data */
#define HTTP_SID_MAX 256                /* Mcp-Session-Id, as upstream.h reports */
#define HTTP_INIT_TIMEOUT_NS (10ull * 1000000000ull)
#define HTTP_BACKOFF_MIN_MS 100u
#define HTTP_BACKOFF_MAX_MS 30000u

enum http_state { HS_DOWN = 0, HS_INIT = 1, HS_UP = 2 };
enum hreq_kind { HR_INIT, HR_INITIALIZED, HR_CALL, HR_NOTE };

struct http_be;

/* One POST in flight. */
struct hreq {
	struct http_be *h;
	struct wpd_up_req *ur;
	enum hreq_kind kind;
	struct mcp_bcall *bc; /* HR_CALL */
	uint64_t id;          /* the response awaited (HR_INIT, HR_CALL) */
	uint64_t epoch;       /* the backend session it was sent in */
	int with_sid;         /* it carried an Mcp-Session-Id */
	int status, sse, bad;
	struct wpd_buf body; /* the JSON body, or the SSE line being read */
	struct wpd_buf data; /* SSE: the data of the event being read */
	json_t *answer;      /* the response to id */
	char sid[HTTP_SID_MAX];
	struct hreq *next, *prev;
};

struct http_be {
	struct mcp_backend b;
	struct wpd_upstream *u;
	char url[256];
	const char *path; /* "" (the url has a path) or "/" */
	enum http_state state;
	char sid[HTTP_SID_MAX]; /* the upstream's Mcp-Session-Id ("" = none) */
	char ver[32];           /* the negotiated revision */
	uint64_t next_id, epoch, inits;
	struct hreq *reqs;       /* POSTs in flight */
	struct hreq *init;       /* HR_INIT or HR_INITIALIZED in flight */
	struct mcp_bcall *queue; /* calls waiting for initialize */
	struct wpd_timer retry_timer, init_timer;
	uint32_t backoff_ms;
	struct mcp_ratelimit rl;
};

static void http_down(struct http_be *h, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void http_init_start(void *arg);
static int call_send(struct http_be *h, struct mcp_bcall *bc);

/* ---- POSTs ---- */

static void hreq_free(struct hreq *r)
{
	struct http_be *h = r->h;

	if (r->prev)
		r->prev->next = r->next;
	else if (h->reqs == r)
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (h->init == r)
		h->init = NULL;
	wpd_buf_free(&r->body);
	wpd_buf_free(&r->data);
	json_decref(r->answer);
	free(r);
}

/* Stop a POST: no callback runs afterwards. */
static void hreq_cancel(struct hreq *r)
{
	if (r->ur)
		wpd_upstream_cancel(r->ur);
	r->ur = NULL;
	if (r->bc)
		r->bc->priv = NULL;
	hreq_free(r);
}

static void answer_request(struct http_be *h, const struct wpd_rpc *m);

static void progress(struct hreq *r, const struct wpd_rpc *m)
{
	struct mcp_bcall *bc = r->bc;
	json_t *tok = json_object_get(m->params, "progressToken");
	json_t *note, *p;

	if (!bc || !bc->token || !bc->on_note || !json_is_integer(tok) ||
	    (uint64_t)json_integer_value(tok) != bc->bid) {
		r->h->b.garbage++;
		return;
	}
	p = json_deep_copy(m->params);
	if (!p || json_object_set(p, "progressToken", bc->token)) {
		json_decref(p);
		return;
	}
	note = wpd_rpc_notification("notifications/progress", p);
	json_decref(p);
	if (note)
		bc->on_note(bc, note);
	json_decref(note);
}

static void handle_msg(struct hreq *r, json_t *msg)
{
	struct http_be *h = r->h;
	struct wpd_rpc m;

	switch (wpd_rpc_classify(msg, &m)) {
	case WPD_RPC_RESPONSE:
	case WPD_RPC_ERROR:
		if (!r->answer && json_is_integer(m.id) &&
		    (uint64_t)json_integer_value(m.id) == r->id && r->kind != HR_NOTE) {
			r->answer = json_incref(msg);
			return;
		}
		h->b.garbage++;
		return;
	case WPD_RPC_NOTIFICATION:
		/* Others (logging, list changes) are not forwarded: the
		 * daemon sends clients no notifications but progress. */
		if (!strcmp(m.method, "notifications/progress"))
			progress(r, &m);
		return;
	case WPD_RPC_REQUEST:
		answer_request(h, &m);
		return;
	case WPD_RPC_INVALID:
		h->b.garbage++;
		mcp_log(&h->rl, WP_LOG_WARN, "%s: garbage from the upstream (%s)", h->b.name,
			m.why);
		return;
	}
}

static void handle_text(struct hreq *r, const char *text, size_t len)
{
	const char *why;
	json_t *root = wpd_rpc_load(text, len, &why);

	if (!root) {
		r->h->b.garbage++;
		mcp_log(&r->h->rl, WP_LOG_WARN, "%s: garbage from the upstream (%s)", r->h->b.name,
			why);
		return;
	}
	if (json_is_array(root)) {
		size_t i;
		json_t *v;

		json_array_foreach(root, i, v) handle_msg(r, v);
	} else {
		handle_msg(r, root);
	}
	json_decref(root);
}

/* One SSE line (without its end): "data:" lines gather, a blank line ends
 * the event; event names, ids, retry and comments are not needed here. */
static void sse_line(struct hreq *r, const char *p, size_t n)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (!n) {
		if (r->data.len && !r->data.oom)
			handle_text(r, r->data.p, r->data.len);
		else if (r->data.oom)
			r->bad = 1;
		wpd_buf_reset(&r->data);
		return;
	}
	if (n < 5 || memcmp(p, "data:", 5))
		return;
	p += 5;
	n -= 5;
	if (n && *p == ' ')
		p++, n--;
	if (r->data.len)
		wpd_buf_add(&r->data, "\n", 1);
	wpd_buf_add(&r->data, p, n);
}

static void sse_feed(struct hreq *r, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t part = nl ? (size_t)(nl - p) : n;

		if (!nl) {
			wpd_buf_add(&r->body, p, part);
			break;
		}
		if (r->body.len) {
			wpd_buf_add(&r->body, p, part);
			if (!r->body.oom)
				sse_line(r, r->body.p, r->body.len);
			else
				r->bad = 1;
			wpd_buf_reset(&r->body);
		} else {
			sse_line(r, p, part);
		}
		p = nl + 1;
		n -= part + 1;
	}
}

static void hr_header(void *arg, const char *name, const char *value)
{
	struct hreq *r = arg;

	if (strcasecmp(name, "mcp-session-id"))
		return;
	/* Visible ASCII only (the spec's rule): it goes back into our
	 * requests' headers, so nothing may break a header line. */
	for (const char *c = value; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			return;
	snprintf(r->sid, sizeof(r->sid), "%s", value);
}

static void hr_head(void *arg, int status, const char *ctype)
{
	struct hreq *r = arg;

	r->status = status;
	r->sse = !strncasecmp(ctype, "text/event-stream", 17);
}

static void hr_body(void *arg, const char *data, size_t len)
{
	struct hreq *r = arg;

	if (r->bad)
		return;
	if (r->sse) {
		sse_feed(r, data, len);
		return;
	}
	wpd_buf_add(&r->body, data, len);
	if (r->body.oom) {
		r->bad = 1; /* over HTTP_BODY_MAX: the rest is dropped */
		wpd_buf_free(&r->body);
	}
}

static void hr_done(void *arg, int err);

/* POST msg. kind HR_INIT goes without the session's headers. */
static int hreq_post(struct http_be *h, enum hreq_kind kind, const json_t *msg,
		     struct mcp_bcall *bc, uint64_t id, struct hreq **out)
{
	struct hreq *r = calloc(1, sizeof(*r));
	struct wpd_up_cbs cbs = { .head = hr_head,
				  .body = hr_body,
				  .done = hr_done,
				  .arg = r,
				  .header = hr_header };
	struct wpd_buf hd = { 0 };
	size_t len;
	char *text;
	int ret;

	if (!r)
		return -ENOMEM;
	text = wpd_rpc_dump(msg, &len);
	if (!text) {
		free(r);
		return -ENOMEM;
	}
	r->h = h;
	r->kind = kind;
	r->bc = bc;
	r->id = id;
	r->epoch = h->epoch;
	r->body.max = HTTP_BODY_MAX;
	r->data.max = HTTP_BODY_MAX;
	wpd_buf_adds(&hd, "Content-Type: application/json\r\n"
			  "Accept: application/json, text/event-stream\r\n");
	if (kind != HR_INIT) {
		if (h->sid[0]) {
			wpd_buf_addf(&hd, "Mcp-Session-Id: %s\r\n", h->sid);
			r->with_sid = 1;
		}
		wpd_buf_addf(&hd, "MCP-Protocol-Version: %s\r\n", h->ver);
	}
	ret = hd.oom ? -ENOMEM
		     : wpd_upstream_request(h->u, "POST", h->path, hd.p, text, len, &cbs, &r->ur);
	wpd_buf_free(&hd);
	free(text);
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	if (out)
		*out = r;
	return 0;
}

/* A notification or a response to the upstream: nothing waits for it. */
static void post_oneway(struct http_be *h, json_t *msg)
{
	if (!msg || hreq_post(h, HR_NOTE, msg, NULL, 0, NULL) < 0)
		mcp_log(&h->rl, WP_LOG_WARN, "%s: could not POST a message to the upstream",
			h->b.name);
}

static void answer_request(struct http_be *h, const struct wpd_rpc *m)
{
	json_t *resp;

	if (!strcmp(m->method, "ping"))
		resp = wpd_rpc_response(m->id, NULL);
	else
		resp = wpd_rpc_errorf(m->id, WPD_RPC_METHOD_NOT_FOUND,
				      "wirepathd does not forward server requests (%s)", m->method);
	post_oneway(h, resp);
	json_decref(resp);
}

static void send_cancelled(struct http_be *h, uint64_t bid, const char *reason)
{
	json_t *p = json_pack("{s:I,s:s}", "requestId", (json_int_t)bid, "reason", reason);
	json_t *n = p ? wpd_rpc_notification("notifications/cancelled", p) : NULL;

	post_oneway(h, n);
	json_decref(n);
	json_decref(p);
}

/* ---- calls ---- */

static void call_done(struct http_be *h, struct mcp_bcall *bc, json_t *resp)
{
	wpd_timer_cancel(h->b.loop, &bc->timer);
	json_decref(bc->req);
	bc->req = NULL;
	bc->priv = NULL;
	if (json_object_get(resp, "error"))
		h->b.call_errors++;
	bc->on_done(bc, resp);
}

/* Fail bc with -32000 "MCP server NAME " + the formatted rest. */
static void call_fail(struct http_be *h, struct mcp_bcall *bc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void call_fail(struct http_be *h, struct mcp_bcall *bc, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	json_t *err;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	err = mcp_error_resp(WPD_RPC_BACKEND_ERROR, "MCP server %s %s", h->b.name, what);

	call_done(h, bc, err);
	json_decref(err);
}

/* Fail every call waiting for initialize. */
static void fail_queue(struct http_be *h, const char *why)
{
	while (h->queue) {
		struct mcp_bcall *bc = h->queue;

		mcp_bcall_unlink(&h->queue, bc);
		bc->queued = 0;
		call_fail(h, bc, "%s; the call was lost", why);
	}
}

static int call_send(struct http_be *h, struct mcp_bcall *bc)
{
	struct hreq *r;
	int ret = hreq_post(h, HR_CALL, bc->req, bc, bc->bid, &r);

	if (ret == 0)
		bc->priv = r;
	return ret;
}

static void call_timeout(void *arg)
{
	struct mcp_bcall *bc = arg;
	struct http_be *h = (struct http_be *)bc->b;
	char ms[16];

	h->b.ops->cancel(&h->b, bc, "timed out");
	snprintf(ms, sizeof(ms), "%u", h->b.timeout_ms);
	call_fail(h, bc, "did not answer within %s ms", ms);
}

static int http_call(struct mcp_backend *b, const char *method, json_t *params,
		     struct mcp_bcall *bc)
{
	struct http_be *h = (struct http_be *)b;
	json_t *id, *p, *meta;
	int ret;

	if (h->state == HS_DOWN)
		return -ENOTCONN;
	bc->b = b;
	bc->bid = ++h->next_id;
	bc->queued = 0;
	bc->retried = 0;
	bc->priv = NULL;
	id = json_integer((json_int_t)bc->bid);
	bc->req = id ? wpd_rpc_request(id, method, params) : NULL;
	json_decref(id);
	if (!bc->req)
		return -ENOMEM;
	if (bc->token) {
		/* Our progress token in place of the client's. */
		p = json_object_get(bc->req, "params");
		meta = json_is_object(p) ? json_object_get(p, "_meta") : NULL;
		if (!json_is_object(meta) ||
		    json_object_set_new(meta, "progressToken", json_integer((json_int_t)bc->bid))) {
			json_decref(bc->req);
			bc->req = NULL;
			return -ENOMEM;
		}
	}
	if (h->state == HS_INIT) {
		bc->queued = 1;
		mcp_bcall_link(&h->queue, bc);
	} else {
		ret = call_send(h, bc);
		if (ret < 0) {
			json_decref(bc->req);
			bc->req = NULL;
			return ret;
		}
	}
	b->calls++;
	memset(&bc->timer, 0, sizeof(bc->timer));
	wpd_timer_arm(b->loop, &bc->timer, (uint64_t)b->timeout_ms * 1000000ull, call_timeout, bc);
	return 0;
}

static void http_cancel(struct mcp_backend *b, struct mcp_bcall *bc, const char *reason)
{
	struct http_be *h = (struct http_be *)b;

	wpd_timer_cancel(b->loop, &bc->timer);
	if (bc->queued) {
		mcp_bcall_unlink(&h->queue, bc);
		bc->queued = 0;
	} else if (bc->priv) {
		struct hreq *r = bc->priv;
		int sent_in_session = r->epoch == h->epoch;

		hreq_cancel(r);
		if (h->state == HS_UP && sent_in_session)
			send_cancelled(h, bc->bid, reason);
	}
	json_decref(bc->req);
	bc->req = NULL;
}

static void http_notify(struct mcp_backend *b, const char *method, json_t *params)
{
	struct http_be *h = (struct http_be *)b;
	json_t *n;

	if (h->state != HS_UP)
		return;
	n = wpd_rpc_notification(method, params);
	post_oneway(h, n);
	json_decref(n);
}

/* The upstream no longer knows our session: 404 (the spec), or the 400
 * "Bad Request: No valid session ID provided" that servers built on the
 * TypeScript SDK's examples (server-everything among them) answer. */
static int session_lost(const struct hreq *r)
{
	if (!r->with_sid)
		return 0;
	if (r->status == 404)
		return 1;
	if (r->status != 400 || !r->body.p)
		return 0;
	for (const char *p = r->body.p; *p; p++)
		if (!strncasecmp(p, "session", 7))
			return 1;
	return 0;
}

static void call_finish(struct http_be *h, struct hreq *r, int err)
{
	struct mcp_bcall *bc = r->bc;
	char st[64];

	bc->priv = NULL;
	if (err == -ETIMEDOUT) {
		/* The pool's timeout (the same timeout_ms) beat the call's. */
		if (h->state == HS_UP && r->epoch == h->epoch)
			send_cancelled(h, bc->bid, "timed out");
		call_fail(h, bc, "did not answer within %u ms", h->b.timeout_ms);
		return;
	}
	if (err < 0) {
		call_fail(h, bc, "is unreachable (%s); the call was lost", strerror(-err));
		if (h->state == HS_UP && r->epoch == h->epoch)
			http_down(h, "is unreachable (%s)", strerror(-err));
		return;
	}
	if (session_lost(r) && !bc->retried) {
		bc->retried = 1;
		if (h->state == HS_UP && r->epoch != h->epoch) {
			/* Another call re-initialized meanwhile. */
			if (call_send(h, bc) < 0)
				call_fail(h, bc, "could not be sent the call again");
			return;
		}
		if (h->state == HS_DOWN) {
			call_fail(h, bc, "is down; the call was lost");
			return;
		}
		bc->queued = 1;
		mcp_bcall_link(&h->queue, bc);
		if (h->state == HS_UP) {
			mcp_log(&h->rl, WP_LOG_WARN,
				"%s: the upstream lost our session (HTTP %d); initializing again",
				h->b.name, r->status);
			http_init_start(h);
		}
		return;
	}
	if (r->answer && !r->bad) {
		call_done(h, bc, r->answer);
		return;
	}
	snprintf(st, sizeof(st), "%d%s", r->status,
		 r->bad ? ", a message over 4 MiB" : ", without the call's response");
	call_fail(h, bc, "answered HTTP %s", st);
}

/* ---- the upstream session ---- */

static void http_up(struct http_be *h)
{
	h->state = HS_UP;
	h->b.up = 1;
	h->backoff_ms = HTTP_BACKOFF_MIN_MS;
	wpd_timer_cancel(h->b.loop, &h->init_timer);
	mcp_log(&h->rl, WP_LOG_INFO, "%s: up (%s, revision %s%s)", h->b.name, h->url, h->ver,
		h->sid[0] ? ", with a session" : ", no session");
	/* The calls that waited, oldest first. */
	while (h->queue && h->state == HS_UP) {
		struct mcp_bcall *bc = h->queue;

		while (bc->next)
			bc = bc->next;
		mcp_bcall_unlink(&h->queue, bc);
		bc->queued = 0;
		if (call_send(h, bc) < 0)
			call_fail(h, bc, "could not be sent the call");
	}
}

static void init_finish(struct http_be *h, struct hreq *r, int err)
{
	json_t *res = r->answer ? json_object_get(r->answer, "result") : NULL;
	json_t *ver = json_object_get(res, "protocolVersion");
	json_t *n;

	if (err < 0) {
		http_down(h, "did not answer initialize (%s)", strerror(-err));
		return;
	}
	if (r->status != 200 || !json_is_object(res) || !json_is_string(ver) ||
	    !mcp_version_ok(json_string_value(ver))) {
		http_down(h,
			  "refused initialize (HTTP %d, or a revision the daemon does not speak)",
			  r->status);
		return;
	}
	snprintf(h->sid, sizeof(h->sid), "%s", r->sid);
	snprintf(h->ver, sizeof(h->ver), "%s", json_string_value(ver));
	json_decref(h->b.init);
	h->b.init = json_incref(res);
	n = wpd_rpc_notification("notifications/initialized", NULL);
	if (!n || hreq_post(h, HR_INITIALIZED, n, NULL, 0, &h->init) < 0) {
		json_decref(n);
		http_down(h, "could not be sent notifications/initialized");
		return;
	}
	json_decref(n);
}

static void hr_done(void *arg, int err)
{
	struct hreq *r = arg;
	struct http_be *h = r->h;

	r->ur = NULL; /* upstream.h: gone after done */
	if (!err && !r->sse && !r->bad && r->body.len)
		handle_text(r, r->body.p, r->body.len);
	else if (!err && r->sse && !r->bad) {
		/* A last line, or event, without its end. */
		if (r->body.len && !r->body.oom)
			sse_line(r, r->body.p, r->body.len);
		if (r->data.len && !r->data.oom)
			handle_text(r, r->data.p, r->data.len);
	}
	switch (r->kind) {
	case HR_INIT:
		h->init = NULL;
		init_finish(h, r, err);
		break;
	case HR_INITIALIZED:
		h->init = NULL;
		if (err < 0)
			http_down(h, "did not take notifications/initialized (%s)", strerror(-err));
		else if (r->status / 100 != 2)
			http_down(h, "refused notifications/initialized (HTTP %d)", r->status);
		else
			http_up(h);
		break;
	case HR_CALL:
		call_finish(h, r, err);
		break;
	case HR_NOTE:
		if (err < 0 || r->status / 100 != 2)
			mcp_log(&h->rl, WP_LOG_WARN, "%s: a notification was refused (%s %d)",
				h->b.name, err < 0 ? strerror(-err) : "HTTP", r->status);
		break;
	}
	hreq_free(r);
}

static void init_timeout(void *arg)
{
	http_down(arg, "did not answer initialize within 10 s");
}

static void http_init_start(void *arg)
{
	struct http_be *h = arg;
	json_t *id, *params, *req;
	int ret;

	h->b.restarts += h->inits++ != 0; /* the first initialize is not a restart */
	if (h->init)
		hreq_cancel(h->init);
	h->state = HS_INIT;
	h->b.up = 0;
	h->epoch++;
	h->sid[0] = 0;
	h->ver[0] = 0;
	id = json_integer((json_int_t)++h->next_id);
	params = json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", MCP_VERSION_LATEST,
			   "capabilities", "clientInfo", "name", "wirepathd", "version", "0.1");
	req = id && params ? wpd_rpc_request(id, "initialize", params) : NULL;
	ret = req ? hreq_post(h, HR_INIT, req, NULL, h->next_id, &h->init) : -ENOMEM;
	json_decref(id);
	json_decref(params);
	json_decref(req);
	if (ret < 0) {
		http_down(h, "could not be sent initialize (%s)", strerror(-ret));
		return;
	}
	wpd_timer_arm(h->b.loop, &h->init_timer, HTTP_INIT_TIMEOUT_NS, init_timeout, h);
}

static void http_down(struct http_be *h, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (h->state == HS_DOWN)
		return;
	wpd_timer_cancel(h->b.loop, &h->init_timer);
	if (h->init)
		hreq_cancel(h->init);
	h->state = HS_DOWN;
	h->b.up = 0;
	json_decref(h->b.init);
	h->b.init = NULL;
	h->sid[0] = 0;
	mcp_log(&h->rl, WP_LOG_WARN, "%s: %s; initializing again in %u ms", h->b.name, why,
		h->backoff_ms);
	h->b.restart_delay_ms = h->backoff_ms;
	wpd_timer_arm(h->b.loop, &h->retry_timer, (uint64_t)h->backoff_ms * 1000000ull,
		      http_init_start, h);
	h->backoff_ms = h->backoff_ms * 2 > HTTP_BACKOFF_MAX_MS ? HTTP_BACKOFF_MAX_MS
								: h->backoff_ms * 2;
	fail_queue(h, why);
}

static int http_adopt(struct mcp_backend *b, const struct wpd_backend *bk)
{
	struct http_be *h = (struct http_be *)b;

	if (bk->kind != WPD_BACKEND_HTTP || strcmp(h->url, bk->url))
		return 0;
	b->timeout_ms = bk->timeout_ms ? bk->timeout_ms : 300000;
	return 1;
}

static void http_destroy(struct mcp_backend *b)
{
	struct http_be *h = (struct http_be *)b;

	wpd_timer_cancel(b->loop, &h->retry_timer);
	wpd_timer_cancel(b->loop, &h->init_timer);
	h->state = HS_DOWN;
	b->up = 0;
	while (h->reqs) {
		struct hreq *r = h->reqs;
		struct mcp_bcall *bc = r->bc;

		hreq_cancel(r);
		if (bc)
			call_fail(h, bc, "was stopped; the call was lost");
	}
	fail_queue(h, "was stopped");
	wpd_upstream_close(h->u);
	json_decref(b->init);
	free(h);
}

static const struct mcp_backend_ops http_ops = {
	.call = http_call,
	.cancel = http_cancel,
	.notify = http_notify,
	.adopt = http_adopt,
	.destroy = http_destroy,
};

int mcp_http_create(struct wpd_loop *l, const char *name, const struct wpd_backend *bk,
		    struct mcp_backend **out)
{
	struct http_be *h = calloc(1, sizeof(*h));
	const char *host;
	int ret;

	if (!h)
		return -ENOMEM;
	h->b.ops = &http_ops;
	h->b.loop = l;
	h->b.kind = "http";
	snprintf(h->b.name, sizeof(h->b.name), "%s", name);
	snprintf(h->url, sizeof(h->url), "%s", bk->url);
	h->b.timeout_ms = bk->timeout_ms ? bk->timeout_ms : 300000;
	h->backoff_ms = HTTP_BACKOFF_MIN_MS;
	/* The url's path is the endpoint; none means "/". */
	host = strstr(h->url, "://");
	h->path = host && strchr(host + 3, '/') ? "" : "/";
	ret = wpd_upstream_open(l, name, h->url, bk->pool, h->b.timeout_ms, &h->u);
	if (ret < 0) {
		free(h);
		return ret;
	}
	h->state = HS_INIT; /* calls made before the first initialize wait for it */
	wpd_timer_arm(l, &h->retry_timer, 0, http_init_start, h);
	*out = &h->b;
	return 0;
}
