// SPDX-License-Identifier: MIT
/*
 * The xsk path's context set-up (xsk.h has the picture): the test faults
 * read at init, the interface, the port held by a kernel socket, the front
 * door's program, the UMEM and one AF_XDP socket per rx queue, the fill and
 * completion rings, and the teardown that undoes a set-up in reverse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xsk.h"

int xsk_init(struct wp_ctx *ctx)
{
	int ret = wp_epoll_bk_init(ctx, sizeof(struct xsk_ctx));
	struct xsk_ctx *xc;
	const char *f;

	if (ret < 0)
		return ret;
	xc = ctx->bk;
	xc->resv_fd = -1;
	xc->nl_fd = -1;
	xc->prog.link_fd = -1;
	f = getenv("WP_XSK_TEST_FAULTS");
	if (f && *f) {
		/* KEY=VALUE,...: each key whole (ctldrop is not drop) */
		struct {
			const char *key;
			uint32_t *pct;
		} keys[] = { { "drop", &xc->f_drop },         { "dup", &xc->f_dup },
			     { "reorder", &xc->f_reorder },   { "corrupt", &xc->f_corrupt },
			     { "plainctl", &xc->f_plainctl }, { "ctldrop", &xc->f_ctldrop },
			     { "ctldup", &xc->f_ctldup } };
		const char *p = f;

		xc->f_rng = 1;
		while (*p) {
			size_t klen = strcspn(p, "="), vlen;
			const char *val = p + klen + (p[klen] == '=');
			bool known = false;

			vlen = strcspn(val, ",");
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				if (strlen(keys[i].key) == klen && !strncmp(p, keys[i].key, klen)) {
					*keys[i].pct = (uint32_t)atoi(val);
					known = true;
				}
			if (klen == 4 && !strncmp(p, "seed", 4)) {
				xc->f_rng = strtoull(val, NULL, 0);
				known = true;
			}
			if (!known)
				wp_log(ctx, WP_LOG_WARN,
				       "xsk: WP_XSK_TEST_FAULTS: unknown key '%.*s'", (int)klen, p);
			p = val + vlen + (val[vlen] == ',');
		}
		if (!xc->f_rng)
			xc->f_rng = 1;
		wp_log(ctx, WP_LOG_WARN,
		       "xsk: test faults on: drop %u%% dup %u%% reorder %u%% corrupt %u%% "
		       "plainctl %u%% ctldrop %u%% ctldup %u%%",
		       xc->f_drop, xc->f_dup, xc->f_reorder, xc->f_corrupt, xc->f_plainctl,
		       xc->f_ctldrop, xc->f_ctldup);
	}
	return 0;
}

/* Undo the set-up, in reverse: the sockets (their fds leave the epoll set
 * as they close), the UMEM, its memory, the program's link (the interface
 * is free again), the port. From fini, and from a set-up that failed
 * half-way, so that a later listen or connect starts clean. */
static void xsk_teardown(struct xsk_ctx *xc)
{
	for (uint32_t i = 0; i < xc->nq; i++) {
		if (xc->q[i].xsk)
			xsk_socket__delete(xc->q[i].xsk);
		memset(&xc->q[i], 0, sizeof(xc->q[i]));
	}
	xc->nq = 0;
	if (xc->umem)
		xsk_umem__delete(xc->umem);
	xc->umem = NULL;
	if (xc->area)
		munmap(xc->area, (size_t)xc->nframes * XSK_FRAME);
	xc->area = NULL;
	xc->nfree = xc->nframes = 0;
	wpp_xsk_detach(&xc->prog);
	if (xc->resv_fd >= 0)
		close(xc->resv_fd);
	xc->resv_fd = -1;
	if (xc->nl_fd >= 0)
		close(xc->nl_fd);
	xc->nl_fd = -1;
	xc->port = 0;
	xc->up = false;
}

void xsk_fini(struct wp_ctx *ctx)
{
	struct xsk_ctx *xc = ctx->bk;

	if (xc)
		xsk_teardown(xc);
	wp_epoll_bk_fini(ctx);
}

/* ---- set-up: interface, port, program, sockets ------------------------- */

