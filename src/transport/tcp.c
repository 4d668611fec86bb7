// SPDX-License-Identifier: MIT
/*
 * The tcp path: non-blocking sockets, level-triggered epoll, TCP_NODELAY,
 * writev batching. The classic reference, made honest: every frame queued
 * during one progress round leaves in one writev per connection (headers and
 * small payloads are contiguous in a staging block, large payloads are
 * referenced in place), reads go into a 64 KiB per-connection buffer and
 * frames are parsed in place, EPOLLOUT is armed only while a write is
 * blocked. Costs a syscall per read, per write, per wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"

#define TCP_RBUF (64u << 10)
#define TCP_EVENTS 64
#define TCP_READS_PER_EVENT 8

struct tcp_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[TCP_EVENTS];
};

struct tcp_ep {
	bool want_out;
	uint8_t rbuf[TCP_RBUF];
};

static struct tcp_ctx *tctx(struct wp_ctx *ctx)
{
	return ctx->bk;
}

/* Plain TCP sockets, and the kernel features around them. */
static void tcp_probe(void)
{
	int fd, ret, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ret = fd < 0 ? -errno : 0;
	wp_probe_add("tcp", ret, ret ? "socket: %s" : "TCP sockets%s", ret ? strerror(-ret) : "");
	if (fd >= 0) {
		ret = setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0 ? -errno : 0;
		wp_probe_add("tcp.msg_zerocopy", ret,
			     ret ? "SO_ZEROCOPY: %s" : "SO_ZEROCOPY accepted%s",
			     ret ? strerror(-ret) : "");
		close(fd);
	}
	fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd >= 0) {
		struct epoll_event ev;
		struct timespec ts = { 0, 0 };

		ret = epoll_pwait2(fd, &ev, 1, &ts, NULL) < 0 ? -errno : 0;
		wp_probe_add("epoll_pwait2", ret,
			     ret ? "epoll_pwait2: %s" : "ns-resolution waits%s",
			     ret ? strerror(-ret) : "");
		close(fd);
	}
}

static int tcp_available(char *why, size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(why, len, "socket(AF_INET, SOCK_STREAM): %s", strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

static int tcp_init(struct wp_ctx *ctx)
{
	return wp_epoll_bk_init(ctx, sizeof(struct tcp_ctx));
}

static int ep_ctl(struct wp_ep *ep, int op, uint32_t events)
{
	return wp_epoll_ctl(ep->ctx, op, ep->fd, events, (uintptr_t)ep);
}

static int tcp_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	int ret = wp_sock_listen(ep, sa, salen, true);

	if (ret < 0)
		return ret;
	ret = ep_ctl(ep, EPOLL_CTL_ADD, EPOLLIN);
	if (ret < 0) {
		close(ep->fd);
		ep->fd = -1;
		return ret;
	}
	return 0;
}

static int tcp_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	int fd, ret;

	fd = wp_sock_stream(sa->sa_family, true);
	if (fd < 0)
		return fd;
	WP_SYSCALL(WP_SYS_CONNECT);
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ep->fd = fd;
	ep->state = WP_EPS_CONNECTING;
	/* Completion (even an immediate one) is reported from progress, by
	 * EPOLLOUT, never from inside this call. */
	ret = ep_ctl(ep, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
	if (ret < 0) {
		ep->fd = -1;
		close(fd);
		return ret;
	}
	return 0;
}

static void tcp_close(struct wp_ep *ep)
{
	if (ep->fd >= 0) {
		/* close() also drops the fd from the epoll set: no EPOLL_CTL_DEL. */
		WP_SYSCALL(WP_SYS_CLOSE);
		close(ep->fd);
		ep->fd = -1;
	}
}

/* The interest set: input unless paused (limits.c), output while blocked. */
static uint32_t tcp_events(const struct wp_ep *ep)
{
	const struct tcp_ep *te = ep->bk;

	return (ep->rx_paused ? 0 : EPOLLIN) | (te->want_out ? EPOLLOUT : 0);
}

static void set_want_out(struct wp_ep *ep, bool on)
{
	struct tcp_ep *te = ep->bk;
	int ret;

	if (te->want_out == on)
		return;
	te->want_out = on;
	ret = ep_ctl(ep, EPOLL_CTL_MOD, tcp_events(ep));
	if (ret < 0)
		wp_conn_fail(ep, ret);
}

/* Stop or resume reading (the receive budget) or accepting (EMFILE
 * backoff): only the epoll interest changes; the socket buffer and the
 * listen backlog hold what arrives meanwhile. ERR and HUP still wake us. */
static void tcp_rx_pause(struct wp_ep *ep, bool pause)
{
	int ret;

	if (ep->fd < 0)
		return;
	ret = ep_ctl(ep, EPOLL_CTL_MOD,
		     ep->state == WP_EPS_LISTEN ? (pause ? 0 : EPOLLIN) : tcp_events(ep));
	if (ret < 0 && ep->state != WP_EPS_LISTEN)
		wp_conn_fail(ep, ret);
}

static void tcp_flush(struct wp_ep *ep)
{
	struct iovec iov[WP_IOV_MAX];

	while (ep->state == WP_EPS_OPEN && wp_txq_pending(&ep->tx)) {
		uint64_t idx = ep->tx.sent;
		size_t bytes;
		int n = wp_txq_iov(&ep->tx, &idx, ep->tx.sent_off, iov, WP_IOV_MAX, &bytes, false,
				   NULL);
		ssize_t w;

		WP_SYSCALL(WP_SYS_WRITE);
		w = writev(ep->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_want_out(ep, true);
				return;
			}
			if (errno == EINTR)
				continue;
			wp_conn_fail(ep, -errno);
			return;
		}
		wp_txq_advance(ep, (size_t)w, true);
		if ((size_t)w < bytes) {
			/* Socket buffer full: wait for EPOLLOUT, not a busy retry. */
			set_want_out(ep, true);
			return;
		}
	}
	if (ep->state == WP_EPS_OPEN)
		set_want_out(ep, false);
}

