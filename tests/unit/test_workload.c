/* SPDX-License-Identifier: MIT */
/*
 * Workload parser and sampler: the built-ins, a full file, every error
 * message with its line number, size and time suffixes, comments, base =
 * classic, that a failed parse leaves the caller's struct untouched, the
 * limits of wl_validate, the tool-result size distribution, the JSON form,
 * and that every file shipped under bench/workloads parses.
 */
#include <glob.h>
#include <math.h>
#include <stdbool.h>

#include "testlib.h"
#include "workload.h"

#ifndef WP_SRC_DIR
#define WP_SRC_DIR "."
#endif

#define KIB 1024u
#define MIB (1024u * 1024u)

static bool wl_equal(const struct wl *a, const struct wl *b)
{
	return !strcmp(a->name, b->name) && a->fanout == b->fanout &&
	       a->tool_req_bytes == b->tool_req_bytes && a->tool_resp_bytes == b->tool_resp_bytes &&
	       a->tool_resp_p90_bytes == b->tool_resp_p90_bytes &&
	       a->tool_resp_p99_bytes == b->tool_resp_p99_bytes &&
	       a->mem_lookups == b->mem_lookups && a->mem_bytes == b->mem_bytes &&
	       a->model_req_bytes == b->model_req_bytes && a->tokens == b->tokens &&
	       a->token_bytes == b->token_bytes && a->token_batch == b->token_batch &&
	       a->telemetry_counters == b->telemetry_counters &&
	       a->telemetry_hists == b->telemetry_hists && a->retry_pct == b->retry_pct &&
	       a->tool_service_us == b->tool_service_us && a->mem_service_us == b->mem_service_us &&
	       a->model_service_us == b->model_service_us &&
	       a->token_interval_us == b->token_interval_us && a->bulk_bytes == b->bulk_bytes;
}

static void test_builtins(void)
{
	struct wl w, c;
	char err[256];

	CHECK_EQ(wl_builtin("agentic", &w), 0);
	CHECK(!strcmp(w.name, "agentic"));
	CHECK_EQ(w.fanout, 8);
	CHECK_EQ(w.tool_req_bytes, 1024);
	CHECK_EQ(w.tool_resp_bytes, 4096);
	CHECK_EQ(w.tool_resp_p90_bytes, 16384);
	CHECK_EQ(w.tool_resp_p99_bytes, 65536);
	CHECK_EQ(w.mem_lookups, 2);
	CHECK_EQ(w.mem_bytes, 16384);
	CHECK_EQ(w.model_req_bytes, 4096);
	CHECK_EQ(w.tokens, 520);
	CHECK_EQ(w.token_bytes, 4);
	CHECK_EQ(w.token_batch, 1);
	CHECK_EQ(w.telemetry_counters, 10);
	CHECK_EQ(w.telemetry_hists, 2);
	CHECK_EQ(w.retry_pct, 0);
	CHECK_EQ(w.tool_service_us + w.mem_service_us + w.model_service_us + w.token_interval_us,
		 0);
	CHECK_EQ(w.bulk_bytes, 0);
	CHECK_EQ(wl_validate(&w, err, sizeof(err)), 0);

	CHECK_EQ(wl_builtin("classic", &c), 0);
	CHECK(!strcmp(c.name, "classic"));
	CHECK_EQ(c.fanout, 0);
	CHECK_EQ(c.mem_lookups, 0);
	CHECK_EQ(c.model_req_bytes, 8192);
	CHECK_EQ(c.tokens, 520);
	CHECK_EQ(c.token_bytes, 4);
	CHECK_EQ(c.token_batch, 1);
	CHECK_EQ(c.telemetry_counters, 10);
	CHECK_EQ(c.telemetry_hists, 2);
	CHECK_EQ(c.tool_resp_bytes, 4096);
	CHECK_EQ(c.tool_resp_p90_bytes, 4096);
	CHECK_EQ(c.tool_resp_p99_bytes, 4096);
	CHECK_EQ(c.tool_req_bytes + c.mem_bytes + c.retry_pct + c.bulk_bytes, 0);
	CHECK_EQ(wl_validate(&c, err, sizeof(err)), 0);

	CHECK_EQ(wl_builtin("nope", &w), -ENOENT);
	CHECK_EQ(wl_builtin("", &w), -ENOENT);

	/* wl_load prefers the built-in name. */
	memset(&w, 0, sizeof(w));
	CHECK_EQ(wl_load("classic", &w, err, sizeof(err)), 0);
	CHECK(wl_equal(&w, &c));
}

