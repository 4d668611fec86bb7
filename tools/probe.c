// SPDX-License-Identifier: MIT
/*
 * `wirepath probe`: prints every capability probe the library runs, with
 * yes/no and, for a no, the errno the real attempt got and what was tried,
 * so a user can see why a path is missing instead of guessing.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "opt.h"
#include "tools.h"
#include "util.h"

struct probe_cfg {
	int json;
};

static const struct tool_opt probe_opts[] = {
	{ .name = "json",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct probe_cfg, json),
	  .help = "one JSON object: {\"version\", \"kernel\", \"probes\":[{name, ok,\n"
		  "err, errno, error, detail}]}" },
	{ .name = NULL },
};

static void probe_usage(FILE *f)
{
	fprintf(f, "usage: wirepath probe [--json]\n"
		   "\n"
		   "Run every capability probe (each one really exercises the feature on\n"
		   "this kernel) and print, per path and feature, yes or no with the reason:\n"
		   "the errno the attempt got and what was tried.\n"
		   "\n");
	tool_opt_help(f, probe_opts, 12);
}

int cmd_probe(int argc, char **argv)
{
	struct probe_cfg cfg = { 0 };
	const struct wp_probe_result *r;
	struct utsname u;
	int rc, n;

	rc = tool_opt_parse("probe", probe_opts, &cfg, argc, argv, NULL);
	if (rc == TOOL_OPT_HELP) {
		probe_usage(stdout);
		return 0;
	}
	if (rc)
		return rc;

	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	n = wp_probe_all(&r);
	if (cfg.json) {
		struct sbuf b = { 0 };

		sb_printf(&b, "{\"version\":");
		sb_json_str(&b, wp_version());
		sb_printf(&b, ",\"kernel\":");
		sb_json_str(&b, u.release);
		sb_printf(&b, ",\"probes\":");
		tool_probes_json(&b);
		sb_printf(&b, "}\n");
		if (b.oom) {
			fprintf(stderr, "wirepath probe: out of memory\n");
			sb_free(&b);
			return 1;
		}
		fputs(b.p, stdout);
		sb_free(&b);
		return 0;
	}

	size_t w = 8;

	for (int i = 0; i < n; i++)
		if (strlen(r[i].name) > w)
			w = strlen(r[i].name);
	printf("wirepath %s on Linux %s: %d probes\n", wp_version(), u.release, n);
	for (int i = 0; i < n; i++) {
		if (r[i].ok)
			printf("  %-*s yes  %s\n", (int)w, r[i].name, r[i].detail);
		else
			printf("  %-*s no   %s (%s): %s\n", (int)w, r[i].name,
			       tool_errno_name(r[i].err),
			       r[i].err ? strerror(r[i].err) : "no errno", r[i].detail);
	}
	return 0;
}
