// SPDX-License-Identifier: MIT
/*
 * wirepathd's server (server.h): listeners, client connections and the
 * exchange API (exchange.h).
 *
 * A connection reads into a stack buffer and feeds the HTTP parser from
 * there; only bytes the parser did not take (a pipelined request behind
 * one in progress) are kept, in c->in. One exchange runs at a time per
 * connection, as HTTP/1.1 requires responses in order. Output is appended
 * to c->out and written once per loop round (a deferred flush), so the
 * tokens that one round of backend progress delivers leave in one write.
 *
 * Limits (docs/daemon.md, "Limits"): connections (at the limit a new one is
 * closed at accept), request head and body sizes (the parser), the time a
 * request head or body may take, keep-alive idle time, the receive memory
 * budget over all connections (at the budget, connections mid-request stop
 * being read until memory frees: the kernel's socket buffer holds the rest),
 * and the output a slow client may leave unread (past it the client is
 * dropped and its exchange aborted). EMFILE and friends at accept pause the
 * listener with a backoff instead of spinning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/exchange.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/openai.h"
#include "daemon/server.h"
#include "daemon/tenants.h"
#include "daemon/tls.h"
#include "daemon/uedge.h"

#define READ_CHUNK (64u << 10)
#define ACCEPT_BACKOFF_MIN_NS 10000000ull
#define ACCEPT_BACKOFF_MAX_NS 1000000000ull
#define ACCEPT_BATCH 64
/* Lingering close (RFC 9112 9.6, nginx's lingering_close): after a reply
 * that ends the connection, the write side is shut and what the client
 * still sends is read and dropped for up to this long, so a client that
 * is mid-upload (a 431 or 413 answered early) reads the reply instead of
 * a reset that the unread bytes would cause on close(). */
#define LINGER_NS 2000000000ull

struct listener {
	struct wpd_server *s;
	int fd;
	struct wpd_io io;
	struct wpd_timer backoff;
	uint64_t backoff_ns;
	int paused;
	int is_unix;
	struct wpd_tls_ctx *tls;
	int uring;           /* served by the io_uring edge (uedge.c) */
	struct wpd_usock us; /* uring: its multishot accept */
	char name[300];
};

enum ex_state { EX_NONE = 0, EX_HANDLING, EX_STREAMING, EX_ENDED };

struct wpd_ex {
	struct conn *c;
	struct wpd_http_req *req;
	struct wpd_gen *gen;
	const struct wpd_tenant *tenant;
	int admitted; /* holds a tenant concurrency slot */
	enum ex_state state;
	int status;
	int head_only; /* HEAD: no body */
	int raw;       /* HTTP/1.0 client: a stream is sent unframed and ends with the
			* connection (chunked encoding is HTTP/1.1 only) */
	void (*abort_fn)(void *arg);
	void *abort_arg;
	uint64_t start_ns;
	uint64_t bytes_out;
	uint32_t tokens;
	const char *route;
	const char *backend;
};

enum conn_phase { PH_IDLE = 0, PH_HEAD, PH_BODY, PH_EXCHANGE };

struct conn {
	struct wpd_server *s;
	int fd;
	struct wpd_io io;
	struct wpd_timer timer;
	struct wpd_http_parser hp;
	struct wpd_buf in;  /* bytes the parser has not taken */
	struct wpd_buf out; /* queued output */
	struct wpd_ex ex;
	struct wpd_tls *tls; /* NULL: plain */
	/* io_uring edge: the socket's requests, and the bytes of the send in
	 * flight (out is swapped in whole: the kernel reads tx until the
	 * send completes, while exchanges keep appending to out). */
	int uring;
	struct wpd_usock us;
	struct wpd_buf tx;
	enum conn_phase phase;
	uint64_t phase_ns; /* when the phase started */
	size_t mem;        /* charged to s->rx_mem */
	uint64_t bytes_in;
	int closing;         /* close once out is written */
	int lingering;       /* reply written, write side shut: draining input */
	int dropping;        /* too slow: being dropped (counted once) */
	uint64_t bytes_mark; /* bytes_in when the previous exchange ended */
	int dead;            /* closed; freed by a deferred call */
	int paused;          /* reading stopped: receive budget */
	int in_process;      /* inside conn_process */
	int flush_queued;
	int resume_queued;
	int want_out;
	struct conn *prev, *next; /* all connections */
	struct conn *pnext;       /* paused list */
	char peer[64];
};

struct wpd_server {
	struct wpd_loop *loop;
	struct listener *ls;
	uint32_t nls;
	struct wpd_gen *gen;
	struct conn *conns;
	struct conn *paused;
	uint64_t rx_mem;
	int draining;
	wpd_handler_fn handler;
	void *handler_arg;
	wpd_ex_done_fn done_fn;
	void *done_arg;
	struct wpd_server_stats st;
	struct wpd_uedge *ue; /* the daemon's ring, at the first uring listener */
	int ue_failed;        /* tried, unavailable: uring listeners use epoll */
};

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);
static void conn_queue_flush(struct conn *c);
static void conn_arm_timer(struct conn *c);
static void conn_resume(void *arg);

/* ------------------------------------------------------------------ */
/* Generations                                                          */
/* ------------------------------------------------------------------ */

void wpd_routes_free(struct wpd_routes *r); /* routes.c */

static void gen_free(void *arg)
{
	struct wpd_gen *g = arg;

	wpd_routes_free(g->routes);
	if (g->tenants)
		wpd_tenants_put(g->tenants);
	wpd_config_free(g->cfg);
	free(g);
}

