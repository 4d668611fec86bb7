// SPDX-License-Identifier: MIT
/*
 * The agentic bench's results, in every form they take: the table and the
 * crossover on stdout (how many host cores each path needs to keep up with
 * the model's step rate, and which path moves the host limit furthest), the
 * JSON with everything measured and what the probes found, the .dat table
 * next to it for scripts/chart.sh, and the chart itself when asked.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "util.h"

void bench_res_compute(struct path_res *res, double model_rate)
{
	const struct wp_meter_snap *c = &res->cd, *s = &res->sd;
	double st = (double)res->steps;

	res->steps_per_s = st / res->wall_s;
	res->cpu_us_client = (double)(c->cpu_user_ns + c->cpu_sys_ns) / 1e3 / st;
	res->cpu_us_server = (double)(s->cpu_user_ns + s->cpu_sys_ns) / 1e3 / st;
	res->cpu_us_per_step = res->cpu_us_client + res->cpu_us_server;
	res->kernel_counted = c->kernel_syscalls_ok && s->kernel_syscalls_ok;
	res->lib_syscalls_per_step = (double)(wp_meter_syscalls(c) + wp_meter_syscalls(s)) / st;
	res->syscalls_per_step = res->kernel_counted
					 ? (double)(c->kernel_syscalls + s->kernel_syscalls) / st
					 : res->lib_syscalls_per_step;
	res->ctxsw_per_step = (double)(c->ctx_vol + c->ctx_invol + s->ctx_vol + s->ctx_invol) / st;
	res->copied_per_step = (double)(c->bytes_copied + s->bytes_copied) / st;
	res->zc_sent = c->zc_sent + s->zc_sent;
	res->zc_copied = c->zc_copied + s->zc_copied;
	res->host_steps_per_core = res->cpu_us_per_step > 0 ? 1e6 / res->cpu_us_per_step : INFINITY;
	res->cores_needed = model_rate * res->cpu_us_per_step / 1e6;
	res->headroom = res->host_steps_per_core / model_rate;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* Tool-call latency quantile in us; NaN (null in JSON, "-" in tables) without tool calls. */
static double tool_q(const struct path_res *p, double q)
{
	return p->tool_rtt.count ? us(wp_hist_quantile(&p->tool_rtt, q)) : NAN;
}

/* "%.1f" or "-" for NaN, for the table and the .dat file. */
static const char *fmt_num(char *buf, size_t len, double v, int prec)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*f", prec, v);
	return buf;
}

static void json_meter(struct sbuf *b, const struct wp_meter_snap *s)
{
	char small[4096];
	int n = wp_meter_json(s, small, sizeof(small));

	if (n < 0) {
		sb_printf(b, "null");
	} else if ((size_t)n < sizeof(small)) {
		sb_printf(b, "%s", small);
	} else {
		char *big = malloc((size_t)n + 1);

		if (big && wp_meter_json(s, big, (size_t)n + 1) == n)
			sb_printf(b, "%s", big);
		else
			sb_printf(b, "null");
		free(big);
	}
}

