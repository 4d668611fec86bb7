// SPDX-License-Identifier: MIT
/*
 * Limits against hostile peers (docs/limits.md, issue 12), on each path.
 *
 * The server is `wirepath serve` (built next to this test) in its own
 * process, so its RSS and CPU are its own: the test forks and execs it with
 * the limits under test as flags (and, for fd exhaustion, a low
 * RLIMIT_NOFILE), plays the hostile peers with raw sockets, a good client
 * with the library, and reads the server's meter (JSON, printed at SIGTERM)
 * and its log (stderr) afterwards:
 * - memory: connections holding partial 16 MiB frames; the server's peak
 *   RSS stays within the budget plus a fixed overhead, a good client keeps
 *   being served, the stalled partial frames are shed at the frame timeout;
 * - fd exhaustion: bounded server CPU, a rate-limited log, then recovery;
 * - slowloris (a partial header; a frame one byte short), idle and
 *   handshake timeouts close at their times, the counters say which;
 * - connection limits per context, per source address, per tenant.
 * Plus, in process on every stream path, back-pressure itself: frames split
 * across reads by many connections over a budget that holds two at a time
 * all arrive intact (checksums), with pauses and resumes counted.
 *
 * shm has no assembly (frames arrive whole in shared memory) and no source
 * address: fd exhaustion, handshake timeout, conns_max and the tenant limit
 * (the tenant proves its key at set-up) there. The test
 * backend (mem) lives in one process: back-pressure only.
 *
 * wp-test-paths: tcp uring shm mem
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integ/harness.h"
#include "integ/procs.h"
#include "core/frame.h"
#include "stub_proto.h"
#include "wirepath/policy.h"

static const char *g_path;
static char g_wp[PATH_MAX]; /* the wirepath binary */
static char g_tmp[256];

static bool stream_path(void)
{
	return strcmp(g_path, "shm") != 0;
}

static double now_s(void)
{
	return (double)wp_now_ns() / 1e9;
}

/* ---- the server: `wirepath serve` in its own process --------------- */

struct server {
	pid_t pid;
	char uri[128]; /* what a client connects to */
	int port;      /* tcp, uring */
	char shm_name[16];
	char out[PATH_MAX], err[PATH_MAX];
	char meter[8192]; /* its meter at SIGTERM */
};

static void server_start(struct server *s, rlim_t nofile, const char *const *flags)
{
	static int n;
	const char *argv[40];
	char listen[64];
	int argc = 0;
	double end;

	memset(s, 0, sizeof(*s));
	snprintf(s->out, sizeof(s->out), "%s/serve%d.out", g_tmp, n);
	snprintf(s->err, sizeof(s->err), "%s/serve%d.err", g_tmp, n++);
	if (!strcmp(g_path, "shm"))
		snprintf(listen, sizeof(listen), "shm://@");
	else
		snprintf(listen, sizeof(listen), "%s://127.0.0.1:0", g_path);
	argv[argc++] = g_wp;
	argv[argc++] = "serve";
	argv[argc++] = "--listen";
	argv[argc++] = listen;
	argv[argc++] = "--select";
	argv[argc++] = "require";
	for (int i = 0; flags && flags[i]; i++)
		argv[argc++] = flags[i];
	argv[argc] = NULL;
	s->pid = fork_child();
	if (s->pid == 0) {
		int o = open(s->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		if (nofile) {
			struct rlimit rl = { nofile, nofile };

			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(126);
		}
		execv(g_wp, (char *const *)argv);
		_exit(125);
	}
	/* Its "connect: URI" line says where it listens. */
	for (end = now_s() + 20; now_s() < end;) {
		char line[512];
		FILE *f = fopen(s->out, "r");

		while (f && fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "connect: ", 9)) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(s->uri, sizeof(s->uri), "%.127s", line + 9);
			}
		}
		if (f)
			fclose(f);
		if (s->uri[0])
			break;
		CHECK(waitpid(s->pid, NULL, WNOHANG) == 0); /* it did not die */
		usleep(20000);
	}
	CHECK(s->uri[0]);
	if (!strncmp(s->uri, "shm://@", 7))
		snprintf(s->shm_name, sizeof(s->shm_name), "%.15s", s->uri + 7);
	else
		s->port = atoi(strrchr(s->uri, ':') + 1);
	fprintf(stderr, "server %d at %s\n", (int)s->pid, s->uri);
}

