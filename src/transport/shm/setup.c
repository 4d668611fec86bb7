// SPDX-License-Identifier: MIT
/*
 * The shm connection's life on its unix SOCK_SEQPACKET socket: listen,
 * connect and accept, the hello/ack handshake that passes the region and the
 * doorbells with SCM_RIGHTS (the acceptor validates all of it before mapping
 * anything), the regions the peer offers later on the same socket for direct
 * transfers, and close. The socket stays open as long as the connection: its
 * hang-up is how either side learns the other died.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shm.h"

#define SHM_MAX_RMR 1024u /* regions a peer may offer one connection */

/* epoll data: the endpoint, low bit set for its doorbell. */
static int ep_watch(struct wp_ep *ep, int fd, uint32_t events, uintptr_t tag)
{
	return wp_epoll_ctl(ep->ctx, EPOLL_CTL_ADD, fd, events, (uintptr_t)ep | tag);
}

/* No descriptors yet; the acceptor's side (1) until shm_connect says 0. */
void shm_ep_init(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);

	se->sock = se->efd_me = se->efd_peer = -1;
	se->side = 1;
}

int shm_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
	struct shm_ep *se = sep(ep);
	struct sockaddr_un got;
	socklen_t gl = sizeof(got);
	int fd, ret;

	WP_SYSCALL(WP_SYS_SOCKET);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	WP_SYSCALL(WP_SYS_SOCKET);
	ret = bind(fd, sa, salen);
	if (ret < 0 && errno == EADDRINUSE && un->sun_path[0] == '/') {
		/* A socket file: replace it only if nobody listens on it. */
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (probe >= 0 && connect(probe, sa, salen) < 0 && errno == ECONNREFUSED) {
			struct stat st;

			if (lstat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
				wp_log(ep->ctx, WP_LOG_INFO, "replacing stale socket %s",
				       un->sun_path);
				unlink(un->sun_path);
				ret = bind(fd, sa, salen);
			}
		} else {
			errno = EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
	}
	if (ret < 0)
		goto out_errno;
	WP_SYSCALL(WP_SYS_SOCKET);
	if (listen(fd, 1024) < 0)
		goto out_errno;
	WP_SYSCALL(WP_SYS_SOCKET);
	if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0)
		goto out_errno;
	if (got.sun_path[0] == '/') {
		se->unlink_path = strdup(got.sun_path);
	} else if (gl == offsetof(struct sockaddr_un, sun_path) + 6) {
		/* Autobind: five hex digits; they double as the "port". */
		char name[6];

		memcpy(name, got.sun_path + 1, 5);
		name[5] = '\0';
		ep->local_port = (int)strtol(name, NULL, 16);
	}
	se->sock = fd;
	ep->state = WP_EPS_LISTEN;
	ret = ep_watch(ep, fd, EPOLLIN, 0);
	if (ret < 0) {
		close(fd);
		se->sock = -1;
		return ret;
	}
	return 0;

out_errno:
	ret = -errno;
	close(fd);
	return ret;
}

static int send_fds(int sock, const struct shm_wire_msg *m, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	WP_SYSCALL(WP_SYS_WRITE);
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		return errno ? -errno : -EIO;
	return 0;
}

/* Receive one setup message and up to 3 fds. Returns bytes, 0 at EOF,
 * -EAGAIN, or -errno. Extra or missing fds are the caller's to judge. */
static ssize_t recv_fds(int sock, struct shm_wire_msg *m, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	*nfds = 0;
	WP_SYSCALL(WP_SYS_READ);
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
			if (*nfds < 3)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EPROTO;
	return n;
}

