// SPDX-License-Identifier: MIT
/*
 * The tcp path: non-blocking sockets, level-triggered epoll, TCP_NODELAY,
 * writev batching. The classic reference, made honest: every frame queued
 * during one progress round leaves in one writev per connection (headers and
 * small payloads are contiguous in a staging block, large payloads are
 * referenced in place), reads go into a 64 KiB per-connection buffer and
 * frames are parsed in place, EPOLLOUT is armed only while a write is
 * blocked. Costs a syscall per read, per write, per wait.
 *
 * MSG_ZEROCOPY (the kernel's Documentation/networking/msg_zerocopy.rst),
 * with the uring path's SEND_ZC policy: when the context's zc_threshold is
 * enabled, SO_ZEROCOPY is set at connect and accept; a writev that carries a
 * payload at or above the threshold goes as sendmsg(MSG_ZEROCOPY). The kernel
 * numbers each such send (a 32-bit id per socket, consumed only by a send
 * that took bytes) and later queues a notification [lo, hi] on the socket's
 * error queue, which raises EPOLLERR: the poll drains it (MSG_ERRQUEUE),
 * coalesced ranges and all, and only then are the segments that send carried
 * released to their owners (in order: wp_txq_release_range). A notification
 * flagged SO_EE_CODE_ZEROCOPY_COPIED means the kernel copied after all
 * (loopback and veth always do: the pages are copied when the receiving
 * socket takes them): counted, and a connection whose first 16 notified
 * sends were all copied stops asking, unless zc_always. ENOBUFS from a
 * zero-copy send (the socket's optmem, net.core.optmem_max, cannot hold
 * another notification) sends the same bytes by copy, counted (zc_nobufs).
 * A connection closed with notifications outstanding keeps its descriptor
 * (shut down for writing, as close() would, watched edge-triggered for the
 * error queue only, TCP_USER_TIMEOUT bounding an unresponsive peer) until
 * the last one arrives: the kernel may retransmit from those pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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
#define ZC_JUDGE 16        /* notified sends judged before giving up (uring.c's too) */
#define ZC_LINGER_MS 10000 /* TCP_USER_TIMEOUT of a closed connection still owing notifications */

#ifndef SO_EE_ORIGIN_ZEROCOPY /* Linux 4.14 uapi; glibc's headers may lag */
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

struct tcp_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[TCP_EVENTS];
	int zc_err; /* the last SO_ZEROCOPY refusal (-errno), 0 if none */
	/* What the kernel did on this context's connections (explain). */
	uint64_t zc_socks, zc_sent, zc_notified, zc_copied, zc_off, zc_nobufs;
};

/* One MSG_ZEROCOPY send awaiting its notification. */
struct tcp_zc {
	uint64_t seg; /* the first transmit-queue segment it carried */
	bool done;    /* notified (out of order: waits for the ones before it) */
};

struct tcp_ep {
	bool want_out;
	bool zc_on;  /* SO_ZEROCOPY accepted: MSG_ZEROCOPY may be asked for */
	bool zc_off; /* the kernel copied every judged send: stop asking */
	bool zc_judged;
	bool lingering; /* closed, descriptor kept until the last notification */
	uint16_t zc_seen, zc_copied;
	/* Kernel ids [zc_lo, zc_next) are sent and not yet released; entry id
	 * sits at zc[id & (zc_cap - 1)]. u32 arithmetic: the ids wrap. */
	uint32_t zc_lo, zc_next, zc_cap;
	struct tcp_zc *zc;
	uint8_t rbuf[TCP_RBUF];
};

static struct tcp_ctx *tctx(struct wp_ctx *ctx)
{
	return ctx->bk;
}

/*
 * MSG_ZEROCOPY, for real: a loopback connection, SO_ZEROCOPY, one 64 KiB
 * zero-copy send, and its notification read back from the error queue
 * (waited for at most a second). Loopback always copies: the probe says what
 * the kernel reported rather than what it was asked.
 */
