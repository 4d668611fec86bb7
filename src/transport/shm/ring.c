// SPDX-License-Identifier: MIT
/*
 * The shm path: co-located processes exchange frames through lock-free
 * single-producer/single-consumer rings in one shared memfd region per
 * connection. Payloads never pass through a ring: the producer places them in
 * its own part of the region (its arena, where the library copies a caller's
 * payload, or its heap, where wp_ep_buf_alloc hands out buffers the caller
 * fills in place) and the ring carries a 64-byte descriptor: the frame header
 * in wire encoding plus the payload's offset. The consumer delivers the
 * payload in place and returns ownership by advancing its `cons` index once
 * the callback returned; the producer then frees arena space and runs the
 * in-place sender's completion. Releases come back in ring order (a lent
 * message is kept by copying it, see wp_msg_keep), so the arena is itself a
 * ring and one index per direction says what is free.
 *
 * Setup: the connecting side creates and sizes the region (2 MiB hugepages
 * when the kernel has them reserved, 4 KiB pages otherwise), seals its size,
 * and passes it with two eventfds (one doorbell per side) over a unix
 * SOCK_SEQPACKET socket with SCM_RIGHTS. The acceptor validates everything it
 * is given (size, seals, geometry) before mapping it. The socket stays open:
 * its hang-up is how either side learns the other died (the kernel closes a
 * killed process's sockets), so nothing hangs on a dead peer.
 *
 * Wake-ups: a progress round polls every ring; with nothing to do it spins
 * (spin_us), then sets its `sleeping` flag in each connection, re-checks the
 * rings (the flag store and the re-check pair with the producer's index store
 * and flag load, both behind full fences: Dekker's handshake) and sleeps in
 * epoll_wait on the doorbells and sockets. A producer rings the doorbell only
 * when the peer said it sleeps, so a busy connection makes no syscalls.
 *
 * Trust: the peer can write anything into the shared part. Every index and
 * offset read from it is checked against the geometry this side computed
 * itself (never against offsets stored in shared memory), every header goes
 * through the same decoder as a stream's, and a violation closes the
 * connection with a counted bad-frame reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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

#include "core/core.h"

#define SHM_MAGIC 0x314d5057u /* "WPM1" */
#define SHM_VERSION 1
#define SHM_HUGE (2u << 20)
#define SHM_GRANULE 256u      /* heap allocation unit */
#define SHM_EPOLL_EVERY_NS 1000000ull /* look at sockets at least this often when busy */
#define SHM_EVENTS 64
#define SHM_MAX_RMR 1024u     /* regions a peer may offer one connection */

enum { SHM_MSG_HELLO = 1, SHM_MSG_ACK = 2, SHM_MSG_MR = 3 };

/* ---- the shared region --------------------------------------------- */

struct shm_dir_ctl {
	/* Descriptors published; written by the producer only (release), read
	 * by the consumer (acquire). */
	_Atomic uint64_t prod __attribute__((aligned(64)));
	/* Descriptors released; written by the consumer only (release) once
	 * the payload's callback returned, read by the producer (acquire). */
	_Atomic uint64_t cons __attribute__((aligned(64)));
};

struct shm_side_ctl {
	/* The side is in (or about to enter) epoll_wait: ring its doorbell. */
	_Atomic uint32_t sleeping __attribute__((aligned(64)));
	/* The side has sends waiting for ring or arena room, or in-place
	 * completions waiting for the peer's release: wake it on release. */
	_Atomic uint32_t want_space;
};

struct shm_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t size;
	struct shm_dir_ctl dir[2]; /* dir[s]: produced by side s */
	struct shm_side_ctl side[2];
};

struct shm_desc {
	uint8_t hdr[WP_FRAME_HDR]; /* the frame header, wire encoding */
	uint64_t off;              /* payload offset from the region start */
	uint64_t pad[2];
};
_Static_assert(sizeof(struct shm_desc) == 64, "descriptor is one cache line");

/* Where everything lies; computed by each side from the geometry alone. */
struct shm_geom {
	uint32_t slots;
	uint64_t arena, heap;      /* bytes per direction */
	uint64_t align;            /* page size of the region */
	uint64_t ring_off[2], arena_off[2], heap_off[2];
	uint64_t size;
};

/* The setup messages on the unix socket. */
struct shm_wire_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	int32_t status;            /* ACK: 0 or -errno */
	uint32_t slots;
	uint64_t arena, heap, align, size;
	int32_t pid;
	uint32_t mr_id;            /* MR: an exported region, its memfd attached */
	uint32_t mr_key;
	uint32_t pad;
	uint64_t mr_len;
};

struct shm_rmr {               /* a region the peer exported to us */
	uint32_t id, key;
	uint64_t len;
	int fd;
	uint8_t *map;              /* mapped at first use */
};

/* ---- private state -------------------------------------------------- */

struct shm_infl {              /* a published descriptor awaiting release */
	uint64_t arena_end;        /* arena head after its payload */
	wp_done_fn done;           /* in place: the sender's completion */
	void *arg;
};

struct shm_pend {              /* a send that found no room yet */
	struct wp_frame_hdr h;
	const void *data;
	size_t len;
	wp_done_fn done;
	void *arg;
};

