// SPDX-License-Identifier: MIT
/*
 * The XDP loader: loads src/policy/policy.bpf.c through its libbpf skeleton,
 * fills a map set from a compiled policy, attaches the program to an
 * interface (native mode first; generic mode only as a fallback that is
 * reported), and pins program and maps under /sys/fs/bpf/wirepath/IFACE so a
 * later process can reload, read counters and unload.
 *
 * Of the object's two programs it attaches the frags-aware one (multi-buffer
 * frames, so jumbo MTUs work in native mode) where the kernel takes it, the
 * plain one where the kernel refuses it (< 5.18) or when asked
 * (WP_XDP_NO_FRAGS), and says which: info->frags, the detail line. A later
 * process tells them apart by the attached program's name, the one trace
 * bpf_prog_info keeps of BPF_F_XDP_HAS_FRAGS.
 *
 * One XDP program per interface, attached with bpf_xdp_attach(): libxdp's
 * dispatcher needs freplace, which this kernel refuses (EPERM).
 *
 * Reload is the atomic part (docs/policy.md, "Reload"):
 *  1. build the new set completely in the inactive half of every map;
 *  2. flip wpp_ctl (one 4-byte array value: a packet reads it once and uses
 *     that set throughout, so it sees old or new rules, never a mix);
 *  3. wait for an RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL) runs
 *     synchronize_rcu(); XDP runs inside an RCU read-side section), so no
 *     packet still decides with the old set;
 *  4. clear the old half.
 * A failure before step 2 clears the half-built set and leaves traffic on
 * the old rules. Concurrent reloads are serialised with flock() on the pin
 * directory.
 *
 * Errors are -errno; the reason, one line, goes to the process log hook
 * (wp_set_log) at WP_LOG_ERR: these calls have no context.
 *
 * Built only with libbpf, clang and bpftool (WP_HAVE_XDP_POLICY); otherwise
 * every call returns -EOPNOTSUPP and logs a line that says what to install.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "policy.h"

/* Why a call failed: one line to the process log hook (no context here). */
__attribute__((format(printf, 1, 2))) static void xerr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wp_vlog_global(WP_LOG_ERR, fmt, ap);
	va_end(ap);
}

#ifndef WP_HAVE_XDP_POLICY

int wp_policy_xdp_built(void)
{
	return 0;
}

#define NOT_BUILT()                                                                          \
	(xerr("this wirepath was built without the XDP front door (needs libbpf-dev, clang " \
	      "and bpftool at build time: scripts/deps.sh)"),                                \
	 -EOPNOTSUPP)

int wp_policy_xdp_load(const char *ifname, const struct wp_policy *p, unsigned flags,
		       struct wp_xdp_info *info)
{
	return NOT_BUILT();
}

int wp_policy_xdp_reload(const char *ifname, const struct wp_policy *p, struct wp_xdp_info *info)
{
	return NOT_BUILT();
}

int wp_policy_xdp_unload(const char *ifname)
{
	return NOT_BUILT();
}

int wp_policy_xdp_stats(const char *ifname, struct wp_policy_stats *out, struct wp_xdp_info *info)
{
	return NOT_BUILT();
}

int wp_policy_xdp_show(const char *ifname, struct wp_policy **out, struct wp_xdp_info *info)
{
	return NOT_BUILT();
}

int wpp_xsk_attach(int ifindex, const struct wp_policy *p, int generic, struct wpp_xsk_prog *x,
		   char *why, size_t len)
{
	snprintf(why, len, "built without the XDP front door (libbpf-dev, clang, bpftool)");
	return -EOPNOTSUPP;
}

void wpp_xsk_detach(struct wpp_xsk_prog *x)
{
}

int64_t wpp_xsk_redirected(const struct wpp_xsk_prog *x)
{
	return -EOPNOTSUPP;
}

int64_t wpp_xsk_count(const struct wpp_xsk_prog *x, unsigned reason)
{
	return -EOPNOTSUPP;
}

#else /* WP_HAVE_XDP_POLICY */

#include <dirent.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/membarrier.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "policy.skel.h"
#include "skel_maps.h"

#define PIN_ROOT_DEFAULT "/sys/fs/bpf"
#define PROG_PIN "wpp_prog"
#define FRAGS_PROG_NAME "wpp_xdp_frags" /* policy.bpf.c; < BPF_OBJ_NAME_LEN */

static const char *const map_names[WPP_M__COUNT] = {
	[WPP_M_CTL] = "wpp_ctl",   [WPP_M_CONFIG] = "wpp_config",   [WPP_M_LPM4] = "wpp_lpm4",
	[WPP_M_LPM6] = "wpp_lpm6", [WPP_M_TENANTS] = "wpp_tenants", [WPP_M_BUCKETS] = "wpp_buckets",
	[WPP_M_CNT] = "wpp_cnt",   [WPP_M_TCNT] = "wpp_tcnt",       [WPP_M_RCNT] = "wpp_rcnt",
	[WPP_M_XSKS] = "wpp_xsks",
};

int wp_policy_xdp_built(void)
{
	return 1;
}