static void json_result(struct sbuf *b, const struct path_res *res)
{
	const struct wp_meter_snap *c = &res->cd, *s = &res->sd;
	double st = (double)res->steps;

	sb_printf(b, "{\"path\":");
	sb_json_str(b, res->path);
	if (res->state == RES_UNAVAILABLE) {
		sb_printf(b, ",\"available\":false,\"ok\":false,\"reason\":");
		sb_json_str(b, res->msg);
		sb_printf(b, "}");
		return;
	}
	if (res->state == RES_ERROR) {
		sb_printf(b, ",\"available\":true,\"ok\":false,\"error\":");
		sb_json_str(b, res->msg);
		sb_printf(b, ",\"explain\":{\"client\":");
		sb_json_str(b, res->explain_client[0] ? res->explain_client : NULL);
		sb_printf(b, ",\"server\":");
		sb_json_str(b, res->explain_server[0] ? res->explain_server : NULL);
		sb_printf(b, "}}");
		return;
	}
	sb_printf(b,
		  ",\"available\":true,\"ok\":true,\"steps\":%" PRIu64 ",\"wall_s\":", res->steps);
	sb_json_num(b, res->wall_s);
	sb_printf(b, ",\"steps_per_s\":");
	sb_json_num(b, res->steps_per_s);
	sb_printf(b, ",\"cpu_us_per_step\":");
	sb_json_num(b, res->cpu_us_per_step);
	sb_printf(b, ",\"cpu_us_per_step_by_side\":{\"client\":");
	sb_json_num(b, res->cpu_us_client);
	sb_printf(b, ",\"server\":");
	sb_json_num(b, res->cpu_us_server);
	sb_printf(b, "},\"syscalls_per_step\":");
	sb_json_num(b, res->syscalls_per_step);
	sb_printf(b, ",\"syscalls_source\":\"%s\",\"lib_syscalls_per_step\":",
		  res->kernel_counted ? "kernel" : "library");
	sb_json_num(b, res->lib_syscalls_per_step);
	sb_printf(b, ",\"kernel_syscalls_per_step\":{\"client\":");
	if (c->kernel_syscalls_ok)
		sb_json_num(b, (double)c->kernel_syscalls / st);
	else
		sb_printf(b, "null");
	sb_printf(b, ",\"server\":");
	if (s->kernel_syscalls_ok)
		sb_json_num(b, (double)s->kernel_syscalls / st);
	else
		sb_printf(b, "null");
	sb_printf(b, "},\"lib_syscalls_by_kind_per_step\":{");
	for (int k = 0; k < WP_SYS__COUNT; k++) {
		sb_printf(b, "%s", k ? "," : "");
		sb_json_str(b, wp_sys_kind_name(k));
		sb_printf(b, ":");
		sb_json_num(b, (double)(c->syscalls[k] + s->syscalls[k]) / st);
	}
	sb_printf(b, "},\"ctx_switches_per_step\":");
	sb_json_num(b, res->ctxsw_per_step);
	sb_printf(b, ",\"copied_bytes_per_step\":");
	sb_json_num(b, res->copied_per_step);
	sb_printf(b, ",\"wire_bytes_per_step\":{\"tx\":");
	sb_json_num(b, (double)c->bytes_tx / st);
	sb_printf(b, ",\"rx\":");
	sb_json_num(b, (double)c->bytes_rx / st);
	sb_printf(b, "},\"frames_per_step\":{\"tx\":");
	sb_json_num(b, (double)c->msgs_tx / st);
	sb_printf(b, ",\"rx\":");
	sb_json_num(b, (double)c->msgs_rx / st);
	sb_printf(b, "},\"tokens_per_step\":");
	sb_json_num(b, (double)res->tokens / st);
	sb_printf(b, ",\"tool_calls_per_step\":");
	sb_json_num(b, (double)res->tool_calls / st);
	sb_printf(b,
		  ",\"retries\":%" PRIu64 ",\"telemetry_msgs\":%" PRIu64
		  ",\"tool_rtt_us\":{\"p50\":",
		  res->retries, res->telemetry);
	sb_json_num(b, tool_q(res, 0.5));
	sb_printf(b, ",\"p90\":");
	sb_json_num(b, tool_q(res, 0.9));
	sb_printf(b, ",\"p99\":");
	sb_json_num(b, tool_q(res, 0.99));
	sb_printf(b, ",\"p999\":");
	sb_json_num(b, tool_q(res, 0.999));
	sb_printf(b, ",\"mean\":");
	sb_json_num(b, res->tool_rtt.count ? us(res->tool_rtt.sum) / (double)res->tool_rtt.count
					   : NAN);
	sb_printf(b, ",\"max\":");
	sb_json_num(b, res->tool_rtt.count ? us(res->tool_rtt.max) : NAN);
	sb_printf(b, ",\"count\":%" PRIu64 "},\"step_us\":{\"p50\":", res->tool_rtt.count);
	sb_json_num(b, us(wp_hist_quantile(&res->step, 0.5)));
	sb_printf(b, ",\"p99\":");
	sb_json_num(b, us(wp_hist_quantile(&res->step, 0.99)));
	sb_printf(b, ",\"max\":");
	sb_json_num(b, us(res->step.max));
	sb_printf(b,
		  "},\"zc\":{\"sent\":%" PRIu64 ",\"copied\":%" PRIu64 "},\"explain\":{\"client\":",
		  res->zc_sent, res->zc_copied);
	sb_json_str(b, res->explain_client);
	sb_printf(b, ",\"server\":");
	sb_json_str(b, res->explain_server);
	sb_printf(b, "},\"client\":");
	json_meter(b, c);
	sb_printf(b, ",\"server\":");
	json_meter(b, s);
	sb_printf(b, "}");
}

