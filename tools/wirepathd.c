// SPDX-License-Identifier: MIT
/*
 * wirepathd: the front door agent stacks speak to (docs/daemon.md).
 * OpenAI-compatible HTTP/SSE and MCP streamable HTTP at the edge; native
 * wirepath services, HTTP upstreams and stdio MCP servers behind it; the
 * tenant policy of the rules file enforced on every request (and, with
 * --xdp, in XDP on the listen interface).
 *
 *   wirepathd --config FILE [--xdp IFACE] [--placement dpu --netns NAME --cpus LIST]
 *   wirepathd --check FILE
 *
 * Signals: SIGHUP reloads the configuration and the rules file (the new
 * pair is loaded completely first; on any error the old one stays, and
 * the error is logged); SIGTERM/SIGINT drain: stop accepting, let requests
 * in flight finish (up to `drain`), then exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wirepath/policy.h>
#include <wirepath/wirepath.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/loop.h"
#include "daemon/metrics.h"
#include "daemon/placement.h"
#include "daemon/routes.h"
#include "daemon/server.h"
#include "daemon/tenants.h"

int wpd_config_check(const char *path, FILE *out); /* config.c */
int wpd_server_port(const struct wpd_server *s, uint32_t i);

struct daemon {
	struct wpd_loop *loop;
	struct wpd_server *srv;
	struct wpd_io sigio;
	int sigfd;
	int stop; /* 1: draining, 2: exit now */
	uint64_t gen_id;
	char config_path[4096];
	char xdp_iface[64];
	char xdp_rules[4096]; /* the rules file the XDP program was loaded from */
	int xdp_loaded;
	/* With `user:`, the root process that keeps the XDP attachment (reload,
	 * detach): the write end of its pipe and its pid; -1 / 0 without. */
	int keeper_fd;
	pid_t keeper_pid;
	struct wpd_timer drain_timer;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wirepathd --config FILE [options]\n"
		"       wirepathd --check FILE\n"
		"\n"
		"The HTTP front door for agent stacks: OpenAI-compatible /v1 routes (SSE\n"
		"streaming) and MCP streamable HTTP (/mcp), in front of wirepath services,\n"
		"HTTP upstreams and stdio MCP servers (docs/daemon.md).\n"
		"\n"
		"  --config FILE        the YAML configuration (contrib/wirepathd.yaml)\n"
		"  --check FILE         validate FILE and the rules file it names; exit 0 if good\n"
		"  --xdp IFACE          attach the rules file's XDP program to IFACE (native mode\n"
		"                       preferred, generic reported); overrides `xdp:` in FILE\n"
		"  --placement dpu      run the edge in its own network namespace, pinned to\n"
		"                       --cpus (the DPU role on a host without one; docs/daemon.md)\n"
		"  --cpus LIST          CPUs for the daemon (\"2\", \"2-3\", \"0,2\")\n"
		"  --netns NAME         dpu: the network namespace to serve in (/run/netns/NAME)\n"
		"  --log-level LEVEL    error, warn, info (default), debug\n"
		"  --log-time           prefix log lines with the time (off under systemd)\n"
		"  -h, --help\n");
}

static int load_gen(struct daemon *d, struct wpd_gen **out)
{
	struct wpd_gen *g = calloc(1, sizeof(*g));
	char err[512];
	int ret;

	if (!g)
		return -ENOMEM;
	g->refs = 1;
	ret = wpd_config_load(d->config_path, &g->cfg, err, sizeof(err));
	if (ret < 0) {
		wpd_err("%s", err);
		free(g);
		return ret;
	}
	if (g->cfg->policy[0]) {
		ret = wpd_tenants_load(g->cfg->policy, &g->tenants, err, sizeof(err));
		if (ret < 0) {
			wpd_err("%s", err);
			wpd_config_free(g->cfg);
			free(g);
			return ret;
		}
	}
	*out = g;
	return 0;
}

static int install_gen(struct daemon *d, struct wpd_gen *g)
{
	struct wpd_gen *prev = wpd_server_gen(d->srv);
	int ret = wpd_routes_build(d->loop, d->srv, g, prev);

	if (ret < 0)
		return ret;
	if (prev && prev->tenants && g->tenants)
		wpd_tenants_carry(g->tenants, prev->tenants);
	g->id = ++d->gen_id;
	g->loop = d->loop;
	wpd_server_set_gen(d->srv, g);
	return 0;
}

