// SPDX-License-Identifier: MIT
/*
 * A test backend, and the proof that the backend interface is right: `mem`,
 * a connected pair inside one process (the two sides may run on different
 * threads), in a few hundred lines that touch nothing outside this file but
 * the line in tests/meson.build that links it into the integration tests.
 * They then run over it like over any path (tests/run.sh: --path mem).
 *
 * It is a stream path (WP_CAP_STREAM): frames queue in the core's transmit
 * queue, the flush copies iovecs into a byte pipe, and the poll hands
 * whatever chunk it reads to the core's parser, so frames arrive split at
 * arbitrary points, as on TCP. It is not WP_CAP_INET: `any` and `prefer`
 * never pick it. Addresses are host:port, the port naming a listener in a
 * process-wide table (port 0 picks a free one).
 *
 * Each direction is a ring of MEM_PIPE bytes under the pair's mutex; each
 * side has an eventfd, rung when there is something for it (data, room,
 * the peer's close), which its context waits on with epoll. The pair and
 * its eventfds live until both sides let go.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"

#define MEM_PIPE (256u << 10)
#define MEM_RBUF (64u << 10)
#define MEM_BACKLOG 64
#define MEM_EVENTS 64
#define MEM_MAX_LISTENERS 64

struct mem_pipe { /* bytes written by one side, read by the other */
	uint8_t buf[MEM_PIPE];
	uint64_t rd, wr; /* absolute offsets: wr - rd bytes are queued */
	bool closed;     /* the writer let go: EOF after the bytes */
	bool want_room;  /* the writer waits for the reader to make room */
};

struct mem_pair {
	pthread_mutex_t mu;
	struct mem_pipe dir[2]; /* dir[s] is written by side s */
	int efd[2];             /* side s's doorbell */
	int refs;               /* sides (and a listener's queue) holding it */
};

struct mem_listener {
	int port, efd;
	struct mem_pair *queue[MEM_BACKLOG]; /* connected, not accepted yet */
	int nq;
};

struct mem_ep {
	struct mem_pair *pair; /* connection, or NULL */
	int side;
	struct mem_listener *l; /* listening endpoint, or NULL */
	uint8_t rbuf[MEM_RBUF];
};

struct mem_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[MEM_EVENTS];
};

/* The process-wide listener table (the two sides are different contexts). */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mem_listener *listeners[MEM_MAX_LISTENERS];
static int next_port = 1;

static struct mem_ep *mep(const struct wp_ep *ep)
{
	return ep->bk;
}

