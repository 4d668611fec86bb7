/* SPDX-License-Identifier: MIT */
/*
 * Forked peers for the peer-death tests: a child that dies with its parent,
 * SIGKILL and reap, and ints passed over pipes with a timeout.
 */
#ifndef WP_TEST_PROCS_H
#define WP_TEST_PROCS_H

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

/* Fork a child that dies with us (and has no watchdog alarm of its own). */
static inline pid_t fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	}
	return pid;
}

static inline void kill_child(pid_t pid)
{
	int st;

	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Read an int from a pipe within ms. Returns 0 or -1. */
static inline int pipe_read_int(int fd, int ms, int *v)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	if (poll(&pf, 1, ms) != 1)
		return -1;
	return read(fd, v, sizeof(*v)) == (ssize_t)sizeof(*v) ? 0 : -1;
}

static inline void pipe_write_int(int fd, int v)
{
	CHECK(write(fd, &v, sizeof(v)) == (ssize_t)sizeof(v));
}

#endif
