/* SPDX-License-Identifier: MIT */
/*
 * What the parts of `wirepath bench` share, and nothing else: the run's
 * configuration, one path's result, and the entry points of each part.
 *
 *   bench.c               the command: options, the workload, dispatch by mode
 *   bench_agentic.c       --workload agentic|classic|FILE: the agent state machine
 *   bench_kv.c            --workload kv: the bulk transfer sweep
 *   bench_gpufeed.c       --workload gpufeed: network to GPU memory, its options
 *   bench_gpufeed_send.c  a GPU feed sender (a forked process)
 *   bench_server.c        the `wirepath serve` each path runs against, its stats
 *   bench_report.c        the agentic results: table, JSON, .dat, chart, crossover
 *
 * The stub services' wire format is stub_proto.h's, shared with serve.c.
 */
#ifndef WP_TOOLS_BENCH_H
#define WP_TOOLS_BENCH_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "opt.h"
#include "wirepath/wirepath.h"
#include "workload.h"

#define BENCH_MAX_PATHS 8
#define BENCH_PEER_MAX 256
#define NS_PER_S 1000000000ull
#define BENCH_SPAWN_TIMEOUT_NS (10 * NS_PER_S)
#define BENCH_CONNECT_TIMEOUT_NS (5 * NS_PER_S)
#define BENCH_STATS_TIMEOUT_NS (5 * NS_PER_S)
#define BENCH_STOP_TIMEOUT_NS (5 * NS_PER_S)
/* Longest single wait in the run loop: bounds progress-line and signal latency. */
#define BENCH_WAIT_CAP_US 100000
/*
 * The default model step rate: an 8-GPU node decoding an 8B model at about
 * 100k output tokens/s in aggregate, divided by 520 output tokens per agent
 * step (the agentic workload), is about 190 steps/s.
 */
#define BENCH_DEFAULT_MODEL_RATE 200.0
#define BENCH_MODEL_RATE_BASIS                                                         \
	"an 8-GPU node decoding an 8B model at ~100k output tokens/s aggregate / 520 " \
	"tokens per step ~ 190 steps/s"

/* Paths closer than this in steps per core are reported as a tie. */
#define BENCH_TIE 0.05

/* Set by SIGINT/SIGTERM (bench.c): every loop checks it and winds down. */
extern volatile sig_atomic_t bench_interrupted;

/* A --paths list, in the order given. */
struct bench_paths {
	char name[BENCH_MAX_PATHS][16];
	int n;
};

/* --tenant-key: authenticate (v2) as tenant `id` with `key`. */
struct bench_tenant {
	int on;
	uint32_t id;
	uint8_t key[16];
};

/* --auth: frame authentication on the bench's connections. */
enum bench_auth { BENCH_AUTH_NONE, BENCH_AUTH_V2, BENCH_AUTH_V2_CONF };

struct bench_cfg {
	struct bench_paths paths;
	const char *workload;
	struct wl w;
	double duration_s, warmup_s;
	uint32_t agents;
	char peer[BENCH_PEER_MAX]; /* HOST:PORT (scheme stripped), or "" to spawn a server */
	const char *json_path;
	const char *svg_path;
	double model_rate;
	int sqpoll, busy_poll;
	int ucx_trust_rma;     /* ucx: RMA over software transports (both sides) */
	uint32_t zc_threshold; /* 0: not given, the library's default */
	uint64_t seed;
	int quiet;
	int kitchen_cuda; /* --kitchen cuda: the spawned server's model stub feeds the GPU */
	struct bench_tenant tenant;
	int auth;                   /* enum bench_auth (--auth; --tenant-key alone: v2) */
	char policy_path[PATH_MAX]; /* the rules file given to a spawned server, or "" */
	int kern_err;               /* wp_meter_kernel_syscalls_start() result */
	char tmpdir[256];           /* where spawned servers write their port and output */
};

enum res_state { RES_OK, RES_UNAVAILABLE, RES_ERROR };

/* One path's outcome, measured and derived. */
struct path_res {
	char path[16];
	enum res_state state;
	char msg[512]; /* unavailable: the reason; error: what failed */
	char explain_client[512];
	char explain_server[512];
	double wall_s;
	uint64_t steps, tokens, tool_calls, retries, telemetry;
	struct wp_meter_snap cd, sd; /* client and server diffs over the window */
	struct wp_hist tool_rtt;     /* ns, issue to on_done */
	struct wp_hist step;         /* ns, first call issued to telemetry send completed */

