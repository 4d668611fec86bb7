// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the bench's workload files (tools/workload.c, format:
 * bench/workloads/README.md): text a user hands to `wirepath bench
 * --workload FILE`, parsed with the same limits that keep the bench from
 * sizing buffers from nonsense. Built two ways (tests/fuzz/fuzz.h): with
 * libFuzzer by tests/fuzz/run.sh, and into test_fuzz_workload, which replays
 * tests/fuzz/corpus-workload/ (the files of bench/workloads/ and broken
 * variants) and mutations of it, with the keys of tests/fuzz/workload.dict.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * Per input:
 *  (a) wl_parse_buf on the bytes as a file holds them. It returns 0 or
 *      -EINVAL. A failure leaves the caller's struct untouched and writes
 *      "fuzz:LINE: reason" (LINE within the input's lines) or "fuzz: reason"
 *      (a limit no line set), and the same message truncated into a small
 *      buffer. A success writes no message and gives a workload that
 *      wl_validate accepts, with a valid name.
 *  (b) a parsed workload, written back as a workload file from its JSON form
 *      (every key), parses to the same workload (the same JSON); wl_to_json
 *      into short buffers returns the full length and a NUL-terminated
 *      prefix.
 *  (c) wl_tool_resp_size on it: at the quantiles exactly p50, p90, p99, in
 *      [1, 64 MiB] everywhere, monotone in r, p50 for NaN.
 * A broken invariant aborts.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"
#include "fuzz.h"

#define WL_JSON_MAX 2048 /* the JSON of any workload: 20 fields, < 700 bytes */

static void json_of(const struct wl *w, char *buf)
{
	int n = wl_to_json(w, buf, WL_JSON_MAX);

	FUZZ_CHECK(n > 0 && n < WL_JSON_MAX);
	FUZZ_CHECK(strlen(buf) == (size_t)n);
}

/* {"name":"x","fanout":8,...} -> "name = x\nfanout = 8\n..." (names are
 * [A-Za-z0-9._+-], so no escapes to undo). Returns the length. */
static size_t text_of_json(const char *j, char *out, size_t cap)
{
	size_t o = 0;

	FUZZ_CHECK(*j++ == '{');
	while (*j != '}') {
		const char *k = j + 1, *ke, *v, *ve;

		FUZZ_CHECK(*j == '"');
		ke = strchr(k, '"');
		FUZZ_CHECK(ke && ke[1] == ':');
		v = ke + 2;
		if (*v == '"') {
			v++;
			ve = strchr(v, '"');
			FUZZ_CHECK(ve && !memchr(v, '\\', (size_t)(ve - v)));
			j = ve + 1;
		} else {
			for (ve = v; *ve >= '0' && *ve <= '9'; ve++)
				;
			FUZZ_CHECK(ve > v);
			j = ve;
		}
		FUZZ_CHECK(o + (size_t)(ke - k) + (size_t)(ve - v) + 5 < cap);
		o += (size_t)snprintf(out + o, cap - o, "%.*s = %.*s\n", (int)(ke - k), k,
				      (int)(ve - v), v);
		if (*j == ',')
			j++;
		else
			FUZZ_CHECK(*j == '}');
	}
	FUZZ_CHECK(j[1] == '\0');
	return o;
}

/* (a) on a failure: the message and its line. */
static void check_error(const uint8_t *data, size_t size, const char *err, int ret,
			const struct wl *w, const struct wl *poison)
{
	char small[12];
	struct wl w2 = *poison;
	unsigned long line;
	size_t lines = 1;
	char *end;

	FUZZ_CHECK(ret == -EINVAL);
	FUZZ_CHECK(!memcmp(w, poison, sizeof(*w)));
	FUZZ_CHECK(!strncmp(err, "fuzz:", 5));
	if (err[5] == ' ') {
		FUZZ_CHECK(err[6] != '\0');
	} else {
		line = strtoul(err + 5, &end, 10);
		FUZZ_CHECK(end != err + 5 && end[0] == ':' && end[1] == ' ' && end[2]);
		for (size_t i = 0; i < size; i++)
			lines += data[i] == '\n';
		FUZZ_CHECK(line >= 1 && line <= lines);
	}
	/* A short buffer: the same failure, the message cut and terminated. */
	memset(small, 'Z', sizeof(small));
	FUZZ_CHECK(wl_parse_buf(data, size, "fuzz", &w2, small, sizeof(small)) == ret);
	FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
	FUZZ_CHECK(!strncmp(small, err, strlen(small)));
	FUZZ_CHECK(strlen(small) ==
		   (strlen(err) < sizeof(small) ? strlen(err) : sizeof(small) - 1));
	FUZZ_CHECK(!memcmp(&w2, poison, sizeof(w2)));
}

/* (b) the workload written back parses to itself. */
static void check_round_trip(const struct wl *w)
{
	char j1[WL_JSON_MAX], j2[WL_JSON_MAX], text[WL_JSON_MAX], err[256], cut[64];
	struct wl w2;
	size_t n, cuts[] = { 0, 1, 2, 17, sizeof(cut) };
	int len;

	json_of(w, j1);
	n = text_of_json(j1, text, sizeof(text));
	err[0] = '\0';
	if (wl_parse_buf(text, n, "round-trip", &w2, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_workload: %s\n%s", err, text);
		FUZZ_CHECK(!"a parsed workload written back must parse");
	}
	json_of(&w2, j2);
	FUZZ_CHECK(!strcmp(j1, j2));
	FUZZ_CHECK(!strcmp(w->name, w2.name));

	len = (int)strlen(j1);
	FUZZ_CHECK(wl_to_json(w, NULL, 0) == len);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		memset(cut, 'Z', sizeof(cut));
		FUZZ_CHECK(wl_to_json(w, cut, cuts[i]) == len);
		if (cuts[i] == 0) {
			FUZZ_CHECK(cut[0] == 'Z');
			continue;
		}
		FUZZ_CHECK(strlen(cut) == ((size_t)len < cuts[i] ? (size_t)len : cuts[i] - 1));
		FUZZ_CHECK(!strncmp(cut, j1, strlen(cut)));
	}
}

/* (c) the tool-result size distribution of a valid workload. */
static void check_sizes(const struct wl *w)
{
	uint32_t prev = 0, s;

	FUZZ_CHECK(wl_tool_resp_size(w, 0.5) == w->tool_resp_bytes);
	FUZZ_CHECK(wl_tool_resp_size(w, 0.9) == w->tool_resp_p90_bytes);
	FUZZ_CHECK(wl_tool_resp_size(w, 0.99) == w->tool_resp_p99_bytes);
	FUZZ_CHECK(wl_tool_resp_size(w, 1.0) == w->tool_resp_p99_bytes);
	FUZZ_CHECK(wl_tool_resp_size(w, 2.0) == w->tool_resp_p99_bytes);
	FUZZ_CHECK(wl_tool_resp_size(w, NAN) == w->tool_resp_bytes);
	FUZZ_CHECK(wl_tool_resp_size(w, -1.0) == wl_tool_resp_size(w, 0.0));
	for (int i = 0; i <= 64; i++) {
		s = wl_tool_resp_size(w, i / 64.0);
		FUZZ_CHECK(s >= 1 && s <= (64u << 20));
		FUZZ_CHECK(s >= prev);
		prev = s;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wl w, poison;
	char err[256];
	int ret;

	memset(&poison, 0xa5, sizeof(poison));
	w = poison;
	memset(err, 'Z', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	ret = wl_parse_buf(data, size, "fuzz", &w, err, sizeof(err));
	FUZZ_CHECK(strlen(err) < sizeof(err));
	if (ret != 0) {
		check_error(data, size, err, ret, &w, &poison);
		return 0;
	}

	/* (a) on a success: no message, a valid workload with a valid name */
	FUZZ_CHECK(err[0] == 'Z');
	FUZZ_CHECK(wl_validate(&w, NULL, 0) == 0);
	FUZZ_CHECK(memchr(w.name, '\0', sizeof(w.name)) != NULL && w.name[0] != '\0');
	check_round_trip(&w);
	check_sizes(&w);
	return 0;
}
