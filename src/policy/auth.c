// SPDX-License-Identifier: MIT
/*
 * The front door on stream connections: frame authentication v2
 * (docs/protocol.md, "Authentication v2"; docs/policy.md).
 *
 * A connecting endpoint with a tenant key (wp_ep_set_tenant_key) and a
 * context with a policy (wp_ctx_set_policy) run a handshake (src/auth/hello.h)
 * in which both prove they hold the tenant key and derive fresh keys from
 * both sides' nonces. From then on every frame either side sends belongs to a
 * record: a run of whole frames ended by a SEAL frame whose AES-256-GCM tag
 * (integrity only: GMAC over the frames' bytes; with confidentiality: one
 * frame per record, its payload encrypted) is bound to the record's sequence
 * number by the nonce. These are TLS 1.3-style records in user space; one tag
 * per transmit burst instead of one per frame, because a tag costs about
 * 270 ns (bench/auth_cost.c) and an agentic step sends about 550 frames.
 *
 * Received frames are held until their record's tag checks out, then
 * dispatched in order (wp_conn_dispatch). A record that lies in one chunk of
 * the stream is verified and delivered in place; frames of a record that
 * spans chunks are copied out (counted) at the chunk's end. A bulk transfer
 * frame placed piecewise (rx.place) is a record of its own: its tag is
 * computed as its pieces land, and its end (the acknowledgement) is
 * dispatched only once the tag checks.
 *
 * All of this is a guard installed into conn (struct wp_guard_ops): conn
 * never calls the front door by name. Paths without WP_CAP_STREAM (shm) do
 * not get the handshake: the path authenticates its peer at setup and marks
 * the endpoint peer_verified.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "auth/crypto.h"
#include "auth/hello.h"
#include "policy.h"
#include "siphash.h"

#define REC_FRAMES 64         /* frames per record, at most */
#define REC_BYTES (16u << 10) /* a record closes once it covers this many bytes */
#define SEQ_MAX (1ull << 40)  /* record sequence numbers per direction */

struct wp_auth_tenant {
	uint32_t id;
	uint32_t admin;
	uint32_t conf; /* must ask for confidentiality */
	uint8_t key[16];
};

/* Per context (ctx->up[WP_LAYER_GUARD]): the tenants whose handshakes are accepted. */
struct wp_auth {
	struct wp_policy *pol; /* a copy of the rules, for the xsk path's program */
	uint32_t n;
	struct wp_auth_tenant t[]; /* sorted by id */
};

enum hs_state {
	HS_NONE,        /* accepted: waiting for the client's HELLO */
	HS_WAIT_SERVER, /* client: HELLO sent, waiting for the server's */
	HS_WAIT_PROOF,  /* server: HELLO sent, waiting for the client's proof */
	HS_DONE,
	HS_FAILED,
};

/* A send held until the handshake ends (the client's first calls). */
struct held_tx {
	struct wp_frame_hdr h;
	uint8_t pre[64];
	uint32_t prelen;
	const void *data;
	size_t len;
	wp_done_fn done;
	void *arg;
};

/* A received frame held until its record's tag checks. */
struct rx_frame {
	struct wp_frame_hdr h;
	const uint8_t *p; /* in the current chunk, or NULL: at keep + off */
	size_t off;
	bool placed; /* an XFER frame already placed piecewise (payload NULL) */
};

/* Per endpoint (ep->up[WP_LAYER_GUARD]). */
struct auth_ep {
	enum hs_state hs;
	bool server;
	bool conf;   /* confidentiality asked (client) or agreed (both) */
	int refused; /* what pending calls fail with once refused, or 0 */
	uint32_t tenant;
	uint8_t key[16];
	struct wp_hello client, srv; /* the transcript */
	struct wp_session_keys k;
	struct wp_aead tx, rx;
	bool keyed; /* tx and rx initialised */

	/* transmit: the open record */
	uint64_t tx_seq;
	uint32_t tx_n;
	uint64_t tx_first; /* its first segment in ep->tx */
	size_t tx_bytes;

	/* receive: the record being read */
	uint64_t rx_seq;
	uint32_t rx_n;
	size_t rx_bytes;
	struct rx_frame fr[REC_FRAMES];
	uint8_t *keep; /* bytes of the record copied out of earlier chunks */
	size_t keep_len, keep_cap;
	struct wp_rx_budget *budget; /* keep's capacity is charged to it */
	const uint8_t *run;          /* the record's bytes still in the current chunk */
	size_t run_len;
	bool rx_begun;        /* tag computation started (a placed transfer) */
	wp_rx_place_fn place; /* the context's placement, wrapped while records run */

	struct held_tx *held;
	uint32_t nheld, held_cap;
};

static const struct wp_guard_ops auth_guard;
static void auth_install(struct wp_ctx *ctx);
static void auth_place(void *arg, const struct wp_frame_hdr *h, const uint8_t *prefix,
		       const uint8_t *piece, uint32_t off, uint32_t n);

/* ---- v1 helpers kept for datagrams (XDP checks the same SipHash tag) ---- */

uint64_t wp_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	uint64_t k0, k1;

	wpp_key_split(key, &k0, &k1);
	return wpp_siphash24(k0, k1, data, len);
}

