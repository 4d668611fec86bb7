/* SPDX-License-Identifier: MIT */
/*
 * The front door, user-space internals: the parsed rules (struct wp_policy),
 * the "image" a rule set compiles into (exactly the map contents of one set,
 * with tenant slots assigned), and the view a stats reader builds from either
 * the XDP maps or the twin. Public API: include/wirepath/policy.h.
 */
#ifndef WP_POLICY_INT_H
#define WP_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wirepath/policy.h"
#include "wpp.h"

/* ---- parsed rules ------------------------------------------------------ */

struct wpp_rprefix {
	uint8_t v6;
	uint8_t len;     /* prefix length in bits */
	uint16_t tenant; /* index into wp_policy.tenants */
	uint8_t addr[16];
	uint32_t line;
};

struct wpp_rrange {
	uint16_t lo, hi;
	uint8_t proto; /* WPP_P_* */
	uint32_t line;
};

/* A tenant's gateway statements (wirepathd's; XDP never reads them).
 * Globs live in wp_policy.gw_pool, NUL-terminated, at these offsets. */
struct wpp_rgw {
	uint32_t nkeys;
	uint8_t keys[WP_POLICY_GW_KEYS_MAX][32]; /* SHA-256 of the bearer tokens */
	uint32_t key_line[WP_POLICY_GW_KEYS_MAX];
	uint64_t req, req_burst; /* per req_per seconds; 0 = none */
	uint64_t tok, tok_burst;
	uint32_t req_per, tok_per;
	uint32_t conc; /* 0 = no limit */
	uint32_t nmodels, ntools;
	uint32_t models[WP_POLICY_GW_GLOBS_MAX];
	uint32_t tools[WP_POLICY_GW_GLOBS_MAX];
};

struct wpp_rtenant {
	char name[WPP_NAME_MAX];
	uint32_t id;
	uint32_t flags; /* WP_POLICY_TENANT_* */
	uint8_t key[16];
	uint64_t pps, pps_burst, bps, bps_burst;
	uint32_t line;
	uint32_t nranges;
	struct wpp_rrange ranges[WPP_MAX_RANGES];
	struct wpp_rgw gw;
};

struct wp_policy {
	char source[256];
	uint32_t default_verdict;
	uint32_t ndgram;
	struct {
		uint16_t lo, hi;
	} dgram[WPP_MAX_DGRAM];
	/* Set by the xsk:// path, never by the rules file (wpp_config). */
	uint16_t xsk_lo, xsk_hi;
	uint32_t xsk_open;
	uint32_t xsk_addr; /* IPv4, host order; 0 = any */
	uint32_t ntenants;
	struct wpp_rtenant tenants[WPP_MAX_TENANTS];
	uint32_t nprefixes; /* both families */
	uint32_t n4, n6;
	struct wpp_rprefix prefixes[2 * WPP_MAX_PREFIXES];
	/* the gateway statements' globs (malloc'd; wp_policy_free frees it) */
	char *gw_pool;
	uint32_t gw_pool_len, gw_pool_cap;
};

/* ---- one compiled set ---------------------------------------------------- */

struct wpp_e4 {
	struct wpp_lpm4_key k;
	struct wpp_lpm_val v;
};

struct wpp_e6 {
	struct wpp_lpm6_key k;
	struct wpp_lpm_val v;
};

struct wpp_image {
	uint32_t set;
	struct wpp_config cfg;
	uint32_t ntenants;
	uint32_t slot[WPP_MAX_TENANTS]; /* tenant i lives in slot[i] */
	struct wpp_tenant tenant[WPP_MAX_TENANTS];
	bool fresh[WPP_SLOTS];        /* newly used slot: zero its counters */
	bool reset_bucket[WPP_SLOTS]; /* new tenant or new rates: full bucket */
	uint32_t n4, n6, nrules;
	struct wpp_e4 e4[WPP_MAX_PREFIXES];
	struct wpp_e6 e6[WPP_MAX_PREFIXES];
};

/*
 * Compile p into set `set`. old: the active set's tenant table (WPP_SLOTS
 * entries) or NULL when nothing is loaded. A tenant whose id is in old keeps
 * its slot; a new one gets a slot old does not use. Returns 0 or -ENOSPC.
 */
int wpp_image_build(const struct wp_policy *p, uint32_t set, const struct wpp_tenant *old,
		    struct wpp_image *img);

