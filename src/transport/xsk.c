// SPDX-License-Identifier: MIT
/*
 * The xsk path: RPC over UDP datagrams through AF_XDP sockets (libxdp's xsk
 * API), with reliability after eRPC's design. docs/architecture.md ("xsk")
 * has the picture; this comment is the contract in short.
 *
 * One interface and one UDP port per context. The first listen or connect
 * picks the interface (the one holding the listen address, or the route's
 * source address for a connect), reserves the port with a kernel UDP socket
 * (so the kernel never hands it to anyone else), attaches the front door's
 * policy program to the interface through a BPF link (one program per
 * interface: libxdp's dispatcher is refused here; the link dies with the
 * context), and binds one AF_XDP socket per rx queue, all sharing one UMEM.
 * The program redirects datagrams to the port into the XSKMAP (wpp_config's
 * xsk range; everything else is XDP_PASS). Modes: XDP_ZEROCOPY then copy,
 * native XDP then generic; explain says what was obtained.
 *
 * The UMEM is the receive pool (wp_ctx_pools): a frame that holds a whole
 * message is delivered in place to wp_conn_deliver and goes back to the
 * fill ring when the callback returns (the ownership contract: a received
 * payload is lent to its callback). Messages larger than a packet are split
 * into numbered packets and reassembled (copied, counted).
 *
 * Reliability (eRPC's session slots, generalised to every frame): each
 * endpoint is a session (a 64-bit id the client draws); every data packet
 * carries a sequence number and a cumulative ack. The sender keeps each
 * packet until it is acked (that copy is the response cache: a response
 * lost on the wire is sent again from it, never recomputed) and sends again
 * go-back-N on a retransmission timeout (5 ms doubling to 200 ms); the
 * receiver delivers in order and drops duplicates by sequence number, so a
 * retransmitted request is never executed twice (at most once; in fact
 * exactly once while the session lives). At most XSK_WIN packets are in
 * flight per session (the credit window). Liveness: a peer silent for 1 s
 * is pinged, for 3 s declared gone (-ETIMEDOUT); a packet for a session the
 * peer does not know draws a reset (-ECONNRESET). A call's own deadline
 * (rpc.c) still bounds it.
 *
 * Packet (one UDP datagram, IPv4): the 40-byte frame header (the frame's own
 * type, method, req_id, aux; len = the rest of the datagram, so the XDP
 * program's datagram checks apply unchanged), a 24-byte prefix (session id,
 * seq, ack, message length, fragment offset; little-endian), the fragment.
 * Control packets (SYN, SYNACK, ACK, FIN, RST, PING, PONG) have type
 * XSK_T_CTL and the kind in `method`.
 *
 * Datagram authentication v2 (src/auth/dgram.h; docs/protocol.md, "On the
 * xsk path"): a client with a tenant key carries its hello on the SYN, the
 * server its hello and proof on the SYNACK, and every later packet of the
 * session is sealed (the prefix and fragment are the dgram payload). A
 * context with a policy takes keyed sessions only, and its program carries
 * the rules, so XDP drops forged and foreign datagrams before the redirect.
 *
 * Test-only fault injection: WP_XSK_TEST_FAULTS="drop=P,dup=P,reorder=P,
 * corrupt=P,plainctl=P,seed=N" (P in percent) makes the transmit side drop,
 * duplicate or swap data packets for real, and on a keyed session flip a
 * sealed byte or follow a data packet with an unsealed RST or FIN signed
 * with the tenant key (tests/netns/xsk_suite.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xdp/xsk.h>

#include <openssl/crypto.h>

#include "auth/dgram.h"
#include "auth/hello.h"
#include "core/core.h"
#include "policy/policy.h"
#include "policy/siphash.h"

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

#define XSK_FRAME 2048u   /* UMEM chunk: one packet up to 1514 B + headroom */
#define XSK_NFRAMES 4096u /* 8 MiB (1024 where RLIMIT_MEMLOCK refuses that) */
#define XSK_NFRAMES_MIN 1024u
#define XSK_RING 2048u        /* every ring */
#define XSK_MAX_Q 8u          /* AF_XDP sockets: one per rx queue */
#define XSK_XDP_HEADROOM 256u /* XDP_PACKET_HEADROOM (linux/bpf.h) */
#define XSK_BATCH 64u
#define XSK_WIN 32u               /* packets in flight per session */
#define XSK_QMAX (64u << 20)      /* bytes queued per session before -ENOBUFS */
#define XSK_RTO_MIN_US 10000u     /* first retransmission timeout */
#define XSK_RTO_MAX_US 200000u    /* backoff ceiling */
#define XSK_PING_NS 1000000000ull /* a peer silent this long is pinged */
#define XSK_DEAD_NS 3000000000ull /* ... and this long is gone */
#define XSK_HDRS 42u              /* Ethernet 14 + IPv4 20 + UDP 8 */
#define XSK_PREFIX 24u
#define XSK_HASH 256u

#define XSK_T_CTL 0xc5 /* control packet type (never a frame type) */
enum xsk_ctl { XSK_SYN = 1, XSK_SYNACK, XSK_ACK, XSK_FIN, XSK_RST, XSK_PING, XSK_PONG, XSK_NAK };

/* Datagram authentication v2 on a session (docs/protocol.md, "xsk"): the
 * SYN carries the client's hello (flags, nonce), the SYNACK the server's
 * (flags, nonce, proof); from then on every packet of the session, data and
 * control, is a sealed datagram (src/auth/dgram.h) whose payload is the
 * 24-byte prefix and the fragment. A sealed control packet has frame type
 * SEAL (never sent otherwise on this path) and its kind in `method`. */
#define XSK_HS_SYN (4 + WP_AUTH_NONCE)                   /* flags, nonce_c */
#define XSK_HS_SYNACK (4 + WP_AUTH_NONCE + WP_AUTH_HMAC) /* flags, nonce_s, proof_s */

/* A packet kept until acked: frame header + prefix, and its fragment of
 * the payload, which stays the sender's until the message's last packet is
 * acked (then its completion runs: the ownership contract). A packet of
 * small copied messages is a bundle: more whole messages, each behind its
 * own frame header, follow the first in inl[] (bundle_add). */
struct xsk_pkt {
	struct xsk_pkt *next;
	uint32_t seq;
	uint32_t n;   /* bytes after the prefix: the fragment, or a bundle's records */
	uint32_t cap; /* inl[]'s size (0: the fragment is the sender's) */
	bool sent;    /* transmitted at least once: nothing more may join it */
	const uint8_t *frag;
	wp_done_fn done; /* last packet of a message only */
	void *arg;
	uint8_t b[WP_FRAME_HDR + 24];
	uint8_t inl[]; /* small payloads, copied at the send */
};

struct xsk_ep {
	struct wp_ep *ep;
	struct xsk_ep *hnext; /* session table chain */
	uint64_t sid;
	bool listener, in_table, have_mac, fin_rx, reset;
	/* opened: the session was established; linger: closed by its owner,
	 * the endpoint is held (io_inflight) until the peer acknowledged
	 * everything up to our FIN, or the liveness limit */
	bool opened, linger;
	uint8_t peer_mac[6];
	uint32_t peer_ip; /* network order */
	uint16_t peer_port;
	uint64_t poked_at; /* the last ARP nudge (no MAC yet) */
	/* transmit: q holds unacked and unsent packets in seq order */
	struct xsk_pkt *q, *q_tail, *unsent;
	uint32_t snd_una, snd_nxt; /* oldest unacked, next new seq */
	size_t q_bytes;
	uint64_t rto_at; /* 0: no timer */
	uint32_t rto_us;
	uint64_t syn_since;
	/* receive */
	uint32_t rcv_nxt;
	uint32_t nak_for; /* rcv_nxt a NAK was sent for (0: none) */
	uint32_t recover; /* go-back after a NAK: not again below this seq */
	bool ack_due, nak_due;
	uint8_t *asm_buf; /* a message being reassembled */
	uint32_t asm_len, asm_have;
	uint32_t asm_claim; /* its length, claimed from the context's receive budget */
	uint64_t asm_since; /* its first packet: it must complete within frame_timeout_ms */
	uint64_t last_rx, last_ping;
	uint32_t watch_una; /* snd_una when una_at was taken */
	uint64_t una_at;    /* since when snd_una has not moved with data queued */
	/* Datagram authentication v2. ds: the keyed session (NULL: plain, or
	 * the client's handshake not done yet); authn: this session runs it
	 * (a client with a tenant key, an accepted session of a context with a
	 * policy); confirmed: (server) a sealed datagram from the client
	 * opened, which proves it holds the key; the handshake fields are
	 * wiped then (client: once the SYNACK's proof checked). */
	struct wp_dgram_session *ds;
	bool authn, confirmed;
	uint32_t tenant, hs_flags;
	uint8_t key[16];
	uint8_t nonce_c[WP_AUTH_NONCE], nonce_s[WP_AUTH_NONCE], proof_s[WP_AUTH_HMAC];
};

struct xsk_q {
	struct xsk_socket *xsk;
	struct xsk_ring_cons rx, cq;
	struct xsk_ring_prod tx, fq;
	int fd;
};

struct xsk_ctx {
	int epfd; /* first: wp_epoll_bk_init */
	struct epoll_event ev[XSK_MAX_Q + 1];
	bool up;
	char ifname[IF_NAMESIZE];
	int ifindex, mtu;
	uint8_t mac[6];
	uint32_t ip; /* network order */
	uint16_t port;
	int resv_fd; /* the kernel UDP socket holding the port */
	int nl_fd;   /* rtnetlink, in the interface's namespace: neighbours */
	uint32_t nl_seq;
	uint8_t *area;
	struct xsk_umem *umem;
	struct xsk_q q[XSK_MAX_Q];
	uint32_t nq;
	uint64_t freel[XSK_NFRAMES];
	uint32_t nfree, nframes;
	bool zerocopy, need_wakeup;
	int zc_err, busy_err;
	bool busy;
	struct wpp_xsk_prog prog;
	struct xsk_ep *tab[XSK_HASH];
	struct wp_ep *listener;
	uint64_t next_timer;
	bool tx_blocked;
	uint32_t unkicked;
	/* test-only faults (percent), and the packet held back to reorder */
	uint32_t f_drop, f_dup, f_reorder;
	uint64_t f_rng;
	uint64_t held_addr;
	uint32_t held_len;
	bool held;
	uint32_t f_corrupt, f_plainctl;
	struct {
		uint64_t rx_pkts, tx_pkts, retrans, dups, ooo, bad, faults, resets, naks;
		uint64_t bundled; /* messages that joined another's packet */
		/* authentication v2: sealed / opened datagrams and the drops of
		 * sessions already freed (live ones are added in explain),
		 * unsealed control packets ignored on a keyed session, SYNs
		 * refused (no hello, unknown tenant, header tag), proofs that
		 * did not check */
		uint64_t sealed, opened, drop[WP_DGRAM_DROP__COUNT];
		uint64_t unauth_ctl, hs_refused, hs_bad_proof;
	} st;
};

static struct xsk_ep *xep(const struct wp_ep *ep)
{
	return ep->bk;
}

static struct xsk_ctx *xctx(const struct wp_ctx *ctx)
{
	return ctx->bk;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* little-endian hosts (x86, arm64): the wire order */
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* ---- control: availability and probe ---------------------------------- */

static int xsk_available(char *why, size_t len)
{
	int fd;

	if (!wp_policy_xdp_built()) {
		snprintf(why, len, "built without the XDP front door (libbpf, clang, bpftool)");
		return -EOPNOTSUPP;
	}
	fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int ret = -errno;

		snprintf(why, len, "socket(AF_XDP): %s", strerror(errno));
		return ret == -EAFNOSUPPORT ? -EOPNOTSUPP : ret;
	}
	close(fd);
	return 0;
}

static void xsk_probe(void)
{
	char why[160] = "";
	int ret = xsk_available(why, sizeof(why));

	wp_probe_add("path.xsk", ret,
		     ret ? "%s"
			 : "AF_XDP sockets open; modes are chosen per interface at listen/connect "
			   "(zero copy then copy, native then generic XDP)%s",
		     ret ? why : "");
}

