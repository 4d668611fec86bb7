// SPDX-License-Identifier: MIT
/*
 * The xsk path's sessions: the session table, timers (retransmission,
 * pings, dead peers, the frame timeout), the progress round (poll, arm),
 * listen, connect, and the close that lingers until the FIN is acked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "xsk.h"

/* ---- sessions ----------------------------------------------------------- */

static uint32_t sid_hash(uint64_t sid)
{
	return (uint32_t)((sid * 0x9e3779b97f4a7c15ull) >> 56) % XSK_HASH;
}

struct xsk_ep *xsk_sess_find(struct xsk_ctx *xc, uint64_t sid)
{
	struct xsk_ep *s = xc->tab[sid_hash(sid)];

	while (s && s->sid != sid)
		s = s->hnext;
	return s;
}

void xsk_sess_add(struct xsk_ctx *xc, struct xsk_ep *s)
{
	uint32_t h = sid_hash(s->sid);

	s->hnext = xc->tab[h];
	xc->tab[h] = s;
	s->in_table = true;
}

/*
 * Half-open sessions: keyed ones a server accepted whose client has not
 * proved the tenant key yet (no sealed datagram opened). Anyone who saw one
 * SYN of the tenant's could only replay it (the tag binds its session id and
 * hello), but the tenant's own key opens as many as it likes: they are
 * bounded, XSK_HALF_OPEN_TENANT per tenant and XSK_HALF_OPEN_MAX per
 * context, the oldest ending (-ETIMEDOUT, hs_evicted) for a new one, and
 * each ends XSK_DEAD_NS after its SYN unless proved (hs_expired).
 */
void xsk_half_open_del(struct xsk_ctx *xc, struct xsk_ep *s)
{
	if (!s->half_open)
		return;
	if (s->ho_prev)
		s->ho_prev->ho_next = s->ho_next;
	else
		xc->ho_head = s->ho_next;
	if (s->ho_next)
		s->ho_next->ho_prev = s->ho_prev;
	else
		xc->ho_tail = s->ho_prev;
	s->ho_prev = s->ho_next = NULL;
	s->half_open = false;
	xc->n_half_open--;
}

void xsk_half_open_add(struct xsk_ctx *xc, struct xsk_ep *s)
{
	struct xsk_ep *victim = NULL;
	uint32_t same = 0;

	for (struct xsk_ep *o = xc->ho_head; o; o = o->ho_next)
		if (o->tenant == s->tenant && !same++)
			victim = o; /* the tenant's oldest */
	if (same < XSK_HALF_OPEN_TENANT)
		victim = xc->n_half_open >= XSK_HALF_OPEN_MAX ? xc->ho_head : NULL;
	if (victim) {
		xc->st.hs_evicted++;
		wp_log_rl(victim->ep->ctx, WP_RL_REFUSE, WP_LOG_WARN,
			  "xsk: %u sessions of tenant %u (%u in all) have not proved the tenant "
			  "key: ending the oldest (%llx) for a new one",
			  same, s->tenant, xc->n_half_open, (unsigned long long)victim->sid);
		xsk_sess_gone(victim->ep, -ETIMEDOUT); /* a lingering one ends too */
	}
	s->half_open = true;
	s->ho_next = NULL;
	s->ho_prev = xc->ho_tail;
	if (xc->ho_tail)
		xc->ho_tail->ho_next = s;
	else
		xc->ho_head = s;
	xc->ho_tail = s;
	xc->n_half_open++;
}

static void sess_del(struct xsk_ctx *xc, struct xsk_ep *s)
{
	struct xsk_ep **pp = &xc->tab[sid_hash(s->sid)];

	xsk_half_open_del(xc, s);
	if (!s->in_table)
		return;
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	s->in_table = false;
}

void xsk_timer_at(struct xsk_ctx *xc, uint64_t t)
{
	if (!xc->next_timer || t < xc->next_timer)
		xc->next_timer = t;
}

void xsk_sess_fail(struct wp_ep *ep, int err)
{
	struct xsk_ep *s = xep(ep);

	sess_del(xctx(ep->ctx), s);
	wp_conn_fail(ep, err);
}

/* A closed session's linger ends: everything acked (status 0), or the peer
 * gone; the hold on the endpoint goes, and the context frees it. */
