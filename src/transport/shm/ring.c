// SPDX-License-Identifier: MIT
/*
 * The shm data path: publishing a frame's descriptor (its payload copied into
 * this side's arena, or left in place in its heap), reclaiming what the peer
 * released, queueing sends that found no room, delivering what the peer
 * published, ringing doorbells, and the progress round that polls, spins,
 * then sleeps (the wake-up handshake is described in layout.h). Also the
 * direct transfer through a region the peer offered, and the backend's ops
 * table, wp_shm_ops.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm.h"

#define SHM_EPOLL_EVERY_NS 1000000ull /* look at sockets at least this often when busy */

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

/* The kernel features the path stands on, really used (shm_available). */
static void shm_probe(void)
{
	char why[160] = "";
	int ret = shm_available(why, sizeof(why));

	wp_probe_add("path.shm", ret,
		     ret ? "%s"
			 : "sealed memfd, eventfd doorbells, unix SEQPACKET with SCM_RIGHTS%s",
		     ret ? why : "");
}

static int shm_init(struct wp_ctx *ctx)
{
	int ret = wp_epoll_bk_init(ctx, sizeof(struct shm_ctx));

	if (ret == 0) {
		shm_probe_huge(sctx(ctx));
		sctx(ctx)->spin_hit_q16 = SHM_SPIN_ONE; /* spin until gaps say otherwise */
	}
	return ret;
}

/* ---- data path -------------------------------------------------------- */

/* Payload room in the arena ring: returns the offset in the arena or -1. */
static int64_t arena_alloc(struct shm_ep *se, uint64_t len)
{
	uint64_t n = shm_align_up(len, 64), a = se->g.arena;
	uint64_t pos = se->arena_head % a, skip = pos + n > a ? a - pos : 0;

	if (n > a || se->arena_head + skip + n - se->arena_tail > a)
		return -1;
	se->arena_head += skip;
	pos = se->arena_head % a;
	se->arena_head += n;
	return (int64_t)pos;
}

void shm_bad_peer(struct wp_ep *ep, int reason, const char *what)
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
		shm_bad_peer(ep, WP_BAD_UNEXPECTED, "released descriptors never published");
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
	bool inplace = len && done && shm_in_heap(se, data, len);
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
	/* The caller reuses its buffer at once: keep a copy (counted). */
	if (!done && len && wp_payload_copy(&data, len, &done, &arg) < 0)
		return -ENOMEM;
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
		bool was_copy = p->done == wp_copy_done;
		int ret = post(ep, &p->h, p->data, p->len, was_copy ? NULL : p->done, p->arg);

		if (ret == -EAGAIN)
			break;
		se->pend_head++;
		if (was_copy)
			free(p->arg);
		if (ret < 0 && p->done && !was_copy)
			wp_defer(ep->ctx, p->done, p->arg, ret);
	}
	atomic_store_explicit(&se->hdr->side[se->side].want_space, se->pend_head != se->pend_tail,
			      memory_order_relaxed);
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