void wpd_gen_put(struct wpd_gen *g)
{
	if (!g || --g->refs)
		return;
	if (!g->loop || wpd_defer(g->loop, gen_free, g) < 0)
		gen_free(g);
}

void wpd_server_set_gen(struct wpd_server *s, struct wpd_gen *g)
{
	struct wpd_gen *old = s->gen;

	s->gen = g;
	wpd_gen_put(old);
}

struct wpd_gen *wpd_server_gen(struct wpd_server *s)
{
	return s->gen;
}

static const struct wpd_limits *limits(const struct wpd_server *s)
{
	return &s->gen->cfg->limits;
}

/* ------------------------------------------------------------------ */
/* Listeners                                                            */
/* ------------------------------------------------------------------ */

static int parse_hostport(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon;
	char *end;
	long port;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - addr - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, (size_t)(rb - addr - 1));
		host[rb - addr - 1] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = 0;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 0 || port > 65535 || end == colon + 1)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (!host[0] || !strcmp(host, "*"))
		snprintf(host, sizeof(host), "0.0.0.0");
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	if (!strcmp(host, "localhost")) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*in4);
		return 0;
	}
	return -EINVAL;
}

static int listen_unix(const char *path, int *out)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	socklen_t len;
	int fd;

	if (n == 0 || n >= sizeof(un.sun_path))
		return -ENAMETOOLONG;
	memcpy(un.sun_path, path, n);
	if (path[0] == '@') {
		un.sun_path[0] = 0; /* abstract */
	} else {
		struct stat st;

		/* A stale socket file nobody listens on is replaced; any
		 * other file is not ours to remove. */
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode))
				return -EEXIST;
			unlink(path);
		}
	}
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&un, len) < 0 || listen(fd, 4096) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

static int listen_tcp(const char *addr, int *out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, ret;

	ret = parse_hostport(addr, &ss, &len);
	if (ret < 0)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

static void listener_accept(void *arg, uint32_t events);
static void listener_resume(void *arg);

/* EMFILE and friends: stop accepting, retry after a backoff (or when one of
 * our connections closes). */
static void listener_pause(struct listener *l, int err)
{
	struct wpd_server *s = l->s;

	wpd_log_rl("accept", WP_LOG_WARN, "%s: accept: %s; pausing for %llu ms", l->name,
		   strerror(-err), (unsigned long long)(l->backoff_ns / 1000000));
	l->paused = 1;
	if (l->uring)
		wpd_uedge_cancel(s->ue, &l->us, WPD_UOP_ACCEPT);
	else
		wpd_io_mod(s->loop, &l->io, 0);
	wpd_timer_arm(s->loop, &l->backoff, l->backoff_ns, listener_resume, l);
	if (l->backoff_ns < ACCEPT_BACKOFF_MAX_NS)
		l->backoff_ns *= 2;
}

static void listener_resume(void *arg)
{
	struct listener *l = arg;

	if (!l->paused || l->s->draining)
		return;
	l->paused = 0;
	if (l->uring) {
		/* A cancel still in flight re-arms at its completion. */
		if (!l->us.accepting && wpd_uedge_accept(l->s->ue, &l->us) < 0)
			listener_pause(l, -EBUSY);
		return;
	}
	wpd_io_mod(l->s->loop, &l->io, EPOLLIN);
	listener_accept(l, EPOLLIN);
}

/* A descriptor came free: listeners waiting out EMFILE try at once. */
static void listeners_kick(struct wpd_server *s)
{
	for (uint32_t i = 0; i < s->nls; i++)
		if (s->ls[i].paused && wpd_timer_armed(&s->ls[i].backoff)) {
			wpd_timer_cancel(s->loop, &s->ls[i].backoff);
			wpd_timer_arm(s->loop, &s->ls[i].backoff, 0, listener_resume, &s->ls[i]);
		}
}

static void conn_open(struct listener *l, int fd, const char *peer);

/* A new connection from l (either edge): the limits, then conn_open. */
static void listener_take(struct listener *l, int fd, const struct sockaddr_storage *ssp)
{
	struct wpd_server *s = l->s;
	const struct sockaddr_storage ss = *ssp;
	char peer[64] = "unix";

	if (s->draining || s->st.conns_open >= limits(s)->conns_max) {
		s->st.conns_refused++;
		wpd_log_rl("conns-max", WP_LOG_WARN,
			   "%s: %llu connections open (limits.conns); refusing one", l->name,
			   (unsigned long long)s->st.conns_open);
		close(fd);
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, peer, sizeof(peer));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, peer, sizeof(peer));
	}
	if (ss.ss_family != AF_UNIX) {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	conn_open(l, fd, peer);
}

/* The io_uring edge's accept completions. */
static void listener_ucqe(void *arg, enum wpd_uop op, int res, const void *data, int more)
{
	struct listener *l = arg;
	struct wpd_server *s = l->s;

	(void)op;
	(void)data;
	if (res >= 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		/* Multishot accept gives no address. */
		memset(&ss, 0, sizeof(ss));
		if (getpeername(res, (struct sockaddr *)&ss, &sl) < 0)
			ss.ss_family = l->is_unix ? AF_UNIX : AF_UNSPEC;
		l->backoff_ns = ACCEPT_BACKOFF_MIN_NS;
		listener_take(l, res, &ss);
	} else if (res != -ECANCELED && !l->paused) {
		/* EMFILE ends the multishot accept; re-arming at once would
		 * fail again at once: back off, like the epoll edge. */
		listener_pause(l, res);
		return;
	}
	if (!more && !l->paused && !s->draining && l->fd >= 0 &&
	    wpd_uedge_accept(s->ue, &l->us) < 0)
		listener_pause(l, -EBUSY);
}

