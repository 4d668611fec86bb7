// SPDX-License-Identifier: MIT
/*
 * `wirepath bench`: agent steps over each data path, and what each step costs
 * this host.
 *
 * For every path named in --paths the bench starts a `wirepath serve` of its
 * own (unless --peer), opens one context on that path (select=require: a path
 * the host lacks is reported as unavailable with the probe's reason, never
 * silently replaced) and drives N agents from this one thread, each on its
 * own endpoint. An agent step is a small state machine (DESIGN.md, "The
 * agentic workload"):
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
 * Finally the crossover: given the model's step rate R (--model-steps-per-s),
 * how many host cores each path needs to keep up, and which path moves the
 * host limit furthest.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stub_proto.h"
#include "tools.h"
#include "util.h"
#include "wirepath/policy.h"
#include "workload.h"

#define BENCH_MAX_PATHS 8
#define NS_PER_S 1000000000ull
#define BENCH_SPAWN_TIMEOUT_NS (10 * NS_PER_S)
#define BENCH_CONNECT_TIMEOUT_NS (5 * NS_PER_S)
#define BENCH_STATS_TIMEOUT_NS (5 * NS_PER_S)
#define BENCH_STOP_TIMEOUT_NS (5 * NS_PER_S)
/* Longest single wait in the run loop: bounds progress-line and signal latency. */
#define BENCH_WAIT_CAP_US 100000
/*
 * The default model step rate: an 8-GPU node decoding an 8B model at about
 * 100k output tokens/s in aggregate, divided by 520 output tokens per agent
 * step (the agentic workload), is about 190 steps/s.
 */
#define BENCH_DEFAULT_MODEL_RATE 200.0
#define BENCH_MODEL_RATE_BASIS                                                      \
	"an 8-GPU node decoding an 8B model at ~100k output tokens/s aggregate / 520 " \
	"tokens per step ~ 190 steps/s"

/* Paths closer than this in steps per core are reported as a tie. */
#define BENCH_TIE 0.05

/* Every path the design names; the ones this build lacks are reported as unavailable. */
static const char *const bench_known_paths[] = { "tcp", "uring", "shm", "xsk", "rdma", "ucx" };
#define BENCH_NKNOWN (sizeof(bench_known_paths) / sizeof(bench_known_paths[0]))

static volatile sig_atomic_t bench_interrupted;

struct bench_cfg {
	char paths[BENCH_MAX_PATHS][16];
	int npaths;
	const char *workload;
	struct wl w;
	double duration_s, warmup_s;
	uint32_t agents;
	char peer[256];     /* HOST:PORT (scheme stripped), or "" to spawn a server */
	const char *json_path;
	const char *svg_path;
	double model_rate;
	int sqpoll, busy_poll;
	int zc_set;
	uint32_t zc_threshold;
	uint64_t seed;
	int quiet;
	int kitchen_cuda;   /* --kitchen cuda: the spawned server's model stub feeds the GPU */
	int signed_frames;  /* --tenant-key: sign every frame as `tenant` */
	uint32_t tenant;
	uint8_t key[16];
	int kern_err;       /* wp_meter_kernel_syscalls_start() result */
	char tmpdir[256];   /* where spawned servers write their port and output */
};

enum res_state { RES_OK, RES_UNAVAILABLE, RES_ERROR };

/* One path's outcome, measured and derived. */
struct path_res {
	char path[16];
	enum res_state state;
	char msg[512];      /* unavailable: the reason; error: what failed */
	char explain_client[512];
	char explain_server[512];
	double wall_s;
	uint64_t steps, tokens, tool_calls, retries, telemetry;
	struct wp_meter_snap cd, sd; /* client and server diffs over the window */
	struct wp_hist tool_rtt;     /* ns, issue to on_done */
	struct wp_hist step;         /* ns, first call issued to telemetry send completed */

	double steps_per_s, cpu_us_per_step, cpu_us_client, cpu_us_server;
	double syscalls_per_step, lib_syscalls_per_step;
	int kernel_counted;
	double ctxsw_per_step, copied_per_step;
	uint64_t zc_sent, zc_copied;
	double host_steps_per_core, cores_needed, headroom;
};

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
	int stalled;         /* back-pressure: resumed from the run loop */
	int ph;
	uint32_t outstanding; /* calls whose on_done has not run yet */
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
	uint64_t expect;      /* reply bytes */
	uint64_t got;
	uint32_t chunks, expect_chunks; /* expect_chunks checked for the model stream */
	uint64_t t0;
	int will_retry;       /* issue once more after it completes */
	int req_pending, resp_pending;
	uint8_t buf[];        /* tool request: header + pattern */
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
	int stopping;  /* agents finish their step, then go idle */
	int teardown;  /* the context is being destroyed: failures are expected */
	int measuring;
	uint64_t steps, tokens, tool_calls, retries, telemetry;

	/* Requests that never change: filled once, shared by every agent. */
	uint8_t *mem_req, *bulk_req, *model_req, *tel_buf;
	uint32_t model_req_len, tel_len, tool_req_len;
	struct rec *free_recs, *all_recs;

	/* The stats call in flight. */
	int stats_done, stats_status;
	uint32_t stats_len;
	struct wp_meter_snap stats_snap;

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

/* A call's final status in words: library errno (< 0) or server status (> 0). */
static const char *status_str(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "%s (%s)", strerror(-status), tool_errno_name(status));
	else
		snprintf(buf, len, "server answered status %d (%s)", status, strerror(status));
	return buf;
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
			run_fail(r, "agent %u: %s call failed: %s", a->idx, wpb_method_name(c->kind),
				 status_str(status, sb, sizeof(sb)));
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

static void stats_on_data(void *arg, struct wp_msg *chunk)
{
	struct run *r = arg;
	uint64_t *dst = (uint64_t *)&r->stats_snap;

	r->stats_len = chunk->len;
	if (chunk->len != WP_METER_FIELDS * sizeof(uint64_t))
		return;
	for (size_t i = 0; i < WP_METER_FIELDS; i++)
		dst[i] = wpb_get64((const uint8_t *)chunk->data + 8 * i);
}

static void stats_on_done(void *arg, int status)
{
	struct run *r = arg;

	r->stats_status = status;
	r->stats_done = 1;
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
	static const char *const names[] = { "memory", "model", "tool", "telemetry", "telemetry",
					     "idle" };

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
		run_fail(r, "agent %u: %u %s call(s) in flight with no answer for %.1f s; the path lost a completion or a frame",
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
	struct wp_call_params p;
	uint64_t deadline = wp_now_ns() + BENCH_STATS_TIMEOUT_NS;
	char sb[160];
	int rc;

	memset(&p, 0, sizeof(p));
	p.method = WP_METHOD_STATS;
	p.req = "";
	p.req_len = 0;
	p.deadline_us = (int64_t)(BENCH_STATS_TIMEOUT_NS / 1000);
	p.on_data = stats_on_data;
	p.on_done = stats_on_done;
	p.arg = r;
	r->stats_done = 0;
	r->stats_status = 0;
	r->stats_len = 0;
	rc = wp_rpc_call(r->stats_ep, &p, NULL);
	if (rc < 0) {
		run_fail(r, "cannot call the server's stats: %s", strerror(-rc));
		return -1;
	}
	while (!r->stats_done && !r->failed && !bench_interrupted) {
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
	if (r->stats_status != 0) {
		run_fail(r, "the server's stats call failed: %s",
			 status_str(r->stats_status, sb, sizeof(sb)));
		return -1;
	}
	if (r->stats_len != WP_METER_FIELDS * sizeof(uint64_t) ||
	    r->stats_snap.version != WP_METER_VERSION) {
		run_fail(r,
			 "the server's stats reply has %u bytes, version %" PRIu64
			 " (expected %zu bytes, version %d): a different wirepath version?",
			 r->stats_len, r->stats_snap.version, WP_METER_FIELDS * sizeof(uint64_t),
			 WP_METER_VERSION);
		return -1;
	}
	*out = r->stats_snap;
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
/* The spawned server                                                  */
/* ------------------------------------------------------------------ */

struct server {
	pid_t pid;
	int port;
	char out[PATH_MAX], err[PATH_MAX], port_file[PATH_MAX];
};

/* First line of `path` that starts with `prefix` (prefix stripped); "" if none. */
static int file_line(const char *path, const char *prefix, char *out, size_t len)
{
	char line[1024];
	size_t pl = strlen(prefix);
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, prefix, pl))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line + pl);
		fclose(f);
		return 0;
	}
	fclose(f);
	return -ENOENT;
}