static int iface_of(uint32_t ip, char *name, int *ifindex)
{
	struct ifaddrs *ifa, *i;
	int ret = -EADDRNOTAVAIL;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != ip)
			continue;
		snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
		*ifindex = (int)if_nametoindex(i->ifa_name);
		ret = *ifindex ? 0 : -ENODEV;
		break;
	}
	freeifaddrs(ifa);
	return ret;
}

/* Rx queues, from the driver (ETHTOOL_GCHANNELS): /sys/class/net shows the
 * namespace sysfs was mounted in, which nsenter --net does not change. */
static int rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), n = 1;

	if (fd < 0)
		return 1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
		n = (int)(ch.rx_count > ch.combined_count ? ch.rx_count : ch.combined_count);
		if (n < 1)
			n = 1;
	}
	close(fd);
	return n;
}

void xsk_frame_put(struct xsk_ctx *xc, uint64_t addr)
{
	xc->freel[xc->nfree++] = addr - addr % XSK_FRAME;
}

/* Keep every fill ring stocked from the free frames (half of them go there). */
void xsk_fill_topup(struct xsk_ctx *xc)
{
	for (uint32_t i = 0; i < xc->nq; i++) {
		struct xsk_q *q = &xc->q[i];
		uint32_t want = xc->nframes / 2 / xc->nq, have, idx, n;

		if (want > XSK_RING)
			want = XSK_RING;
		have = XSK_RING - xsk_prod_nb_free(&q->fq, XSK_RING);
		if (have >= want || !xc->nfree)
			continue;
		n = want - have;
		if (n > xc->nfree)
			n = xc->nfree;
		n = xsk_ring_prod__reserve(&q->fq, n, &idx);
		for (uint32_t k = 0; k < n; k++)
			*xsk_ring_prod__fill_addr(&q->fq, idx + k) = xc->freel[--xc->nfree];
		xsk_ring_prod__submit(&q->fq, n);
		if (n && xc->need_wakeup && xsk_ring_prod__needs_wakeup(&q->fq)) {
			recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			WP_SYSCALL(WP_SYS_READ);
		}
	}
}

/* Frames the kernel finished sending come back from the completion ring. */
void xsk_comp_reap(struct xsk_ctx *xc)
{
	struct xsk_q *q = &xc->q[0];
	uint32_t idx, n = xsk_ring_cons__peek(&q->cq, XSK_RING, &idx);

	for (uint32_t k = 0; k < n; k++)
		xsk_frame_put(xc, *xsk_ring_cons__comp_addr(&q->cq, idx + k));
	if (n)
		xsk_ring_cons__release(&q->cq, n);
}

static int bind_queue(struct wp_ctx *ctx, uint32_t qi, char *why, size_t wlen)
{
	struct xsk_ctx *xc = ctx->bk;
	struct xsk_q *q = &xc->q[qi];
	struct xsk_socket_config cfg = {
		.rx_size = XSK_RING,
		.tx_size = XSK_RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
	};
	int ret = -EOPNOTSUPP;

	/* Zero copy first (a capable NIC), then copy mode (veth, virtio_net). */
	for (int zc = qi ? xc->zerocopy : 1; zc >= 0; zc--) {
		cfg.bind_flags = (zc ? XDP_ZEROCOPY : XDP_COPY) | XDP_USE_NEED_WAKEUP;
		if (qi == 0)
			ret = xsk_socket__create(&q->xsk, xc->ifname, qi, xc->umem, &q->rx, &q->tx,
						 &cfg);
		else
			ret = xsk_socket__create_shared(&q->xsk, xc->ifname, qi, xc->umem, &q->rx,
							&q->tx, &q->fq, &q->cq, &cfg);
		if (ret == 0) {
			if (qi == 0) {
				xc->zerocopy = zc;
				/* the UMEM's own rings serve queue 0 */
			}
			break;
		}
		if (zc && qi == 0)
			xc->zc_err = -ret;
		if (qi)
			break;
	}
	if (ret < 0) {
		snprintf(why, wlen, "AF_XDP socket on %s queue %u: %s", xc->ifname, qi,
			 strerror(-ret));
		return ret;
	}
	q->fd = xsk_socket__fd(q->xsk);
	ret = xsk_socket__update_xskmap(q->xsk, xc->prog.m.fd[WPP_M_XSKS]);
	if (ret < 0) {
		snprintf(why, wlen, "XSKMAP update for queue %u: %s", qi, strerror(-ret));
		return ret;
	}
	if (ctx->o.busy_poll) {
		int one = 1, us = 20, budget = XSK_BATCH;

		if (setsockopt(q->fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) < 0 ||
		    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us)) < 0 ||
		    setsockopt(q->fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)) < 0)
			xc->busy_err = errno;
		else
			xc->busy = true;
	}
	return wp_epoll_ctl(ctx, EPOLL_CTL_ADD, q->fd, EPOLLIN, qi);
}