static const char full_text[] = "# every key, none at its default\n"
				"name = full-1.0_x+y\n"
				"fanout = 16\n"
				"tool_req_bytes = 256\n"
				"tool_resp_bytes = 2048\n"
				"tool_resp_p90_bytes = 8192\n"
				"tool_resp_p99_bytes = 131072\n"
				"mem_lookups = 8\n"
				"mem_bytes = 4096\n"
				"model_req_bytes = 65536\n"
				"tokens = 4096\n"
				"token_bytes = 8\n"
				"token_batch = 16\n"
				"telemetry_counters = 20\n"
				"telemetry_hists = 4\n"
				"retry_pct = 15\n"
				"tool_service_us = 1600000\n"
				"mem_service_us = 5000\n"
				"model_service_us = 250000\n"
				"token_interval_us = 20000\n"
				"bulk_bytes = 16777216\n";

static void test_full_file(void)
{
	struct wl w;
	char err[256] = "";

	CHECK_EQ(wl_parse_string(full_text, "full", &w, err, sizeof(err)), 0);
	CHECK(!strcmp(w.name, "full-1.0_x+y"));
	CHECK_EQ(w.fanout, 16);
	CHECK_EQ(w.tool_req_bytes, 256);
	CHECK_EQ(w.tool_resp_bytes, 2048);
	CHECK_EQ(w.tool_resp_p90_bytes, 8192);
	CHECK_EQ(w.tool_resp_p99_bytes, 131072);
	CHECK_EQ(w.mem_lookups, 8);
	CHECK_EQ(w.mem_bytes, 4096);
	CHECK_EQ(w.model_req_bytes, 65536);
	CHECK_EQ(w.tokens, 4096);
	CHECK_EQ(w.token_bytes, 8);
	CHECK_EQ(w.token_batch, 16);
	CHECK_EQ(w.telemetry_counters, 20);
	CHECK_EQ(w.telemetry_hists, 4);
	CHECK_EQ(w.retry_pct, 15);
	CHECK_EQ(w.tool_service_us, 1600000);
	CHECK_EQ(w.mem_service_us, 5000);
	CHECK_EQ(w.model_service_us, 250000);
	CHECK_EQ(w.token_interval_us, 20000);
	CHECK_EQ(w.bulk_bytes, 16777216);
	CHECK_EQ(wl_validate(&w, err, sizeof(err)), 0);

	/* Keys not given keep the agentic defaults; an empty text is agentic. */
	CHECK_EQ(wl_parse_string("fanout = 3\n", "s", &w, err, sizeof(err)), 0);
	CHECK_EQ(w.fanout, 3);
	CHECK_EQ(w.tokens, 520);
	CHECK(!strcmp(w.name, "agentic"));
	CHECK_EQ(wl_parse_string("", "s", &w, err, sizeof(err)), 0);
	struct wl a;
	wl_builtin("agentic", &a);
	CHECK(wl_equal(&w, &a));
}

