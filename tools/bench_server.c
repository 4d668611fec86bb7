// SPDX-License-Identifier: MIT
/*
 * The server each bench path runs against: `wirepath serve`, started from
 * this same executable on loopback (a free port, or for shm a free abstract
 * unix name) and stopped by PID, never by name. Its stdout and stderr go to
 * files in the bench's temp dir: the explain line is read from the first,
 * the reason it failed from the second. Also here: the server's meter
 * snapshot, read through the library's stats call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "stub_proto.h"
#include "util.h"

int bench_file_line(const char *path, const char *prefix, char *out, size_t len)
{
	char line[1024];
	size_t pl = strlen(prefix);
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, prefix, pl))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line + pl);
		fclose(f);
		return 0;
	}
	fclose(f);
	return -ENOENT;
}

static int bench_server_reap(struct bench_server *sv, uint64_t timeout_ns, int *status)
{
	uint64_t end = wp_now_ns() + timeout_ns;

	for (;;) {
		pid_t p = waitpid(sv->pid, status, WNOHANG);

		if (p == sv->pid || (p < 0 && errno == ECHILD)) {
			sv->pid = 0;
			return 0;
		}
		if (wp_now_ns() > end)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

/* SIGTERM by PID and wait; SIGKILL if it does not go. 0 if it exited cleanly. */
int bench_server_stop(struct bench_server *sv, int quiet)
{
	int status = 0;

	if (sv->pid <= 0)
		return 0;
	kill(sv->pid, SIGTERM);
	if (bench_server_reap(sv, BENCH_STOP_TIMEOUT_NS, &status) < 0) {
		fprintf(stderr,
			"wirepath bench: warning: server %d ignored SIGTERM for %llu s; killing it\n",
			(int)sv->pid, (unsigned long long)(BENCH_STOP_TIMEOUT_NS / NS_PER_S));
		kill(sv->pid, SIGKILL);
		waitpid(sv->pid, &status, 0);
		sv->pid = 0;
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[256];

		bench_file_line(sv->err, "", line, sizeof(line));
		if (WIFSIGNALED(status))
			fprintf(stderr,
				"wirepath bench: warning: the server died of signal %d%s%s\n",
				WTERMSIG(status), line[0] ? ": " : "", line);
		else
			fprintf(stderr,
				"wirepath bench: warning: the server exited with status %d%s%s\n",
				WEXITSTATUS(status), line[0] ? ": " : "", line);
		return -1;
	}
	return 0;
}

/* The spawned server's host: loopback, or WP_BENCH_HOST (rdma on soft-RoCE
 * needs the address of the netdev rxe is bound to: tests/vm/rdma_guest.sh). */
static const char *bench_host(void)
{
	const char *h = getenv("WP_BENCH_HOST");

	return h && *h && strlen(h) < 64 ? h : "127.0.0.1";
}

/* Where a spawned server listens: a free port on loopback, or for shm a free
 * abstract unix name (its five hex digits stand in for the port). */
static void bench_listen_uri(char *buf, size_t len, const char *path)
{
	if (!strcmp(path, "shm"))
		snprintf(buf, len, "shm://@");
	else
		snprintf(buf, len, "%.15s://%s:0", path, bench_host());
}

void bench_uri(char *buf, size_t len, const char *path, int port)
{
	if (!strcmp(path, "shm"))
		snprintf(buf, len, "shm://@%05x", port);
	else
		snprintf(buf, len, "%.15s://%s:%d", path, bench_host(), port);
}

/*
 * Start `wirepath serve` on PATH://127.0.0.1:0 (this same executable) and wait
 * for its port. Its stdout and stderr go to files in the temp dir: the
 * explain line is read from the first, the reason it failed from the second.
 */
