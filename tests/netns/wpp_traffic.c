// SPDX-License-Identifier: MIT
/*
 * Traffic for the front-door netns tests (the scripts in tests/netns/), run inside the
 * namespaces those scripts create:
 *
 *   wpp_traffic send --src A --dst B --port P --count N [--pps R] [--size BYTES]
 *               [--frame TENANT:KEYHEX [--forge | --short]] [--seq-base S]
 *       UDP datagrams from A, paced at R per second (0 = as fast as possible).
 *       Each payload starts with a u64 sequence number; with --frame it is a
 *       wirepath frame (tenant, signed with KEYHEX, or forged / cut short)
 *       whose payload carries the sequence number.
 *       Prints: sent N secs T
 *   wpp_traffic recv --bind B --port P --secs S [--idle-ms M]
 *       Counts datagrams until S seconds pass, or M ms pass without one after
 *       the first. Prints "ready PID" when listening, then: received N
 *       unique U. SIGUSR1 (the senders are done: lib.sh's senders_done)
 *       shortens the idle window to 1 s from then on, frames or not: a
 *       test can allow long gaps between its senders (a busy machine
 *       starts processes slowly) and still end promptly.
 *   wpp_traffic tcp-connect --src A --dst B --port P [--timeout-ms T]
 *       Exit 0 if a TCP connection is established within T ms, 1 if not.
 *   wpp_traffic tcp-listen --bind B --port P --secs S
 *       Accepts (and closes) connections for S seconds.
 *   wpp_traffic twin --dev IFACE --rules RULES --secs S [--idle-ms M]
 *       Captures every frame IFACE sends (AF_PACKET, outgoing only: on a
 *       veth, exactly the frames the peer's XDP program gets) and decides
 *       each, whole, with the user-space twin of RULES. Stops like recv.
 *       Prints "ready", then one JSON line: {"frames","bytes","max_len",
 *       "truncated","pass_by_port":{PORT:N},"policy":{the twin's counters,
 *       as `wirepath policy stats --json` prints XDP's}}.
 *
 * Exit status 2 on bad arguments or a failed socket setup.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wirepath/policy.h"

struct args {
	const char *src, *dst, *bind, *frame, *dev, *rules;
	int port, size, forge, shortf, idle_ms, timeout_ms;
	long count;
	double pps, secs;
	uint64_t seq_base;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int addr(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, s, &a->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return inet_pton(AF_INET, s, &a->sin_addr) == 1 ? 0 : -1;
	}
}

static int sock_bound(const char *a, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, big = 8 << 20;

	if (addr(a, port, &ss, &sl) < 0) {
		fprintf(stderr, "wpp_traffic: bad address %s\n", a);
		exit(2);
	}
	fd = socket(ss.ss_family, type, 0);
	if (fd < 0) {
		perror("socket");
		exit(2);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		fprintf(stderr, "wpp_traffic: bind %s:%d: %s\n", a, port, strerror(errno));
		exit(2);
	}
	return fd;
}

/* SIGUSR1: the senders are done (see recv above). */
static volatile sig_atomic_t g_senders_done;

static void on_senders_done(int sig)
{
	(void)sig;
	g_senders_done = 1;
}

/* Whether a receiving loop that last got a frame at `last` (0: none yet)
 * should stop at t; after SIGUSR1 the window is 1 s from the signal on. */
static bool idle_over(const struct args *a, double t, double *last, bool seen)
{
	static double since;
	int idle_ms = a->idle_ms;

	if (g_senders_done) {
		if (!since)
			since = t;
		if (*last < since)
			*last = since;
		seen = true;
		if (!idle_ms || idle_ms > 1000)
			idle_ms = 1000;
	}
	return seen && idle_ms && (t - *last) * 1000 > idle_ms;
}