/* ---- libbpf messages: kept, never printed (the library never prints) -- */

static __thread char bpf_last[256];

static int bpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n)
		snprintf(bpf_last, sizeof(bpf_last), "%s", line);
	return 0;
}

/* ---- maps ----------------------------------------------------------------- */

void wpp_maps_init(struct wpp_maps *m)
{
	for (int i = 0; i < WPP_M__COUNT; i++)
		m->fd[i] = -1;
	m->prog_fd = -1;
}

void wpp_maps_close(struct wpp_maps *m)
{
	for (int i = 0; i < WPP_M__COUNT; i++)
		if (m->fd[i] >= 0)
			close(m->fd[i]);
	if (m->prog_fd >= 0)
		close(m->prog_fd);
	wpp_maps_init(m);
}

static int ncpus(void)
{
	int n = libbpf_num_possible_cpus();

	return n > 0 ? n : 1;
}

/* Zero entries [first, first + n) of a per-CPU array. */
static int percpu_zero(int fd, uint32_t first, uint32_t n)
{
	size_t sz = (size_t)ncpus() * sizeof(struct wpp_cnt);
	void *zero = calloc(1, sz);
	int ret = 0;

	if (!zero)
		return -ENOMEM;
	for (uint32_t k = first; k < first + n; k++) {
		if (bpf_map_update_elem(fd, &k, zero, BPF_ANY) < 0) {
			ret = -errno;
			break;
		}
	}
	free(zero);
	return ret;
}

/* Sum entries [first, first + n) of a per-CPU counter array over CPUs. */
static int percpu_sum(int fd, uint32_t first, uint32_t n, struct wpp_cnt *out)
{
	int nc = ncpus();
	struct wpp_cnt *v = calloc((size_t)nc, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = first + i;

		out[i].pkts = out[i].bytes = 0;
		if (bpf_map_lookup_elem(fd, &k, v) < 0) {
			int ret = -errno;

			free(v);
			return ret;
		}
		for (int c = 0; c < nc; c++) {
			out[i].pkts += v[c].pkts;
			out[i].bytes += v[c].bytes;
		}
	}
	free(v);
	return 0;
}

static int read_tenants(const struct wpp_maps *m, uint32_t set, struct wpp_tenant *t)
{
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		uint32_t k = set * WPP_SLOTS + s;

		if (bpf_map_lookup_elem(m->fd[WPP_M_TENANTS], &k, &t[s]) < 0)
			return -errno;
	}
	return 0;
}

/* Delete every LPM entry of one set (both families). */
static int lpm_clear(const struct wpp_maps *m, uint32_t set)
{
	static const size_t ksz[2] = { sizeof(struct wpp_lpm4_key), sizeof(struct wpp_lpm6_key) };
	static const int which[2] = { WPP_M_LPM4, WPP_M_LPM6 };

	for (int f = 0; f < 2; f++) {
		int fd = m->fd[which[f]];
		size_t cap = WPP_SETS * WPP_MAX_PREFIXES, n = 0;
		uint8_t *keys = calloc(cap, ksz[f]);
		uint8_t cur[sizeof(struct wpp_lpm6_key)];
		void *prev = NULL;

		if (!keys)
			return -ENOMEM;
		/* Collect first: deleting while walking would skip entries. */
		while (n < cap && bpf_map_get_next_key(fd, prev, cur) == 0) {
			memcpy(keys + n * ksz[f], cur, ksz[f]);
			prev = keys + n * ksz[f];
			n++;
		}
		for (size_t i = 0; i < n; i++) {
			uint8_t *k = keys + i * ksz[f];

			/* the set is the byte after the u32 prefixlen in both layouts */
			if (k[4] == set && bpf_map_delete_elem(fd, k) < 0 && errno != ENOENT) {
				int ret = -errno;

				free(keys);
				return ret;
			}
		}
		free(keys);
	}
	return 0;
}

