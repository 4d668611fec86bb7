// SPDX-License-Identifier: MIT
/*
 * edu_test: drives the edu driver (kernel/edu) from inside the VM
 * (tests/vm/edu_guest.sh runs it). Each mode prints what it checked and
 * exits 0 (pass) or 1 (fail, with the first thing that went wrong).
 *
 *   edu_test DEV roundtrip N     N write/read-back pairs, sizes 1 B-4 KiB, unaligned
 *                                user and device offsets, both paths, checksums
 *   edu_test DEV concurrent T N  T threads, N pairs each, on their own device ranges
 *   edu_test DEV area N          the mmap'd coherent area: sync and N async submissions
 *   edu_test DEV rw              read/write/lseek
 *   edu_test DEV bad             bad input: EINVAL, EFAULT, ENOTTY, never an oops
 *   edu_test DEV mask            (module loaded with a small dma_bits) ERANGE, data intact
 *   edu_test DEV queue-exit      fill the ring with async submissions, exit at once
 *   edu_test DEV unbind PCIADDR  transfers in flight while the card is unbound
 *   edu_test DEV bench N SIZE    N transfers of SIZE: transfers/s, MB/s, CPU per KiB
 *                                next to memcpy; prints one JSON line
 *   edu_test DEV info            what the driver obtained (JSON)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../kernel/edu/edu_uapi.h"

static const char *dev_path;
static uint32_t buf_bytes = EDU_BUF_SIZE - 1; /* EDU_IOC_INFO's, read in main */

#define FAIL(...)                                                    \
	do {                                                         \
		fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                        \
		fputc('\n', stderr);                                 \
		exit(1);                                             \
	} while (0)

