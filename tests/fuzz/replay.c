// SPDX-License-Identifier: MIT
/*
 * The replay driver for every fuzz target, built with the project's compiler
 * (no libFuzzer) into test_fuzz_NAME (tests/meson.build, one line per
 * target), so each parser meets hostile input on every `make test`, clang or
 * not. It runs the target's LLVMFuzzerTestOneInput over every file of its
 * corpus (tests/fuzz/corpus-NAME/: the seeds and the minimized finds), then
 * over deterministic mutations of them: generic ones (bit flips, edge values
 * of 8, 16 and 32 bits, truncation, deletion, insertion, duplication,
 * splicing seeds, whole lines duplicated or dropped, digits turned into edge
 * digits), tokens from the target's libFuzzer dictionary
 * (tests/fuzz/NAME.dict, when there is one) and, for a share of them, the
 * target's own structure-aware mutation (wp_fuzz_mutate, fuzz.h) when it
 * defines one. Each input lives in its own exact-size heap block, so a
 * sanitizer build sees overreads.
 *
 * Usage: test_fuzz_NAME [CORPUS_DIR [MUTATIONS]] runs the corpus and
 *        MUTATIONS mutations (default WP_FUZZ_MUTATIONS, at most
 *        WP_FUZZ_REPLAY_SECS seconds of them; env WP_FUZZ_REPLAY_SECS);
 *        test_fuzz_NAME FILE... runs just those inputs (a crash to reproduce).
 * A broken invariant aborts inside the target; the handler here says which
 * input it was, saves it under $TMPDIR (or /tmp) and exits 1. So does a
 * crash (SIGSEGV, SIGBUS, SIGFPE) and an input that hangs (SIGALRM).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef WP_FUZZ_CORPUS
#error "tests/meson.build sets WP_FUZZ_CORPUS (the corpus directory)"
#endif
#ifndef WP_FUZZ_DICT
#define WP_FUZZ_DICT ""
#endif
#define WP_FUZZ_MUTATIONS 100000
#define WP_FUZZ_REPLAY_SECS 20 /* well under tests/run.sh's timeout, even under ASan */
#define REPLAY_HANG_SECS 60    /* one input this long is a hang */
#define REPLAY_MAX_SEEDS 1024
#define REPLAY_MAX_INPUT (64u << 10)
#define REPLAY_MAX_TOKENS 512
#define REPLAY_MAX_TOKEN 128

/* Weak: a target without structure-aware mutations leaves it NULL. */
__attribute__((weak)) size_t wp_fuzz_mutate(uint8_t *buf, size_t len, size_t cap,
					    uint64_t (*rnd)(void));

struct blob {
	char name[256];
	uint8_t *data;
	size_t len;
};

static struct blob seeds[REPLAY_MAX_SEEDS];
static size_t nseeds;
static struct blob tokens[REPLAY_MAX_TOKENS]; /* the dictionary */
static size_t ntokens;

/* What is running now, for the signal handler. */
static const uint8_t *cur_data;
static size_t cur_len;
static char cur_what[320];

static void on_fatal(int sig)
{
	char path[256];
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/wp-fuzz-%s-crash-%d.bin", tmp && *tmp ? tmp : "/tmp",
		 WP_FUZZ_NAME, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, cur_data, cur_len) != (ssize_t)cur_len)
			path[0] = '\0';
		close(fd);
	}
	fprintf(stderr,
		"test_fuzz_%s: FAIL (%s) on %s (%zu bytes); input saved as %s "
		"(reproduce: test_fuzz_%s FILE, or fuzz_%s FILE under libFuzzer)\n",
		WP_FUZZ_NAME, sig == SIGALRM ? "hang" : strsignal(sig), cur_what, cur_len,
		fd >= 0 && path[0] ? path : "(could not save)", WP_FUZZ_NAME, WP_FUZZ_NAME);
	_exit(1);
}

static uint64_t rng = 0x77697265706174ull; /* "wirepat": fixed, so runs repeat */

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

/* Read a whole file (at most REPLAY_MAX_INPUT bytes) into b. 0, 1 (skipped:
 * not a regular file or too large) or -1. */
