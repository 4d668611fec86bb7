// SPDX-License-Identifier: MIT
/*
 * Datagram sessions: keys, sealing, opening and the anti-replay window
 * (dgram.h has the layout and the why). The checks on receive run cheapest
 * first, and the window is only read before the tag verified and only
 * written after, so a forged datagram can never move it (RFC 4303 3.4.3).
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dgram.h"
#include "policy/siphash.h"

#define LABEL_C2S "wirepath dgram v2 c2s"
#define LABEL_S2C "wirepath dgram v2 s2c"
#define LABEL_ID "wirepath dgram v2 id"

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* One direction's key and IV from the handshake. */
static int derive(const uint8_t key[16], const uint8_t *salt, size_t saltlen, const char *label,
		  struct wp_aead *a, bool seal)
{
	uint8_t okm[WP_AUTH_KEYLEN + WP_AUTH_IVLEN];
	int ret = wp_auth_hkdf(key, 16, salt, saltlen, label, okm, sizeof(okm));

	if (ret == 0)
		ret = wp_aead_init(a, okm, okm + WP_AUTH_KEYLEN, seal);
	OPENSSL_cleanse(okm, sizeof(okm));
	return ret;
}

int wp_dgram_init(struct wp_dgram_session *s, const uint8_t key[16], uint32_t tenant,
		  const uint8_t nonce_c[WP_AUTH_NONCE], const uint8_t nonce_s[WP_AUTH_NONCE],
		  bool initiator, bool encrypt)
{
	uint8_t salt[4 + 2 * WP_AUTH_NONCE], id[8];
	int ret;

	memset(s, 0, sizeof(*s));
	if (!tenant)
		return -EINVAL;
	salt[0] = (uint8_t)tenant;
	salt[1] = (uint8_t)(tenant >> 8);
	salt[2] = (uint8_t)(tenant >> 16);
	salt[3] = (uint8_t)(tenant >> 24);
	memcpy(salt + 4, nonce_c, WP_AUTH_NONCE);
	memcpy(salt + 4 + WP_AUTH_NONCE, nonce_s, WP_AUTH_NONCE);
	s->tenant = tenant;
	s->encrypt = encrypt;
	s->k0 = wpp_le64(key);
	s->k1 = wpp_le64(key + 8);
	ret = wp_auth_hkdf(key, 16, salt, sizeof(salt), LABEL_ID, id, sizeof(id));
	if (ret < 0)
		return ret;
	s->id = get_le64(id);
	ret = derive(key, salt, sizeof(salt), initiator ? LABEL_C2S : LABEL_S2C, &s->tx, true);
	if (ret < 0)
		return ret;
	ret = derive(key, salt, sizeof(salt), initiator ? LABEL_S2C : LABEL_C2S, &s->rx, false);
	if (ret < 0) {
		wp_aead_fini(&s->tx);
		return ret;
	}
	return 0;
}

void wp_dgram_fini(struct wp_dgram_session *s)
{
	wp_aead_fini(&s->tx);
	wp_aead_fini(&s->rx);
	OPENSSL_cleanse(s, sizeof(*s));
}

int wp_dgram_seal(struct wp_dgram_session *s, const struct wp_frame_hdr *h, const void *payload,
		  size_t len, uint32_t max_payload, uint8_t *out, size_t cap)
{
	struct wp_frame_hdr hh = *h;
	size_t total = WP_FRAME_HDR + WP_DGRAM_OVERHEAD + len;
	uint8_t *body = out + WP_FRAME_HDR + WP_DGRAM_PREFIX;
	struct iovec aad[2];
	int ret;

	if (len > max_payload || len > UINT32_MAX - WP_DGRAM_OVERHEAD || total > cap)
		return -EMSGSIZE;
	if (s->tx_seq == UINT64_MAX)
		return -EOVERFLOW;
	hh.magic = WP_FRAME_MAGIC;
	hh.version = WP_FRAME_VERSION;
	hh.tenant = s->tenant;
	hh.len = (uint32_t)(WP_DGRAM_OVERHEAD + len);
	hh.auth = 0;
	wp_frame_encode(&hh, out);
	/* The cheap tag XDP checks: SipHash-2-4 of header bytes 0..31. */
	put_le64(out + 32, wpp_siphash24_32(s->k0, s->k1, out));
	put_le64(out + WP_FRAME_HDR, s->id);
	put_le64(out + WP_FRAME_HDR + 8, s->tx_seq + 1);
	if (len)
		memmove(body, payload, len);
	aad[0] = (struct iovec){ out, WP_FRAME_HDR + WP_DGRAM_PREFIX };
	aad[1] = (struct iovec){ body, s->encrypt ? 0 : len };
	ret = wp_aead_seal(&s->tx, s->tx_seq + 1, aad, 2, body, s->encrypt ? len : 0, body + len);
	if (ret < 0)
		return ret;
	s->tx_seq++;
	s->st.sealed++;
	return (int)total;
}