struct shm_ext {               /* a free heap extent, in granules */
	uint32_t start, len;
	struct shm_ext *next;
};

struct shm_ep {
	int sock, efd_me, efd_peer;
	int side;                  /* 0 connected, 1 accepted */
	uint8_t *base;
	struct shm_geom g;
	struct shm_hdr *hdr;
	bool open;                 /* on the poll list */
	struct wp_ep *next_open, *prev_open;
	/* transmit (direction `side`) */
	struct shm_desc *tx_ring;
	uint64_t tx_prod, tx_done;
	uint32_t infl_cb;          /* published descriptors with a completion to run */
	uint64_t arena_head, arena_tail;
	struct shm_infl *infl;
	struct shm_pend *pend;
	uint32_t pend_head, pend_tail, pend_cap; /* ring, absolute indices */
	bool bell;                 /* published since the last doorbell check */
	/* heap allocator (private: the peer cannot corrupt it) */
	struct shm_ext *free_ext;
	uint32_t *blk_len;         /* granules per live allocation, by start */
	/* receive (direction 1 - side) */
	struct shm_desc *rx_ring;
	uint64_t rx_cons;
	/* regions the peer exported (bulk transfers map them) */
	struct shm_rmr *rmr;
	uint32_t nrmr;
	/* listener: a filesystem socket we created, unlinked at close */
	char *unlink_path;
	int peer_pid;
};

struct shm_ctx {
	int epfd;
	struct wp_ep *open;        /* connections to poll */
	uint64_t last_epoll_ns;
	bool huge;                 /* 2 MiB hugetlb memfds work here */
	char pages_why[128];
	struct epoll_event ev[SHM_EVENTS];
};

static struct shm_ctx *sctx(struct wp_ctx *ctx)
{
	return ctx->bk;
}

static struct shm_ep *sep(const struct wp_ep *ep)
{
	return ep->bk;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Lay the region out. Returns 0 or -EINVAL for a geometry out of bounds. */
static int geom_compute(struct shm_geom *g, uint32_t slots, uint64_t arena, uint64_t heap,
			uint64_t align)
{
	uint64_t off;

	if (slots < 8 || slots > (1u << 20) || (slots & (slots - 1)) ||
	    (align != 4096 && align != SHM_HUGE) || arena < 4096 || arena > (1ull << 30) ||
	    heap < SHM_GRANULE || heap > (4ull << 30) || arena % 64 || heap % SHM_GRANULE)
		return -EINVAL;
	g->slots = slots;
	g->arena = arena;
	g->heap = heap;
	g->align = align;
	off = align_up(sizeof(struct shm_hdr), align);
	for (int d = 0; d < 2; d++) {
		g->ring_off[d] = off;
		off = align_up(off + (uint64_t)slots * sizeof(struct shm_desc), align);
	}
	for (int d = 0; d < 2; d++) {
		g->arena_off[d] = off;
		off = align_up(off + arena, align);
	}
	for (int d = 0; d < 2; d++) {
		g->heap_off[d] = off;
		off = align_up(off + heap, align);
	}
	g->size = off;
	return 0;
}

/* ---- heap allocator ----------------------------------------------- */

static int heap_init(struct shm_ep *se)
{
	uint32_t n = (uint32_t)(se->g.heap / SHM_GRANULE);

	se->blk_len = calloc(n, sizeof(*se->blk_len));
	se->free_ext = malloc(sizeof(*se->free_ext));
	if (!se->blk_len || !se->free_ext)
		return -ENOMEM;
	*se->free_ext = (struct shm_ext){ 0, n, NULL };
	return 0;
}

static void *heap_alloc(struct shm_ep *se, size_t len)
{
	uint32_t n = (uint32_t)((len + SHM_GRANULE - 1) / SHM_GRANULE);

	for (struct shm_ext **pp = &se->free_ext; *pp; pp = &(*pp)->next) {
		struct shm_ext *e = *pp;
		uint32_t start = e->start;

		if (e->len < n)
			continue;
		e->start += n;
		e->len -= n;
		if (!e->len) {
			*pp = e->next;
			free(e);
		}
		se->blk_len[start] = n;
		return se->base + se->g.heap_off[se->side] + (uint64_t)start * SHM_GRANULE;
	}
	return NULL;
}

static bool in_heap(const struct shm_ep *se, const void *p, size_t len)
{
	const uint8_t *h = se->base + se->g.heap_off[se->side];
	const uint8_t *b = p;

	return b >= h && b < h + se->g.heap && len <= (size_t)(h + se->g.heap - b);
}

static int heap_free(struct shm_ep *se, void *p)
{
	uint64_t off;
	uint32_t start, n;
	struct shm_ext **pp, *prev = NULL, *e;

	if (!in_heap(se, p, 1))
		return -EINVAL;
	off = (uint64_t)((uint8_t *)p - (se->base + se->g.heap_off[se->side]));
	if (off % SHM_GRANULE)
		return -EINVAL;
	start = (uint32_t)(off / SHM_GRANULE);
	n = se->blk_len[start];
	if (!n)
		return -EINVAL; /* not allocated, or freed twice */
	se->blk_len[start] = 0;
	/* Insert sorted by start, merging with both neighbours. */
	for (pp = &se->free_ext; *pp && (*pp)->start < start; pp = &(*pp)->next)
		prev = *pp;
	if (prev && prev->start + prev->len == start) {
		prev->len += n;
		e = prev;
	} else {
		e = malloc(sizeof(*e));
		if (!e) {
			se->blk_len[start] = n; /* leak the extent rather than corrupt */
			return -ENOMEM;
		}
		*e = (struct shm_ext){ start, n, *pp };
		*pp = e;
	}
	if (e->next && e->start + e->len == e->next->start) {
		struct shm_ext *nx = e->next;

		e->len += nx->len;
		e->next = nx->next;
		free(nx);
	}
	return 0;
}

/* ---- region ---------------------------------------------------------- */

static int memfd_sized(uint64_t size, bool huge)
{
	unsigned int fl = MFD_CLOEXEC | MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB | (21u << 26) : 0);
	int fd, err;