static int open_dev(void)
{
	int fd = open(dev_path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		FAIL("open %s: %s", dev_path, strerror(errno));
	return fd;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

/* One transfer through EDU_IOC_XFER; returns -errno of the call or the DMA. */
static int xfer(int fd, void *addr, uint32_t len, uint32_t dev_off, uint32_t dir, uint32_t flags,
		struct edu_xfer *out)
{
	struct edu_xfer x = { .addr = (uint64_t)(uintptr_t)addr,
			      .len = len,
			      .dev_off = dev_off,
			      .dir = dir,
			      .flags = flags };

	if (ioctl(fd, EDU_IOC_XFER, &x) < 0)
		return -errno;
	if (out)
		*out = x;
	return x.status;
}

static void get_info(int fd, struct edu_info *info)
{
	if (ioctl(fd, EDU_IOC_INFO, info) < 0)
		FAIL("EDU_IOC_INFO: %s", strerror(errno));
}

static const uint32_t sizes[] = { 1,    2,    3,    7,    64,   100,  255,  511,  512,  513, 1000,
				  1023, 1024, 1025, 1500, 2048, 2049, 3000, 4000, 4095, 4096 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* One write + read-back of a random size at random offsets; checks the bytes. */
static void pair(int fd, uint8_t *src, uint8_t *dst, uint32_t dev_lo, uint32_t dev_span,
		 uint64_t seed, unsigned int *paths)
{
	uint32_t len = sizes[seed % NSIZES] > buf_bytes ? buf_bytes : sizes[seed % NSIZES];
	uint32_t uoff, doff;
	struct edu_xfer x;
	int ret;

	if (len > dev_span)
		len = 1 + (uint32_t)(seed % dev_span);
	uoff = (uint32_t)((seed >> 8) % 4096); /* any alignment, often across a page */
	doff = dev_lo + (uint32_t)((seed >> 20) % (dev_span - len + 1));
	fill(src + uoff, len, seed);
	memset(dst + uoff, 0xee, len);
	ret = xfer(fd, src + uoff, len, doff, EDU_TO_DEV, 0, &x);
	if (ret)
		FAIL("write len %u uoff %u doff %u: %s", len, uoff, doff, strerror(-ret));
	if (paths)
		paths[x.path]++;
	ret = xfer(fd, dst + uoff, len, doff, EDU_FROM_DEV, 0, &x);
	if (ret)
		FAIL("read len %u uoff %u doff %u: %s", len, uoff, doff, strerror(-ret));
	if (fnv1a(src + uoff, len) != fnv1a(dst + uoff, len))
		FAIL("data differs after a round trip: len %u uoff %u doff %u path %u segs %u", len,
		     uoff, doff, x.path, x.segs);
	if (paths)
		paths[x.path]++;
}

static uint8_t *alloc_pages2(size_t n)
{
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		FAIL("mmap %zu: %s", n, strerror(errno));
	memset(p, 0, n);
	return p;
}

static int mode_roundtrip(long n)
{
	int fd = open_dev();
	uint8_t *src = alloc_pages2(3 * 4096), *dst = alloc_pages2(3 * 4096);
	unsigned int paths[4] = { 0 };

	/* Every size at least once, at a page-crossing offset, both paths. */
	for (unsigned int i = 0; i < NSIZES; i++) {
		uint32_t len = sizes[i] > buf_bytes ? buf_bytes : sizes[i],
			 uoff = 4096 - len / 2 - 1;
		int ret;

		fill(src + uoff, len, i);
		ret = xfer(fd, src + uoff, len, buf_bytes - len, EDU_TO_DEV, 0, NULL);
		if (!ret)
			ret = xfer(fd, dst + uoff, len, buf_bytes - len, EDU_FROM_DEV, 0, NULL);
		if (ret)
			FAIL("size %u: %s", len, strerror(-ret));
		if (memcmp(src + uoff, dst + uoff, len))
			FAIL("size %u: data differs", len);
	}
	for (long i = 0; i < n; i++)
		pair(fd, src, dst, 0, buf_bytes, rng(), paths);
	printf("roundtrip: %ld pairs (%ld transfers) + %zu sizes intact: %u bounced, %u pinned\n",
	       n, 2 * n, NSIZES, paths[EDU_PATH_BOUNCE], paths[EDU_PATH_PINNED]);
	if (n >= 100 && (!paths[EDU_PATH_BOUNCE] || !paths[EDU_PATH_PINNED]))
		FAIL("expected both the bounce and the pinned path");
	close(fd);
	return 0;
}

struct worker {
	pthread_t th;
	int idx, nthreads;
	long n;
	uint64_t seed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int fd = open_dev(); /* one file each: also covers several files at once */
	uint8_t *src = alloc_pages2(3 * 4096), *dst = alloc_pages2(3 * 4096);
	uint32_t span = buf_bytes / w->nthreads;

	for (long i = 0; i < w->n; i++) {
		w->seed = w->seed * 6364136223846793005ull + 1442695040888963407ull;
		pair(fd, src, dst, span * w->idx, span, w->seed >> 3, NULL);
	}
	close(fd);
	return NULL;
}

static int mode_concurrent(int nthreads, long n)
{
	struct worker w[16];

	if (nthreads < 1 || nthreads > 16)
		FAIL("1..16 threads");
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .idx = i, .nthreads = nthreads, .n = n, .seed = 1000 + i };
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			FAIL("pthread_create");
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
	printf("concurrent: %d submitters x %ld pairs intact\n", nthreads, n);
	return 0;
}

static int mode_area(long n)
{
	int fd = open_dev();
	struct edu_info info;
	struct edu_xfer x;
	uint8_t *area;
	size_t size;
	int ret;

	get_info(fd, &info);
	size = info.area_size;
	area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED)
		FAIL("mmap the area (%zu B): %s", size, strerror(errno));
	/* Sync: area[0..buf_bytes) -> card -> area[8192..) */
	fill(area, buf_bytes, 7);
	if ((ret = xfer(fd, (void *)0, buf_bytes, 0, EDU_TO_DEV, EDU_XFER_AREA, &x)))
		FAIL("area to card: %s", strerror(-ret));
	if (x.path != EDU_PATH_AREA)
		FAIL("path %u, want area", x.path);
	if ((ret = xfer(fd, (void *)8192, buf_bytes, 0, EDU_FROM_DEV, EDU_XFER_AREA, NULL)))
		FAIL("card to area: %s", strerror(-ret));
	if (memcmp(area, area + 8192, buf_bytes))
		FAIL("area round trip differs");
	/* Async: n submissions, each a write of a distinct 64-byte block then a
	 * read-back to another offset; reaped in order (one engine, one FIFO). */
	uint64_t cookie_next = 0;
	long inflight = 0, done = 0;
	for (long i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)(i % 32), off = slot * 64;
		struct edu_xfer s = { .addr = off,
				      .len = 64,
				      .dev_off = off,
				      .dir = EDU_TO_DEV,
				      .flags = EDU_XFER_AREA };
		struct edu_reap r;

		fill(area + off, 64, 100 + i);
		while (ioctl(fd, EDU_IOC_SUBMIT, &s) < 0) {
			if (errno != EAGAIN)
				FAIL("submit: %s", strerror(errno));
			if (ioctl(fd, EDU_IOC_REAP, &r) < 0)
				FAIL("reap: %s", strerror(errno));
			inflight--, done++;
			if (r.status || r.cookie != ++cookie_next)
				FAIL("reap: cookie %llu status %d", (unsigned long long)r.cookie,
				     r.status);
		}
		inflight++;
		s = (struct edu_xfer){ .addr = 32768 + off,
				       .len = 64,
				       .dev_off = off,
				       .dir = EDU_FROM_DEV,
				       .flags = EDU_XFER_AREA };
		while (ioctl(fd, EDU_IOC_SUBMIT, &s) < 0) {
			if (errno != EAGAIN)
				FAIL("submit: %s", strerror(errno));
			if (ioctl(fd, EDU_IOC_REAP, &r) < 0)
				FAIL("reap: %s", strerror(errno));
			inflight--, done++;
			if (r.status || r.cookie != ++cookie_next)
				FAIL("reap: status %d", r.status);
		}
		inflight++;
		/* the slot is reused after 32 pairs: drain before overwriting it */
		if (slot == 31) {
			while (inflight) {
				if (ioctl(fd, EDU_IOC_REAP, &r) < 0)
					FAIL("reap: %s", strerror(errno));
				inflight--, done++;
				if (r.status || r.cookie != ++cookie_next)
					FAIL("reap: status %d", r.status);
			}
			for (uint32_t k = 0; k < 32; k++)
				if (memcmp(area + k * 64, area + 32768 + k * 64, 64))
					FAIL("async block %u differs", k);
		}
	}
	while (inflight) {
		struct edu_reap r;

		if (ioctl(fd, EDU_IOC_REAP, &r) < 0)
			FAIL("reap: %s", strerror(errno));
		inflight--, done++;
		if (r.status)
			FAIL("reap: status %d", r.status);
	}
	for (uint32_t k = 0; k < (uint32_t)(n < 32 ? n : 32); k++)
		if (memcmp(area + k * 64, area + 32768 + k * 64, 64))
			FAIL("async block %u differs", k);
	struct edu_reap r;
	if (ioctl(fd, EDU_IOC_REAP, &r) == 0 || errno != ENOENT)
		FAIL("reap with nothing submitted: want ENOENT");
	printf("area: mmap %zu B, sync round trip, %ld async transfers reaped in order, intact\n",
	       size, done);
	munmap(area, size);
	close(fd);
	return 0;
}

