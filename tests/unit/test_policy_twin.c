// SPDX-License-Identifier: MIT
/*
 * The user-space twin on hand-built packets: each case names the verdict
 * and the reason it must get (valid, denied, malformed, fragmented,
 * VLAN-tagged, IPv6, datagram frames good and forged), the token buckets on
 * a controlled clock, the counters against what was sent, and a reload
 * (tenants that stay keep counters and slot; rule counters restart). No
 * privileges needed; tests/kern/ checks that XDP agrees with this.
 */
#include "testlib.h"
#include "policy_pkt.h"
#include "wirepath/policy.h"
#include "policy/policy.h"

#define KA "00112233445566778899aabbccddeeff"
#define KB "0f0e0d0c0b0a09080706050403020100"
#define KC "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
#define KD "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

static const char rules[] = "default drop\n"
			    "datagram 7100\n"
			    "tenant acme id 1 key " KA " admin\n"
			    "  allow 10.99.1.0/24 fd99::2/128\n"
			    "  ports udp:7000-7010 tcp:7000 udp:7100\n"
			    "tenant beta id 2 key " KB " redirect\n"
			    "  allow 10.99.2.0/24 10.99.1.128/25\n"
			    "  ports 8000\n"
			    "tenant slow id 3 key " KC "\n"
			    "  allow 10.99.3.0/24\n"
			    "  ports udp:9000\n"
			    "  rate 10pps burst 5\n"
			    "tenant fat id 4 key " KD "\n"
			    "  allow 10.99.4.0/24\n"
			    "  ports udp:9000\n"
			    "  rate 100KB/s burst 2000\n";

