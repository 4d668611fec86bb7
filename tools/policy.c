// SPDX-License-Identifier: MIT
/*
 * `wirepath policy`: the front door from the command line. check (parse
 * only), load / reload / unload an XDP policy on an interface, show the
 * active rules, and stats: counters per verdict, per drop reason, per tenant
 * and per rule, as text or --json; hash-key prints the `api_key` line's value
 * for a bearer token, so plain tokens never go into a rules file. Uses only the public API
 * (include/wirepath/policy.h); the maps are pinned, so every subcommand works
 * from a fresh process.
 *
 * Exit status: 0 ok, 1 runtime failure (one line on stderr that says what
 * to do), 2 usage error.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "opt.h"
#include "tools.h"
#include "util.h"
#include "wirepath/policy.h"

struct popts {
	const char *dev;
	const char *rules;
	int json, keys, generic, native_only, no_frags;
};

static const struct tool_opt policy_opts[] = {
	{ .name = "dev",
	  .kind = TOOL_OPT_STR,
	  .off = offsetof(struct popts, dev),
	  .meta = "IFACE",
	  .help = "the interface (every subcommand but check)" },
	{ .name = "json",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct popts, json),
	  .help = "load, reload, stats: one JSON object" },
	{ .name = "keys",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct popts, keys),
	  .help = "show: the tenants' keys, not redacted" },
	{ .name = "generic",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct popts, generic),
	  .help = "load: generic XDP, asked for" },
	{ .name = "native-only",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct popts, native_only),
	  .help = "load: native XDP or nothing, no generic fallback" },
	{ .name = "no-frags",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct popts, no_frags),
	  .help = "load: the plain program, not the frags-aware one (jumbo MTUs then "
		  "refuse native mode)" },
	{ .name = NULL },
};

static void policy_usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath policy check RULES\n"
		"       wirepath policy load   --dev IFACE [--generic | --native-only] [--no-frags]\n"
		"                              [--json] RULES\n"
		"       wirepath policy reload --dev IFACE [--json] RULES\n"
		"       wirepath policy show   --dev IFACE [--keys]\n"
		"       wirepath policy stats  --dev IFACE [--json]\n"
		"       wirepath policy unload --dev IFACE\n"
		"       wirepath policy hash-key < TOKEN\n"
		"\n"
		"The front door: tenant ACLs (source prefixes, destination ports), token-bucket\n"
		"rate limits and datagram frame authentication, enforced in XDP before the\n"
		"host spends anything on a packet. Rules file format: docs/policy.md.\n"
		"\n"
		"  check     parse RULES and report the first error as FILE:LINE: reason\n"
		"  load      attach the policy to IFACE: native XDP, or generic XDP as a\n"
		"            fallback that is reported loudly (--native-only refuses it,\n"
		"            --generic asks for it); pins under /sys/fs/bpf/wirepath/IFACE.\n"
		"            The frags-aware program (multi-buffer frames: jumbo MTUs in\n"
		"            native mode) where the kernel takes it, else the plain one\n"
		"  reload    swap in new rules atomically: traffic sees the old set or the\n"
		"            new one, never a mix; a bad file changes nothing\n"
		"  show      the active rules, read back from the maps (keys redacted\n"
		"            unless --keys)\n"
		"  stats     packets and bytes per verdict, per reason, per tenant, per rule\n"
		"  unload    detach and remove the pins\n"
		"  hash-key  read an API key (bearer token) on stdin, print sha256:HEX for\n"
		"            the tenant's 'api_key' line (wirepathd)\n"
		"\n"
		"options:\n");
	tool_opt_help(f, policy_opts, 18);
}

static int parse_opts(const char *sub, int argc, char **argv, struct popts *o, int need_dev,
		      int need_rules)
{
	char cmd[32];
	int rc, first;

	snprintf(cmd, sizeof(cmd), "policy %s", sub);
	memset(o, 0, sizeof(*o));
	rc = tool_opt_parse("policy", policy_opts, o, argc, argv, &first);
	if (rc == TOOL_OPT_HELP) {
		policy_usage(stdout);
		exit(0);
	}
	if (rc)
		return rc;
	if (o->generic && o->native_only)
		return tool_usage_error("policy", "--generic and --native-only contradict");
	if (need_dev && !o->dev)
		return tool_usage_error("policy", "'%s' needs --dev IFACE", cmd);
	if (!need_dev && o->dev)
		return tool_usage_error("policy", "'%s' takes no --dev", cmd);
	if (need_rules) {
		if (first >= argc)
			return tool_usage_error("policy", "'%s' needs a RULES file", cmd);
		o->rules = argv[first++];
	}
	if (first < argc)
		return tool_usage_error("policy", "unexpected argument '%s'", argv[first]);
	return 0;
}

/*
 * The library says why a call failed through the process log hook: print
 * it as this command's one-line error ("wirepath policy load: reason").
 */
