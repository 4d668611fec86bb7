// SPDX-License-Identifier: MIT
/*
 * The ENOBUFS fallback of MSG_ZEROCOPY on the tcp path, provoked for real:
 * the test moves itself into a network namespace of its own (unshare; it
 * skips without the privilege: that is setup), brings its loopback up and
 * sets that namespace's net.core.optmem_max (per namespace since Linux 6.9)
 * to 0, so the kernel cannot allocate a single zero-copy notification and
 * refuses every MSG_ZEROCOPY send with ENOBUFS. Every such send must go out
 * by copy at once (zc_nobufs counts them, zc_sent stays 0), the data must
 * arrive intact, and the buffers come back. Then optmem_max is restored
 * and a new connection's zero-copy sends are notified again.
 * wp-test-paths: tcp
 */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "zc_peer.h"

#define NMSG 600u
#define POOL 32

static struct zslot pool[POOL];

static int write_optmem(const char *val)
{
	int fd = open("/proc/sys/net/core/optmem_max", O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

/* A namespace of our own with lo up and optmem_max 0, or skip. */
static void netns_setup(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		SKIP("unshare(CLONE_NEWNET): %s (needs CAP_SYS_ADMIN)", strerror(errno));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	CHECK(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	CHECK(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
	close(fd);
	if (write_optmem("0") < 0)
		SKIP("net.core.optmem_max is not writable in a new namespace (before Linux 6.9 "
		     "it is global)");
}

static void run(struct srv *s, uint32_t *seed, bool expect_nobufs)
{
	struct conn_wait w = { 0 };
	struct wp_ctx *c = zc_client(s->path, 1);
	struct wp_ep *ep = client_connect(c, s->path, s->port, &w, NULL, NULL);
	struct wp_meter_snap m0, m1, d;
	uint32_t i = 0, base = *seed, target = s_done + NMSG;
	const char *ex;

	wp_meter_snapshot(&m0);
	while (i < NMSG) {
		int queued = 0;

		for (int k = 0; k < POOL && i < NMSG; k++) {
			if (pool[k].busy)
				continue;
			s_queue(ep, &pool[k], base + i++);
			queued++;
		}
		CHECK(wp_ctx_progress(c, queued ? 0 : 1000) >= 0);
		CHECK(!w.closed);
	}
	while (s_done < target)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	*seed = base + NMSG;
	s_verdict(c, ep, *seed);
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &d);
	ex = wp_ctx_explain(c);
	printf("optmem_max %s: zc sent %llu copied %llu nobufs %llu\n%s\n",
	       expect_nobufs ? "0" : "restored", (unsigned long long)d.zc_sent,
	       (unsigned long long)d.zc_copied, (unsigned long long)d.zc_nobufs, ex);
	if (expect_nobufs) {
		CHECK(d.zc_nobufs > 0);
		CHECK_EQ(d.zc_sent, 0);
		CHECK_EQ(d.zc_copied, 0);
		CHECK(strstr(ex, "0 sent") && strstr(ex, "ENOBUFS (optmem) sent by copy"));
	} else {
		CHECK_EQ(d.zc_nobufs, 0);
		CHECK(d.zc_sent > 0);
		CHECK_EQ(d.zc_copied, d.zc_sent);
	}
	wp_ep_close(ep);
	wp_ctx_destroy(c);
}

int main(int argc, char **argv)
{
	static struct srv s;
	uint32_t seed = 0;

	test_watchdog(60);
	netns_setup();
	for (int k = 0; k < POOL; k++)
		CHECK((pool[k].buf = malloc(BUF_MAX)) != NULL);
	r_start(&s, test_path(argc, argv));
	run(&s, &seed, true);
	CHECK(write_optmem("131072") == 0);
	run(&s, &seed, false);
	srv_stop(&s);
	for (int k = 0; k < POOL; k++)
		free(pool[k].buf);
	free(r_scratch);
	return 0;
}