static int load_file(const char *path, const char *name, struct blob *b)
{
	struct stat st;
	FILE *f;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 1;
	if ((size_t)st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "test_fuzz_%s: skipping %s (over %u bytes)\n", WP_FUZZ_NAME, path,
			REPLAY_MAX_INPUT);
		return 1;
	}
	b->len = (size_t)st.st_size;
	b->data = malloc(b->len ? b->len : 1);
	f = fopen(path, "rb");
	if (!b->data || !f || fread(b->data, 1, b->len, f) != b->len) {
		fprintf(stderr, "test_fuzz_%s: cannot read %s: %s\n", WP_FUZZ_NAME, path,
			strerror(errno));
		if (f)
			fclose(f);
		free(b->data);
		return -1;
	}
	fclose(f);
	snprintf(b->name, sizeof(b->name), "%s", name);
	return 0;
}

static int load_corpus(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (!d) {
		fprintf(stderr, "test_fuzz_%s: cannot open corpus %s: %s\n", WP_FUZZ_NAME, dir,
			strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char path[4096];

		if (e->d_name[0] == '.')
			continue;
		if (nseeds == REPLAY_MAX_SEEDS) {
			fprintf(stderr,
				"test_fuzz_%s: more than %d files in %s; keep the corpus small "
				"(libFuzzer -merge=1)\n",
				WP_FUZZ_NAME, REPLAY_MAX_SEEDS, dir);
			ret = -1;
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ret = load_file(path, e->d_name, &seeds[nseeds]);
		if (ret < 0)
			break;
		if (ret == 0)
			nseeds++;
		ret = 0;
	}
	closedir(d);
	return ret;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The libFuzzer dictionary format: one token a line, `"value"` or
 * `name="value"`, escapes \\ \" \xNN; '#' starts a comment line. A missing
 * file is no dictionary; a malformed line is an error (the same file drives
 * libFuzzer, which would refuse it too).
 */
static int load_dict(const char *path)
{
	char line[1024];
	unsigned lineno = 0;
	FILE *f;

	if (!path[0])
		return 0;
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f)) {
		char *q = strchr(line, '"'), *s;
		uint8_t tok[REPLAY_MAX_TOKEN];
		size_t n = 0;

		lineno++;
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '#' || *s == '\n' || *s == '\0')
			continue;
		if (!q)
			goto bad;
		for (s = q + 1; *s && *s != '"'; s++) {
			int c = (unsigned char)*s;

			if (c == '\\') {
				if (s[1] == 'x' && hexval(s[2]) >= 0 && hexval(s[3]) >= 0) {
					c = hexval(s[2]) * 16 + hexval(s[3]);
					s += 3;
				} else if (s[1] == '\\' || s[1] == '"') {
					c = (unsigned char)*++s;
				} else {
					goto bad;
				}
			}
			if (n == sizeof(tok))
				goto bad;
			tok[n++] = (uint8_t)c;
		}
		if (*s != '"' || n == 0)
			goto bad;
		if (ntokens == REPLAY_MAX_TOKENS)
			break;
		tokens[ntokens].data = malloc(n);
		if (!tokens[ntokens].data)
			goto bad;
		memcpy(tokens[ntokens].data, tok, n);
		tokens[ntokens].len = n;
		ntokens++;
	}
	fclose(f);
	return 0;
bad:
	fprintf(stderr, "test_fuzz_%s: %s:%u: not a dictionary line (\"token\", escapes \\xNN)\n",
		WP_FUZZ_NAME, path, lineno);
	fclose(f);
	return -1;
}

/* Run the target on buf[0..len) from an exact-size heap copy. */
static void run_one(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy) {
		fprintf(stderr, "test_fuzz_%s: out of memory\n", WP_FUZZ_NAME);
		exit(1);
	}
	memcpy(copy, buf, len);
	cur_data = copy;
	cur_len = len;
	alarm(REPLAY_HANG_SECS);
	LLVMFuzzerTestOneInput(len ? copy : NULL, len);
	free(copy);
}