	WP_SYSCALL(WP_SYS_OTHER);
	fd = memfd_create("wirepath-shm", fl);
	if (fd < 0)
		return -errno;
	WP_SYSCALL(WP_SYS_OTHER);
	if (ftruncate(fd, (off_t)size) < 0)
		goto out_errno;
	/* Sealed size: a peer cannot shrink the region under us (SIGBUS). */
	WP_SYSCALL(WP_SYS_OTHER);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto out_errno;
	return fd;
out_errno:
	err = -errno;
	close(fd);
	return err;
}

static void *region_map(int fd, uint64_t size, bool populate)
{
	void *p;

	WP_SYSCALL(WP_SYS_OTHER);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0),
		 fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Point the private state at the mapped region. */
static int ep_attach(struct wp_ep *ep, uint8_t *base)
{
	struct shm_ep *se = sep(ep);
	int tx = se->side, rx = 1 - se->side;
	int ret;

	se->base = base;
	se->hdr = (struct shm_hdr *)base;
	se->tx_ring = (struct shm_desc *)(base + se->g.ring_off[tx]);
	se->rx_ring = (struct shm_desc *)(base + se->g.ring_off[rx]);
	se->infl = calloc(se->g.slots, sizeof(*se->infl));
	if (!se->infl)
		return -ENOMEM;
	ret = heap_init(se);
	if (ret < 0)
		return ret;
	/* The peer's parts are read-only here: a bug of ours cannot scribble
	 * on what the peer owns (each side writes only its own ring, arena and
	 * heap, and the control block). */
	WP_SYSCALL(WP_SYS_OTHER);
	mprotect(base + se->g.ring_off[rx], align_up((uint64_t)se->g.slots * 64, se->g.align),
		 PROT_READ);
	WP_SYSCALL(WP_SYS_OTHER);
	mprotect(base + se->g.arena_off[rx], align_up(se->g.arena, se->g.align), PROT_READ);
	WP_SYSCALL(WP_SYS_OTHER);
	mprotect(base + se->g.heap_off[rx], align_up(se->g.heap, se->g.align), PROT_READ);
	return 0;
}

/* ---- backend control ops ------------------------------------------- */

static int shm_available(char *why, size_t len)
{
	int fd = memfd_create("wirepath-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int efd, s;

	if (fd < 0) {
		snprintf(why, len, "memfd_create: %s", strerror(errno));
		return -errno;
	}
	close(fd);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		snprintf(why, len, "eventfd: %s", strerror(errno));
		return -errno;
	}
	close(efd);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(why, len, "socket(AF_UNIX, SOCK_SEQPACKET): %s", strerror(errno));
		return -errno;
	}
	close(s);
	return 0;
}

/* Can this host back a region with 2 MiB pages? Tried for real, once. */
static void probe_huge(struct shm_ctx *sc)
{
	int fd = memfd_sized(SHM_HUGE, true);
	void *p;

	if (fd < 0) {
		snprintf(sc->pages_why, sizeof(sc->pages_why), "hugetlb memfd: %s",
			 strerror(-fd));
		return;
	}
	p = region_map(fd, SHM_HUGE, true);
	if (!p) {
		int nr = -1;
		FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");

		if (f) {
			if (fscanf(f, "%d", &nr) != 1)
				nr = -1;
			fclose(f);
		}
		snprintf(sc->pages_why, sizeof(sc->pages_why),
			 "no free 2 MiB hugepage (vm.nr_hugepages=%d)", nr);
	} else {
		munmap(p, SHM_HUGE);
		sc->huge = true;
	}
	close(fd);
}

static int shm_init(struct wp_ctx *ctx)
{
	struct shm_ctx *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return -ENOMEM;
	WP_SYSCALL(WP_SYS_OTHER);
	sc->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sc->epfd < 0) {
		int err = -errno;

		free(sc);
		return err;
	}
	probe_huge(sc);
	ctx->bk = sc;
	return 0;
}

static void shm_fini(struct wp_ctx *ctx)
{
	struct shm_ctx *sc = sctx(ctx);

	if (!sc)
		return;
	close(sc->epfd);
	free(sc);
	ctx->bk = NULL;
}