static int server_reap(struct server *sv, uint64_t timeout_ns, int *status)
{
	uint64_t end = wp_now_ns() + timeout_ns;

	for (;;) {
		pid_t p = waitpid(sv->pid, status, WNOHANG);

		if (p == sv->pid || (p < 0 && errno == ECHILD)) {
			sv->pid = 0;
			return 0;
		}
		if (wp_now_ns() > end)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

/* SIGTERM by PID and wait; SIGKILL if it does not go. Returns its exit status. */
static int server_stop(struct server *sv, int quiet)
{
	int status = 0;

	if (sv->pid <= 0)
		return 0;
	kill(sv->pid, SIGTERM);
	if (server_reap(sv, BENCH_STOP_TIMEOUT_NS, &status) < 0) {
		fprintf(stderr, "wirepath bench: warning: server %d ignored SIGTERM for %llu s; killing it\n",
			(int)sv->pid, (unsigned long long)(BENCH_STOP_TIMEOUT_NS / NS_PER_S));
		kill(sv->pid, SIGKILL);
		waitpid(sv->pid, &status, 0);
		sv->pid = 0;
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[256];

		file_line(sv->err, "", line, sizeof(line));
		if (WIFSIGNALED(status))
			fprintf(stderr, "wirepath bench: warning: the server died of signal %d%s%s\n",
				WTERMSIG(status), line[0] ? ": " : "", line);
		else
			fprintf(stderr, "wirepath bench: warning: the server exited with status %d%s%s\n",
				WEXITSTATUS(status), line[0] ? ": " : "", line);
		return -1;
	}
	return 0;
}

/*
 * Start `wirepath serve` on PATH://127.0.0.1:0 (this same executable) and wait
 * for its port. Its stdout and stderr go to files in the temp dir: the
 * explain line is read from the first, the reason it failed from the second.
 */
/* Where a spawned server listens: a free port on loopback, or for shm a free
 * abstract unix name (its five hex digits stand in for the port). */
static void bench_listen_uri(char *buf, size_t len, const char *path)
{
	if (!strcmp(path, "shm"))
		snprintf(buf, len, "shm://@");
	else
		snprintf(buf, len, "%.15s://127.0.0.1:0", path);
}

static void bench_uri(char *buf, size_t len, const char *path, int port)
{
	if (!strcmp(path, "shm"))
		snprintf(buf, len, "shm://@%05x", port);
	else
		snprintf(buf, len, "%.15s://127.0.0.1:%d", path, port);
}

static int server_start(const struct bench_cfg *cfg, const char *path, struct server *sv,
			char *err, size_t errlen)
{
	char listen[64], zc[32], line[512], exe[PATH_MAX];
	char *argv[16];
	ssize_t el;
	int n = 0, status;
	pid_t parent = getpid();
	uint64_t deadline;

	memset(sv, 0, sizeof(*sv));
	bench_listen_uri(listen, sizeof(listen), path);
	snprintf(sv->port_file, sizeof(sv->port_file), "%s/%s.port", cfg->tmpdir, path);
	snprintf(sv->out, sizeof(sv->out), "%s/%s.out", cfg->tmpdir, path);
	snprintf(sv->err, sizeof(sv->err), "%s/%s.err", cfg->tmpdir, path);
	unlink(sv->port_file);

	argv[n++] = "wirepath";
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--port-file";
	argv[n++] = sv->port_file;
	argv[n++] = "--select";
	argv[n++] = "require";
	if (cfg->sqpoll)
		argv[n++] = "--sqpoll";
	if (cfg->busy_poll)
		argv[n++] = "--busy-poll";
	if (cfg->zc_set) {
		if (cfg->zc_threshold == UINT32_MAX)
			snprintf(zc, sizeof(zc), "never");
		else
			snprintf(zc, sizeof(zc), "%u", cfg->zc_threshold);
		argv[n++] = "--zc-threshold";
		argv[n++] = zc;
	}
	if (cfg->kitchen_cuda) {
		argv[n++] = "--kitchen";
		argv[n++] = "cuda";
	}
	argv[n] = NULL;

	/* The real path rather than /proc/self/exe, so ps and top show "wirepath". */
	el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (el > 0)
		exe[el] = '\0';
	else
		snprintf(exe, sizeof(exe), "/proc/self/exe");

	fflush(stdout);
	fflush(stderr);
	sv->pid = fork();
	if (sv->pid < 0) {
		snprintf(err, errlen, "cannot fork the server: %s", strerror(errno));
		sv->pid = 0;
		return -1;
	}
	if (sv->pid == 0) {
		int fo, fe;

		/* If the bench dies, so does its server. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		fo = open(sv->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		fe = open(sv->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(126);
		close(fo);
		close(fe);
		execv(exe, argv);
		dprintf(2, "cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}

	deadline = wp_now_ns() + BENCH_SPAWN_TIMEOUT_NS;
	for (;;) {
		FILE *f = fopen(sv->port_file, "r");

		if (f) {
			/* shm's "port" is the 5-hex-digit abstract socket name. */
			int ok = fscanf(f, "%d", &sv->port) == 1 && sv->port > 0 &&
				 sv->port < (strcmp(path, "shm") ? 65536 : 0x100000);

			fclose(f);
			if (ok)
				break;
		}
		if (waitpid(sv->pid, &status, WNOHANG) == sv->pid) {
			sv->pid = 0;
			file_line(sv->err, "", line, sizeof(line));
			snprintf(err, errlen, "the server did not start (%s %d)%s%.300s",
				 WIFEXITED(status) ? "exit status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 line[0] ? ": " : "", line);
			return -1;
		}
		if (wp_now_ns() > deadline || bench_interrupted) {
			snprintf(err, errlen, bench_interrupted ? "interrupted" :
				 "the server did not report its port within 10 s");
			server_stop(sv, 1);
			return -1;
		}
		usleep(2000);
	}
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

/* Derive the per-step figures from the window's diffs. */
static void res_compute(struct path_res *res, double model_rate)
{
	const struct wp_meter_snap *c = &res->cd, *s = &res->sd;
	double st = (double)res->steps;

	res->steps_per_s = st / res->wall_s;
	res->cpu_us_client = (double)(c->cpu_user_ns + c->cpu_sys_ns) / 1e3 / st;
	res->cpu_us_server = (double)(s->cpu_user_ns + s->cpu_sys_ns) / 1e3 / st;
	res->cpu_us_per_step = res->cpu_us_client + res->cpu_us_server;
	res->kernel_counted = c->kernel_syscalls_ok && s->kernel_syscalls_ok;
	res->lib_syscalls_per_step = (double)(wp_meter_syscalls(c) + wp_meter_syscalls(s)) / st;
	res->syscalls_per_step = res->kernel_counted ?
		(double)(c->kernel_syscalls + s->kernel_syscalls) / st : res->lib_syscalls_per_step;
	res->ctxsw_per_step = (double)(c->ctx_vol + c->ctx_invol + s->ctx_vol + s->ctx_invol) / st;
	res->copied_per_step = (double)(c->bytes_copied + s->bytes_copied) / st;
	res->zc_sent = c->zc_sent + s->zc_sent;
	res->zc_copied = c->zc_copied + s->zc_copied;
	res->host_steps_per_core = res->cpu_us_per_step > 0 ? 1e6 / res->cpu_us_per_step : INFINITY;
	res->cores_needed = model_rate * res->cpu_us_per_step / 1e6;
	res->headroom = res->host_steps_per_core / model_rate;
}

/*
 * The probe that says whether a path can run: its own name ("tcp", "uring"),
 * else "path.<name>" (paths this build lacks), with xsk probed as af_xdp.
 */
static const struct wp_probe_result *path_probe(const char *path)
{
	const struct wp_probe_result *pr = wp_probe_get(path);
	char name[64];

	if (pr)
		return pr;
	snprintf(name, sizeof(name), "path.%s", !strcmp(path, "xsk") ? "af_xdp" : path);
	return wp_probe_get(name);
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
	const struct wp_probe_result *pr = path_probe(res->path);
	struct wp_meter_snap la, lb, sa, sb;
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs;
	struct server sv;
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
		if (server_start(cfg, res->path, &sv, res->msg, sizeof(res->msg)) < 0)
			goto out_free;
		bench_uri(uri, sizeof(uri), res->path, sv.port);
		file_line(sv.out, "explain: ", res->explain_server, sizeof(res->explain_server));
		if (!cfg->quiet)
			/* The URI, not a port: shm is addressed by an abstract
			 * unix socket name and has no port. */
			fprintf(stderr, "wirepath bench: %s: server pid %d on %s: %s\n",
				res->path, (int)sv.pid, uri, res->explain_server);
	}

	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.sqpoll = cfg->sqpoll;
	o.busy_poll = cfg->busy_poll;
	if (cfg->zc_set)
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
	if (cfg->signed_frames)
		wp_ep_set_tenant_key(r.stats_ep, cfg->tenant, cfg->key);
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
		if (cfg->signed_frames)
			wp_ep_set_tenant_key(a->ep, cfg->tenant, cfg->key);
	}
	deadline = wp_now_ns() + BENCH_CONNECT_TIMEOUT_NS;
	while (!r.failed && !bench_interrupted &&
	       (r.nconnected < r.nagents || !r.stats_connected)) {
		if (wp_now_ns() > deadline) {
			run_fail(&r, "%u of %u connections to %s up after %llu s", r.nconnected +
				 r.stats_connected, r.nagents + 1, uri,
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
		run_fail(&r, "no agent step completed in the %.1f s window; raise --duration or lower the workload's service times",
			 cfg->duration_s);
		goto out_fail;
	}
	res_compute(res, cfg->model_rate);
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
	server_stop(&sv, cfg->quiet);
out_free:
	run_free(&r);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* Tool-call latency quantile in us; NaN (null in JSON, "-" in tables) without tool calls. */
static double tool_q(const struct path_res *p, double q)
{
	return p->tool_rtt.count ? us(wp_hist_quantile(&p->tool_rtt, q)) : NAN;
}

/* "%.1f" or "-" for NaN, for the table and the .dat file. */
static const char *fmt_num(char *buf, size_t len, double v, int prec)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*f", prec, v);
	return buf;
}

static void json_meter(struct sbuf *b, const struct wp_meter_snap *s)
{
	char small[4096];
	int n = wp_meter_json(s, small, sizeof(small));

	if (n < 0) {
		sb_printf(b, "null");
	} else if ((size_t)n < sizeof(small)) {
		sb_printf(b, "%s", small);
	} else {
		char *big = malloc((size_t)n + 1);

		if (big && wp_meter_json(s, big, (size_t)n + 1) == n)
			sb_printf(b, "%s", big);
		else
			sb_printf(b, "null");
		free(big);
	}
}

static void json_result(struct sbuf *b, const struct path_res *res)
{
	const struct wp_meter_snap *c = &res->cd, *s = &res->sd;
	double st = (double)res->steps;

	sb_printf(b, "{\"path\":");
	sb_json_str(b, res->path);
	if (res->state == RES_UNAVAILABLE) {
		sb_printf(b, ",\"available\":false,\"ok\":false,\"reason\":");
		sb_json_str(b, res->msg);
		sb_printf(b, "}");
		return;
	}
	if (res->state == RES_ERROR) {
		sb_printf(b, ",\"available\":true,\"ok\":false,\"error\":");
		sb_json_str(b, res->msg);
		sb_printf(b, ",\"explain\":{\"client\":");
		sb_json_str(b, res->explain_client[0] ? res->explain_client : NULL);
		sb_printf(b, ",\"server\":");
		sb_json_str(b, res->explain_server[0] ? res->explain_server : NULL);
		sb_printf(b, "}}");
		return;
	}
	sb_printf(b, ",\"available\":true,\"ok\":true,\"steps\":%" PRIu64 ",\"wall_s\":", res->steps);
	sb_json_num(b, res->wall_s);
	sb_printf(b, ",\"steps_per_s\":");
	sb_json_num(b, res->steps_per_s);
	sb_printf(b, ",\"cpu_us_per_step\":");
	sb_json_num(b, res->cpu_us_per_step);
	sb_printf(b, ",\"cpu_us_per_step_by_side\":{\"client\":");
	sb_json_num(b, res->cpu_us_client);
	sb_printf(b, ",\"server\":");
	sb_json_num(b, res->cpu_us_server);
	sb_printf(b, "},\"syscalls_per_step\":");
	sb_json_num(b, res->syscalls_per_step);
	sb_printf(b, ",\"syscalls_source\":\"%s\",\"lib_syscalls_per_step\":",
		  res->kernel_counted ? "kernel" : "library");
	sb_json_num(b, res->lib_syscalls_per_step);
	sb_printf(b, ",\"kernel_syscalls_per_step\":{\"client\":");
	if (c->kernel_syscalls_ok)
		sb_json_num(b, (double)c->kernel_syscalls / st);
	else
		sb_printf(b, "null");
	sb_printf(b, ",\"server\":");
	if (s->kernel_syscalls_ok)
		sb_json_num(b, (double)s->kernel_syscalls / st);
	else
		sb_printf(b, "null");
	sb_printf(b, "},\"lib_syscalls_by_kind_per_step\":{");
	for (int k = 0; k < WP_SYS__COUNT; k++) {
		sb_printf(b, "%s", k ? "," : "");
		sb_json_str(b, wp_sys_kind_name(k));
		sb_printf(b, ":");
		sb_json_num(b, (double)(c->syscalls[k] + s->syscalls[k]) / st);
	}
	sb_printf(b, "},\"ctx_switches_per_step\":");
	sb_json_num(b, res->ctxsw_per_step);
	sb_printf(b, ",\"copied_bytes_per_step\":");
	sb_json_num(b, res->copied_per_step);
	sb_printf(b, ",\"wire_bytes_per_step\":{\"tx\":");
	sb_json_num(b, (double)c->bytes_tx / st);
	sb_printf(b, ",\"rx\":");
	sb_json_num(b, (double)c->bytes_rx / st);
	sb_printf(b, "},\"frames_per_step\":{\"tx\":");
	sb_json_num(b, (double)c->msgs_tx / st);
	sb_printf(b, ",\"rx\":");
	sb_json_num(b, (double)c->msgs_rx / st);
	sb_printf(b, "},\"tokens_per_step\":");
	sb_json_num(b, (double)res->tokens / st);
	sb_printf(b, ",\"tool_calls_per_step\":");
	sb_json_num(b, (double)res->tool_calls / st);
	sb_printf(b, ",\"retries\":%" PRIu64 ",\"telemetry_msgs\":%" PRIu64 ",\"tool_rtt_us\":{\"p50\":",
		  res->retries, res->telemetry);
	sb_json_num(b, tool_q(res, 0.5));
	sb_printf(b, ",\"p90\":");
	sb_json_num(b, tool_q(res, 0.9));
	sb_printf(b, ",\"p99\":");
	sb_json_num(b, tool_q(res, 0.99));
	sb_printf(b, ",\"p999\":");
	sb_json_num(b, tool_q(res, 0.999));
	sb_printf(b, ",\"mean\":");
	sb_json_num(b, res->tool_rtt.count ?
		    us(res->tool_rtt.sum) / (double)res->tool_rtt.count : NAN);
	sb_printf(b, ",\"max\":");
	sb_json_num(b, res->tool_rtt.count ? us(res->tool_rtt.max) : NAN);
	sb_printf(b, ",\"count\":%" PRIu64 "},\"step_us\":{\"p50\":", res->tool_rtt.count);
	sb_json_num(b, us(wp_hist_quantile(&res->step, 0.5)));
	sb_printf(b, ",\"p99\":");
	sb_json_num(b, us(wp_hist_quantile(&res->step, 0.99)));
	sb_printf(b, ",\"max\":");
	sb_json_num(b, us(res->step.max));
	sb_printf(b, "},\"zc\":{\"sent\":%" PRIu64 ",\"copied\":%" PRIu64 "},\"explain\":{\"client\":",
		  res->zc_sent, res->zc_copied);
	sb_json_str(b, res->explain_client);
	sb_printf(b, ",\"server\":");
	sb_json_str(b, res->explain_server);
	sb_printf(b, "},\"client\":");
	json_meter(b, c);
	sb_printf(b, ",\"server\":");
	json_meter(b, s);
	sb_printf(b, "}");
}

/* The ok path whose one core runs the most steps; NULL if none ran. */
static const struct path_res *best_path(const struct path_res *res, int n)
{
	const struct path_res *best = NULL;

	for (int i = 0; i < n; i++)
		if (res[i].state == RES_OK &&
		    (!best || res[i].host_steps_per_core > best->host_steps_per_core))
			best = &res[i];
	return best;
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return n ? -ENAMETOOLONG : 0;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int write_file(const char *path, const char *data, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	FILE *f;
	int rc;

	if (slash && slash != path) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		rc = mkdir_p(dir);
		if (rc < 0)
			return rc;
	}
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fwrite(data, 1, len, f) != len) {
		rc = -errno;
		fclose(f);
		return rc ? rc : -EIO;
	}
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static int write_json(const struct bench_cfg *cfg, const struct path_res *res, int n)
{
	const struct path_res *best = best_path(res, n);
	struct sbuf b = { 0 };
	struct utsname u;
	char *wl;
	int len, rc;

	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	sb_printf(&b, "{\"host\":{\"probes\":");
	tool_probes_json(&b);
	sb_printf(&b, ",\"kernel\":");
	sb_json_str(&b, u.release);
	sb_printf(&b, ",\"cpus\":%ld,\"wirepath\":", sysconf(_SC_NPROCESSORS_ONLN));
	sb_json_str(&b, wp_version());
	sb_printf(&b, "},\"workload\":");
	len = wl_to_json(&cfg->w, NULL, 0);
	wl = malloc((size_t)len + 1);
	if (wl) {
		wl_to_json(&cfg->w, wl, (size_t)len + 1);
		sb_printf(&b, "%s", wl);
		free(wl);
	} else {
		sb_printf(&b, "null");
	}

	sb_printf(&b, ",\"config\":{\"paths\":[");
	for (int i = 0; i < cfg->npaths; i++) {
		sb_printf(&b, "%s", i ? "," : "");
		sb_json_str(&b, cfg->paths[i]);
	}
	sb_printf(&b, "],\"workload_source\":");
	sb_json_str(&b, cfg->workload);
	sb_printf(&b, ",\"duration_s\":");
	sb_json_num(&b, cfg->duration_s);
	sb_printf(&b, ",\"warmup_s\":");
	sb_json_num(&b, cfg->warmup_s);
	sb_printf(&b, ",\"agents\":%u,\"peer\":", cfg->agents);
	sb_json_str(&b, cfg->peer[0] ? cfg->peer : NULL);
	sb_printf(&b, ",\"sqpoll\":%s,\"busy_poll\":%s,\"zc_threshold\":",
		  cfg->sqpoll ? "true" : "false", cfg->busy_poll ? "true" : "false");
	if (cfg->zc_set)
		sb_printf(&b, "%u", cfg->zc_threshold);
	else
		sb_printf(&b, "null");
	sb_printf(&b, ",\"kitchen\":\"%s\"", cfg->kitchen_cuda ? "cuda" : "sim");
	sb_printf(&b, ",\"seed\":%" PRIu64 ",\"model_steps_per_s\":", cfg->seed);
	sb_json_num(&b, cfg->model_rate);
	sb_printf(&b, ",\"kernel_syscalls\":{\"ok\":%s,\"err\":", cfg->kern_err ? "false" : "true");
	sb_json_str(&b, cfg->kern_err ? tool_errno_name(cfg->kern_err) : NULL);
	sb_printf(&b, "},\"note\":");
	sb_json_str(&b, "per-step figures sum the agent (client) and server processes; each "
		    "window edge makes one stats call, counted inside the window");
	sb_printf(&b, "},\"results\":[");
	for (int i = 0; i < n; i++) {
		sb_printf(&b, "%s", i ? "," : "");
		json_result(&b, &res[i]);
	}
	sb_printf(&b, "],\"crossover\":{\"model_steps_per_s\":");
	sb_json_num(&b, cfg->model_rate);
	sb_printf(&b, ",\"basis\":");
	sb_json_str(&b, cfg->model_rate == BENCH_DEFAULT_MODEL_RATE ? BENCH_MODEL_RATE_BASIS :
		    "given with --model-steps-per-s");
	sb_printf(&b, ",\"paths\":[");
	for (int i = 0, k = 0; i < n; i++) {
		if (res[i].state != RES_OK)
			continue;
		sb_printf(&b, "%s{\"path\":", k++ ? "," : "");
		sb_json_str(&b, res[i].path);
		sb_printf(&b, ",\"host_steps_per_core\":");
		sb_json_num(&b, res[i].host_steps_per_core);
		sb_printf(&b, ",\"cores_needed\":");
		sb_json_num(&b, res[i].cores_needed);
		sb_printf(&b, ",\"bound\":\"%s\",\"headroom\":",
			  res[i].host_steps_per_core < cfg->model_rate ? "host" : "model");
		sb_json_num(&b, res[i].headroom);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "],\"best\":");
	sb_json_str(&b, best ? best->path : NULL);
	sb_printf(&b, "}}\n");

	if (b.oom) {
		sb_free(&b);
		return -ENOMEM;
	}
	rc = write_file(cfg->json_path, b.p, b.len);
	sb_free(&b);
	return rc;
}

/* The .dat next to the JSON: same basename. */
static void dat_path(const char *json, char *out, size_t len)
{
	size_t n = strlen(json);

	if (n > 5 && !strcmp(json + n - 5, ".json"))
		snprintf(out, len, "%.*s.dat", (int)(n - 5), json);
	else
		snprintf(out, len, "%s.dat", json);
}

static int write_dat(const char *path, const struct path_res *res, int n)
{
	struct sbuf b = { 0 };
	int rc;

	sb_printf(&b, "# path steps_per_s cpu_us_per_step syscalls_per_step ctx_switches_per_step "
		  "copied_bytes_per_step tool_p50_us tool_p99_us\n");
	for (int i = 0; i < n; i++) {
		if (res[i].state != RES_OK)
			continue;
		char p50[32], p99[32];

		sb_printf(&b, "%s %.3f %.3f %.3f %.3f %.3f %s %s\n", res[i].path,
			  res[i].steps_per_s, res[i].cpu_us_per_step, res[i].syscalls_per_step,
			  res[i].ctxsw_per_step, res[i].copied_per_step,
			  fmt_num(p50, sizeof(p50), tool_q(&res[i], 0.5), 3),
			  fmt_num(p99, sizeof(p99), tool_q(&res[i], 0.99), 3));
	}
	if (b.oom) {
		sb_free(&b);
		return -ENOMEM;
	}
	rc = write_file(path, b.p, b.len);
	sb_free(&b);
	return rc;
}

/* scripts/chart.sh: next to the executable's directory, else under the cwd. */
static int find_chart(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/../scripts/chart.sh", exe) < len &&
			    access(out, R_OK) == 0)
				return 0;
			if ((size_t)snprintf(out, len, "%s/scripts/chart.sh", exe) < len &&
			    access(out, R_OK) == 0)
				return 0;
		}
	}
	snprintf(out, len, "scripts/chart.sh");
	return access(out, R_OK) == 0 ? 0 : -ENOENT;
}