static void ring_bell(struct shm_ep *se)
{
	static const uint64_t one = 1;

	WP_SYSCALL(WP_SYS_WRITE);
	if (write(se->efd_peer, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the peer wakes anyway. */
	}
}

/* The transmit burst: queued sends and the doorbell, once per round per
 * touched endpoint (the core's flush loop calls it for open endpoints). */
static void shm_flush(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);

	if (se->pend_head != se->pend_tail)
		pend_flush(ep);
	if (!se->bell)
		return;
	se->bell = false;
	/* Pairs with the sleeper's flag store + fence + ring re-check. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&se->hdr->side[1 - se->side].sleeping, memory_order_relaxed))
		ring_bell(se);
}

/* A message path: whole frames go to shm_send, no byte stream. */
static const struct wp_fast_ops wp_shm_fast = { .send = shm_send, .flush = shm_flush };

/* Deliver what the peer published. Returns frames delivered. */
int shm_rx_poll(struct wp_ep *ep)
{
	struct shm_ep *se = sep(ep);
	int rx = 1 - se->side, n = 0;
	uint32_t mask = se->g.slots - 1, max = ep->ctx->o.max_frame;
	uint64_t p = atomic_load_explicit(&se->hdr->dir[rx].prod, memory_order_acquire);
	const uint64_t a0 = se->g.arena_off[rx], h0 = se->g.heap_off[rx];

	if (p == se->rx_cons)
		return 0;
	if (p - se->rx_cons > se->g.slots) {
		shm_bad_peer(ep, WP_BAD_UNEXPECTED, "ring index beyond the ring");
		return 0;
	}
	while (se->rx_cons != p) {
		struct shm_desc d = se->rx_ring[se->rx_cons & mask]; /* one read of shared data */
		struct wp_frame_hdr h;
		/* WP_BAD_MAGIC is 0: only the decoder's answer says which it was. */
		int reason = WP_BAD_TRUNCATED, stop;

		if (wp_frame_decode(d.hdr, WP_FRAME_HDR, max, &h, &reason) != WP_FRAME_HDR) {
			shm_bad_peer(ep, reason, "descriptor header");
			return n;
		}
		if (h.len && !((d.off >= a0 && d.off <= a0 + se->g.arena &&
				h.len <= a0 + se->g.arena - d.off) ||
			       (d.off >= h0 && d.off <= h0 + se->g.heap &&
				h.len <= h0 + se->g.heap - d.off))) {
			shm_bad_peer(ep, WP_BAD_TOO_BIG,
				     "payload outside the peer's arena and heap");
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
			n += shm_rx_poll(ep);
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
			shm_sock_event(ep, sc->ev[i].events);
		}
	}
	return nev;
}

static int epoll_round(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct shm_ctx *sc = sctx(ctx);
	int nev = wp_epoll_wait(ctx, sc->ev, SHM_EVENTS, timeout_us);

	sc->last_epoll_ns = wp_now_ns();
	if (nev < 0)
		return nev;
	return handle_events(ctx, nev);
}

/*
 * Embedding (wp_ctx_arm): the first half of the sleep below, the wait left to
 * the caller's own epoll. The sleeping flags stay set until the next poll,
 * so from here on every publish by a peer and every release a queued send
 * waits for rings our doorbell, an eventfd in the epoll set that wp_ctx_fd
 * returns; sockets (accepts, set-up, hang-ups) are in that set too.
 */
static int shm_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	struct shm_ctx *sc = sctx(ctx);

	(void)timeout_us;
	set_sleeping(ctx, 1);
	/* Pairs with the producer's index store + fence + flag load
	 * (shm_flush; shm_rx_poll for want_space): either it sees our flag
	 * and rings, or we see its index here. */
	atomic_thread_fence(memory_order_seq_cst);
	if (work_ready(ctx)) {
		set_sleeping(ctx, 0);
		return -EAGAIN;
	}
	sc->armed = true;
	return 0;
}

/* Poll the rings, spin, then sleep on the doorbells and sockets. The core
 * flushes before and after; while spinning, this loop flushes between polls
 * itself, so answers leave at once. */