static int xsk_init(struct wp_ctx *ctx)
{
	int ret = wp_epoll_bk_init(ctx, sizeof(struct xsk_ctx));
	struct xsk_ctx *xc;
	const char *f;

	if (ret < 0)
		return ret;
	xc = ctx->bk;
	xc->resv_fd = -1;
	xc->nl_fd = -1;
	xc->prog.link_fd = -1;
	f = getenv("WP_XSK_TEST_FAULTS");
	if (f && *f) {
		const char *p;

		if ((p = strstr(f, "drop=")))
			xc->f_drop = (uint32_t)atoi(p + 5);
		if ((p = strstr(f, "dup=")))
			xc->f_dup = (uint32_t)atoi(p + 4);
		if ((p = strstr(f, "reorder=")))
			xc->f_reorder = (uint32_t)atoi(p + 8);
		if ((p = strstr(f, "corrupt=")))
			xc->f_corrupt = (uint32_t)atoi(p + 8);
		if ((p = strstr(f, "plainctl=")))
			xc->f_plainctl = (uint32_t)atoi(p + 9);
		xc->f_rng = (p = strstr(f, "seed=")) ? strtoull(p + 5, NULL, 0) : 1;
		if (!xc->f_rng)
			xc->f_rng = 1;
		wp_log(ctx, WP_LOG_WARN,
		       "xsk: test faults on: drop %u%% dup %u%% reorder %u%% corrupt %u%% "
		       "plainctl %u%%",
		       xc->f_drop, xc->f_dup, xc->f_reorder, xc->f_corrupt, xc->f_plainctl);
	}
	return 0;
}

/* Undo the set-up, in reverse: the sockets (their fds leave the epoll set
 * as they close), the UMEM, its memory, the program's link (the interface
 * is free again), the port. From fini, and from a set-up that failed
 * half-way, so that a later listen or connect starts clean. */
static void xsk_teardown(struct xsk_ctx *xc)
{
	for (uint32_t i = 0; i < xc->nq; i++) {
		if (xc->q[i].xsk)
			xsk_socket__delete(xc->q[i].xsk);
		memset(&xc->q[i], 0, sizeof(xc->q[i]));
	}
	xc->nq = 0;
	if (xc->umem)
		xsk_umem__delete(xc->umem);
	xc->umem = NULL;
	if (xc->area)
		munmap(xc->area, (size_t)xc->nframes * XSK_FRAME);
	xc->area = NULL;
	xc->nfree = xc->nframes = 0;
	wpp_xsk_detach(&xc->prog);
	if (xc->resv_fd >= 0)
		close(xc->resv_fd);
	xc->resv_fd = -1;
	if (xc->nl_fd >= 0)
		close(xc->nl_fd);
	xc->nl_fd = -1;
	xc->port = 0;
	xc->up = false;
}

static void xsk_fini(struct wp_ctx *ctx)
{
	struct xsk_ctx *xc = ctx->bk;

	if (xc)
		xsk_teardown(xc);
	wp_epoll_bk_fini(ctx);
}

/* ---- set-up: interface, port, program, sockets ------------------------- */

static int iface_of(uint32_t ip, char *name, int *ifindex)
{
	struct ifaddrs *ifa, *i;
	int ret = -EADDRNOTAVAIL;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != ip)
			continue;
		snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
		*ifindex = (int)if_nametoindex(i->ifa_name);
		ret = *ifindex ? 0 : -ENODEV;
		break;
	}
	freeifaddrs(ifa);
	return ret;
}

/* Rx queues, from the driver (ETHTOOL_GCHANNELS): /sys/class/net shows the
 * namespace sysfs was mounted in, which nsenter --net does not change. */
static int rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), n = 1;

	if (fd < 0)
		return 1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
		n = (int)(ch.rx_count > ch.combined_count ? ch.rx_count : ch.combined_count);
		if (n < 1)
			n = 1;
	}
	close(fd);
	return n;
}

static void frame_put(struct xsk_ctx *xc, uint64_t addr)
{
	xc->freel[xc->nfree++] = addr - addr % XSK_FRAME;
}

/* Keep every fill ring stocked from the free frames (half of them go there). */
static void fill_topup(struct xsk_ctx *xc)
{
	for (uint32_t i = 0; i < xc->nq; i++) {
		struct xsk_q *q = &xc->q[i];
		uint32_t want = xc->nframes / 2 / xc->nq, have, idx, n;

		if (want > XSK_RING)
			want = XSK_RING;
		have = XSK_RING - xsk_prod_nb_free(&q->fq, XSK_RING);
		if (have >= want || !xc->nfree)
			continue;
		n = want - have;
		if (n > xc->nfree)
			n = xc->nfree;
		n = xsk_ring_prod__reserve(&q->fq, n, &idx);
		for (uint32_t k = 0; k < n; k++)
			*xsk_ring_prod__fill_addr(&q->fq, idx + k) = xc->freel[--xc->nfree];
		xsk_ring_prod__submit(&q->fq, n);
		if (n && xc->need_wakeup && xsk_ring_prod__needs_wakeup(&q->fq)) {
			recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			WP_SYSCALL(WP_SYS_READ);
		}
	}
}

/* Frames the kernel finished sending come back from the completion ring. */
static void comp_reap(struct xsk_ctx *xc)
{
	struct xsk_q *q = &xc->q[0];
	uint32_t idx, n = xsk_ring_cons__peek(&q->cq, XSK_RING, &idx);

	for (uint32_t k = 0; k < n; k++)
		frame_put(xc, *xsk_ring_cons__comp_addr(&q->cq, idx + k));
	if (n)
		xsk_ring_cons__release(&q->cq, n);
}

static int bind_queue(struct wp_ctx *ctx, uint32_t qi, char *why, size_t wlen)
{
	struct xsk_ctx *xc = ctx->bk;
	struct xsk_q *q = &xc->q[qi];
	struct xsk_socket_config cfg = {
		.rx_size = XSK_RING,
		.tx_size = XSK_RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
	};
	int ret = -EOPNOTSUPP;

	/* Zero copy first (a capable NIC), then copy mode (veth, virtio_net). */
	for (int zc = qi ? xc->zerocopy : 1; zc >= 0; zc--) {
		cfg.bind_flags = (zc ? XDP_ZEROCOPY : XDP_COPY) | XDP_USE_NEED_WAKEUP;
		if (qi == 0)
			ret = xsk_socket__create(&q->xsk, xc->ifname, qi, xc->umem, &q->rx, &q->tx,
						 &cfg);
		else
			ret = xsk_socket__create_shared(&q->xsk, xc->ifname, qi, xc->umem, &q->rx,
							&q->tx, &q->fq, &q->cq, &cfg);
		if (ret == 0) {
			if (qi == 0) {
				xc->zerocopy = zc;
				/* the UMEM's own rings serve queue 0 */
			}
			break;
		}
		if (zc && qi == 0)
			xc->zc_err = -ret;
		if (qi)
			break;
	}
	if (ret < 0) {
		snprintf(why, wlen, "AF_XDP socket on %s queue %u: %s", xc->ifname, qi,
			 strerror(-ret));
		return ret;
	}
	q->fd = xsk_socket__fd(q->xsk);
	ret = xsk_socket__update_xskmap(q->xsk, xc->prog.m.fd[WPP_M_XSKS]);
	if (ret < 0) {
		snprintf(why, wlen, "XSKMAP update for queue %u: %s", qi, strerror(-ret));
		return ret;
	}
	if (ctx->o.busy_poll) {
		int one = 1, us = 20, budget = XSK_BATCH;

		if (setsockopt(q->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) < 0 ||
		    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us)) < 0 ||
		    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)) < 0)
			xc->busy_err = errno;
		else
			xc->busy = true;
	}
	return wp_epoll_ctl(ctx, EPOLL_CTL_ADD, q->fd, EPOLLIN, qi);
}

/*
 * The program's rules. Without a policy, every datagram to the port goes to
 * the sockets (xsk_open). With one (wp_ctx_set_policy before the first
 * listen or connect), the context's rules, with the port added as a
 * datagram port that every tenant may reach from its own prefixes: XDP then
 * drops a datagram to the port whose tenant does not own its source address,
 * whose header is not one frame or whose SipHash header tag is wrong
 * (docs/policy.md, checks 13-15) before anything is redirected.
 */
static int xsk_rules(struct wp_ctx *ctx, uint16_t port, struct wp_policy *pol)
{
	const struct wp_policy *p = wp_auth_policy(ctx);
	bool in = false;

	if (!p) {
		pol->default_verdict = WPP_V_PASS;
		pol->xsk_open = 1;
		pol->xsk_lo = pol->xsk_hi = port;
		return 0;
	}
	memcpy(pol, p, sizeof(*pol));
	pol->gw_pool = NULL;
	for (uint32_t i = 0; i < pol->ndgram; i++)
		in |= port >= pol->dgram[i].lo && port <= pol->dgram[i].hi;
	if (!in) {
		if (pol->ndgram >= WPP_MAX_DGRAM)
			return -ENOSPC;
		pol->dgram[pol->ndgram].lo = pol->dgram[pol->ndgram].hi = port;
		pol->ndgram++;
	}
	for (uint32_t t = 0; t < pol->ntenants; t++) {
		struct wpp_rtenant *rt = &pol->tenants[t];

		in = false;
		for (uint32_t i = 0; i < rt->nranges; i++)
			in |= (rt->ranges[i].proto & WPP_P_UDP) && port >= rt->ranges[i].lo &&
			      port <= rt->ranges[i].hi;
		if (in)
			continue;
		if (rt->nranges >= WPP_MAX_RANGES)
			return -ENOSPC;
		rt->ranges[rt->nranges++] = (struct wpp_rrange){ port, port, WPP_P_UDP, 0 };
	}
	pol->xsk_open = 0;
	pol->xsk_lo = pol->xsk_hi = port;
	return 0;
}

/* The context's interface, port, program and sockets, once. local: our
 * address (network order); port: host order, 0 = any (resv may be given). */