static const uint8_t ka[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t kb[16] = { 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
				0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };

static struct wp_twin *tw;
static uint64_t want_reason[WP_POLICY_REASONS_MAX], want_verdict[3];
static uint64_t now = 1000000000ull;

static struct wp_policy *parse(const char *text)
{
	struct wp_policy *p;

	test_log_capture();
	if (wp_policy_parse("t.rules", text, strlen(text), &p)) {
		fprintf(stderr, "parse: %s\n", test_log.last);
		exit(1);
	}
	return p;
}

#define EXPECT(pkt, len, verdict, reason) expect_at(__LINE__, pkt, len, verdict, reason)

static void expect_at(int line, const uint8_t *pkt, size_t len, int verdict, unsigned reason)
{
	unsigned r = 999;
	int v = wp_twin_decide(tw, pkt, len, now, &r);

	if (v != verdict || r != reason) {
		fprintf(stderr, "line %d: got %s/%s, want %s/%s\n", line, wp_verdict_name(v),
			wp_policy_reason_name(r), wp_verdict_name(verdict),
			wp_policy_reason_name(reason));
		exit(1);
	}
	want_reason[reason]++;
	want_verdict[verdict]++;
}

static size_t udp4(uint8_t *out, const char *src, uint16_t dport, const uint8_t *pl, size_t plen)
{
	struct pb p = { .proto = 17, .sport = 40000, .dport = dport, .payload = pl, .plen = plen };

	pb_src4(&p, src);
	return pb_build(&p, out, 2048);
}

static void test_acl(void)
{
	uint8_t b[2048], fr[256];
	struct pb p;
	size_t n;

	/* allowed, denied port, unknown source, longest prefix */
	n = udp4(b, "10.99.1.2", 7000, NULL, 0);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	n = udp4(b, "10.99.1.2", 7010, (const uint8_t *)"hello", 5);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	n = udp4(b, "10.99.1.2", 7011, NULL, 0);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_PORT);
	n = udp4(b, "172.16.0.1", 7000, NULL, 0);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_NO_TENANT);
	n = udp4(b, "10.99.1.200", 8000, NULL, 0); /* beta's /25 inside acme's /24 */
	EXPECT(b, n, WP_VERDICT_REDIRECT, WPP_R_REDIRECT);
	n = udp4(b, "10.99.1.200", 7000, NULL, 0);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_PORT);

	/* TCP: tcp:7000 only */
	memset(&p, 0, sizeof(p));
	p.proto = 6;
	p.sport = 40000;
	p.dport = 7000;
	pb_src4(&p, "10.99.1.2");
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	p.dport = 7001;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_PORT);

	/* IPv6 */
	memset(&p, 0, sizeof(p));
	p.proto = 17;
	p.dport = 7005;
	pb_src6(&p, "fd99::2");
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	p.v6_ext = 4; /* the most we walk */
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	p.v6_ext = 5;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_IPV6_EXT);
	p.v6_ext = 1;
	p.frag = 1;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_FRAGMENT);
	p.v6_ext = 0;
	p.frag = 0;
	pb_src6(&p, "fd99::3");
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_NO_TENANT);
	p.proto = 58;
	p.icmp_type = 135; /* neighbour solicitation */
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_NDP);
	p.icmp_type = 128; /* echo request */
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_OTHER_L4);

	/* L2: ARP, other ethertypes, VLAN tags */
	memset(&p, 0, sizeof(p));
	p.ethertype = 0x0806;
	p.payload = fr;
	p.plen = 28;
	memset(fr, 0, 28);
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_ARP);
	p.ethertype = 0x88cc; /* LLDP */
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_NON_IP);
	p.nvlan = 2;
	p.ethertype = 0x0806;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_ARP);
	memset(&p, 0, sizeof(p));
	p.proto = 17;
	p.dport = 7000;
	pb_src4(&p, "10.99.1.2");
	p.nvlan = 2;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	p.nvlan = 3;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_VLAN_DEPTH);
	p.nvlan = 1;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, 14 + 2, WP_VERDICT_DROP, WPP_R_TRUNC_L2); /* tag cut short */
	EXPECT(b, 10, WP_VERDICT_DROP, WPP_R_TRUNC_L2);
	EXPECT(b, 0, WP_VERDICT_DROP, WPP_R_TRUNC_L2);

	/* IPv4 options, fragments, malformed headers */
	p.nvlan = 0;
	p.ip_opts = 40;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	p.ip_opts = 0;
	p.frag = 1;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_FRAGMENT);
	p.frag = 0;
	p.frag_off = 100;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_FRAGMENT);
	p.frag_off = 0;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, 14 + 10, WP_VERDICT_DROP, WPP_R_BAD_IP); /* IP header cut */
	EXPECT(b, n - 1, WP_VERDICT_DROP, WPP_R_BAD_IP);   /* tot_len beyond the packet */
	b[14] = 0x44;                                      /* IHL 4 */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_IP);
	b[14] = 0x55; /* version 5 */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_IP);
	b[14] = 0x45;
	b[14 + 20 + 4] = 0; /* UDP length 100 > what IP carries */
	b[14 + 20 + 5] = 100;
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_L4);
	b[14 + 20 + 5] = 4; /* below the UDP header */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_L4);
	memset(&p, 0, sizeof(p));
	p.proto = 6;
	p.dport = 7000;
	pb_src4(&p, "10.99.1.2");
	n = pb_build(&p, b, sizeof(b));
	b[14 + 20 + 12] = 4 << 4; /* data offset 16 bytes */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_L4);
	b[14 + 20 + 12] = 5 << 4;
	b[14 + 3] = 20 + 10; /* tot_len: only 10 bytes of TCP */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_L4);
	p.proto = 1;
	n = pb_build(&p, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_OTHER_L4);
}

static void test_frames(void)
{
	uint8_t b[2048], fr[512];
	size_t n, f;

	f = pb_frame(fr, 1, 0x100, 16, ka, 0);
	n = udp4(b, "10.99.1.2", 7100, fr, f);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	f = pb_frame(fr, 1, 0x100, 16, ka, 1); /* forged tag */
	n = udp4(b, "10.99.1.2", 7100, fr, f);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_AUTH);
	f = pb_frame(fr, 1, 0x100, 16, kb, 0); /* someone else's key */
	n = udp4(b, "10.99.1.2", 7100, fr, f);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_AUTH);
	f = pb_frame(fr, 2, 0x100, 16, kb, 0); /* beta's frame from acme's address */
	n = udp4(b, "10.99.1.2", 7100, fr, f);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_TENANT_MISMATCH);
	f = pb_frame(fr, 1, 0x100, 16, ka, 0);
	n = udp4(b, "10.99.1.2", 7100, fr, 30); /* shorter than a header */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_FRAME);
	n = udp4(b, "10.99.1.2", 7100, fr, f - 1); /* len says 16, 15 follow */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_FRAME);
	fr[0] = 'X';
	n = udp4(b, "10.99.1.2", 7100, fr, f);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_FRAME);
	/* a port that is not a datagram port: no frame check */
	n = udp4(b, "10.99.1.2", 7001, fr, f);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
}

/*
 * Frames longer than a page, to a 9000-byte MTU and past it: the twin takes
 * the whole frame, checks lengths against all of it and reads headers
 * wherever they are (XDP gets such frames in several buffers and must agree:
 * tests/kern/test_policy_equiv.c). A twin of its own, so the counts of the
 * other cases stay as they are.
 */
