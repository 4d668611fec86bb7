// SPDX-License-Identifier: MIT
/*
 * HTTP upstreams (upstream.h). Each pooled connection parses responses with
 * libhttp-parser (the same parser the edge uses, in response mode) and
 * hands body bytes to the request's callbacks as they arrive.
 *
 * Retries: a request that fails on a REUSED keep-alive connection before
 * any response byte arrived (the upstream closed an idle connection as we
 * wrote to it: the usual keep-alive race) is sent once more on a new
 * connection. Nothing else is retried: a POST the upstream may have
 * started is never sent twice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include "daemon/buf.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/upstream.h"

struct up_conn;

struct wpd_up_req {
	struct wpd_upstream *u;
	struct up_conn *c;
	struct wpd_up_cbs cbs;
	struct wpd_buf wire; /* the request as sent (kept for one retry) */
	int retried;
	int got_bytes; /* any response byte arrived */
	int cancelled;
	struct wpd_timer timeout;
	struct wpd_up_req *prev, *next; /* u->active */
};

struct up_conn {
	struct wpd_upstream *u;
	int fd;
	struct wpd_io io;
	int connected;
	int reused;
	size_t sent;
	http_parser hp;
	struct wpd_up_req *req;
	char ctype[128];
	char field[32];
	char hval[256]; /* the current header's value, for cbs.header */
	int hval_long;
	int in_ctype;
	int field_done;
	int complete;
	int interim; /* a 1xx response is being skipped */
	int keep_alive;
	int dead;
	struct up_conn *next; /* idle list */
};

struct wpd_upstream {
	struct wpd_loop *loop;
	char name[64];
	char host[256];
	char hostport[300];
	char base[256];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t pool;
	uint32_t timeout_ms;
	struct up_conn *idle;
	uint32_t nidle;
	struct wpd_up_req *active; /* requests not yet done */
	struct wpd_upstream_stats st;
};

static http_parser_settings up_settings;

static void req_done(struct wpd_up_req *r, int err);

static int parse_url(struct wpd_upstream *u, const char *url)
{
	struct http_parser_url pu;
	char port[8] = "80";
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int ret;

	http_parser_url_init(&pu);
	if (http_parser_parse_url(url, strlen(url), 0, &pu))
		return -EINVAL;
	if (!(pu.field_set & (1 << UF_SCHEMA)) || pu.field_data[UF_SCHEMA].len != 4 ||
	    strncmp(url + pu.field_data[UF_SCHEMA].off, "http", 4))
		return -EPROTONOSUPPORT;
	if (!(pu.field_set & (1 << UF_HOST)) || pu.field_data[UF_HOST].len >= sizeof(u->host))
		return -EINVAL;
	memcpy(u->host, url + pu.field_data[UF_HOST].off, pu.field_data[UF_HOST].len);
	u->host[pu.field_data[UF_HOST].len] = 0;
	if (pu.field_set & (1 << UF_PORT))
		snprintf(port, sizeof(port), "%u", pu.port);
	if (pu.field_set & (1 << UF_PATH)) {
		size_t n = pu.field_data[UF_PATH].len;

		if (n >= sizeof(u->base))
			return -EINVAL;
		memcpy(u->base, url + pu.field_data[UF_PATH].off, n);
		u->base[n] = 0;
		/* "/v1" + "/v1/chat/completions" would double: the base is a
		 * prefix without a trailing slash. */
		while (n && u->base[n - 1] == '/')
			u->base[--n] = 0;
	}
	snprintf(u->hostport, sizeof(u->hostport), "%s:%s", u->host, port);
	/* Resolved once, at load (a numeric address or /etc/hosts: the daemon
	 * never blocks on DNS while serving). */
	ret = getaddrinfo(u->host, port, &hints, &ai);
	if (ret)
		return -EHOSTUNREACH;
	memcpy(&u->addr, ai->ai_addr, ai->ai_addrlen);
	u->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int wpd_upstream_open(struct wpd_loop *l, const char *name, const char *url, uint32_t pool,
		      uint32_t timeout_ms, struct wpd_upstream **out)
{
	struct wpd_upstream *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	u->loop = l;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->pool = pool ? pool : 64;
	u->timeout_ms = timeout_ms ? timeout_ms : 300000;
	ret = parse_url(u, url);
	if (ret < 0) {
		free(u);
		return ret;
	}
	u->st.up = 1;
	*out = u;
	return 0;
}

static void conn_free(void *arg)
{
	free(arg);
}

static void conn_close(struct up_conn *c)
{
	struct wpd_upstream *u = c->u;

	if (c->dead)
		return;
	c->dead = 1;
	wpd_io_del(u->loop, &c->io);
	close(c->fd);
	/* Deferred: an epoll event of this round may still name it. */
	if (wpd_defer(u->loop, conn_free, c) < 0)
		wpd_warn("upstream %s: out of memory; leaking a closed connection", u->name);
}

static void idle_remove(struct up_conn *c)
{
	struct up_conn **pp = &c->u->idle;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = c->next;
		c->u->nidle--;
	}
}

