// SPDX-License-Identifier: MIT
/*
 * Process meter: per-thread counters from many threads (some exited, some
 * alive at the snapshot) sum exactly; snapshots stay monotonic while threads
 * come and go; diff; names; JSON shape and snprintf semantics; and, where the
 * kernel allows it, the raw_syscalls:sys_enter count agrees with a known
 * number of syscalls (skipped, not failed, when perf/tracefs is unavailable).
 */
#include <pthread.h>
#include <sys/syscall.h>

#include "testlib.h"
#include "wirepath/wirepath.h"
#include "meter/counters.h"

#define ITERS 100000

struct worker {
	int id;
	pthread_barrier_t *hold; /* if set: wait here twice (counted, then released) */
};

/* What one worker adds; main checks ITERS * threads of each. */
static void count_some(int id)
{
	for (int i = 0; i < ITERS; i++) {
		WP_CNT_ADD(msgs_tx, 1);
		WP_CNT_ADD(bytes_tx, 3);
		WP_CNT_ADD(bad_frames[i % WP_BAD__COUNT], 1);
		WP_SYSCALL(WP_SYS_URING_ENTER);
	}
	WP_CNT_ADD(calls_cancelled, (uint64_t)id);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	count_some(w->id);
	if (w->hold) {
		pthread_barrier_wait(w->hold); /* counted: main may snapshot */
		pthread_barrier_wait(w->hold); /* released: exit */
	}
	return NULL;
}

static void check_counts(const struct wp_meter_snap *d, int nthreads, uint64_t id_sum)
{
	uint64_t per_reason[WP_BAD__COUNT] = { 0 };

	for (int i = 0; i < ITERS; i++)
		per_reason[i % WP_BAD__COUNT]++;
	CHECK(d->msgs_tx == (uint64_t)nthreads * ITERS);
	CHECK(d->bytes_tx == (uint64_t)nthreads * ITERS * 3);
	CHECK(d->syscalls[WP_SYS_URING_ENTER] == (uint64_t)nthreads * ITERS);
	for (int r = 0; r < WP_BAD__COUNT; r++)
		CHECK(d->bad_frames[r] == (uint64_t)nthreads * per_reason[r]);
	CHECK(d->calls_cancelled == id_sum);
	/* Untouched counters stay untouched. */
	CHECK_EQ(d->msgs_rx, 0);
	CHECK_EQ(d->zc_copied, 0);
}