static void run_chart(const char *dat, const char *svg, int quiet)
{
	char chart[PATH_MAX];
	int status;
	pid_t pid;

	if (find_chart(chart, sizeof(chart)) < 0) {
		fprintf(stderr, "wirepath bench: warning: no chart written: scripts/chart.sh not found next to the executable or in the current directory\n");
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "wirepath bench: warning: no chart written: fork: %s\n", strerror(errno));
		return;
	}
	if (pid == 0) {
		execlp("bash", "bash", chart, dat, svg, (char *)NULL);
		dprintf(2, "cannot run bash: %s\n", strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "wirepath bench: warning: no chart written: %s %s %s failed (%s %d); the results are in %s\n",
			chart, dat, svg, WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), dat);
	else if (!quiet)
		fprintf(stderr, "wirepath bench: chart: %s\n", svg);
}

static void print_table(const struct bench_cfg *cfg, const struct path_res *res, int n)
{
	const struct path_res *tcp = NULL, *best = best_path(res, n);
	int any_kernel = 0, any_lib = 0;

	printf("\nworkload %s: %u agents, fan-out %u, %u memory lookups, %u tokens per step; "
	       "%.1f s measured after %.1f s warm-up\n",
	       cfg->w.name, cfg->agents, cfg->w.fanout, cfg->w.mem_lookups, cfg->w.tokens,
	       cfg->duration_s, cfg->warmup_s);
	printf("%-6s %10s %12s %14s %12s %14s %12s %12s  %s\n", "path", "steps/s", "CPU us/step",
	       "syscalls/step", "ctx sw/step", "copied B/step", "tool p50 us", "tool p99 us",
	       "zc sent/copied");
	for (int i = 0; i < n; i++) {
		const struct path_res *p = &res[i];
		char p50[32], p99[32];

		if (p->state == RES_UNAVAILABLE) {
			printf("%-6s unavailable: %s\n", p->path, p->msg);
			continue;
		}
		if (p->state == RES_ERROR) {
			printf("%-6s error: %s\n", p->path, p->msg);
			continue;
		}
		if (!strcmp(p->path, "tcp"))
			tcp = p;
		if (p->kernel_counted)
			any_kernel = 1;
		else
			any_lib = 1;
		printf("%-6s %10.1f %12.1f %14.1f %12.2f %14.1f %12s %12s  %" PRIu64 "/%" PRIu64
		       "\n",
		       p->path, p->steps_per_s, p->cpu_us_per_step, p->syscalls_per_step,
		       p->ctxsw_per_step, p->copied_per_step,
		       fmt_num(p50, sizeof(p50), tool_q(p, 0.5), 1),
		       fmt_num(p99, sizeof(p99), tool_q(p, 0.99), 1), p->zc_sent, p->zc_copied);
	}
	if (any_kernel || any_lib)
		printf("(per step, agent and server processes summed; syscalls %s)\n",
		       any_kernel && !any_lib ? "counted by the kernel (raw_syscalls:sys_enter)" :
		       !any_kernel ? "as counted by the library (kernel count unavailable)" :
		       "kernel-counted where available, else library-counted; see the JSON");

	if (tcp) {
		for (int i = 0; i < n; i++) {
			const struct path_res *p = &res[i];

			if (p->state != RES_OK || p == tcp)
				continue;
			printf("%s vs tcp: syscalls/step x%.2f, CPU us/step x%.2f, ctx switches/step x%.2f\n",
			       p->path, p->syscalls_per_step / tcp->syscalls_per_step,
			       p->cpu_us_per_step / tcp->cpu_us_per_step,
			       tcp->ctxsw_per_step > 0 ? p->ctxsw_per_step / tcp->ctxsw_per_step : NAN);
		}
	}

	if (!best)
		return;
	printf("\ncrossover at %.0f model steps/s%s:\n", cfg->model_rate,
	       cfg->model_rate == BENCH_DEFAULT_MODEL_RATE ? " (" BENCH_MODEL_RATE_BASIS ")" : "");
	for (int i = 0; i < n; i++) {
		const struct path_res *p = &res[i];

		if (p->state != RES_OK)
			continue;
		if (p->host_steps_per_core < cfg->model_rate)
			printf("  %-6s host-bound: one core runs %.0f steps/s, %.2fx the model's rate; keeping up takes %.2f cores\n",
			       p->path, p->host_steps_per_core, p->headroom, p->cores_needed);
		else
			printf("  %-6s model-bound: one core runs %.0f steps/s, %.1fx headroom; %.3f cores keep up\n",
			       p->path, p->host_steps_per_core, p->headroom, p->cores_needed);
	}
	printf("best: %s moves the host limit furthest (%.0f steps/s per core", best->path,
	       best->host_steps_per_core);
	if (tcp && tcp != best)
		printf(", %.2fx tcp", best->host_steps_per_core / tcp->host_steps_per_core);
	printf(")");
	/* Say so when the runner-up is within run-to-run noise rather than crown it. */
	for (int i = 0; i < n; i++) {
		const struct path_res *p = &res[i];

		if (p->state == RES_OK && p != best &&
		    p->host_steps_per_core >= best->host_steps_per_core * (1.0 - BENCH_TIE)) {
			printf("; %s is within %.0f%%: a tie within run-to-run noise", p->path,
			       BENCH_TIE * 100);
			break;
		}
	}
	printf("\n");
}

