/* SPDX-License-Identifier: MIT */
/*
 * wirepath's front door: tenant policy enforced before work reaches the host.
 *
 * One rules file (docs/policy.md) says, per tenant, which source prefixes it
 * owns, which destination ports it may reach, how fast it may send, and the
 * 128-bit key its frames are signed with. The same rules are enforced in
 * three places, all from one compiled struct wp_policy:
 *
 * - in XDP on a network interface (wp_policy_xdp_*; needs root/CAP_BPF),
 *   where datagram frames are also authenticated;
 * - in the user-space twin (wp_twin_*), the same decision function in C, for
 *   hosts without XDP and as the XDP program's reference;
 * - on stream connections (wp_ctx_set_policy): every received frame's tag is
 *   checked right after its header is decoded, and reserved methods (stats)
 *   answer only admin tenants.
 *
 * Frame authentication on stream connections is v2: a handshake proving the
 * tenant key, then AES-256-GCM records over headers and payloads (see
 * wp_ep_set_tenant_key, wp_ctx_set_policy, docs/protocol.md). Datagram
 * frames checked in XDP carry auth = SipHash-2-4(tenant key, header bytes
 * 0..31) (wp_frame_tag).
 *
 * Conventions as in wirepath.h: >= 0 or -errno. None of these calls has a
 * context, so the reason for an error goes, one line at WP_LOG_ERR, to the
 * process log hook (wp_set_log); for the rules text it reads
 * "FILE:LINE: reason". Install a hook to see it (a CLI prints it).
 */
#ifndef WIREPATH_POLICY_H
#define WIREPATH_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "wirepath/wirepath.h"

