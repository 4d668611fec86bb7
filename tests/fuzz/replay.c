// SPDX-License-Identifier: MIT
/*
 * Replay driver for the frame fuzz target, built with plain gcc (no
 * libFuzzer) as test_fuzz_replay, so the decoder and the receive parser meet
 * hostile input on every test run, clang or not. It runs
 * LLVMFuzzerTestOneInput over every seed in tests/fuzz/corpus/, then over
 * 200000 deterministic mutations of those seeds (bit flips, interesting
 * values in the header fields, truncation, insertion, deletion, duplication,
 * splicing seeds together). Each input lives in its own exact-size heap block,
 * so a sanitizer build sees overreads.
 *
 * Usage: test_fuzz_replay [CORPUS_DIR [MUTATIONS]]. A broken invariant aborts
 * inside the target; the handler here says which input it was, saves it under
 * $TMPDIR (or /tmp) for `fuzz_frame FILE`, and exits 1.
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
#include <unistd.h>

#include "core/frame.h"

#ifndef WP_SRC_DIR
#define WP_SRC_DIR "."
#endif

#define REPLAY_MUTATIONS 200000
#define REPLAY_MAX_SEEDS 256
#define REPLAY_MAX_INPUT (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seed {
	char name[256];
	uint8_t *data;
	size_t len;
};

static struct seed seeds[REPLAY_MAX_SEEDS];
static size_t nseeds;

/* What is running now, for the abort handler. */
static const uint8_t *cur_data;
static size_t cur_len;
static char cur_what[320];

static void on_abort(int sig)
{
	char path[256];
	const char *tmp = getenv("TMPDIR");
	int fd;

	(void)sig;
	snprintf(path, sizeof(path), "%s/wp-fuzz-replay-crash-%d.bin", tmp && *tmp ? tmp : "/tmp",
		 (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, cur_data, cur_len) != (ssize_t)cur_len)
			path[0] = '\0';
		close(fd);
	}
	fprintf(stderr, "test_fuzz_replay: FAIL on %s (%zu bytes); input saved as %s\n", cur_what,
		cur_len, fd >= 0 && path[0] ? path : "(could not save)");
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

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static int load_corpus(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		fprintf(stderr, "test_fuzz_replay: cannot open corpus %s: %s\n", dir,
			strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;
		FILE *f;
		struct seed *s;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (nseeds == REPLAY_MAX_SEEDS || (size_t)st.st_size > REPLAY_MAX_INPUT) {
			fprintf(stderr, "test_fuzz_replay: skipping %s (too many or too large)\n",
				path);
			continue;
		}
		s = &seeds[nseeds];
		s->len = (size_t)st.st_size;
		s->data = malloc(s->len ? s->len : 1);
		f = fopen(path, "rb");
		if (!s->data || !f || fread(s->data, 1, s->len, f) != s->len) {
			fprintf(stderr, "test_fuzz_replay: cannot read %s\n", path);
			if (f)
				fclose(f);
			closedir(d);
			return -1;
		}
		fclose(f);
		snprintf(s->name, sizeof(s->name), "%s", e->d_name);
		nseeds++;
	}
	closedir(d);
	return 0;
}

/* Run the target on buf[0..len) from an exact-size heap copy. */
static void run_one(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy) {
		fprintf(stderr, "test_fuzz_replay: out of memory\n");
		exit(1);
	}
	memcpy(copy, buf, len);
	cur_data = copy;
	cur_len = len;
	LLVMFuzzerTestOneInput(len ? copy : NULL, len);
	free(copy);
}

/* Values that sit on the decoder's edges. */
static uint32_t interesting32(void)
{
	static const uint32_t v[] = {
		0,
		1,
		7,
		8,
		39,
		40,
		41,
		4095,
		4096,
		4097,
		65535,
		65536,
		(1u << 20) - 1,
		1u << 20,
		(1u << 20) + 1,
		WP_FRAME_MAX_DEFAULT,
		0x7fffffff,
		0x80000000u,
		0xfffffffeu,
		0xffffffffu,
	};
	return v[rnd_below(sizeof(v) / sizeof(v[0]))];
}

/*
 * Offset of a frame header in buf to aim field mutations at: walk the frames
 * the declared lengths describe and pick one of their starts (or 0).
 */
static size_t pick_header(const uint8_t *buf, size_t len)
{
	size_t starts[64], n = 0, off = 0;

	while (off + WP_FRAME_HDR <= len && n < 64) {
		uint32_t flen = (uint32_t)buf[off + 24] | (uint32_t)buf[off + 25] << 8 |
				(uint32_t)buf[off + 26] << 16 | (uint32_t)buf[off + 27] << 24;

		starts[n++] = off;
		if (flen > len - off - WP_FRAME_HDR)
			break;
		off += WP_FRAME_HDR + flen;
	}
	return n ? starts[rnd_below(n)] : 0;
}

