/* SPDX-License-Identifier: MIT */
/*
 * Where the daemon runs (docs/daemon.md, "DPU placement"). `host`: like
 * any process (optionally pinned with --cpus). `dpu`: the edge plays the
 * role a DPU's cores would: it joins its own network namespace (the one
 * holding the interface clients reach, --netns NAME, made with
 * `ip netns add`), is pinned to its own CPUs, and reaches host services
 * only through paths that cross the namespace: shm over a filesystem
 * socket (abstract sockets belong to a network namespace, so shm://@name
 * would not cross), or uring/tcp over a veth pair.
 */
#ifndef WPD_PLACEMENT_H
#define WPD_PLACEMENT_H

struct wpd_config;

/* Parse "2", "2-3", "0,2-3" into a CPU set and pin the process; for dpu,
 * join /run/netns/NETNS first. Logs and returns -errno on failure. */
int wpd_placement_apply(const char *placement, const char *cpus, const char *netns,
			const struct wpd_config *c);

#endif