int bench_server_start(const struct bench_cfg *cfg, const char *path, struct bench_server *sv,
		       char *err, size_t errlen)
{
	char listen[64], zc[32], line[512], exe[PATH_MAX];
	char *argv[24];
	ssize_t el;
	int n = 0, status;
	pid_t parent = getpid();
	uint64_t deadline;

	memset(sv, 0, sizeof(*sv));
	bench_listen_uri(listen, sizeof(listen), path);
	snprintf(sv->port_file, sizeof(sv->port_file), "%s/%s.port", cfg->tmpdir, path);
	snprintf(sv->out, sizeof(sv->out), "%s/%s.out", cfg->tmpdir, path);
	snprintf(sv->err, sizeof(sv->err), "%s/%s.err", cfg->tmpdir, path);
	unlink(sv->port_file);

	argv[n++] = "wirepath";
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--port-file";
	argv[n++] = sv->port_file;
	argv[n++] = "--select";
	argv[n++] = "require";
	if (cfg->sqpoll)
		argv[n++] = "--sqpoll";
	if (cfg->busy_poll)
		argv[n++] = "--busy-poll";
	if (cfg->ucx_trust_rma)
		argv[n++] = "--ucx-trust-rma";
	if (cfg->zc_threshold) {
		if (cfg->zc_threshold == UINT32_MAX)
			snprintf(zc, sizeof(zc), "never");
		else
			snprintf(zc, sizeof(zc), "%u", cfg->zc_threshold);
		argv[n++] = "--zc-threshold";
		argv[n++] = zc;
	}
	if (cfg->kitchen_cuda) {
		argv[n++] = "--kitchen";
		argv[n++] = "cuda";
	}
	if (cfg->policy_path[0]) { /* --auth: the server checks the handshake and records */
		argv[n++] = "--policy";
		argv[n++] = (char *)cfg->policy_path;
	}
	argv[n] = NULL;

	/* The real path rather than /proc/self/exe, so ps and top show "wirepath". */
	el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (el > 0)
		exe[el] = '\0';
	else
		snprintf(exe, sizeof(exe), "/proc/self/exe");

	fflush(stdout);
	fflush(stderr);
	sv->pid = fork();
	if (sv->pid < 0) {
		snprintf(err, errlen, "cannot fork the server: %s", strerror(errno));
		sv->pid = 0;
		return -1;
	}
	if (sv->pid == 0) {
		int fo, fe;

		/* If the bench dies, so does its server. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		fo = open(sv->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		fe = open(sv->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(126);
		close(fo);
		close(fe);
		execv(exe, argv);
		dprintf(2, "cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}

	deadline = wp_now_ns() + BENCH_SPAWN_TIMEOUT_NS;
	for (;;) {
		FILE *f = fopen(sv->port_file, "r");

		if (f) {
			/* shm's "port" is the 5-hex-digit abstract socket name. */
			int ok = fscanf(f, "%d", &sv->port) == 1 && sv->port > 0 &&
				 sv->port < (strcmp(path, "shm") ? 65536 : 0x100000);

			fclose(f);
			if (ok)
				break;
		}
		if (waitpid(sv->pid, &status, WNOHANG) == sv->pid) {
			sv->pid = 0;
			bench_file_line(sv->err, "", line, sizeof(line));
			snprintf(err, errlen, "the server did not start (%s %d)%s%.300s",
				 WIFEXITED(status) ? "exit status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 line[0] ? ": " : "", line);
			return -1;
		}
		if (wp_now_ns() > deadline || bench_interrupted) {
			snprintf(err, errlen,
				 bench_interrupted
					 ? "interrupted"
					 : "the server did not report its port within 10 s");
			bench_server_stop(sv, 1);
			return -1;
		}
		usleep(2000);
	}
	return 0;
}

static void stats_on_data(void *arg, struct wp_msg *chunk)
{
	struct bench_stats *st = arg;
	uint64_t *dst = (uint64_t *)&st->snap;

	/* A reply of the wrong size is reported by bench_stats_result(). */
	st->len = chunk->len;
	if (chunk->len != WP_METER_FIELDS * sizeof(uint64_t))
		return;
	for (size_t i = 0; i < WP_METER_FIELDS; i++)
		dst[i] = wpb_get64((const uint8_t *)chunk->data + 8 * i);
}

static void stats_on_done(void *arg, int status)
{
	struct bench_stats *st = arg;

	st->status = status;
	st->done = 1;
}

int bench_stats_call(struct wp_ep *ep, struct bench_stats *st)
{
	struct wp_call_params p = {
		.method = WP_METHOD_STATS,
		.req = "",
		.req_len = 0,
		.deadline_us = (int64_t)(BENCH_STATS_TIMEOUT_NS / 1000),
		.on_data = stats_on_data,
		.on_done = stats_on_done,
		.arg = st,
	};

	memset(st, 0, sizeof(*st));
	return wp_rpc_call(ep, &p, NULL);
}

int bench_stats_result(const struct bench_stats *st, struct wp_meter_snap *out, char *err,
		       size_t errlen)
{
	char sb[160];

	if (st->status != 0) {
		snprintf(err, errlen, "the server's stats call failed: %s",
			 tool_status_str(st->status, sb, sizeof(sb)));
		return -1;
	}
	if (st->len != WP_METER_FIELDS * sizeof(uint64_t) || st->snap.version != WP_METER_VERSION) {
		snprintf(err, errlen,
			 "the server's stats reply has %u bytes, version %" PRIu64
			 " (expected %zu bytes, version %d): a different wirepath version?",
			 st->len, st->snap.version, WP_METER_FIELDS * sizeof(uint64_t),
			 WP_METER_VERSION);
		return -1;
	}
	*out = st->snap;
	return 0;
}
