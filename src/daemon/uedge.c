// SPDX-License-Identifier: MIT
/*
 * wirepathd's io_uring edge (uedge.h). Kernel behaviour it relies on:
 * - multishot accept and multishot receive with a provided buffer ring
 *   (Linux 6.0; liburing 2.3's io_uring_register_buf_ring);
 * - a multishot request's completions carry IORING_CQE_F_MORE while it stays
 *   armed; the one without it is its last (an error, -ENOBUFS when the
 *   buffer ring ran dry, -ECANCELED, EOF), after which its memory is ours;
 * - cancelling by user_data does not need the fd, so an owner may close its
 *   socket at once: each request holds its own reference to the file.
 * The ring is set up without DEFER_TASKRUN: with it, epoll on the ring (or
 * its eventfd) does not wake for task work (docs/architecture.md,
 * "Embedding"); without it the registered eventfd fires for each completion.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/uedge.h"

void wpd_usock_init(struct wpd_usock *s, int fd, wpd_usock_fn fn, void (*release)(void *),
		    void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->fn = fn;
	s->release = release;
	s->arg = arg;
}

#ifndef WPD_HAVE_URING

int wpd_uedge_create(struct wpd_loop *l, struct wpd_uedge **out, char *why, size_t whylen)
{
	(void)l;
	*out = NULL;
	snprintf(why, whylen, "built without liburing (Debian: liburing-dev)");
	return -EOPNOTSUPP;
}
void wpd_uedge_destroy(struct wpd_uedge *u)
{
	(void)u;
}
int wpd_uedge_accept(struct wpd_uedge *u, struct wpd_usock *s)
{
	(void)u, (void)s;
	return -EOPNOTSUPP;
}
int wpd_uedge_recv(struct wpd_uedge *u, struct wpd_usock *s)
{
	(void)u, (void)s;
	return -EOPNOTSUPP;
}
int wpd_uedge_send(struct wpd_uedge *u, struct wpd_usock *s, const void *buf, size_t len)
{
	(void)u, (void)s, (void)buf, (void)len;
	return -EOPNOTSUPP;
}
void wpd_uedge_cancel(struct wpd_uedge *u, struct wpd_usock *s, enum wpd_uop op)
{
	(void)u, (void)s, (void)op;
}
void wpd_uedge_close(struct wpd_uedge *u, struct wpd_usock *s)
{
	(void)u, (void)s;
}
void wpd_uedge_stats(const struct wpd_uedge *u, struct wpd_uedge_stats *out)
{
	(void)u;
	memset(out, 0, sizeof(*out));
}

#else

#include <liburing.h>

#define UEDGE_ENTRIES 4096
#define UEDGE_NBUFS 512 /* power of two */
#define UEDGE_BUF_SIZE (16u << 10)
#define UEDGE_BGID 0
#define UD_OP_MASK 3ull

struct wpd_uedge {
	struct wpd_loop *loop;
	struct io_uring ring;
	int efd;
	struct wpd_io io;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;
	unsigned unsubmitted;
	int submit_queued;
	int destroying;
	struct wpd_uedge_stats st;
};

static uint64_t ud_of(struct wpd_usock *s, enum wpd_uop op)
{
	return (uint64_t)(uintptr_t)s | (uint64_t)op;
}

static void uedge_submit(void *arg)
{
	struct wpd_uedge *u = arg;
	int ret;

	u->submit_queued = 0;
	if (!u->unsubmitted)
		return;
	ret = io_uring_submit(&u->ring);
	u->st.submits++;
	if (ret < 0) {
		/* EAGAIN/EBUSY: the kernel is short of memory or the CQ is
		 * full; the next round tries again (completions drain the CQ). */
		wpd_log_rl("uring-submit", WP_LOG_WARN, "io_uring_submit: %s", strerror(-ret));
		if (ret == -EAGAIN || ret == -EBUSY || ret == -EINTR)
			wpd_defer(u->loop, uedge_submit, u), u->submit_queued = 1;
		return;
	}
	u->unsubmitted = 0;
}

/* An SQE, submitting what is queued when the SQ is full. The submit at the
 * end of the round is queued here: one io_uring_enter for the round. */
static struct io_uring_sqe *uedge_sqe(struct wpd_uedge *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		u->st.submits++;
		if (io_uring_submit(&u->ring) >= 0)
			u->unsubmitted = 0;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return NULL;
	}
	u->unsubmitted++;
	u->st.sqes++;
	if (!u->submit_queued && !u->destroying) {
		if (wpd_defer(u->loop, uedge_submit, u) == 0)
			u->submit_queued = 1;
	}
	return sqe;
}