static void test_jumbo(void)
{
	static uint8_t b[70000], fr[66000];
	struct wp_twin *outer = tw;
	struct wp_policy *p = parse(rules);
	struct wp_policy_stats s;
	uint64_t pass_bytes = 0;
	size_t n;
	struct pb q;

	CHECK_EQ(wp_twin_create(p, &tw), 0);
	wp_policy_free(p);
	memset(&q, 0, sizeof(q));
	q.proto = 17;
	q.sport = 40000;
	q.dport = 7100;
	q.payload = fr;
	pb_src4(&q, "10.99.1.2");
	for (int i = 0; i < 2; i++) { /* 5000 and 8900 byte payloads: 5054, 8954 bytes */
		q.plen = pb_frame(fr, 1, 0x100, i ? 8900 : 5000, ka, 0);
		n = pb_build(&q, b, sizeof(b));
		CHECK_EQ(n, 14 + 20 + 8 + q.plen);
		EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
		pass_bytes += n;
		/* cut on the wire after one page: the IP length says more */
		EXPECT(b, 4096, WP_VERDICT_DROP, WPP_R_BAD_IP);
		q.plen--; /* len says one byte more than follows */
		n = pb_build(&q, b, sizeof(b));
		EXPECT(b, n, WP_VERDICT_DROP, WPP_R_BAD_FRAME);
	}
	q.plen = pb_frame(fr, 1, 0x100, 8900, ka, 1); /* forged */
	n = pb_build(&q, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_AUTH);
	q.plen = pb_frame(fr, 2, 0x100, 8900, kb, 0); /* beta's frame from acme */
	n = pb_build(&q, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_TENANT_MISMATCH);
	/* a plain datagram of 64000 bytes (GRO or loopback sizes): no limit */
	q.dport = 7001;
	q.plen = 64000;
	memset(fr, 0x5a, q.plen);
	n = pb_build(&q, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	pass_bytes += n;
	/* IPv6, two 2048-byte extension headers: UDP starts past the first page */
	pb_src6(&q, "fd99::2");
	q.dport = 7100;
	q.v6_ext = 2;
	q.v6_ext_len = 255;
	q.plen = pb_frame(fr, 1, 0x100, 1000, ka, 0);
	n = pb_build(&q, b, sizeof(b));
	CHECK_EQ(n, 14 + 40 + 2 * 2048 + 8 + q.plen);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	pass_bytes += n;
	q.v6_ext = 4; /* the most walked: 14 + 40 + 8192 bytes before UDP */
	n = pb_build(&q, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	pass_bytes += n;
	q.v6_ext = 5;
	n = pb_build(&q, b, sizeof(b));
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_IPV6_EXT);
	EXPECT(b, 14 + 40 + 3000, WP_VERDICT_DROP, WPP_R_BAD_IP); /* cut in the 2nd header */
	CHECK_EQ(wp_twin_stats(tw, &s), 0);
	CHECK_EQ(s.reason[WPP_R_PASS].pkts, 5);
	CHECK_EQ(s.reason[WPP_R_PASS].bytes, pass_bytes);
	wp_policy_stats_free(&s);
	wp_twin_destroy(tw);
	tw = outer;
}

static void test_rate(void)
{
	uint8_t b[2048], pl[1024];
	size_t n;

	memset(pl, 0xab, sizeof(pl));
	/* 10 pps, burst 5: five pass at once, then one per 100 ms */
	n = udp4(b, "10.99.3.9", 9000, NULL, 0);
	for (int i = 0; i < 5; i++)
		EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	for (int i = 0; i < 3; i++)
		EXPECT(b, n, WP_VERDICT_DROP, WPP_R_RATE_PPS);
	now += 99 * 1000000ull;
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_RATE_PPS);
	now += 1000000ull; /* 100 ms: one token */
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_RATE_PPS);
	now += 10ull * 1000000000ull; /* long idle: the bucket is full, not fuller */
	for (int i = 0; i < 5; i++)
		EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_RATE_PPS);

	/* 100 KB/s, burst 2000 B: 1000-byte packets */
	n = udp4(b, "10.99.4.9", 9000, pl, 1000 - 42);
	CHECK_EQ(n, 1000);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_RATE_BPS);
	now += 9 * 1000000ull; /* 900 bytes: not enough */
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_RATE_BPS);
	now += 1000000ull; /* 1000 bytes */
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	/* a small packet still fits where a big one did not */
	n = udp4(b, "10.99.4.9", 9000, NULL, 0);
	now += 1000000ull; /* 100 bytes */
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
}