uint64_t wp_frame_tag(const uint8_t key[16], const void *hdr)
{
	uint64_t k0, k1;

	wpp_key_split(key, &k0, &k1);
	return wpp_siphash24_32(k0, k1, hdr);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void wp_frame_sign(const uint8_t key[16], void *hdr)
{
	put_le64((uint8_t *)hdr + WPP_FRAME_AUTH_COVER, wp_frame_tag(key, hdr));
}

/* ---- tenants ------------------------------------------------------------ */

static const struct wp_auth_tenant *auth_find(const struct wp_auth *a, uint32_t id)
{
	uint32_t lo = 0, hi = a ? a->n : 0;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a->t[mid].id == id)
			return &a->t[mid];
		if (a->t[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool auth_admin(const struct wp_ctx *ctx, uint32_t tenant)
{
	const struct wp_auth_tenant *t = auth_find(ctx->up[WP_LAYER_GUARD], tenant);

	return t && t->admin;
}

/* ---- per-endpoint state -------------------------------------------------- */

static struct auth_ep *aep_get(struct wp_ep *ep)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return NULL;
		a->budget = ep->rx.budget;
		auth_install(ep->ctx);
		ep->up[WP_LAYER_GUARD] = a;
		/* No transfer byte is placed before the peer proved its key:
		 * until records_on, a transfer is assembled (under the budget)
		 * and refused whole. */
		ep->rx.place = NULL;
	}
	return a;
}

static uint64_t auth_field(const struct auth_ep *a, uint64_t seq, uint32_t idx)
{
	return (uint64_t)a->k.conn_id << 48 | (seq & (SEQ_MAX - 1)) << 8 | (idx & 0xff);
}

/* Refuse the peer: counted, logged, closed; calls fail with err. */
#define refuse(ep, a, reason, err, ...)                             \
	do {                                                        \
		(a)->hs = HS_FAILED;                                \
		(a)->refused = (err);                               \
		wp_conn_refuse((ep), (reason), (err), __VA_ARGS__); \
	} while (0)

static int keys_start(struct wp_ep *ep, struct auth_ep *a)
{
	bool server = a->server;
	int ret;

	ret = wp_hello_keys(a->key, sizeof(a->key), a->client.nonce, a->srv.nonce, &a->k);
	if (ret)
		return ret;
	ret = wp_aead_init(&a->tx, server ? a->k.s2c_key : a->k.c2s_key,
			   server ? a->k.s2c_iv : a->k.c2s_iv, true);
	if (ret)
		return ret;
	ret = wp_aead_init(&a->rx, server ? a->k.c2s_key : a->k.s2c_key,
			   server ? a->k.c2s_iv : a->k.s2c_iv, false);
	if (ret) {
		wp_aead_fini(&a->tx);
		return ret;
	}
	a->keyed = true;
	return 0;
}

/* From here on what we send is sealed, and what we receive must be. */
static void records_on(struct wp_ep *ep, struct auth_ep *a)
{
	ep->records_tx = true;
	a->place = ep->ctx->rx_place;
	/* Encrypted transfers are assembled whole and decrypted at their seal;
	 * integrity-only ones are placed as they arrive, tag computed on the
	 * way (auth_place). */
	if (a->conf)
		ep->rx.place = NULL;
	else if (a->place)
		ep->rx.place = auth_place;
}

/* ---- transmit -------------------------------------------------------------- */

/* Queue the SEAL frame that ends the open record: the tag rides in method,
 * req_id and aux (tag_of reads it back), the position in auth. */
static int seal_queue(struct wp_ep *ep, struct auth_ep *a, const uint8_t tag[WP_AUTH_TAG])
{
	struct wp_frame_hdr h = { .type = WP_FT_SEAL, .tenant = ep->tenant };
	uint8_t sealhdr[WP_FRAME_HDR];

	h.auth = auth_field(a, a->tx_seq, a->tx_n);
	h.method = get_le32(tag);
	h.req_id = get_le64(tag + 4);
	h.aux = get_le32(tag + 12);
	wp_frame_encode(&h, sealhdr);
	a->tx_seq++;
	a->tx_n = 0;
	a->tx_bytes = 0;
	WP_CNT_ADD(records_tx, 1);
	return wp_txq_raw(ep, sealhdr, sizeof(sealhdr));
}

/* Close the open record: its tag over every byte queued since it opened. */
static int tx_seal(struct wp_ep *ep, struct auth_ep *a)
{
	struct wp_txq *q = &ep->tx;
	const uint8_t *run = NULL;
	size_t run_len = 0;
	uint8_t tag[WP_AUTH_TAG];
	int ret;

	if (!a->tx_n)
		return 0;
	if (a->tx_seq >= SEQ_MAX)
		return -EOVERFLOW; /* 2^40 records: the nonce space of these keys */
	ret = wp_aead_begin(&a->tx, a->tx_seq);
	/* Staged frames lie back to back: one update per contiguous run. */
	for (uint64_t i = a->tx_first; !ret && i != q->tail; i++) {
		const struct wp_seg *s = &q->seg[i & q->mask];

		if (run && run + run_len == s->p) {
			run_len += s->len;
			continue;
		}
		if (run_len)
			ret = wp_aead_aad(&a->tx, run, run_len);
		run = s->p;
		run_len = s->len;
	}
	if (!ret && run_len)
		ret = wp_aead_aad(&a->tx, run, run_len);
	if (!ret)
		ret = wp_aead_end(&a->tx, tag);
	if (ret)
		return ret;
	return seal_queue(ep, a, tag);
}

static int hold(struct auth_ep *a, const struct wp_frame_hdr *h, const void *pre, uint32_t prelen,
		const void *data, size_t len, wp_done_fn done, void *arg)
{
	struct held_tx *t;

	if (a->nheld == a->held_cap) {
		uint32_t cap = a->held_cap ? a->held_cap * 2 : 16;
		struct held_tx *n = realloc(a->held, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->held = n;
		a->held_cap = cap;
	}
	/* The caller keeps a buffer sent without a completion: copy it. */
	if (len && !done && wp_payload_copy(&data, len, &done, &arg) < 0)
		return -ENOMEM;
	t = &a->held[a->nheld++];
	t->h = *h;
	t->h.len -= prelen; /* wp_txq_send2 adds it again */
	if (prelen)
		memcpy(t->pre, pre, prelen);
	t->prelen = prelen;
	t->data = data;
	t->len = len;
	t->done = done;
	t->arg = arg;
	return WP_TX_HELD;
}

static int auth_tx(struct wp_ep *ep, struct wp_frame_hdr *h, const void *pre, uint32_t prelen,
		   const void *data, size_t len, wp_done_fn done, void *arg)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];
	int ret;

	if (!a || !ep->records_tx) {
		if (a && a->hs == HS_WAIT_SERVER)
			return hold(a, h, pre, prelen, data, len, done, arg);
		if (a && a->hs == HS_FAILED)
			return a->refused ? a->refused : -EACCES;
		return WP_TX_PLAIN;
	}
	/* A transfer, a large frame or any encrypted one is a record of its
	 * own: close what is open first. */
	if (a->conf || h->type == WP_FT_XFER || len + prelen >= REC_BYTES) {
		ret = tx_seal(ep, a);
		if (ret)
			return ret;
	}
	h->auth = auth_field(a, a->tx_seq, a->tx_n);
	return a->conf ? WP_TX_ENCRYPT : WP_TX_RECORD;
}

