// SPDX-License-Identifier: MIT
/*
 * What UCX offers and what it chose: the probes (a real ucp_init), the lanes
 * of an endpoint from UCX's own dump (1.13's ucp_ep_query reports no
 * transports), ucx_need held against them, and explain.
 */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "ucx.h"

/* ---- probing ------------------------------------------------------------ */

int ucx_open(ucp_context_h *uctx, uint64_t features, char *why, size_t len)
{
	ucp_params_t pp = { .field_mask = UCP_PARAM_FIELD_FEATURES, .features = features };
	ucp_config_t *cfg;
	ucs_status_t st;

	st = ucp_config_read(NULL, NULL, &cfg);
	if (st != UCS_OK) {
		snprintf(why, len, "ucp_config_read: %s", ucs_status_string(st));
		return ucx_errno(st);
	}
	st = ucp_init(&pp, cfg, uctx);
	ucp_config_release(cfg);
	if (st != UCS_OK) {
		snprintf(why, len, "ucp_init: %s", ucs_status_string(st));
		return st == UCS_ERR_NO_DEVICE ? -ENODEV : ucx_errno(st);
	}
	return 0;
}

/* The resources UCX found ("tcp/lo sysv/memory ..."), from its own dump. */
static void ucx_resources(ucp_context_h uctx, char *out, size_t len, bool *rdma)
{
	char *dump = NULL, *line, *save = NULL;
	size_t dlen = 0;
	FILE *f = open_memstream(&dump, &dlen);

	*out = 0;
	*rdma = false;
	if (!f)
		return;
	ucp_context_print_info(uctx, f);
	fclose(f);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *r = strstr(line, "resource");
		const char *name = r ? strstr(r, "flags") : NULL;

		if (!name || !(name = strstr(name, " -- ")))
			continue;
		name += 4;
		snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? " " : "", name);
		if (!strncmp(name, "rc_", 3) || !strncmp(name, "ud_", 3) ||
		    !strncmp(name, "dc_", 3))
			*rdma = true;
	}
	free(dump);
}

int ucx_available(char *why, size_t len)
{
	ucp_context_h uctx;
	int ret = ucx_open(&uctx, UCP_FEATURE_AM | UCP_FEATURE_WAKEUP, why, len);

	if (ret == 0)
		ucp_cleanup(uctx);
	return ret;
}

void ucx_probe(void)
{
	char why[160] = "", res[120];
	ucp_context_h uctx;
	int ret = ucx_open(&uctx, UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP, why,
			   sizeof(why));
	bool rdma;

	if (ret < 0) {
		wp_probe_add("path.ucx", ret, "UCX %s: %s", ucp_get_version_string(), why);
		return;
	}
	ucx_resources(uctx, res, sizeof(res), &rdma);
	ucp_cleanup(uctx);
	wp_probe_add("path.ucx", 0, "UCX %s (ucp_init with AM, RMA, wakeup): %s",
		     ucp_get_version_string(), res);
	wp_probe_add("path.ucx.rdma", rdma ? 0 : -ENODEV,
		     rdma ? "UCX has verbs transports: %s"
			  : "no verbs transport among UCX's resources (%s): ucx_need=rdma "
			    "cannot be met",
		     res);
}

/* A transport whose RMA the NIC checks against the rkey (verbs: rc_verbs,
 * rc_mlx5, ud_verbs, dc_mlx5, ...), unlike tcp, sysv, posix or cma. */
static bool tl_verbs(const char *t)
{
	return !strncmp(t, "rc_", 3) || !strncmp(t, "ud_", 3) || !strncmp(t, "dc_", 3);
}

bool ucx_has_verbs(ucp_context_h uctx)
{
	char res[256];
	bool rdma;

	ucx_resources(uctx, res, sizeof(res), &rdma);
	return rdma;
}

/* Is tok one of the entries of list (separated by any of seps)? Whole
 * entries only: "rc" is not in "rc_verbs,tcp". */
bool ucx_tok_in(const char *list, const char *seps, const char *tok)
{
	size_t n = strlen(tok);

	while (*list) {
		size_t l = strcspn(list, seps);

		if (l == n && !strncmp(list, tok, n))
			return true;
		list += l;
		list += strspn(list, seps);
	}
	return false;
}

/* Add t to the comma list out (size len) unless it is there. */
static void tl_add(char *out, size_t len, const char *t)
{
	if (!ucx_tok_in(out, ",", t))
		snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? "," : "", t);
}

/* Lanes UCX selected for ep, from its own dump; the data lanes'
 * transports into ue->tls. */
