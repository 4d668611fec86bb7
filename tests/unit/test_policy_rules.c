// SPDX-License-Identifier: MIT
/*
 * The rules parser: a good file gives the expected policy and survives a
 * dump/parse round trip; every bad file gives no policy and exactly the
 * expected "FILE:LINE: reason" line, logged once through the process log
 * hook (wp_set_log). No privileges needed.
 */
#include "testlib.h"
#include "wirepath/policy.h"
#include "policy/policy.h"

#define KA "00112233445566778899aabbccddeeff"
#define KB "0f0e0d0c0b0a09080706050403020100"
/* SHA-256 digests as api_key lines give them */
#define H0 "000000000000000000000000000000000000000000000000000000000000000"
#define H1 "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2"
#define H1_63 "e26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2"

static const char good[] = "# a comment line\n"
			   "default drop   # trailing comment\n"
			   "datagram 7100-7101 7200\n"
			   "\n"
			   "tenant acme id 1 key " KA " admin\n"
			   "  allow 10.0.0.0/8 fd00::/8\n"
			   "  allow 192.168.1.7\n"
			   "  ports 7000 7001-7010 udp:7100 tcp:22\n"
			   "  rate 10000pps burst 2000 ; 100MB/s burst 1MB\n"
			   "tenant beta id 2 key " KB " redirect confidential\n"
			   "\tallow 10.1.0.0/16\n"
			   "\tports tcp:80\n"
			   "\trate 5 kpps burst 50;2MiB/s burst 64KiB\n";

static struct wp_policy *parse_ok(const char *text)
{
	struct wp_policy *p = NULL;
	int ret;

	test_log_capture();
	ret = wp_policy_parse("t.rules", text, strlen(text), &p);
	if (ret) {
		fprintf(stderr, "unexpected parse error %d: %s\n", ret, test_log.last);
		exit(1);
	}
	CHECK(p);
	CHECK_EQ(test_log.errs, 0);
	return p;
}

static void test_good(void)
{
	struct wp_policy *p = parse_ok(good), *q;
	struct wp_policy_tenant t;
	char *d1, *d2;
	int n1, n2;

	CHECK_EQ(wp_policy_tenant_count(p), 2);
	CHECK_EQ(wp_policy_default(p), WP_VERDICT_DROP);
	CHECK_EQ(p->ndgram, 2);
	CHECK_EQ(p->dgram[0].lo, 7100);
	CHECK_EQ(p->dgram[0].hi, 7101);
	CHECK_EQ(wp_policy_tenant_get(p, 0, &t), 0);
	CHECK(!strcmp(t.name, "acme"));
	CHECK_EQ(t.id, 1);
	CHECK_EQ(t.flags, WP_POLICY_TENANT_ADMIN);
	CHECK_EQ(t.key[0], 0x00);
	CHECK_EQ(t.key[15], 0xff);
	CHECK_EQ(t.pps, 10000);
	CHECK_EQ(t.pps_burst, 2000);
	CHECK_EQ(t.bps, 100000000);
	CHECK_EQ(t.bps_burst, 1000000);
	CHECK_EQ(t.nprefixes, 3);
	CHECK_EQ(t.nranges, 4);
	CHECK_EQ(p->tenants[0].ranges[0].proto, WPP_P_TCP | WPP_P_UDP);
	CHECK_EQ(p->tenants[0].ranges[2].proto, WPP_P_UDP);
	CHECK_EQ(p->tenants[0].ranges[3].proto, WPP_P_TCP);
	CHECK_EQ(p->prefixes[2].len, 32); /* a bare address is a /32 */
	CHECK_EQ(wp_policy_tenant_get(p, 1, &t), 0);
	CHECK_EQ(t.flags, WP_POLICY_TENANT_REDIRECT | WP_POLICY_TENANT_CONFIDENTIAL);
	CHECK_EQ(t.pps, 5000);
	CHECK_EQ(t.pps_burst, 50);
	CHECK_EQ(t.bps, 2u << 20);
	CHECK_EQ(t.bps_burst, 64u << 10);
	CHECK_EQ(wp_policy_tenant_get(p, 2, &t), -ENOENT);

	/* dump (with keys) parses back to the same dump */
	n1 = wp_policy_dump(p, WP_POLICY_DUMP_KEYS, NULL, 0);
	d1 = malloc((size_t)n1 + 1);
	CHECK(d1);
	CHECK_EQ(wp_policy_dump(p, WP_POLICY_DUMP_KEYS, d1, (size_t)n1 + 1), n1);
	q = parse_ok(d1);
	n2 = wp_policy_dump(q, WP_POLICY_DUMP_KEYS, NULL, 0);
	d2 = malloc((size_t)n2 + 1);
	CHECK(d2);
	wp_policy_dump(q, WP_POLICY_DUMP_KEYS, d2, (size_t)n2 + 1);
	if (strcmp(d1, d2)) {
		fprintf(stderr, "dump round trip differs:\n%s\n---\n%s\n", d1, d2);
		exit(1);
	}
	CHECK(strstr(d1, "tenant acme id 1 key " KA " admin\n"));
	CHECK(strstr(d1, "  rate 10kpps burst 2000 ; 100MB/s burst 1000000\n"));
	free(d1);
	free(d2);
	/* without keys they are redacted */
	n1 = wp_policy_dump(p, 0, NULL, 0);
	d1 = malloc((size_t)n1 + 1);
	wp_policy_dump(p, 0, d1, (size_t)n1 + 1);
	CHECK(!strstr(d1, KA));
	CHECK(strstr(d1, "key redacted"));
	free(d1);
	wp_policy_free(q);
	wp_policy_free(p);

	/* minimal: only a default */
	p = parse_ok("default pass");
	CHECK_EQ(wp_policy_default(p), WP_VERDICT_PASS);
	CHECK_EQ(wp_policy_tenant_count(p), 0);
	wp_policy_free(p);
}