static int mode_rw(void)
{
	int fd = open_dev();
	uint8_t a[4096], b[4096];
	ssize_t B = buf_bytes;

	fill(a, sizeof(a), 42);
	if (pwrite(fd, a, 4096, 0) != B) /* a short write: the buffer ends */
		FAIL("pwrite 4096: want %zd: %s", B, strerror(errno));
	if (pread(fd, b, 4096, 0) != B || memcmp(a, b, B))
		FAIL("pread 4096 differs");
	if (pwrite(fd, a + 5, 100, 3000) != 100)
		FAIL("pwrite at 3000");
	if (pread(fd, b, 200, 4000) != B - 4000)
		FAIL("pread near the end: want %zd", B - 4000);
	if (pread(fd, b, 10, B) != 0)
		FAIL("pread at the end: want 0 (EOF)");
	if (pwrite(fd, a, 10, B) >= 0 || errno != ENOSPC)
		FAIL("pwrite at the end: want ENOSPC");
	if (pread(fd, b, 100, 3000) != 100 || memcmp(a + 5, b, 100))
		FAIL("pread at 3000 differs");
	if (lseek(fd, 100, SEEK_SET) != 100 || write(fd, "abc", 3) != 3 ||
	    lseek(fd, 0, SEEK_CUR) != 103)
		FAIL("write advances the offset");
	if (lseek(fd, 5000, SEEK_SET) >= 0)
		FAIL("lseek beyond the buffer accepted");
	printf("rw: read/write/lseek on the card's buffer\n");
	close(fd);
	return 0;
}