void wpd_upstream_close(struct wpd_upstream *u)
{
	if (!u)
		return;
	/* Requests still in flight end here, without callbacks: their owner
	 * is the one closing (its references are gone). Their memory and
	 * connections go now; a deferred req_start finds them cancelled. */
	while (u->active)
		wpd_upstream_cancel(u->active);
	while (u->idle) {
		struct up_conn *c = u->idle;

		u->idle = c->next;
		conn_close(c);
	}
	free(u);
}

/* ---- response parsing ---- */

/* The header just parsed, to the request's header callback. */
static void header_flush(struct up_conn *c)
{
	struct wpd_up_req *r = c->req;

	/* An interim (1xx) response's headers are not the response's. */
	if (r && !r->cancelled && r->cbs.header && c->field_done && c->field[0] != '\x01' &&
	    !c->hval_long && c->hp.status_code >= 200)
		r->cbs.header(r->cbs.arg, c->field, c->hval);
	c->hval[0] = 0;
	c->hval_long = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct up_conn *c = p->data;

	if (c->field_done) {
		header_flush(c);
		c->field[0] = 0;
		c->field_done = 0;
	}
	size_t n = strlen(c->field);

	if (n + len < sizeof(c->field)) {
		memcpy(c->field + n, at, len);
		c->field[n + len] = 0;
	} else {
		c->field[0] = '\x01'; /* too long to be Content-Type */
		c->field[1] = 0;
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct up_conn *c = p->data;

	if (!c->field_done) {
		c->field_done = 1;
		c->in_ctype = !strcasecmp(c->field, "content-type");
		if (c->in_ctype)
			c->ctype[0] = 0;
	}
	if (!c->hval_long) {
		size_t n = strlen(c->hval);

		if (n + len < sizeof(c->hval)) {
			memcpy(c->hval + n, at, len);
			c->hval[n + len] = 0;
		} else {
			c->hval_long = 1;
		}
	}
	if (c->in_ctype) {
		size_t n = strlen(c->ctype);

		if (n + len < sizeof(c->ctype)) {
			memcpy(c->ctype + n, at, len);
			c->ctype[n + len] = 0;
		}
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct up_conn *c = p->data;
	struct wpd_up_req *r = c->req;

	if (p->status_code >= 100 && p->status_code < 200) {
		/* 100 Continue, 103 Early Hints: not the response; the real
		 * one follows on the same connection. */
		c->interim = 1;
		return 0;
	}
	if (c->field_done)
		header_flush(c);
	if (r && !r->cancelled && r->cbs.head)
		r->cbs.head(r->cbs.arg, p->status_code, c->ctype);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct up_conn *c = p->data;
	struct wpd_up_req *r = c->req;

	if (c->interim)
		return 0;

	if (r && !r->cancelled && r->cbs.body)
		r->cbs.body(r->cbs.arg, at, len);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct up_conn *c = p->data;

	if (c->interim) {
		c->interim = 0;
		c->ctype[0] = 0;
		c->field[0] = 0;
		c->field_done = 0;
		c->in_ctype = 0;
		c->hval[0] = 0;
		c->hval_long = 0;
		return 0;
	}

	c->complete = 1;
	c->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1); /* one response per request */
	return 0;
}

static void conn_reset_parser(struct up_conn *c)
{
	http_parser_init(&c->hp, HTTP_RESPONSE);
	c->hp.data = c;
	c->complete = 0;
	c->interim = 0;
	c->ctype[0] = 0;
	c->field[0] = 0;
	c->field_done = 0;
	c->in_ctype = 0;
	c->hval[0] = 0;
	c->hval_long = 0;
}

/* The response is whole: the request ends, the connection goes back to
 * the pool (or closes). */
static void conn_release(struct up_conn *c)
{
	struct wpd_upstream *u = c->u;
	struct wpd_up_req *r = c->req;

	c->req = NULL;
	if (r) {
		r->c = NULL;
		req_done(r, 0);
	}
	if (!c->keep_alive || u->nidle >= u->pool) {
		conn_close(c);
		return;
	}
	conn_reset_parser(c);
	c->reused = 1;
	c->sent = 0;
	c->next = u->idle;
	u->idle = c;
	u->nidle++;
	wpd_io_mod(u->loop, &c->io, EPOLLIN | EPOLLRDHUP);
}

static int req_send(struct wpd_up_req *r);

/* The connection failed under r (or idle). */
static void conn_fail(struct up_conn *c, int err)
{
	struct wpd_up_req *r = c->req;
	struct wpd_upstream *u = c->u;

	c->req = NULL;
	if (!r) {
		idle_remove(c); /* an idle connection closed by the upstream */
		conn_close(c);
		return;
	}
	r->c = NULL;
	int reused = c->reused;

	conn_close(c);
	if (reused && !r->got_bytes && !r->retried && !r->cancelled) {
		r->retried = 1;
		u->st.retries++;
		if (req_send(r) == 0)
			return;
	}
	req_done(r, err);
}

static void conn_io(void *arg, uint32_t events);

static int conn_write(struct up_conn *c)
{
	struct wpd_up_req *r = c->req;

	while (r && c->sent < r->wire.len) {
		ssize_t n = send(c->fd, r->wire.p + c->sent, r->wire.len - c->sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN)
				return wpd_io_mod(c->u->loop, &c->io,
						  EPOLLIN | EPOLLOUT | EPOLLRDHUP);
			return -errno;
		}
		c->sent += (size_t)n;
	}
	return wpd_io_mod(c->u->loop, &c->io, EPOLLIN | EPOLLRDHUP);
}