/*
 * The program's rules. Without a policy, every datagram to the port goes to
 * the sockets (xsk_open). With one (wp_ctx_set_policy before the first
 * listen or connect), the context's rules, with the port added as a
 * datagram port that every tenant may reach from its own prefixes: XDP then
 * drops a datagram to the port whose tenant does not own its source address,
 * whose header is not one frame or whose SipHash header tag is wrong
 * (docs/policy.md, checks 13-15) before anything is redirected.
 */
static int xsk_rules(struct wp_ctx *ctx, const struct xsk_ctx *xc, struct wp_policy *pol)
{
	const struct wp_policy *p = wp_auth_policy(ctx);
	uint16_t port = xc->port;
	bool in = false;

	if (!p) {
		pol->default_verdict = WPP_V_PASS;
		pol->xsk_open = 1;
		pol->xsk_lo = pol->xsk_hi = port;
		pol->xsk_addr = ntohl(xc->ip); /* not another socket's port elsewhere */
		return 0;
	}
	memcpy(pol, p, sizeof(*pol));
	pol->gw_pool = NULL;
	for (uint32_t i = 0; i < pol->ndgram; i++)
		in |= port >= pol->dgram[i].lo && port <= pol->dgram[i].hi;
	if (!in) {
		if (pol->ndgram >= WPP_MAX_DGRAM)
			return -ENOSPC;
		pol->dgram[pol->ndgram].lo = pol->dgram[pol->ndgram].hi = port;
		pol->ndgram++;
	}
	for (uint32_t t = 0; t < pol->ntenants; t++) {
		struct wpp_rtenant *rt = &pol->tenants[t];

		in = false;
		for (uint32_t i = 0; i < rt->nranges; i++)
			in |= (rt->ranges[i].proto & WPP_P_UDP) && port >= rt->ranges[i].lo &&
			      port <= rt->ranges[i].hi;
		if (in)
			continue;
		if (rt->nranges >= WPP_MAX_RANGES)
			return -ENOSPC;
		rt->ranges[rt->nranges++] = (struct wpp_rrange){ port, port, WPP_P_UDP, 0 };
	}
	pol->xsk_open = 0;
	pol->xsk_lo = pol->xsk_hi = port;
	pol->xsk_addr = ntohl(xc->ip);
	return 0;
}

/*
 * wp_ctx_set_policy on a context whose program is loaded: the program takes
 * the new rules at once (the maps' inactive set, then the switch: no packet
 * sees half of them). Sessions that are not keyed cannot live under a
 * policy (XDP now drops their datagrams, user space their packets): they
 * end here with -EACCES and a reset to the peer, said once, rather than
 * time out on both sides. Keyed sessions
 * stay; a removed tenant's datagrams are dropped from now on.
 */