static int auth_queued(struct wp_ep *ep, uint64_t first, uint8_t *hdr, uint32_t prelen,
		       uint8_t *payload, size_t len)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];
	int ret;

	if (a->tx_n++ == 0)
		a->tx_first = first;
	a->tx_bytes += WP_FRAME_HDR + prelen + len;
	if (a->conf) {
		uint8_t tag[WP_AUTH_TAG];

		if (a->tx_seq >= SEQ_MAX)
			return -EOVERFLOW;
		ret = wp_aead_begin(&a->tx, a->tx_seq);
		if (!ret)
			ret = wp_aead_aad(&a->tx, hdr, WP_FRAME_HDR);
		if (!ret && prelen)
			ret = wp_aead_crypt(&a->tx, hdr + WP_FRAME_HDR, prelen);
		if (!ret && len)
			ret = wp_aead_crypt(&a->tx, payload, len);
		if (!ret)
			ret = wp_aead_end(&a->tx, tag);
		if (ret)
			return ret;
		return seal_queue(ep, a, tag); /* tx_n is 1: this frame */
	}
	if (a->tx_n >= REC_FRAMES || a->tx_bytes >= REC_BYTES || hdr[5] == WP_FT_XFER)
		return tx_seal(ep, a);
	return 0;
}

static void auth_flush(struct wp_ep *ep)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];
	int ret;

	if (!a || !ep->records_tx || !a->tx_n)
		return;
	ret = tx_seal(ep, a);
	if (ret < 0) {
		wp_log(ep->ctx, WP_LOG_ERR, "cannot seal a record: %s", strerror(-ret));
		wp_conn_fail(ep, ret);
	}
}

/* The handshake is over: what the client queued meanwhile leaves now, in order. */
static void release_held(struct wp_ep *ep, struct auth_ep *a)
{
	uint32_t n = a->nheld;

	a->nheld = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct held_tx *t = &a->held[i];
		int ret = ep->state == WP_EPS_CLOSED
				  ? -ECONNABORTED
				  : wp_txq_send2(ep, &t->h, t->pre, t->prelen, t->data, t->len,
						 t->done, t->arg);

		if (ret < 0 && t->done)
			wp_defer(ep->ctx, t->done, t->arg, ret);
	}
}

static void drop_held(struct wp_ep *ep, struct auth_ep *a, int status)
{
	for (uint32_t i = 0; i < a->nheld; i++)
		if (a->held[i].done)
			wp_defer(ep->ctx, a->held[i].done, a->held[i].arg, status);
	a->nheld = 0;
}

/* ---- the handshake --------------------------------------------------------- */

static int send_hello(struct wp_ep *ep, const struct wp_hello *m)
{
	uint8_t buf[WP_FRAME_HDR + WP_HELLO_MAX];

	return wp_txq_raw(ep, buf, wp_hello_build(m, buf));
}

