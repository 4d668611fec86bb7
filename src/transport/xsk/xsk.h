/* SPDX-License-Identifier: MIT */
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
 * go-back-N on a retransmission timeout (10 ms doubling to 200 ms); the
 * receiver delivers in order and drops duplicates by sequence number, so a
 * retransmitted request is never executed twice (at most once; in fact
 * exactly once while the session lives). At most cwnd packets are in
 * flight per session (the credit window): XSK_WIN at first, one more per
 * packet acked up to XSK_WIN_MAX, halved (not below XSK_WIN) by a NAK,
 * back to XSK_WIN after a retransmission timeout. Liveness: a peer silent for 1 s
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
 * session is sealed (the prefix and fragment are the dgram payload). The
 * handshake packets' header tag binds the session id (req_id) and a keyed
 * digest of the hello (aux). Unproved sessions are bounded (half-open). A
 * context with a policy takes keyed sessions only, and its program carries
 * the rules, so XDP drops forged and foreign datagrams before the redirect.
 *
 * Test-only fault injection: WP_XSK_TEST_FAULTS="drop=P,dup=P,reorder=P,
 * corrupt=P,plainctl=P,ctldrop=P,ctldup=P,seed=N" (P in percent) makes the
 * transmit side drop, duplicate or swap data packets (the FIN among them)
 * for real, drop or duplicate control packets (SYN, SYNACK, ACK, NAK, PING,
 * PONG, RST), and on a keyed session flip a sealed byte or follow a data
 * packet with an unsealed RST or FIN signed with the tenant key
 * (tests/netns/xsk_suite.sh).
 *
 * The files: xsk.h (this: the shared structs, constants and the calls the
 * files make of each other), setup.c (the context: interface, port,
 * program, UMEM and sockets, the fill and completion rings), neigh.c (the
 * peer's MAC over rtnetlink), tx.c (packets out: tx_frame, kicks, bundles,
 * the send queue and the test faults), rx.c (packets in: rx_pkt, in-order
 * delivery, reassembly, bundles, acks), session.c (the session table,
 * timers, the progress round, listen, connect, close and linger), auth.c
 * (datagram authentication v2: the seal, the handshake on SYN/SYNACK, the
 * confirmation) and explain.c (availability, the probe, explain, the ops
 * table).
 */
#ifndef WP_XSK_H
#define WP_XSK_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include <xdp/xsk.h>

#include "auth/dgram.h"
#include "auth/hello.h"
#include "core/core.h"
#include "policy/policy.h"
#include "policy/siphash.h"
#include "transport/xsk/wire.h"

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
#define XSK_WIN 32u               /* packets in flight per session: at first, and the floor */
#define XSK_WIN_MAX 256u          /* ... grown with acks up to this */
#define XSK_QMAX (64u << 20)      /* bytes queued per session before -ENOBUFS */
#define XSK_RTO_MIN_US 10000u     /* first retransmission timeout */
#define XSK_RTO_MAX_US 200000u    /* backoff ceiling */
#define XSK_PING_NS 1000000000ull /* a peer silent this long is pinged */
#define XSK_DEAD_NS 3000000000ull /* ... and this long is gone */
#define XSK_HASH 256u
/* Keyed sessions a server accepted whose client has not proved its key yet
 * (no sealed datagram): at most this many per context and per tenant; the
 * oldest goes for a new one. Each also ends XSK_DEAD_NS after its SYN. */
#define XSK_HALF_OPEN_MAX 256u
#define XSK_HALF_OPEN_TENANT 64u
#define XSK_SYNACK_GAP_NS 50000000ull /* a lost SYNACK is sent again at most this often */
/* Answers to packets of no session we know (resets), per context: a token
 * bucket, so the path cannot be made a reflector. */
#define XSK_REPLY_RATE 1000u /* per second */
#define XSK_REPLY_BURST 64u

enum xsk_ctl { XSK_SYN = 1, XSK_SYNACK, XSK_ACK, XSK_FIN, XSK_RST, XSK_PING, XSK_PONG, XSK_NAK };
/* An ACK's (or NAK's) message-length field: the receiver could not take the
 * next packet (its input paused, its receive budget spent). The sender
 * keeps the session however long that lasts (its RTO resends probe). */
#define XSK_ACK_BLOCKED 1u

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
	uint32_t snd_max;          /* past the highest seq ever transmitted: acks stop here */
	uint32_t cwnd;             /* packets that may be in flight (XSK_WIN..XSK_WIN_MAX) */
	size_t q_bytes;
	uint64_t rto_at; /* 0: no timer */
	uint32_t rto_us;
	uint64_t syn_since;
	/* receive */
	uint32_t rcv_nxt;
	uint32_t nak_for; /* rcv_nxt a NAK was sent for (0: none) */
	uint32_t recover; /* go-back after a NAK: not again below this seq */
	bool ack_due, nak_due;
	bool blocked_due; /* the next ACK says XSK_ACK_BLOCKED */
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
	/* server: on the context's half-open list (keyed, not confirmed) */
	bool half_open;
	struct xsk_ep *ho_prev, *ho_next;
	uint64_t synack_at; /* the last SYNACK sent (again) */
	bool bad_proof;     /* client: a SYNACK whose proof did not check was ignored */
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
	struct xsk_ep *ho_head, *ho_tail; /* half-open sessions, oldest first */
	uint32_t n_half_open;
	uint64_t reply_at; /* the reply bucket's last refill */
	uint32_t reply_tokens;
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
	uint32_t f_ctldrop, f_ctldup; /* control packets (ACK, NAK, PING, ..., SYN) */
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
		/* SYNs whose tagged header does not bind their session id and
		 * hello (a replay with either changed), half-open sessions
		 * evicted for newer ones and expired unproved, answers not
		 * sent (the reply bucket was empty) */
		uint64_t hs_unbound, hs_evicted, hs_expired, reply_limited;
		uint32_t cwnd_peak; /* the largest window any session reached */
	} st;
};