/* The gateway statements: parsed, read through the public accessor, dumped
 * and parsed back; the XDP side (wp_policy_tenant_get) is unchanged. */
static void test_gateway(void)
{
	static const char text[] =
		"default drop\n"
		"tenant acme id 1 key " KA "\n"
		"  allow 10.0.0.0/8\n"
		"  api_key sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		"  api_key sha256:" H1 "   # a second token\n"
		"  requests 50/s burst 100\n"
		"  tokens 5000/m burst 20k\n"
		"  concurrency 16\n"
		"  models wp-stub gpt-*\n"
		"  models meta-llama/Llama-3.1-8B-Instruct\n"
		"  tools everything_* echo\n"
		"tenant beta id 2 key " KB "\n"
		"  requests 3600/h burst 1\n";
	struct wp_policy *p = parse_ok(text), *q;
	struct wp_policy_gateway g = { .sz = sizeof(g) };
	struct wp_policy_tenant t;
	char *d1, *d2;
	int n1, n2;

	CHECK_EQ(wp_policy_tenant_get(p, 0, &t), 0);
	CHECK_EQ(t.nprefixes, 1);
	CHECK_EQ(t.pps, 0);
	CHECK_EQ(wp_policy_tenant_gateway(p, 0, &g), 0);
	CHECK_EQ(g.sz, sizeof(g));
	CHECK_EQ(g.nkeys, 2);
	CHECK_EQ(g.api_key_sha256[0][0], 0x9f);
	CHECK_EQ(g.api_key_sha256[0][31], 0x08);
	CHECK_EQ(g.api_key_sha256[1][0], 0xee);
	CHECK_EQ(g.requests, 50);
	CHECK_EQ(g.requests_period_s, 1);
	CHECK_EQ(g.requests_burst, 100);
	CHECK_EQ(g.tokens, 5000);
	CHECK_EQ(g.tokens_period_s, 60);
	CHECK_EQ(g.tokens_burst, 20000);
	CHECK_EQ(g.concurrency, 16);
	CHECK_EQ(g.nmodels, 3);
	CHECK(!strcmp(g.models[0], "wp-stub"));
	CHECK(!strcmp(g.models[1], "gpt-*"));
	CHECK(!strcmp(g.models[2], "meta-llama/Llama-3.1-8B-Instruct"));
	CHECK_EQ(g.ntools, 2);
	CHECK(!strcmp(g.tools[0], "everything_*"));
	CHECK(!strcmp(g.tools[1], "echo"));
	CHECK_EQ(wp_policy_tenant_gateway(p, 1, &g), 0);
	CHECK_EQ(g.nkeys, 0);
	CHECK_EQ(g.requests, 3600);
	CHECK_EQ(g.requests_period_s, 3600);
	CHECK_EQ(g.tokens, 0);
	CHECK_EQ(g.concurrency, 0);
	CHECK_EQ(g.nmodels + g.ntools, 0);
	CHECK_EQ(wp_policy_tenant_gateway(p, 2, &g), -ENOENT);
	g.sz = sizeof(g) - 1;
	CHECK_EQ(wp_policy_tenant_gateway(p, 0, &g), -EINVAL);
	CHECK_EQ(wp_policy_tenant_gateway(p, 0, NULL), -EINVAL);

	n1 = wp_policy_dump(p, WP_POLICY_DUMP_KEYS, NULL, 0);
	d1 = malloc((size_t)n1 + 1);
	CHECK(d1);
	wp_policy_dump(p, WP_POLICY_DUMP_KEYS, d1, (size_t)n1 + 1);
	CHECK(strstr(d1,
		     "  api_key sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f"
		     "00a08\n  api_key sha256:" H1 "\n  requests 50/s burst 100\n  tokens "
		     "5000/m burst 20000\n  concurrency 16\n  models wp-stub gpt-* "
		     "meta-llama/Llama-3.1-8B-Instruct\n  tools everything_* echo\n"));
	CHECK(strstr(d1, "  requests 3600/h burst 1\n"));
	q = parse_ok(d1);
	n2 = wp_policy_dump(q, WP_POLICY_DUMP_KEYS, NULL, 0);
	d2 = malloc((size_t)n2 + 1);
	CHECK(d2);
	wp_policy_dump(q, WP_POLICY_DUMP_KEYS, d2, (size_t)n2 + 1);
	CHECK(!strcmp(d1, d2));
	free(d1);
	free(d2);
	/* redacted dumps hide the digests too (a weak token's digest can be
	 * brute-forced) */
	n1 = wp_policy_dump(p, 0, NULL, 0);
	d1 = malloc((size_t)n1 + 1);
	CHECK(d1);
	wp_policy_dump(p, 0, d1, (size_t)n1 + 1);
	CHECK(!strstr(d1, H1));
	CHECK(strstr(d1, "api_key sha256:redacted\n"));
	free(d1);
	wp_policy_free(q);
	wp_policy_free(p);

	/* 32 long globs dump onto several lines, each short enough to parse */
	{
		char *big = malloc(8192), *d;
		size_t n;
		int k;

		CHECK(big);
		if (!big)
			return;
		n = (size_t)sprintf(big, "default drop\ntenant a id 1 key " KA "\n");
		for (int i = 0; i < 32; i++) {
			if (i % 6 == 0)
				n += (size_t)sprintf(big + n, "%smodels", i ? "\n" : "");
			n += (size_t)sprintf(big + n, " m%02d-", i);
			memset(big + n, 'x', 120);
			n += 120;
			big[n] = '\0';
		}
		strcpy(big + n, "\n");
		p = parse_ok(big);
		k = wp_policy_dump(p, WP_POLICY_DUMP_KEYS, NULL, 0);
		d = malloc((size_t)k + 1);
		CHECK(d);
		wp_policy_dump(p, WP_POLICY_DUMP_KEYS, d, (size_t)k + 1);
		q = parse_ok(d);
		CHECK_EQ(wp_policy_tenant_gateway(q, 0,
						  &(struct wp_policy_gateway){ .sz = sizeof(g) }),
			 0);
		g.sz = sizeof(g);
		CHECK_EQ(wp_policy_tenant_gateway(q, 0, &g), 0);
		CHECK_EQ(g.nmodels, 32);
		CHECK(!strncmp(g.models[31], "m31-xxx", 7));
		wp_policy_free(q);
		wp_policy_free(p);
		free(d);
		free(big);
	}
}