/* Expect text to fail with exactly "ORIGIN:LINE: ..." containing `want`. */
static void expect_err(const char *text, unsigned line, const char *want)
{
	struct wl w, before;
	char err[256] = "", prefix[64];

	/* A struct the caller filled must come back byte for byte unchanged. */
	memset(&w, 0xa5, sizeof(w));
	before = w;
	if (wl_parse_string(text, "t.wl", &w, err, sizeof(err)) != -EINVAL) {
		fprintf(stderr, "expected -EINVAL for:\n%s\n", text);
		exit(1);
	}
	snprintf(prefix, sizeof(prefix), "t.wl:%u: ", line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, want)) {
		fprintf(stderr, "text:\n%s\nerror '%s'\nwanted prefix '%s' and '%s'\n", text, err,
			prefix, want);
		exit(1);
	}
	CHECK(!memcmp(&w, &before, sizeof(w)));
}

static void test_errors(void)
{
	expect_err("fanout = 4\nfanot = 3\n", 2, "unknown key 'fanot'");
	expect_err("fanout = 4\n\n# c\nfanout = 5\n", 4,
		   "duplicate key 'fanout' (first set on line 1)");
	expect_err("name = a\nname = b\n", 2, "duplicate key 'name'");
	expect_err("base = classic\nbase = classic\n", 2, "duplicate key 'base'");
	expect_err("fanout 4\n", 1, "missing '='");
	expect_err("fanout = 4\n  tokens\n", 2, "missing '='");
	expect_err("= 4\n", 1, "missing key");
	expect_err("fanout =\n", 1, "missing value for 'fanout'");
	expect_err("fanout = # nothing\n", 1, "missing value");
	expect_err("fanout = abc\n", 1, "bad number 'abc'");
	expect_err("fanout = 1.5\n", 1, "bad number '1.5'");
	expect_err("fanout = 0x10\n", 1, "bad number '0x10'");
	expect_err("fanout = +3\n", 1, "bad number '+3'");
	expect_err("fanout = 4 4\n", 1, "bad number");
	expect_err("fanout = 4K\n", 1, "a count takes no suffix");
	expect_err("tool_req_bytes = 4 kb\n", 1, "bad number '4 kb'");
	expect_err("tool_req_bytes = 4KB\n", 1, "suffix: K, KiB, M, MiB, G or GiB");
	expect_err("tool_service_us = 5 s\n", 1, "suffix: us or ms");
	expect_err("fanout = -1\n", 1, "negative value '-1'");
	expect_err("\n\nbulk_bytes = -16M\n", 3, "negative");
	expect_err("fanout = 99999999999999999999999\n", 1, "overflow");
	expect_err("fanout = 4294967296\n", 1, "overflow");
	expect_err("tool_req_bytes = 4G\n", 1, "overflow");
	expect_err("bulk_bytes = 18446744073709551615G\n", 1, "overflow");
	expect_err("tool_service_us = 4294968ms\n", 1, "overflow");
	expect_err("fanout = 1025\n", 1, "fanout = 1025 is out of range (0..1024)");
	expect_err("mem_lookups = 65\n", 1, "out of range (0..64)");
	expect_err("tool_resp_p99_bytes = 65M\n", 1, "out of range (1..64 MiB)");
	expect_err("bulk_bytes = 2G\n", 1, "out of range (0..1 GiB)");
	expect_err("retry_pct = 101\n", 1, "out of range (0..100)");
	expect_err("token_batch = 0\n", 1, "out of range (1..");
	expect_err("model_service_us = 60001ms\n", 1, "out of range (0 us..60 s)");
	expect_err("tool_resp_bytes = 0\n", 1, "out of range");
	expect_err("base = fancy\n", 1, "unknown base 'fancy'");
	expect_err("# c\nfanout = 3\nbase = classic\n", 3, "'base' must come before");
	expect_err("name = has space\n", 1, "bad name");
	expect_err("name = sl/ash\n", 1, "bad name");
	expect_err("name = "
		   "0123456789012345678901234567890123456789012345678901234567890123\n",
		   1, "name is 64 bytes long (max 63)");
	expect_err("fanout = 1\nfanout\0 = 2\n", 2, "missing '='"); /* text ends at the NUL */

	/* Cross-field limits blame the last line that set a field involved. */
	expect_err("tool_resp_bytes = 32K\n# c\n", 1, "need p50 <= p90 <= p99");
	expect_err("tool_resp_p90_bytes = 8K\ntool_resp_bytes = 12K\n", 2, "p50 <= p90");
	expect_err("tool_resp_p99_bytes = 128K\ntool_resp_p90_bytes = 256K\n", 2,
		   "tool_resp_p90_bytes (262144) > tool_resp_p99_bytes (131072)");
	expect_err("tool_req_bytes = 4\n\n", 1, "need >= 8 when fanout > 0");
	expect_err("tool_req_bytes = 4\nfanout = 2\n", 2, "8-byte header");
	expect_err("mem_bytes = 8\n", 1, "need >= 16 when mem_lookups > 0");
	expect_err("model_req_bytes = 15\n", 1, "need 0 (no model call) or >= 16");
	expect_err("tokens = 5\nmodel_req_bytes = 0\n", 2, "needs a model call");
	expect_err("token_bytes = 0\n", 1, "need >= 1 when tokens > 0");
	expect_err("tokens = 1048576\ntoken_bytes = 65\n", 2, "stream per step is at most 64 MiB");
	/* A limit broken by a key together with the base's defaults blames that key. */
	expect_err("# c\nbase = classic\nfanout = 2\n", 3, "need >= 8 when fanout > 0");
}

