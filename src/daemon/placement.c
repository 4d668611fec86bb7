// SPDX-License-Identifier: MIT
/* DPU placement (placement.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/placement.h"

static int parse_cpus(const char *s, cpu_set_t *set)
{
	CPU_ZERO(set);
	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b;

		if (end == s || a < 0 || a >= CPU_SETSIZE)
			return -EINVAL;
		b = a;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s || b < a || b >= CPU_SETSIZE)
				return -EINVAL;
		}
		for (long i = a; i <= b; i++)
			CPU_SET((int)i, set);
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

int wpd_placement_apply(const char *placement, const char *cpus, const char *netns,
			const struct wpd_config *c)
{
	int dpu = !strcmp(placement, "dpu");
	cpu_set_t set;

	/* Everything that can be checked is checked before the process moves:
	 * a bad CPU list must not leave it half placed. */
	if (cpus && parse_cpus(cpus, &set) < 0) {
		wpd_err("--cpus %s: use a list like 2, 2-3 or 0,2-3 (CPUs 0..%d)", cpus,
			CPU_SETSIZE - 1);
		return -EINVAL;
	}
	if (dpu) {
		char path[300];
		int fd;

		if (!netns || !netns[0]) {
			wpd_err("--placement dpu needs --netns NAME: the network namespace that "
				"holds the clients' interface (ip netns add NAME; docs/daemon.md)");
			return -EINVAL;
		}
		if (!cpus) {
			wpd_err("--placement dpu needs --cpus LIST: the cores that play the DPU");
			return -EINVAL;
		}
		for (uint32_t i = 0; i < c->nbackends; i++)
			if (c->backends[i].kind == WPD_BACKEND_NATIVE &&
			    !strncmp(c->backends[i].uri, "shm://@", 7))
				wpd_warn("%s:%d: backend %s: %s is an abstract socket, which "
					 "belongs to a network namespace: from the DPU namespace "
					 "it will not reach the host's service; use shm:///path",
					 c->path, c->backends[i].line, c->backends[i].name,
					 c->backends[i].uri);
		snprintf(path, sizeof(path), "/run/netns/%s", netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			int err = -errno;

			wpd_err("--netns %s: %s: %s%s", netns, path, strerror(errno),
				fd < 0 && err == -ENOENT ? " (make it with: ip netns add NAME)"
							 : "");
			if (fd >= 0)
				close(fd);
			return err;
		}
		close(fd);
		wpd_info("placement dpu: in network namespace %s", netns);
	}
	if (cpus) {
		/* Set before any thread exists, so every later one inherits it. */
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			int err = -errno;

			if (err == -EINVAL)
				wpd_err("--cpus %s: none of these CPUs is online and allowed to this "
					"process (see Cpus_allowed_list in /proc/self/status)",
					cpus);
			else
				wpd_err("--cpus %s: %s", cpus, strerror(errno));
			return err;
		}
		wpd_info("placement %s: pinned to CPUs %s", placement, cpus);
	}
	return 0;
}
