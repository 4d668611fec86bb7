// SPDX-License-Identifier: MIT
/*
 * wp_treemeter: starts one stack's processes for the real-stack bench
 * (bench/stacks/run.py) and counts, with the kernel's perf counters, what
 * the whole process tree does. Before starting anything it opens, on
 * itself with `inherit` set, three counters that every process it starts
 * (and every process or thread those start) inherits:
 *
 *   task-clock                  CPU time, ns (PERF_COUNT_SW_TASK_CLOCK)
 *   context-switches            PERF_COUNT_SW_CONTEXT_SWITCHES
 *   raw_syscalls:sys_enter      every syscall entered (a tracepoint)
 *
 * Reading an inherited counter gives the parent's count plus every live
 * child's and every exited child's, so one read is the whole tree. The
 * counters run for the tree only: other stacks in the same bench run under
 * their own wp_treemeter. A counter the kernel refuses is reported as -1
 * with the reason on the ready line; run.py then says "not counted".
 *
 * Commands, one per line on stdin (fields separated by tabs), one answer
 * line each on stdout:
 *   spawn LOG ARG0 ARG...   start a process (stdout and stderr to LOG,
 *                           stdin /dev/null) -> "pid N"
 *   read                    -> "counters TASK_CLOCK_NS CTXSW SYSCALLS"
 *   wait PID MS             -> "exited PID STATUS" (the wait(2) status
 *                           decoded: exit code, or 128 + signal), or
 *                           "running PID" after MS milliseconds
 * EOF on stdin, SIGINT, SIGTERM or SIGHUP: every process group still
 * running gets SIGTERM, SIGKILL after 2 s, and wp_treemeter exits 0; its
 * children also get SIGTERM if it dies otherwise (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KIDS 64
#define MAX_ARGS 128
#define LINE_BYTES 8192

enum { CNT_CLOCK, CNT_CTXSW, CNT_SYSCALLS, CNT_N };
static const char *const cnt_names[CNT_N] = { "task_clock", "ctxsw", "syscalls" };
static int cnt_fd[CNT_N] = { -1, -1, -1 };
static char cnt_why[CNT_N][96];

static volatile sig_atomic_t quit;
static pid_t kids[MAX_KIDS];
static int kid_done[MAX_KIDS];
static int nkids;

static int perf_open(uint32_t type, uint64_t config)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = type;
	a.config = config;
	a.inherit = 1; /* processes and threads created from now on */
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static long long tp_id(void)
{
	static const char *const paths[] = {
		"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
		"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
	};

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			FILE *f = fopen(paths[i], "r");
			long long id;

			if (!f)
				continue;
			if (fscanf(f, "%lld", &id) == 1) {
				fclose(f);
				return id;
			}
			fclose(f);
		}
		/* root on a host where tracefs is not mounted: mount it (as
		 * the library's meter does), then look again */
		if (pass == 0 && geteuid() == 0 &&
		    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0)
			break;
	}
	return -ENOENT;
}

static void counters_open(void)
{
	long long id;

	cnt_fd[CNT_CLOCK] = perf_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK);
	if (cnt_fd[CNT_CLOCK] < 0)
		snprintf(cnt_why[CNT_CLOCK], sizeof(cnt_why[0]), "perf_event_open: %s",
			 strerror(errno));
	cnt_fd[CNT_CTXSW] = perf_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES);
	if (cnt_fd[CNT_CTXSW] < 0)
		snprintf(cnt_why[CNT_CTXSW], sizeof(cnt_why[0]), "perf_event_open: %s",
			 strerror(errno));
	id = tp_id();
	if (id < 0) {
		snprintf(cnt_why[CNT_SYSCALLS], sizeof(cnt_why[0]),
			 "no raw_syscalls:sys_enter tracepoint (tracefs)");
	} else {
		cnt_fd[CNT_SYSCALLS] = perf_open(PERF_TYPE_TRACEPOINT, (uint64_t)id);
		if (cnt_fd[CNT_SYSCALLS] < 0)
			snprintf(cnt_why[CNT_SYSCALLS], sizeof(cnt_why[0]), "perf_event_open: %s",
				 strerror(errno));
	}
}

static long long counter_read(int k)
{
	uint64_t v;

	if (cnt_fd[k] < 0 || read(cnt_fd[k], &v, sizeof(v)) != (ssize_t)sizeof(v))
		return -1;
	return (long long)v;
}