static int do_send(const struct args *a)
{
	struct sockaddr_storage dst;
	socklen_t dl;
	uint8_t buf[9000], key[16];
	uint32_t tenant = 0;
	double t0, t1;
	long sent = 0;
	int fd;

	if (!a->src || !a->dst || !a->port || a->count <= 0)
		return 2;
	if (a->frame && wp_policy_tenant_key_parse(a->frame, &tenant, key) < 0) {
		fprintf(stderr, "wpp_traffic: --frame TENANT:32HEX\n");
		return 2;
	}
	fd = sock_bound(a->src, 0, SOCK_DGRAM);
	if (addr(a->dst, a->port, &dst, &dl) < 0)
		return 2;
	t0 = now_s();
	for (long i = 0; i < a->count; i++) {
		uint64_t seq = a->seq_base + (uint64_t)i;
		size_t len = (size_t)(a->size > 8 ? a->size : 8);

		if (a->pps > 0) {
			double due = t0 + (double)i / a->pps, d = due - now_s();

			if (d > 0) {
				struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };

				nanosleep(&ts, NULL);
			}
		}
		memset(buf, 0, sizeof(buf));
		if (a->frame) {
			uint32_t pl = (uint32_t)len;

			memcpy(buf, "WPF1", 4);
			buf[4] = 2; /* frame version */
			buf[5] = 1;
			for (int k = 0; k < 4; k++) {
				buf[8 + k] = (uint8_t)(tenant >> (8 * k));
				buf[24 + k] = (uint8_t)(pl >> (8 * k));
			}
			memcpy(buf + 40, &seq, 8);
			wp_frame_sign(key, buf);
			if (a->forge)
				buf[33] ^= 0x40;
			len += 40;
			if (a->shortf)
				len = 30;
		} else {
			memcpy(buf, &seq, 8);
		}
		if (sendto(fd, buf, len, 0, (struct sockaddr *)&dst, dl) < 0) {
			if (errno == ENOBUFS || errno == EAGAIN) {
				i--; /* back-pressure from the local stack: retry */
				continue;
			}
			perror("sendto");
			return 1;
		}
		sent++;
	}
	t1 = now_s();
	printf("sent %ld secs %.6f\n", sent, t1 - t0);
	return 0;
}

static int do_recv(const struct args *a)
{
	int fd = sock_bound(a->bind, a->port, SOCK_DGRAM);
	size_t cap = 1 << 22;
	uint8_t *seen = calloc(cap, 1), buf[9000];
	long got = 0, unique = 0;
	double end = now_s() + a->secs, last = 0;

	if (!seen)
		return 2;
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double t = now_s();
		int ms = (int)((end - t) * 1000);

		if (t >= end || idle_over(a, t, &last, got))
			break;
		if ((got || g_senders_done) && ms > 1000)
			ms = 1000; /* re-check the idle window */
		if (poll(&p, 1, ms > 0 ? ms : 1) <= 0)
			continue;
		for (;;) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			uint64_t seq;

			if (n < 0)
				break;
			got++;
			last = now_s();
			/* a frame carries the sequence after its 40-byte header */
			if (n >= 48 && !memcmp(buf, "WPF1", 4))
				memcpy(&seq, buf + 40, 8);
			else if (n >= 8)
				memcpy(&seq, buf, 8);
			else
				continue;
			if (seq < cap * 8 && !(seen[seq / 8] & (1u << (seq % 8)))) {
				seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
				unique++;
			}
		}
	}
	printf("received %ld unique %ld\n", got, unique);
	free(seen);
	return 0;
}

static int do_connect(const struct args *a)
{
	struct sockaddr_storage dst;
	socklen_t dl;
	int fd = sock_bound(a->src, 0, SOCK_STREAM), err = 0;
	socklen_t el = sizeof(err);
	struct pollfd p;

	if (addr(a->dst, a->port, &dst, &dl) < 0)
		return 2;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&dst, dl) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return 1;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, a->timeout_ms ? a->timeout_ms : 1000) <= 0)
		return 1;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	return err == 0 ? 0 : 1;
}

static int do_listen(const struct args *a)
{
	int fd = sock_bound(a->bind, a->port, SOCK_STREAM);
	double end = now_s() + a->secs;

	if (listen(fd, 64) < 0)
		return 2;
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (now_s() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0)
				close(c);
		}
	}
	return 0;
}

static void twin_log(void *arg, enum wp_log_level level, const char *msg)
{
	fprintf(stderr, "wpp_traffic: %s\n", msg);
}

