// SPDX-License-Identifier: MIT
/*
 * The stub services' timed jobs (sched_heap.h): a binary min-heap on due time,
 * with a cancellation sweep that lowers a cancelled call's key to 0 so the
 * next sched_run ends it.
 */
#include <errno.h>
#include <stdlib.h>

#include "sched_heap.h"

static void sched_up(struct sched *s, size_t i, struct sched_job *j)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (s->heap[p]->due <= j->due)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = j;
}

int sched_add(struct sched *s, struct sched_job *j)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct sched_job **h = realloc(s->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		s->heap = h;
		s->cap = cap;
	}
	if (s->n == 0)
		s->next_sweep = wp_now_ns() + SCHED_SWEEP_NS;
	sched_up(s, s->n++, j);
	return 0;
}

static struct sched_job *sched_pop(struct sched *s)
{
	struct sched_job *top = s->heap[0], *last = s->heap[--s->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->n)
			break;
		if (c + 1 < s->n && s->heap[c + 1]->due < s->heap[c]->due)
			c++;
		if (last->due <= s->heap[c]->due)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n)
		s->heap[i] = last;
	return top;
}

/* Make every queued job whose call was cancelled due now (key 0: a
 * decrease-key, so the heap stays a heap). */
static void sched_sweep(struct sched *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct sched_job *j = s->heap[i];

		if (j->due && j->call && wp_call_cancelled(j->call)) {
			j->due = 0;
			sched_up(s, i, j);
		}
	}
}

int sched_run(struct sched *s, uint64_t now)
{
	int ran = 0;

	if (s->n && now >= s->next_sweep) {
		sched_sweep(s);
		s->next_sweep = now + SCHED_SWEEP_NS;
	}
	while (s->n && s->heap[0]->due <= now) {
		struct sched_job *j = sched_pop(s);

		ran++;
		/* Re-queueing cannot fail: the job's slot was just freed. */
		if (j->run(j, now) == 0)
			sched_add(s, j);
	}
	return ran;
}

int64_t sched_timeout_us(const struct sched *s, uint64_t now, int64_t cap_us)
{
	uint64_t due;
	int64_t t;

	if (!s->n)
		return cap_us;
	due = s->heap[0]->due < s->next_sweep ? s->heap[0]->due : s->next_sweep;
	t = due <= now ? 0 : (int64_t)((due - now + 999) / 1000);
	return t < cap_us ? t : cap_us;
}

void sched_fini(struct sched *s)
{
	while (s->n) {
		struct sched_job *j = sched_pop(s);

		j->drop(j);
	}
	free(s->heap);
	s->heap = NULL;
	s->cap = 0;
}
