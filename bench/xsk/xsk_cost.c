// SPDX-License-Identifier: MIT
/*
 * Small RPCs over a veth pair between two network namespaces: the xsk path
 * against a plain kernel UDP echo (recvmmsg/sendmmsg, batched both ways)
 * and the uring and tcp paths, same sizes, same calls in flight, one
 * process: the server on a thread that enters the server's namespace
 * (setns is per thread), the client on the main thread in the client's.
 * CPU is the whole process's (both ends of every call) from getrusage, so
 * "CPU per call" is what one round trip costs the host, and calls/s per
 * core is calls / CPU seconds. RTT percentiles from every call's own clock.
 * udp_spin is the same UDP echo polling with MSG_DONTWAIT for up to 50 us
 * before it blocks (shm's spin budget): what a spin costs here, measured.
 * Busy polling, like with like: xsk_busy (the path with busy_poll: it never
 * sleeps, reads its rings without a syscall) against udp_busy (recvmmsg
 * with MSG_DONTWAIT in a loop); both threads then burn a core each, so CPU
 * per call is about two cores over the call rate.
 *
 * Receive modes (rx_udp, rx_xsk): one-way datagrams. The client thread
 * blasts 64-byte datagrams with sendmmsg (64 at a time) at the server's
 * port; the server is a kernel UDP socket (recvmmsg, 64 at a time) or the
 * xsk path's context (its program, its AF_XDP sockets in copy mode, its
 * poll loop). The datagram is the path's own control packet for a session
 * the receiver does not know (a FIN: parsed, looked up, dropped without an
 * answer), so both receivers get the same bytes. Reported: packets received
 * per second, the receiver thread's CPU per packet, and the whole process's
 * (sender included: on veth the receive side's softirq work, the XDP
 * program and the copy into the UMEM or the socket, runs on the sender's
 * CPU, charged to it).
 * bench/xsk/run.sh makes the namespaces; prints one JSON line per run.
 *
 *   xsk_cost --srv-ns /run/netns/S --srv 10.98.0.1
 *            --mode xsk|xsk_busy|udp|udp_spin|udp_busy|uring|tcp|rx_udp|rx_xsk
 *            [--size 64] [--secs 2] [--inflight 1]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wirepath/wirepath.h"

#define MAXSAMP (4u << 20)
#define BATCH 64
#define UDP_SPIN_NS 50000ull /* udp_spin: as the path's default spin_us */

static const char *srv_ns, *srv_addr, *mode = "xsk";
static uint32_t size = 64, inflight = 1;
static double secs = 2;
static atomic_int stop, ready;
static bool udp_spin, udp_busy;
static int port;
static char srv_explain[1400];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "xsk_cost: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void enter_ns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		die(path, errno);
	close(fd);
}

/* ---- the paths (public API) ------------------------------------------- */

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	wp_call_reply(call, req->data, req->len, NULL, NULL);
}

/* The path's scheme: xsk_busy is the xsk path with busy_poll on. */
static const char *scheme(void)
{
	return strcmp(mode, "xsk_busy") ? mode : "xsk";
}

static void path_opts(struct wp_ctx_opts *o)
{
	wp_ctx_opts_init(o);
	o->select = WP_SELECT_REQUIRE;
	o->busy_poll = !strcmp(mode, "xsk_busy");
}

static void *srv_path(void *arg)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *l;
	char uri[96];
	int ret;

	enter_ns(srv_ns);
	path_opts(&o);
	if ((ret = wp_ctx_create(&o, &ctx)) < 0)
		die("wp_ctx_create", ret);
	wp_rpc_register(ctx, 1, h_echo, NULL);
	snprintf(uri, sizeof(uri), "%s://%s:0", scheme(), srv_addr);
	if ((ret = wp_listen(ctx, uri, NULL, &l)) < 0)
		die("wp_listen", ret);
	port = wp_ep_local_port(l);
	atomic_store(&ready, 1);
	while (!atomic_load(&stop))
		wp_ctx_progress(ctx, 1000);
	snprintf(srv_explain, sizeof(srv_explain), "%s", wp_ctx_explain(ctx));
	wp_ctx_destroy(ctx);
	return NULL;
}