/* epoll data: the endpoint, low bit set for its doorbell. */
static int ep_watch(struct wp_ep *ep, int fd, uint32_t events, uintptr_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uintptr_t)ep | tag };

	WP_SYSCALL(WP_SYS_EPOLL_CTL);
	return epoll_ctl(sctx(ep->ctx)->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static struct shm_ep *bk_alloc(struct wp_ep *ep, int side)
{
	struct shm_ep *se = calloc(1, sizeof(*se));

	if (!se)
		return NULL;
	se->sock = se->efd_me = se->efd_peer = -1;
	se->side = side;
	ep->bk = se;
	return se;
}

static int shm_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
	struct shm_ep *se = bk_alloc(ep, 1);
	struct sockaddr_un got;
	socklen_t gl = sizeof(got);
	int fd, ret;

	if (!se)
		return -ENOMEM;
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
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
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

static int shm_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct wp_ctx *ctx = ep->ctx;
	struct shm_ctx *sc = sctx(ctx);
	struct shm_ep *se = bk_alloc(ep, 0);
	struct shm_wire_msg m;
	int memfd = -1, efd_peer, fds[3], ret;
	uint8_t *base = NULL;
	struct shm_hdr *hdr;

	if (!se)
		return -ENOMEM;
	ret = geom_compute(&se->g, ctx->o.shm_slots, (uint64_t)ctx->o.shm_arena_mb << 20,
			   (uint64_t)ctx->o.shm_heap_mb << 20, sc->huge ? SHM_HUGE : 4096);
	if (ret < 0)
		return ret;
	if (sc->huge) {
		memfd = memfd_sized(se->g.size, true);
		if (memfd >= 0) {
			base = region_map(memfd, se->g.size, false);
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
			geom_compute(&se->g, ctx->o.shm_slots, (uint64_t)ctx->o.shm_arena_mb << 20,
				     (uint64_t)ctx->o.shm_heap_mb << 20, 4096);
	}
	if (memfd < 0) {
		memfd = memfd_sized(se->g.size, false);
		if (memfd < 0)
			return memfd;
		base = region_map(memfd, se->g.size, false);
		if (!base) {
			ret = -errno;
			goto out_memfd;
		}
	}
	hdr = (struct shm_hdr *)base;
	hdr->magic = SHM_MAGIC;
	hdr->version = SHM_VERSION;
	hdr->size = se->g.size;
	ret = ep_attach(ep, base);
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
	m = (struct shm_wire_msg){ .magic = SHM_MAGIC, .version = SHM_VERSION,
				   .type = SHM_MSG_HELLO, .slots = se->g.slots,
				   .arena = se->g.arena, .heap = se->g.heap,
				   .align = se->g.align, .size = se->g.size, .pid = getpid() };
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
	struct shm_wire_msg m = { .magic = SHM_MAGIC, .version = SHM_VERSION, .type = SHM_MSG_MR,
				  .mr_id = mr->id, .mr_key = mr->key, .mr_len = mr->len };

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
	struct shm_wire_msg m, ack = { .magic = SHM_MAGIC, .version = SHM_VERSION,
				       .type = SHM_MSG_ACK };
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
	else if (geom_compute(&se->g, m.slots, m.arena, m.heap, m.align) < 0 || se->g.size != m.size)
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
	base = region_map(fds[0], se->g.size, false);
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
	ret = ep_attach(ep, base);
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
		if (!ep || !bk_alloc(ep, 1)) {
			wp_log(l->ctx, WP_LOG_ERR, "shm accept: out of memory, dropping connection");
			if (ep) {
				ep->state = WP_EPS_CLOSED;
				ep->owner_released = true;
				l->ctx->nr_closed++;
			}
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

/* ---- data path -------------------------------------------------------- */

/* Payload room in the arena ring: returns the offset in the arena or -1. */
static int64_t arena_alloc(struct shm_ep *se, uint64_t len)
{
	uint64_t n = align_up(len, 64), a = se->g.arena;
	uint64_t pos = se->arena_head % a, skip = pos + n > a ? a - pos : 0;

	if (n > a || se->arena_head + skip + n - se->arena_tail > a)
		return -1;
	se->arena_head += skip;
	pos = se->arena_head % a;
	se->arena_head += n;
	return (int64_t)pos;
}

static void bad_peer(struct wp_ep *ep, int reason, const char *what)
{
	WP_CNT_ADD(bad_frames[reason], 1);
	wp_log(ep->ctx, WP_LOG_WARN, "shm: bad data from peer (%s: %s): closing the connection",
	       wp_bad_reason_name(reason), what);
	wp_conn_fail(ep, -EPROTO);
}

/* Completions: the peer released descriptors up to its cons index. */
static void reclaim(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	uint64_t c = atomic_load_explicit(&se->hdr->dir[se->side].cons, memory_order_acquire);

	if (c == se->tx_done)
		return;
	if (c - se->tx_done > se->tx_prod - se->tx_done) {
		bad_peer(ep, WP_BAD_UNEXPECTED, "released descriptors never published");
		return;
	}
	while (se->tx_done != c) {
		struct shm_infl *r = &se->infl[se->tx_done++ & (se->g.slots - 1)];

		se->arena_tail = r->arena_end;
		if (r->done) {
			/* Deferred: a reclaim inside a send call must not call back. */
			wp_defer(ep->ctx, r->done, r->arg, 0);
			r->done = NULL;
			se->infl_cb--;
		}
	}
}

/* Publish one frame, or -EAGAIN when the ring or the arena is full. */
static int post(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		wp_done_fn done, void *arg)
{
	struct shm_ep *se = sep(ep);
	uint32_t mask = se->g.slots - 1;
	struct shm_desc *d;
	struct shm_infl *r;
	/* In place only with a completion: without one the caller may reuse
	 * the buffer at once, so it is copied like any other. */
	bool inplace = len && done && in_heap(se, data, len);
	uint64_t off = 0;

	if (se->tx_prod - se->tx_done >= se->g.slots) {
		reclaim(ep);
		if (se->tx_prod - se->tx_done >= se->g.slots)
			return -EAGAIN;
	}
	if (inplace) {
		off = (uint64_t)((const uint8_t *)data - se->base);
	} else if (len) {
		int64_t a = arena_alloc(se, len);

		if (a < 0) {
			reclaim(ep);
			a = arena_alloc(se, len);
			if (a < 0)
				return len > se->g.arena ? -EMSGSIZE : -EAGAIN;
		}
		off = se->g.arena_off[se->side] + (uint64_t)a;
		memcpy(se->base + off, data, len);
		WP_CNT_ADD(bytes_copied, len);
	}
	d = &se->tx_ring[se->tx_prod & mask];
	{
		struct wp_frame_hdr hh = *h;

		hh.len = (uint32_t)len;
		if (!hh.tenant)
			hh.tenant = ep->tenant;
		wp_frame_encode(&hh, d->hdr);
	}
	d->off = off;
	r = &se->infl[se->tx_prod & mask];
	r->arena_end = se->arena_head;
	r->done = inplace ? done : NULL;
	se->infl_cb += inplace;
	r->arg = arg;
	if (!inplace && done)
		wp_defer(ep->ctx, done, arg, 0); /* the caller's buffer is free now */
	/* Release: the descriptor and payload are visible before the index. */
	atomic_store_explicit(&se->hdr->dir[se->side].prod, ++se->tx_prod, memory_order_release);
	WP_CNT_ADD(msgs_tx, 1);
	WP_CNT_ADD(bytes_tx, WP_FRAME_HDR + len);
	if (!se->bell) {
		se->bell = true;
		wp_ctx_mark_dirty(ep); /* the doorbell check runs at the flush */
	}
	return 0;
}

static void pend_free_copy(void *arg, int status)
{
	free(arg);
}

static int pend_push(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		     wp_done_fn done, void *arg)
{
	struct shm_ep *se = sep(ep);
	struct shm_pend *p;

	if (se->pend_tail - se->pend_head == se->pend_cap) {
		uint32_t cap = se->pend_cap ? se->pend_cap * 2 : 64;
		struct shm_pend *np = malloc(cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		for (uint32_t i = se->pend_head; i != se->pend_tail; i++)
			np[i & (cap - 1)] = se->pend[i & (se->pend_cap - 1)];
		free(se->pend);
		se->pend = np;
		se->pend_cap = cap;
	}
	if (!done && len) {
		/* The caller reuses its buffer at once: keep a copy (counted). */
		void *copy = malloc(len);

		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, len);
		WP_CNT_ADD(bytes_copied, len);
		data = copy;
		done = pend_free_copy;
		arg = copy;
	}
	p = &se->pend[se->pend_tail++ & (se->pend_cap - 1)];
	*p = (struct shm_pend){ *h, data, len, done, arg };
	wp_ctx_mark_dirty(ep);
	return 0;
}

/* Sends that waited for room, in order. */
static void pend_flush(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);

	while (se->pend_head != se->pend_tail && ep->state == WP_EPS_OPEN) {
		struct shm_pend *p = &se->pend[se->pend_head & (se->pend_cap - 1)];
		bool was_copy = p->done == pend_free_copy;
		int ret = post(ep, &p->h, p->data, p->len, was_copy ? NULL : p->done, p->arg);

		if (ret == -EAGAIN)
			break;
		se->pend_head++;
		if (was_copy)
			free(p->arg);
		if (ret < 0 && p->done && !was_copy)
			wp_defer(ep->ctx, p->done, p->arg, ret);
	}
	atomic_store_explicit(&se->hdr->side[se->side].want_space,
			      se->pend_head != se->pend_tail, memory_order_relaxed);
}

static int shm_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		    wp_done_fn done, void *arg)
{
	struct shm_ep *se = sep(ep);
	int ret;

	if (ep->state == WP_EPS_OPEN && se->pend_head == se->pend_tail) {
		ret = post(ep, h, data, len, done, arg);
		if (ret != -EAGAIN)
			return ret;
	}
	return pend_push(ep, h, data, len, done, arg);
}

static const struct wp_fast_ops wp_shm_fast = { .kick = wp_ctx_mark_dirty, .send = shm_send };

static void ring_bell(struct shm_ep *se)
{
	static const uint64_t one = 1;

	WP_SYSCALL(WP_SYS_WRITE);
	if (write(se->efd_peer, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the peer wakes anyway. */
	}
}

/* Queued sends and doorbells, once per round per touched endpoint. */
static void flush_dirty(struct wp_ctx *ctx)
{
	while (ctx->dirty) {
		struct wp_ep *ep = ctx->dirty;
		struct shm_ep *se = sep(ep);

		ctx->dirty = ep->next_dirty;
		ep->dirty = false;
		if (ep->state != WP_EPS_OPEN)
			continue;
		if (se->pend_head != se->pend_tail)
			pend_flush(ep);
		if (!se->bell)
			continue;
		se->bell = false;
		/* Pairs with the sleeper's flag store + fence + ring re-check. */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&se->hdr->side[1 - se->side].sleeping,
					 memory_order_relaxed))
			ring_bell(se);
	}
}

