// SPDX-License-Identifier: MIT
/*
 * The xsk path's receive side: one datagram from the rx ring (rx_pkt:
 * checks, the seal opened on a keyed session, control packets, in-order
 * delivery), acks, reassembly on the context's receive budget, and a
 * bundle's records delivered in place.
 */
#include <errno.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "xsk.h"

/* ---- receive ----------------------------------------------------------- */

static void ack_upto(struct xsk_ctx *xc, struct xsk_ep *s, uint32_t ack, uint64_t now)
{
	uint32_t adv = ack - s->snd_una;

	/* Old, or bogus: past what was ever transmitted (a packet still
	 * queued was never seen, so it cannot be acknowledged). */
	if (adv == 0 || adv > s->snd_max - s->snd_una)
		return;
	while (s->q && s->q->seq - s->snd_una < adv) {
		struct xsk_pkt *k = s->q;

		s->q = k->next;
		if (s->unsent == k)
			s->unsent = k->next;
		s->q_bytes -= xsk_pkt_bytes(k);
		if (k->done)
			k->done(k->arg, 0); /* the whole message is acked */
		free(k);
	}
	if (!s->q)
		s->q_tail = NULL;
	s->snd_una = ack;
	/* The window grows by what was acked (doubling each round trip while
	 * nothing is lost), up to XSK_WIN_MAX. */
	s->cwnd = s->cwnd + adv > XSK_WIN_MAX ? XSK_WIN_MAX : s->cwnd + adv;
	if (s->cwnd > xc->st.cwnd_peak)
		xc->st.cwnd_peak = s->cwnd;
	s->rto_us = XSK_RTO_MIN_US;
	s->rto_at = 0;
	if (s->linger && s->snd_una == s->snd_nxt) {
		xsk_linger_end(s->ep, s, 0); /* our FIN is acked */
		return;
	}
	if (s->snd_una != s->snd_nxt && (!s->unsent || s->unsent->seq != s->snd_una))
		xsk_arm_rto(xc, s, now);
	if (s->unsent) /* the window opened: whoever acked, the burst goes on */
		wp_ctx_mark_dirty(s->ep);
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

void xsk_asm_release(struct wp_ctx *ctx, struct xsk_ep *s)
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

	/* The lengths were checked (xsk_data_kind): n bytes at off lie
	 * within msg_len, which is within max_frame. */
	ret = wp_frame_decode(hdr, WP_FRAME_HDR, ep->ctx->o.max_frame + XSK_PREFIX, &h, &reason);
	if (ret != (int)WP_FRAME_HDR) {
		WP_CNT_ADD(bad_frames[ret < 0 ? reason : WP_BAD_TOO_BIG], 1);
		xsk_sess_fail(ep, -EPROTO);
		return 1;
	}
	h.len = msg_len;
	WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + n);
	if (off == 0 && n == msg_len)
		return wp_conn_deliver(ep, &h, frag); /* in place: the UMEM frame */
	if (off == 0) {                               /* claimed by rx_pkt */
		s->asm_buf = malloc(msg_len);
		if (!s->asm_buf) {
			xsk_sess_fail(ep, -ENOMEM);
			return 1;
		}
		s->asm_len = msg_len;
		s->asm_have = 0;
		s->asm_since = now_ns();
		if (ep->ctx->o.frame_timeout_ms) /* the timers check it then */
			xsk_timer_at(xctx(ep->ctx),
				     s->asm_since +
					     (uint64_t)ep->ctx->o.frame_timeout_ms * 1000000 + 1);
	}
	if (!s->asm_buf || off != s->asm_have || msg_len != s->asm_len) {
		WP_CNT_ADD(bad_frames[WP_BAD_TOO_BIG], 1);
		xsk_sess_fail(ep, -EPROTO);
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
		xsk_asm_release(ep->ctx, s); /* the claim (a close released it already) */
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
	const uint8_t *payload;
	struct wp_frame_hdr h;
	int why = 0, ret;

	while ((ret = xsk_bundle_next(&p, &n, tenant, ep->ctx->o.max_frame, &h, &payload, &why)) >
	       0) {
		WP_CNT_ADD(bytes_rx, WP_FRAME_HDR + h.len);
		if (wp_conn_deliver(ep, &h, payload) || ep->state != WP_EPS_OPEN)
			return 1;
	}
	if (ret < 0) {
		WP_CNT_ADD(bad_frames[why], 1);
		xsk_sess_fail(ep, -EPROTO);
		return 1;
	}
	return 0;
}

