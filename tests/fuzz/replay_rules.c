// SPDX-License-Identifier: MIT
/*
 * Replay driver for fuzz_rules.c, built with plain gcc as
 * test_policy_fuzz_replay so the rules parser and the decision function meet
 * hostile input on every test run, clang or not. It runs the target over the
 * seeds in tests/fuzz/corpus-rules/, over 20000 deterministic text-aware
 * mutations of them (keywords, edge numbers, prefixes and units spliced in,
 * lines duplicated, deleted or cut, bytes flipped), and over packets built
 * from random bytes behind valid Ethernet/IP headers.
 *
 * Usage: test_policy_fuzz_replay [CORPUS_DIR [MUTATIONS]]. A broken
 * invariant aborts inside the target; the handler says which input it was
 * and saves it for `fuzz_rules FILE`.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WP_SRC_DIR
#define WP_SRC_DIR "."
#endif

#define MUTATIONS 20000
#define MAX_SEEDS 64
#define RULES_MAX_INPUT (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	char name[256];
	uint8_t *data;
	size_t len;
} seeds[MAX_SEEDS];
static size_t nseeds;
static const uint8_t *cur;
static size_t cur_len;
static char what[320];

static void on_abort(int sig)
{
	char path[256];
	const char *tmp = getenv("TMPDIR");
	int fd;

	(void)sig;
	snprintf(path, sizeof(path), "%s/wp-fuzz-rules-crash-%d.bin", tmp && *tmp ? tmp : "/tmp",
		 (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, cur, cur_len) != (ssize_t)cur_len)
			path[0] = '\0';
		close(fd);
	}
	fprintf(stderr, "test_policy_fuzz_replay: FAIL on %s (%zu bytes); input saved as %s\n",
		what, cur_len, path[0] ? path : "(could not save)");
	_exit(1);
}

static uint64_t rng = 0x66726f6e74646f6full; /* "frontdoo": fixed, so runs repeat */

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

static void run(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1); /* exact size: a sanitizer sees overreads */

	if (!copy)
		exit(1);
	memcpy(copy, buf, len);
	cur = copy;
	cur_len = len;
	LLVMFuzzerTestOneInput(len ? copy : NULL, len);
	free(copy);
}

static const char *const words[] = {
	"default",
	"pass",
	"drop",
	"datagram",
	"tenant",
	"id",
	"key",
	"admin",
	"redirect",
	"allow",
	"ports",
	"rate",
	"burst",
	";",
	"#",
	"\n",
	"\t",
	" ",
	"0",
	"1",
	"65535",
	"65536",
	"4294967295",
	"4294967296",
	"18446744073709551616",
	"7000-7010",
	"10-5",
	"tcp:",
	"udp:",
	"10.0.0.0/8",
	"0.0.0.0/0",
	"::/0",
	"fd00::/8",
	"1.2.3.4/33",
	"fe80::1/129",
	"::ffff:1.2.3.4",
	"pps",
	"kpps",
	"Mpps",
	"B/s",
	"KB/s",
	"MiB/s",
	"GB/s",
	"1514",
	"4000000000",
	"KiB",
	"00112233445566778899aabbccddeeff",
	"0f0e0d0c0b0a09080706050403020100",
	"x",
	"-",
	"/",
	"tenant z id 9 key 99999999999999999999999999999999\n",
};

static void mutate(uint8_t *b, size_t *len, size_t cap)
{
	size_t n = *len, a, k;
	const char *w;

	switch (below(8)) {
	case 0: /* insert a word */
	case 1:
		w = words[below(sizeof(words) / sizeof(words[0]))];
		k = strlen(w);
		if (n + k + 1 <= cap) {
			a = below(n + 1);
			memmove(b + a + k + 1, b + a, n - a);
			memcpy(b + a, w, k);
			b[a + k] = rnd() & 1 ? ' ' : '\n';
			*len = n + k + 1;
		}
		break;
	case 2: /* flip a bit */
		if (n)
			b[below(n)] ^= (uint8_t)(1u << below(8));
		break;
	case 3: /* delete a range */
		if (n) {
			a = below(n);
			k = 1 + below(n - a < 32 ? n - a : 32);
			memmove(b + a, b + a + k, n - a - k);
			*len = n - k;
		}
		break;
	case 4: /* duplicate a range */
		if (n) {
			a = below(n);
			k = 1 + below(n - a);
			if (n + k <= cap) {
				memmove(b + a + k, b + a, n - a);
				*len = n + k;
			}
		}
		break;
	case 5: /* truncate */
		*len = below(n + 1);
		break;
	case 6: /* a digit run becomes an edge number */
		for (a = below(n + 1); a < n; a++) {
			if (b[a] >= '0' && b[a] <= '9') {
				b[a] = (uint8_t) "09"[rnd() & 1];
				break;
			}
		}
		break;
	default: { /* append another seed */
		size_t s = below(nseeds);

		if (n + seeds[s].len <= cap) {
			memcpy(b + n, seeds[s].data, seeds[s].len);
			*len = n + seeds[s].len;
		}
	}
	}
}

static int load(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL && nseeds < MAX_SEEDS) {
		char path[4096];
		struct stat st;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > RULES_MAX_INPUT)
			continue;
		seeds[nseeds].len = (size_t)st.st_size;
		seeds[nseeds].data = malloc(seeds[nseeds].len + 1);
		f = fopen(path, "rb");
		if (!seeds[nseeds].data || !f ||
		    fread(seeds[nseeds].data, 1, seeds[nseeds].len, f) != seeds[nseeds].len) {
			if (f)
				fclose(f);
			closedir(d);
			return -1;
		}
		fclose(f);
		snprintf(seeds[nseeds].name, sizeof(seeds[0].name), "%s", e->d_name);
		nseeds++;
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : WP_SRC_DIR "/tests/fuzz/corpus-rules";
	long iters = argc > 2 ? strtol(argv[2], NULL, 0) : MUTATIONS;
	static uint8_t buf[RULES_MAX_INPUT];

	signal(SIGABRT, on_abort);
	alarm(170);
	if (load(dir) < 0 || nseeds == 0) {
		fprintf(stderr, "test_policy_fuzz_replay: no seeds in %s\n", dir);
		return 1;
	}
	for (size_t i = 0; i < nseeds; i++) {
		snprintf(what, sizeof(what), "seed %.200s", seeds[i].name);
		run(seeds[i].data, seeds[i].len);
	}
	for (long it = 0; it < iters; it++) {
		size_t s = below(nseeds), len = seeds[s].len, r = 1 + below(5);

		memcpy(buf, seeds[s].data, len);
		for (size_t j = 0; j < r; j++)
			mutate(buf, &len, sizeof(buf));
		snprintf(what, sizeof(what), "mutation %ld of seed %.200s", it, seeds[s].name);
		run(buf, len);
	}
	/* Packets: valid Ethernet + IPv4/IPv6 headers, then random bytes. */
	for (long it = 0; it < iters; it++) {
		size_t len = 14 + below(120);

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
		buf[12] = it & 1 ? 0x86 : 0x08;
		buf[13] = it & 1 ? 0xdd : 0x00;
		if (len > 14)
			buf[14] = (uint8_t)((it & 1 ? 0x60 : 0x45) |
					    (buf[14] & (it & 2 ? 0x0f : 0)));
		snprintf(what, sizeof(what), "packet %ld", it);
		run(buf, len);
	}
	printf("test_policy_fuzz_replay: %zu seeds, %ld rule mutations, %ld packets passed\n",
	       nseeds, iters, iters);
	return 0;
}