#define EXPECT_ERR(expr, err, what)                                                       \
	do {                                                                              \
		int r_ = (expr);                                                          \
		if (r_ != -(err))                                                         \
			FAIL("%s: got %s, want %s", what, r_ ? strerror(-r_) : "success", \
			     strerror(err));                                              \
		checks++;                                                                 \
	} while (0)

static int mode_bad(void)
{
	int fd = open_dev(), checks = 0;
	uint8_t *buf = alloc_pages2(8192);
	uint8_t *hole = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *ro = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct edu_xfer x;

	EXPECT_ERR(xfer(fd, buf, 0, 0, EDU_TO_DEV, 0, NULL), EINVAL, "length 0");
	EXPECT_ERR(xfer(fd, buf, buf_bytes + 1, 0, EDU_TO_DEV, 0, NULL), EINVAL,
		   "length buf_bytes+1");
	EXPECT_ERR(xfer(fd, buf, 4097, 0, EDU_TO_DEV, 0, NULL), EINVAL, "length 4097");
	EXPECT_ERR(xfer(fd, buf, 1u << 31, 0, EDU_TO_DEV, 0, NULL), EINVAL, "length 2^31");
	EXPECT_ERR(xfer(fd, buf, 200, buf_bytes - 100, EDU_TO_DEV, 0, NULL), EINVAL,
		   "device range past the buffer");
	EXPECT_ERR(xfer(fd, buf, 1, buf_bytes, EDU_FROM_DEV, 0, NULL), EINVAL,
		   "device offset at the end");
	EXPECT_ERR(xfer(fd, buf, 16, 0xfffffff8u, EDU_TO_DEV, 0, NULL), EINVAL,
		   "device offset wrapping");
	EXPECT_ERR(xfer(fd, buf, 16, 0, 2, 0, NULL), EINVAL, "direction 2");
	EXPECT_ERR(xfer(fd, buf, 16, 0, 0xffffffffu, 0, NULL), EINVAL, "direction -1");
	EXPECT_ERR(xfer(fd, buf, 16, 0, EDU_TO_DEV, 0x80, NULL), EINVAL, "unknown flag");
	/* bad user pointers, on both paths (16 B bounces, 4000 B pins) */
	EXPECT_ERR(xfer(fd, (void *)16, 16, 0, EDU_TO_DEV, 0, NULL), EFAULT, "NULL page, bounce");
	EXPECT_ERR(xfer(fd, (void *)16, 4000, 0, EDU_TO_DEV, 0, NULL), EFAULT, "NULL page, pin");
	EXPECT_ERR(xfer(fd, hole, 16, 0, EDU_FROM_DEV, 0, NULL), EFAULT, "PROT_NONE, bounce");
	EXPECT_ERR(xfer(fd, hole, 4000, 0, EDU_FROM_DEV, 0, NULL), EFAULT, "PROT_NONE, pin");
	EXPECT_ERR(xfer(fd, ro, 16, 0, EDU_FROM_DEV, 0, NULL), EFAULT, "read-only, bounce");
	EXPECT_ERR(xfer(fd, ro, 4000, 0, EDU_FROM_DEV, 0, NULL), EFAULT, "read-only, pin");
	EXPECT_ERR(xfer(fd, (void *)0xffff888000000000ull, 2000, 0, EDU_TO_DEV, 0, NULL), EFAULT,
		   "kernel address");
	EXPECT_ERR(xfer(fd, (void *)0xfffffffffffff000ull, 4000, 0, EDU_TO_DEV, 0, NULL), EFAULT,
		   "address wrapping");
	EXPECT_ERR(xfer(fd, buf + 4096 - 8, 4000, 0, EDU_TO_DEV, 0, NULL), 0,
		   "buffer ending in a mapped page (control)");
	EXPECT_ERR(xfer(fd, hole + 4096 - 8, 16, 0, EDU_TO_DEV, 0, NULL), EFAULT, "hole, bounce");
	/* the area: offsets beyond it */
	EXPECT_ERR(xfer(fd, (void *)(64u << 20), 16, 0, EDU_TO_DEV, EDU_XFER_AREA, NULL), EINVAL,
		   "area offset beyond the area");
	EXPECT_ERR(xfer(fd, (void *)~0ull, 16, 0, EDU_TO_DEV, EDU_XFER_AREA, NULL), EINVAL,
		   "area offset wrapping");
	x = (struct edu_xfer){ .addr = (uintptr_t)buf, .len = 16 };
	EXPECT_ERR(ioctl(fd, EDU_IOC_SUBMIT, &x) < 0 ? -errno : 0, EINVAL,
		   "async submit of user memory");
	EXPECT_ERR(ioctl(fd, _IOWR('E', 99, struct edu_xfer), &x) < 0 ? -errno : 0, ENOTTY,
		   "unknown ioctl");
	EXPECT_ERR(ioctl(fd, EDU_IOC_XFER, (void *)16) < 0 ? -errno : 0, EFAULT,
		   "ioctl argument pointer");
	EXPECT_ERR(mmap(NULL, 4u << 20, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ? -errno : 0,
		   EINVAL, "mmap larger than the area");
	EXPECT_ERR(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096) == MAP_FAILED ? -errno : 0,
		   EINVAL, "mmap at an offset");
	/* still works afterwards */
	fill(buf, 100, 9);
	EXPECT_ERR(xfer(fd, buf, 100, 0, EDU_TO_DEV, 0, NULL), 0, "a good transfer after");
	printf("bad: %d bad inputs refused with the right errno\n", checks);
	close(fd);
	return 0;
}