static int ctx_setup(struct wp_ctx *ctx, uint32_t local, uint16_t port, int resv)
{
	struct xsk_ctx *xc = ctx->bk;
	struct xsk_umem_config ucfg = { .fill_size = XSK_RING,
					.comp_size = XSK_RING,
					.frame_size = XSK_FRAME,
					.frame_headroom = 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct wp_policy *pol = NULL;
	struct ifreq ifr;
	char why[256] = "";
	uint32_t nq;
	int ret, fd;

	if (xc->up)
		return local == xc->ip ? 0 : -EXDEV;
	ret = iface_of(local, xc->ifname, &xc->ifindex);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "xsk: no interface holds %s: %s",
		       inet_ntoa((struct in_addr){ local }), strerror(-ret));
		goto out_resv;
	}
	if (!strcmp(xc->ifname, "lo")) {
		wp_log(ctx, WP_LOG_ERR,
		       "xsk: loopback has no Ethernet for AF_XDP; use an "
		       "interface (a veth pair between namespaces)");
		ret = -EOPNOTSUPP;
		goto out_resv;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out_resv;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", xc->ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0 ||
	    ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */) {
		close(fd);
		wp_log(ctx, WP_LOG_ERR, "xsk: %s is not an Ethernet interface", xc->ifname);
		ret = -EOPNOTSUPP;
		goto out_resv;
	}
	memcpy(xc->mac, ifr.ifr_hwaddr.sa_data, 6);
	xc->mtu = ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : 1500;
	close(fd);
	/* The kernel keeps XDP_PACKET_HEADROOM (256) of each chunk: a received
	 * frame longer than the rest is dropped (rx_dropped), so a packet of
	 * a larger MTU would be resent forever. */
	if (xc->mtu > (int)(XSK_FRAME - XSK_XDP_HEADROOM - 14))
		xc->mtu = XSK_FRAME - XSK_XDP_HEADROOM - 14;
	if (xc->mtu < 576) {
		ret = -EMSGSIZE;
		goto out_resv;
	}

	/* The port, held by a kernel socket for as long as the context lives. */
	if (resv < 0) {
		resv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (resv < 0) {
			ret = -errno;
			goto out;
		}
		sin.sin_addr.s_addr = local;
		sin.sin_port = htons(port);
		if (bind(resv, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			ret = -errno;
			goto out_resv;
		}
	}
	if (getsockname(resv, (struct sockaddr *)&sin, &sl) < 0) {
		ret = -errno;
		goto out_resv;
	}
	WP_SYSCALL(WP_SYS_SOCKET);
	xc->resv_fd = resv;
	resv = -1;
	xc->port = ntohs(sin.sin_port);
	xc->ip = local;
	/* Neighbours are asked on this socket: made here, in the namespace of
	 * the interface, whichever thread asks later. */
	xc->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (xc->nl_fd < 0) {
		ret = -errno;
		goto out;
	}

	/* One program on the interface: the front door's, steering the port. */
	pol = calloc(1, sizeof(*pol));
	if (!pol) {
		ret = -ENOMEM;
		goto out;
	}
	ret = xsk_rules(ctx, xc->port, pol);
	if (ret == 0)
		ret = wpp_xsk_attach(xc->ifindex, pol, 0, &xc->prog, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "no room for port %u in the policy's rules", xc->port);
	free(pol);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "xsk: %s", why);
		goto out;
	}

	/* The UMEM: pinned memory, charged to RLIMIT_MEMLOCK without
	 * CAP_IPC_LOCK: the smaller size where the larger is refused. */
	for (xc->nframes = XSK_NFRAMES;; xc->nframes = XSK_NFRAMES_MIN) {
		xc->area = mmap(NULL, (size_t)xc->nframes * XSK_FRAME, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (xc->area == MAP_FAILED) {
			xc->area = NULL;
			ret = -ENOMEM;
			goto out;
		}
		ret = xsk_umem__create(&xc->umem, xc->area, (uint64_t)xc->nframes * XSK_FRAME,
				       &xc->q[0].fq, &xc->q[0].cq, &ucfg);
		if (ret == 0)
			break;
		xc->umem = NULL;
		munmap(xc->area, (size_t)xc->nframes * XSK_FRAME);
		xc->area = NULL;
		if (xc->nframes == XSK_NFRAMES_MIN || (ret != -ENOMEM && ret != -EPERM)) {
			wp_log(ctx, WP_LOG_ERR, "xsk: UMEM of %u KiB: %s%s",
			       xc->nframes * XSK_FRAME >> 10, strerror(-ret),
			       ret == -ENOMEM || ret == -EPERM ? " (RLIMIT_MEMLOCK?)" : "");
			goto out;
		}
	}
	for (uint32_t f = 0; f < xc->nframes; f++)
		xc->freel[xc->nframes - 1 - f] = (uint64_t)f * XSK_FRAME;
	xc->nfree = xc->nframes;
	nq = (uint32_t)rx_queues(xc->ifname);
	if (nq > XSK_MAX_Q) {
		/* Flows hashed to an unbound queue would miss the XSKMAP and
		 * be lost on the port-holding socket: refuse, and say how. */
		wp_log(ctx, WP_LOG_ERR,
		       "xsk: %s has %u rx queues; this path binds at most %u (one socket each): "
		       "reduce them (ethtool -L %s combined %u) or steer the port to the first "
		       "%u",
		       xc->ifname, nq, XSK_MAX_Q, xc->ifname, XSK_MAX_Q, XSK_MAX_Q);
		ret = -EOPNOTSUPP;
		goto out;
	}
	xc->nq = nq; /* never more than q[] holds: the teardown walks them */
	for (uint32_t i = 0; i < xc->nq; i++) {
		ret = bind_queue(ctx, i, why, sizeof(why));
		if (ret < 0) {
			wp_log(ctx, WP_LOG_ERR, "xsk: %s", why);
			xc->nq = i + 1; /* the teardown deletes what was made */
			goto out;
		}
	}
	xc->need_wakeup = true;
	fill_topup(xc);
	xc->up = true;
	wp_log(ctx, WP_LOG_INFO, "xsk: %s port %u, %u queue(s), %s, %s XDP", xc->ifname, xc->port,
	       xc->nq, xc->zerocopy ? "zero copy" : "copy mode",
	       xc->prog.native ? "native" : "generic");
	return 0;

out_resv:
	if (resv >= 0)
		close(resv);
out:
	xsk_teardown(xc); /* nothing of a failed set-up stays (link, UMEM, port) */
	return ret;
}

/* ---- sessions ----------------------------------------------------------- */

static uint32_t sid_hash(uint64_t sid)
{
	return (uint32_t)((sid * 0x9e3779b97f4a7c15ull) >> 56) % XSK_HASH;
}

static struct xsk_ep *sess_find(struct xsk_ctx *xc, uint64_t sid)
{
	struct xsk_ep *s = xc->tab[sid_hash(sid)];

	while (s && s->sid != sid)
		s = s->hnext;
	return s;
}

static void sess_add(struct xsk_ctx *xc, struct xsk_ep *s)
{
	uint32_t h = sid_hash(s->sid);

	s->hnext = xc->tab[h];
	xc->tab[h] = s;
	s->in_table = true;
}

static void sess_del(struct xsk_ctx *xc, struct xsk_ep *s)
{
	struct xsk_ep **pp = &xc->tab[sid_hash(s->sid)];

	if (!s->in_table)
		return;
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	s->in_table = false;
}

static void timer_at(struct xsk_ctx *xc, uint64_t t)
{
	if (!xc->next_timer || t < xc->next_timer)
		xc->next_timer = t;
}

/* ---- transmit ------------------------------------------------------------- */

static uint16_t ip_csum(const uint8_t *h)
{
	uint32_t s = 0;

	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static bool fault(struct xsk_ctx *xc, uint32_t pct)
{
	if (!pct)
		return false;
	xc->f_rng ^= xc->f_rng << 13;
	xc->f_rng ^= xc->f_rng >> 7;
	xc->f_rng ^= xc->f_rng << 17;
	return xc->f_rng % 100 < pct;
}

/* Descriptors on the tx ring the kernel has not taken yet. */
static uint32_t tx_pending(const struct xsk_q *q)
{
	return q->tx.cached_prod - __atomic_load_n(q->tx.consumer, __ATOMIC_ACQUIRE);
}

/*
 * Make the kernel send what is on the tx ring. Copy mode sends at most 32
 * frames per call (the kernel's TX_BATCH_SIZE), synchronously, and says
 * EAGAIN when more wait, or when the device is busy (veth: the peer's ring
 * is full). So kick again only while a call took something: a call that
 * took nothing met a full device, and asking again at once only burns
 * syscalls. What is left is kicked from the next flush, poll or arm, which
 * do not sleep long while the ring holds anything (tx_pending). Zero copy
 * sends from the driver: one kick, and only when it asks for one.
 */
static void kick(struct xsk_ctx *xc)
{
	struct xsk_q *q = &xc->q[0];
	uint32_t pend;

	xc->unkicked = 0;
	while ((pend = tx_pending(q))) {
		if (xc->zerocopy && !xsk_ring_prod__needs_wakeup(&q->tx))
			break;
		WP_SYSCALL(WP_SYS_WRITE);
		if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
		    errno != EBUSY && errno != ENOBUFS)
			break;
		if (xc->zerocopy || tx_pending(q) >= pend)
			break;
	}
}

static void tx_desc(struct xsk_ctx *xc, uint64_t addr, uint32_t len)
{
	struct xsk_q *q = &xc->q[0];
	uint32_t idx;

	if (xsk_ring_prod__reserve(&q->tx, 1, &idx) != 1) { /* cannot: frames < ring */
		frame_put(xc, addr);
		return;
	}
	xsk_ring_prod__tx_desc(&q->tx, idx)->addr = addr;
	xsk_ring_prod__tx_desc(&q->tx, idx)->len = len;
	xsk_ring_prod__submit(&q->tx, 1);
	xc->unkicked++;
	xc->st.tx_pkts++;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Seal body (frame header + prefix, n bytes) and frag into out: the prefix
 * and fragment are the datagram's payload. The length, or < 0. */
static int seal_into(struct xsk_ctx *xc, struct xsk_ep *s, const uint8_t *body, uint32_t n,
		     const uint8_t *frag, uint32_t fn, uint8_t *out)
{
	struct wp_frame_hdr h = { .type = body[5] == XSK_T_CTL ? WP_FT_SEAL : body[5],
				  .flags = get16(body + 6),
				  .method = get32(body + 12),
				  .req_id = get64(body + 16),
				  .aux = get32(body + 28) };
	uint8_t *pl = out + WP_FRAME_HDR + WP_DGRAM_PREFIX;
	int ret;

	memcpy(pl, body + WP_FRAME_HDR, n - WP_FRAME_HDR);
	if (fn)
		memcpy(pl + n - WP_FRAME_HDR, frag, fn);
	ret = wp_dgram_seal(s->ds, &h, pl, n - WP_FRAME_HDR + fn, (uint32_t)xc->mtu, out,
			    XSK_FRAME - XSK_HDRS);
	if (ret >= 0)
		xc->st.sealed++;
	return ret;
}

static bool tx_frame(struct xsk_ctx *xc, struct xsk_ep *s, const uint8_t *body, uint32_t n,
		     const uint8_t *frag, uint32_t fn, bool data, bool seal);

/* Test faults on a keyed session: a control packet without the seal (an
 * RST, or a FIN), signed with the tenant's key so that XDP lets it by, as a
 * holder of the key that is not the session would send it. The receiver
 * must ignore it (unauth_ctl). */
static void fault_plainctl(struct xsk_ctx *xc, struct xsk_ep *s)
{
	uint8_t b[WP_FRAME_HDR + XSK_PREFIX];
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = 1,
				  .tenant = s->ds->tenant,
				  .method = (xc->f_rng & 1) ? XSK_RST : XSK_FIN,
				  .len = XSK_PREFIX };

	wp_frame_encode(&h, b);
	b[5] = XSK_T_CTL;
	put64(b + WP_FRAME_HDR, s->sid);
	put32(b + WP_FRAME_HDR + 8, s->snd_una);
	put32(b + WP_FRAME_HDR + 12, s->rcv_nxt);
	put32(b + WP_FRAME_HDR + 16, 0);
	put32(b + WP_FRAME_HDR + 20, 0);
	put64(b + 32, wpp_siphash24_32(s->ds->k0, s->ds->k1, b));
	tx_frame(xc, s, b, sizeof(b), NULL, 0, false, false);
	xc->st.faults++;
}

/* One datagram to s's peer: body (frame header + prefix + rest) of n bytes.
 * data: a data packet (faults apply); seal: as a sealed datagram of s's
 * keyed session. false when no frame is free. */
