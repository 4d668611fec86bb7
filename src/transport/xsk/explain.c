// SPDX-License-Identifier: MIT
/*
 * The xsk path's availability, probe, explain string (modes obtained,
 * counters, authentication drops) and its ops table.
 */
#include <errno.h>
#include <linux/if_xdp.h>
#include <stdio.h>
#include <unistd.h>

#include "xsk.h"

/* ---- control: availability and probe ---------------------------------- */

static int xsk_available(char *why, size_t len)
{
	int fd;

	if (!wp_policy_xdp_built()) {
		snprintf(why, len, "built without the XDP front door (libbpf, clang, bpftool)");
		return -EOPNOTSUPP;
	}
	fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int ret = -errno;

		snprintf(why, len, "socket(AF_XDP): %s", strerror(errno));
		return ret == -EAFNOSUPPORT ? -EOPNOTSUPP : ret;
	}
	close(fd);
	return 0;
}

static void xsk_probe(void)
{
	char why[160] = "";
	int ret = xsk_available(why, sizeof(why));

	wp_probe_add("path.xsk", ret,
		     ret ? "%s"
			 : "AF_XDP sockets open; modes are chosen per interface at listen/connect "
			   "(zero copy then copy, native then generic XDP)%s",
		     ret ? why : "");
}

static int xsk_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		     uint32_t max)
{
	const struct xsk_ctx *xc = ctx->bk;

	if (!xc || !xc->area)
		return 0;
	if (max) {
		out[0].addr = xc->area;
		out[0].len = (size_t)xc->nframes * XSK_FRAME;
	}
	return 1;
}

/* What the kernel dropped between the program's redirect and our rings
 * (rx ring full, no fill frame, invalid descriptors), all queues. */
static uint64_t ring_drops(const struct xsk_ctx *xc)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < xc->nq; i++) {
		struct xdp_statistics st;
		socklen_t sl = sizeof(st);

		memset(&st, 0, sizeof(st));
		if (getsockopt(xc->q[i].fd, SOL_XDP, XDP_STATISTICS, &st, &sl) == 0)
			n += st.rx_dropped + st.rx_invalid_descs + st.rx_ring_full;
	}
	return n;
}

/* Datagram authentication v2: what XDP dropped before the redirect (the
 * program's reasons: source in no tenant's prefixes, port, not one frame,
 * another tenant's frame, wrong SipHash tag), and what the sessions dropped
 * after it (dgram.h's reasons, live and freed sessions together). */
static void xsk_explain_auth(struct wp_ctx *ctx, char *buf, size_t len)
{
	static const unsigned xr[] = { WPP_R_NO_TENANT, WPP_R_PORT, WPP_R_BAD_FRAME,
				       WPP_R_TENANT_MISMATCH, WPP_R_AUTH };
	static const char *const xn[] = { "no_tenant", "port", "bad_frame", "tenant", "auth" };
	struct xsk_ctx *xc = ctx->bk;
	uint64_t drop[WP_DGRAM_DROP__COUNT];
	uint32_t keyed = 0, conf = 0;
	size_t at;

	memcpy(drop, xc->st.drop, sizeof(drop));
	for (struct wp_ep *ep = ctx->eps; ep; ep = ep->next_all) {
		const struct wp_dgram_session *ds = xep(ep)->ds;

		if (!ds || xep(ep)->listener)
			continue;
		keyed += ep->state == WP_EPS_OPEN;
		conf += ep->state == WP_EPS_OPEN && ds->encrypt;
		for (unsigned r = 0; r < WP_DGRAM_DROP__COUNT; r++)
			drop[r] += ds->st.drop[r];
	}
	at = (size_t)snprintf(buf, len, "; rx_budget_claimed=%llu",
			      (unsigned long long)ctx->lim.budget.claimed);
	if (at >= len)
		return;
	at += (size_t)snprintf(
		buf + at, len - at,
		"; datagram auth v2 %s: keyed=%u confidential=%u sealed=%llu "
		"opened=%llu hs_refused=%llu hs_bad_proof=%llu unauth_ctl=%llu "
		"half_open=%u hs_unbound=%llu hs_evicted=%llu hs_expired=%llu "
		"reply_limited=%llu",
		wp_auth_policy(ctx) ? "required (policy in XDP)" : "when keyed", keyed, conf,
		(unsigned long long)xc->st.sealed, (unsigned long long)xc->st.opened,
		(unsigned long long)xc->st.hs_refused, (unsigned long long)xc->st.hs_bad_proof,
		(unsigned long long)xc->st.unauth_ctl, xc->n_half_open,
		(unsigned long long)xc->st.hs_unbound, (unsigned long long)xc->st.hs_evicted,
		(unsigned long long)xc->st.hs_expired, (unsigned long long)xc->st.reply_limited);
	for (unsigned r = 0; r < WP_DGRAM_DROP__COUNT && at < len; r++)
		at += (size_t)snprintf(buf + at, len - at, " drop_%s=%llu", wp_dgram_drop_name(r),
				       (unsigned long long)drop[r]);
	for (unsigned i = 0; wp_auth_policy(ctx) && i < sizeof(xr) / sizeof(xr[0]) && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, " xdp_%s=%lld", xn[i],
				       (long long)wpp_xsk_count(&xc->prog, xr[i]));
}

