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
 *       the first. Prints: received N unique U
 *   wpp_traffic tcp-connect --src A --dst B --port P [--timeout-ms T]
 *       Exit 0 if a TCP connection is established within T ms, 1 if not.
 *   wpp_traffic tcp-listen --bind B --port P --secs S
 *       Accepts (and closes) connections for S seconds.
 *
 * Exit status 2 on bad arguments or a failed socket setup.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
	const char *src, *dst, *bind, *frame;
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
			buf[4] = 1;
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
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double t = now_s();
		int ms = (int)((end - t) * 1000);

		if (t >= end)
			break;
		if (got && a->idle_ms && (t - last) * 1000 > a->idle_ms)
			break;
		if (got && a->idle_ms && ms > a->idle_ms)
			ms = a->idle_ms;
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
	printf("ready\n");
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
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { .secs = 5 };
	const char *mode;
	int c;

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
	fprintf(stderr, "wpp_traffic: unknown mode or missing arguments (see the file's header)\n");
	return 2;
}