static void test_suffixes(void)
{
	struct wl w;
	char err[256] = "";

	CHECK_EQ(wl_parse_string("tool_req_bytes = 2K\n"
				 "tool_resp_bytes = 3KiB\n"
				 "tool_resp_p90_bytes = 1M\n"
				 "tool_resp_p99_bytes = 64 MiB\n"
				 "mem_bytes = 16 K\n"
				 "model_req_bytes = 0\n"
				 "tokens = 0\n"
				 "token_bytes = 0\n"
				 "bulk_bytes = 1G\n"
				 "tool_service_us = 1600ms\n"
				 "mem_service_us = 250us\n"
				 "model_service_us = 60000 ms\n"
				 "token_interval_us = 7\n",
				 "s", &w, err, sizeof(err)),
		 0);
	CHECK_EQ(w.tool_req_bytes, 2 * KIB);
	CHECK_EQ(w.tool_resp_bytes, 3 * KIB);
	CHECK_EQ(w.tool_resp_p90_bytes, MIB);
	CHECK_EQ(w.tool_resp_p99_bytes, 64 * MIB);
	CHECK_EQ(w.mem_bytes, 16 * KIB);
	CHECK_EQ(w.model_req_bytes, 0);
	CHECK_EQ(w.bulk_bytes, 1024ull * MIB);
	CHECK_EQ(w.tool_service_us, 1600000);
	CHECK_EQ(w.mem_service_us, 250);
	CHECK_EQ(w.model_service_us, 60000000);
	CHECK_EQ(w.token_interval_us, 7);

	CHECK_EQ(wl_parse_string("bulk_bytes = 1GiB\n", "s", &w, err, sizeof(err)), 0);
	CHECK_EQ(w.bulk_bytes, 1ull << 30);
	CHECK_EQ(wl_parse_string("bulk_bytes = 3MiB\nfanout = 007\n", "s", &w, err, sizeof(err)),
		 0);
	CHECK_EQ(w.bulk_bytes, 3ull << 20);
	CHECK_EQ(w.fanout, 7);
}

