// SPDX-License-Identifier: MIT
/*
 * The uring path's probes: each io_uring feature the path uses is set up,
 * registered and used on a loopback TCP pair (a header proves nothing about
 * the running kernel); zero-copy send is sent and its notification read,
 * reporting whether the kernel copied. Results go to the core's cached
 * table (src/core/probe.c); `wirepath probe` prints them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "uring_compat.h"
#include "uring_zcrx.h"

/* A connected loopback TCP pair (blocking). */
static int tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l, c, s;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto out_errno;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		goto out_errno;
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(c);
		goto out_errno;
	}
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		close(c);
		goto out_errno;
	}
	close(l);
	fds[0] = c;
	fds[1] = s;
	return 0;
out_errno:
	s = -errno;
	close(l);
	return s;
}

static int wait_one(struct io_uring *ring, struct io_uring_cqe *out)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { .tv_sec = 1 };
	int ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);

	if (ret < 0)
		return ret;
	*out = *cqe;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/* One zcrx registration, for real, as the path makes it (wp_zcrx_setup:
 * a ring with DEFER_TASKRUN and 32-byte CQEs, a 64 KiB area, a refill ring
 * in our memory); undone by closing the ring. */
static void probe_zcrx_one(const char *name, const char *spec)
{
	struct io_uring ring;
	struct wp_zcrx z;
	int ret;

	ret = io_uring_queue_init(8, &ring,
				  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					  IORING_SETUP_CQE32);
	if (ret < 0) {
		wp_probe_add(name, ret, "io_uring_setup(DEFER_TASKRUN | CQE32): %s",
			     strerror(-ret));
		return;
	}
	ret = wp_zcrx_setup(&z, &ring, spec, 64u << 10);
	if (ret == 0)
		wp_probe_add(name, 0,
			     "registered (%s): the uring path receives with RECV_ZC given "
			     "uring_zcrx=%s",
			     z.why, spec);
	else
		wp_probe_add(name, ret, "%s", z.why);
	io_uring_queue_exit(&ring);
	wp_zcrx_free(&z);
}

/* io_uring zero-copy receive: queue 0 of every interface (the first 8),
 * then the device-less copy mode of newer kernels. One probe line each. */
static void probe_zcrx(void)
{
	/* The probe table keeps the name pointers: names live as long as the
	 * process (probes run once, cached, under the table's lock). */
	static char names[8][IF_NAMESIZE + 16];
	struct if_nameindex *ifs = if_nameindex(), *i;
	int n = 0;

	if (!ifs) {
		wp_probe_add("uring.zcrx", -errno, "if_nameindex: %s", strerror(errno));
	} else {
		for (i = ifs; i->if_index && n < 8; i++) {
			char spec[IF_NAMESIZE + 4];

			snprintf(names[n], sizeof(names[0]), "uring.zcrx.%s", i->if_name);
			snprintf(spec, sizeof(spec), "%s:0", i->if_name);
			probe_zcrx_one(names[n++], spec);
		}
		if_freenameindex(ifs);
	}
	probe_zcrx_one("uring.zcrx.nodev", "nodev");
}