static int decode(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static int kid_index(pid_t p)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] == p)
			return i;
	return -1;
}

static void cmd_spawn(char **f, int nf)
{
	pid_t p;

	if (nf < 3 || nkids == MAX_KIDS) {
		printf("error spawn needs LOG and a command (at most %d processes)\n", MAX_KIDS);
		return;
	}
	p = fork();
	if (p < 0) {
		printf("error fork: %s\n", strerror(errno));
		return;
	}
	if (p == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(f[1], O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (in < 0 || out < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		/* its own group, so stop_all reaches its children too (nginx's
		 * workers); and if wp_treemeter dies anyhow, it goes too */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(126); /* the parent died before the prctl */
		execvp(f[2], f + 2);
		fprintf(stderr, "wp_treemeter: exec %s: %s\n", f[2], strerror(errno));
		_exit(127);
	}
	kid_done[nkids] = 0;
	kids[nkids++] = p;
	printf("pid %d\n", (int)p);
}

static void cmd_wait(char **f, int nf)
{
	pid_t p = nf > 1 ? (pid_t)atoi(f[1]) : 0;
	long ms = nf > 2 ? atol(f[2]) : 0;
	int i = kid_index(p), status;
	struct timespec ts = { 0, 10000000 };

	if (i < 0) {
		printf("error no process %d started here\n", (int)p);
		return;
	}
	for (long waited = 0;; waited += 10) {
		pid_t r = waitpid(p, &status, WNOHANG);

		if (r == p) {
			kid_done[i] = 1;
			printf("exited %d %d\n", (int)p, decode(status));
			return;
		}
		if (r < 0) {
			printf("error waitpid %d: %s\n", (int)p, strerror(errno));
			return;
		}
		if (waited >= ms || quit) {
			printf("running %d\n", (int)p);
			return;
		}
		nanosleep(&ts, NULL);
	}
}

static void stop_all(void)
{
	struct timespec ts = { 0, 20000000 };

	for (int i = 0; i < nkids; i++)
		if (!kid_done[i])
			kill(-kids[i], SIGTERM); /* the group: workers too */
	for (int t = 0; t < 100; t++) {
		int left = 0;

		for (int i = 0; i < nkids; i++) {
			if (!kid_done[i] && waitpid(kids[i], NULL, WNOHANG) != 0)
				kid_done[i] = 1;
			left += !kid_done[i];
		}
		if (!left)
			return;
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < nkids; i++)
		if (!kid_done[i]) {
			kill(-kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
}

static void on_quit(int sig)
{
	(void)sig;
	quit = 1;
}

int main(int argc, char **argv)
{
	char line[LINE_BYTES];
	struct sigaction sa = { .sa_handler = on_quit }; /* no SA_RESTART: fgets returns */

	if (argc > 1) {
		fprintf(stderr, "usage: wp_treemeter (commands on stdin: spawn LOG ARGV..., read, "
				"wait PID MS; see bench/stacks/tree_meter.c)\n");
		return strcmp(argv[1], "--help") ? 2 : 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/* Interrupted (Ctrl-C on make demo, a test's timeout): stop the stack
	 * before leaving, never leave its services running. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	counters_open();
	printf("ready");
	for (int k = 0; k < CNT_N; k++)
		printf("\t%s=%s", cnt_names[k], cnt_fd[k] >= 0 ? "ok" : cnt_why[k]);
	printf("\n");
	while (!quit && fgets(line, sizeof(line), stdin)) {
		char *f[MAX_ARGS + 1], *save = NULL, *tok;
		int nf = 0;

		line[strcspn(line, "\n")] = '\0';
		for (tok = strtok_r(line, "\t", &save); tok && nf < MAX_ARGS;
		     tok = strtok_r(NULL, "\t", &save))
			f[nf++] = tok;
		f[nf] = NULL;
		if (nf == 0)
			continue;
		if (!strcmp(f[0], "spawn"))
			cmd_spawn(f, nf);
		else if (!strcmp(f[0], "read"))
			printf("counters %lld %lld %lld\n", counter_read(CNT_CLOCK),
			       counter_read(CNT_CTXSW), counter_read(CNT_SYSCALLS));
		else if (!strcmp(f[0], "wait"))
			cmd_wait(f, nf);
		else
			printf("error unknown command '%s'\n", f[0]);
	}
	stop_all();
	return 0;
}
