// SPDX-License-Identifier: MIT
/*
 * The XDP program and the user-space twin are the same decision: run both on
 * one generated corpus (valid, denied, malformed, truncated, fragmented,
 * VLAN-tagged, IPv6, datagram frames good and forged, tenants over their
 * rates), the XDP side through BPF_PROG_TEST_RUN, and require identical
 * verdicts for every packet and identical counters at the end (per reason,
 * per verdict, per tenant, per rule), across two reloads.
 *
 * The last third runs rules1 with the xsk path's port set (7100, a datagram
 * port: allowed tenants' frames to it are redirected, a redirect that falls
 * back to XDP_PASS here as no AF_XDP socket is in the map).
 *
 * Both programs run, sharing the maps: the plain one (wpp_xdp) on half of
 * the frames that fit one buffer, the frags-aware one (wpp_xdp_frags) on the
 * other half and on every frame longer than that. A quarter of the corpus
 * is 3.4 to 9 KB (jumbo MTU), which BPF_PROG_TEST_RUN hands over in several
 * buffers (the first a page less head- and tailroom), and some IPv6 frames
 * carry kilobytes of extension headers, so their UDP header and frame lie
 * past the first buffer: those take the program's copy path and must still
 * pass exactly when the twin, given the whole frame, passes them.
 *
 * Both sides get the same clock: the test sets wpp_config.clock_ns before
 * each packet (a test-only field; zero in production) and passes the same
 * time to the twin, so token buckets decide identically.
 *
 * Needs root and BPF: skips (77) only when loading the program finds BPF
 * unavailable (EPERM, ENOSYS), never because a decision differs. A kernel
 * that refuses the frags-aware program (< 5.18) gets the plain one on
 * frames of one buffer, and the output says so.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "testlib.h"
#include "policy_pkt.h"
#include "wirepath/policy.h"
#include "policy/policy.h"
#include "policy.skel.h"
#include "policy/skel_maps.h"

#define KA "00112233445566778899aabbccddeeff"
#define KB "0f0e0d0c0b0a09080706050403020100"
#define KC "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
#define KD "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

static const char rules1[] = "default drop\n"
			     "datagram 7100 7200-7201\n"
			     "tenant acme id 1 key " KA " admin\n"
			     "  allow 10.99.1.0/24 fd99::2/128 fd99:1::/48\n"
			     "  ports udp:7000-7010 tcp:7000 udp:7100 7200-7201\n"
			     "tenant beta id 2 key " KB " redirect\n"
			     "  allow 10.99.2.0/24 10.99.1.128/25\n"
			     "  ports 8000 udp:7100\n"
			     "tenant slow id 3 key " KC "\n"
			     "  allow 10.99.3.0/24 fd99:3::/64\n"
			     "  ports udp:9000 udp:7100\n"
			     "  rate 50pps burst 5\n"
			     "tenant fat id 4 key " KD "\n"
			     "  allow 10.99.4.0/24\n"
			     "  ports 9000\n"
			     "  rate 200KB/s burst 3000\n";

/* Reload: acme stays (new ports), beta goes, gamma arrives, default flips. */
static const char rules2[] = "default pass\n"
			     "datagram 7100\n"
			     "tenant acme id 1 key " KA "\n"
			     "  allow 10.99.1.0/24 fd99::2/128\n"
			     "  ports udp:7001 udp:7100\n"
			     "  rate 100pps burst 10\n"
			     "tenant gamma id 5 key " KB "\n"
			     "  allow 10.99.2.0/24\n"
			     "  ports 8000\n"
			     "tenant slow id 3 key " KC "\n"
			     "  allow 10.99.3.0/24\n"
			     "  ports udp:9000\n"
			     "  rate 20pps burst 2\n";

static const uint8_t keys[4][16] = {
	{ 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
	  0xff },
	{ 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
	  0x00 },
	{ 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae,
	  0xaf },
	{ 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe,
	  0xbf },
};