static inline struct xsk_ep *xep(const struct wp_ep *ep)
{
	return ep->bk;
}

static inline struct xsk_ctx *xctx(const struct wp_ctx *ctx)
{
	return ctx->bk;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* setup.c */
int xsk_init(struct wp_ctx *ctx);
void xsk_fini(struct wp_ctx *ctx);
int xsk_ctx_setup(struct wp_ctx *ctx, uint32_t local, uint16_t port, int resv);
int xsk_policy_changed(struct wp_ctx *ctx);
void xsk_frame_put(struct xsk_ctx *xc, uint64_t addr);
void xsk_fill_topup(struct xsk_ctx *xc);
void xsk_comp_reap(struct xsk_ctx *xc);

/* neigh.c */
int xsk_neigh_lookup(struct xsk_ctx *xc, uint32_t ip, uint8_t mac[6]);
void xsk_neigh_poke(uint32_t ip);
int xsk_sess_mac(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now);

/* tx.c */
uint32_t xsk_tx_pending(const struct xsk_q *q);
void xsk_kick(struct xsk_ctx *xc);
void xsk_ctl_send_hs(struct xsk_ctx *xc, struct xsk_ep *s, enum xsk_ctl kind, uint32_t seq,
		     const uint8_t *hs, uint32_t hslen);
void xsk_ctl_send(struct xsk_ctx *xc, struct xsk_ep *s, enum xsk_ctl kind, uint32_t seq);
void xsk_rst_to(struct xsk_ctx *xc, const uint8_t *pkt, uint64_t sid);
bool xsk_reply_ok(struct xsk_ctx *xc, uint64_t now);
void xsk_arm_rto(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now);
void xsk_flush(struct wp_ep *ep);
size_t xsk_pkt_bytes(const struct xsk_pkt *k);
int xsk_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
	     wp_done_fn done, void *arg);
void xsk_q_drop(struct wp_ep *ep, int status);

/* rx.c */
void xsk_asm_release(struct wp_ctx *ctx, struct xsk_ep *s);
int xsk_rx_ring(struct wp_ctx *ctx, struct xsk_q *q, uint64_t now);
bool xsk_rx_ready(struct xsk_ctx *xc);

/* session.c */
struct xsk_ep *xsk_sess_find(struct xsk_ctx *xc, uint64_t sid);
void xsk_sess_add(struct xsk_ctx *xc, struct xsk_ep *s);
void xsk_timer_at(struct xsk_ctx *xc, uint64_t t);
void xsk_half_open_add(struct xsk_ctx *xc, struct xsk_ep *s);
void xsk_half_open_del(struct xsk_ctx *xc, struct xsk_ep *s);
void xsk_sess_fail(struct wp_ep *ep, int err);
void xsk_linger_end(struct wp_ep *ep, struct xsk_ep *s, int status);
void xsk_sess_gone(struct wp_ep *ep, int err);
int xsk_poll(struct wp_ctx *ctx, int64_t timeout_us);
int xsk_arm(struct wp_ctx *ctx, int64_t *timeout_us);
int xsk_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
int xsk_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
void xsk_close(struct wp_ep *ep);
void xsk_ep_free(struct wp_ep *ep);
void xsk_rx_pause(struct wp_ep *ep, bool pause);

/* auth.c */
int xsk_seal_into(struct xsk_ctx *xc, struct xsk_ep *s, const uint8_t *body, uint32_t n,
		  const uint8_t *frag, uint32_t fn, uint8_t *out);
void xsk_synack_send(struct xsk_ctx *xc, struct xsk_ep *s);
void xsk_hs_wipe(struct xsk_ep *s);
uint32_t xsk_hs_digest(const uint8_t key[16], const uint8_t *hs, uint32_t hslen);
void xsk_rx_syn(struct wp_ctx *ctx, const uint8_t *pkt, const uint8_t *hdr, uint32_t hslen,
		uint64_t sid, uint64_t now);
int xsk_confirm(struct wp_ep *ep, struct xsk_ep *s);
int xsk_synack_keys(struct wp_ep *ep, struct xsk_ep *s, const uint8_t *hs, uint32_t hslen);
void xsk_syn_send(struct xsk_ctx *xc, struct wp_ep *ep, struct xsk_ep *s);

#endif
