// SPDX-License-Identifier: MIT
/*
 * MCP over streamable HTTP (mcp.h, docs/daemon.md "MCP"): the /mcp
 * aggregate and the /mcp/NAME pass-through, sessions, protocol revisions,
 * Origin and Accept checks, per-tenant tool allow-lists, and the native
 * tool-service backend. Stdio children are mcp_stdio.c's; both sit behind
 * the backend interface of mcp_int.h.
 *
 * One HTTP POST is a struct mcp_req; each JSON-RPC request in it a struct
 * mcp_ccall (client call); each call to a backend a struct mcp_part (a
 * tools/list at /mcp fans out one part per server). The POST is answered
 * when its last call is: as application/json, or as text/event-stream once
 * a progress notification has to go out before the answer. A client that
 * goes away cancels every backend call of its POST at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <wirepath/service.h>

#include "daemon/buf.h"
#include "daemon/exchange.h"
#include "daemon/jsonrpc.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/mcp.h"
#include "daemon/mcp_int.h"
#include "daemon/native.h"
#include "daemon/tenants.h"

#define MCP_SID_BYTES 32  /* 256 random bits, 64 hex characters */
#define MCP_LIST_PAGES 64 /* nextCursor pages followed per server in a tools/list */
#define MCP_BUSY_RETRY_S 5

const char *const mcp_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };

int mcp_version_ok(const char *v)
{
	for (int i = 0; v && mcp_versions[i]; i++)
		if (!strcmp(v, mcp_versions[i]))
			return 1;
	return 0;
}

/* ---- log ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mcp_log(struct mcp_ratelimit *rl, enum wp_log_level level, const char *fmt, ...)
{
	uint64_t now = now_ns();
	char line[1400];
	va_list ap;

	if (rl) {
		if (!rl->t_ns)
			rl->tokens = 20;
		else
			rl->tokens += (double)(now - rl->t_ns) * 5e-9;
		if (rl->tokens > 20)
			rl->tokens = 20;
		rl->t_ns = now;
		if (rl->tokens < 1) {
			rl->suppressed++;
			return;
		}
		rl->tokens -= 1;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (rl && rl->suppressed) {
		wpd_log(level, "mcp: %s (%llu similar lines suppressed)", line,
			(unsigned long long)rl->suppressed);
		rl->suppressed = 0;
	} else {
		wpd_log(level, "mcp: %s", line);
	}
}

json_t *mcp_error_resp(int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return wpd_rpc_error(NULL, code, msg, NULL);
}

/* ---- the native tool-service backend ---- */

/* One wirepath call; outlives its mcp_bcall when cancelled (the library
 * still runs on_done, later). */
struct native_rec {
	struct mcp_bcall *bc; /* NULL once cancelled */
	struct native_be *nb;
	int list; /* tools/list (else tools/call) */
	struct wpd_buf acc;
	struct native_rec *next, *prev;
};

struct native_be {
	struct mcp_backend b;
	struct wpd_native *n;
	struct native_rec *recs; /* in flight */
	struct mcp_bcall *pings; /* answered from the loop (bc->timer) */
	struct mcp_ratelimit rl;
};

