/* SPDX-License-Identifier: MIT */
/*
 * Option tables for the wirepath commands. A command describes each of its
 * options once, in a table of {long name, kind of value, where it goes,
 * limits, help}, and both the parsing and the option lines of its --help
 * come from that table, so the two cannot drift apart. getopt_long does the
 * scanning underneath; --help and -h are implicit in every table.
 *
 * Parsing is two steps so that a command with modes (bench: --workload)
 * reads its argv once: tool_opt_scan() collects what was given against the
 * union of the modes' tables, the command picks the mode from what it
 * found, and tool_opt_apply() parses the values with that mode's table.
 * tool_opt_parse() does both for a command with one table.
 *
 * Errors are the tools' usage errors: one line on stderr naming the option
 * and what it takes ("--agents takes a count in [1, 4096], not 'x'"), and
 * the return value EXIT_USAGE.
 */
#ifndef WP_TOOLS_OPT_H
#define WP_TOOLS_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tool_opt_kind {
	TOOL_OPT_FLAG, /* no value: sets an int to 1 */
	TOOL_OPT_STR,  /* the argument itself, a const char * into argv */
	TOOL_OPT_FILE, /* the same, but it may not be empty: a file name */
	TOOL_OPT_U32,  /* a decimal uint32_t in [min, max] */
	TOOL_OPT_U64,  /* a decimal uint64_t in [min, max] */
	TOOL_OPT_SECS, /* a double of seconds in [fmin, fmax] ("0.3", "5s") */
	TOOL_OPT_FN,   /* a list or a syntax of its own: fn() parses it */
};

struct tool_opt {
	const char *name; /* long name, without the dashes; NULL ends a table */
	char short_name;  /* a one-letter alias, or 0 */
	enum tool_opt_kind kind;
	size_t off;        /* offsetof() the value in the command's config */
	uint64_t min, max; /* TOOL_OPT_U32, TOOL_OPT_U64 */
	double fmin, fmax; /* TOOL_OPT_SECS */
	/*
	 * TOOL_OPT_FN: parse arg into dst (the config + off). 0 when good;
	 * < 0 for the table's "takes" message; > 0 when it printed its own
	 * usage error, which is then the exit status.
	 */
	int (*fn)(const char *cmd, const char *arg, void *dst);
	const char *meta; /* the value in the help line: "S", "LIST" */
	/*
	 * What a bad value is told the option takes: "--NAME takes TAKES, not
	 * 'x'". NULL: what min and max say ("a count in [1, 64]", "seconds in
	 * [0.05, 3600]").
	 */
	const char *takes;
	/* The help text; a "\n" starts a continuation line. NULL: not listed. */
	const char *help;
	/* Each occurrence is kept and applied in order (TOOL_OPT_FN options
	 * that collect a list); otherwise the last one given wins. */
	int repeat;
};

/* tool_opt_parse() and tool_opt_scan(): --help or -h was given. */
#define TOOL_OPT_HELP (-1)

/* What tool_opt_scan() found: each option given, in order, with its last value
 * (every value, for options with `repeat`). */
#define TOOL_OPT_SEEN_MAX 64
struct tool_opt_seen {
	int n;
	struct {
		const char *name;
		const char *val; /* NULL for a flag */
	} opt[TOOL_OPT_SEEN_MAX];
};

/*
 * Scan argv (argv[0] is the command) against the union of `ntables` tables.
 * Returns 0, TOOL_OPT_HELP, or EXIT_USAGE after reporting an unknown option,
 * a missing value or (without first_arg) an argument that is not an option.
 * With first_arg, the arguments that are not options are moved to the end
 * of argv and *first_arg is the index of the first.
 */
int tool_opt_scan(const char *cmd, const struct tool_opt *const *tables, int ntables, int argc,
		  char **argv, struct tool_opt_seen *seen, int *first_arg);

/*
 * Parse every value in seen with `table` into cfg (defaults are whatever cfg
 * holds). An option of another mode's table is a usage error that names
 * `mode` ("option '--agents' is not one of the gpufeed workload's").
 * Returns 0 or EXIT_USAGE.
 */
int tool_opt_apply(const char *cmd, const struct tool_opt *table, const char *mode,
		   const struct tool_opt_seen *seen, void *cfg);

/* Whether seen holds the option `name`; its value (NULL for a flag) in *val. */
int tool_opt_given(const struct tool_opt_seen *seen, const char *name, const char **val);

/* tool_opt_scan() and tool_opt_apply() for a command with one table. */
int tool_opt_parse(const char *cmd, const struct tool_opt *table, void *cfg, int argc, char **argv,
		   int *first_arg);

/* The table's option lines for --help, the text from column `col`. */
void tool_opt_help(FILE *f, const struct tool_opt *table, int col);

/* TOOL_OPT_FN parsers more than one command uses. */
/* "require" | "prefer" | "any" into an enum wp_select. */
int tool_opt_select(const char *cmd, const char *arg, void *dst);
/* A byte count >= 1 (K/M suffix) or "never" (UINT32_MAX) into a uint32_t. */
int tool_opt_zc(const char *cmd, const char *arg, void *dst);
/* A byte count >= 1 (K/M/G suffix) into a uint64_t. */
int tool_opt_size64(const char *cmd, const char *arg, void *dst);
/* Seconds ("0.5", "30s") or 0 / "never" (UINT32_MAX) into a uint32_t of ms. */
int tool_opt_timeout_ms(const char *cmd, const char *arg, void *dst);
/* "sim" (0) or "cuda" (1) into an int. */
int tool_opt_kitchen(const char *cmd, const char *arg, void *dst);

#endif