struct bad {
	const char *text;
	const char *msg;
};

#define T1 "default drop\ntenant a id 1 key " KA "\n"

static const struct bad bads[] = {
	{ "default drop\nfoo\n",
	  "t.rules:2: unknown statement 'foo' (default, datagram, tenant, allow, ports, rate, "
	  "api_key, requests, tokens, concurrency, models, tools)" },
	{ "allow 10.0.0.0/8\ndefault drop\n",
	  "t.rules:1: 'allow' before any 'tenant' line: it must follow one" },
	{ "default drop\ndefault pass\n",
	  "t.rules:2: a second 'default' line; there must be exactly one" },
	{ "default maybe\n", "t.rules:1: expected 'default pass' or 'default drop'" },
	{ "tenant a id 1 key " KA "\n",
	  "t.rules:1: no 'default pass' or 'default drop' line (exactly one is required)" },
	{ "", "t.rules:1: no 'default pass' or 'default drop' line (exactly one is required)" },
	{ "default drop\ntenant a id 1 key 0011\n",
	  "t.rules:2: 'key' needs exactly 32 hex digits (16 bytes)" },
	{ "default drop\ntenant a id 1 key 00000000000000000000000000000000\n",
	  "t.rules:2: the key is all zeros; use a random one (e.g. `head -c16 /dev/urandom | "
	  "xxd -p`)" },
	{ "default drop\ntenant a id 0 key " KA "\n",
	  "t.rules:2: 'id' needs a number 1..4294967295 (0 means no tenant)" },
	{ "default drop\ntenant a key " KA "\n", "t.rules:2: tenant 'a' has no 'id N'" },
	{ "default drop\ntenant a id 1\n", "t.rules:2: tenant 'a' has no 'key HEX32'" },
	{ "default drop\ntenant a/b id 1 key " KA "\n",
	  "t.rules:2: tenant name 'a/b' must be 1..31 of A-Z a-z 0-9 _ - ." },
	{ "default drop\ntenant a id 1 key " KA " vip\n",
	  "t.rules:2: unknown tenant option 'vip' (id, key, admin, redirect, confidential)" },
	{ T1 "tenant a id 2 key " KB "\n", "t.rules:3: tenant 'a' is already defined at line 2" },
	{ T1 "tenant b id 1 key " KB "\n", "t.rules:3: id 1 is already tenant 'a' (line 2)" },
	{ T1 "tenant b id 2 key " KA "\n",
	  "t.rules:3: same key as tenant 'a' (line 2); every tenant needs its own" },
	{ T1 "allow 10.0.0.1/8\n",
	  "t.rules:3: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?" },
	{ T1 "allow fd00::1/8\n",
	  "t.rules:3: 'fd00::1/8' has host bits set; did you mean fd00::/8?" },
	{ T1 "allow 10.0.0.0/33\n", "t.rules:3: '10.0.0.0/33': the prefix length must be 0..32" },
	{ T1 "allow fd00::/129\n", "t.rules:3: 'fd00::/129': the prefix length must be 0..128" },
	{ T1 "allow 10.0.0/8\n",
	  "t.rules:3: '10.0.0/8' is not an address prefix like 10.0.0.0/8 or fd00::/8" },
	{ T1 "allow\n", "t.rules:3: expected 'allow PREFIX...' (source prefixes of this tenant)" },
	{ T1 "allow 10.0.0.0/8\ntenant b id 2 key " KB "\nallow 10.0.0.0/8\n",
	  "t.rules:5: 10.0.0.0/8 is already allowed for tenant 'a' (line 3)" },
	{ T1 "ports 0\n", "t.rules:3: '0': ports are 1..65535" },
	{ T1 "ports 65536\n", "t.rules:3: '65536': ports are 1..65535" },
	{ T1 "ports 10-5\n", "t.rules:3: '10-5': the range runs backwards" },
	{ T1 "ports sctp:5\n", "t.rules:3: 'sctp:5': the protocol must be tcp: or udp:" },
	{ T1 "ports http\n", "t.rules:3: 'http' is not a port or a range like 7000-7010" },
	{ T1 "ports 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
	  "t.rules:3: tenant 'a' has more than 16 port ranges" },
	{ T1 "rate 100Mbps burst 1MB\n",
	  "t.rules:3: '100Mbps': rates are in bytes per second (B/s, KB/s, MB/s, GB/s, KiB/s, ...) "
	  "or packets (pps, kpps, Mpps)" },
	{ T1 "rate 1.5MB/s burst 1MB\n",
	  "t.rules:3: '1.5MB/s': whole numbers only (write 1500KB/s, not 1.5MB/s)" },
	{ T1 "rate 100pps\n", "t.rules:3: '100pps' needs 'burst N' after it (the bucket size)" },
	{ T1 "rate 100 pps burst\n", "t.rules:3: 'burst' needs a size" },
	{ T1 "rate 0pps burst 10\n",
	  "t.rules:3: '0pps': a rate must be 1..100000000000 per second" },
	{ T1 "rate 1MB/s burst 100\n",
	  "t.rules:3: burst 100 is below one full-size Ethernet frame (1514 B): such packets could "
	  "never pass" },
	{ T1 "rate 10pps burst 0\n", "t.rules:3: burst must be at least 1 packet" },
	{ T1 "rate 10pps burst 5000000000\n",
	  "t.rules:3: burst 5000000000 is above the limit of 4000000000" },
	{ T1 "rate 10pps burst 5 x\n",
	  "t.rules:3: unexpected 'x' after a rate (separate two rates with ';')" },
	{ T1 "rate 10pps burst 5\nrate 20pps burst 5\n",
	  "t.rules:4: tenant 'a' already has a packet rate" },
	{ T1 "rate 10furlongs burst 5\n",
	  "t.rules:3: '10furlongs' is not a rate: use a number with pps, kpps, Mpps, B/s, KB/s, "
	  "MB/s, GB/s, KiB/s, MiB/s or GiB/s" },
	{ "default drop\ndatagram tcp:7100\n", "t.rules:2: 'tcp:7100': datagram ports are UDP" },
	{ "default drop\ndatagram 1 2 3 4 5 6 7 8 9\n",
	  "t.rules:2: more than 8 datagram port ranges" },
	/* the gateway statements */
	{ "default drop\napi_key sha256:" H1 "\n",
	  "t.rules:2: 'api_key' before any 'tenant' line: it must follow one" },
	{ T1 "api_key sk-secret\n",
	  "t.rules:3: expected 'api_key sha256:HEX64', the SHA-256 of the token (`wirepath "
	  "policy hash-key` prints it); never the token itself" },
	{ T1 "api_key sha256:" H1 " x\n",
	  "t.rules:3: expected 'api_key sha256:HEX64', the SHA-256 of the token (`wirepath "
	  "policy hash-key` prints it); never the token itself" },
	{ T1 "api_key sha256:g" H1_63 "\n",
	  "t.rules:3: 'api_key' needs 64 hex digits after 'sha256:'" },
	{ T1 "api_key sha256:" H1 "\ntenant b id 2 key " KB "\napi_key sha256:" H1 "\n",
	  "t.rules:5: this api_key is already tenant 'a''s (line 3); every token belongs to one "
	  "tenant" },
	{ T1 "api_key sha256:" H1 "\napi_key sha256:" H1 "\n",
	  "t.rules:4: this api_key is already tenant 'a''s (line 3); every token belongs to one "
	  "tenant" },
	{ T1 "api_key sha256:" H0 "1\napi_key sha256:" H0 "2\napi_key sha256:" H0
	     "3\napi_key sha256:" H0 "4\napi_key sha256:" H0 "5\napi_key sha256:" H0
	     "6\napi_key sha256:" H0 "7\napi_key sha256:" H0 "8\napi_key sha256:" H0 "9\n",
	  "t.rules:11: tenant 'a' has more than 8 api_key lines" },
	{ T1 "requests\n", "t.rules:3: expected 'requests N/s burst N' (or N/m, N/h)" },
	{ T1 "requests 50\n",
	  "t.rules:3: '50' is not a rate: use N/s, N/m or N/h (per second, minute, hour)" },
	{ T1 "requests 50/d burst 1\n",
	  "t.rules:3: '50/d' is not a rate: use N/s, N/m or N/h (per second, minute, hour)" },
	{ T1 "tokens 1.5/s burst 1\n",
	  "t.rules:3: '1.5/s': whole numbers only (write 90/m, not 1.5/s)" },
	{ T1 "requests 0/s burst 1\n",
	  "t.rules:3: '0/s': a rate must be 1..100000000000 per period" },
	{ T1 "requests 100000000001/s burst 1\n",
	  "t.rules:3: '100000000001/s': a rate must be 1..100000000000 per period" },
	{ T1 "requests 50/s\n", "t.rules:3: '50/s' needs 'burst N' after it (the bucket size)" },
	{ T1 "requests 50/s burst\n", "t.rules:3: 'burst' needs a count" },
	{ T1 "requests 50/s burst 10x\n",
	  "t.rules:3: burst '10x' is not a count (digits, k or M allowed)" },
	{ T1 "tokens 50/s burst 0\n", "t.rules:3: burst 0 must be 1..4000000000" },
	{ T1 "tokens 50/s burst 5000M\n", "t.rules:3: burst 5000M must be 1..4000000000" },
	{ T1 "tokens 50/s burst 5 ; 6/s burst 1\n",
	  "t.rules:3: unexpected ';' after the token rate" },
	{ T1 "tokens 50/s burst 5\ntokens 6/m burst 1\n",
	  "t.rules:4: tenant 'a' already has a token rate" },
	{ T1 "requests 50/s burst 5\nrequests 6/h burst 1\n",
	  "t.rules:4: tenant 'a' already has a request rate" },
	{ T1 "concurrency 0\n",
	  "t.rules:3: expected 'concurrency N' with N 1..1000000 (requests in flight)" },
	{ T1 "concurrency 1000001\n",
	  "t.rules:3: expected 'concurrency N' with N 1..1000000 (requests in flight)" },
	{ T1 "concurrency 4 8\n",
	  "t.rules:3: expected 'concurrency N' with N 1..1000000 (requests in flight)" },
	{ T1 "concurrency 4\nconcurrency 8\n",
	  "t.rules:4: tenant 'a' already has a concurrency limit" },
	{ T1 "models\n", "t.rules:3: expected 'models GLOB...' (names, '*' and '?' as wildcards)" },
	{ T1 "tools a[bc]\n",
	  "t.rules:3: 'a[bc]' is not a name glob: 1..127 printable ASCII bytes, '*' and '?' as "
	  "wildcards, no '[', ']', '\\' or ';'" },
	{ T1 "models caf\xc3\xa9\n",
	  "t.rules:3: 'caf\xc3\xa9' is not a name glob: 1..127 printable ASCII bytes, '*' and '?' "
	  "as wildcards, no '[', ']', '\\' or ';'" },
	{ T1 "models a;b\n",
	  "t.rules:3: ';' is not a name glob: 1..127 printable ASCII bytes, '*' and '?' as "
	  "wildcards, no '[', ']', '\\' or ';'" },
	{ T1 "models gpt-* wp-stub\nmodels gpt-*\n",
	  "t.rules:4: 'gpt-*' is already in tenant 'a''s models list" },
	{ T1 "tools 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 "
	     "30 31 32 33\n",
	  "t.rules:3: tenant 'a' has more than 32 tools globs" },
	{ "default drop\n\x01\n", "t.rules:2: control byte 0x01: not a text file?" },
	{ "default drop\nx\0y\n", "t.rules:2: control byte 0x00: not a text file?" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct wp_policy *p = (struct wp_policy *)1;
		/* texts with an embedded NUL carry their length via sizeof in a
		 * real file; here the NUL case is the last entry: measure to
		 * the final newline by hand */
		size_t len = strlen(bads[i].text);
		int ret;

		if (!strcmp(bads[i].msg, "t.rules:2: control byte 0x00: not a text file?"))
			len = sizeof("default drop\nx\0y\n") - 1;
		test_log_capture();
		ret = wp_policy_parse("t.rules", bads[i].text, len, &p);
		if (ret != -EINVAL || p != NULL || test_log.errs != 1 ||
		    strcmp(test_log.last, bads[i].msg)) {
			fprintf(stderr,
				"case %zu: ret %d, policy %p, %d lines\n  got:  %s\n"
				"  want: %s\n",
				i, ret, (void *)p, test_log.errs, test_log.last, bads[i].msg);
			exit(1);
		}
		/* the _err variant: the same line in the buffer, nothing logged */
		{
			char err[WP_LOG_LINE_MAX] = "x";

			test_log_capture();
			p = (struct wp_policy *)1;
			ret = wp_policy_parse_err("t.rules", bads[i].text, len, &p, err,
						  sizeof(err));
			CHECK_EQ(ret, -EINVAL);
			CHECK(p == NULL);
			CHECK_EQ(test_log.errs, 0);
			if (strcmp(err, bads[i].msg)) {
				fprintf(stderr, "case %zu (_err): got %s\n", i, err);
				exit(1);
			}
		}
	}

	/* a line that is too long */
	{
		size_t n = 2000;
		char *t = malloc(n + 32);
		struct wp_policy *p;

		CHECK(t);
		strcpy(t, "default drop\n");
		memset(t + 13, 'a', n);
		t[13 + n] = '\n';
		t[14 + n] = '\0';
		test_log_capture();
		CHECK_EQ(wp_policy_parse("t.rules", t, strlen(t), &p), -EINVAL);
		CHECK(!strcmp(test_log.last, "t.rules:2: line longer than 1024 bytes"));
		free(t);
	}
	/* a name too long for one log line: the line is cut, never overrun */
	{
		char name[WP_LOG_LINE_MAX + 64];
		struct wp_policy *p;

		memset(name, 'n', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		test_log_capture();
		CHECK_EQ(wp_policy_parse(name, "default maybe\n", 14, &p), -EINVAL);
		CHECK_EQ(test_log.errs, 1);
		CHECK_EQ(strlen(test_log.last), WP_LOG_LINE_MAX - 1);
	}
	/* without a hook the reason is dropped, the error is the same */
	{
		struct wp_policy *p;

		wp_set_log(NULL, NULL, WP_LOG_ERR);
		CHECK_EQ(wp_policy_parse("t.rules", "default maybe\n", 14, &p), -EINVAL);
		CHECK(p == NULL);
	}
}

static void test_file(void)
{
	char path[] = "/tmp/wp-rules-XXXXXX";
	struct wp_policy *p;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK(write(fd, "default drop\nbogus\n", 19) == 19);
	close(fd);
	test_log_capture();
	CHECK_EQ(wp_policy_parse_file(path, &p), -EINVAL);
	{
		char want[256];

		snprintf(want, sizeof(want),
			 "%s:2: unknown statement 'bogus' (default, datagram, "
			 "tenant, allow, ports, rate, api_key, requests, tokens, "
			 "concurrency, models, tools)",
			 path);
		CHECK(!strcmp(test_log.last, want));
	}
	{
		char err[256], want[256];

		test_log_capture();
		CHECK_EQ(wp_policy_parse_file_err(path, &p, err, sizeof(err)), -EINVAL);
		CHECK_EQ(test_log.errs, 0);
		snprintf(want, sizeof(want), "%s:2: unknown statement 'bogus'", path);
		CHECK(!strncmp(err, want, strlen(want)));
		/* a short buffer is cut, never overrun */
		CHECK_EQ(wp_policy_parse_file_err(path, &p, err, 8), -EINVAL);
		CHECK_EQ(strlen(err), 7);
		CHECK_EQ(wp_policy_parse_file_err(path, &p, NULL, 0), -EINVAL);
		CHECK_EQ(wp_policy_parse_file_err("/tmp", &p, err, sizeof(err)), -EISDIR);
		CHECK(!strcmp(err, "/tmp: not a regular file of at most 4194304 bytes"));
		CHECK_EQ(test_log.errs, 0);
	}
	unlink(path);
	test_log_capture();
	CHECK_EQ(wp_policy_parse_file(path, &p), -ENOENT);
	CHECK(strstr(test_log.last, "cannot open"));
	CHECK(strstr(test_log.last, path));
	test_log_capture();
	CHECK_EQ(wp_policy_parse_file("/tmp", &p), -EISDIR);
	CHECK(!strcmp(test_log.last, "/tmp: not a regular file of at most 4194304 bytes"));
}

/* The key parsers the tools share (bench --tenant-key, wp_flood, wpp_traffic). */
static void test_key_parse(void)
{
	uint8_t k[16];
	uint32_t id = 0;

	CHECK_EQ(wp_policy_key_parse(KA, k), 0);
	CHECK_EQ(k[0], 0x00);
	CHECK_EQ(k[1], 0x11);
	CHECK_EQ(k[15], 0xff);
	CHECK_EQ(wp_policy_key_parse("00112233445566778899AABBCCDDEEFF", k), 0);
	CHECK_EQ(k[10], 0xaa);
	CHECK_EQ(wp_policy_key_parse("00000000000000000000000000000000", k), -EDOM);
	CHECK_EQ(wp_policy_key_parse("0011", k), -EINVAL);
	CHECK_EQ(wp_policy_key_parse(KA "0", k), -EINVAL);
	CHECK_EQ(wp_policy_key_parse("g0112233445566778899aabbccddeeff", k), -EINVAL);
	CHECK_EQ(wp_policy_key_parse(NULL, k), -EINVAL);

	CHECK_EQ(wp_policy_tenant_key_parse("7:" KB, &id, k), 0);
	CHECK_EQ(id, 7);
	CHECK_EQ(k[0], 0x0f);
	CHECK_EQ(wp_policy_tenant_key_parse("4294967295:" KA, &id, k), 0);
	CHECK_EQ(id, 4294967295u);
	id = 3;
	CHECK_EQ(wp_policy_tenant_key_parse("4294967296:" KA, &id, k), -EINVAL);
	CHECK_EQ(wp_policy_tenant_key_parse("0:" KA, &id, k), -EINVAL);
	CHECK_EQ(wp_policy_tenant_key_parse(":" KA, &id, k), -EINVAL);
	CHECK_EQ(wp_policy_tenant_key_parse("-1:" KA, &id, k), -EINVAL);
	CHECK_EQ(wp_policy_tenant_key_parse("1" KA, &id, k), -EINVAL);
	CHECK_EQ(wp_policy_tenant_key_parse("1:00000000000000000000000000000000", &id, k), -EINVAL);
	CHECK_EQ(id, 3); /* untouched on error */
}

int main(void)
{
	test_watchdog(30);
	test_good();
	test_gateway();
	test_bad();
	test_file();
	test_key_parse();
	printf("test_policy_rules: %zu bad files rejected with FILE:LINE, good file round trips\n",
	       sizeof(bads) / sizeof(bads[0]));
	return 0;
}
