// SPDX-License-Identifier: MIT
/*
 * The xsk path's transmit side: a datagram built in a UMEM chunk
 * (tx_frame, with the test-only faults), control packets, kicks, the send
 * queue of numbered packets with bundles of small messages (bundle_add),
 * and the flush burst within the credit window.
 */
#include <errno.h>
#include <stdlib.h>

#include "xsk.h"

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
uint32_t xsk_tx_pending(const struct xsk_q *q)
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
void xsk_kick(struct xsk_ctx *xc)
{
	struct xsk_q *q = &xc->q[0];
	uint32_t pend;

	xc->unkicked = 0;
	while ((pend = xsk_tx_pending(q))) {
		if (xc->zerocopy && !xsk_ring_prod__needs_wakeup(&q->tx))
			break;
		WP_SYSCALL(WP_SYS_WRITE);
		if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
		    errno != EBUSY && errno != ENOBUFS)
			break;
		if (xc->zerocopy || xsk_tx_pending(q) >= pend)
			break;
	}
}

static void tx_desc(struct xsk_ctx *xc, uint64_t addr, uint32_t len)
{
	struct xsk_q *q = &xc->q[0];
	uint32_t idx;

	if (xsk_ring_prod__reserve(&q->tx, 1, &idx) != 1) { /* cannot: frames < ring */
		xsk_frame_put(xc, addr);
		return;
	}
	xsk_ring_prod__tx_desc(&q->tx, idx)->addr = addr;
	xsk_ring_prod__tx_desc(&q->tx, idx)->len = len;
	xsk_ring_prod__submit(&q->tx, 1);
	xc->unkicked++;
	xc->st.tx_pkts++;
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
		xsk_comp_reap(xc);
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
		if (xsk_seal_into(xc, s, body, n, frag, fn, p + XSK_HDRS) < 0) {
			/* -EMSGSIZE cannot happen (sends are sized for the
			 * seal), -EOVERFLOW takes 2^64 packets: lost, counted */
			xc->st.bad++;
			xsk_frame_put(xc, addr);
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
			xsk_frame_put(xc, addr);
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
void xsk_ctl_send_hs(struct xsk_ctx *xc, struct xsk_ep *s, enum xsk_ctl kind, uint32_t seq,
		     const uint8_t *hs, uint32_t hslen)
{
	uint8_t b[WP_FRAME_HDR + XSK_PREFIX + XSK_HS_SYNACK];
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = 1,
				  .method = kind,
				  .len = XSK_PREFIX + hslen };
	bool sign = hslen != 0; /* a handshake message: the peer has no keys yet */

	if (sign) {
		/* The tag (over the header) binds the session id and the
		 * hello: a captured SYN cannot be replayed under another id
		 * or with another nonce. */
		h.tenant = s->tenant;
		h.req_id = s->sid;
		h.aux = xsk_hs_digest(s->key, hs, hslen);
	}
	wp_frame_encode(&h, b);
	b[5] = XSK_T_CTL; /* the type byte: never a frame type */
	put64(b + WP_FRAME_HDR, s->sid);
	put32(b + WP_FRAME_HDR + 8, seq);
	put32(b + WP_FRAME_HDR + 12, s->rcv_nxt);
	put32(b + WP_FRAME_HDR + 16,
	      kind == XSK_ACK && s->blocked_due ? XSK_ACK_BLOCKED : 0); /* flags */
	put32(b + WP_FRAME_HDR + 20, 0);
	if (kind == XSK_ACK)
		s->blocked_due = false;
	if (hslen)
		memcpy(b + WP_FRAME_HDR + XSK_PREFIX, hs, hslen);
	if (sign)
		wp_frame_sign(s->key, b);
	if (xc->f_ctldrop && fault(xc, xc->f_ctldrop)) {
		xc->st.faults++; /* test: lost on the wire */
		if (kind == XSK_ACK || kind == XSK_NAK)
			s->ack_due = false;
		return;
	}
	if (tx_frame(xc, s, b, WP_FRAME_HDR + XSK_PREFIX + hslen, NULL, 0, false, !sign && s->ds) &&
	    (kind == XSK_ACK || kind == XSK_NAK))
		s->ack_due = false;
	if (xc->f_ctldup && fault(xc, xc->f_ctldup) &&
	    tx_frame(xc, s, b, WP_FRAME_HDR + XSK_PREFIX + hslen, NULL, 0, false, !sign && s->ds))
		xc->st.faults++; /* test: a second copy (sealed again: a new dgram seq) */
}

void xsk_ctl_send(struct xsk_ctx *xc, struct xsk_ep *s, enum xsk_ctl kind, uint32_t seq)
{
	xsk_ctl_send_hs(xc, s, kind, seq, NULL, 0);
}

/* May the context answer one more packet of no session it knows? A token
 * bucket (XSK_REPLY_RATE a second, XSK_REPLY_BURST at once); no: counted. */
bool xsk_reply_ok(struct xsk_ctx *xc, uint64_t now)
{
	uint64_t add = (now - xc->reply_at) * XSK_REPLY_RATE / 1000000000ull;

	if (add) {
		xc->reply_tokens = add >= XSK_REPLY_BURST - xc->reply_tokens
					   ? XSK_REPLY_BURST
					   : xc->reply_tokens + (uint32_t)add;
		xc->reply_at = now;
	}
	if (!xc->reply_tokens) {
		xc->st.reply_limited++;
		return false;
	}
	xc->reply_tokens--;
	return true;
}

/* A reply to a packet for no session we know: a reset to its sender,
 * within the reply bucket. */
void xsk_rst_to(struct xsk_ctx *xc, const uint8_t *pkt, uint64_t sid)
{
	struct xsk_ep tmp;

	if (!xsk_reply_ok(xc, now_ns()))
		return;
	memset(&tmp, 0, sizeof(tmp));
	tmp.sid = sid;
	memcpy(tmp.peer_mac, pkt + 6, 6);
	memcpy(&tmp.peer_ip, pkt + 26, 4);
	tmp.peer_port = (uint16_t)(pkt[34] << 8 | pkt[35]);
	xsk_ctl_send(xc, &tmp, XSK_RST, 0);
	xc->st.resets++;
}

void xsk_arm_rto(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now)
{
	if (!s->rto_us)
		s->rto_us = XSK_RTO_MIN_US;
	s->rto_at = now + (uint64_t)s->rto_us * 1000;
	xsk_timer_at(xc, s->rto_at);
}

/* The transmit burst: new packets within the window, then a bare ack. */
void xsk_flush(struct wp_ep *ep)
{
	struct xsk_ctx *xc = xctx(ep->ctx);
	struct xsk_ep *s = xep(ep);
	bool live = ep->state == WP_EPS_OPEN || s->linger;

	if (!xc->up || s->listener)
		return;
	xsk_comp_reap(xc);
	if (live) {
		while (s->unsent && s->unsent->seq - s->snd_una < s->cwnd) {
			struct xsk_pkt *k = s->unsent;

			put32(k->b + WP_FRAME_HDR + 12, s->rcv_nxt);
			if (!tx_one(xc, s, k->b, sizeof(k->b), k->frag, k->n, true))
				break;
			k->sent = true;
			if ((int32_t)(k->seq + 1 - s->snd_max) > 0)
				s->snd_max = k->seq + 1;
			s->ack_due = false;
			s->unsent = k->next;
			if (!s->rto_at)
				xsk_arm_rto(xc, s, now_ns());
		}
	}
	if (s->nak_due && live) {
		s->nak_due = false;
		xsk_ctl_send(xc, s, XSK_NAK, 0);
	}
	/* A blocked receiver says so even when data carried its ack. */
	if ((s->ack_due || s->blocked_due) && live)
		xsk_ctl_send(xc, s, XSK_ACK, 0);
	/* One kick per flush loop, from its last endpoint (the loop pops each
	 * before its burst); what an endpoint queued after it is kicked by the
	 * next poll or arm. */
	if (!ep->ctx->dirty)
		xsk_kick(xc);
}

/* What a queued packet holds in memory, counted against XSK_QMAX: a
 * bundle's whole room from the start, so many tiny messages cannot hide
 * their allocations behind their lengths. */
size_t xsk_pkt_bytes(const struct xsk_pkt *k)
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
int xsk_send(struct wp_ep *ep, const struct wp_frame_hdr *h, const void *data, size_t len,
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
		bytes += xsk_pkt_bytes(k);
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
void xsk_q_drop(struct wp_ep *ep, int status)
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
