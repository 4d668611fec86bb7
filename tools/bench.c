// SPDX-License-Identifier: MIT
/*
 * `wirepath bench`: the command. It reads argv once, against the option
 * tables of every mode, picks the mode from --workload, and dispatches: the
 * agent steps of an agentic workload (bench_agentic.c, reported by
 * bench_report.c), the kv transfer sweep (bench_kv.c) or the GPU feed
 * (bench_gpufeed.c, which has options of its own). Every path runs against
 * a `wirepath serve` of its own (bench_server.c) unless --peer names one.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "bench.h"
#include "opt.h"
#include "stub_proto.h"
#include "tools.h"
#include "util.h"
#include "wirepath/policy.h"

/* Every path the design names; the ones this build lacks are reported as unavailable. */
static const char *const bench_known_paths[] = { "tcp", "uring", "shm", "xsk", "rdma", "ucx" };
#define BENCH_NKNOWN (sizeof(bench_known_paths) / sizeof(bench_known_paths[0]))

volatile sig_atomic_t bench_interrupted;

/*
 * The probe that says whether a path can run: its own name ("tcp", "uring"),
 * else "path.<name>" (paths this build lacks), with xsk probed as af_xdp.
 */
const struct wp_probe_result *bench_path_probe(const char *path)
{
	const struct wp_probe_result *pr = wp_probe_get(path);
	char name[64];

	if (pr)
		return pr;
	snprintf(name, sizeof(name), "path.%s", !strcmp(path, "xsk") ? "af_xdp" : path);
	return wp_probe_get(name);
}

/* --paths for the agentic workloads and kv: names from bench_known_paths, each once. */
static int parse_paths(const char *cmd, const char *arg, void *dst)
{
	struct bench_paths *paths = dst;
	const char *p = arg;

	paths->n = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		int known = 0;

		if (n == 0)
			return tool_usage_error(cmd, "--paths has an empty name in '%s'", arg);
		for (size_t k = 0; k < BENCH_NKNOWN; k++) {
			const char *kp = bench_known_paths[k];

			if (strlen(kp) == n && !strncmp(kp, p, n))
				known = 1;
		}
		if (!known)
			return tool_usage_error(
				cmd,
				"unknown path '%.*s' in --paths (known: tcp, uring, shm, xsk, rdma, ucx)",
				(int)n, p);
		for (int i = 0; i < paths->n; i++)
			if (strlen(paths->name[i]) == n && !strncmp(paths->name[i], p, n))
				return tool_usage_error(cmd, "path '%.*s' given twice in --paths",
							(int)n, p);
		if (paths->n == BENCH_MAX_PATHS)
			return tool_usage_error(cmd, "at most %d paths in --paths",
						BENCH_MAX_PATHS);
		snprintf(paths->name[paths->n++], sizeof(paths->name[0]), "%.*s", (int)n, p);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return tool_usage_error(cmd, "--paths ends with a comma: '%s'",
							arg);
		}
	}
	if (!paths->n)
		return tool_usage_error(cmd, "--paths needs at least one path");
	return 0;
}

/* --peer: HOST:PORT, its scheme (if any) stripped; each path supplies its own. */
static int parse_peer(const char *cmd, const char *arg, void *dst)
{
	const char *hp = strstr(arg, "://");
	const char *colon;

	hp = hp ? hp + 3 : arg;
	colon = strrchr(hp, ':');
	if (!*hp || !colon || colon == hp || !colon[1] || strlen(hp) >= BENCH_PEER_MAX)
		return -EINVAL;
	for (const char *c = colon + 1; *c; c++)
		if (*c < '0' || *c > '9')
			return tool_usage_error(cmd, "--peer has a bad port in '%s'", arg);
	snprintf(dst, BENCH_PEER_MAX, "%s", hp);
	return 0;
}