static void probe_msg_zerocopy(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);
	const char *step = "socket";
	char cbuf[CMSG_SPACE(sizeof(struct sock_extended_err)) + 64];
	struct msghdr msg = { .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct pollfd pfd;
	struct cmsghdr *cm;
	size_t len = 64u << 10;
	uint8_t *buf = NULL;
	int lfd, cfd = -1, afd = -1, one = 1, ret;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		goto out_err;
	step = "bind/listen on 127.0.0.1";
	if (bind(lfd, (struct sockaddr *)&sa, salen) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0)
		goto out_err;
	step = "socket";
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0)
		goto out_err;
	step = "setsockopt(SO_ZEROCOPY)";
	if (setsockopt(cfd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0)
		goto out_err;
	step = "connect to 127.0.0.1";
	if (connect(cfd, (struct sockaddr *)&sa, salen) < 0)
		goto out_err;
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	step = "malloc";
	buf = calloc(1, len);
	if (!buf) {
		errno = ENOMEM;
		goto out_err;
	}
	step = "send(MSG_ZEROCOPY)";
	if (send(cfd, buf, len, MSG_ZEROCOPY) < 0)
		goto out_err;
	pfd = (struct pollfd){ .fd = cfd, .events = 0 };
	step = "poll for the notification";
	ret = poll(&pfd, 1, 1000);
	if (ret <= 0) {
		errno = ret == 0 ? ETIMEDOUT : errno;
		goto out_err;
	}
	step = "recvmsg(MSG_ERRQUEUE)";
	if (recvmsg(cfd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		goto out_err;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		struct sock_extended_err ee;

		if (cm->cmsg_level != SOL_IP || cm->cmsg_type != IP_RECVERR)
			continue;
		memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
		if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno)
			continue;
		wp_probe_add("tcp.msg_zerocopy", 0,
			     "64 KiB MSG_ZEROCOPY send on loopback notified as [%u, %u], %s",
			     ee.ee_info, ee.ee_data,
			     (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				     ? "COPIED (loopback always copies; a NIC with "
				       "scatter-gather would not)"
				     : "not copied");
		goto out_close;
	}
	errno = ENOMSG;
out_err:
	ret = -errno;
	wp_probe_add("tcp.msg_zerocopy", ret, "%s: %s", step, strerror(-ret));
out_close:
	free(buf);
	if (afd >= 0)
		close(afd);
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
}

/* Plain TCP sockets, and the kernel features around them. */
static void tcp_probe(void)
{
	int fd, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ret = fd < 0 ? -errno : 0;
	wp_probe_add("tcp", ret, ret ? "socket: %s" : "TCP sockets%s", ret ? strerror(-ret) : "");
	if (fd >= 0)
		close(fd);
	probe_msg_zerocopy();
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

/* Does this context ask for zero copy at all? zc_threshold UINT32_MAX (or
 * above the largest frame) means never: no SO_ZEROCOPY, no error queue. */
static bool zc_wanted(const struct wp_ctx *ctx)
{
	return ctx->o.zc_threshold != UINT32_MAX && ctx->o.zc_threshold <= ctx->o.max_frame;
}

/* SO_ZEROCOPY on a new connection's socket. A refusal (a kernel before 4.14,
 * a socket type without it) leaves the connection copying; explain says why. */
static void zc_enable(struct wp_ep *ep, int fd)
{
	struct tcp_ctx *t = tctx(ep->ctx);
	struct tcp_ep *te = ep->bk;
	int one = 1;

	if (!zc_wanted(ep->ctx))
		return;
	WP_SYSCALL(WP_SYS_SOCKET);
	if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0) {
		t->zc_err = -errno;
		return;
	}
	te->zc_on = true;
	t->zc_socks++;
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
	zc_enable(ep, fd);
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
	struct tcp_ep *te = ep->bk;

	if (ep->fd >= 0 && ep->io_inflight) {
		struct wp_txq *q = &ep->tx;
		int ms = ZC_LINGER_MS;

		/* Zero-copy sends not yet notified: the kernel still holds (and
		 * may retransmit from) their pages, so their owners must not get
		 * them back yet, and only this descriptor's error queue will say
		 * when. Keep it: no more input, a FIN after what was written (as
		 * close() would send), the error queue watched edge-triggered
		 * (level-triggered, the hang-up would be reported on every wait).
		 * A half-written segment counts as handed to the kernel. */
		if (q->sent_off) {
			q->sent++;
			q->sent_off = 0;
		}
		q->handed = q->sent;
		WP_SYSCALL(WP_SYS_SOCKET);
		shutdown(ep->fd, SHUT_WR);
		setsockopt(ep->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
		if (ep_ctl(ep, EPOLL_CTL_MOD, EPOLLET) == 0) {
			te->lingering = true;
			return;
		}
		/* Cannot watch it: give up on the notifications; wp_txq_drop
		 * hands the buffers back now. */
		ep->io_inflight = 0;
		te->zc_lo = te->zc_next;
	}
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

	if (ep->fd < 0 || ep->state == WP_EPS_CLOSED)
		return; /* closed (a lingering one watches its error queue only) */
	ret = ep_ctl(ep, EPOLL_CTL_MOD,
		     ep->state == WP_EPS_LISTEN ? (pause ? 0 : EPOLLIN) : tcp_events(ep));
	if (ret < 0 && ep->state != WP_EPS_LISTEN)
		wp_conn_fail(ep, ret);
}

/* ---- MSG_ZEROCOPY bookkeeping ---------------------------------------- */

static uint32_t zc_pending(const struct tcp_ep *te)
{
	return te->zc_next - te->zc_lo;
}

/* Room to remember one more send id. 0 or -ENOMEM (the caller then sends
 * by copy). */
static int zc_room(struct tcp_ep *te)
{
	if (zc_pending(te) == te->zc_cap) {
		uint32_t cap = te->zc_cap ? te->zc_cap * 2 : 64;
		struct tcp_zc *n = calloc(cap, sizeof(*n));

		if (!n || cap < te->zc_cap) {
			free(n);
			return -ENOMEM;
		}
		for (uint32_t id = te->zc_lo; id != te->zc_next; id++)
			n[id & (cap - 1)] = te->zc[id & (te->zc_cap - 1)];
		free(te->zc);
		te->zc = n;
		te->zc_cap = cap;
	}
	return 0;
}

/*
 * Hand back what no pending zero-copy send still references: every segment
 * below the first one carried by the oldest unnotified send (and below
 * q->sent: a half-written segment is not done). Released in order, so a
 * copied segment behind a zero-copy one waits for it, as on uring.
 */
static void zc_release(struct wp_ep *ep)
{
	struct tcp_ep *te = ep->bk;
	struct wp_txq *q = &ep->tx;
	uint64_t upto = q->sent;

	while (te->zc_lo != te->zc_next && te->zc[te->zc_lo & (te->zc_cap - 1)].done)
		te->zc_lo++;
	if (te->zc_lo != te->zc_next && te->zc[te->zc_lo & (te->zc_cap - 1)].seg < upto)
		upto = te->zc[te->zc_lo & (te->zc_cap - 1)].seg;
	ep->io_inflight = zc_pending(te);
	if (upto != q->head)
		wp_txq_release_range(ep, q->head, upto);
}

/* Notification: sends [lo, hi] (inclusive, maybe wrapped) are done with
 * their pages; copied says the kernel copied them after all. */
static void zc_notified(struct wp_ep *ep, uint32_t lo, uint32_t hi, bool copied)
{
	struct wp_ctx *ctx = ep->ctx;
	struct tcp_ep *te = ep->bk;
	uint32_t n = hi - lo + 1;

	/* Only ids we are waiting for: anything else is not ours to trust. */
	if (lo - te->zc_lo >= zc_pending(te) || hi - te->zc_lo >= zc_pending(te) ||
	    hi - te->zc_lo < lo - te->zc_lo) {
		wp_log(ctx, WP_LOG_WARN, "fd %d: zero-copy notification [%u, %u] outside [%u, %u)",
		       ep->fd, lo, hi, te->zc_lo, te->zc_next);
		return;
	}
	for (uint32_t id = lo; id != hi + 1; id++)
		te->zc[id & (te->zc_cap - 1)].done = true;
	tctx(ctx)->zc_notified += n;
	if (copied) {
		WP_CNT_ADD(zc_copied, n);
		tctx(ctx)->zc_copied += n;
		te->zc_copied = (uint16_t)(te->zc_copied + (n > ZC_JUDGE ? ZC_JUDGE : n));
	}
	te->zc_seen = (uint16_t)(te->zc_seen + (n > ZC_JUDGE ? ZC_JUDGE : n));
	/* The uring path's policy (uring.c, send_done): zero copy that the
	 * kernel copies anyway (loopback, veth, a NIC without scatter-gather)
	 * costs more than a plain send: page pinning, a notification, a
	 * wake-up and a recvmsg. Judged once, on the first ZC_JUDGE. */
	if (!te->zc_judged && te->zc_seen >= ZC_JUDGE) {
		te->zc_judged = true;
		if (te->zc_copied == te->zc_seen && !ctx->o.zc_always && !te->zc_off) {
			te->zc_off = true;
			WP_CNT_ADD(zc_disabled, 1);
			tctx(ctx)->zc_off++;
			wp_log(ctx, WP_LOG_INFO,
			       "fd %d: the kernel copied all %u zero-copy sends (loopback or veth): "
			       "sending by copy on this connection from now on",
			       ep->fd, te->zc_seen);
		}
	}
}

/* Drain the error queue (EPOLLERR stays raised until it is empty). */
static void zc_drain(struct wp_ep *ep)
{
	char cbuf[CMSG_SPACE(sizeof(struct sock_extended_err)) + 64];

	for (;;) {
		struct msghdr msg = { .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;

		WP_SYSCALL(WP_SYS_READ);
		if (recvmsg(ep->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			break; /* EAGAIN: empty */
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct sock_extended_err ee;

			if (!(cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) &&
			    !(cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR))
				continue;
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno)
				continue;
			zc_notified(ep, ee.ee_info, ee.ee_data,
				    ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED);
		}
	}
	zc_release(ep);
}

/* A closed connection's notifications are all in: close it for good. */
static void linger_check(struct wp_ep *ep)
{
	struct tcp_ep *te = ep->bk;

	if (!te->lingering || ep->io_inflight)
		return;
	te->lingering = false;
	WP_SYSCALL(WP_SYS_CLOSE);
	close(ep->fd);
	ep->fd = -1;
}

/* Does the run [from, upto) carry a payload at or above the threshold? */
static bool run_has_zc(const struct wp_txq *q, uint64_t from, uint64_t upto)
{
	for (uint64_t i = from; i != upto; i++)
		if (q->seg[i & q->mask].zc)
			return true;
	return false;
}

/*
 * One writev, or one sendmsg(MSG_ZEROCOPY) when the run carries a large
 * payload and this connection still asks. ENOBUFS from the zero-copy send
 * (optmem full: no room for another notification) sends the same bytes by
 * copy at once. *zc says whether the kernel took bytes as a zero-copy send.
 */
static ssize_t tcp_send(struct wp_ep *ep, struct iovec *iov, int n, bool ask_zc, bool *zc)
{
	struct tcp_ep *te = ep->bk;
	ssize_t w;

	*zc = false;
	if (ask_zc && zc_room(te) < 0)
		ask_zc = false; /* no memory to track it: copy */
	if (ask_zc) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };

		WP_SYSCALL(WP_SYS_WRITE);
		w = sendmsg(ep->fd, &msg, MSG_ZEROCOPY | MSG_NOSIGNAL);
		if (w >= 0 || errno != ENOBUFS) {
			*zc = w > 0;
			if (*zc) {
				WP_CNT_ADD(zc_sent, 1);
				tctx(ep->ctx)->zc_sent++;
			}
			return w;
		}
		WP_CNT_ADD(zc_nobufs, 1);
		tctx(ep->ctx)->zc_nobufs++;
	}
	WP_SYSCALL(WP_SYS_WRITE);
	return writev(ep->fd, iov, n);
}

static void tcp_flush(struct wp_ep *ep)
{
	struct tcp_ep *te = ep->bk;
	struct wp_txq *q = &ep->tx;
	struct iovec iov[WP_IOV_MAX];

	while (ep->state == WP_EPS_OPEN && wp_txq_pending(q)) {
		uint64_t first = q->sent, idx = first;
		size_t bytes;
		int n = wp_txq_iov(q, &idx, q->sent_off, iov, WP_IOV_MAX, &bytes, false, NULL);
		bool zc;
		ssize_t w = tcp_send(ep, iov, n,
				     te->zc_on && !te->zc_off && run_has_zc(q, first, idx), &zc);

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
		if (zc) {
			/* The kernel numbered this send zc_next (room ensured by
			 * tcp_send): its segments wait for the notification. */
			te->zc[te->zc_next & (te->zc_cap - 1)] = (struct tcp_zc){ .seg = first };
			te->zc_next++;
		}
		if (zc_pending(te)) {
			wp_txq_advance(ep, (size_t)w, false);
			zc_release(ep);
		} else {
			wp_txq_advance(ep, (size_t)w, true);
		}
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
		zc_enable(ep, fd);
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

/* A pending socket error (read and cleared), as -errno; 0 if none. */
static int sock_error(struct wp_ep *ep)
{
	int err = 0;
	socklen_t len = sizeof(err);

	WP_SYSCALL(WP_SYS_SOCKET);
	if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		wp_conn_fail(ep, -err);
	return -err;
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
			if ((e & EPOLLERR) && ((struct tcp_ep *)ep->bk)->zc_on) {
				/* Zero-copy notifications raise EPOLLERR too: drain
				 * them; a real error is still there for the read (or,
				 * paused, for SO_ERROR) to find. */
				zc_drain(ep);
				if (ep->rx_paused && !(e & EPOLLHUP) && !sock_error(ep))
					e &= ~(uint32_t)EPOLLERR;
			}
			if (ep->rx_paused && (e & (EPOLLERR | EPOLLHUP)))
				wp_conn_eof(ep); /* gone while paused: its frame cannot finish */
			else if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
				do_read(ep);
			/* Writable again: the core's flush after this poll sends
			 * (it first seals the open record, if any). */
			if ((e & EPOLLOUT) && ep->state == WP_EPS_OPEN && !ep->dirty)
				wp_ctx_mark_dirty(ep);
			break;
		case WP_EPS_CLOSED:
			if (((struct tcp_ep *)ep->bk)->lingering) {
				zc_drain(ep);
				linger_check(ep);
			}
			break; /* else closed earlier in this batch */
		default:
			break;
		}
	}
	return n;
}

static void tcp_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct tcp_ctx *t = tctx(ctx);
	char zc[400];

	if (!zc_wanted(ctx))
		snprintf(zc, sizeof(zc), "MSG_ZEROCOPY off (zc_threshold: never)");
	else if (t && t->zc_err && !t->zc_socks)
		snprintf(zc, sizeof(zc), "MSG_ZEROCOPY off (SO_ZEROCOPY: %s)",
			 strerror(-t->zc_err));
	else if (t)
		snprintf(zc, sizeof(zc),
			 "MSG_ZEROCOPY for writes carrying a payload >= %u B on %llu connection(s) "
			 "(SO_ZEROCOPY), buffers released at the kernel's notification: %llu sent, "
			 "%llu notified, %llu of them copied by the kernel%s, %llu connection(s) "
			 "stopped asking%s, %llu ENOBUFS (optmem) sent by copy",
			 ctx->o.zc_threshold, (unsigned long long)t->zc_socks,
			 (unsigned long long)t->zc_sent, (unsigned long long)t->zc_notified,
			 (unsigned long long)t->zc_copied,
			 t->zc_copied && t->zc_copied == t->zc_notified
				 ? " (all: loopback and veth always copy)"
				 : "",
			 (unsigned long long)t->zc_off,
			 ctx->o.zc_always ? " (zc_always: never)" : " (first 16 all copied)",
			 (unsigned long long)t->zc_nobufs);
	else
		snprintf(zc, sizeof(zc), "MSG_ZEROCOPY at or above %u B", ctx->o.zc_threshold);
	snprintf(buf, len,
		 "epoll (level-triggered), TCP_NODELAY, writev batching up to %u iovecs per "
		 "connection per round, payloads <= %u B staged (copied), larger sent in place; "
		 "%s; 64 KiB receive buffer, frames parsed in place; %s",
		 WP_IOV_MAX, WP_COPY_MAX, zc,
		 ctx->o.busy_poll ? "busy-poll on" : "sleeps in epoll_wait");
}