static int mode_mask(void)
{
	int fd = open_dev(), refused = 0, ok = 0;
	struct edu_info info;
	size_t n = 64u << 20; /* touched: its pages spread over the guest's memory */
	uint8_t *big = alloc_pages2(n), *dst = alloc_pages2(8192);

	get_info(fd, &info);
	for (size_t off = 0; off + 4096 <= n; off += (n / 64) + 3) {
		uint32_t len = (off / (n / 64)) % 2 ? 4000 : 64; /* pinned and bounced */
		int ret;

		fill(big + off, len, off);
		ret = xfer(fd, big + off, len, 0, EDU_TO_DEV, 0, NULL);
		if (ret == -ERANGE) {
			refused++;
			continue;
		}
		if (ret)
			FAIL("transfer at +%zu: %s (want success or ERANGE)", off, strerror(-ret));
		ret = xfer(fd, dst, len, 0, EDU_FROM_DEV, 0, NULL);
		if (ret && ret != -ERANGE)
			FAIL("read back: %s", strerror(-ret));
		if (!ret && memcmp(big + off, dst, len))
			FAIL("data differs");
		ok++;
	}
	get_info(fd, &info);
	printf("mask: dma_bits %u: %d transfers refused with ERANGE (driver counted %llu), %d "
	       "within the mask intact\n",
	       info.dma_bits, refused, (unsigned long long)info.refused_mask, ok);
	if (!refused || info.refused_mask < (unsigned long long)refused)
		FAIL("no transfer was refused: is the module loaded with a small dma_bits?");
	close(fd);
	return 0;
}

static int mode_queue_exit(void)
{
	int fd = open_dev(), queued = 0;
	struct edu_info info;
	uint8_t *area;

	get_info(fd, &info);
	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	munmap(area, 4096); /* a mapping would keep the file (and the module) */
	for (uint32_t i = 0; i < info.ring_size; i++) {
		struct edu_xfer s = { .addr = 0,
				      .len = buf_bytes,
				      .dev_off = 0,
				      .dir = i & 1,
				      .flags = EDU_XFER_AREA };

		if (ioctl(fd, EDU_IOC_SUBMIT, &s) < 0)
			FAIL("submit %u: %s", i, strerror(errno));
		queued++;
	}
	printf("queue-exit: %d transfers queued (%d ms of card time), closing\n", queued,
	       queued * 100);
	close(fd);
	return 0;
}

static sigjmp_buf bus_jmp;
static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

struct racer {
	pthread_t th;
	int fd;
	long ok, gone;
	int bad;
	uint64_t seed;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	uint8_t *buf = alloc_pages2(3 * 4096);