static int parse_tenant_key(const char *cmd, const char *arg, void *dst)
{
	struct bench_tenant *t = dst;

	if (wp_policy_tenant_key_parse(arg, &t->id, t->key) < 0)
		return -EINVAL;
	t->on = 1;
	return 0;
}

static int parse_auth(const char *cmd, const char *arg, void *dst)
{
	int *a = dst;

	if (!strcmp(arg, "none"))
		*a = BENCH_AUTH_NONE;
	else if (!strcmp(arg, "v2"))
		*a = BENCH_AUTH_V2;
	else if (!strcmp(arg, "v2-conf"))
		*a = BENCH_AUTH_V2_CONF;
	else
		return -EINVAL;
	return 0;
}

/*
 * --auth without --tenant-key on a spawned server: a fresh random key for
 * tenant 1, admin (the bench reads the server's stats), in a rules file the
 * server gets with --policy. Returns 0 or -errno.
 */
static int bench_auth_setup(struct bench_cfg *cfg)
{
	char rules[256], hex[33];
	FILE *f;

	if (getrandom(cfg->tenant.key, sizeof(cfg->tenant.key), 0) != sizeof(cfg->tenant.key))
		return -errno;
	cfg->tenant.key[0] |= 1; /* never all zeros */
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", cfg->tenant.key[i]);
	cfg->tenant.id = 1;
	cfg->tenant.on = 1;
	snprintf(rules, sizeof(rules), "default pass\ntenant bench id 1 key %s admin\n", hex);
	snprintf(cfg->policy_path, sizeof(cfg->policy_path), "%s/auth.rules", cfg->tmpdir);
	f = fopen(cfg->policy_path, "w");
	if (!f)
		return -errno;
	fputs(rules, f);
	return fclose(f) ? -EIO : 0;
}

#define CFG(field) offsetof(struct bench_cfg, field)

/*
 * The options of the agentic workloads and kv (kv uses the common ones and
 * ignores the rest); the GPU feed's are bench_gf_opts. In --help order.
 */
