// SPDX-License-Identifier: MIT
/*
 * Fuzz target for wirepathd's configuration parser (src/daemon/config.c):
 * YAML through libfyaml, then every check of docs/daemon.md,
 * "Configuration". Built two ways (tests/fuzz/fuzz.h): with libFuzzer by
 * tests/fuzz/run.sh, and into test_fuzz_config, which replays
 * tests/fuzz/corpus-config/ and mutations of it (keywords from
 * tests/fuzz/config.dict) on every test run.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * Per input:
 *  - no crash, no leak (libFuzzer's ASan checks leaks at exit);
 *  - an error is -EINVAL with no config, and one line "fuzz:LINE: reason"
 *    with LINE within the input's lines (or "fuzz: reason" for a
 *    file-level problem: a NUL byte), never empty, never a newline in it;
 *  - a success holds what the checks promise (a listener, exactly one of
 *    policy and auth: none, every reference an index in range, no model on
 *    a stdio backend, terminated strings) and frees cleanly;
 *  - the same input parsed again gives the same answer (no hidden state).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

#include "fuzz.h"

static void check_ok(const struct wpd_config *c)
{
	FUZZ_CHECK(c->nlisten >= 1);
	FUZZ_CHECK(!!c->policy[0] + !!c->auth_none == 1);
	for (uint32_t i = 0; i < c->nlisten; i++) {
		FUZZ_CHECK(memchr(c->listen[i].addr, 0, sizeof(c->listen[i].addr)));
		FUZZ_CHECK(c->listen[i].addr[0]);
		FUZZ_CHECK(c->listen[i].kind == WPD_LISTEN_TCP ||
			   c->listen[i].kind == WPD_LISTEN_UNIX);
		FUZZ_CHECK(!c->listen[i].tls_cert[0] == !c->listen[i].tls_key[0]);
	}
	for (uint32_t i = 0; i < c->nbackends; i++) {
		const struct wpd_backend *b = &c->backends[i];

		FUZZ_CHECK(b->name[0] && memchr(b->name, 0, sizeof(b->name)));
		FUZZ_CHECK(wpd_config_backend(c, b->name) == (int)i);
		FUZZ_CHECK(b->pool >= 1 && b->timeout_ms >= 1);
		if (b->kind == WPD_BACKEND_STDIO)
			FUZZ_CHECK(b->argv && b->argv[0]);
		else
			FUZZ_CHECK(!b->argv && !b->env);
	}
	for (uint32_t i = 0; i < c->nmodels; i++) {
		FUZZ_CHECK(c->models[i].backend < c->nbackends);
		FUZZ_CHECK(c->backends[c->models[i].backend].kind != WPD_BACKEND_STDIO);
	}
	for (uint32_t i = 0; i < c->nmcp; i++) {
		FUZZ_CHECK(c->mcp[i].backend < c->nbackends);
		FUZZ_CHECK(c->mcp[i].prefix[0]);
	}
	FUZZ_CHECK(c->limits.rx_budget >= c->limits.body_bytes + c->limits.header_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wpd_config *c = (struct wpd_config *)1, *c2 = (struct wpd_config *)1;
	char err[512], err2[512];
	int ret, ret2;

	memset(err, 'Z', sizeof(err));
	ret = wpd_config_parse("fuzz", (const char *)data, size, &c, err, sizeof(err));
	FUZZ_CHECK(memchr(err, 0, sizeof(err)));
	if (ret < 0) {
		size_t lines = 1;

		FUZZ_CHECK(ret == -EINVAL || ret == -ENOMEM);
		FUZZ_CHECK(c == NULL);
		FUZZ_CHECK(!strchr(err, '\n'));
		FUZZ_CHECK(!strncmp(err, "fuzz:", 5));
		if (err[5] != ' ') {
			char *end;
			unsigned long line = strtoul(err + 5, &end, 10);

			for (size_t i = 0; i < size; i++)
				lines += data[i] == '\n';
			FUZZ_CHECK(end != err + 5 && end[0] == ':' && end[1] == ' ' && end[2]);
			FUZZ_CHECK(line >= 1 && line <= lines);
		} else {
			FUZZ_CHECK(err[6]);
		}
	} else {
		FUZZ_CHECK(ret == 0 && c != NULL && err[0] == '\0');
		check_ok(c);
	}
	ret2 = wpd_config_parse("fuzz", (const char *)data, size, &c2, err2, sizeof(err2));
	FUZZ_CHECK(ret2 == ret);
	FUZZ_CHECK(!strcmp(err, err2));
	if (ret == 0) {
		FUZZ_CHECK(c2->nlisten == c->nlisten && c2->nbackends == c->nbackends &&
			   c2->nmodels == c->nmodels && c2->nmcp == c->nmcp);
		wpd_config_free(c2);
		wpd_config_free(c);
	}
	return 0;
}
