// SPDX-License-Identifier: MIT
/*
 * The uring path: io_uring with
 * - one io_uring_enter per progress round that both submits everything
 *   queued (sends to every endpoint, re-armed receives) and waits: a fan-out
 *   of N calls costs one enter, not N writes;
 * - multishot receive into a provided buffer ring shared by all
 *   connections: one SQE per connection for its lifetime, frames parsed in
 *   place in the kernel-filled buffer, which goes straight back to the ring;
 * - registered (fixed) files for every connection;
 * - SEND_ZC for payloads at or above a threshold, with
 *   IORING_SEND_ZC_REPORT_USAGE: the buffer is released to its owner only
 *   at the notification CQE, and notifications flagged
 *   IORING_NOTIF_USAGE_ZC_COPIED are counted (loopback and veth always
 *   copy: the kernel says so, and so do we);
 * - optional SQPOLL (no enter at all while the kernel thread is awake) and
 *   DEFER_TASKRUN + SINGLE_ISSUER when the kernel has them.
 * Sends to one connection go as a chain of linked SQEs (runs of staged
 * frames as one SENDMSG, zero-copy payloads as SEND_ZC), MSG_WAITALL so a
 * short send only happens on error; one chain in flight per connection
 * keeps the byte stream in order.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "transport/uring_compat.h"
#include "transport/uring_zcrx.h"

#define URING_ENTRIES 1024
#define URING_FILES 4096
#define URING_CHAIN 8 /* linked send ops per connection per round */
#define ZC_JUDGE 16   /* zero-copy sends judged before giving up on a connection */

enum { TAG_RECV = 1, TAG_SEND = 2, TAG_ACCEPT = 3, TAG_CONNECT = 4, TAG_IGNORE = 5 };
#define TAG_MASK 7ull

struct uop { /* one send in flight */
	struct uop *next_free;
	struct uop *next_all; /* every uop ever allocated, freed at fini */
	struct wp_ep *ep;
	uint64_t from, upto; /* segments covered */
	size_t bytes;
	bool zc;
	struct msghdr msg;
	struct iovec iov[WP_IOV_MAX];
};

struct uring_ctx {
	struct io_uring ring;
	bool sqpoll, defer_taskrun, fixed_files, zc_ok;
	bool disabled; /* R_DISABLED until the driving thread's first round */
	bool fixed_bufs;
	uint64_t buf_used; /* bitmap of fixed buffer slots */
	char zc_why[160];
	/* provided receive buffers */
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	size_t br_bytes;
	uint32_t buf_size, nbufs;
	/* registered file slots */
	int32_t *slot_next;
	int32_t slot_free;
	struct uop *uop_free;
	struct uop *uop_all;
	/* Embedding (wp_ctx_fd): an eventfd registered with the ring, made at
	 * the first wp_ctx_fd or wp_ctx_arm, -1 until then; armed: wp_ctx_arm
	 * returned 0, the next poll drains it. */
	int efd;
	bool armed;
	/* Zero-copy receive (wp_ctx_opts.uring_zcrx): on, every connection
	 * receives with RECV_ZC into zcrx's area instead of the buffer ring. */
	struct wp_zcrx zcrx;
};

struct uring_ep {
	int fidx;       /* fixed file slot, -1 if none */
	uint32_t sends; /* send ops in flight */
	bool listener;
	bool zc_off; /* the kernel copied every zero-copy send: stop asking */
	bool armed;  /* a multishot recv (accept, on a listener) is in the kernel */
	uint16_t zc_seen, zc_copied;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

static struct uring_ctx *uctx(struct wp_ctx *ctx)
{
	return ctx->bk;
}

static struct uring_ep *uep(struct wp_ep *ep)
{
	return ep->bk;
}

static int uring_available(char *why, size_t len)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(8, &ring, 0);