/* Server: the client's HELLO. */
static void hs_server_hello(struct wp_ep *ep, struct auth_ep *a, const struct wp_hello *m)
{
	const struct wp_auth_tenant *t = auth_find(ep->ctx->up[WP_LAYER_GUARD], m->tenant);

	if (!t) {
		refuse(ep, a, WP_BAD_AUTH, -EACCES, "handshake from unknown tenant %u", m->tenant);
		return;
	}
	if (t->conf && !(m->flags & WP_HELLO_F_CONF)) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EACCES,
		       "tenant %u must ask for confidentiality (policy: confidential)", t->id);
		return;
	}
	a->server = true;
	a->tenant = t->id;
	memcpy(a->key, t->key, sizeof(a->key));
	a->client = *m;
	a->conf = m->flags & WP_HELLO_F_CONF;
	a->srv.phase = WP_HELLO_SERVER;
	a->srv.flags = a->conf ? WP_HELLO_F_CONF : 0;
	if (wp_auth_random(a->srv.nonce, sizeof(a->srv.nonce)) || keys_start(ep, a) ||
	    wp_hello_proof(&a->k, true, a->tenant, &a->client, &a->srv, a->srv.proof) ||
	    send_hello(ep, &a->srv)) {
		a->hs = HS_FAILED;
		a->refused = -EIO;
		wp_log(ep->ctx, WP_LOG_ERR, "handshake with tenant %u: cannot derive keys",
		       a->tenant);
		wp_conn_fail(ep, -EIO);
		return;
	}
	ep->tenant = a->tenant; /* answers speak for the tenant that proved itself */
	a->hs = HS_WAIT_PROOF;
	records_on(ep, a);
}

/* Client: the server's HELLO, with its proof. */
static void hs_client_server(struct wp_ep *ep, struct auth_ep *a, const struct wp_hello *m)
{
	uint8_t want[WP_AUTH_HMAC];
	struct wp_hello proof = { .phase = WP_HELLO_PROOF };

	a->srv = *m;
	if (keys_start(ep, a) ||
	    wp_hello_proof(&a->k, true, a->tenant, &a->client, &a->srv, want)) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EIO, "handshake: cannot derive keys");
		return;
	}
	if (!wp_auth_equal(want, m->proof, sizeof(want))) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EACCES,
		       "the server did not prove tenant %u's key (the key differs on one side)",
		       a->tenant);
		return;
	}
	if (a->conf && !(m->flags & WP_HELLO_F_CONF)) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EACCES,
		       "the server declined the confidentiality tenant %u asked for", a->tenant);
		return;
	}
	if (wp_hello_proof(&a->k, false, a->tenant, &a->client, &a->srv, proof.proof) ||
	    send_hello(ep, &proof)) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EIO, "handshake: cannot send the proof");
		return;
	}
	a->hs = HS_DONE;
	wp_conn_handshake_done(ep);
	records_on(ep, a);
	release_held(ep, a);
}

/* Server: the client's proof. */
static void hs_server_proof(struct wp_ep *ep, struct auth_ep *a, const struct wp_hello *m)
{
	uint8_t want[WP_AUTH_HMAC];

	if (wp_hello_proof(&a->k, false, a->tenant, &a->client, &a->srv, want) ||
	    !wp_auth_equal(want, m->proof, sizeof(want))) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EACCES,
		       "tenant %u's client did not prove its key (wrong key)", a->tenant);
		return;
	}
	/* The tenant is known now: count it (conns_per_tenant; a refusal is
	 * counted there, not as a bad frame). */
	if (wp_conn_tenant_bind(ep, a->tenant) < 0) {
		a->hs = HS_FAILED;
		a->refused = -EUSERS;
		wp_conn_drop(ep, -EUSERS);
		return;
	}
	a->hs = HS_DONE;
	wp_conn_handshake_done(ep); /* the handshake timer (limits.c) stops */
}

static int on_hello(struct wp_ep *ep, struct auth_ep *a, const struct wp_frame_hdr *h,
		    const uint8_t *payload)
{
	struct wp_hello m;
	const char *why = NULL;

	if (!payload || wp_hello_parse(h, payload, &m, &why)) {
		refuse(ep, a, WP_BAD_HANDSHAKE, -EPROTO, "bad handshake message: %s",
		       why ? why : "placed");
		return 1;
	}
	if (a->hs == HS_NONE && m.phase == WP_HELLO_CLIENT && ep->accepted)
		hs_server_hello(ep, a, &m);
	else if (a->hs == HS_WAIT_SERVER && m.phase == WP_HELLO_SERVER)
		hs_client_server(ep, a, &m);
	else if (a->hs == HS_WAIT_PROOF && m.phase == WP_HELLO_PROOF)
		hs_server_proof(ep, a, &m);
	else
		refuse(ep, a, WP_BAD_HANDSHAKE, -EPROTO, "handshake message %u out of order",
		       m.phase);
	return 1;
}

/* ---- receive --------------------------------------------------------------- */

static int keep_add(struct auth_ep *a, const void *p, size_t n)
{
	if (!n)
		return 0;
	if (a->keep_len + n > a->keep_cap) {
		size_t cap = a->keep_cap ? a->keep_cap : 4096;
		uint8_t *k;

		while (cap < a->keep_len + n)
			cap *= 2;
		k = realloc(a->keep, cap);
		if (!k)
			return -ENOMEM;
		/* A record held for its seal is receive memory like assembly:
		 * charged, so other connections' claims see it (docs/limits.md). */
		if (a->budget) {
			a->budget->claimed += cap - a->keep_cap;
			a->budget->used += cap - a->keep_cap;
		}
		a->keep = k;
		a->keep_cap = cap;
	}
	memcpy(a->keep + a->keep_len, p, n);
	a->keep_len += n;
	WP_CNT_ADD(bytes_copied, n);
	return 0;
}

/* Copy the record's bytes still in the chunk out of it (they are about to
 * go back to the path). */
static int run_keep(struct auth_ep *a)
{
	size_t base = a->keep_len;

	if (!a->run_len)
		return 0;
	if (keep_add(a, a->run, a->run_len))
		return -ENOMEM;
	for (uint32_t i = 0; i < a->rx_n; i++) {
		struct rx_frame *f = &a->fr[i];

		if (f->p) {
			f->off = base + (size_t)(f->p - a->run);
			f->p = NULL;
		}
	}
	a->run = NULL;
	a->run_len = 0;
	return 0;
}