static void test_comments(void)
{
	struct wl w;
	char err[256] = "";

	CHECK_EQ(wl_parse_string("\xef\xbb\xbf# byte order mark, then a comment\n"
				 "\n"
				 "   # indented comment\n"
				 "\t\n"
				 "fanout = 4 # trailing comment\n"
				 "  tokens=100#no spaces\r\n"
				 "name\t=\tcmt # tab separated\n"
				 "mem_lookups = 1",
				 "s", &w, err, sizeof(err)),
		 0);
	CHECK_EQ(w.fanout, 4);
	CHECK_EQ(w.tokens, 100);
	CHECK_EQ(w.mem_lookups, 1);
	CHECK(!strcmp(w.name, "cmt"));

	/* Line numbers count blank and comment lines. */
	CHECK_EQ(wl_parse_string("# 1\n\n# 3\n  \nbogus = 1\n", "c.wl", &w, err, sizeof(err)),
		 -EINVAL);
	CHECK(!strncmp(err, "c.wl:5: ", 8));
	/* CRLF line endings count lines the same way. */
	CHECK_EQ(wl_parse_string("# 1\r\n\r\nfanout = x\r\n", "c.wl", &w, err, sizeof(err)),
		 -EINVAL);
	CHECK(!strncmp(err, "c.wl:3: ", 8));
}

static void test_base(void)
{
	struct wl w, c;
	char err[256] = "";

	wl_builtin("classic", &c);
	CHECK_EQ(wl_parse_string("# comment first is fine\nbase = classic\n", "s", &w, err,
				 sizeof(err)),
		 0);
	CHECK(wl_equal(&w, &c));

	CHECK_EQ(wl_parse_string("base = classic\nname = classic-16k\nmodel_req_bytes = 16K\n", "s",
				 &w, err, sizeof(err)),
		 0);
	CHECK(!strcmp(w.name, "classic-16k"));
	CHECK_EQ(w.model_req_bytes, 16384);
	CHECK_EQ(w.fanout, 0);
	CHECK_EQ(w.mem_lookups, 0);
	CHECK_EQ(w.tokens, 520);

	CHECK_EQ(wl_parse_string("base = agentic\nfanout = 2\n", "s", &w, err, sizeof(err)), 0);
	CHECK_EQ(w.fanout, 2);
	CHECK_EQ(w.mem_lookups, 2);
}

