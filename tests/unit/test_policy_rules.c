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

struct bad {
	const char *text;
	const char *msg;
};

#define T1 "default drop\ntenant a id 1 key " KA "\n"

static const struct bad bads[] = {
	{ "default drop\nfoo\n",
	  "t.rules:2: unknown statement 'foo' (default, datagram, tenant, allow, ports, rate)" },
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
		char want[128];

		snprintf(want, sizeof(want),
			 "%s:2: unknown statement 'bogus' (default, datagram, "
			 "tenant, allow, ports, rate)",
			 path);
		CHECK(!strcmp(test_log.last, want));
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
	test_bad();
	test_file();
	test_key_parse();
	printf("test_policy_rules: %zu bad files rejected with FILE:LINE, good file round trips\n",
	       sizeof(bads) / sizeof(bads[0]));
	return 0;
}