	for (;;) {
		uint32_t len = sizes[r->seed % NSIZES] > buf_bytes ? buf_bytes
								   : sizes[r->seed % NSIZES],
			 uoff = (uint32_t)(r->seed * 131 % 4096);
		int ret = xfer(r->fd, buf + uoff, len, 0, (uint32_t)r->seed & 1, 0, NULL);

		r->seed++;

		if (ret == -ENODEV) {
			r->gone++;
			break;
		}
		if (ret) {
			r->bad = ret;
			break;
		}
		r->ok++;
	}
	return NULL;
}

static void sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		FAIL("write %s to %s: %s", val, path, strerror(errno));
	close(fd);
}

static void wait_dev(int present)
{
	for (int i = 0; i < 500; i++) {
		if ((access(dev_path, F_OK) == 0) == present)
			return;
		usleep(10000);
	}
	FAIL("%s did not %s", dev_path, present ? "appear" : "go away");
}

static int mode_unbind(const char *pciaddr, int cycles)
{
	struct racer r[4];
	uint8_t *area;
	int fd = open_dev();

	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	area[0] = 1;
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ .fd = open_dev(), .seed = (uint64_t)i * 977 };
		pthread_create(&r[i].th, NULL, racer_main, &r[i]);
	}
	usleep(300000); /* transfers queued and running */
	sysfs_write("/sys/bus/pci/drivers/edu/unbind", pciaddr);
	long ok = 0, gone = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(r[i].th, NULL);
		if (r[i].bad)
			FAIL("racer %d: %s (want success or ENODEV)", i, strerror(-r[i].bad));
		ok += r[i].ok, gone += r[i].gone;
	}
	/* The files outlive the card: everything is ENODEV now. */
	uint8_t b[16];
	if (xfer(fd, b, 16, 0, EDU_TO_DEV, 0, NULL) != -ENODEV)
		FAIL("transfer after unbind: want ENODEV");
	if (read(fd, b, 16) >= 0 || errno != ENODEV)
		FAIL("read after unbind: want ENODEV");
	if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED || errno != ENODEV)
		FAIL("mmap after unbind: want ENODEV");
	/* The old mapping was zapped: a touch is SIGBUS, not the freed memory. */
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	sigaction(SIGBUS, &sa, &old);
	volatile int got_bus = 0;
	if (sigsetjmp(bus_jmp, 1) == 0)
		(void)*(volatile uint8_t *)area;
	else
		got_bus = 1;
	sigaction(SIGBUS, &old, NULL);
	if (!got_bus)
		FAIL("the area was still readable after unbind");
	munmap(area, 4096);
	for (int i = 0; i < 4; i++)
		close(r[i].fd);
	close(fd);
	printf("unbind: %ld transfers done, %ld failed with ENODEV by the unbind; old mapping "
	       "SIGBUS\n",
	       ok, gone);
	/* Probe and remove, repeated, each with traffic. */
	sysfs_write("/sys/bus/pci/drivers/edu/bind", pciaddr);
	wait_dev(1);
	for (int c = 0; c < cycles; c++) {
		fd = open_dev();
		uint8_t s[512], d[512];
		fill(s, sizeof(s), c);
		if (xfer(fd, s, sizeof(s), 0, EDU_TO_DEV, 0, NULL) ||
		    xfer(fd, d, sizeof(d), 0, EDU_FROM_DEV, 0, NULL) || memcmp(s, d, sizeof(s)))
			FAIL("cycle %d: transfer failed", c);
		close(fd);
		sysfs_write("/sys/bus/pci/drivers/edu/unbind", pciaddr);
		wait_dev(0);
		sysfs_write("/sys/bus/pci/drivers/edu/bind", pciaddr);
		wait_dev(1);
	}
	printf("unbind: %d bind/unbind cycles with a transfer each\n", cycles);
	return 0;
}