static bool tx_frame(struct xsk_ctx *xc, struct xsk_ep *s, const uint8_t *body, uint32_t n,
		     const uint8_t *frag, uint32_t fn, bool data, bool seal)
{
	uint8_t *p;
	uint64_t addr;
	uint32_t len = XSK_HDRS + n + fn + (seal ? WP_DGRAM_OVERHEAD : 0);

	if (!xc->nfree)
		comp_reap(xc);
	if (!xc->nfree || xsk_prod_nb_free(&xc->q[0].tx, 2) < 2) {
		xc->tx_blocked = true;
		return false;
	}
	addr = xc->freel[--xc->nfree];
	p = xsk_umem__get_data(xc->area, addr);
	memcpy(p, s->peer_mac, 6);
	memcpy(p + 6, xc->mac, 6);
	p[12] = 0x08;
	p[13] = 0x00;
	p[14] = 0x45;
	p[15] = 0;
	p[16] = (uint8_t)((len - 14) >> 8);
	p[17] = (uint8_t)(len - 14);
	memset(p + 18, 0, 4); /* id, flags: DF not needed, never fragmented */
	p[22] = 64;
	p[23] = 17;
	p[24] = p[25] = 0;
	memcpy(p + 26, &xc->ip, 4);
	memcpy(p + 30, &s->peer_ip, 4);
	{
		uint16_t c = ip_csum(p + 14);

		p[24] = (uint8_t)(c >> 8);
		p[25] = (uint8_t)c;
	}
	p[34] = (uint8_t)(xc->port >> 8);
	p[35] = (uint8_t)xc->port;
	p[36] = (uint8_t)(s->peer_port >> 8);
	p[37] = (uint8_t)s->peer_port;
	p[38] = (uint8_t)((len - 34) >> 8); /* UDP: 8 + payload */
	p[39] = (uint8_t)(len - 34);
	p[40] = p[41] = 0; /* no UDP checksum (IPv4 allows it) */
	if (seal) {
		if (seal_into(xc, s, body, n, frag, fn, p + XSK_HDRS) < 0) {
			/* -EMSGSIZE cannot happen (sends are sized for the
			 * seal), -EOVERFLOW takes 2^64 packets: lost, counted */
			xc->st.bad++;
			frame_put(xc, addr);
			return true;
		}
	} else {
		memcpy(p + XSK_HDRS, body, n);
		if (fn)
			memcpy(p + XSK_HDRS + n, frag, fn);
	}
	if (data && seal && xc->f_plainctl && fault(xc, xc->f_plainctl))
		fault_plainctl(xc, s);
	if (data && seal && fault(xc, xc->f_corrupt)) {
		p[len - 20] ^= 0x5a; /* a payload byte: the GCM tag fails */
		xc->st.faults++;
	}
	if (data && (xc->f_drop | xc->f_dup | xc->f_reorder)) {
		if (fault(xc, xc->f_drop)) {
			xc->st.faults++;
			frame_put(xc, addr);
			return true; /* "sent": lost on the wire */
		}
		if (fault(xc, xc->f_dup) && xc->nfree) {
			uint64_t a2 = xc->freel[--xc->nfree];

			memcpy(xsk_umem__get_data(xc->area, a2), p, len);
			tx_desc(xc, a2, len);
			xc->st.faults++;
		}
		if (!xc->held && fault(xc, xc->f_reorder)) {
			xc->held = true; /* goes after the next packet */
			xc->held_addr = addr;
			xc->held_len = len;
			xc->st.faults++;
			return true;
		}
		tx_desc(xc, addr, len);
		if (xc->held) {
			xc->held = false;
			tx_desc(xc, xc->held_addr, xc->held_len);
		}
		return true;
	}
	tx_desc(xc, addr, len);
	return true;
}

static bool tx_one(struct xsk_ctx *xc, struct xsk_ep *s, const uint8_t *body, uint32_t n,
		   const uint8_t *frag, uint32_t fn, bool data)
{
	return tx_frame(xc, s, body, n, frag, fn, data, s->ds != NULL);
}

/* A control packet; hs: the handshake's payload after the prefix (SYN,
 * SYNACK of a keyed session: sent unsealed, with the tenant and the
 * SipHash header tag XDP checks). A keyed session seals the rest. */
static void ctl_send_hs(struct xsk_ctx *xc, struct xsk_ep *s, enum xsk_ctl kind, uint32_t seq,
			const uint8_t *hs, uint32_t hslen)
{
	uint8_t b[WP_FRAME_HDR + XSK_PREFIX + XSK_HS_SYNACK];
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = 1,
				  .method = kind,
				  .len = XSK_PREFIX + hslen };
	bool sign = hslen != 0; /* a handshake message: the peer has no keys yet */

	if (sign)
		h.tenant = s->tenant;
	wp_frame_encode(&h, b);
	b[5] = XSK_T_CTL; /* the type byte: never a frame type */
	put64(b + WP_FRAME_HDR, s->sid);
	put32(b + WP_FRAME_HDR + 8, seq);
	put32(b + WP_FRAME_HDR + 12, s->rcv_nxt);
	put32(b + WP_FRAME_HDR + 16, 0);
	put32(b + WP_FRAME_HDR + 20, 0);
	if (hslen)
		memcpy(b + WP_FRAME_HDR + XSK_PREFIX, hs, hslen);
	if (sign)
		wp_frame_sign(s->key, b);
	if (tx_frame(xc, s, b, WP_FRAME_HDR + XSK_PREFIX + hslen, NULL, 0, false, !sign && s->ds) &&
	    (kind == XSK_ACK || kind == XSK_NAK))
		s->ack_due = false;
}

static void ctl_send(struct xsk_ctx *xc, struct xsk_ep *s, enum xsk_ctl kind, uint32_t seq)
{
	ctl_send_hs(xc, s, kind, seq, NULL, 0);
}

/* A reply to a packet for no session we know: a reset to its sender. */
static void rst_to(struct xsk_ctx *xc, const uint8_t *pkt, uint64_t sid)
{
	struct xsk_ep tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.sid = sid;
	memcpy(tmp.peer_mac, pkt + 6, 6);
	memcpy(&tmp.peer_ip, pkt + 26, 4);
	tmp.peer_port = (uint16_t)(pkt[34] << 8 | pkt[35]);
	ctl_send(xc, &tmp, XSK_RST, 0);
	xc->st.resets++;
}

static void arm_rto(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now)
{
	if (!s->rto_us)
		s->rto_us = XSK_RTO_MIN_US;
	s->rto_at = now + (uint64_t)s->rto_us * 1000;
	timer_at(xc, s->rto_at);
}

/* The transmit burst: new packets within the window, then a bare ack. */
static void xsk_flush(struct wp_ep *ep)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);
	bool live = ep->state == WP_EPS_OPEN || s->linger;

	if (!xc->up || s->listener)
		return;
	comp_reap(xc);
	if (live) {
		while (s->unsent && s->unsent->seq - s->snd_una < XSK_WIN) {
			struct xsk_pkt *k = s->unsent;

			put32(k->b + WP_FRAME_HDR + 12, s->rcv_nxt);
			if (!tx_one(xc, s, k->b, sizeof(k->b), k->frag, k->n, true))
				break;
			k->sent = true;
			s->ack_due = false;
			s->unsent = k->next;
			if (!s->rto_at)
				arm_rto(xc, s, now_ns());
		}
	}
	if (s->nak_due && live) {
		s->nak_due = false;
		ctl_send(xc, s, XSK_NAK, 0);
	}
	if (s->ack_due && live)
		ctl_send(xc, s, XSK_ACK, 0);
	/* One kick per flush loop, from its last endpoint (the loop pops each
	 * before its burst); what an endpoint queued after it is kicked by the
	 * next poll or arm. */
	if (!ep->ctx->dirty)
		kick(xc);
}

static const struct wp_fast_ops xsk_fast;

/* What a queued packet holds in memory, counted against XSK_QMAX: a
 * bundle's whole room from the start, so many tiny messages cannot hide
 * their allocations behind their lengths. */
static size_t pkt_bytes(const struct xsk_pkt *k)
{
	return sizeof(*k) + (k->cap ? k->cap : k->n);
}

/*
 * Batching at the packet: a small message joins the last queued packet when
 * that packet is a bundle that never left and has room, behind its own frame
 * header (len = its payload), with the same tenant (the XDP program judges
 * the first header for the whole datagram). The first header's len grows to
 * the rest of the datagram; its prefix still describes the first message, so
 * a receiver knows the records start after it. A round's answers (or calls)
 * to one peer then leave as a few packets, not one each: the kernel's cost
 * in copy mode is per packet (an skb built to send, a copy on veth, the
 * program, a copy into the UMEM). Nothing waits for a bundle to fill: it
 * leaves with the flush that would have sent its first message.
 */
static bool bundle_add(struct wp_ep *ep, struct xsk_ep *s, const struct wp_frame_hdr *h,
		       const void *data, size_t len, wp_done_fn done, void *arg)
{
	struct xsk_pkt *k = s->q_tail;
	struct wp_frame_hdr hh = *h;

	if (!k || k->sent || !k->cap || k->n + WP_FRAME_HDR + len > k->cap)
		return false;
	if (!hh.tenant)
		hh.tenant = ep->tenant;
	if (get32(k->b + 8) != hh.tenant)
		return false;
	hh.magic = WP_FRAME_MAGIC;
	hh.version = WP_FRAME_VERSION;
	hh.auth = 0;
	hh.len = (uint32_t)len;
	wp_frame_encode(&hh, k->inl + k->n);
	if (len)
		memcpy(k->inl + k->n + WP_FRAME_HDR, data, len);
	k->n += WP_FRAME_HDR + (uint32_t)len;
	put32(k->b + 24, XSK_PREFIX + k->n); /* the first header's len: the rest */
	xctx(ep->ctx)->st.bundled++;
	WP_CNT_ADD(bytes_copied, len);
	WP_CNT_ADD(msgs_tx, 1);
	WP_CNT_ADD(bytes_tx, WP_FRAME_HDR + len);
	if (done)
		wp_defer(ep->ctx, done, arg, 0);
	wp_ctx_mark_dirty(ep);
	return true;
}

/* Take one frame: split into packets of at most the MTU, queued in order.
 * The payload is referenced, not copied (a payload without a completion is
 * copied first, counted); its completion runs when its last packet is
 * acked, or with an error when the session ends first. */
static int xsk_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
		    wp_done_fn done, void *arg)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);
	/* A session that is or will be keyed leaves room for the seal. */
	uint32_t room = (uint32_t)xc->mtu - 28 - WP_FRAME_HDR - XSK_PREFIX -
			(s->authn || ep->guard || ep->ctx->guard ? WP_DGRAM_OVERHEAD : 0),
		 off = 0;
	struct xsk_pkt *first = NULL, *last = NULL;
	struct wp_frame_hdr hh = *h;
	uint32_t seq = s->snd_nxt;
	struct xsk_pkt *pre = NULL;
	size_t bytes = 0;

	if (s->q_bytes + len > XSK_QMAX)
		return -ENOBUFS;
	if (len <= WP_COPY_MAX && bundle_add(ep, s, h, data, len, done, arg))
		return 0;
	/* Small payloads are copied into their packet (counted) and their
	 * completion runs from the next progress, as the stream paths stage
	 * them; larger ones are referenced until acked. Such a packet gets
	 * the room of a whole one, so the round's next small messages join
	 * it (bundle_add). */
	if (len <= WP_COPY_MAX && len <= room) {
		struct xsk_pkt *k = malloc(sizeof(*k) + room);

		if (!k)
			return -ENOMEM;
		k->cap = room;
		if (len)
			memcpy(k->inl, data, len);
		WP_CNT_ADD(bytes_copied, len);
		if (done)
			wp_defer(ep->ctx, done, arg, 0);
		data = k->inl;
		done = NULL;
		pre = k;
	} else if (len && !done && wp_payload_copy(&data, len, &done, &arg) < 0) {
		return -ENOMEM;
	}
	if (!hh.tenant)
		hh.tenant = ep->tenant;
	hh.magic = WP_FRAME_MAGIC;
	hh.version = WP_FRAME_VERSION;
	hh.auth = 0;
	do {
		uint32_t n = len - off > room ? room : (uint32_t)(len - off);
		struct xsk_pkt *k = pre ? pre : malloc(sizeof(*k));

		if (!k) {
			while (first) {
				k = first->next;
				free(first);
				first = k;
			}
			if (done == wp_copy_done)
				wp_copy_done(arg, 0);
			return -ENOMEM;
		}
		if (!pre)
			k->cap = 0;
		pre = NULL;
		k->next = NULL;
		k->sent = false;
		k->seq = seq++;
		k->n = n;
		k->frag = (const uint8_t *)data + off;
		k->done = NULL;
		k->arg = NULL;
		hh.len = XSK_PREFIX + n;
		wp_frame_encode(&hh, k->b);
		put64(k->b + WP_FRAME_HDR, s->sid);
		put32(k->b + WP_FRAME_HDR + 8, k->seq);
		put32(k->b + WP_FRAME_HDR + 12, 0);
		put32(k->b + WP_FRAME_HDR + 16, (uint32_t)len);
		put32(k->b + WP_FRAME_HDR + 20, off);
		bytes += pkt_bytes(k);
		if (last)
			last->next = k;
		else
			first = k;
		last = k;
		off += n;
	} while (off < len);
	last->done = done;
	last->arg = arg;
	if (s->q_tail)
		s->q_tail->next = first;
	else
		s->q = first;
	s->q_tail = last;
	if (!s->unsent)
		s->unsent = first;
	s->snd_nxt = seq;
	s->q_bytes += bytes;
	WP_CNT_ADD(msgs_tx, 1);
	WP_CNT_ADD(bytes_tx, WP_FRAME_HDR + len);
	wp_ctx_mark_dirty(ep);
	return 0;
}