int shm_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct wp_ctx *ctx = ep->ctx;
	struct shm_ctx *sc = sctx(ctx);
	struct shm_ep *se = sep(ep);
	struct shm_wire_msg m;
	int memfd = -1, efd_peer, fds[3], ret;
	uint8_t *base = NULL;
	struct shm_hdr *hdr;

	se->side = 0; /* the connector */
	ret = shm_geom_compute(&se->g, ctx->o.shm_slots, (uint64_t)ctx->o.shm_arena_mb << 20,
			       (uint64_t)ctx->o.shm_heap_mb << 20, sc->huge ? SHM_HUGE : 4096);
	if (ret < 0)
		return ret;
	if (sc->huge) {
		memfd = shm_memfd_sized(se->g.size, true);
		if (memfd >= 0) {
			base = shm_region_map(memfd, se->g.size, false);
			if (!base) {
				wp_log(ctx, WP_LOG_WARN,
				       "shm: %llu MiB of hugepages not available (%s); using 4 KiB "
				       "pages",
				       (unsigned long long)(se->g.size >> 20), strerror(errno));
				close(memfd);
				memfd = -1;
			}
		}
		if (memfd < 0)
			shm_geom_compute(&se->g, ctx->o.shm_slots,
					 (uint64_t)ctx->o.shm_arena_mb << 20,
					 (uint64_t)ctx->o.shm_heap_mb << 20, 4096);
	}
	if (memfd < 0) {
		memfd = shm_memfd_sized(se->g.size, false);
		if (memfd < 0)
			return memfd;
		base = shm_region_map(memfd, se->g.size, false);
		if (!base) {
			ret = -errno;
			goto out_memfd;
		}
	}
	hdr = (struct shm_hdr *)base;
	hdr->magic = SHM_MAGIC;
	hdr->version = SHM_VERSION;
	hdr->size = se->g.size;
	ret = shm_ep_attach(ep, base);
	if (ret < 0)
		goto out_unmap;

	WP_SYSCALL(WP_SYS_OTHER);
	se->efd_me = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	WP_SYSCALL(WP_SYS_OTHER);
	efd_peer = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	se->efd_peer = efd_peer;
	if (se->efd_me < 0 || efd_peer < 0) {
		ret = -errno;
		goto out_unmap;
	}
	WP_SYSCALL(WP_SYS_SOCKET);
	se->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (se->sock < 0) {
		ret = -errno;
		goto out_unmap;
	}
	WP_SYSCALL(WP_SYS_CONNECT);
	if (connect(se->sock, sa, salen) < 0) {
		/* AF_UNIX connects at once or not at all (EAGAIN: backlog full). */
		ret = -errno;
		goto out_unmap;
	}
	m = (struct shm_wire_msg){ .magic = SHM_MAGIC,
				   .version = SHM_VERSION,
				   .type = SHM_MSG_HELLO,
				   .slots = se->g.slots,
				   .arena = se->g.arena,
				   .heap = se->g.heap,
				   .align = se->g.align,
				   .size = se->g.size,
				   .pid = getpid() };
	fds[0] = memfd;
	fds[1] = efd_peer; /* the acceptor's doorbell: it waits on it */
	fds[2] = se->efd_me;
	ret = send_fds(se->sock, &m, fds, 3);
	if (ret < 0)
		goto out_unmap;
	close(memfd); /* the mapping and the peer keep the region alive */
	ep->state = WP_EPS_CONNECTING;
	ret = ep_watch(ep, se->sock, EPOLLIN | EPOLLRDHUP, 0);
	if (ret < 0)
		return ret; /* the endpoint is freed with everything it holds */
	return 0;

out_unmap:
	/* ep_free (called by the core on error) unmaps and closes the rest. */
out_memfd:
	close(memfd);
	return ret;
}

static void open_list_add(struct wp_ep *ep)
{
	struct shm_ctx *sc = sctx(ep->ctx);
	struct shm_ep *se = sep(ep);

	se->open = true;
	se->prev_open = NULL;
	se->next_open = sc->open;
	if (sc->open)
		sep(sc->open)->prev_open = ep;
	sc->open = ep;
}

static void open_list_del(struct wp_ep *ep)
{
	struct shm_ctx *sc = sctx(ep->ctx);
	struct shm_ep *se = sep(ep);

	if (!se->open)
		return;
	se->open = false;
	if (se->prev_open)
		sep(se->prev_open)->next_open = se->next_open;
	else
		sc->open = se->next_open;
	if (se->next_open)
		sep(se->next_open)->prev_open = se->prev_open;
}

static void mr_offer(struct wp_ep *ep, struct wp_mr *mr)
{
	struct shm_wire_msg m = { .magic = SHM_MAGIC,
				  .version = SHM_VERSION,
				  .type = SHM_MSG_MR,
				  .mr_id = mr->id,
				  .mr_key = mr->key,
				  .mr_len = mr->len };

	if (send_fds(sep(ep)->sock, &m, &mr->memfd, 1) < 0)
		wp_log(ep->ctx, WP_LOG_WARN,
		       "shm: could not offer region %u to the peer (%s): transfers to it "
		       "will use frames",
		       mr->id, strerror(errno));
}