/* The ok path whose one core runs the most steps; NULL if none ran. */
static const struct path_res *best_path(const struct path_res *res, int n)
{
	const struct path_res *best = NULL;

	for (int i = 0; i < n; i++)
		if (res[i].state == RES_OK &&
		    (!best || res[i].host_steps_per_core > best->host_steps_per_core))
			best = &res[i];
	return best;
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return n ? -ENAMETOOLONG : 0;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int bench_write_file(const char *path, const char *data, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	FILE *f;
	int rc;

	if (slash && slash != path) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		rc = mkdir_p(dir);
		if (rc < 0)
			return rc;
	}
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fwrite(data, 1, len, f) != len) {
		rc = -errno;
		fclose(f);
		return rc ? rc : -EIO;
	}
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static int write_json(const struct bench_cfg *cfg, const struct path_res *res, int n)
{
	const struct path_res *best = best_path(res, n);
	struct sbuf b = { 0 };
	struct utsname u;
	char *wl;
	int len;

	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	sb_printf(&b, "{\"host\":{\"probes\":");
	tool_probes_json(&b);
	sb_printf(&b, ",\"kernel\":");
	sb_json_str(&b, u.release);
	sb_printf(&b, ",\"cpus\":%ld,\"wirepath\":", sysconf(_SC_NPROCESSORS_ONLN));
	sb_json_str(&b, wp_version());
	sb_printf(&b, "},\"workload\":");
	len = wl_to_json(&cfg->w, NULL, 0);
	wl = malloc((size_t)len + 1);
	if (wl) {
		wl_to_json(&cfg->w, wl, (size_t)len + 1);
		sb_printf(&b, "%s", wl);
		free(wl);
	} else {
		sb_printf(&b, "null");
	}

	sb_printf(&b, ",\"config\":{\"paths\":[");
	for (int i = 0; i < cfg->paths.n; i++) {
		sb_printf(&b, "%s", i ? "," : "");
		sb_json_str(&b, cfg->paths.name[i]);
	}
	sb_printf(&b, "],\"workload_source\":");
	sb_json_str(&b, cfg->workload);
	sb_printf(&b, ",\"duration_s\":");
	sb_json_num(&b, cfg->duration_s);
	sb_printf(&b, ",\"warmup_s\":");
	sb_json_num(&b, cfg->warmup_s);
	sb_printf(&b, ",\"agents\":%u,\"peer\":", cfg->agents);
	sb_json_str(&b, cfg->peer[0] ? cfg->peer : NULL);
	sb_printf(&b, ",\"sqpoll\":%s,\"busy_poll\":%s,\"zc_threshold\":",
		  cfg->sqpoll ? "true" : "false", cfg->busy_poll ? "true" : "false");
	if (cfg->zc_threshold)
		sb_printf(&b, "%u", cfg->zc_threshold);
	else
		sb_printf(&b, "null");
	sb_printf(&b, ",\"kitchen\":\"%s\"", cfg->kitchen_cuda ? "cuda" : "sim");
	sb_printf(&b, ",\"auth\":\"%s\"",
		  cfg->auth == BENCH_AUTH_V2_CONF ? "v2-conf"
		  : cfg->auth == BENCH_AUTH_V2    ? "v2"
						  : "none");
	sb_printf(&b, ",\"seed\":%" PRIu64 ",\"model_steps_per_s\":", cfg->seed);
	sb_json_num(&b, cfg->model_rate);
	sb_printf(&b, ",\"kernel_syscalls\":{\"ok\":%s,\"err\":", cfg->kern_err ? "false" : "true");
	sb_json_str(&b, cfg->kern_err ? tool_errno_name(cfg->kern_err) : NULL);
	sb_printf(&b, "},\"note\":");
	sb_json_str(&b, "per-step figures sum the agent (client) and server processes; each "
			"window edge makes one stats call, counted inside the window");
	sb_printf(&b, "},\"results\":[");
	for (int i = 0; i < n; i++) {
		sb_printf(&b, "%s", i ? "," : "");
		json_result(&b, &res[i]);
	}
	sb_printf(&b, "],\"crossover\":{\"model_steps_per_s\":");
	sb_json_num(&b, cfg->model_rate);
	sb_printf(&b, ",\"basis\":");
	sb_json_str(&b, cfg->model_rate == BENCH_DEFAULT_MODEL_RATE
				? BENCH_MODEL_RATE_BASIS
				: "given with --model-steps-per-s");
	sb_printf(&b, ",\"paths\":[");
	for (int i = 0, k = 0; i < n; i++) {
		if (res[i].state != RES_OK)
			continue;
		sb_printf(&b, "%s{\"path\":", k++ ? "," : "");
		sb_json_str(&b, res[i].path);
		sb_printf(&b, ",\"host_steps_per_core\":");
		sb_json_num(&b, res[i].host_steps_per_core);
		sb_printf(&b, ",\"cores_needed\":");
		sb_json_num(&b, res[i].cores_needed);
		sb_printf(&b, ",\"bound\":\"%s\",\"headroom\":",
			  res[i].host_steps_per_core < cfg->model_rate ? "host" : "model");
		sb_json_num(&b, res[i].headroom);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "],\"best\":");
	sb_json_str(&b, best ? best->path : NULL);
	sb_printf(&b, "}}\n");

	return bench_write_sb(cfg->json_path, &b);
}

