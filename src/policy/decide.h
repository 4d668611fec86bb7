/* SPDX-License-Identifier: MIT */
/*
 * The front door's per-packet decision, written once and compiled twice:
 * into the XDP program (src/policy/policy.bpf.c) and into the user-space
 * twin (src/policy/twin.c). The two differ only in the small "env" layer
 * that looks things up and counts: BPF maps and bpf_spin_lock there, plain
 * arrays here. tests/kern/test_policy_equiv.c runs both on one corpus and
 * demands identical verdicts and counters.
 *
 * The includer defines `struct wpp_env` and, after including this file, the
 * hooks declared below. Packet bytes are read only after an explicit bounds
 * check against `end` written the way the BPF verifier can follow it
 * (`if (p + n > end)`); lengths from headers are checked as integers against
 * the frame's whole length first, so the pointer checks never decide
 * anything on their own.
 *
 * Multi-buffer frames (XDP frags, docs/policy.md "Jumbo frames"): `end` may
 * be the end of the frame's first buffer while `len` is the whole frame.
 * Every length check uses `len`, every read is checked against `end`, so a
 * decision that reads only first-buffer bytes is the decision on the whole
 * frame. A read past `end` with `more` set returns WPP_RES_MORE before
 * anything is counted; the caller then decides again on a copy of the
 * frame's first WPP_HDR_MAX bytes (nothing is read beyond them).
 *
 * Order of checks (docs/policy.md has the full table): L2 (Ethernet, up to
 * two VLAN tags) -> ARP / non-IP -> L3 (IPv4 with options, IPv6 with up to
 * four extension headers) -> fragments -> L4 (TCP, UDP; others: default) ->
 * tenant by source prefix (LPM) -> destination port -> datagram frame
 * (tenant, tag) -> token buckets -> pass or redirect.
 */
#ifndef WPP_DECIDE_H
#define WPP_DECIDE_H

#include "wpp.h"
#include "siphash.h"

#define WPP_NOSLOT 0xffffffffu
/* Not a decision: the bytes to read lie past the first buffer (see above). */
#define WPP_RES_MORE 0xffffffffu

/* Fixed small loops: unrolled for the verifier's sake under clang; gcc (the
 * twin) decides for itself. */
#if defined(__clang__)
#define WPP_UNROLL _Pragma("unroll")
#else
#define WPP_UNROLL
#endif

struct wpp_env;

/* ---- hooks the includer defines ------------------------------------- */

/* Index of the active set (only bit 0 is used). */
static __always_inline __u32 wpp_env_active(struct wpp_env *e);
static __always_inline const struct wpp_config *wpp_env_config(struct wpp_env *e, __u32 set);
static __always_inline const struct wpp_lpm_val *wpp_env_lpm4(struct wpp_env *e,
							      const struct wpp_lpm4_key *k);
static __always_inline const struct wpp_lpm_val *wpp_env_lpm6(struct wpp_env *e,
							      const struct wpp_lpm6_key *k);
static __always_inline const struct wpp_tenant *wpp_env_tenant(struct wpp_env *e, __u32 set,
							       __u32 slot);
/* Take len bytes and one packet from slot's buckets (race-safe); 0 or a
 * WPP_R_RATE_* reason. Called only for tenants with a rate. */
static __always_inline __u32 wpp_env_take(struct wpp_env *e, __u32 slot, const struct wpp_tenant *t,
					  const struct wpp_config *cfg, __u64 len);
/* Counters: global (reason or WPP_CNT_VERDICT + verdict), tenant, rule. */
static __always_inline void wpp_env_count(struct wpp_env *e, __u32 idx, __u64 len);
static __always_inline void wpp_env_tcount(struct wpp_env *e, __u32 slot, __u32 reason, __u64 len);
static __always_inline void wpp_env_rcount(struct wpp_env *e, __u32 set, __u32 rule, __u64 len);

/* ---- token bucket (shared arithmetic; the caller holds the lock) ------ */

