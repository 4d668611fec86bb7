// SPDX-License-Identifier: MIT
/*
 * The soak's fault proxy (docs/soak.md), for the paths that run over TCP
 * (tcp, uring): a byte forwarder between clients and a server that injects
 * the faults a library user cannot ask its own sockets for.
 *
 * - Small socket buffers: every socket the proxy holds has 16 KiB SO_SNDBUF
 *   and SO_RCVBUF (the kernel doubles them; the defaults grow to megabytes),
 *   so the library's sends on both sides meet a full socket (EAGAIN:
 *   back-pressure) whenever the proxy or the far side lags, which the
 *   orchestrator's stalls arrange. Not smaller: with 4 KiB the advertised
 *   window stays below one MSS and Linux's sender-side silly-window
 *   avoidance holds the data back for seconds (seen: 12 KiB unsent behind
 *   a 1856-byte window, MSS 2048, for 5 s), which is TCP's behaviour, not a
 *   fault of the path under test.
 * - Connection resets: on the command 'R' (from the orchestrator, on a
 *   pipe) every forwarded connection of the main port is closed with
 *   SO_LINGER {1, 0}, which sends an RST both ways, mid-stream.
 * - The drip port: client -> server bytes are forwarded at SOAK_DRIP_BPS
 *   only, so a large frame sent there (the client's hog) stays partial in
 *   the server for seconds: the memory-budget fault.
 *
 * Level-triggered epoll; each direction has one buffer; a pair's interest
 * is recomputed after every event.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "soak.h"

#define PX_BUF (64u << 10)
#define PX_SOCKBUF 16384

struct ppair {
	struct ppair *next;
	int fd[2];       /* 0: the client's side, 1: the server's */
	uint8_t *buf[2]; /* buf[d]: read from fd[d], to be written to fd[!d] */
	uint32_t off[2], len[2];
	int drip;
	int doomed; /* reset at the end of this round of events */
};

struct pxy {
	const struct soak_peer_cfg *c;
	int ep;
	struct ppair *pairs;
	uint64_t ctr[SC__COUNT];
	uint64_t drip_tokens, drip_t;
};

static volatile sig_atomic_t px_stop;

static void px_on_signal(int sig)
{
	px_stop = 1;
}

