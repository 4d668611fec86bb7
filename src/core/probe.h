/* SPDX-License-Identifier: MIT */
/*
 * The probe table's internal side: how the parts of the library report what
 * a real attempt on the running kernel returned (src/core/probe.c keeps the
 * cache; wp_probe_all and wp_probe_get read it).
 */
#ifndef WP_PROBE_H
#define WP_PROBE_H

/* Record one probe result, from a path's probe op or a probe group. err: 0,
 * or the -errno the attempt returned. */
void wp_probe_add(const char *name, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Probes beyond the paths' own (the meter, the GPU, paths not built), listed
 * in src/registry.c. lazy_prefix non-NULL runs the group only when a name
 * with that prefix is asked for, or for wp_probe_all. Ends with run == NULL. */
struct wp_probe_group {
	void (*run)(void);
	const char *lazy_prefix;
};
extern const struct wp_probe_group wp_registry_probes[];

/* The groups' own probes. */
void wp_meter_probe(void); /* src/meter/meter.c */
void wp_gpu_probe(void);   /* src/gpu/gpudirect.c */
void wp_ktls_probe(void);  /* src/auth/ktls.c */
void wp_edu_probe(void);   /* src/kern/edu_probe.c: the edu card and driver (kernel/edu) */

#endif