	if (ret < 0) {
		snprintf(why, len, "io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	io_uring_queue_exit(&ring);
	return 0;
}

/* ---- SQE helpers --------------------------------------------------- */

static struct io_uring_sqe *get_sqe(struct wp_ctx *ctx)
{
	struct uring_ctx *u = uctx(ctx);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe && !u->disabled) {
		/* SQ full: push what we have to the kernel and retry. */
		WP_SYSCALL(WP_SYS_URING_ENTER);
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void sqe_file(struct io_uring_sqe *sqe, struct wp_ep *ep)
{
	if (uep(ep)->fidx >= 0) {
		sqe->fd = uep(ep)->fidx;
		sqe->flags |= IOSQE_FIXED_FILE;
	} else {
		sqe->fd = ep->fd;
	}
}

static void *ud(void *p, unsigned tag)
{
	return (void *)((uintptr_t)p | tag);
}

/* ---- registered files ---------------------------------------------- */

static void slot_install(struct wp_ep *ep)
{
	struct uring_ctx *u = uctx(ep->ctx);
	int32_t s = u->slot_free;

	uep(ep)->fidx = -1;
	if (!u->fixed_files || s < 0)
		return;
	WP_SYSCALL(WP_SYS_OTHER);
	if (io_uring_register_files_update(&u->ring, (unsigned)s, &ep->fd, 1) != 1)
		return;
	u->slot_free = u->slot_next[s];
	uep(ep)->fidx = s;
}

static void slot_remove(struct wp_ep *ep)
{
	struct uring_ctx *u = uctx(ep->ctx);
	int32_t s = uep(ep)->fidx;
	int minus1 = -1;

	if (s < 0)
		return;
	WP_SYSCALL(WP_SYS_OTHER);
	io_uring_register_files_update(&u->ring, (unsigned)s, &minus1, 1);
	u->slot_next[s] = u->slot_free;
	u->slot_free = s;
	uep(ep)->fidx = -1;
}

/* ---- setup ------------------------------------------------------------ */

static int setup_ring(struct wp_ctx *ctx, struct uring_ctx *u)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	if (ctx->o.sqpoll && ctx->o.uring_zcrx[0]) {
		wp_log(ctx, WP_LOG_WARN,
		       "io_uring SQPOLL not used: zero-copy receive (uring_zcrx) needs "
		       "DEFER_TASKRUN");
	} else if (ctx->o.sqpoll) {
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = 2000; /* ms the kernel thread spins before sleeping */
		ret = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &p);
		if (ret == 0) {
			u->sqpoll = true;
			return 0;
		}
		wp_log(ctx, WP_LOG_WARN, "io_uring SQPOLL refused (%s): running without it",
		       strerror(-ret));
		memset(&p, 0, sizeof(p));
	}
	/* Task work runs only when we enter to wait: fewer interruptions of
	 * the single thread that owns the ring (kernel 6.1+). The ring starts
	 * disabled and is enabled by the first progress call, so the issuer is
	 * the thread that drives the context, not necessarily the one that
	 * created the endpoint (SINGLE_ISSUER binds the ring to one task). */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	if (ctx->o.uring_zcrx[0])
		p.flags |= IORING_SETUP_CQE32; /* a RECV_ZC CQE carries the area offset */
	ret = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &p);
	if (ret == 0) {
		u->defer_taskrun = true;
		u->disabled = true;
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(URING_ENTRIES, &u->ring, &p);
	}
	return ret;
}

static int setup_buf_ring(struct wp_ctx *ctx, struct uring_ctx *u)
{
	struct io_uring_buf_reg reg;
	uint32_t n = 1;
	int ret;

	while (n < ctx->o.rx_buf_count)
		n <<= 1; /* the ring size must be a power of two */
	u->nbufs = n;
	u->buf_size = ctx->o.rx_buf_size;
	u->br_bytes = n * sizeof(struct io_uring_buf);
	u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		return -ENOMEM;
	}
	u->bufs = malloc((size_t)n * u->buf_size);
	if (!u->bufs)
		return -ENOMEM;
	io_uring_buf_ring_init(u->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = n;
	reg.bgid = 0;
	WP_SYSCALL(WP_SYS_OTHER);
	ret = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < n; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * u->buf_size, u->buf_size,
				      (unsigned short)i, io_uring_buf_ring_mask(n), (int)i);
	io_uring_buf_ring_advance(u->br, (int)n);
	return 0;
}

/*
 * Zero-copy receive (wp_ctx_opts.uring_zcrx): register the queue on the
 * ring (still disabled: registration is allowed, and the issuer is not
 * bound yet). Refused: under select=require the path fails to start with
 * the kernel's errno; otherwise a WARN, and the buffer ring receives.
 */
static int setup_zcrx(struct wp_ctx *ctx, struct uring_ctx *u)
{
	int ret;

	if (!u->defer_taskrun) {
		snprintf(u->zcrx.why, sizeof(u->zcrx.why),
			 "the ring has no DEFER_TASKRUN and 32-byte CQEs, which zcrx requires");
		ret = -EOPNOTSUPP;
	} else {
		WP_SYSCALL(WP_SYS_OTHER);
		ret = wp_zcrx_setup(&u->zcrx, &u->ring, ctx->o.uring_zcrx,
				    (size_t)u->nbufs * u->buf_size);
	}
	if (ret == 0) {
		wp_log(ctx, WP_LOG_INFO, "io_uring zero-copy receive: %s", u->zcrx.why);
		return 0;
	}
	if (ctx->o.select == WP_SELECT_REQUIRE) {
		wp_log(ctx, WP_LOG_ERR, "io_uring zero-copy receive refused (select=require): %s",
		       u->zcrx.why);
		return ret;
	}
	wp_log(ctx, WP_LOG_WARN, "io_uring zero-copy receive refused, receiving as usual: %s",
	       u->zcrx.why);
	return 0;
}

/* Does SEND_ZC with usage reporting work on this kernel? Asked once per
 * context on a loopback pair; the answer (and the copy outcome) feeds the
 * explain string. */
static void probe_zc(struct wp_ctx *ctx, struct uring_ctx *u)
{
	const struct wp_probe_result *r = wp_probe_get("uring.send_zc");

	u->zc_ok = r && r->ok;
	snprintf(u->zc_why, sizeof(u->zc_why), "%s", r ? r->detail : "not probed");
}