int wpd_uedge_accept(struct wpd_uedge *u, struct wpd_usock *s)
{
	struct io_uring_sqe *sqe;

	if (s->accepting || s->closed)
		return 0;
	sqe = uedge_sqe(u);
	if (!sqe)
		return -EBUSY;
	/* No address: the server asks getpeername for the peer's. */
	io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_of(s, WPD_UOP_ACCEPT));
	s->accepting = 1;
	s->pending++;
	return 0;
}

int wpd_uedge_recv(struct wpd_uedge *u, struct wpd_usock *s)
{
	struct io_uring_sqe *sqe;

	if (s->receiving || s->closed)
		return 0;
	sqe = uedge_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UEDGE_BGID;
	io_uring_sqe_set_data64(sqe, ud_of(s, WPD_UOP_RECV));
	s->receiving = 1;
	s->pending++;
	return 0;
}

int wpd_uedge_send(struct wpd_uedge *u, struct wpd_usock *s, const void *buf, size_t len)
{
	struct io_uring_sqe *sqe;

	if (s->sending || s->closed)
		return -EBUSY;
	if (len > (1u << 30))
		len = 1u << 30; /* the rest goes as a partial send's continuation */
	sqe = uedge_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, s->fd, buf, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_of(s, WPD_UOP_SEND));
	s->sending = 1;
	s->pending++;
	return 0;
}

void wpd_uedge_cancel(struct wpd_uedge *u, struct wpd_usock *s, enum wpd_uop op)
{
	struct io_uring_sqe *sqe;
	int live = op == WPD_UOP_ACCEPT ? s->accepting
		   : op == WPD_UOP_RECV ? s->receiving
					: s->sending;

	if (!live)
		return;
	sqe = uedge_sqe(u);
	if (!sqe) {
		/* No room even after a submit: the owner's shutdown/close
		 * still ends a socket's requests; the release waits for them. */
		wpd_log_rl("uring-cancel", WP_LOG_WARN, "io_uring: no SQE for a cancel");
		return;
	}
	io_uring_prep_cancel64(sqe, ud_of(s, op), 0);
	io_uring_sqe_set_data64(sqe, 0); /* its own completion is ignored */
}

static void usock_release(struct wpd_uedge *u, struct wpd_usock *s)
{
	if (!s->release)
		return;
	if (u->destroying || wpd_defer(u->loop, s->release, s->arg) < 0)
		s->release(s->arg);
}

void wpd_uedge_close(struct wpd_uedge *u, struct wpd_usock *s)
{
	if (s->closed)
		return;
	s->closed = 1;
	wpd_uedge_cancel(u, s, WPD_UOP_ACCEPT);
	wpd_uedge_cancel(u, s, WPD_UOP_RECV);
	wpd_uedge_cancel(u, s, WPD_UOP_SEND);
	if (!s->pending)
		usock_release(u, s);
}

static void uedge_cqe(struct wpd_uedge *u, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct wpd_usock *s = (struct wpd_usock *)(uintptr_t)(ud & ~UD_OP_MASK);
	enum wpd_uop op = (enum wpd_uop)(ud & UD_OP_MASK);
	int more = !!(cqe->flags & IORING_CQE_F_MORE);
	const void *data = NULL;
	int bid = -1;

	u->st.cqes++;
	if (!s)
		return; /* a cancel's own completion */
	if (op == WPD_UOP_RECV && (cqe->flags & IORING_CQE_F_BUFFER)) {
		bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		data = u->bufs + (size_t)bid * UEDGE_BUF_SIZE;
	}
	if (!more) {
		if (op == WPD_UOP_ACCEPT)
			s->accepting = 0;
		else if (op == WPD_UOP_RECV)
			s->receiving = 0;
		else
			s->sending = 0;
	}
	if (!s->closed) {
		s->fn(s->arg, op, cqe->res, data, more);
	} else if (op == WPD_UOP_ACCEPT && cqe->res >= 0) {
		close(cqe->res); /* accepted after the listener closed */
	}
	/* The parser copied what it keeps: the buffer goes back at once. */
	if (bid >= 0) {
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * UEDGE_BUF_SIZE, UEDGE_BUF_SIZE,
				      (unsigned short)bid, io_uring_buf_ring_mask(UEDGE_NBUFS), 0);
		io_uring_buf_ring_advance(u->br, 1);
	}
	if (!more && --s->pending == 0 && s->closed)
		usock_release(u, s); /* s is not touched after this */
}

static void uedge_reap(struct wpd_uedge *u)
{
	struct io_uring_cqe *cqe;

	/* Each completion's callback may queue SQEs; none reaps, so the
	 * CQ head only moves here. */
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct io_uring_cqe c = *cqe;

		io_uring_cqe_seen(&u->ring, cqe);
		uedge_cqe(u, &c);
	}
}

