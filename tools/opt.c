// SPDX-License-Identifier: MIT
/*
 * Option tables (opt.h): scanning argv against one or more tables with
 * getopt_long, parsing each value by its kind into the command's config, and
 * the --help lines. The messages are the tools' usage errors, so every
 * command reports a bad flag the same way.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "opt.h"
#include "util.h"

/* The entry `name` in table, or NULL. */
static const struct tool_opt *opt_find(const struct tool_opt *table, const char *name)
{
	for (const struct tool_opt *o = table; o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

static void seen_put(struct tool_opt_seen *seen, const char *name, const char *val, int repeat)
{
	for (int i = 0; i < seen->n && !repeat; i++) {
		if (!strcmp(seen->opt[i].name, name)) {
			seen->opt[i].val = val; /* the last one given wins */
			return;
		}
	}
	/* Full only with repeated options: the excess is dropped (the
	 * command's own limit on repeats is far below). */
	if (seen->n < TOOL_OPT_SEEN_MAX) {
		seen->opt[seen->n].name = name;
		seen->opt[seen->n].val = val;
		seen->n++;
	}
}

int tool_opt_scan(const char *cmd, const struct tool_opt *const *tables, int ntables, int argc,
		  char **argv, struct tool_opt_seen *seen, int *first_arg)
{
	struct option lo[TOOL_OPT_SEEN_MAX + 2];
	/* ':' first: a missing value is told apart from an unknown option. */
	char shorts[2 * TOOL_OPT_SEEN_MAX + 4] = ":h";
	int nlo = 0, ns = 2, help = 0, c, li;

	/* The union of the tables, each name once; a name means one thing to getopt. */
	for (int t = 0; t < ntables; t++) {
		for (const struct tool_opt *o = tables[t]; o->name; o++) {
			int dup = 0;

			for (int i = 0; i < nlo && !dup; i++)
				dup = !strcmp(lo[i].name, o->name);
			if (dup || nlo == TOOL_OPT_SEEN_MAX)
				continue;
			lo[nlo].name = o->name;
			lo[nlo].has_arg = o->kind == TOOL_OPT_FLAG ? no_argument
								   : required_argument;
			lo[nlo].flag = NULL;
			lo[nlo].val = 0;
			nlo++;
			if (o->short_name) {
				shorts[ns++] = o->short_name;
				if (o->kind != TOOL_OPT_FLAG)
					shorts[ns++] = ':';
			}
		}
	}
	lo[nlo++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[nlo] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns] = '\0';

	memset(seen, 0, sizeof(*seen));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, &li)) != -1) {
		const char *name = NULL;
		int repeat = 0;

		/* After --help nothing else is an error: the help is what was asked. */
		if (c == 'h') {
			help = 1;
			continue;
		}
		if (c == ':' || c == '?') {
			if (help)
				continue;
			if (c == ':')
				return tool_usage_error(cmd, "option '%s' needs a value",
							argv[optind - 1]);
			return tool_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
		if (c == 0) {
			name = lo[li].name;
		} else {
			for (int t = 0; t < ntables && !name; t++)
				for (const struct tool_opt *o = tables[t]; o->name && !name; o++)
					if (o->short_name == c)
						name = o->name;
		}
		for (int t = 0; t < ntables && name; t++) {
			const struct tool_opt *o = opt_find(tables[t], name);

			repeat |= o && o->repeat;
		}
		if (name)
			seen_put(seen, name, optarg, repeat);
	}
	if (help)
		return TOOL_OPT_HELP;
	if (first_arg)
		*first_arg = optind;
	else if (optind < argc)
		return tool_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* One value into dst. 0, or EXIT_USAGE after the usage error. */
static int opt_set(const char *cmd, const struct tool_opt *o, const char *arg, void *dst)
{
	char takes[96];
	uint64_t v;
	int rc;

	switch (o->kind) {
	case TOOL_OPT_FLAG:
		*(int *)dst = 1;
		return 0;
	case TOOL_OPT_STR:
		*(const char **)dst = arg;
		return 0;
	case TOOL_OPT_FILE:
		if (!*arg)
			return tool_usage_error(cmd, "--%s needs a file name", o->name);
		*(const char **)dst = arg;
		return 0;
	case TOOL_OPT_U32:
	case TOOL_OPT_U64:
		if (tool_parse_u64(arg, o->min, o->max, &v) < 0)
			break;
		if (o->kind == TOOL_OPT_U32)
			*(uint32_t *)dst = (uint32_t)v;
		else
			*(uint64_t *)dst = v;
		return 0;
	case TOOL_OPT_SECS:
		if (tool_parse_secs(arg, o->fmin, o->fmax, dst) < 0)
			break;
		return 0;
	case TOOL_OPT_FN:
		rc = o->fn(cmd, arg, dst);
		if (rc > 0)
			return rc;
		if (rc < 0)
			break;
		return 0;
	}
	/* Without a "takes" of its own, an option takes what its limits say. */
	if (o->takes)
		snprintf(takes, sizeof(takes), "%s", o->takes);
	else if (o->kind == TOOL_OPT_SECS)
		snprintf(takes, sizeof(takes), "seconds in [%g, %g]", o->fmin, o->fmax);
	else
		snprintf(takes, sizeof(takes), "a count in [%llu, %llu]",
			 (unsigned long long)o->min, (unsigned long long)o->max);
	return tool_usage_error(cmd, "--%s takes %s, not '%s'", o->name, takes, arg);
}

int tool_opt_apply(const char *cmd, const struct tool_opt *table, const char *mode,
		   const struct tool_opt_seen *seen, void *cfg)
{
	for (int i = 0; i < seen->n; i++) {
		const struct tool_opt *o = opt_find(table, seen->opt[i].name);
		int rc;

		if (!o)
			return tool_usage_error(cmd, "option '--%s' does not apply to %s",
						seen->opt[i].name, mode ? mode : cmd);
		rc = opt_set(cmd, o, seen->opt[i].val, (char *)cfg + o->off);
		if (rc)
			return rc;
	}
	return 0;
}

int tool_opt_given(const struct tool_opt_seen *seen, const char *name, const char **val)
{
	for (int i = 0; i < seen->n; i++) {
		if (!strcmp(seen->opt[i].name, name)) {
			if (val)
				*val = seen->opt[i].val;
			return 1;
		}
	}
	return 0;
}

int tool_opt_parse(const char *cmd, const struct tool_opt *table, void *cfg, int argc, char **argv,
		   int *first_arg)
{
	struct tool_opt_seen seen;
	int rc = tool_opt_scan(cmd, &table, 1, argc, argv, &seen, first_arg);

	if (rc)
		return rc;
	return tool_opt_apply(cmd, table, NULL, &seen, cfg);
}

void tool_opt_help(FILE *f, const struct tool_opt *table, int col)
{
	char left[80];

	for (const struct tool_opt *o = table; o->name; o++) {
		if (!o->help)
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->meta ? " " : "",
			 o->meta ? o->meta : "");
		tool_help_entry(f, col, left, o->help);
	}
}