static void ring(int efd)
{
	static const uint64_t one = 1;

	if (write(efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the side wakes anyway. */
	}
}

static struct mem_pair *pair_new(void)
{
	struct mem_pair *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd[0] < 0 || p->efd[1] < 0) {
		close(p->efd[0]);
		close(p->efd[1]);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->refs = 2;
	return p;
}

/* Side s lets go: the peer sees EOF once it has read what was written. */
static void pair_release(struct mem_pair *p, int s)
{
	bool last;

	pthread_mutex_lock(&p->mu);
	p->dir[s].closed = true;
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (!last) {
		ring(p->efd[1 - s]);
		return;
	}
	close(p->efd[0]);
	close(p->efd[1]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int watch(struct wp_ep *ep, int efd)
{
	return wp_epoll_ctl(ep->ctx, EPOLL_CTL_ADD, efd, EPOLLIN, (uintptr_t)ep);
}

/* ---- control ------------------------------------------------------- */

static int mem_available(char *why, size_t len)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0) {
		snprintf(why, len, "eventfd: %s", strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

static void mem_probe(void)
{
	char why[120] = "";
	int ret = mem_available(why, sizeof(why));

	wp_probe_add("path.mem", ret, ret ? "%s" : "in-process pair for tests%s", ret ? why : "");
}

static int mem_init(struct wp_ctx *ctx)
{
	return wp_epoll_bk_init(ctx, sizeof(struct mem_ctx));
}

static int sa_port(const struct sockaddr *sa)
{
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static int mem_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct mem_listener *l = calloc(1, sizeof(*l));
	struct mem_ep *me = mep(ep);
	int port = sa_port(sa), slot = -1, ret = 0;

	if (!l)
		return -ENOMEM;
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0 || (ret = watch(ep, l->efd)) < 0) {
		ret = l->efd < 0 ? -errno : ret;
		goto out_free;
	}
	pthread_mutex_lock(&mem_lock);
	if (!port)
		port = next_port++;
	for (int i = 0; i < MEM_MAX_LISTENERS; i++) {
		if (listeners[i] && listeners[i]->port == port) {
			slot = -2;
			break;
		}
		if (!listeners[i] && slot == -1)
			slot = i;
	}
	if (slot >= 0) {
		l->port = port;
		listeners[slot] = l;
	}
	pthread_mutex_unlock(&mem_lock);
	if (slot < 0) {
		ret = slot == -2 ? -EADDRINUSE : -ENOSPC;
		goto out_free;
	}
	me->l = l;
	ep->local_port = port;
	ep->state = WP_EPS_LISTEN;
	return 0;

out_free:
	if (l->efd >= 0)
		close(l->efd);
	free(l);
	return ret;
}

static int mem_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct mem_ep *me = mep(ep);
	struct mem_listener *l = NULL;
	struct mem_pair *p = pair_new();
	int ret;

	if (!p)
		return -ENOMEM;
	ret = watch(ep, p->efd[0]);
	if (ret < 0) {
		pair_release(p, 0);
		pair_release(p, 1);
		return ret;
	}
	pthread_mutex_lock(&mem_lock);
	for (int i = 0; i < MEM_MAX_LISTENERS; i++)
		if (listeners[i] && listeners[i]->port == sa_port(sa))
			l = listeners[i];
	if (!l)
		ret = -ECONNREFUSED;
	else if (l->nq == MEM_BACKLOG)
		ret = -EAGAIN;
	else
		l->queue[l->nq++] = p;
	pthread_mutex_unlock(&mem_lock);
	if (ret < 0) {
		pair_release(p, 0);
		pair_release(p, 1);
		return ret;
	}
	ring(l->efd);
	me->pair = p;
	me->side = 0;
	ep->state = WP_EPS_CONNECTING;
	/* Completion is reported from the next poll, never inside this call. */
	ring(p->efd[0]);
	return 0;
}

static void mem_close(struct wp_ep *ep)
{
	struct mem_ep *me = mep(ep);

	if (me->pair) {
		wp_epoll_ctl(ep->ctx, EPOLL_CTL_DEL, me->pair->efd[me->side], 0, 0);
		pair_release(me->pair, me->side);
		me->pair = NULL;
	}
	if (me->l) {
		pthread_mutex_lock(&mem_lock);
		for (int i = 0; i < MEM_MAX_LISTENERS; i++)
			if (listeners[i] == me->l)
				listeners[i] = NULL;
		pthread_mutex_unlock(&mem_lock);
		/* Connections never accepted: their connectors see EOF. */
		for (int i = 0; i < me->l->nq; i++)
			pair_release(me->l->queue[i], 1);
		close(me->l->efd);
		free(me->l);
		me->l = NULL;
	}
}

/* ---- data path ------------------------------------------------------ */

/* The transmit burst: copy what fits from the transmit queue into the pipe. */
static void mem_flush(struct wp_ep *ep)
{
	struct mem_ep *me = mep(ep);
	struct mem_pipe *d = &me->pair->dir[me->side];
	struct iovec iov[WP_IOV_MAX];
	uint64_t idx = ep->tx.sent;
	size_t bytes, done = 0;
	int n;

	if (!wp_txq_pending(&ep->tx))
		return;
	n = wp_txq_iov(&ep->tx, &idx, ep->tx.sent_off, iov, WP_IOV_MAX, &bytes, false, NULL);
	pthread_mutex_lock(&me->pair->mu);
	for (int i = 0; i < n; i++) {
		const uint8_t *src = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left && d->wr - d->rd < MEM_PIPE) {
			size_t at = d->wr % MEM_PIPE, room = MEM_PIPE - (d->wr - d->rd);
			size_t k = left < room ? left : room;

			if (k > MEM_PIPE - at)
				k = MEM_PIPE - at;
			memcpy(d->buf + at, src, k);
			d->wr += k;
			src += k;
			left -= k;
			done += k;
		}
	}
	d->want_room = done < bytes; /* the reader rings us when it made room */
	pthread_mutex_unlock(&me->pair->mu);
	if (done)
		ring(me->pair->efd[1 - me->side]);
	wp_txq_advance(ep, done, true);
}

static const struct wp_fast_ops mem_fast = { .flush = mem_flush };

/* Read what the peer wrote, chunk by chunk, into the parser. */
static void mem_read(struct wp_ep *ep)
{
	struct mem_ep *me = mep(ep);

	while (ep->state == WP_EPS_OPEN && !ep->rx_paused) {
		struct mem_pair *p = me->pair;
		struct mem_pipe *d = &p->dir[1 - me->side];
		bool eof, room_wanted;
		size_t n;

		pthread_mutex_lock(&p->mu);
		n = d->wr - d->rd;
		if (n > MEM_RBUF)
			n = MEM_RBUF;
		for (size_t k = 0; k < n;) {
			size_t at = (d->rd + k) % MEM_PIPE, c = n - k;

			if (c > MEM_PIPE - at)
				c = MEM_PIPE - at;
			memcpy(me->rbuf + k, d->buf + at, c);
			k += c;
		}
		d->rd += n;
		eof = d->closed && d->rd == d->wr;
		room_wanted = n && d->want_room;
		pthread_mutex_unlock(&p->mu);
		if (room_wanted)
			ring(p->efd[1 - me->side]);
		if (n && wp_conn_input(ep, me->rbuf, n) < 0)
			return;
		if (eof) {
			wp_conn_eof(ep);
			return;
		}
		if (!n)
			return;
	}
}

/* Stop or resume input (limits.c): the doorbell leaves the epoll interest;
 * the pipe (or the listen queue) holds what arrives. Resuming rings our own
 * doorbell, so what waited is read at the next poll. */
static void mem_rx_pause(struct wp_ep *ep, bool pause)
{
	struct mem_ep *me = mep(ep);
	int efd = me->l ? me->l->efd : me->pair ? me->pair->efd[me->side] : -1;

	if (efd < 0)
		return;
	wp_epoll_ctl(ep->ctx, EPOLL_CTL_MOD, efd, pause ? 0 : EPOLLIN, (uintptr_t)ep);
	if (!pause)
		ring(efd);
}

static void mem_accept(struct wp_ep *l)
{
	struct mem_listener *ml = mep(l)->l;

	for (;;) {
		struct mem_pair *p = NULL;
		struct wp_admit adm;
		struct wp_ep *ep;
		int ret;

		pthread_mutex_lock(&mem_lock);
		if (ml->nq) {
			p = ml->queue[0];
			memmove(ml->queue, ml->queue + 1, --ml->nq * sizeof(ml->queue[0]));
		}
		pthread_mutex_unlock(&mem_lock);
		if (!p)
			return;
		if (wp_conn_admit(l->ctx, NULL, 0, &adm) < 0) {
			pair_release(p, 1);
			continue;
		}
		ep = wp_ep_alloc(l->ctx, &l->cbs);
		if (!ep) {
			pair_release(p, 1);
			continue;
		}
		mep(ep)->pair = p;
		mep(ep)->side = 1;
		ep->accepted = true;
		wp_conn_admitted(ep, &adm);
		ret = watch(ep, p->efd[1]);
		if (ret < 0) {
			wp_ep_accept_failed(ep, ret); /* releases the pair (mem_close) */
			continue;
		}
		wp_conn_established(ep);
		ring(p->efd[1]); /* bytes written before the accept */
	}
}

static int mem_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct mem_ctx *mc = ctx->bk;
	int n = wp_epoll_wait(ctx, mc->ev, MEM_EVENTS, timeout_us);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct wp_ep *ep = mc->ev[i].data.ptr;
		struct mem_ep *me = mep(ep);
		uint64_t cnt;

		if (ep->state == WP_EPS_CLOSED)
			continue;
		if (read(me->l ? me->l->efd : me->pair->efd[me->side], &cnt, sizeof(cnt)) < 0) {
			/* EAGAIN: an earlier event in this batch reset it. */
		}
		if (ep->state == WP_EPS_LISTEN) {
			mem_accept(ep);
			continue;
		}
		if (ep->state == WP_EPS_CONNECTING)
			wp_conn_established(ep);
		mem_read(ep);
		if (ep->state == WP_EPS_OPEN && wp_txq_pending(&ep->tx))
			wp_ctx_mark_dirty(ep); /* room may have appeared */
	}
	return n;
}