void wp_uring_probe(void)
{
	struct io_uring ring;
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe cqe;
	int ret, fds[2] = { -1, -1 };

	ret = io_uring_queue_init(64, &ring, 0);
	wp_probe_add("uring", ret, ret ? "io_uring_setup: %s" : "io_uring_setup ok",
		     ret ? strerror(-ret) : "");
	if (ret)
		return;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	{
		struct io_uring r2;
		int r = io_uring_queue_init_params(8, &r2, &p);

		wp_probe_add("uring.defer_taskrun", r,
			     r ? "SINGLE_ISSUER|DEFER_TASKRUN: %s" : "ok%s", r ? strerror(-r) : "");
		if (!r)
			io_uring_queue_exit(&r2);
	}
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQPOLL;
	{
		struct io_uring r2;
		int r = io_uring_queue_init_params(8, &r2, &p);

		wp_probe_add("uring.sqpoll", r,
			     r ? "IORING_SETUP_SQPOLL: %s" : "kernel SQ thread started%s",
			     r ? strerror(-r) : "");
		if (!r)
			io_uring_queue_exit(&r2);
	}

	ret = io_uring_register_files_sparse(&ring, 8);
	wp_probe_add("uring.register_files", ret, ret ? "register_files_sparse: %s" : "ok%s",
		     ret ? strerror(-ret) : "");
	{
		size_t len = 64 << 10;
		void *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);
		struct iovec iov = { b, len };

		ret = b == MAP_FAILED ? -ENOMEM : io_uring_register_buffers(&ring, &iov, 1);
		wp_probe_add("uring.register_buffers", ret,
			     ret ? "register_buffers(64 KiB): %s (memlock limit?)"
				 : "64 KiB pinned and registered%s",
			     ret ? strerror(-ret) : "");
		if (!ret)
			io_uring_unregister_buffers(&ring);
		if (b != MAP_FAILED)
			munmap(b, len);
	}

	/* Provided buffer ring + multishot recv, for real. */
	{
		size_t n = 8, bsz = 4096;
		struct io_uring_buf_ring *br = mmap(NULL, n * sizeof(struct io_uring_buf),
						    PROT_READ | PROT_WRITE,
						    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint8_t *bufs = malloc(n * bsz);
		struct io_uring_buf_reg reg = { .ring_addr = (uintptr_t)br,
						.ring_entries = 8,
						.bgid = 7 };

		ret = (br == MAP_FAILED || !bufs) ? -ENOMEM : 0;
		if (!ret) {
			io_uring_buf_ring_init(br);
			ret = io_uring_register_buf_ring(&ring, &reg, 0);
		}
		wp_probe_add("uring.buf_ring", ret,
			     ret ? "register_buf_ring: %s" : "provided buffer ring ok%s",
			     ret ? strerror(-ret) : "");
		if (!ret) {
			for (size_t i = 0; i < n; i++)
				io_uring_buf_ring_add(br, bufs + i * bsz, bsz, (unsigned short)i,
						      io_uring_buf_ring_mask(8), (int)i);
			io_uring_buf_ring_advance(br, (int)n);
			ret = tcp_pair(fds);
			if (!ret) {
				sqe = io_uring_get_sqe(&ring);
				io_uring_prep_recv_multishot(sqe, fds[1], NULL, 0, 0);
				sqe->flags |= IOSQE_BUFFER_SELECT;
				sqe->buf_group = 7;
				io_uring_submit(&ring);
				if (write(fds[0], "probe", 5) != 5)
					ret = -errno;
				else
					ret = wait_one(&ring, &cqe);
				if (!ret && cqe.res != 5)
					ret = cqe.res < 0 ? cqe.res : -EIO;
				if (!ret && !(cqe.flags & IORING_CQE_F_MORE))
					ret = -EOPNOTSUPP;
			}
			wp_probe_add("uring.recv_multishot", ret,
				     ret ? "multishot recv on loopback TCP: %s"
					 : "multishot recv into provided buffers ok%s",
				     ret ? strerror(-ret) : "");
			if (fds[0] >= 0) {
				close(fds[0]);
				close(fds[1]);
				fds[0] = fds[1] = -1;
			}
			/* Let the multishot end (EOF) before the ring goes. */
			wait_one(&ring, &cqe);
		}
		if (br != MAP_FAILED)
			munmap(br, n * sizeof(struct io_uring_buf));
		free(bufs);
	}

	/* SEND_ZC with usage reporting: send, read the notification. */
	{
		size_t len = 64 << 10;
		uint8_t *b = calloc(1, len);
		bool copied = false, got_notif = false;

		ret = b ? tcp_pair(fds) : -ENOMEM;
		if (!ret) {
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_send_zc(sqe, fds[0], b, len, MSG_WAITALL,
					      IORING_SEND_ZC_REPORT_USAGE);
			io_uring_submit(&ring);
			for (int i = 0; i < 2 && !ret; i++) {
				ret = wait_one(&ring, &cqe);
				if (ret)
					break;
				if (cqe.flags & IORING_CQE_F_NOTIF) {
					got_notif = true;
					copied = (uint32_t)cqe.res & IORING_NOTIF_USAGE_ZC_COPIED;
					break;
				}
				if (cqe.res < 0)
					ret = cqe.res;
				else if (!(cqe.flags & IORING_CQE_F_MORE))
					break;
			}
			if (!ret && !got_notif)
				ret = -EOPNOTSUPP;
			close(fds[0]);
			close(fds[1]);
		}
		free(b);
		if (ret)
			wp_probe_add("uring.send_zc", ret,
				     "SEND_ZC with REPORT_USAGE on loopback TCP: %s",
				     strerror(-ret));
		else
			wp_probe_add(
				"uring.send_zc", 0,
				"works; the loopback test send was %s by the kernel (only traffic "
				"leaving through a real NIC can avoid the copy)",
				copied ? "COPIED" : "not copied");
	}
	io_uring_queue_exit(&ring);
	probe_zcrx();
}