static void test_validate(void)
{
	struct wl w, a;
	char err[256];

	wl_builtin("agentic", &a);

#define BAD(field, value, want)                                                      \
	do {                                                                         \
		w = a;                                                               \
		w.field = (value);                                                   \
		err[0] = '\0';                                                       \
		CHECK_EQ(wl_validate(&w, err, sizeof(err)), -EINVAL);                \
		if (!strstr(err, want)) {                                            \
			fprintf(stderr, "%s: '%s' lacks '%s'\n", #field, err, want); \
			exit(1);                                                     \
		}                                                                    \
	} while (0)
#define OK(field, value)                                                    \
	do {                                                                \
		w = a;                                                      \
		w.field = (value);                                          \
		if (wl_validate(&w, err, sizeof(err))) {                    \
			fprintf(stderr, "%s = %llu rejected: %s\n", #field, \
				(unsigned long long)(value), err);          \
			exit(1);                                            \
		}                                                           \
	} while (0)

	OK(fanout, 1024);
	BAD(fanout, 1025, "fanout");
	OK(mem_lookups, 64);
	BAD(mem_lookups, 65, "mem_lookups");
	OK(tool_req_bytes, 8);
	BAD(tool_req_bytes, 7, "8-byte header");
	BAD(tool_req_bytes, 64 * MIB + 1, "tool_req_bytes");
	OK(mem_bytes, 16);
	BAD(mem_bytes, 15, "mem_bytes");
	BAD(mem_bytes, 64 * MIB + 1, "mem_bytes");
	OK(model_req_bytes, 16);
	BAD(model_req_bytes, 15, "model_req_bytes");
	BAD(model_req_bytes, 64 * MIB + 1, "model_req_bytes");
	OK(tool_resp_p99_bytes, 64 * MIB);
	BAD(tool_resp_p99_bytes, 64 * MIB + 1, "tool_resp_p99_bytes");
	BAD(tool_resp_p99_bytes, 16383, "p90 <= p99");
	BAD(tool_resp_bytes, 16385, "p50 <= p90");
	BAD(token_bytes, 0, "token_bytes");
	BAD(token_batch, 0, "token_batch");
	OK(retry_pct, 100);
	BAD(retry_pct, 101, "retry_pct");
	OK(tool_service_us, 60000000);
	BAD(tool_service_us, 60000001, "tool_service_us");
	BAD(mem_service_us, 60000001, "mem_service_us");
	BAD(model_service_us, 60000001, "model_service_us");
	BAD(token_interval_us, 60000001, "token_interval_us");
	OK(bulk_bytes, 1ull << 30);
	BAD(bulk_bytes, (1ull << 30) + 1, "bulk_bytes");
	BAD(name[0], '\0', "empty name");
	BAD(name[0], ' ', "bad name");

	/* Unused fields may be zero. */
	w = a;
	w.fanout = 0;
	w.tool_req_bytes = 0;
	w.mem_lookups = 0;
	w.mem_bytes = 0;
	w.tokens = 0;
	w.token_bytes = 0;
	w.model_req_bytes = 0;
	CHECK_EQ(wl_validate(&w, err, sizeof(err)), 0);

	/* An unterminated name is caught, not read past. */
	w = a;
	memset(w.name, 'x', sizeof(w.name));
	CHECK_EQ(wl_validate(&w, err, sizeof(err)), -EINVAL);
	/* err may be NULL. */
	CHECK_EQ(wl_validate(&w, NULL, 0), -EINVAL);
#undef BAD
#undef OK
}

static void test_resp_size(void)
{
	struct wl w, c;
	uint32_t prev = 0;

	wl_builtin("agentic", &w);
	CHECK_EQ(wl_tool_resp_size(&w, 0.5), 4096);
	CHECK_EQ(wl_tool_resp_size(&w, 0.9), 16384);
	CHECK_EQ(wl_tool_resp_size(&w, 0.99), 65536);
	CHECK_EQ(wl_tool_resp_size(&w, 0.0), 2048);
	CHECK_EQ(wl_tool_resp_size(&w, 0.999999), 65536);
	CHECK_EQ(wl_tool_resp_size(&w, 1.0), 65536);
	/* Out-of-range draws clamp instead of extrapolating. */
	CHECK_EQ(wl_tool_resp_size(&w, -1.0), 2048);
	CHECK_EQ(wl_tool_resp_size(&w, 2.0), 65536);
	/* Log-linear: halfway (in r) between p50 and p90 is the geometric mean. */
	CHECK_EQ(wl_tool_resp_size(&w, 0.7), 8192);

	for (int i = 0; i <= 100000; i++) {
		uint32_t s = wl_tool_resp_size(&w, i / 100000.0);

		CHECK(s >= prev);
		CHECK(s >= 2048 && s <= 65536);
		prev = s;
	}

	/* Odd quantiles, still monotone and exact at the knots. */
	w.tool_resp_bytes = 3;
	w.tool_resp_p90_bytes = 1000;
	w.tool_resp_p99_bytes = 64 * MIB;
	CHECK_EQ(wl_tool_resp_size(&w, 0.0), 1);
	CHECK_EQ(wl_tool_resp_size(&w, 0.5), 3);
	CHECK_EQ(wl_tool_resp_size(&w, 0.9), 1000);
	CHECK_EQ(wl_tool_resp_size(&w, 0.99), 64 * MIB);
	prev = 0;
	for (int i = 0; i <= 100000; i++) {
		uint32_t s = wl_tool_resp_size(&w, i / 100000.0);

		CHECK(s >= prev);
		prev = s;
	}

	/* p50 = 1: the lower knot is floored at 1 byte. */
	w.tool_resp_bytes = 1;
	CHECK_EQ(wl_tool_resp_size(&w, 0.0), 1);
	CHECK_EQ(wl_tool_resp_size(&w, 0.25), 1);

	/* p50 = p90 = p99: one fixed size for every draw. */
	wl_builtin("classic", &c);
	for (int i = 0; i <= 100; i++)
		CHECK_EQ(wl_tool_resp_size(&c, i / 100.0), 4096);

	/* The lower tail is never spread wider than the upper: p90 = 1.5 p50. */
	c.tool_resp_p90_bytes = 6144;
	c.tool_resp_p99_bytes = 8192;
	CHECK_EQ(wl_tool_resp_size(&c, 0.0), 2730); /* floor(4096 / 1.5) */
	CHECK_EQ(wl_tool_resp_size(&c, 0.5), 4096);
	CHECK_EQ(wl_tool_resp_size(&c, 0.9), 6144);
	CHECK_EQ(wl_tool_resp_size(&c, 0.99), 8192);
	prev = 0;
	for (int i = 0; i <= 100000; i++) {
		uint32_t s = wl_tool_resp_size(&c, i / 100000.0);

		CHECK(s >= prev);
		prev = s;
	}
	CHECK_EQ(wl_tool_resp_size(&c, (double)NAN), 4096); /* NaN: the median */
}

static void test_json(void)
{
	static const char *const keys[] = {
		"name",
		"fanout",
		"tool_req_bytes",
		"tool_resp_bytes",
		"tool_resp_p90_bytes",
		"tool_resp_p99_bytes",
		"mem_lookups",
		"mem_bytes",
		"model_req_bytes",
		"tokens",
		"token_bytes",
		"token_batch",
		"telemetry_counters",
		"telemetry_hists",
		"retry_pct",
		"tool_service_us",
		"mem_service_us",
		"model_service_us",
		"token_interval_us",
		"bulk_bytes",
	};
	char buf[1024], small[16], key[64];
	struct wl w;
	int n;

	wl_builtin("agentic", &w);
	w.bulk_bytes = 1ull << 30;
	n = wl_to_json(&w, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf));
	CHECK(buf[0] == '{' && buf[n - 1] == '}');
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(key, sizeof(key), "\"%s\":", keys[i]);
		CHECK(strstr(buf, key));
	}
	CHECK(strstr(buf, "\"name\":\"agentic\""));
	CHECK(strstr(buf, "\"fanout\":8,"));
	CHECK(strstr(buf, "\"tool_resp_p99_bytes\":65536,"));
	CHECK(strstr(buf, "\"bulk_bytes\":1073741824}"));

	/* Truncation: the return value is the full length, the buffer terminated. */
	CHECK_EQ(wl_to_json(&w, small, sizeof(small)), n);
	CHECK_EQ(strlen(small), sizeof(small) - 1);
	CHECK_EQ(wl_to_json(&w, NULL, 0), n);

	/* A name set by hand is escaped. */
	strcpy(w.name, "a\"b\\c\n");
	wl_to_json(&w, buf, sizeof(buf));
	CHECK(strstr(buf, "\"name\":\"a\\\"b\\\\c\\u000a\""));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f);
	CHECK(fputs(text, f) >= 0);
	CHECK(!fclose(f));
}