static int uring_init(struct wp_ctx *ctx)
{
	struct uring_ctx *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	u->efd = -1;
	ret = setup_ring(ctx, u);
	if (ret < 0) {
		free(u);
		return ret;
	}
	ctx->bk = u;
	ret = setup_buf_ring(ctx, u);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "io_uring provided buffer ring: %s", strerror(-ret));
		goto out_fini;
	}
	u->slot_next = malloc(URING_FILES * sizeof(*u->slot_next));
	if (!u->slot_next) {
		ret = -ENOMEM;
		goto out_fini;
	}
	for (int i = 0; i < URING_FILES; i++)
		u->slot_next[i] = i + 1 < URING_FILES ? i + 1 : -1;
	u->slot_free = 0;
	WP_SYSCALL(WP_SYS_OTHER);
	u->fixed_files = io_uring_register_files_sparse(&u->ring, URING_FILES) == 0;
	if (!u->fixed_files)
		wp_log(ctx, WP_LOG_WARN, "io_uring registered files unavailable: plain fds");
	if (ctx->o.uring_zcrx[0]) {
		ret = setup_zcrx(ctx, u);
		if (ret < 0)
			goto out_fini;
	}
	/* A sparse table of fixed buffers, filled by wp_mr_register. */
	WP_SYSCALL(WP_SYS_OTHER);
	u->fixed_bufs = io_uring_register_buffers_sparse(&u->ring, 64) == 0;
	probe_zc(ctx, u);
	if (!u->zc_ok)
		wp_log(ctx, WP_LOG_WARN, "io_uring SEND_ZC unavailable (%s): copying sends only",
		       u->zc_why);
	return 0;

out_fini:
	ctx->ops->fini(ctx);
	return ret;
}

static void handle_cqe(struct wp_ctx *ctx, struct io_uring_cqe *cqe);

static void uring_fini(struct wp_ctx *ctx)
{
	struct uring_ctx *u = uctx(ctx);
	bool inflight;

	if (!u)
		return;
	if (u->disabled) {
		/* Never enabled: nothing reached the kernel. */
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
			ep->io_inflight = 0;
	}
	/* Reap: every op that references an endpoint must complete before the
	 * endpoints are freed. Cancel all, then wait for the CQEs (bounded). */
	for (int round = 0; round < 100; round++) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };

		inflight = false;
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
			inflight |= ep->io_inflight > 0;
		if (!inflight)
			break;
		if (round == 0) {
			struct io_uring_sqe *sqe = get_sqe(ctx);

			if (sqe) {
				io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
				io_uring_sqe_set_data(sqe, (void *)(uintptr_t)TAG_IGNORE);
			}
		}
		WP_SYSCALL(WP_SYS_URING_ENTER);
		if (io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL) < 0 &&
		    !io_uring_cq_ready(&u->ring)) {
			if (round > 3)
				break; /* not the issuer thread, or the ring is gone */
			continue;
		}
		unsigned head, n = 0;

		io_uring_for_each_cqe(&u->ring, head, cqe) {
			handle_cqe(ctx, cqe);
			n++;
		}
		io_uring_cq_advance(&u->ring, n);
	}
	io_uring_queue_exit(&u->ring);
	wp_zcrx_free(&u->zcrx); /* the kernel let go of the area with the ring */
	if (u->efd >= 0)
		close(u->efd);
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u->bufs);
	free(u->slot_next);
	/* Including uops whose notification never came. */
	while (u->uop_all) {
		struct uop *o = u->uop_all;

		u->uop_all = o->next_all;
		free(o);
	}
	free(u);
	ctx->bk = NULL;
}

/* ---- endpoints -------------------------------------------------------- */

static void uring_ep_init(struct wp_ep *ep)
{
	uep(ep)->fidx = -1; /* no registered file slot yet */
}

static void arm_recv(struct wp_ep *ep)
{
	struct io_uring_sqe *sqe = get_sqe(ep->ctx);

	if (!sqe) {
		wp_conn_fail(ep, -EBUSY);
		return;
	}
	if (uctx(ep->ctx)->zcrx.on) {
		wp_zcrx_prep_recv(&uctx(ep->ctx)->zcrx, sqe, 0);
		sqe_file(sqe, ep);
	} else {
		io_uring_prep_recv_multishot(sqe, 0, NULL, 0, 0);
		sqe_file(sqe, ep);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 0;
	}
	io_uring_sqe_set_data(sqe, ud(ep, TAG_RECV));
	ep->io_inflight++;
	uep(ep)->armed = true;
}

static void arm_accept(struct wp_ep *ep)
{
	struct io_uring_sqe *sqe = get_sqe(ep->ctx);

	if (!sqe)
		return;
	io_uring_prep_multishot_accept(sqe, ep->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, ud(ep, TAG_ACCEPT));
	ep->io_inflight++;
	uep(ep)->armed = true;
}

/*
 * Stop or resume input (limits.c): a paused endpoint's multishot recv (or,
 * on a listener, accept) is cancelled by its user_data and not re-armed;
 * completions already posted still arrive and the core keeps their bytes.
 * Resuming re-arms it, unless the cancelled one has not completed yet: its
 * final CQE re-arms then.
 */
static void uring_rx_pause(struct wp_ep *ep, bool pause)
{
	struct io_uring_sqe *sqe;

	if (ep->fd < 0)
		return;
	if (pause) {
		if (!uep(ep)->armed || !(sqe = get_sqe(ep->ctx)))
			return;
		io_uring_prep_cancel(sqe, ud(ep, uep(ep)->listener ? TAG_ACCEPT : TAG_RECV), 0);
		io_uring_sqe_set_data(sqe, (void *)(uintptr_t)TAG_IGNORE);
		return;
	}
	if (uep(ep)->armed)
		return;
	if (uep(ep)->listener)
		arm_accept(ep);
	else
		arm_recv(ep);
}