static int set_clear(const struct wpp_maps *m, uint32_t set, const struct wpp_tenant *known)
{
	struct wpp_tenant zt;
	struct wpp_config zc;
	int ret;

	memset(&zt, 0, sizeof(zt));
	memset(&zc, 0, sizeof(zc));
	ret = bpf_map_update_elem(m->fd[WPP_M_CONFIG], &set, &zc, BPF_ANY);
	if (ret < 0)
		return -errno;
	ret = lpm_clear(m, set);
	if (ret < 0)
		return ret;
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		uint32_t k = set * WPP_SLOTS + s;

		if (known && !(known[s].flags & WPP_TF_VALID))
			continue; /* already empty */
		if (bpf_map_update_elem(m->fd[WPP_M_TENANTS], &k, &zt, BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

/* Fill set img->set completely (nothing reads it yet). */
static int set_fill(const struct wpp_maps *m, const struct wpp_image *img)
{
	struct wpp_bucket zb;
	uint32_t set = img->set;
	int ret;

	memset(&zb, 0, sizeof(zb));
	ret = percpu_zero(m->fd[WPP_M_RCNT], set * WPP_MAX_RULES, img->nrules);
	if (ret < 0)
		return ret;
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		/* Fresh slots are used by no set yet, so this races with no packet. */
		if (img->fresh[s]) {
			ret = percpu_zero(m->fd[WPP_M_TCNT], s * WPP_R__COUNT, WPP_R__COUNT);
			if (ret < 0)
				return ret;
		}
		/* The syscall copy skips the bpf_spin_lock field of the value. */
		if (img->reset_bucket[s] &&
		    bpf_map_update_elem(m->fd[WPP_M_BUCKETS], &s, &zb, BPF_ANY) < 0)
			return -errno;
	}
	for (uint32_t i = 0; i < img->ntenants; i++) {
		uint32_t k = set * WPP_SLOTS + img->slot[i];

		if (bpf_map_update_elem(m->fd[WPP_M_TENANTS], &k, &img->tenant[i], BPF_ANY) < 0)
			return -errno;
	}
	for (uint32_t i = 0; i < img->n4; i++)
		if (bpf_map_update_elem(m->fd[WPP_M_LPM4], &img->e4[i].k, &img->e4[i].v, BPF_ANY) <
		    0)
			return -errno;
	for (uint32_t i = 0; i < img->n6; i++)
		if (bpf_map_update_elem(m->fd[WPP_M_LPM6], &img->e6[i].k, &img->e6[i].v, BPF_ANY) <
		    0)
			return -errno;
	/* Last: a valid config is what makes the set usable. */
	if (bpf_map_update_elem(m->fd[WPP_M_CONFIG], &set, &img->cfg, BPF_ANY) < 0)
		return -errno;
	return 0;
}

/* Wait until no XDP program still runs with what it read before now. */
static void grace_period(void)
{
	/* MEMBARRIER_CMD_GLOBAL is synchronize_rcu() in the kernel. It is
	 * refused on nohz_full kernels: then wait far longer than any packet. */
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) < 0)
		usleep(100 * 1000);
}

int wpp_maps_apply(const struct wpp_maps *m, const struct wp_policy *p, int first)
{
	struct wpp_tenant *old = NULL;
	struct wpp_image *img = malloc(sizeof(*img));
	uint32_t zero = 0, active = 0, nw;
	int ret;

	if (!img)
		return -ENOMEM;
	if (!first) {
		old = calloc(WPP_SLOTS, sizeof(*old));
		if (!old) {
			ret = -ENOMEM;
			goto out_free;
		}
		if (bpf_map_lookup_elem(m->fd[WPP_M_CTL], &zero, &active) < 0) {
			ret = -errno;
			xerr("reading the active set: %s", strerror(-ret));
			goto out_free;
		}
		active &= 1;
		ret = read_tenants(m, active, old);
		if (ret < 0) {
			xerr("reading the tenants: %s", strerror(-ret));
			goto out_free;
		}
	}
	nw = first ? 0 : !active;
	ret = wpp_image_build(p, nw, old, img);
	if (ret < 0) {
		xerr("no free tenant slot");
		goto out_free;
	}
	/* 1. The inactive set: clear leftovers (a reload killed half-way), fill. */
	ret = set_clear(m, nw, NULL);
	if (ret == 0)
		ret = set_fill(m, img);
	if (ret < 0) {
		xerr("filling the new rule set: %s; the old rules stay active", strerror(-ret));
		set_clear(m, nw, NULL);
		goto out_free;
	}
	if (first)
		goto out_free;
	/* 2. Switch: one aligned 4-byte value. */
	if (bpf_map_update_elem(m->fd[WPP_M_CTL], &zero, &nw, BPF_ANY) < 0) {
		ret = -errno;
		xerr("switching rule sets: %s; the old rules stay active", strerror(-ret));
		set_clear(m, nw, NULL);
		goto out_free;
	}
	/* 3. No packet still uses the old set... 4. ...so it can go. */
	grace_period();
	ret = set_clear(m, active, old);
	if (ret < 0) {
		/* The new rules are active; leftovers are cleared by the next reload. */
		wp_log_global(WP_LOG_WARN, "new rules active, but clearing the old set failed: %s",
			      strerror(-ret));
		ret = 0;
	}
out_free:
	free(old);
	free(img);
	return ret;
}

/* ---- reading back --------------------------------------------------------- */

struct view_store {
	struct wpp_view v;
	struct wpp_tenant tenants[WPP_SLOTS];
	struct wpp_e4 e4[WPP_MAX_PREFIXES];
	struct wpp_e6 e6[WPP_MAX_PREFIXES];
	struct wpp_cnt tcnt[WPP_SLOTS * WPP_R__COUNT];
	struct wpp_cnt rcnt[WPP_MAX_RULES];
};