static void auth_chunk_end(struct wp_ep *ep)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (a && a->run_len && run_keep(a) < 0)
		wp_conn_fail(ep, -ENOMEM);
}

/* Free the record buffer and give its charge back. */
static void keep_free(struct auth_ep *a)
{
	if (a->budget && a->keep_cap) {
		a->budget->claimed -= a->keep_cap;
		a->budget->used -= a->keep_cap;
		a->budget->freed++;
	}
	free(a->keep);
	a->keep = NULL;
	a->keep_cap = 0;
}

static bool auth_rx_open(const struct wp_ep *ep, uint64_t *rec)
{
	const struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a || (!a->rx_n && !a->rx_begun))
		return false;
	*rec = a->rx_seq;
	return true;
}

static void rec_reset(struct auth_ep *a)
{
	a->rx_n = 0;
	a->rx_bytes = 0;
	a->keep_len = 0;
	a->run = NULL;
	a->run_len = 0;
	a->rx_begun = false;
	/* A record that covered one large frame does not pin its memory. */
	if (a->keep_cap > 4 * REC_BYTES)
		keep_free(a);
}

/* Sequence and connection of one record frame: the reasons that can be told
 * apart before the tag. 0 or refused. */
static int rx_seq_check(struct wp_ep *ep, struct auth_ep *a, const struct wp_frame_hdr *h,
			uint32_t idx)
{
	if ((uint16_t)(h->auth >> 48) != a->k.conn_id) {
		refuse(ep, a, WP_BAD_SPLICED, -EACCES,
		       "tenant %u: a frame from another connection spliced into this one",
		       a->tenant);
		return -1;
	}
	if (((h->auth >> 8) & (SEQ_MAX - 1)) != a->rx_seq || (h->auth & 0xff) != idx) {
		refuse(ep, a, WP_BAD_REPLAY, -EACCES,
		       "tenant %u: record %llu frame %u where record %llu frame %u was due "
		       "(replayed or reordered)",
		       a->tenant, (unsigned long long)((h->auth >> 8) & (SEQ_MAX - 1)),
		       (unsigned)(h->auth & 0xff), (unsigned long long)a->rx_seq, idx);
		return -1;
	}
	return 0;
}

/* A frame of the record being read: held until the seal. */
static int rx_frame(struct wp_ep *ep, struct auth_ep *a, const struct wp_frame_hdr *h,
		    const uint8_t *payload)
{
	struct rx_frame *f;

	if (h->type == WP_FT_HELLO) {
		refuse(ep, a, WP_BAD_UNEXPECTED, -EPROTO, "handshake message after the handshake");
		return 1;
	}
	if (rx_seq_check(ep, a, h, a->rx_n))
		return 1;
	if (h->tenant != a->tenant) {
		refuse(ep, a, WP_BAD_AUTH, -EACCES,
		       "a frame of tenant %u on tenant %u's connection", h->tenant, a->tenant);
		return 1;
	}
	/* Bounded: a record holds at most REC_FRAMES frames and, past one
	 * frame, REC_BYTES plus its last frame; a placed transfer is alone. */
	if (a->rx_n == REC_FRAMES || (a->rx_n && a->rx_bytes >= REC_BYTES) ||
	    (a->rx_n && (a->rx_begun || (a->conf)))) {
		refuse(ep, a, WP_BAD_UNEXPECTED, -EPROTO, "tenant %u: record too long", a->tenant);
		return 1;
	}
	f = &a->fr[a->rx_n];
	f->h = *h;
	f->p = NULL;
	/* rx hands NULL for a placed transfer, and for an empty frame whose
	 * header was split (no assembly buffer): only the first is placed. */
	f->placed = !payload && h->type == WP_FT_XFER && ep->rx.place;
	if (f->placed) {
		/* A transfer placed piecewise: its tag was computed as it landed. */
		if (!a->rx_begun) { /* nothing was placed: header and prefix only */
			uint8_t hb[WP_FRAME_HDR];

			wp_frame_encode(h, hb);
			if (wp_aead_begin(&a->rx, a->rx_seq) ||
			    wp_aead_aad(&a->rx, hb, sizeof(hb)) ||
			    wp_aead_aad(&a->rx, ep->rx.xpre,
					h->len < WP_XFER_PREFIX ? h->len : WP_XFER_PREFIX))
				goto out_nomem;
			a->rx_begun = true;
		}
	} else if (ep->rx.inplace && !a->conf) {
		const uint8_t *start = payload - WP_FRAME_HDR;

		if (a->run && a->run + a->run_len != start && run_keep(a) < 0)
			goto out_nomem;
		if (!a->run)
			a->run = start;
		a->run_len += WP_FRAME_HDR + h->len;
		f->p = payload;
	} else {
		uint8_t hb[WP_FRAME_HDR];

		/* Assembled (or to be decrypted): copy header and payload out. */
		if (run_keep(a) < 0)
			goto out_nomem;
		wp_frame_encode(h, hb);
		if (keep_add(a, hb, sizeof(hb)) || keep_add(a, payload, h->len))
			goto out_nomem;
		f->off = a->keep_len - h->len;
	}
	a->rx_n++;
	a->rx_bytes += WP_FRAME_HDR + h->len;
	return 1;

out_nomem:
	wp_conn_fail(ep, -ENOMEM);
	return 1;
}