static void uedge_wake(void *arg, uint32_t events)
{
	struct wpd_uedge *u = arg;
	uint64_t v;

	(void)events;
	u->st.wakeups++;
	/* Read first: a completion posted while we reap rings it again. */
	if (read(u->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		wpd_log_rl("uring-efd", WP_LOG_WARN, "io_uring eventfd: %s", strerror(errno));
	uedge_reap(u);
}

static int uedge_probe(struct io_uring *ring, char *why, size_t whylen)
{
	static const struct {
		int op;
		const char *name;
	} need[] = { { IORING_OP_ACCEPT, "ACCEPT" },
		     { IORING_OP_RECV, "RECV" },
		     { IORING_OP_SEND, "SEND" },
		     { IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL" } };
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);

	if (!p) {
		snprintf(why, whylen, "io_uring_get_probe_ring failed");
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!io_uring_opcode_supported(p, need[i].op)) {
			snprintf(why, whylen, "the kernel lacks IORING_OP_%s", need[i].name);
			io_uring_free_probe(p);
			return -EOPNOTSUPP;
		}
	io_uring_free_probe(p);
	return 0;
}

int wpd_uedge_create(struct wpd_loop *l, struct wpd_uedge **out, char *why, size_t whylen)
{
	struct io_uring_params p;
	struct io_uring_buf_reg reg;
	struct wpd_uedge *u = calloc(1, sizeof(*u));
	int ret;

	if (!u) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	u->loop = l;
	u->efd = -1;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(UEDGE_ENTRIES, &u->ring, &p);
	if (ret == -EINVAL) { /* before 5.18/5.19 */
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(UEDGE_ENTRIES, &u->ring, &p);
	}
	if (ret < 0) {
		snprintf(why, whylen, "io_uring_queue_init: %s", strerror(-ret));
		goto out_free;
	}
	ret = uedge_probe(&u->ring, why, whylen);
	if (ret < 0)
		goto out_exit;
	u->br_bytes = UEDGE_NBUFS * sizeof(struct io_uring_buf);
	u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		ret = -ENOMEM;
		snprintf(why, whylen, "mmap of the buffer ring: %s", strerror(errno));
		goto out_exit;
	}
	u->bufs = malloc((size_t)UEDGE_NBUFS * UEDGE_BUF_SIZE);
	if (!u->bufs) {
		ret = -ENOMEM;
		snprintf(why, whylen, "out of memory for receive buffers");
		goto out_unmap;
	}
	io_uring_buf_ring_init(u->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = UEDGE_NBUFS;
	reg.bgid = UEDGE_BGID;
	ret = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (ret < 0) {
		snprintf(why, whylen,
			 "io_uring_register_buf_ring: %s (provided buffer rings: "
			 "Linux 5.19)",
			 strerror(-ret));
		goto out_bufs;
	}
	for (uint32_t i = 0; i < UEDGE_NBUFS; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * UEDGE_BUF_SIZE, UEDGE_BUF_SIZE,
				      (unsigned short)i, io_uring_buf_ring_mask(UEDGE_NBUFS),
				      (int)i);
	io_uring_buf_ring_advance(u->br, UEDGE_NBUFS);
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		ret = -errno;
		snprintf(why, whylen, "eventfd: %s", strerror(errno));
		goto out_bufs;
	}
	ret = io_uring_register_eventfd(&u->ring, u->efd);
	if (ret < 0) {
		snprintf(why, whylen, "io_uring_register_eventfd: %s", strerror(-ret));
		goto out_efd;
	}
	ret = wpd_io_add(l, &u->io, u->efd, EPOLLIN, uedge_wake, u);
	if (ret < 0) {
		snprintf(why, whylen, "epoll: %s", strerror(-ret));
		goto out_efd;
	}
	*out = u;
	return 0;

out_efd:
	close(u->efd);
out_bufs:
	free(u->bufs);
out_unmap:
	munmap(u->br, u->br_bytes);
out_exit:
	io_uring_queue_exit(&u->ring);
out_free:
	free(u);
	return ret;
}

void wpd_uedge_stats(const struct wpd_uedge *u, struct wpd_uedge_stats *out)
{
	*out = u->st;
}

void wpd_uedge_destroy(struct wpd_uedge *u)
{
	if (!u)
		return;
	/* Owners closed their sockets (cancels queued): submit and reap until
	 * every request has ended, so each release runs; bounded, in case a
	 * send never completes (the ring's exit cancels it anyway). */
	u->destroying = 1;
	for (int i = 0; i < 200; i++) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 5000000 };
		struct io_uring_cqe *cqe;

		io_uring_submit(&u->ring);
		u->unsubmitted = 0;
		if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) < 0)
			break;
		uedge_reap(u);
	}
	wpd_io_del(u->loop, &u->io);
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	free(u->bufs);
	munmap(u->br, u->br_bytes);
	free(u);
}

#endif