struct slot {
	uint64_t t0;
	int done;
};

static uint64_t *samp;
static struct slot *slots; /* freed after the client's context: on_done names them */
static uint64_t nsamp, ncalls;
static uint8_t *req;
static struct wp_ep *cep;

static void on_done(void *arg, int status);

static void call_start(struct slot *s)
{
	struct wp_call_params p = { .method = 1,
				    .req = req,
				    .req_len = size,
				    .on_done = on_done,
				    .arg = s };
	int ret;

	s->t0 = now_ns();
	if ((ret = wp_rpc_call(cep, &p, NULL)) < 0)
		die("wp_rpc_call", ret);
}

static void on_done(void *arg, int status)
{
	struct slot *s = arg;

	if (status != 0) {
		if (atomic_load(&stop))
			return; /* the end of the run closes what is in flight */
		die("call", status);
	}
	if (nsamp < MAXSAMP)
		samp[nsamp++] = now_ns() - s->t0;
	ncalls++;
	if (!atomic_load(&stop))
		call_start(s);
	else
		s->done = 1;
}

static void client_path(struct wp_ctx **out)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct slot *sl = slots = calloc(inflight, sizeof(*sl));
	char uri[96];
	uint64_t end;
	int ret;

	path_opts(&o);
	if ((ret = wp_ctx_create(&o, &ctx)) < 0)
		die("wp_ctx_create", ret);
	snprintf(uri, sizeof(uri), "%s://%s:%d", scheme(), srv_addr, port);
	if ((ret = wp_connect(ctx, uri, NULL, &cep)) < 0)
		die("wp_connect", ret);
	for (uint32_t i = 0; i < inflight; i++)
		call_start(&sl[i]);
	/* warm-up: 0.3 s, then measure */
	end = now_ns() + 300000000ull;
	while (now_ns() < end)
		wp_ctx_progress(ctx, 1000);
	*out = ctx;
}

/* ---- kernel UDP echo, batched both ways -------------------------------- */

/* recvmmsg, after polling for up to UDP_SPIN_NS in udp_spin mode; udp_busy
 * never sleeps (it returns 0 now and then, so the loops see stop). */
static int udp_recv(int fd, struct mmsghdr *mm)
{
	if (udp_spin || udp_busy) {
		uint64_t t0 = now_ns();

		do {
			int n = recvmmsg(fd, mm, BATCH, MSG_DONTWAIT, NULL);

			if (n > 0)
				return n;
			__builtin_ia32_pause();
		} while (now_ns() - t0 < UDP_SPIN_NS);
		if (udp_busy)
			return 0;
	}
	return recvmmsg(fd, mm, BATCH, MSG_WAITFORONE, NULL);
}

static void *srv_udp(void *arg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET }, from[BATCH];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	static uint8_t buf[BATCH][2048];
	socklen_t sl = sizeof(sa);
	struct timeval tv = { 0, 100000 };
	int fd;

	enter_ns(srv_ns);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, srv_addr, &sa.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("udp bind", errno);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	atomic_store(&ready, 1);
	while (!atomic_load(&stop)) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = sizeof(buf[i]);
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = udp_recv(fd, mm);
		if (n <= 0)
			continue;
		for (int i = 0; i < n; i++)
			iov[i].iov_len = mm[i].msg_len;
		sendmmsg(fd, mm, (unsigned)n, 0);
	}
	snprintf(srv_explain, sizeof(srv_explain),
		 "kernel UDP echo: recvmmsg (up to %d, MSG_WAITFORONE%s) then sendmmsg", BATCH,
		 udp_spin   ? ", after polling up to 50 us with MSG_DONTWAIT"
		 : udp_busy ? ", MSG_DONTWAIT in a loop: never sleeps"
			    : "");
	close(fd);
	return NULL;
}

static int cfd;