int tool_opt_select(const char *cmd, const char *arg, void *dst)
{
	return tool_parse_select(arg, dst);
}

int tool_opt_zc(const char *cmd, const char *arg, void *dst)
{
	uint64_t v;

	if (!strcmp(arg, "never")) {
		*(uint32_t *)dst = UINT32_MAX;
		return 0;
	}
	if (tool_parse_size(arg, 1, UINT32_MAX - 1, &v) < 0)
		return -EINVAL;
	*(uint32_t *)dst = (uint32_t)v;
	return 0;
}

int tool_opt_kitchen(const char *cmd, const char *arg, void *dst)
{
	if (strcmp(arg, "sim") && strcmp(arg, "cuda"))
		return -EINVAL;
	*(int *)dst = !strcmp(arg, "cuda");
	return 0;
}

int tool_opt_size64(const char *cmd, const char *arg, void *dst)
{
	uint64_t v;

	if (tool_parse_size(arg, 1, UINT64_MAX / 2, &v) < 0)
		return -EINVAL;
	*(uint64_t *)dst = v;
	return 0;
}

int tool_opt_timeout_ms(const char *cmd, const char *arg, void *dst)
{
	double secs;

	if (!strcmp(arg, "never")) {
		*(uint32_t *)dst = UINT32_MAX;
		return 0;
	}
	if (tool_parse_secs(arg, 0, 86400, &secs) < 0)
		return -EINVAL;
	/* 0 means never, as "never" does; otherwise at least 1 ms. */
	*(uint32_t *)dst = secs == 0 ? UINT32_MAX : secs * 1000 < 1 ? 1 : (uint32_t)(secs * 1000);
	return 0;
}