static void set_nodelay(int fd)
{
	int one = 1;

	WP_SYSCALL(WP_SYS_SOCKET);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int uring_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	/* Blocking socket: io_uring polls it for us. */
	int ret = wp_sock_listen(ep, sa, salen, false);

	if (ret < 0)
		return ret;
	uep(ep)->listener = true;
	arm_accept(ep);
	return 0;
}

static int uring_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	struct io_uring_sqe *sqe;
	int fd;

	fd = wp_sock_stream(sa->sa_family, false);
	if (fd < 0)
		return fd;
	memcpy(&uep(ep)->peer, sa, salen);
	uep(ep)->peer_len = salen;
	sqe = get_sqe(ep->ctx);
	if (!sqe) {
		close(fd);
		return -EBUSY;
	}
	ep->fd = fd;
	ep->state = WP_EPS_CONNECTING;
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&uep(ep)->peer, uep(ep)->peer_len);
	io_uring_sqe_set_data(sqe, ud(ep, TAG_CONNECT));
	ep->io_inflight++;
	return 0;
}

static void uring_close(struct wp_ep *ep)
{
	struct io_uring_sqe *sqe;

	if (ep->fd < 0)
		return;
	if (ep->io_inflight && uep(ep)->listener) {
		/* A listener: cancel its multishot accept by user_data. */
		sqe = get_sqe(ep->ctx);
		if (sqe) {
			io_uring_prep_cancel(sqe, ud(ep, TAG_ACCEPT), 0);
			io_uring_sqe_set_data(sqe, (void *)(uintptr_t)TAG_IGNORE);
		}
	}
	/* Shutting the socket down ends the multishot receive (EOF) and fails
	 * sends in flight; their CQEs drain io_inflight, and only then is the
	 * endpoint freed. (Cancelling by fixed file would race with the slot
	 * being cleared below before the cancel is submitted.) */
	WP_SYSCALL(WP_SYS_SOCKET);
	shutdown(ep->fd, SHUT_RDWR);
	slot_remove(ep);
	WP_SYSCALL(WP_SYS_CLOSE);
	close(ep->fd);
	ep->fd = -1;
}

/* ---- send ------------------------------------------------------------ */

static struct uop *uop_get(struct uring_ctx *u)
{
	struct uop *o = u->uop_free;

	if (o) {
		u->uop_free = o->next_free;
		return o;
	}
	o = malloc(sizeof(*o));
	if (o) {
		o->next_all = u->uop_all;
		u->uop_all = o;
	}
	return o;
}

static void uop_put(struct uring_ctx *u, struct uop *o)
{
	o->next_free = u->uop_free;
	u->uop_free = o;
}

/* Queue this connection's pending bytes as one chain of linked sends. */
static void uring_flush(struct wp_ep *ep)
{
	struct wp_ctx *ctx = ep->ctx;
	struct uring_ctx *u = uctx(ctx);
	struct wp_txq *q = &ep->tx;
	struct io_uring_sqe *prev = NULL;
	uint64_t idx = q->sent;
	int ops = 0;

	if (uep(ep)->sends || ep->state != WP_EPS_OPEN)
		return; /* the chain in flight resumes us on completion */
	while (idx != q->tail && ops < URING_CHAIN) {
		struct io_uring_sqe *sqe;
		struct uop *o = uop_get(u);
		bool zc;
		int n;

		if (!o)
			break;
		o->ep = ep;
		o->from = idx;
		n = wp_txq_iov(q, &idx, 0, o->iov, WP_IOV_MAX, &o->bytes,
			       u->zc_ok && !uep(ep)->zc_off, &zc);
		o->upto = idx;
		o->zc = zc;
		sqe = get_sqe(ctx);
		if (!sqe) {
			idx = o->from; /* not submitted: the next chain takes it */
			uop_put(u, o);
			break;
		}
		if (zc) {
			struct wp_mr *mr = ctx->mrs ? wp_mr_find(ctx, o->iov[0].iov_base,
								 o->iov[0].iov_len)
						    : NULL;

			if (mr && mr->idx >= 0) /* pages pinned once, at registration */
				io_uring_prep_send_zc_fixed(sqe, 0, o->iov[0].iov_base,
							    o->iov[0].iov_len,
							    MSG_WAITALL | MSG_NOSIGNAL,
							    IORING_SEND_ZC_REPORT_USAGE,
							    (unsigned)mr->idx);
			else
				io_uring_prep_send_zc(sqe, 0, o->iov[0].iov_base, o->iov[0].iov_len,
						      MSG_WAITALL | MSG_NOSIGNAL,
						      IORING_SEND_ZC_REPORT_USAGE);
			WP_CNT_ADD(zc_sent, 1);
		} else {
			memset(&o->msg, 0, sizeof(o->msg));
			o->msg.msg_iov = o->iov;
			o->msg.msg_iovlen = (size_t)n;
			io_uring_prep_sendmsg(sqe, 0, &o->msg, MSG_WAITALL | MSG_NOSIGNAL);
		}
		sqe_file(sqe, ep);
		io_uring_sqe_set_data(sqe, ud(o, TAG_SEND));
		if (prev)
			prev->flags |= IOSQE_IO_LINK; /* keep the byte stream in order */
		prev = sqe;
		uep(ep)->sends++;
		ep->io_inflight++;
		if (zc)
			ep->io_inflight++; /* the notification CQE */
		ops++;
	}
	q->handed = idx; /* wp_txq_drop must not give these back before the CQEs */
}