/* Release every queued packet: completions fail with status (deferred). */
static void q_drop(struct wp_ep *ep, int status)
{
	struct xsk_ep *s = xep(ep);

	while (s->q) {
		struct xsk_pkt *k = s->q;

		s->q = k->next;
		if (k->done)
			wp_defer(ep->ctx, k->done, k->arg, status);
		free(k);
	}
	s->q_tail = s->unsent = NULL;
	s->q_bytes = 0;
}

/* ---- receive ----------------------------------------------------------- */

static void linger_end(struct wp_ep *ep, struct xsk_ep *s, int status);

static void ack_upto(struct xsk_ctx *xc, struct xsk_ep *s, uint32_t ack, uint64_t now)
{
	uint32_t adv = ack - s->snd_una;

	if (adv == 0 || adv > s->snd_nxt - s->snd_una)
		return; /* old or bogus */
	while (s->q && s->q->seq - s->snd_una < adv) {
		struct xsk_pkt *k = s->q;

		s->q = k->next;
		if (s->unsent == k)
			s->unsent = k->next;
		s->q_bytes -= pkt_bytes(k);
		if (k->done)
			k->done(k->arg, 0); /* the whole message is acked */
		free(k);
	}
	if (!s->q)
		s->q_tail = NULL;
	s->snd_una = ack;
	s->rto_us = XSK_RTO_MIN_US;
	s->rto_at = 0;
	if (s->linger && s->snd_una == s->snd_nxt) {
		linger_end(s->ep, s, 0); /* our FIN is acked */
		return;
	}
	if (s->snd_una != s->snd_nxt && (!s->unsent || s->unsent->seq != s->snd_una))
		arm_rto(xc, s, now);
	if (s->unsent) /* the window opened: whoever acked, the burst goes on */
		wp_ctx_mark_dirty(s->ep);
}

static void sess_fail(struct wp_ep *ep, int err)
{
	struct xsk_ep *s = xep(ep);

	sess_del(xctx(ep->ctx), s);
	wp_conn_fail(ep, err);
}

/* A closed session's linger ends: everything acked (status 0), or the peer
 * gone; the hold on the endpoint goes, and the context frees it. */
static void linger_end(struct wp_ep *ep, struct xsk_ep *s, int status)
{
	s->linger = false;
	sess_del(xctx(ep->ctx), s);
	q_drop(ep, status);
	if (ep->io_inflight)
		ep->io_inflight--;
}

/* The session is over: a lingering one ends, an open one fails. */
static void sess_gone(struct wp_ep *ep, int err)
{
	struct xsk_ep *s = xep(ep);

	if (s->linger)
		linger_end(ep, s, err);
	else
		sess_fail(ep, err);
}

/*
 * Reassembly memory is the context's receive budget (docs/limits.md), as a
 * stream path's assembly is: a message of several packets claims its whole
 * length when its first packet arrives in order. No room: the packet is not
 * taken (the peer sends it again after its RTO), counted in
 * rx_budget_pauses. A started message must complete within the context's
 * frame_timeout_ms (timers), so a peer cannot sit on its claim.
 */
static bool asm_claim(struct wp_ctx *ctx, struct xsk_ep *s, uint32_t len)
{
	struct wp_rx_budget *b = &ctx->lim.budget;
	uint64_t lim = len > WP_RX_SMALL ? b->big_limit : b->limit;

	if (b->claimed + len > lim)
		return false;
	b->claimed += len;
	b->used += len;
	s->asm_claim = len;
	return true;
}

static void asm_release(struct wp_ctx *ctx, struct xsk_ep *s)
{
	struct wp_rx_budget *b = &ctx->lim.budget;

	if (s->asm_claim) {
		b->claimed -= s->asm_claim;
		b->used -= s->asm_claim;
		b->freed++;
		s->asm_claim = 0;
	}
	free(s->asm_buf);
	s->asm_buf = NULL;
}

/* A data packet in order: deliver it whole, in place, or assemble. */
static int rx_data(struct wp_ep *ep, struct xsk_ep *s, const uint8_t *hdr, const uint8_t *frag,
		   uint32_t n, uint32_t msg_len, uint32_t off)
{
	struct wp_frame_hdr h;
	int reason = 0, ret;

	ret = wp_frame_decode(hdr, WP_FRAME_HDR, ep->ctx->o.max_frame + XSK_PREFIX, &h, &reason);
	if (ret != (int)WP_FRAME_HDR || msg_len > ep->ctx->o.max_frame || off + n > msg_len) {
		WP_CNT_ADD(bad_frames[ret < 0 ? reason : WP_BAD_TOO_BIG], 1);
		sess_fail(ep, -EPROTO);
		return 1;
	}
	h.len = msg_len;
	WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + n);
	if (off == 0 && n == msg_len)
		return wp_conn_deliver(ep, &h, frag); /* in place: the UMEM frame */
	if (off == 0) {                               /* claimed by rx_pkt */
		s->asm_buf = malloc(msg_len);
		if (!s->asm_buf) {
			sess_fail(ep, -ENOMEM);
			return 1;
		}
		s->asm_len = msg_len;
		s->asm_have = 0;
		s->asm_since = now_ns();
		if (ep->ctx->o.frame_timeout_ms) /* the timers check it then */
			timer_at(xctx(ep->ctx),
				 s->asm_since + (uint64_t)ep->ctx->o.frame_timeout_ms * 1000000 +
					 1);
	}
	if (!s->asm_buf || off != s->asm_have || msg_len != s->asm_len) {
		WP_CNT_ADD(bad_frames[WP_BAD_TOO_BIG], 1);
		sess_fail(ep, -EPROTO);
		return 1;
	}
	memcpy(s->asm_buf + off, frag, n);
	WP_CNT_ADD(bytes_copied, n);
	s->asm_have += n;
	if (s->asm_have < s->asm_len)
		return 0;
	{
		uint8_t *m = s->asm_buf;

		s->asm_buf = NULL;
		ret = wp_conn_deliver(ep, &h, m);
		free(m);
		asm_release(ep->ctx, s); /* the claim (a close released it already) */
	}
	return ret;
}

/* A bundle's records after its first message: each a frame header (len =
 * its payload) and the whole payload, delivered in place. Delivered even if
 * a callback pauses input: the packet's sequence number is taken, and what
 * is left of it is at most one packet. Every record must carry the tenant of
 * the packet's first header (hdr): that is the one the XDP program judged,
 * and the one a keyed session's seal names. Nonzero when the session ended. */
static int rx_bundle(struct wp_ep *ep, const uint8_t *hdr, const uint8_t *p, uint32_t n)
{
	uint32_t tenant = get32(hdr + 8);

	while (n) {
		struct wp_frame_hdr h;
		int reason = WP_BAD_TRUNCATED, ret;

		ret = n < WP_FRAME_HDR
			      ? -EPROTO
			      : wp_frame_decode(p, WP_FRAME_HDR, ep->ctx->o.max_frame, &h, &reason);
		if (ret == (int)WP_FRAME_HDR && h.tenant != tenant) {
			ret = -EPROTO;
			reason = WP_BAD_AUTH;
		}
		if (ret != (int)WP_FRAME_HDR || h.len > n - WP_FRAME_HDR) {
			WP_CNT_ADD(bad_frames[ret < 0 ? reason : WP_BAD_TRUNCATED], 1);
			sess_fail(ep, -EPROTO);
			return 1;
		}
		WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + h.len);
		if (wp_conn_deliver(ep, &h, p + WP_FRAME_HDR) || ep->state != WP_EPS_OPEN)
			return 1;
		p += WP_FRAME_HDR + h.len;
		n -= WP_FRAME_HDR + h.len;
	}
	return 0;
}

/* A SYN refused before any session exists: counted, said once a second, and
 * answered with a plain reset (the client's connect fails at once). */
static void syn_refuse(struct wp_ctx *ctx, const uint8_t *pkt, uint64_t sid, int reason,
		       const char *why, uint32_t tenant)
{
	struct xsk_ctx *xc = ctx->bk;

	xc->st.hs_refused++;
	WP_CNT_ADD(setup_refused[reason], 1);
	wp_log_rl(ctx, WP_RL_REFUSE, WP_LOG_WARN, "xsk: refusing a session of tenant %u: %s",
		  tenant, why);
	rst_to(xc, pkt, sid);
}

/* The server's side of the handshake (the SYN's hello, hs: flags, nonce_c):
 * keys, the server's nonce and proof. The session seals from now on; the
 * client is confirmed by its first sealed datagram. 0 or -errno. */
static int syn_keys(struct wp_ctx *ctx, struct xsk_ep *s, const uint8_t *hs)
{
	struct wp_hello c = { .phase = WP_HELLO_CLIENT, .tenant = s->tenant, .flags = s->hs_flags };
	struct wp_hello v = { .phase = WP_HELLO_SERVER, .tenant = s->tenant, .flags = s->hs_flags };
	struct wp_session_keys k;
	int ret;

	memcpy(s->nonce_c, hs + 4, WP_AUTH_NONCE);
	memcpy(c.nonce, s->nonce_c, WP_AUTH_NONCE);
	ret = wp_auth_random(s->nonce_s, WP_AUTH_NONCE);
	memcpy(v.nonce, s->nonce_s, WP_AUTH_NONCE);
	if (ret == 0)
		ret = wp_hello_keys(s->key, 16, s->nonce_c, s->nonce_s, &k);
	if (ret == 0)
		ret = wp_hello_proof(&k, true, s->tenant, &c, &v, s->proof_s);
	OPENSSL_cleanse(&k, sizeof(k));
	if (ret < 0)
		return ret;
	s->ds = malloc(sizeof(*s->ds));
	if (!s->ds)
		return -ENOMEM;
	ret = wp_dgram_init(s->ds, s->key, s->tenant, s->nonce_c, s->nonce_s, false,
			    s->hs_flags & WP_HELLO_F_CONF);
	if (ret < 0) {
		free(s->ds);
		s->ds = NULL;
		return ret;
	}
	return 0;
}

static void synack_send(struct xsk_ctx *xc, struct xsk_ep *s)
{
	uint8_t hs[XSK_HS_SYNACK];

	put32(hs, s->hs_flags);
	memcpy(hs + 4, s->nonce_s, WP_AUTH_NONCE);
	memcpy(hs + 4 + WP_AUTH_NONCE, s->proof_s, WP_AUTH_HMAC);
	ctl_send_hs(xc, s, XSK_SYNACK, 0, hs, sizeof(hs));
}

/* Wipe what only the handshake needed. */
static void hs_wipe(struct xsk_ep *s)
{
	OPENSSL_cleanse(s->key, sizeof(s->key));
	OPENSSL_cleanse(s->nonce_c, sizeof(s->nonce_c));
	OPENSSL_cleanse(s->nonce_s, sizeof(s->nonce_s));
	OPENSSL_cleanse(s->proof_s, sizeof(s->proof_s));
}