static void conn_io(void *arg, uint32_t events)
{
	struct up_conn *c = arg;
	char buf[65536];

	if (c->dead)
		return;
	if (!c->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t el = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			c->u->st.up = 0;
			conn_fail(c, -err);
			return;
		}
		c->connected = 1;
		c->u->st.up = 1;
	}
	if (events & EPOLLOUT) {
		int ret = conn_write(c);

		if (ret < 0) {
			conn_fail(c, ret);
			return;
		}
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		return;
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		size_t used;

		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			conn_fail(c, -errno);
			return;
		}
		if (n == 0) {
			/* EOF ends a response without a length (HTTP/1.0
			 * style): tell the parser, which completes it. */
			if (c->req && c->req->got_bytes)
				http_parser_execute(&c->hp, &up_settings, NULL, 0);
			if (c->req && c->complete) {
				c->keep_alive = 0;
				conn_release(c);
				return;
			}
			conn_fail(c, c->req && c->req->got_bytes ? -EPROTO : -ECONNRESET);
			return;
		}
		if (!c->req) {
			/* Bytes on an idle connection: the upstream is
			 * confused; do not reuse it. */
			conn_fail(c, -EPROTO);
			return;
		}
		c->req->got_bytes = 1;
		used = http_parser_execute(&c->hp, &up_settings, buf, (size_t)n);
		if (c->complete) {
			conn_release(c);
			return; /* bytes after a response: ignored, as pipelining is not used */
		}
		if (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK || used != (size_t)n) {
			wpd_log_rl("upstream-proto", WP_LOG_WARN, "upstream %s: bad response: %s",
				   c->u->name, http_errno_description(HTTP_PARSER_ERRNO(&c->hp)));
			conn_fail(c, -EPROTO);
			return;
		}
		if (c->dead)
			return;
	}
}

static int conn_new(struct wpd_upstream *u, struct up_conn **out)
{
	struct up_conn *c = calloc(1, sizeof(*c));
	int one = 1, ret;

	if (!c)
		return -ENOMEM;
	c->u = u;
	c->fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		ret = -errno;
		free(c);
		return ret;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&u->addr, u->addrlen) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		close(c->fd);
		free(c);
		u->st.up = 0;
		return ret;
	}
	ret = wpd_io_add(u->loop, &c->io, c->fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, conn_io, c);
	if (ret < 0) {
		close(c->fd);
		free(c);
		return ret;
	}
	conn_reset_parser(c);
	u->st.connects++;
	*out = c;
	return 0;
}

