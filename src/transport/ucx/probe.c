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

int ucx_open(ucp_context_h *uctx, char *why, size_t len)
{
	ucp_params_t pp = { .field_mask = UCP_PARAM_FIELD_FEATURES,
			    .features = UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP };
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
	int ret = ucx_open(&uctx, why, len);

	if (ret == 0)
		ucp_cleanup(uctx);
	return ret;
}

void ucx_probe(void)
{
	char why[160] = "", res[120];
	ucp_context_h uctx;
	int ret = ucx_open(&uctx, why, sizeof(why));
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
	if (!ue->uep || !(f = open_memstream(&dump, &dlen)))
		return;
	ucp_ep_print_info(ue->uep, f);
	fclose(f);
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *l = strstr(line, "lane["), *c, *tl, *ops, *e;
		char tname[32];
		bool data;

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
		data = strstr(ops, "am") || strstr(ops, "rma");
		snprintf(tname, sizeof(tname), "%.*s", (int)strcspn(tl, "/ "), tl);
		if (data && !strstr(ue->tls, tname))
			snprintf(ue->tls + strlen(ue->tls), sizeof(ue->tls) - strlen(ue->tls),
				 "%s%s", *ue->tls ? "," : "", tname);
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
		if (!strcmp(tok, "rdma") &&
		    (!strncmp(t, "rc", 2) || !strncmp(t, "ud", 2) || !strncmp(t, "dc", 2)))
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

void ucx_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct ucx_ctx *uc = uctx_of(ctx);
	const struct ucx_ep *first = NULL;
	int nconn = 0, nmet = 0;
	char bad[32] = "";

	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		struct ucx_ep *ue = uep_of(ep);

		if (ep->state != WP_EPS_OPEN)
			continue;
		ucx_lanes(ep); /* UCX may have reconfigured since (wireup) */
		nconn++;
		if (!first)
			first = ue;
		nmet += ucx_need_met(ctx, ue, bad, sizeof(bad));
	}
	snprintf(buf, len,
		 "UCX %s: frames as active messages, bulk transfers as RMA put/get; worker %s; "
		 "%s; %d connection(s)%s%s%s",
		 ucp_get_version_string(),
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
		 "copied; RMA: %llu ops, %llu bytes",
		 (unsigned long long)uc->am_rx, (unsigned long long)uc->am_held,
		 (unsigned long long)uc->am_rndv, (unsigned long long)uc->am_copied,
		 (unsigned long long)uc->rma_ops, (unsigned long long)uc->rma_bytes);
}
