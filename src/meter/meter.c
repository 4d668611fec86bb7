// SPDX-License-Identifier: MIT
/*
 * The process meter: always-on per-thread counters, snapshots that sum them,
 * and an optional kernel-side syscall count to check the library's own
 * accounting against.
 *
 * Each thread that counts something gets its own counter block (a struct
 * wp_meter_snap used purely as counters) on first use. Only that thread writes
 * it, so WP_CNT_ADD is a plain load/add/store with no lock prefix (see
 * counters.h). Blocks sit on a global list under a mutex; a pthread key
 * destructor folds an exiting thread's block into a "retired" block and frees
 * it, so counts survive their thread. A snapshot sums the retired block and
 * every live block under the same mutex, which makes sequential snapshots
 * monotonic even while threads exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wirepath/wirepath.h"
#include "meter/counters.h"
#include "core/probe.h"

/* The meter treats a snapshot as a flat u64 array; that needs no padding. */
_Static_assert(sizeof(struct wp_meter_snap) % sizeof(uint64_t) == 0, "snap is not u64 array");

/* Index of the first always-on counter; fields before it are filled per snapshot. */
#define CNT_FIRST (offsetof(struct wp_meter_snap, syscalls) / sizeof(uint64_t))

/*
 * One thread's counters plus its list links. Cache-line aligned so that two
 * threads' hot counters never share a line.
 */
struct cnt_block {
	struct wp_meter_snap c; /* first: wp_tls_cnt points here and is cast back */
	struct cnt_block *prev, *next;
} __attribute__((aligned(64)));

__thread struct wp_meter_snap *wp_tls_cnt;

static pthread_mutex_t cnt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cnt_block *cnt_live;       /* live threads' blocks, under cnt_lock */
static struct wp_meter_snap cnt_retired; /* exited threads' totals, under cnt_lock */
/*
 * Shared block for threads whose own block could not be allocated. It has
 * several writers, so concurrent increments may be lost; counting must never
 * crash the data path, and this only happens when malloc fails.
 */
static struct wp_meter_snap cnt_fallback;

static pthread_once_t cnt_once = PTHREAD_ONCE_INIT;
static pthread_key_t cnt_key;
static int cnt_key_ok;

static inline uint64_t *u64s(struct wp_meter_snap *s)
{
	return (uint64_t *)s;
}

static inline const uint64_t *cu64s(const struct wp_meter_snap *s)
{
	return (const uint64_t *)s;
}

/*
 * Runs in the exiting thread, so nobody else writes this block: the fold is
 * exact. Clearing wp_tls_cnt makes a counter bumped by a later destructor
 * attach a fresh block (and glibc re-runs destructors for it).
 */
static void cnt_thread_exit(void *arg)
{
	struct cnt_block *b = arg;
	uint64_t *dst = u64s(&cnt_retired);
	const uint64_t *src = cu64s(&b->c);

	wp_tls_cnt = NULL;
	pthread_mutex_lock(&cnt_lock);
	for (size_t i = CNT_FIRST; i < WP_METER_FIELDS; i++)
		dst[i] += src[i];
	if (b->prev)
		b->prev->next = b->next;
	else
		cnt_live = b->next;
	if (b->next)
		b->next->prev = b->prev;
	pthread_mutex_unlock(&cnt_lock);
	free(b);
}

/* A fork() while another thread holds cnt_lock must not leave it locked in the child. */
static void cnt_atfork_prepare(void)
{
	pthread_mutex_lock(&cnt_lock);
}

static void cnt_atfork_release(void)
{
	pthread_mutex_unlock(&cnt_lock);
}

static void cnt_init_once(void)
{
	/*
	 * Without a key (process out of keys) blocks are never folded: they stay
	 * on the list, so counts remain correct and only the memory is kept.
	 */
	cnt_key_ok = pthread_key_create(&cnt_key, cnt_thread_exit) == 0;
	pthread_atfork(cnt_atfork_prepare, cnt_atfork_release, cnt_atfork_release);
}