/* SIGTERM; it prints its meter on the way out. */
static void server_stop(struct server *s)
{
	char line[8192];
	FILE *f;
	int st;

	CHECK(kill(s->pid, SIGTERM) == 0);
	CHECK(waitpid(s->pid, &st, 0) == s->pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	f = fopen(s->out, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "meter: {", 8))
			snprintf(s->meter, sizeof(s->meter), "%s", line + 7);
	fclose(f);
	CHECK(s->meter[0]);
}

static uint64_t meter(const struct server *s, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(s->meter, k);
	CHECK(p);
	return strtoull(p + strlen(k), NULL, 10);
}

/* Lines of its log (stderr) that contain what. */
static int log_lines(const struct server *s, const char *what)
{
	char line[1024];
	FILE *f = fopen(s->err, "r");
	int n = 0;

	CHECK(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static long status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	CHECK(v >= 0);
	return v;
}

/* User + system CPU seconds of pid. */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	CHECK(f);
	CHECK(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')'); /* the command may hold spaces */
	CHECK(p);
	/* after ')': state(3) ... utime is field 14, stime 15 */
	CHECK(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- hostile peers: raw sockets ------------------------------------ */

/* A raw connection to s (from source address src on tcp/uring, or NULL),
 * non-blocking once connected. */
static int raw_connect(const struct server *s, const char *src)
{
	int fd;

	if (!stream_path()) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		size_t n = strlen(s->shm_name);

		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CHECK(fd >= 0);
		memcpy(un.sun_path + 1, s->shm_name, n); /* abstract: leading NUL */
		CHECK(connect(fd, (struct sockaddr *)&un,
			      offsetof(struct sockaddr_un, sun_path) + 1 + n) == 0);
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port) };

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(fd >= 0);
		if (src) {
			struct sockaddr_in b = { .sin_family = AF_INET };

			CHECK(inet_pton(AF_INET, src, &b.sin_addr) == 1);
			CHECK(bind(fd, (struct sockaddr *)&b, sizeof(b)) == 0);
		}
		CHECK(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr) == 1);
		CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	}
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	return fd;
}

/* A valid header of a one-way message of len payload bytes. */
static void msg_hdr(uint8_t out[WP_FRAME_HDR], uint32_t len)
{
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = WP_FT_MSG,
				  .len = len };

	wp_frame_encode(&h, out);
}