static const struct tool_opt bench_opts[] = {
	{ .name = "paths",
	  .kind = TOOL_OPT_FN,
	  .fn = parse_paths,
	  .off = CFG(paths),
	  .meta = "LIST",
	  .help = "comma-separated, from tcp, uring, shm, xsk, rdma, ucx\n"
		  "(default tcp,uring); one the host lacks is reported\n"
		  "unavailable with the probe's reason, never replaced" },
	{ .name = "workload",
	  .kind = TOOL_OPT_STR,
	  .off = CFG(workload),
	  .meta = "W",
	  .help = "agentic (default), classic, a workload file, kv, or gpufeed\n"
		  "(kv: bulk transfer sweep 64 KiB..64 MiB: GB/s, CPU s/GB,\n"
		  "bytes copied per byte; --duration is then per size,\n"
		  "default 1; gpufeed: network to GPU memory, its options\n"
		  "in 'wirepath bench --workload gpufeed --help')" },
	{ .name = "duration",
	  .kind = TOOL_OPT_SECS,
	  .off = CFG(duration_s),
	  .fmin = 0.01,
	  .fmax = 86400,
	  .meta = "S",
	  .help = "measured seconds per path (default 5)" },
	{ .name = "warmup",
	  .kind = TOOL_OPT_SECS,
	  .off = CFG(warmup_s),
	  .fmin = 0,
	  .fmax = 3600,
	  .meta = "S",
	  .help = "seconds run before measuring (default 1)" },
	{ .name = "agents",
	  .kind = TOOL_OPT_U32,
	  .off = CFG(agents),
	  .min = 1,
	  .max = 4096,
	  .meta = "N",
	  .help = "agents, each with its own endpoint (default 4)" },
	{ .name = "peer",
	  .kind = TOOL_OPT_FN,
	  .fn = parse_peer,
	  .off = CFG(peer),
	  .meta = "URI",
	  .takes = "HOST:PORT or SCHEME://HOST:PORT",
	  .help = "use a running `wirepath serve` at HOST:PORT instead of\n"
		  "starting one (its scheme is replaced by each path)" },
	{ .name = "json",
	  .kind = TOOL_OPT_FILE,
	  .off = CFG(json_path),
	  .meta = "FILE",
	  .help = "results (default results/latest.json; a .dat table is\n"
		  "written next to it)" },
	{ .name = "svg",
	  .kind = TOOL_OPT_FILE,
	  .off = CFG(svg_path),
	  .meta = "FILE",
	  .help = "also draw a chart with scripts/chart.sh" },
	{ .name = "model-steps-per-s",
	  .kind = TOOL_OPT_SECS,
	  .off = CFG(model_rate),
	  .fmin = 1e-6,
	  .fmax = 1e12,
	  .meta = "R",
	  .takes = "a rate > 0",
	  .help = "the model's agent-step rate for the crossover\n"
		  "(default 200: " BENCH_MODEL_RATE_BASIS ")" },
	{ .name = "sqpoll",
	  .kind = TOOL_OPT_FLAG,
	  .off = CFG(sqpoll),
	  .help = "uring: kernel submission polling thread (both sides)" },
	{ .name = "busy-poll",
	  .kind = TOOL_OPT_FLAG,
	  .off = CFG(busy_poll),
	  .help = "spin instead of sleeping (both sides)" },
	{ .name = "ucx-trust-rma",
	  .kind = TOOL_OPT_FLAG,
	  .off = CFG(ucx_trust_rma),
	  .help = "ucx: trust the peer with this process's memory: RMA\n"
		  "even over software transports (tcp), both sides\n"
		  "(default: frames unless every rma lane is verbs)" },
	{ .name = "zc-threshold",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_zc,
	  .off = CFG(zc_threshold),
	  .meta = "N",
	  .takes = "a byte count >= 1 (K/M suffix) or 'never'",
	  .help = "uring: zero-copy send at or above N bytes, or 'never'" },
	{ .name = "seed",
	  .kind = TOOL_OPT_U64,
	  .off = CFG(seed),
	  .min = 0,
	  .max = UINT64_MAX,
	  .meta = "N",
	  .takes = "a non-negative integer",
	  .help = "seed for tool result sizes and retries (default 1)" },
	{ .name = "kitchen",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_kitchen,
	  .off = CFG(kitchen_cuda),
	  .meta = "sim|cuda",
	  .takes = "sim or cuda",
	  .help = "the model stub: sim (default) or cuda, where the server\n"
		  "first delivers each prompt to GPU memory and checks the\n"
		  "GPU's checksum of it (docs/gpu.md; for --peer, start\n"
		  "the server with --kitchen cuda instead)" },
	{ .name = "tenant-key",
	  .kind = TOOL_OPT_FN,
	  .fn = parse_tenant_key,
	  .off = CFG(tenant),
	  .meta = "ID:HEX32",
	  .takes = "ID:KEY, a tenant id 1..4294967295 and 32 hex digits",
	  .help = "authenticate (v2) as tenant ID with this key, for a\n"
		  "--peer server started with --policy (the tenant must\n"
		  "be admin there: the bench reads the server's stats)" },
	{ .name = "auth",
	  .kind = TOOL_OPT_FN,
	  .fn = parse_auth,
	  .off = CFG(auth),
	  .meta = "none|v2|v2-conf",
	  .takes = "none, v2 or v2-conf",
	  .help = "frame authentication v2 (handshake + records), with\n"
		  "confidentiality for v2-conf; the server the bench starts\n"
		  "gets a policy with a fresh key (with --peer, give\n"
		  "--tenant-key). Default: none, or v2 with --tenant-key" },
	{ .name = "quiet",
	  .short_name = 'q',
	  .kind = TOOL_OPT_FLAG,
	  .off = CFG(quiet),
	  .help = "no progress or status lines, only the results" },
	{ .name = NULL },
};

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath bench [--paths tcp,uring] [--workload agentic|classic|FILE]\n"
		"                      [--duration S] [--warmup S] [--agents N] [--peer URI]\n"
		"                      [--json FILE] [--svg FILE] [--model-steps-per-s R]\n"
		"                      [--sqpoll] [--busy-poll] [--ucx-trust-rma] [--zc-threshold N] [--seed N] [--quiet]\n"
		"\n"
		"Run agent steps (memory lookups, a streamed model call, parallel tool calls,\n"
		"telemetry) over each path against a `wirepath serve` the bench starts, and\n"
		"report per step, agent and server summed: host CPU, syscalls, context\n"
		"switches, bytes copied, tool latency; then the crossover: how many cores the\n"
		"host needs to keep up with the model.\n"
		"\n");
	tool_opt_help(f, bench_opts, 26);
}

