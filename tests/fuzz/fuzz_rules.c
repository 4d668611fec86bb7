// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the front door's user-space side: the rules parser (text
 * an operator, or later a daemon's API, supplies) and the decision function
 * (bytes anyone on the wire supplies). Built two ways (tests/fuzz/fuzz.h): with
 * libFuzzer by tests/fuzz/run.sh, and into test_fuzz_rules, which replays
 * tests/fuzz/corpus-rules/ and mutations of it (with the keywords of
 * tests/fuzz/rules.dict, and packets behind valid Ethernet/IP headers) on
 * every test run.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * Per input:
 *  (a) parse it as a rules file. An error leaves no policy and logs one
 *      line "fuzz:LINE: reason" (process log hook) with LINE within the
 *      input's lines; a success logs nothing. A success
 *      dumps (with keys) to a text that parses again and dumps identically.
 *  (b) run the input as a packet through the twin with a fixed policy (and,
 *      when (a) succeeded, with the fuzzed one hot-reloaded into the same
 *      twin, then the fixed one reloaded back; a reload never fails): a
 *      verdict and a reason in range, and every packet counted exactly once.
 * A broken invariant aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/policy.h"
#include "policy/policy.h"

#include "fuzz.h"

/* What the parser logged (wp_set_log) during one input. */
static int log_errs;
static char log_last[WP_LOG_LINE_MAX];

static void fuzz_log(void *arg, enum wp_log_level level, const char *msg)
{
	if (level != WP_LOG_ERR)
		return;
	log_errs++;
	snprintf(log_last, sizeof(log_last), "%s", msg);
}

static const char fixed_rules[] = "default drop\n"
				  "datagram 7100\n"
				  "tenant a id 1 key 00112233445566778899aabbccddeeff\n"
				  "  allow 0.0.0.0/1 ::/1\n"
				  "  ports 1-40000\n"
				  "  rate 1000pps burst 3 ; 1MB/s burst 2000\n"
				  "tenant b id 2 key 0f0e0d0c0b0a09080706050403020100 redirect\n"
				  "  allow 128.0.0.0/1 8000::/1\n"
				  "  ports udp:7100 tcp:1-65535\n";

static char *dump(const struct wp_policy *p)
{
	int n = wp_policy_dump(p, WP_POLICY_DUMP_KEYS, NULL, 0);
	char *s;

	FUZZ_CHECK(n > 0);
	s = malloc((size_t)n + 1);
	FUZZ_CHECK(s);
	FUZZ_CHECK(wp_policy_dump(p, WP_POLICY_DUMP_KEYS, s, (size_t)n + 1) == n);
	FUZZ_CHECK(strlen(s) == (size_t)n);
	return s;
}

/* Packets decided so far: the twin's counters must add up to exactly this. */
static uint64_t decided;

static void run_packet(struct wp_twin *t, const uint8_t *data, size_t size)
{
	struct wp_policy_stats s;
	uint64_t sum = 0;
	unsigned reason = 0;
	int v;

	for (int i = 0; i < 3; i++) { /* three times: the buckets move */
		v = wp_twin_decide(t, data, size, 1000000000ull + (uint64_t)i, &reason);
		FUZZ_CHECK(v >= WP_VERDICT_DROP && v <= WP_VERDICT_REDIRECT);
		FUZZ_CHECK(reason < wp_policy_reason_count());
	}
	decided += 3;
	FUZZ_CHECK(wp_twin_stats(t, &s) == 0);
	for (unsigned r = 0; r < s.nreasons; r++)
		sum += s.reason[r].pkts;
	FUZZ_CHECK(sum == decided);
	FUZZ_CHECK(s.verdict[0].pkts + s.verdict[1].pkts + s.verdict[2].pkts == decided);
	wp_policy_stats_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One twin for the whole run: a fresh one is 440 KiB to allocate and
	 * clear, which cost more than everything else an input does. A
	 * successful parse is hot-reloaded into it and the fixed policy
	 * reloaded after, the daemon's reload path, which must never fail
	 * (compile.c: slots cannot run out). */
	static struct wp_policy *fixed;
	static struct wp_twin *twin;
	struct wp_policy *p = (struct wp_policy *)1, *q;
	char *err = log_last;
	int ret;

	if (!fixed) {
		wp_set_log(fuzz_log, NULL, WP_LOG_ERR);
		FUZZ_CHECK(wp_policy_parse("fixed", fixed_rules, sizeof(fixed_rules) - 1, &fixed) ==
			   0);
		FUZZ_CHECK(wp_twin_create(fixed, &twin) == 0);
	}

	/* (a) the parser */
	log_errs = 0;
	log_last[0] = 'Z';
	log_last[1] = '\0';
	ret = wp_policy_parse("fuzz", (const char *)data, size, &p);
	FUZZ_CHECK(log_errs == (ret < 0));
	if (ret < 0) {
		size_t lines = 1;
		unsigned long line;
		char *end;

		FUZZ_CHECK(ret == -EINVAL);
		FUZZ_CHECK(p == NULL);
		FUZZ_CHECK(strlen(err) < sizeof(log_last));
		FUZZ_CHECK(!strncmp(err, "fuzz:", 5));
		line = strtoul(err + 5, &end, 10);
		FUZZ_CHECK(end != err + 5 && end[0] == ':' && end[1] == ' ' && end[2]);
		for (size_t i = 0; i < size; i++)
			lines += data[i] == '\n';
		FUZZ_CHECK(line >= 1 && line <= lines);
	} else {
		char *d1, *d2;

		FUZZ_CHECK(ret == 0 && p != NULL);
		d1 = dump(p);
		FUZZ_CHECK(wp_policy_parse("dump", d1, strlen(d1), &q) == 0);
		d2 = dump(q);
		FUZZ_CHECK(!strcmp(d1, d2));
		free(d1);
		free(d2);
		wp_policy_free(q);
	}

	/* (b) the decision, on the same bytes as a packet */
	run_packet(twin, data, size);
	if (ret == 0) {
		FUZZ_CHECK(wp_twin_reload(twin, p) == 0);
		run_packet(twin, data, size);
		FUZZ_CHECK(wp_twin_reload(twin, fixed) == 0);
		wp_policy_free(p);
	}
	return 0;
}

/*
 * For the replay driver (fuzz.h): now and then a packet instead of a rules
 * text, valid Ethernet and IPv4 or IPv6 headers followed by random bytes, so
 * the decision meets more than the garbage that text mutations make of a
 * rules file.
 */
size_t wp_fuzz_mutate(uint8_t *buf, size_t len, size_t cap, uint64_t (*rnd)(void))
{
	uint64_t r = rnd();
	int v6 = r & 1;
	size_t n = 14 + (size_t)(r >> 8) % 120;

	(void)len;
	if (n > cap)
		n = cap;
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)rnd();
	if (n > 14) {
		buf[12] = v6 ? 0x86 : 0x08;
		buf[13] = v6 ? 0xdd : 0x00;
		buf[14] = (uint8_t)((v6 ? 0x60 : 0x45) | (buf[14] & (r & 2 ? 0x0f : 0)));
	}
	return n;
}