static int do_twin(const struct args *a)
{
	static uint8_t buf[65536];
	static uint32_t pass_by_port[65536];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct wp_policy_stats st;
	struct wp_policy *p;
	struct wp_twin *tw;
	uint64_t frames = 0, bytes = 0, truncated = 0, max_len = 0;
	double end = now_s() + a->secs, last = 0;
	int fd, big = 16 << 20, n;
	char *j;

	wp_set_log(twin_log, NULL, WP_LOG_ERR);
	if (wp_policy_parse_file(a->rules, &p) < 0 || wp_twin_create(p, &tw) < 0)
		return 2;
	wp_policy_free(p);
	sll.sll_ifindex = (int)if_nametoindex(a->dev);
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (!sll.sll_ifindex || fd < 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "wpp_traffic: capturing on %s: %s\n", a->dev, strerror(errno));
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		double t = now_s();
		int ms = (int)((end - t) * 1000);

		if (t >= end || idle_over(a, t, &last, frames))
			break;
		if ((frames || g_senders_done) && ms > 1000)
			ms = 1000; /* re-check the idle window */
		if (poll(&pf, 1, ms > 0 ? ms : 1) <= 0)
			continue;
		for (;;) {
			struct sockaddr_ll from;
			socklen_t fl = sizeof(from);
			ssize_t len = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
					       (struct sockaddr *)&from, &fl);
			struct timespec ts;
			unsigned reason;
			int v;

			if (len < 0)
				break;
			if (from.sll_pkttype != PACKET_OUTGOING)
				continue;
			last = now_s();
			frames++;
			if ((size_t)len > sizeof(buf)) { /* never decided on a cut copy */
				truncated++;
				continue;
			}
			bytes += (uint64_t)len;
			if ((uint64_t)len > max_len)
				max_len = (uint64_t)len;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			v = wp_twin_decide(tw, buf, (size_t)len,
					   (uint64_t)ts.tv_sec * 1000000000ull +
						   (uint64_t)ts.tv_nsec,
					   &reason);
			/* IPv4 without options, UDP: count passes by destination port */
			if (v != WP_VERDICT_DROP && len >= 42 && buf[12] == 8 && buf[13] == 0 &&
			    buf[14] == 0x45 && buf[23] == 17)
				pass_by_port[buf[36] << 8 | buf[37]]++;
		}
	}
	close(fd);
	if (wp_twin_stats(tw, &st) < 0)
		return 2;
	n = wp_policy_stats_json(&st, NULL, 0);
	j = malloc((size_t)n + 1);
	if (!j)
		return 2;
	wp_policy_stats_json(&st, j, (size_t)n + 1);
	printf("{\"frames\":%llu,\"bytes\":%llu,\"max_len\":%llu,\"truncated\":%llu,"
	       "\"pass_by_port\":{",
	       (unsigned long long)frames, (unsigned long long)bytes, (unsigned long long)max_len,
	       (unsigned long long)truncated);
	for (int port = 0, first = 1; port < 65536; port++) {
		if (!pass_by_port[port])
			continue;
		printf("%s\"%d\":%u", first ? "" : ",", port, pass_by_port[port]);
		first = 0;
	}
	printf("},\"policy\":%s}\n", j);
	free(j);
	wp_policy_stats_free(&st);
	wp_twin_destroy(tw);
	return truncated ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "pps", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 'z' },
		{ "frame", required_argument, NULL, 'f' },
		{ "forge", no_argument, NULL, 'F' },
		{ "short", no_argument, NULL, 'S' },
		{ "secs", required_argument, NULL, 't' },
		{ "idle-ms", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "seq-base", required_argument, NULL, 'q' },
		{ "dev", required_argument, NULL, 'D' },
		{ "rules", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { .secs = 5 };
	const char *mode;
	int c;

	signal(SIGUSR1, on_senders_done);
	if (argc < 2)
		return 2;
	mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			a.src = optarg;
			break;
		case 'd':
			a.dst = optarg;
			break;
		case 'b':
			a.bind = optarg;
			break;
		case 'p':
			a.port = atoi(optarg);
			break;
		case 'n':
			a.count = atol(optarg);
			break;
		case 'r':
			a.pps = atof(optarg);
			break;
		case 'z':
			a.size = atoi(optarg);
			break;
		case 'f':
			a.frame = optarg;
			break;
		case 'F':
			a.forge = 1;
			break;
		case 'S':
			a.shortf = 1;
			break;
		case 't':
			a.secs = atof(optarg);
			break;
		case 'i':
			a.idle_ms = atoi(optarg);
			break;
		case 'T':
			a.timeout_ms = atoi(optarg);
			break;
		case 'q':
			a.seq_base = strtoull(optarg, NULL, 10);
			break;
		case 'D':
			a.dev = optarg;
			break;
		case 'R':
			a.rules = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!strcmp(mode, "send"))
		return do_send(&a);
	if (!strcmp(mode, "recv") && a.bind)
		return do_recv(&a);
	if (!strcmp(mode, "tcp-connect") && a.src && a.dst)
		return do_connect(&a);
	if (!strcmp(mode, "tcp-listen") && a.bind)
		return do_listen(&a);
	if (!strcmp(mode, "twin") && a.dev && a.rules)
		return do_twin(&a);
	fprintf(stderr, "wpp_traffic: unknown mode or missing arguments (see the file's header)\n");
	return 2;
}