/* Deliver what the peer published. Returns frames delivered. */
static int rx_poll(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	int rx = 1 - se->side, n = 0;
	uint32_t mask = se->g.slots - 1, max = ep->ctx->o.max_frame;
	uint64_t p = atomic_load_explicit(&se->hdr->dir[rx].prod, memory_order_acquire);
	const uint64_t a0 = se->g.arena_off[rx], h0 = se->g.heap_off[rx];

	if (p == se->rx_cons)
		return 0;
	if (p - se->rx_cons > se->g.slots) {
		bad_peer(ep, WP_BAD_UNEXPECTED, "ring index beyond the ring");
		return 0;
	}
	while (se->rx_cons != p) {
		struct shm_desc d = se->rx_ring[se->rx_cons & mask]; /* one read of shared data */
		struct wp_frame_hdr h;
		/* WP_BAD_MAGIC is 0: only the decoder's answer says which it was. */
		int reason = WP_BAD_TRUNCATED, stop;

		if (wp_frame_decode(d.hdr, WP_FRAME_HDR, max, &h, &reason) != WP_FRAME_HDR) {
			bad_peer(ep, reason, "descriptor header");
			return n;
		}
		if (h.len && !((d.off >= a0 && d.off <= a0 + se->g.arena &&
				h.len <= a0 + se->g.arena - d.off) ||
			       (d.off >= h0 && d.off <= h0 + se->g.heap &&
				h.len <= h0 + se->g.heap - d.off))) {
			bad_peer(ep, WP_BAD_TOO_BIG, "payload outside the peer's arena and heap");
			return n;
		}
		WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + h.len);
		stop = wp_conn_deliver(ep, &h, se->base + d.off);
		n++;
		/* Release after the callback returned: the payload is the peer's again. */
		atomic_store_explicit(&se->hdr->dir[rx].cons, ++se->rx_cons, memory_order_release);
		if (stop || ep->state != WP_EPS_OPEN)
			return n;
	}
	/* Pairs with the producer's want_space + sleeping: it may wait for room. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&se->hdr->side[rx].want_space, memory_order_relaxed) &&
	    atomic_load_explicit(&se->hdr->side[rx].sleeping, memory_order_relaxed))
		ring_bell(se);
	return n;
}

static int poll_all(struct wp_ctx *ctx)
{
	int n = 0;

	for (struct wp_ep *ep = sctx(ctx)->open, *next; ep; ep = next) {
		struct shm_ep *se = sep(ep);

		next = se->next_open;
		if (se->tx_done != se->tx_prod)
			reclaim(ep);
		if (ep->state == WP_EPS_OPEN)
			n += rx_poll(ep);
		if (ep->state == WP_EPS_OPEN && se->pend_head != se->pend_tail)
			wp_ctx_mark_dirty(ep); /* room may have appeared */
	}
	return n;
}