static void established(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	int ret = ep_watch(ep, se->efd_me, EPOLLIN, 1);

	if (ret < 0) {
		wp_conn_fail(ep, ret);
		return;
	}
	/* Regions exported before this connection: sent before any frame can
	 * name them, so the peer has them when it needs them. */
	for (struct wp_mr *mr = ep->ctx->mrs; mr; mr = mr->next)
		if (mr->exported && mr->memfd >= 0)
			mr_offer(ep, mr);
	open_list_add(ep);
	if (se->pend_head != se->pend_tail)
		wp_ctx_mark_dirty(ep); /* sends queued while connecting */
	wp_conn_established(ep);
}

/*
 * A doorbell from the peer must be an eventfd (an anonymous inode: pipes,
 * FIFOs, sockets and files are refused) and must never block us: ring_bell
 * writes the peer's, and we read ours after epoll said it was readable, which
 * the peer (holding the same eventfd) can drain first. So both are made
 * non-blocking here. The flag lives in the file description both sides share,
 * so this stops a careless peer, not one that clears it again later.
 */
static bool doorbell_ok(int fd)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != 0)
		return false;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && ((fl & O_NONBLOCK) || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* Acceptor: the connector's hello, with the region and the doorbells. */
static void hello_in(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;
	struct shm_ep *se = sep(ep);
	struct shm_wire_msg m,
		ack = { .magic = SHM_MAGIC, .version = SHM_VERSION, .type = SHM_MSG_ACK };
	int fds[3] = { -1, -1, -1 }, nfds, seals, ret;
	const char *why = NULL;
	struct stat st;
	uint8_t *base;
	ssize_t n = recv_fds(se->sock, &m, fds, &nfds);

	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		wp_conn_fail(ep, n == 0 ? -ECONNRESET : (int)n);
		goto out_close;
	}
	ret = -EPROTO;
	if (n != sizeof(m) || m.magic != SHM_MAGIC || m.type != SHM_MSG_HELLO)
		why = "not a wirepath shm hello";
	else if (m.version != SHM_VERSION)
		why = "unsupported shm version";
	else if (nfds != 3)
		why = "hello without its three descriptors";
	else if (!doorbell_ok(fds[1]) || !doorbell_ok(fds[2]))
		why = "doorbells that are not non-blocking eventfds";
	else if (shm_geom_compute(&se->g, m.slots, m.arena, m.heap, m.align) < 0 ||
		 se->g.size != m.size)
		why = "region geometry out of bounds";
	else if (fstat(fds[0], &st) < 0 || (uint64_t)st.st_size < se->g.size)
		why = "region smaller than its geometry";
	else if ((seals = fcntl(fds[0], F_GET_SEALS)) < 0 ||
		 (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		why = "region size not sealed (it could shrink under us)";
	if (why) {
		WP_CNT_ADD(bad_frames[WP_BAD_MAGIC], 1);
		wp_log(ctx, WP_LOG_WARN, "shm: refusing connection: %s", why);
		goto out_refuse;
	}
	base = shm_region_map(fds[0], se->g.size, false);
	if (!base) {
		ret = -errno;
		why = "mmap failed";
		goto out_refuse;
	}
	if (((struct shm_hdr *)base)->magic != SHM_MAGIC) {
		munmap(base, se->g.size);
		why = "region header has no magic";
		goto out_refuse;
	}
	ret = shm_ep_attach(ep, base);
	if (ret < 0) {
		why = "out of memory";
		goto out_refuse;
	}
	close(fds[0]);
	se->efd_me = fds[1];
	se->efd_peer = fds[2];
	se->peer_pid = m.pid;
	ret = send_fds(se->sock, &ack, NULL, 0);
	if (ret < 0) {
		wp_conn_fail(ep, ret);
		return;
	}
	established(ep);
	return;

out_refuse:
	ack.status = ret;
	send_fds(se->sock, &ack, NULL, 0);
	wp_conn_fail(ep, ret);
out_close:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void ack_in(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	struct shm_wire_msg m;
	int fds[3], nfds;
	ssize_t n = recv_fds(se->sock, &m, fds, &nfds);

	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		wp_conn_fail(ep, n == 0 ? -ECONNREFUSED : (int)n);
		return;
	}
	if (n != sizeof(m) || m.magic != SHM_MAGIC || m.type != SHM_MSG_ACK) {
		wp_conn_fail(ep, -EPROTO);
		return;
	}
	if (m.status < 0) {
		wp_log(ep->ctx, WP_LOG_WARN, "shm: the server refused the region: %s",
		       strerror(-m.status));
		wp_conn_fail(ep, m.status);
		return;
	}
	established(ep);
}

static void do_accept(struct wp_ep *l)
{
	for (;;) {
		struct wp_ep *ep;
		int fd;

		WP_SYSCALL(WP_SYS_ACCEPT);
		fd = accept4(sep(l)->sock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
				wp_log(l->ctx, WP_LOG_WARN, "shm accept: %s", strerror(errno));
			return;
		}
		ep = wp_ep_alloc(l->ctx, &l->cbs);
		if (!ep) {
			wp_log(l->ctx, WP_LOG_ERR,
			       "shm accept: out of memory, dropping connection");
			close(fd);
			continue;
		}
		sep(ep)->sock = fd;
		ep->accepted = true;
		ep->state = WP_EPS_CONNECTING;
		if (ep_watch(ep, fd, EPOLLIN | EPOLLRDHUP, 0) < 0)
			wp_conn_fail(ep, -errno);
	}
}

/* ---- socket events, and the regions the peer offers -------------- */

/* A region offer: keep its memfd (mapped at first use). */
static int rmr_add(struct wp_ep *ep, const struct shm_wire_msg *m, int fd)
{
	struct shm_ep *se = sep(ep);
	struct shm_rmr *r;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (se->nrmr >= SHM_MAX_RMR)
		return -EPROTO; /* a peer must not exhaust our descriptors */
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < m->mr_len || seals < 0 ||
	    (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		return -EPROTO; /* it could shrink under us: refuse */
	r = realloc(se->rmr, (se->nrmr + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	se->rmr = r;
	se->rmr[se->nrmr++] = (struct shm_rmr){ m->mr_id, m->mr_key, m->mr_len, fd, NULL };
	return 0;
}

/* Read every message waiting on an open connection's socket. Returns -EAGAIN
 * when drained, 0 at EOF, -EPROTO for a message that has no business there,
 * or -errno. */
ssize_t shm_sock_drain(struct wp_ep *ep)
{
	for (;;) {
		struct shm_wire_msg m;
		int fds[3], nfds;
		ssize_t n = recv_fds(sep(ep)->sock, &m, fds, &nfds);

		if (n <= 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return n;
		}
		if (n != sizeof(m) || m.magic != SHM_MAGIC || m.type != SHM_MSG_MR || nfds != 1 ||
		    rmr_add(ep, &m, fds[0]) < 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return -EPROTO;
		}
	}
}

void shm_sock_event(struct wp_ep *ep, uint32_t e)
{
	struct shm_ep *se = sep(ep);

	switch (ep->state) {
	case WP_EPS_LISTEN:
		do_accept(ep);
		break;
	case WP_EPS_CONNECTING:
		if (se->side == 1)
			hello_in(ep);
		else
			ack_in(ep);
		break;
	case WP_EPS_OPEN: {
		ssize_t n = shm_sock_drain(ep);

		if (n == -EAGAIN || n == -EINTR)
			break;
		/* EOF or an error: the peer is gone. Deliver what it published
		 * before it went, then close. */
		shm_rx_poll(ep);
		if (ep->state != WP_EPS_OPEN)
			break;
		if (n == -EPROTO)
			shm_bad_peer(ep, WP_BAD_UNEXPECTED,
				     "unexpected message on the setup socket");
		else
			wp_conn_fail(ep, n == 0 ? 0 : (int)n);
		break;
	}
	default:
		break;
	}
	(void)e;
}

void shm_close(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	int status = ep->err ? ep->err : -ECONNRESET;

	open_list_del(ep);
	/* Out of the epoll set explicitly: closing an fd drops it only once no
	 * other fd refers to its file description, and the peer holds our
	 * doorbell's (a ring after this would report a freed endpoint). */
	if (sctx(ep->ctx)) {
		for (int i = 0; i < 2; i++) {
			int fd = i ? se->efd_me : se->sock;

			if (fd < 0)
				continue;
			wp_epoll_ctl(ep->ctx, EPOLL_CTL_DEL, fd, 0, 0);
		}
	}
	if (se->sock >= 0) {
		WP_SYSCALL(WP_SYS_CLOSE);
		close(se->sock);
		se->sock = -1;
	}
	if (se->efd_me >= 0)
		close(se->efd_me);
	if (se->efd_peer >= 0)
		close(se->efd_peer);
	se->efd_me = se->efd_peer = -1;
	if (se->unlink_path) {
		unlink(se->unlink_path);
		free(se->unlink_path);
		se->unlink_path = NULL;
	}
	/* In-place payloads the peer never released, and sends that never left:
	 * their owners get them back with the error. */
	if (se->infl) {
		while (se->tx_done != se->tx_prod) {
			struct shm_infl *r = &se->infl[se->tx_done++ & (se->g.slots - 1)];

			if (r->done)
				wp_defer(ep->ctx, r->done, r->arg, status);
			r->done = NULL;
		}
		se->infl_cb = 0;
	}
	while (se->pend_head != se->pend_tail) {
		struct shm_pend *p = &se->pend[se->pend_head++ & (se->pend_cap - 1)];

		if (p->done == wp_copy_done)
			free(p->arg);
		else if (p->done)
			wp_defer(ep->ctx, p->done, p->arg, status);
	}
}

void shm_ep_free(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);

	if (se->sock >= 0 || se->efd_me >= 0 || se->efd_peer >= 0 || se->pend_head != se->pend_tail)
		shm_close(ep); /* failed before it opened */
	if (se->base)
		munmap(se->base, se->g.size);
	while (se->free_ext) {
		struct shm_ext *e = se->free_ext;

		se->free_ext = e->next;
		free(e);
	}
	for (uint32_t i = 0; i < se->nrmr; i++) {
		if (se->rmr[i].map)
			munmap(se->rmr[i].map, se->rmr[i].len);
		close(se->rmr[i].fd);
	}
	free(se->rmr);
	free(se->blk_len);
	free(se->infl);
	free(se->pend);
}

int shm_local_uri(const struct wp_ep *ep, char *buf, size_t len)
{
	struct sockaddr_un un;
	socklen_t sl = sizeof(un);
	int n;

	if (getsockname(sep(ep)->sock, (struct sockaddr *)&un, &sl) < 0)
		return -errno;
	if (sl <= offsetof(struct sockaddr_un, sun_path))
		return -EINVAL;
	if (un.sun_path[0])
		n = snprintf(buf, len, "shm://%s", un.sun_path);
	else
		n = snprintf(buf, len, "shm://@%.*s",
			     (int)(sl - offsetof(struct sockaddr_un, sun_path) - 1),
			     un.sun_path + 1);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A region became reachable: offer its memfd to every open connection. */
void shm_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr)
{
	if (mr->memfd < 0)
		return;
	for (struct wp_ep *ep = sctx(ctx)->open; ep; ep = sep(ep)->next_open)
		mr_offer(ep, mr);
}

struct shm_rmr *shm_rmr_find(struct shm_ep *se, uint32_t id)
{
	for (uint32_t i = 0; i < se->nrmr; i++)
		if (se->rmr[i].id == id)
			return &se->rmr[i];
	return NULL;
}

/* Registration is bookkeeping here; bulk transfers share regions explicitly. */
int shm_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	mr->idx = -1;
	return 0;
}

void shm_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
}

/* "shm:///path" (a filesystem socket), "shm://@name" (abstract), "shm://@"
 * (abstract, name chosen by the kernel at bind: autobind, salen = just the
 * family). */
int shm_addr_parse(const char *rest, struct sockaddr_storage *ss, socklen_t *salen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n = strlen(rest);

	memset(ss, 0, sizeof(*ss));
	un->sun_family = AF_UNIX;
	if (rest[0] == '/') {
		if (n >= sizeof(un->sun_path))
			return -ENAMETOOLONG;
		memcpy(un->sun_path, rest, n + 1);
		*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		return 0;
	}
	if (rest[0] == '@') {
		if (n >= sizeof(un->sun_path))
			return -ENAMETOOLONG;
		/* Abstract names start with a NUL byte and are n bytes long. */
		memcpy(un->sun_path + 1, rest + 1, n - 1);
		*salen = (socklen_t)(n == 1 ? sizeof(sa_family_t)
					    : offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	return -EINVAL;
}