static void send_done(struct wp_ctx *ctx, struct uop *o, struct io_uring_cqe *cqe)
{
	struct uring_ctx *u = uctx(ctx);
	struct wp_ep *ep = o->ep;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		/* The kernel no longer touches the pages: the owner may reuse them. */
		if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) {
			WP_CNT_ADD(zc_copied, 1);
			uep(ep)->zc_copied++;
		}
		/* Zero-copy that the kernel copies anyway (loopback, veth, a NIC
		 * without scatter-gather) costs more than a plain send: pinning,
		 * a notification CQE and a wake-up. After ZC_JUDGE sends that were
		 * all copied, this connection sends by copy; the meter and the
		 * log say so. */
		if (++uep(ep)->zc_seen == ZC_JUDGE && uep(ep)->zc_copied == ZC_JUDGE &&
		    !ctx->o.zc_always && !uep(ep)->zc_off) {
			uep(ep)->zc_off = true;
			WP_CNT_ADD(zc_disabled, 1);
			wp_log(ctx, WP_LOG_INFO,
			       "fd %d: the kernel copied all %d zero-copy sends (loopback or veth): "
			       "sending by copy on this connection from now on",
			       ep->fd, ZC_JUDGE);
		}
		ep->io_inflight--;
		wp_txq_release_range(ep, o->from, o->upto);
		uop_put(u, o);
		return;
	}
	uep(ep)->sends--;
	ep->io_inflight--;
	if (cqe->res < 0 || (size_t)cqe->res != o->bytes) {
		if (ep->state == WP_EPS_OPEN)
			/* MSG_WAITALL: a short send means the connection broke. */
			wp_conn_fail(ep, cqe->res < 0 ? cqe->res : -ECONNRESET);
	} else if (ep->state == WP_EPS_OPEN) {
		wp_txq_advance(ep, o->bytes, !o->zc);
	}
	/* Chain finished: whatever was queued meanwhile goes in the next one. */
	if (ep->state == WP_EPS_OPEN && !uep(ep)->sends && wp_txq_pending(&ep->tx))
		wp_ctx_mark_dirty(ep);
	if (o->zc && (cqe->flags & IORING_CQE_F_MORE))
		return; /* uop lives on until the notification */
	/* Linux 6.18 (seen in tests/integ/test_peerdeath.c): a SEND_ZC cancelled
	 * because an earlier op of its link failed completes with -ECANCELED
	 * and without F_MORE, yet its notification still follows. Wait for it
	 * rather than free the uop under the kernel's feet; if it never comes,
	 * the uop is freed at fini. */
	if (o->zc && cqe->res == -ECANCELED)
		return;
	if (o->zc) {
		ep->io_inflight--; /* no notification will come */
		wp_txq_release_range(ep, o->from, o->upto);
	}
	uop_put(u, o);
}

/* ---- completions ---------------------------------------------------- */

static void recv_done(struct wp_ctx *ctx, struct wp_ep *ep, struct io_uring_cqe *cqe)
{
	struct uring_ctx *u = uctx(ctx);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (!more) {
		ep->io_inflight--;
		uep(ep)->armed = false;
	}
	if (cqe->res > 0 && u->zcrx.on) {
		const uint8_t *buf = wp_zcrx_data(&u->zcrx, cqe);

		if (!buf) { /* outside the area: never from a sane kernel */
			if (ep->state == WP_EPS_OPEN)
				wp_conn_fail(ep, -EPROTO);
			return;
		}
		if (ep->state == WP_EPS_OPEN)
			wp_conn_input(ep, buf, (size_t)cqe->res);
		/* Parsed in place (what a frame needs later, the core copied);
		 * the chunk goes back to the kernel's page pool. */
		wp_zcrx_refill(&u->zcrx, cqe);
	} else if (cqe->res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		uint8_t *buf = u->bufs + (size_t)bid * u->buf_size;

		if (ep->state == WP_EPS_OPEN)
			wp_conn_input(ep, buf, (size_t)cqe->res);
		/* Parsed in place; the buffer goes straight back to the kernel. */
		io_uring_buf_ring_add(u->br, buf, u->buf_size, (unsigned short)bid,
				      io_uring_buf_ring_mask(u->nbufs), 0);
		io_uring_buf_ring_advance(u->br, 1);
	} else if (ep->state == WP_EPS_OPEN) {
		if (cqe->res == 0) {
			wp_conn_eof(ep);
			return;
		}
		if (cqe->res == -ENOBUFS || (cqe->res == -ENOMEM && u->zcrx.on)) {
			/* Every provided buffer (or every chunk of the zcrx
			 * area) is in use: count it and re-arm. */
			WP_CNT_ADD(rx_ring_empty, 1);
			if (u->zcrx.on)
				u->zcrx.area_empty++;
		} else if (cqe->res != -ECANCELED) { /* ECANCELED: rx_pause */
			wp_conn_fail(ep, cqe->res);
			return;
		}
	}
	if (!more && ep->state == WP_EPS_OPEN && !ep->rx_paused)
		arm_recv(ep);
}

