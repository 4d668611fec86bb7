// SPDX-License-Identifier: MIT
/*
 * wirepathd's routes (routes.h).
 *
 * Every /v1 and /mcp request is authenticated (Authorization: Bearer KEY ->
 * a tenant of the rules file) and admitted (the tenant's request rate,
 * tokens and concurrency) before any backend sees it. A model request
 * becomes, on a native backend, one WP_SVC_GENERATE call whose TEXT chunks
 * are written as SSE events from a template (no JSON tree per token), and
 * on an http backend, a proxied request whose response streams through.
 * A client that leaves mid-request cancels the backend's work at once
 * (wp_rpc_cancel; closing the upstream connection).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <wirepath/service.h>
#include <wirepath/wirepath.h>

#include "daemon/buf.h"
#include "daemon/config.h"
#include "daemon/exchange.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/mcp.h"
#include "daemon/metrics.h"
#include "daemon/native.h"
#include "daemon/openai.h"
#include "daemon/routes.h"
#include "daemon/server.h"
#include "daemon/sse.h"
#include "daemon/tenants.h"
#include "daemon/upstream.h"

/* ---- backends, shared across generations ---- */

struct be {
	char name[WPD_NAME_MAX];
	enum wpd_backend_kind kind;
	char target[256]; /* uri or url; stdio backends are MCP's */
	uint32_t refs;
	struct wpd_native *native;
	struct wpd_upstream *up;
	struct be *next;
};

static struct be *be_list;
static struct wpd_mcp *mcp; /* one for the process, reloaded with each generation */

struct wpd_routes {
	struct be **be;              /* per config backend (NULL for stdio) */
	struct wpd_native **natives; /* per config backend, for MCP */
	uint32_t n;
};

static void be_put(struct be *b)
{
	if (!b || --b->refs)
		return;
	for (struct be **pp = &be_list; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	wpd_info("backend %s: closed", b->name);
	wpd_native_close(b->native);
	wpd_upstream_close(b->up);
	free(b);
}

static int be_get(struct wpd_loop *l, const struct wpd_backend *bc, struct be **out)
{
	const char *target = bc->kind == WPD_BACKEND_NATIVE ? bc->uri : bc->url;
	struct be *b;
	int ret;

	for (b = be_list; b; b = b->next)
		if (b->kind == bc->kind && !strcmp(b->name, bc->name) &&
		    !strcmp(b->target, target)) {
			b->refs++;
			*out = b;
			return 0;
		}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->name, sizeof(b->name), "%s", bc->name);
	snprintf(b->target, sizeof(b->target), "%s", target);
	b->kind = bc->kind;
	b->refs = 1;
	if (bc->kind == WPD_BACKEND_NATIVE)
		ret = wpd_native_open(l, bc->name, bc->uri, &b->native);
	else
		ret = wpd_upstream_open(l, bc->name, bc->url, bc->pool, bc->timeout_ms, &b->up);
	if (ret < 0) {
		free(b);
		return ret;
	}
	b->next = be_list;
	be_list = b;
	*out = b;
	return 0;
}

void wpd_routes_free(struct wpd_routes *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n; i++)
		be_put(r->be[i]);
	free(r->be);
	free(r->natives);
	free(r);
}

int wpd_routes_build(struct wpd_loop *l, struct wpd_server *s, struct wpd_gen *g,
		     struct wpd_gen *prev)
{
	const struct wpd_config *c = g->cfg;
	struct wpd_routes *r = calloc(1, sizeof(*r));
	int ret = 0;

	if (!r)
		return -ENOMEM;
	r->n = c->nbackends;
	r->be = calloc(r->n ? r->n : 1, sizeof(*r->be));
	r->natives = calloc(r->n ? r->n : 1, sizeof(*r->natives));
	if (!r->be || !r->natives) {
		wpd_routes_free(r);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		const struct wpd_backend *bc = &c->backends[i];

		if (bc->kind == WPD_BACKEND_STDIO)
			continue;
		ret = be_get(l, bc, &r->be[i]);
		if (ret < 0) {
			wpd_err("%s:%d: backend %s: %s", c->path, bc->line, bc->name,
				strerror(-ret));
			wpd_routes_free(r);
			return ret;
		}
		r->natives[i] = r->be[i]->native;
	}
	if (!mcp)
		ret = wpd_mcp_create(l, c, r->natives, &mcp);
	else
		ret = wpd_mcp_reload(mcp, c, r->natives);
	if (ret < 0) {
		wpd_err("%s: MCP: %s", c->path, strerror(-ret));
		wpd_routes_free(r);
		return ret;
	}
	g->routes = r;
	return 0;
}