int xsk_policy_changed(struct wp_ctx *ctx)
{
	struct xsk_ctx *xc = ctx->bk;
	struct wp_policy *pol;
	unsigned ended = 0;
	int ret;

	if (!xc->up)
		return 0; /* the first listen or connect loads the program with it */
	pol = calloc(1, sizeof(*pol));
	if (!pol)
		return -ENOMEM;
	ret = xsk_rules(ctx, xc, pol);
	if (ret == 0)
		ret = wpp_maps_apply(&xc->prog.m, pol, 0);
	free(pol);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR,
		       "xsk: the XDP program on %s kept its old rules (%s); user space enforces the "
		       "new ones",
		       xc->ifname, ret == -ENOSPC ? "no room for the path's port" : strerror(-ret));
		return ret;
	}
	if (!wp_auth_policy(ctx))
		return 0;
	for (struct wp_ep *ep = ctx->eps, *nx; ep; ep = nx) {
		struct xsk_ep *s = xep(ep);

		nx = ep->next_all;
		if (s->listener || s->authn || s->ds ||
		    (ep->state != WP_EPS_OPEN && ep->state != WP_EPS_CONNECTING))
			continue;
		xsk_ctl_send(xc, s, XSK_RST, 0); /* the peer's connect or calls fail now */
		xsk_sess_fail(ep, -EACCES);
		ended++;
	}
	if (ended)
		wp_log(ctx, WP_LOG_WARN,
		       "xsk: a policy was set: %u session(s) without a tenant key ended (-EACCES)",
		       ended);
	return 0;
}

/* The context's interface, port, program and sockets, once. local: our
 * address (network order); port: host order, 0 = any (resv may be given). */