static void accept_done(struct wp_ctx *ctx, struct wp_ep *l, struct io_uring_cqe *cqe)
{
	struct sockaddr_storage peer;
	socklen_t plen = 0;
	struct wp_admit adm;
	struct wp_ep *ep;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		l->io_inflight--;
		uep(l)->armed = false;
	}
	if (cqe->res < 0) {
		/* EMFILE ends the multishot accept; re-arming at once would
		 * fail again at once, a spin: wp_accept_error pauses instead. */
		if (cqe->res != -ECANCELED && l->state == WP_EPS_LISTEN)
			wp_accept_error(l, cqe->res);
	} else if (l->state != WP_EPS_LISTEN) {
		close(cqe->res);
		return;
	} else {
		wp_accept_ok(l);
		if (ctx->o.conns_per_source) { /* multishot accept gives no address */
			plen = sizeof(peer);
			WP_SYSCALL(WP_SYS_SOCKET);
			if (getpeername(cqe->res, (struct sockaddr *)&peer, &plen) < 0)
				plen = 0;
		}
		if (wp_conn_admit(ctx, (struct sockaddr *)&peer, plen, &adm) < 0) {
			WP_SYSCALL(WP_SYS_CLOSE);
			close(cqe->res);
		} else if (!(ep = wp_ep_alloc(ctx, &l->cbs))) {
			wp_log_rl(ctx, WP_RL_ACCEPT, WP_LOG_ERR,
				  "accept: out of memory, dropping connection");
			close(cqe->res);
		} else {
			ep->fd = cqe->res;
			ep->accepted = true;
			wp_conn_admitted(ep, &adm);
			set_nodelay(ep->fd);
			slot_install(ep);
			arm_recv(ep);
			wp_conn_established(ep);
		}
	}
	if (!uep(l)->armed && l->state == WP_EPS_LISTEN && !l->rx_paused)
		arm_accept(l);
}

static void connect_done(struct wp_ctx *ctx, struct wp_ep *ep, struct io_uring_cqe *cqe)
{
	ep->io_inflight--;
	if (ep->state != WP_EPS_CONNECTING)
		return;
	if (cqe->res < 0) {
		wp_conn_fail(ep, cqe->res);
		return;
	}
	slot_install(ep);
	arm_recv(ep);
	wp_conn_established(ep);
}

static void handle_cqe(struct wp_ctx *ctx, struct io_uring_cqe *cqe)
{
	uintptr_t d = (uintptr_t)io_uring_cqe_get_data(cqe);
	unsigned tag = d & TAG_MASK;
	void *p = (void *)(d & ~TAG_MASK);

	switch (tag) {
	case TAG_RECV:
		recv_done(ctx, p, cqe);
		break;
	case TAG_SEND:
		send_done(ctx, p, cqe);
		break;
	case TAG_ACCEPT:
		accept_done(ctx, p, cqe);
		break;
	case TAG_CONNECT:
		connect_done(ctx, p, cqe);
		break;
	default:
		break;
	}
}

/* The ring starts disabled; the thread that first drives the context (a
 * progress or an arm) enables it and so becomes its single issuer. */
static int uring_enable(struct wp_ctx *ctx)
{
	struct uring_ctx *u = uctx(ctx);
	int ret;

	if (!u->disabled)
		return 0;
	WP_SYSCALL(WP_SYS_OTHER);
	ret = wp_uring_enable_rings(&u->ring);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "io_uring enable rings: %s", strerror(-ret));
		return ret;
	}
	u->disabled = false;
	return 0;
}

/* ---- embedding (wp_ctx_fd, wp_ctx_arm) -------------------------------- */

/*
 * The fd an embedding loop watches: an eventfd the kernel signals when it
 * posts completions and, on a DEFER_TASKRUN ring, when it queues task work
 * for us (io_req_local_work_add). The ring fd itself will not do there: it
 * polls readable only for CQEs already in the ring, and with DEFER_TASKRUN
 * none reach the ring until this thread enters the kernel to fetch them, so
 * a poller of the ring fd sleeps through them (seen on Linux 6.18: epoll on
 * the ring fd slept its full timeout with a receive's data waiting). Made on
 * first use so that contexts driven by wp_ctx_progress pay nothing for it.
 */
static int uring_fd(struct wp_ctx *ctx)
{
	struct uring_ctx *u = uctx(ctx);
	int efd, ret;

	if (u->efd >= 0)
		return u->efd;
	WP_SYSCALL(WP_SYS_OTHER);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -errno;
	WP_SYSCALL(WP_SYS_OTHER);
	ret = io_uring_register_eventfd(&u->ring, efd);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "io_uring register eventfd: %s", strerror(-ret));
		close(efd);
		return ret;
	}
	u->efd = efd;
	return efd;
}

