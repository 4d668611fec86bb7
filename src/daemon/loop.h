/* SPDX-License-Identifier: MIT */
/*
 * The daemon's event loop: one thread, one epoll instance, a timer heap and
 * deferred calls, driving the wirepath contexts of native backends through
 * the library's embedding API (wp_ctx_fd, wp_ctx_arm). Everything in the
 * daemon runs from here: client connections, upstream HTTP connections,
 * stdio children, timers.
 *
 * Callbacks run from wpd_loop_run_once, never from inside the call that
 * registered them. A callback may add, change or delete any watch or timer,
 * its own included.
 */
#ifndef WPD_LOOP_H
#define WPD_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct wpd_loop;
struct wp_ctx;

typedef void (*wpd_io_fn)(void *arg, uint32_t events);

/* One watched fd. Embedded in its owner; valid from wpd_io_add to wpd_io_del. */
struct wpd_io {
	int fd;
	uint32_t events; /* EPOLLIN, EPOLLOUT, ... as last set (level-triggered) */
	wpd_io_fn fn;
	void *arg;
	int live; /* 1 between add and del */
};

typedef void (*wpd_timer_fn)(void *arg);

/* One timer. Embedded in its owner; zero it before first use. */
struct wpd_timer {
	uint64_t at_ns; /* CLOCK_MONOTONIC when due */
	uint32_t slot;  /* heap index + 1; 0 = not armed */
	wpd_timer_fn fn;
	void *arg;
};

int wpd_loop_create(struct wpd_loop **out);
/* Frees the loop; watches and timers must be gone (their owners' job). */
void wpd_loop_destroy(struct wpd_loop *l);

/* Watch fd for events (EPOLLIN | EPOLLOUT | EPOLLRDHUP ...). Returns 0 or -errno. */
int wpd_io_add(struct wpd_loop *l, struct wpd_io *io, int fd, uint32_t events, wpd_io_fn fn,
	       void *arg);
int wpd_io_mod(struct wpd_loop *l, struct wpd_io *io, uint32_t events);
/* Stop watching (does not close the fd). Safe on an io never added. */
void wpd_io_del(struct wpd_loop *l, struct wpd_io *io);

/* Arm (or re-arm) t to fire once after delay_ns. */
void wpd_timer_arm(struct wpd_loop *l, struct wpd_timer *t, uint64_t delay_ns, wpd_timer_fn fn,
		   void *arg);
/* Disarm; safe on a timer never armed. */
void wpd_timer_cancel(struct wpd_loop *l, struct wpd_timer *t);
static inline int wpd_timer_armed(const struct wpd_timer *t)
{
	return t->slot != 0;
}

/* Drive ctx from this loop (its fd joins the epoll set once its path has
 * started; until then it is progressed every round without waiting on it).
 * Returns 0 or -errno. */
int wpd_loop_add_ctx(struct wpd_loop *l, struct wp_ctx *ctx);
void wpd_loop_del_ctx(struct wpd_loop *l, struct wp_ctx *ctx);

/* Run fn(arg) at the end of this round (or the next, when called outside
 * one), after I/O callbacks. Returns 0 or -ENOMEM. */
int wpd_defer(struct wpd_loop *l, void (*fn)(void *arg), void *arg);

/* One round: wait up to timeout_us (-1 forever, bounded by timers and the
 * contexts' own timers), run ready callbacks, due timers, deferred calls,
 * and progress every context. Returns the number of callbacks run, or
 * -errno if epoll failed (EINTR is 0: a signal is the caller's business). */
int wpd_loop_run_once(struct wpd_loop *l, int64_t timeout_us);

/* CLOCK_MONOTONIC in ns, read at the start of the round (cheap). */
uint64_t wpd_loop_now(const struct wpd_loop *l);

#endif