/* Limits of the bench protocol on top of wl_validate(). */
static int check_workload(const struct wl *w, char *err, size_t errlen)
{
	if (w->tool_req_bytes > WPB_CHUNK_MAX || w->model_req_bytes > WPB_CHUNK_MAX) {
		snprintf(
			err, errlen,
			"requests above %u bytes do not fit one frame (tool_req_bytes %u, model_req_bytes %u)",
			WPB_CHUNK_MAX, w->tool_req_bytes, w->model_req_bytes);
		return -EINVAL;
	}
	if ((uint64_t)w->token_bytes * w->token_batch > WPB_CHUNK_MAX) {
		snprintf(err, errlen,
			 "token_bytes * token_batch must stay within %u bytes (one stream frame)",
			 WPB_CHUNK_MAX);
		return -EINVAL;
	}
	if (!w->mem_lookups && !w->bulk_bytes && !w->model_req_bytes && !w->fanout) {
		snprintf(
			err, errlen,
			"a step must make at least one call (memory lookup, model, tool or bulk) for the bench to pace it");
		return -EINVAL;
	}
	if (w->bulk_bytes > UINT32_MAX) {
		snprintf(err, errlen, "bulk_bytes above 4 GiB is not supported");
		return -EINVAL;
	}
	return 0;
}

static void bench_on_signal(int sig)
{
	bench_interrupted = sig;
}

static void rm_tmpdir(const char *dir)
{
	static const char *const sfx[] = { "port", "port.tmp", "out", "err" };
	char p[PATH_MAX];

	if (!dir[0])
		return;
	for (size_t i = 0; i < BENCH_NKNOWN; i++) {
		for (size_t k = 0; k < sizeof(sfx) / sizeof(sfx[0]); k++) {
			snprintf(p, sizeof(p), "%s/%s.%s", dir, bench_known_paths[i], sfx[k]);
			unlink(p);
		}
	}
	snprintf(p, sizeof(p), "%s/auth.rules", dir);
	unlink(p);
	rmdir(dir);
}