static void native_unlink(struct native_be *nb, struct native_rec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (nb && nb->recs == r)
		nb->recs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

static void native_data(void *arg, struct wp_msg *chunk)
{
	struct native_rec *r = arg;

	wpd_buf_add(&r->acc, chunk->data, chunk->len);
}

static void native_done(void *arg, int status)
{
	struct native_rec *r = arg;
	struct mcp_bcall *bc = r->bc;
	struct native_be *nb = r->nb;
	json_t *resp = NULL, *v;

	if (nb)
		native_unlink(nb, r);
	if (!bc)
		goto out_free; /* cancelled: nobody waits */
	if (status) {
		resp = mcp_error_resp(WPD_RPC_BACKEND_ERROR, "native tool service %s failed: %s",
				      nb->b.name, strerror(status < 0 ? -status : status));
	} else if (r->acc.oom) {
		resp = mcp_error_resp(WPD_RPC_BACKEND_ERROR,
				      "native tool service %s: reply too large", nb->b.name);
	} else {
		v = wpd_rpc_load(r->acc.p ? r->acc.p : "", r->acc.len, NULL);
		if (r->list && json_is_array(v))
			resp = wpd_rpc_response(NULL, json_pack("{s:o}", "tools", v));
		else if (!r->list && json_is_object(v))
			resp = wpd_rpc_response(NULL, v);
		else {
			json_decref(v);
			nb->b.garbage++;
			resp = mcp_error_resp(WPD_RPC_BACKEND_ERROR,
					      "native tool service %s sent a reply that is not %s",
					      nb->b.name,
					      r->list ? "a JSON array" : "a JSON object");
		}
	}
	if (!resp)
		resp = mcp_error_resp(WPD_RPC_INTERNAL_ERROR, "out of memory");
	if (json_object_get(resp, "error"))
		nb->b.call_errors++;
	bc->on_done(bc, resp);
	json_decref(resp);
out_free:
	wpd_buf_free(&r->acc);
	free(r);
}

static void ping_unlink(struct native_be *nb, struct mcp_bcall *bc)
{
	if (bc->prev)
		bc->prev->next = bc->next;
	else
		nb->pings = bc->next;
	if (bc->next)
		bc->next->prev = bc->prev;
	bc->next = bc->prev = NULL;
}

static void ping_done(void *arg)
{
	struct mcp_bcall *bc = arg;
	json_t *resp = wpd_rpc_response(NULL, NULL);

	ping_unlink((struct native_be *)bc->b, bc);
	bc->on_done(bc, resp);
	json_decref(resp);
}

static int native_call(struct mcp_backend *b, const char *method, json_t *params,
		       struct mcp_bcall *bc)
{
	struct native_be *nb = (struct native_be *)b;
	struct wp_call_params p = { 0 };
	struct native_rec *r;
	struct wpd_buf req = { 0 };
	uint64_t id;
	int ret;

	bc->b = b;
	bc->priv = NULL;
	if (!strcmp(method, "ping")) {
		/* Answered here, from the loop (never inside call). */
		memset(&bc->timer, 0, sizeof(bc->timer));
		wpd_timer_arm(b->loop, &bc->timer, 0, ping_done, bc);
		bc->prev = NULL;
		bc->next = nb->pings;
		if (nb->pings)
			nb->pings->prev = bc;
		nb->pings = bc;
		return 0;
	}
	if (strcmp(method, "tools/list") && strcmp(method, "tools/call"))
		return -EOPNOTSUPP;
	if (!wpd_native_up(nb->n))
		return -ENOTCONN;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->list = !strcmp(method, "tools/list");
	r->acc.max = WPD_RPC_MAX_BYTES;
	if (!r->list) {
		json_t *name = json_object_get(params, "name");
		json_t *args = json_object_get(params, "arguments");
		struct wp_svc_tool_hdr h = { 0 };
		char *a = NULL;
		size_t alen = 0;

		if (!json_is_string(name) || json_string_length(name) == 0 ||
		    json_string_length(name) > WP_SVC_TOOL_NAME_MAX) {
			free(r);
			return -EINVAL;
		}
		if (args && !(a = wpd_rpc_dump(args, &alen))) {
			free(r);
			return -ENOMEM;
		}
		h.name_len = htole32((uint32_t)json_string_length(name));
		wpd_buf_add(&req, &h, sizeof(h));
		wpd_buf_add(&req, json_string_value(name), json_string_length(name));
		if (a)
			wpd_buf_add(&req, a, alen);
		free(a);
		if (req.oom) {
			wpd_buf_free(&req);
			free(r);
			return -ENOMEM;
		}
	}
	p.method = r->list ? WP_SVC_TOOLS_LIST : WP_SVC_TOOLS_CALL;
	p.req = req.p ? req.p : "";
	p.req_len = (uint32_t)req.len;
	p.deadline_us = (int64_t)b->timeout_ms * 1000;
	p.on_data = native_data;
	p.on_done = native_done;
	p.arg = r;
	ret = wpd_native_call(nb->n, &p, &id);
	wpd_buf_free(&req); /* copied at the call (req_done NULL) */
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->bc = bc;
	r->nb = nb;
	r->next = nb->recs;
	if (nb->recs)
		nb->recs->prev = r;
	nb->recs = r;
	bc->priv = r;
	bc->bid = id;
	b->calls++;
	return 0;
}

static void native_cancel(struct mcp_backend *b, struct mcp_bcall *bc, const char *reason)
{
	struct native_be *nb = (struct native_be *)b;
	struct native_rec *r = bc->priv;

	(void)reason;
	if (!r) {
		wpd_timer_cancel(b->loop, &bc->timer); /* a ping */
		ping_unlink(nb, bc);
		return;
	}
	r->bc = NULL;
	bc->priv = NULL;
	wpd_native_cancel(nb->n, bc->bid);
}

static void native_notify(struct mcp_backend *b, const char *method, json_t *params)
{
	(void)b;
	(void)method;
	(void)params; /* a tool service has no notifications to take */
}

static int native_adopt(struct mcp_backend *b, const struct wpd_backend *bk)
{
	(void)b;
	(void)bk;
	return 0; /* decided by mcp_reload: same native object or not */
}

static void native_destroy(struct mcp_backend *b)
{
	struct native_be *nb = (struct native_be *)b;

	/* Calls in flight fail now; their records stay with the library,
	 * which completes them (on_done finds no bc and frees them). */
	while (nb->recs) {
		struct native_rec *r = nb->recs;
		struct mcp_bcall *bc = r->bc;

		native_unlink(nb, r);
		r->nb = NULL;
		if (bc) {
			json_t *err = mcp_error_resp(WPD_RPC_BACKEND_ERROR,
						     "native tool service %s was removed", b->name);

			r->bc = NULL;
			wpd_native_cancel(nb->n, bc->bid);
			bc->on_done(bc, err);
			json_decref(err);
		}
	}
	while (nb->pings) {
		struct mcp_bcall *bc = nb->pings;
		json_t *err = mcp_error_resp(WPD_RPC_BACKEND_ERROR,
					     "native tool service %s was removed", b->name);

		wpd_timer_cancel(b->loop, &bc->timer);
		ping_unlink(nb, bc);
		bc->on_done(bc, err);
		json_decref(err);
	}
	json_decref(b->init);
	free(nb);
}

static const struct mcp_backend_ops native_ops = {
	.call = native_call,
	.cancel = native_cancel,
	.notify = native_notify,
	.adopt = native_adopt,
	.destroy = native_destroy,
};

static int native_create(struct wpd_loop *l, const char *name, const struct wpd_backend *bk,
			 struct wpd_native *n, struct mcp_backend **out)
{
	struct native_be *nb = calloc(1, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	nb->b.ops = &native_ops;
	nb->b.loop = l;
	nb->b.kind = "native";
	snprintf(nb->b.name, sizeof(nb->b.name), "%s", name);
	nb->b.timeout_ms = bk->timeout_ms ? bk->timeout_ms : 300000;
	nb->n = n;
	/* What initialize answers at /mcp/NAME: a tool service has tools. */
	nb->b.init = json_pack("{s:s,s:{s:{s:b}},s:{s:s,s:s}}", "protocolVersion",
			       MCP_VERSION_LATEST, "capabilities", "tools", "listChanged", 0,
			       "serverInfo", "name", name, "version", "wirepath-native");
	if (!nb->b.init) {
		free(nb);
		return -ENOMEM;
	}
	*out = &nb->b;
	return 0;
}

static int backend_up(const struct mcp_backend *b)
{
	if (!b)
		return 0;
	if (b->ops == &native_ops)
		return wpd_native_up(((const struct native_be *)b)->n);
	return b->up;
}

/* ---- servers, sessions ---- */

struct mcp_server {
	char name[WPD_NAME_MAX];
	char prefix[WPD_NAME_MAX];
	size_t plen;
	const char *kind;
	struct mcp_backend *b;
	struct wpd_native *native;
};

struct mcp_session {
	char id[2 * MCP_SID_BYTES + 1];
	char server[WPD_NAME_MAX]; /* "" = the /mcp aggregate */
	char version[16];
	struct wpd_mcp *m;
	struct wpd_timer idle;
	uint32_t refs; /* client calls in flight */
	int dead;      /* deleted or expired: freed at the last ref */
	struct mcp_ccall *calls;
	struct mcp_session *hnext;
};

struct wpd_mcp {
	struct wpd_loop *l;
	const struct wpd_config *c;
	struct mcp_server *srv;
	uint32_t nsrv;
	struct mcp_session **htab;
	uint32_t hsize, nsessions;
	uint64_t sessions_total, sessions_refused, sessions_expired;
	uint64_t posts, rpc_errors, aborts;
	struct mcp_req *reqs;
	struct mcp_ratelimit rl;
};

struct mcp_req {
	struct wpd_mcp *m;
	struct wpd_ex *ex;
	struct mcp_session *s; /* NULL for initialize */
	const struct wpd_tenant *tenant;
	int batch, sse_ok, sse, dispatching;
	int busy;   /* initialize refused: the session table is full */
	int modern; /* 2026-07-28: no session, resultType, 404 for -32601 */
	uint32_t pending;
	json_t *out; /* batch: array of answers; single: the answer */
	char hdrs[160];
	struct mcp_ccall *calls;
	struct mcp_req *next, *prev;
};

enum ccall_kind { CC_LIST = 1, CC_CALL = 2, CC_PASS = 3 };

struct mcp_part {
	struct mcp_bcall bc;
	struct mcp_ccall *cc;
	char prefix[WPD_NAME_MAX];
	int pages;
	int live; /* a backend call in flight */
};

struct mcp_ccall {
	struct mcp_req *r;
	json_t *id;
	enum ccall_kind kind;
	int filter_list; /* pass-through tools/list: filter by the tenant */
	char prefix[WPD_NAME_MAX];
	struct mcp_part *parts;
	uint32_t nparts, outstanding;
	json_t *tools;                   /* CC_LIST: merged */
	struct mcp_ccall *rnext, *rprev; /* in r->calls */
	struct mcp_ccall *snext, *sprev; /* in s->calls */
};

static struct mcp_server *server_find(struct wpd_mcp *m, const char *name)
{
	for (uint32_t i = 0; i < m->nsrv; i++)
		if (!strcmp(m->srv[i].name, name))
			return &m->srv[i];
	return NULL;
}

static uint32_t sid_hash(const struct wpd_mcp *m, const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h & (m->hsize - 1);
}

static void sess_unhash(struct mcp_session *s)
{
	struct wpd_mcp *m = s->m;
	struct mcp_session **pp = &m->htab[sid_hash(m, s->id)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			m->nsessions--;
			return;
		}
}

static void sess_drop(struct mcp_session *s)
{
	if (s->dead)
		return;
	s->dead = 1;
	sess_unhash(s);
	wpd_timer_cancel(s->m->l, &s->idle);
	if (!s->refs)
		free(s);
}

static void sess_unref(struct mcp_session *s)
{
	if (--s->refs == 0 && s->dead)
		free(s);
}

static void sess_idle(void *arg);

/* (Re)start the idle clock: limits.mcp_session_idle_ms, 30 min by default. */
static void sess_touch(struct mcp_session *s)
{
	uint32_t ms = s->m->c->limits.mcp_session_idle_ms;

	wpd_timer_arm(s->m->l, &s->idle, (uint64_t)(ms ? ms : 1800000) * 1000000ull, sess_idle, s);
}

static void sess_idle(void *arg)
{
	struct mcp_session *s = arg;

	if (s->refs) {
		/* A call still running keeps its session: look again later. */
		sess_touch(s);
		return;
	}
	s->m->sessions_expired++;
	sess_drop(s);
}

static struct mcp_session *sess_find(struct wpd_mcp *m, const char *id)
{
	struct mcp_session *s;

	if (strlen(id) != 2 * MCP_SID_BYTES)
		return NULL;
	for (s = m->htab[sid_hash(m, id)]; s; s = s->hnext)
		if (!strcmp(s->id, id))
			return s;
	return NULL;
}

static int sess_new(struct wpd_mcp *m, const char *server, const char *version,
		    struct mcp_session **out)
{
	uint32_t max = m->c->limits.mcp_sessions_max ? m->c->limits.mcp_sessions_max : 10000;
	uint8_t rnd[MCP_SID_BYTES];
	struct mcp_session *s;
	uint32_t h;

	if (m->nsessions >= max) {
		m->sessions_refused++;
		return -EBUSY;
	}
	/* getrandom: the kernel's CSPRNG; a session id is a bearer secret. */
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (int i = 0; i < MCP_SID_BYTES; i++)
		snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(s->server, sizeof(s->server), "%s", server ? server : "");
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->m = m;
	h = sid_hash(m, s->id);
	s->hnext = m->htab[h];
	m->htab[h] = s;
	m->nsessions++;
	m->sessions_total++;
	sess_touch(s);
	*out = s;
	return 0;
}

/* ---- answering ---- */

static void http_fail(struct wpd_ex *ex, int status, int code, const char *hdrs, const char *fmt,
		      ...) __attribute__((format(printf, 5, 6)));

/* An HTTP-level refusal: the status, and a JSON-RPC error (id null) as the
 * body, which is what MCP clients print. */
static void http_vfail(struct wpd_ex *ex, int status, const char *hdrs, const json_t *id, int code,
		       const json_t *data, const char *fmt, va_list ap)
{
	char msg[512];
	json_t *e;
	char *body;
	size_t len = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	e = wpd_rpc_error(id, code, msg, data);
	body = e ? wpd_rpc_dump(e, &len) : NULL;
	wpd_ex_reply(ex, status, "application/json", hdrs, body ? body : "", body ? len : 0);
	free(body);
	json_decref(e);
}

static void http_fail(struct wpd_ex *ex, int status, int code, const char *hdrs, const char *fmt,
		      ...)
{
	va_list ap;

	va_start(ap, fmt);
	http_vfail(ex, status, hdrs, NULL, code, NULL, fmt, ap);
	va_end(ap);
}

static void req_free(struct mcp_req *r)
{
	struct wpd_mcp *m = r->m;

	if (r->prev)
		r->prev->next = r->next;
	else if (m->reqs == r)
		m->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	json_decref(r->out);
	free(r);
}

static void sse_event(struct mcp_req *r, const json_t *msg)
{
	size_t len;
	char *text = wpd_rpc_dump(msg, &len);
	struct wpd_buf b = { 0 };

	if (!text)
		return;
	wpd_buf_adds(&b, "event: message\ndata: ");
	wpd_buf_add(&b, text, len);
	wpd_buf_adds(&b, "\n\n");
	free(text);
	if (!b.oom)
		wpd_ex_stream_send(r->ex, b.p, b.len);
	wpd_buf_free(&b);
}

/* Every call of r is answered: send the answer and end the exchange. */
static void req_complete(struct mcp_req *r)
{
	char *body = NULL;
	size_t len = 0;

	if (r->sse) {
		if (r->out)
			sse_event(r, r->out);
		wpd_ex_end(r->ex);
	} else if (!r->out || (r->batch && !json_array_size(r->out))) {
		/* Only notifications and responses. */
		wpd_ex_reply(r->ex, 202, NULL, r->hdrs[0] ? r->hdrs : NULL, NULL, 0);
	} else {
		/* 2026-07-28: a method the server does not implement is a 404. */
		int status = r->modern && json_integer_value(json_object_get(
						  json_object_get(r->out, "error"), "code")) ==
						     WPD_RPC_METHOD_NOT_FOUND
				     ? 404
				     : 200;

		body = wpd_rpc_dump(r->out, &len);
		if (body)
			wpd_ex_reply(r->ex, status, "application/json", r->hdrs[0] ? r->hdrs : NULL,
				     body, len);
		else
			http_fail(r->ex, 500, WPD_RPC_INTERNAL_ERROR, NULL, "out of memory");
		free(body);
	}
	req_free(r);
}

/* Add one answer to r (taking resp's reference). */
static void req_answer(struct mcp_req *r, json_t *resp)
{
	if (!resp)
		resp = wpd_rpc_error(NULL, WPD_RPC_INTERNAL_ERROR, "out of memory", NULL);
	if (!resp)
		return;
	if (json_object_get(resp, "error"))
		r->m->rpc_errors++;
	if (r->batch) {
		if (!r->out)
			r->out = json_array();
		json_array_append_new(r->out, resp);
	} else {
		json_decref(r->out);
		r->out = resp;
	}
}

/* 2026-07-28 results carry resultType; a backend speaking an earlier
 * revision sends none, and its result is complete. */
static void result_complete(json_t *resp)
{
	json_t *res = json_object_get(resp, "result"), *c;

	if (!json_is_object(res) || json_object_get(res, "resultType"))
		return;
	c = json_copy(res); /* the result may be shared with the backend's */
	if (c && !json_object_set_new(c, "resultType", json_string("complete")))
		json_object_set_new(resp, "result", c);
	else
		json_decref(c);
}

static void ccall_free(struct mcp_ccall *cc)
{
	struct mcp_req *r = cc->r;

	if (cc->rprev)
		cc->rprev->rnext = cc->rnext;
	else
		r->calls = cc->rnext;
	if (cc->rnext)
		cc->rnext->rprev = cc->rprev;
	if (r->s) {
		if (cc->sprev)
			cc->sprev->snext = cc->snext;
		else if (r->s->calls == cc)
			r->s->calls = cc->snext;
		if (cc->snext)
			cc->snext->sprev = cc->sprev;
		sess_unref(r->s);
	}
	for (uint32_t i = 0; i < cc->nparts; i++)
		json_decref(cc->parts[i].bc.token);
	free(cc->parts);
	json_decref(cc->tools);
	json_decref(cc->id);
	free(cc);
}

/* The call is answered with resp (borrowed; its id is replaced by the
 * client's). Completes the POST when it was the last. */
static void ccall_finish(struct mcp_ccall *cc, json_t *resp)
{
	struct mcp_req *r = cc->r;
	json_t *out = json_copy(resp);

	if (out && json_object_set(out, "id", cc->id ? cc->id : json_null())) {
		json_decref(out);
		out = NULL;
	}
	if (out && r->modern)
		result_complete(out);
	req_answer(r, out);
	ccall_free(cc);
	if (--r->pending == 0 && !r->dispatching)
		req_complete(r);
}

static void ccall_fail(struct mcp_ccall *cc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ccall_fail(struct mcp_ccall *cc, int code, const char *fmt, ...)
{
	char msg[512];
	json_t *e;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = wpd_rpc_error(NULL, code, msg, NULL);
	ccall_finish(cc, e);
	json_decref(e);
}

/* Cancel what cc still has in flight (the client went away, or cancelled). */
static void ccall_cancel_parts(struct mcp_ccall *cc, const char *reason)
{
	for (uint32_t i = 0; i < cc->nparts; i++) {
		struct mcp_part *p = &cc->parts[i];

		if (p->live && p->bc.b) {
			p->live = 0;
			p->bc.b->ops->cancel(p->bc.b, &p->bc, reason);
		}
	}
}

static int tool_ok(const struct mcp_req *r, const char *prefix, const char *name)
{
	char full[2 * WPD_NAME_MAX + WP_SVC_TOOL_NAME_MAX];

	if (!r->tenant)
		return 1;
	snprintf(full, sizeof(full), "%s%s", prefix, name);
	return wpd_tenant_tool_ok(r->tenant, full);
}

/* Keep the tools r's tenant may use, renamed with prefix when rename. */
static void tools_merge(struct mcp_ccall *cc, json_t *dst, json_t *tools, const char *prefix,
			int rename)
{
	size_t i;
	json_t *t;

	json_array_foreach(tools, i, t)
	{
		json_t *name = json_object_get(t, "name"), *c;
		char full[2 * WPD_NAME_MAX + WP_SVC_TOOL_NAME_MAX];

		if (!json_is_object(t) || !json_is_string(name) ||
		    json_string_length(name) > WP_SVC_TOOL_NAME_MAX)
			continue;
		if (!tool_ok(cc->r, prefix, json_string_value(name)))
			continue;
		c = json_copy(t);
		if (!c)
			continue;
		if (rename) {
			snprintf(full, sizeof(full), "%s%s", prefix, json_string_value(name));
			json_object_set_new(c, "name", json_string(full));
		}
		json_array_append_new(dst, c);
	}
}

static void part_note(struct mcp_bcall *bc, json_t *note)
{
	struct mcp_part *p = (struct mcp_part *)bc;
	struct mcp_req *r = p->cc->r;

	if (r->batch || !r->sse_ok)
		return; /* progress needs a stream; a batch is answered whole */
	if (!r->sse) {
		char h[sizeof(r->hdrs) + 32];

		/* No buffering in a proxy between us and the client. */
		snprintf(h, sizeof(h), "%sX-Accel-Buffering: no\r\n", r->hdrs);
		if (wpd_ex_stream_begin(r->ex, 200, "text/event-stream", h) < 0)
			return;
		r->sse = 1;
	}
	sse_event(r, note);
}

static int list_page(struct mcp_part *p, const char *cursor);

static void list_part_done(struct mcp_bcall *bc, json_t *resp)
{
	struct mcp_part *p = (struct mcp_part *)bc;
	struct mcp_ccall *cc = p->cc;
	json_t *res = json_object_get(resp, "result");
	json_t *tools = json_object_get(res, "tools");
	json_t *next = json_object_get(res, "nextCursor");

	p->live = 0;
	if (json_is_array(tools))
		tools_merge(cc, cc->tools, tools, p->prefix, 1);
	else
		mcp_log(&cc->r->m->rl, WP_LOG_WARN,
			"%s: tools/list failed or had no tools array; left out", bc->b->name);
	if (json_is_string(next) && ++p->pages < MCP_LIST_PAGES &&
	    list_page(p, json_string_value(next)) == 0)
		return;
	if (--cc->outstanding == 0) {
		json_t *ok = wpd_rpc_response(NULL, json_pack("{s:O}", "tools", cc->tools));

		ccall_finish(cc, ok);
		json_decref(ok);
	}
}

static int list_page(struct mcp_part *p, const char *cursor)
{
	json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : NULL;
	int ret;

	p->bc.on_done = list_part_done;
	p->bc.on_note = NULL;
	ret = p->bc.b->ops->call(p->bc.b, "tools/list", params, &p->bc);
	json_decref(params);
	p->live = ret == 0;
	return ret;
}

static void one_part_done(struct mcp_bcall *bc, json_t *resp)
{
	struct mcp_part *p = (struct mcp_part *)bc;
	struct mcp_ccall *cc = p->cc;
	json_t *res = json_object_get(resp, "result");

	p->live = 0;
	if (cc->filter_list && json_is_array(json_object_get(res, "tools"))) {
		json_t *copy = json_copy(resp), *r2 = json_copy(res), *kept = json_array();

		if (copy && r2 && kept) {
			tools_merge(cc, kept, json_object_get(res, "tools"), cc->prefix, 0);
			json_object_set_new(r2, "tools", kept);
			json_object_set_new(copy, "result", r2);
			ccall_finish(cc, copy);
			json_decref(copy);
			return;
		}
		json_decref(copy);
		json_decref(r2);
		json_decref(kept);
	}
	ccall_finish(cc, resp);
}

static struct mcp_ccall *ccall_new(struct mcp_req *r, json_t *id, uint32_t nparts)
{
	struct mcp_ccall *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return NULL;
	if (nparts) {
		cc->parts = calloc(nparts, sizeof(*cc->parts));
		if (!cc->parts) {
			free(cc);
			return NULL;
		}
	}
	cc->r = r;
	cc->id = json_deep_copy(id);
	cc->rnext = r->calls;
	if (r->calls)
		r->calls->rprev = cc;
	r->calls = cc;
	if (r->s) {
		cc->snext = r->s->calls;
		if (r->s->calls)
			r->s->calls->sprev = cc;
		r->s->calls = cc;
		r->s->refs++;
	}
	r->pending++;
	return cc;
}

static void part_init(struct mcp_part *p, struct mcp_ccall *cc, struct mcp_backend *b,
		      const char *prefix)
{
	p->cc = cc;
	p->bc.b = b;
	p->bc.arg = cc;
	snprintf(p->prefix, sizeof(p->prefix), "%s", prefix);
}

static const char *call_errstr(int ret)
{
	switch (ret) {
	case -ENOTCONN:
		return "is not available (starting or restarting)";
	case -ENOBUFS:
		return "is not reading its input (queue full)";
	case -ENOMEM:
		return "could not take the call (out of memory)";
	default:
		return "refused the call";
	}
}

/* /mcp tools/list: every server's tools, prefixed, filtered. */
static void agg_tools_list(struct mcp_req *r, const struct wpd_rpc *rpc)
{
	struct wpd_mcp *m = r->m;
	struct mcp_ccall *cc = ccall_new(r, rpc->id, m->nsrv);
	json_t *empty;

	if (!cc) {
		req_answer(r,
			   wpd_rpc_error(rpc->id, WPD_RPC_INTERNAL_ERROR, "out of memory", NULL));
		return;
	}
	cc->kind = CC_LIST;
	cc->tools = json_array();
	cc->outstanding = 1; /* held while starting the parts */
	for (uint32_t i = 0; i < m->nsrv; i++) {
		struct mcp_part *p = &cc->parts[cc->nparts];

		if (!m->srv[i].b || !backend_up(m->srv[i].b))
			continue;
		part_init(p, cc, m->srv[i].b, m->srv[i].prefix);
		cc->nparts++;
		cc->outstanding++;
		if (list_page(p, NULL) < 0)
			cc->outstanding--;
	}
	if (--cc->outstanding == 0) {
		empty = wpd_rpc_response(NULL, json_pack("{s:O}", "tools", cc->tools));
		ccall_finish(cc, empty);
		json_decref(empty);
	}
}

/* Start one backend call for a client request: method and params go to b
 * as they are (id and progress token remapped by the backend). */
static void start_one(struct mcp_req *r, const struct wpd_rpc *rpc, struct mcp_server *sv,
		      const char *method, json_t *params, enum ccall_kind kind, int filter)
{
	struct mcp_ccall *cc = ccall_new(r, rpc->id, 1);
	json_t *tok = wpd_rpc_meta(rpc, "progressToken");
	struct mcp_part *p;
	int ret;

	if (!cc) {
		req_answer(r,
			   wpd_rpc_error(rpc->id, WPD_RPC_INTERNAL_ERROR, "out of memory", NULL));
		return;
	}
	cc->kind = kind;
	cc->filter_list = filter;
	snprintf(cc->prefix, sizeof(cc->prefix), "%s", sv->prefix);
	if (!sv->b) {
		ccall_fail(cc, WPD_RPC_BACKEND_ERROR, "MCP server %s has no backend", sv->name);
		return;
	}
	p = &cc->parts[0];
	cc->nparts = 1;
	part_init(p, cc, sv->b, sv->prefix);
	p->bc.on_done = one_part_done;
	p->bc.on_note = part_note;
	p->bc.token = tok && (json_is_string(tok) || json_is_integer(tok)) ? json_incref(tok)
									   : NULL;
	ret = sv->b->ops->call(sv->b, method, params, &p->bc);
	if (ret == -EOPNOTSUPP) {
		ccall_fail(cc, WPD_RPC_METHOD_NOT_FOUND, "Method not found: %s (%s server %s)",
			   method, sv->b->kind, sv->name);
		return;
	}
	if (ret == -EINVAL) {
		ccall_fail(cc, WPD_RPC_INVALID_PARAMS, "Invalid params for %s", method);
		return;
	}
	if (ret < 0) {
		ccall_fail(cc, WPD_RPC_BACKEND_ERROR, "MCP server %s %s", sv->name,
			   call_errstr(ret));
		return;
	}
	p->live = 1;
}

/* The server owning a prefixed tool name: the longest matching prefix. */
static struct mcp_server *tool_owner(struct wpd_mcp *m, const char *name)
{
	struct mcp_server *best = NULL;

	for (uint32_t i = 0; i < m->nsrv; i++) {
		struct mcp_server *sv = &m->srv[i];

		if (strlen(name) > sv->plen && !strncmp(name, sv->prefix, sv->plen) &&
		    (!best || sv->plen > best->plen))
			best = sv;
	}
	return best;
}

static const char *tenant_label(const struct mcp_req *r)
{
	return r->tenant ? wpd_tenant_name(r->tenant) : "-";
}

static void agg_tools_call(struct mcp_req *r, const struct wpd_rpc *rpc)
{
	json_t *name = json_object_get(rpc->params, "name");
	struct mcp_server *sv;
	json_t *params;
	const char *n;

	if (!json_is_object(rpc->params) || !json_is_string(name)) {
		req_answer(r, wpd_rpc_error(rpc->id, WPD_RPC_INVALID_PARAMS,
					    "tools/call needs params.name (a string)", NULL));
		return;
	}
	n = json_string_value(name);
	sv = tool_owner(r->m, n);
	if (!sv) {
		req_answer(r, wpd_rpc_errorf(rpc->id, WPD_RPC_INVALID_PARAMS,
					     "Unknown tool: %.200s", n));
		return;
	}
	if (r->tenant && !wpd_tenant_tool_ok(r->tenant, n)) {
		req_answer(r, wpd_rpc_errorf(rpc->id, WPD_RPC_INVALID_PARAMS,
					     "Tool %.200s is not allowed for tenant %s", n,
					     tenant_label(r)));
		return;
	}
	params = json_copy(rpc->params);
	if (!params || json_object_set_new(params, "name", json_string(n + sv->plen))) {
		json_decref(params);
		req_answer(r,
			   wpd_rpc_error(rpc->id, WPD_RPC_INTERNAL_ERROR, "out of memory", NULL));
		return;
	}
	start_one(r, rpc, sv, "tools/call", params, CC_CALL, 0);
	json_decref(params);
}

/* notifications/cancelled: the call it names (this session's) ends now. */
static void client_cancelled(struct mcp_req *r, const struct wpd_rpc *rpc)
{
	json_t *rid = json_object_get(rpc->params, "requestId");
	const char *why = json_string_value(json_object_get(rpc->params, "reason"));

	if (!r->s || !rid)
		return;
	for (struct mcp_ccall *cc = r->s->calls; cc; cc = cc->snext) {
		if (cc->r == r || !cc->id || !json_equal(cc->id, rid))
			continue;
		ccall_cancel_parts(cc, why ? why : "cancelled by the client");
		ccall_fail(cc, WPD_RPC_CANCELLED, "Request cancelled");
		return;
	}
}

static void initialize(struct mcp_req *r, const struct wpd_rpc *rpc, struct mcp_server *sv)
{
	json_t *pv = json_object_get(rpc->params, "protocolVersion");
	const char *v;
	json_t *res;
	struct mcp_session *s;
	int ret;

	if (!json_is_object(rpc->params) || !json_is_string(pv)) {
		req_answer(r, wpd_rpc_error(rpc->id, WPD_RPC_INVALID_PARAMS,
					    "initialize needs params.protocolVersion", NULL));
		return;
	}
	/* The client's revision if we speak it, else our latest (the client
	 * then decides whether it can go on). */
	v = mcp_version_ok(json_string_value(pv)) ? json_string_value(pv) : MCP_VERSION_LATEST;
	if (sv) {
		if (!sv->b || !sv->b->init || !backend_up(sv->b)) {
			req_answer(r, wpd_rpc_errorf(rpc->id, WPD_RPC_BACKEND_ERROR,
						     "MCP server %s is not available (starting or "
						     "restarting); try again",
						     sv->name));
			return;
		}
		/* The backend's own answer (capabilities, serverInfo,
		 * instructions), with the revision negotiated here. */
		res = json_copy(sv->b->init);
		if (res)
			json_object_set_new(res, "protocolVersion", json_string(v));
	} else {
		res = json_pack("{s:s,s:{s:{s:b}},s:{s:s,s:s}}", "protocolVersion", v,
				"capabilities", "tools", "listChanged", 0, "serverInfo", "name",
				"wirepathd", "version", "0.1");
	}
	if (!res) {
		req_answer(r,
			   wpd_rpc_error(rpc->id, WPD_RPC_INTERNAL_ERROR, "out of memory", NULL));
		return;
	}
	ret = sess_new(r->m, sv ? sv->name : NULL, v, &s);
	if (ret == -EBUSY) {
		json_decref(res);
		r->busy = 1; /* the caller answers 503 */
		return;
	}
	if (ret < 0) {
		json_decref(res);
		req_answer(r, wpd_rpc_error(rpc->id, WPD_RPC_INTERNAL_ERROR,
					    "could not create a session", NULL));
		return;
	}
	snprintf(r->hdrs, sizeof(r->hdrs), "Mcp-Session-Id: %s\r\n", s->id);
	req_answer(r, wpd_rpc_response(rpc->id, res));
}

/* One message of a POST (not initialize). */
static void dispatch(struct mcp_req *r, json_t *msg, struct mcp_server *sv)
{
	struct wpd_rpc rpc;

	switch (wpd_rpc_classify(msg, &rpc)) {
	case WPD_RPC_INVALID:
		req_answer(r, wpd_rpc_error(rpc.id, rpc.code, rpc.why, NULL));
		return;
	case WPD_RPC_RESPONSE:
	case WPD_RPC_ERROR:
		/* Answers to server requests: the daemon sends none to
		 * clients (docs/daemon.md), so there is nothing to match. */
		return;
	case WPD_RPC_NOTIFICATION:
		if (!strcmp(rpc.method, "notifications/cancelled"))
			client_cancelled(r, &rpc);
		else if (sv && sv->b && strcmp(rpc.method, "notifications/initialized"))
			sv->b->ops->notify(sv->b, rpc.method, rpc.params);
		return;
	case WPD_RPC_REQUEST:
		break;
	}
	if (!strcmp(rpc.method, "initialize")) {
		req_answer(r, wpd_rpc_error(rpc.id, WPD_RPC_INVALID_REQUEST,
					    "initialize must be sent alone, without Mcp-Session-Id",
					    NULL));
		return;
	}
	if (!sv) {
		if (!strcmp(rpc.method, "ping"))
			req_answer(r, wpd_rpc_response(rpc.id, NULL));
		else if (!strcmp(rpc.method, "tools/list"))
			agg_tools_list(r, &rpc);
		else if (!strcmp(rpc.method, "tools/call"))
			agg_tools_call(r, &rpc);
		else
			req_answer(r, wpd_rpc_errorf(rpc.id, WPD_RPC_METHOD_NOT_FOUND,
						     "Method not found: %.100s", rpc.method));
		return;
	}
	/* /mcp/NAME: everything passes through; the allow-list still holds. */
	if (!strcmp(rpc.method, "tools/call")) {
		json_t *name = json_object_get(rpc.params, "name");

		if (!json_is_string(name)) {
			req_answer(r,
				   wpd_rpc_error(rpc.id, WPD_RPC_INVALID_PARAMS,
						 "tools/call needs params.name (a string)", NULL));
			return;
		}
		if (!tool_ok(r, sv->prefix, json_string_value(name))) {
			req_answer(r, wpd_rpc_errorf(rpc.id, WPD_RPC_INVALID_PARAMS,
						     "Tool %s%.200s is not allowed for tenant %s",
						     sv->prefix, json_string_value(name),
						     tenant_label(r)));
			return;
		}
	}
	start_one(r, &rpc, sv, rpc.method, rpc.params, CC_PASS,
		  r->tenant && !strcmp(rpc.method, "tools/list"));
}

static void req_abort(void *arg)
{
	struct mcp_req *r = arg;

	r->m->aborts++;
	while (r->calls) {
		struct mcp_ccall *cc = r->calls;

		ccall_cancel_parts(cc, "client disconnected");
		ccall_free(cc);
	}
	req_free(r);
}

/* ---- HTTP ---- */

static int is_localhost_origin(const char *o)
{
	const char *h = strstr(o, "://");
	size_t n;

	if (!h || (strncasecmp(o, "http://", 7) && strncasecmp(o, "https://", 8)))
		return 0;
	h += 3;
	n = strcspn(h, "/");
	if (h[n])
		return 0; /* an origin has no path */
	if (!strncasecmp(h, "[::1]", 5))
		return h[5] == 0 || h[5] == ':';
	if (!strncasecmp(h, "localhost", 9))
		return h[9] == 0 || h[9] == ':';
	if (!strncmp(h, "127.0.0.1", 9))
		return h[9] == 0 || h[9] == ':';
	return 0;
}

static int origin_ok(const struct wpd_mcp *m, const char *o)
{
	if (!o)
		return 1; /* not a browser: nothing to rebind */
	if (!m->c->mcp_origins)
		return is_localhost_origin(o);
	for (char **p = m->c->mcp_origins; *p; p++)
		if (!strcasecmp(*p, o))
			return 1;
	return 0;
}

/* Does the Accept header allow type ("application/json")? */
static int accepts(const char *accept, const char *type)
{
	const char *slash = strchr(type, '/');
	size_t major = (size_t)(slash - type);
	const char *p = accept;

	if (!accept)
		return 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *e = p + n, *semi;
		size_t len;

		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		semi = memchr(p, ';', (size_t)(e - p));
		len = (size_t)((semi ? semi : e) - p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if ((len == strlen(type) && !strncasecmp(p, type, len)) ||
		    (len == 3 && !strncmp(p, "*/*", 3)) ||
		    (len == major + 2 && !strncasecmp(p, type, major) &&
		     !strncmp(p + major, "/*", 2)))
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

static int is_json_ctype(const char *ct)
{
	size_t n;

	if (!ct)
		return 0;
	n = strcspn(ct, "; \t");
	return n == 16 && !strncasecmp(ct, "application/json", 16);
}

/*
 * The session a request names (Mcp-Session-Id), checked against the route
 * and the MCP-Protocol-Version header. Answers the refusal itself and
 * returns NULL: 400 without the header or on a version mismatch, 404 for a
 * session unknown, expired, from another route, or whose server is gone.
 */
static struct mcp_session *session_of(struct wpd_mcp *m, struct wpd_ex *ex, const char *server)
{
	const char *sid = wpd_ex_header(ex, "Mcp-Session-Id");
	const char *ver = wpd_ex_header(ex, "MCP-Protocol-Version");
	struct mcp_session *s;

	if (!sid) {
		http_fail(ex, 400, WPD_RPC_INVALID_REQUEST, NULL,
			  "Bad Request: Mcp-Session-Id header is required (send initialize first)");
		return NULL;
	}
	s = sess_find(m, sid);
	if (!s || strcmp(s->server, server ? server : "")) {
		http_fail(ex, 404, WPD_RPC_INVALID_REQUEST, NULL,
			  "Session not found (unknown or expired): send initialize again");
		return NULL;
	}
	if (s->server[0] && !server_find(m, s->server)) {
		sess_drop(s);
		http_fail(ex, 404, WPD_RPC_INVALID_REQUEST, NULL,
			  "Session not found (its server was removed): send initialize again");
		return NULL;
	}
	if (ver && strcmp(ver, s->version)) {
		http_fail(ex, 400, WPD_RPC_INVALID_REQUEST, NULL,
			  "Bad Request: MCP-Protocol-Version %.40s is not the session's %s", ver,
			  s->version);
		return NULL;
	}
	sess_touch(s);
	return s;
}

/* What every POST checks before its JSON-RPC: Accept, Content-Type, and a
 * body that parses. Returns the parsed body, or NULL when it answered. */
static json_t *post_body(struct wpd_mcp *m, struct wpd_ex *ex)
{
	const char *accept = wpd_ex_header(ex, "Accept");
	const char *why, *body;
	json_t *root;
	size_t len;

	m->posts++;
	if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream")) {
		http_fail(
			ex, 406, WPD_RPC_INVALID_REQUEST, NULL,
			"Not Acceptable: Accept must list application/json and text/event-stream");
		return NULL;
	}
	if (!is_json_ctype(wpd_ex_header(ex, "Content-Type"))) {
		http_fail(ex, 415, WPD_RPC_INVALID_REQUEST, NULL,
			  "Unsupported Media Type: Content-Type must be application/json");
		return NULL;
	}
	body = wpd_ex_body(ex, &len);
	root = wpd_rpc_load(body, len, &why);
	if (!root)
		http_fail(ex, 400, WPD_RPC_PARSE_ERROR, NULL, "Parse error: %.200s", why);
	return root;
}

static void handle_post(struct wpd_mcp *m, struct wpd_ex *ex, struct mcp_server *sv)
{
	const char *accept = wpd_ex_header(ex, "Accept");
	const char *ver = wpd_ex_header(ex, "MCP-Protocol-Version");
	struct wpd_rpc first;
	struct mcp_req *r;
	json_t *root;

	root = post_body(m, ex);
	if (!root)
		return;
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(root);
		http_fail(ex, 500, WPD_RPC_INTERNAL_ERROR, NULL, "out of memory");
		return;
	}
	r->m = m;
	r->ex = ex;
	r->tenant = wpd_ex_tenant(ex);
	r->sse_ok = accepts(accept, "text/event-stream");
	r->batch = json_is_array(root);
	r->next = m->reqs;
	if (m->reqs)
		m->reqs->prev = r;
	m->reqs = r;

	/* initialize: alone, no session yet. */
	if (!r->batch && wpd_rpc_classify(root, &first) == WPD_RPC_REQUEST &&
	    !strcmp(first.method, "initialize")) {
		initialize(r, &first, sv);
		json_decref(root);
		if (r->busy) {
			char h[64];

			req_free(r);
			snprintf(h, sizeof(h), "Retry-After: %d\r\n", MCP_BUSY_RETRY_S);
			http_fail(ex, 503, WPD_RPC_BACKEND_ERROR, h,
				  "Service Unavailable: too many MCP sessions");
			return;
		}
		req_complete(r);
		return;
	}
	r->s = session_of(m, ex, sv ? sv->name : NULL);
	if (!r->s) {
		json_decref(root);
		req_free(r);
		return;
	}
	(void)ver; /* checked against the session by session_of */
	if (r->batch && (strcmp(r->s->version, "2025-03-26") || !json_array_size(root))) {
		const char *msg = json_array_size(root)
					  ? "Invalid Request: batches are not part of this "
					    "protocol revision (only 2025-03-26)"
					  : "Invalid Request: an empty batch";

		json_decref(root);
		req_free(r);
		http_fail(ex, 400, WPD_RPC_INVALID_REQUEST, NULL, "%s", msg);
		return;
	}
	if (!r->batch && wpd_rpc_classify(root, &first) == WPD_RPC_INVALID) {
		/* Not a JSON-RPC message: 400, with its id when it had one. */
		json_t *e = wpd_rpc_error(first.id, first.code, first.why, NULL);
		size_t n = 0;
		char *t = e ? wpd_rpc_dump(e, &n) : NULL;

		json_decref(root);
		req_free(r);
		wpd_ex_reply(ex, 400, "application/json", NULL, t ? t : "", t ? n : 0);
		free(t);
		json_decref(e);
		return;
	}
	r->dispatching = 1;
	if (r->batch) {
		size_t i;
		json_t *v;

		json_array_foreach(root, i, v) dispatch(r, v, sv);
	} else {
		dispatch(r, root, sv);
	}
	json_decref(root);
	r->dispatching = 0;
	if (r->pending == 0) {
		req_complete(r);
		return;
	}
	wpd_ex_on_abort(ex, req_abort, r);
}

static void handle_delete(struct wpd_mcp *m, struct wpd_ex *ex, struct mcp_server *sv)
{
	struct mcp_session *s = session_of(m, ex, sv ? sv->name : NULL);

	if (!s)
		return;
	sess_drop(s);
	wpd_ex_reply(ex, 200, NULL, NULL, NULL, 0);
}

/* ---- 2026-07-28: stateless requests ---- */

#define MCP_HEADER_MISMATCH -32020
#define MCP_UNSUPPORTED_VERSION -32022
#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CAPS "io.modelcontextprotocol/clientCapabilities"

/* A refusal with a JSON-RPC error that has the request's id. */
static void http_fail_id(struct wpd_ex *ex, int status, const json_t *id, int code,
			 const json_t *data, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void http_fail_id(struct wpd_ex *ex, int status, const json_t *id, int code,
			 const json_t *data, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	http_vfail(ex, status, NULL, id, code, data, fmt, ap);
	va_end(ap);
}

static json_t *all_versions(void)
{
	json_t *a = json_array();

	json_array_append_new(a, json_string(MCP_VERSION_STATELESS));
	for (int i = 0; mcp_versions[i]; i++)
		json_array_append_new(a, json_string(mcp_versions[i]));
	return a;
}

/* 400 with UnsupportedProtocolVersionError (its data lists what we speak;
 * clients of earlier revisions only look at the status). */
static void unsupported_version(struct wpd_ex *ex, const json_t *id, const char *ver)
{
	json_t *data = json_pack("{s:o,s:s}", "supported", all_versions(), "requested", ver);

	http_fail_id(ex, 400, id, MCP_UNSUPPORTED_VERSION, data,
		     "Unsupported protocol version: %.40s", ver);
	json_decref(data);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* An Mcp-Name value as the body has it: plain, or "=?base64?...?=".
 * Returns 0, or -1 when the encoding is broken or too long for out. */
static int header_value(const char *h, char *out, size_t cap)
{
	size_t n = strlen(h), o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n < 11 || strncmp(h, "=?base64?", 9) || strcmp(h + n - 2, "?=")) {
		if (n >= cap)
			return -1;
		memcpy(out, h, n + 1);
		return 0;
	}
	for (size_t i = 9; i < n - 2; i++) {
		int v = b64val((unsigned char)h[i]);

		if (h[i] == '=')
			break;
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = 0;
	return memchr(out, 0, o) ? -1 : 0;
}

static void discover(struct mcp_req *r, const struct wpd_rpc *rpc, struct mcp_server *sv)
{
	json_t *res;

	if (sv && (!sv->b || !sv->b->init || !backend_up(sv->b))) {
		req_answer(r,
			   wpd_rpc_errorf(rpc->id, WPD_RPC_BACKEND_ERROR,
					  "MCP server %s is not available (starting or restarting)",
					  sv->name));
		return;
	}
	if (sv) {
		json_t *in = sv->b->init, *instr = json_object_get(in, "instructions");

		res = json_pack("{s:s,s:o,s:O,s:{s:O}}", "resultType", "complete",
				"supportedVersions", all_versions(), "capabilities",
				json_object_get(in, "capabilities"), "_meta",
				"io.modelcontextprotocol/serverInfo",
				json_object_get(in, "serverInfo"));
		if (res && json_is_string(instr))
			json_object_set(res, "instructions", instr);
	} else {
		res = json_pack("{s:s,s:o,s:{s:{s:b}},s:{s:{s:s,s:s}}}", "resultType", "complete",
				"supportedVersions", all_versions(), "capabilities", "tools",
				"listChanged", 0, "_meta", "io.modelcontextprotocol/serverInfo",
				"name", "wirepathd", "version", "0.1");
	}
	req_answer(r, res ? wpd_rpc_response(rpc->id, res) : NULL);
}

/* Methods 2026-07-28 removed (sessions, ping, per-session logging and
 * subscriptions): not found, whatever the backend has. */
static int removed_method(const char *m)
{
	static const char *const gone[] = { "initialize",
					    "ping",
					    "logging/setLevel",
					    "resources/subscribe",
					    "resources/unsubscribe",
					    NULL };

	for (int i = 0; gone[i]; i++)
		if (!strcmp(m, gone[i]))
			return 1;
	return 0;
}

/*
 * The checks of the 2026-07-28 transport before a request is served: the
 * body's _meta carries the revision (equal to the header) and the
 * client's capabilities; Mcp-Method mirrors the method, Mcp-Name the tool,
 * prompt or resource. Answers the refusal and returns -1, or 0.
 */
static int stateless_checks(struct wpd_ex *ex, const struct wpd_rpc *rpc, const char *ver)
{
	const char *mh = wpd_ex_header(ex, "Mcp-Method"), *nh = wpd_ex_header(ex, "Mcp-Name");
	json_t *pv = wpd_rpc_meta(rpc, META_VERSION), *caps = wpd_rpc_meta(rpc, META_CAPS);
	json_t *name = NULL;
	char val[1024];

	if (!json_is_string(pv) || !json_is_object(caps)) {
		http_fail_id(ex, 400, rpc->id, WPD_RPC_INVALID_PARAMS, NULL,
			     "Invalid params: _meta needs " META_VERSION " and " META_CAPS);
		return -1;
	}
	if (strcmp(json_string_value(pv), ver)) {
		http_fail_id(ex, 400, rpc->id, MCP_HEADER_MISMATCH, NULL,
			     "Header mismatch: MCP-Protocol-Version %s, _meta %.40s", ver,
			     json_string_value(pv));
		return -1;
	}
	if (!mh || strcmp(mh, rpc->method)) {
		http_fail_id(ex, 400, rpc->id, MCP_HEADER_MISMATCH, NULL,
			     "Header mismatch: Mcp-Method %.60s, body method %.60s",
			     mh ? mh : "(none)", rpc->method);
		return -1;
	}
	if (!strcmp(rpc->method, "tools/call") || !strcmp(rpc->method, "prompts/get"))
		name = json_object_get(rpc->params, "name");
	else if (!strcmp(rpc->method, "resources/read"))
		name = json_object_get(rpc->params, "uri");
	if (name && json_is_string(name) &&
	    (!nh || header_value(nh, val, sizeof(val)) < 0 ||
	     strcmp(val, json_string_value(name)))) {
		http_fail_id(ex, 400, rpc->id, MCP_HEADER_MISMATCH, NULL,
			     "Header mismatch: Mcp-Name %.100s does not match the body's %.100s",
			     nh ? nh : "(none)", json_string_value(name));
		return -1;
	}
	return 0;
}

static void handle_stateless(struct wpd_mcp *m, struct wpd_ex *ex, struct mcp_server *sv,
			     const char *ver)
{
	struct wpd_rpc rpc;
	struct mcp_req *r;
	json_t *root;

	root = post_body(m, ex);
	if (!root)
		return;
	switch (wpd_rpc_classify(root, &rpc)) {
	case WPD_RPC_REQUEST:
		break;
	case WPD_RPC_NOTIFICATION:
		/* Nothing to act on: over HTTP, closing the stream cancels. */
		json_decref(root);
		wpd_ex_reply(ex, 202, NULL, NULL, NULL, 0);
		return;
	default:
		http_fail_id(ex, 400, rpc.id, WPD_RPC_INVALID_REQUEST, NULL, "Invalid Request: %s",
			     rpc.kind == WPD_RPC_INVALID ? rpc.why
			     : json_is_array(root)
				     ? "one message per POST in " MCP_VERSION_STATELESS
				     : "clients send no responses in " MCP_VERSION_STATELESS);
		json_decref(root);
		return;
	}
	if (stateless_checks(ex, &rpc, ver) < 0) {
		json_decref(root);
		return;
	}
	if (removed_method(rpc.method)) {
		http_fail_id(ex, 404, rpc.id, WPD_RPC_METHOD_NOT_FOUND, NULL,
			     "Method not found: %s (not part of " MCP_VERSION_STATELESS ")",
			     rpc.method);
		json_decref(root);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(root);
		http_fail(ex, 500, WPD_RPC_INTERNAL_ERROR, NULL, "out of memory");
		return;
	}
	r->m = m;
	r->ex = ex;
	r->tenant = wpd_ex_tenant(ex);
	r->sse_ok = 1;
	r->modern = 1;
	r->next = m->reqs;
	if (m->reqs)
		m->reqs->prev = r;
	m->reqs = r;
	r->dispatching = 1;
	if (!strcmp(rpc.method, "server/discover"))
		discover(r, &rpc, sv);
	else
		dispatch(r, root, sv);
	json_decref(root);
	r->dispatching = 0;
	if (r->pending == 0) {
		req_complete(r);
		return;
	}
	wpd_ex_on_abort(ex, req_abort, r);
}

void wpd_mcp_handle(struct wpd_mcp *m, struct wpd_ex *ex, const char *server)
{
	const char *method = wpd_ex_method(ex);
	const char *ver = wpd_ex_header(ex, "MCP-Protocol-Version");
	struct mcp_server *sv = NULL;

	wpd_ex_label(ex, "mcp", server);
	/* DNS rebinding: a browser page must not reach a local daemon. */
	if (!origin_ok(m, wpd_ex_header(ex, "Origin"))) {
		http_fail(ex, 403, WPD_RPC_INVALID_REQUEST, NULL, "Forbidden: Origin %.100s",
			  wpd_ex_header(ex, "Origin"));
		return;
	}
	if (server && !(sv = server_find(m, server))) {
		http_fail(ex, 404, WPD_RPC_INVALID_REQUEST, NULL, "No MCP server %.64s", server);
		return;
	}
	if (ver && !strcmp(ver, MCP_VERSION_STATELESS)) {
		/* No sessions, no GET stream, no DELETE in this revision. */
		if (!strcmp(method, "POST"))
			handle_stateless(m, ex, sv, ver);
		else
			http_fail(ex, 405, WPD_RPC_INVALID_REQUEST, "Allow: POST\r\n",
				  "Method Not Allowed in " MCP_VERSION_STATELESS);
		return;
	}
	if (ver && !mcp_version_ok(ver)) {
		unsupported_version(ex, NULL, ver);
		return;
	}
	if (!strcmp(method, "POST")) {
		handle_post(m, ex, sv);
	} else if (!strcmp(method, "DELETE")) {
		handle_delete(m, ex, sv);
	} else if (!strcmp(method, "GET")) {
		/* No server-initiated stream: the daemon originates no messages
		 * (tools are fixed, listChanged false; backends' own requests
		 * are answered by the daemon). docs/daemon.md, "MCP". */
		http_fail(ex, 405, WPD_RPC_INVALID_REQUEST, "Allow: POST, DELETE\r\n",
			  "Method Not Allowed: this server offers no GET stream");
	} else {
		http_fail(ex, 405, WPD_RPC_INVALID_REQUEST, "Allow: POST, DELETE\r\n",
			  "Method Not Allowed");
	}
}

/* ---- life ---- */

static int servers_build(struct wpd_mcp *m, const struct wpd_config *c, struct wpd_native **natives,
			 struct mcp_server *old, uint32_t nold, struct mcp_server **out)
{
	struct mcp_server *srv = calloc(c->nmcp ? c->nmcp : 1, sizeof(*srv));
	int ret = 0;

	if (!srv)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nmcp; i++) {
		const struct wpd_mcp_server *ms = &c->mcp[i];
		const struct wpd_backend *bk = &c->backends[ms->backend];
		struct mcp_server *sv = &srv[i], *o = NULL;

		snprintf(sv->name, sizeof(sv->name), "%s", ms->name);
		if (ms->prefix[0])
			snprintf(sv->prefix, sizeof(sv->prefix), "%s", ms->prefix);
		else
			snprintf(sv->prefix, sizeof(sv->prefix), "%.*s_", WPD_NAME_MAX - 2,
				 ms->name);
		sv->plen = strlen(sv->prefix);
		for (uint32_t j = 0; j < nold; j++)
			if (old[j].b && !strcmp(old[j].name, sv->name))
				o = &old[j];
		switch (bk->kind) {
		case WPD_BACKEND_STDIO:
			sv->kind = "stdio";
			if (o && o->b->ops->adopt(o->b, bk)) {
				sv->b = o->b;
				o->b = NULL; /* moved */
			} else {
				ret = mcp_stdio_create(m->l, sv->name, bk, &sv->b);
			}
			break;
		case WPD_BACKEND_NATIVE:
			sv->kind = "native";
			sv->native = natives ? natives[ms->backend] : NULL;
			if (!sv->native) {
				ret = -EINVAL;
				break;
			}
			if (o && o->native == sv->native && o->b->ops == &native_ops) {
				sv->b = o->b;
				o->b = NULL;
			} else {
				ret = native_create(m->l, sv->name, bk, sv->native, &sv->b);
			}
			break;
		case WPD_BACKEND_HTTP:
			sv->kind = "http";
			if (o && o->b->ops->adopt(o->b, bk)) {
				sv->b = o->b;
				o->b = NULL; /* moved: the upstream session is kept */
			} else {
				ret = mcp_http_create(m->l, sv->name, bk, &sv->b);
			}
			break;
		default:
			ret = -EINVAL;
			break;
		}
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		/* Undo: new backends are destroyed, moved ones go back. */
		for (uint32_t i = 0; i < c->nmcp; i++) {
			int moved = 0;

			for (uint32_t j = 0; j < nold; j++)
				if (!old[j].b && !strcmp(old[j].name, srv[i].name) && srv[i].b) {
					old[j].b = srv[i].b;
					moved = 1;
				}
			if (!moved && srv[i].b)
				srv[i].b->ops->destroy(srv[i].b);
		}
		free(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

int wpd_mcp_create(struct wpd_loop *l, const struct wpd_config *c, struct wpd_native **natives,
		   struct wpd_mcp **out)
{
	struct wpd_mcp *m = calloc(1, sizeof(*m));
	struct sigaction sa;
	uint32_t max;
	int ret;

	if (!m)
		return -ENOMEM;
	/* A child that exits makes our next write to its pipe raise SIGPIPE:
	 * ignore it (the write's EPIPE says the same), unless someone set a
	 * handler. */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	m->l = l;
	m->c = c;
	max = c->limits.mcp_sessions_max ? c->limits.mcp_sessions_max : 10000;
	for (m->hsize = 64; m->hsize < max && m->hsize < (1u << 20);)
		m->hsize *= 2;
	m->htab = calloc(m->hsize, sizeof(*m->htab));
	if (!m->htab) {
		free(m);
		return -ENOMEM;
	}
	ret = servers_build(m, c, natives, NULL, 0, &m->srv);
	if (ret < 0) {
		free(m->htab);
		free(m);
		return ret;
	}
	m->nsrv = c->nmcp;
	*out = m;
	return 0;
}

int wpd_mcp_reload(struct wpd_mcp *m, const struct wpd_config *c, struct wpd_native **natives)
{
	struct mcp_server *srv, *old = m->srv;
	uint32_t nold = m->nsrv;
	int ret;

	ret = servers_build(m, c, natives, old, nold, &srv);
	if (ret < 0)
		return ret;
	m->srv = srv;
	m->nsrv = c->nmcp;
	m->c = c;
	/* Backends not moved over are gone: their calls fail now. */
	for (uint32_t i = 0; i < nold; i++)
		if (old[i].b)
			old[i].b->ops->destroy(old[i].b);
	free(old);
	return 0;
}

void wpd_mcp_destroy(struct wpd_mcp *m)
{
	if (!m)
		return;
	/* Backends first: their pending calls fail, which answers the
	 * POSTs waiting on them. */
	for (uint32_t i = 0; i < m->nsrv; i++)
		if (m->srv[i].b)
			m->srv[i].b->ops->destroy(m->srv[i].b);
	free(m->srv);
	m->srv = NULL;
	m->nsrv = 0;
	mcp_stdio_stop_all();
	/* Nothing should be left waiting; if anything is, it is told now. */
	while (m->reqs) {
		struct mcp_req *r = m->reqs;

		while (r->calls)
			ccall_free(r->calls);
		http_fail(r->ex, 503, WPD_RPC_BACKEND_ERROR, NULL, "MCP is shutting down");
		req_free(r);
	}
	for (uint32_t i = 0; i < m->hsize; i++)
		while (m->htab[i]) {
			struct mcp_session *s = m->htab[i];

			sess_drop(s);
		}
	free(m->htab);
	free(m);
}

void wpd_mcp_metrics(const struct wpd_mcp *m, struct wpd_buf *out)
{
	wpd_buf_addf(out, "wirepathd_mcp_sessions %u\n", m->nsessions);
	wpd_buf_addf(out, "wirepathd_mcp_sessions_created_total %llu\n",
		     (unsigned long long)m->sessions_total);
	wpd_buf_addf(out, "wirepathd_mcp_sessions_refused_total %llu\n",
		     (unsigned long long)m->sessions_refused);
	wpd_buf_addf(out, "wirepathd_mcp_sessions_expired_total %llu\n",
		     (unsigned long long)m->sessions_expired);
	wpd_buf_addf(out, "wirepathd_mcp_posts_total %llu\n", (unsigned long long)m->posts);
	wpd_buf_addf(out, "wirepathd_mcp_rpc_errors_total %llu\n",
		     (unsigned long long)m->rpc_errors);
	wpd_buf_addf(out, "wirepathd_mcp_aborts_total %llu\n", (unsigned long long)m->aborts);
	for (uint32_t i = 0; i < m->nsrv; i++) {
		const struct mcp_server *sv = &m->srv[i];
		const struct mcp_backend *b = sv->b;

		wpd_buf_addf(out, "wirepathd_mcp_backend_up{server=\"%s\",kind=\"%s\"} %d\n",
			     sv->name, sv->kind, backend_up(b));
		if (!b)
			continue;
		wpd_buf_addf(out, "wirepathd_mcp_backend_restarts_total{server=\"%s\"} %llu\n",
			     sv->name, (unsigned long long)b->restarts);
		wpd_buf_addf(out, "wirepathd_mcp_backend_calls_total{server=\"%s\"} %llu\n",
			     sv->name, (unsigned long long)b->calls);
		wpd_buf_addf(out, "wirepathd_mcp_backend_call_errors_total{server=\"%s\"} %llu\n",
			     sv->name, (unsigned long long)b->call_errors);
		wpd_buf_addf(out, "wirepathd_mcp_backend_garbage_total{server=\"%s\"} %llu\n",
			     sv->name, (unsigned long long)b->garbage);
		wpd_buf_addf(out, "wirepathd_mcp_backend_restart_delay_ms{server=\"%s\"} %u\n",
			     sv->name, b->restart_delay_ms);
	}
}

int wpd_mcp_ready(const struct wpd_mcp *m)
{
	for (uint32_t i = 0; i < m->nsrv; i++)
		if (m->srv[i].b && !backend_up(m->srv[i].b))
			return 0;
	return 1;
}