static void rx_syn(struct wp_ctx *ctx, const uint8_t *pkt, const uint8_t *hdr, uint32_t hslen,
		   uint64_t sid, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;
	struct wp_ep *l = xc->listener, *ep;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	const uint8_t *hs = hdr + WP_FRAME_HDR + XSK_PREFIX;
	uint32_t tenant = get32(hdr + 8), flags = 0;
	struct xsk_ep hs_tmp; /* the handshake, before any endpoint exists */
	struct wp_admit adm;
	uint8_t key[16];
	struct xsk_ep *s;
	int ret;

	if (!l) {
		rst_to(xc, pkt, sid); /* no listener (closed): refused at once */
		return;
	}
	if (l->rx_paused)
		return; /* the client sends it again */
	/* A context with a policy takes authenticated sessions only: the SYN
	 * must carry a hello of a tenant in the policy, with its header tag
	 * (XDP checked it too where the program has the policy). */
	if (ctx->guard) {
		if (hslen != XSK_HS_SYN) {
			syn_refuse(ctx, pkt, sid, WP_SETUP_NO_AUTH,
				   "no tenant key (this context has a policy: the client must "
				   "call wp_ep_set_tenant_key)",
				   tenant);
			return;
		}
		if (!ctx->guard->tenant_key || ctx->guard->tenant_key(ctx, tenant, key) < 0) {
			syn_refuse(ctx, pkt, sid, WP_SETUP_NO_KEY, "not in the policy", tenant);
			return;
		}
		if (get64(hdr + 32) != wp_frame_tag(key, hdr)) {
			OPENSSL_cleanse(key, sizeof(key));
			xc->st.hs_refused++; /* a forgery: no answer */
			return;
		}
		flags = get32(hs);
		if (flags & ~WP_HELLO_F__KNOWN) {
			OPENSSL_cleanse(key, sizeof(key));
			syn_refuse(ctx, pkt, sid, WP_SETUP_GARBAGE, "unknown hello flags", tenant);
			return;
		}
		if (!(flags & WP_HELLO_F_CONF) && wp_auth_tenant_confidential(ctx, tenant)) {
			OPENSSL_cleanse(key, sizeof(key));
			syn_refuse(ctx, pkt, sid, WP_SETUP_NO_AUTH,
				   "the tenant must ask for confidentiality (policy: "
				   "confidential)",
				   tenant);
			return;
		}
		memset(&hs_tmp, 0, sizeof(hs_tmp));
		hs_tmp.authn = true;
		hs_tmp.tenant = tenant;
		hs_tmp.hs_flags = flags;
		memcpy(hs_tmp.key, key, sizeof(key));
		OPENSSL_cleanse(key, sizeof(key));
		ret = syn_keys(ctx, &hs_tmp, hs);
		if (ret < 0) {
			hs_wipe(&hs_tmp);
			rst_to(xc, pkt, sid);
			return;
		}
	} else if (hslen) {
		syn_refuse(ctx, pkt, sid, WP_SETUP_NO_KEY,
			   "the client has a tenant key and this context has no policy to "
			   "prove it",
			   tenant);
		return;
	}
	memcpy(&peer.sin_addr, pkt + 26, 4);
	peer.sin_port = htons((uint16_t)(pkt[34] << 8 | pkt[35]));
	if (wp_conn_admit(ctx, (struct sockaddr *)&peer, sizeof(peer), &adm) < 0 ||
	    !(ep = wp_ep_alloc(ctx, &l->cbs))) {
		if (ctx->guard) {
			wp_dgram_fini(hs_tmp.ds);
			free(hs_tmp.ds);
			hs_wipe(&hs_tmp);
		}
		rst_to(xc, pkt, sid);
		return;
	}
	s = xep(ep);
	if (ctx->guard) {
		*s = hs_tmp; /* the keyed session and the handshake's fields */
		hs_wipe(&hs_tmp);
		/* The path's session id is the table's key for handshake and
		 * sealed packets alike; the keys are unique to the nonce pair,
		 * so the id is a lookup key, not a secret (the tag covers it). */
		s->ds->id = sid;
	}
	s->ep = ep;
	s->sid = sid;
	memcpy(s->peer_mac, pkt + 6, 6);
	s->have_mac = true;
	s->peer_ip = peer.sin_addr.s_addr;
	s->peer_port = ntohs(peer.sin_port);
	s->snd_una = s->snd_nxt = s->rcv_nxt = 1;
	s->last_rx = now;
	ep->accepted = true;
	ep->local_port = xc->port;
	wp_conn_admitted(ep, &adm);
	sess_add(xc, s);
	s->opened = true;
	wp_conn_established(ep);
	if (s->authn)
		synack_send(xc, s);
	else
		ctl_send(xc, s, XSK_SYNACK, 0);
	timer_at(xc, now + XSK_PING_NS);
}

/* Server: the client's first sealed datagram opened (keys only it and we
 * can hold, from our fresh nonce): it proved the tenant key. 0, or -1 when
 * the session was refused (conns_per_tenant). */
static int confirm(struct wp_ep *ep, struct xsk_ep *s)
{
	ep->tenant = s->tenant;
	ep->peer_verified = true;
	s->confirmed = true;
	hs_wipe(s);
	if (wp_conn_tenant_bind(ep, s->tenant) < 0) {
		sess_fail(ep, -EUSERS);
		return -1;
	}
	wp_conn_handshake_done(ep);
	wp_log(ep->ctx, WP_LOG_INFO, "xsk: session %llx: tenant %u proved its key%s",
	       (unsigned long long)s->sid, s->tenant, s->ds->encrypt ? " (confidentiality)" : "");
	return 0;
}

/* Client: the SYNACK's hello (flags, nonce_s, proof_s). The server proves
 * first; a wrong proof fails the connect with -EACCES. 0 or < 0. */
static int synack_keys(struct wp_ep *ep, struct xsk_ep *s, const uint8_t *hs, uint32_t hslen)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct wp_hello c = { .phase = WP_HELLO_CLIENT, .tenant = s->tenant, .flags = s->hs_flags };
	struct wp_hello v = { .phase = WP_HELLO_SERVER, .tenant = s->tenant };
	struct wp_session_keys k;
	uint8_t want[WP_AUTH_HMAC];
	int ret;

	if (hslen != XSK_HS_SYNACK) {
		xc->st.hs_bad_proof++;
		wp_log(ep->ctx, WP_LOG_WARN,
		       "xsk: the server answered without proving tenant %u's key", s->tenant);
		return -EACCES;
	}
	v.flags = get32(hs);
	if ((v.flags & ~WP_HELLO_F__KNOWN) || v.flags != s->hs_flags) {
		xc->st.hs_bad_proof++;
		wp_log(ep->ctx, WP_LOG_WARN,
		       "xsk: the server's hello flags %#x differ from ours %#x (confidentiality)",
		       v.flags, s->hs_flags);
		return -EACCES;
	}
	memcpy(c.nonce, s->nonce_c, WP_AUTH_NONCE);
	memcpy(v.nonce, hs + 4, WP_AUTH_NONCE);
	ret = wp_hello_keys(s->key, 16, c.nonce, v.nonce, &k);
	if (ret == 0)
		ret = wp_hello_proof(&k, true, s->tenant, &c, &v, want);
	OPENSSL_cleanse(&k, sizeof(k));
	if (ret < 0)
		return ret;
	if (CRYPTO_memcmp(want, hs + 4 + WP_AUTH_NONCE, WP_AUTH_HMAC)) {
		xc->st.hs_bad_proof++;
		WP_CNT_ADD(bad_frames[WP_BAD_HANDSHAKE], 1);
		wp_log(ep->ctx, WP_LOG_WARN,
		       "xsk: the server's proof of tenant %u's key is wrong (the keys differ)",
		       s->tenant);
		return -EACCES;
	}
	s->ds = malloc(sizeof(*s->ds));
	if (!s->ds)
		return -ENOMEM;
	ret = wp_dgram_init(s->ds, s->key, s->tenant, c.nonce, v.nonce, true,
			    s->hs_flags & WP_HELLO_F_CONF);
	if (ret < 0) {
		free(s->ds);
		s->ds = NULL;
		return ret;
	}
	s->ds->id = s->sid;
	hs_wipe(s);
	ep->peer_verified = true;
	return 0;
}

/* Client: the SYN, with our hello when the endpoint has a tenant key
 * (wp_ep_set_tenant_key, right after wp_connect: the first SYN leaves from
 * the first progress round). Every SYN of a connect carries the same hello. */
static void syn_send(struct xsk_ctx *xc, struct wp_ep *ep, struct xsk_ep *s)
{
	uint8_t hs[XSK_HS_SYN];

	if (!s->authn && ep->guard && ep->guard->ep_key && ep->guard->ep_key(ep, s->key) == 0) {
		if (wp_auth_random(s->nonce_c, WP_AUTH_NONCE) < 0) {
			hs_wipe(s);
			return; /* the next timer tries again */
		}
		s->authn = true;
		s->tenant = ep->tenant;
		s->hs_flags = wp_auth_ep_confidential(ep) ? WP_HELLO_F_CONF : 0;
	}
	if (!s->authn) {
		ctl_send(xc, s, XSK_SYN, 0);
		return;
	}
	put32(hs, s->hs_flags);
	memcpy(hs + 4, s->nonce_c, WP_AUTH_NONCE);
	ctl_send_hs(xc, s, XSK_SYN, 0, hs, sizeof(hs));
}

/* One received datagram (Ethernet frame of len bytes in the UMEM). Returns
 * true when the frame may go back to the fill ring now (always: delivery
 * in place ends with the callback). */