int cmd_bench(int argc, char **argv)
{
	static const struct tool_opt *const tables[] = { bench_opts, bench_gf_opts };
	static struct bench_cfg cfg;
	struct tool_opt_seen seen;
	const char *workload = "agentic";
	struct sigaction sa;
	char err[512], mode[300];
	const char *tmp;
	int rc, kv, status;

	/*
	 * argv is read once, against every mode's options; the mode is what
	 * --workload says, and only its own options may then be given.
	 */
	rc = tool_opt_scan("bench", tables, 2, argc, argv, &seen, NULL);
	if (rc && rc != TOOL_OPT_HELP)
		return rc;
	tool_opt_given(&seen, "workload", &workload);
	if (!strcmp(workload, "gpufeed")) {
		if (rc == TOOL_OPT_HELP) {
			bench_gpufeed_usage(stdout);
			return 0;
		}
		return bench_gpufeed(&seen);
	}
	if (rc == TOOL_OPT_HELP) {
		bench_usage(stdout);
		return 0;
	}

	kv = !strcmp(workload, "kv");
	memset(&cfg, 0, sizeof(cfg));
	cfg.workload = "agentic";
	/* The kv sweep measures bulk transfers: a shorter window per size. */
	cfg.duration_s = kv ? 1.0 : 5;
	cfg.warmup_s = 1;
	cfg.agents = 4;
	cfg.json_path = "results/latest.json";
	cfg.model_rate = BENCH_DEFAULT_MODEL_RATE;
	cfg.seed = 1;
	snprintf(cfg.paths.name[0], sizeof(cfg.paths.name[0]), "tcp");
	snprintf(cfg.paths.name[1], sizeof(cfg.paths.name[1]), "uring");
	cfg.paths.n = 2;
	snprintf(mode, sizeof(mode), "--workload %.280s", workload);
	rc = tool_opt_apply("bench", bench_opts, mode, &seen, &cfg);
	if (rc)
		return rc;
	if (cfg.tenant.on && cfg.auth == BENCH_AUTH_NONE)
		cfg.auth = BENCH_AUTH_V2; /* a key means v2 */
	if (cfg.auth != BENCH_AUTH_NONE && cfg.peer[0] && !cfg.tenant.on)
		return tool_usage_error("bench", "--auth with --peer needs --tenant-key ID:KEY, "
						 "a tenant of the server's --policy");
	if (cfg.kitchen_cuda && cfg.peer[0])
		return tool_usage_error(
			"bench",
			"--kitchen cuda applies to the server the bench "
			"starts; with --peer, start it with 'wirepath serve --kitchen cuda'");

	err[0] = '\0';
	if (!kv && (wl_load(cfg.workload, &cfg.w, err, sizeof(err)) < 0 ||
		    wl_validate(&cfg.w, err, sizeof(err)) < 0 ||
		    check_workload(&cfg.w, err, sizeof(err)) < 0))
		return tool_usage_error("bench", "bad workload: %s", err[0] ? err : cfg.workload);

	/*
	 * Before any thread exists (and before the servers are forked: the
	 * counter follows only this process's threads), so every syscall the
	 * bench side makes from here on is counted by the kernel.
	 */
	cfg.kern_err = wp_meter_kernel_syscalls_start();
	if (!cfg.quiet) {
		if (cfg.kern_err)
			fprintf(stderr,
				"wirepath bench: syscalls counted by the library only: the kernel count is unavailable (%s: %s; needs tracefs and perf permission, e.g. root)\n",
				tool_errno_name(cfg.kern_err), strerror(-cfg.kern_err));
		else
			fprintf(stderr,
				"wirepath bench: syscalls kernel-counted (raw_syscalls:sys_enter)\n");
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!cfg.peer[0]) {
		tmp = getenv("TMPDIR");
		snprintf(cfg.tmpdir, sizeof(cfg.tmpdir), "%s/wirepath-bench.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(cfg.tmpdir)) {
			fprintf(stderr, "wirepath bench: cannot create a temp dir in %s: %s\n",
				tmp && *tmp ? tmp : "/tmp", strerror(errno));
			return 1;
		}
		if (cfg.auth != BENCH_AUTH_NONE && !cfg.tenant.on &&
		    (rc = bench_auth_setup(&cfg)) < 0) {
			fprintf(stderr, "wirepath bench: cannot write a policy for --auth: %s\n",
				strerror(-rc));
			rm_tmpdir(cfg.tmpdir);
			return 1;
		}
		if (cfg.auth != BENCH_AUTH_NONE && !cfg.policy_path[0]) {
			fprintf(stderr, "wirepath bench: --tenant-key applies to a --peer server "
					"(started with --policy); leave it out to let the bench "
					"make a key\n");
			rm_tmpdir(cfg.tmpdir);
			return 1;
		}
	}

	if (kv)
		status = bench_kv(&cfg);
	else
		status = bench_agentic(&cfg);
	rm_tmpdir(cfg.tmpdir);
	return status;
}
