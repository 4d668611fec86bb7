/* SPDX-License-Identifier: MIT */
/*
 * The front door's shared vocabulary: limits, drop reasons, verdicts and the
 * layout of every BPF map value. This header compiles twice, for the XDP
 * program (clang -target bpf) and for user space (the loader, the twin, the
 * tests), so both sides agree on every byte. Only fixed-width kernel types,
 * no pointers, no padding the compiler could place differently.
 *
 * Two complete rule sets (A = 0, B = 1) live side by side in every per-set
 * map; the one-entry array `wpp_ctl` names the active one. A packet reads the
 * active index once and uses that set for every lookup, so it sees either the
 * old rules or the new ones, never a mix. See docs/policy.md, "Reload".
 */
#ifndef WPP_H
#define WPP_H

#include <linux/types.h>
#include <linux/bpf.h> /* struct bpf_spin_lock */

#define WPP_SETS 2
#define WPP_MAX_TENANTS 128 /* per rules file */
/* Tenant slots. A tenant keeps its slot across reloads (so its counters and
 * its token bucket carry on); a new tenant gets a slot the active set does
 * not use, so during a reload old and new sets may together need twice the
 * tenants of one file. */
#define WPP_SLOTS (2 * WPP_MAX_TENANTS)
#define WPP_MAX_PREFIXES 1024 /* per family per rules file */
#define WPP_MAX_RANGES 16     /* destination port ranges per tenant */
#define WPP_MAX_DGRAM 8       /* datagram port ranges (one frame per UDP datagram) */
#define WPP_MAX_RULES (2 * WPP_MAX_PREFIXES + WPP_MAX_TENANTS * WPP_MAX_RANGES)
#define WPP_MAX_XSKS 64  /* AF_XDP sockets by rx queue */
#define WPP_V6_EXT_MAX 4 /* IPv6 extension headers walked before giving up */
#define WPP_NAME_MAX 32  /* tenant name, NUL included */

/* Rates are kept in token-nanoseconds (tokens * 1e9), so a refill is one
 * multiply and the per-packet path never divides. Limits keep every product
 * inside 64 bits: tokens + rate * elapsed stays below 2 * 4e18 + 1e11. */
#define WPP_NS 1000000000ull
#define WPP_BURST_MAX 4000000000ull  /* 4e9 tokens (packets or bytes) */
#define WPP_RATE_MAX 100000000000ull /* 1e11 tokens per second */

/* Frame layout the datagram check reads (src/core/frame.h, docs/protocol.md). */
#define WPP_FRAME_HDR 40
#define WPP_FRAME_VERSION 2     /* src/core/frame.h WP_FRAME_VERSION */
#define WPP_FRAME_AUTH_COVER 32 /* the tag covers header bytes 0..31 */

/* The furthest the decision ever reads into a frame: Ethernet with two VLAN
 * tags, IPv6, WPP_V6_EXT_MAX extension headers of the largest size (2048
 * bytes each), UDP and a frame header (IPv4 and TCP stop far earlier). A
 * frame's first WPP_HDR_MAX bytes and its length decide it; XDP copies them
 * when a multi-buffer frame's first buffer is shorter (decide.h). */
#define WPP_HDR_MAX (14 + 2 * 4 + 40 + WPP_V6_EXT_MAX * 2048 + 8 + WPP_FRAME_HDR)

enum wpp_verdict {
	WPP_V_DROP = 0,
	WPP_V_PASS = 1,
	WPP_V_REDIRECT = 2, /* to the AF_XDP socket of the rx queue; XDP_PASS if none */
	WPP_V__COUNT
};

/* Why a packet got its verdict. Order is ABI (counter indices, JSON names in
 * src/policy/names.c, docs/policy.md); append only. */
enum wpp_reason {
	WPP_R_PASS = 0,        /* allowed by its tenant's rules */
	WPP_R_REDIRECT,        /* allowed; the tenant is steered to AF_XDP */
	WPP_R_ARP,             /* ARP: always passed (IPv4 needs it) */
	WPP_R_NDP,             /* ICMPv6 133..137: always passed (IPv6 needs it) */
	WPP_R_NO_TENANT,       /* source in no tenant's prefixes: default verdict */
	WPP_R_NON_IP,          /* another ethertype: default verdict */
	WPP_R_OTHER_L4,        /* IP but not TCP or UDP: default verdict */
	WPP_R_PORT,            /* destination port not allowed for the tenant */
	WPP_R_RATE_PPS,        /* over the tenant's packet rate */
	WPP_R_RATE_BPS,        /* over the tenant's byte rate */
	WPP_R_AUTH,            /* datagram frame with a wrong tag */
	WPP_R_TENANT_MISMATCH, /* datagram frame naming another tenant */
	WPP_R_BAD_FRAME,       /* datagram port, payload not exactly one valid header + len */
	WPP_R_FRAGMENT,        /* IPv4 MF/offset or an IPv6 fragment header */
	WPP_R_TRUNC_L2,        /* shorter than its Ethernet / VLAN headers */
	WPP_R_VLAN_DEPTH,      /* more than two VLAN tags */
	WPP_R_BAD_IP,          /* bad version, IHL, lengths; truncated IP or extension header */
	WPP_R_BAD_L4,          /* truncated or inconsistent TCP/UDP header */
	WPP_R_IPV6_EXT,        /* more than WPP_V6_EXT_MAX IPv6 extension headers */
	WPP_R__COUNT
};