static void req_timeout(void *arg)
{
	struct wpd_up_req *r = arg;
	struct up_conn *c = r->c;

	if (c) {
		c->req = NULL;
		r->c = NULL;
		conn_close(c);
	}
	req_done(r, -ETIMEDOUT);
}

static void req_free(void *arg)
{
	struct wpd_up_req *r = arg;

	wpd_buf_free(&r->wire);
	free(r);
}

static void active_remove(struct wpd_up_req *r)
{
	struct wpd_upstream *u = r->u;

	if (r->prev)
		r->prev->next = r->next;
	else if (u->active == r)
		u->active = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void req_done(struct wpd_up_req *r, int err)
{
	struct wpd_upstream *u = r->u;

	active_remove(r);
	wpd_timer_cancel(u->loop, &r->timeout);
	u->st.active--;
	if (err)
		u->st.errors++;
	if (!r->cancelled && r->cbs.done)
		r->cbs.done(r->cbs.arg, err);
	r->cancelled = 1;
	if (wpd_defer(u->loop, req_free, r) < 0)
		req_free(r);
}

static int req_send(struct wpd_up_req *r)
{
	struct wpd_upstream *u = r->u;
	struct up_conn *c = NULL;
	int ret;

	/* Newest idle first: the one least likely closed by the upstream. */
	while (u->idle) {
		c = u->idle;
		u->idle = c->next;
		u->nidle--;
		u->st.reused++;
		break;
	}
	if (!c) {
		ret = conn_new(u, &c);
		if (ret < 0)
			return ret;
	}
	c->req = r;
	c->sent = 0;
	r->c = c;
	if (c->connected || c->reused) {
		c->connected = 1;
		ret = conn_write(c);
		if (ret < 0) {
			c->req = NULL;
			r->c = NULL;
			conn_close(c);
			return ret;
		}
	}
	return 0;
}

static void req_start(void *arg)
{
	struct wpd_up_req *r = arg;
	int ret;

	if (r->cancelled)
		return;
	ret = req_send(r);
	if (ret < 0)
		req_done(r, ret);
}

int wpd_upstream_request(struct wpd_upstream *u, const char *method, const char *path,
			 const char *headers, const void *body, size_t len,
			 const struct wpd_up_cbs *cbs, struct wpd_up_req **out)
{
	struct wpd_up_req *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->u = u;
	r->cbs = *cbs;
	wpd_buf_addf(&r->wire, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method, u->base, path,
		     u->hostport);
	if (headers)
		wpd_buf_adds(&r->wire, headers);
	if (len || strcmp(method, "GET"))
		wpd_buf_addf(&r->wire, "Content-Length: %zu\r\n", len);
	wpd_buf_adds(&r->wire, "\r\n");
	wpd_buf_add(&r->wire, body, len);
	if (r->wire.oom) {
		wpd_buf_free(&r->wire);
		free(r);
		return -ENOMEM;
	}
	u->st.requests++;
	u->st.active++;
	r->next = u->active;
	if (u->active)
		u->active->prev = r;
	u->active = r;
	wpd_timer_arm(u->loop, &r->timeout, (uint64_t)u->timeout_ms * 1000000ull, req_timeout, r);
	/* Callbacks never run inside this call: the send starts deferred. */
	if (wpd_defer(u->loop, req_start, r) < 0) {
		wpd_timer_cancel(u->loop, &r->timeout);
		u->st.active--;
		active_remove(r);
		req_free(r);
		return -ENOMEM;
	}
	if (out)
		*out = r;
	return 0;
}

void wpd_upstream_cancel(struct wpd_up_req *r)
{
	struct up_conn *c;

	if (!r || r->cancelled)
		return;
	r->cancelled = 1; /* no callbacks from here on */
	c = r->c;
	if (c) {
		/* Closing is the only way HTTP/1.1 says "stop": the upstream
		 * sees EOF and (a well-behaved server) stops generating. */
		c->req = NULL;
		r->c = NULL;
		conn_close(c);
	}
	req_done(r, -ECANCELED);
}

void wpd_upstream_stats(const struct wpd_upstream *u, struct wpd_upstream_stats *out)
{
	*out = u->st;
	out->idle = u->nidle;
}

static http_parser_settings up_settings = {
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};
