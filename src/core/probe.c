// SPDX-License-Identifier: MIT
/*
 * The probe table: the core keeps only the cache. Each part of the library
 * supplies its own probes (each path its `probe` op, the meter and the GPU
 * feed theirs, listed in src/registry.c), and each probe really exercises
 * the feature on the running kernel (a header proves nothing). Answers are
 * cached for the process. `wirepath probe` prints them; tests and the bench
 * use them.
 *
 * Lazy groups (the GPU: loading the CUDA driver costs tens of milliseconds
 * on a GPU machine) run for wp_probe_all and for a wp_probe_get of a name
 * in their group, not for every uring context's probe lookup.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

#define MAX_PROBES 64

static struct wp_probe_result results[MAX_PROBES];
static int nresults;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_once_t once_lazy = PTHREAD_ONCE_INIT;
static pthread_mutex_t results_lock = PTHREAD_MUTEX_INITIALIZER;

/* Called by the probes, under results_lock. */
void wp_probe_add(const char *name, int err, const char *fmt, ...)
{
	struct wp_probe_result *r;
	va_list ap;

	if (nresults == MAX_PROBES)
		return; /* a fixed table: a new probe that overflows it shows up missing */
	r = &results[nresults++];
	r->name = name;
	r->err = err < 0 ? -err : err;
	r->ok = err == 0;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	/* Probes run without a context: their answers go to the process hook. */
	wp_log_global(WP_LOG_DEBUG, "probe %s: %s (%s)", name, r->ok ? "yes" : strerror(r->err),
		      r->detail);
}

static void run_groups(bool lazy)
{
	const struct wp_backend_ops *const *paths;
	int n;

	pthread_mutex_lock(&results_lock);
	if (!lazy) {
		n = wp_paths(&paths);
		for (int i = 0; i < n; i++)
			paths[i]->probe();
	}
	for (const struct wp_probe_group *g = wp_registry_probes; g->run; g++)
		if (g->lazy_prefix ? lazy : !lazy)
			g->run();
	pthread_mutex_unlock(&results_lock);
}

static void run_all(void)
{
	run_groups(false);
}

static void run_lazy(void)
{
	run_groups(true);
}

static int nresults_now(void)
{
	int n;

	pthread_mutex_lock(&results_lock);
	n = nresults;
	pthread_mutex_unlock(&results_lock);
	return n;
}

int wp_probe_all(const struct wp_probe_result **out)
{
	pthread_once(&once, run_all);
	pthread_once(&once_lazy, run_lazy);
	*out = results;
	return nresults_now();
}

const struct wp_probe_result *wp_probe_get(const char *name)
{
	int n;

	pthread_once(&once, run_all);
	for (const struct wp_probe_group *g = wp_registry_probes; g->run; g++)
		if (g->lazy_prefix && !strncmp(name, g->lazy_prefix, strlen(g->lazy_prefix)))
			pthread_once(&once_lazy, run_lazy);
	/* Entries never change once added; the count is read under the lock
	 * the runs append under. */
	n = nresults_now();
	for (int i = 0; i < n; i++)
		if (!strcmp(results[i].name, name))
			return &results[i];
	return NULL;
}