static void reload(struct daemon *d)
{
	struct wpd_gen *g;

	wpd_info("SIGHUP: reloading %s", d->config_path);
	if (load_gen(d, &g) < 0) {
		wpd_err("reload failed; still serving generation %llu",
			(unsigned long long)d->gen_id);
		return;
	}
	if (install_gen(d, g) < 0) {
		wpd_gen_put(g);
		wpd_err("reload failed; still serving generation %llu",
			(unsigned long long)d->gen_id);
		return;
	}
	if (g->cfg->nlisten != wpd_server_gen(d->srv)->cfg->nlisten)
		wpd_warn("reload: listener changes take effect at restart");
	wpd_metrics_access_log(g->cfg->access_log);
	if (d->keeper_fd >= 0) {
		if (strcmp(g->cfg->policy, d->xdp_rules))
			wpd_warn("reload: the XDP program on %s keeps the rules of %s until "
				 "restart (the daemon runs as %s and cannot read another file "
				 "into it)",
				 d->xdp_iface, d->xdp_rules, g->cfg->user);
		if (write(d->keeper_fd, "R", 1) != 1)
			wpd_err("reload: XDP rules on %s unchanged: its keeper is gone (%s)",
				d->xdp_iface, strerror(errno));
	} else if (d->xdp_loaded && g->cfg->policy[0]) {
		struct wp_policy *p;

		if (wp_policy_parse_file(g->cfg->policy, &p) == 0) {
			if (wp_policy_xdp_reload(d->xdp_iface, p, NULL) < 0)
				wpd_err("reload: XDP rules on %s unchanged", d->xdp_iface);
			wp_policy_free(p);
		}
	}
	wpd_info("reloaded: generation %llu (%u models, %u MCP servers)",
		 (unsigned long long)d->gen_id, g->cfg->nmodels, g->cfg->nmcp);
}

static void drain_expired(void *arg)
{
	struct daemon *d = arg;

	wpd_warn("drain: time is up (drain setting); closing what is left");
	d->stop = 2;
}

static void on_signal(void *arg, uint32_t events)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(d);
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			if (d->stop) {
				d->stop = 2; /* a second signal: now */
				continue;
			}
			wpd_info("%s: draining", strsignal((int)si.ssi_signo));
			d->stop = 1;
			wpd_server_drain(d->srv);
			wpd_timer_arm(d->loop, &d->drain_timer,
				      (uint64_t)wpd_server_gen(d->srv)->cfg->drain_ms * 1000000ull,
				      drain_expired, d);
		}
	}
}