void ucx_lanes(struct wp_ep *ep)
{
	struct ucx_ep *ue = uep_of(ep);
	char *dump = NULL, *line, *save = NULL;
	size_t dlen = 0;
	FILE *f;

	ue->lanes[0] = 0;
	ue->tls[0] = 0;
	ue->rma_tls[0] = 0;
	if (!ue->uep || !(f = open_memstream(&dump, &dlen)))
		return;
	ucp_ep_print_info(ue->uep, f);
	fclose(f);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *l = strstr(line, "lane["), *c, *tl, *ops, *e;
		char tname[32], op[32];
		bool am = false, rma = false;

		if (!l && (l = strstr(line, "am_send: "))) {
			/* where UCX switches protocol: "0..<egr/short>..93..<rndv>.." */
			snprintf(ue->lanes + strlen(ue->lanes),
				 sizeof(ue->lanes) - strlen(ue->lanes), "; %s", l);
			continue;
		}
		if (!l || !(c = strchr(l, ':')))
			continue;
		c++;
		while (*c == ' ')
			c++;
		if (!strncmp(c, "cm ", 3)) {
			snprintf(ue->lanes + strlen(ue->lanes),
				 sizeof(ue->lanes) - strlen(ue->lanes), "%scm %s",
				 *ue->lanes ? "; " : "", c + 3);
			continue;
		}
		/* " 2:tcp/lo.0 md[1]  -> md[1]/tcp/sysdev[255] rma_bw#0 am am_bw#0 wireup" */
		tl = strchr(c, ':');
		if (!tl)
			continue;
		tl++;
		e = strchr(tl, ' ');
		ops = strstr(tl, "sysdev[");
		ops = ops ? strchr(ops, ' ') : NULL;
		ops = ops ? ops + 1 : "";
		snprintf(ue->lanes + strlen(ue->lanes), sizeof(ue->lanes) - strlen(ue->lanes),
			 "%s%.*s (%s)", *ue->lanes ? "; " : "", e ? (int)(e - tl) : 24, tl,
			 *ops ? ops : "no operation of its own");
		/* Operations are whole tokens, "#N" their index: "am", "am_bw#0"
		 * carry frames; "rma", "rma_bw#1", "amo", "rkey_ptr" touch the
		 * peer's memory. "keepalive", "wireup" carry neither. */
		for (const char *o = ops; *o; o += strspn(o, " ")) {
			size_t ol = strcspn(o, " ");

			snprintf(op, sizeof(op), "%.*s", (int)strcspn(o, " #"), o);
			am |= !strcmp(op, "am") || !strcmp(op, "am_bw");
			rma |= !strcmp(op, "rma") || !strcmp(op, "rma_bw") || !strcmp(op, "amo") ||
			       !strcmp(op, "rkey_ptr");
			o += ol;
		}
		snprintf(tname, sizeof(tname), "%.*s", (int)strcspn(tl, "/ "), tl);
		if (am || rma)
			tl_add(ue->tls, sizeof(ue->tls), tname);
		if (rma)
			tl_add(ue->rma_tls, sizeof(ue->rma_tls), tname);
	}
	free(dump);
}

/* Is transport t one of those `need` names (names or classes)? */
static bool tl_allowed(const char *need, const char *t)
{
	char buf[64], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", need);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(tok, t))
			return true;
		if (!strcmp(tok, "rdma") && tl_verbs(t))
			return true;
		if (!strcmp(tok, "shm") &&
		    (!strcmp(t, "posix") || !strcmp(t, "sysv") || !strcmp(t, "cma") ||
		     !strcmp(t, "xpmem") || !strcmp(t, "knem") || !strcmp(t, "self")))
			return true;
	}
	return false;
}

/* 0 when every data lane is on a transport ucx_need allows (or none is
 * asked for), else the first that is not, in *bad. */
bool ucx_need_met(const struct wp_ctx *ctx, const struct ucx_ep *ue, char *bad, size_t len)
{
	const char *need = uctx_of(ctx)->need;
	char buf[96], *tok, *save = NULL;

	if (!*need)
		return true;
	if (!*ue->tls) {
		snprintf(bad, len, "(no data lane reported)");
		return false;
	}
	snprintf(buf, sizeof(buf), "%s", ue->tls);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!tl_allowed(need, tok)) {
			snprintf(bad, len, "%s", tok);
			return false;
		}
	return true;
}

/*
 * May this connection use direct RMA (announce our rkeys, put and get with
 * the peer's)? UCX's software RMA (tcp, sysv/posix, cma, or UCP's emulation
 * over the am lane) checks nothing on the target: with it a peer reads and
 * writes wherever it likes in this process. So: only if every rma lane is a
 * verbs transport (the NIC checks the rkey), or if the user said so
 * (ucx_trust_rma). why says which applies.
 */
