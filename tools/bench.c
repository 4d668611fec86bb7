// SPDX-License-Identifier: MIT
/*
 * `wirepath bench`: the command. It parses the options, loads the workload
 * and dispatches by mode: the agent steps of an agentic workload
 * (bench_agentic.c, reported by bench_report.c), the kv transfer sweep
 * (bench_kv.c) or the GPU feed (bench_gpufeed.c). Every path runs against a
 * `wirepath serve` of its own (bench_server.c) unless --peer names one.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
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

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath bench [--paths tcp,uring] [--workload agentic|classic|FILE]\n"
		"                      [--duration S] [--warmup S] [--agents N] [--peer URI]\n"
		"                      [--json FILE] [--svg FILE] [--model-steps-per-s R]\n"
		"                      [--sqpoll] [--busy-poll] [--zc-threshold N] [--seed N] [--quiet]\n"
		"\n"
		"Run agent steps (memory lookups, a streamed model call, parallel tool calls,\n"
		"telemetry) over each path against a `wirepath serve` the bench starts, and\n"
		"report per step, agent and server summed: host CPU, syscalls, context\n"
		"switches, bytes copied, tool latency; then the crossover: how many cores the\n"
		"host needs to keep up with the model.\n"
		"\n"
		"  --paths LIST            comma-separated, from tcp, uring, shm, xsk, rdma, ucx\n"
		"                          (default tcp,uring); one the host lacks is reported\n"
		"                          unavailable with the probe's reason, never replaced\n"
		"  --workload W            agentic (default), classic, a workload file, kv, or gpufeed\n"
		"                          (kv: bulk transfer sweep 64 KiB..64 MiB: GB/s, CPU s/GB,\n"
		"                          bytes copied per byte; --duration is then per size,\n"
		"                          default 1; gpufeed: network to GPU memory, its options\n"
		"                          in 'wirepath bench --workload gpufeed --help')\n"
		"  --duration S            measured seconds per path (default 5)\n"
		"  --warmup S              seconds run before measuring (default 1)\n"
		"  --agents N              agents, each with its own endpoint (default 4)\n"
		"  --peer URI              use a running `wirepath serve` at HOST:PORT instead of\n"
		"                          starting one (its scheme is replaced by each path)\n"
		"  --json FILE             results (default results/latest.json; a .dat table is\n"
		"                          written next to it)\n"
		"  --svg FILE              also draw a chart with scripts/chart.sh\n"
		"  --model-steps-per-s R   the model's agent-step rate for the crossover\n"
		"                          (default 200: %s)\n"
		"  --sqpoll                uring: kernel submission polling thread (both sides)\n"
		"  --busy-poll             spin instead of sleeping (both sides)\n"
		"  --zc-threshold N        uring: zero-copy send at or above N bytes, or 'never'\n"
		"  --seed N                seed for tool result sizes and retries (default 1)\n"
		"  --kitchen sim|cuda      the model stub: sim (default) or cuda, where the server\n"
		"                          first delivers each prompt to GPU memory and checks the\n"
		"                          GPU's checksum of it (docs/gpu.md; for --peer, start\n"
		"                          the server with --kitchen cuda instead)\n"
		"  --tenant-key ID:HEX32   sign every frame as tenant ID with this key, for a\n"
		"                          --peer server started with --policy (the tenant must\n"
		"                          be admin there: the bench reads the server's stats)\n"
		"  --quiet                 no progress or status lines, only the results\n",
		BENCH_MODEL_RATE_BASIS);
}

static int parse_paths(struct bench_cfg *cfg, const char *arg)
{
	const char *p = arg;

	cfg->npaths = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		int known = 0;

		if (n == 0)
			return tool_usage_error("bench", "--paths has an empty name in '%s'", arg);
		for (size_t k = 0; k < BENCH_NKNOWN; k++) {
			const char *kp = bench_known_paths[k];

			if (strlen(kp) == n && !strncmp(kp, p, n))
				known = 1;
		}
		if (!known)
			return tool_usage_error("bench",
						"unknown path '%.*s' in --paths (known: tcp, uring, shm, xsk, rdma, ucx)",
						(int)n, p);
		for (int i = 0; i < cfg->npaths; i++)
			if (strlen(cfg->paths[i]) == n && !strncmp(cfg->paths[i], p, n))
				return tool_usage_error("bench", "path '%.*s' given twice in --paths",
							(int)n, p);
		if (cfg->npaths == BENCH_MAX_PATHS)
			return tool_usage_error("bench", "at most %d paths in --paths", BENCH_MAX_PATHS);
		snprintf(cfg->paths[cfg->npaths++], sizeof(cfg->paths[0]), "%.*s", (int)n, p);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return tool_usage_error("bench", "--paths ends with a comma: '%s'", arg);
		}
	}
	if (!cfg->npaths)
		return tool_usage_error("bench", "--paths needs at least one path");
	return 0;
}

static int parse_peer(struct bench_cfg *cfg, const char *arg)
{
	const char *hp = strstr(arg, "://");
	const char *colon;

	hp = hp ? hp + 3 : arg;
	colon = strrchr(hp, ':');
	if (!*hp || !colon || colon == hp || !colon[1] || strlen(hp) >= sizeof(cfg->peer))
		return tool_usage_error("bench", "--peer takes HOST:PORT or SCHEME://HOST:PORT, not '%s'",
					arg);
	for (const char *c = colon + 1; *c; c++)
		if (*c < '0' || *c > '9')
			return tool_usage_error("bench", "--peer has a bad port in '%s'", arg);
	snprintf(cfg->peer, sizeof(cfg->peer), "%s", hp);
	return 0;
}

/* Limits of the bench protocol on top of wl_validate(). */
static int check_workload(const struct wl *w, char *err, size_t errlen)
{
	if (w->tool_req_bytes > WPB_CHUNK_MAX || w->model_req_bytes > WPB_CHUNK_MAX) {
		snprintf(err, errlen, "requests above %u bytes do not fit one frame (tool_req_bytes %u, model_req_bytes %u)",
			 WPB_CHUNK_MAX, w->tool_req_bytes, w->model_req_bytes);
		return -EINVAL;
	}
	if ((uint64_t)w->token_bytes * w->token_batch > WPB_CHUNK_MAX) {
		snprintf(err, errlen, "token_bytes * token_batch must stay within %u bytes (one stream frame)",
			 WPB_CHUNK_MAX);
		return -EINVAL;
	}
	if (!w->mem_lookups && !w->bulk_bytes && !w->model_req_bytes && !w->fanout) {
		snprintf(err, errlen, "a step must make at least one call (memory lookup, model, tool or bulk) for the bench to pace it");
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
	rmdir(dir);
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "paths", required_argument, NULL, 'P' },
		{ "workload", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "agents", required_argument, NULL, 'a' },
		{ "peer", required_argument, NULL, 'p' },
		{ "json", required_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, 's' },
		{ "model-steps-per-s", required_argument, NULL, 'R' },
		{ "sqpoll", no_argument, NULL, 'Q' },
		{ "busy-poll", no_argument, NULL, 'B' },
		{ "zc-threshold", required_argument, NULL, 'z' },
		{ "seed", required_argument, NULL, 'S' },
		{ "tenant-key", required_argument, NULL, 'K' },
		{ "kitchen", required_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench_cfg cfg;
	struct sigaction sa;
	char err[512];
	const char *tmp;
	uint64_t v;
	int c, rc, status, duration_set = 0;

	/* The GPU feed has options of its own (tools/bench_gpufeed.c). */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--workload=gpufeed") ||
		    (!strcmp(argv[i], "--workload") && i + 1 < argc && !strcmp(argv[i + 1], "gpufeed")))
			return cmd_bench_gpufeed(argc, argv);

	memset(&cfg, 0, sizeof(cfg));
	cfg.workload = "agentic";
	cfg.duration_s = 5;
	cfg.warmup_s = 1;
	cfg.agents = 4;
	cfg.json_path = "results/latest.json";
	cfg.model_rate = BENCH_DEFAULT_MODEL_RATE;
	cfg.seed = 1;
	snprintf(cfg.paths[0], sizeof(cfg.paths[0]), "tcp");
	snprintf(cfg.paths[1], sizeof(cfg.paths[1]), "uring");
	cfg.npaths = 2;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if ((rc = parse_paths(&cfg, optarg)))
				return rc;
			break;
		case 'w':
			cfg.workload = optarg;
			break;
		case 'd':
			if (tool_parse_secs(optarg, 0.01, 86400, &cfg.duration_s) < 0)
				return tool_usage_error("bench", "--duration takes seconds in [0.01, 86400], not '%s'",
							optarg);
			duration_set = 1;
			break;
		case 'W':
			if (tool_parse_secs(optarg, 0, 3600, &cfg.warmup_s) < 0)
				return tool_usage_error("bench", "--warmup takes seconds in [0, 3600], not '%s'",
							optarg);
			break;
		case 'a':
			if (tool_parse_u64(optarg, 1, 4096, &v) < 0)
				return tool_usage_error("bench", "--agents takes a count in [1, 4096], not '%s'",
							optarg);
			cfg.agents = (uint32_t)v;
			break;
		case 'p':
			if ((rc = parse_peer(&cfg, optarg)))
				return rc;
			break;
		case 'j':
			if (!*optarg)
				return tool_usage_error("bench", "--json needs a file name");
			cfg.json_path = optarg;
			break;
		case 's':
			if (!*optarg)
				return tool_usage_error("bench", "--svg needs a file name");
			cfg.svg_path = optarg;
			break;
		case 'R':
			if (tool_parse_secs(optarg, 1e-6, 1e12, &cfg.model_rate) < 0)
				return tool_usage_error("bench", "--model-steps-per-s takes a rate > 0, not '%s'",
							optarg);
			break;
		case 'Q':
			cfg.sqpoll = 1;
			break;
		case 'B':
			cfg.busy_poll = 1;
			break;
		case 'z':
			cfg.zc_set = 1;
			if (!strcmp(optarg, "never")) {
				cfg.zc_threshold = UINT32_MAX;
				break;
			}
			if (tool_parse_size(optarg, 1, UINT32_MAX - 1, &v) < 0)
				return tool_usage_error("bench",
							"--zc-threshold takes a byte count >= 1 (K/M suffix) or 'never', not '%s'",
							optarg);
			cfg.zc_threshold = (uint32_t)v;
			break;
		case 'S':
			if (tool_parse_u64(optarg, 0, UINT64_MAX, &cfg.seed) < 0)
				return tool_usage_error("bench", "--seed takes a non-negative integer, not '%s'",
							optarg);
			break;
		case 'k':
			if (strcmp(optarg, "sim") && strcmp(optarg, "cuda"))
				return tool_usage_error("bench", "--kitchen takes sim or cuda, not '%s'",
							optarg);
			cfg.kitchen_cuda = !strcmp(optarg, "cuda");
			break;
		case 'K':
			if (wp_policy_tenant_key_parse(optarg, &cfg.tenant, cfg.key) < 0)
				return tool_usage_error("bench",
							"--tenant-key takes ID:KEY, a tenant id 1..4294967295 and 32 hex digits, not '%s'",
							optarg);
			cfg.signed_frames = 1;
			break;
		case 'q':
			cfg.quiet = 1;
			break;
		case 'h':
			bench_usage(stdout);
			return 0;
		case ':':
			return tool_usage_error("bench", "option '%s' needs a value", argv[optind - 1]);
		default:
			return tool_usage_error("bench", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (cfg.kitchen_cuda && cfg.peer[0])
		return tool_usage_error("bench", "--kitchen cuda applies to the server the bench "
					"starts; with --peer, start it with 'wirepath serve --kitchen cuda'");
	if (optind < argc)
		return tool_usage_error("bench", "unexpected argument '%s'", argv[optind]);

	err[0] = '\0';
	if (!strcmp(cfg.workload, "kv")) {
		/* The sweep measures bulk transfers: a shorter window per size. */
		if (!duration_set)
			cfg.duration_s = 1.0;
	} else if (wl_load(cfg.workload, &cfg.w, err, sizeof(err)) < 0 ||
	    wl_validate(&cfg.w, err, sizeof(err)) < 0 ||
	    check_workload(&cfg.w, err, sizeof(err)) < 0)
		return tool_usage_error("bench", "bad workload: %s", err[0] ? err : cfg.workload);

	/*
	 * Before any thread exists (and before the servers are forked: the
	 * counter follows only this process's threads), so every syscall the
	 * bench side makes from here on is counted by the kernel.
	 */
	cfg.kern_err = wp_meter_kernel_syscalls_start();
	if (!cfg.quiet) {
		if (cfg.kern_err)
			fprintf(stderr, "wirepath bench: syscalls counted by the library only: the kernel count is unavailable (%s: %s; needs tracefs and perf permission, e.g. root)\n",
				tool_errno_name(cfg.kern_err), strerror(-cfg.kern_err));
		else
			fprintf(stderr, "wirepath bench: syscalls kernel-counted (raw_syscalls:sys_enter)\n");
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
	}

	if (!strcmp(cfg.workload, "kv"))
		status = bench_kv(&cfg);
	else
		status = bench_agentic(&cfg);
	rm_tmpdir(cfg.tmpdir);
	return status;
}