static const char *log_who = "wirepath policy";
static int log_errs;

static void policy_log(void *arg, enum wp_log_level level, const char *msg)
{
	if (level == WP_LOG_ERR)
		log_errs++;
	fprintf(stderr, "%s: %s%s\n", log_who, level == WP_LOG_ERR ? "" : "warning: ", msg);
}

static void policy_log_as(const char *who)
{
	log_who = who;
	log_errs = 0;
}

/* After a failed call: the hook printed why, or errno is all there is. */
static void policy_failed(int ret)
{
	if (!log_errs)
		fprintf(stderr, "%s: %s\n", log_who, strerror(-ret));
}

static int load_rules(const char *path, struct wp_policy **p)
{
	int ret;

	policy_log_as("wirepath policy");
	ret = wp_policy_parse_file(path, p);
	if (ret < 0) {
		policy_failed(ret);
		if (ret == -EINVAL)
			fprintf(stderr, "wirepath policy: nothing was changed; fix the line above "
					"(format: docs/policy.md)\n");
		return 1;
	}
	return 0;
}

static void info_json(struct sbuf *b, const char *dev, const struct wp_xdp_info *in)
{
	sb_printf(b, "\"dev\":");
	sb_json_str(b, dev);
	sb_printf(b, ",\"ifindex\":%d,\"prog_id\":%u,\"mode\":\"%s\",\"fallback\":%s", in->ifindex,
		  in->prog_id, in->prog_id ? (in->native ? "native" : "generic") : "detached",
		  in->fallback ? "true" : "false");
	sb_printf(b, ",\"native_error\":");
	sb_json_str(b, in->fallback ? tool_errno_name(in->native_err) : "");
	sb_printf(b, ",\"frags\":%s,\"frags_error\":", in->frags ? "true" : "false");
	sb_json_str(b, in->frags_err ? tool_errno_name(in->frags_err) : "");
	sb_printf(b, ",\"active_set\":%u,\"pin_dir\":", in->active_set);
	sb_json_str(b, in->pin_dir);
	sb_printf(b, ",\"detail\":");
	sb_json_str(b, in->detail);
}

static int print_sb(struct sbuf *b)
{
	if (b->oom) {
		fprintf(stderr, "wirepath policy: out of memory\n");
		sb_free(b);
		return 1;
	}
	fputs(b->p, stdout);
	sb_free(b);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	struct popts o;
	struct wp_policy *p;
	int ret = parse_opts("check", argc, argv, &o, 0, 1);

	if (ret)
		return ret;
	if (load_rules(o.rules, &p))
		return 1;
	printf("%s: ok: %d tenants, default %s\n", o.rules, wp_policy_tenant_count(p),
	       wp_verdict_name(wp_policy_default(p)));
	wp_policy_free(p);
	return 0;
}