static void tag_of(const struct wp_frame_hdr *h, uint8_t tag[WP_AUTH_TAG])
{
	put_le32(tag, h->method);
	put_le64(tag + 4, h->req_id);
	put_le32(tag + 12, h->aux);
}

/* The seal: check the record's tag, then dispatch its frames in order. */
static int rx_seal(struct wp_ep *ep, struct auth_ep *a, const struct wp_frame_hdr *h)
{
	uint8_t tag[WP_AUTH_TAG];
	int ret = 0;
	uint32_t n;

	if (h->len || h->flags || !a->rx_n) {
		refuse(ep, a, WP_BAD_UNEXPECTED, -EPROTO, "tenant %u: malformed or empty seal",
		       a->tenant);
		return 1;
	}
	if (rx_seq_check(ep, a, h, a->rx_n))
		return 1;
	tag_of(h, tag);
	if (!a->rx_begun)
		ret = wp_aead_begin(&a->rx, a->rx_seq);
	if (a->conf) {
		struct rx_frame *f = &a->fr[0];
		uint8_t hb[WP_FRAME_HDR];

		/* One frame, kept: header authenticated, payload decrypted in place. */
		wp_frame_encode(&f->h, hb);
		if (!ret)
			ret = wp_aead_aad(&a->rx, hb, sizeof(hb));
		if (!ret && f->h.len)
			ret = wp_aead_crypt(&a->rx, a->keep + f->off, f->h.len);
	} else {
		if (!ret && a->keep_len)
			ret = wp_aead_aad(&a->rx, a->keep, a->keep_len);
		if (!ret && a->run_len)
			ret = wp_aead_aad(&a->rx, a->run, a->run_len);
	}
	if (!ret)
		ret = wp_aead_end(&a->rx, tag);
	if (ret) {
		if (ret == -EBADMSG)
			refuse(ep, a, WP_BAD_AUTH, -EACCES,
			       "tenant %u: record %llu failed its tag (altered in transit)",
			       a->tenant, (unsigned long long)a->rx_seq);
		else
			refuse(ep, a, WP_BAD_AUTH, -EIO, "tenant %u: cannot verify a record",
			       a->tenant);
		return 1;
	}
	a->rx_seq++;
	WP_CNT_ADD(records_rx, 1);
	n = a->rx_n;
	a->rx_n = 0; /* frames below may end up back here (a held frame's handler) */
	for (uint32_t i = 0; i < n && ep->state != WP_EPS_CLOSED; i++) {
		struct rx_frame *f = &a->fr[i];
		const uint8_t *p = f->placed ? NULL : f->p ? f->p : a->keep + f->off;

		if (wp_conn_dispatch(ep, &f->h, p))
			break;
	}
	rec_reset(a);
	return 1;
}

/* rx.place while records run (integrity only): the tag follows the pieces. */
static void auth_place(void *arg, const struct wp_frame_hdr *h, const uint8_t *prefix,
		       const uint8_t *piece, uint32_t off, uint32_t n)
{
	struct wp_ep *ep = arg;
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (ep->state == WP_EPS_CLOSED || a->hs == HS_FAILED)
		return;
	/* Not a byte lands before the peer proved its key. */
	if (a->hs != HS_DONE) {
		refuse(ep, a, WP_BAD_NO_HANDSHAKE, -EACCES,
		       "tenant %u sent a transfer before proving its key", a->tenant);
		return;
	}
	if (!a->rx_begun) {
		uint8_t hb[WP_FRAME_HDR];

		/* Checked before a byte lands: sequence, connection, alone. */
		if (a->rx_n) {
			refuse(ep, a, WP_BAD_UNEXPECTED, -EPROTO,
			       "tenant %u: a transfer inside a record", a->tenant);
			return;
		}
		if (rx_seq_check(ep, a, h, 0))
			return;
		if (h->tenant != a->tenant) {
			refuse(ep, a, WP_BAD_AUTH, -EACCES,
			       "a frame of tenant %u on tenant %u's connection", h->tenant,
			       a->tenant);
			return;
		}
		wp_frame_encode(h, hb);
		if (wp_aead_begin(&a->rx, a->rx_seq) || wp_aead_aad(&a->rx, hb, sizeof(hb)) ||
		    wp_aead_aad(&a->rx, prefix, WP_XFER_PREFIX)) {
			wp_conn_fail(ep, -EIO);
			return;
		}
		a->rx_begun = true;
	}
	if (wp_aead_aad(&a->rx, piece, n)) {
		wp_conn_fail(ep, -EIO);
		return;
	}
	a->place(arg, h, prefix, piece, off, n);
}