static void xsk_explain(struct wp_ctx *ctx, char *buf, size_t len)
{
	struct xsk_ctx *xc = ctx->bk;
	int64_t red;

	if (!xc || !xc->up) {
		snprintf(buf, len,
			 "AF_XDP over UDP (not set up yet: the first listen/connect "
			 "picks the interface)");
		return;
	}
	red = wpp_xsk_redirected(&xc->prog);
	snprintf(buf, len,
		 "AF_XDP on %s port %u, %u queue(s), %s%s%s%s, %s XDP%s%s (prog id %u, the front "
		 "door's program, one per interface), need_wakeup, busy poll %s; UMEM %u x %u B "
		 "is the receive pool; go-back-N window %u-%u packets (largest reached %u), RTO "
		 "%u-%u ms; rx_pkts=%llu "
		 "tx_pkts=%llu redirected=%lld ring_drops=%llu retrans=%llu naks=%llu dups=%llu "
		 "ooo=%llu bad=%llu faults=%llu resets=%llu bundled=%llu",
		 xc->ifname, xc->port, xc->nq, xc->zerocopy ? "ZERO COPY" : "copy mode",
		 !xc->zerocopy && xc->zc_err ? " (XDP_ZEROCOPY refused: " : "",
		 !xc->zerocopy && xc->zc_err ? strerror(xc->zc_err) : "",
		 !xc->zerocopy && xc->zc_err ? ")" : "", xc->prog.native ? "native" : "GENERIC",
		 !xc->prog.native && xc->prog.native_err ? ": native refused, " : "",
		 !xc->prog.native && xc->prog.native_err ? strerror(xc->prog.native_err) : "",
		 xc->prog.prog_id,
		 xc->busy       ? "on"
		 : xc->busy_err ? "refused"
				: "off",
		 xc->nframes, XSK_FRAME, XSK_WIN, XSK_WIN_MAX, xc->st.cwnd_peak,
		 XSK_RTO_MIN_US / 1000, XSK_RTO_MAX_US / 1000, (unsigned long long)xc->st.rx_pkts,
		 (unsigned long long)xc->st.tx_pkts, (long long)red,
		 (unsigned long long)ring_drops(xc), (unsigned long long)xc->st.retrans,
		 (unsigned long long)xc->st.naks, (unsigned long long)xc->st.dups,
		 (unsigned long long)xc->st.ooo, (unsigned long long)xc->st.bad,
		 (unsigned long long)xc->st.faults, (unsigned long long)xc->st.resets,
		 (unsigned long long)xc->st.bundled);
	xsk_explain_auth(ctx, buf + strlen(buf), len - strlen(buf));
}

static const struct wp_fast_ops xsk_fast = { .send = xsk_send, .flush = xsk_flush };

const struct wp_backend_ops wp_xsk_ops = {
	.name = "xsk",
	/* Not WP_CAP_INET: host:port names a UDP port, never a TCP peer. */
	.caps = WP_CAP_BATCH | WP_CAP_BUSY_POLL,
	.fast = &xsk_fast,
	.available = xsk_available,
	.probe = xsk_probe,
	.addr_parse = wp_addr_parse_inet,
	.init = xsk_init,
	.fini = xsk_fini,
	.listen = xsk_listen,
	.connect = xsk_connect,
	.close = xsk_close,
	.poll = xsk_poll,
	.explain = xsk_explain,
	.mem_register = wp_no_mem_register,
	.mem_unregister = wp_no_mem_unregister,
	.policy_changed = xsk_policy_changed,
	.ep_size = sizeof(struct xsk_ep),
	.ep_init = wp_no_ep_init,
	.ep_free = xsk_ep_free,
	.buf_alloc = wp_buf_alloc_heap,
	.buf_free = wp_buf_free_heap,
	.local_uri = wp_local_uri_inet,
	.mr_exported = wp_no_mr_exported,
	.xfer_direct = wp_no_xfer_direct,
	.pools = xsk_pools,
	.rx_pause = xsk_rx_pause,
	.fd = wp_epoll_fd,
	.arm = xsk_arm,
};