/* ------------------------------------------------------------------ */
/* Flags and main                                                      */
/* ------------------------------------------------------------------ */

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath bench [--paths tcp,uring] [--workload agentic|classic|FILE]\n"
		"                      [--duration S] [--warmup S] [--agents N] [--peer URI]\n"
		"                      [--json FILE] [--svg FILE] [--model-steps-per-s R]\n"
		"                      [--sqpoll] [--busy-poll] [--zc-threshold N] [--seed N] [--quiet]\n"
		"\n"
		"Run agent steps (memory lookups, a streamed model call, parallel tool calls,\n"
		"telemetry) over each path against a `wirepath serve` the bench starts, and\n"
		"report per step, agent and server summed: host CPU, syscalls, context\n"
		"switches, bytes copied, tool latency; then the crossover: how many cores the\n"
		"host needs to keep up with the model.\n"
		"\n"
		"  --paths LIST            comma-separated, from tcp, uring, shm, xsk, rdma, ucx\n"
		"                          (default tcp,uring); one the host lacks is reported\n"
		"                          unavailable with the probe's reason, never replaced\n"
		"  --workload W            agentic (default), classic, a workload file, kv, or gpufeed\n"
		"                          (kv: bulk transfer sweep 64 KiB..64 MiB: GB/s, CPU s/GB,\n"
		"                          bytes copied per byte; --duration is then per size,\n"
		"                          default 1; gpufeed: network to GPU memory, its options\n"
		"                          in 'wirepath bench --workload gpufeed --help')\n"
		"  --duration S            measured seconds per path (default 5)\n"
		"  --warmup S              seconds run before measuring (default 1)\n"
		"  --agents N              agents, each with its own endpoint (default 4)\n"
		"  --peer URI              use a running `wirepath serve` at HOST:PORT instead of\n"
		"                          starting one (its scheme is replaced by each path)\n"
		"  --json FILE             results (default results/latest.json; a .dat table is\n"
		"                          written next to it)\n"
		"  --svg FILE              also draw a chart with scripts/chart.sh\n"
		"  --model-steps-per-s R   the model's agent-step rate for the crossover\n"
		"                          (default 200: %s)\n"
		"  --sqpoll                uring: kernel submission polling thread (both sides)\n"
		"  --busy-poll             spin instead of sleeping (both sides)\n"
		"  --zc-threshold N        uring: zero-copy send at or above N bytes, or 'never'\n"
		"  --seed N                seed for tool result sizes and retries (default 1)\n"
		"  --kitchen sim|cuda      the model stub: sim (default) or cuda, where the server\n"
		"                          first delivers each prompt to GPU memory and checks the\n"
		"                          GPU's checksum of it (docs/gpu.md; for --peer, start\n"
		"                          the server with --kitchen cuda instead)\n"
		"  --tenant-key ID:HEX32   sign every frame as tenant ID with this key, for a\n"
		"                          --peer server started with --policy (the tenant must\n"
		"                          be admin there: the bench reads the server's stats)\n"
		"  --quiet                 no progress or status lines, only the results\n",
		BENCH_MODEL_RATE_BASIS);
}