static void test_counters(int per_tenant)
{
	struct wp_policy_stats s;
	uint64_t sum = 0;

	CHECK_EQ(wp_twin_stats(tw, &s), 0);
	CHECK_EQ(s.nreasons, wp_policy_reason_count());
	for (unsigned r = 0; r < s.nreasons; r++) {
		if (s.reason[r].pkts != want_reason[r]) {
			fprintf(stderr, "reason %s: counted %llu, sent %llu\n",
				wp_policy_reason_name(r), (unsigned long long)s.reason[r].pkts,
				(unsigned long long)want_reason[r]);
			exit(1);
		}
		sum += s.reason[r].pkts;
	}
	for (int v = 0; v < 3; v++)
		CHECK_EQ(s.verdict[v].pkts, want_verdict[v]);
	CHECK_EQ(sum, want_verdict[0] + want_verdict[1] + want_verdict[2]);
	if (!per_tenant) {
		wp_policy_stats_free(&s);
		return;
	}
	CHECK_EQ(s.ntenants, 4);
	CHECK(!strcmp(s.tenants[0].name, "acme"));
	CHECK_EQ(s.tenants[2].reason[WPP_R_PASS].pkts, 11); /* slow: 5 + 1 + 5 */
	CHECK_EQ(s.tenants[2].reason[WPP_R_RATE_PPS].pkts, 6);
	CHECK_EQ(s.tenants[3].reason[WPP_R_RATE_BPS].pkts, 2);
	CHECK_EQ(s.tenants[1].reason[WPP_R_REDIRECT].pkts, 1);
	/* rules: acme allow 10.99.1.0/24 is rule 0; udp:7100 is rule 4 */
	CHECK(!strcmp(s.rules[0].text, "acme allow 10.99.1.0/24"));
	CHECK(!strcmp(s.rules[4].text, "acme ports udp:7100"));
	CHECK_EQ(s.rules[4].c.pkts, 7); /* every datagram to 7100 from acme */
	{
		int n = wp_policy_stats_json(&s, NULL, 0);
		char *j = malloc((size_t)n + 1);

		CHECK(j);
		CHECK_EQ(wp_policy_stats_json(&s, j, (size_t)n + 1), n);
		CHECK(strstr(j, "\"tenant_mismatch\":{\"pkts\":1,"));
		CHECK(j[0] == '{' && j[n - 1] == '}');
		free(j);
	}
	wp_policy_stats_free(&s);
}

static void test_reload(void)
{
	static const char next[] = "default pass\n"
				   "tenant acme id 1 key " KA "\n"
				   "  allow 10.99.1.0/24\n"
				   "  ports udp:7001\n"
				   "tenant gamma id 5 key " KB "\n"
				   "  allow 10.99.2.0/24\n"
				   "  ports 8000\n";
	struct wp_policy *p = parse(next);
	struct wp_policy_stats before, after;
	uint8_t b[2048];
	size_t n;
	uint32_t beta_slot = 0, acme_slot = 0;

	CHECK_EQ(wp_twin_stats(tw, &before), 0);
	for (uint32_t i = 0; i < before.ntenants; i++) {
		if (!strcmp(before.tenants[i].name, "beta"))
			beta_slot = before.tenants[i].slot;
		if (!strcmp(before.tenants[i].name, "acme"))
			acme_slot = before.tenants[i].slot;
	}
	CHECK_EQ(wp_twin_reload(tw, p), 0);
	wp_policy_free(p);
	CHECK_EQ(wp_twin_stats(tw, &after), 0);
	CHECK_EQ(after.active_set, 1);
	CHECK_EQ(after.ntenants, 2);
	for (uint32_t i = 0; i < after.ntenants; i++) {
		const struct wp_policy_tenant_stats *t = &after.tenants[i];

		if (!strcmp(t->name, "acme")) {
			/* stays: same slot, counters carried on */
			CHECK_EQ(t->slot, acme_slot);
			CHECK(t->reason[WPP_R_PASS].pkts > 0);
		} else {
			CHECK(!strcmp(t->name, "gamma"));
			/* new: never the slot the old set still used for beta */
			CHECK(t->slot != beta_slot);
			CHECK_EQ(t->reason[WPP_R_PASS].pkts, 0);
		}
	}
	for (uint32_t i = 0; i < after.nrules; i++)
		CHECK_EQ(after.rules[i].c.pkts, 0); /* a new rule set counts afresh */
	for (unsigned r = 0; r < after.nreasons; r++)
		CHECK_EQ(after.reason[r].pkts, before.reason[r].pkts); /* global ones go on */
	wp_policy_stats_free(&before);
	wp_policy_stats_free(&after);

	n = udp4(b, "10.99.1.2", 7000, NULL, 0);
	EXPECT(b, n, WP_VERDICT_DROP, WPP_R_PORT);
	n = udp4(b, "10.99.1.2", 7001, NULL, 0);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	n = udp4(b, "10.99.3.9", 9000, NULL, 0); /* slow is gone: default is now pass */
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_NO_TENANT);
	n = udp4(b, "10.99.2.9", 8000, NULL, 0);
	EXPECT(b, n, WP_VERDICT_PASS, WPP_R_PASS);
	/* and back: a second reload reuses set 0 */
	p = parse(rules);
	CHECK_EQ(wp_twin_reload(tw, p), 0);
	wp_policy_free(p);
	n = udp4(b, "10.99.1.200", 8000, NULL, 0);
	EXPECT(b, n, WP_VERDICT_REDIRECT, WPP_R_REDIRECT);
	test_counters(0);
}