static int view_read(const struct wpp_maps *m, struct view_store *st, int counters)
{
	struct wpp_view *v = &st->v;
	uint32_t zero = 0, nrules = 0;
	int ret;

	memset(v, 0, sizeof(*v));
	if (bpf_map_lookup_elem(m->fd[WPP_M_CTL], &zero, &v->active) < 0)
		return -errno;
	v->active &= 1;
	if (bpf_map_lookup_elem(m->fd[WPP_M_CONFIG], &v->active, &v->cfg) < 0)
		return -errno;
	ret = read_tenants(m, v->active, st->tenants);
	if (ret < 0)
		return ret;
	v->tenants = st->tenants;
	{
		struct wpp_lpm4_key k, *prev = NULL;

		while (bpf_map_get_next_key(m->fd[WPP_M_LPM4], prev, &k) == 0) {
			if (k.set == v->active && v->n4 < WPP_MAX_PREFIXES) {
				struct wpp_e4 *e = &st->e4[v->n4];

				e->k = k;
				if (bpf_map_lookup_elem(m->fd[WPP_M_LPM4], &k, &e->v) == 0)
					v->n4++;
			}
			st->e4[WPP_MAX_PREFIXES - 1].k = k; /* scratch for the walk */
			prev = &st->e4[WPP_MAX_PREFIXES - 1].k;
			if (v->n4 == WPP_MAX_PREFIXES)
				break;
		}
	}
	{
		struct wpp_lpm6_key k, *prev = NULL;

		while (bpf_map_get_next_key(m->fd[WPP_M_LPM6], prev, &k) == 0) {
			if (k.set == v->active && v->n6 < WPP_MAX_PREFIXES) {
				struct wpp_e6 *e = &st->e6[v->n6];

				e->k = k;
				if (bpf_map_lookup_elem(m->fd[WPP_M_LPM6], &k, &e->v) == 0)
					v->n6++;
			}
			st->e6[WPP_MAX_PREFIXES - 1].k = k;
			prev = &st->e6[WPP_MAX_PREFIXES - 1].k;
			if (v->n6 == WPP_MAX_PREFIXES)
				break;
		}
	}
	v->e4 = st->e4;
	v->e6 = st->e6;
	v->tcnt = st->tcnt;
	v->rcnt = st->rcnt;
	if (!counters)
		return 0;
	ret = percpu_sum(m->fd[WPP_M_CNT], 0, WPP_CNT_N, v->cnt);
	if (ret < 0)
		return ret;
	for (uint32_t s = 0; s < WPP_SLOTS; s++) {
		if (!(st->tenants[s].flags & WPP_TF_VALID))
			continue;
		ret = percpu_sum(m->fd[WPP_M_TCNT], s * WPP_R__COUNT, WPP_R__COUNT,
				 &st->tcnt[s * WPP_R__COUNT]);
		if (ret < 0)
			return ret;
		for (uint32_t j = 0; j < st->tenants[s].nranges && j < WPP_MAX_RANGES; j++)
			if (st->tenants[s].ranges[j].rule + 1u > nrules)
				nrules = st->tenants[s].ranges[j].rule + 1u;
	}
	for (uint32_t i = 0; i < v->n4; i++)
		if (st->e4[i].v.rule + 1 > nrules)
			nrules = st->e4[i].v.rule + 1;
	for (uint32_t i = 0; i < v->n6; i++)
		if (st->e6[i].v.rule + 1 > nrules)
			nrules = st->e6[i].v.rule + 1;
	if (nrules > WPP_MAX_RULES)
		nrules = WPP_MAX_RULES;
	return percpu_sum(m->fd[WPP_M_RCNT], v->active * WPP_MAX_RULES, nrules, st->rcnt);
}

int wpp_maps_stats(const struct wpp_maps *m, struct wp_policy_stats *out)
{
	struct view_store *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return -ENOMEM;
	ret = view_read(m, st, 1);
	if (ret == 0)
		ret = wpp_stats_build(&st->v, out);
	free(st);
	return ret;
}

static int maps_show(const struct wpp_maps *m, struct wp_policy **out)
{
	struct view_store *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return -ENOMEM;
	ret = view_read(m, st, 0);
	if (ret == 0)
		ret = wpp_policy_from_view(&st->v, out);
	free(st);
	return ret;
}

/* ---- pins and interfaces ---------------------------------------------------- */

/* Where bpffs is: WIREPATH_BPFFS, or /sys/fs/bpf. */
static const char *pin_root(void)
{
	const char *r = getenv("WIREPATH_BPFFS");

	return r && *r == '/' ? r : PIN_ROOT_DEFAULT;
}