static double now_s(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *path_name(uint32_t p)
{
	return p == EDU_PATH_BOUNCE ? "bounce" : p == EDU_PATH_PINNED ? "pinned" : "area";
}

static int mode_bench(long n, uint32_t size)
{
	int fd = open_dev();
	uint8_t *buf = alloc_pages2(8192), *copy = alloc_pages2(8192);
	struct edu_info info;
	struct edu_xfer x = { 0 };
	double t0, c0, t1, c1, m0, m1;

	if (!size || size > buf_bytes)
		FAIL("size 1..%u", buf_bytes);
	fill(buf, size, 1);
	t0 = now_s(CLOCK_MONOTONIC);
	c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		int ret = xfer(fd, buf, size, 0, i & 1, 0, &x);

		if (ret)
			FAIL("transfer %ld: %s", i, strerror(-ret));
	}
	t1 = now_s(CLOCK_MONOTONIC);
	c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	/* the same bytes with memcpy, enough rounds to time */
	long rounds = n * 1000;
	m0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < rounds; i++) {
		memcpy(copy, buf, size);
		__asm__ volatile("" : : "r"(copy) : "memory");
	}
	m1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	get_info(fd, &info);
	double kib = (double)n * size / 1024.0;
	printf("{\"size\":%u,\"transfers\":%ld,\"path\":\"%s\",\"irq\":\"%s\",\"guest_s\":%.3f,"
	       "\"transfers_per_s\":%.1f,\"MB_per_s\":%.3f,\"cpu_us_per_kib\":%.3f,"
	       "\"memcpy_us_per_kib\":%.5f,\"note\":\"guest virtual time under qemu TCG -icount; "
	       "the edu card runs each DMA 100 ms after its command: says nothing about "
	       "hardware\"}\n",
	       size, n, path_name(x.path), info.irq_mode == EDU_IRQ_MSI ? "MSI" : "INTx", t1 - t0,
	       n / (t1 - t0), (double)n * size / (t1 - t0) / 1e6, (c1 - c0) * 1e6 / kib,
	       (m1 - m0) * 1e6 / (kib * 1000));
	close(fd);
	return 0;
}

static int mode_info(void)
{
	int fd = open_dev();
	struct edu_info i;

	get_info(fd, &i);
	printf("{\"irq\":\"%s\",\"ring_size\":%u,\"dma_bits\":%u,\"bounce_max\":%u,"
	       "\"area_size\":%llu,\"transfers\":%llu,\"dma_cmds\":%llu,\"irqs\":%llu,"
	       "\"bounced\":%llu,\"pinned\":%llu,\"area\":%llu,\"refused_mask\":%llu}\n",
	       i.irq_mode == EDU_IRQ_MSI ? "MSI" : "INTx", i.ring_size, i.dma_bits, i.bounce_max,
	       (unsigned long long)i.area_size, (unsigned long long)i.transfers,
	       (unsigned long long)i.dma_cmds, (unsigned long long)i.irqs,
	       (unsigned long long)i.bounced, (unsigned long long)i.pinned,
	       (unsigned long long)i.area, (unsigned long long)i.refused_mask);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: edu_test DEV MODE [ARGS] (see the top of edu_test.c)\n");
		return 2;
	}
	dev_path = argv[1];
	const char *m = argv[2];
	long a = argc > 3 ? atol(argv[3]) : 0, b = argc > 4 ? atol(argv[4]) : 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(m, "unbind")) {
		int fd = open_dev();
		struct edu_info info;

		get_info(fd, &info);
		buf_bytes = info.buf_bytes;
		close(fd);
	}
	if (!strcmp(m, "roundtrip"))
		return mode_roundtrip(a ? a : 100);
	if (!strcmp(m, "concurrent"))
		return mode_concurrent(a ? (int)a : 4, b ? b : 50);
	if (!strcmp(m, "area"))
		return mode_area(a ? a : 256);
	if (!strcmp(m, "rw"))
		return mode_rw();
	if (!strcmp(m, "bad"))
		return mode_bad();
	if (!strcmp(m, "mask"))
		return mode_mask();
	if (!strcmp(m, "queue-exit"))
		return mode_queue_exit();
	if (!strcmp(m, "unbind") && argc > 3)
		return mode_unbind(argv[3], argc > 4 ? atoi(argv[4]) : 5);
	if (!strcmp(m, "bench"))
		return mode_bench(a ? a : 1000, b ? (uint32_t)b : buf_bytes);
	if (!strcmp(m, "info"))
		return mode_info();
	fprintf(stderr, "edu_test: unknown mode %s\n", m);
	return 2;
}
