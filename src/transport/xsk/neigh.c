// SPDX-License-Identifier: MIT
/*
 * The xsk path's neighbour resolution: the peer's MAC from the kernel's
 * table over rtnetlink (RTM_GETNEIGH) in the interface's namespace, and the
 * nudge that makes the kernel ask for it, never blocking wp_connect.
 */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <unistd.h>

#include "xsk.h"

/*
 * The peer's MAC from the kernel's neighbour table, asked over rtnetlink
 * (RTM_GETNEIGH, a dump of the IPv4 entries) on the context's netlink
 * socket: it was opened at set-up, so it sees the namespace of the
 * interface (a socket keeps the namespace it was made in; /proc/net/arp
 * shows the namespace of the process's leader, not of the calling thread).
 * 0 and mac set, -EAGAIN while there is no usable entry (ARP in progress),
 * or -errno.
 */
int xsk_neigh_lookup(struct xsk_ctx *xc, uint32_t ip, uint8_t mac[6])
{
	struct {
		struct nlmsghdr nh;
		struct ndmsg nd;
	} req = { .nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)),
			  .nlmsg_type = RTM_GETNEIGH,
			  .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			  .nlmsg_seq = ++xc->nl_seq },
		  .nd = { .ndm_family = AF_INET, .ndm_ifindex = xc->ifindex } };
	static __thread uint8_t buf[16384] __attribute__((aligned(4)));
	int ret = -EAGAIN;

	if (xc->nl_fd < 0)
		return -ENOTSOCK;
	if (send(xc->nl_fd, &req, req.nh.nlmsg_len, 0) < 0)
		return -errno;
	WP_SYSCALL(WP_SYS_WRITE);
	for (;;) {
		ssize_t n = recv(xc->nl_fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nh;

		WP_SYSCALL(WP_SYS_READ);
		if (n < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			struct ndmsg *nd = NLMSG_DATA(nh);
			struct rtattr *rta;
			int alen;
			const uint8_t *dst = NULL, *ll = NULL;

			if (nh->nlmsg_seq != xc->nl_seq)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				return ret;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);

				return e->error ? e->error : ret;
			}
			if (nh->nlmsg_type != RTM_NEWNEIGH || ret == 0 ||
			    nh->nlmsg_len < NLMSG_LENGTH(sizeof(*nd)) ||
			    nd->ndm_ifindex != xc->ifindex ||
			    !(nd->ndm_state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE |
					       NUD_PERMANENT | NUD_NOARP)))
				continue;
			alen = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*nd)));
			for (rta = (struct rtattr *)((uint8_t *)nd + NLMSG_ALIGN(sizeof(*nd)));
			     RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
				if (rta->rta_type == NDA_DST && RTA_PAYLOAD(rta) == 4)
					dst = RTA_DATA(rta);
				else if (rta->rta_type == NDA_LLADDR && RTA_PAYLOAD(rta) == 6)
					ll = RTA_DATA(rta);
			}
			if (dst && ll && !memcmp(dst, &ip, 4)) {
				memcpy(mac, ll, 6);
				ret = 0; /* the dump still runs to NLMSG_DONE */
			}
		}
	}
}

/* Make the kernel resolve the peer (a datagram to its discard port sends
 * the ARP request), never waiting for the answer. */
void xsk_neigh_poke(uint32_t ip)
{
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	d.sin_addr.s_addr = ip;
	if (fd >= 0) {
		sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&d, sizeof(d));
		close(fd);
	}
}

/* The MAC of a connecting session, from the timers: found, or asked again
 * (the SYN waits for it within the connect's 3 s). 0 or -EAGAIN. */
int xsk_sess_mac(struct xsk_ctx *xc, struct xsk_ep *s, uint64_t now)
{
	int ret = xsk_neigh_lookup(xc, s->peer_ip, s->peer_mac);

	if (ret == 0) {
		s->have_mac = true;
		return 0;
	}
	if (now - s->poked_at > 250000000ull) { /* the kernel's ARP retry is 1 s */
		xsk_neigh_poke(s->peer_ip);
		s->poked_at = now;
	}
	return -EAGAIN;
}
