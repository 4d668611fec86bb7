// SPDX-License-Identifier: MIT
/*
 * The two ends of the front-door flood benchmark (bench/flood/run.sh), run
 * inside the namespaces that script creates:
 *
 *   wp_flood send --dev IFACE --dst-mac MAC --dst IP --port P
 *                 [--mix disallowed|forged|both] [--frame TENANT:KEYHEX]
 *                 [--legit-src IP] [--pps R] [--secs S] [--size BYTES] [--batch N]
 *       Floods prebuilt Ethernet/IPv4/UDP frames out of IFACE through an
 *       AF_PACKET socket that bypasses the qdisc (the cheapest sender user
 *       space has, so the receiving side is what the run measures).
 *       "disallowed": sources spread over 172.16.0.0/12, in no tenant's
 *       prefixes. "forged": from --legit-src (an allowed source), wirepath
 *       frames signed for TENANT and then corrupted, so only the tag check can
 *       tell. "both" alternates. --pps 0 sends as fast as one core can.
 *       Prints one JSON object: sent, secs, pps, the sender's CPU seconds.
 *
 *   wp_flood recv --bind IP --port P [--rules FILE] [--secs S]
 *       The datagram endpoint. Receives every datagram that reaches the UDP
 *       socket (recvmmsg, 64 at a time). With --rules it is the user-space
 *       twin front door: it rebuilds each datagram's Ethernet/IPv4/UDP
 *       headers in front of the payload and runs the same decision function
 *       as the XDP program (wp_twin_decide) before anything else touches it.
 *       Prints "ready", then at SIGTERM/SIGINT or after S seconds one JSON
 *       object: datagrams received, passed, dropped per reason, truncated
 *       (longer than a 9000-byte MTU carries: not decided), and this
 *       process's user and system CPU seconds (getrusage).
 *
 * Exit status 0, or 2 on bad arguments or a failed socket setup.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wirepath/policy.h"

#define FL_HDRS 42     /* Ethernet 14 + IPv4 20 + UDP 8 */
#define FL_FRAMES 4096 /* distinct prebuilt frames the sender cycles through */
#define FL_MAX_BATCH 256
/* Receive slot: headers rebuilt in front of the payload. It holds the
 * largest datagram of a 9000-byte MTU (8972 bytes), so the twin decides a
 * jumbo datagram whole, as the frags-aware XDP program does; a longer one
 * (reassembled from IP fragments, which XDP drops as such) is counted as
 * truncated and never decided on a cut copy. */
#define FL_SLOT (FL_HDRS + 9000)