/* The xsk path's port (wpp_config.xsk_*): without a policy (xsk_open) every
 * source's datagrams to it are redirected and everything else passes; with
 * rules, only an allowed tenant's datagrams to it. Same decide.h as XDP. */
static void test_xsk(void)
{
	struct wp_policy *p = parse("default pass\n"
				    "tenant acme id 1 key " KA "\n"
				    "  allow 10.99.1.0/24\n"
				    "  ports udp:7000 udp:7300\n");
	struct wp_twin *t2;
	uint8_t b[2048];
	size_t n;

	p->xsk_lo = p->xsk_hi = 7300;
	p->xsk_addr = 0x0a630001; /* 10.99.0.1, udp4's destination */
	CHECK_EQ(wp_twin_create(p, &t2), 0);
	n = udp4(b, "10.99.1.2", 7300, NULL, 0);
	CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_REDIRECT);
	{
		/* The same port on another address is not the path's: the
		 * tenant's rules decide it (allowed: passed to the kernel). */
		struct pb q = { .proto = 17, .sport = 40000, .dport = 7300, .dst4 = 0x0a630002 };

		pb_src4(&q, "10.99.1.2");
		n = pb_build(&q, b, sizeof(b));
		CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_PASS);
	}
	n = udp4(b, "10.99.1.2", 7000, NULL, 0); /* allowed, not the path's port */
	CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_PASS);
	n = udp4(b, "172.16.0.1", 7300, NULL, 0); /* no tenant: default, not redirected */
	CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_PASS);
	wp_twin_destroy(t2);

	p->ntenants = 0; /* the path without a policy */
	p->n4 = p->n6 = p->nprefixes = 0;
	p->xsk_open = 1;
	CHECK_EQ(wp_twin_create(p, &t2), 0);
	n = udp4(b, "172.16.0.1", 7300, NULL, 0);
	CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_REDIRECT);
	n = udp4(b, "172.16.0.1", 7301, NULL, 0);
	CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_PASS);
	{
		struct pb q = { .proto = 17, .sport = 40000, .dport = 7300, .dst4 = 0x0a630002 };

		pb_src4(&q, "172.16.0.1"); /* no tenant, default pass */
		n = pb_build(&q, b, sizeof(b));
		CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_PASS);
		pb_src6(&q, "fd99::2"); /* IPv6: never the path's */
		n = pb_build(&q, b, sizeof(b));
		CHECK_EQ(wp_twin_decide(t2, b, n, now, NULL), WP_VERDICT_PASS);
	}
	wp_twin_destroy(t2);
	wp_policy_free(p);
}

int main(void)
{
	struct wp_policy *p;

	test_watchdog(30);
	p = parse(rules);
	CHECK_EQ(wp_twin_create(p, &tw), 0);
	wp_policy_free(p);
	test_acl();
	test_frames();
	test_rate();
	test_counters(1);
	test_reload();
	memset(want_reason, 0, sizeof(want_reason));
	memset(want_verdict, 0, sizeof(want_verdict));
	test_jumbo();
	wp_twin_destroy(tw);
	test_xsk();
	printf("test_policy_twin: all verdicts, reasons and counters as expected\n");
	return 0;
}
