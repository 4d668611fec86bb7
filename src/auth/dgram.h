/* SPDX-License-Identifier: MIT */
/*
 * Datagram sessions for frame authentication v2 (internal; the AF_XDP path
 * of a later issue is its user): per-session keys, one AES-256-GCM tag per
 * datagram over its header and payload, an explicit 64-bit sequence number,
 * and an anti-replay window on receive (a sliding bitmap as IPsec has:
 * RFC 4303 3.4.3, with RFC 6479's block ring so an advance clears whole
 * words). docs/protocol.md, "Datagrams", has the layout and says which check
 * runs where: XDP keeps the cheap per-tenant SipHash header tag (floods and
 * forged tenants die before the host pays); user space checks the session,
 * the window and the GCM tag.
 *
 * A sealed datagram (one UDP payload):
 *
 *   0        40          48      56              56+plen        +16
 *   | header | session id | seq  | payload (plen) | GCM tag (16) |
 *
 * The header is the 40-byte frame header, version 1, so the XDP program's
 * checks apply unchanged: `len` is everything after it (16 + plen + 16),
 * `auth` the SipHash-2-4 tag of bytes 0..31 with the tenant's static key.
 * The GCM tag covers the whole header (its SipHash tag included), the
 * session id, seq and the payload; with `encrypt` the payload is also
 * encrypted. The GCM nonce is the direction's IV XOR seq (crypto.h).
 *
 * Keys: HKDF-SHA256 with the tenant key as input keying material and
 * tenant (le32) || nonce_c || nonce_s as salt, where the nonces are the two
 * sides' 32-byte handshake nonces (the same kind of exchange as the stream
 * and shm handshakes): labels "wirepath dgram v2 c2s" and "... s2c" give each
 * direction a 32-byte key and a 12-byte IV, "... id" the 64-bit session id.
 *
 * Threading: a session belongs to one thread, like a context.
 */
#ifndef WP_AUTH_DGRAM_H
#define WP_AUTH_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/crypto.h"
#include "core/frame.h"

#define WP_DGRAM_PREFIX 16u /* session id + seq, after the header */
#define WP_DGRAM_OVERHEAD (WP_DGRAM_PREFIX + WP_AUTH_TAG)
#define WP_DGRAM_WINDOW 1024u                     /* packets: the anti-replay window */
#define WP_DGRAM_WORDS (WP_DGRAM_WINDOW / 64 + 1) /* + one block, RFC 6479 */

/* Why a received datagram was refused, in the order the checks run. */
enum wp_dgram_drop {
	WP_DGRAM_TRUNCATED = 0, /* shorter than a header and the overhead */
	WP_DGRAM_BAD_HEADER,    /* the frame decoder refused the header */
	WP_DGRAM_BAD_LEN,       /* len is not the rest of the datagram */
	WP_DGRAM_TENANT,        /* not this session's tenant */
	WP_DGRAM_HDR_TAG,       /* SipHash header tag wrong (what XDP drops) */
	WP_DGRAM_SESSION,       /* another session's id */
	WP_DGRAM_TOO_OLD,       /* seq 0, or older than the window */
	WP_DGRAM_REPLAY,        /* seq already received */
	WP_DGRAM_BAD_TAG,       /* the GCM tag does not verify */
	WP_DGRAM_DROP__COUNT
};

struct wp_dgram_stats {
	uint64_t sealed, opened;
	uint64_t drop[WP_DGRAM_DROP__COUNT];
	uint64_t window_jumps; /* accepted seqs a window or more ahead of the last */
};

struct wp_dgram_session {
	uint32_t tenant;
	uint64_t k0, k1; /* the tenant's static key, for the header tag */
	uint64_t id;
	bool encrypt;
	struct wp_aead tx, rx;
	uint64_t tx_seq; /* last sent */
	/* anti-replay: highest accepted seq and the bitmap below it */
	uint64_t top;
	uint64_t bits[WP_DGRAM_WORDS];
	struct wp_dgram_stats st;
};

/*
 * Key a session for one side (initiator: the side whose nonce is nonce_c).
 * encrypt: also encrypt payloads (confidentiality); integrity otherwise.
 * Returns 0, -EINVAL (tenant 0), -ENOMEM, -EIO. wp_dgram_fini releases it.
 */
int wp_dgram_init(struct wp_dgram_session *s, const uint8_t key[16], uint32_t tenant,
		  const uint8_t nonce_c[WP_AUTH_NONCE], const uint8_t nonce_s[WP_AUTH_NONCE],
		  bool initiator, bool encrypt);
void wp_dgram_fini(struct wp_dgram_session *s);

/*
 * Seal one frame into out (cap bytes): h gives type, flags, method, req_id
 * and aux; tenant, len and auth are set here. Returns the datagram length,
 * -EMSGSIZE (does not fit cap, or len > max_payload), -EOVERFLOW (the
 * sequence space is spent: re-key), -EIO.
 */
int wp_dgram_seal(struct wp_dgram_session *s, const struct wp_frame_hdr *h, const void *payload,
		  size_t len, uint32_t max_payload, uint8_t *out, size_t cap);

/*
 * Open one received datagram in place: on success *h is its header (len =
 * the payload's length, the overhead taken off), *payload points into pkt
 * (decrypted in place with encrypt) and the window has advanced. Returns 0,
 * or -(1 + enum wp_dgram_drop) for a refused datagram (counted in s->st),
 * or -EIO. The window moves only for datagrams whose tag verified.
 */
int wp_dgram_open(struct wp_dgram_session *s, uint8_t *pkt, size_t n, uint32_t max_payload,
		  struct wp_frame_hdr *h, const uint8_t **payload);

/* "truncated", "bad_header", ... */
const char *wp_dgram_drop_name(unsigned reason);

#endif