/*
 * Slow path of wp_cnt(): first counter touched by this thread. Not
 * async-signal-safe (malloc, mutex): do not count from signal handlers.
 */
struct wp_meter_snap *wp_counters_attach(void)
{
	struct cnt_block *b;

	if (wp_tls_cnt)
		return wp_tls_cnt;
	pthread_once(&cnt_once, cnt_init_once);
	if (posix_memalign((void **)&b, 64, sizeof(*b)) != 0) {
		wp_tls_cnt = &cnt_fallback;
		return wp_tls_cnt;
	}
	memset(b, 0, sizeof(*b));
	pthread_mutex_lock(&cnt_lock);
	b->next = cnt_live;
	if (cnt_live)
		cnt_live->prev = b;
	cnt_live = b;
	pthread_mutex_unlock(&cnt_lock);
	if (cnt_key_ok)
		pthread_setspecific(cnt_key, b);
	wp_tls_cnt = &b->c;
	return wp_tls_cnt;
}

/* ------------------------------------------------------------------ */
/* Kernel-side syscall count                                           */
/* ------------------------------------------------------------------ */

static pthread_mutex_t kern_lock = PTHREAD_MUTEX_INITIALIZER;
/* perf fd; published with a release store, read with an acquire load in snapshot. */
static int kern_fd = -1;

static const char *const tp_id_paths[] = {
	"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
	"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
};

/* Read the raw_syscalls:sys_enter tracepoint id. Returns the id or -errno. */
static long long tp_read_id(void)
{
	int err = -ENOENT;

	for (size_t i = 0; i < sizeof(tp_id_paths) / sizeof(tp_id_paths[0]); i++) {
		char buf[32];
		ssize_t n;
		int fd;

		fd = open(tp_id_paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			/* Keep the first "real" error (EACCES) over a plain ENOENT. */
			if (err == -ENOENT)
				err = -errno;
			continue;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			continue;
		}
		buf[n] = '\0';
		return strtoll(buf, NULL, 10);
	}
	return err;
}

/*
 * tracefs already there but no raw_syscalls event means a kernel built without
 * CONFIG_FTRACE_SYSCALLS; mounting again would only stack a second tracefs.
 */
static int tracefs_mounted(void)
{
	struct statfs sf;

	return statfs("/sys/kernel/tracing", &sf) == 0 && sf.f_type == TRACEFS_MAGIC;
}

static int tp_open(unsigned long long id, int inherit_thread)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = id;
	/*
	 * inherit: threads created after the open are counted (folded into the
	 * count we read). A tracepoint fires in kernel context, so the event must
	 * not exclude the kernel; with perf_event_paranoid >= 2 that needs
	 * CAP_PERFMON or root.
	 */
	attr.inherit = 1;
	/*
	 * inherit_thread (Linux 5.13+): only CLONE_THREAD children inherit, so a
	 * forked peer process (bench server) is not counted as ours.
	 */
	attr.inherit_thread = inherit_thread ? 1 : 0;
	/* pid 0, cpu -1: this task (and inheriting children) on any CPU. */
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/*
 * Count this process's syscalls with raw_syscalls:sys_enter. The count covers
 * the calling thread and threads it (or they) create afterwards; threads that
 * already exist when this is called are NOT counted (a perf inherit counter
 * only follows clone()), so call it early, from the main thread, before
 * starting workers. Idempotent. Mounts tracefs at /sys/kernel/tracing if it
 * is missing and we are root (how the bench gets kernel-verified numbers).
 */