static int policy_load(int argc, char **argv, int reload)
{
	struct wp_xdp_info info;
	struct wp_policy *p;
	struct popts o;
	int ret = parse_opts(reload ? "reload" : "load", argc, argv, &o, 1, 1);

	if (ret)
		return ret;
	if (reload && (o.generic || o.native_only || o.no_frags))
		return tool_usage_error("policy", "reload keeps the mode and the program; "
						  "--generic, --native-only and --no-frags are "
						  "for load");
	if (load_rules(o.rules, &p))
		return 1;
	policy_log_as(reload ? "wirepath policy reload" : "wirepath policy load");
	if (reload)
		ret = wp_policy_xdp_reload(o.dev, p, &info);
	else
		ret = wp_policy_xdp_load(o.dev, p,
					 (o.generic ? WP_XDP_GENERIC : 0) |
						 (o.native_only ? WP_XDP_NATIVE_ONLY : 0) |
						 (o.no_frags ? WP_XDP_NO_FRAGS : 0),
					 &info);
	if (ret < 0) {
		policy_failed(ret);
		wp_policy_free(p);
		return 1;
	}
	/* Generic mode is a fallback nobody should miss. */
	if (info.fallback)
		fprintf(stderr, "wirepath policy: WARNING: %s\n", info.detail);
	if (o.json) {
		struct sbuf b = { 0 };

		sb_printf(&b, "{\"op\":\"%s\",\"rules\":", reload ? "reload" : "load");
		sb_json_str(&b, o.rules);
		sb_printf(&b, ",\"tenants\":%d,", wp_policy_tenant_count(p));
		info_json(&b, o.dev, &info);
		sb_printf(&b, "}\n");
		wp_policy_free(p);
		return print_sb(&b);
	}
	printf("%s %s on %s: %d tenants, default %s, active set %u; %s\n",
	       reload ? "reloaded" : "loaded", o.rules, o.dev, wp_policy_tenant_count(p),
	       wp_verdict_name(wp_policy_default(p)), info.active_set, info.detail);
	wp_policy_free(p);
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	struct wp_xdp_info info;
	struct wp_policy *p;
	struct popts o;
	char *buf;
	int ret = parse_opts("show", argc, argv, &o, 1, 0), n;

	if (ret)
		return ret;
	if (o.json)
		return tool_usage_error("policy", "show prints a rules file; use stats --json");
	policy_log_as("wirepath policy show");
	ret = wp_policy_xdp_show(o.dev, &p, &info);
	if (ret < 0) {
		policy_failed(ret);
		return 1;
	}
	n = wp_policy_dump(p, o.keys ? WP_POLICY_DUMP_KEYS : 0, NULL, 0);
	buf = malloc((size_t)n + 1);
	if (!buf) {
		wp_policy_free(p);
		return 1;
	}
	wp_policy_dump(p, o.keys ? WP_POLICY_DUMP_KEYS : 0, buf, (size_t)n + 1);
	printf("# %s; active set %u\n%s", info.detail, info.active_set, buf);
	free(buf);
	wp_policy_free(p);
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	struct wp_policy_stats s;
	struct wp_xdp_info info;
	struct popts o;
	int ret = parse_opts("stats", argc, argv, &o, 1, 0);

	if (ret)
		return ret;
	policy_log_as("wirepath policy stats");
	ret = wp_policy_xdp_stats(o.dev, &s, &info);
	if (ret < 0) {
		policy_failed(ret);
		return 1;
	}
	if (o.json) {
		struct sbuf b = { 0 };
		int n = wp_policy_stats_json(&s, NULL, 0);
		char *j = malloc((size_t)n + 1);

		if (!j) {
			wp_policy_stats_free(&s);
			return 1;
		}
		wp_policy_stats_json(&s, j, (size_t)n + 1);
		sb_printf(&b, "{");
		info_json(&b, o.dev, &info);
		sb_printf(&b, ",\"policy\":%s}\n", j);
		free(j);
		wp_policy_stats_free(&s);
		return print_sb(&b);
	}
	printf("policy on %s: %s; active set %u, default %s\n", o.dev, info.detail, s.active_set,
	       wp_verdict_name((int)s.default_verdict));
	printf("verdicts:\n");
	for (int v = 0; v < 3; v++)
		printf("  %-16s %12llu pkts %14llu bytes\n", wp_verdict_name(v),
		       (unsigned long long)s.verdict[v].pkts,
		       (unsigned long long)s.verdict[v].bytes);
	printf("reasons:\n");
	for (unsigned r = 0; r < s.nreasons; r++)
		printf("  %-16s %12llu pkts %14llu bytes\n", wp_policy_reason_name(r),
		       (unsigned long long)s.reason[r].pkts, (unsigned long long)s.reason[r].bytes);
	printf("tenants:\n");
	for (uint32_t i = 0; i < s.ntenants; i++) {
		const struct wp_policy_tenant_stats *t = &s.tenants[i];
		int any = 0;

		printf("  %s (id %u):", t->name, t->id);
		for (unsigned r = 0; r < s.nreasons; r++) {
			if (!t->reason[r].pkts)
				continue;
			printf(" %s %llu", wp_policy_reason_name(r),
			       (unsigned long long)t->reason[r].pkts);
			any = 1;
		}
		printf("%s\n", any ? "" : " no packets");
	}
	printf("rules (packets that matched):\n");
	for (uint32_t i = 0; i < s.nrules; i++)
		printf("  #%-4u %-48s %12llu pkts\n", s.rules[i].rule, s.rules[i].text,
		       (unsigned long long)s.rules[i].c.pkts);
	wp_policy_stats_free(&s);
	return 0;
}

