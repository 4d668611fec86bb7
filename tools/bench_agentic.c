// SPDX-License-Identifier: MIT
/*
 * `wirepath bench --workload agentic|classic|FILE`: agent steps over each
 * data path, and what each step costs this host.
 *
 * For every path named in --paths the bench starts a `wirepath serve` of its
 * own (unless --peer), opens one context on that path (select=require: a path
 * the host lacks is reported as unavailable with the probe's reason, never
 * silently replaced) and drives N agents from this one thread, each on its
 * own endpoint. An agent step is a small state machine (docs/workload.md,
 * bench/workloads/README.md):
 *   1. mem_lookups parallel memory calls (plus one bulk transfer if set),
 *   2. one model call streaming the step's tokens (if model_req_bytes > 0),
 *   3. `fanout` parallel tool calls, sizes drawn from the workload's
 *      distribution with a seeded PRNG, retry_pct of them issued again,
 *   4. one telemetry message; the step ends when its send has completed.
 * Every reply's size is checked; any error ends that path's run, and so does
 * a call left unanswered for seconds (a watchdog names the agent and phase).
 *
 * After a warm-up the bench takes the meter at both window edges in both
 * processes: wp_meter_snapshot() here, and the server's snapshot through the
 * library's stats call (WP_METHOD_STATS) on a separate endpoint. The per-step
 * figures sum both sides, since the host pays for both. Requests point into
 * buffers filled once, sent with a completion callback, so the bench itself
 * adds no copies to what is measured. The two stats calls per window are
 * inside the window; against thousands of steps they are noise, and the
 * JSON says so.
 *
 * The figures derived from the window, the crossover among them, are
 * bench_report.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "stub_proto.h"
#include "util.h"
#include "wirepath/policy.h"

/* ------------------------------------------------------------------ */
/* One path's run: agents, calls, the loop                             */
/* ------------------------------------------------------------------ */

enum { PH_MEM, PH_MODEL, PH_TOOL, PH_TEL, PH_TEL_WAIT, PH_IDLE };

struct run;

struct agent {
	struct run *r;
	struct wp_ep *ep;
	uint32_t idx;
	int connected;
	int stalled; /* back-pressure: resumed from the run loop */
	int ph;
	uint32_t outstanding;                  /* calls whose on_done has not run yet */
	struct rec *unsent_head, *unsent_tail; /* calls refused with back-pressure */
	/*
	 * Tool result sizes and retry choices, both drawn when the tool phase
	 * starts, so the sequence does not depend on completion order.
	 */
	uint64_t rng;
	uint64_t step_t0;
	uint64_t last_event_ns; /* last call issued, chunk or answer received */
};

/*
 * One call. It carries its own request buffer (tool requests differ in their
 * header), so a buffer is never rewritten while the library may still own it:
 * a record goes back to the free list only after both req_done and on_done.
 */
struct rec {
	struct rec *next;     /* free list or unsent list */
	struct rec *all_next; /* every record ever allocated, for the final free */
	struct agent *a;
	uint32_t kind;
	uint32_t req_len;
	const void *req;
	uint64_t expect; /* reply bytes */
	uint64_t got;
	uint32_t chunks, expect_chunks; /* expect_chunks checked for the model stream */
	uint64_t t0;
	int will_retry; /* issue once more after it completes */
	int req_pending, resp_pending;
	uint8_t buf[]; /* tool request: header + pattern */
};

struct run {
	uint64_t round_ns; /* wp_now_ns() at the start of this loop round */
	const struct bench_cfg *cfg;
	const struct wl *w;
	struct path_res *res;
	struct wp_ctx *ctx;
	struct agent *agents;
	uint32_t nagents, nconnected, nidle, nstalled;
	struct wp_ep *stats_ep;
	int stats_connected;
	int failed;
	char err[512];
	int stopping; /* agents finish their step, then go idle */
	int teardown; /* the context is being destroyed: failures are expected */
	int measuring;
	uint64_t steps, tokens, tool_calls, retries, telemetry;

	/* Requests that never change: filled once, shared by every agent. */
	uint8_t *mem_req, *bulk_req, *model_req, *tel_buf;
	uint32_t model_req_len, tel_len, tool_req_len;
	struct rec *free_recs, *all_recs;