static void test_threads(void)
{
	enum { N_EXITED = 4, N_ALIVE = 4 };
	struct worker w[N_EXITED + N_ALIVE];
	pthread_t t[N_EXITED + N_ALIVE];
	pthread_barrier_t hold;
	struct wp_meter_snap a, b, c, d;
	uint64_t id_sum = 0;

	wp_meter_snapshot(&a);
	CHECK_EQ(a.version, WP_METER_VERSION);

	/* These exit (their blocks are folded into the retired totals) before b. */
	for (int i = 0; i < N_EXITED; i++) {
		w[i] = (struct worker){ .id = i + 1 };
		id_sum += (uint64_t)w[i].id;
		CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < N_EXITED; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);

	/* These are still alive (live blocks) at b. */
	CHECK_EQ(pthread_barrier_init(&hold, NULL, N_ALIVE + 1), 0);
	for (int i = N_EXITED; i < N_EXITED + N_ALIVE; i++) {
		w[i] = (struct worker){ .id = 100 + i, .hold = &hold };
		id_sum += (uint64_t)w[i].id;
		CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	pthread_barrier_wait(&hold);

	/* And the main thread counts too. */
	count_some(1000);
	id_sum += 1000;

	wp_meter_snapshot(&b);
	wp_meter_diff(&a, &b, &d);
	check_counts(&d, N_EXITED + N_ALIVE + 1, id_sum);
	CHECK(b.wall_ns > a.wall_ns);
	CHECK(d.wall_ns == b.wall_ns - a.wall_ns);

	/* Let the live ones exit: folding must neither lose nor double-count. */
	pthread_barrier_wait(&hold);
	for (int i = N_EXITED; i < N_EXITED + N_ALIVE; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&hold);
	wp_meter_snapshot(&c);
	wp_meter_diff(&a, &c, &d);
	check_counts(&d, N_EXITED + N_ALIVE + 1, id_sum);
	/* The meter counts its own getrusage (and perf read) as "other". */
	CHECK(c.syscalls[WP_SYS_OTHER] > b.syscalls[WP_SYS_OTHER]);
}

/* Threads are born, count and die while the main thread takes snapshots. */
static int churn_stop;

static void *churn_one(void *arg)
{
	for (int i = 0; i < 1000; i++)
		WP_CNT_ADD(msgs_rx, 1);
	return NULL;
}

static void *churn_spawner(void *arg)
{
	int *spawned = arg;

	while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
		pthread_t t[4];

		for (int i = 0; i < 4; i++)
			CHECK_EQ(pthread_create(&t[i], NULL, churn_one, NULL), 0);
		for (int i = 0; i < 4; i++)
			CHECK_EQ(pthread_join(t[i], NULL), 0);
		/* Relaxed: main only polls it; the join below orders the final read. */
		__atomic_store_n(spawned, *spawned + 4, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_churn(void)
{
	struct wp_meter_snap a, s;
	uint64_t last;
	pthread_t sp;
	int spawned = 0;

	wp_meter_snapshot(&a);
	last = a.msgs_rx;
	CHECK_EQ(pthread_create(&sp, NULL, churn_spawner, &spawned), 0);
	/* Until enough threads have lived and died under our feet (the watchdog bounds it). */
	for (int i = 0; i < 2000 || __atomic_load_n(&spawned, __ATOMIC_RELAXED) < 200; i++) {
		wp_meter_snapshot(&s);
		/* Sequential snapshots never go backwards, even across a thread's exit. */
		CHECK(s.msgs_rx >= last);
		last = s.msgs_rx;
	}
	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
	CHECK_EQ(pthread_join(sp, NULL), 0);
	wp_meter_snapshot(&s);
	CHECK(s.msgs_rx - a.msgs_rx == (uint64_t)spawned * 1000);
	CHECK(spawned >= 200);
}

static void test_diff(void)
{
	struct wp_meter_snap a, b, d;
	uint64_t *pa = (uint64_t *)&a, *pb = (uint64_t *)&b, *pd = (uint64_t *)&d;

	for (size_t i = 0; i < WP_METER_FIELDS; i++) {
		pa[i] = 10 * i;
		pb[i] = 10 * i + i * i + 1;
	}
	a.version = 7;
	b.version = WP_METER_VERSION;
	a.kernel_syscalls_ok = 1;
	b.kernel_syscalls_ok = 1;
	wp_meter_diff(&a, &b, &d);
	CHECK_EQ(d.version, WP_METER_VERSION);
	CHECK_EQ(d.kernel_syscalls_ok, 1);
	for (size_t i = 0; i < WP_METER_FIELDS; i++) {
		if (&pd[i] == &d.version || &pd[i] == &d.kernel_syscalls_ok)
			continue;
		CHECK(pd[i] == i * i + 1);
	}
	CHECK(d.wall_ns == b.wall_ns - a.wall_ns);

	/* One side without kernel counting: the kernel delta is meaningless. */
	a.kernel_syscalls_ok = 0;
	wp_meter_diff(&a, &b, &d);
	CHECK_EQ(d.kernel_syscalls_ok, 0);
	CHECK_EQ(d.kernel_syscalls, 0);

	/* Output may alias an input. */
	a.kernel_syscalls_ok = 1;
	wp_meter_diff(&a, &b, &b);
	CHECK(b.msgs_tx == d.msgs_tx && b.calls_cancelled == d.calls_cancelled);

	memset(&a, 0, sizeof(a));
	for (int i = 0; i < WP_SYS__COUNT; i++)
		a.syscalls[i] = (uint64_t)i + 1;
	CHECK_EQ(wp_meter_syscalls(&a), WP_SYS__COUNT * (WP_SYS__COUNT + 1) / 2);
}

static void test_names(void)
{
	static const char *const sys[WP_SYS__COUNT] = {
		"read",   "write",   "epoll_wait", "epoll_ctl", "io_uring_enter",
		"accept", "connect", "socket",     "close",     "other",
	};
	static const char *const bad[WP_BAD__COUNT] = {
		"bad_magic",  "bad_version", "bad_type",  "bad_flags",    "too_big",  "truncated",
		"unexpected", "bad_auth",    "handshake", "no_handshake", "replayed", "spliced",
	};

	for (int i = 0; i < WP_SYS__COUNT; i++)
		CHECK(!strcmp(wp_sys_kind_name((enum wp_sys_kind)i), sys[i]));
	static const char *const setup[WP_SETUP__COUNT] = {
		"garbage",   "version",  "no_auth", "no_key",
		"bad_proof", "peer_uid", "region",  "refused",
	};

	for (int i = 0; i < WP_BAD__COUNT; i++)
		CHECK(!strcmp(wp_bad_reason_name((enum wp_bad_reason)i), bad[i]));
	for (int i = 0; i < WP_SETUP__COUNT; i++)
		CHECK(!strcmp(wp_setup_reason_name((enum wp_setup_reason)i), setup[i]));
	CHECK(!strcmp(wp_setup_reason_name(WP_SETUP__COUNT), "unknown"));
	CHECK(wp_sys_kind_name(WP_SYS__COUNT) != NULL);
	CHECK(wp_bad_reason_name((enum wp_bad_reason) - 1) != NULL);
	CHECK(!strcmp(wp_version(), "0.1.0"));
	CHECK(wp_now_ns() > 0);
}

static void test_json(void)
{
	struct wp_meter_snap s;
	char full[4096], small[16];
	int n, depth = 0, quotes = 0;
	static const char *const keys[] = {
		"\"version\":6",
		"\"wall_ns\":",
		"\"cpu_user_ns\":",
		"\"cpu_sys_ns\":",
		"\"ctx_vol\":",
		"\"ctx_invol\":",
		"\"kernel_syscalls\":",
		"\"kernel_syscalls_ok\":",
		"\"syscalls_total\":55",
		"\"syscalls\":{\"read\":1,",
		"\"io_uring_enter\":5",
		"\"other\":10}",
		"\"msgs_tx\":12345",
		"\"msgs_rx\":",
		"\"bytes_tx\":",
		"\"bytes_rx\":",
		"\"bytes_copied\":",
		"\"zc_sent\":",
		"\"zc_copied\":",
		"\"bad_frames\":{\"bad_magic\":0,",
		"\"too_big\":4",
		"\"unexpected\":0,",
		"\"bad_auth\":0,",
		"\"spliced\":0}",
		"\"conns_opened\":",
		"\"conns_closed\":",
		"\"conns_failed\":",
		"\"rx_ring_empty\":",
		"\"calls_ok\":",
		"\"calls_failed\":",
		"\"calls_timeout\":",
		"\"calls_cancelled\":18446744073709551615,",
		"\"records_tx\":0,",
		"\"records_rx\":0,",
		"\"setup_refused\":{\"garbage\":0,",
		"\"bad_proof\":7,",
		"\"refused\":0},",
		"\"rx_budget_pauses\":",
		"\"rx_budget_resumes\":",
		"\"rx_partial_shed\":",
		"\"timeouts_frame\":",
		"\"timeouts_idle\":",
		"\"timeouts_handshake\":",
		"\"refused_ctx\":",
		"\"refused_source\":",
		"\"refused_tenant\":",
		"\"accept_pauses\":",
		"\"log_suppressed\":7,",
		"\"zc_nobufs\":0,",
		"\"xsk_sockets_zc\":0,",
		"\"xsk_sockets_copy\":0,",
		"\"xdp_native\":0,",
		"\"xdp_generic\":0,",
		"\"zcrx_bytes\":0}",
	};

	memset(&s, 0, sizeof(s));
	s.version = WP_METER_VERSION;
	for (int i = 0; i < WP_SYS__COUNT; i++)
		s.syscalls[i] = (uint64_t)i + 1;
	s.msgs_tx = 12345;
	s.bad_frames[WP_BAD_TOO_BIG] = 4;
	s.calls_cancelled = UINT64_MAX;
	s.setup_refused[WP_SETUP_BAD_PROOF] = 7;
	s.log_suppressed = 7;

	n = wp_meter_json(&s, full, sizeof(full));
	CHECK(n > 0 && (size_t)n < sizeof(full));
	CHECK_EQ(strlen(full), n);
	CHECK(full[0] == '{' && full[n - 1] == '}');
	for (int i = 0; i < n; i++) {
		if (full[i] == '{')
			depth++;
		if (full[i] == '}')
			depth--;
		if (full[i] == '"')
			quotes++;
		CHECK(depth >= 0);
		CHECK(depth > 0 || i == n - 1);
		CHECK(full[i] != '\n');
	}
	CHECK_EQ(depth, 0);
	CHECK(quotes % 2 == 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!strstr(full, keys[i])) {
			fprintf(stderr, "missing %s in %s\n", keys[i], full);
			CHECK(0);
		}
	}

	/* snprintf semantics: the full length back, a truncated NUL-terminated prefix. */
	memset(small, 'x', sizeof(small));
	CHECK_EQ(wp_meter_json(&s, small, sizeof(small)), n);
	CHECK_EQ(strlen(small), sizeof(small) - 1);
	CHECK(!memcmp(small, full, sizeof(small) - 1));
	CHECK_EQ(wp_meter_json(&s, NULL, 0), n);
	small[0] = 'x';
	CHECK_EQ(wp_meter_json(&s, small, 1), n);
	CHECK(small[0] == '\0');
	CHECK_EQ(wp_meter_json(&s, full, (size_t)n + 1), n);
	CHECK_EQ(strlen(full), n);

	/* A real snapshot serialises too. */
	wp_meter_snapshot(&s);
	CHECK(wp_meter_json(&s, full, sizeof(full)) < (int)sizeof(full));
	printf("%s\n", full);
}

static void *getppid_1000(void *arg)
{
	for (int i = 0; i < 1000; i++)
		syscall(SYS_getppid);
	return NULL;
}

static void test_kernel_syscalls(void)
{
	struct wp_meter_snap a, b, d;
	pthread_t t;
	int err;

	err = wp_meter_kernel_syscalls_start();
	if (err < 0) {
		/* Setup found the feature missing: skip this part only. */
		printf("kernel syscall counting unavailable (%s): part skipped\n", strerror(-err));
		return;
	}
	CHECK_EQ(wp_meter_kernel_syscalls_start(), 0); /* idempotent */

	/* Only this thread runs here: every other test thread has been joined. */
	wp_meter_snapshot(&a);
	CHECK_EQ(a.kernel_syscalls_ok, 1);
	for (int i = 0; i < 1000; i++)
		syscall(SYS_getppid);
	wp_meter_snapshot(&b);
	wp_meter_diff(&a, &b, &d);
	printf("kernel syscalls for 1000 getppid: %llu\n", (unsigned long long)d.kernel_syscalls);
	CHECK_EQ(d.kernel_syscalls_ok, 1);
	CHECK(d.kernel_syscalls >= 1000);
	/* Scoped to this process, not the whole machine. */
	CHECK(d.kernel_syscalls < 1000 + 100);

	/* A thread created after the start is counted, even after it exited. */
	CHECK_EQ(pthread_create(&t, NULL, getppid_1000, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	wp_meter_snapshot(&a);
	wp_meter_diff(&b, &a, &d);
	printf("kernel syscalls for a thread doing 1000 getppid: %llu\n",
	       (unsigned long long)d.kernel_syscalls);
	CHECK(d.kernel_syscalls >= 1000);
}

int main(void)
{
	test_watchdog(60);
	test_names();
	test_diff();
	test_threads();
	test_churn();
	test_json();
	test_kernel_syscalls();
	printf("test_meter: ok\n");
	return 0;
}