static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		wpd_err("user %s: no such user", user);
		return -ENOENT;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		int err = -errno;

		wpd_err("dropping privileges to %s: %s", user, strerror(errno));
		return err;
	}
	if (setuid(0) == 0 && pw->pw_uid != 0) {
		wpd_err("dropping privileges to %s: could regain root; refusing to run", user);
		return -EPERM;
	}
	wpd_info("running as %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

static int attach_xdp(struct daemon *d, const struct wpd_config *c)
{
	struct wp_policy *p;
	struct wp_xdp_info info;
	int ret;

	if (!c->policy[0]) {
		wpd_err("--xdp %s: the configuration names no rules file (policy:)", d->xdp_iface);
		return -EINVAL;
	}
	ret = wp_policy_parse_file(c->policy, &p);
	if (ret < 0)
		return ret;
	ret = wp_policy_xdp_load(d->xdp_iface, p, 0, &info);
	wp_policy_free(p);
	if (ret < 0) {
		wpd_err("--xdp %s: the policy program could not be attached: %s", d->xdp_iface,
			strerror(-ret));
		return ret;
	}
	d->xdp_loaded = 1;
	snprintf(d->xdp_rules, sizeof(d->xdp_rules), "%s", c->policy);
	wpd_info("XDP: %s", info.detail);
	/* The daemon never asks for generic mode: not native means the driver
	 * refused it (fallback) or the kernel attached it generic anyway. */
	if (!info.native)
		wpd_warn("XDP on %s runs in generic mode (%s): the policy holds, but packets "
			 "reach it after the kernel built an skb",
			 d->xdp_iface,
			 info.fallback ? strerror(info.native_err)
				       : "the kernel attached it in generic mode");
	return 0;
}

/*
 * The keeper: after the privilege drop the daemon can neither write the
 * pinned maps (bpffs, mode 0700) nor detach (CAP_NET_ADMIN), so a process
 * forked before the drop keeps root for exactly that. It holds no socket
 * and takes no signal; it reads one byte per SIGHUP ('R': reload the rules
 * file named at start, never a path the daemon sends) and detaches the
 * program at EOF, which comes however the daemon ends (exit, crash, KILL).
 */
static void keeper_main(struct daemon *d, int fd)
{
	char c;

	signal(SIGTERM, SIG_IGN); /* the daemon's drain decides; EOF ends us */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_NAME, "wirepathd-xdp");
	if (dup2(fd, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0); /* listeners, epoll, contexts: the daemon's */
	for (;;) {
		ssize_t n = read(3, &c, 1);
		struct wp_policy *p;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (wp_policy_parse_file(d->xdp_rules, &p) < 0) {
			wpd_err("reload: XDP rules on %s unchanged (%s does not parse)",
				d->xdp_iface, d->xdp_rules);
			continue;
		}
		if (wp_policy_xdp_reload(d->xdp_iface, p, NULL) < 0)
			wpd_err("reload: XDP rules on %s unchanged", d->xdp_iface);
		else
			wpd_info("reload: XDP rules on %s from %s", d->xdp_iface, d->xdp_rules);
		wp_policy_free(p);
	}
	_exit(wp_policy_xdp_unload(d->xdp_iface) < 0);
}

static int start_keeper(struct daemon *d)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		wpd_err("XDP keeper: pipe: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		wpd_err("XDP keeper: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (pid == 0) {
		close(p[1]);
		keeper_main(d, p[0]);
	}
	close(p[0]);
	d->keeper_fd = p[1];
	d->keeper_pid = pid;
	wpd_info("XDP on %s: kept by pid %d (root) for reloads and the detach at exit",
		 d->xdp_iface, (int)pid);
	return 0;
}

/* Detach: ourselves, or close the keeper's pipe and wait for it to. */
static void detach_xdp(struct daemon *d)
{
	int st;

	if (d->keeper_fd < 0) {
		if (d->xdp_loaded)
			wp_policy_xdp_unload(d->xdp_iface);
		return;
	}
	close(d->keeper_fd);
	d->keeper_fd = -1;
	while (waitpid(d->keeper_pid, &st, 0) < 0 && errno == EINTR)
		;
}

static void log_ready(struct daemon *d, const struct wpd_config *c)
{
	for (uint32_t i = 0; i < c->nlisten; i++) {
		if (c->listen[i].kind == WPD_LISTEN_UNIX) {
			wpd_info("ready: unix:%s", c->listen[i].addr);
			continue;
		}
		wpd_info("ready: %s://%s port %d", c->listen[i].tls_cert[0] ? "https" : "http",
			 c->listen[i].addr, wpd_server_port(d->srv, i));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", required_argument, NULL, 'k' },
		{ "xdp", required_argument, NULL, 'x' },
		{ "placement", required_argument, NULL, 'p' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "netns", required_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-time", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct daemon d = { .sigfd = -1, .keeper_fd = -1 };
	const char *placement = "host", *cpus = NULL, *netns = NULL;
	enum wp_log_level level = WP_LOG_INFO;
	int with_time = getenv("JOURNAL_STREAM") == NULL;
	struct wpd_gen *g = NULL;
	sigset_t ss;
	int o, ret, rc = 1;

	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			snprintf(d.config_path, sizeof(d.config_path), "%s", optarg);
			break;
		case 'k':
			return wpd_config_check(optarg, stdout) ? 1 : 0;
		case 'x':
			snprintf(d.xdp_iface, sizeof(d.xdp_iface), "%s", optarg);
			break;
		case 'p':
			placement = optarg;
			break;
		case 'C':
			cpus = optarg;
			break;
		case 'n':
			netns = optarg;
			break;
		case 'l':
			if (!strcmp(optarg, "error"))
				level = WP_LOG_ERR;
			else if (!strcmp(optarg, "warn"))
				level = WP_LOG_WARN;
			else if (!strcmp(optarg, "info"))
				level = WP_LOG_INFO;
			else if (!strcmp(optarg, "debug"))
				level = WP_LOG_DEBUG;
			else {
				fprintf(stderr,
					"wirepathd: --log-level %s: use error, warn, info or "
					"debug\n",
					optarg);
				return 2;
			}
			break;
		case 't':
			with_time = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !d.config_path[0]) {
		fprintf(stderr, "wirepathd: %s\n",
			optind < argc ? "unexpected arguments" : "--config FILE is required");
		usage(stderr);
		return 2;
	}
	if (strcmp(placement, "host") && strcmp(placement, "dpu")) {
		fprintf(stderr, "wirepathd: --placement %s: use host or dpu\n", placement);
		return 2;
	}
	/* Usage errors before anything is loaded: a DPU placement without its
	 * namespace or cores, or a namespace that would be silently ignored. */
	if (!strcmp(placement, "dpu") && (!netns || !cpus)) {
		fprintf(stderr,
			!netns ? "wirepathd: --placement dpu needs --netns NAME: the network "
				 "namespace that holds the clients' interface (ip netns add NAME)\n"
			       : "wirepathd: --placement dpu needs --cpus LIST: the cores that "
				 "play the DPU (\"2\", \"2-3\")\n");
		return 2;
	}
	if (netns && strcmp(placement, "dpu")) {
		fprintf(stderr, "wirepathd: --netns %s: only with --placement dpu\n", netns);
		return 2;
	}
	if (netns &&
	    (!netns[0] || strchr(netns, '/') || !strcmp(netns, ".") || !strcmp(netns, ".."))) {
		fprintf(stderr,
			"wirepathd: --netns '%s': not a namespace name (a name under "
			"/run/netns, as `ip netns list` shows)\n",
			netns);
		return 2;
	}
	wpd_log_setup(level, with_time);
	wp_set_log(wpd_log_lib, NULL, level);
	signal(SIGPIPE, SIG_IGN);

	if (load_gen(&d, &g) < 0)
		return 1;
	if (!d.xdp_iface[0] && g->cfg->xdp_iface[0])
		snprintf(d.xdp_iface, sizeof(d.xdp_iface), "%s", g->cfg->xdp_iface);
	if (!strcmp(placement, "dpu") || cpus) {
		ret = wpd_placement_apply(placement, cpus, netns, g->cfg);
		if (ret < 0)
			goto out_gen;
	}
	if (wpd_loop_create(&d.loop) < 0 || wpd_server_create(d.loop, &d.srv) < 0) {
		wpd_err("out of memory");
		goto out_gen;
	}
	if (wpd_metrics_init(g->cfg->access_log) < 0)
		goto out;
	ret = wpd_server_bind(d.srv, g->cfg);
	if (ret < 0)
		goto out;
	if (d.xdp_iface[0] && attach_xdp(&d, g->cfg) < 0)
		goto out;
	if (g->cfg->user[0] && d.xdp_loaded && start_keeper(&d) < 0)
		goto out;
	if (g->cfg->user[0] && drop_privileges(g->cfg->user) < 0)
		goto out;

	/* Signals arrive as reads on a signalfd, in the loop, like any event. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	d.sigfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d.sigfd < 0 || wpd_io_add(d.loop, &d.sigio, d.sigfd, EPOLLIN, on_signal, &d) < 0) {
		wpd_err("signalfd: %s", strerror(errno));
		goto out;
	}
	if (install_gen(&d, g) < 0)
		goto out;
	g = NULL; /* the server holds it */
	wpd_server_handler(d.srv, wpd_routes_dispatch, d.srv);
	wpd_server_on_done(d.srv, wpd_metrics_done, NULL);
	if (wpd_server_start(d.srv) < 0)
		goto out;
	log_ready(&d, wpd_server_gen(d.srv)->cfg);

	while (d.stop < 2) {
		ret = wpd_loop_run_once(d.loop, d.stop ? 100000 : -1);
		if (ret < 0) {
			wpd_err("event loop: %s", strerror(-ret));
			goto out;
		}
		if (d.stop == 1 && wpd_server_drained(d.srv)) {
			wpd_info("drained: every request answered");
			break;
		}
	}
	rc = 0;
out:
	wpd_timer_cancel(d.loop, &d.drain_timer);
	wpd_server_destroy(d.srv);
	wpd_routes_shutdown();
	if (d.sigfd >= 0) {
		wpd_io_del(d.loop, &d.sigio);
		close(d.sigfd);
	}
	/* Run what the teardown deferred (frees), then the loop can go. */
	wpd_loop_run_once(d.loop, 0);
	wpd_loop_destroy(d.loop);
	wpd_metrics_fini();
	detach_xdp(&d);
out_gen:
	wpd_gen_put(g);
	return rc;
}