#ifdef __cplusplus
extern "C" {
#endif

struct wp_policy;

/*
 * Parse and check a rules file (or text; name is used in messages). On any
 * error *out is NULL and the first error is logged (process hook,
 * WP_LOG_ERR): -EINVAL (bad rules: "FILE:LINE: reason"), -errno from
 * reading the file ("PATH: cannot open: reason"; -EISDIR, -EFBIG: not a
 * regular file of at most 4 MiB), -ENOMEM (not logged). *out is owned by
 * the caller (wp_policy_free). Thread-safe: parsing touches no shared state.
 */
WP_API int wp_policy_parse_file(const char *path, struct wp_policy **out);
WP_API int wp_policy_parse(const char *name, const char *text, size_t len, struct wp_policy **out);
WP_API void wp_policy_free(struct wp_policy *p);
/*
 * The same, with the first error's line written into err (at most errlen
 * bytes, NUL-terminated; "" on success) instead of the process log hook:
 * for a caller that reports it itself (wirepathd's reload, `--check`)
 * and must not share the hook with other threads. Nothing is logged.
 */
WP_API int wp_policy_parse_file_err(const char *path, struct wp_policy **out, char *err,
				    size_t errlen);
WP_API int wp_policy_parse_err(const char *name, const char *text, size_t len,
			       struct wp_policy **out, char *err, size_t errlen);

/* Write the policy back as a rules file (canonical form). Keys are replaced
 * by "redacted" unless WP_POLICY_DUMP_KEYS. Returns the length (snprintf-like). */
#define WP_POLICY_DUMP_KEYS 1u
WP_API int wp_policy_dump(const struct wp_policy *p, unsigned flags, char *buf, size_t len);

#define WP_POLICY_TENANT_ADMIN 1u
#define WP_POLICY_TENANT_REDIRECT 2u
/* Stream connections of this tenant must ask for confidentiality
 * (WP_TENANT_KEY_CONFIDENTIAL); a handshake without it is refused. */
#define WP_POLICY_TENANT_CONFIDENTIAL 4u

struct wp_policy_tenant {
	char name[32];
	uint32_t id;
	uint32_t flags; /* WP_POLICY_TENANT_* */
	uint8_t key[16];
	uint64_t pps, pps_burst; /* 0 = no packet limit */
	uint64_t bps, bps_burst; /* bytes; 0 = no byte limit */
	uint32_t nprefixes, nranges;
};

WP_API int wp_policy_tenant_count(const struct wp_policy *p);
/* Tenant i (file order). Returns 0 or -ENOENT. */
WP_API int wp_policy_tenant_get(const struct wp_policy *p, unsigned i,
				struct wp_policy_tenant *out);
/* The default verdict (WP_VERDICT_DROP or WP_VERDICT_PASS). */
WP_API int wp_policy_default(const struct wp_policy *p);

/*
 * The gateway statements of tenant i (docs/policy.md, "Gateway
 * statements"): what wirepathd enforces on HTTP requests; the XDP program
 * and stream authentication ignore them. Versioned by size, like libbpf's
 * opts: set out->sz = sizeof(*out) before the call; a later library fills
 * only the fields that fit in sz, a smaller sz than this version's is
 * -EINVAL. The glob strings point into p and live until wp_policy_free(p).
 * Returns 0, -ENOENT (no tenant i) or -EINVAL (sz).
 */
#define WP_POLICY_GW_KEYS_MAX 8   /* api_key lines per tenant */
#define WP_POLICY_GW_GLOBS_MAX 32 /* models / tools globs per tenant, each */
#define WP_POLICY_GW_GLOB_LEN 128 /* a glob's bytes, NUL included */

struct wp_policy_gateway {
	size_t sz; /* sizeof(struct wp_policy_gateway), set by the caller */
	/* SHA-256 digests of the tenant's bearer tokens (never the tokens) */
	uint32_t nkeys;
	uint8_t api_key_sha256[WP_POLICY_GW_KEYS_MAX][32];
	/* token buckets: `requests` per `requests_period_s` seconds (1, 60 or
	 * 3600), at most `requests_burst` at once; 0 = no request rate. The
	 * same for generated tokens. */
	uint64_t requests, requests_burst;
	uint32_t requests_period_s;
	uint32_t tokens_period_s;
	uint64_t tokens, tokens_burst;
	uint32_t concurrency; /* requests in flight at once; 0 = no limit */
	/* allow-lists of fnmatch globs ('*' and '?'), in file order; none =
	 * every model / tool allowed */
	uint32_t nmodels, ntools;
	const char *models[WP_POLICY_GW_GLOBS_MAX];
	const char *tools[WP_POLICY_GW_GLOBS_MAX];
};

WP_API int wp_policy_tenant_gateway(const struct wp_policy *p, unsigned i,
				    struct wp_policy_gateway *out);

/* ------------------------------------------------------------------ */
/* Verdicts, reasons, counters                                         */
/* ------------------------------------------------------------------ */

enum wp_verdict { WP_VERDICT_DROP = 0, WP_VERDICT_PASS = 1, WP_VERDICT_REDIRECT = 2 };

#define WP_POLICY_REASONS_MAX 32

/* Reason names ("pass", "no_tenant", "rate_pps", ...; docs/policy.md). */
WP_API unsigned wp_policy_reason_count(void);
WP_API const char *wp_policy_reason_name(unsigned reason);
WP_API const char *wp_verdict_name(int verdict);

struct wp_policy_count {
	uint64_t pkts, bytes;
};

struct wp_policy_tenant_stats {
	uint32_t id;
	uint32_t slot;
	char name[32];
	struct wp_policy_count reason[WP_POLICY_REASONS_MAX];
};

struct wp_policy_rule_stats {
	uint32_t rule;
	uint32_t tenant_id;
	char text[96];            /* "acme allow 10.0.0.0/8", "acme ports tcp:7000-7010" */
	struct wp_policy_count c; /* packets that matched it */
};

struct wp_policy_stats {
	uint32_t nreasons;
	uint32_t default_verdict;
	uint32_t active_set;
	struct wp_policy_count reason[WP_POLICY_REASONS_MAX];
	struct wp_policy_count verdict[3];
	uint32_t ntenants;
	struct wp_policy_tenant_stats *tenants;
	uint32_t nrules;
	struct wp_policy_rule_stats *rules;
};

WP_API void wp_policy_stats_free(struct wp_policy_stats *s);
/* Append s as one JSON object. Returns bytes written (or needed). */
WP_API int wp_policy_stats_json(const struct wp_policy_stats *s, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* The user-space twin                                                 */
/* ------------------------------------------------------------------ */

struct wp_twin;

/* A twin enforcing p (p may be freed afterwards). One thread at a time. */
WP_API int wp_twin_create(const struct wp_policy *p, struct wp_twin **out);
/* Swap in new rules as the XDP reload does: tenants that stay keep their
 * counters and token buckets. */
WP_API int wp_twin_reload(struct wp_twin *t, const struct wp_policy *p);
WP_API void wp_twin_destroy(struct wp_twin *t);
/*
 * Decide one packet (Ethernet frame bytes). now_ns is the clock for the
 * token buckets (CLOCK_MONOTONIC ns; must be non-zero). Returns the verdict
 * (enum wp_verdict); *reason (optional) gets the reason index.
 */
WP_API int wp_twin_decide(struct wp_twin *t, const void *pkt, size_t len, uint64_t now_ns,
			  unsigned *reason);
WP_API int wp_twin_stats(const struct wp_twin *t, struct wp_policy_stats *out);

/* ------------------------------------------------------------------ */
/* Frame authentication                                                */
/* ------------------------------------------------------------------ */

/* SipHash-2-4 with a 16-byte key (k0 = bytes 0..7, k1 = 8..15, little-endian). */
WP_API uint64_t wp_siphash24(const uint8_t key[16], const void *data, size_t len);
/* The tag of an encoded 40-byte frame header: SipHash-2-4 over bytes 0..31. */
WP_API uint64_t wp_frame_tag(const uint8_t key[16], const void *hdr);
/* Write the tag into bytes 32..39 of an encoded header. */
WP_API void wp_frame_sign(const uint8_t key[16], void *hdr);

/*
 * Parse a tenant key as the rules file writes it: exactly 32 hex digits.
 * Returns 0, -EINVAL (not 32 hex digits) or -EDOM (all zeros: not a key).
 */
WP_API int wp_policy_key_parse(const char *hex32, uint8_t key[16]);
/*
 * Parse "ID:HEX32", a tenant id (1..4294967295) and its key, the form
 * command-line tools take (wirepath bench --tenant-key). 0 or -EINVAL.
 */
WP_API int wp_policy_tenant_key_parse(const char *s, uint32_t *tenant, uint8_t key[16]);

/*
 * Authenticate this connecting endpoint as tenant `tenant` holding key
 * (authentication v2, docs/protocol.md): call it right after wp_connect,
 * before the context progresses, and before the first send. On stream paths
 * (tcp, uring) it starts the handshake: the client's HELLO is queued first,
 * and frames sent before the server has proved the key are held, in order,
 * and leave once the handshake ends (sealed in records like every later
 * frame). If the handshake fails (wrong key on either side, a server
 * without this tenant or without v2), the connection closes and the calls
 * pending on it fail with -EACCES (refused) or -EPROTO (handshake not
 * finished); the meter counts the reason. Paths without a byte stream (shm)
 * keep the key for their own setup-time authentication. Also sets the
 * tenant, like wp_ep_set_tenant. key is copied.
 * Returns 0, -EINVAL (tenant 0, unknown flags), -ENOTCONN (closed),
 * -EALREADY (accepted endpoint, or a key was already set), -ENOMEM or -EIO
 * (no random bytes): nothing changed then.
 */
WP_API int wp_ep_set_tenant_key(struct wp_ep *ep, uint32_t tenant, const uint8_t key[16]);

/*
 * Ask for confidentiality as well: every payload is encrypted (AES-256-GCM,
 * one record per frame; the sender copies each payload into staging to
 * encrypt it, counted in bytes_copied). TLS 1.3-style records in user space.
 */
#define WP_TENANT_KEY_CONFIDENTIAL 1u
/* wp_ep_set_tenant_key with flags (WP_TENANT_KEY_*). */
WP_API int wp_ep_set_tenant_key_flags(struct wp_ep *ep, uint32_t tenant, const uint8_t key[16],
				      unsigned flags);

/*
 * Enforce p on every connection this context accepts on a stream path: the
 * peer must run the v2 handshake as one of p's tenants and prove its key,
 * then every frame must come in a record whose tag checks (docs/policy.md
 * lists what is refused and the meter reason of each: bad_auth,
 * handshake, no_handshake, replayed, spliced, truncated). Reserved methods
 * (WP_METHOD_STATS) are answered only for tenants p marks `admin`; others
 * get ERR(EACCES). Accepted endpoints answer in the tenant's records. On
 * paths without a byte stream (shm), frames are accepted only from a peer
 * the path authenticated at setup. The tenant table is copied; NULL removes
 * the policy (for connections accepted afterwards). On xsk:// the rules
 * also go to the path's XDP program at once if it is loaded already (a
 * policy set after the first listen), and sessions without a tenant key end
 * with -EACCES (XDP would drop their datagrams from now on).
 * Returns 0, -ENOMEM, or (xsk) -errno when the XDP program could not take
 * the new rules (user space still enforces them; the log says why).
 */
WP_API int wp_ctx_set_policy(struct wp_ctx *ctx, const struct wp_policy *p);

/* ------------------------------------------------------------------ */
/* XDP                                                                 */
/* ------------------------------------------------------------------ */

#define WP_XDP_NATIVE_ONLY 1u /* fail instead of falling back to generic mode */
#define WP_XDP_GENERIC 2u     /* ask for generic (SKB) mode */
/* Load the plain program even where the kernel takes the frags-aware one
 * (a driver that misbehaves with multi-buffer programs; tests). */
#define WP_XDP_NO_FRAGS 4u

struct wp_xdp_info {
	int ifindex;
	uint32_t prog_id;
	int native;     /* 1: native (driver) mode, 0: generic (SKB) mode */
	int fallback;   /* 1: native was refused and generic used instead */
	int native_err; /* the errno native mode got, when fallback */
	uint32_t active_set;
	char pin_dir[256];
	char detail[192]; /* one line: mode, program, and why, for humans */
	/* 1: the frags-aware program (SEC "xdp.frags") runs: multi-buffer
	 * frames (jumbo MTU) are decided on their first buffer with the whole
	 * frame's length, and native mode works whatever the MTU. 0: the plain
	 * program; a driver refuses it in native mode when the MTU needs more
	 * than one buffer (veth: above about 3.5 KB, ERANGE). */
	int frags;
	/* load only: the errno the kernel refused the frags-aware program with
	 * (it then loads the plain one); 0 when it loaded or was not tried. */
	int frags_err;
};

/*
 * The XDP calls below return 0 or -errno, and log every error, one line that
 * says what to do, to the process hook at WP_LOG_ERR (-EOPNOTSUPP: built
 * without the front door, -ENODEV: no such interface, -ENOENT: no wirepath
 * policy loaded there, -EPERM: not root, ...). info (optional) is filled on
 * success. p is only read: the caller keeps it.
 */

/* 1 if this build has the XDP front door (libbpf, clang, bpftool found). */
WP_API int wp_policy_xdp_built(void);
/*
 * Load p onto ifname and attach it (native mode first; generic mode as a
 * fallback that info->fallback and info->detail report). The frags-aware
 * program is loaded where the kernel takes it (>= 5.18), the plain one
 * otherwise or with WP_XDP_NO_FRAGS; info->frags says which runs. Maps and program are
 * pinned under /sys/fs/bpf/wirepath/IFNAME (bpffs is mounted if needed) so
 * later processes can reload, read stats and unload. -EEXIST: a policy or
 * another XDP program is already attached.
 */
WP_API int wp_policy_xdp_load(const char *ifname, const struct wp_policy *p, unsigned flags,
			      struct wp_xdp_info *info);
/* Atomically replace the rules (the new set is complete before the switch).
 * A failure leaves the old rules active. */
WP_API int wp_policy_xdp_reload(const char *ifname, const struct wp_policy *p,
				struct wp_xdp_info *info);
WP_API int wp_policy_xdp_unload(const char *ifname);
/* Counters; *out is the caller's to free with wp_policy_stats_free. */
WP_API int wp_policy_xdp_stats(const char *ifname, struct wp_policy_stats *out,
			       struct wp_xdp_info *info);
/* The active rules read back from the maps (keys included); *out is the
 * caller's (wp_policy_free). */
WP_API int wp_policy_xdp_show(const char *ifname, struct wp_policy **out, struct wp_xdp_info *info);

#ifdef __cplusplus
}
#endif
#endif