	struct bench_stats stats; /* the stats call in flight */

	/* Progress line. */
	int show_progress, tty;
	uint64_t next_progress_ns;

	/* Stall watchdog: a call unanswered this long ends the run. */
	uint64_t stall_ns;
	uint64_t next_watchdog_ns;
};

static void run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

/* xorshift64*: small, fast, good enough to draw sizes. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* splitmix64, to spread one --seed over agents and streams. */
static uint64_t seed_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x ? x : 1;
}

static struct rec *rec_get(struct run *r, struct agent *a, uint32_t kind)
{
	struct rec *c = r->free_recs;

	if (c) {
		r->free_recs = c->next;
	} else {
		c = malloc(sizeof(*c) + r->tool_req_len);
		if (!c) {
			run_fail(r, "out of memory");
			return NULL;
		}
		c->all_next = r->all_recs;
		r->all_recs = c;
		for (uint32_t i = 0; i < r->tool_req_len; i++)
			c->buf[i] = wpb_pattern(i);
	}
	c->next = NULL;
	c->a = a;
	c->kind = kind;
	c->req = NULL;
	c->req_len = 0;
	c->expect = c->got = 0;
	c->chunks = c->expect_chunks = 0;
	c->t0 = 0;
	c->will_retry = 0;
	c->req_pending = c->resp_pending = 0;
	return c;
}

static void rec_put(struct run *r, struct rec *c)
{
	c->next = r->free_recs;
	r->free_recs = c;
}

static void agent_advance(struct agent *a);
static void rec_on_done(void *arg, int status);
static void tel_done(void *arg, int status);

static void rec_req_done(void *arg, int status)
{
	struct rec *c = arg;

	c->req_pending = 0;
	if (!c->resp_pending)
		rec_put(c->a->r, c);
}

static void rec_on_data(void *arg, struct wp_msg *chunk)
{
	struct rec *c = arg;

	c->got += chunk->len;
	c->chunks++;
	/* The stall watchdog needs seconds, not nanoseconds: the time taken once
	 * per loop round is enough, and a clock read per token frame (520 per
	 * step) would be charged to every path as host CPU. */
	c->a->last_event_ns = c->a->r->round_ns;
}

static int rec_send(struct agent *a, struct rec *c);

static void agent_stall(struct agent *a)
{
	if (!a->stalled) {
		a->stalled = 1;
		a->r->nstalled++;
	}
}

/* Send now, or keep it (in order) for when the back-pressure clears. */
static void agent_queue(struct agent *a, struct rec *c)
{
	int rc = 1;

	if (!a->unsent_head)
		rc = rec_send(a, c);
	if (rc <= 0)
		return;
	if (a->unsent_tail)
		a->unsent_tail->next = c;
	else
		a->unsent_head = c;
	a->unsent_tail = c;
	agent_stall(a);
}

/* 0 sent, 1 back-pressure (not sent, kept by the caller), -1 failed (freed). */
static int rec_send(struct agent *a, struct rec *c)
{
	struct run *r = a->r;
	struct wp_call_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.method = c->kind;
	p.req = c->req;
	p.req_len = c->req_len;
	p.req_done = rec_req_done;
	p.on_data = rec_on_data;
	p.on_done = rec_on_done;
	p.arg = c;
	c->t0 = wp_now_ns();
	rc = wp_rpc_call(a->ep, &p, NULL);
	if (rc >= 0) {
		c->req_pending = c->resp_pending = 1;
		a->outstanding++;
		a->last_event_ns = c->t0;
		return 0;
	}
	if (tool_backpressure(rc))
		return 1;
	run_fail(r, "agent %u: cannot start a %s call: %s (%s)", a->idx, wpb_method_name(c->kind),
		 strerror(-rc), tool_errno_name(rc));
	rec_put(r, c);
	return -1;
}