/* Namespace inode of ours and of pid 1 (0 if unknown). */
static unsigned long ns_ino(const char *pid, const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/%s", pid, ns);
	return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static int ensure_bpffs(void)
{
	const char *root = pin_root();
	struct statfs sfs;
	unsigned long me = ns_ino("self", "mnt"), init = ns_ino("1", "mnt");

	if (statfs(root, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC)
		return 0;
	/* `ip netns exec` gives every command its own mount namespace and a
	 * fresh /sys: a bpffs mounted there would vanish with this process, and
	 * the pins with it. Refuse rather than leave an unmanageable program. */
	if (me && init && me != init) {
		xerr("%s is not bpffs in this private mount namespace (ip netns "
		     "exec?), so pins would vanish when this command exits; run "
		     "'nsenter --net=/run/netns/NS wirepath policy ...' instead, or "
		     "set WIREPATH_BPFFS to a bpffs mount that outlives the command",
		     root);
		return -ENOTSUP;
	}
	mkdir(root, 0700);
	if (mount("bpf", root, "bpf", 0, "mode=0700") < 0) {
		int ret = -errno;

		xerr("%s is not bpffs and mounting it failed (%s); mount it: "
		     "mount -t bpf bpf %s",
		     root, strerror(-ret), root);
		return ret;
	}
	return 0;
}

/*
 * ROOT/wirepath/IFACE in pid 1's network namespace, else
 * ROOT/wirepath/IFACE@netns:INODE (also when pid 1's namespace cannot be
 * read, as in some sandboxes): one bpffs serves every namespace, and two of
 * them may well both have an eth0.
 */
static int pin_path(char *buf, size_t len, const char *ifname, const char *name)
{
	unsigned long me = ns_ino("self", "net"), init = ns_ino("1", "net");
	char dev[IF_NAMESIZE + 40];
	int n;

	if (me && me != init)
		snprintf(dev, sizeof(dev), "%s@netns:%lu", ifname, me);
	else
		snprintf(dev, sizeof(dev), "%s", ifname);
	n = name ? snprintf(buf, len, "%s/wirepath/%s/%s", pin_root(), dev, name)
		 : snprintf(buf, len, "%s/wirepath/%s", pin_root(), dev);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int iface(const char *ifname, struct wp_xdp_info *info)
{
	unsigned idx;

	if (!ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE || strchr(ifname, '/') ||
	    ifname[0] == '.') {
		xerr("'%s' is not an interface name", ifname ? ifname : "");
		return -EINVAL;
	}
	idx = if_nametoindex(ifname);
	if (!idx) {
		xerr("no interface '%s' in this network namespace (see 'ip link')", ifname);
		return -ENODEV;
	}
	info->ifindex = (int)idx;
	return 0;
}

/* Whether program `id` is the frags-aware one (by its name). */
static int prog_is_frags(uint32_t id)
{
	struct bpf_prog_info pi;
	__u32 len = sizeof(pi);
	int fd = bpf_prog_get_fd_by_id(id), frags = 0;

	if (fd < 0)
		return 0;
	memset(&pi, 0, sizeof(pi));
	if (bpf_obj_get_info_by_fd(fd, &pi, &len) == 0)
		frags = !strcmp(pi.name, FRAGS_PROG_NAME);
	close(fd);
	return frags;
}

/* What is attached now: prog id, mode, which program. */
static void query(struct wp_xdp_info *info)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	info->prog_id = 0;
	info->frags = 0;
	if (bpf_xdp_query(info->ifindex, 0, &q) == 0) {
		info->prog_id = q.prog_id;
		info->native = q.attach_mode == XDP_ATTACHED_DRV ||
			       q.attach_mode == XDP_ATTACHED_HW;
		if (q.prog_id)
			info->frags = prog_is_frags(q.prog_id);
	}
}

static uint32_t pinned_prog_id(const char *ifname)
{
	struct bpf_prog_info pi;
	__u32 len = sizeof(pi);
	char path[256];
	uint32_t id = 0;
	int fd;

	if (pin_path(path, sizeof(path), ifname, PROG_PIN) < 0)
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(&pi, 0, sizeof(pi));
	if (bpf_obj_get_info_by_fd(fd, &pi, &len) == 0)
		id = pi.id;
	close(fd);
	return id;
}

static void unpin_all(const char *ifname, int rm_dir)
{
	char path[256];

	for (int i = 0; i < WPP_M__COUNT; i++)
		if (pin_path(path, sizeof(path), ifname, map_names[i]) == 0)
			unlink(path);
	if (pin_path(path, sizeof(path), ifname, PROG_PIN) == 0)
		unlink(path);
	if (rm_dir && pin_path(path, sizeof(path), ifname, NULL) == 0)
		rmdir(path);
}

static int open_pinned(const char *ifname, struct wpp_maps *m)
{
	char path[256];

	wpp_maps_init(m);
	for (int i = 0; i < WPP_M__COUNT; i++) {
		if (pin_path(path, sizeof(path), ifname, map_names[i]) < 0)
			return -ENAMETOOLONG;
		m->fd[i] = bpf_obj_get(path);
		if (m->fd[i] < 0) {
			int ret = -errno;

			if (ret == -ENOENT)
				xerr("no wirepath policy is loaded on %s; load one: "
				     "wirepath policy load --dev %s RULES",
				     ifname, ifname);
			else
				xerr("opening %s: %s%s", path, strerror(-ret),
				     ret == -EPERM || ret == -EACCES ? " (run as root)" : "");
			wpp_maps_close(m);
			return ret;
		}
	}
	return 0;
}

/* Serialise loaders of one interface. Returns an fd to close, or -errno. */
static int lock_dir(const char *ifname)
{
	char path[256];
	int fd;

	if (pin_path(path, sizeof(path), ifname, NULL) < 0)
		return -ENAMETOOLONG;
	{
		char top[200];

		snprintf(top, sizeof(top), "%s/wirepath", pin_root());
		if (mkdir(top, 0700) < 0 && errno != EEXIST)
			goto out_err;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		goto out_err;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		goto out_err;
	if (flock(fd, LOCK_EX) < 0) {
		/* Pin directories may not support flock on every kernel: go on. */
	}
	return fd;

out_err:
	fd = -errno;
	xerr("creating %s: %s", path, strerror(-fd));
	return fd;
}

/* asked_generic: 1 when this call attached in generic mode because it was
 * asked to, 0 when it attached natively or fell back, -1 when another call
 * attached the program (a later process cannot know whether that load fell
 * back, so it does not claim either). */
static void info_fill(struct wp_xdp_info *info, const char *ifname, uint32_t active,
		      int asked_generic)
{
	char prog[72];

	query(info);
	info->active_set = active;
	pin_path(info->pin_dir, sizeof(info->pin_dir), ifname, NULL);
	if (info->frags)
		snprintf(prog, sizeof(prog), "frags-aware");
	else if (info->frags_err)
		snprintf(prog, sizeof(prog), "plain program (frags-aware refused: %s)",
			 strerror(info->frags_err));
	else
		snprintf(prog, sizeof(prog), "plain program");
	if (info->native)
		snprintf(info->detail, sizeof(info->detail), "native XDP on %s (prog id %u), %s",
			 ifname, info->prog_id, prog);
	else if (info->fallback)
		snprintf(info->detail, sizeof(info->detail),
			 "GENERIC XDP on %s (prog id %u), %s: native mode was refused (%s), so "
			 "packets pay for an skb before the policy sees them",
			 ifname, info->prog_id, prog, strerror(info->native_err));
	else if (asked_generic > 0)
		snprintf(info->detail, sizeof(info->detail),
			 "generic XDP on %s (prog id %u), %s, as asked", ifname, info->prog_id,
			 prog);
	else
		snprintf(info->detail, sizeof(info->detail),
			 "generic XDP on %s (prog id %u), %s: packets pay for an skb before the "
			 "policy sees them",
			 ifname, info->prog_id, prog);
}

int wp_policy_xdp_load(const char *ifname, const struct wp_policy *p, unsigned flags,
		       struct wp_xdp_info *info)
{
	libbpf_print_fn_t prev_print = libbpf_set_print(bpf_print);
	struct wp_xdp_info tmp;
	struct policy_bpf *skel = NULL;
	struct wpp_maps m;
	char path[256];
	int ret, lfd = -1, prog_fd, frags_err = 0;
	uint32_t mine;

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	wpp_maps_init(&m);
	ret = iface(ifname, info);
	if (ret < 0)
		goto out;
	ret = ensure_bpffs();
	if (ret < 0)
		goto out;
	lfd = lock_dir(ifname);
	if (lfd < 0) {
		ret = lfd;
		goto out;
	}
	query(info);
	mine = pinned_prog_id(ifname);
	if (info->prog_id) {
		if (mine && mine == info->prog_id)
			xerr("a wirepath policy is already loaded on %s; use "
			     "'wirepath policy reload --dev %s RULES'",
			     ifname, ifname);
		else
			xerr("%s already has an XDP program (id %u) that is not "
			     "wirepath's; detach it first: ip link set dev %s xdp off",
			     ifname, info->prog_id, ifname);
		ret = -EEXIST;
		goto out;
	}
	/* Pins without an attached program: a previous run died. Start clean. */
	unpin_all(ifname, 0);

	bpf_last[0] = '\0';
	skel = wpp_skel_load(!(flags & WP_XDP_NO_FRAGS), &frags_err);
	if (!skel) {
		ret = -errno ? -errno : -EINVAL;
		xerr("loading the XDP program failed: %s%s%s",
		     bpf_last[0] ? bpf_last : strerror(-ret),
		     ret == -EPERM ? " (needs root: CAP_BPF and CAP_NET_ADMIN)" : "",
		     ret == -ENOMEM ? " (memlock or memory cgroup limit?)" : "");
		goto out;
	}
	wpp_maps_from_skel(&m, skel);
	prog_fd = bpf_program__fd(skel->progs.wpp_xdp_frags);
	if (prog_fd < 0) {
		prog_fd = bpf_program__fd(skel->progs.wpp_xdp);
		if (frags_err)
			wp_log_global(WP_LOG_WARN,
				      "the kernel refused the frags-aware XDP program (%s), so "
				      "the plain one runs: native mode fails where the MTU needs "
				      "more than one buffer per frame",
				      strerror(frags_err));
	}

	ret = wpp_maps_apply(&m, p, 1);
	if (ret < 0)
		goto out;
	/* Pin before attaching: an attached program is never left unowned. */
	for (int i = 0; i < WPP_M__COUNT; i++) {
		pin_path(path, sizeof(path), ifname, map_names[i]);
		if (bpf_obj_pin(m.fd[i], path) < 0) {
			ret = -errno;
			xerr("pinning %s: %s", path, strerror(-ret));
			goto out_unpin;
		}
	}
	pin_path(path, sizeof(path), ifname, PROG_PIN);
	if (bpf_obj_pin(prog_fd, path) < 0) {
		ret = -errno;
		xerr("pinning %s: %s", path, strerror(-ret));
		goto out_unpin;
	}

	ret = -EOPNOTSUPP;
	if (!(flags & WP_XDP_GENERIC)) {
		bpf_last[0] = '\0';
		ret = bpf_xdp_attach(info->ifindex, prog_fd,
				     XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE, NULL);
		if (ret < 0 && (flags & WP_XDP_NATIVE_ONLY)) {
			/* libbpf passes on the driver's extack ("Peer MTU is too
			 * large to set XDP" from veth for the plain program). */
			const char *why = strstr(bpf_last, "error message: ");

			xerr("native XDP on %s was refused: %s%s%s%s%s (drop --native-only to "
			     "allow generic mode)",
			     ifname, strerror(-ret), why ? " (kernel: " : "", why ? why + 15 : "",
			     why ? ")" : "",
			     prog_fd == bpf_program__fd(skel->progs.wpp_xdp)
				     ? "; the plain program takes frames of one buffer only"
				     : "");
			goto out_unpin;
		}
		if (ret < 0) {
			info->fallback = 1;
			info->native_err = -ret;
		}
	}
	if (ret < 0) {
		ret = bpf_xdp_attach(info->ifindex, prog_fd,
				     XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE, NULL);
		if (ret < 0) {
			xerr("attaching XDP to %s failed: %s", ifname, strerror(-ret));
			goto out_unpin;
		}
	}
	info->frags_err = frags_err;
	info_fill(info, ifname, 0, !!(flags & WP_XDP_GENERIC));
	ret = 0;
	goto out;

out_unpin:
	unpin_all(ifname, 1);
out:
	if (ret < 0 && pin_path(path, sizeof(path), ifname, NULL) == 0)
		rmdir(path); /* only if empty: the directory lock_dir made */
	if (skel)
		policy_bpf__destroy(skel); /* pins and the attachment keep what is needed */
	if (lfd >= 0)
		close(lfd);
	libbpf_set_print(prev_print);
	return ret;
}

int wp_policy_xdp_reload(const char *ifname, const struct wp_policy *p, struct wp_xdp_info *info)
{
	struct wp_xdp_info tmp;
	struct wpp_maps m;
	uint32_t zero = 0, active = 0;
	int ret, lfd;

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	ret = iface(ifname, info);
	if (ret < 0)
		return ret;
	ret = open_pinned(ifname, &m);
	if (ret < 0)
		return ret;
	lfd = lock_dir(ifname);
	if (lfd < 0) {
		wpp_maps_close(&m);
		return lfd;
	}
	ret = wpp_maps_apply(&m, p, 0);
	bpf_map_lookup_elem(m.fd[WPP_M_CTL], &zero, &active);
	info_fill(info, ifname, active & 1, -1);
	if (ret == 0 && info->prog_id != pinned_prog_id(ifname))
		snprintf(info->detail, sizeof(info->detail),
			 "rules updated, but the wirepath program is no longer attached to %s "
			 "(prog id now %u); unload and load again",
			 ifname, info->prog_id);
	close(lfd);
	wpp_maps_close(&m);
	return ret;
}

int wp_policy_xdp_unload(const char *ifname)
{
	struct wp_xdp_info info;
	uint32_t mine;
	int ret, lfd;

	memset(&info, 0, sizeof(info));
	ret = iface(ifname, &info);
	if (ret < 0)
		return ret;
	mine = pinned_prog_id(ifname);
	if (!mine) {
		xerr("no wirepath policy is loaded on %s", ifname);
		return -ENOENT;
	}
	lfd = lock_dir(ifname);
	if (lfd < 0)
		return lfd;
	query(&info);
	if (info.prog_id == mine) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, o);
		unsigned mode = info.native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
		char path[256];
		int fd;

		pin_path(path, sizeof(path), ifname, PROG_PIN);
		fd = bpf_obj_get(path);
		o.old_prog_fd = fd;
		ret = bpf_xdp_detach(info.ifindex, XDP_FLAGS_REPLACE | mode, &o);
		if (fd >= 0)
			close(fd);
		if (ret < 0) {
			xerr("detaching from %s failed: %s", ifname, strerror(-ret));
			close(lfd);
			return ret;
		}
	} else if (info.prog_id) {
		xerr("%s now runs another XDP program (id %u); wirepath's pins were "
		     "removed, the program was left alone",
		     ifname, info.prog_id);
		unpin_all(ifname, 1);
		close(lfd);
		return -ESTALE;
	}
	unpin_all(ifname, 1);
	close(lfd);
	return 0;
}

int wp_policy_xdp_stats(const char *ifname, struct wp_policy_stats *out, struct wp_xdp_info *info)
{
	struct wp_xdp_info tmp;
	struct wpp_maps m;
	int ret;

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	memset(out, 0, sizeof(*out));
	ret = iface(ifname, info);
	if (ret < 0)
		return ret;
	ret = open_pinned(ifname, &m);
	if (ret < 0)
		return ret;
	ret = wpp_maps_stats(&m, out);
	if (ret < 0)
		xerr("reading counters on %s: %s", ifname, strerror(-ret));
	info_fill(info, ifname, out->active_set, -1);
	wpp_maps_close(&m);
	return ret;
}

int wp_policy_xdp_show(const char *ifname, struct wp_policy **out, struct wp_xdp_info *info)
{
	struct wp_xdp_info tmp;
	struct wpp_maps m;
	uint32_t zero = 0, active = 0;
	int ret;

	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	*out = NULL;
	ret = iface(ifname, info);
	if (ret < 0)
		return ret;
	ret = open_pinned(ifname, &m);
	if (ret < 0)
		return ret;
	ret = maps_show(&m, out);
	if (ret < 0)
		xerr("reading rules on %s: %s", ifname, strerror(-ret));
	bpf_map_lookup_elem(m.fd[WPP_M_CTL], &zero, &active);
	info_fill(info, ifname, active & 1, -1);
	wpp_maps_close(&m);
	return ret;
}

/* ---- the xsk:// path's own program --------------------------------------- */

int wpp_xsk_attach(int ifindex, const struct wp_policy *p, int generic, struct wpp_xsk_prog *x,
		   char *why, size_t len)
{
	libbpf_print_fn_t prev_print = libbpf_set_print(bpf_print);
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	struct bpf_prog_info pi;
	__u32 pilen = sizeof(pi);
	struct policy_bpf *skel;
	int ret, prog_fd, frags_err;

	memset(x, 0, sizeof(*x));
	wpp_maps_init(&x->m);
	x->link_fd = -1;
	bpf_last[0] = '\0';
	/* The plain program alone: the path's frames fit one buffer (2 KiB
	 * UMEM chunks, sockets bound without XDP_USE_SG), and each load is a
	 * verifier run done per context (0.4 s here; the frags-aware one
	 * takes 1.7 s). */
	skel = wpp_skel_load(0, &frags_err);
	if (!skel) {
		ret = errno ? -errno : -EINVAL;
		snprintf(why, len, "loading the XDP program: %s%s",
			 bpf_last[0] ? bpf_last : strerror(-ret),
			 ret == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
		goto out;
	}
	wpp_maps_from_skel(&x->m, skel);
	prog_fd = bpf_program__fd(skel->progs.wpp_xdp_frags);
	if (prog_fd < 0)
		prog_fd = bpf_program__fd(skel->progs.wpp_xdp);
	(void)frags_err;
	ret = wpp_maps_apply(&x->m, p, 1);
	if (ret < 0) {
		snprintf(why, len, "filling the XDP maps: %s", strerror(-ret));
		goto out_destroy;
	}
	ret = -EOPNOTSUPP;
	if (!generic) {
		lo.flags = XDP_FLAGS_DRV_MODE;
		ret = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lo);
		if (ret < 0)
			x->native_err = -ret;
		else
			x->native = 1;
	}
	if (ret < 0) {
		lo.flags = XDP_FLAGS_SKB_MODE;
		ret = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lo);
	}
	if (ret < 0) {
		snprintf(why, len, "attaching XDP to ifindex %d: %s%s", ifindex, strerror(-ret),
			 ret == -EBUSY || ret == -EEXIST
				 ? " (the interface already runs an XDP program: one per "
				   "interface, libxdp's dispatcher is refused here)"
				 : "");
		if (ret == -EEXIST)
			ret = -EBUSY;
		goto out_destroy;
	}
	x->link_fd = ret;
	memset(&pi, 0, sizeof(pi));
	if (bpf_obj_get_info_by_fd(prog_fd, &pi, &pilen) == 0)
		x->prog_id = pi.id;
	x->skel = skel;
	ret = 0;
	goto out;

out_destroy:
	policy_bpf__destroy(skel);
	wpp_maps_init(&x->m);
out:
	libbpf_set_print(prev_print);
	return ret;
}

void wpp_xsk_detach(struct wpp_xsk_prog *x)
{
	if (x->link_fd >= 0)
		close(x->link_fd); /* the link's last reference: detached */
	x->link_fd = -1;
	if (x->skel)
		policy_bpf__destroy(x->skel); /* closes the map fds */
	x->skel = NULL;
	wpp_maps_init(&x->m);
}

int64_t wpp_xsk_count(const struct wpp_xsk_prog *x, unsigned reason)
{
	struct wpp_cnt c;
	int ret;

	if (!x->skel)
		return -ENOENT;
	if (reason >= WPP_R__COUNT)
		return -EINVAL;
	ret = percpu_sum(x->m.fd[WPP_M_CNT], reason, 1, &c);
	return ret < 0 ? ret : (int64_t)c.pkts;
}

int64_t wpp_xsk_redirected(const struct wpp_xsk_prog *x)
{
	return wpp_xsk_count(x, WPP_R_REDIRECT);
}

#endif /* WP_HAVE_XDP_POLICY */