static int parse_paths(struct bench_cfg *cfg, const char *arg)
{
	const char *p = arg;

	cfg->npaths = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		int known = 0;

		if (n == 0)
			return tool_usage_error("bench", "--paths has an empty name in '%s'", arg);
		for (size_t k = 0; k < BENCH_NKNOWN; k++) {
			const char *kp = bench_known_paths[k];

			if (strlen(kp) == n && !strncmp(kp, p, n))
				known = 1;
		}
		if (!known)
			return tool_usage_error("bench",
						"unknown path '%.*s' in --paths (known: tcp, uring, shm, xsk, rdma, ucx)",
						(int)n, p);
		for (int i = 0; i < cfg->npaths; i++)
			if (strlen(cfg->paths[i]) == n && !strncmp(cfg->paths[i], p, n))
				return tool_usage_error("bench", "path '%.*s' given twice in --paths",
							(int)n, p);
		if (cfg->npaths == BENCH_MAX_PATHS)
			return tool_usage_error("bench", "at most %d paths in --paths", BENCH_MAX_PATHS);
		snprintf(cfg->paths[cfg->npaths++], sizeof(cfg->paths[0]), "%.*s", (int)n, p);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return tool_usage_error("bench", "--paths ends with a comma: '%s'", arg);
		}
	}
	if (!cfg->npaths)
		return tool_usage_error("bench", "--paths needs at least one path");
	return 0;
}

static int parse_peer(struct bench_cfg *cfg, const char *arg)
{
	const char *hp = strstr(arg, "://");
	const char *colon;

	hp = hp ? hp + 3 : arg;
	colon = strrchr(hp, ':');
	if (!*hp || !colon || colon == hp || !colon[1] || strlen(hp) >= sizeof(cfg->peer))
		return tool_usage_error("bench", "--peer takes HOST:PORT or SCHEME://HOST:PORT, not '%s'",
					arg);
	for (const char *c = colon + 1; *c; c++)
		if (*c < '0' || *c > '9')
			return tool_usage_error("bench", "--peer has a bad port in '%s'", arg);
	snprintf(cfg->peer, sizeof(cfg->peer), "%s", hp);
	return 0;
}

