// SPDX-License-Identifier: MIT
/*
 * epoll for the paths that wait in it (tcp, shm, the mem test backend): the
 * context's epoll fd, watching fds, and one wait with a microsecond timeout
 * (epoll_pwait2: a millisecond-rounded epoll_wait would turn a 50 us deadline
 * into 1 ms). Every syscall is counted for the meter. Written once here so
 * no path copies the set-up. The epoll fd is also what an embedding loop
 * watches (wp_ctx_fd).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* ctx->bk of a path waiting in epoll starts with this. */
struct wp_epoll_bk {
	int epfd;
};

static int epfd_of(struct wp_ctx *ctx)
{
	return ((struct wp_epoll_bk *)ctx->bk)->epfd;
}

int wp_epoll_bk_init(struct wp_ctx *ctx, size_t size)
{
	struct wp_epoll_bk *b = calloc(1, size);

	if (!b)
		return -ENOMEM;
	WP_SYSCALL(WP_SYS_OTHER);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		int err = -errno;

		free(b);
		return err;
	}
	ctx->bk = b;
	return 0;
}

void wp_epoll_bk_fini(struct wp_ctx *ctx)
{
	struct wp_epoll_bk *b = ctx->bk;

	if (!b)
		return;
	WP_SYSCALL(WP_SYS_CLOSE);
	close(b->epfd);
	free(b);
	ctx->bk = NULL;
}

int wp_epoll_ctl(struct wp_ctx *ctx, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	WP_SYSCALL(WP_SYS_EPOLL_CTL);
	return epoll_ctl(epfd_of(ctx), op, fd, &ev) < 0 ? -errno : 0;
}

/* epoll_pwait2 is Linux 5.11; valgrind 3.19 (Debian 12) does not know it and
 * answers ENOSYS. Then, once and for the process, millisecond waits rounded
 * up (never shorter than asked). Relaxed: every thread finds the same. */
static int no_pwait2;

int wp_epoll_wait(struct wp_ctx *ctx, struct epoll_event *ev, int max, int64_t timeout_us)
{
	struct timespec ts, *tsp = NULL;
	int n;

	if (!__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
		if (timeout_us >= 0) {
			ts.tv_sec = timeout_us / 1000000;
			ts.tv_nsec = (timeout_us % 1000000) * 1000;
			tsp = &ts;
		}
		WP_SYSCALL(WP_SYS_EPOLL_WAIT);
		n = epoll_pwait2(epfd_of(ctx), ev, max, tsp, NULL);
		if (n >= 0)
			return n;
		if (errno != ENOSYS)
			return errno == EINTR ? 0 : -errno;
		__atomic_store_n(&no_pwait2, 1, __ATOMIC_RELAXED);
	}
	WP_SYSCALL(WP_SYS_EPOLL_WAIT);
	n = epoll_wait(epfd_of(ctx), ev, max,
		       timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n;
}

/* Embedding (wp_ctx_fd): a level-triggered epoll fd is itself readable while
 * any descriptor in its set is ready, so an outer epoll may watch it. */
int wp_epoll_fd(struct wp_ctx *ctx)
{
	return epfd_of(ctx);
}

/*
 * Nothing to arm: the core's flush has written what it could, a blocked
 * write waits for EPOLLOUT in the set, input is level-triggered (bytes a
 * round left unread keep their fd ready), and paused reads come back through
 * the limits poller's timeout.
 */
int wp_epoll_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	(void)ctx;
	(void)timeout_us;
	return 0;
}
