/* SPDX-License-Identifier: MIT */
/*
 * Tenants as wirepathd sees them: API keys (Authorization: Bearer) mapped
 * to the tenants of the rules file (docs/policy.md, the gateway
 * statements), with per-tenant request and token rate limits, a
 * concurrency limit, and model and tool allow-lists. Built from the same
 * parsed policy the XDP program and stream authentication use.
 *
 * Threading: everything here runs on the daemon's loop thread, except
 * wpd_tenants_get/put, which any thread may call.
 */
#ifndef WPD_TENANTS_H
#define WPD_TENANTS_H

#include <stddef.h>
#include <stdint.h>

struct wpd_tenants;
struct wpd_tenant;

/* Load the rules file. On failure -EINVAL/-errno and one line in err
 * ("FILE:LINE: reason"). */
int wpd_tenants_load(const char *rules_path, struct wpd_tenants **out, char *err, size_t errlen);
void wpd_tenants_free(struct wpd_tenants *t);
/* After a reload: carry live state (in-flight counts, bucket levels) from
 * old to the new set, tenant by tenant id, so a reload neither resets rate
 * limits nor forgets requests in flight. Requests in flight keep pointing
 * at their old tenant object: old must stay allocated until they end
 * (wpd_tenants_put). */
void wpd_tenants_carry(struct wpd_tenants *nw, struct wpd_tenants *old);
/* Reference counting for the reload rule above: get when a request takes
 * a tenant, put when it ends; the set is freed at the last put after
 * wpd_tenants_free. */
void wpd_tenants_get(struct wpd_tenants *t);
void wpd_tenants_put(struct wpd_tenants *t);

/* The tenant whose API key is token (constant-time compare of SHA-256
 * digests), or NULL. */
const struct wpd_tenant *wpd_tenants_auth(const struct wpd_tenants *t, const char *token,
					  size_t len);

/* How many tenants the set has, and tenant i (file order) or NULL: for
 * metrics and `--check`. */
uint32_t wpd_tenants_count(const struct wpd_tenants *t);
const struct wpd_tenant *wpd_tenants_at(const struct wpd_tenants *t, uint32_t i);

const char *wpd_tenant_name(const struct wpd_tenant *t);
uint32_t wpd_tenant_id(const struct wpd_tenant *t);
struct wpd_tenants *wpd_tenant_set(const struct wpd_tenant *t);

enum wpd_admit {
	WPD_ADMIT_OK = 0,
	WPD_ADMIT_RATE = 1,        /* request rate limit: 429 */
	WPD_ADMIT_CONCURRENCY = 2, /* concurrent requests at the limit: 429 */
	WPD_ADMIT_TOKENS = 3,      /* token budget spent: 429 */
};

/* Admit one request at now_ns: takes a request token and a concurrency
 * slot (release with wpd_tenant_done). On refusal *retry_after_s says when
 * to come back (>= 1). */
enum wpd_admit wpd_tenant_admit(struct wpd_tenant *t, uint64_t now_ns, uint32_t *retry_after_s);
void wpd_tenant_done(struct wpd_tenant *t);
/* Requests in flight (shared with the same tenant of the other set across
 * a reload), for metrics. */
uint32_t wpd_tenant_inflight(const struct wpd_tenant *t);
/* Charge n generated tokens (after they were produced: a stream is never
 * cut for tokens, the next request is refused). */
void wpd_tenant_charge_tokens(struct wpd_tenant *t, uint64_t now_ns, uint32_t n);
/* 1 if the tenant may use this model / tool (allow-lists with '*' globs;
 * no list = all allowed). */
int wpd_tenant_model_ok(const struct wpd_tenant *t, const char *model);
int wpd_tenant_tool_ok(const struct wpd_tenant *t, const char *tool);

#endif
