// SPDX-License-Identifier: MIT
/*
 * Capability probes. Each one really exercises the feature on the running
 * kernel (a header proves nothing): io_uring features are set up, registered
 * and used on a loopback TCP pair; zero-copy send is sent and its
 * notification read, reporting whether the kernel copied. Answers are cached
 * for the process. `wirepath probe` prints them; tests and the bench use them.
 * The GPU probes run apart, only when asked (probe_gpu says why).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "transport/uring_compat.h"
#include "gpu/gpu_ops.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

#define MAX_PROBES 32

static struct wp_probe_result results[MAX_PROBES];
static int nresults;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_once_t once_gpu = PTHREAD_ONCE_INIT;
static pthread_mutex_t results_lock = PTHREAD_MUTEX_INITIALIZER;

static struct wp_probe_result *add(const char *name, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct wp_probe_result *add(const char *name, int err, const char *fmt, ...)
{
	struct wp_probe_result *r = &results[nresults++];
	va_list ap;

	r->name = name;
	r->err = err < 0 ? -err : err;
	r->ok = err == 0;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return r;
}

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

static void probe_uring(void)
{
	struct io_uring ring;
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe cqe;
	int ret, fds[2] = { -1, -1 };

	ret = io_uring_queue_init(64, &ring, 0);
	add("uring", ret, ret ? "io_uring_setup: %s" : "io_uring_setup ok",
	    ret ? strerror(-ret) : "");
	if (ret)
		return;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	{
		struct io_uring r2;
		int r = io_uring_queue_init_params(8, &r2, &p);

		add("uring.defer_taskrun", r, r ? "SINGLE_ISSUER|DEFER_TASKRUN: %s" : "ok%s",
		    r ? strerror(-r) : "");
		if (!r)
			io_uring_queue_exit(&r2);
	}
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQPOLL;
	{
		struct io_uring r2;
		int r = io_uring_queue_init_params(8, &r2, &p);

		add("uring.sqpoll", r, r ? "IORING_SETUP_SQPOLL: %s" : "kernel SQ thread started%s",
		    r ? strerror(-r) : "");
		if (!r)
			io_uring_queue_exit(&r2);
	}

	ret = io_uring_register_files_sparse(&ring, 8);
	add("uring.register_files", ret, ret ? "register_files_sparse: %s" : "ok%s",
	    ret ? strerror(-ret) : "");
	{
		size_t len = 64 << 10;
		void *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct iovec iov = { b, len };

		ret = b == MAP_FAILED ? -ENOMEM : io_uring_register_buffers(&ring, &iov, 1);
		add("uring.register_buffers", ret,
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
		struct io_uring_buf_reg reg = { .ring_addr = (uintptr_t)br, .ring_entries = 8,
						.bgid = 7 };

		ret = (br == MAP_FAILED || !bufs) ? -ENOMEM : 0;
		if (!ret) {
			io_uring_buf_ring_init(br);
			ret = io_uring_register_buf_ring(&ring, &reg, 0);
		}
		add("uring.buf_ring", ret, ret ? "register_buf_ring: %s" : "provided buffer ring ok%s",
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
			add("uring.recv_multishot", ret,
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
			add("uring.send_zc", ret, "SEND_ZC with REPORT_USAGE on loopback TCP: %s",
			    strerror(-ret));
		else
			add("uring.send_zc", 0,
			    "works; the loopback test send was %s by the kernel (only traffic "
			    "leaving through a real NIC can avoid the copy)",
			    copied ? "COPIED" : "not copied");
	}
	io_uring_queue_exit(&ring);
}

static void probe_misc(void)
{
	int fd, ret, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ret = fd < 0 ? -errno : 0;
	add("tcp", ret, ret ? "socket: %s" : "TCP sockets%s", ret ? strerror(-ret) : "");
	if (fd >= 0) {
		ret = setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0 ? -errno : 0;
		add("tcp.msg_zerocopy", ret, ret ? "SO_ZEROCOPY: %s" : "SO_ZEROCOPY accepted%s",
		    ret ? strerror(-ret) : "");
		close(fd);
	}
	fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd >= 0) {
		struct epoll_event ev;
		struct timespec ts = { 0, 0 };

		ret = epoll_pwait2(fd, &ev, 1, &ts, NULL) < 0 ? -errno : 0;
		add("epoll_pwait2", ret, ret ? "epoll_pwait2: %s" : "ns-resolution waits%s",
		    ret ? strerror(-ret) : "");
		close(fd);
	}
	{
		const char *paths[] = { "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
					"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id" };
		int ok = 0;

		for (size_t i = 0; i < 2 && !ok; i++)
			ok = access(paths[i], R_OK) == 0;
		add("meter.kernel_syscalls", ok ? 0 : -ENOENT,
		    ok ? "raw_syscalls:sys_enter readable: syscalls can be counted by the kernel"
		       : "tracefs not mounted (the bench mounts it when root)");
	}
	{
		char why[160] = "";

		ret = wp_shm_ops.available(why, sizeof(why));
		add("path.shm", ret,
		    ret ? "%s" : "sealed memfd, eventfd doorbells, unix SEQPACKET with SCM_RIGHTS%s",
		    ret ? why : "");
	}
	fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	add("path.af_xdp", -ENOSYS, "not built in this version (kernel AF_XDP socket: %s)",
	    fd >= 0 ? "ok" : strerror(errno));
	if (fd >= 0)
		close(fd);
	{
		DIR *d = opendir("/sys/class/infiniband");
		int n = 0;
		struct dirent *e;

		while (d && (e = readdir(d)))
			n += e->d_name[0] != '.';
		if (d)
			closedir(d);
		add("path.rdma", -ENOSYS, "not built in this version (%d RDMA device(s) in "
					  "/sys/class/infiniband)", n);
	}
	add("path.ucx", -ENOSYS, "not built in this version");
}

/*
 * The GPU: a real cudaGetDeviceCount (which loads the driver and creates no
 * context), and why GPUDirect cannot run. Kept out of the other probes' run
 * because loading the CUDA driver costs tens of milliseconds on a GPU
 * machine: it runs for wp_probe_all (the CLI, the bench) and for a
 * wp_probe_get("gpu.*"), not for every uring context's probe lookup.
 */
