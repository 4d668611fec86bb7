/* SPDX-License-Identifier: MIT */
/*
 * Tiny test helpers: CHECK aborts the test with file:line, SKIP exits 77
 * (only for a missing feature found during setup), a watchdog alarm, an
 * FNV-1a checksum and a pattern filler for payload integrity, --path
 * parsing, and a capture of the process log hook for tests that check what
 * the library said.
 */
#ifndef WP_TESTLIB_H
#define WP_TESTLIB_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wirepath/wirepath.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                    \
	do {                                                                              \
		long long a_ = (long long)(a), b_ = (long long)(b);                       \
		if (a_ != b_) {                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, a_, b_);                      \
			exit(1);                                                          \
		}                                                                         \
	} while (0)

#define SKIP(...)                                      \
	do {                                           \
		fprintf(stderr, "skip: " __VA_ARGS__); \
		fprintf(stderr, "\n");                 \
		exit(77);                              \
	} while (0)

/* WP_TEST_WATCHDOG_SCALE=N multiplies every watchdog (the VM's rdma tests
 * under TCG, sanitized: tests/vm/rdma_guest.sh). */
static inline void test_watchdog(unsigned seconds)
{
	const char *k = getenv("WP_TEST_WATCHDOG_SCALE");
	unsigned m = k ? (unsigned)atoi(k) : 1;

	signal(SIGALRM, SIG_DFL);
	alarm(seconds * (m >= 1 && m <= 10 ? m : 1));
}

static inline uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* Deterministic pseudo-random bytes (xorshift64): a payload whose every
 * byte depends on seed and position, so a lost, repeated or misplaced chunk
 * shows in a checksum or a memcmp. */
static inline void test_fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* "--path tcp" / "--path uring"; default tcp. */
static inline const char *test_path(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--path"))
			return argv[i + 1];
	return "tcp";
}

/*
 * The process log hook (wp_set_log), captured: the reasons calls without a
 * context give. test_log_capture() installs it and clears the record; errs
 * counts WP_LOG_ERR lines, last holds the last one. Every line is also
 * echoed to stderr, so a failing test's log shows it.
 */
struct test_log {
	int errs;
	char last[WP_LOG_LINE_MAX];
};
static struct test_log test_log __attribute__((unused));

static inline void test_log_fn(void *arg, enum wp_log_level level, const char *msg)
{
	struct test_log *t = arg;

	if (level == WP_LOG_ERR) {
		t->errs++;
		snprintf(t->last, sizeof(t->last), "%s", msg);
	}
	fprintf(stderr, "log(%d): %s\n", (int)level, msg);
}

static inline void test_log_capture(void)
{
	memset(&test_log, 0, sizeof(test_log));
	wp_set_log(test_log_fn, &test_log, WP_LOG_WARN);
}

#endif