/* SipHash key halves from 16 key bytes. */
void wpp_key_split(const uint8_t key[16], uint64_t *k0, uint64_t *k1);
void wpp_key_join(uint64_t k0, uint64_t k1, uint8_t key[16]);

/* ---- reading back (stats, show) ------------------------------------------ */

struct wpp_view {
	uint32_t active;
	struct wpp_config cfg;
	const struct wpp_tenant *tenants; /* WPP_SLOTS entries of the active set */
	uint32_t n4, n6;
	const struct wpp_e4 *e4; /* entries of the active set */
	const struct wpp_e6 *e6;
	struct wpp_cnt cnt[WPP_CNT_N];
	const struct wpp_cnt *tcnt; /* WPP_SLOTS * WPP_R__COUNT */
	const struct wpp_cnt *rcnt; /* WPP_MAX_RULES of the active set */
};

int wpp_stats_build(const struct wpp_view *v, struct wp_policy_stats *out);
/* Rebuild a policy from a view (for `show`). */
int wpp_policy_from_view(const struct wpp_view *v, struct wp_policy **out);

/* ---- the XDP maps (xdp.c; built with WP_HAVE_XDP_POLICY) ----------------- */

enum {
	WPP_M_CTL,
	WPP_M_CONFIG,
	WPP_M_LPM4,
	WPP_M_LPM6,
	WPP_M_TENANTS,
	WPP_M_BUCKETS,
	WPP_M_CNT,
	WPP_M_TCNT,
	WPP_M_RCNT,
	WPP_M_XSKS,
	WPP_M__COUNT
};

struct wpp_maps {
	int fd[WPP_M__COUNT];
	int prog_fd;
};

void wpp_maps_init(struct wpp_maps *m);
void wpp_maps_close(struct wpp_maps *m);
/* Put p into the maps: first = 1 fills set 0 of fresh maps; otherwise the
 * atomic reload (fill the inactive set, switch, grace period, clear).
 * 0 or -errno, the reason logged through the process hook. */
int wpp_maps_apply(const struct wpp_maps *m, const struct wp_policy *p, int first);
int wpp_maps_stats(const struct wpp_maps *m, struct wp_policy_stats *out);

/*
 * The xsk:// path's program (src/transport/xsk/setup.c): the policy program loaded
 * for one context and attached to ifindex through a BPF link, so it lives
 * exactly as long as the context (a crash detaches it) and is not pinned.
 * p: the rules (NULL: none, every source's datagrams to the path's port go
 * to its sockets); p->xsk_* are the path's. generic: skip native mode.
 * Returns 0, or -errno with the reason in why (EOPNOTSUPP: built without
 * the front door; EBUSY: the interface already runs an XDP program).
 */
struct wpp_xsk_prog {
	struct wpp_maps m;
	int link_fd;
	void *skel;
	int native;     /* 1: native (driver) mode, 0: generic */
	int native_err; /* why native mode was refused (0: not tried or taken) */
	uint32_t prog_id;
};
int wpp_xsk_attach(int ifindex, const struct wp_policy *p, int generic, struct wpp_xsk_prog *x,
		   char *why, size_t len);
void wpp_xsk_detach(struct wpp_xsk_prog *x);
/* Packets the program redirected (reason `redirect`, all CPUs), or -errno. */
int64_t wpp_xsk_redirected(const struct wpp_xsk_prog *x);
/* Packets the program decided with reason (enum wpp_reason, all CPUs), or
 * -errno: the xsk path's explain reports the datagram drops (auth,
 * tenant_mismatch, bad_frame, no_tenant, port). */
int64_t wpp_xsk_count(const struct wpp_xsk_prog *x, unsigned reason);

/*
 * For the xsk path (src/policy/auth.c keeps them with the context's policy):
 * the rules given to wp_ctx_set_policy (NULL without a policy; valid until
 * the next wp_ctx_set_policy), and whether ep's tenant key asked for
 * confidentiality (WP_TENANT_KEY_CONFIDENTIAL) / tenant must have it.
 */
const struct wp_policy *wp_auth_policy(const struct wp_ctx *ctx);
bool wp_auth_ep_confidential(const struct wp_ep *ep);
bool wp_auth_tenant_confidential(const struct wp_ctx *ctx, uint32_t tenant);

/* Formatting shared by dump and rule names. */
int wpp_fmt_prefix(char *buf, size_t len, const uint8_t *addr, int v6, unsigned plen);
int wpp_fmt_range(char *buf, size_t len, uint16_t lo, uint16_t hi, uint8_t proto);

#endif