static void rx_pkt(struct wp_ctx *ctx, uint8_t *p, uint32_t len, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;
	const uint8_t *pre;
	uint8_t *hdr;
	uint32_t ihl, ulen, flen, seq, ack, mlen, off, fn, kind;
	bool ctl, sealed = false;
	struct xsk_ep *s;
	struct wp_ep *ep;
	uint64_t sid;

	xc->st.rx_pkts++;
	if (len < XSK_HDRS || p[12] != 0x08 || p[13] != 0x00 || (p[14] >> 4) != 4)
		goto bad;
	ihl = (uint32_t)(p[14] & 0xf) * 4;
	if (ihl < 20 || p[23] != 17 || 14 + ihl + 8 > len || ((p[20] << 8 | p[21]) & 0x3fff))
		goto bad;
	ulen = (uint32_t)(p[14 + ihl + 4] << 8 | p[14 + ihl + 5]);
	if (ulen < 8 || 14 + ihl + ulen > len)
		goto bad;
	hdr = p + 14 + ihl + 8;
	flen = ulen - 8;
	if (flen < WP_FRAME_HDR + XSK_PREFIX || get32(hdr) != WP_FRAME_MAGIC ||
	    hdr[4] != WP_FRAME_VERSION || get32(hdr + 24) != flen - WP_FRAME_HDR)
		goto bad;
	pre = hdr + WP_FRAME_HDR;
	fn = flen - WP_FRAME_HDR - XSK_PREFIX;
	sid = get64(pre);
	s = sess_find(xc, sid);
	ctl = hdr[5] == XSK_T_CTL;
	kind = get32(hdr + 12);
	/* A keyed session takes sealed datagrams only (but for the
	 * handshake's unsealed SYN and SYNACK): opened in place (decrypted
	 * with confidentiality), their payload is the prefix and fragment. */
	if (s && s->ds && !ctl) {
		struct wp_frame_hdr dh;
		const uint8_t *pl;

		if (wp_dgram_open(s->ds, hdr, flen, (uint32_t)xc->mtu, &dh, &pl) < 0)
			return; /* counted by reason in s->ds->st */
		xc->st.opened++;
		if (dh.len < XSK_PREFIX || get64(pl) != sid) {
			xc->st.bad++;
			return;
		}
		pre = pl;
		fn = dh.len - XSK_PREFIX;
		sealed = true;
		ctl = dh.type == WP_FT_SEAL;
		kind = dh.method;
		if (s->ep->accepted && !s->confirmed && confirm(s->ep, s) < 0)
			return;
	}
	seq = get32(pre + 8);
	ack = get32(pre + 12);
	mlen = get32(pre + 16);
	off = get32(pre + 20);
	if (ctl) {
		if (kind == XSK_SYN) {
			if (sealed || (s && !s->ep->accepted)) {
				xc->st.bad++;
			} else if (s && s->authn) {
				/* Our SYNACK was lost: the same hello gets the same
				 * answer until the client's first sealed packet. */
				if (!s->confirmed && fn == XSK_HS_SYN &&
				    get32(hdr + 8) == s->tenant &&
				    !CRYPTO_memcmp(pre + XSK_PREFIX + 4, s->nonce_c,
						   WP_AUTH_NONCE)) {
					synack_send(xc, s);
					s->last_rx = now;
				} else {
					xc->st.unauth_ctl++;
				}
			} else if (s) {
				ctl_send(xc, s, XSK_SYNACK, 0); /* our SYNACK was lost */
				s->last_rx = now;
			} else {
				rx_syn(ctx, p, hdr, fn, sid, now);
			}
			return;
		}
		if (!s) {
			if (kind != XSK_RST && kind != XSK_FIN)
				rst_to(xc, p, sid);
			return;
		}
		ep = s->ep;
		/* Unsealed control on a keyed session: only the SYNACK that
		 * keys it, and a reset before that (the server refused us; a
		 * session id is 64 random bits, unknown off the path). Anyone
		 * else's FIN or RST must not end it. */
		if (s->authn && !sealed &&
		    !(ep->state == WP_EPS_CONNECTING && !s->ds &&
		      (kind == XSK_SYNACK || kind == XSK_RST))) {
			xc->st.unauth_ctl++;
			return;
		}
		s->last_rx = now;
		switch (kind) {
		case XSK_SYNACK:
			if (ep->state == WP_EPS_CONNECTING && s->authn) {
				int ret = synack_keys(ep, s, pre + XSK_PREFIX, fn);

				if (ret < 0) {
					sess_fail(ep, ret);
					break;
				}
				s->ack_due = true; /* sealed: it proves our key */
				wp_ctx_mark_dirty(ep);
			}
			if (ep->state == WP_EPS_CONNECTING) {
				s->syn_since = 0;
				s->rto_at = 0;
				s->rto_us = XSK_RTO_MIN_US;
				s->opened = true;
				wp_conn_established(ep);
				timer_at(xc, now + XSK_PING_NS);
				if (s->unsent)
					wp_ctx_mark_dirty(ep);
			}
			break;
		case XSK_ACK:
			ack_upto(xc, s, ack, now);
			if (s->unsent)
				wp_ctx_mark_dirty(ep);
			break;
		case XSK_NAK:
			/* Go back to the first packet the peer lacks, once per
			 * window (NAKs for the same loss may follow). */
			ack_upto(xc, s, ack, now);
			if (ack == s->snd_una && s->snd_una != s->snd_nxt &&
			    (int32_t)(s->snd_una - s->recover) >= 0) {
				for (struct xsk_pkt *k = s->q; k && k != s->unsent; k = k->next)
					xc->st.retrans++;
				s->unsent = s->q;
				s->recover = s->snd_nxt;
				xc->st.naks++;
				wp_ctx_mark_dirty(ep);
			}
			break;
		case XSK_PING:
			ctl_send(xc, s, XSK_PONG, 0);
			break;
		case XSK_PONG:
			break;
		case XSK_RST:
			s->reset = true;
			sess_gone(ep, ep->state == WP_EPS_CONNECTING ? -ECONNREFUSED : -ECONNRESET);
			break;
		case XSK_FIN:
			/* Numbered after the data: it ends the session only in
			 * order, after everything before it was delivered; a
			 * FIN past a gap waits for the go-back-N that resends
			 * the gap and then it. */
			ack_upto(xc, s, ack, now);
			if (s->fin_rx || (ep->state != WP_EPS_OPEN && !s->linger))
				break;
			if (seq != s->rcv_nxt) {
				if ((int32_t)(seq - s->rcv_nxt) > 0 && s->nak_for != s->rcv_nxt) {
					s->nak_for = s->rcv_nxt;
					s->nak_due = true;
				}
				s->ack_due = true;
				wp_ctx_mark_dirty(ep);
				break;
			}
			s->rcv_nxt++;
			s->fin_rx = true;
			/* acked now: a closed endpoint is not flushed */
			ctl_send(xc, s, XSK_ACK, 0);
			kick(xc);
			if (s->linger)
				break; /* both closed: ours waits for its ack */
			sess_fail(ep, 0);
			break;
		default:
			xc->st.bad++;
		}
		return;
	}
	if (!s) {
		rst_to(xc, p, sid);
		return;
	}
	ep = s->ep;
	if (ep->state != WP_EPS_OPEN) {
		if (s->linger) { /* closed: its data is dropped, its acks count */
			s->last_rx = now;
			ack_upto(xc, s, ack, now);
		}
		return;
	}
	s->last_rx = now;
	ack_upto(xc, s, ack, now);
	if (s->unsent)
		wp_ctx_mark_dirty(ep);
	if (seq != s->rcv_nxt || ep->rx_paused) {
		/* A duplicate (already delivered: dropped, so nothing runs
		 * twice) or ahead of a loss (go-back-N: it comes again). */
		if ((int32_t)(seq - s->rcv_nxt) < 0) {
			xc->st.dups++;
		} else {
			xc->st.ooo++;
			/* A gap: ask for everything from rcv_nxt at once, once
			 * per gap (the timeout covers a lost NAK). */
			if (!ep->rx_paused && s->nak_for != s->rcv_nxt) {
				s->nak_for = s->rcv_nxt;
				s->nak_due = true;
			}
		}
		s->ack_due = true;
		wp_ctx_mark_dirty(ep);
		return;
	}
	if (off == 0 && fn < mlen && mlen <= ctx->o.max_frame) {
		asm_release(ctx, s); /* a message left unfinished: superseded */
		if (!asm_claim(ctx, s, mlen)) {
			WP_CNT_ADD(rx_budget_pauses, 1);
			return; /* not taken: sent again */
		}
	}
	s->rcv_nxt++;
	s->ack_due = true;
	wp_ctx_mark_dirty(ep);
	if (off == 0 && mlen < fn) {
		/* A bundle: whole messages follow the first (bundle_add). */
		if (!rx_data(ep, s, hdr, pre + XSK_PREFIX, mlen, mlen, 0))
			rx_bundle(ep, hdr, pre + XSK_PREFIX + mlen, fn - mlen);
	} else {
		rx_data(ep, s, hdr, pre + XSK_PREFIX, fn, mlen, off);
	}
	return;

bad:
	xc->st.bad++;
}

static int sess_mac(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now);

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
				sess_fail(ep, s->have_mac ? -ETIMEDOUT : -EHOSTUNREACH);
				continue;
			}
			if (s->rto_at && now >= s->rto_at) {
				if (s->have_mac || sess_mac(xc, s, now) == 0)
					syn_send(xc, ep, s);
				s->rto_us = s->rto_us * 2 > XSK_RTO_MAX_US ? XSK_RTO_MAX_US
									   : s->rto_us * 2;
				arm_rto(xc, s, now);
			}
			timer_at(xc, s->rto_at);
			continue;
		}
		if (now - s->last_rx > XSK_DEAD_NS) {
			sess_gone(ep, -ETIMEDOUT);
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
			sess_fail(ep, -ETIMEDOUT);
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
			sess_gone(ep, -ETIMEDOUT);
			continue;
		}
		if (now - s->last_rx > XSK_PING_NS && now - s->last_ping > XSK_PING_NS) {
			ctl_send(xc, s, XSK_PING, 0);
			s->last_ping = now;
		}
		if (s->rto_at && now >= s->rto_at) {
			if (s->rto_us >= XSK_RTO_MAX_US)
				wp_log(ctx, WP_LOG_WARN,
				       "xsk: session %llx stalled: una %u nxt %u unsent %d rcv %u "
				       "free %u txpend %u",
				       (unsigned long long)s->sid, s->snd_una, s->snd_nxt,
				       s->unsent ? (int)s->unsent->seq : -1, s->rcv_nxt, xc->nfree,
				       tx_pending(&xc->q[0]));
			/* Go-back-N: everything unacked leaves again. */
			for (struct xsk_pkt *k = s->q; k && k != s->unsent; k = k->next)
				xc->st.retrans++;
			s->unsent = s->q;
			s->recover = s->snd_nxt;
			s->rto_us = s->rto_us * 2 > XSK_RTO_MAX_US ? XSK_RTO_MAX_US : s->rto_us * 2;
			s->rto_at = 0;
			wp_ctx_mark_dirty(ep);
		}
		if (s->rto_at)
			timer_at(xc, s->rto_at);
		timer_at(xc,
			 s->last_rx + (now - s->last_rx > XSK_PING_NS ? XSK_DEAD_NS : XSK_PING_NS));
		timer_at(xc, now + XSK_PING_NS);
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

static int rx_ring(struct wp_ctx *ctx, struct xsk_q *q, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;
	uint32_t idx, n = xsk_ring_cons__peek(&q->rx, XSK_BATCH, &idx);

	for (uint32_t k = 0; k < n; k++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + k);

		rx_pkt(ctx, xsk_umem__get_data(xc->area, d->addr), d->len, now);
		frame_put(xc, d->addr); /* the callback has returned: lent no more */
	}
	if (n)
		xsk_ring_cons__release(&q->rx, n);
	return (int)n;
}

static bool rx_ready(struct xsk_ctx *xc)
{
	for (uint32_t i = 0; i < xc->nq; i++)
		if (xsk_cons_nb_avail(&xc->q[i].rx, 1))
			return true;
	return false;
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
static int xsk_poll(struct wp_ctx *ctx, int64_t timeout_us)
{
	struct xsk_ctx *xc = ctx->bk;
	uint64_t now = now_ns();
	int n, got = 0;

	if (!xc->up)
		return wp_epoll_wait(ctx, xc->ev, XSK_MAX_Q + 1, timeout_us);
	if (xc->unkicked)
		kick(xc);
	comp_reap(xc);
	fill_topup(xc);
	timeout_us = timer_cap(xc, timeout_us, now);
	/* Anything already in a ring: no sleep. */
	if (rx_ready(xc))
		timeout_us = 0;
	if (xc->tx_blocked || tx_pending(&xc->q[0]))
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

		while ((k = rx_ring(ctx, &xc->q[i], now)) > 0)
			got += k;
	}
	comp_reap(xc);
	fill_topup(xc);
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
	kick(xc);
	return got;
}

static int xsk_arm(struct wp_ctx *ctx, int64_t *timeout_us)
{
	struct xsk_ctx *xc = ctx->bk;
	uint64_t now = now_ns();

	if (xc->up) {
		if (xc->unkicked)
			kick(xc);
		if (rx_ready(xc))
			return -EAGAIN;
		if (xc->next_timer && now >= xc->next_timer)
			return -EAGAIN;
		*timeout_us = timer_cap(xc, *timeout_us, now);
		if ((xc->tx_blocked || tx_pending(&xc->q[0])) &&
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

static int xsk_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
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
	ret = ctx_setup(ep->ctx, sin->sin_addr.s_addr, ntohs(sin->sin_port), -1);
	if (ret < 0)
		return ret;
	s->ep = ep;
	s->listener = true;
	xc->listener = ep;
	ep->local_port = xc->port;
	ep->state = WP_EPS_LISTEN;
	return 0;
}

/*
 * The peer's MAC from the kernel's neighbour table, asked over rtnetlink
 * (RTM_GETNEIGH, a dump of the IPv4 entries) on the context's netlink
 * socket: it was opened at set-up, so it sees the namespace of the
 * interface (a socket keeps the namespace it was made in; /proc/net/arp
 * shows the namespace of the process's leader, not of the calling thread).
 * 0 and mac set, -EAGAIN while there is no usable entry (ARP in progress),
 * or -errno.
 */
static int neigh_lookup(struct xsk_ctx *xc, uint32_t ip, uint8_t mac[6])
{
	struct {
		struct nlmsghdr nh;
		struct ndmsg nd;
	} req = { .nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
			  .nlmsg_type = RTM_GETNEIGH,
			  .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			  .nlmsg_seq = ++xc->nl_seq },
		  .nd = { .ndm_family = AF_INET, .ndm_ifindex = xc->ifindex } };
	static __thread uint8_t buf[16384] __attribute__((aligned(4)));
	int ret = -EAGAIN;

	if (xc->nl_fd < 0)
		return -ENOTSOCK;
	if (send(xc->nl_fd, &req, req.nh.nlmsg_len, 0) < 0)
		return -errno;
	WP_SYSCALL(WP_SYS_WRITE);
	for (;;) {
		ssize_t n = recv(xc->nl_fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nh;

		WP_SYSCALL(WP_SYS_READ);
		if (n < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			struct ndmsg *nd = NLMSG_DATA(nh);
			struct rtattr *rta;
			int alen;
			const uint8_t *dst = NULL, *ll = NULL;

			if (nh->nlmsg_seq != xc->nl_seq)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				return ret;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);

				return e->error ? e->error : ret;
			}
			if (nh->nlmsg_type != RTM_NEWNEIGH || ret == 0 ||
			    nh->nlmsg_len < NLMSG_LENGTH(sizeof(*nd)) ||
			    nd->ndm_ifindex != xc->ifindex ||
			    !(nd->ndm_state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE |
					       NUD_PERMANENT | NUD_NOARP)))
				continue;
			alen = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*nd)));
			for (rta = (struct rtattr *)((uint8_t *)nd + NLMSG_ALIGN(sizeof(*nd)));
			     RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
				if (rta->rta_type == NDA_DST && RTA_PAYLOAD(rta) == 4)
					dst = RTA_DATA(rta);
				else if (rta->rta_type == NDA_LLADDR && RTA_PAYLOAD(rta) == 6)
					ll = RTA_DATA(rta);
			}
			if (dst && ll && !memcmp(dst, &ip, 4)) {
				memcpy(mac, ll, 6);
				ret = 0; /* the dump still runs to NLMSG_DONE */
			}
		}
	}
}