/* Apply one random mutation to buf (capacity cap, length *len). */
static void mutate_once(uint8_t *buf, size_t *len, size_t cap)
{
	size_t n = *len, h, a, b;

	switch (rnd_below(11)) {
	case 0: /* flip a bit */
		if (n)
			buf[rnd_below(n)] ^= (uint8_t)(1u << rnd_below(8));
		break;
	case 1: /* a random byte */
		if (n)
			buf[rnd_below(n)] = (uint8_t)rnd();
		break;
	case 2: /* an edge value into a header field (type, version, flags) */
		h = pick_header(buf, n);
		a = h + (size_t[]){ 4, 5, 5, 6, 7 }[rnd_below(5)];
		if (a < n)
			buf[a] = (uint8_t)(size_t[]){ 0,    1,   2, WP_FT__MAX, WP_FT__MAX + 1,
						      0x80, 0xff }[rnd_below(7)];
		break;
	case 3: /* an edge value into a 32-bit field, most often len */
		h = pick_header(buf, n);
		a = h + (size_t[]){ 24, 24, 24, 8, 12, 28 }[rnd_below(6)];
		if (a + 4 <= n) {
			uint32_t v = interesting32();

			buf[a] = (uint8_t)v;
			buf[a + 1] = (uint8_t)(v >> 8);
			buf[a + 2] = (uint8_t)(v >> 16);
			buf[a + 3] = (uint8_t)(v >> 24);
		}
		break;
	case 4: /* truncate */
		*len = rnd_below(n + 1);
		break;
	case 5: /* delete a range */
		if (n) {
			a = rnd_below(n);
			b = a + 1 + rnd_below(n - a < 64 ? n - a : 64);
			memmove(buf + a, buf + b, n - b);
			*len = n - (b - a);
		}
		break;
	case 6: /* insert random bytes */
		b = 1 + rnd_below(16);
		if (n + b <= cap) {
			a = rnd_below(n + 1);
			memmove(buf + a + b, buf + a, n - a);
			for (size_t i = 0; i < b; i++)
				buf[a + i] = (uint8_t)rnd();
			*len = n + b;
		}
		break;
	case 7: /* duplicate a range at the end (repeated frames) */
		if (n) {
			a = rnd_below(n);
			b = 1 + rnd_below(n - a);
			if (n + b <= cap) {
				memcpy(buf + n, buf + a, b);
				*len = n + b;
			}
		}
		break;
	case 8: /* append another seed (frames back to back) */
	case 9: {
		const struct seed *s = &seeds[rnd_below(nseeds)];

		if (n + s->len <= cap) {
			memcpy(buf + n, s->data, s->len);
			*len = n + s->len;
		}
		break;
	}
	default: /* restore the magic and version of a header (keep it parseable) */
		h = pick_header(buf, n);
		if (h + 5 <= n)
			memcpy(buf + h, "WPF1\x01", 5);
		break;
	}
}

int main(int argc, char **argv)
{
	const char *dir = WP_SRC_DIR "/tests/fuzz/corpus";
	long iters = REPLAY_MUTATIONS;
	uint8_t *buf;

	if (argc > 1 && strncmp(argv[1], "--", 2) != 0)
		dir = argv[1];
	if (argc > 2 && strncmp(argv[2], "--", 2) != 0)
		iters = strtol(argv[2], NULL, 0);
	signal(SIGABRT, on_abort);
	alarm(170); /* under the runner's timeout, so a hang reads as a failure here */

	if (load_corpus(dir) < 0)
		return 1;
	if (nseeds == 0) {
		fprintf(stderr,
			"test_fuzz_replay: no seeds in %s (run tests/fuzz/make-corpus.py)\n", dir);
		return 1;
	}

	for (size_t i = 0; i < nseeds; i++) {
		snprintf(cur_what, sizeof(cur_what), "seed %.200s", seeds[i].name);
		run_one(seeds[i].data, seeds[i].len);
	}

	buf = malloc(REPLAY_MAX_INPUT);
	if (!buf) {
		fprintf(stderr, "test_fuzz_replay: out of memory\n");
		return 1;
	}
	for (long it = 0; it < iters; it++) {
		const struct seed *s = &seeds[rnd_below(nseeds)];
		size_t len = s->len, rounds = 1 + rnd_below(6);

		memcpy(buf, s->data, len);
		for (size_t r = 0; r < rounds; r++)
			mutate_once(buf, &len, REPLAY_MAX_INPUT);
		snprintf(cur_what, sizeof(cur_what), "mutation %ld of seed %.200s", it, s->name);
		run_one(buf, len);
	}
	free(buf);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i].data);
	printf("test_fuzz_replay: %zu seeds and %ld mutations passed\n", nseeds, iters);
	return 0;
}