	double steps_per_s, cpu_us_per_step, cpu_us_client, cpu_us_server;
	double syscalls_per_step, lib_syscalls_per_step;
	int kernel_counted;
	double ctxsw_per_step, copied_per_step;
	uint64_t zc_sent, zc_copied;
	double host_steps_per_core, cores_needed, headroom;
};

/* ------------------------------------------------------------------ */
/* bench.c                                                             */
/* ------------------------------------------------------------------ */

/*
 * The probe that says whether a path can run; NULL if this build lacks the
 * path altogether.
 */
const struct wp_probe_result *bench_path_probe(const char *path);

/* ------------------------------------------------------------------ */
/* The modes: each runs every path in cfg and returns the exit status  */
/* ------------------------------------------------------------------ */

int bench_agentic(struct bench_cfg *cfg); /* bench_agentic.c */
int bench_kv(struct bench_cfg *cfg);      /* bench_kv.c */

/*
 * bench_gpufeed.c: the GPU feed has options of its own (bench_gf_opts,
 * scanned with the others); bench_gpufeed() parses what was given with
 * them and runs.
 */
extern const struct tool_opt bench_gf_opts[];
void bench_gpufeed_usage(FILE *f);
int bench_gpufeed(const struct tool_opt_seen *seen);

/*
 * bench_gpufeed_send.c: a GPU feed sender, in a forked process. It sends
 * payloads as one-way messages GF_METHOD_DATA + id, then GF_METHOD_STOP + id
 * carrying [u64 count][u64 sum of wp_gpu_kitchen_sum() of each payload]
 * (little-endian), and returns the process's exit status (0: all sent).
 */
#define GF_METHOD_DATA 0x100u
#define GF_METHOD_STOP 0x200u
#define GF_STOP_LEN 16u
int bench_gf_send(const char *uri, uint64_t size, uint32_t id, double secs);
/* The pseudo-random payload of sender buffer `seed`, n bytes. */
void bench_gf_fill(uint8_t *p, uint64_t n, uint64_t seed);
/* A context max_frame that fits a payload of `size` bytes and its header. */
uint32_t bench_gf_max_frame(uint64_t size);

/* ------------------------------------------------------------------ */
/* bench_server.c: the spawned `wirepath serve`                        */
/* ------------------------------------------------------------------ */

struct bench_server {
	pid_t pid;
	int port;
	char out[PATH_MAX], err[PATH_MAX], port_file[PATH_MAX];
};

/*
 * Start `wirepath serve` for `path` on loopback (this same executable) and
 * wait for its port. 0, or -1 with the reason in err.
 */
int bench_server_start(const struct bench_cfg *cfg, const char *path, struct bench_server *sv,
		       char *err, size_t errlen);
/* SIGTERM and wait (SIGKILL if it will not go). 0 if it exited cleanly, else -1. */
int bench_server_stop(struct bench_server *sv, int quiet);
/* The URI to connect to the server started for `path` on `port`. */
void bench_uri(char *buf, size_t len, const char *path, int port);
/* First line of `path` that starts with `prefix` (prefix stripped); "" if none. */
int bench_file_line(const char *path, const char *prefix, char *out, size_t len);
/* The server's meter snapshot through the library's stats call (WP_METHOD_STATS). */
struct bench_stats {
	int done;   /* the call has ended: status and, if 0, the reply are in */
	int status; /* library errno (< 0) or server status (> 0) */
	uint32_t len;
	struct wp_meter_snap snap;
};

/* Start the stats call on ep; the caller drives the context until st->done. 0 or -errno. */
int bench_stats_call(struct wp_ep *ep, struct bench_stats *st);
/* Once st->done: 0 with the snapshot in out, or -1 with why in err. */
int bench_stats_result(const struct bench_stats *st, struct wp_meter_snap *out, char *err,
		       size_t errlen);

/* ------------------------------------------------------------------ */
/* bench_report.c                                                      */
/* ------------------------------------------------------------------ */

/*
 * Derive the per-step figures from the window's diffs (res->cd, res->sd,
 * res->steps, res->wall_s) and the crossover: the host's steps per core
 * against the model's rate.
 */
void bench_res_compute(struct path_res *res, double model_rate);
/* Write data to path, creating its directories. 0 or -errno. */
int bench_write_file(const char *path, const char *data, size_t len);
struct sbuf;
/* Write b to path (making its directory) and free b: 0, -ENOMEM if b ran out
 * of memory while it was built, or -errno. */
int bench_write_sb(const char *path, struct sbuf *b);
/*
 * The agentic run's results: the table and crossover on stdout, the JSON and
 * the .dat next to it, the chart if asked. 0, or 1 if a file failed.
 */
int bench_report(const struct bench_cfg *cfg, const struct path_res *res, int n);

#endif