/* Limits of the bench protocol on top of wl_validate(). */
static int check_workload(const struct wl *w, char *err, size_t errlen)
{
	if (w->tool_req_bytes > WPB_CHUNK_MAX || w->model_req_bytes > WPB_CHUNK_MAX) {
		snprintf(err, errlen, "requests above %u bytes do not fit one frame (tool_req_bytes %u, model_req_bytes %u)",
			 WPB_CHUNK_MAX, w->tool_req_bytes, w->model_req_bytes);
		return -EINVAL;
	}
	if ((uint64_t)w->token_bytes * w->token_batch > WPB_CHUNK_MAX) {
		snprintf(err, errlen, "token_bytes * token_batch must stay within %u bytes (one stream frame)",
			 WPB_CHUNK_MAX);
		return -EINVAL;
	}
	if (!w->mem_lookups && !w->bulk_bytes && !w->model_req_bytes && !w->fanout) {
		snprintf(err, errlen, "a step must make at least one call (memory lookup, model, tool or bulk) for the bench to pace it");
		return -EINVAL;
	}
	if (w->bulk_bytes > UINT32_MAX) {
		snprintf(err, errlen, "bulk_bytes above 4 GiB is not supported");
		return -EINVAL;
	}
	return 0;
}

static void bench_on_signal(int sig)
{
	bench_interrupted = sig;
}

static void rm_tmpdir(const char *dir)
{
	static const char *const sfx[] = { "port", "port.tmp", "out", "err" };
	char p[PATH_MAX];

	if (!dir[0])
		return;
	for (size_t i = 0; i < BENCH_NKNOWN; i++) {
		for (size_t k = 0; k < sizeof(sfx) / sizeof(sfx[0]); k++) {
			snprintf(p, sizeof(p), "%s/%s.%s", dir, bench_known_paths[i], sfx[k]);
			unlink(p);
		}
	}
	rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* --workload kv: the bulk context/KV transfer sweep                   */
/* ------------------------------------------------------------------ */

static const uint64_t kv_sizes[] = { 64u << 10, 256u << 10, 1u << 20, 4u << 20, 16u << 20,
				     64u << 20 };
#define KV_NSIZES (sizeof(kv_sizes) / sizeof(kv_sizes[0]))
#define KV_DEPTH 2          /* transfers in flight */
#define KV_REGION (KV_DEPTH * (64ull << 20))

struct kv_row {
	uint64_t size, n;
	double secs, gb_per_s, cpu_s_per_gb, copied_per_byte;
	int mapped;
};

struct kv_path {
	char path[16];
	enum res_state state;
	char msg[512], explain[512];
	struct kv_row rows[KV_NSIZES];
	int nrows;
};

struct kv_run {
	struct wp_ctx *ctx;
	struct wp_ep *ep;
	int up, closed, err;
	int call_done, call_status;
	uint32_t reply_len;
	uint8_t reply[WP_METER_FIELDS * 8];
	int inflight, failed, mapped;
	uint64_t done_n;
	char why[200];
};

static void kv_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct kv_run *k = arg;

	if (ev == WP_EP_CONNECTED) {
		k->up = 1;
	} else {
		k->closed = 1;
		k->err = err;
	}
}

static void kv_on_data(void *arg, struct wp_msg *m)
{
	struct kv_run *k = arg;

	k->reply_len = m->len < sizeof(k->reply) ? m->len : (uint32_t)sizeof(k->reply);
	memcpy(k->reply, m->data, k->reply_len);
}

static void kv_on_call_done(void *arg, int status)
{
	struct kv_run *k = arg;

	k->call_status = status;
	k->call_done = 1;
}

/* A unary call, driven to its end. Returns 0 or -1 with k->why set. */
static int kv_call(struct kv_run *k, uint32_t method, const void *req, uint32_t len)
{
	struct wp_call_params p = { .method = method, .req = req, .req_len = len,
				    .deadline_us = (int64_t)(BENCH_STATS_TIMEOUT_NS / 1000),
				    .on_data = kv_on_data, .on_done = kv_on_call_done, .arg = k };
	int rc;

	k->call_done = 0;
	k->reply_len = 0;
	rc = wp_rpc_call(k->ep, &p, NULL);
	if (rc < 0) {
		snprintf(k->why, sizeof(k->why), "call %#x: %s", method, strerror(-rc));
		return -1;
	}
	while (!k->call_done && !bench_interrupted)
		wp_ctx_progress(k->ctx, 100000);
	if (!k->call_done || k->call_status != 0) {
		snprintf(k->why, sizeof(k->why), "call %#x failed: %s", method,
			 k->call_done ? strerror(abs(k->call_status)) : "interrupted");
		return -1;
	}
	return 0;
}

static int kv_server_stats(struct kv_run *k, struct wp_meter_snap *s)
{
	uint64_t *dst = (uint64_t *)s;

	if (kv_call(k, WP_METHOD_STATS, "", 0) < 0)
		return -1;
	if (k->reply_len != WP_METER_FIELDS * 8) {
		snprintf(k->why, sizeof(k->why), "the server's stats reply has %u bytes",
			 k->reply_len);
		return -1;
	}
	for (size_t i = 0; i < WP_METER_FIELDS; i++)
		dst[i] = wpb_get64(k->reply + 8 * i);
	return 0;
}

static void kv_on_xfer(void *arg, int status, const struct wp_xfer_stats *st)
{
	struct kv_run *k = arg;

	k->inflight--;
	if (status != 0 && !k->failed) {
		k->failed = 1;
		snprintf(k->why, sizeof(k->why), "transfer failed: %s", strerror(abs(status)));
	}
	k->mapped = (int)st->direct;
	k->done_n++;
}

/* Keep KV_DEPTH writes of `size` in flight until `until` (and at least min). */
static int kv_pump(struct kv_run *k, struct wp_mr *local, const struct wp_rkey *rk, uint64_t size,
		   uint64_t until, uint64_t min)
{
	uint64_t posted = 0, start_n = k->done_n;

	for (;;) {
		while (k->inflight < KV_DEPTH && !k->failed &&
		       (wp_now_ns() < until || posted < min)) {
			uint64_t slot = posted % KV_DEPTH;
			struct wp_xfer_desc d = { slot * (64ull << 20), slot * (64ull << 20), size };
			struct wp_xfer_params p = { .op = WP_XFER_WRITE, .local = local,
						    .remote = rk, .desc = &d, .ndesc = 1,
						    .on_done = kv_on_xfer, .arg = k };
			int rc = wp_xfer_post(k->ep, &p);

			if (rc < 0) {
				snprintf(k->why, sizeof(k->why), "wp_xfer_post: %s", strerror(-rc));
				return -1;
			}
			k->inflight++;
			posted++;
		}
		if (k->failed || k->closed || bench_interrupted)
			break;
		if (k->inflight == 0)
			return 0;
		wp_ctx_progress(k->ctx, 100000);
	}
	if (k->closed && !k->failed)
		snprintf(k->why, sizeof(k->why), "connection closed: %s", strerror(-k->err));
	(void)start_n;
	return -1;
}