static void listener_accept(void *arg, uint32_t events)
{
	struct listener *l = arg;

	for (int i = 0; i < ACCEPT_BATCH && !l->paused; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			int err = errno;

			if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
				return;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
				/* Level-triggered epoll would wake us at once
				 * forever: stop watching. */
				listener_pause(l, -err);
				return;
			}
			wpd_log_rl("accept", WP_LOG_WARN, "%s: accept: %s", l->name, strerror(err));
			return;
		}
		l->backoff_ns = ACCEPT_BACKOFF_MIN_NS;
		listener_take(l, fd, &ss);
	}
}

int wpd_server_create(struct wpd_loop *l, struct wpd_server **out)
{
	struct wpd_server *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->loop = l;
	*out = s;
	return 0;
}

int wpd_server_bind(struct wpd_server *s, const struct wpd_config *cfg)
{
	s->ls = calloc(cfg->nlisten, sizeof(*s->ls));
	if (!s->ls)
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg->nlisten; i++) {
		const struct wpd_listen *lc = &cfg->listen[i];
		struct listener *l = &s->ls[i];
		int ret;

		l->s = s;
		l->fd = -1;
		l->backoff_ns = ACCEPT_BACKOFF_MIN_NS;
		l->is_unix = lc->kind == WPD_LISTEN_UNIX;
		snprintf(l->name, sizeof(l->name), "%s%s%s", l->is_unix ? "unix:" : "",
			 lc->tls_cert[0] ? "https://" : (l->is_unix ? "" : "http://"), lc->addr);
		ret = l->is_unix ? listen_unix(lc->addr, &l->fd) : listen_tcp(lc->addr, &l->fd);
		if (ret < 0) {
			wpd_err("%s:%d: cannot listen on %s: %s", cfg->path, lc->line, lc->addr,
				strerror(-ret));
			return ret;
		}
		if (lc->tls_cert[0]) {
			char why[256];

			ret = wpd_tls_ctx_create(lc->tls_cert, lc->tls_key, &l->tls, why,
						 sizeof(why));
			if (ret < 0) {
				wpd_err("%s:%d: TLS: %s", cfg->path, lc->line, why);
				return ret;
			}
		}
		if (lc->io == WPD_IO_URING && l->tls) {
			wpd_warn("%s:%d: %s: io: uring: TLS listeners are served by the epoll "
				 "edge (docs/daemon.md, \"Edge I/O\")",
				 cfg->path, lc->line, l->name);
		} else if (lc->io == WPD_IO_URING) {
			char why[256];

			if (!s->ue && !s->ue_failed &&
			    (ret = wpd_uedge_create(s->loop, &s->ue, why, sizeof(why))) < 0) {
				s->ue_failed = 1;
				wpd_warn("%s:%d: %s: io: uring unavailable (%s, errno %d): falling "
					 "back to the epoll edge",
					 cfg->path, lc->line, l->name, why, -ret);
			}
			l->uring = s->ue != NULL;
		}
		s->nls++;
		wpd_info("listening on %s%s (io: %s)", l->name, l->tls ? " (TLS)" : "",
			 l->uring ? "uring" : "epoll");
	}
	return 0;
}