static void udp_send(const uint64_t *t, int n)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	static uint8_t b[BATCH][2048];

	for (int i = 0; i < n; i++) {
		memcpy(b[i], &t[i], 8);
		iov[i].iov_base = b[i];
		iov[i].iov_len = size;
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	if (sendmmsg(cfd, mm, (unsigned)n, 0) != n)
		die("sendmmsg", errno);
}

static void udp_client_round(void)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	static uint8_t b[BATCH][2048];
	uint64_t t[BATCH], now;
	int n;

	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = b[i];
		iov[i].iov_len = sizeof(b[i]);
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	n = udp_recv(cfd, mm);
	if (n <= 0)
		return;
	now = now_ns();
	for (int i = 0; i < n; i++) {
		uint64_t t0;

		memcpy(&t0, b[i], 8);
		if (nsamp < MAXSAMP)
			samp[nsamp++] = now - t0;
		ncalls++;
		t[i] = now;
	}
	udp_send(t, n);
}

static void client_udp(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { 0, 100000 };
	uint64_t t[BATCH], end;

	cfd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, srv_addr, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("udp connect", errno);
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (uint32_t i = 0; i < inflight; i += BATCH) {
		uint32_t n = inflight - i < BATCH ? inflight - i : BATCH;

		for (uint32_t k = 0; k < n; k++)
			t[k] = now_ns();
		udp_send(t, (int)n);
	}
	end = now_ns() + 300000000ull;
	while (now_ns() < end)
		udp_client_round();
}

/* A counter from a path's explain string ("key=N"), or 0. */
static uint64_t counter(const char *explain, const char *key)
{
	const char *p = strstr(explain, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* ---- one-way receive: packets per second per core -------------------- */

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static atomic_int rx_phase; /* 1: the window starts, 2: it ends */
static uint64_t rx_pkts[2];
static double rx_cpu[2];

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The server's count and CPU at each phase change, on its own thread. */
static void rx_mark(int *seen, uint64_t pkts)
{
	int ph = atomic_load(&rx_phase);

	if (ph > *seen && ph <= 2) {
		rx_pkts[ph - 1] = pkts;
		rx_cpu[ph - 1] = thread_cpu_s();
		*seen = ph;
	}
}

static void *srv_rx_udp(void *arg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	static uint8_t buf[BATCH][2048];
	socklen_t sl = sizeof(sa);
	struct timeval tv = { 0, 1000 };
	uint64_t got = 0, sum = 0;
	int fd, rcvbuf = 4 << 20, seen = 0;

	enter_ns(srv_ns);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, srv_addr, &sa.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("udp bind", errno);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	atomic_store(&ready, 1);
	while (!atomic_load(&stop)) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = sizeof(buf[i]);
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, mm, BATCH, MSG_WAITFORONE, NULL);
		for (int i = 0; i < n; i++)
			sum += buf[i][5]; /* read what arrived, as the path does */
		if (n > 0)
			got += (uint64_t)n;
		rx_mark(&seen, got);
	}
	snprintf(srv_explain, sizeof(srv_explain),
		 "kernel UDP receiver: recvmmsg (up to %d, MSG_WAITFORONE), SO_RCVBUF 4 MiB "
		 "asked; type byte sum %llu",
		 BATCH, (unsigned long long)sum);
	close(fd);
	return NULL;
}

static void *srv_rx_xsk(void *arg)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *l;
	char uri[96];
	int ret, seen = 0;

	enter_ns(srv_ns);
	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	if ((ret = wp_ctx_create(&o, &ctx)) < 0)
		die("wp_ctx_create", ret);
	snprintf(uri, sizeof(uri), "xsk://%s:0", srv_addr);
	if ((ret = wp_listen(ctx, uri, NULL, &l)) < 0)
		die("wp_listen", ret);
	port = wp_ep_local_port(l);
	atomic_store(&ready, 1);
	while (!atomic_load(&stop)) {
		wp_ctx_progress(ctx, 1000);
		if (atomic_load(&rx_phase) > seen)
			rx_mark(&seen, counter(wp_ctx_explain(ctx), "rx_pkts="));
	}
	snprintf(srv_explain, sizeof(srv_explain), "%s", wp_ctx_explain(ctx));
	wp_ctx_destroy(ctx);
	return NULL;
}