struct args {
	const char *dev, *dst_mac, *dst, *bind, *mix, *frame, *legit_src, *rules;
	int port, size, batch;
	double pps, secs;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cpu_s(double *user, double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int die(const char *what)
{
	fprintf(stderr, "wp_flood: %s: %s\n", what, strerror(errno));
	return 2;
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Ethernet + IPv4 + UDP headers for a datagram of plen payload bytes. The IP
 * checksum is real: the kernel's IP input drops packets with a bad one before
 * netfilter sees them, which would flatter nftables. */
static void build_hdrs(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6], uint32_t saddr,
		       uint32_t daddr, uint16_t sport, uint16_t dport, size_t plen)
{
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	put16(f + 12, ETHERTYPE_IP);
	f += 14;
	memset(f, 0, 28);
	f[0] = 0x45;
	put16(f + 2, (uint16_t)(20 + 8 + plen));
	f[8] = 64;
	f[9] = IPPROTO_UDP;
	memcpy(f + 12, &saddr, 4); /* both in network order */
	memcpy(f + 16, &daddr, 4);
	put16(f + 10, ip_csum(f, 20));
	put16(f + 20, sport);
	put16(f + 22, dport);
	put16(f + 24, (uint16_t)(8 + plen));
	/* UDP checksum 0: none (allowed for IPv4). */
}

/* A wirepath DATA frame (docs/protocol.md) of plen bytes in all, signed as
 * `tenant` with key, then corrupted in its tag: only SipHash can tell. */
static void build_forged(uint8_t *p, size_t plen, uint32_t tenant, const uint8_t key[16],
			 uint64_t seq)
{
	uint32_t body = (uint32_t)(plen - 40);

	memset(p, 0, plen);
	memcpy(p, "WPF1", 4);
	p[4] = 2; /* frame version (src/core/frame.h) */
	p[5] = 1;
	for (int k = 0; k < 4; k++) {
		p[8 + k] = (uint8_t)(tenant >> (8 * k));
		p[24 + k] = (uint8_t)(body >> (8 * k));
	}
	memcpy(p + 16, &seq, 8); /* req_id: every frame differs */
	wp_frame_sign(key, p);
	p[33] ^= 0x40;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];

	if (!s || sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int do_send(const struct args *a)
{
	int forged = 0, disallowed = 0, fd, one = 1, rc;
	uint8_t dmac[6], smac[6], key[16] = { 0 };
	uint32_t tenant = 0, daddr, legit = 0;
	size_t plen = (size_t)(a->size > 0 ? a->size : 64), flen;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	struct mmsghdr *mm;
	struct iovec *iov;
	struct ifreq ifr;
	uint8_t *frames;
	long sent = 0, errs = 0;
	double t0, t1, u, s;
	int batch = a->batch > 0 && a->batch <= FL_MAX_BATCH ? a->batch : 64;

	if (!a->dev || !a->dst || !a->port || parse_mac(a->dst_mac, dmac) < 0) {
		fprintf(stderr, "wp_flood send: --dev, --dst-mac, --dst and --port are required\n");
		return 2;
	}
	if (!strcmp(a->mix, "forged") || !strcmp(a->mix, "both"))
		forged = 1;
	if (!strcmp(a->mix, "disallowed") || !strcmp(a->mix, "both"))
		disallowed = 1;
	if (!forged && !disallowed) {
		fprintf(stderr, "wp_flood send: --mix disallowed|forged|both\n");
		return 2;
	}
	if (forged && (!a->frame || wp_policy_tenant_key_parse(a->frame, &tenant, key) < 0 ||
		       !a->legit_src || inet_pton(AF_INET, a->legit_src, &legit) != 1)) {
		fprintf(stderr,
			"wp_flood send: forged frames need --frame TENANT:32HEX and --legit-src IP\n");
		return 2;
	}
	if (forged && plen < 40) {
		fprintf(stderr, "wp_flood send: --size must hold a 40-byte frame header\n");
		return 2;
	}
	if (inet_pton(AF_INET, a->dst, &daddr) != 1) {
		fprintf(stderr, "wp_flood send: --dst must be an IPv4 address\n");
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: this socket receives nothing */
	if (fd < 0)
		return die("AF_PACKET socket (needs CAP_NET_RAW)");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", a->dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		rc = die(a->dev);
		goto out_close_fd;
	}
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_ifindex = (int)if_nametoindex(a->dev);
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, dmac, 6);
	/* Straight to the driver: no qdisc lock or enqueue per packet. */
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		rc = die("PACKET_QDISC_BYPASS");
		goto out_close_fd;
	}

	flen = FL_HDRS + plen;
	frames = calloc(FL_FRAMES, flen);
	if (!frames) {
		rc = die("calloc");
		goto out_close_fd;
	}
	mm = calloc((size_t)batch, sizeof(*mm));
	if (!mm) {
		rc = die("calloc");
		goto out_free_frames;
	}
	iov = calloc((size_t)batch, sizeof(*iov));
	if (!iov) {
		rc = die("calloc");
		goto out_free_mm;
	}
	for (int i = 0; i < FL_FRAMES; i++) {
		uint8_t *f = frames + (size_t)i * flen;
		int forge = forged && (!disallowed || (i & 1));

		if (forge) {
			build_hdrs(f, dmac, smac, legit, daddr, (uint16_t)(20000 + i % 1000),
				   (uint16_t)a->port, plen);
			build_forged(f + FL_HDRS, plen, tenant, key, (uint64_t)i);
		} else {
			/* 172.16.0.0/12: 2^20 sources; spread the 4096 frames over it. */
			uint32_t src = htonl(0xac100000u | ((uint32_t)i * 257u & 0xfffffu));

			build_hdrs(f, dmac, smac, src, daddr, (uint16_t)(20000 + i % 1000),
				   (uint16_t)a->port, plen);
			memset(f + FL_HDRS, 0xa5, plen);
		}
	}
	for (int i = 0; i < batch; i++) {
		mm[i].msg_hdr.msg_name = &sll;
		mm[i].msg_hdr.msg_namelen = sizeof(sll);
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		iov[i].iov_len = flen;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	t0 = now_s();
	for (long next = 0; !stop;) {
		double t = now_s();
		int n;

		if (a->secs > 0 && t - t0 >= a->secs)
			break;
		if (a->pps > 0) {
			double ahead = (double)sent / a->pps - (t - t0);

			if (ahead > 0) {
				struct timespec ts = { (time_t)ahead,
						       (long)((ahead - (time_t)ahead) * 1e9) };

				nanosleep(&ts, NULL);
				continue;
			}
		}
		for (int i = 0; i < batch; i++)
			iov[i].iov_base = frames + (size_t)((next + i) % FL_FRAMES) * flen;
		n = sendmmsg(fd, mm, (unsigned)batch, 0);
		if (n < 0) {
			/* A full veth ring or a busy device: the frames were not sent. */
			if (errno == ENOBUFS || errno == EAGAIN || errno == EBUSY) {
				errs++;
				continue;
			}
			if (errno == EINTR)
				continue;
			rc = die("sendmmsg");
			goto out_free_iov;
		}
		sent += n;
		next += n;
	}
	t1 = now_s();
	cpu_s(&u, &s);
	printf("{\"sent\":%ld,\"secs\":%.6f,\"pps\":%.0f,\"send_errors\":%ld,\"frame_bytes\":%zu,"
	       "\"mix\":\"%s\",\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f}\n",
	       sent, t1 - t0, sent / (t1 - t0), errs, flen, a->mix, u, s);
	rc = 0;
out_free_iov:
	free(iov);
out_free_mm:
	free(mm);
out_free_frames:
	free(frames);
out_close_fd:
	close(fd);
	return rc;
}

static void recv_log(void *arg, enum wp_log_level level, const char *msg)
{
	fprintf(stderr, "wp_flood recv: %s\n", msg);
}

static int do_recv(const struct args *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET }, from[64];
	struct mmsghdr mm[64];
	struct iovec iov[64];
	struct wp_policy *pol = NULL;
	struct wp_twin *twin = NULL;
	uint64_t got = 0, pass = 0, truncated = 0, reasons[WP_POLICY_REASONS_MAX] = { 0 };
	static uint8_t slots[64][FL_SLOT];
	static const uint8_t zmac[6];
	int fd, big = 16 << 20, rc;
	double end, u, s;

	if (!a->bind || !a->port || inet_pton(AF_INET, a->bind, &sin.sin_addr) != 1) {
		fprintf(stderr, "wp_flood recv: --bind IPv4 and --port are required\n");
		return 2;
	}
	if (a->rules) {
		/* The parser says why through the process log hook. */
		wp_set_log(recv_log, NULL, WP_LOG_ERR);
		rc = wp_policy_parse_file(a->rules, &pol);
		if (rc < 0) {
			if (rc == -ENOMEM)
				fprintf(stderr, "wp_flood recv: %s: %s\n", a->rules, strerror(-rc));
			return 2;
		}
		if (wp_twin_create(pol, &twin) < 0) {
			rc = die("wp_twin_create");
			goto out_free_policy;
		}
	}
	sin.sin_port = htons((uint16_t)a->port);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		rc = die("socket");
		goto out_destroy_twin;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		rc = die("bind");
		goto out_close_fd;
	}
	for (int i = 0; i < 64; i++) {
		memset(&mm[i], 0, sizeof(mm[i]));
		iov[i].iov_base = slots[i] + FL_HDRS;
		iov[i].iov_len = FL_SLOT - FL_HDRS;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &from[i];
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready\n");
	fflush(stdout);
	end = a->secs > 0 ? now_s() + a->secs : 0;
	while (!stop && (!end || now_s() < end)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct timespec ts;
		uint64_t now;
		int n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		for (int i = 0; i < 64; i++)
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		n = recvmmsg(fd, mm, 64, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		got += (uint64_t)n;
		if (!twin) {
			pass += (uint64_t)n;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		for (int i = 0; i < n; i++) {
			size_t len = mm[i].msg_len;
			unsigned reason = 0;

			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				truncated++;
				continue;
			}
			/* The packet as the wire had it, so the twin decides exactly
			 * what XDP would (MACs are not part of any rule). */
			build_hdrs(slots[i], zmac, zmac, from[i].sin_addr.s_addr,
				   sin.sin_addr.s_addr, ntohs(from[i].sin_port), (uint16_t)a->port,
				   len);
			if (wp_twin_decide(twin, slots[i], FL_HDRS + len, now, &reason) ==
			    WP_VERDICT_PASS)
				pass++;
			if (reason < WP_POLICY_REASONS_MAX)
				reasons[reason]++;
		}
	}
	cpu_s(&u, &s);
	printf("{\"received\":%llu,\"passed\":%llu,\"truncated\":%llu,\"twin\":%s,"
	       "\"reasons\":{",
	       (unsigned long long)got, (unsigned long long)pass, (unsigned long long)truncated,
	       twin ? "true" : "false");
	for (unsigned r = 0, first = 1; r < wp_policy_reason_count() && r < WP_POLICY_REASONS_MAX;
	     r++) {
		if (!reasons[r])
			continue;
		printf("%s\"%s\":%llu", first ? "" : ",", wp_policy_reason_name(r),
		       (unsigned long long)reasons[r]);
		first = 0;
	}
	printf("},\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f}\n", u, s);
	rc = 0;
out_close_fd:
	close(fd);
out_destroy_twin:
	wp_twin_destroy(twin);
out_free_policy:
	wp_policy_free(pol);
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: wp_flood send --dev IFACE --dst-mac MAC --dst IP --port P\n"
		"                     [--mix disallowed|forged|both] [--frame TENANT:KEYHEX]\n"
		"                     [--legit-src IP] [--pps R] [--secs S] [--size BYTES] [--batch N]\n"
		"       wp_flood recv --bind IP --port P [--rules FILE] [--secs S]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "dst", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' },
		{ "mix", required_argument, NULL, 'x' },
		{ "frame", required_argument, NULL, 'f' },
		{ "legit-src", required_argument, NULL, 'l' },
		{ "pps", required_argument, NULL, 'r' },
		{ "secs", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "batch", required_argument, NULL, 'b' },
		{ "bind", required_argument, NULL, 'B' },
		{ "rules", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { .mix = "both" };
	const char *cmd;
	int c;

	if (argc < 2) {
		usage();
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			a.dev = optarg;
			break;
		case 'm':
			a.dst_mac = optarg;
			break;
		case 't':
			a.dst = optarg;
			break;
		case 'p':
			a.port = atoi(optarg);
			break;
		case 'x':
			a.mix = optarg;
			break;
		case 'f':
			a.frame = optarg;
			break;
		case 'l':
			a.legit_src = optarg;
			break;
		case 'r':
			a.pps = atof(optarg);
			break;
		case 's':
			a.secs = atof(optarg);
			break;
		case 'z':
			a.size = atoi(optarg);
			break;
		case 'b':
			a.batch = atoi(optarg);
			break;
		case 'B':
			a.bind = optarg;
			break;
		case 'R':
			a.rules = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (a.port <= 0 || a.port > 65535) {
		fprintf(stderr, "wp_flood: --port 1..65535 is required\n");
		return 2;
	}
	if (!strcmp(cmd, "send"))
		return do_send(&a);
	if (!strcmp(cmd, "recv"))
		return do_recv(&a);
	usage();
	return 2;
}