void xsk_linger_end(struct wp_ep *ep, struct xsk_ep *s, int status)
{
	s->linger = false;
	sess_del(xctx(ep->ctx), s);
	xsk_q_drop(ep, status);
	if (ep->io_inflight)
		ep->io_inflight--;
}

/* The session is over: a lingering one ends, an open one fails. */
void xsk_sess_gone(struct wp_ep *ep, int err)
{
	struct xsk_ep *s = xep(ep);

	if (s->linger)
		xsk_linger_end(ep, s, err);
	else
		xsk_sess_fail(ep, err);
}

/* Retransmissions, pings, dead peers. */
static void timers(struct wp_ctx *ctx, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;

	if (!xc->next_timer || now < xc->next_timer)
		return;
	xc->next_timer = 0;
	for (struct wp_ep *ep = ctx->eps, *nx; ep; ep = nx) {
		struct xsk_ep *s = xep(ep);

		nx = ep->next_all;
		if (s->listener ||
		    (ep->state != WP_EPS_OPEN && ep->state != WP_EPS_CONNECTING && !s->linger) ||
		    !s->in_table)
			continue;
		if (ep->state == WP_EPS_CONNECTING) {
			if (now - s->syn_since > XSK_DEAD_NS) {
				if (!s->have_mac)
					wp_log(ctx, WP_LOG_ERR,
					       "xsk: no neighbour entry for %s on %s after %llu ms "
					       "(a peer on the link?)",
					       inet_ntoa((struct in_addr){ s->peer_ip }),
					       xc->ifname, XSK_DEAD_NS / 1000000);
				else
					wp_log(ctx, WP_LOG_ERR,
					       "xsk: no answer from %s:%u to the SYN in %llu ms (no "
					       "server on that port, or one with a policy whose XDP "
					       "program drops a session %s)",
					       inet_ntoa((struct in_addr){ s->peer_ip }),
					       s->peer_port, XSK_DEAD_NS / 1000000,
					       s->authn
						       ? "whose tenant key or source address it does "
							 "not accept"
						       : "without a tenant key: wp_ep_set_tenant_key");
				if (s->bad_proof)
					wp_log(ctx, WP_LOG_ERR,
					       "xsk: the only SYNACKs from %s:%u did not prove tenant "
					       "%u's key (a server with another key, or forged)",
					       inet_ntoa((struct in_addr){ s->peer_ip }),
					       s->peer_port, s->tenant);
				xsk_sess_fail(ep, s->bad_proof  ? -EACCES
						  : s->have_mac ? -ETIMEDOUT
								: -EHOSTUNREACH);
				continue;
			}
			if (s->rto_at && now >= s->rto_at) {
				if (s->have_mac || xsk_sess_mac(xc, s, now) == 0)
					xsk_syn_send(xc, ep, s);
				s->rto_us = s->rto_us * 2 > XSK_RTO_MAX_US ? XSK_RTO_MAX_US
									   : s->rto_us * 2;
				xsk_arm_rto(xc, s, now);
			}
			xsk_timer_at(xc, s->rto_at);
			continue;
		}
		if (now - s->last_rx > XSK_DEAD_NS) {
			if (s->half_open)
				xc->st.hs_expired++; /* never proved the key */
			xsk_sess_gone(ep, -ETIMEDOUT);
			continue;
		}
		if (s->asm_buf && ctx->o.frame_timeout_ms &&
		    (int64_t)(now - s->asm_since) > (int64_t)ctx->o.frame_timeout_ms * 1000000) {
			WP_CNT_ADD(timeouts_frame, 1);
			wp_log_rl(
				ctx, WP_RL_TIMEOUT, WP_LOG_WARN,
				"xsk: session %llx: a message of %u bytes not complete after %u ms "
				"(frame_timeout_ms): failing it",
				(unsigned long long)s->sid, s->asm_len, ctx->o.frame_timeout_ms);
			xsk_sess_fail(ep, -ETIMEDOUT);
			continue;
		}
		/* A peer that answers pings but acknowledges none of our data
		 * (its ring drops every full-size packet, a session it lost) is
		 * as dead as a silent one. */
		if (!s->q || !s->una_at || s->snd_una != s->watch_una) {
			s->watch_una = s->snd_una;
			s->una_at = now;
		} else if (now - s->una_at > XSK_DEAD_NS) {
			wp_log(ctx, WP_LOG_WARN,
			       "xsk: session %llx: no data acknowledged for %llu ms: failing it",
			       (unsigned long long)s->sid, XSK_DEAD_NS / 1000000);
			xsk_sess_gone(ep, -ETIMEDOUT);
			continue;
		}
		if (now - s->last_rx > XSK_PING_NS && now - s->last_ping > XSK_PING_NS) {
			xsk_ctl_send(xc, s, XSK_PING, 0);
			s->last_ping = now;
		}
		if (s->rto_at && now >= s->rto_at) {
			if (s->rto_us >= XSK_RTO_MAX_US)
				wp_log(ctx, WP_LOG_WARN,
				       "xsk: session %llx stalled: una %u nxt %u unsent %d rcv %u "
				       "free %u txpend %u",
				       (unsigned long long)s->sid, s->snd_una, s->snd_nxt,
				       s->unsent ? (int)s->unsent->seq : -1, s->rcv_nxt, xc->nfree,
				       xsk_tx_pending(&xc->q[0]));
			/* Go-back-N: everything unacked leaves again. */
			for (struct xsk_pkt *k = s->q; k && k != s->unsent; k = k->next)
				xc->st.retrans++;
			s->unsent = s->q;
			s->recover = s->snd_nxt;
			s->cwnd = XSK_WIN; /* a timeout: start small again */
			s->rto_us = s->rto_us * 2 > XSK_RTO_MAX_US ? XSK_RTO_MAX_US : s->rto_us * 2;
			s->rto_at = 0;
			wp_ctx_mark_dirty(ep);
		}
		if (s->rto_at)
			xsk_timer_at(xc, s->rto_at);
		xsk_timer_at(xc, s->last_rx + (now - s->last_rx > XSK_PING_NS ? XSK_DEAD_NS
									      : XSK_PING_NS));
		xsk_timer_at(xc, now + XSK_PING_NS);
	}
}

