/* SPDX-License-Identifier: MIT */
/*
 * The one place that knows which skeleton map fills which wpp_maps slot,
 * and how the skeleton is loaded (frags-aware program first), for every
 * user of the generated skeleton (the loader, xdp.c, and the XDP-vs-twin
 * equivalence test). Include after "policy.skel.h".
 */
#ifndef WPP_SKEL_MAPS_H
#define WPP_SKEL_MAPS_H

#include <errno.h>

#include "policy.h"

static inline void wpp_maps_from_skel(struct wpp_maps *m, const struct policy_bpf *skel)
{
	m->fd[WPP_M_CTL] = bpf_map__fd(skel->maps.wpp_ctl);
	m->fd[WPP_M_CONFIG] = bpf_map__fd(skel->maps.wpp_config);
	m->fd[WPP_M_LPM4] = bpf_map__fd(skel->maps.wpp_lpm4);
	m->fd[WPP_M_LPM6] = bpf_map__fd(skel->maps.wpp_lpm6);
	m->fd[WPP_M_TENANTS] = bpf_map__fd(skel->maps.wpp_tenants);
	m->fd[WPP_M_BUCKETS] = bpf_map__fd(skel->maps.wpp_buckets);
	m->fd[WPP_M_CNT] = bpf_map__fd(skel->maps.wpp_cnt);
	m->fd[WPP_M_TCNT] = bpf_map__fd(skel->maps.wpp_tcnt);
	m->fd[WPP_M_RCNT] = bpf_map__fd(skel->maps.wpp_rcnt);
	m->fd[WPP_M_XSKS] = bpf_map__fd(skel->maps.wpp_xsks);
}

/*
 * Open and load the skeleton: with both programs where the kernel takes the
 * frags-aware one (frags set), else with the plain one alone. *frags_err:
 * the errno the first attempt failed with (0: it loaded, or frags unset).
 * NULL with errno set when even the plain program is refused.
 */
static inline struct policy_bpf *wpp_skel_load(int frags, int *frags_err)
{
	struct policy_bpf *skel;
	int err;

	*frags_err = 0;
	if (frags) {
		skel = policy_bpf__open_and_load();
		if (skel)
			return skel;
		*frags_err = errno ? errno : EINVAL;
	}
	skel = policy_bpf__open();
	if (!skel)
		return NULL;
	bpf_program__set_autoload(skel->progs.wpp_xdp_frags, false);
	err = policy_bpf__load(skel);
	if (err) {
		policy_bpf__destroy(skel);
		errno = err < 0 ? -err : err;
		return NULL;
	}
	return skel;
}

#endif