static int auth_check(struct wp_ep *ep, const struct wp_frame_hdr *h, const uint8_t *payload)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	/* Paths without a byte stream (shm) authenticate their peer at setup:
	 * every frame then speaks for the tenant that proved its key. A
	 * client without a policy takes what an unverified server sends, as
	 * any client without a policy does. */
	if (!(ep->ctx->ops->caps & WP_CAP_STREAM)) {
		if (ep->peer_verified ? h->tenant == ep->tenant : !ep->ctx->guard)
			return 0;
		if (ep->peer_verified) {
			WP_CNT_ADD(bad_frames[WP_BAD_AUTH], 1);
			wp_log(ep->ctx, WP_LOG_WARN,
			       "a frame of tenant %u on tenant %u's %s connection: closing",
			       h->tenant, ep->tenant, ep->ctx->ops->name);
		} else {
			WP_CNT_ADD(bad_frames[WP_BAD_NO_HANDSHAKE], 1);
			wp_log(ep->ctx, WP_LOG_WARN,
			       "frame from tenant %u on a %s connection whose peer was not "
			       "authenticated at set-up: closing",
			       h->tenant, ep->ctx->ops->name);
		}
		wp_conn_fail(ep, -EACCES);
		return 1;
	}
	if (!a) {
		if (h->type != WP_FT_HELLO) {
			WP_CNT_ADD(bad_frames[WP_BAD_NO_HANDSHAKE], 1);
			wp_log(ep->ctx, WP_LOG_WARN,
			       "tenant %u sent a frame without the v2 handshake (no tenant key, or "
			       "an old client): closing the connection",
			       h->tenant);
			wp_conn_fail(ep, -EACCES);
			return 1;
		}
		a = aep_get(ep);
		if (!a) {
			wp_conn_fail(ep, -ENOMEM);
			return 1;
		}
		ep->guard = &auth_guard;
	}
	switch (a->hs) {
	case HS_DONE:
	case HS_WAIT_PROOF:
		if (a->hs == HS_WAIT_PROOF || !a->keyed) {
			if (h->type == WP_FT_HELLO)
				return on_hello(ep, a, h, payload);
			if (h->type == WP_FT_CLOSE) /* the client refused our proof */
				return 0;
			refuse(ep, a, WP_BAD_NO_HANDSHAKE, -EACCES,
			       "tenant %u sent a frame before proving its key", a->tenant);
			return 1;
		}
		return h->type == WP_FT_SEAL ? rx_seal(ep, a, h) : rx_frame(ep, a, h, payload);
	case HS_NONE:
	case HS_WAIT_SERVER:
		if (h->type == WP_FT_HELLO)
			return on_hello(ep, a, h, payload);
		if (h->type == WP_FT_CLOSE) /* the server said why it hung up */
			return 0;
		refuse(ep, a, WP_BAD_NO_HANDSHAKE, -EPROTO,
		       "a frame where the v2 handshake was due (an old or misconfigured peer)");
		return 1;
	default:
		return 1;
	}
}

static int auth_closing(struct wp_ep *ep, int status)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a)
		return status;
	if (a->hs == HS_FAILED && a->refused)
		status = a->refused;
	else if (a->hs != HS_DONE && !ep->accepted && status != -ECONNABORTED) {
		/* The server hung up before the handshake finished. */
		WP_CNT_ADD(bad_frames[WP_BAD_HANDSHAKE], 1);
		wp_log(ep->ctx, WP_LOG_WARN,
		       "tenant %u: the connection ended during the handshake "
		       "(server without this tenant, or not speaking v2)",
		       a->tenant);
		status = -EPROTO;
	}
	drop_held(ep, a, status);
	return status;
}

/* The raw key of a tenant of ctx's policy, for a path that authenticates its
 * peer at set-up (shm). */
static int auth_tenant_key(const struct wp_ctx *ctx, uint32_t tenant, uint8_t key[16])
{
	const struct wp_auth_tenant *t = auth_find(ctx->up[WP_LAYER_GUARD], tenant);

	if (!t)
		return -ENOKEY;
	memcpy(key, t->key, 16);
	return 0;
}

/* The key a connecting endpoint authenticates with (wp_ep_set_tenant_key). */
static int auth_ep_key(const struct wp_ep *ep, uint8_t key[16])
{
	const struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a || ep->accepted)
		return -ENOKEY;
	memcpy(key, a->key, 16);
	return 0;
}

static const struct wp_guard_ops auth_guard = {
	.tenant_key = auth_tenant_key,
	.ep_key = auth_ep_key,
	.check = auth_check,
	.chunk_end = auth_chunk_end,
	.rx_open = auth_rx_open,
	.tx = auth_tx,
	.queued = auth_queued,
	.flush = auth_flush,
	.closing = auth_closing,
	.admin = auth_admin,
	/* The v2 handshake ends the setup (hs_server_proof), not the first
	 * frame: a peer that never finishes it is closed at the handshake
	 * timeout (docs/limits.md). */
	.owns_handshake = true,
};

static void auth_ep_free(struct wp_ep *ep)
{
	struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	if (!a)
		return;
	drop_held(ep, a, -ECONNABORTED);
	if (a->keyed) {
		wp_aead_fini(&a->tx);
		wp_aead_fini(&a->rx);
	}
	free(a->held);
	keep_free(a);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	ep->up[WP_LAYER_GUARD] = NULL;
	ep->guard = NULL;
}

static void auth_free(struct wp_auth *a)
{
	if (!a)
		return;
	if (a->pol)
		OPENSSL_cleanse(a->pol, sizeof(*a->pol));
	free(a->pol);
	OPENSSL_cleanse(a, sizeof(*a) + a->n * sizeof(a->t[0]));
	free(a);
}

static void auth_ctx_free(struct wp_ctx *ctx)
{
	auth_free(ctx->up[WP_LAYER_GUARD]);
	ctx->up[WP_LAYER_GUARD] = NULL;
	ctx->guard = NULL;
}

static const struct wp_layer_ops auth_layer = {
	.ep_free = auth_ep_free,
	.ctx_free = auth_ctx_free,
};