/* Values on the edges of 8-, 16- and 32-bit fields. */
static uint32_t interesting(unsigned *width)
{
	static const uint32_t v32[] = {
		0,           1,
		7,           8,
		15,          16,
		17,          39,
		40,          41,
		127,         128,
		255,         256,
		4095,        4096,
		4097,        32767,
		32768,       65535,
		65536,       (1u << 20) - 1,
		1u << 20,    (1u << 20) + 1,
		16u << 20,   (16u << 20) + 1,
		0x7fffffff,  0x80000000u,
		0xfffffffeu, 0xffffffffu,
	};
	static const unsigned widths[] = { 1, 2, 4, 4 };

	*width = widths[below(4)];
	return v32[below(sizeof(v32) / sizeof(v32[0]))];
}

/* buf[a..) for n bytes moved to make room for (or close) a gap. */
static void insert_at(uint8_t *buf, size_t *len, size_t a, const uint8_t *src, size_t k)
{
	memmove(buf + a + k, buf + a, *len - a);
	memcpy(buf + a, src, k);
	*len += k;
}

/* One generic mutation of buf (capacity cap, length *len). */
static void mutate_generic(uint8_t *buf, size_t *len, size_t cap)
{
	size_t n = *len, a, b, k;
	uint8_t tmp[64];

	switch (below(14)) {
	case 0: /* flip a bit */
		if (n)
			buf[below(n)] ^= (uint8_t)(1u << below(8));
		break;
	case 1: /* a random byte */
		if (n)
			buf[below(n)] = (uint8_t)rnd();
		break;
	case 2: { /* an edge value, little-endian, at a random offset */
		unsigned w;
		uint32_t v = interesting(&w);

		if (n >= w) {
			a = below(n - w + 1);
			for (unsigned i = 0; i < w; i++)
				buf[a + i] = (uint8_t)(v >> (8 * i));
		}
		break;
	}
	case 3: /* truncate */
		*len = below(n + 1);
		break;
	case 4: /* delete a range */
		if (n) {
			a = below(n);
			b = a + 1 + below(n - a < 64 ? n - a : 64);
			memmove(buf + a, buf + b, n - b);
			*len = n - (b - a);
		}
		break;
	case 5: /* insert random bytes */
		k = 1 + below(16);
		if (n + k <= cap) {
			for (size_t i = 0; i < k; i++)
				tmp[i] = (uint8_t)rnd();
			insert_at(buf, len, below(n + 1), tmp, k);
		}
		break;
	case 6: /* duplicate a range (repeated records) */
		if (n) {
			a = below(n);
			k = 1 + below(n - a < sizeof(tmp) ? n - a : sizeof(tmp));
			if (n + k <= cap) {
				memcpy(tmp, buf + a, k);
				insert_at(buf, len, rnd() & 1 ? n : below(n + 1), tmp, k);
			}
		}
		break;
	case 7: { /* append another seed, or cross over into one */
		const struct blob *s = &seeds[below(nseeds)];

		a = rnd() & 1 ? n : below(n + 1);
		b = below(s->len + 1);
		if (a + s->len - b <= cap) {
			memcpy(buf + a, s->data + b, s->len - b);
			*len = a + s->len - b;
		}
		break;
	}
	case 8: /* a dictionary token inserted */
	case 9:
		if (ntokens) {
			const struct blob *t = &tokens[below(ntokens)];

			if (n + t->len <= cap)
				insert_at(buf, len, below(n + 1), t->data, t->len);
		}
		break;
	case 10: /* a dictionary token written over */
		if (ntokens) {
			const struct blob *t = &tokens[below(ntokens)];

			if (n >= t->len)
				memcpy(buf + below(n - t->len + 1), t->data, t->len);
		}
		break;
	case 11: /* a decimal digit becomes an edge digit (0 or 9), or a run grows */
		for (a = below(n + 1); a < n; a++) {
			if (buf[a] >= '0' && buf[a] <= '9') {
				if (rnd() & 1 || n + 1 > cap)
					buf[a] = (uint8_t) "09"[rnd() & 1];
				else
					insert_at(buf, len, a, (const uint8_t *)"9", 1);
				break;
			}
		}
		break;
	case 12:   /* a whole line duplicated */
	case 13: { /* or dropped */
		int dup = below(2) == 0;
		uint8_t *nl;

		if (!n)
			break;
		a = below(n);
		while (a > 0 && buf[a - 1] != '\n')
			a--;
		nl = memchr(buf + a, '\n', n - a);
		b = nl ? (size_t)(nl - buf) + 1 : n;
		k = b - a;
		if (!dup) {
			memmove(buf + a, buf + b, n - b);
			*len = n - k;
		} else if (k <= sizeof(tmp) && n + k <= cap) {
			memcpy(tmp, buf + a, k);
			insert_at(buf, len, b, tmp, k);
		}
		break;
	}
	}
}