/* Anything to do without sleeping? Checked after the sleeping flags are set. */
static bool work_ready(struct wp_ctx *ctx)
{
	for (struct wp_ep *ep = sctx(ctx)->open; ep; ep = sep(ep)->next_open) {
		struct shm_ep *se = sep(ep);

		if (atomic_load_explicit(&se->hdr->dir[1 - se->side].prod, memory_order_acquire) !=
		    se->rx_cons)
			return true;
		if ((se->pend_head != se->pend_tail || se->infl_cb) &&
		    atomic_load_explicit(&se->hdr->dir[se->side].cons, memory_order_acquire) !=
			    se->tx_done)
			return true;
	}
	return ctx->ndefer != 0;
}

static void set_sleeping(struct wp_ctx *ctx, uint32_t v)
{
	for (struct wp_ep *ep = sctx(ctx)->open; ep; ep = sep(ep)->next_open) {
		struct shm_ep *se = sep(ep);

		/* Asleep, we need the peer's releases for queued sends and for
		 * in-place completions alike (nothing else would wake us). */
		if (v)
			atomic_store_explicit(&se->hdr->side[se->side].want_space,
					      se->pend_head != se->pend_tail || se->infl_cb,
					      memory_order_relaxed);
		atomic_store_explicit(&se->hdr->side[se->side].sleeping, v, memory_order_relaxed);
	}
}

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
static ssize_t sock_drain(struct wp_ep *ep)
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