static int shm_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct shm_ctx *sc = sctx(ctx);
	bool woken = sc->armed;
	int n = 0, ret;
	uint64_t now, idle0 = 0, spin_ns = 0;

	if (woken) {
		/* Woken in an embedding loop (or never slept): stop asking
		 * for doorbells, then read them and the sockets now, whatever
		 * the busy-time rate below says. A doorbell left unread would
		 * keep the caller's epoll returning at once. */
		sc->armed = false;
		set_sleeping(ctx, 0);
		ret = epoll_round(ctx, 0);
		if (ret < 0)
			return ret;
		n = ret;
	}
	n += poll_all(ctx);
	if (n == 0 && timeout_us != 0 && ctx->o.spin_us > 0 && sc->open && !ctx->ndefer) {
		idle0 = wp_now_ns();
		spin_ns = (uint64_t)ctx->o.spin_us * 1000;
	}
	/* Off, it still spins one idle period in 16: the sleeps it learns from
	 * include this side's wake-up, which can hide that gaps got short. */
	if (idle0 && (shm_spin_wanted(sc->spin_hit_q16) || (++sc->spin_probe & 15) == 0)) {
		/* Spin: a wake-up costs tens of microseconds here, a poll 100 ns. */
		uint64_t budget = spin_ns;

		if (timeout_us > 0 && (uint64_t)timeout_us * 1000 < budget)
			budget = (uint64_t)timeout_us * 1000;
		do {
			__builtin_ia32_pause();
			n = poll_all(ctx);
			wp_ctx_flush(ctx);
		} while (n == 0 && !ctx->ndefer && wp_now_ns() - idle0 < budget);
		if (n > 0 || ctx->ndefer) {
			shm_spin_learn(&sc->spin_hit_q16, wp_now_ns() - idle0, spin_ns);
			idle0 = 0;
		}
	}
	now = wp_now_ns();
	if (n > 0 || ctx->ndefer || timeout_us == 0) {
		/* Busy: look at sockets (accepts, hang-ups) now and then only. */
		if (!woken && (now - sc->last_epoll_ns >= SHM_EPOLL_EVERY_NS || !sc->open)) {
			ret = epoll_round(ctx, 0);
			if (ret < 0)
				return ret;
			n += ret;
		}
	} else {
		int64_t us = timeout_us;

		if (us > 0 && idle0) {
			/* The spin took part of the timeout already. */
			int64_t spent = (int64_t)((now - idle0) / 1000);

			us = spent >= us ? 0 : us - spent;
		}
		set_sleeping(ctx, 1);
		/* Pairs with the producer's index store + fence + flag load. */
		atomic_thread_fence(memory_order_seq_cst);
		if (work_ready(ctx))
			us = 0;
		ret = epoll_round(ctx, us);
		set_sleeping(ctx, 0);
		if (ret < 0)
			return ret;
		n += ret;
		n += poll_all(ctx);
		/* The idle period's length, if it ended with work (a timeout
		 * that ran past the spin budget is a miss as well). */
		now = wp_now_ns();
		if (idle0 && (n > 0 || now - idle0 > spin_ns))
			shm_spin_learn(&sc->spin_hit_q16, now - idle0, spin_ns);
	}
	return n;
}

static void shm_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct shm_ctx *sc = sctx(ctx);
	char spin[128];

	if (ctx->o.busy_poll)
		snprintf(spin, sizeof(spin), "busy-poll (never sleeps)");
	else if (ctx->o.spin_us > 0)
		snprintf(spin, sizeof(spin),
			 "adaptive spin up to %lld us (while most idle gaps are shorter), "
			 "then sleep on an eventfd doorbell",
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

/* A transfer through the peer's mapped region: one memcpy per descriptor. */
static int shm_xfer_direct(struct wp_ep *ep, const struct wp_xfer_params *p,
			   struct wp_xfer_stats *st)
{
	struct shm_ep *se = sep(ep);
	struct shm_rmr *r;
	uint64_t total = 0;

	if (!(p->remote->flags & WP_RKEY_SHARED))
		return -EOPNOTSUPP;
	r = shm_rmr_find(se, p->remote->id);
	if (!r) {
		/* The offer left before any frame naming the region, but it
		 * travels on the socket, which we look at less often: read it. */
		ssize_t n = shm_sock_drain(ep);

		if (n != -EAGAIN && n != -EINTR)
			return -EOPNOTSUPP; /* the socket event handler judges it */
		r = shm_rmr_find(se, p->remote->id);
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

const struct wp_backend_ops wp_shm_ops = {
	.name = "shm",
	.caps = WP_CAP_BATCH | WP_CAP_BUSY_POLL,
	.fast = &wp_shm_fast,
	.available = shm_available,
	.probe = shm_probe,
	.addr_parse = shm_addr_parse,
	.init = shm_init,
	.fini = wp_epoll_bk_fini,
	.listen = shm_listen,
	.connect = shm_connect,
	.close = shm_close,
	.poll = shm_poll,
	.explain = shm_explain,
	.mem_register = shm_mem_register,
	.mem_unregister = shm_mem_unregister,
	.ep_size = sizeof(struct shm_ep),
	.ep_init = shm_ep_init,
	.ep_free = shm_ep_free,
	.buf_alloc = shm_buf_alloc,
	.buf_free = shm_buf_free,
	.local_uri = shm_local_uri,
	.mr_exported = shm_mr_exported,
	.xfer_direct = shm_xfer_direct,
	.pools = shm_pools,
	.rx_pause = shm_rx_pause,
	.fd = wp_epoll_fd, /* doorbells and sockets, level-triggered */
	.arm = shm_arm,
};