int wp_meter_kernel_syscalls_start(void)
{
	long long id;
	int fd, err = 0;

	pthread_mutex_lock(&kern_lock);
	if (kern_fd >= 0)
		goto out_unlock;

	id = tp_read_id();
	if (id == -ENOENT && geteuid() == 0 && !tracefs_mounted()) {
		if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0) {
			err = -errno;
			goto out_unlock;
		}
		id = tp_read_id();
	}
	if (id < 0) {
		err = (int)id;
		goto out_unlock;
	}

	fd = tp_open((unsigned long long)id, 1);
	/* Kernels before 5.13 reject the unknown inherit_thread bit. */
	if (fd < 0 && (errno == EINVAL || errno == E2BIG))
		fd = tp_open((unsigned long long)id, 0);
	if (fd < 0) {
		err = -errno;
		goto out_unlock;
	}
	/* Pairs with the acquire load in wp_meter_snapshot(). */
	__atomic_store_n(&kern_fd, fd, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&kern_lock);
	return err;
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */
/* ------------------------------------------------------------------ */

uint64_t wp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ull + (uint64_t)tv->tv_usec * 1000ull;
}

/*
 * The snapshot's own syscalls (getrusage, and the perf read when kernel
 * counting is on) are counted as WP_SYS_OTHER *before* the counters are
 * summed, so a snapshot includes them. Then the library-side and kernel-side
 * deltas between two snapshots agree exactly: each contains the later
 * snapshot's getrusage + read (sys_enter fires before read() returns the
 * count). clock_gettime is a vDSO call, not a syscall.
 */
void wp_meter_snapshot(struct wp_meter_snap *s)
{
	int kfd = __atomic_load_n(&kern_fd, __ATOMIC_ACQUIRE);
	uint64_t *dst = u64s(s);
	struct rusage ru;
	uint64_t v;

	WP_CNT_ADD(syscalls[WP_SYS_OTHER], kfd >= 0 ? 2 : 1);

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&cnt_lock);
	memcpy(dst + CNT_FIRST, cu64s(&cnt_retired) + CNT_FIRST,
	       (WP_METER_FIELDS - CNT_FIRST) * sizeof(uint64_t));
	for (struct cnt_block *b = cnt_live; b; b = b->next) {
		const uint64_t *src = cu64s(&b->c);

		/* Pairs with the owner's relaxed store in WP_CNT_ADD; a stale value is fine. */
		for (size_t i = CNT_FIRST; i < WP_METER_FIELDS; i++)
			dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&cnt_lock);
	/* Several writers share the fallback block, so it is read outside the list. */
	for (size_t i = CNT_FIRST; i < WP_METER_FIELDS; i++)
		dst[i] += __atomic_load_n(&cu64s(&cnt_fallback)[i], __ATOMIC_RELAXED);

	s->version = WP_METER_VERSION;
	s->wall_ns = wp_now_ns();
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		s->cpu_user_ns = tv_ns(&ru.ru_utime);
		s->cpu_sys_ns = tv_ns(&ru.ru_stime);
		s->ctx_vol = (uint64_t)ru.ru_nvcsw;
		s->ctx_invol = (uint64_t)ru.ru_nivcsw;
	}
	if (kfd >= 0 && read(kfd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		s->kernel_syscalls = v;
		s->kernel_syscalls_ok = 1;
	}
}

void wp_meter_diff(const struct wp_meter_snap *a, const struct wp_meter_snap *b,
		   struct wp_meter_snap *d)
{
	struct wp_meter_snap t; /* d may alias a or b */
	const uint64_t *pa = cu64s(a), *pb = cu64s(b);
	uint64_t *pt = u64s(&t);

	for (size_t i = 0; i < WP_METER_FIELDS; i++)
		pt[i] = pb[i] - pa[i];
	t.version = b->version;
	t.kernel_syscalls_ok = a->kernel_syscalls_ok && b->kernel_syscalls_ok;
	if (!t.kernel_syscalls_ok)
		t.kernel_syscalls = 0;
	*d = t;
}

uint64_t wp_meter_syscalls(const struct wp_meter_snap *s)
{
	uint64_t n = 0;

	for (int i = 0; i < WP_SYS__COUNT; i++)
		n += s->syscalls[i];
	return n;
}

/* ------------------------------------------------------------------ */
/* Names and JSON                                                      */
/* ------------------------------------------------------------------ */

