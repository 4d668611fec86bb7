/* SPDX-License-Identifier: MIT */
/*
 * The one place that knows which skeleton map fills which wpp_maps slot,
 * for every user of the generated skeleton (the loader, xdp.c, and the
 * XDP-vs-twin equivalence test). Include after "policy.skel.h".
 */
#ifndef WPP_SKEL_MAPS_H
#define WPP_SKEL_MAPS_H

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

#endif