/* The transmit burst: queued frames leave in one writev per round. */
static const struct wp_fast_ops wp_tcp_fast = { .flush = tcp_flush };

static void do_accept(struct wp_ep *l)
{
	struct wp_ep *ep;
	int fd, one = 1, ret;

	while ((ep = wp_accept_next(l, l->fd, true, &fd))) {
		ep->fd = fd;
		WP_SYSCALL(WP_SYS_SOCKET);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ret = ep_ctl(ep, EPOLL_CTL_ADD, EPOLLIN);
		if (ret < 0) {
			wp_ep_accept_failed(ep, ret);
			continue;
		}
		wp_conn_established(ep);
	}
}

static void do_read(struct wp_ep *ep)
{
	struct tcp_ep *te = ep->bk;

	for (int i = 0; i < TCP_READS_PER_EVENT && ep->state == WP_EPS_OPEN && !ep->rx_paused;
	     i++) {
		ssize_t n;

		WP_SYSCALL(WP_SYS_READ);
		n = read(ep->fd, te->rbuf, TCP_RBUF);
		if (n > 0) {
			if (wp_conn_input(ep, te->rbuf, (size_t)n) < 0)
				return;
			if ((size_t)n < TCP_RBUF)
				return; /* drained; level-triggered epoll tells us of more */
			continue;
		}
		if (n == 0) {
			wp_conn_eof(ep);
			return;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		wp_conn_fail(ep, -errno);
		return;
	}
}

static void connect_done(struct wp_ep *ep)
{
	int err = 0;
	socklen_t len = sizeof(err);

	WP_SYSCALL(WP_SYS_SOCKET);
	if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		wp_conn_fail(ep, -err);
		return;
	}
	((struct tcp_ep *)ep->bk)->want_out = true;
	wp_conn_established(ep);
	/* Sends queued while connecting were kicked by wp_conn_established and
	 * leave in this round's final flush, which also disarms EPOLLOUT. */
	if (ep->state == WP_EPS_OPEN && !wp_txq_pending(&ep->tx))
		set_want_out(ep, false);
}

/* One epoll wait; what the callbacks queue leaves in the core's flush
 * right after. */
static int tcp_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct tcp_ctx *t = tctx(ctx);
	int n = wp_epoll_wait(ctx, t->ev, TCP_EVENTS, timeout_us);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct wp_ep *ep = t->ev[i].data.ptr;
		uint32_t e = t->ev[i].events;

		switch (ep->state) {
		case WP_EPS_LISTEN:
			do_accept(ep);
			break;
		case WP_EPS_CONNECTING:
			if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				connect_done(ep);
			break;
		case WP_EPS_OPEN:
			if (ep->rx_paused && (e & (EPOLLERR | EPOLLHUP)))
				wp_conn_eof(ep); /* gone while paused: its frame cannot finish */
			else if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
				do_read(ep);
			/* Writable again: the core's flush after this poll sends
			 * (it first seals the open record, if any). */
			if ((e & EPOLLOUT) && ep->state == WP_EPS_OPEN && !ep->dirty)
				wp_ctx_mark_dirty(ep);
			break;
		default:
			break; /* closed earlier in this batch */
		}
	}
	return n;
}

static void tcp_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	snprintf(buf, len,
		 "epoll (level-triggered), TCP_NODELAY, writev batching up to %u iovecs per "
		 "connection per round, payloads <= %u B staged (copied), larger sent in place; "
		 "64 KiB receive buffer, frames parsed in place; %s",
		 WP_IOV_MAX, WP_COPY_MAX,
		 ctx->o.busy_poll ? "busy-poll on" : "sleeps in epoll_wait");
}

/* A connection receives into its own read buffer (frames inside one read
 * are delivered in place from it). */
static int tcp_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		     uint32_t max)
{
	struct tcp_ep *te;

	if (!ep || !ep->bk || ep->state == WP_EPS_LISTEN)
		return 0;
	te = ep->bk;
	if (max)
		out[0] = (struct wp_mem_range){ te->rbuf, TCP_RBUF, WP_MEM_TCP_RX, 0 };
	return 1;
}

const struct wp_backend_ops wp_tcp_ops = {
	.name = "tcp",
	.fast = &wp_tcp_fast,
	.caps = WP_CAP_STREAM | WP_CAP_INET | WP_CAP_BUSY_POLL,
	.available = tcp_available,
	.probe = tcp_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = tcp_init,
	.fini = wp_epoll_bk_fini,
	.listen = tcp_listen,
	.connect = tcp_connect,
	.close = tcp_close,
	.poll = tcp_poll,
	.explain = tcp_explain,
	.mem_register = wp_no_mem_register, /* plain sockets copy from any memory */
	.mem_unregister = wp_no_mem_unregister,
	.ep_size = sizeof(struct tcp_ep),
	.ep_init = wp_no_ep_init,
	.ep_free = wp_no_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = wp_no_mr_exported,
	.xfer_direct = wp_no_xfer_direct,
	.pools = tcp_pools,
	.rx_pause = tcp_rx_pause,
	.fd = wp_epoll_fd, /* level-triggered: an outer epoll may watch it */
	.arm = wp_epoll_arm,
};