void wpd_routes_shutdown(void)
{
	wpd_mcp_destroy(mcp);
	mcp = NULL;
}

/* ---- helpers ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	if (!rng_state) {
		if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state))
			rng_state = wp_now_ns() | 1;
	}
	/* xorshift64*: ids need to be unique, not secret. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void make_id(char *out, size_t len, const char *prefix)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = (size_t)snprintf(out, len, "%s", prefix);

	while (n + 1 < len && n < strlen(prefix) + 24)
		out[n++] = al[rng_next() % (sizeof(al) - 1)];
	out[n] = 0;
}

static const struct wpd_model *find_model(const struct wpd_config *c, const char *name)
{
	for (uint32_t i = 0; i < c->nmodels; i++)
		if (!strcmp(c->models[i].name, name))
			return &c->models[i];
	return NULL;
}

/* ---- native generation ---- */

/* What every native call of a route holds: the exchange (NULL once the
 * client left), the backend, a generation reference (the backend and the
 * tenant stay), the call id, and whether it was aborted. First member of
 * each job, so one abort serves them all. */
struct native_job {
	struct wpd_ex *ex;
	struct wpd_native *n;
	struct wpd_gen *g;
	uint64_t id;
	int aborted;
};

static void native_abort(void *arg)
{
	struct native_job *j = arg;

	/* The client left: stop the backend now. on_done(-ECANCELED) follows
	 * from the backend's progress and frees the job. */
	j->aborted = 1;
	j->ex = NULL;
	wpd_native_cancel(j->n, j->id);
}

struct gen_job {
	struct native_job c; /* first */
	struct wpd_tenant *tenant;
	enum wpd_oai_kind kind;
	int stream, include_usage;
	struct wpd_sse_tmpl tmpl;
	struct wpd_buf ev;  /* scratch for one event */
	struct wpd_buf acc; /* non-streaming: the text so far */
	char cid[40];
	char model[128];
	int64_t created;
	int finished;
	struct wp_svc_finish fin;
	uint32_t tokens;
};

static void job_free(struct gen_job *j)
{
	if (j->tenant && j->tokens)
		wpd_tenant_charge_tokens(j->tenant, wp_now_ns(), j->tokens);
	wpd_buf_free(&j->ev);
	wpd_buf_free(&j->acc);
	wpd_gen_put(j->c.g);
	free(j);
}

static void gen_data(void *arg, struct wp_msg *m)
{
	struct gen_job *j = arg;
	const char *d = m->data;

	if (j->c.aborted || !m->len)
		return;
	if (d[0] == WP_SVC_CHUNK_TEXT) {
		j->tokens++;
		if (!j->stream) {
			wpd_buf_add(&j->acc, d + 1, m->len - 1);
			return;
		}
		wpd_buf_reset(&j->ev);
		wpd_sse_delta(&j->tmpl, d + 1, m->len - 1, &j->ev);
		if (wpd_ex_stream_send(j->c.ex, j->ev.p, j->ev.len) < 0) {
			/* A slow client is being dropped: its abort follows. */
			return;
		}
		return;
	}
	if (wp_svc_finish_parse(m->data, m->len, &j->fin) == 0)
		j->finished = 1;
}

static const char *finish_name(const struct gen_job *j)
{
	if (!j->finished)
		return "stop";
	return j->fin.reason == WP_SVC_FINISH_LENGTH ? "length" : "stop";
}

static int backend_status(int status)
{
	switch (status) {
	case -ETIMEDOUT:
		return 504;
	case -ECONNRESET:
	case -ECONNABORTED:
	case -ENOTCONN:
		return 503;
	default:
		return 502;
	}
}

