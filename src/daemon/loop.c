// SPDX-License-Identifier: MIT
/*
 * The daemon's event loop (loop.h): epoll for fds, a binary min-heap for
 * timers, a deferred-call list, and the wirepath contexts of native
 * backends driven through the embedding API: before sleeping each context
 * is armed (wp_ctx_arm: -EAGAIN means it has work now, so progress it and
 * arm again), its fd sits in our epoll set, and its timer bound caps the
 * sleep. One thread, no locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wirepath/wirepath.h>

#include "daemon/log.h"
#include "daemon/loop.h"

#define LOOP_EVENTS 256
#define LOOP_MAX_CTX 16

struct loop_ctx {
	struct wp_ctx *ctx;
	int fd; /* -1 until the path started */
	struct wpd_io io;
	int ready;
};

struct loop_defer {
	void (*fn)(void *arg);
	void *arg;
};

struct wpd_loop {
	int epfd;
	uint64_t now;
	struct wpd_timer **heap;
	uint32_t nheap, heap_cap;
	struct loop_defer *defer;
	uint32_t ndefer, defer_cap;
	struct loop_ctx ctx[LOOP_MAX_CTX];
	uint32_t nctx;
	struct epoll_event ev[LOOP_EVENTS];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wpd_loop_create(struct wpd_loop **out)
{
	struct wpd_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	l->now = mono_ns();
	*out = l;
	return 0;
}

void wpd_loop_destroy(struct wpd_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	free(l);
}

uint64_t wpd_loop_now(const struct wpd_loop *l)
{
	return l->now;
}

int wpd_io_add(struct wpd_loop *l, struct wpd_io *io, int fd, uint32_t events, wpd_io_fn fn,
	       void *arg)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->fn = fn;
	io->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	io->live = 1;
	return 0;
}

int wpd_io_mod(struct wpd_loop *l, struct wpd_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (!io->live)
		return -EINVAL;
	if (io->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	return 0;
}

/* An io deleted during a round may still have an event in l->ev: the
 * dispatch loop checks `live` through the pointer, so the owner must keep
 * the io's memory until the round ends (owners free through wpd_defer). */
void wpd_io_del(struct wpd_loop *l, struct wpd_io *io)
{
	if (!io->live)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->live = 0;
	for (uint32_t i = 0; i < LOOP_EVENTS; i++)
		if (l->ev[i].data.ptr == io)
			l->ev[i].data.ptr = NULL;
}

/* ---- timers: a binary min-heap of pointers, slot = index + 1 ---- */

static void heap_set(struct wpd_loop *l, uint32_t i, struct wpd_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct wpd_loop *l, uint32_t i)
{
	struct wpd_timer *t = l->heap[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (l->heap[p]->at_ns <= t->at_ns)
			break;
		heap_set(l, i, l->heap[p]);
		i = p;
	}
	heap_set(l, i, t);
}

static void heap_down(struct wpd_loop *l, uint32_t i)
{
	struct wpd_timer *t = l->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->at_ns < l->heap[c]->at_ns)
			c++;
		if (t->at_ns <= l->heap[c]->at_ns)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void wpd_timer_cancel(struct wpd_loop *l, struct wpd_timer *t)
{
	uint32_t i;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->slot = i + 1;
	heap_down(l, i);
	heap_up(l, l->heap[i]->slot - 1);
}

void wpd_timer_arm(struct wpd_loop *l, struct wpd_timer *t, uint64_t delay_ns, wpd_timer_fn fn,
		   void *arg)
{
	wpd_timer_cancel(l, t);
	t->fn = fn;
	t->arg = arg;
	t->at_ns = mono_ns() + delay_ns;
	if (l->nheap == l->heap_cap) {
		uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct wpd_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h) {
			/* Out of memory growing the heap (a few KiB): a timer
			 * that silently never fires would leave a connection or
			 * a call unbounded, so the daemon stops loudly instead
			 * (systemd restarts it). */
			wpd_err("out of memory arming a timer; exiting");
			abort();
		}
		l->heap = h;
		l->heap_cap = cap;
	}
	heap_set(l, l->nheap++, t);
	heap_up(l, l->nheap - 1);
}

static int timers_run(struct wpd_loop *l)
{
	int n = 0;

	while (l->nheap && l->heap[0]->at_ns <= l->now) {
		struct wpd_timer *t = l->heap[0];

		wpd_timer_cancel(l, t);
		t->fn(t->arg);
		n++;
	}
	return n;
}

/* ---- deferred calls ---- */