int xsk_ctx_setup(struct wp_ctx *ctx, uint32_t local, uint16_t port, int resv)
{
	struct xsk_ctx *xc = ctx->bk;
	struct xsk_umem_config ucfg = { .fill_size = XSK_RING,
					.comp_size = XSK_RING,
					.frame_size = XSK_FRAME,
					.frame_headroom = 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct wp_policy *pol = NULL;
	struct ifreq ifr;
	char why[256] = "";
	uint32_t nq;
	int ret, fd;

	if (xc->up)
		return local == xc->ip ? 0 : -EXDEV;
	ret = iface_of(local, xc->ifname, &xc->ifindex);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "xsk: no interface holds %s: %s",
		       inet_ntoa((struct in_addr){ local }), strerror(-ret));
		goto out_resv;
	}
	if (!strcmp(xc->ifname, "lo")) {
		wp_log(ctx, WP_LOG_ERR,
		       "xsk: loopback has no Ethernet for AF_XDP; use an "
		       "interface (a veth pair between namespaces)");
		ret = -EOPNOTSUPP;
		goto out_resv;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out_resv;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", xc->ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0 ||
	    ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */) {
		close(fd);
		wp_log(ctx, WP_LOG_ERR, "xsk: %s is not an Ethernet interface", xc->ifname);
		ret = -EOPNOTSUPP;
		goto out_resv;
	}
	memcpy(xc->mac, ifr.ifr_hwaddr.sa_data, 6);
	xc->mtu = ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : 1500;
	close(fd);
	/* The kernel keeps XDP_PACKET_HEADROOM (256) of each chunk: a received
	 * frame longer than the rest is dropped (rx_dropped), so a packet of
	 * a larger MTU would be resent forever. */
	if (xc->mtu > (int)(XSK_FRAME - XSK_XDP_HEADROOM - 14))
		xc->mtu = XSK_FRAME - XSK_XDP_HEADROOM - 14;
	if (xc->mtu < 576) {
		ret = -EMSGSIZE;
		goto out_resv;
	}

	/* The port, held by a kernel socket for as long as the context lives. */
	if (resv < 0) {
		resv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (resv < 0) {
			ret = -errno;
			goto out;
		}
		sin.sin_addr.s_addr = local;
		sin.sin_port = htons(port);
		if (bind(resv, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			ret = -errno;
			goto out_resv;
		}
	}
	if (getsockname(resv, (struct sockaddr *)&sin, &sl) < 0) {
		ret = -errno;
		goto out_resv;
	}
	WP_SYSCALL(WP_SYS_SOCKET);
	xc->resv_fd = resv;
	resv = -1;
	xc->port = ntohs(sin.sin_port);
	xc->ip = local;
	/* Neighbours are asked on this socket: made here, in the namespace of
	 * the interface, whichever thread asks later. */
	xc->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (xc->nl_fd < 0) {
		ret = -errno;
		goto out;
	}

	/* One program on the interface: the front door's, steering the port. */
	pol = calloc(1, sizeof(*pol));
	if (!pol) {
		ret = -ENOMEM;
		goto out;
	}
	ret = xsk_rules(ctx, xc, pol);
	if (ret == 0)
		ret = wpp_xsk_attach(xc->ifindex, pol, 0, &xc->prog, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "no room for port %u in the policy's rules", xc->port);
	free(pol);
	if (ret < 0) {
		wp_log(ctx, WP_LOG_ERR, "xsk: %s", why);
		goto out;
	}

	/* The UMEM: pinned memory, charged to RLIMIT_MEMLOCK without
	 * CAP_IPC_LOCK: the smaller size where the larger is refused. */
	for (xc->nframes = XSK_NFRAMES;; xc->nframes = XSK_NFRAMES_MIN) {
		xc->area = mmap(NULL, (size_t)xc->nframes * XSK_FRAME, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (xc->area == MAP_FAILED) {
			xc->area = NULL;
			ret = -ENOMEM;
			goto out;
		}
		ret = xsk_umem__create(&xc->umem, xc->area, (uint64_t)xc->nframes * XSK_FRAME,
				       &xc->q[0].fq, &xc->q[0].cq, &ucfg);
		if (ret == 0)
			break;
		xc->umem = NULL;
		munmap(xc->area, (size_t)xc->nframes * XSK_FRAME);
		xc->area = NULL;
		if (xc->nframes == XSK_NFRAMES_MIN || (ret != -ENOMEM && ret != -EPERM)) {
			wp_log(ctx, WP_LOG_ERR, "xsk: UMEM of %u KiB: %s%s",
			       xc->nframes * XSK_FRAME >> 10, strerror(-ret),
			       ret == -ENOMEM || ret == -EPERM ? " (RLIMIT_MEMLOCK?)" : "");
			goto out;
		}
	}
	for (uint32_t f = 0; f < xc->nframes; f++)
		xc->freel[xc->nframes - 1 - f] = (uint64_t)f * XSK_FRAME;
	xc->nfree = xc->nframes;
	nq = (uint32_t)rx_queues(xc->ifname);
	if (nq > XSK_MAX_Q) {
		/* Flows hashed to an unbound queue would miss the XSKMAP and
		 * be lost on the port-holding socket: refuse, and say how. */
		wp_log(ctx, WP_LOG_ERR,
		       "xsk: %s has %u rx queues; this path binds at most %u (one socket each): "
		       "reduce them (ethtool -L %s combined %u) or steer the port to the first "
		       "%u",
		       xc->ifname, nq, XSK_MAX_Q, xc->ifname, XSK_MAX_Q, XSK_MAX_Q);
		ret = -EOPNOTSUPP;
		goto out;
	}
	xc->nq = nq; /* never more than q[] holds: the teardown walks them */
	for (uint32_t i = 0; i < xc->nq; i++) {
		ret = bind_queue(ctx, i, why, sizeof(why));
		if (ret < 0) {
			wp_log(ctx, WP_LOG_ERR, "xsk: %s", why);
			xc->nq = i + 1; /* the teardown deletes what was made */
			goto out;
		}
	}
	xc->need_wakeup = true;
	xsk_fill_topup(xc);
	xc->up = true;
	/* what the kernel gave, for the meter (explain says it too) */
	if (xc->zerocopy)
		WP_CNT_ADD(xsk_sockets_zc, xc->nq);
	else
		WP_CNT_ADD(xsk_sockets_copy, xc->nq);
	if (xc->prog.native)
		WP_CNT_ADD(xdp_native, 1);
	else
		WP_CNT_ADD(xdp_generic, 1);
	wp_log(ctx, WP_LOG_INFO, "xsk: %s port %u, %u queue(s), %s, %s XDP", xc->ifname, xc->port,
	       xc->nq, xc->zerocopy ? "zero copy" : "copy mode",
	       xc->prog.native ? "native" : "generic");
	return 0;

out_resv:
	if (resv >= 0)
		close(resv);
out:
	xsk_teardown(xc); /* nothing of a failed set-up stays (link, UMEM, port) */
	return ret;
}