static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
	if (wp_fuzz_mutate && below(4) == 0) {
		size_t n = wp_fuzz_mutate(buf, *len, cap, rnd);

		if (n > cap) {
			fprintf(stderr, "test_fuzz_%s: wp_fuzz_mutate returned %zu > cap %zu\n",
				WP_FUZZ_NAME, n, cap);
			exit(1);
		}
		*len = n;
		return;
	}
	mutate_generic(buf, len, cap);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `test_fuzz_NAME FILE...`: run exactly those inputs. */
static int replay_files(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct blob b;

		if (load_file(argv[i], argv[i], &b) != 0) {
			fprintf(stderr, "test_fuzz_%s: cannot run %s\n", WP_FUZZ_NAME, argv[i]);
			return 1;
		}
		snprintf(cur_what, sizeof(cur_what), "file %.200s", argv[i]);
		run_one(b.data, b.len);
		free(b.data);
		printf("test_fuzz_%s: %s passed\n", WP_FUZZ_NAME, argv[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = WP_FUZZ_CORPUS, *env = getenv("WP_FUZZ_REPLAY_SECS");
	long iters = WP_FUZZ_MUTATIONS, it;
	double secs = env && *env ? strtod(env, NULL) : WP_FUZZ_REPLAY_SECS, t0;
	struct stat st;
	uint8_t *buf;

	signal(SIGABRT, on_fatal);
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGFPE, on_fatal);
	signal(SIGALRM, on_fatal);
	/* `--path X` (tests/run.sh's integration form) is not ours: ignore. */
	if (argc > 1 && strncmp(argv[1], "--", 2) != 0) {
		if (stat(argv[1], &st) == 0 && S_ISREG(st.st_mode))
			return replay_files(argc, argv);
		dir = argv[1];
		if (argc > 2)
			iters = strtol(argv[2], NULL, 0);
	}

	if (load_corpus(dir) < 0 || load_dict(WP_FUZZ_DICT) < 0)
		return 1;
	if (nseeds == 0) {
		fprintf(stderr, "test_fuzz_%s: no seeds in %s\n", WP_FUZZ_NAME, dir);
		return 1;
	}
	for (size_t i = 0; i < nseeds; i++) {
		snprintf(cur_what, sizeof(cur_what), "corpus file %.200s", seeds[i].name);
		run_one(seeds[i].data, seeds[i].len);
	}

	buf = malloc(REPLAY_MAX_INPUT);
	if (!buf) {
		fprintf(stderr, "test_fuzz_%s: out of memory\n", WP_FUZZ_NAME);
		return 1;
	}
	t0 = now_s();
	for (it = 0; it < iters; it++) {
		const struct blob *s = &seeds[below(nseeds)];
		size_t len = s->len, rounds = 1 + below(6);

		/* The clock only every 1024 inputs: it is not free. */
		if ((it & 1023) == 0 && it && now_s() - t0 > secs)
			break;
		memcpy(buf, s->data, len);
		for (size_t r = 0; r < rounds; r++)
			mutate(buf, &len, REPLAY_MAX_INPUT);
		snprintf(cur_what, sizeof(cur_what), "mutation %ld of %.200s", it, s->name);
		run_one(buf, len);
	}
	free(buf);
	printf("test_fuzz_%s: %zu corpus files, %zu dictionary tokens, %ld mutations%s passed "
	       "in %.1f s%s\n",
	       WP_FUZZ_NAME, nseeds, ntokens, it, wp_fuzz_mutate ? " (some structure-aware)" : "",
	       now_s() - t0, it < iters ? " (time cap reached)" : "");
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i].data);
	for (size_t i = 0; i < ntokens; i++)
		free(tokens[i].data);
	return 0;
}