/* ---- the anti-replay window -------------------------------------------- */

/* 0 if seq may be new; else the drop reason. Reads only. */
static int window_check(const struct wp_dgram_session *s, uint64_t seq)
{
	if (seq == 0)
		return WP_DGRAM_TOO_OLD; /* never sent: the first is 1 */
	if (seq > s->top)
		return 0;
	if (s->top - seq >= WP_DGRAM_WINDOW)
		return WP_DGRAM_TOO_OLD;
	if (s->bits[(seq / 64) % WP_DGRAM_WORDS] & (1ull << (seq % 64)))
		return WP_DGRAM_REPLAY;
	return 0;
}

/* Record seq (its tag verified). Moving ahead clears the whole words the
 * window slides over, at most all of them: no per-packet shifting. */
static void window_update(struct wp_dgram_session *s, uint64_t seq)
{
	if (seq > s->top) {
		uint64_t from = s->top / 64, to = seq / 64, n = to - from;

		if (n > WP_DGRAM_WORDS)
			n = WP_DGRAM_WORDS;
		for (uint64_t i = 1; i <= n; i++)
			s->bits[(from + i) % WP_DGRAM_WORDS] = 0;
		if (seq - s->top >= WP_DGRAM_WINDOW)
			s->st.window_jumps++;
		s->top = seq;
	}
	s->bits[(seq / 64) % WP_DGRAM_WORDS] |= 1ull << (seq % 64);
}

static int drop(struct wp_dgram_session *s, int reason)
{
	s->st.drop[reason]++;
	return -(1 + reason);
}

int wp_dgram_open(struct wp_dgram_session *s, uint8_t *pkt, size_t n, uint32_t max_payload,
		  struct wp_frame_hdr *h, const uint8_t **payload)
{
	uint8_t *body = pkt + WP_FRAME_HDR + WP_DGRAM_PREFIX;
	struct iovec aad[2];
	uint64_t seq;
	size_t plen;
	int reason, ret;

	if (n < WP_FRAME_HDR + WP_DGRAM_OVERHEAD)
		return drop(s, WP_DGRAM_TRUNCATED);
	if (wp_frame_decode(pkt, n,
			    max_payload > UINT32_MAX - WP_DGRAM_OVERHEAD
				    ? UINT32_MAX
				    : max_payload + WP_DGRAM_OVERHEAD,
			    h, &reason) <= 0)
		return drop(s, WP_DGRAM_BAD_HEADER);
	if (h->len != n - WP_FRAME_HDR)
		return drop(s, WP_DGRAM_BAD_LEN);
	if (h->tenant != s->tenant)
		return drop(s, WP_DGRAM_TENANT);
	if (h->auth != wpp_siphash24_32(s->k0, s->k1, pkt))
		return drop(s, WP_DGRAM_HDR_TAG);
	if (get_le64(pkt + WP_FRAME_HDR) != s->id)
		return drop(s, WP_DGRAM_SESSION);
	seq = get_le64(pkt + WP_FRAME_HDR + 8);
	reason = window_check(s, seq);
	if (reason)
		return drop(s, reason);
	plen = n - WP_FRAME_HDR - WP_DGRAM_OVERHEAD;
	aad[0] = (struct iovec){ pkt, WP_FRAME_HDR + WP_DGRAM_PREFIX };
	aad[1] = (struct iovec){ body, s->encrypt ? 0 : plen };
	ret = wp_aead_open(&s->rx, seq, aad, 2, body, s->encrypt ? plen : 0, body + plen);
	if (ret == -EBADMSG)
		return drop(s, WP_DGRAM_BAD_TAG);
	if (ret < 0)
		return ret;
	window_update(s, seq);
	s->st.opened++;
	h->len = (uint32_t)plen;
	*payload = body;
	return 0;
}

const char *wp_dgram_drop_name(unsigned reason)
{
	static const char *const names[WP_DGRAM_DROP__COUNT] = {
		[WP_DGRAM_TRUNCATED] = "truncated", [WP_DGRAM_BAD_HEADER] = "bad_header",
		[WP_DGRAM_BAD_LEN] = "bad_len",     [WP_DGRAM_TENANT] = "tenant",
		[WP_DGRAM_HDR_TAG] = "hdr_tag",     [WP_DGRAM_SESSION] = "session",
		[WP_DGRAM_TOO_OLD] = "too_old",     [WP_DGRAM_REPLAY] = "replay",
		[WP_DGRAM_BAD_TAG] = "bad_tag",
	};

	return reason < WP_DGRAM_DROP__COUNT ? names[reason] : "unknown";
}