bool ucx_rma_ok(const struct wp_ctx *ctx, const struct ucx_ep *ue, char *why, size_t len)
{
	const struct ucx_ctx *uc = uctx_of(ctx);
	char buf[96], *tok, *save = NULL;

	if (uc->trust_rma) {
		snprintf(why, len,
			 "RMA put/get (ucx_trust_rma: peers are trusted with this process's "
			 "memory; rma lanes: %s)",
			 *ue->rma_tls ? ue->rma_tls : "none, UCP emulates RMA over the am lane");
		return true;
	}
	if (!uc->rma) {
		snprintf(why, len,
			 "frames (UCX has no verbs transport here: its RMA would be software, "
			 "which checks nothing on the target; ucx_trust_rma opts in)");
		return false;
	}
	if (!*ue->rma_tls) {
		snprintf(why, len,
			 "frames (no rma lane: UCP would emulate RMA in software, which checks "
			 "nothing on the target; ucx_trust_rma opts in)");
		return false;
	}
	snprintf(buf, sizeof(buf), "%s", ue->rma_tls);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!tl_verbs(tok)) {
			snprintf(why, len,
				 "frames (an rma lane is on %s, software RMA that checks nothing "
				 "on the target; ucx_trust_rma opts in)",
				 tok);
			return false;
		}
	snprintf(why, len, "RMA put/get (every rma lane on verbs: %s; the NIC checks the rkey)",
		 ue->rma_tls);
	return true;
}

void ucx_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	const struct ucx_ep *first = NULL;
	int nconn = 0, nmet = 0, nrma = 0;
	char bad[32] = "", bulk[200] = "";

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct ucx_ep *ue = uep_of(ep);

		if (ep->state != WP_EPS_OPEN)
			continue;
		ucx_lanes(ep); /* UCX may have reconfigured since (wireup) */
		nconn++;
		if (!first)
			first = ue;
		nmet += ucx_need_met(ctx, ue, bad, sizeof(bad));
		nrma += ue->rma_ok;
	}
	if (first)
		ucx_rma_ok(ctx, first, bulk, sizeof(bulk));
	else if (uc->trust_rma || !uc->rma)
		ucx_rma_ok(ctx, &(struct ucx_ep){ 0 }, bulk, sizeof(bulk));
	else
		snprintf(bulk, sizeof(bulk),
			 "RMA put/get where every rma lane of a connection is verbs, frames "
			 "elsewhere");
	snprintf(buf, len,
		 "UCX %s: frames as active messages; bulk transfers: %s%s; worker %s; "
		 "%s; %d connection(s)%s%s%s",
		 ucp_get_version_string(), bulk,
		 nconn > 1 && nrma != nconn ? " (on the first connection; others differ)" : "",
		 ctx->o.busy_poll ? "busy-polled" : "armed in epoll (ucp_worker_get_efd + arm)",
		 getenv("UCX_MM_ERROR_HANDLING") && strchr("yY1", *getenv("UCX_MM_ERROR_HANDLING"))
			 ? "UCX_MM_ERROR_HANDLING=y: shared memory between processes allowed"
			 : "no shared-memory lanes (UCX 1.13 keeps them off endpoints with "
			   "peer-failure handling; UCX_MM_ERROR_HANDLING=y allows them)",
		 nconn, first ? "; lanes UCX selected: " : "", first ? first->lanes : "",
		 first ? "" : " (lanes are reported once one is open)");
	if (*uc->need)
		snprintf(buf + strlen(buf), len - strlen(buf),
			 "; ucx_need=%s: %s (%d of %d connections)", uc->need,
			 nmet == nconn ? "met" : "NOT met, UCX chose another transport", nmet,
			 nconn);
	snprintf(buf + strlen(buf), len - strlen(buf),
		 "; received: %llu messages, %llu held in place, %llu rendezvous, %llu bytes "
		 "copied, %llu rendezvous held back (receive budget or %u posted), %llu "
		 "connections closed out of memory; RMA: %llu ops, %llu bytes",
		 (unsigned long long)uc->am_rx, (unsigned long long)uc->am_held,
		 (unsigned long long)uc->am_rndv, (unsigned long long)uc->am_copied,
		 (unsigned long long)uc->rndv_waits, UCX_RNDV_MAX, (unsigned long long)uc->nomem,
		 (unsigned long long)uc->rma_ops, (unsigned long long)uc->rma_bytes);
}