/* Global counters (wpp_cnt): one per reason, then one per verdict. */
#define WPP_CNT_VERDICT WPP_R__COUNT
#define WPP_CNT_N (WPP_R__COUNT + WPP_V__COUNT)

/* The decision, as wpp_decide() returns it. */
#define WPP_RES(verdict, reason) ((__u32)(verdict) | (__u32)(reason) << 8)
#define WPP_RES_VERDICT(r) ((r)&0xff)
#define WPP_RES_REASON(r) ((r) >> 8)

struct wpp_cnt {
	__u64 pkts;
	__u64 bytes;
};

/* Per set: wpp_config[set]. */
struct wpp_config {
	__u32 valid;
	__u32 default_verdict; /* WPP_V_DROP or WPP_V_PASS */
	__u64 clock_ns;        /* tests only: non-zero replaces the clock */
	__u32 ndgram;
	__u32 pad;
	struct {
		__u16 lo, hi;
	} dgram[WPP_MAX_DGRAM]; /* UDP ports carrying one frame per datagram */
	/* The xsk:// path's UDP ports (0 = none): datagrams to them from an
	 * allowed tenant are redirected to the AF_XDP socket of their rx
	 * queue; with xsk_open (a path loaded without a policy), datagrams to
	 * them from any source are, before any tenant lookup. xsk_addr (host
	 * order; 0 = any): only datagrams to this IPv4 address are the path's
	 * (another socket may hold the same port on another address, and the
	 * path speaks IPv4 only). */
	__u16 xsk_lo, xsk_hi;
	__u32 xsk_open;
	__u32 xsk_addr;
	__u32 pad2;
};

/* LPM keys: the set index is the first byte of the data, so one trie holds
 * both sets and a lookup in set s can only match set s's entries. */
struct wpp_lpm4_key {
	__u32 prefixlen; /* 8 + prefix length */
	__u8 set;
	__u8 addr[4];
	__u8 pad[3];
};

struct wpp_lpm6_key {
	__u32 prefixlen; /* 8 + prefix length */
	__u8 set;
	__u8 addr[16];
	__u8 pad[3];
};

struct wpp_lpm_val {
	__u32 slot; /* tenant slot */
	__u32 rule; /* rule index within the set, for per-rule counters */
};

#define WPP_P_TCP 1
#define WPP_P_UDP 2

struct wpp_range {
	__u16 lo, hi;
	__u8 proto; /* WPP_P_* bits */
	__u8 pad;
	__u16 rule;
};

#define WPP_TF_VALID (1u << 0)
#define WPP_TF_ADMIN (1u << 1)    /* may call reserved methods (stats) */
#define WPP_TF_REDIRECT (1u << 2) /* allowed traffic goes to AF_XDP */
#define WPP_TF_CONF (1u << 3)     /* stream connections must be encrypted (user space only) */

/* Per set and slot: wpp_tenants[set * WPP_SLOTS + slot]. */
struct wpp_tenant {
	__u32 id;
	__u32 flags;
	__u64 k0, k1;       /* SipHash key: key bytes 0..7 and 8..15, little-endian */
	__u64 pps, pps_cap; /* rate (0 = unlimited), burst * WPP_NS */
	__u64 pps_fill_ns;  /* time an empty bucket takes to fill */
	__u64 bps, bps_cap;
	__u64 bps_fill_ns;
	__u32 nranges;
	__u32 pad;
	struct wpp_range ranges[WPP_MAX_RANGES];
	char name[WPP_NAME_MAX]; /* for stats; never read by XDP */
};

/* Per slot, shared by both sets: wpp_buckets[slot]. */
struct wpp_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 last_ns; /* 0: never used, starts full */
	__u64 tok_pps; /* token-nanoseconds */
	__u64 tok_bps;
};

/* Per-tenant counters: wpp_tcnt[slot * WPP_R__COUNT + reason] (per CPU).
 * Per-rule counters: wpp_rcnt[set * WPP_MAX_RULES + rule] (per CPU). */

#endif