static uint64_t rng = 0x657175697621ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* The frags-aware program loaded: the corpus may hold frames of several buffers. */
static int frags_ok;
#define KIND_DEEP 20    /* a valid frame whose UDP header may lie past the first buffer */
static size_t deep_end; /* where a KIND_DEEP frame's frame header ends */
#define BUF_MAX 32768

static struct wp_policy *parse(const char *text)
{
	struct wp_policy *p;

	test_log_capture();
	if (wp_policy_parse("equiv.rules", text, strlen(text), &p)) {
		fprintf(stderr, "parse: %s\n", test_log.last);
		exit(1);
	}
	return p;
}

/* One packet of the corpus into b; returns its length. */
static size_t gen(uint8_t *b, size_t cap, int *kind)
{
	static const char *const v4src[] = { "10.99.1.2", "10.99.1.200", "10.99.2.7", "10.99.3.3",
					     "10.99.4.4", "172.16.0.1",  "10.99.5.1" };
	static const char *const v6src[] = { "fd99::2", "fd99:1::9", "fd99:3::3", "fd99::3",
					     "2001:db8::1" };
	static const uint16_t ports[] = { 7000, 7001, 7005, 7010, 7011, 7100,
					  7200, 7201, 8000, 9000, 22,   65535 };
	static const uint8_t protos[] = { 17, 17, 17, 17, 6, 6, 6, 1, 58, 47 };
	static uint8_t pl[12000];
	struct pb p;
	size_t n, plen = below(4) ? below(64) : below(1200);
	int big = frags_ok && below(4) == 0; /* 3.4 to 9 KB */

	memset(&p, 0, sizeof(p));
	*kind = (int)below(20);
	if (big)
		plen = 3400 + below(5700);
	if (frags_ok && *kind == 19 && below(2)) {
		/* acme over IPv6 with 1..4 long extension headers: a signed frame */
		*kind = KIND_DEEP;
		pb_src6(&p, "fd99::2");
		p.proto = 17;
		p.sport = 5555;
		p.dport = 7100;
		p.v6_ext = 1 + (int)below(4);
		p.v6_ext_len = (uint8_t)(128 + below(128));
		p.payload = pl;
		p.plen = pb_frame(pl, 1, 0x100, (uint32_t)below(3000), keys[0], 0);
		deep_end = 14 + 40 + (size_t)p.v6_ext * ((size_t)p.v6_ext_len + 1) * 8 + 8 + 40;
		return pb_build(&p, b, cap);
	}
	if (*kind == 0) { /* ARP or another ethertype */
		p.ethertype = below(2) ? 0x0806 : (uint16_t)(0x88cc + below(3));
		p.nvlan = (int)below(4);
		memset(pl, 0, 28);
		p.payload = pl;
		p.plen = 28;
		return pb_build(&p, b, cap);
	}
	if (*kind <= 2) { /* clean traffic of the rate-limited tenants */
		pb_src4(&p, *kind == 1 ? "10.99.3.3" : "10.99.4.4");
		p.proto = 17;
		p.sport = 5555;
		p.dport = 9000;
		p.payload = pl;
		p.plen = *kind == 1 ? 10 : 900;
		memset(pl, 0x5a, p.plen);
		return pb_build(&p, b, cap);
	}
	p.v6 = below(3) == 0;
	if (p.v6)
		pb_src6(&p, v6src[below(5)]);
	else
		pb_src4(&p, v4src[below(7)]);
	p.proto = protos[below(sizeof(protos))];
	if (p.v6 && p.proto == 1)
		p.proto = 58;
	p.sport = (uint16_t)(1024 + below(60000));
	p.dport = ports[below(sizeof(ports) / sizeof(ports[0]))];
	if (below(4) == 0) /* not the xsk path's address (10.99.0.1) */
		p.dst4 = 0x0a630002;
	p.nvlan = below(4) == 0 ? (int)below(4) : 0;
	p.ip_opts = !p.v6 && below(6) == 0 ? 4 * (int)below(11) : 0;
	p.frag = below(15) == 0;
	p.frag_off = !p.v6 && below(20) == 0 ? (int)below(100) : 0;
	p.v6_ext = p.v6 && below(5) == 0 ? (int)below(7) : 0;
	p.v6_ext_len = big && below(2) ? (uint8_t)below(256) : 0;
	p.icmp_type = (uint8_t)(below(2) ? 133 + below(6) : below(256));
	for (size_t i = 0; i < plen; i++)
		pl[i] = (uint8_t)rnd();
	if (p.proto == 17 && (p.dport == 7100 || p.dport == 7200) && below(4)) {
		/* a frame: right or wrong tenant, right or wrong key, forged, cut */
		uint32_t tenant = (uint32_t)(below(4) ? 1 + below(4) : below(9));
		int k = (int)below(4), forge = below(5) == 0;

		plen = pb_frame(pl, tenant, 0x100,
				(uint32_t)(big ? 3400 + below(5600) : below(200)), keys[k], forge);
		if (below(10) == 0)
			plen = below(plen + 1);
	}
	p.payload = pl;
	p.plen = plen;
	n = pb_build(&p, b, cap);
	/* Malformations: cut anywhere, or a byte changed in the headers. */
	switch (below(12)) {
	case 0:
		n = below(n + 1);
		break;
	case 1:
		b[14 + below(60)] ^= (uint8_t)(1u << below(8));
		break;
	case 2:
		b[14 + 4 * p.nvlan] = (uint8_t)rnd(); /* IP version/IHL */
		break;
	default:
		break;
	}
	return n;
}