static const char *const sys_kind_names[WP_SYS__COUNT] = {
	[WP_SYS_READ] = "read",
	[WP_SYS_WRITE] = "write",
	[WP_SYS_EPOLL_WAIT] = "epoll_wait",
	[WP_SYS_EPOLL_CTL] = "epoll_ctl",
	[WP_SYS_URING_ENTER] = "io_uring_enter",
	[WP_SYS_ACCEPT] = "accept",
	[WP_SYS_CONNECT] = "connect",
	[WP_SYS_SOCKET] = "socket",
	[WP_SYS_CLOSE] = "close",
	[WP_SYS_OTHER] = "other",
};

static const char *const bad_reason_names[WP_BAD__COUNT] = {
	[WP_BAD_MAGIC] = "bad_magic",       [WP_BAD_VERSION] = "bad_version",
	[WP_BAD_TYPE] = "bad_type",         [WP_BAD_FLAGS] = "bad_flags",
	[WP_BAD_TOO_BIG] = "too_big",       [WP_BAD_TRUNCATED] = "truncated",
	[WP_BAD_UNEXPECTED] = "unexpected", [WP_BAD_AUTH] = "bad_auth",
	[WP_BAD_HANDSHAKE] = "handshake",   [WP_BAD_NO_HANDSHAKE] = "no_handshake",
	[WP_BAD_REPLAY] = "replayed",       [WP_BAD_SPLICED] = "spliced",
};

static const char *const setup_reason_names[WP_SETUP__COUNT] = {
	[WP_SETUP_GARBAGE] = "garbage",     [WP_SETUP_VERSION] = "version",
	[WP_SETUP_NO_AUTH] = "no_auth",     [WP_SETUP_NO_KEY] = "no_key",
	[WP_SETUP_BAD_PROOF] = "bad_proof", [WP_SETUP_PEER_UID] = "peer_uid",
	[WP_SETUP_REGION] = "region",       [WP_SETUP_REFUSED] = "refused",
};

const char *wp_setup_reason_name(enum wp_setup_reason r)
{
	if ((unsigned)r >= WP_SETUP__COUNT)
		return "unknown";
	return setup_reason_names[r];
}

const char *wp_sys_kind_name(enum wp_sys_kind k)
{
	if ((unsigned)k >= WP_SYS__COUNT)
		return "unknown";
	return sys_kind_names[k];
}

const char *wp_bad_reason_name(enum wp_bad_reason r)
{
	if ((unsigned)r >= WP_BAD__COUNT)
		return "unknown";
	return bad_reason_names[r];
}

#define F(name)                                             \
	{                                                   \
#name, offsetof(struct wp_meter_snap, name) \
	}
struct json_field {
	const char *name;
	size_t off;
};

/* Scalar fields in struct order; the arrays are written where they sit. */
static const struct json_field json_head[] = {
	F(version), F(wall_ns),   F(cpu_user_ns),     F(cpu_sys_ns),
	F(ctx_vol), F(ctx_invol), F(kernel_syscalls), F(kernel_syscalls_ok),
};
static const struct json_field json_mid[] = {
	F(msgs_tx),      F(msgs_rx), F(bytes_tx),  F(bytes_rx),
	F(bytes_copied), F(zc_sent), F(zc_copied), F(zc_disabled),
};
static const struct json_field json_tail[] = {
	F(conns_opened), F(conns_closed),  F(conns_failed),    F(rx_ring_empty), F(calls_ok),
	F(calls_failed), F(calls_timeout), F(calls_cancelled), F(records_tx),    F(records_rx),
};
/* Limits (docs/limits.md), after the tail in struct order. */
static const struct json_field json_limits[] = {
	F(rx_budget_pauses), F(rx_budget_resumes),  F(rx_partial_shed), F(timeouts_frame),
	F(timeouts_idle),    F(timeouts_handshake), F(refused_ctx),     F(refused_source),
	F(refused_tenant),   F(accept_pauses),      F(log_suppressed),
};
/* Version 5, after the limits; 6 after it. */
static const struct json_field json_v5[] = {
	F(zc_nobufs),  F(xsk_sockets_zc), F(xsk_sockets_copy),
	F(xdp_native), F(xdp_generic),    F(zcrx_bytes),
};
#undef F

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* A field added to the struct but not here would silently vanish from the JSON. */
_Static_assert(NELEM(json_head) + WP_SYS__COUNT + NELEM(json_mid) + WP_BAD__COUNT +
			       NELEM(json_tail) + WP_SETUP__COUNT + NELEM(json_limits) +
			       NELEM(json_v5) ==
		       WP_METER_FIELDS,
	       "wp_meter_json does not cover every field of struct wp_meter_snap");