static void test_files(void)
{
	char dir[] = "/tmp/wp_wl_XXXXXX", path[256], err[512] = "";
	struct wl w, before;

	CHECK(mkdtemp(dir));

	/* A file without `name` is named after its basename. */
	snprintf(path, sizeof(path), "%s/my sweep.wl", dir);
	write_file(path, "fanout = 2\n");
	CHECK_EQ(wl_parse_file(path, &w, err, sizeof(err)), 0);
	CHECK(!strcmp(w.name, "my_sweep"));
	CHECK_EQ(w.fanout, 2);
	CHECK_EQ(wl_load(path, &w, err, sizeof(err)), 0);
	CHECK(!strcmp(w.name, "my_sweep"));
	unlink(path);

	/* Errors in a file carry the path and line. */
	snprintf(path, sizeof(path), "%s/bad.wl", dir);
	write_file(path, "# ok\nfanout = 2\nfanout = 3\n");
	memset(&w, 0x5a, sizeof(w));
	before = w;
	CHECK_EQ(wl_parse_file(path, &w, err, sizeof(err)), -EINVAL);
	CHECK(!memcmp(&w, &before, sizeof(w)));
	{
		char want[300];

		snprintf(want, sizeof(want), "%s:3: duplicate key 'fanout'", path);
		CHECK(!strncmp(err, want, strlen(want)));
	}
	CHECK_EQ(wl_load(path, &w, err, sizeof(err)), -EINVAL);
	CHECK(!memcmp(&w, &before, sizeof(w)));

	/* A NUL byte in a file is an error on its line, not a silent end. */
	{
		FILE *f = fopen(path, "w");

		CHECK(f);
		CHECK(fwrite("fanout = 2\nfan\0out = 3\n", 1, 23, f) == 23);
		CHECK(!fclose(f));
	}
	CHECK_EQ(wl_parse_file(path, &w, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, ":2: NUL byte"));
	unlink(path);

	/* Missing files and directories. */
	snprintf(path, sizeof(path), "%s/none.wl", dir);
	CHECK_EQ(wl_parse_file(path, &w, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "none.wl"));
	CHECK_EQ(wl_load("agentik", &w, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "agentik: not a built-in workload"));
	CHECK(wl_parse_file(dir, &w, err, sizeof(err)) < 0);
	CHECK(!memcmp(&w, &before, sizeof(w)));

	CHECK(!rmdir(dir));
}

