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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/crypto.h"
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

	se->sock = se->efd_me = se->efd_peer = se->memfd = -1;
	se->side = 1;
	se->step = SHM_STEP_WAIT_HELLO;
}

/* The peer's credentials as the kernel recorded them at connect (the
 * acceptor gets the connecting process's, the connector the listener's). */
static void peer_cred(struct wp_ep *ep)
{
	struct ucred uc;
	socklen_t l = sizeof(uc);

	WP_SYSCALL(WP_SYS_SOCKET);
	if (getsockopt(sep(ep)->sock, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0 || l != sizeof(uc))
		return;
	ep->peer_cred = true;
	ep->peer_pid = uc.pid;
	ep->peer_uid = uc.uid;
	ep->peer_gid = uc.gid;
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

/* Send one setup message (shm_setup_encode) with nfds descriptors. */
static int send_setup(int sock, const struct shm_setup *sm, const int *fds, int nfds)
{
	uint8_t m[SHM_SETUP_MAX];
	size_t len = shm_setup_encode(sm, m);
	char cbuf[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = { m, len };
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
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return 0;
}

/* Receive one setup message (into m, SHM_SETUP_MAX bytes) and up to 3 fds.
 * Returns bytes, 0 at EOF, -EAGAIN, -EMSGSIZE (longer than any setup
 * message: the bytes are garbage), or -errno. Extra or missing fds are the
 * caller's to judge. */
static ssize_t recv_fds(int sock, uint8_t *m, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { m, SHM_SETUP_MAX };
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
	if (mh.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	if (mh.msg_flags & MSG_CTRUNC)
		return -EPROTO;
	return n;
}

int shm_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct wp_ctx *ctx = ep->ctx;
	struct shm_ctx *sc = sctx(ctx);
	struct shm_ep *se = sep(ep);
	int memfd = -1, efd_peer, ret;
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
	peer_cred(ep);
	/* The hello leaves at the first progress round (the socket is
	 * writable at once), not here: wp_ep_set_tenant_key is called after
	 * wp_connect returns, and decides which hello it is. */
	se->memfd = memfd; /* passed with the region's hello, closed then */
	se->step = SHM_STEP_SEND_HELLO;
	ep->state = WP_EPS_CONNECTING;
	ret = ep_watch(ep, se->sock, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0);
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
	struct shm_setup m = { .version = SHM_VERSION,
			       .type = SHM_MSG_MR,
			       .mr_id = mr->id,
			       .mr_key = mr->key,
			       .mr_len = mr->len };

	if (send_setup(sep(ep)->sock, &m, &mr->memfd, 1) < 0)
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
	/* The hello/ack (with a policy: its key proofs) is this path's setup
	 * and handshake: the handshake timer stops here. */
	wp_conn_handshake_done(ep);
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

/* ---- the handshake ------------------------------------------------- */

#define SHM_LABEL_ACCEPTOR "wirepath shm v2 acceptor"
#define SHM_LABEL_CONNECTOR "wirepath shm v2 connector"

/* proof = HMAC-SHA256(key, label || tenant (le32) || nonce_c || nonce_a). */
static int auth_proof(const struct shm_ep *se, const char *label, uint8_t out[SHM_AUTH_PROOF])
{
	uint8_t t[4] = { (uint8_t)se->auth_tenant, (uint8_t)(se->auth_tenant >> 8),
			 (uint8_t)(se->auth_tenant >> 16), (uint8_t)(se->auth_tenant >> 24) };
	struct iovec iov[4] = { { (void *)label, strlen(label) },
				{ t, sizeof(t) },
				{ (void *)se->nonce_c, SHM_AUTH_NONCE },
				{ (void *)se->nonce_a, SHM_AUTH_NONCE } };

	_Static_assert(SHM_AUTH_PROOF == WP_AUTH_HMAC, "a proof is one HMAC-SHA256");
	return wp_auth_hmac(se->key, sizeof(se->key), iov, 4, out);
}

static bool auth_proof_ok(const struct shm_ep *se, const char *label,
			  const uint8_t got[SHM_AUTH_PROOF])
{
	uint8_t want[SHM_AUTH_PROOF];
	bool ok = auth_proof(se, label, want) == 0 && wp_auth_equal(want, got, sizeof(want));

	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* Set-up is over (either way): the key and the nonces are not needed. */
static void auth_wipe(struct shm_ep *se)
{
	OPENSSL_cleanse(se->key, sizeof(se->key));
	OPENSSL_cleanse(se->nonce_c, sizeof(se->nonce_c));
	OPENSSL_cleanse(se->nonce_a, sizeof(se->nonce_a));
}

/*
 * Refuse a connection during set-up: count the reason, log it with the
 * peer's credentials, tell the peer when it waits for a word from us (the
 * acceptor: a verdict in the version the peer spoke, so a v1 connector reads
 * it too; the connector, when the acceptor's proof was wrong: so the
 * acceptor can say why too), fail the endpoint with err.
 */
static void setup_refuse(struct wp_ep *ep, int reason, const char *why, int err, int version)
{
	struct shm_ep *se = sep(ep);
	char who[96] = "";

	WP_CNT_ADD(setup_refused[reason], 1);
	if (ep->peer_cred)
		snprintf(who, sizeof(who), " (peer pid %d uid %u gid %u)", (int)ep->peer_pid,
			 ep->peer_uid, ep->peer_gid);
	wp_log(ep->ctx, WP_LOG_WARN, "shm: %s connection%s: %s [%s]",
	       se->side ? "refusing" : "giving up on the", who, why,
	       wp_setup_reason_name((enum wp_setup_reason)reason));
	if (se->side == 1 ||
	    (se->step == SHM_STEP_WAIT_CHALLENGE && reason == WP_SETUP_BAD_PROOF)) {
		struct shm_setup ack = { .version = (uint16_t)version,
					 .type = version == SHM_VERSION_AUTH ? SHM_MSG_AUTH_ACK
									     : SHM_MSG_ACK,
					 .status = err };

		send_setup(se->sock, &ack, NULL, 0);
	}
	auth_wipe(se);
	wp_conn_fail(ep, err);
}

static void close_fds(int *fds, int nfds)
{
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * Acceptor: take the region and the doorbells a (v1 or authenticated) hello
 * passed. Everything is checked before anything is mapped. Returns 0 (fds
 * consumed) or -errno with *why; the caller closes the fds then.
 */
static int region_take(struct wp_ep *ep, const struct shm_setup *m, int *fds, int nfds,
		       const char **why)
{
	struct shm_ep *se = sep(ep);
	struct stat st;
	uint8_t *base;
	int seals, ret;

	if (nfds != 3)
		*why = "hello without its three descriptors";
	else if (!doorbell_ok(fds[1]) || !doorbell_ok(fds[2]))
		*why = "doorbells that are not non-blocking eventfds";
	else if (fstat(fds[0], &st) < 0 || (uint64_t)st.st_size < m->g.size)
		*why = "region smaller than its geometry";
	else if ((seals = fcntl(fds[0], F_GET_SEALS)) < 0 ||
		 (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		*why = "region size not sealed (it could shrink under us)";
	else
		*why = NULL;
	if (*why)
		return -EPROTO;
	se->g = m->g;
	base = shm_region_map(fds[0], se->g.size, false);
	if (!base) {
		*why = "mmap failed";
		return -errno;
	}
	if (((struct shm_hdr *)base)->magic != SHM_MAGIC) {
		munmap(base, se->g.size);
		*why = "region header has no magic";
		return -EPROTO;
	}
	ret = shm_ep_attach(ep, base);
	if (ret < 0) {
		*why = "out of memory";
		return ret;
	}
	close(fds[0]);
	se->efd_me = fds[1];
	se->efd_peer = fds[2];
	return 0;
}

/* Acceptor, first message: a v1 hello (with the region) or an AUTH_HELLO. */
static void hello_in(struct wp_ep *ep, const struct shm_setup *m, int *fds, int nfds)
{
	struct wp_ctx *ctx = ep->ctx;
	struct shm_ep *se = sep(ep);
	struct shm_setup ch = { .version = SHM_VERSION_AUTH, .type = SHM_MSG_AUTH_CHALLENGE };
	const char *why;
	int ret;

	if (ctx->o.shm_same_uid && (!ep->peer_cred || ep->peer_uid != geteuid())) {
		close_fds(fds, nfds);
		setup_refuse(ep, WP_SETUP_PEER_UID, "its uid is not ours (shm_same_uid)", -EACCES,
			     m->version);
		return;
	}
	if (m->type == SHM_MSG_HELLO) {
		if (ctx->guard) {
			close_fds(fds, nfds);
			setup_refuse(ep, WP_SETUP_NO_AUTH,
				     "unauthenticated (v1) hello, but this context has a policy: "
				     "the peer must set a tenant key",
				     -EACCES, SHM_VERSION);
			return;
		}
		ret = region_take(ep, m, fds, nfds, &why);
		if (ret < 0) {
			close_fds(fds, nfds);
			if (ret == -EPROTO)
				WP_CNT_ADD(bad_frames[WP_BAD_MAGIC], 1);
			setup_refuse(ep, WP_SETUP_REGION, why, ret, SHM_VERSION);
			return;
		}
		if (send_setup(se->sock,
			       &(struct shm_setup){ .version = SHM_VERSION, .type = SHM_MSG_ACK },
			       NULL, 0) < 0) {
			wp_conn_fail(ep, -errno);
			return;
		}
		wp_log(ctx, WP_LOG_INFO, "shm: connection from pid %d uid %u (unauthenticated)",
		       (int)ep->peer_pid, ep->peer_uid);
		established(ep);
		return;
	}
	/* AUTH_HELLO: prove the key first; the region comes after. */
	if (nfds) {
		close_fds(fds, nfds);
		setup_refuse(ep, WP_SETUP_GARBAGE, "descriptors before the key proofs", -EPROTO,
			     SHM_VERSION_AUTH);
		return;
	}
	se->auth_tenant = m->tenant;
	if (!ctx->guard || !ctx->guard->tenant_key ||
	    ctx->guard->tenant_key(ctx, m->tenant, se->key) < 0) {
		char w[96];

		snprintf(w, sizeof(w), "no key for tenant %u here (%s)", m->tenant,
			 ctx->guard ? "not in the policy" : "this context has no policy");
		setup_refuse(ep, WP_SETUP_NO_KEY, w, -EACCES, SHM_VERSION_AUTH);
		return;
	}
	memcpy(se->nonce_c, m->nonce, SHM_AUTH_NONCE);
	ch.tenant = m->tenant;
	ch.pid = getpid();
	ret = wp_auth_random(se->nonce_a, SHM_AUTH_NONCE);
	if (ret == 0)
		ret = auth_proof(se, SHM_LABEL_ACCEPTOR, ch.proof);
	if (ret < 0) {
		auth_wipe(se);
		wp_conn_fail(ep, ret);
		return;
	}
	memcpy(ch.nonce, se->nonce_a, SHM_AUTH_NONCE);
	if (send_setup(se->sock, &ch, NULL, 0) < 0) {
		auth_wipe(se);
		wp_conn_fail(ep, -errno);
		return;
	}
	se->step = SHM_STEP_WAIT_REGION;
}

/* Acceptor: the connector's proof, with the region. */
static void region_in(struct wp_ep *ep, const struct shm_setup *m, int *fds, int nfds)
{
	struct shm_ep *se = sep(ep);
	const char *why;
	int ret;

	/* The proof first: nothing a peer without the key sends is looked at. */
	if (m->tenant != se->auth_tenant || !auth_proof_ok(se, SHM_LABEL_CONNECTOR, m->proof)) {
		char w[96];

		close_fds(fds, nfds);
		snprintf(w, sizeof(w), "wrong proof of tenant %u's key", se->auth_tenant);
		setup_refuse(ep, WP_SETUP_BAD_PROOF, w, -EACCES, SHM_VERSION_AUTH);
		return;
	}
	/* The tenant is known now: count it (conns_per_tenant; a refusal is
	 * counted there and told to the connector as the verdict's errno). */
	if (wp_conn_tenant_bind(ep, se->auth_tenant) < 0) {
		close_fds(fds, nfds);
		send_setup(se->sock,
			   &(struct shm_setup){ .version = SHM_VERSION_AUTH,
						.type = SHM_MSG_AUTH_ACK,
						.status = -EUSERS },
			   NULL, 0);
		auth_wipe(se);
		wp_conn_drop(ep, -EUSERS);
		return;
	}
	ret = region_take(ep, m, fds, nfds, &why);
	if (ret < 0) {
		close_fds(fds, nfds);
		setup_refuse(ep, WP_SETUP_REGION, why, ret, SHM_VERSION_AUTH);
		return;
	}
	auth_wipe(se);
	ep->tenant = se->auth_tenant;
	ep->peer_verified = true;
	if (send_setup(se->sock,
		       &(struct shm_setup){ .version = SHM_VERSION_AUTH,
					    .type = SHM_MSG_AUTH_ACK,
					    .tenant = se->auth_tenant },
		       NULL, 0) < 0) {
		wp_conn_fail(ep, -errno);
		return;
	}
	wp_log(ep->ctx, WP_LOG_INFO, "shm: connection from pid %d uid %u gid %u: tenant %u proved",
	       (int)ep->peer_pid, ep->peer_uid, ep->peer_gid, ep->tenant);
	established(ep);
}

/* Connector, at the first event: the hello. With a tenant key, an
 * AUTH_HELLO (no descriptors); without, the v1 hello with the region. */
static void hello_out(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	struct shm_setup m = { .pid = getpid() };
	int fds[3] = { se->memfd, se->efd_peer, se->efd_me }, ret;

	ret = wp_epoll_ctl(ep->ctx, EPOLL_CTL_MOD, se->sock, EPOLLIN | EPOLLRDHUP, (uintptr_t)ep);
	if (ret < 0) {
		wp_conn_fail(ep, ret);
		return;
	}
	if (ep->guard && ep->guard->ep_key && ep->guard->ep_key(ep, se->key) == 0) {
		se->auth_tenant = ep->tenant;
		m.version = SHM_VERSION_AUTH;
		m.type = SHM_MSG_AUTH_HELLO;
		m.tenant = ep->tenant;
		ret = wp_auth_random(se->nonce_c, SHM_AUTH_NONCE);
		memcpy(m.nonce, se->nonce_c, SHM_AUTH_NONCE);
		if (ret == 0)
			ret = send_setup(se->sock, &m, NULL, 0);
		se->step = SHM_STEP_WAIT_CHALLENGE;
	} else {
		m.version = SHM_VERSION;
		m.type = SHM_MSG_HELLO;
		m.slots = se->g.slots;
		m.arena = se->g.arena;
		m.heap = se->g.heap;
		m.align = se->g.align;
		m.size = se->g.size;
		/* fds[1]: the acceptor's doorbell, it waits on it; fds[2]: ours */
		ret = send_setup(se->sock, &m, fds, 3);
		if (ret == 0) {
			close(se->memfd); /* the mapping and the peer keep it alive */
			se->memfd = -1;
		}
		se->step = SHM_STEP_WAIT_ACK;
	}
	if (ret < 0) {
		auth_wipe(se);
		wp_conn_fail(ep, ret);
	}
}

/* Connector: the acceptor's challenge (its proof), or its refusal. */
static void challenge_in(struct wp_ep *ep, const struct shm_setup *m)
{
	struct shm_ep *se = sep(ep);
	struct shm_setup r = { .version = SHM_VERSION_AUTH,
			       .type = SHM_MSG_AUTH_REGION,
			       .tenant = se->auth_tenant,
			       .pid = getpid(),
			       .slots = se->g.slots,
			       .arena = se->g.arena,
			       .heap = se->g.heap,
			       .align = se->g.align,
			       .size = se->g.size };
	int fds[3] = { se->memfd, se->efd_peer, se->efd_me }, ret;

	memcpy(se->nonce_a, m->nonce, SHM_AUTH_NONCE);
	/* The region goes only to a peer that proved the key. */
	if (m->tenant != se->auth_tenant || !auth_proof_ok(se, SHM_LABEL_ACCEPTOR, m->proof)) {
		setup_refuse(ep, WP_SETUP_BAD_PROOF,
			     "the server could not prove the tenant key: the region stays here",
			     -EACCES, SHM_VERSION_AUTH);
		return;
	}
	ret = auth_proof(se, SHM_LABEL_CONNECTOR, r.proof);
	auth_wipe(se);
	if (ret == 0)
		ret = send_setup(se->sock, &r, fds, 3);
	if (ret < 0) {
		wp_conn_fail(ep, ret);
		return;
	}
	close(se->memfd);
	se->memfd = -1;
	se->step = SHM_STEP_WAIT_AUTH_ACK;
}

/* One set-up message on a connection that is not open yet. */
static void setup_in(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	uint8_t buf[SHM_SETUP_MAX];
	int fds[3] = { -1, -1, -1 }, nfds = 0, reason;
	const char *why;
	unsigned want;
	struct shm_setup m;
	ssize_t n = recv_fds(se->sock, buf, fds, &nfds);
	int ver = se->side == 1 && se->step == SHM_STEP_WAIT_HELLO ? SHM_VERSION : SHM_VERSION_AUTH;

	if (n == -EAGAIN)
		return;
	if (n == 0 || (n < 0 && n != -EMSGSIZE)) {
		close_fds(fds, nfds);
		if (se->side == 0 && n == 0)
			wp_log(ep->ctx, WP_LOG_WARN,
			       "shm: the server hung up during set-up (it may require a tenant key)");
		auth_wipe(se);
		wp_conn_fail(ep, n == 0 ? (se->side ? -ECONNRESET : -ECONNREFUSED) : (int)n);
		return;
	}
	switch (se->step) {
	case SHM_STEP_WAIT_HELLO:
		want = SHM_WANT(SHM_MSG_HELLO) | SHM_WANT(SHM_MSG_AUTH_HELLO);
		break;
	case SHM_STEP_WAIT_REGION: /* or the connector's refusal of our proof */
		want = SHM_WANT(SHM_MSG_AUTH_REGION) | SHM_WANT(SHM_MSG_AUTH_ACK);
		break;
	case SHM_STEP_WAIT_ACK:
		want = SHM_WANT(SHM_MSG_ACK);
		break;
	default: /* the connector, authenticating: a refusal may come in either version */
		want = SHM_WANT(SHM_MSG_ACK) | SHM_WANT(SHM_MSG_AUTH_ACK) |
		       (se->step == SHM_STEP_WAIT_CHALLENGE ? SHM_WANT(SHM_MSG_AUTH_CHALLENGE) : 0);
		break;
	}
	if (n == -EMSGSIZE) {
		reason = WP_SETUP_GARBAGE;
		why = "oversized setup message";
	} else if (shm_setup_parse(buf, (size_t)n, want, &m, &reason, &why) == 0) {
		why = NULL;
	}
	if (why) {
		close_fds(fds, nfds);
		/* v1-era hellos that fail are counted as before (not a hello). */
		if (se->side == 1 && se->step == SHM_STEP_WAIT_HELLO)
			WP_CNT_ADD(bad_frames[WP_BAD_MAGIC], 1);
		if ((n == -EMSGSIZE || n >= 6) && buf[4] == SHM_VERSION_AUTH && buf[5] == 0)
			ver = SHM_VERSION_AUTH;
		setup_refuse(ep, reason, why, -EPROTO, ver);
		return;
	}
	if (se->side == 1 && m.type == SHM_MSG_AUTH_ACK) {
		char w[128];

		close_fds(fds, nfds);
		snprintf(w, sizeof(w), "the client refused our proof of tenant %u's key (%s)",
			 se->auth_tenant,
			 m.status < 0 ? "its key is not the policy's" : "and said nothing");
		se->step = SHM_STEP_WAIT_HELLO; /* nothing more to tell it */
		setup_refuse(ep, WP_SETUP_BAD_PROOF, w, -EACCES, SHM_VERSION_AUTH);
		return;
	}
	if (m.type == SHM_MSG_ACK || m.type == SHM_MSG_AUTH_ACK) {
		close_fds(fds, nfds);
		if (m.status < 0) {
			char w[128];

			snprintf(w, sizeof(w), "the server refused us: %s%s", strerror(-m.status),
				 m.status == -EACCES ? " (tenant key missing or not accepted)"
						     : "");
			setup_refuse(ep, WP_SETUP_REFUSED, w, m.status, m.version);
			return;
		}
		/* An acceptance counts only where this side expects one: a server
		 * that did not prove the key cannot skip the proofs by accepting. */
		if (se->step !=
		    (m.type == SHM_MSG_ACK ? SHM_STEP_WAIT_ACK : SHM_STEP_WAIT_AUTH_ACK)) {
			setup_refuse(ep, WP_SETUP_BAD_PROOF,
				     "the server accepted without proving the tenant key", -EACCES,
				     SHM_VERSION_AUTH);
			return;
		}
		ep->peer_verified = m.type == SHM_MSG_AUTH_ACK;
		established(ep);
		return;
	}
	switch (m.type) {
	case SHM_MSG_HELLO:
	case SHM_MSG_AUTH_HELLO:
		hello_in(ep, &m, fds, nfds);
		break;
	case SHM_MSG_AUTH_REGION:
		region_in(ep, &m, fds, nfds);
		break;
	case SHM_MSG_AUTH_CHALLENGE:
		close_fds(fds, nfds);
		challenge_in(ep, &m);
		break;
	}
}

static void do_accept(struct wp_ep *l)
{
	struct wp_ep *ep;
	int fd;

	/* A unix peer has no source address: conns_max only. The handshake
	 * timer runs from the accept. */
	while ((ep = wp_accept_next(l, sep(l)->sock, false, &fd))) {
		sep(ep)->sock = fd;
		ep->state = WP_EPS_CONNECTING;
		peer_cred(ep); /* logged with the verdict; checked by shm_same_uid */
		if (ep_watch(ep, fd, EPOLLIN | EPOLLRDHUP, 0) < 0)
			wp_conn_fail(ep, -errno);
	}
}

/* Accept backoff (limits.c): the listener leaves and rejoins the epoll
 * interest; connections need no pause (frames arrive whole, in shared
 * memory the connector allocated: nothing is assembled here). */
void shm_rx_pause(struct wp_ep *ep, bool pause)
{
	if (ep->state != WP_EPS_LISTEN || sep(ep)->sock < 0)
		return;
	wp_epoll_ctl(ep->ctx, EPOLL_CTL_MOD, sep(ep)->sock, pause ? 0 : EPOLLIN, (uintptr_t)ep);
}

/* ---- socket events, and the regions the peer offers -------------- */

/* A region offer: keep its memfd (mapped at first use). */
static int rmr_add(struct wp_ep *ep, const struct shm_setup *m, int fd)
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
		uint8_t buf[SHM_SETUP_MAX];
		struct shm_setup m;
		const char *why;
		int fds[3], nfds, reason;
		ssize_t n = recv_fds(sep(ep)->sock, buf, fds, &nfds);

		if (n == -EMSGSIZE)
			n = -EPROTO;
		if (n <= 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return n;
		}
		if (shm_setup_parse(buf, (size_t)n, SHM_WANT(SHM_MSG_MR), &m, &reason, &why) < 0 ||
		    nfds != 1 || rmr_add(ep, &m, fds[0]) < 0) {
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
		if (se->side == 0 && se->step == SHM_STEP_SEND_HELLO)
			hello_out(ep);
		else
			setup_in(ep);
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
	if (se->memfd >= 0)
		close(se->memfd);
	se->efd_me = se->efd_peer = se->memfd = -1;
	auth_wipe(se);
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

	if (se->sock >= 0 || se->efd_me >= 0 || se->efd_peer >= 0 || se->memfd >= 0 ||
	    se->pend_head != se->pend_tail)
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