/*
 * Before the caller sleeps on the eventfd: submit what the core's flush
 * queued (with GETEVENTS, which also runs task work already queued), and say
 * -EAGAIN while completions are in the CQ. On a DEFER_TASKRUN ring the kernel
 * signals the eventfd only when it queues task work on an empty list, so
 * work queued before now (since the eventfd was last read, or left over by
 * a run capped at 20 items, Linux 6.13+) would never wake us: poll the ring
 * fd without waiting, which reports the work list and the left-overs
 * (io_has_work), and say -EAGAIN if there is any; the next progress enters
 * to run it. Once it is empty, anything new signals the eventfd. Rings
 * without task-run deferral run task work on the way back from any syscall,
 * and later task work interrupts the sleeping thread (EINTR; then the
 * eventfd is signalled).
 */
static int uring_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	struct uring_ctx *u = uctx(ctx);
	int ret;

	(void)timeout_us;
	ret = uring_fd(ctx);
	if (ret < 0)
		return ret;
	ret = uring_enable(ctx);
	if (ret < 0)
		return ret;
	if (io_uring_cq_ready(&u->ring))
		return -EAGAIN;
	if (io_uring_sq_ready(&u->ring) || io_uring_cq_has_overflow(&u->ring)) {
		WP_SYSCALL(WP_SYS_URING_ENTER);
		ret = io_uring_submit_and_get_events(&u->ring);
		/* EBUSY, EAGAIN: the CQ is full (overflowing); reap first. */
		if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
			return ret;
		if (ret < 0)
			return -EAGAIN;
	}
	if (io_uring_cq_ready(&u->ring) || io_uring_cq_has_overflow(&u->ring))
		return -EAGAIN;
	/* Without SQPOLL every SQE went in above; one left means a refusal. */
	if (!u->sqpoll && io_uring_sq_ready(&u->ring))
		return -EAGAIN;
	if (u->defer_taskrun) {
		struct pollfd pfd = { .fd = u->ring.ring_fd, .events = POLLIN };

		WP_SYSCALL(WP_SYS_OTHER);
		ret = poll(&pfd, 1, 0);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret != 0)
			return -EAGAIN;
	}
	u->armed = true;
	return 0;
}

/* The transmit burst: one chain of linked SQEs per connection, submitted by
 * the round's single enter. */
static const struct wp_fast_ops wp_uring_fast = { .flush = uring_flush };

/*
 * One round: the core's flush has queued every dirty connection's sends as
 * SQEs; a single enter submits them and waits for at least one completion
 * (or the timeout), then the completions. The enter is skipped when completions are already
 * waiting and nothing needs submitting (or SQPOLL picks the SQEs up).
 * Syscalls are counted here exactly as liburing 2.3 issues them.
 */
static int uring_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct uring_ctx *u = uctx(ctx);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	bool sq_pending, need_enter;
	int ret;

	ret = uring_enable(ctx);
	if (ret < 0)
		return ret;
	if (u->armed) {
		uint64_t cnt;

		/* Woken in an embedding loop (or never slept): reset the
		 * eventfd, which would otherwise keep the caller's epoll
		 * returning at once. What it announced is reaped below; what
		 * arrives from now on signals it again (uring_arm). */
		u->armed = false;
		WP_SYSCALL(WP_SYS_READ);
		if (read(u->efd, &cnt, sizeof(cnt)) < 0) {
			/* EAGAIN: a spurious wake-up, nothing to reset. */
		}
	}
	sq_pending = io_uring_sq_ready(&u->ring) > 0;
	if (io_uring_cq_ready(&u->ring) || timeout_us == 0) {
		need_enter = false;
		if (sq_pending)
			need_enter = !u->sqpoll || (IO_URING_READ_ONCE(*u->ring.sq.kflags) &
						    IORING_SQ_NEED_WAKEUP);
		if (need_enter || (sq_pending && u->sqpoll)) {
			if (need_enter)
				WP_SYSCALL(WP_SYS_URING_ENTER);
			io_uring_submit(&u->ring);
		} else if (u->defer_taskrun && !io_uring_cq_ready(&u->ring)) {
			/* DEFER_TASKRUN posts completions only when we enter, so a
			 * busy-polling loop enters without waiting: it runs the
			 * pending receive work at once, where a ring without task-run
			 * deferral would wait for an inter-processor interrupt
			 * (measured: 30k vs 80k round trips/s on this VM). */
			WP_SYSCALL(WP_SYS_URING_ENTER);
			io_uring_get_events(&u->ring);
		}
	} else {
		struct __kernel_timespec ts, *tsp = NULL;

		if (timeout_us > 0) {
			ts.tv_sec = timeout_us / 1000000;
			ts.tv_nsec = (timeout_us % 1000000) * 1000;
			tsp = &ts;
		}
		WP_SYSCALL(WP_SYS_URING_ENTER);
		io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
	}

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		handle_cqe(ctx, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	/* Answers queued by callbacks become SQEs in the core's flush right
	 * after; the next round's enter submits them, together with its wait. */
	return (int)n;
}