static int cmd_unload(int argc, char **argv)
{
	struct popts o;
	int ret = parse_opts("unload", argc, argv, &o, 1, 0);

	if (ret)
		return ret;
	policy_log_as("wirepath policy unload");
	ret = wp_policy_xdp_unload(o.dev);
	if (ret < 0) {
		policy_failed(ret);
		return 1;
	}
	printf("unloaded the wirepath policy from %s\n", o.dev);
	return 0;
}

static int cmd_load(int argc, char **argv)
{
	return policy_load(argc, argv, 0);
}

static int cmd_reload(int argc, char **argv)
{
	return policy_load(argc, argv, 1);
}

/* The longest bearer token hash-key takes (wirepathd's header limit is
 * larger, but a token is a few dozen bytes). */
#define HASH_KEY_MAX 4096

static int cmd_hash_key(int argc, char **argv)
{
	static char buf[HASH_KEY_MAX + 2];
	unsigned char d[32];
	unsigned int dlen = 0;
	struct termios saved;
	size_t n = 0;
	ssize_t r;
	int tty, rerr = 0;

	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			policy_usage(stdout);
			return 0;
		}
		return tool_usage_error("policy",
					"hash-key reads the key on stdin; "
					"unexpected argument '%s'",
					argv[1]);
	}
	/* typed at a terminal: no echo, one line */
	tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		struct termios quiet = saved;

		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
		fprintf(stderr, "API key (not echoed): ");
	}
	while (n < sizeof(buf)) {
		r = read(STDIN_FILENO, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rerr = errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (tty && buf[n - 1] == '\n')
			break;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		fprintf(stderr, "\n");
	}
	if (rerr) {
		fprintf(stderr, "wirepath policy hash-key: reading stdin: %s\n", strerror(rerr));
		return 1;
	}
	/* one trailing newline (echo, a file) is not part of the key */
	if (n && buf[n - 1] == '\n')
		n--;
	if (n && buf[n - 1] == '\r')
		n--;
	if (n > HASH_KEY_MAX) {
		fprintf(stderr, "wirepath policy hash-key: the key is longer than %d bytes\n",
			HASH_KEY_MAX);
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "wirepath policy hash-key: no key on stdin; "
				"try: printf %%s \"$KEY\" | wirepath policy hash-key\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c <= 0x20 || c >= 0x7f) {
			fprintf(stderr,
				"wirepath policy hash-key: byte %zu of the key is 0x%02x; a "
				"bearer token is printable ASCII without spaces\n",
				i, c);
			return 1;
		}
	}
	if (!EVP_Digest(buf, n, d, &dlen, EVP_sha256(), NULL) || dlen != sizeof(d)) {
		fprintf(stderr, "wirepath policy hash-key: SHA-256 failed (libcrypto)\n");
		return 1;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	printf("sha256:");
	for (size_t i = 0; i < sizeof(d); i++)
		printf("%02x", d[i]);
	printf("\n");
	return 0;
}

/* The subcommands; the dispatch and the unknown-subcommand error come from here. */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the subcommand */
} policy_cmds[] = {
	{ "check", cmd_check },       { "load", cmd_load },   { "reload", cmd_reload },
	{ "show", cmd_show },         { "stats", cmd_stats }, { "unload", cmd_unload },
	{ "hash-key", cmd_hash_key },
};
#define POLICY_NCMDS (sizeof(policy_cmds) / sizeof(policy_cmds[0]))

int cmd_policy(int argc, char **argv)
{
	char names[128];
	const char *sub;
	size_t n = 0;

	if (argc < 2) {
		policy_usage(stderr);
		return EXIT_USAGE;
	}
	sub = argv[1];
	wp_set_log(policy_log, NULL, WP_LOG_WARN);
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		policy_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < POLICY_NCMDS; i++)
		if (!strcmp(sub, policy_cmds[i].name))
			return policy_cmds[i].fn(argc - 1, argv + 1);
	names[0] = '\0';
	for (size_t i = 0; i < POLICY_NCMDS && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
				      policy_cmds[i].name);
	return tool_usage_error("policy", "unknown subcommand '%s' (%s)", sub, names);
}