/* One received datagram (Ethernet frame of len bytes in the UMEM). Returns
 * true when the frame may go back to the fill ring now (always: delivery
 * in place ends with the callback). */
static void rx_pkt(struct wp_ctx *ctx, uint8_t *p, uint32_t len, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;
	struct xsk_view v;
	struct xsk_body b;
	uint8_t *hdr;
	uint32_t seq, ack, mlen, off, fn, kind;
	const uint8_t *frag;
	bool ctl, sealed = false;
	struct xsk_ep *s;
	struct wp_ep *ep;
	uint64_t sid;
	int dk, why = 0;

	xc->st.rx_pkts++;
	/* Every length below was checked by these (wire.c, fuzzed). */
	if (xsk_parse(p, len, &v) < 0 || xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b))
		goto bad;
	hdr = p + (v.hdr - p); /* the same bytes, writable: opened in place */
	sid = b.sid;
	s = xsk_sess_find(xc, sid);
	ctl = v.ctl;
	kind = v.kind;
	/* A keyed session takes sealed datagrams only (but for the
	 * handshake's unsealed SYN and SYNACK): opened in place (decrypted
	 * with confidentiality), their payload is the prefix and fragment. */
	if (s && s->ds && !ctl) {
		struct wp_frame_hdr dh;
		const uint8_t *pl;

		if (wp_dgram_open(s->ds, hdr, v.flen, (uint32_t)xc->mtu, &dh, &pl) < 0)
			return; /* counted by reason in s->ds->st */
		xc->st.opened++;
		if (xsk_body(pl, dh.len, &b) < 0 || b.sid != sid) {
			xc->st.bad++;
			return;
		}
		sealed = true;
		ctl = dh.type == WP_FT_SEAL;
		kind = dh.method;
		if (s->ep->accepted && !s->confirmed && xsk_confirm(s->ep, s) < 0)
			return;
	}
	seq = b.seq;
	ack = b.ack;
	mlen = b.mlen;
	off = b.off;
	frag = b.frag;
	fn = b.fn;
	if (ctl) {
		if (kind == XSK_SYN) {
			if (sealed || (s && !s->ep->accepted)) {
				xc->st.bad++;
			} else if (s && s->authn) {
				/* Our SYNACK was lost: the same hello gets the same
				 * answer until the client's first sealed packet, at
				 * most every XSK_SYNACK_GAP_NS. Not liveness: an
				 * unproved session ends XSK_DEAD_NS after its first
				 * SYN, however often that SYN is replayed. */
				if (!s->confirmed && fn == XSK_HS_SYN &&
				    get32(hdr + 8) == s->tenant &&
				    !CRYPTO_memcmp(frag + 4, s->nonce_c, WP_AUTH_NONCE)) {
					if (now - s->synack_at >= XSK_SYNACK_GAP_NS) {
						s->synack_at = now;
						xsk_synack_send(xc, s);
					}
				} else {
					xc->st.unauth_ctl++;
				}
			} else if (s) {
				if (now - s->synack_at >= XSK_SYNACK_GAP_NS) {
					s->synack_at = now; /* our SYNACK was lost */
					xsk_ctl_send(xc, s, XSK_SYNACK, 0);
				}
				s->last_rx = now;
			} else {
				xsk_rx_syn(ctx, p, hdr, fn, sid, now);
			}
			return;
		}
		if (!s) {
			if (kind != XSK_RST && kind != XSK_FIN)
				xsk_rst_to(xc, p, sid);
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
				int ret = xsk_synack_keys(ep, s, frag, fn);

				/* A SYNACK that does not prove our key (a forgery,
				 * or a server with another key) is ignored: the
				 * real one may follow. The connect's timeout says
				 * -EACCES then (timers). */
				if (ret == -EACCES) {
					s->bad_proof = true;
					break;
				}
				if (ret < 0) {
					xsk_sess_fail(ep, ret);
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
				xsk_timer_at(xc, now + XSK_PING_NS);
				if (s->unsent)
					wp_ctx_mark_dirty(ep);
			}
			break;
		case XSK_ACK:
			ack_upto(xc, s, ack, now);
			if (mlen & XSK_ACK_BLOCKED)
				s->una_at = now; /* the peer holds off: alive, not stuck */
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
				s->cwnd = s->cwnd / 2 < XSK_WIN ? XSK_WIN : s->cwnd / 2;
				xc->st.naks++;
				wp_ctx_mark_dirty(ep);
			}
			break;
		case XSK_PING:
			xsk_ctl_send(xc, s, XSK_PONG, 0);
			break;
		case XSK_PONG:
			break;
		case XSK_RST:
			s->reset = true;
			xsk_sess_gone(ep,
				      ep->state == WP_EPS_CONNECTING ? -ECONNREFUSED : -ECONNRESET);
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
			xsk_ctl_send(xc, s, XSK_ACK, 0);
			xsk_kick(xc);
			if (s->linger)
				break; /* both closed: ours waits for its ack */
			xsk_sess_fail(ep, 0);
			break;
		default:
			xc->st.bad++;
		}
		return;
	}
	if (!s) {
		xsk_rst_to(xc, p, sid);
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
		 * twice) or ahead of a loss (go-back-N: it comes again), or
		 * input is paused: the ACK says so (the sender waits). */
		if (seq == s->rcv_nxt)
			s->blocked_due = true;
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
	dk = xsk_data_kind(&b, ctx->o.max_frame, &why);
	if (dk < 0) {
		WP_CNT_ADD(bad_frames[why], 1);
		xsk_sess_fail(ep, -EPROTO);
		return;
	}
	if (dk == XSK_DATA_FRAG && off == 0) {
		xsk_asm_release(ctx, s); /* a message left unfinished: superseded */
		if (!asm_claim(ctx, s, mlen)) {
			WP_CNT_ADD(rx_budget_pauses, 1);
			s->blocked_due = true; /* not taken: sent again; the ACK says why */
			s->ack_due = true;
			wp_ctx_mark_dirty(ep);
			return;
		}
	}
	s->rcv_nxt++;
	s->ack_due = true;
	wp_ctx_mark_dirty(ep);
	if (dk == XSK_DATA_BUNDLE) {
		/* A bundle: whole messages follow the first (bundle_add). */
		if (!rx_data(ep, s, hdr, frag, mlen, mlen, 0))
			rx_bundle(ep, hdr, frag + mlen, fn - mlen);
	} else {
		rx_data(ep, s, hdr, frag, fn, mlen, off);
	}
	return;

bad:
	xc->st.bad++;
}

int xsk_rx_ring(struct wp_ctx *ctx, struct xsk_q *q, uint64_t now)
{
	struct xsk_ctx *xc = ctx->bk;
	uint32_t idx, n = xsk_ring_cons__peek(&q->rx, XSK_BATCH, &idx);

	for (uint32_t k = 0; k < n; k++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&q->rx, idx + k);

		rx_pkt(ctx, xsk_umem__get_data(xc->area, d->addr), d->len, now);
		xsk_frame_put(xc, d->addr); /* the callback has returned: lent no more */
	}
	if (n)
		xsk_ring_cons__release(&q->rx, n);
	return (int)n;
}

bool xsk_rx_ready(struct xsk_ctx *xc)
{
	for (uint32_t i = 0; i < xc->nq; i++)
		if (xsk_cons_nb_avail(&xc->q[i].rx, 1))
			return true;
	return false;
}