static int64_t timer_cap(struct xsk_ctx *xc, int64_t timeout_us, uint64_t now)
{
	int64_t t;

	if (!xc->next_timer)
		return timeout_us;
	t = xc->next_timer > now ? (int64_t)((xc->next_timer - now + 999) / 1000) : 0;
	return timeout_us < 0 || t < timeout_us ? t : timeout_us;
}

/*
 * One round: what the rings hold, timers, then a kick. The rings are this
 * process's memory, so epoll is only for sleeping: a round that must not
 * sleep reads them without a syscall (under busy_poll, a recvfrom per
 * socket drives the kernel's busy poll instead, where it took the options).
 * No spin before sleeping: measured on the 2-core VM under load, a spin of
 * up to 50 us (shm's adaptive policy) doubled the CPU per call at one call
 * in flight (docs/performance.md); busy_poll is there for who wants it.
 */
int xsk_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct xsk_ctx *xc = ctx->bk;
	uint64_t now = now_ns();
	int n, got = 0;

	if (!xc->up)
		return wp_epoll_wait(ctx, xc->ev, XSK_MAX_Q + 1, timeout_us);
	if (xc->unkicked)
		xsk_kick(xc);
	xsk_comp_reap(xc);
	xsk_fill_topup(xc);
	timeout_us = timer_cap(xc, timeout_us, now);
	/* Anything already in a ring: no sleep. */
	if (xsk_rx_ready(xc))
		timeout_us = 0;
	if (xc->tx_blocked || xsk_tx_pending(&xc->q[0]))
		timeout_us = timeout_us < 0 || timeout_us > 200 ? 200 : timeout_us;
	if (timeout_us != 0) {
		n = wp_epoll_wait(ctx, xc->ev, XSK_MAX_Q + 1, timeout_us);
		if (n < 0)
			return n;
	} else if (xc->busy) {
		for (uint32_t i = 0; i < xc->nq; i++)
			recvfrom(xc->q[i].fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		WP_CNT_ADD(syscalls[WP_SYS_READ], xc->nq);
	}
	now = now_ns();
	for (uint32_t i = 0; i < xc->nq; i++) {
		int k;

		while ((k = xsk_rx_ring(ctx, &xc->q[i], now)) > 0)
			got += k;
	}
	xsk_comp_reap(xc);
	xsk_fill_topup(xc);
	timers(ctx, now);
	if (xc->tx_blocked) {
		xc->tx_blocked = false;
		for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
			if (ep->state == WP_EPS_OPEN && (xep(ep)->unsent || xep(ep)->ack_due))
				wp_ctx_mark_dirty(ep);
	}
	/* Closed sessions still delivering their tail and FIN: the core
	 * flushes open endpoints only. */
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all)
		if (xep(ep)->linger && (xep(ep)->unsent || xep(ep)->ack_due || xep(ep)->nak_due))
			xsk_flush(ep);
	xsk_kick(xc);
	return got;
}