static int ncpu;

static void set_clock(const struct wpp_maps *m, uint64_t t)
{
	uint32_t zero = 0, active = 0;
	struct wpp_config c;

	CHECK(bpf_map_lookup_elem(m->fd[WPP_M_CTL], &zero, &active) == 0);
	CHECK(bpf_map_lookup_elem(m->fd[WPP_M_CONFIG], &active, &c) == 0);
	c.clock_ns = t;
	CHECK(bpf_map_update_elem(m->fd[WPP_M_CONFIG], &active, &c, BPF_ANY) == 0);
}

static void compare_stats(const struct wp_policy_stats *x, const struct wp_policy_stats *t)
{
	int bad = 0;

	for (unsigned r = 0; r < t->nreasons; r++) {
		if (x->reason[r].pkts != t->reason[r].pkts ||
		    x->reason[r].bytes != t->reason[r].bytes) {
			fprintf(stderr, "reason %s: xdp %llu pkts %llu B, twin %llu pkts %llu B\n",
				wp_policy_reason_name(r), (unsigned long long)x->reason[r].pkts,
				(unsigned long long)x->reason[r].bytes,
				(unsigned long long)t->reason[r].pkts,
				(unsigned long long)t->reason[r].bytes);
			bad = 1;
		}
	}
	for (int v = 0; v < 3; v++)
		if (x->verdict[v].pkts != t->verdict[v].pkts ||
		    x->verdict[v].bytes != t->verdict[v].bytes) {
			fprintf(stderr, "verdict %s differs\n", wp_verdict_name(v));
			bad = 1;
		}
	if (x->ntenants != t->ntenants || x->nrules != t->nrules ||
	    x->active_set != t->active_set) {
		fprintf(stderr, "tenants %u/%u rules %u/%u set %u/%u\n", x->ntenants, t->ntenants,
			x->nrules, t->nrules, x->active_set, t->active_set);
		exit(1);
	}
	for (uint32_t i = 0; i < t->ntenants; i++) {
		CHECK_EQ(x->tenants[i].id, t->tenants[i].id);
		CHECK_EQ(x->tenants[i].slot, t->tenants[i].slot);
		CHECK(!strcmp(x->tenants[i].name, t->tenants[i].name));
		for (unsigned r = 0; r < t->nreasons; r++)
			if (memcmp(&x->tenants[i].reason[r], &t->tenants[i].reason[r],
				   sizeof(struct wp_policy_count))) {
				fprintf(stderr, "tenant %s reason %s: xdp %llu twin %llu\n",
					t->tenants[i].name, wp_policy_reason_name(r),
					(unsigned long long)x->tenants[i].reason[r].pkts,
					(unsigned long long)t->tenants[i].reason[r].pkts);
				bad = 1;
			}
	}
	for (uint32_t i = 0; i < t->nrules; i++) {
		if (x->rules[i].rule != t->rules[i].rule ||
		    strcmp(x->rules[i].text, t->rules[i].text) ||
		    memcmp(&x->rules[i].c, &t->rules[i].c, sizeof(x->rules[i].c))) {
			fprintf(stderr, "rule #%u '%s' %llu vs #%u '%s' %llu\n", x->rules[i].rule,
				x->rules[i].text, (unsigned long long)x->rules[i].c.pkts,
				t->rules[i].rule, t->rules[i].text,
				(unsigned long long)t->rules[i].c.pkts);
			bad = 1;
		}
	}
	if (bad)
		exit(1);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 0) : 20000;
	struct policy_bpf *skel;
	struct wp_twin *tw;
	struct wp_policy *p1 = parse(rules1), *p2 = parse(rules2);
	struct wpp_maps m;
	struct wp_policy_stats xs, ts;
	uint64_t t = 1000000000ull, per_reason[WP_POLICY_REASONS_MAX] = { 0 };
	long ran = 0, ran_frags = 0, ran_plain = 0, ran_big = 0, deep_pass = 0;
	int prog_fd, frags_fd, frags_err;
	/* BPF_PROG_TEST_RUN's first buffer: a page less XDP headroom and the
	 * skb_shared_info tailroom (320 bytes on 64-bit builds). */
	size_t first_buf = (size_t)sysconf(_SC_PAGESIZE) - 256 - 320;

	test_watchdog(150);
	if (geteuid() != 0)
		SKIP("needs root for BPF_PROG_TEST_RUN");
	skel = wpp_skel_load(1, &frags_err);
	if (!skel) {
		int e = errno;

		if (e == EPERM || e == ENOSYS || e == EACCES)
			SKIP("cannot load BPF here: %s", strerror(e));
		fprintf(stderr, "loading policy.bpf.o failed: %s\n", strerror(e));
		return 1;
	}
	ncpu = libbpf_num_possible_cpus();
	wpp_maps_init(&m);
	wpp_maps_from_skel(&m, skel);
	prog_fd = bpf_program__fd(skel->progs.wpp_xdp);
	frags_fd = bpf_program__fd(skel->progs.wpp_xdp_frags);
	frags_ok = frags_fd >= 0;
	if (!frags_ok)
		printf("test_policy_equiv: the kernel refused the frags-aware program (%s): "
		       "frames of one buffer, plain program only\n",
		       strerror(frags_err));
	if (wpp_maps_apply(&m, p1, 1) < 0) {
		fprintf(stderr, "apply: %s\n", test_log.last);
		return 1;
	}
	CHECK_EQ(wp_twin_create(p1, &tw), 0);

	for (long i = 0; i < n; i++) {
		static uint8_t b[BUF_MAX];
		int kind, frags;
		size_t len = gen(b, sizeof(b), &kind);
		unsigned reason;
		int v, want;
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = b, .data_size_in = (__u32)len,
			    .repeat = 1);

		if (i == n / 3 || i == 2 * n / 3) { /* reload both, the same way */
			const struct wp_policy *np = i == n / 3 ? p2 : p1;

			/* The last third as the xsk path loads a context's
			 * rules: its port (a datagram port here) redirected for
			 * every allowed tenant (wpp_config.xsk_lo/hi). */
			if (np == p1) {
				p1->xsk_lo = p1->xsk_hi = 7100;
				p1->xsk_open = 0;
				p1->xsk_addr = 0x0a630001; /* 10.99.0.1 */
			}

			CHECK_EQ(wpp_maps_apply(&m, np, 0), 0);
			CHECK_EQ(wp_twin_reload(tw, np), 0);
		}
		/* Time: mostly bursts at one instant, sometimes a step. */
		if (below(16) == 0)
			t += below(8) ? below(5) * 1000000ull : below(3) * 1000000000ull;
		if (len < 14)
			continue; /* BPF_PROG_TEST_RUN refuses frames shorter than Ethernet */
		set_clock(&m, t);
		v = wp_twin_decide(tw, b, len, t, &reason);
		/* Frames over 2 KB may not fit the first buffer: frags-aware only. */
		frags = frags_ok && (len > 2048 || (i & 1));
		if (bpf_prog_test_run_opts(frags ? frags_fd : prog_fd, &o) < 0) {
			fprintf(stderr, "BPF_PROG_TEST_RUN (%s): %s (packet %ld, %zu bytes)\n",
				frags ? "frags-aware" : "plain", strerror(errno), i, len);
			return 1;
		}
		/* Redirect with no AF_XDP socket falls back to XDP_PASS. */
		want = v == WP_VERDICT_DROP ? XDP_DROP : XDP_PASS;
		if ((int)o.retval != want) {
			fprintf(stderr,
				"packet %ld (%zu bytes, kind %d, %s program): xdp %u, twin %s/%s\n",
				i, len, kind, frags ? "frags-aware" : "plain", o.retval,
				wp_verdict_name(v), wp_policy_reason_name(reason));
			return 1;
		}
		per_reason[reason]++;
		ran++;
		ran_frags += frags;
		ran_plain += !frags;
		ran_big += len > 4096;
		deep_pass += kind == KIND_DEEP && deep_end > first_buf && v != WP_VERDICT_DROP;
	}
	CHECK_EQ(wpp_maps_stats(&m, &xs), 0);
	CHECK_EQ(wp_twin_stats(tw, &ts), 0);
	compare_stats(&xs, &ts);
	for (unsigned r = 0; r < ts.nreasons; r++)
		CHECK_EQ(ts.reason[r].pkts, per_reason[r]);

	printf("test_policy_equiv: %ld packets on %d CPUs (%ld plain program, %ld frags-aware; "
	       "%ld over 4096 bytes, %ld passed with headers past the first %zu bytes), two "
	       "reloads; identical verdicts and counters. reasons:",
	       ran, ncpu, ran_plain, ran_frags, ran_big, deep_pass, first_buf);
	for (unsigned r = 0; r < ts.nreasons; r++)
		printf(" %s=%llu", wp_policy_reason_name(r), (unsigned long long)per_reason[r]);
	printf("\n");
	/* Every reason the corpus can reach was reached (not trunc_l2: < 14 B skipped). */
	for (unsigned r = 0; r < ts.nreasons; r++)
		if (r != WPP_R_TRUNC_L2 && r != WPP_R_VLAN_DEPTH && !per_reason[r]) {
			fprintf(stderr, "corpus never reached reason %s\n",
				wp_policy_reason_name(r));
			return 1;
		}
	if (frags_ok && (ran_big < n / 20 || deep_pass == 0 || ran_plain == 0)) {
		fprintf(stderr,
			"corpus too thin for frags: %ld frames over 4096 bytes, %ld deep "
			"passes, %ld on the plain program\n",
			ran_big, deep_pass, ran_plain);
		return 1;
	}
	wp_policy_stats_free(&xs);
	wp_policy_stats_free(&ts);
	wp_twin_destroy(tw);
	wp_policy_free(p1);
	wp_policy_free(p2);
	policy_bpf__destroy(skel);
	return 0;
}