static void sock_event(struct wp_ep *ep, uint32_t e)
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
		ssize_t n = sock_drain(ep);

		if (n == -EAGAIN || n == -EINTR)
			break;
		/* EOF or an error: the peer is gone. Deliver what it published
		 * before it went, then close. */
		rx_poll(ep);
		if (ep->state != WP_EPS_OPEN)
			break;
		if (n == -EPROTO)
			bad_peer(ep, WP_BAD_UNEXPECTED, "unexpected message on the setup socket");
		else
			wp_conn_fail(ep, n == 0 ? 0 : (int)n);
		break;
	}
	default:
		break;
	}
	(void)e;
}

static int handle_events(struct wp_ctx *ctx, int nev)
{
	struct shm_ctx *sc = sctx(ctx);

	for (int i = 0; i < nev; i++) {
		uintptr_t v = (uintptr_t)sc->ev[i].data.u64;
		struct wp_ep *ep = (struct wp_ep *)(v & ~(uintptr_t)1);

		if (v & 1) {
			uint64_t cnt;

			WP_SYSCALL(WP_SYS_READ);
			if (read(sep(ep)->efd_me, &cnt, sizeof(cnt)) < 0) {
				/* EAGAIN: another round already reset it. */
			}
		} else {
			sock_event(ep, sc->ev[i].events);
		}
	}
	return nev;
}

static int epoll_round(struct wp_ctx *ctx, int timeout_ms)
{
	struct shm_ctx *sc = sctx(ctx);
	int nev;

	WP_SYSCALL(WP_SYS_EPOLL_WAIT);
	nev = epoll_wait(sc->epfd, sc->ev, SHM_EVENTS, timeout_ms);
	sc->last_epoll_ns = wp_now_ns();
	if (nev < 0)
		return errno == EINTR ? 0 : -errno;
	return handle_events(ctx, nev);
}

static int shm_progress(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct shm_ctx *sc = sctx(ctx);
	int n, ret;
	uint64_t now;

	flush_dirty(ctx);
	n = poll_all(ctx);
	if (n == 0 && timeout_us != 0 && ctx->o.spin_us > 0 && sc->open && !ctx->ndefer) {
		/* Spin: a wake-up costs tens of microseconds here, a poll 100 ns. */
		uint64_t t0 = wp_now_ns(), budget = (uint64_t)ctx->o.spin_us * 1000;

		if (timeout_us > 0 && (uint64_t)timeout_us * 1000 < budget)
			budget = (uint64_t)timeout_us * 1000;
		do {
			__builtin_ia32_pause();
			n = poll_all(ctx);
			flush_dirty(ctx);
		} while (n == 0 && !ctx->ndefer && wp_now_ns() - t0 < budget);
	}
	now = wp_now_ns();
	if (n > 0 || ctx->ndefer || timeout_us == 0) {
		/* Busy: look at sockets (accepts, hang-ups) now and then only. */
		if (now - sc->last_epoll_ns >= SHM_EPOLL_EVERY_NS || !sc->open) {
			ret = epoll_round(ctx, 0);
			if (ret < 0)
				return ret;
			n += ret;
		}
	} else {
		int ms = timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000);

		set_sleeping(ctx, 1);
		/* Pairs with the producer's index store + fence + flag load. */
		atomic_thread_fence(memory_order_seq_cst);
		if (work_ready(ctx))
			ms = 0;
		ret = epoll_round(ctx, ms);
		set_sleeping(ctx, 0);
		if (ret < 0)
			return ret;
		n += ret;
		n += poll_all(ctx);
	}
	flush_dirty(ctx);
	return n;
}

static void shm_close(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	int status = ep->err ? ep->err : -ECONNRESET;

	if (!se)
		return;
	open_list_del(ep);
	/* Out of the epoll set explicitly: closing an fd drops it only once no
	 * other fd refers to its file description, and the peer holds our
	 * doorbell's (a ring after this would report a freed endpoint). */
	if (sctx(ep->ctx)) {
		for (int i = 0; i < 2; i++) {
			int fd = i ? se->efd_me : se->sock;

			if (fd < 0)
				continue;
			WP_SYSCALL(WP_SYS_EPOLL_CTL);
			epoll_ctl(sctx(ep->ctx)->epfd, EPOLL_CTL_DEL, fd, NULL);
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

		if (p->done == pend_free_copy)
			free(p->arg);
		else if (p->done)
			wp_defer(ep->ctx, p->done, p->arg, status);
	}
}

static void shm_ep_free(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);

	if (!se)
		return;
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
	free(se);
	ep->bk = NULL;
}

static void *shm_buf_alloc(struct wp_ep *ep, size_t len)
{
	struct shm_ep *se = sep(ep);

	if (!se->base || !len || len > ep->ctx->o.max_frame)
		return NULL;
	return heap_alloc(se, len);
}

static void shm_buf_free(struct wp_ep *ep, void *buf)
{
	if (heap_free(sep(ep), buf) < 0)
		wp_log(ep->ctx, WP_LOG_ERR,
		       "wp_ep_buf_free: %p is not a live buffer of this endpoint's heap", buf);
}

static int shm_local_uri(const struct wp_ep *ep, char *buf, size_t len)
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