static void kv_run_path(struct bench_cfg *cfg, struct kv_path *res)
{
	const struct wp_probe_result *pr = path_probe(res->path);
	double per_size = cfg->duration_s;
	struct kv_run k = { 0 };
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs = { .event = kv_on_event, .arg = &k };
	struct wp_mr *local = NULL;
	struct wp_rkey rk;
	struct server sv = { 0 };
	uint8_t req[WPB_KV_HDR];
	char uri[320];

	res->state = RES_ERROR;
	if (!pr || !pr->ok) {
		res->state = RES_UNAVAILABLE;
		snprintf(res->msg, sizeof(res->msg), "%s", pr ? pr->detail : "not in this build");
		return;
	}
	if (server_start(cfg, res->path, &sv, res->msg, sizeof(res->msg)) < 0)
		return;
	bench_uri(uri, sizeof(uri), res->path, sv.port);
	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.busy_poll = cfg->busy_poll;
	o.sqpoll = cfg->sqpoll;
	if (cfg->zc_set)
		o.zc_threshold = cfg->zc_threshold;
	if (wp_ctx_create(&o, &k.ctx) < 0 || wp_connect(k.ctx, uri, &cbs, &k.ep) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot connect to %s", uri);
		goto out;
	}
	while (!k.up && !k.closed && !bench_interrupted)
		wp_ctx_progress(k.ctx, 100000);
	if (!k.up) {
		snprintf(res->msg, sizeof(res->msg), "connect to %s: %s", uri,
			 k.err ? strerror(-k.err) : "interrupted");
		goto out;
	}
	snprintf(res->explain, sizeof(res->explain), "%s", wp_ctx_explain(k.ctx));
	wpb_put64(req, KV_REGION);
	if (kv_call(&k, WPB_KV, req, sizeof(req)) < 0 ||
	    wpb_kv_reply_get(k.reply, k.reply_len, &rk) < 0) {
		snprintf(res->msg, sizeof(res->msg), "no region from the server: %s", k.why);
		goto out;
	}
	if (wp_mr_alloc(k.ctx, KV_REGION, &local) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot allocate %llu MiB",
			 (unsigned long long)(KV_REGION >> 20));
		goto out;
	}
	for (uint64_t i = 0; i < KV_REGION; i += 8)
		*(uint64_t *)((uint8_t *)wp_mr_addr(local) + i) = i * 0x9e3779b97f4a7c15ull;

	for (size_t si = 0; si < KV_NSIZES && !bench_interrupted; si++) {
		uint64_t size = kv_sizes[si], n0, t0, t1;
		struct wp_meter_snap sa, sb, la, lb, sd, ld;
		struct kv_row *row = &res->rows[si];
		double cpu, bytes;

		/* Warm-up: pages faulted in, connection and caches warm. */
		if (kv_pump(&k, local, &rk, size, 0, 2 * KV_DEPTH) < 0)
			goto out_why;
		if (kv_server_stats(&k, &sa) < 0)
			goto out_why;
		wp_meter_snapshot(&la);
		n0 = k.done_n;
		t0 = wp_now_ns();
		if (kv_pump(&k, local, &rk, size, t0 + (uint64_t)(per_size * 1e9), 4) < 0)
			goto out_why;
		t1 = wp_now_ns();
		wp_meter_snapshot(&lb);
		if (kv_server_stats(&k, &sb) < 0)
			goto out_why;
		wp_meter_diff(&la, &lb, &ld);
		wp_meter_diff(&sa, &sb, &sd);
		row->size = size;
		row->n = k.done_n - n0;
		row->secs = (double)(t1 - t0) / 1e9;
		bytes = (double)row->n * (double)size;
		cpu = (double)(ld.cpu_user_ns + ld.cpu_sys_ns + sd.cpu_user_ns + sd.cpu_sys_ns) / 1e9;
		row->gb_per_s = bytes / row->secs / 1e9;
		row->cpu_s_per_gb = cpu / (bytes / 1e9);
		/* The stats calls themselves copy a few hundred bytes: noise. */
		row->copied_per_byte = (double)(ld.bytes_copied + sd.bytes_copied) / bytes;
		row->mapped = k.mapped;
		res->nrows = (int)si + 1;
		if (!cfg->quiet)
			fprintf(stderr, "wirepath bench: kv %s %6llu KiB: %7.2f GB/s, %.3f CPU s/GB, "
				"%.2f B copied per B\n",
				res->path, (unsigned long long)(size >> 10), row->gb_per_s,
				row->cpu_s_per_gb, row->copied_per_byte);
	}
	res->state = bench_interrupted ? RES_ERROR : RES_OK;
	if (bench_interrupted)
		snprintf(res->msg, sizeof(res->msg), "interrupted");
	goto out;

out_why:
	snprintf(res->msg, sizeof(res->msg), "%s", k.why);
out:
	if (local)
		wp_mr_deregister(local);
	if (k.ep)
		wp_ep_close(k.ep);
	wp_ctx_destroy(k.ctx);
	server_stop(&sv, 1);
}

static int kv_write_json(const struct bench_cfg *cfg, const struct kv_path *res, int n)
{
	struct sbuf b = { 0 };
	int rc, first = 1;

	sb_printf(&b, "{\n  \"workload\": \"kv\",\n  \"depth\": %d,\n  \"seconds_per_size\": %.3f,\n",
		  KV_DEPTH, cfg->duration_s);
	sb_printf(&b, "  \"paths\": {");
	for (int i = 0; i < n; i++) {
		sb_printf(&b, "%s\n    \"%s\": {\"state\": \"%s\", \"msg\": ", i ? "," : "", res[i].path,
			  res[i].state == RES_OK ? "ok" :
			  res[i].state == RES_UNAVAILABLE ? "unavailable" : "error");
		sb_json_str(&b, res[i].msg);
		sb_printf(&b, ", \"explain\": ");
		sb_json_str(&b, res[i].explain);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "\n  },\n  \"results\": [");
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < res[i].nrows; j++) {
			const struct kv_row *r = &res[i].rows[j];

			sb_printf(&b, "%s\n    {\"path\": \"%s\", \"op\": \"write\", \"size\": %" PRIu64
				  ", \"transfers\": %" PRIu64 ", \"seconds\": %.3f, \"gb_per_s\": %.4f"
				  ", \"cpu_s_per_gb\": %.5f, \"copied_bytes_per_byte\": %.4f"
				  ", \"mapped\": %s}",
				  first ? "" : ",", res[i].path, r->size, r->n, r->secs, r->gb_per_s,
				  r->cpu_s_per_gb, r->copied_per_byte, r->mapped ? "true" : "false");
			first = 0;
		}
	}
	sb_printf(&b, "\n  ]\n}\n");
	if (b.oom) {
		sb_free(&b);
		return -ENOMEM;
	}
	rc = write_file(cfg->json_path, b.p, b.len);
	sb_free(&b);
	return rc;
}