/* The .dat next to the JSON: same basename. */
static void dat_path(const char *json, char *out, size_t len)
{
	size_t n = strlen(json);

	if (n > 5 && !strcmp(json + n - 5, ".json"))
		snprintf(out, len, "%.*s.dat", (int)(n - 5), json);
	else
		snprintf(out, len, "%s.dat", json);
}

static int write_dat(const char *path, const struct path_res *res, int n)
{
	struct sbuf b = { 0 };

	sb_printf(&b, "# path steps_per_s cpu_us_per_step syscalls_per_step ctx_switches_per_step "
		      "copied_bytes_per_step tool_p50_us tool_p99_us\n");
	for (int i = 0; i < n; i++) {
		if (res[i].state != RES_OK)
			continue;
		char p50[32], p99[32];

		sb_printf(&b, "%s %.3f %.3f %.3f %.3f %.3f %s %s\n", res[i].path,
			  res[i].steps_per_s, res[i].cpu_us_per_step, res[i].syscalls_per_step,
			  res[i].ctxsw_per_step, res[i].copied_per_step,
			  fmt_num(p50, sizeof(p50), tool_q(&res[i], 0.5), 3),
			  fmt_num(p99, sizeof(p99), tool_q(&res[i], 0.99), 3));
	}
	return bench_write_sb(path, &b);
}

int bench_write_sb(const char *path, struct sbuf *b)
{
	int rc = b->oom ? -ENOMEM : bench_write_file(path, b->p, b->len);

	sb_free(b);
	return rc;
}

/* scripts/chart.sh: next to the executable's directory, else under the cwd. */
static int find_chart(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/../scripts/chart.sh", exe) < len &&
			    access(out, R_OK) == 0)
				return 0;
			if ((size_t)snprintf(out, len, "%s/scripts/chart.sh", exe) < len &&
			    access(out, R_OK) == 0)
				return 0;
		}
	}
	snprintf(out, len, "scripts/chart.sh");
	return access(out, R_OK) == 0 ? 0 : -ENOENT;
}

static void run_chart(const char *dat, const char *svg, int quiet)
{
	char chart[PATH_MAX];
	int status;
	pid_t pid;

	if (find_chart(chart, sizeof(chart)) < 0) {
		fprintf(stderr,
			"wirepath bench: warning: no chart written: scripts/chart.sh not found next to the executable or in the current directory\n");
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "wirepath bench: warning: no chart written: fork: %s\n",
			strerror(errno));
		return;
	}
	if (pid == 0) {
		execlp("bash", "bash", chart, dat, svg, (char *)NULL);
		dprintf(2, "cannot run bash: %s\n", strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr,
			"wirepath bench: warning: no chart written: %s %s %s failed (%s %d); the results are in %s\n",
			chart, dat, svg, WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), dat);
	else if (!quiet)
		fprintf(stderr, "wirepath bench: chart: %s\n", svg);
}