/* 0 all sent, 1 still blocked, -1 failed. */
static int agent_flush(struct agent *a)
{
	while (a->unsent_head) {
		struct rec *c = a->unsent_head;
		struct rec *next = c->next;
		int rc;

		c->next = NULL;
		rc = rec_send(a, c);
		if (rc > 0)
			return 1;
		a->unsent_head = next;
		if (!next)
			a->unsent_tail = NULL;
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void issue_simple(struct agent *a, uint32_t kind, const void *req, uint32_t req_len,
			 uint64_t expect, uint32_t expect_chunks)
{
	struct rec *c = rec_get(a->r, a, kind);

	if (!c)
		return;
	c->req = req;
	c->req_len = req_len;
	c->expect = expect;
	c->expect_chunks = expect_chunks;
	agent_queue(a, c);
}

static void issue_tool(struct agent *a, uint32_t resp, int will_retry)
{
	struct run *r = a->r;
	struct rec *c = rec_get(r, a, WPB_TOOL);

	if (!c)
		return;
	/* The record's own buffer: only the header changes, the rest stays filled. */
	wpb_bytes_req_put(c->buf, &(struct wpb_bytes_req){ resp, r->w->tool_service_us });
	c->req = c->buf;
	c->req_len = r->tool_req_len;
	c->expect = resp;
	c->will_retry = will_retry;
	agent_queue(a, c);
}

static void start_step(struct agent *a)
{
	struct run *r = a->r;
	const struct wl *w = r->w;

	a->step_t0 = wp_now_ns();
	a->ph = PH_MEM;
	for (uint32_t i = 0; i < w->mem_lookups && !r->failed; i++)
		issue_simple(a, WPB_MEM, r->mem_req, WPB_MEM_HDR, w->mem_bytes, 0);
	if (w->bulk_bytes && !r->failed)
		issue_simple(a, WPB_MEM, r->bulk_req, WPB_MEM_HDR, w->bulk_bytes, 0);
}

static void step_done(struct agent *a)
{
	struct run *r = a->r;

	if (r->measuring)
		wp_hist_add(&r->res->step, wp_now_ns() - a->step_t0);
	r->steps++;
	if (r->stopping) {
		a->ph = PH_IDLE;
		r->nidle++;
		return;
	}
	start_step(a);
}

/*
 * Move the agent's step along as far as it can go without waiting: resend
 * what back-pressure held, and when a phase has no call left in flight, start
 * the next one. Runs from callbacks (the library allows queuing work there)
 * and from the run loop for stalled agents.
 */
static void agent_advance(struct agent *a)
{
	struct run *r = a->r;
	const struct wl *w = r->w;
	int rc;

	for (;;) {
		if (r->failed)
			return;
		if (a->unsent_head) {
			rc = agent_flush(a);
			if (rc > 0)
				agent_stall(a);
			if (rc)
				return;
		}
		if (a->outstanding)
			return;
		switch (a->ph) {
		case PH_IDLE:
			return;
		case PH_MEM:
			a->ph = PH_MODEL;
			/* model_req_bytes = 0 means no model call (the workload format). */
			if (r->model_req_len)
				issue_simple(a, WPB_MODEL, r->model_req, r->model_req_len,
					     (uint64_t)w->tokens * w->token_bytes,
					     wpb_model_chunks(w->tokens, w->token_batch));
			break;
		case PH_MODEL:
			a->ph = PH_TOOL;
			for (uint32_t i = 0; i < w->fanout && !r->failed; i++) {
				uint32_t size = wl_tool_resp_size(w, rng_unit(&a->rng));
				int retry = w->retry_pct &&
					    rng_unit(&a->rng) * 100.0 < (double)w->retry_pct;

				issue_tool(a, size, retry);
			}
			break;
		case PH_TOOL:
			a->ph = PH_TEL;
			break;
		case PH_TEL:
			if (!r->tel_len) {
				step_done(a);
				break;
			}
			/* The step ends when the telemetry send has completed. */
			rc = wp_ep_send_msg(a->ep, WPB_TELEMETRY, r->tel_buf, r->tel_len, tel_done,
					    a);
			if (tool_backpressure(rc)) {
				agent_stall(a);
				return;
			}
			if (rc < 0) {
				run_fail(r, "agent %u: cannot send telemetry: %s", a->idx,
					 strerror(-rc));
				return;
			}
			a->outstanding++;
			a->last_event_ns = wp_now_ns();
			r->telemetry++;
			a->ph = PH_TEL_WAIT;
			break;
		case PH_TEL_WAIT:
			step_done(a);
			break;
		}
	}
}

static void tel_done(void *arg, int status)
{
	struct agent *a = arg;
	struct run *r = a->r;

	a->outstanding--;
	a->last_event_ns = wp_now_ns();
	if (status != 0) {
		if (!r->teardown)
			run_fail(r, "agent %u: telemetry send failed: %s (%s)", a->idx,
				 strerror(-status), tool_errno_name(status));
		return;
	}
	agent_advance(a);
}

static void rec_on_done(void *arg, int status)
{
	struct rec *c = arg;
	struct agent *a = c->a;
	struct run *r = a->r;
	uint64_t now = wp_now_ns();
	char sb[160];

	c->resp_pending = 0;
	a->outstanding--;
	a->last_event_ns = now;
	if (status != 0) {
		/* Tearing down fails what is left in flight; that is not an error. */
		if (!r->teardown)
			run_fail(r, "agent %u: %s call failed: %s", a->idx,
				 wpb_method_name(c->kind), tool_status_str(status, sb, sizeof(sb)));
		goto out;
	}
	if (c->got != c->expect) {
		run_fail(r, "agent %u: %s reply of %" PRIu64 " bytes, expected %" PRIu64, a->idx,
			 wpb_method_name(c->kind), c->got, c->expect);
		goto out;
	}
	switch (c->kind) {
	case WPB_MODEL:
		if (c->chunks != c->expect_chunks) {
			run_fail(r, "agent %u: model stream of %u chunks, expected %u", a->idx,
				 c->chunks, c->expect_chunks);
			goto out;
		}
		r->tokens += r->w->tokens;
		break;
	case WPB_TOOL:
		r->tool_calls++;
		if (r->measuring)
			wp_hist_add(&r->res->tool_rtt, now - c->t0);
		if (c->will_retry) {
			r->retries++;
			issue_tool(a, (uint32_t)c->expect, 0);
		}
		break;
	}
out:
	if (!c->req_pending)
		rec_put(r, c);
	/* Never from the teardown: the endpoints are going away under us. */
	if (status == 0)
		agent_advance(a);
}

static void agent_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct agent *a = arg;
	struct run *r = a->r;

	if (ev == WP_EP_CONNECTED) {
		if (!a->connected) {
			a->connected = 1;
			r->nconnected++;
		}
	} else if (ev == WP_EP_CLOSED && !r->teardown) {
		if (err)
			run_fail(r, "agent %u: connection closed: %s (%s)", a->idx, strerror(-err),
				 tool_errno_name(err));
		else
			run_fail(r, "agent %u: the server closed the connection", a->idx);
	}
}

static void agent_on_msg(void *arg, struct wp_ep *ep, struct wp_msg *msg)
{
}

static void stats_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct run *r = arg;

	if (ev == WP_EP_CONNECTED)
		r->stats_connected = 1;
	else if (ev == WP_EP_CLOSED && !r->teardown)
		run_fail(r, "stats connection closed: %s", err ? strerror(-err) : "by the server");
}