/* Closed connections still owed notifications get a last chance (at most a
 * second, like the uring path's reap); then wp_ep_free hands their buffers
 * back whatever the kernel still holds. */
static void tcp_fini(struct wp_ctx *ctx)
{
	struct tcp_ctx *t = tctx(ctx);

	for (int round = 0; t && round < 100; round++) {
		bool any = false;

		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
			struct tcp_ep *te = ep->bk;

			if (!te || !te->lingering)
				continue;
			zc_drain(ep);
			linger_check(ep);
			any |= te->lingering;
		}
		if (!any)
			break;
		WP_SYSCALL(WP_SYS_EPOLL_WAIT);
		epoll_wait(t->epfd, t->ev, TCP_EVENTS, 10);
	}
	wp_epoll_bk_fini(ctx);
}

static void tcp_ep_free(struct wp_ep *ep)
{
	struct tcp_ep *te = ep->bk;

	if (te->lingering) { /* the context is going: stop waiting */
		te->lingering = false;
		close(ep->fd);
		ep->fd = -1;
	}
	free(te->zc);
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
	.fini = tcp_fini,
	.listen = tcp_listen,
	.connect = tcp_connect,
	.close = tcp_close,
	.poll = tcp_poll,
	.explain = tcp_explain,
	.mem_register = wp_no_mem_register, /* plain sockets copy from any memory */
	.mem_unregister = wp_no_mem_unregister,
	.ep_size = sizeof(struct tcp_ep),
	.ep_init = wp_no_ep_init,
	.ep_free = tcp_ep_free,
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