static __always_inline __u64 wpp_tb_refill(__u64 tok, __u64 rate, __u64 cap, __u64 fill_ns,
					   __u64 el)
{
	__u64 v;

	if (el >= fill_ns)
		return cap;
	v = tok + el * rate; /* el < fill_ns, so el * rate <= cap + rate: no overflow */
	return v > cap ? cap : v;
}

static __always_inline __u32 wpp_tb_take(struct wpp_bucket *b, const struct wpp_tenant *t,
					 __u64 now, __u64 len)
{
	__u64 el = 0, cost = len * WPP_NS;

	if (b->last_ns == 0) { /* a fresh bucket starts full */
		b->tok_pps = t->pps_cap;
		b->tok_bps = t->bps_cap;
		b->last_ns = now;
	} else if (now > b->last_ns) {
		/* Another CPU may have read an earlier clock and come second:
		 * time never runs backwards for the bucket. */
		el = now - b->last_ns;
		b->last_ns = now;
	}
	if (t->pps)
		b->tok_pps = wpp_tb_refill(b->tok_pps, t->pps, t->pps_cap, t->pps_fill_ns, el);
	if (t->bps)
		b->tok_bps = wpp_tb_refill(b->tok_bps, t->bps, t->bps_cap, t->bps_fill_ns, el);
	if (t->pps && b->tok_pps < WPP_NS)
		return WPP_R_RATE_PPS;
	if (t->bps && b->tok_bps < cost)
		return WPP_R_RATE_BPS;
	/* Both buckets have room: only now take from either. */
	if (t->pps)
		b->tok_pps -= WPP_NS;
	if (t->bps)
		b->tok_bps -= cost;
	return 0;
}

/* ---- verdicts ---------------------------------------------------------- */

static __always_inline __u32 wpp_reason_verdict(__u32 reason, const struct wpp_config *cfg)
{
	/* Loaded by the xsk path without a policy: it takes its port and
	 * nothing else; every other frame, well formed or not, is the
	 * kernel's to judge (the program sits on the host's interface). */
	if (cfg && cfg->xsk_open && reason != WPP_R_REDIRECT)
		return WPP_V_PASS;
	switch (reason) {
	case WPP_R_PASS:
	case WPP_R_ARP:
	case WPP_R_NDP:
		return WPP_V_PASS;
	case WPP_R_REDIRECT:
		return WPP_V_REDIRECT;
	case WPP_R_NO_TENANT:
	case WPP_R_NON_IP:
	case WPP_R_OTHER_L4:
		/* No valid rule set at all (never after a load): fail open, so
		 * attaching the program can never cut a host off by itself. */
		if (!cfg || !cfg->valid || cfg->default_verdict == WPP_V_PASS)
			return WPP_V_PASS;
		return WPP_V_DROP;
	default:
		return WPP_V_DROP;
	}
}

static __always_inline __u32 wpp_finish(struct wpp_env *env, const struct wpp_config *cfg,
					__u32 reason, __u32 slot, __u64 len)
{
	__u32 v = wpp_reason_verdict(reason, cfg);

	wpp_env_count(env, reason, len);
	wpp_env_count(env, WPP_CNT_VERDICT + v, len);
	if (slot < WPP_SLOTS)
		wpp_env_tcount(env, slot, reason, len);
	return WPP_RES(v, reason);
}

/* A read that would go past `end`: the frame is cut there, unless `more`
 * says the frame goes on in other buffers (then nothing has been counted). */
static __always_inline __u32 wpp_cut(struct wpp_env *env, const struct wpp_config *cfg,
				     __u32 reason, __u64 len, int more)
{
	if (more)
		return WPP_RES_MORE;
	return wpp_finish(env, cfg, reason, WPP_NOSLOT, len);
}

/* ---- the decision ------------------------------------------------------- */

/*
 * Decide one packet: data..end are its first bytes from the Ethernet header
 * on, len the length of the whole frame (end - data for a frame in one
 * buffer; passed in: BPF cannot subtract packet pointers). Counts it and
 * returns WPP_RES(verdict, reason); with more set, WPP_RES_MORE (nothing
 * counted) when a byte it must read is at or past end.
 */