static void gen_done(void *arg, int status)
{
	struct gen_job *j = arg;
	struct wpd_ex *ex = j->c.ex;

	if (j->c.aborted || !ex) {
		job_free(j);
		return;
	}
	wpd_ex_add_tokens(ex, j->tokens);
	uint32_t pt = j->finished ? j->fin.prompt_tokens : 0;
	uint32_t ct = j->finished ? j->fin.completion_tokens : j->tokens;

	if (j->stream) {
		wpd_buf_reset(&j->ev);
		if (status == 0) {
			wpd_sse_finish(&j->tmpl, finish_name(j), &j->ev);
			if (j->include_usage)
				wpd_sse_usage(&j->tmpl, pt, ct, &j->ev);
		} else {
			/* Mid-stream failure: an error event, as OpenAI's
			 * API sends one, then the end. */
			char msg[160];

			snprintf(msg, sizeof(msg), "backend %s failed: %s", wpd_native_name(j->c.n),
				 status < 0 ? strerror(-status) : "error status");
			wpd_buf_adds(&j->ev, "data: ");
			wpd_oai_error_body(&j->ev, msg, "server_error", NULL, NULL);
			wpd_buf_adds(&j->ev, "\n\n");
		}
		wpd_sse_done(&j->ev);
		/* A send refused here (a slow client being dropped) must still
		 * end the exchange now: its abort callback points at j. */
		if (wpd_ex_stream_send(ex, j->ev.p, j->ev.len) == 0)
			wpd_ex_end(ex);
		else
			wpd_ex_abort(ex);
		job_free(j);
		return;
	}
	if (status != 0) {
		wpd_ex_error(ex, backend_status(status), "server_error", NULL,
			     "backend %s failed: %s", wpd_native_name(j->c.n),
			     status < 0 ? strerror(-status) : "error status");
		job_free(j);
		return;
	}
	wpd_buf_reset(&j->ev);
	if (j->kind == WPD_OAI_CHAT)
		wpd_oai_chat_body(&j->ev, j->cid, j->created, j->model, j->acc.p ? j->acc.p : "",
				  j->acc.len, finish_name(j), pt, ct);
	else
		wpd_oai_completion_body(&j->ev, j->cid, j->created, j->model,
					j->acc.p ? j->acc.p : "", j->acc.len, finish_name(j), pt,
					ct);
	if (j->ev.oom)
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory building the response");
	else
		wpd_ex_reply(ex, 200, "application/json", NULL, j->ev.p, j->ev.len);
	job_free(j);
}

struct embed_job {
	struct native_job c; /* first */
	int base64;
	char model[128];
	struct wpd_buf reply;
};

static void embed_data(void *arg, struct wp_msg *m)
{
	struct embed_job *j = arg;

	wpd_buf_add(&j->reply, m->data, m->len);
}

static void embed_done(void *arg, int status)
{
	struct embed_job *j = arg;
	struct wp_svc_embed_hdr h;

	if (j->c.aborted || !j->c.ex)
		goto out;
	if (status != 0) {
		wpd_ex_error(j->c.ex, backend_status(status), "server_error", NULL,
			     "backend %s failed: %s", wpd_native_name(j->c.n),
			     status < 0 ? strerror(-status) : "error status");
		goto out;
	}
	if (j->reply.len < sizeof(h)) {
		wpd_ex_error(j->c.ex, 502, "server_error", NULL,
			     "backend %s: short embedding reply", wpd_native_name(j->c.n));
		goto out;
	}
	memcpy(&h, j->reply.p, sizeof(h));
	h.count = le32toh(h.count);
	h.dim = le32toh(h.dim);
	h.prompt_tokens = le32toh(h.prompt_tokens);
	if (!h.dim || h.dim > 65536 || h.count > 65536 ||
	    (uint64_t)h.count * h.dim * 4 != j->reply.len - sizeof(h)) {
		wpd_ex_error(j->c.ex, 502, "server_error", NULL,
			     "backend %s: embedding reply sizes do not add up",
			     wpd_native_name(j->c.n));
		goto out;
	}
	float *v = malloc((size_t)h.count * h.dim * sizeof(float) + 1);
	struct wpd_buf body = { 0 };

	if (!v) {
		wpd_ex_error(j->c.ex, 500, "server_error", NULL, "out of memory");
		goto out;
	}
	memcpy(v, j->reply.p + sizeof(h), (size_t)h.count * h.dim * sizeof(float));
	wpd_oai_embedding_body_fmt(&body, j->model, v, h.count, h.dim, h.prompt_tokens, j->base64);
	free(v);
	wpd_ex_reply(j->c.ex, 200, "application/json", NULL, body.p, body.len);
	wpd_buf_free(&body);
out:
	wpd_buf_free(&j->reply);
	wpd_gen_put(j->c.g);
	free(j);
}