int wpd_server_start(struct wpd_server *s)
{
	for (uint32_t i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];
		int ret;

		if (l->uring) {
			wpd_usock_init(&l->us, l->fd, listener_ucqe, NULL, l);
			ret = wpd_uedge_accept(s->ue, &l->us);
		} else {
			ret = wpd_io_add(s->loop, &l->io, l->fd, EPOLLIN, listener_accept, l);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Which edge a listener really got (the startup log and /metrics). */
int wpd_server_listener(const struct wpd_server *s, uint32_t i, const char **name, const char **io)
{
	if (i >= s->nls)
		return -ENOENT;
	*name = s->ls[i].name;
	*io = s->ls[i].uring ? "uring" : "epoll";
	return 0;
}

/* The io_uring edge's counters; 0 when it was not set up. */
int wpd_server_uring_stats(const struct wpd_server *s, struct wpd_uedge_stats *out)
{
	if (!s->ue)
		return 0;
	wpd_uedge_stats(s->ue, out);
	return 1;
}

/* The port a tcp listener got (tests bind port 0). */
int wpd_server_port(const struct wpd_server *s, uint32_t i)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (i >= s->nls || getsockname(s->ls[i].fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Receive budget                                                       */
/* ------------------------------------------------------------------ */

static void conn_recharge(struct conn *c)
{
	struct wpd_server *s = c->s;
	size_t now = c->dead ? 0 : wpd_http_mem(&c->hp) + c->in.alloc;

	s->rx_mem = s->rx_mem - c->mem + now;
	if (now < c->mem) {
		/* Memory freed: resume paused connections while under 7/8 of
		 * the budget, so one that resumes has room to finish. */
		uint64_t low = limits(s)->rx_budget / 8 * 7;

		while (s->paused && s->rx_mem < low) {
			struct conn *p = s->paused;

			s->paused = p->pnext;
			p->paused = 0;
			p->pnext = NULL;
			conn_queue_flush(p); /* re-arms EPOLLIN (uring: the receive) */
			if (p->uring && p->in.len && !p->resume_queued &&
			    wpd_defer(s->loop, conn_resume, p) == 0)
				p->resume_queued = 1; /* what it holds, even if no more comes */
		}
	}
	c->mem = now;
}

static uint32_t conn_events(const struct conn *c)
{
	/* A paused connection is not read, so a half-close (RDHUP, level-
	 * triggered) would wake the loop forever: not asked for while paused
	 * (HUP and ERR always come, and close it: conn_io). */
	uint32_t ev = c->paused ? 0 : EPOLLRDHUP;

	if (c->lingering)
		return EPOLLIN | EPOLLRDHUP;
	/* While an exchange runs, keep reading (to see the client leave) but
	 * only as far as a pipelined request can go. */
	if (!c->paused && !c->closing && c->in.len < 65536)
		ev |= EPOLLIN;
	if (c->out.len || (c->tls && wpd_tls_wants_write(c->tls)))
		ev |= EPOLLOUT;
	return ev;
}

/* Re-arm the connection's I/O after a change: epoll events, or on the
 * io_uring edge, arm or cancel its multishot receive (kept armed while
 * closing, to see a client leave mid-stream; what it reads then is
 * dropped, as on epoll). */
static void conn_update(struct conn *c)
{
	int want;

	if (!c->uring) {
		wpd_io_mod(c->s->loop, &c->io, conn_events(c));
		return;
	}
	want = !c->paused && (c->closing || c->in.len < 65536);
	if (want && !c->us.receiving) {
		if (wpd_uedge_recv(c->s->ue, &c->us) < 0)
			conn_close(c);
	} else if (!want && c->us.receiving) {
		wpd_uedge_cancel(c->s->ue, &c->us, WPD_UOP_RECV);
	}
}

/* ------------------------------------------------------------------ */
/* Exchanges                                                            */
/* ------------------------------------------------------------------ */

const char *wpd_ex_method(const struct wpd_ex *ex)
{
	return ex->req->method;
}

const char *wpd_ex_path(const struct wpd_ex *ex)
{
	return ex->req->path;
}

const char *wpd_ex_query(const struct wpd_ex *ex)
{
	return ex->req->query;
}

const char *wpd_ex_header(const struct wpd_ex *ex, const char *name)
{
	return wpd_http_header(ex->req, name);
}

const char *wpd_ex_body(const struct wpd_ex *ex, size_t *len)
{
	*len = ex->req->body_len;
	return ex->req->body;
}

const struct wpd_tenant *wpd_ex_tenant(const struct wpd_ex *ex)
{
	return ex->tenant;
}

void wpd_ex_set_tenant(struct wpd_ex *ex, const struct wpd_tenant *t, int admitted)
{
	ex->tenant = t;
	ex->admitted = admitted;
}

struct wpd_loop *wpd_ex_loop(const struct wpd_ex *ex)
{
	return ex->c->s->loop;
}

struct wpd_gen *wpd_ex_gen(const struct wpd_ex *ex)
{
	return ex->gen;
}

const char *wpd_ex_peer(const struct wpd_ex *ex)
{
	return ex->c->peer;
}

void wpd_ex_label(struct wpd_ex *ex, const char *route, const char *backend)
{
	if (route)
		ex->route = route;
	if (backend)
		ex->backend = backend;
}

void wpd_ex_add_tokens(struct wpd_ex *ex, uint32_t n)
{
	ex->tokens += n;
}

void wpd_ex_on_abort(struct wpd_ex *ex, void (*fn)(void *arg), void *arg)
{
	ex->abort_fn = fn;
	ex->abort_arg = arg;
}

static void conn_resume(void *arg)
{
	struct conn *c = arg;

	c->resume_queued = 0;
	if (c->dead)
		return;
	conn_process(c);
}

/* The exchange is over (answered or aborted): account for it, release its
 * generation and tenant slot, and let the connection go on. */
static void ex_finish(struct wpd_ex *ex, int aborted)
{
	struct conn *c = ex->c;
	struct wpd_server *s = c->s;

	if (ex->state == EX_STREAMING)
		s->st.streams_active--;
	s->st.exchanges_active--;
	if (s->done_fn)
		s->done_fn(s->done_arg, ex, aborted ? 499 : ex->status,
			   wpd_loop_now(s->loop) - ex->start_ns, c->bytes_in - c->bytes_mark,
			   ex->bytes_out, ex->tokens, ex->route, ex->backend);
	c->bytes_mark = c->bytes_in;
	if (ex->admitted)
		wpd_tenant_done((struct wpd_tenant *)ex->tenant);
	ex->admitted = 0;
	ex->tenant = NULL;
	ex->state = EX_NONE;
	ex->abort_fn = NULL;
	wpd_gen_put(ex->gen);
	ex->gen = NULL;
	c->phase = PH_IDLE;
	c->phase_ns = wpd_loop_now(s->loop);
	if (c->dead)
		return;
	wpd_http_next(&c->hp);
	conn_recharge(c);
	if (!c->in_process && !c->resume_queued && c->in.len) {
		c->resume_queued = 1;
		if (wpd_defer(s->loop, conn_resume, c) < 0) {
			c->resume_queued = 0;
			conn_process(c); /* not inside conn_process: safe now */
			if (c->dead)
				return;
		}
	}
	conn_arm_timer(c);
	conn_queue_flush(c);
}

static int ex_keep_alive(const struct wpd_ex *ex)
{
	const struct conn *c = ex->c;

	return ex->req->keep_alive && !c->closing && !c->s->draining;
}

int wpd_ex_reply(struct wpd_ex *ex, int status, const char *ctype, const char *headers,
		 const void *body, size_t len)
{
	struct conn *c = ex->c;
	size_t before = c->out.len;

	if (ex->state != EX_HANDLING)
		return -EINVAL;
	ex->status = status;
	if (!ex_keep_alive(ex))
		c->closing = 1;
	wpd_http_head(&c->out, status, ctype, (int64_t)len, !c->closing, headers);
	if (!ex->head_only)
		wpd_buf_add(&c->out, body, len);
	ex->bytes_out += c->out.len - before;
	ex->state = EX_ENDED;
	ex_finish(ex, 0);
	return 0;
}

static int ex_verror(struct wpd_ex *ex, int status, const char *headers, const char *type,
		     const char *code, const char *fmt, va_list ap)
{
	struct wpd_buf body = { 0 }, hdr = { 0 };
	char msg[512];
	int ret;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	wpd_oai_error_body(&body, msg, type, NULL, code);
	if (status == 401)
		wpd_buf_adds(&hdr, "WWW-Authenticate: Bearer\r\n");
	if (headers)
		wpd_buf_adds(&hdr, headers);
	ret = wpd_ex_reply(ex, status, "application/json", hdr.len ? hdr.p : NULL, body.p,
			   body.len);
	wpd_buf_free(&body);
	wpd_buf_free(&hdr);
	return ret;
}

int wpd_ex_error(struct wpd_ex *ex, int status, const char *type, const char *code, const char *fmt,
		 ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = ex_verror(ex, status, NULL, type, code, fmt, ap);
	va_end(ap);
	return ret;
}

int wpd_ex_error_h(struct wpd_ex *ex, int status, const char *headers, const char *type,
		   const char *code, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = ex_verror(ex, status, headers, type, code, fmt, ap);
	va_end(ap);
	return ret;
}

int wpd_ex_stream_begin(struct wpd_ex *ex, int status, const char *ctype, const char *headers)
{
	struct conn *c = ex->c;
	size_t before = c->out.len;
	char extra[1024];

	if (ex->state != EX_HANDLING)
		return -EINVAL;
	ex->status = status;
	if (!ex_keep_alive(ex))
		c->closing = 1;
	snprintf(extra, sizeof(extra), "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n%s",
		 headers ? headers : "");
	wpd_http_head(&c->out, status, ctype ? ctype : "text/event-stream", -1, !c->closing, extra);
	ex->bytes_out += c->out.len - before;
	ex->state = EX_STREAMING;
	c->s->st.streams_active++;
	conn_queue_flush(c);
	return 0;
}

static void ex_drop_slow(void *arg)
{
	struct conn *c = arg;

	if (!c->dead)
		conn_close(c);
}

int wpd_ex_stream_send(struct wpd_ex *ex, const void *data, size_t len)
{
	struct conn *c = ex->c;
	size_t before = c->out.len;

	if (ex->state != EX_STREAMING)
		return -EINVAL;
	if (c->dead)
		return -ECONNRESET;
	if (c->dropping)
		return -ENOBUFS;
	if (c->out.len + c->tx.len + len > limits(c->s)->out_bytes) {
		/* The client reads slower than the source writes: drop it
		 * rather than buffer without bound (the abort callback runs
		 * from the close, deferred, never inside this call). */
		c->s->st.slow_clients++;
		wpd_log_rl("slow-client", WP_LOG_WARN,
			   "client %s: %zu bytes unread (limits.out_bytes); dropping it", c->peer,
			   c->out.len + c->tx.len);
		c->closing = 1;
		c->dropping = 1;
		wpd_defer(c->s->loop, ex_drop_slow, c); /* on ENOMEM: the next write error */
		return -ENOBUFS;
	}
	if (ex->raw)
		wpd_buf_add(&c->out, data, len);
	else
		wpd_http_chunk(&c->out, data, len);
	ex->bytes_out += c->out.len - before;
	conn_queue_flush(c);
	return 0;
}

void wpd_ex_abort(struct wpd_ex *ex)
{
	struct conn *c = ex->c;

	if (ex->state != EX_HANDLING && ex->state != EX_STREAMING)
		return;
	ex->abort_fn = NULL;
	/* What is queued still leaves; then the connection closes with the
	 * stream unterminated, which the client reports as truncated. */
	ex->state = EX_ENDED;
	ex_finish(ex, 1);
	c->closing = 1;
	conn_queue_flush(c);
}

size_t wpd_ex_pending(const struct wpd_ex *ex)
{
	return ex->c->out.len + ex->c->tx.len;
}

int wpd_ex_end(struct wpd_ex *ex)
{
	struct conn *c = ex->c;
	size_t before = c->out.len;

	if (ex->state != EX_STREAMING)
		return -EINVAL;
	if (!ex->raw)
		wpd_http_chunk_end(&c->out);
	ex->bytes_out += c->out.len - before;
	ex->state = EX_ENDED;
	ex_finish(ex, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

static void conn_free(void *arg)
{
	struct conn *c = arg;

	wpd_buf_free(&c->in);
	wpd_buf_free(&c->out);
	wpd_buf_free(&c->tx);
	free(c);
}

static void conn_timeout(void *arg);

static void conn_arm_timer(struct conn *c)
{
	const struct wpd_limits *lim = limits(c->s);
	uint64_t ms;

	switch (c->phase) {
	case PH_IDLE:
		ms = lim->idle_timeout_ms;
		break;
	case PH_HEAD:
		ms = lim->header_timeout_ms;
		break;
	case PH_BODY:
		ms = lim->body_timeout_ms;
		break;
	default:
		/* The route's backend has its own timeout; a client that
		 * stops reading is bounded by out_bytes. */
		wpd_timer_cancel(c->s->loop, &c->timer);
		return;
	}
	uint64_t due = c->phase_ns + ms * 1000000ull;
	uint64_t now = wpd_loop_now(c->s->loop);

	wpd_timer_arm(c->s->loop, &c->timer, due > now ? due - now : 0, conn_timeout, c);
}

static void conn_bad(struct conn *c, int status, const char *why)
{
	struct wpd_buf body = { 0 };

	c->s->st.bad_requests++;
	wpd_log_rl("bad-request", WP_LOG_INFO, "client %s: %d %s", c->peer, status, why);
	wpd_oai_error_body(&body, why, "invalid_request_error", NULL, NULL);
	wpd_http_head(&c->out, status, "application/json", (int64_t)body.len, 0, NULL);
	wpd_buf_add(&c->out, body.p, body.len);
	wpd_buf_free(&body);
	c->closing = 1;
	conn_queue_flush(c);
}

static void conn_timeout(void *arg)
{
	struct conn *c = arg;

	if (c->dead)
		return;
	if (c->lingering) {
		conn_close(c); /* the client kept sending: done waiting */
		return;
	}
	switch (c->phase) {
	case PH_IDLE:
		conn_close(c); /* keep-alive idle: nothing to answer */
		return;
	case PH_HEAD:
	case PH_BODY:
		c->s->st.timeouts++;
		if (c->closing) { /* the 408 could not be written */
			conn_close(c);
			return;
		}
		conn_bad(c, 408,
			 c->phase == PH_HEAD
				 ? "request head not complete in time "
				   "(limits.header_timeout)"
				 : "request body not complete in time (limits.body_timeout)");
		/* Give the 408 a moment to leave, then close regardless. */
		wpd_timer_arm(c->s->loop, &c->timer, 1000000000ull, conn_timeout, c);
		return;
	default:
		return;
	}
}

static void conn_dispatch(struct conn *c, struct wpd_http_req *req)
{
	struct wpd_server *s = c->s;
	struct wpd_ex *ex = &c->ex;

	memset(ex, 0, sizeof(*ex));
	ex->c = c;
	ex->req = req;
	ex->gen = s->gen;
	ex->gen->refs++;
	ex->state = EX_HANDLING;
	ex->head_only = !strcmp(req->method, "HEAD");
	ex->start_ns = wpd_loop_now(s->loop);
	ex->route = "other";
	ex->backend = "";
	c->phase = PH_EXCHANGE;
	s->st.exchanges_active++;
	conn_arm_timer(c);
	s->handler(s->handler_arg, ex);
}

/* Feed what we have to the parser and run requests, one at a time. */
static void feed(struct conn *c, const char *data, size_t len, size_t *used_out)
{
	size_t used = 0;

	*used_out = 0;
	while (len && !c->dead && !c->closing && c->ex.state == EX_NONE) {
		struct wpd_http_req *req = NULL;
		int prev = wpd_http_in_progress(&c->hp);
		int r = wpd_http_feed(&c->hp, data, len, &used, &req);
		int now = wpd_http_in_progress(&c->hp);

		data += used;
		len -= used;
		*used_out += used;
		if (r < 0) {
			conn_bad(c, c->hp.status, c->hp.why);
			return;
		}
		if (r == 1) {
			conn_recharge(c);
			conn_dispatch(c, req);
			continue;
		}
		/* Needs more: note when the head or body started (timeouts). */
		if (now != prev) {
			c->phase = now == 2 ? PH_BODY : PH_HEAD;
			c->phase_ns = wpd_loop_now(c->s->loop);
			conn_arm_timer(c);
			if (now == 2 && wpd_http_want_continue(&c->hp)) {
				wpd_buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				conn_queue_flush(c);
			}
		}
		if (!used)
			break;
	}
}

static void conn_process(struct conn *c)
{
	size_t used;

	c->in_process = 1;
	if (c->in.len) {
		feed(c, c->in.p, c->in.len, &used);
		wpd_buf_consume(&c->in, used);
	}
	c->in_process = 0;
	if (!c->dead)
		conn_recharge(c);
}

static ssize_t conn_recv(struct conn *c, char *buf, size_t len)
{
	if (c->tls)
		return wpd_tls_read(c->tls, buf, len);
	ssize_t n = read(c->fd, buf, len);

	return n < 0 ? -errno : n;
}

static ssize_t conn_send(struct conn *c, const char *buf, size_t len)
{
	if (c->tls)
		return wpd_tls_write(c->tls, buf, len);
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

/* At the receive budget, a request in progress waits for memory. */
static int conn_over_budget(struct conn *c)
{
	if (c->s->rx_mem <= limits(c->s)->rx_budget || c->ex.state != EX_NONE ||
	    !wpd_http_in_progress(&c->hp))
		return 0;
	if (!c->paused) {
		c->paused = 1;
		c->pnext = c->s->paused;
		c->s->paused = c;
		wpd_log_rl(
			"rx-budget", WP_LOG_WARN,
			"receive budget (limits.rx_budget) spent: %llu bytes held; pausing reads",
			(unsigned long long)c->s->rx_mem);
	}
	return 1;
}

/* n bytes came (either edge): feed the parser straight from buf when
 * nothing is waiting, keep only what it did not take. */
static void conn_got(struct conn *c, const char *buf, size_t n)
{
	size_t used = 0;

	c->bytes_in += (uint64_t)n;
	if (c->ex.state != EX_NONE || c->in.len || c->closing) {
		/* Behind a request in progress: keep for later. */
		if (!c->closing)
			wpd_buf_add(&c->in, buf, n);
		if (c->in.oom)
			conn_close(c);
		else
			conn_process(c);
		return;
	}
	c->in_process = 1;
	feed(c, buf, n, &used);
	c->in_process = 0;
	if (c->dead)
		return;
	if (used < n && !c->closing)
		wpd_buf_add(&c->in, buf + used, n - used);
	conn_recharge(c);
}

static void conn_read(struct conn *c)
{
	static char buf[READ_CHUNK];

	for (int rounds = 0; rounds < 4 && !c->dead; rounds++) {
		ssize_t n;

		if (conn_over_budget(c))
			return;
		n = conn_recv(c, buf, sizeof(buf));
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			/* EOF or error: a client that leaves mid-exchange
			 * aborts it (the route cancels its upstream work). */
			conn_close(c);
			return;
		}
		conn_got(c, buf, (size_t)n);
		if ((size_t)n < sizeof(buf))
			return;
	}
}

/* The reply that ends the connection is out: shut the write side (the
 * client sees EOF after the reply) and drop what it still sends until it
 * closes or LINGER_NS passes; see LINGER_NS. TLS (its close_notify is the
 * end) and a connection paused for memory close at once. */
static void conn_linger(struct conn *c)
{
	if (c->tls || c->paused || shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	c->lingering = 1;
	wpd_timer_arm(c->s->loop, &c->timer, LINGER_NS, conn_timeout, c);
	conn_update(c);
}

/* Lingering: read and drop; EOF or an error ends it. */
static void conn_drain(struct conn *c)
{
	static char buf[READ_CHUNK];

	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->bytes_in += (uint64_t)n;
	}
}

/* The io_uring edge's flush: the queued output goes as one SEND (its SQE
 * leaves with every other connection's in the round's one submit); out
 * keeps collecting while it is in flight. */
static void conn_uflush(struct conn *c)
{
	if (!c->us.sending && c->out.len) {
		struct wpd_buf t = c->tx;

		c->tx = c->out;
		c->out = t;
		if (wpd_uedge_send(c->s->ue, &c->us, c->tx.p, c->tx.len) < 0) {
			conn_close(c);
			return;
		}
	}
	if (!c->out.len && c->out.alloc > (256u << 10))
		wpd_buf_free(&c->out);
	if (c->closing && !c->lingering && !c->out.len && !c->tx.len && c->ex.state == EX_NONE) {
		conn_linger(c);
		return;
	}
	conn_update(c);
}

/* The io_uring edge's completions for a connection. */
static void conn_ucqe(void *arg, enum wpd_uop op, int res, const void *data, int more)
{
	struct conn *c = arg;

	(void)more;
	if (op == WPD_UOP_SEND) {
		if (res <= 0) {
			conn_close(c);
			return;
		}
		wpd_buf_consume(&c->tx, (size_t)res);
		if (c->tx.len) {
			/* A partial send: the rest goes next. */
			if (wpd_uedge_send(c->s->ue, &c->us, c->tx.p, c->tx.len) < 0)
				conn_close(c);
			return;
		}
		if (c->tx.alloc > (256u << 10))
			wpd_buf_free(&c->tx);
		conn_uflush(c);
		return;
	}
	if (res > 0 && c->lingering) {
		c->bytes_in += (uint64_t)res; /* dropped */
	} else if (res > 0) {
		if (conn_over_budget(c)) {
			/* Already read: held (bounded by in.max) until memory
			 * frees; the receive is cancelled meanwhile. */
			c->bytes_in += (uint64_t)res;
			wpd_buf_add(&c->in, data, (size_t)res);
			if (c->in.oom) {
				conn_close(c);
				return;
			}
			conn_recharge(c);
		} else {
			conn_got(c, data, (size_t)res);
		}
	} else if (res == 0 || (res != -ENOBUFS && res != -ECANCELED)) {
		/* EOF or error: as on epoll, a client that leaves aborts its
		 * exchange. -ENOBUFS (the buffer ring ran dry) re-arms. */
		conn_close(c);
		return;
	}
	if (!c->dead && !c->flush_queued)
		conn_update(c);
}

static void conn_flush(void *arg)
{
	struct conn *c = arg;

	c->flush_queued = 0;
	if (c->dead)
		return;
	if (c->uring) {
		conn_uflush(c);
		return;
	}
	while (c->out.len) {
		ssize_t n = conn_send(c, c->out.p, c->out.len);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		wpd_buf_consume(&c->out, (size_t)n);
	}
	if (!c->out.len && c->out.alloc > (256u << 10)) {
		/* A big response went out: give the memory back. */
		wpd_buf_free(&c->out);
	}
	if (c->closing && !c->lingering && !c->out.len && c->ex.state == EX_NONE) {
		conn_linger(c);
		return;
	}
	conn_update(c);
}

static void conn_queue_flush(struct conn *c)
{
	if (c->flush_queued || c->dead)
		return;
	c->flush_queued = 1;
	if (wpd_defer(c->s->loop, conn_flush, c) < 0) {
		c->flush_queued = 0;
		conn_flush(c);
	}
}

static void conn_io(void *arg, uint32_t events)
{
	struct conn *c = arg;

	if (c->paused && (events & (EPOLLHUP | EPOLLERR))) {
		conn_close(c); /* gone mid-request while waiting for memory */
		return;
	}

	if (c->tls && !wpd_tls_established(c->tls)) {
		int ret = wpd_tls_handshake(c->tls);

		if (ret == -EAGAIN) {
			wpd_io_mod(c->s->loop, &c->io, conn_events(c));
			return;
		}
		if (ret < 0) {
			conn_close(c);
			return;
		}
	}
	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->dead)
		return;
	if (c->lingering) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
			conn_drain(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		conn_read(c);
	if (!c->dead && !c->flush_queued)
		wpd_io_mod(c->s->loop, &c->io, conn_events(c));
}

static void conn_open(struct listener *l, int fd, const char *peer)
{
	struct wpd_server *s = l->s;
	struct conn *c = calloc(1, sizeof(*c));
	struct wpd_http_limits hl;

	if (!c) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	hl.header_bytes = limits(s)->header_bytes;
	hl.body_bytes = limits(s)->body_bytes;
	wpd_http_init(&c->hp, &hl);
	c->out.max = 0; /* out_bytes is checked per send, so a reply can exceed it */
	c->in.max = (size_t)hl.header_bytes + hl.body_bytes + 65536;
	if (l->tls && wpd_tls_new(l->tls, fd, &c->tls) < 0) {
		wpd_http_fini(&c->hp);
		close(fd);
		free(c);
		return;
	}
	if (l->uring) {
		c->uring = 1;
		wpd_usock_init(&c->us, fd, conn_ucqe, conn_free, c);
		if (wpd_uedge_recv(s->ue, &c->us) < 0) {
			wpd_http_fini(&c->hp);
			close(fd);
			free(c);
			return;
		}
	} else if (wpd_io_add(s->loop, &c->io, fd, EPOLLIN | EPOLLRDHUP, conn_io, c) < 0) {
		wpd_tls_free(c->tls);
		wpd_http_fini(&c->hp);
		close(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.conns_open++;
	s->st.conns_total++;
	c->phase = PH_IDLE;
	c->phase_ns = wpd_loop_now(s->loop);
	conn_arm_timer(c);
}

static void conn_close(struct conn *c)
{
	struct wpd_server *s = c->s;

	if (c->dead)
		return;
	c->dead = 1;
	if (c->ex.state == EX_HANDLING || c->ex.state == EX_STREAMING) {
		void (*fn)(void *) = c->ex.abort_fn;

		s->st.aborts++;
		c->ex.abort_fn = NULL;
		if (fn)
			fn(c->ex.abort_arg);
		ex_finish(&c->ex, 1);
	}
	wpd_timer_cancel(s->loop, &c->timer);
	if (!c->uring)
		wpd_io_del(s->loop, &c->io);
	if (c->paused) {
		struct conn **pp = &s->paused;

		while (*pp && *pp != c)
			pp = &(*pp)->pnext;
		if (*pp)
			*pp = c->pnext;
		c->paused = 0;
	}
	wpd_tls_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	wpd_http_fini(&c->hp);
	conn_recharge(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->st.conns_open--;
	listeners_kick(s);
	/* io_uring: freed (deferred) after the last completion of its
	 * requests, which this cancels; the socket may close first, each
	 * request holds the file. */
	if (c->uring) {
		wpd_uedge_close(s->ue, &c->us);
		return;
	}
	/* Deferred: an epoll event or a deferred flush of this round may
	 * still point at it. */
	if (wpd_defer(s->loop, conn_free, c) < 0)
		wpd_warn("out of memory: leaking a closed connection");
}

/* ------------------------------------------------------------------ */

void wpd_server_handler(struct wpd_server *s, wpd_handler_fn fn, void *arg)
{
	s->handler = fn;
	s->handler_arg = arg;
}

void wpd_server_on_done(struct wpd_server *s, wpd_ex_done_fn fn, void *arg)
{
	s->done_fn = fn;
	s->done_arg = arg;
}

void wpd_server_drain(struct wpd_server *s)
{
	s->draining = 1;
	for (uint32_t i = 0; i < s->nls; i++) {
		wpd_timer_cancel(s->loop, &s->ls[i].backoff);
		if (s->ls[i].uring)
			wpd_uedge_close(s->ue, &s->ls[i].us);
		else
			wpd_io_del(s->loop, &s->ls[i].io);
		if (s->ls[i].fd >= 0)
			close(s->ls[i].fd);
		s->ls[i].fd = -1;
	}
	for (struct conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		/* Idle keep-alive connections close now. The others (a request
		 * being received or answered) finish: the response says
		 * Connection: close (s->draining), and the connection closes
		 * after it; the drain timer bounds the stragglers. */
		if (c->ex.state == EX_NONE && !c->out.len && !c->tx.len && c->phase == PH_IDLE &&
		    !wpd_http_in_progress(&c->hp))
			conn_close(c);
	}
}

int wpd_server_drained(const struct wpd_server *s)
{
	return s->conns == NULL;
}

void wpd_server_stats(const struct wpd_server *s, struct wpd_server_stats *out)
{
	*out = s->st;
	out->rx_mem = s->rx_mem;
}

void wpd_server_destroy(struct wpd_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	for (uint32_t i = 0; i < s->nls; i++) {
		wpd_timer_cancel(s->loop, &s->ls[i].backoff);
		if (s->ls[i].uring)
			wpd_uedge_close(s->ue, &s->ls[i].us);
		else
			wpd_io_del(s->loop, &s->ls[i].io);
		if (s->ls[i].fd >= 0)
			close(s->ls[i].fd);
		wpd_tls_ctx_free(s->ls[i].tls);
	}
	/* After every owner closed: waits for the last completions, so the
	 * connections and listeners are no longer the kernel's. */
	wpd_uedge_destroy(s->ue);
	free(s->ls);
	wpd_gen_put(s->gen);
	free(s);
}