/* Make the kernel resolve the peer (a datagram to its discard port sends
 * the ARP request), never waiting for the answer. */
static void neigh_poke(uint32_t ip)
{
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	d.sin_addr.s_addr = ip;
	if (fd >= 0) {
		sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&d, sizeof(d));
		close(fd);
	}
}

/* The MAC of a connecting session, from the timers: found, or asked again
 * (the SYN waits for it within the connect's 3 s). 0 or -EAGAIN. */
static int sess_mac(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now)
{
	int ret = neigh_lookup(xc, s->peer_ip, s->peer_mac);

	if (ret == 0) {
		s->have_mac = true;
		return 0;
	}
	if (now - s->poked_at > 250000000ull) { /* the kernel's ARP retry is 1 s */
		neigh_poke(s->peer_ip);
		s->poked_at = now;
	}
	return -EAGAIN;
}

static int xsk_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen)
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
		ret = ctx_setup(ep->ctx, me.sin_addr.s_addr, 0, fd); /* fd holds the port */
		if (ret < 0)
			return ret;
	}
	s->ep = ep;
	s->peer_ip = sin->sin_addr.s_addr;
	s->peer_port = ntohs(sin->sin_port);
	/* The MAC: in the table already (a few us), or the kernel is asked
	 * and the SYN waits for the answer (timers); never blocking here. */
	neigh_poke(s->peer_ip);
	s->poked_at = now_ns();
	s->have_mac = neigh_lookup(xc, s->peer_ip, s->peer_mac) == 0;
	do {
		if (getrandom(&s->sid, sizeof(s->sid), 0) != sizeof(s->sid))
			return -EIO;
	} while (!s->sid || sess_find(xc, s->sid));
	s->snd_una = s->snd_nxt = s->rcv_nxt = 1;
	s->syn_since = s->last_rx = now_ns();
	ep->local_port = xc->port;
	ep->state = WP_EPS_CONNECTING;
	sess_add(xc, s);
	/* The SYN leaves from the first timer run (never inside this call). */
	s->rto_us = XSK_RTO_MIN_US / 2;
	s->rto_at = s->syn_since;
	timer_at(xc, s->rto_at);
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

static void xsk_close(struct wp_ep *ep)
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
		linger_end(ep, s, -ECONNABORTED);
		return;
	}
	/* Closed by its owner: the unacknowledged tail and a FIN after it are
	 * sent reliably (retransmitted until acked, or the liveness limit),
	 * so the peer reads everything, then an orderly close (0). */
	if (s->in_table && xc->up && s->opened && !s->reset && !s->fin_rx &&
	    ep->err == -ECONNABORTED && q_detach(ep, s) == 0 && fin_queue(s) == 0) {
		s->linger = true;
		s->una_at = 0;
		asm_release(ep->ctx, s); /* a closed session delivers nothing more */
		ep->io_inflight++;       /* held until linger_end */
		xsk_flush(ep);
		return;
	}
	if (s->in_table)
		sess_del(xc, s);
	q_drop(ep, ep->err ? ep->err : -ECONNABORTED);
	asm_release(ep->ctx, s);
}

static void xsk_ep_free(struct wp_ep *ep)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);

	if (xc)
		xsk_close(ep);
	q_drop(ep, -ECONNABORTED);
	asm_release(ep->ctx, s);
	if (s->ds) {
		/* the session's drops stay in the context's counters */
		for (unsigned r = 0; xc && r < WP_DGRAM_DROP__COUNT; r++)
			xc->st.drop[r] += s->ds->st.drop[r];
		wp_dgram_fini(s->ds);
		free(s->ds);
		s->ds = NULL;
	}
	hs_wipe(s);
}

/* Input stops for real: a paused session drops data (the peer sends it
 * again), a paused listener ignores SYNs (the client sends them again). */
static void xsk_rx_pause(struct wp_ep *ep, bool pause)
{
	if (!pause)
		wp_ctx_mark_dirty(ep);
}

static int xsk_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		     uint32_t max)
{
	const struct xsk_ctx *xc = ctx->bk;

	if (!xc || !xc->area)
		return 0;
	if (max) {
		out[0].addr = xc->area;
		out[0].len = (size_t)xc->nframes * XSK_FRAME;
	}
	return 1;
}

/* What the kernel dropped between the program's redirect and our rings
 * (rx ring full, no fill frame, invalid descriptors), all queues. */
static uint64_t ring_drops(const struct xsk_ctx *xc)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < xc->nq; i++) {
		struct xdp_statistics st;
		socklen_t sl = sizeof(st);

		memset(&st, 0, sizeof(st));
		if (getsockopt(xc->q[i].fd, SOL_XDP, XDP_STATISTICS, &st, &sl) == 0)
			n += st.rx_dropped + st.rx_invalid_descs + st.rx_ring_full;
	}
	return n;
}

/* Datagram authentication v2: what XDP dropped before the redirect (the
 * program's reasons: source in no tenant's prefixes, port, not one frame,
 * another tenant's frame, wrong SipHash tag), and what the sessions dropped
 * after it (dgram.h's reasons, live and freed sessions together). */
static void xsk_explain_auth(struct wp_ctx *ctx, char *buf, size_t len)
{
	static const unsigned xr[] = { WPP_R_NO_TENANT, WPP_R_PORT, WPP_R_BAD_FRAME,
				       WPP_R_TENANT_MISMATCH, WPP_R_AUTH };
	static const char *const xn[] = { "no_tenant", "port", "bad_frame", "tenant", "auth" };
	struct xsk_ctx *xc = ctx->bk;
	uint64_t drop[WP_DGRAM_DROP__COUNT];
	uint32_t keyed = 0, conf = 0;
	size_t at;

	memcpy(drop, xc->st.drop, sizeof(drop));
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		const struct wp_dgram_session *ds = xep(ep)->ds;

		if (!ds || xep(ep)->listener)
			continue;
		keyed += ep->state == WP_EPS_OPEN;
		conf += ep->state == WP_EPS_OPEN && ds->encrypt;
		for (unsigned r = 0; r < WP_DGRAM_DROP__COUNT; r++)
			drop[r] += ds->st.drop[r];
	}
	at = (size_t)snprintf(buf, len, "; rx_budget_claimed=%llu",
			      (unsigned long long)ctx->lim.budget.claimed);
	if (at >= len)
		return;
	at += (size_t)snprintf(buf + at, len - at,
			       "; datagram auth v2 %s: keyed=%u confidential=%u sealed=%llu "
			       "opened=%llu hs_refused=%llu hs_bad_proof=%llu unauth_ctl=%llu",
			       wp_auth_policy(ctx) ? "required (policy in XDP)" : "when keyed",
			       keyed, conf, (unsigned long long)xc->st.sealed,
			       (unsigned long long)xc->st.opened,
			       (unsigned long long)xc->st.hs_refused,
			       (unsigned long long)xc->st.hs_bad_proof,
			       (unsigned long long)xc->st.unauth_ctl);
	for (unsigned r = 0; r < WP_DGRAM_DROP__COUNT && at < len; r++)
		at += (size_t)snprintf(buf + at, len - at, " drop_%s=%llu", wp_dgram_drop_name(r),
				       (unsigned long long)drop[r]);
	for (unsigned i = 0; wp_auth_policy(ctx) && i < sizeof(xr) / sizeof(xr[0]) && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, " xdp_%s=%lld", xn[i],
				       (long long)wpp_xsk_count(&xc->prog, xr[i]));
}

static void xsk_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct xsk_ctx *xc = ctx->bk;
	int64_t red;

	if (!xc || !xc->up) {
		snprintf(buf, len,
			 "AF_XDP over UDP (not set up yet: the first listen/connect "
			 "picks the interface)");
		return;
	}
	red = wpp_xsk_redirected(&xc->prog);
	snprintf(buf, len,
		 "AF_XDP on %s port %u, %u queue(s), %s%s%s%s, %s XDP%s%s (prog id %u, the front "
		 "door's program, one per interface), need_wakeup, busy poll %s; UMEM %u x %u B "
		 "is the receive pool; go-back-N window %u, RTO %u-%u ms; rx_pkts=%llu "
		 "tx_pkts=%llu redirected=%lld ring_drops=%llu retrans=%llu naks=%llu dups=%llu "
		 "ooo=%llu bad=%llu faults=%llu resets=%llu bundled=%llu",
		 xc->ifname, xc->port, xc->nq, xc->zerocopy ? "ZERO COPY" : "copy mode",
		 !xc->zerocopy && xc->zc_err ? " (XDP_ZEROCOPY refused: " : "",
		 !xc->zerocopy && xc->zc_err ? strerror(xc->zc_err) : "",
		 !xc->zerocopy && xc->zc_err ? ")" : "", xc->prog.native ? "native" : "GENERIC",
		 !xc->prog.native && xc->prog.native_err ? ": native refused, " : "",
		 !xc->prog.native && xc->prog.native_err ? strerror(xc->prog.native_err) : "",
		 xc->prog.prog_id,
		 xc->busy       ? "on"
		 : xc->busy_err ? "refused"
				: "off",
		 xc->nframes, XSK_FRAME, XSK_WIN, XSK_RTO_MIN_US / 1000, XSK_RTO_MAX_US / 1000,
		 (unsigned long long)xc->st.rx_pkts, (unsigned long long)xc->st.tx_pkts,
		 (long long)red, (unsigned long long)ring_drops(xc),
		 (unsigned long long)xc->st.retrans, (unsigned long long)xc->st.naks,
		 (unsigned long long)xc->st.dups, (unsigned long long)xc->st.ooo,
		 (unsigned long long)xc->st.bad, (unsigned long long)xc->st.faults,
		 (unsigned long long)xc->st.resets, (unsigned long long)xc->st.bundled);
	xsk_explain_auth(ctx, buf + strlen(buf), len - strlen(buf));
}

static const struct wp_fast_ops xsk_fast = { .send = xsk_send, .flush = xsk_flush };

const struct wp_backend_ops wp_xsk_ops = {
	.name = "xsk",
	/* Not WP_CAP_INET: host:port names a UDP port, never a TCP peer. */
	.caps = WP_CAP_BATCH | WP_CAP_BUSY_POLL,
	.fast = &xsk_fast,
	.available = xsk_available,
	.probe = xsk_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = xsk_init,
	.fini = xsk_fini,
	.listen = xsk_listen,
	.connect = xsk_connect,
	.close = xsk_close,
	.poll = xsk_poll,
	.explain = xsk_explain,
	.mem_register = wp_no_mem_register,
	.mem_unregister = wp_no_mem_unregister,
	.ep_size = sizeof(struct xsk_ep),
	.ep_init = wp_no_ep_init,
	.ep_free = xsk_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = wp_no_mr_exported,
	.xfer_direct = wp_no_xfer_direct,
	.pools = xsk_pools,
	.rx_pause = xsk_rx_pause,
	.fd = wp_epoll_fd,
	.arm = xsk_arm,
};