/* snprintf-style appender: keeps counting past the end of the buffer. */
struct jbuf {
	char *buf;
	size_t len;
	size_t pos;
};

__attribute__((format(printf, 2, 3))) static void jput(struct jbuf *j, const char *fmt, ...)
{
	size_t room = j->pos < j->len ? j->len - j->pos : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? j->buf + j->pos : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		j->pos += (size_t)n;
}

static void jfields(struct jbuf *j, const struct wp_meter_snap *s, const struct json_field *f,
		    size_t n)
{
	for (size_t i = 0; i < n; i++)
		jput(j, ",\"%s\":%" PRIu64, f[i].name,
		     *(const uint64_t *)((const char *)s + f[i].off));
}

int wp_meter_json(const struct wp_meter_snap *s, char *buf, size_t len)
{
	struct jbuf j = { .buf = buf, .len = buf ? len : 0, .pos = 0 };

	if (j.len)
		buf[0] = '\0';
	/* The first head field opens the object without a leading comma. */
	jput(&j, "{\"%s\":%" PRIu64, json_head[0].name, s->version);
	jfields(&j, s, json_head + 1, NELEM(json_head) - 1);
	jput(&j, ",\"syscalls_total\":%" PRIu64 ",\"syscalls\":{", wp_meter_syscalls(s));
	for (int i = 0; i < WP_SYS__COUNT; i++)
		jput(&j, "%s\"%s\":%" PRIu64, i ? "," : "", sys_kind_names[i], s->syscalls[i]);
	jput(&j, "}");
	jfields(&j, s, json_mid, NELEM(json_mid));
	jput(&j, ",\"bad_frames\":{");
	for (int i = 0; i < WP_BAD__COUNT; i++)
		jput(&j, "%s\"%s\":%" PRIu64, i ? "," : "", bad_reason_names[i], s->bad_frames[i]);
	jput(&j, "}");
	jfields(&j, s, json_tail, NELEM(json_tail));
	jput(&j, ",\"setup_refused\":{");
	for (int i = 0; i < WP_SETUP__COUNT; i++)
		jput(&j, "%s\"%s\":%" PRIu64, i ? "," : "", setup_reason_names[i],
		     s->setup_refused[i]);
	jput(&j, "}");
	jfields(&j, s, json_limits, NELEM(json_limits));
	jfields(&j, s, json_v5, NELEM(json_v5));
	jput(&j, "}");
	if (j.pos > (size_t)INT32_MAX)
		return -EOVERFLOW;
	return (int)j.pos;
}

#define WP_STR_(x) #x
#define WP_STR(x) WP_STR_(x)

const char *wp_version(void)
{
	return WP_STR(WP_VERSION_MAJOR) "." WP_STR(WP_VERSION_MINOR) ".0";
}

/* Can the kernel count our syscalls (the raw_syscalls:sys_enter tracepoint)?
 * A probe group of src/registry.c. */
void wp_meter_probe(void)
{
	const char *paths[] = { "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
				"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id" };
	int ok = 0;

	for (size_t i = 0; i < 2 && !ok; i++)
		ok = access(paths[i], R_OK) == 0;
	wp_probe_add("meter.kernel_syscalls", ok ? 0 : -ENOENT,
		     ok ? "raw_syscalls:sys_enter readable: syscalls can be counted by the kernel"
			: "tracefs not mounted (the bench mounts it when root)");
}