static void raw_send(int fd, const void *p, size_t n)
{
	CHECK(send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* Has the server closed fd (EOF or reset, after whatever it sent)? Waits at
 * most ms. */
static bool closed_within(int fd, int ms)
{
	double end = now_s() + ms / 1000.0;

	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int left = (int)((end - now_s()) * 1000);
		uint8_t buf[4096];
		ssize_t n;

		if (left < 0)
			return false;
		if (poll(&pf, 1, left) <= 0)
			return false;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
}

/* ---- a good client ---------------------------------------------------- */

struct good {
	struct wp_ctx *ctx;
	struct wp_ep *ep;
	int done, ok;
	uint32_t want;
	uint64_t got_sum, want_sum;
};

static void good_data(void *arg, struct wp_msg *m)
{
	struct good *g = arg;

	g->got_sum = fnv1a(m->data, m->len, g->got_sum);
}

static void good_done(void *arg, int status)
{
	struct good *g = arg;

	g->done++;
	g->ok += status == 0 && g->got_sum == g->want_sum;
}

static void good_open(struct good *g, const struct server *s, uint32_t tenant, const uint8_t *key)
{
	struct wp_ctx_opts o;

	memset(g, 0, sizeof(*g));
	h_opts(&o, "good");
	CHECK(wp_ctx_create(&o, &g->ctx) == 0);
	CHECK(wp_connect(g->ctx, s->uri, NULL, &g->ep) == 0);
	if (key)
		CHECK(wp_ep_set_tenant_key(g->ep, tenant, key) == 0);
}

/* n tool calls, one after another, each answered with resp bytes of the
 * stub's pattern (checked). Returns how many succeeded. */
static int good_calls(struct good *g, int n, uint32_t resp)
{
	uint8_t req[WPB_TOOL_HDR], *expect = malloc(resp);
	struct wpb_bytes_req r = { .bytes = resp, .service_us = 0 };
	int ok0 = g->ok;

	CHECK(expect);
	for (uint32_t i = 0; i < resp; i++)
		expect[i] = wpb_pattern(i);
	wpb_bytes_req_put(req, &r);
	for (int i = 0; i < n; i++) {
		struct wp_call_params p = { .method = WPB_TOOL,
					    .req = req,
					    .req_len = sizeof(req),
					    .deadline_us = 5000000,
					    .on_data = good_data,
					    .on_done = good_done,
					    .arg = g };
		int done0 = g->done;
		double end = now_s() + 10;

		g->got_sum = fnv1a(NULL, 0, 0);
		g->want_sum = fnv1a(expect, resp, g->got_sum);
		if (wp_rpc_call(g->ep, &p, NULL) < 0)
			break;
		while (g->done == done0 && now_s() < end)
			wp_ctx_progress(g->ctx, 10000);
		CHECK(g->done == done0 + 1);
	}
	free(expect);
	return g->ok - ok0;
}

static void good_close(struct good *g)
{
	wp_ctx_destroy(g->ctx);
}

/* ---- memory: partial maximum-size frames ---------------------------- */

#define HOSTILE_CONNS 12
#define BUDGET_MB 32
#define OVERHEAD_MB 24 /* connections' read buffers, kept bytes, the allocator */
/* uring: a connection paused mid-round also keeps the rest of that round's
 * completions, up to the provided-buffer ring (64 x 64 KiB) each
 * (docs/limits.md); tcp keeps at most one 64 KiB read. */
#define URING_KEPT_MB 4

static void test_memory(void)
{
	static const char *const flags[] = {
		"--rx-budget", "32M", "--frame-timeout", "4", "--handshake-timeout", "never", NULL
	};
	static uint8_t chunk[1 << 20];
	const size_t want = (16u << 20) - 4096; /* most of a 16 MiB frame */
	size_t sent[HOSTILE_CONNS] = { 0 };
	int fd[HOSTILE_CONNS];
	struct server s;
	struct good g;
	long base, peak, allow;
	double end;

	server_start(&s, 0, flags);
	good_open(&g, &s, 0, NULL);
	CHECK_EQ(good_calls(&g, 3, 4096), 3); /* warm: the server's steady state */
	base = status_kb(s.pid, "VmRSS:");
	for (int i = 0; i < HOSTILE_CONNS; i++) {
		uint8_t h[WP_FRAME_HDR];

		fd[i] = raw_connect(&s, NULL);
		msg_hdr(h, 16u << 20);
		raw_send(fd[i], h, sizeof(h));
	}
	/* Push as much of each frame as the server (or the kernel's socket
	 * buffers, once it stops reading) takes, for up to 3 s. */
	for (end = now_s() + 3; now_s() < end;) {
		bool moved = false;

		for (int i = 0; i < HOSTILE_CONNS; i++) {
			size_t n = want - sent[i] < sizeof(chunk) ? want - sent[i] : sizeof(chunk);
			ssize_t w = n ? send(fd[i], chunk, n, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;

			if (w > 0) {
				sent[i] += (size_t)w;
				moved = true;
			}
		}
		if (!moved)
			usleep(20000);
	}
	{
		size_t total = 0;

		for (int i = 0; i < HOSTILE_CONNS; i++)
			total += sent[i];
		fprintf(stderr, "hostile peers pushed %zu MiB of partial frames\n", total >> 20);
		CHECK(total > (size_t)BUDGET_MB << 20); /* more than it may keep */
	}
	/* Meanwhile a good client is served. */
	CHECK_EQ(good_calls(&g, 20, 4096), 20);
	peak = status_kb(s.pid, "VmHWM:");
	allow = (BUDGET_MB + OVERHEAD_MB) * 1024;
	if (!strcmp(g_path, "uring"))
		allow += (HOSTILE_CONNS - 1) * URING_KEPT_MB * 1024;
	fprintf(stderr, "server RSS: %ld KiB at start, peak %ld KiB (grew %ld KiB, allowed %ld)\n",
		base, peak, peak - base, allow);
#ifdef __SANITIZE_ADDRESS__
	/* ASan keeps freed memory in quarantine and adds shadow pages: RSS
	 * says nothing about the budget there (the counters below still do). */
	fprintf(stderr, "sanitized build: the RSS bound is checked by the plain build only\n");
#else
	CHECK(peak - base <= allow);
#endif
	/* The stalled partial frames are shed at the frame timeout (4 s). */
	for (int i = 0; i < HOSTILE_CONNS; i++) {
		CHECK(closed_within(fd[i], 10000));
		close(fd[i]);
	}
	CHECK_EQ(good_calls(&g, 3, 4096), 3);
	good_close(&g);
	server_stop(&s);
	fprintf(stderr, "meter: %s\n", s.meter);
	CHECK(meter(&s, "rx_budget_pauses") >= 1);
	CHECK(meter(&s, "rx_partial_shed") >= 1);
	CHECK_EQ(meter(&s, "timeouts_frame"), HOSTILE_CONNS);
}

/* ---- back-pressure delivers everything (in process) ------------------ */

#define BP_CLIENTS 6
#define BP_MSGS 3
#define BP_LEN (1u << 20)

struct bp {
	int got, bad;
};

static void bp_fill(uint8_t *p, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < BP_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	memcpy(p, &seed, sizeof(seed));
}

static void bp_msg(void *arg, struct wp_ep *ep, struct wp_msg *m)
{
	static uint8_t want[BP_LEN];
	struct bp *b = arg;
	uint32_t seed;

	b->got++;
	if (m->len != BP_LEN) {
		b->bad++;
		return;
	}
	memcpy(&seed, m->data, sizeof(seed));
	bp_fill(want, seed);
	b->bad += memcmp(want, m->data, BP_LEN) != 0;
}

static void test_backpressure(void)
{
	struct wp_ctx_opts o;
	struct wp_ctx *sc, *cc;
	struct wp_ep *l, *ep[BP_CLIENTS];
	struct wp_meter_snap m0, m1, d;
	struct bp b = { 0 };
	struct wp_ep_cbs cbs = { .msg = bp_msg, .arg = &b };
	static uint8_t payload[BP_CLIENTS * BP_MSGS][BP_LEN];
	char uri[64];
	double end;

	wp_meter_snapshot(&m0);
	h_opts(&o, "server");
	o.max_frame = BP_LEN;
	o.rx_budget = 2 * BP_LEN; /* room for one large assembly (7/8: not two) */
	CHECK(wp_ctx_create(&o, &sc) == 0);
	h_uri(uri, sizeof(uri), g_path, 0);
	CHECK(wp_listen(sc, uri, &cbs, &l) == 0);
	h_uri(uri, sizeof(uri), g_path, wp_ep_local_port(l));
	h_opts(&o, "client");
	CHECK(wp_ctx_create(&o, &cc) == 0);
	for (int i = 0; i < BP_CLIENTS; i++) {
		CHECK(wp_connect(cc, uri, NULL, &ep[i]) == 0);
		for (int k = 0; k < BP_MSGS; k++) {
			uint8_t *p = payload[i * BP_MSGS + k];

			bp_fill(p, (uint32_t)(i * BP_MSGS + k + 1));
			CHECK(wp_ep_send_msg(ep[i], 7, p, BP_LEN, NULL, NULL) == 0);
		}
	}
	for (end = now_s() + 60; b.got < BP_CLIENTS * BP_MSGS && now_s() < end;) {
		wp_ctx_progress(cc, 0);
		wp_ctx_progress(sc, 1000);
	}
	wp_meter_snapshot(&m1);
	wp_meter_diff(&m0, &m1, &d);
	fprintf(stderr, "back-pressure: %d frames, %d bad, %llu pauses, %llu resumes\n", b.got,
		b.bad, (unsigned long long)d.rx_budget_pauses,
		(unsigned long long)d.rx_budget_resumes);
	CHECK_EQ(b.got, BP_CLIENTS * BP_MSGS);
	CHECK_EQ(b.bad, 0);
	CHECK(d.rx_budget_pauses >= 1);
	CHECK_EQ(d.rx_budget_resumes, d.rx_budget_pauses); /* every paused one resumed */
	CHECK_EQ(d.rx_partial_shed, 0);
	wp_ctx_destroy(cc);
	wp_ctx_destroy(sc);
}

/* ---- fd exhaustion -------------------------------------------------- */

#define NOFILE 48
#define FD_PEERS 80

static void test_fd_exhaustion(void)
{
	static const char *const flags[] = { "--handshake-timeout", "never", NULL };
	int fd[FD_PEERS], lines;
	struct server s;
	struct good g;
	double c0, c1;

	server_start(&s, NOFILE, flags);
	for (int i = 0; i < FD_PEERS; i++)
		fd[i] = raw_connect(&s, NULL); /* the backlog takes what it cannot accept */
	usleep(300000);
	c0 = cpu_s(s.pid);
	sleep(2);
	c1 = cpu_s(s.pid);
	lines = log_lines(&s, "accept");
	fprintf(stderr, "out of descriptors: server CPU %.3f s over 2 s, %d accept log lines\n",
		c1 - c0, lines);
	CHECK(c1 - c0 < 0.3);            /* was a core at 100 % */
	CHECK(lines >= 1 && lines <= 5); /* was millions */
	/* Recovery: the peers leave, a new client is served. */
	for (int i = 0; i < FD_PEERS; i++)
		close(fd[i]);
	good_open(&g, &s, 0, NULL);
	CHECK_EQ(good_calls(&g, 3, 4096), 3);
	good_close(&g);
	server_stop(&s);
	fprintf(stderr, "meter: %s\n", s.meter);
	CHECK(meter(&s, "accept_pauses") >= 2);
	CHECK(meter(&s, "log_suppressed") >= 1);
}

/* ---- timeouts ------------------------------------------------------- */

static void test_timeouts(void)
{
	/* Far apart, so a loaded machine cannot swap their order. */
	static const char *const flags[] = {
		"--frame-timeout", "1", "--handshake-timeout", "4", "--idle-timeout", "7", NULL
	};
	enum { HDR2, SHORT1, IDLE, HS, N };
	static const char *const name[N] = { "2 bytes of a header", "a frame one byte short",
					     "idle after a frame", "no handshake" };
	const double lo[N] = { 0.9, 0.9, 6.9, 3.9 }, hi[N] = { 3.9, 3.9, 10.5, 6.9 };
	double t0, at[N] = { 0 };
	int fd[N];
	struct server s;

	server_start(&s, 0, flags);
	for (int i = 0; i < N; i++)
		fd[i] = stream_path() || i == HS ? raw_connect(&s, NULL) : -1;
	t0 = now_s();
	if (stream_path()) {
		uint8_t h[WP_FRAME_HDR], body[99] = { 0 };

		msg_hdr(h, 100);
		raw_send(fd[HDR2], h, 2);
		raw_send(fd[SHORT1], h, sizeof(h));
		raw_send(fd[SHORT1], body, sizeof(body));
		msg_hdr(h, 0);
		raw_send(fd[IDLE], h, sizeof(h)); /* a whole frame: setup done */
	}
	for (;;) {
		int open = 0;

		for (int i = 0; i < N; i++) {
			if (fd[i] < 0 || at[i])
				continue;
			if (closed_within(fd[i], 20))
				at[i] = now_s() - t0;
			else
				open++;
		}
		if (!open || now_s() - t0 > 12)
			break;
	}
	for (int i = 0; i < N; i++) {
		if (fd[i] < 0)
			continue;
		fprintf(stderr, "%s: closed after %.2f s (expected %.1f..%.1f)\n", name[i], at[i],
			lo[i], hi[i]);
		CHECK(at[i] >= lo[i] && at[i] <= hi[i]);
		close(fd[i]);
	}
	server_stop(&s);
	fprintf(stderr, "meter: %s\n", s.meter);
	CHECK_EQ(meter(&s, "timeouts_frame"), stream_path() ? 2 : 0);
	CHECK_EQ(meter(&s, "timeouts_idle"), stream_path() ? 1 : 0);
	CHECK_EQ(meter(&s, "timeouts_handshake"), 1);
}

/* ---- connection limits ------------------------------------------------ */

/* Open: not closed by the server within 300 ms. */
static bool kept(int fd)
{
	return !closed_within(fd, 300);
}

static void test_conn_limits(void)
{
	static const char *const flags[] = { "--conns-max", "4", "--conns-per-source", "2", NULL };
	int fd[6];
	struct server s;

	server_start(&s, 0, flags);
	if (stream_path()) {
		fd[0] = raw_connect(&s, "127.0.0.1");
		fd[1] = raw_connect(&s, "127.0.0.1");
		CHECK(kept(fd[0]) && kept(fd[1]));
		fd[2] = raw_connect(&s, "127.0.0.1"); /* a third from one source */
		CHECK(closed_within(fd[2], 10000));
		fd[3] = raw_connect(&s, "127.0.0.2");
		fd[4] = raw_connect(&s, "127.0.0.2");
		CHECK(kept(fd[3]) && kept(fd[4]));
		fd[5] = raw_connect(&s, "127.0.0.3"); /* a fifth in all */
		CHECK(closed_within(fd[5], 10000));
	} else {
		for (int i = 0; i < 4; i++)
			fd[i] = raw_connect(&s, NULL);
		for (int i = 0; i < 4; i++)
			CHECK(kept(fd[i]));
		fd[4] = raw_connect(&s, NULL);
		CHECK(closed_within(fd[4], 10000));
		fd[5] = -1;
	}
	for (int i = 0; i < 6; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	server_stop(&s);
	fprintf(stderr, "meter: %s\n", s.meter);
	CHECK_EQ(meter(&s, "refused_ctx"), 1);
	CHECK_EQ(meter(&s, "refused_source"), stream_path() ? 1 : 0);
}

static void test_tenant_limit(void)
{
	static const uint8_t ka[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	static const uint8_t kb[16] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };
	char rules[512];
	const char *flags[] = { "--policy", rules, "--conns-per-tenant", "1", NULL };
	struct good a1, a2, b1;
	struct server s;
	FILE *f;

	snprintf(rules, sizeof(rules), "%s/limits.rules", g_tmp);
	f = fopen(rules, "w");
	CHECK(f);
	fprintf(f, "default pass\n"
		   "tenant a id 1 key 0102030405060708090a0b0c0d0e0f10\n"
		   "tenant b id 2 key 100f0e0d0c0b0a090807060504030201\n");
	fclose(f);
	server_start(&s, 0, flags);
	good_open(&a1, &s, 1, ka);
	CHECK_EQ(good_calls(&a1, 2, 100), 2);
	good_open(&a2, &s, 1, ka); /* a second connection of tenant a: refused */
	CHECK_EQ(good_calls(&a2, 1, 100), 0);
	good_open(&b1, &s, 2, kb);
	CHECK_EQ(good_calls(&b1, 2, 100), 2);
	CHECK_EQ(good_calls(&a1, 1, 100), 1); /* the first is untouched */
	good_close(&a1);
	good_close(&a2);
	good_close(&b1);
	server_stop(&s);
	fprintf(stderr, "meter: %s\n", s.meter);
	CHECK_EQ(meter(&s, "refused_tenant"), 1);
}

int main(int argc, char **argv)
{
	char self[1024];
	ssize_t n;

	test_watchdog(170);
	g_path = argc > 2 && !strcmp(argv[1], "--path") ? argv[2] : "tcp";
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(g_path, "mem")) {
		test_backpressure(); /* in process: the test backend has no peers outside */
		printf("ok\n");
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(g_wp, sizeof(g_wp), "%s/../wirepath", self);
	if (access(g_wp, X_OK) < 0)
		SKIP("%s is not built", g_wp);
	snprintf(g_tmp, sizeof(g_tmp), "%.200s/wp-limits.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	CHECK(mkdtemp(g_tmp));

	if (stream_path())
		test_backpressure();
	test_conn_limits();
	test_timeouts();
	test_fd_exhaustion();
	test_tenant_limit(); /* shm: the tenant proved at set-up */
	if (stream_path())
		test_memory();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
		if (system(cmd) != 0) {
			/* leave it */
		}
	}
	printf("ok\n");
	return 0;
}
