/* SPDX-License-Identifier: MIT */
/*
 * Timed jobs for the stub services (tools/serve.c, tools/svc.c): a min-heap
 * keyed by due time, so a delayed reply or a paced token stream costs no
 * thread and no sleep. The owner's loop runs what is due (sched_run) and
 * waits in wp_ctx_progress() no longer than sched_timeout_us() says.
 *
 * A job is embedded in the caller's own struct (container_of style) and
 * carries two operations: run (send what is due) and drop (the server is
 * stopping). Jobs that answer a call name it, so that a periodic sweep can
 * find calls whose client cancelled or went away and run them at once
 * rather than at their next due time: a stream paced at one token a second
 * stops within SCHED_SWEEP_NS of the cancel, not a second later.
 *
 * Single-threaded, like the context whose calls the jobs answer. (Not named
 * sched.h: tests put tools/ on the include path, where it would shadow
 * the C library's <sched.h>.)
 */
#ifndef WP_TOOLS_SCHED_HEAP_H
#define WP_TOOLS_SCHED_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "wirepath/wirepath.h"

/* How often queued jobs are checked for cancelled calls (the check is one
 * load per job: 10,000 streams cost about 0.2% of a core at this period). */
#define SCHED_SWEEP_NS (50ull * 1000 * 1000)

struct sched_job {
	uint64_t due;         /* wp_now_ns() at which run() is called next */
	struct wp_call *call; /* the call it answers (for the sweep), or NULL */
	/*
	 * Send what is due. Returns 1 when the job is over (run freed it) or
	 * 0 to be called again at j->due, which run set strictly after now.
	 * run() must check wp_call_cancelled itself: the sweep only makes it
	 * due.
	 */
	int (*run)(struct sched_job *j, uint64_t now);
	/* The server is stopping: end the call (ECANCELED) and free the job. */
	void (*drop)(struct sched_job *j);
};

struct sched {
	struct sched_job **heap; /* min-heap on due */
	size_t n, cap;
	uint64_t next_sweep;
};

/* Queue j (j->due set). Returns 0 or -ENOMEM (j was not queued). */
int sched_add(struct sched *s, struct sched_job *j);
/* Run every job due at now (and sweep for cancelled calls when it is time).
 * Returns how many jobs ran. */
int sched_run(struct sched *s, uint64_t now);
/* How long the loop may wait for events: until the next due job or sweep,
 * at most cap_us; cap_us when nothing is queued. */
int64_t sched_timeout_us(const struct sched *s, uint64_t now, int64_t cap_us);
/* Drop every queued job (drop()) and free the heap. */
void sched_fini(struct sched *s);

#endif