static void print_table(const struct bench_cfg *cfg, const struct path_res *res, int n)
{
	const struct path_res *tcp = NULL, *best = best_path(res, n);
	int any_kernel = 0, any_lib = 0;

	printf("\nworkload %s: %u agents, fan-out %u, %u memory lookups, %u tokens per step; "
	       "%.1f s measured after %.1f s warm-up\n",
	       cfg->w.name, cfg->agents, cfg->w.fanout, cfg->w.mem_lookups, cfg->w.tokens,
	       cfg->duration_s, cfg->warmup_s);
	printf("%-6s %10s %12s %14s %12s %14s %12s %12s  %s\n", "path", "steps/s", "CPU us/step",
	       "syscalls/step", "ctx sw/step", "copied B/step", "tool p50 us", "tool p99 us",
	       "zc sent/copied");
	for (int i = 0; i < n; i++) {
		const struct path_res *p = &res[i];
		char p50[32], p99[32];

		if (p->state == RES_UNAVAILABLE) {
			printf("%-6s unavailable: %s\n", p->path, p->msg);
			continue;
		}
		if (p->state == RES_ERROR) {
			printf("%-6s error: %s\n", p->path, p->msg);
			continue;
		}
		if (!strcmp(p->path, "tcp"))
			tcp = p;
		if (p->kernel_counted)
			any_kernel = 1;
		else
			any_lib = 1;
		printf("%-6s %10.1f %12.1f %14.1f %12.2f %14.1f %12s %12s  %" PRIu64 "/%" PRIu64
		       "\n",
		       p->path, p->steps_per_s, p->cpu_us_per_step, p->syscalls_per_step,
		       p->ctxsw_per_step, p->copied_per_step,
		       fmt_num(p50, sizeof(p50), tool_q(p, 0.5), 1),
		       fmt_num(p99, sizeof(p99), tool_q(p, 0.99), 1), p->zc_sent, p->zc_copied);
	}
	if (any_kernel || any_lib)
		printf("(per step, agent and server processes summed; syscalls %s)\n",
		       any_kernel && !any_lib ? "counted by the kernel (raw_syscalls:sys_enter)"
		       : !any_kernel
			       ? "as counted by the library (kernel count unavailable)"
			       : "kernel-counted where available, else library-counted; see the JSON");

	if (tcp) {
		for (int i = 0; i < n; i++) {
			const struct path_res *p = &res[i];

			if (p->state != RES_OK || p == tcp)
				continue;
			printf("%s vs tcp: syscalls/step x%.2f, CPU us/step x%.2f, ctx switches/step x%.2f\n",
			       p->path, p->syscalls_per_step / tcp->syscalls_per_step,
			       p->cpu_us_per_step / tcp->cpu_us_per_step,
			       tcp->ctxsw_per_step > 0 ? p->ctxsw_per_step / tcp->ctxsw_per_step
						       : NAN);
		}
	}

	if (!best)
		return;
	printf("\ncrossover at %.0f model steps/s%s:\n", cfg->model_rate,
	       cfg->model_rate == BENCH_DEFAULT_MODEL_RATE ? " (" BENCH_MODEL_RATE_BASIS ")" : "");
	for (int i = 0; i < n; i++) {
		const struct path_res *p = &res[i];

		if (p->state != RES_OK)
			continue;
		if (p->host_steps_per_core < cfg->model_rate)
			printf("  %-6s host-bound: one core runs %.0f steps/s, %.2fx the model's rate; keeping up takes %.2f cores\n",
			       p->path, p->host_steps_per_core, p->headroom, p->cores_needed);
		else
			printf("  %-6s model-bound: one core runs %.0f steps/s, %.1fx headroom; %.3f cores keep up\n",
			       p->path, p->host_steps_per_core, p->headroom, p->cores_needed);
	}
	printf("best: %s moves the host limit furthest (%.0f steps/s per core", best->path,
	       best->host_steps_per_core);
	if (tcp && tcp != best)
		printf(", %.2fx tcp", best->host_steps_per_core / tcp->host_steps_per_core);
	printf(")");
	/* Say so when the runner-up is within run-to-run noise rather than crown it. */
	for (int i = 0; i < n; i++) {
		const struct path_res *p = &res[i];

		if (p->state == RES_OK && p != best &&
		    p->host_steps_per_core >= best->host_steps_per_core * (1.0 - BENCH_TIE)) {
			printf("; %s is within %.0f%%: a tie within run-to-run noise", p->path,
			       BENCH_TIE * 100);
			break;
		}
	}
	printf("\n");
}

int bench_report(const struct bench_cfg *cfg, const struct path_res *res, int n)
{
	char dat[PATH_MAX];
	int rc, status = 0;

	print_table(cfg, res, n);
	rc = write_json(cfg, res, n);
	if (rc < 0) {
		fprintf(stderr, "wirepath bench: cannot write %s: %s\n", cfg->json_path,
			strerror(-rc));
		status = 1;
	} else {
		dat_path(cfg->json_path, dat, sizeof(dat));
		rc = write_dat(dat, res, n);
		if (rc < 0) {
			fprintf(stderr, "wirepath bench: cannot write %s: %s\n", dat,
				strerror(-rc));
			status = 1;
		} else {
			if (!cfg->quiet)
				fprintf(stderr, "wirepath bench: wrote %s and %s\n", cfg->json_path,
					dat);
			if (cfg->svg_path)
				run_chart(dat, cfg->svg_path, cfg->quiet);
		}
	}
	return status;
}
