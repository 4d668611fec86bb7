/* SPDX-License-Identifier: MIT */
/*
 * wirepathd's io_uring edge (docs/daemon.md, "Edge I/O"): one ring per
 * daemon, whose registered eventfd sits in the daemon's epoll loop. It
 * runs multishot accept on listeners, multishot receive into a provided
 * buffer ring on connections, and sends; everything queued in one loop
 * round goes to the kernel in one io_uring_submit at the end of the round.
 * server.c keeps the HTTP logic (parser, exchanges, limits, timeouts); only
 * the I/O is here.
 *
 * Lifetime: a socket (struct wpd_usock, embedded in its owner) counts its
 * requests in the kernel. wpd_uedge_close cancels them; the owner's release
 * callback runs (from a deferred call) only after the last one's final
 * completion, so the kernel never completes into freed memory.
 */
#ifndef WPD_UEDGE_H
#define WPD_UEDGE_H

#include <stddef.h>
#include <stdint.h>

struct wpd_loop;
struct wpd_uedge;

enum wpd_uop { WPD_UOP_ACCEPT = 1, WPD_UOP_RECV = 2, WPD_UOP_SEND = 3 };

/* One completion: res is the kernel's (an fd, a byte count, -errno); data
 * is the received bytes for RECV (valid only during the call); more is 1
 * when a multishot request stays armed. */
typedef void (*wpd_usock_fn)(void *arg, enum wpd_uop op, int res, const void *data, int more);

struct wpd_usock {
	int fd;
	uint32_t pending; /* requests whose final completion has not come */
	uint8_t accepting, receiving, sending;
	uint8_t closed;
	wpd_usock_fn fn;
	void (*release)(void *arg); /* after close, at the last completion */
	void *arg;
} __attribute__((aligned(8))); /* user_data = address | op */

struct wpd_uedge_stats {
	uint64_t submits; /* io_uring_submit calls that entered the kernel */
	uint64_t sqes, cqes;
	uint64_t wakeups; /* eventfd callbacks */
};

/* Create the ring (no DEFER_TASKRUN: the eventfd must fire for every
 * completion, docs/architecture.md "Embedding") and join l. Returns 0, or
 * -errno with why filled (the call or probe that failed) when the kernel
 * lacks io_uring or a feature the edge needs. */
int wpd_uedge_create(struct wpd_loop *l, struct wpd_uedge **out, char *why, size_t whylen);
/* Cancel everything, wait (bounded) for the completions so every release
 * callback runs, and free the ring. */
void wpd_uedge_destroy(struct wpd_uedge *u);

void wpd_usock_init(struct wpd_usock *s, int fd, wpd_usock_fn fn, void (*release)(void *),
		    void *arg);
/* Queue requests (submitted at the end of the round). 0 or -errno. */
int wpd_uedge_accept(struct wpd_uedge *u, struct wpd_usock *s);
int wpd_uedge_recv(struct wpd_uedge *u, struct wpd_usock *s);
/* buf must stay untouched until the SEND completion. */
int wpd_uedge_send(struct wpd_uedge *u, struct wpd_usock *s, const void *buf, size_t len);
/* Cancel a socket's request of kind op (no-op if none is in flight). */
void wpd_uedge_cancel(struct wpd_uedge *u, struct wpd_usock *s, enum wpd_uop op);
/* The owner is done: cancel what is in flight, then release (deferred). The
 * caller may close s->fd at once (requests hold their own file reference). */
void wpd_uedge_close(struct wpd_uedge *u, struct wpd_usock *s);
void wpd_uedge_stats(const struct wpd_uedge *u, struct wpd_uedge_stats *out);

#endif