int xsk_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	struct xsk_ctx *xc = ctx->bk;
	uint64_t now = now_ns();

	if (xc->up) {
		if (xc->unkicked)
			xsk_kick(xc);
		if (xsk_rx_ready(xc))
			return -EAGAIN;
		if (xc->next_timer && now >= xc->next_timer)
			return -EAGAIN;
		*timeout_us = timer_cap(xc, *timeout_us, now);
		if ((xc->tx_blocked || xsk_tx_pending(&xc->q[0])) &&
		    (*timeout_us < 0 || *timeout_us > 200))
			*timeout_us = 200;
	}
	return 0;
}

/* ---- listen, connect, close --------------------------------------------- */

static int check_sa(struct wp_ctx *ctx, const struct sockaddr *sa)
{
	if (sa->sa_family != AF_INET) {
		wp_log(ctx, WP_LOG_ERR, "xsk: IPv4 addresses only");
		return -EAFNOSUPPORT;
	}
	return 0;
}

int xsk_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);
	int ret = check_sa(ep->ctx, sa);

	if (ret < 0)
		return ret;
	if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
		return -EOPNOTSUPP; /* loopback: no Ethernet, no XDP path */
	if (sin->sin_addr.s_addr == INADDR_ANY) {
		wp_log(ep->ctx, WP_LOG_ERR, "xsk: listen on an interface's address, not 0.0.0.0");
		return -EINVAL;
	}
	if (xc->listener)
		return -EADDRINUSE;
	if (xc->up && sin->sin_port && ntohs(sin->sin_port) != xc->port) {
		wp_log(ep->ctx, WP_LOG_ERR, "xsk: a context serves one UDP port (%u)", xc->port);
		return -EADDRINUSE;
	}
	ret = xsk_ctx_setup(ep->ctx, sin->sin_addr.s_addr, ntohs(sin->sin_port), -1);
	if (ret < 0)
		return ret;
	s->ep = ep;
	s->listener = true;
	xc->listener = ep;
	ep->local_port = xc->port;
	ep->state = WP_EPS_LISTEN;
	return 0;
}

int xsk_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	int ret = check_sa(ep->ctx, sa), fd;

	if (ret < 0)
		return ret;
	if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
		return -EOPNOTSUPP;
	/* The route's source address names our interface. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, sa, salen) < 0 || getsockname(fd, (struct sockaddr *)&me, &ml) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	WP_SYSCALL(WP_SYS_CONNECT);
	if (xc->up) {
		close(fd);
		if (me.sin_addr.s_addr != xc->ip) {
			wp_log(ep->ctx, WP_LOG_ERR, "xsk: a context uses one interface (%s)",
			       xc->ifname);
			return -EXDEV;
		}
	} else {
		ret = xsk_ctx_setup(ep->ctx, me.sin_addr.s_addr, 0, fd); /* fd holds the port */
		if (ret < 0)
			return ret;
	}
	s->ep = ep;
	s->peer_ip = sin->sin_addr.s_addr;
	s->peer_port = ntohs(sin->sin_port);
	/* The MAC: in the table already (a few us), or the kernel is asked
	 * and the SYN waits for the answer (timers); never blocking here. */
	xsk_neigh_poke(s->peer_ip);
	s->poked_at = now_ns();
	s->have_mac = xsk_neigh_lookup(xc, s->peer_ip, s->peer_mac) == 0;
	do {
		if (getrandom(&s->sid, sizeof(s->sid), 0) != sizeof(s->sid))
			return -EIO;
	} while (!s->sid || xsk_sess_find(xc, s->sid));
	s->snd_una = s->snd_nxt = s->snd_max = s->rcv_nxt = 1;
	s->cwnd = XSK_WIN;
	s->syn_since = s->last_rx = now_ns();
	ep->local_port = xc->port;
	ep->state = WP_EPS_CONNECTING;
	xsk_sess_add(xc, s);
	/* The SYN leaves from the first timer run (never inside this call). */
	s->rto_us = XSK_RTO_MIN_US / 2;
	s->rto_at = s->syn_since;
	xsk_timer_at(xc, s->rto_at);
	return 0;
}