static void px_small_bufs(int fd)
{
	int v = PX_SOCKBUF, one = 1;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int px_listen(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	px_small_bufs(fd);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void px_interest(struct pxy *x, struct ppair *p)
{
	for (int s = 0; s < 2; s++) {
		struct epoll_event ev = { .data.u64 = (uint64_t)(uintptr_t)p | (uint64_t)s };

		/* Read from s when its buffer is empty (a drip pair's client side
		 * only while the rate allows), write to s what the other side read. */
		if (!p->len[s] && !(p->drip && s == 0 && !x->drip_tokens))
			ev.events |= EPOLLIN;
		if (p->len[!s])
			ev.events |= EPOLLOUT;
		epoll_ctl(x->ep, EPOLL_CTL_MOD, p->fd[s], &ev);
	}
}

static void px_close(struct pxy *x, struct ppair *p, int reset)
{
	struct ppair **pp;

	for (pp = &x->pairs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	for (int s = 0; s < 2; s++) {
		if (reset) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(p->fd[s], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(p->fd[s]);
		free(p->buf[s]);
	}
	free(p);
}

static void px_accept(struct pxy *x, int lfd, int drip)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)x->c->px_target_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct ppair *p;
	int sfd;

	if (cfd < 0)
		return;
	sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		close(cfd);
		return;
	}
	px_small_bufs(sfd);
	px_small_bufs(cfd);
	/* Blocking connect on loopback: immediate, or refused. */
	if (connect(sfd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(sfd);
		close(cfd);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p) {
		p->buf[0] = malloc(PX_BUF);
		p->buf[1] = malloc(PX_BUF);
	}
	if (!p || !p->buf[0] || !p->buf[1]) {
		if (p) {
			free(p->buf[0]);
			free(p->buf[1]);
		}
		free(p);
		close(sfd);
		close(cfd);
		return;
	}
	fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK);
	if (drip) {
		/*
		 * Only client-B's SOAK_HOGS hogs use the drip port, and a hog
		 * reconnects only after its connection closed. So a drip pair
		 * beyond the newest SOAK_HOGS - 1 belongs to a killed client-B,
		 * whose orphaned socket would otherwise drain megabytes of
		 * unsent hog frame at the drip rate for many seconds: reset it.
		 */
		int n = 0;

		for (struct ppair *q = x->pairs; q; q = q->next)
			if (q->drip && !q->doomed && ++n >= SOAK_HOGS) {
				q->doomed = 1;
				x->ctr[SC_PX_ORPHANS]++;
			}
	}
	p->fd[0] = cfd;
	p->fd[1] = sfd;
	p->drip = drip;
	p->next = x->pairs;
	x->pairs = p;
	for (int s = 0; s < 2; s++) {
		struct epoll_event ev = { .events = 0,
					  .data.u64 = (uint64_t)(uintptr_t)p | (uint64_t)s };

		epoll_ctl(x->ep, EPOLL_CTL_ADD, p->fd[s], &ev);
	}
	x->ctr[SC_PX_CONNS]++;
	px_interest(x, p);
}

/* One side of a pair is ready. Returns -1 when the pair was closed. */
static int px_io(struct pxy *x, struct ppair *p, int s, uint32_t events)
{
	ssize_t n;

	if (events & EPOLLOUT && p->len[!s]) {
		n = send(p->fd[s], p->buf[!s] + p->off[!s], p->len[!s],
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			goto out_close;
		if (n > 0) {
			p->off[!s] += (uint32_t)n;
			p->len[!s] -= (uint32_t)n;
			x->ctr[SC_PX_BYTES] += (uint64_t)n;
			if (!p->len[!s])
				p->off[!s] = 0;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) && !p->len[s]) {
		size_t want = PX_BUF;

		if (p->drip && s == 0) {
			if (!x->drip_tokens)
				return 0;
			want = x->drip_tokens < want ? x->drip_tokens : want;
		}
		n = recv(p->fd[s], p->buf[s], want, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			goto out_close;
		if (n > 0) {
			p->off[s] = 0;
			p->len[s] = (uint32_t)n;
			if (p->drip && s == 0) {
				x->drip_tokens -= (uint64_t)n;
				x->ctr[SC_PX_DRIP_BYTES] += (uint64_t)n;
			}
		}
	}
	px_interest(x, p);
	return 0;

out_close:
	/* One side ended: end the other (what it had in flight is cut off, as
	 * a real middlebox would). */
	px_close(x, p, 0);
	return -1;
}

int soak_proxy_main(const struct soak_peer_cfg *c)
{
	struct pxy x;
	struct epoll_event evs[64];
	struct sigaction sa;
	int lfd, dfd;
	uint64_t next_ctr = 0;

	memset(&x, 0, sizeof(x));
	x.c = c;
	soak_report_init(c->report_fd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = px_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	x.ep = epoll_create1(EPOLL_CLOEXEC);
	lfd = px_listen(c->px_port);
	dfd = px_listen(c->px_drip_port);
	if (x.ep < 0 || lfd < 0 || dfd < 0) {
		soak_violation(c->who, SOAK_BAD_SETUP, 0, "cannot listen on ports %d and %d: %s",
			       c->px_port, c->px_drip_port, strerror(lfd < 0 ? -lfd : -dfd));
		soak_report_flush();
		return 1;
	}
	epoll_ctl(x.ep, EPOLL_CTL_ADD, lfd,
		  &(struct epoll_event){ .events = EPOLLIN, .data.u64 = 1 });
	epoll_ctl(x.ep, EPOLL_CTL_ADD, dfd,
		  &(struct epoll_event){ .events = EPOLLIN, .data.u64 = 3 });
	epoll_ctl(x.ep, EPOLL_CTL_ADD, c->px_cmd_fd,
		  &(struct epoll_event){ .events = EPOLLIN, .data.u64 = 5 });
	x.drip_t = wp_now_ns();

	while (!px_stop) {
		uint64_t now = wp_now_ns();
		uint64_t add = (now - x.drip_t) * SOAK_DRIP_BPS / 1000000000ull;
		int n;

		if (add) {
			/* The rate's bucket holds at most 64 KiB (one read). */
			x.drip_tokens = x.drip_tokens + add > PX_BUF ? PX_BUF : x.drip_tokens + add;
			x.drip_t = now;
			for (struct ppair *p = x.pairs; p; p = p->next)
				if (p->drip)
					px_interest(&x, p);
		}
		n = epoll_wait(x.ep, evs, 64, 10);
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;

			if (d == 1 || d == 3) {
				px_accept(&x, d == 1 ? lfd : dfd, d == 3);
			} else if (d == 5) {
				char cmd;
				ssize_t r = read(c->px_cmd_fd, &cmd, 1);

				if (r == 0) {
					px_stop = 1;
				} else if (r == 1 && cmd == 'R') {
					/* Reset every forwarded connection of the main
					 * port, both ways, now. Events already fetched
					 * for them are skipped below. */
					struct ppair *p = x.pairs, *next;

					for (; p; p = next) {
						next = p->next;
						if (!p->drip) {
							px_close(&x, p, 1);
							x.ctr[SC_PX_RESETS]++;
						}
					}
					for (int k = i + 1; k < n; k++)
						if (evs[k].data.u64 > 5)
							evs[k].data.u64 = 0;
				}
			} else if (d > 5) {
				struct ppair *p = (struct ppair *)(uintptr_t)(d & ~1ull);

				if (p->doomed)
					continue;
				if (px_io(&x, p, (int)(d & 1), evs[i].events) < 0)
					for (int k = i + 1; k < n; k++)
						if ((evs[k].data.u64 & ~1ull) == (d & ~1ull))
							evs[k].data.u64 = 0;
			}
		}
		/* After the round: no event of it points at a freed pair. */
		for (struct ppair *p = x.pairs, *next; p; p = next) {
			next = p->next;
			if (p->doomed)
				px_close(&x, p, 1);
		}
		if (now >= next_ctr) {
			next_ctr = now + 500 * 1000000ull;
			soak_report_counters(x.ctr);
			soak_report_flush();
		}
	}
	while (x.pairs)
		px_close(&x, x.pairs, 0);
	close(lfd);
	close(dfd);
	close(x.ep);
	soak_report_counters(x.ctr);
	soak_report_flush();
	return 0;
}