static __always_inline __u32 wpp_decide(struct wpp_env *env, const __u8 *data, const __u8 *end,
					__u64 len, int more)
{
	__u32 set = wpp_env_active(env) & 1;
	const struct wpp_config *cfg = wpp_env_config(env, set);
	const struct wpp_lpm_val *lv;
	const struct wpp_tenant *t;
	struct wpp_lpm4_key k4;
	struct wpp_lpm6_key k6;
	const __u8 *p = data, *l4;
	__u32 l4len, ulen = 0, slot, rule, pbit, i, r, l3off = 14, daddr = 0;
	__u16 eth, dport;
	__u8 proto, v6 = 0;
	int hit, xsk;

	if (!cfg || !cfg->valid)
		return wpp_finish(env, cfg, WPP_R_NO_TENANT, WPP_NOSLOT, len);

	/* L2: Ethernet, then at most two 802.1Q / 802.1ad tags. */
	if (p + 14 > end)
		return wpp_cut(env, cfg, WPP_R_TRUNC_L2, len, more);
	eth = (__u16)(p[12] << 8 | p[13]);
	p += 14;
	WPP_UNROLL
	for (i = 0; i < 2; i++) {
		if (eth != 0x8100 && eth != 0x88a8)
			break;
		if (p + 4 > end)
			return wpp_cut(env, cfg, WPP_R_TRUNC_L2, len, more);
		eth = (__u16)(p[2] << 8 | p[3]);
		p += 4;
		l3off += 4;
	}
	if (eth == 0x8100 || eth == 0x88a8)
		return wpp_finish(env, cfg, WPP_R_VLAN_DEPTH, WPP_NOSLOT, len);
	if (eth == 0x0806)
		return wpp_finish(env, cfg, WPP_R_ARP, WPP_NOSLOT, len);

	if (eth == 0x0800) {
		__u32 ihl, tot;

		if (p + 20 > end)
			return wpp_cut(env, cfg, WPP_R_BAD_IP, len, more);
		ihl = (__u32)(p[0] & 0xf) * 4;
		tot = (__u32)(p[2] << 8 | p[3]);
		if ((p[0] >> 4) != 4 || ihl < 20 || tot < ihl)
			return wpp_finish(env, cfg, WPP_R_BAD_IP, WPP_NOSLOT, len);
		if (l3off + tot > len)
			return wpp_finish(env, cfg, WPP_R_BAD_IP, WPP_NOSLOT, len);
		if ((p[6] << 8 | p[7]) & 0x3fff) /* MF or a fragment offset */
			return wpp_finish(env, cfg, WPP_R_FRAGMENT, WPP_NOSLOT, len);
		proto = p[9];
		__builtin_memset(&k4, 0, sizeof(k4));
		k4.prefixlen = 8 + 32;
		k4.set = (__u8)set;
		k4.addr[0] = p[12];
		k4.addr[1] = p[13];
		k4.addr[2] = p[14];
		k4.addr[3] = p[15];
		daddr = (__u32)p[16] << 24 | (__u32)p[17] << 16 | (__u32)p[18] << 8 | p[19];
		l4 = p + ihl;
		l4len = tot - ihl;
	} else if (eth == 0x86dd) {
		__u32 hl;
		__u8 nh;

		if (p + 40 > end)
			return wpp_cut(env, cfg, WPP_R_BAD_IP, len, more);
		l4len = (__u32)(p[4] << 8 | p[5]);
		if ((p[0] >> 4) != 6)
			return wpp_finish(env, cfg, WPP_R_BAD_IP, WPP_NOSLOT, len);
		if (l3off + 40 + l4len > len)
			return wpp_finish(env, cfg, WPP_R_BAD_IP, WPP_NOSLOT, len);
		nh = p[6];
		__builtin_memset(&k6, 0, sizeof(k6));
		k6.prefixlen = 8 + 128;
		k6.set = (__u8)set;
		WPP_UNROLL
		for (i = 0; i < 16; i++)
			k6.addr[i] = p[8 + i];
		l4 = p + 40;
		v6 = 1;
		/* Hop-by-hop (0), routing (43), destination options (60): skip.
		 * Fragment (44): a fragment. Anything else is the L4 header. */
		WPP_UNROLL
		for (i = 0; i < WPP_V6_EXT_MAX; i++) {
			if (nh == 44)
				return wpp_finish(env, cfg, WPP_R_FRAGMENT, WPP_NOSLOT, len);
			if (nh != 0 && nh != 43 && nh != 60)
				break;
			if (l4len < 8)
				return wpp_finish(env, cfg, WPP_R_BAD_IP, WPP_NOSLOT, len);
			if (l4 + 8 > end)
				return wpp_cut(env, cfg, WPP_R_BAD_IP, len, more);
			hl = ((__u32)l4[1] + 1) * 8;
			if (hl > l4len)
				return wpp_finish(env, cfg, WPP_R_BAD_IP, WPP_NOSLOT, len);
			nh = l4[0];
			l4 += hl;
			l4len -= hl;
		}
		if (nh == 44)
			return wpp_finish(env, cfg, WPP_R_FRAGMENT, WPP_NOSLOT, len);
		if (nh == 0 || nh == 43 || nh == 60)
			return wpp_finish(env, cfg, WPP_R_IPV6_EXT, WPP_NOSLOT, len);
		if (nh == 58) { /* ICMPv6: neighbour discovery must work */
			if (l4len < 1)
				return wpp_finish(env, cfg, WPP_R_BAD_L4, WPP_NOSLOT, len);
			if (l4 + 1 > end)
				return wpp_cut(env, cfg, WPP_R_BAD_L4, len, more);
			if (l4[0] >= 133 && l4[0] <= 137)
				return wpp_finish(env, cfg, WPP_R_NDP, WPP_NOSLOT, len);
			return wpp_finish(env, cfg, WPP_R_OTHER_L4, WPP_NOSLOT, len);
		}
		proto = nh;
	} else {
		return wpp_finish(env, cfg, WPP_R_NON_IP, WPP_NOSLOT, len);
	}

	/* L4: TCP and UDP only; the destination port is what rules name. */
	if (proto == 6) {
		__u32 doff;

		if (l4len < 20)
			return wpp_finish(env, cfg, WPP_R_BAD_L4, WPP_NOSLOT, len);
		if (l4 + 20 > end)
			return wpp_cut(env, cfg, WPP_R_BAD_L4, len, more);
		doff = (__u32)(l4[12] >> 4) * 4;
		if (doff < 20 || doff > l4len)
			return wpp_finish(env, cfg, WPP_R_BAD_L4, WPP_NOSLOT, len);
		dport = (__u16)(l4[2] << 8 | l4[3]);
		pbit = WPP_P_TCP;
	} else if (proto == 17) {
		if (l4len < 8)
			return wpp_finish(env, cfg, WPP_R_BAD_L4, WPP_NOSLOT, len);
		if (l4 + 8 > end)
			return wpp_cut(env, cfg, WPP_R_BAD_L4, len, more);
		ulen = (__u32)(l4[4] << 8 | l4[5]);
		if (ulen < 8 || ulen > l4len)
			return wpp_finish(env, cfg, WPP_R_BAD_L4, WPP_NOSLOT, len);
		dport = (__u16)(l4[2] << 8 | l4[3]);
		pbit = WPP_P_UDP;
	} else {
		return wpp_finish(env, cfg, WPP_R_OTHER_L4, WPP_NOSLOT, len);
	}

	/* Counting starts below, and one more read follows (a datagram's frame
	 * header): a frame in several buffers whose first one ends before it
	 * is decided on a copy, before anything is counted. */
	if (more && pbit == WPP_P_UDP && l4 + 8 + WPP_FRAME_HDR > end)
		return WPP_RES_MORE;

	/* The xsk:// path's port (on its address, IPv4: xsk_addr): loaded
	 * without a policy (xsk_open), every source's datagrams go to its
	 * socket; else only an allowed tenant's. */
	xsk = pbit == WPP_P_UDP && cfg->xsk_lo && dport >= cfg->xsk_lo && dport <= cfg->xsk_hi &&
	      (!cfg->xsk_addr || (!v6 && daddr == cfg->xsk_addr));
	if (xsk && cfg->xsk_open)
		return wpp_finish(env, cfg, WPP_R_REDIRECT, WPP_NOSLOT, len);

	/* Tenant: longest source prefix in the active set. */
	lv = v6 ? wpp_env_lpm6(env, &k6) : wpp_env_lpm4(env, &k4);
	if (!lv)
		return wpp_finish(env, cfg, WPP_R_NO_TENANT, WPP_NOSLOT, len);
	slot = lv->slot;
	rule = lv->rule;
	if (slot >= WPP_SLOTS)
		return wpp_finish(env, cfg, WPP_R_NO_TENANT, WPP_NOSLOT, len);
	t = wpp_env_tenant(env, set, slot);
	if (!t || !(t->flags & WPP_TF_VALID))
		return wpp_finish(env, cfg, WPP_R_NO_TENANT, WPP_NOSLOT, len);
	wpp_env_rcount(env, set, rule, len);

	/* Destination port. */
	hit = 0;
	WPP_UNROLL
	for (i = 0; i < WPP_MAX_RANGES; i++) {
		if (i >= t->nranges)
			break;
		if ((t->ranges[i].proto & pbit) && dport >= t->ranges[i].lo &&
		    dport <= t->ranges[i].hi) {
			rule = t->ranges[i].rule;
			hit = 1;
			break;
		}
	}
	if (!hit)
		return wpp_finish(env, cfg, WPP_R_PORT, slot, len);
	wpp_env_rcount(env, set, rule, len);

	/* A datagram port: the payload is exactly one frame, tag checked. */
	if (pbit == WPP_P_UDP) {
		hit = 0;
		WPP_UNROLL
		for (i = 0; i < WPP_MAX_DGRAM; i++) {
			if (i >= cfg->ndgram)
				break;
			if (dport >= cfg->dgram[i].lo && dport <= cfg->dgram[i].hi) {
				hit = 1;
				break;
			}
		}
		if (hit) {
			const __u8 *pl = l4 + 8;
			__u32 plen = ulen - 8;
			__u8 h[WPP_FRAME_HDR];

			if (plen < WPP_FRAME_HDR)
				return wpp_finish(env, cfg, WPP_R_BAD_FRAME, slot, len);
			if (pl + WPP_FRAME_HDR > end)
				return wpp_finish(env, cfg, WPP_R_BAD_FRAME, slot, len);
			__builtin_memcpy(h, pl, WPP_FRAME_HDR);
			/* Magic, version and length: enough to know which bytes the
			 * tag covers. Type and flags are the receiver's to judge
			 * (the frame codec), so new frame types need no new XDP. */
			if (h[0] != 'W' || h[1] != 'P' || h[2] != 'F' || h[3] != '1' ||
			    h[4] != WPP_FRAME_VERSION || wpp_le32(h + 24) != plen - WPP_FRAME_HDR)
				return wpp_finish(env, cfg, WPP_R_BAD_FRAME, slot, len);
			if (wpp_le32(h + 8) != t->id)
				return wpp_finish(env, cfg, WPP_R_TENANT_MISMATCH, slot, len);
			if (wpp_le64(h + WPP_FRAME_AUTH_COVER) != wpp_siphash24_32(t->k0, t->k1, h))
				return wpp_finish(env, cfg, WPP_R_AUTH, slot, len);
		}
	}

	/* Rate: only after everything else, so refused traffic costs no tokens. */
	if (t->pps || t->bps) {
		r = wpp_env_take(env, slot, t, cfg, len);
		if (r)
			return wpp_finish(env, cfg, r, slot, len);
	}
	return wpp_finish(env, cfg,
			  ((t->flags & WPP_TF_REDIRECT) || xsk) ? WPP_R_REDIRECT : WPP_R_PASS, slot,
			  len);
}

#endif