/*
 * At close: sends not yet acknowledged go back to their owners now
 * (-ECONNABORTED, as on every path), so the packets still to be delivered
 * get copies of their fragments (counted). 0 or -ENOMEM (then nothing
 * lingers: the session ends as before).
 */
static int q_detach(struct wp_ep *ep, struct xsk_ep *s)
{
	for (struct xsk_pkt **pp = &s->q; *pp; pp = &(*pp)->next) {
		struct xsk_pkt *k = *pp, *c;

		if (!k->n || k->frag == k->inl)
			continue;
		c = malloc(sizeof(*c) + k->n);
		if (!c)
			return -ENOMEM;
		memcpy(c, k, sizeof(*c));
		memcpy(c->inl, k->frag, k->n);
		c->frag = c->inl;
		WP_CNT_ADD(bytes_copied, k->n);
		if (s->unsent == k)
			s->unsent = c;
		if (s->q_tail == k)
			s->q_tail = c;
		*pp = c;
		/* the original's completion moves with it below */
		k->next = NULL;
		k->done = NULL;
		free(k);
	}
	for (struct xsk_pkt *k = s->q; k; k = k->next)
		if (k->done) {
			wp_defer(ep->ctx, k->done, k->arg, -ECONNABORTED);
			k->done = NULL;
		}
	return 0;
}

/* The FIN: numbered after the data, queued and retransmitted like it. */
static int fin_queue(struct xsk_ep *s)
{
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = 1,
				  .method = XSK_FIN,
				  .len = XSK_PREFIX };
	struct xsk_pkt *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	wp_frame_encode(&h, k->b);
	k->b[5] = XSK_T_CTL;
	k->seq = s->snd_nxt++;
	put64(k->b + WP_FRAME_HDR, s->sid);
	put32(k->b + WP_FRAME_HDR + 8, k->seq);
	if (s->q_tail)
		s->q_tail->next = k;
	else
		s->q = k;
	s->q_tail = k;
	if (!s->unsent)
		s->unsent = k;
	s->q_bytes += sizeof(*k);
	return 0;
}

void xsk_close(struct wp_ep *ep)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);

	if (!xc)
		return;
	if (s->listener) {
		if (xc->listener == ep)
			xc->listener = NULL;
		return;
	}
	if (s->linger) { /* freed while lingering: the context is going */
		xsk_linger_end(ep, s, -ECONNABORTED);
		return;
	}
	/* Closed by its owner: the unacknowledged tail and a FIN after it are
	 * sent reliably (retransmitted until acked, or the liveness limit),
	 * so the peer reads everything, then an orderly close (0). */
	if (s->in_table && xc->up && s->opened && !s->reset && !s->fin_rx &&
	    ep->err == -ECONNABORTED && q_detach(ep, s) == 0 && fin_queue(s) == 0) {
		s->linger = true;
		s->una_at = 0;
		xsk_asm_release(ep->ctx, s); /* a closed session delivers nothing more */
		ep->io_inflight++;           /* held until linger_end */
		xsk_flush(ep);
		return;
	}
	if (s->in_table)
		sess_del(xc, s);
	xsk_q_drop(ep, ep->err ? ep->err : -ECONNABORTED);
	xsk_asm_release(ep->ctx, s);
}

void xsk_ep_free(struct wp_ep *ep)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);

	if (xc)
		xsk_close(ep);
	xsk_q_drop(ep, -ECONNABORTED);
	xsk_asm_release(ep->ctx, s);
	if (s->ds) {
		/* the session's drops stay in the context's counters */
		for (unsigned r = 0; xc && r < WP_DGRAM_DROP__COUNT; r++)
			xc->st.drop[r] += s->ds->st.drop[r];
		wp_dgram_fini(s->ds);
		free(s->ds);
		s->ds = NULL;
	}
	xsk_hs_wipe(s);
}

/* Input stops for real: a paused session drops data (the peer sends it
 * again), a paused listener ignores SYNs (the client sends them again). */
void xsk_rx_pause(struct wp_ep *ep, bool pause)
{
	if (!pause)
		wp_ctx_mark_dirty(ep);
}