static void run_resume_stalled(struct run *r)
{
	for (uint32_t i = 0; i < r->nagents && r->nstalled && !r->failed; i++) {
		struct agent *a = &r->agents[i];

		if (!a->stalled)
			continue;
		a->stalled = 0;
		r->nstalled--;
		agent_advance(a);
	}
}

static const char *phase_name(int ph)
{
	static const char *const names[] = { "memory",    "model",     "tool",
					     "telemetry", "telemetry", "idle" };

	return (unsigned)ph < sizeof(names) / sizeof(names[0]) ? names[ph] : "?";
}

/*
 * A call that gets no answer would otherwise hang the bench silently (or show
 * up only as a low step rate): name the agent, the phase and how long.
 */
static void run_watchdog(struct run *r, uint64_t now)
{
	if (now < r->next_watchdog_ns)
		return;
	r->next_watchdog_ns = now + NS_PER_S / 10;
	for (uint32_t i = 0; i < r->nagents; i++) {
		struct agent *a = &r->agents[i];

		if (!a->outstanding || now - a->last_event_ns < r->stall_ns)
			continue;
		run_fail(
			r,
			"agent %u: %u %s call(s) in flight with no answer for %.1f s; the path lost a completion or a frame",
			a->idx, a->outstanding, phase_name(a->ph),
			(double)(now - a->last_event_ns) / 1e9);
		return;
	}
}