/* The blaster: the path's control packet (frame header, prefix) of a FIN
 * for session 0x5eed: no receiver knows it, none answers. */
static uint64_t blast(int fd, uint64_t until)
{
	static uint8_t pkt[64];
	struct mmsghdr mm[BATCH];
	struct iovec iov = { pkt, sizeof(pkt) };
	uint64_t sent = 0;

	memcpy(pkt, "WPF1", 4);
	pkt[4] = 2;    /* frame version */
	pkt[5] = 0xc5; /* the xsk path's control type */
	pkt[12] = 4;   /* FIN */
	pkt[24] = 24;  /* len: the prefix */
	pkt[40] = 0xed;
	pkt[41] = 0x5e; /* session id */
	for (int i = 0; i < BATCH; i++) {
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov;
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (now_ns() < until) {
		int n = sendmmsg(fd, mm, BATCH, 0);

		if (n > 0)
			sent += (uint64_t)n;
		else if (errno != EAGAIN && errno != ENOBUFS)
			die("sendmmsg", errno);
	}
	return sent;
}

static int rx_main(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	bool xsk = !strcmp(mode, "rx_xsk");
	double c0, c1, w, rc;
	uint64_t t0, sent, got;
	pthread_t th;
	int fd;

	if (pthread_create(&th, NULL, xsk ? srv_rx_xsk : srv_rx_udp, NULL))
		die("pthread_create", errno);
	while (!atomic_load(&ready))
		usleep(1000);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, srv_addr, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("udp connect", errno);
	blast(fd, now_ns() + 300000000ull); /* warm-up */
	atomic_store(&rx_phase, 1);
	c0 = cpu_s();
	t0 = now_ns();
	sent = blast(fd, t0 + (uint64_t)(secs * 1e9));
	c1 = cpu_s();
	w = (double)(now_ns() - t0) / 1e9;
	atomic_store(&rx_phase, 2);
	usleep(20000); /* the receiver takes its second mark */
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	got = rx_pkts[1] - rx_pkts[0];
	rc = rx_cpu[1] - rx_cpu[0];
	printf("{\"mode\":\"%s\",\"size\":64,\"secs\":%.2f,\"sent\":%llu,\"received\":%llu,"
	       "\"rx_pps\":%.0f,\"cpu_s\":%.3f,\"cpu_ns_per_pkt\":%.0f,\"pkts_per_cpu_s\":%.0f,"
	       "\"rx_thread_cpu_s\":%.3f,\"rx_thread_ns_per_pkt\":%.0f,"
	       "\"pkts_per_rx_thread_cpu_s\":%.0f,\"server\":\"%.600s\"}\n",
	       mode, w, (unsigned long long)sent, (unsigned long long)got, got / w, c1 - c0,
	       got ? (c1 - c0) * 1e9 / got : 0, c1 > c0 ? got / (c1 - c0) : 0, rc,
	       got ? rc * 1e9 / got : 0, rc > 0 ? got / rc : 0, srv_explain);
	close(fd);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	bool udp;
	pthread_t th;
	struct wp_ctx *cx = NULL;
	double c0, c1, w;
	uint64_t t0, t1, calls0;
	char cli_explain[1400] = "", ex0[1400] = "";
	struct wp_meter_snap m0, m1, md;
	int ksys;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			die(a, EINVAL);
		if (!strcmp(a, "--srv-ns"))
			srv_ns = v;
		else if (!strcmp(a, "--srv"))
			srv_addr = v;
		else if (!strcmp(a, "--mode"))
			mode = v;
		else if (!strcmp(a, "--size"))
			size = (uint32_t)atoi(v);
		else if (!strcmp(a, "--secs"))
			secs = atof(v);
		else if (!strcmp(a, "--inflight"))
			inflight = (uint32_t)atoi(v);
		else
			die(a, EINVAL);
		i++;
	}
	if (!srv_ns || !srv_addr || size < 8 || size > 1400 || !inflight)
		die("usage: --srv-ns PATH --srv ADDR --mode xsk|xsk_busy|udp|udp_spin|udp_busy|uring|tcp|rx_udp|rx_xsk "
		    "[--size 8..1400] "
		    "[--secs S] [--inflight N]",
		    EINVAL);
	/* The kernel's count of every syscall (raw_syscalls:sys_enter), where
	 * tracefs and perf allow it; threads created later are counted too. */
	ksys = wp_meter_kernel_syscalls_start();
	if (!strncmp(mode, "rx_", 3))
		return rx_main();
	samp = malloc(MAXSAMP * sizeof(*samp));
	req = calloc(1, size);
	udp_spin = !strcmp(mode, "udp_spin");
	udp_busy = !strcmp(mode, "udp_busy");
	udp = udp_spin || udp_busy || !strcmp(mode, "udp");
	if (pthread_create(&th, NULL, udp ? srv_udp : srv_path, NULL))
		die("pthread_create", errno);
	while (!atomic_load(&ready))
		usleep(1000);
	if (udp)
		client_udp();
	else
		client_path(&cx);
	nsamp = 0;
	calls0 = ncalls;
	if (cx)
		snprintf(ex0, sizeof(ex0), "%s", wp_ctx_explain(cx));
	wp_meter_snapshot(&m0);
	c0 = cpu_s();
	t0 = now_ns();
	t1 = t0 + (uint64_t)(secs * 1e9);
	while (now_ns() < t1) {
		if (udp)
			udp_client_round();
		else
			wp_ctx_progress(cx, 1000);
	}
	c1 = cpu_s();
	wp_meter_snapshot(&m1);
	w = (double)(now_ns() - t0) / 1e9;
	wp_meter_diff(&m0, &m1, &md);
	{
		uint64_t n = ncalls - calls0;
		double per = n ? 1.0 / (double)n : 0, tx = 1, rx = 1;

		if (cx) {
			snprintf(cli_explain, sizeof(cli_explain), "%s", wp_ctx_explain(cx));
			/* The client's packets: out are the requests (and its acks),
			 * in are the replies (and the server's acks). */
			tx = (double)(counter(cli_explain, "tx_pkts=") - counter(ex0, "tx_pkts=")) *
			     per;
			rx = (double)(counter(cli_explain, "rx_pkts=") - counter(ex0, "rx_pkts=")) *
			     per;
		}
		atomic_store(&stop, 1);
		pthread_join(th, NULL);
		qsort(samp, nsamp, sizeof(*samp), cmp);
		printf("{\"mode\":\"%s\",\"size\":%u,\"inflight\":%u,\"secs\":%.2f,\"calls\":%llu,"
		       "\"calls_per_s\":%.0f,\"cpu_s\":%.3f,\"cpu_us_per_call\":%.2f,"
		       "\"calls_per_cpu_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		       "\"pkts_out_per_call\":%.2f,\"pkts_in_per_call\":%.2f,"
		       "\"syscalls_per_call\":%.2f,\"lib_writes_per_call\":%.2f,"
		       "\"lib_waits_per_call\":%.2f,\"ctxsw_per_call\":%.2f,"
		       "\"client\":\"%.300s\",\"server\":\"%.300s\"}\n",
		       mode, size, inflight, w, (unsigned long long)n, n / w, c1 - c0,
		       n ? (c1 - c0) * 1e6 / n : 0, c1 > c0 ? n / (c1 - c0) : 0,
		       nsamp ? samp[nsamp / 2] / 1e3 : 0, nsamp ? samp[nsamp * 99 / 100] / 1e3 : 0,
		       tx, rx, ksys == 0 && md.kernel_syscalls_ok ? md.kernel_syscalls * per : -1,
		       md.syscalls[WP_SYS_WRITE] * per, md.syscalls[WP_SYS_EPOLL_WAIT] * per,
		       (double)(md.ctx_vol + md.ctx_invol) * per, cli_explain, srv_explain);
	}
	if (cx)
		wp_ctx_destroy(cx);
	free(slots);
	free(samp);
	free(req);
	return 0;
}