int wpd_defer(struct wpd_loop *l, void (*fn)(void *arg), void *arg)
{
	if (l->ndefer == l->defer_cap) {
		uint32_t cap = l->defer_cap ? l->defer_cap * 2 : 64;
		struct loop_defer *d = realloc(l->defer, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		l->defer = d;
		l->defer_cap = cap;
	}
	l->defer[l->ndefer++] = (struct loop_defer){ fn, arg };
	return 0;
}

static int defer_run(struct wpd_loop *l)
{
	int n = 0;

	/* Deferred calls may defer more: run until empty, in order. */
	for (uint32_t i = 0; i < l->ndefer; i++, n++)
		l->defer[i].fn(l->defer[i].arg);
	l->ndefer = 0;
	return n;
}

/* ---- wirepath contexts ---- */

static void ctx_ready(void *arg, uint32_t events)
{
	struct loop_ctx *c = arg;

	c->ready = 1;
}

int wpd_loop_add_ctx(struct wpd_loop *l, struct wp_ctx *ctx)
{
	struct loop_ctx *c;

	if (l->nctx == LOOP_MAX_CTX)
		return -ENOSPC;
	c = &l->ctx[l->nctx++];
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->fd = -1;
	return 0;
}

void wpd_loop_del_ctx(struct wpd_loop *l, struct wp_ctx *ctx)
{
	for (uint32_t i = 0; i < l->nctx; i++) {
		if (l->ctx[i].ctx != ctx)
			continue;
		wpd_io_del(l, &l->ctx[i].io);
		l->ctx[i] = l->ctx[--l->nctx];
		/* The moved entry's io is registered with its old address. */
		if (i < l->nctx && l->ctx[i].io.live) {
			wpd_io_del(l, &l->ctx[i].io);
			wpd_io_add(l, &l->ctx[i].io, l->ctx[i].fd, EPOLLIN, ctx_ready, &l->ctx[i]);
		}
		return;
	}
}

/* Progress every context until it has nothing to do now, and arm it for
 * sleeping. Returns the shortest sleep the contexts allow (-1 = any). */
static int64_t ctx_arm_all(struct wpd_loop *l, int *work)
{
	int64_t cap = -1;

	for (uint32_t i = 0; i < l->nctx; i++) {
		struct loop_ctx *c = &l->ctx[i];
		int64_t t = -1;
		int ret, spins = 0;

		if (c->fd < 0) {
			int fd = wp_ctx_fd(c->ctx);

			if (fd >= 0 && wpd_io_add(l, &c->io, fd, EPOLLIN, ctx_ready, c) == 0)
				c->fd = fd;
		}
		if (c->fd < 0) {
			/* Path not started: progress each round, never sleep long. */
			*work += wp_ctx_progress(c->ctx, 0) > 0;
			if (cap < 0 || cap > 10000)
				cap = 10000;
			continue;
		}
		while ((ret = wp_ctx_arm(c->ctx, &t)) == -EAGAIN) {
			int n = wp_ctx_progress(c->ctx, 0);

			*work += n > 0;
			/* Bounded: a context with endless work must not starve
			 * the HTTP side; come back without sleeping. */
			if (++spins == 64) {
				t = 0;
				break;
			}
		}
		if (ret < 0 && ret != -EAGAIN)
			t = 1000; /* cannot arm: poll it every ms */
		if (t >= 0 && (cap < 0 || t < cap))
			cap = t;
	}
	return cap;
}

int wpd_loop_run_once(struct wpd_loop *l, int64_t timeout_us)
{
	int n = 0, nev, work = 0;
	int64_t cap;

	l->now = mono_ns();
	n += timers_run(l);
	n += defer_run(l);
	cap = ctx_arm_all(l, &work);
	if (work || l->ndefer)
		timeout_us = 0;
	if (cap >= 0 && (timeout_us < 0 || cap < timeout_us))
		timeout_us = cap;
	if (l->nheap) {
		uint64_t now = mono_ns();
		int64_t t = l->heap[0]->at_ns > now
				    ? (int64_t)((l->heap[0]->at_ns - now + 999) / 1000)
				    : 0;

		if (timeout_us < 0 || t < timeout_us)
			timeout_us = t;
	}
	/* epoll_wait has ms resolution: round up so a timer is never early
	 * by a whole round (the sub-ms rest is spent in one more round). */
	int ms = timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000);

	nev = epoll_wait(l->epfd, l->ev, LOOP_EVENTS, ms);
	if (nev < 0) {
		if (errno == EINTR)
			nev = 0;
		else
			return -errno;
	}
	l->now = mono_ns();
	for (int i = 0; i < nev; i++) {
		struct wpd_io *io = l->ev[i].data.ptr;

		if (!io || !io->live)
			continue; /* deleted by an earlier callback this round */
		io->fn(io->arg, l->ev[i].events);
		n++;
	}
	memset(l->ev, 0, sizeof(l->ev[0]) * (size_t)(nev > 0 ? nev : 0));
	for (uint32_t i = 0; i < l->nctx; i++) {
		if (l->ctx[i].ready || l->ctx[i].fd < 0) {
			l->ctx[i].ready = 0;
			n += wp_ctx_progress(l->ctx[i].ctx, 0) > 0;
		}
	}
	n += timers_run(l);
	n += defer_run(l);
	return n;
}