/* One round of the loop: wait at most until `until_ns` (and the cap). */
static void run_step(struct run *r, uint64_t until_ns)
{
	uint64_t now = wp_now_ns();
	int64_t timeout = 0;
	int rc;

	r->round_ns = now;
	if (!r->cfg->busy_poll && !r->nstalled && until_ns > now) {
		timeout = (int64_t)((until_ns - now + 999) / 1000);
		if (timeout > BENCH_WAIT_CAP_US)
			timeout = BENCH_WAIT_CAP_US;
	}
	rc = wp_ctx_progress(r->ctx, timeout);
	if (rc < 0 && rc != -EINTR)
		run_fail(r, "the context failed: %s (%s)", strerror(-rc), tool_errno_name(rc));
	if (r->nstalled)
		run_resume_stalled(r);
	run_watchdog(r, wp_now_ns());
}

static void progress_line(struct run *r, const char *label, uint64_t t0, uint64_t steps0,
			  double total_s)
{
	uint64_t now = wp_now_ns();
	double el = (double)(now - t0) / 1e9;

	if (!r->show_progress || now < r->next_progress_ns)
		return;
	r->next_progress_ns = now + (r->tty ? NS_PER_S / 4 : NS_PER_S);
	fprintf(stderr, "%s%-6s %-7s %5.1f/%.1f s %9" PRIu64 " steps %9.0f steps/s%s",
		r->tty ? "\r" : "", r->res->path, label, el, total_s, r->steps - steps0,
		el > 0 ? (double)(r->steps - steps0) / el : 0.0, r->tty ? "\033[K" : "\n");
}

/* Drive the agents for `secs` seconds (or until a failure or a signal). */
static void run_for(struct run *r, double secs, const char *label)
{
	uint64_t t0 = wp_now_ns(), steps0 = r->steps;
	uint64_t end = t0 + (uint64_t)(secs * 1e9);

	r->next_progress_ns = t0 + (r->tty ? NS_PER_S / 4 : NS_PER_S);
	while (!r->failed && !bench_interrupted && wp_now_ns() < end) {
		progress_line(r, label, t0, steps0, secs);
		run_step(r, end);
	}
	if (bench_interrupted)
		run_fail(r, "interrupted");
}

/* Fetch the server's meter snapshot with the stats call, agents running meanwhile. */
static int run_server_stats(struct run *r, struct wp_meter_snap *out)
{
	uint64_t deadline = wp_now_ns() + BENCH_STATS_TIMEOUT_NS;
	char err[256];
	int rc;

	rc = bench_stats_call(r->stats_ep, &r->stats);
	if (rc < 0) {
		run_fail(r, "cannot call the server's stats: %s", strerror(-rc));
		return -1;
	}
	while (!r->stats.done && !r->failed && !bench_interrupted) {
		if (wp_now_ns() > deadline) {
			run_fail(r, "the server's stats call got no answer in %llu s",
				 (unsigned long long)(BENCH_STATS_TIMEOUT_NS / NS_PER_S));
			return -1;
		}
		run_step(r, deadline);
	}
	if (r->failed || bench_interrupted) {
		run_fail(r, "interrupted");
		return -1;
	}
	if (bench_stats_result(&r->stats, out, err, sizeof(err)) < 0) {
		run_fail(r, "%s", err);
		return -1;
	}
	return 0;
}