static void mem_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	snprintf(buf, len,
		 "in-process byte pipes of %u KiB per direction (a test backend), eventfd "
		 "doorbells, epoll",
		 MEM_PIPE >> 10);
}

static const struct wp_backend_ops wp_mem_ops = {
	.name = "mem",
	.caps = WP_CAP_STREAM,
	.fast = &mem_fast,
	.available = mem_available,
	.probe = mem_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = mem_init,
	.fini = wp_epoll_bk_fini,
	.listen = mem_listen,
	.connect = mem_connect,
	.close = mem_close,
	.poll = mem_poll,
	.explain = mem_explain,
	.mem_register = wp_no_mem_register,
	.mem_unregister = wp_no_mem_unregister,
	.ep_size = sizeof(struct mem_ep),
	.ep_init = wp_no_ep_init,
	.ep_free = mem_close, /* idempotent; a failed listen or connect was never closed */
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = wp_no_mr_exported,
	.xfer_direct = wp_no_xfer_direct,
	.pools = wp_no_pools,
	.rx_pause = mem_rx_pause,
	.fd = wp_epoll_fd, /* level-triggered: an outer epoll may watch it */
	.arm = wp_epoll_arm,
};

__attribute__((constructor)) static void mem_register(void)
{
	wp_backend_register(&wp_mem_ops);
}
