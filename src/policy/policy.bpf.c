// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * wirepath's front door in XDP: tenant ACLs by source prefix, destination
 * ports, request authentication for datagram frames and per-tenant token
 * buckets, decided before the host spends anything on a packet. The decision
 * itself is src/policy/decide.h, shared with the user-space twin; this file
 * is only its BPF "env": the maps, the spin-locked buckets, the per-CPU
 * counters and the final XDP action.
 *
 * Two programs share the maps: wpp_xdp_frags (SEC "xdp.frags", kernel >=
 * 5.18), which multi-buffer frames reach whole, so interfaces with a jumbo
 * MTU (9000, RoCE's 4096) take it in native mode; and wpp_xdp, the plain
 * one, for kernels that refuse the first. The loader tries them in that
 * order and says which one runs (docs/policy.md, "Jumbo frames").
 *
 * Maps (pinned by the loader under /sys/fs/bpf/wirepath/IFACE/):
 *   wpp_ctl      [1]              active set (0 or 1)
 *   wpp_config   [2]              per set: default verdict, datagram ports
 *   wpp_lpm4/6   LPM trie         (set, source prefix) -> tenant slot, rule
 *   wpp_tenants  [2 * SLOTS]      per set and slot: ports, rates, key
 *   wpp_buckets  [SLOTS]          token buckets, bpf_spin_lock per tenant
 *   wpp_cnt      per-CPU [N]      per reason and per verdict
 *   wpp_tcnt     per-CPU          per tenant slot and reason
 *   wpp_rcnt     per-CPU          per set and rule
 *   wpp_xsks     XSKMAP           AF_XDP sockets by rx queue (redirect)
 *   wpp_hdrs     per-CPU [1]      scratch: a multi-buffer frame's first
 *                                 WPP_HDR_MAX bytes (not pinned)
 *
 * Token buckets use one bpf_spin_lock per tenant rather than per-CPU buckets
 * with the rate split by CPU count: a single flow lands on one CPU (RSS, and
 * veth runs XDP on the sending CPU), so a per-CPU split would give that flow
 * 1/ncpu of its rate. Tenants without a rate never touch the lock.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "decide.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wpp_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WPP_SETS);
	__type(key, __u32);
	__type(value, struct wpp_config);
} wpp_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WPP_SETS * WPP_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct wpp_lpm4_key);
	__type(value, struct wpp_lpm_val);
} wpp_lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WPP_SETS * WPP_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct wpp_lpm6_key);
	__type(value, struct wpp_lpm_val);
} wpp_lpm6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WPP_SETS * WPP_SLOTS);
	__type(key, __u32);
	__type(value, struct wpp_tenant);
} wpp_tenants SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WPP_SLOTS);
	__type(key, __u32);
	__type(value, struct wpp_bucket);
} wpp_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WPP_CNT_N);
	__type(key, __u32);
	__type(value, struct wpp_cnt);
} wpp_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WPP_SLOTS * WPP_R__COUNT);
	__type(key, __u32);
	__type(value, struct wpp_cnt);
} wpp_tcnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WPP_SETS * WPP_MAX_RULES);
	__type(key, __u32);
	__type(value, struct wpp_cnt);
} wpp_rcnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, WPP_MAX_XSKS);
	__type(key, __u32);
	__type(value, __u32);
} wpp_xsks SEC(".maps");

/* Only for frames whose headers reach past their first buffer. */
struct wpp_hdrbuf {
	__u8 b[WPP_HDR_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wpp_hdrbuf);
} wpp_hdrs SEC(".maps");

struct wpp_env {
	int unused;
};

static __always_inline __u32 wpp_env_active(struct wpp_env *e)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&wpp_ctl, &k);

	return v ? *v : 0;
}

static __always_inline const struct wpp_config *wpp_env_config(struct wpp_env *e, __u32 set)
{
	return bpf_map_lookup_elem(&wpp_config, &set);
}

static __always_inline const struct wpp_lpm_val *wpp_env_lpm4(struct wpp_env *e,
							      const struct wpp_lpm4_key *k)
{
	return bpf_map_lookup_elem(&wpp_lpm4, k);
}

static __always_inline const struct wpp_lpm_val *wpp_env_lpm6(struct wpp_env *e,
							      const struct wpp_lpm6_key *k)
{
	return bpf_map_lookup_elem(&wpp_lpm6, k);
}

