// SPDX-License-Identifier: MIT
/*
 * The wirepath command line: dispatches to `probe`, `serve`, `bench` and
 * `policy`. Each command lives in its own file; the helpers they share are in
 * util.c, so this file is only the entry point and nothing depends on it.
 *
 * Usage errors print one line naming the problem and the help to read, and
 * exit 2; runtime failures exit 1.
 */
#include <stdio.h>
#include <string.h>

#include "tools.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath COMMAND [OPTIONS]\n"
		"\n"
		"The host data path for agentic-AI serving: what each path costs this host\n"
		"per agent step, and where the host, not the model, becomes the limit.\n"
		"\n"
		"commands:\n"
		"  probe [--json]          which paths and features this host has, and why not\n"
		"  serve --listen URI ...  the stub tool/memory/model services the bench calls\n"
		"  bench [--paths tcp,uring] ...\n"
		"                          agent steps over each path: CPU, syscalls, context\n"
		"                          switches, copies and latency per step, and the\n"
		"                          crossover against the model's step rate\n"
		"  policy check|load|reload|show|stats|unload ...\n"
		"                          the front door: tenant policy in XDP (docs/policy.md)\n"
		"  version                 print the version\n"
		"  help                    this text\n"
		"\n"
		"Run 'wirepath COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "probe"))
		return cmd_probe(argc - 1, argv + 1);
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (!strcmp(cmd, "bench"))
		return cmd_bench(argc - 1, argv + 1);
	if (!strcmp(cmd, "policy"))
		return cmd_policy(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("wirepath %s\n", wp_version());
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		if (argc > 2) {
			char *sub[] = { argv[2], "--help", NULL };

			if (!strcmp(argv[2], "probe"))
				return cmd_probe(2, sub);
			if (!strcmp(argv[2], "serve"))
				return cmd_serve(2, sub);
			if (!strcmp(argv[2], "bench"))
				return cmd_bench(2, sub);
			if (!strcmp(argv[2], "policy"))
				return cmd_policy(2, sub);
		}
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "wirepath: unknown command '%s'; run 'wirepath help' for the list\n", cmd);
	return EXIT_USAGE;
}