static int uring_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct uring_ctx *u = uctx(ctx);
	struct iovec iov = { mr->addr, mr->len };
	int slot, ret;

	mr->idx = -1;
	if (!u->fixed_bufs || ~u->buf_used == 0)
		return 0; /* usable without fixed buffers; explain says so */
	slot = __builtin_ctzll(~u->buf_used);
	WP_SYSCALL(WP_SYS_OTHER);
	ret = io_uring_register_buffers_update_tag(&u->ring, (unsigned)slot, &iov, NULL, 1);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "registering %zu bytes with io_uring: %s%s", mr->len,
		       strerror(-ret),
		       ret == -ENOMEM ? " (pinned memory exceeds RLIMIT_MEMLOCK: register less, "
					"or run with CAP_IPC_LOCK)"
				      : "");
		return ret;
	}
	u->buf_used |= 1ull << slot;
	mr->idx = slot;
	return 0;
}

static void uring_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
	struct uring_ctx *u = uctx(ctx);
	struct iovec iov = { NULL, 0 };

	if (mr->idx < 0)
		return;
	/* Sends in flight hold their own reference to the buffer node. */
	WP_SYSCALL(WP_SYS_OTHER);
	io_uring_register_buffers_update_tag(&u->ring, (unsigned)mr->idx, &iov, NULL, 1);
	u->buf_used &= ~(1ull << mr->idx);
	mr->idx = -1;
}

static void uring_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct uring_ctx *u = uctx(ctx);
	char zc[320], zcrx[400] = "";

	if (u->zc_ok)
		snprintf(zc, sizeof(zc), "SEND_ZC at or above %u B (%s)", ctx->o.zc_threshold,
			 ctx->o.zc_threshold == UINT32_MAX ? "disabled by option"
			 : ctx->o.zc_always
				 ? "kept on even where the kernel copies (zc_always)"
				 : "copies reported by the kernel are counted as zc.copied; "
				   "a connection whose first 16 were all copied, as on "
				   "loopback and veth, sends by copy");
	else
		snprintf(zc, sizeof(zc), "SEND_ZC off (%s)", u->zc_why);
	if (u->zcrx.on)
		snprintf(zcrx, sizeof(zcrx),
			 "multishot RECV_ZC (zero-copy receive: %s; %" PRIu64 " CQEs, %" PRIu64
			 " bytes, %" PRIu64 " chunks given back, %" PRIu64
			 " refill-ring full, %" PRIu64 " area empty)",
			 u->zcrx.why, u->zcrx.cqes, u->zcrx.bytes, u->zcrx.refills, u->zcrx.rq_full,
			 u->zcrx.area_empty);
	else if (ctx->o.uring_zcrx[0])
		snprintf(zcrx, sizeof(zcrx),
			 "zero-copy receive refused (%s), so multishot recv into a %u x %u KiB "
			 "provided buffer ring",
			 u->zcrx.why, u->nbufs, u->buf_size >> 10);
	else
		snprintf(zcrx, sizeof(zcrx),
			 "multishot recv into a %u x %u KiB provided buffer ring", u->nbufs,
			 u->buf_size >> 10);
	snprintf(
		buf, len,
		"io_uring %u entries, %s%s; %s; %s; %s; sends batched (one enter per round, linked "
		"SENDMSG chains); %s%s",
		URING_ENTRIES, u->sqpoll ? "SQPOLL on" : "SQPOLL off",
		u->defer_taskrun ? ", DEFER_TASKRUN" : "", zcrx,
		u->fixed_files ? "registered files" : "plain fds (file registration failed)",
		u->fixed_bufs ? "registered regions become fixed buffers for SEND_ZC"
			      : "no fixed buffers (buffer table registration failed)",
		zc, ctx->o.busy_poll ? "; busy-poll on" : "");
}

/* Every connection receives into the one provided-buffer ring (or, with
 * zero-copy receive, zcrx's area). */
static int uring_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		       uint32_t max)
{
	const struct uring_ctx *u = ctx->bk;

	uint32_t n = 0;

	if (ep || !u || !u->bufs)
		return 0;
	if (n < max)
		out[n] = (struct wp_mem_range){ u->bufs, (size_t)u->nbufs * u->buf_size,
						WP_MEM_URING_RX, 0 };
	n++;
	if (u->zcrx.on) { /* RECV_ZC's area: payloads are lent from it too */
		if (n < max)
			out[n] = (struct wp_mem_range){ u->zcrx.area, u->zcrx.area_len,
							WP_MEM_URING_RX, 0 };
		n++;
	}
	return (int)n;
}

const struct wp_backend_ops wp_uring_ops = {
	.name = "uring",
	.caps = WP_CAP_STREAM | WP_CAP_INET | WP_CAP_BATCH | WP_CAP_ZC_SEND | WP_CAP_MSHOT_RX |
		WP_CAP_SQPOLL | WP_CAP_BUSY_POLL,
	.fast = &wp_uring_fast,
	.available = uring_available,
	.probe = wp_uring_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = uring_init,
	.fini = uring_fini,
	.listen = uring_listen,
	.connect = uring_connect,
	.close = uring_close,
	.poll = uring_poll,
	.explain = uring_explain,
	.mem_register = uring_mem_register,
	.mem_unregister = uring_mem_unregister,
	.ep_size = sizeof(struct uring_ep),
	.ep_init = uring_ep_init,
	.ep_free = wp_no_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = wp_no_mr_exported,
	.xfer_direct = wp_no_xfer_direct,
	.pools = uring_pools,
	.rx_pause = uring_rx_pause,
	.fd = uring_fd,
	.arm = uring_arm,
};
