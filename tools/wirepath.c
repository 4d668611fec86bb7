// SPDX-License-Identifier: MIT
/*
 * The wirepath command line: one table of commands (name, handler, one-line
 * help), from which the dispatch, `wirepath help` and the unknown-command
 * error are all generated, so adding a command is one line here. Each
 * command lives in its own file; the helpers they share are in util.c, so
 * this file is only the entry point and nothing depends on it.
 *
 * Usage errors print one line naming the problem and the help to read, and
 * exit 2; runtime failures exit 1.
 */
#include <stdio.h>
#include <string.h>

#include "tools.h"
#include "util.h"

/* Where the help text of the command list starts. */
#define HELP_COL 26

struct cmd {
	const char *name;
	const char *alias[2];             /* other spellings of the same command */
	const char *args;                 /* the synopsis after the name, in the listing */
	int (*fn)(int argc, char **argv); /* argv[0] is the command name */
	const char *help;                 /* a "\n" starts a continuation line */
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "probe",
	  { NULL },
	  "[--json]",
	  cmd_probe,
	  "which paths and features this host has, and why not" },
	{ "serve",
	  { NULL },
	  "--listen URI ...",
	  cmd_serve,
	  "the stub tool/memory/model services the bench calls" },
	{ "bench",
	  { NULL },
	  "[--paths tcp,uring] ...",
	  cmd_bench,
	  "agent steps over each path: CPU, syscalls, context\n"
	  "switches, copies and latency per step, and the\n"
	  "crossover against the model's step rate" },
	{ "policy",
	  { NULL },
	  "check|load|reload|show|stats|unload ...",
	  cmd_policy,
	  "the front door: tenant policy in XDP (docs/policy.md)" },
	{ "soak",
	  { NULL },
	  "[--secs S] [--paths tcp,uring,shm] ...",
	  cmd_soak,
	  "agentic load with faults injected (peers killed,\n"
	  "resets, full rings, reloads): no acknowledged call\n"
	  "lost or corrupted, RSS and fds flat (docs/soak.md)" },
	{ "version", { "--version" }, NULL, cmd_version, "print the version" },
	{ "help", { "--help", "-h" }, NULL, cmd_help, "this text" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++) {
		const struct cmd *c = &cmds[i];

		if (!strcmp(name, c->name) || (c->alias[0] && !strcmp(name, c->alias[0])) ||
		    (c->alias[1] && !strcmp(name, c->alias[1])))
			return c;
	}
	return NULL;
}

static void usage(FILE *f)
{
	char left[128];

	fprintf(f, "usage: wirepath COMMAND [OPTIONS]\n"
		   "\n"
		   "The host data path for agentic-AI serving: what each path costs this host\n"
		   "per agent step, and where the host, not the model, becomes the limit.\n"
		   "\n"
		   "commands:\n");
	for (size_t i = 0; i < NCMDS; i++) {
		snprintf(left, sizeof(left), "%s%s%s", cmds[i].name, cmds[i].args ? " " : "",
			 cmds[i].args ? cmds[i].args : "");
		tool_help_entry(f, HELP_COL, left, cmds[i].help);
	}
	fprintf(f, "\nRun 'wirepath COMMAND --help' for a command's options.\n");
}

static int cmd_version(int argc, char **argv)
{
	printf("wirepath %s\n", wp_version());
	return 0;
}

/* `wirepath help [COMMAND]`: the list, or COMMAND's own --help. */
static int cmd_help(int argc, char **argv)
{
	const struct cmd *c = argc > 1 ? cmd_find(argv[1]) : NULL;

	/* version and help have no options of their own: the list it is. */
	if (c && c->fn != cmd_version && c->fn != cmd_help) {
		char *sub[] = { argv[1], "--help", NULL };

		return c->fn(2, sub);
	}
	usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	c = cmd_find(argv[1]);
	if (c)
		return c->fn(argc - 1, argv + 1);

	fprintf(stderr, "wirepath: unknown command '%s' (", argv[1]);
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", cmds[i].name);
	fprintf(stderr, "); run 'wirepath help' for what each does\n");
	return EXIT_USAGE;
}