/* The window edge: the server's snapshot, then ours at once. */
static int run_snapshot(struct run *r, struct wp_meter_snap *server, struct wp_meter_snap *local,
			uint64_t *steps)
{
	if (run_server_stats(r, server) < 0)
		return -1;
	wp_meter_snapshot(local);
	*steps = r->steps;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One path                                                            */
/* ------------------------------------------------------------------ */

static int run_setup_buffers(struct run *r)
{
	const struct wl *w = r->w;
	uint32_t model_len = w->model_req_bytes;

	/* No model call when model_req_bytes is 0; else at least the 20-byte header. */
	if (model_len && model_len < WPB_MODEL_HDR)
		model_len = WPB_MODEL_HDR;

	r->tool_req_len = w->tool_req_bytes > WPB_TOOL_HDR ? w->tool_req_bytes : WPB_TOOL_HDR;
	r->model_req_len = model_len;
	r->tel_len = 8 * w->telemetry_counters + 16 * 8 * w->telemetry_hists;
	r->mem_req = calloc(1, WPB_MEM_HDR);
	r->bulk_req = calloc(1, WPB_MEM_HDR);
	r->model_req = malloc(model_len ? model_len : 1);
	r->tel_buf = malloc(r->tel_len ? r->tel_len : 1);
	if (!r->mem_req || !r->bulk_req || !r->model_req || !r->tel_buf)
		return -ENOMEM;
	wpb_bytes_req_put(r->mem_req, &(struct wpb_bytes_req){ w->mem_bytes, w->mem_service_us });
	/* Bulk context moves at memory-lookup service time. */
	wpb_bytes_req_put(r->bulk_req,
			  &(struct wpb_bytes_req){ (uint32_t)w->bulk_bytes, w->mem_service_us });
	for (uint32_t i = 0; i < model_len; i++)
		r->model_req[i] = wpb_pattern(i);
	if (model_len)
		wpb_model_req_put(r->model_req, &(struct wpb_model_req){
							.tokens = w->tokens,
							.token_bytes = w->token_bytes,
							.token_batch = w->token_batch,
							.service_us = w->model_service_us,
							.interval_us = w->token_interval_us,
						});
	for (uint32_t i = 0; i < r->tel_len; i++)
		r->tel_buf[i] = wpb_pattern(i);
	return 0;
}

static void run_free(struct run *r)
{
	while (r->all_recs) {
		struct rec *c = r->all_recs;

		r->all_recs = c->all_next;
		free(c);
	}
	free(r->agents);
	free(r->mem_req);
	free(r->bulk_req);
	free(r->model_req);
	free(r->tel_buf);
}

/*
 * How long a call may go unanswered before the run is declared stuck: 3 s on
 * top of the longest answer the workload can ask for (service time plus the
 * paced token stream).
 */
static uint64_t bench_stall_ns(const struct wl *w)
{
	uint64_t chunks = w->token_batch ? (w->tokens + w->token_batch - 1) / w->token_batch : 0;
	uint64_t model_us = w->model_service_us + chunks * w->token_interval_us;
	uint64_t worst_us = model_us;

	if (w->tool_service_us > worst_us)
		worst_us = w->tool_service_us;
	if (w->mem_service_us > worst_us)
		worst_us = w->mem_service_us;
	return 3 * NS_PER_S + 2 * worst_us * 1000;
}

static void run_path(struct bench_cfg *cfg, struct path_res *res)
{
	const struct wp_probe_result *pr = bench_path_probe(res->path);
	struct wp_meter_snap la, lb, sa, sb;
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs;
	struct bench_server sv;
	struct run r;
	char uri[320];
	uint64_t steps_a, steps_b, deadline;
	int rc;

	memset(&sv, 0, sizeof(sv));
	memset(&r, 0, sizeof(r));
	wp_hist_init(&res->tool_rtt);
	wp_hist_init(&res->step);
	if (!pr) {
		res->state = RES_UNAVAILABLE;
		snprintf(res->msg, sizeof(res->msg), "this build of wirepath has no '%s' path",
			 res->path);
		return;
	}
	if (!pr->ok) {
		res->state = RES_UNAVAILABLE;
		snprintf(res->msg, sizeof(res->msg), "%s (%s): %s", tool_errno_name(pr->err),
			 pr->err ? strerror(pr->err) : "no errno", pr->detail);
		return;
	}

	r.cfg = cfg;
	r.w = &cfg->w;
	r.res = res;
	r.nagents = cfg->agents;
	r.show_progress = !cfg->quiet && cfg->warmup_s + cfg->duration_s > 2.0;
	r.stall_ns = bench_stall_ns(&cfg->w);
	r.tty = isatty(2);
	res->state = RES_ERROR;
	r.agents = calloc(r.nagents, sizeof(*r.agents));
	if (!r.agents || run_setup_buffers(&r) < 0) {
		snprintf(res->msg, sizeof(res->msg), "out of memory");
		goto out_free;
	}

	if (cfg->peer[0]) {
		snprintf(uri, sizeof(uri), "%s://%s", res->path, cfg->peer);
		snprintf(res->explain_server, sizeof(res->explain_server),
			 "peer %s (not started by this bench)", uri);
	} else {
		if (bench_server_start(cfg, res->path, &sv, res->msg, sizeof(res->msg)) < 0)
			goto out_free;
		bench_uri(uri, sizeof(uri), res->path, sv.port);
		bench_file_line(sv.out, "explain: ", res->explain_server,
				sizeof(res->explain_server));
		if (!cfg->quiet)
			/* The URI, not a port: shm is addressed by an abstract
			 * unix socket name and has no port. */
			fprintf(stderr, "wirepath bench: %s: server pid %d on %s: %s\n", res->path,
				(int)sv.pid, uri, res->explain_server);
	}

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.sqpoll = cfg->sqpoll;
	o.busy_poll = cfg->busy_poll;
	o.ucx_trust_rma = cfg->ucx_trust_rma;
	if (cfg->zc_threshold)
		o.zc_threshold = cfg->zc_threshold;
	o.log = tool_log;
	o.log_level = WP_LOG_WARN;
	rc = wp_ctx_create(&o, &r.ctx);
	if (rc < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot create a context: %s", strerror(-rc));
		goto out_server;
	}

	/* Connect the stats endpoint and every agent, then wait for all of them. */
	memset(&cbs, 0, sizeof(cbs));
	cbs.event = stats_on_event;
	cbs.msg = agent_on_msg;
	cbs.arg = &r;
	rc = wp_connect(r.ctx, uri, &cbs, &r.stats_ep);
	if (rc < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot connect to %s: %s (%s)", uri,
			 strerror(-rc), tool_errno_name(rc));
		goto out_ctx;
	}
	if (cfg->tenant.on)
		wp_ep_set_tenant_key_flags(
			r.stats_ep, cfg->tenant.id, cfg->tenant.key,
			cfg->auth == BENCH_AUTH_V2_CONF ? WP_TENANT_KEY_CONFIDENTIAL : 0);
	for (uint32_t i = 0; i < r.nagents; i++) {
		struct agent *a = &r.agents[i];

		a->r = &r;
		a->idx = i;
		a->ph = PH_IDLE;
		a->rng = seed_mix(seed_mix(cfg->seed) + i);
		cbs.event = agent_on_event;
		cbs.arg = a;
		rc = wp_connect(r.ctx, uri, &cbs, &a->ep);
		if (rc < 0) {
			snprintf(res->msg, sizeof(res->msg), "agent %u cannot connect to %s: %s", i,
				 uri, strerror(-rc));
			goto out_ctx;
		}
		if (cfg->tenant.on)
			wp_ep_set_tenant_key_flags(
				a->ep, cfg->tenant.id, cfg->tenant.key,
				cfg->auth == BENCH_AUTH_V2_CONF ? WP_TENANT_KEY_CONFIDENTIAL : 0);
	}
	deadline = wp_now_ns() + BENCH_CONNECT_TIMEOUT_NS;
	while (!r.failed && !bench_interrupted &&
	       (r.nconnected < r.nagents || !r.stats_connected)) {
		if (wp_now_ns() > deadline) {
			run_fail(&r, "%u of %u connections to %s up after %llu s",
				 r.nconnected + r.stats_connected, r.nagents + 1, uri,
				 (unsigned long long)(BENCH_CONNECT_TIMEOUT_NS / NS_PER_S));
			break;
		}
		run_step(&r, deadline);
	}
	if (bench_interrupted)
		run_fail(&r, "interrupted");
	if (r.failed)
		goto out_fail;
	snprintf(res->explain_client, sizeof(res->explain_client), "%s", wp_ctx_explain(r.ctx));
	if (!wp_ctx_path(r.ctx) || strcmp(wp_ctx_path(r.ctx), res->path)) {
		run_fail(&r, "asked for path %s, the context runs %s", res->path,
			 wp_ctx_path(r.ctx) ? wp_ctx_path(r.ctx) : "nothing");
		goto out_fail;
	}
	if (!cfg->quiet)
		fprintf(stderr, "wirepath bench: %s: client: %s\n", res->path, res->explain_client);

	/* Run: warm-up, window start, measure, window end. */
	for (uint32_t i = 0; i < r.nagents; i++) {
		start_step(&r.agents[i]);
		agent_advance(&r.agents[i]);
	}
	if (cfg->warmup_s > 0)
		run_for(&r, cfg->warmup_s, "warmup");
	if (r.failed || run_snapshot(&r, &sa, &la, &steps_a) < 0)
		goto out_fail;
	r.measuring = 1;
	r.tool_calls = r.retries = r.telemetry = r.tokens = 0;
	run_for(&r, cfg->duration_s, "measure");
	if (r.failed || run_snapshot(&r, &sb, &lb, &steps_b) < 0)
		goto out_fail;
	r.measuring = 0;
	res->tokens = r.tokens;
	res->tool_calls = r.tool_calls;
	res->retries = r.retries;
	res->telemetry = r.telemetry;
	if (r.show_progress && r.tty)
		fprintf(stderr, "\r\033[K");

	/* Let every agent finish its step, so nothing is cut off mid-call. */
	r.stopping = 1;
	for (uint32_t i = 0; i < r.nagents; i++)
		if (r.agents[i].ph == PH_IDLE)
			r.nidle++;
	/* The watchdog bounds this wait: a stuck call fails the run. */
	while (!r.failed && !bench_interrupted && r.nidle < r.nagents)
		run_step(&r, wp_now_ns() + BENCH_WAIT_CAP_US * 1000ull);
	if (bench_interrupted)
		run_fail(&r, "interrupted");

	wp_meter_diff(&la, &lb, &res->cd);
	wp_meter_diff(&sa, &sb, &res->sd);
	res->steps = steps_b - steps_a;
	res->wall_s = (double)res->cd.wall_ns / 1e9;
	if (r.failed)
		goto out_fail;
	if (res->steps == 0) {
		run_fail(
			&r,
			"no agent step completed in the %.1f s window; raise --duration or lower the workload's service times",
			cfg->duration_s);
		goto out_fail;
	}
	bench_res_compute(res, cfg->model_rate);
	res->state = RES_OK;
	res->msg[0] = '\0';
	goto out_ctx;

out_fail:
	if (r.show_progress && r.tty)
		fprintf(stderr, "\r\033[K");
	snprintf(res->msg, sizeof(res->msg), "%s", r.err);
out_ctx:
	/* Anything still in flight fails with -ECONNABORTED: expected now. */
	r.stopping = 1;
	r.teardown = 1;
	wp_ctx_destroy(r.ctx);
out_server:
	bench_server_stop(&sv, cfg->quiet);
out_free:
	run_free(&r);
}