static void probe_gpu(void)
{
	char d[160];
	int ret = wp_gpu_probe_cuda(d, sizeof(d));

	add("gpu.cuda", ret, "%s", d);
	wp_gpu_gpudirect_why(d, sizeof(d));
	add("gpu.gpudirect", -EOPNOTSUPP, "%s", d);
}

static void run_all(void)
{
	pthread_mutex_lock(&results_lock);
	probe_misc();
	probe_uring();
	pthread_mutex_unlock(&results_lock);
}

static void run_gpu(void)
{
	pthread_mutex_lock(&results_lock);
	probe_gpu();
	pthread_mutex_unlock(&results_lock);
}

static int nresults_now(void)
{
	int n;

	pthread_mutex_lock(&results_lock);
	n = nresults;
	pthread_mutex_unlock(&results_lock);
	return n;
}

int wp_probe_all(const struct wp_probe_result **out)
{
	pthread_once(&once, run_all);
	pthread_once(&once_gpu, run_gpu);
	*out = results;
	return nresults_now();
}

const struct wp_probe_result *wp_probe_get(const char *name)
{
	int n;

	pthread_once(&once, run_all);
	if (!strncmp(name, "gpu.", 4))
		pthread_once(&once_gpu, run_gpu);
	/* Entries never change once added; the count is read under the lock
	 * the two runs append under. */
	n = nresults_now();
	for (int i = 0; i < n; i++)
		if (!strcmp(results[i].name, name))
			return &results[i];
	return NULL;
}