static int run_kv(struct bench_cfg *cfg)
{
	struct kv_path res[BENCH_MAX_PATHS];
	int status = 0, nok = 0, rc;

	memset(res, 0, sizeof(res));
	for (int i = 0; i < cfg->npaths && !bench_interrupted; i++) {
		snprintf(res[i].path, sizeof(res[i].path), "%s", cfg->paths[i]);
		kv_run_path(cfg, &res[i]);
		if (res[i].state == RES_OK)
			nok++;
		else if (res[i].state == RES_ERROR) {
			fprintf(stderr, "wirepath bench: kv %s failed: %s\n", res[i].path, res[i].msg);
			status = 1;
		} else if (!cfg->quiet) {
			fprintf(stderr, "wirepath bench: %s unavailable: %s\n", res[i].path,
				res[i].msg);
		}
	}
	if (bench_interrupted)
		return 130;
	printf("workload kv: one-sided writes into the server's region, %d in flight, %.1f s per size\n",
	       KV_DEPTH, cfg->duration_s);
	printf("path    size      GB/s  CPU s/GB  copied B/B  mapped\n");
	for (int i = 0; i < cfg->npaths; i++) {
		if (res[i].state != RES_OK) {
			printf("%-6s  %s: %s\n", res[i].path,
			       res[i].state == RES_UNAVAILABLE ? "unavailable" : "error", res[i].msg);
			continue;
		}
		for (int j = 0; j < res[i].nrows; j++) {
			const struct kv_row *r = &res[i].rows[j];

			printf("%-6s %5llu%s %8.2f %9.4f %11.2f  %s\n", res[i].path,
			       (unsigned long long)(r->size >= (1u << 20) ? r->size >> 20 : r->size >> 10),
			       r->size >= (1u << 20) ? "M" : "K", r->gb_per_s, r->cpu_s_per_gb,
			       r->copied_per_byte, r->mapped ? "yes (one memcpy)" : "no (frames)");
		}
	}
	/* CPU per GB against tcp at 4 MiB, the issue's yardstick. */
	for (int i = 0; i < cfg->npaths; i++)
		for (int t = 0; t < cfg->npaths; t++)
			if (i != t && !strcmp(res[t].path, "tcp") && res[i].state == RES_OK &&
			    res[t].state == RES_OK && res[i].nrows > 3 && res[t].nrows > 3)
				printf("%s / tcp at 4 MiB: CPU per GB %.2fx, GB/s %.2fx\n", res[i].path,
				       res[i].rows[3].cpu_s_per_gb / res[t].rows[3].cpu_s_per_gb,
				       res[i].rows[3].gb_per_s / res[t].rows[3].gb_per_s);
	rc = kv_write_json(cfg, res, cfg->npaths);
	if (rc < 0) {
		fprintf(stderr, "wirepath bench: cannot write %s: %s\n", cfg->json_path, strerror(-rc));
		status = 1;
	} else if (!cfg->quiet) {
		fprintf(stderr, "wirepath bench: wrote %s\n", cfg->json_path);
	}
	if (!nok)
		status = 1;
	return status;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "paths", required_argument, NULL, 'P' },
		{ "workload", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "agents", required_argument, NULL, 'a' },
		{ "peer", required_argument, NULL, 'p' },
		{ "json", required_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, 's' },
		{ "model-steps-per-s", required_argument, NULL, 'R' },
		{ "sqpoll", no_argument, NULL, 'Q' },
		{ "busy-poll", no_argument, NULL, 'B' },
		{ "zc-threshold", required_argument, NULL, 'z' },
		{ "seed", required_argument, NULL, 'S' },
		{ "tenant-key", required_argument, NULL, 'K' },
		{ "kitchen", required_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench_cfg cfg;
	struct path_res *res;
	struct sigaction sa;
	char err[512], dat[PATH_MAX];
	const char *tmp;
	uint64_t v;
	int c, rc, status = 0, nok = 0, duration_set = 0;

	/* The GPU feed has options of its own (tools/bench_gpufeed.c). */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--workload=gpufeed") ||
		    (!strcmp(argv[i], "--workload") && i + 1 < argc && !strcmp(argv[i + 1], "gpufeed")))
			return cmd_bench_gpufeed(argc, argv);

	memset(&cfg, 0, sizeof(cfg));
	cfg.workload = "agentic";
	cfg.duration_s = 5;
	cfg.warmup_s = 1;
	cfg.agents = 4;
	cfg.json_path = "results/latest.json";
	cfg.model_rate = BENCH_DEFAULT_MODEL_RATE;
	cfg.seed = 1;
	snprintf(cfg.paths[0], sizeof(cfg.paths[0]), "tcp");
	snprintf(cfg.paths[1], sizeof(cfg.paths[1]), "uring");
	cfg.npaths = 2;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			if ((rc = parse_paths(&cfg, optarg)))
				return rc;
			break;
		case 'w':
			cfg.workload = optarg;
			break;
		case 'd':
			if (tool_parse_secs(optarg, 0.01, 86400, &cfg.duration_s) < 0)
				return tool_usage_error("bench", "--duration takes seconds in [0.01, 86400], not '%s'",
							optarg);
			duration_set = 1;
			break;
		case 'W':
			if (tool_parse_secs(optarg, 0, 3600, &cfg.warmup_s) < 0)
				return tool_usage_error("bench", "--warmup takes seconds in [0, 3600], not '%s'",
							optarg);
			break;
		case 'a':
			if (tool_parse_u64(optarg, 1, 4096, &v) < 0)
				return tool_usage_error("bench", "--agents takes a count in [1, 4096], not '%s'",
							optarg);
			cfg.agents = (uint32_t)v;
			break;
		case 'p':
			if ((rc = parse_peer(&cfg, optarg)))
				return rc;
			break;
		case 'j':
			if (!*optarg)
				return tool_usage_error("bench", "--json needs a file name");
			cfg.json_path = optarg;
			break;
		case 's':
			if (!*optarg)
				return tool_usage_error("bench", "--svg needs a file name");
			cfg.svg_path = optarg;
			break;
		case 'R':
			if (tool_parse_secs(optarg, 1e-6, 1e12, &cfg.model_rate) < 0)
				return tool_usage_error("bench", "--model-steps-per-s takes a rate > 0, not '%s'",
							optarg);
			break;
		case 'Q':
			cfg.sqpoll = 1;
			break;
		case 'B':
			cfg.busy_poll = 1;
			break;
		case 'z':
			cfg.zc_set = 1;
			if (!strcmp(optarg, "never")) {
				cfg.zc_threshold = UINT32_MAX;
				break;
			}
			if (tool_parse_size(optarg, 1, UINT32_MAX - 1, &v) < 0)
				return tool_usage_error("bench",
							"--zc-threshold takes a byte count >= 1 (K/M suffix) or 'never', not '%s'",
							optarg);
			cfg.zc_threshold = (uint32_t)v;
			break;
		case 'S':
			if (tool_parse_u64(optarg, 0, UINT64_MAX, &cfg.seed) < 0)
				return tool_usage_error("bench", "--seed takes a non-negative integer, not '%s'",
							optarg);
			break;
		case 'k':
			if (strcmp(optarg, "sim") && strcmp(optarg, "cuda"))
				return tool_usage_error("bench", "--kitchen takes sim or cuda, not '%s'",
							optarg);
			cfg.kitchen_cuda = !strcmp(optarg, "cuda");
			break;
		case 'K':
			if (wp_policy_tenant_key_parse(optarg, &cfg.tenant, cfg.key) < 0)
				return tool_usage_error("bench",
							"--tenant-key takes ID:KEY, a tenant id 1..4294967295 and 32 hex digits, not '%s'",
							optarg);
			cfg.signed_frames = 1;
			break;
		case 'q':
			cfg.quiet = 1;
			break;
		case 'h':
			bench_usage(stdout);
			return 0;
		case ':':
			return tool_usage_error("bench", "option '%s' needs a value", argv[optind - 1]);
		default:
			return tool_usage_error("bench", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (cfg.kitchen_cuda && cfg.peer[0])
		return tool_usage_error("bench", "--kitchen cuda applies to the server the bench "
					"starts; with --peer, start it with 'wirepath serve --kitchen cuda'");
	if (optind < argc)
		return tool_usage_error("bench", "unexpected argument '%s'", argv[optind]);

	err[0] = '\0';
	if (!strcmp(cfg.workload, "kv")) {
		/* The sweep measures bulk transfers: a shorter window per size. */
		if (!duration_set)
			cfg.duration_s = 1.0;
	} else if (wl_load(cfg.workload, &cfg.w, err, sizeof(err)) < 0 ||
	    wl_validate(&cfg.w, err, sizeof(err)) < 0 ||
	    check_workload(&cfg.w, err, sizeof(err)) < 0)
		return tool_usage_error("bench", "bad workload: %s", err[0] ? err : cfg.workload);

	/*
	 * Before any thread exists (and before the servers are forked: the
	 * counter follows only this process's threads), so every syscall the
	 * bench side makes from here on is counted by the kernel.
	 */
	cfg.kern_err = wp_meter_kernel_syscalls_start();
	if (!cfg.quiet) {
		if (cfg.kern_err)
			fprintf(stderr, "wirepath bench: syscalls counted by the library only: the kernel count is unavailable (%s: %s; needs tracefs and perf permission, e.g. root)\n",
				tool_errno_name(cfg.kern_err), strerror(-cfg.kern_err));
		else
			fprintf(stderr, "wirepath bench: syscalls kernel-counted (raw_syscalls:sys_enter)\n");
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!cfg.peer[0]) {
		tmp = getenv("TMPDIR");
		snprintf(cfg.tmpdir, sizeof(cfg.tmpdir), "%s/wirepath-bench.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(cfg.tmpdir)) {
			fprintf(stderr, "wirepath bench: cannot create a temp dir in %s: %s\n",
				tmp && *tmp ? tmp : "/tmp", strerror(errno));
			return 1;
		}
	}

	if (!strcmp(cfg.workload, "kv")) {
		status = run_kv(&cfg);
		rm_tmpdir(cfg.tmpdir);
		return status;
	}
	res = calloc((size_t)cfg.npaths, sizeof(*res));
	if (!res) {
		fprintf(stderr, "wirepath bench: out of memory\n");
		rm_tmpdir(cfg.tmpdir);
		return 1;
	}
	for (int i = 0; i < cfg.npaths; i++) {
		snprintf(res[i].path, sizeof(res[i].path), "%s", cfg.paths[i]);
		if (bench_interrupted) {
			res[i].state = RES_ERROR;
			snprintf(res[i].msg, sizeof(res[i].msg), "interrupted");
			continue;
		}
		run_path(&cfg, &res[i]);
		if (res[i].state == RES_OK) {
			nok++;
			if (!cfg.quiet)
				fprintf(stderr, "wirepath bench: %s: %" PRIu64 " steps in %.2f s\n",
					res[i].path, res[i].steps, res[i].wall_s);
		} else if (res[i].state == RES_ERROR) {
			fprintf(stderr, "wirepath bench: %s failed: %s\n", res[i].path, res[i].msg);
			status = 1;
		} else if (!cfg.quiet) {
			fprintf(stderr, "wirepath bench: %s unavailable: %s\n", res[i].path, res[i].msg);
		}
	}
	rm_tmpdir(cfg.tmpdir);
	if (bench_interrupted) {
		fprintf(stderr, "wirepath bench: interrupted; no results written\n");
		free(res);
		return 130;
	}

	print_table(&cfg, res, cfg.npaths);
	rc = write_json(&cfg, res, cfg.npaths);
	if (rc < 0) {
		fprintf(stderr, "wirepath bench: cannot write %s: %s\n", cfg.json_path, strerror(-rc));
		status = 1;
	} else {
		dat_path(cfg.json_path, dat, sizeof(dat));
		rc = write_dat(dat, res, cfg.npaths);
		if (rc < 0) {
			fprintf(stderr, "wirepath bench: cannot write %s: %s\n", dat, strerror(-rc));
			status = 1;
		} else {
			if (!cfg.quiet)
				fprintf(stderr, "wirepath bench: wrote %s and %s\n", cfg.json_path, dat);
			if (cfg.svg_path)
				run_chart(dat, cfg.svg_path, cfg.quiet);
		}
	}
	if (!nok) {
		fprintf(stderr, "wirepath bench: no path could run; see 'wirepath probe'\n");
		status = 1;
	}
	free(res);
	return status;
}