/* Start the call of a native job j (its first member c; allocated by the
 * caller, freed here on failure) and tie it to the exchange: a generation
 * reference, and the abort that cancels it. The request buffer is freed
 * either way (the call copied it). Returns 0, or -errno after answering. */
static int native_start(struct native_job *c, struct wpd_ex *ex, struct wpd_gen *g,
			struct wpd_native *n, const struct wpd_backend *bc,
			struct wp_call_params *p, struct wpd_buf *req)
{
	int ret;

	c->ex = ex;
	c->n = n;
	c->g = g;
	p->arg = c;
	ret = wpd_native_call(n, p, &c->id);
	wpd_buf_free(req);
	if (ret < 0) {
		free(c);
		wpd_ex_error(ex, backend_status(ret), "server_error", NULL,
			     "backend %s unavailable: %s", bc->name, strerror(-ret));
		return ret;
	}
	g->refs++;
	wpd_ex_on_abort(ex, native_abort, c);
	return 0;
}

static void native_model(struct wpd_ex *ex, struct wpd_gen *g, struct wpd_native *n,
			 const struct wpd_backend *bc, struct wpd_oai_req *rq)
{
	struct wp_call_params p = { 0 };
	struct wp_svc_req_hdr h;
	struct wpd_buf req = { 0 };
	size_t blen;
	const char *body = wpd_ex_body(ex, &blen);
	size_t mlen = strlen(rq->model);

	wp_svc_req_hdr_init(&h,
			    rq->kind == WPD_OAI_CHAT         ? WP_SVC_KIND_CHAT
			    : rq->kind == WPD_OAI_COMPLETION ? WP_SVC_KIND_COMPLETION
							     : WP_SVC_KIND_EMBEDDING,
			    rq->max_tokens, (uint32_t)mlen, (uint32_t)rq->prompt.len,
			    (uint32_t)blen);
	wpd_buf_add(&req, &h, sizeof(h));
	wpd_buf_add(&req, rq->model, mlen);
	wpd_buf_add(&req, rq->prompt.p, rq->prompt.len);
	wpd_buf_add(&req, body, blen);
	if (req.oom) {
		wpd_buf_free(&req);
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	p.req = req.p;
	p.req_len = (uint32_t)req.len;
	p.deadline_us = (int64_t)bc->timeout_ms * 1000;

	if (rq->kind == WPD_OAI_EMBEDDING) {
		struct embed_job *j = calloc(1, sizeof(*j));

		if (!j) {
			wpd_buf_free(&req);
			wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
			return;
		}
		j->base64 = rq->base64;
		snprintf(j->model, sizeof(j->model), "%s", rq->model);
		p.method = WP_SVC_EMBED;
		p.on_data = embed_data;
		p.on_done = embed_done;
		native_start(&j->c, ex, g, n, bc, &p, &req);
		return;
	}

	struct gen_job *j = calloc(1, sizeof(*j));

	if (!j) {
		wpd_buf_free(&req);
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	j->kind = rq->kind;
	j->tenant = (struct wpd_tenant *)wpd_ex_tenant(ex);
	j->stream = rq->stream;
	j->include_usage = rq->include_usage;
	j->created = (int64_t)time(NULL);
	snprintf(j->model, sizeof(j->model), "%s", rq->model);
	make_id(j->cid, sizeof(j->cid), rq->kind == WPD_OAI_CHAT ? "chatcmpl-" : "cmpl-");
	p.method = WP_SVC_GENERATE;
	p.on_data = gen_data;
	p.on_done = gen_done;
	if (native_start(&j->c, ex, g, n, bc, &p, &req) < 0)
		return;
	if (j->stream) {
		wpd_sse_init(&j->tmpl, rq->kind, j->cid, j->created, j->model);
		if (j->include_usage)
			wpd_sse_usage_null(&j->tmpl); /* "usage":null on every chunk, as OpenAI */
		wpd_ex_stream_begin(ex, 200, "text/event-stream", NULL);
		if (rq->kind == WPD_OAI_CHAT) {
			wpd_sse_role(&j->tmpl, &j->ev);
			wpd_ex_stream_send(ex, j->ev.p, j->ev.len);
		}
	}
}

/* ---- http passthrough ---- */

struct proxy_job {
	struct wpd_ex *ex;
	struct wpd_up_req *r;
	struct wpd_gen *g;
	struct wpd_tenant *tenant;
	int began;
	int nobody; /* the upstream answered 204 or 304: a bodyless reply */
	int sse;
	uint32_t tokens;
	uint32_t m; /* count_events: bytes of "data: " matched so far */
	int bol;    /* ... at the start of a line */
	char backend[WPD_NAME_MAX];
};

static void proxy_abort(void *arg)
{
	struct proxy_job *j = arg;

	j->ex = NULL;
	wpd_upstream_cancel(j->r); /* closes the upstream connection: it stops */
	if (j->tenant && j->tokens)
		wpd_tenant_charge_tokens(j->tenant, wp_now_ns(), j->tokens);
	wpd_gen_put(j->g);
	free(j);
}

static void proxy_head(void *arg, int status, const char *ctype)
{
	struct proxy_job *j = arg;

	if (status == 204 || status == 304) {
		/* No body may follow: answered whole at the end, never as a
		 * (chunked) stream, which would break the connection's framing. */
		j->nobody = status;
		return;
	}
	j->sse = !strncasecmp(ctype, "text/event-stream", 17);
	j->began = 1;
	/* Passed through as it comes: chunked to the client whatever framing
	 * the upstream used, so nothing is ever buffered whole. */
	wpd_ex_stream_begin(j->ex, status, ctype[0] ? ctype : "application/octet-stream", NULL);
}

/* SSE events counted as tokens: each "data: " at a line start (the final
 * [DONE] is taken off in proxy_done). A byte loop with a little state, so
 * a marker split across two reads still counts once. */
static void count_events(struct proxy_job *j, const char *d, size_t len)
{
	static const char mark[] = "data: ";

	for (size_t i = 0; i < len; i++) {
		char c = d[i];

		if ((j->m || j->bol) && c == mark[j->m]) {
			if (++j->m == sizeof(mark) - 1) {
				j->tokens++;
				j->m = 0;
			}
		} else {
			j->m = 0;
		}
		j->bol = c == '\n';
	}
}

static void proxy_body(void *arg, const char *d, size_t len)
{
	struct proxy_job *j = arg;

	if (j->nobody)
		return;
	if (j->sse)
		count_events(j, d, len);
	wpd_ex_stream_send(j->ex, d, len); /* refused: a slow client is being dropped */
}

static void proxy_done(void *arg, int err)
{
	struct proxy_job *j = arg;
	struct wpd_ex *ex = j->ex;

	if (j->sse && j->tokens)
		j->tokens--; /* data: [DONE] */
	wpd_ex_add_tokens(ex, j->tokens);
	if (!err && j->nobody)
		wpd_ex_reply(ex, j->nobody, NULL, NULL, "", 0);
	else if (!err)
		wpd_ex_end(ex);
	else if (!j->began)
		wpd_ex_error(ex, backend_status(err), "server_error", NULL, "backend %s: %s",
			     j->backend, strerror(-err));
	else
		wpd_ex_abort(ex); /* cut mid-response: the client must see it cut */
	if (j->tenant && j->tokens)
		wpd_tenant_charge_tokens(j->tenant, wp_now_ns(), j->tokens);
	wpd_gen_put(j->g);
	free(j);
}

static void http_model(struct wpd_ex *ex, struct wpd_gen *g, struct wpd_upstream *u,
		       const struct wpd_backend *bc)
{
	struct wpd_up_cbs cbs = { proxy_head, proxy_body, proxy_done, NULL, NULL };
	struct proxy_job *j = calloc(1, sizeof(*j));
	const char *accept = wpd_ex_header(ex, "accept");
	char hdr[512];
	size_t blen;
	const char *body = wpd_ex_body(ex, &blen);
	int ret;

	if (!j) {
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	j->ex = ex;
	j->g = g;
	j->tenant = (struct wpd_tenant *)wpd_ex_tenant(ex);
	j->bol = 1;
	snprintf(j->backend, sizeof(j->backend), "%s", bc->name);
	cbs.arg = j;
	/* The client's key stays here: the upstream is our backend, not the
	 * client's, and gets no Authorization of theirs. */
	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\nAccept: %.200s\r\n",
		 accept && !strpbrk(accept, "\r\n") ? accept : "*/*");
	ret = wpd_upstream_request(u, "POST", wpd_ex_path(ex), hdr, body, blen, &cbs, &j->r);
	if (ret < 0) {
		free(j);
		wpd_ex_error(ex, 502, "server_error", NULL, "backend %s: %s", bc->name,
			     strerror(-ret));
		return;
	}
	g->refs++;
	wpd_ex_on_abort(ex, proxy_abort, j);
}

/* ---- the OpenAI routes ---- */

static void route_model(struct wpd_ex *ex, struct wpd_gen *g, enum wpd_oai_kind kind,
			const char *label)
{
	struct wpd_oai_req rq;
	char err[256];
	const char *param = NULL;
	size_t blen;
	const char *body = wpd_ex_body(ex, &blen);
	const struct wpd_model *m;
	const struct wpd_backend *bc;
	struct be *b;

	wpd_ex_label(ex, label, NULL);
	if (strcmp(wpd_ex_method(ex), "POST")) {
		wpd_ex_error_h(ex, 405, "Allow: POST\r\n", "invalid_request_error", NULL,
			       "%s %s: only POST is allowed here", wpd_ex_method(ex),
			       wpd_ex_path(ex));
		return;
	}
	/* Passed through to an http backend: only the model matters here, and
	 * the upstream parses the rest itself (no JSON tree: the bench's
	 * profile, docs/daemon.md). Anything the quick look is not sure of
	 * takes the full parse below. */
	if (wpd_oai_peek_model(body, blen, rq.model, sizeof(rq.model)) == 0 &&
	    (m = find_model(g->cfg, rq.model)) &&
	    g->cfg->backends[m->backend].kind == WPD_BACKEND_HTTP &&
	    (!wpd_ex_tenant(ex) || wpd_tenant_model_ok(wpd_ex_tenant(ex), rq.model))) {
		bc = &g->cfg->backends[m->backend];
		wpd_ex_label(ex, NULL, bc->name);
		http_model(ex, g, g->routes->be[m->backend]->up, bc);
		return;
	}
	memset(&rq, 0, sizeof(rq));
	if (wpd_oai_parse(kind, body, blen, &rq, err, sizeof(err), &param) < 0) {
		struct wpd_buf eb = { 0 };

		wpd_oai_error_body(&eb, err, "invalid_request_error", param, NULL);
		wpd_ex_reply(ex, 400, "application/json", NULL, eb.p, eb.len);
		wpd_buf_free(&eb);
		wpd_oai_req_free(&rq);
		return;
	}
	m = find_model(g->cfg, rq.model);
	if (!m || (wpd_ex_tenant(ex) && !wpd_tenant_model_ok(wpd_ex_tenant(ex), rq.model))) {
		/* Unknown and not allowed look the same: a tenant learns
		 * nothing about models it may not use. */
		wpd_ex_error(ex, 404, "invalid_request_error", "model_not_found",
			     "The model `%s` does not exist or you do not have access to it.",
			     rq.model);
		wpd_oai_req_free(&rq);
		return;
	}
	bc = &g->cfg->backends[m->backend];
	b = g->routes->be[m->backend];
	wpd_ex_label(ex, NULL, bc->name);
	if (b->native)
		native_model(ex, g, b->native, bc, &rq);
	else
		http_model(ex, g, b->up, bc);
	wpd_oai_req_free(&rq);
}

static void route_models(struct wpd_ex *ex, struct wpd_gen *g)
{
	const struct wpd_tenant *t = wpd_ex_tenant(ex);
	const char **ids = calloc(g->cfg->nmodels + 1, sizeof(*ids));
	struct wpd_buf body = { 0 };
	uint32_t n = 0;

	wpd_ex_label(ex, "models", NULL);
	if (!ids) {
		wpd_ex_error(ex, 500, "server_error", NULL, "out of memory");
		return;
	}
	for (uint32_t i = 0; i < g->cfg->nmodels; i++)
		if (!t || wpd_tenant_model_ok(t, g->cfg->models[i].name))
			ids[n++] = g->cfg->models[i].name;
	wpd_oai_models_body(&body, ids, n, 0);
	wpd_ex_reply(ex, 200, "application/json", NULL, body.p, body.len);
	wpd_buf_free(&body);
	free(ids);
}

/* ---- authentication and admission ---- */

/* Returns 1 when the request may go on (tenant set), 0 when answered. */
static int admit(struct wpd_ex *ex, struct wpd_gen *g)
{
	const char *auth = wpd_ex_header(ex, "authorization");
	const struct wpd_tenant *t;
	uint32_t retry = 1;
	char hdr[64];

	if (!g->tenants) /* auth: none */
		return 1;
	if (!auth || strncasecmp(auth, "Bearer ", 7)) {
		wpd_ex_error(ex, 401, "invalid_request_error", "invalid_api_key",
			     "You didn't provide an API key. Provide it in the Authorization "
			     "header as 'Bearer KEY'.");
		return 0;
	}
	auth += 7;
	while (*auth == ' ')
		auth++;
	t = wpd_tenants_auth(g->tenants, auth, strlen(auth));
	if (!t) {
		wpd_ex_error(ex, 401, "invalid_request_error", "invalid_api_key",
			     "Incorrect API key provided.");
		return 0;
	}
	enum wpd_admit a = wpd_tenant_admit((struct wpd_tenant *)t, wp_now_ns(), &retry);

	if (a != WPD_ADMIT_OK) {
		snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", retry ? retry : 1);
		wpd_ex_set_tenant(ex, t, 0);
		wpd_ex_error_h(ex, 429, hdr, a == WPD_ADMIT_TOKENS ? "tokens" : "requests",
			       "rate_limit_exceeded", "Rate limit reached for tenant %s: %s",
			       wpd_tenant_name(t),
			       a == WPD_ADMIT_RATE     ? "requests per second"
			       : a == WPD_ADMIT_TOKENS ? "tokens per second"
						       : "concurrent requests");
		return 0;
	}
	wpd_ex_set_tenant(ex, t, 1);
	return 1;
}

/* ---- operational routes ---- */

int wpd_routes_ready(const struct wpd_gen *g, struct wpd_buf *why)
{
	int ok = 1;

	for (uint32_t i = 0; i < g->routes->n; i++) {
		struct be *b = g->routes->be[i];
		int up;

		if (!b)
			continue;
		if (b->native) {
			up = wpd_native_up(b->native);
		} else {
			struct wpd_upstream_stats st;

			wpd_upstream_stats(b->up, &st);
			up = st.up;
		}
		if (!up) {
			ok = 0;
			if (why)
				wpd_buf_addf(why, "backend %s: down\n", b->name);
		}
	}
	if (mcp && !wpd_mcp_ready(mcp)) {
		ok = 0;
		if (why)
			wpd_buf_adds(why, "mcp: a server is down\n");
	}
	return ok;
}

void wpd_routes_metrics(const struct wpd_gen *g, struct wpd_buf *out)
{
	wpd_buf_adds(out, "# HELP wirepathd_backend_up 1 when the backend is reachable.\n"
			  "# TYPE wirepathd_backend_up gauge\n");
	for (uint32_t i = 0; i < g->routes->n; i++) {
		struct be *b = g->routes->be[i];

		if (!b)
			continue;
		if (b->native) {
			wpd_buf_addf(out,
				     "wirepathd_backend_up{backend=\"%s\",kind=\"native\"} %d\n",
				     b->name, wpd_native_up(b->native));
		} else {
			struct wpd_upstream_stats st;

			wpd_upstream_stats(b->up, &st);
			wpd_buf_addf(out, "wirepathd_backend_up{backend=\"%s\",kind=\"http\"} %d\n",
				     b->name, st.up);
			wpd_buf_addf(
				out,
				"wirepathd_upstream_connections{backend=\"%s\",state=\"idle\"} "
				"%llu\n"
				"wirepathd_upstream_connects_total{backend=\"%s\"} %llu\n"
				"wirepathd_upstream_reused_total{backend=\"%s\"} %llu\n"
				"wirepathd_upstream_retries_total{backend=\"%s\"} %llu\n",
				b->name, (unsigned long long)st.idle, b->name,
				(unsigned long long)st.connects, b->name,
				(unsigned long long)st.reused, b->name,
				(unsigned long long)st.retries);
		}
	}
	if (mcp)
		wpd_mcp_metrics(mcp, out);
}

static void route_ops(struct wpd_ex *ex, struct wpd_server *s, struct wpd_gen *g, const char *path)
{
	struct wpd_buf b = { 0 };

	wpd_ex_label(ex, "ops", NULL);
	if (!strcmp(path, "/healthz")) {
		wpd_ex_reply(ex, 200, "text/plain", NULL, "ok\n", 3);
	} else if (!strcmp(path, "/readyz")) {
		int ok = wpd_routes_ready(g, &b);

		if (ok)
			wpd_buf_adds(&b, "ready\n");
		wpd_ex_reply(ex, ok ? 200 : 503, "text/plain", NULL, b.p, b.len);
	} else {
		wpd_metrics_render(s, &b);
		wpd_routes_metrics(g, &b);
		wpd_ex_reply(ex, b.oom ? 500 : 200, "text/plain; version=0.0.4", NULL, b.p, b.len);
	}
	wpd_buf_free(&b);
}

void wpd_routes_dispatch(void *arg, struct wpd_ex *ex)
{
	struct wpd_server *s = arg;
	struct wpd_gen *g = wpd_ex_gen(ex);
	const char *path = wpd_ex_path(ex);

	if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz") ||
	    (!strcmp(path, "/metrics") && g->cfg->metrics)) {
		route_ops(ex, s, g, path);
		return;
	}
	if (!strncmp(path, "/v1/", 4)) {
		if (!admit(ex, g))
			return;
		if (!strcmp(path, "/v1/chat/completions"))
			route_model(ex, g, WPD_OAI_CHAT, "chat");
		else if (!strcmp(path, "/v1/completions"))
			route_model(ex, g, WPD_OAI_COMPLETION, "completions");
		else if (!strcmp(path, "/v1/embeddings"))
			route_model(ex, g, WPD_OAI_EMBEDDING, "embeddings");
		else if (!strcmp(path, "/v1/models") &&
			 (!strcmp(wpd_ex_method(ex), "GET") || !strcmp(wpd_ex_method(ex), "HEAD")))
			route_models(ex, g);
		else
			wpd_ex_error(ex, 404, "invalid_request_error", "unknown_url",
				     "Unknown request URL: %s %s.", wpd_ex_method(ex), path);
		return;
	}
	if (!strcmp(path, "/mcp") || !strncmp(path, "/mcp/", 5)) {
		wpd_ex_label(ex, "mcp", NULL);
		if (!admit(ex, g))
			return;
		wpd_mcp_handle(mcp, ex, path[4] == '/' ? path + 5 : NULL);
		return;
	}
	wpd_ex_error(ex, 404, "invalid_request_error", "unknown_url", "Unknown request URL: %s %s.",
		     wpd_ex_method(ex), path);
}