static void test_shipped(void)
{
	const char *pattern = WP_SRC_DIR "/bench/workloads/*.wl";
	bool seen_agentic = false, seen_classic = false, seen_toolcall = false,
	     seen_fanout64 = false;
	struct wl w, ref;
	char err[512];
	glob_t g;

	CHECK_EQ(glob(pattern, 0, NULL, &g), 0);
	CHECK(g.gl_pathc >= 4);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *p = g.gl_pathv[i], *base = strrchr(p, '/') + 1;

		err[0] = '\0';
		if (wl_parse_file(p, &w, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		CHECK_EQ(wl_validate(&w, err, sizeof(err)), 0);
		if (!strcmp(base, "agentic.wl")) {
			wl_builtin("agentic", &ref);
			CHECK(wl_equal(&w, &ref));
			seen_agentic = true;
		} else if (!strcmp(base, "classic.wl")) {
			wl_builtin("classic", &ref);
			CHECK(wl_equal(&w, &ref));
			seen_classic = true;
		} else if (!strcmp(base, "toolcall.wl")) {
			CHECK(!strcmp(w.name, "toolcall"));
			CHECK_EQ(w.fanout, 1);
			CHECK_EQ(w.tool_req_bytes, 1024);
			CHECK_EQ(w.tool_resp_bytes, 4096);
			CHECK_EQ(w.tool_resp_p90_bytes, 4096);
			CHECK_EQ(w.tool_resp_p99_bytes, 4096);
			CHECK_EQ(w.mem_lookups, 0);
			CHECK_EQ(w.model_req_bytes, 0);
			CHECK_EQ(w.tokens, 0);
			CHECK_EQ(w.telemetry_counters, 0);
			CHECK_EQ(w.telemetry_hists, 0);
			CHECK_EQ(w.retry_pct, 0);
			CHECK_EQ(w.bulk_bytes, 0);
			for (int k = 0; k <= 100; k++)
				CHECK_EQ(wl_tool_resp_size(&w, k / 101.0), 4096);
			seen_toolcall = true;
		} else if (!strcmp(base, "fanout64.wl")) {
			wl_builtin("agentic", &ref);
			ref.fanout = 64;
			strcpy(ref.name, "fanout64");
			CHECK(wl_equal(&w, &ref));
			seen_fanout64 = true;
		}
	}
	globfree(&g);
	CHECK(seen_agentic && seen_classic && seen_toolcall && seen_fanout64);
}

int main(void)
{
	test_watchdog(30);
	test_builtins();
	test_full_file();
	test_errors();
	test_suffixes();
	test_comments();
	test_base();
	test_validate();
	test_resp_size();
	test_json();
	test_files();
	test_shipped();
	printf("test_workload: ok\n");
	return 0;
}