static __always_inline const struct wpp_tenant *wpp_env_tenant(struct wpp_env *e, __u32 set,
							       __u32 slot)
{
	__u32 k = set * WPP_SLOTS + slot;

	return bpf_map_lookup_elem(&wpp_tenants, &k);
}

static __always_inline __u32 wpp_env_take(struct wpp_env *e, __u32 slot, const struct wpp_tenant *t,
					  const struct wpp_config *cfg, __u64 len)
{
	__u64 now = cfg->clock_ns ? cfg->clock_ns : bpf_ktime_get_ns();
	struct wpp_bucket *b = bpf_map_lookup_elem(&wpp_buckets, &slot);
	__u32 r;

	if (!b)
		return WPP_R_RATE_PPS;
	/* Pairs with every other CPU taking from this tenant's bucket. */
	bpf_spin_lock(&b->lock);
	r = wpp_tb_take(b, t, now, len);
	bpf_spin_unlock(&b->lock);
	return r;
}

static __always_inline void wpp_cnt_add(void *map, __u32 idx, __u64 len)
{
	struct wpp_cnt *c = bpf_map_lookup_elem(map, &idx);

	if (c) { /* per-CPU: this CPU is the only writer */
		c->pkts++;
		c->bytes += len;
	}
}

static __always_inline void wpp_env_count(struct wpp_env *e, __u32 idx, __u64 len)
{
	wpp_cnt_add(&wpp_cnt, idx, len);
}

static __always_inline void wpp_env_tcount(struct wpp_env *e, __u32 slot, __u32 reason, __u64 len)
{
	wpp_cnt_add(&wpp_tcnt, slot * WPP_R__COUNT + reason, len);
}

static __always_inline void wpp_env_rcount(struct wpp_env *e, __u32 set, __u32 rule, __u64 len)
{
	if (rule < WPP_MAX_RULES)
		wpp_cnt_add(&wpp_rcnt, set * WPP_MAX_RULES + rule, len);
}

static __always_inline int wpp_action(struct xdp_md *ctx, __u32 res)
{
	switch (WPP_RES_VERDICT(res)) {
	case WPP_V_PASS:
		return XDP_PASS;
	case WPP_V_REDIRECT:
		/* No socket on this queue: the low bits of flags are the action
		 * (kernel >= 5.6), so traffic falls back to the stack. A
		 * multi-buffer frame reaches a socket bound without XDP_USE_SG
		 * as a redirect error (dropped by the kernel). */
		return bpf_redirect_map(&wpp_xsks, ctx->rx_queue_index, XDP_PASS);
	default:
		return XDP_DROP;
	}
}

/* Frames in one buffer only: a driver refuses it in native mode when its MTU
 * would need more (veth: ERANGE above about 3.5 KB). */
SEC("xdp")
int wpp_xdp(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	struct wpp_env env = { 0 };

	return wpp_action(ctx, wpp_decide(&env, data, end, (__u64)(ctx->data_end - ctx->data), 0));
}

/*
 * Multi-buffer frames: decided on the first buffer, where the headers are
 * (a page or more on veth and the usual NICs), with the whole frame's
 * length from bpf_xdp_get_buff_len for every length check and counter. If a
 * header the decision needs lies past the first buffer (a driver splitting
 * headers off early, or IPv6 extension headers kilobytes long), the first
 * WPP_HDR_MAX bytes are copied out with bpf_xdp_load_bytes and the decision
 * runs on the copy: it has counted nothing before asking (WPP_RES_MORE), so
 * every frame is decided and counted once, exactly as the twin does on the
 * whole frame.
 */
SEC("xdp.frags")
int wpp_xdp_frags(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	__u64 lin = (__u64)(ctx->data_end - ctx->data), len = bpf_xdp_get_buff_len(ctx);
	struct wpp_env env = { 0 };
	struct wpp_hdrbuf *hb;
	__u32 res, n, zero = 0;

	res = wpp_decide(&env, data, end, len, len > lin);
	if (res != WPP_RES_MORE)
		return wpp_action(ctx, res);
	n = len < WPP_HDR_MAX ? (__u32)len : WPP_HDR_MAX;
	hb = bpf_map_lookup_elem(&wpp_hdrs, &zero);
	/* Neither fails (a per-CPU array always has its entry; n is within the
	 * frame); the verifier wants the checks all the same. */
	if (!hb || n == 0 || bpf_xdp_load_bytes(ctx, 0, hb->b, n) < 0)
		return XDP_DROP;
	return wpp_action(ctx, wpp_decide(&env, hb->b, hb->b + n, len, 0));
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