static void shm_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct shm_ctx *sc = sctx(ctx);
	char spin[64];

	if (ctx->o.busy_poll)
		snprintf(spin, sizeof(spin), "busy-poll (never sleeps)");
	else if (ctx->o.spin_us > 0)
		snprintf(spin, sizeof(spin), "spin %lld us, then sleep on an eventfd doorbell",
			 (long long)ctx->o.spin_us);
	else
		snprintf(spin, sizeof(spin), "no spin: sleeps on an eventfd doorbell");
	snprintf(buf, len,
		 "memfd region per connection, %s; %u-slot SPSC descriptor rings per "
		 "direction; payloads in place (arena %u MiB for copied-in payloads, heap %u MiB "
		 "for wp_ep_buf_alloc, read in place by the peer); %s; peer death seen by "
		 "unix socket hang-up",
		 sc->huge ? "2 MiB hugepages" : "4 KiB pages", ctx->o.shm_slots,
		 ctx->o.shm_arena_mb, ctx->o.shm_heap_mb, spin);
	if (!sc->huge)
		snprintf(buf + strlen(buf), len - strlen(buf), " (no hugepages: %s)",
			 sc->pages_why);
}

/* A region became reachable: offer its memfd to every open connection. */
static void shm_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr)
{
	if (mr->memfd < 0)
		return;
	for (struct wp_ep *ep = sctx(ctx)->open; ep; ep = sep(ep)->next_open)
		mr_offer(ep, mr);
}

static struct shm_rmr *rmr_find(struct shm_ep *se, uint32_t id)
{
	for (uint32_t i = 0; i < se->nrmr; i++)
		if (se->rmr[i].id == id)
			return &se->rmr[i];
	return NULL;
}

/* A transfer through the peer's mapped region: one memcpy per descriptor. */
static int shm_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p,
			   struct wp_xfer_stats *st)
{
	struct shm_ep *se = sep(ep);
	struct shm_rmr *r;
	uint64_t total = 0;

	if (!(p->remote->flags & WP_RKEY_SHARED))
		return -EOPNOTSUPP;
	r = rmr_find(se, p->remote->id);
	if (!r) {
		/* The offer left before any frame naming the region, but it
		 * travels on the socket, which we look at less often: read it. */
		ssize_t n = sock_drain(ep);

		if (n != -EAGAIN && n != -EINTR)
			return -EOPNOTSUPP; /* the socket event handler judges it */
		r = rmr_find(se, p->remote->id);
	}
	if (!r || r->key != p->remote->key || p->remote->len > r->len)
		return -EOPNOTSUPP; /* frames: the peer answers EACCES */
	if (!r->map) {
		void *m;

		WP_SYSCALL(WP_SYS_OTHER);
		m = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
		if (m == MAP_FAILED)
			return -EOPNOTSUPP;
		r->map = m;
	}
	for (uint32_t i = 0; i < p->ndesc; i++) {
		const struct wp_xfer_desc *d = &p->desc[i];
		uint8_t *local = p->local->addr + d->local_off, *remote = r->map + d->remote_off;

		if (p->op == WP_XFER_WRITE)
			memcpy(remote, local, d->len);
		else
			memcpy(local, remote, d->len);
		total += d->len;
	}
	WP_CNT_ADD(bytes_copied, total);
	st->copied_local = total;
	return 0;
}

/* Registration is bookkeeping here; bulk transfers share regions explicitly. */
static int shm_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	mr->idx = -1;
	return 0;
}

static void shm_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
}

/* Payloads arrive in the peer's arena or heap (read-only here: ep_attach);
 * this side's heap is where wp_ep_buf_alloc buffers lie. */
static int shm_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		     uint32_t max)
{
	const struct shm_ep *se = ep ? sep(ep) : NULL;
	struct wp_mem_range r[3];
	int rx;

	if (!se || !se->base)
		return 0;
	rx = 1 - se->side;
	r[0] = (struct wp_mem_range){ se->base + se->g.arena_off[rx], se->g.arena,
				      WP_MEM_SHM_RX_ARENA, WP_MEM_READONLY };
	r[1] = (struct wp_mem_range){ se->base + se->g.heap_off[rx], se->g.heap,
				      WP_MEM_SHM_RX_HEAP, WP_MEM_READONLY };
	r[2] = (struct wp_mem_range){ se->base + se->g.heap_off[se->side], se->g.heap,
				      WP_MEM_SHM_TX_HEAP, 0 };
	for (uint32_t i = 0; i < 3 && i < max; i++)
		out[i] = r[i];
	return 3;
}

const struct wp_backend_ops wp_shm_ops = {
	.name = "shm",
	.caps = WP_CAP_BATCH | WP_CAP_BUSY_POLL,
	.fast = &wp_shm_fast,
	.available = shm_available,
	.init = shm_init,
	.fini = shm_fini,
	.listen = shm_listen,
	.connect = shm_connect,
	.close = shm_close,
	.progress = shm_progress,
	.explain = shm_explain,
	.mem_register = shm_mem_register,
	.mem_unregister = shm_mem_unregister,
	.ep_free = shm_ep_free,
	.buf_alloc = shm_buf_alloc,
	.buf_free = shm_buf_free,
	.local_uri = shm_local_uri,
	.mr_exported = shm_mr_exported,
	.xfer_direct = shm_xfer_direct,
	.pools = shm_pools,
};