/* Every path in turn, then the report. */
int bench_agentic(struct bench_cfg *cfg)
{
	struct path_res *res;
	int status = 0, nok = 0;

	res = calloc((size_t)cfg->paths.n, sizeof(*res));
	if (!res) {
		fprintf(stderr, "wirepath bench: out of memory\n");
		return 1;
	}
	for (int i = 0; i < cfg->paths.n; i++) {
		snprintf(res[i].path, sizeof(res[i].path), "%s", cfg->paths.name[i]);
		if (bench_interrupted) {
			res[i].state = RES_ERROR;
			snprintf(res[i].msg, sizeof(res[i].msg), "interrupted");
			continue;
		}
		run_path(cfg, &res[i]);
		if (res[i].state == RES_OK) {
			nok++;
			if (!cfg->quiet)
				fprintf(stderr, "wirepath bench: %s: %" PRIu64 " steps in %.2f s\n",
					res[i].path, res[i].steps, res[i].wall_s);
		} else if (res[i].state == RES_ERROR) {
			fprintf(stderr, "wirepath bench: %s failed: %s\n", res[i].path, res[i].msg);
			status = 1;
		} else if (!cfg->quiet) {
			fprintf(stderr, "wirepath bench: %s unavailable: %s\n", res[i].path,
				res[i].msg);
		}
	}
	if (bench_interrupted) {
		fprintf(stderr, "wirepath bench: interrupted; no results written\n");
		free(res);
		return 130;
	}

	if (bench_report(cfg, res, cfg->paths.n))
		status = 1;
	if (!nok) {
		fprintf(stderr, "wirepath bench: no path could run; see 'wirepath probe'\n");
		status = 1;
	}
	free(res);
	return status;
}