/* The guard's state is released through conn's layer hooks. */
static void auth_install(struct wp_ctx *ctx)
{
	wp_conn_layer_set(ctx, WP_LAYER_GUARD, &auth_layer);
}

/* ---- public API ------------------------------------------------------------ */

int wp_ep_set_tenant_key_flags(struct wp_ep *ep, uint32_t tenant, const uint8_t key[16],
			       unsigned flags)
{
	struct auth_ep *a;
	int ret;

	if (!ep || !tenant || (flags & ~WP_TENANT_KEY_CONFIDENTIAL))
		return -EINVAL;
	if (ep->state != WP_EPS_CONNECTING && ep->state != WP_EPS_OPEN)
		return -ENOTCONN;
	if (ep->accepted || ep->up[WP_LAYER_GUARD])
		return -EALREADY; /* one handshake per connection */
	a = aep_get(ep);
	if (!a)
		return -ENOMEM;
	a->tenant = tenant;
	memcpy(a->key, key, sizeof(a->key));
	ep->tenant = tenant;
	/* Paths without a byte stream authenticate at set-up (shm): the path
	 * takes the key from the guard (ep_key); no handshake, no records. */
	if (!(ep->ctx->ops->caps & WP_CAP_STREAM) || ep->peer_verified) {
		a->hs = HS_DONE;
		/* Kept for the path's own handshake (xsk); records never run
		 * here (records_tx stays false), so auth_tx ignores it. */
		a->conf = flags & WP_TENANT_KEY_CONFIDENTIAL;
		ep->guard = &auth_guard;
		return 0;
	}
	a->conf = flags & WP_TENANT_KEY_CONFIDENTIAL;
	a->client.phase = WP_HELLO_CLIENT;
	a->client.tenant = tenant;
	a->client.flags = a->conf ? WP_HELLO_F_CONF : 0;
	ret = wp_auth_random(a->client.nonce, sizeof(a->client.nonce));
	if (!ret)
		ret = send_hello(ep, &a->client);
	if (ret) {
		auth_ep_free(ep);
		return ret == -EIO ? -EIO : -ENOMEM;
	}
	a->hs = HS_WAIT_SERVER;
	ep->guard = &auth_guard;
	return 0;
}

int wp_ep_set_tenant_key(struct wp_ep *ep, uint32_t tenant, const uint8_t key[16])
{
	return wp_ep_set_tenant_key_flags(ep, tenant, key, 0);
}

static int tenant_cmp(const void *a, const void *b)
{
	const struct wp_auth_tenant *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int wp_ctx_set_policy(struct wp_ctx *ctx, const struct wp_policy *p)
{
	struct wp_auth *a = NULL;

	if (p) {
		a = malloc(sizeof(*a) + p->ntenants * sizeof(a->t[0]));
		if (!a)
			return -ENOMEM;
		a->pol = malloc(sizeof(*a->pol));
		if (!a->pol) {
			free(a);
			return -ENOMEM;
		}
		/* The rules without the gateway globs (XDP never reads them). */
		memcpy(a->pol, p, sizeof(*p));
		a->pol->gw_pool = NULL;
		a->pol->gw_pool_len = a->pol->gw_pool_cap = 0;
		a->n = p->ntenants;
		for (uint32_t i = 0; i < p->ntenants; i++) {
			a->t[i].id = p->tenants[i].id;
			a->t[i].admin = !!(p->tenants[i].flags & WP_POLICY_TENANT_ADMIN);
			a->t[i].conf = !!(p->tenants[i].flags & WP_POLICY_TENANT_CONFIDENTIAL);
			memcpy(a->t[i].key, p->tenants[i].key, sizeof(a->t[i].key));
		}
		qsort(a->t, a->n, sizeof(a->t[0]), tenant_cmp);
	}
	auth_install(ctx);
	auth_free(ctx->up[WP_LAYER_GUARD]);
	ctx->up[WP_LAYER_GUARD] = a;
	ctx->guard = a ? &auth_guard : NULL; /* conn asks it about every new connection */
	/* A path chosen already: say so in its explain string too. */
	if (ctx->ops && (ctx->ops->caps & WP_CAP_STREAM)) {
		char *at = strstr(ctx->explain, WP_AUTH_EXPLAIN);
		size_t n = strlen(ctx->explain);

		if (a && !at && n + sizeof(WP_AUTH_EXPLAIN) <= sizeof(ctx->explain))
			memcpy(ctx->explain + n, WP_AUTH_EXPLAIN, sizeof(WP_AUTH_EXPLAIN));
		else if (!a && at)
			*at = '\0';
	}
	/* A path that enforces the rules below user space (xsk: in XDP). */
	if (ctx->ops && ctx->ops->policy_changed)
		return ctx->ops->policy_changed(ctx);
	return 0;
}

/* ---- for the xsk path (policy.h) ------------------------------------------ */

const struct wp_policy *wp_auth_policy(const struct wp_ctx *ctx)
{
	const struct wp_auth *a = ctx->guard ? ctx->up[WP_LAYER_GUARD] : NULL;

	return a ? a->pol : NULL;
}

bool wp_auth_ep_confidential(const struct wp_ep *ep)
{
	const struct auth_ep *a = ep->up[WP_LAYER_GUARD];

	return a && a->conf;
}

bool wp_auth_tenant_confidential(const struct wp_ctx *ctx, uint32_t tenant)
{
	const struct wp_auth_tenant *t = auth_find(ctx->up[WP_LAYER_GUARD], tenant);

	return t && t->conf;
}
