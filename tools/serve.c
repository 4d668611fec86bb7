// SPDX-License-Identifier: MIT
/*
 * `wirepath serve`: the stub services the bench calls (tool, memory, model,
 * telemetry, kv; ids and request formats in stub_proto.h), and the native
 * service contracts wirepathd speaks (service.h, implemented in svc.c), on
 * one context driven by one thread, like a real single-core service would be.
 *
 * The stubs exist to measure the data path, so they do no work of their own:
 * every reply points into one static pattern buffer filled once at start and
 * is sent with a completion callback that does nothing, so the library never
 * copies a reply (the send contract: the buffer stays ours and unchanged
 * until `done` runs, which it trivially does). Service times are honoured
 * without sleeping: a delayed reply or a paced token stream is a job in a
 * min-heap keyed by due time (sched_heap.h, shared with svc.c), and the loop
 * waits in wp_ctx_progress() no longer than the next due job. With
 * --busy-poll it never waits at all.
 *
 * SIGTERM/SIGINT end the loop; a signal interrupts the wait, and the wait is
 * also capped (SERVE_IDLE_CAP_US) so that a signal arriving between the flag
 * check and the wait is seen within that bound whatever the path does with
 * EINTR. Pending answers are ended and the context destroyed before exit.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "opt.h"
#include "sched_heap.h"
#include "stub_proto.h"
#include "svc.h"
#include "tools.h"
#include "util.h"
#include "wirepath/gpu.h"
#include "wirepath/policy.h"
#include "wirepath/service.h"

/* Longest wait when nothing is due: bounds how late a signal can be seen. */
#define SERVE_IDLE_CAP_US 100000

/* One answer in progress: a (possibly delayed) reply or a paced stream. */
struct job {
	struct sched_job sj; /* first: due, the call, run and drop (sched_heap.h) */
	struct wp_call *call;
	uint32_t method;
	uint32_t chunks; /* parts in all; a unary reply is one part */
	uint32_t sent;   /* parts sent so far */
	uint32_t chunk_bytes;
	uint32_t last_bytes;  /* size of the final part */
	uint32_t interval_us; /* between parts (token pacing) */
	int unary;            /* one wp_call_reply rather than stream + end */
	uint32_t service_us;  /* model: waited after the kitchen has the prompt */
	uint64_t want_sum;    /* model with --kitchen cuda: the prompt's host checksum */
	struct srv *s;
	struct job *next_free;
};

struct srv {
	struct wp_ctx *ctx;
	uint8_t *pattern;   /* WPB_CHUNK_MAX bytes, filled once, never written again */
	struct sched sched; /* jobs due later: delayed replies, paced streams */
	struct svc *svc;    /* the native service contracts (svc.h) */
	struct job *free_jobs;
	uint64_t calls[WPB_METHOD_MAX + 1]; /* by method id */
	struct wp_mr *kv; /* the bulk-transfer target, allocated at the first WPB_KV */
	uint64_t bad_requests;
	uint64_t send_errors;
	uint64_t telemetry_msgs, telemetry_bytes, other_msgs;
	uint64_t conns, conns_err;
	int busy_poll;
	int oom;
	struct wp_gpu_feed *feed; /* --kitchen cuda: prompts go to GPU memory */
	uint64_t kitchen_payloads, kitchen_bytes, kitchen_host_copies, kitchen_mismatch,
		kitchen_errors;
};

static volatile sig_atomic_t serve_stop, serve_report;

static void serve_on_signal(int sig)
{
	if (sig == SIGUSR1)
		serve_report = 1;
	else
		serve_stop = sig;
}

/* The completion callback for pattern-buffer sends: the buffer is static. */
static void serve_noop_done(void *arg, int status)
{
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                */
/* ------------------------------------------------------------------ */

static struct job *job_alloc(struct srv *s)
{
	struct job *j = s->free_jobs;

	if (j) {
		s->free_jobs = j->next_free;
	} else {
		j = malloc(sizeof(*j));
		if (!j)
			return NULL;
	}
	memset(j, 0, sizeof(*j));
	j->s = s;
	return j;
}

static void job_free(struct srv *s, struct job *j)
{
	j->next_free = s->free_jobs;
	s->free_jobs = j;
}

/* ------------------------------------------------------------------ */
/* Answering                                                           */
/* ------------------------------------------------------------------ */

/*
 * Send what is due of one answer. Returns 1 when the answer is over (the job
 * can be freed) or 0 when it must run again at j->due.
 */
static int job_run(struct srv *s, struct job *j, uint64_t now)
{
	int rc;

	if (wp_call_cancelled(j->call)) {
		wp_call_end(j->call, ECANCELED);
		return 1;
	}
	if (j->unary) {
		/*
		 * A terminal answer frees the handle whatever it returns (the
		 * library's contract), so there is nothing to retry or end here.
		 */
		rc = wp_call_reply(j->call, s->pattern, j->last_bytes, serve_noop_done, NULL);
		if (rc < 0)
			s->send_errors++;
		return 1;
	}
	while (j->sent < j->chunks) {
		uint32_t len = j->sent + 1 == j->chunks ? j->last_bytes : j->chunk_bytes;

		rc = wp_call_stream(j->call, s->pattern, len, serve_noop_done, NULL);
		if (tool_backpressure(rc))
			goto retry;
		if (rc < 0) {
			s->send_errors++;
			wp_call_end(j->call, EIO);
			return 1;
		}
		j->sent++;
		if (j->interval_us && j->sent < j->chunks) {
			j->sj.due = now + (uint64_t)j->interval_us * 1000;
			return 0;
		}
	}
	wp_call_end(j->call, 0);
	return 1;

retry:
	/* Strictly after `now`, so the run loop does not spin on it this round. */
	j->sj.due = now + 1;
	return 0;
}

/* sched_heap.h's run and drop for the bench stubs' jobs. */
static int job_sched_run(struct sched_job *sj, uint64_t now)
{
	struct job *j = (struct job *)sj;

	if (!job_run(j->s, j, now))
		return 0;
	job_free(j->s, j);
	return 1;
}

static void job_sched_drop(struct sched_job *sj)
{
	struct job *j = (struct job *)sj;

	wp_call_end(j->call, ECANCELED);
	job_free(j->s, j);
}

/* Run the job now if it is due, else (or if it has more to send) queue it. */
static void job_start(struct srv *s, struct job *j, uint64_t service_us)
{
	uint64_t now = wp_now_ns();

	j->sj.due = now + service_us * 1000;
	j->sj.call = j->call;
	j->sj.run = job_sched_run;
	j->sj.drop = job_sched_drop;
	if (service_us == 0 && job_run(s, j, now)) {
		job_free(s, j);
		return;
	}
	if (sched_add(&s->sched, &j->sj) < 0) {
		/* Cannot keep it: end the answer rather than leave the caller hanging. */
		s->oom = 1;
		wp_call_error(j->call, ENOMEM, "server out of memory");
		job_free(s, j);
	}
}

/* A unary (or, above WPB_CHUNK_MAX, chunked) reply of `bytes` bytes. */
static void answer_bytes(struct srv *s, struct wp_call *call, uint32_t method, uint32_t bytes,
			 uint32_t service_us)
{
	struct job *j = job_alloc(s);

	if (!j) {
		s->oom = 1;
		wp_call_error(call, ENOMEM, "server out of memory");
		return;
	}
	j->call = call;
	j->method = method;
	if (bytes <= WPB_CHUNK_MAX) {
		j->unary = 1;
		j->chunks = 1;
		j->last_bytes = bytes;
	} else {
		j->chunks = (uint32_t)(((uint64_t)bytes + WPB_CHUNK_MAX - 1) / WPB_CHUNK_MAX);
		j->chunk_bytes = WPB_CHUNK_MAX;
		j->last_bytes = bytes - (j->chunks - 1) * WPB_CHUNK_MAX;
	}
	job_start(s, j, service_us);
}

/* The target region of bulk transfers: allocated (shareable) and exported
 * once, grown when a client asks for more. */
static void on_kv(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct srv *s = arg;
	struct wp_rkey rk;
	uint8_t out[WPB_KV_REPLY];
	uint64_t want;
	int rc;

	s->calls[WPB_KV]++;
	if (req->len < WPB_KV_HDR) {
		s->bad_requests++;
		wp_call_error(call, EINVAL, "short request");
		return;
	}
	want = wpb_get64(req->data);
	if (want == 0 || want > WPB_KV_MAX) {
		s->bad_requests++;
		wp_call_error(call, EINVAL, "region size out of range");
		return;
	}
	if (s->kv && wp_mr_size(s->kv) < want) {
		wp_mr_deregister(s->kv);
		s->kv = NULL;
	}
	if (!s->kv) {
		rc = wp_mr_alloc(s->ctx, want, &s->kv);
		if (rc < 0) {
			wp_call_error(call, (uint32_t)-rc, "cannot allocate the region");
			return;
		}
		memset(wp_mr_addr(s->kv), 0, want); /* fault it in outside the measurement */
	}
	wp_mr_export(s->kv, &rk);
	wpb_kv_reply_put(out, &rk);
	wp_call_reply(call, out, sizeof(out), NULL, NULL);
}

/* Tool and memory calls: a reply of the size asked, after the service time asked. */
static void on_bytes(struct srv *s, struct wp_call *call, uint32_t method, struct wp_msg *req)
{
	struct wpb_bytes_req r;

	s->calls[method]++;
	if (wpb_bytes_req_get(req->data, req->len, &r) < 0) {
		s->bad_requests++;
		wp_call_error(call, EINVAL, "short request");
		return;
	}
	answer_bytes(s, call, method, r.bytes, r.service_us);
}

static void on_tool(void *arg, struct wp_call *call, struct wp_msg *req)
{
	on_bytes(arg, call, WPB_TOOL, req);
}

static void on_mem(void *arg, struct wp_call *call, struct wp_msg *req)
{
	on_bytes(arg, call, WPB_MEM, req);
}

/* The prompt is in device memory (or the feed failed or closed). */
static void on_kitchen(void *arg, const struct wp_gpu_done *d)
{
	struct job *j = arg;
	struct srv *s = j->s;

	if (d->status < 0) {
		if (d->status == -ECANCELED) { /* the feed closed at shutdown */
			wp_call_end(j->call, ECANCELED);
		} else {
			s->kitchen_errors++;
			wp_call_error(j->call, EIO, "kitchen: the GPU copy failed");
		}
		job_free(s, j);
		return;
	}
	s->kitchen_payloads++;
	s->kitchen_bytes += d->len;
	s->kitchen_host_copies += d->host_copies;
	if (d->summed && d->gpu_sum != j->want_sum) {
		s->kitchen_mismatch++;
		wp_call_error(j->call, EIO, "kitchen: the GPU's checksum of the prompt differs");
		job_free(s, j);
		return;
	}
	job_start(s, j, j->service_us);
}

static void on_model(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct srv *s = arg;
	struct wpb_model_req m;
	uint64_t chunk;
	struct job *j;

	s->calls[WPB_MODEL]++;
	if (wpb_model_req_get(req->data, req->len, &m) < 0) {
		s->bad_requests++;
		wp_call_error(call, EINVAL, "short request");
		return;
	}
	chunk = (uint64_t)m.token_bytes * m.token_batch;
	if (m.token_batch == 0 || chunk > WPB_CHUNK_MAX) {
		s->bad_requests++;
		wp_call_error(call, EINVAL,
			      m.token_batch ? "token_bytes * token_batch above 16 MiB"
					    : "token_batch is 0");
		return;
	}
	j = job_alloc(s);
	if (!j) {
		s->oom = 1;
		wp_call_error(call, ENOMEM, "server out of memory");
		return;
	}
	j->call = call;
	j->method = WPB_MODEL;
	j->chunks = wpb_model_chunks(m.tokens, m.token_batch);
	j->chunk_bytes = (uint32_t)chunk;
	j->last_bytes = m.tokens ? (m.tokens - (j->chunks - 1) * m.token_batch) * m.token_bytes : 0;
	j->interval_us = m.interval_us;
	if (s->feed) {
		int rc;

		/* The kitchen: the prompt goes to GPU memory, where a kernel
		 * checksums it; the model's service time starts once the GPU has
		 * it and the sum matches the host's. */
		j->service_us = m.service_us;
		j->want_sum = wp_gpu_kitchen_sum(req->data, req->len);
		rc = wp_gpu_feed_submit_lent(s->feed, req->data, req->len, on_kitchen, j);
		if (rc < 0) {
			s->kitchen_errors++;
			wp_call_error(call, -rc == EMSGSIZE ? EMSGSIZE : EAGAIN,
				      "kitchen: the GPU feed refused the prompt");
			job_free(s, j);
		}
		return;
	}
	job_start(s, j, m.service_us);
}

/* The native services' counters: one line of JSON (SIGUSR1, and at exit). */
static void serve_print_services(const struct srv *s)
{
	char js[1024];

	if (svc_stats_json(s->svc, js, sizeof(js)) < (int)sizeof(js))
		printf("services: %s\n", js);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */
/* ------------------------------------------------------------------ */

static void serve_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct srv *s = arg;

	if (ev == WP_EP_CONNECTED)
		s->conns++;
	else if (ev == WP_EP_CLOSED && err && err != -ECONNRESET)
		s->conns_err++;
}

static void serve_on_msg(void *arg, struct wp_ep *ep, struct wp_msg *msg)
{
	struct srv *s = arg;

	if (msg->method == WPB_TELEMETRY) {
		s->calls[WPB_TELEMETRY]++;
		s->telemetry_msgs++;
		s->telemetry_bytes += msg->len;
	} else {
		s->other_msgs++;
	}
}

/* "tcp://..." -> "tcp" (into buf); "" if there is no scheme. */
static void uri_scheme(const char *uri, char *buf, size_t len)
{
	const char *e = strstr(uri, "://");
	size_t n = e ? (size_t)(e - uri) : 0;

	if (n >= len)
		n = len - 1;
	memcpy(buf, uri, n);
	buf[n] = '\0';
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	/* Written then renamed, so a reader polling for the file never sees half of it. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	if (rename(tmp, path) < 0) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

struct serve_cfg {
	const char *listen;
	const char *port_file;
	const char *policy;
	int kitchen_cuda;
	struct svc_opts svc; /* the native services' model (svc.h) */
	struct wp_ctx_opts
		o; /* select, sqpoll, busy_poll, zc_threshold, shm_same_uid, ucx_trust_rma */
};

/* --model-name: one more id (the table's limit is checked here). */
static int serve_opt_model(const char *cmd, const char *arg, void *dst)
{
	struct svc_opts *o = dst;

	if (!*arg || strlen(arg) > 256 || strchr(arg, '\n'))
		return tool_usage_error(cmd, "--model-name takes 1 to 256 bytes without a newline");
	if (o->n_models == SVC_MODELS_MAX)
		return tool_usage_error(cmd, "--model-name may be given at most %d times",
					SVC_MODELS_MAX);
	o->models[o->n_models++] = arg;
	return 0;
}

static const struct tool_opt serve_opts[] = {
	{ .name = "listen",
	  .kind = TOOL_OPT_STR,
	  .off = offsetof(struct serve_cfg, listen),
	  .meta = "URI",
	  .help = "tcp://HOST:PORT, uring://HOST:PORT or any://HOST:PORT\n"
		  "(port 0 picks a free one)" },
	{ .name = "port-file",
	  .kind = TOOL_OPT_FILE,
	  .off = offsetof(struct serve_cfg, port_file),
	  .meta = "F",
	  .help = "also write the bound port to F (atomically)" },
	{ .name = "select",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_select,
	  .off = offsetof(struct serve_cfg, o.select),
	  .meta = "MODE",
	  .takes = "require, prefer or any",
	  .help = "require (fail if the path is unavailable), prefer (fall\n"
		  "back, loudly; the default) or any" },
	{ .name = "sqpoll",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct serve_cfg, o.sqpoll),
	  .help = "uring: kernel submission polling thread" },
	{ .name = "busy-poll",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct serve_cfg, o.busy_poll),
	  .help = "never sleep waiting for events; spin" },
	{ .name = "zc-threshold",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_zc,
	  .off = offsetof(struct serve_cfg, o.zc_threshold),
	  .meta = "N",
	  .takes = "a byte count >= 1 (K/M suffix) or 'never'",
	  .help = "uring: zero-copy send at or above N bytes (K/M suffix),\n"
		  "or 'never'" },
	{ .name = "kitchen",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_kitchen,
	  .off = offsetof(struct serve_cfg, kitchen_cuda),
	  .meta = "sim|cuda",
	  .takes = "sim or cuda",
	  .help = "the model stub: sim (default) waits service_us; cuda\n"
		  "first delivers each prompt to GPU memory through the\n"
		  "GPU feed (pinned mode) and checks the GPU's checksum\n"
		  "of it against the host's (docs/gpu.md)" },
	{ .name = "policy",
	  .kind = TOOL_OPT_FILE,
	  .off = offsetof(struct serve_cfg, policy),
	  .meta = "RULES",
	  .help = "require authentication v2 with RULES' tenant keys\n"
		  "(docs/policy.md): on tcp and uring a handshake proving\n"
		  "the key, then every frame in AES-256-GCM records\n"
		  "(TLS 1.3-style, in user space); on shm, clients prove\n"
		  "their key at set-up. Refusals close the connection,\n"
		  "and the stats call answers only admin tenants" },
	/* The native services' model (docs/daemon.md, "Native backends"). */
	{ .name = "model-name",
	  .kind = TOOL_OPT_FN,
	  .fn = serve_opt_model,
	  .off = offsetof(struct serve_cfg, svc),
	  .meta = "NAME",
	  .repeat = 1,
	  .help = "a model id the native model service answers to (may\n"
		  "repeat, up to 16; default wp-stub)" },
	{ .name = "tokens",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, svc.tokens),
	  .min = 1,
	  .max = UINT32_MAX,
	  .meta = "N",
	  .help = "tokens generated when a request's max_tokens is 0\n"
		  "(finish reason stop; default 16); max_tokens N gives\n"
		  "exactly N tokens and finish reason length" },
	{ .name = "token-interval-us",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, svc.token_interval_us),
	  .max = 60000000,
	  .meta = "N",
	  .help = "pacing between tokens, in microseconds (0: back to\n"
		  "back, the default)" },
	{ .name = "decode-step-us",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, svc.decode_step_us),
	  .max = 60000000,
	  .meta = "N",
	  .help = "batched decoding: tokens leave on a common clock of\n"
		  "this period, every stream's together, as a batching\n"
		  "model server emits them (default 0: each stream on its\n"
		  "own timer)" },
	{ .name = "ttft-us",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, svc.ttft_us),
	  .max = 60000000,
	  .meta = "N",
	  .help = "wait before the first token, in microseconds (default 0)" },
	{ .name = "token-text",
	  .kind = TOOL_OPT_STR,
	  .off = offsetof(struct serve_cfg, svc.token_text),
	  .meta = "WORDS",
	  .help = "the model repeats these whitespace-separated words in\n"
		  "order (default: words from a fixed list, chosen by a\n"
		  "hash of the prompt: the same prompt, the same text)" },
	{ .name = "ucx-trust-rma",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct serve_cfg, o.ucx_trust_rma),
	  .help = "ucx: trust clients with this process's memory: RMA\n"
		  "even over software transports (tcp, shared memory),\n"
		  "which check nothing here (default: frames unless\n"
		  "every rma lane is verbs)" },
	{ .name = "shm-same-uid",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct serve_cfg, o.shm_same_uid),
	  .help = "shm: accept only clients running as our uid (SO_PEERCRED)" },
	/* Limits (docs/limits.md). */
	{ .name = "rx-budget",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_size64,
	  .off = offsetof(struct serve_cfg, o.rx_budget),
	  .meta = "N",
	  .takes = "a byte count (K/M/G suffix), at least the largest frame (16M)",
	  .help = "memory for frames split across reads, all connections\n"
		  "together (default 256M); past it the biggest stop being\n"
		  "read until memory frees" },
	{ .name = "conns-max",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, o.conns_max),
	  .max = UINT32_MAX,
	  .meta = "N",
	  .help = "accepted connections open at once (0: no limit, the\n"
		  "default; refusals are counted)" },
	{ .name = "conns-per-source",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, o.conns_per_source),
	  .max = UINT32_MAX,
	  .meta = "N",
	  .help = "... from one source address (0: no limit)" },
	{ .name = "conns-per-tenant",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct serve_cfg, o.conns_per_tenant),
	  .max = UINT32_MAX,
	  .meta = "N",
	  .help = "... of one tenant, with --policy (0: no limit)" },
	{ .name = "frame-timeout",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_timeout_ms,
	  .off = offsetof(struct serve_cfg, o.frame_timeout_ms),
	  .meta = "S",
	  .takes = "seconds in [0, 86400] or 'never'",
	  .help = "a started frame must complete within S seconds\n"
		  "(default 30; 0 or never: no limit)" },
	{ .name = "idle-timeout",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_timeout_ms,
	  .off = offsetof(struct serve_cfg, o.idle_timeout_ms),
	  .meta = "S",
	  .takes = "seconds in [0, 86400] or 'never'",
	  .help = "close a connection with no bytes either way for S\n"
		  "seconds (default never)" },
	{ .name = "handshake-timeout",
	  .kind = TOOL_OPT_FN,
	  .fn = tool_opt_timeout_ms,
	  .off = offsetof(struct serve_cfg, o.handshake_timeout_ms),
	  .meta = "S",
	  .takes = "seconds in [0, 86400] or 'never'",
	  .help = "an accepted connection must finish its setup (shm:\n"
		  "hello/ack; tcp, uring: its first frame) within S\n"
		  "seconds (default 10; 0 or never: no limit)" },
	{ .name = NULL },
};

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: wirepath serve --listen URI [--port-file F] [--select require|prefer|any]\n"
		"                      [--sqpoll] [--busy-poll] [--zc-threshold N] [--policy RULES]\n"
		"                      [--shm-same-uid] [--ucx-trust-rma]\n"
		"                      [--rx-budget N] [--conns-max N] [--conns-per-source N]\n"
		"                      [--conns-per-tenant N] [--frame-timeout S]\n"
		"                      [--idle-timeout S] [--handshake-timeout S]\n"
		"                      [--model-name NAME]... [--tokens N] [--token-interval-us N]\n"
		"                      [--ttft-us N] [--decode-step-us N] [--token-text WORDS]\n"
		"\n"
		"Offer the bench's stub services on one context driven by one thread:\n"
		"  tool (method %u)       [u32 resp_size][u32 service_us] -> resp_size bytes\n"
		"  memory (method %u)     [u32 bytes][u32 service_us] -> bytes\n"
		"  model (method %u)      [u32 tokens][u32 token_bytes][u32 token_batch]\n"
		"                        [u32 service_us][u32 interval_us] -> a token stream\n"
		"  telemetry (method %u)  one-way message, counted\n"
		"and the library's own stats call. Replies come from a static buffer (no copy).\n"
		"It also implements the native service contracts wirepathd speaks\n"
		"(include/wirepath/service.h; docs/daemon.md, \"Native backends\"):\n"
		"  generate (0x%x)  a token stream paced by --token-interval-us, then a finish\n"
		"                    chunk (reason, prompt and completion token counts)\n"
		"  embed (0x%x)     one unit vector of %d floats per input, from its hash\n"
		"  models (0x%x)    the --model-name ids\n"
		"  tools/list (0x%x), tools/call (0x%x)  MCP tools echo, sized and add\n"
		"Prints the chosen path's explain line and the bound port; SIGTERM or SIGINT\n"
		"stop it cleanly, and it prints the meter (JSON: the limits' counters too)\n"
		"and the native services' counters (\"services: {...}\"; SIGUSR1 prints them\n"
		"at any time). Limits for peers you do not trust: docs/limits.md.\n"
		"\n",
		WPB_TOOL, WPB_MEM, WPB_MODEL, WPB_TELEMETRY, WP_SVC_GENERATE, WP_SVC_EMBED,
		SVC_EMBED_DIM, WP_SVC_MODELS, WP_SVC_TOOLS_LIST, WP_SVC_TOOLS_CALL);
	tool_opt_help(f, serve_opts, 23);
}

/* What the library says without a context (the rules parser), as our own
 * one-line errors. */
static int serve_logged_errs;

static void serve_process_log(void *arg, enum wp_log_level level, const char *msg)
{
	serve_logged_errs += level == WP_LOG_ERR;
	fprintf(stderr, "wirepath serve: %s\n", msg);
}

int cmd_serve(int argc, char **argv)
{
	struct serve_cfg cfg = { 0 };
	struct wp_policy *pol = NULL;
	struct wp_ep_cbs cbs;
	struct sigaction sa;
	struct srv s;
	struct wp_ep *lep;
	char scheme[32];
	int rc, port, kerr, status = 0;

	memset(&s, 0, sizeof(s));
	wp_set_log(serve_process_log, NULL, WP_LOG_WARN);
	wp_ctx_opts_init(&cfg.o);
	cfg.o.log = tool_log;
	rc = tool_opt_parse("serve", serve_opts, &cfg, argc, argv, NULL);
	if (rc == TOOL_OPT_HELP) {
		serve_usage(stdout);
		return 0;
	}
	if (rc)
		return rc;
	s.busy_poll = cfg.o.busy_poll;
	if (!cfg.listen)
		return tool_usage_error(
			"serve", "--listen URI is required (e.g. --listen tcp://127.0.0.1:7000)");
	if (cfg.policy) {
		rc = wp_policy_parse_file(cfg.policy, &pol);
		if (rc < 0) {
			if (!serve_logged_errs)
				fprintf(stderr, "wirepath serve: %s: %s\n", cfg.policy,
					strerror(-rc));
			return EXIT_USAGE;
		}
	}

	/* Before any thread exists, so every thread the library starts is counted. */
	kerr = wp_meter_kernel_syscalls_start();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = serve_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the signal should cut the wait short */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The one buffer every reply points into. mmap: page-aligned, zero-copy friendly. */
	s.pattern = mmap(NULL, WPB_CHUNK_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (s.pattern == MAP_FAILED) {
		fprintf(stderr, "wirepath serve: cannot map the %u-byte reply buffer: %s\n",
			WPB_CHUNK_MAX, strerror(errno));
		wp_policy_free(pol);
		return 1;
	}
	for (size_t i = 0; i < WPB_CHUNK_MAX; i++)
		s.pattern[i] = wpb_pattern(i);

	rc = svc_create(&cfg.svc, &s.sched, &s.svc);
	if (rc < 0) {
		fprintf(stderr, "wirepath serve: %s\n",
			rc == -EINVAL ? "--token-text needs 1 to 4096 words of at most 256 bytes"
				      : strerror(-rc));
		status = rc == -EINVAL ? EXIT_USAGE : 1;
		goto out_unmap;
	}
	rc = wp_ctx_create(&cfg.o, &s.ctx);
	if (rc < 0) {
		fprintf(stderr, "wirepath serve: cannot create a context: %s\n", strerror(-rc));
		status = 1;
		goto out_unmap;
	}
	if (pol) {
		rc = wp_ctx_set_policy(s.ctx, pol);
		wp_policy_free(pol);
		pol = NULL;
		if (rc < 0) {
			fprintf(stderr, "wirepath serve: cannot apply %s: %s\n", cfg.policy,
				strerror(-rc));
			status = 1;
			goto out_destroy;
		}
	}
	if (cfg.kitchen_cuda) {
		struct wp_gpu_opts go;

		wp_gpu_opts_init(&go);
		rc = wp_gpu_feed_open(s.ctx, &go, &s.feed);
		if (rc < 0) {
			/* The reason went to tool_log: the context's log. */
			fprintf(stderr,
				"wirepath serve: --kitchen cuda: %s (use --kitchen sim on a "
				"host without a GPU)\n",
				strerror(-rc));
			status = 1;
			goto out_destroy;
		}
	}
	if ((rc = wp_rpc_register(s.ctx, WPB_TOOL, on_tool, &s)) < 0 ||
	    (rc = wp_rpc_register(s.ctx, WPB_MEM, on_mem, &s)) < 0 ||
	    (rc = wp_rpc_register(s.ctx, WPB_MODEL, on_model, &s)) < 0 ||
	    (rc = wp_rpc_register(s.ctx, WPB_KV, on_kv, &s)) < 0 ||
	    (rc = svc_register(s.svc, s.ctx)) < 0) {
		fprintf(stderr, "wirepath serve: cannot register the stub services: %s\n",
			strerror(-rc));
		status = 1;
		goto out_destroy;
	}

	memset(&cbs, 0, sizeof(cbs));
	cbs.event = serve_on_event;
	cbs.msg = serve_on_msg;
	cbs.arg = &s;
	rc = wp_listen(s.ctx, cfg.listen, &cbs, &lep);
	if (rc < 0) {
		const struct wp_probe_result *pr;

		uri_scheme(cfg.listen, scheme, sizeof(scheme));
		pr = wp_probe_get(scheme);
		if (pr && !pr->ok)
			fprintf(stderr,
				"wirepath serve: cannot listen on %s: %s; %s unavailable: %s (%s)\n",
				cfg.listen, strerror(-rc), scheme, pr->detail,
				tool_errno_name(pr->err));
		else
			fprintf(stderr, "wirepath serve: cannot listen on %s: %s (%s)\n",
				cfg.listen, strerror(-rc), tool_errno_name(rc));
		status = 1;
		goto out_destroy;
	}
	port = wp_ep_local_port(lep);
	/* shm has no port: its number is the abstract socket name, in the connect URI. */
	if (wp_ctx_path(s.ctx) && !strcmp(wp_ctx_path(s.ctx), "shm"))
		printf("wirepath serve: listening on %s, path shm\n", cfg.listen);
	else
		printf("wirepath serve: listening on %s, port %d, path %s\n", cfg.listen, port,
		       wp_ctx_path(s.ctx) ? wp_ctx_path(s.ctx) : "?");
	{
		char cu[160];

		if (wp_ep_local_uri(lep, cu, sizeof(cu)) == 0)
			printf("connect: %s\n", cu);
	}
	printf("explain: %s\n", wp_ctx_explain(s.ctx));
	if (s.feed)
		printf("kitchen: cuda: %s\n", wp_gpu_feed_explain(s.feed));
	if (kerr < 0)
		printf("meter: syscalls counted by the library only (kernel count: %s)\n",
		       strerror(-kerr));
	else
		printf("meter: syscalls kernel-counted (raw_syscalls:sys_enter)\n");
	fflush(stdout);
	if (cfg.port_file) {
		rc = write_port_file(cfg.port_file, port);
		if (rc < 0) {
			fprintf(stderr, "wirepath serve: cannot write the port file %s: %s\n",
				cfg.port_file, strerror(-rc));
			status = 1;
			goto out_destroy;
		}
	}

	while (!serve_stop) {
		uint64_t now = wp_now_ns();
		int64_t timeout;

		sched_run(&s.sched, now);
		if (serve_report) {
			serve_report = 0;
			serve_print_services(&s);
		}
		timeout = s.busy_poll ? 0
				      : sched_timeout_us(&s.sched, wp_now_ns(), SERVE_IDLE_CAP_US);
		rc = wp_ctx_progress(s.ctx, timeout);
		if (rc < 0 && rc != -EINTR) {
			fprintf(stderr, "wirepath serve: the context failed: %s\n", strerror(-rc));
			status = 1;
			break;
		}
	}

	/* Answers still pending end now; their callers see the status. Prompts
	 * still on their way to the GPU complete with -ECANCELED at close. */
	if (s.feed) {
		wp_gpu_feed_close(s.feed);
		s.feed = NULL;
	}
	sched_fini(&s.sched);
	if (serve_stop)
		printf("wirepath serve: stopped by %s: %" PRIu64
		       " connections, calls: tool %" PRIu64 ", memory %" PRIu64 ", model %" PRIu64
		       ", telemetry %" PRIu64 " (%" PRIu64 " bytes); %" PRIu64
		       " bad requests, %" PRIu64 " send errors\n",
		       serve_stop == SIGINT ? "SIGINT" : "SIGTERM", s.conns, s.calls[WPB_TOOL],
		       s.calls[WPB_MEM], s.calls[WPB_MODEL], s.telemetry_msgs, s.telemetry_bytes,
		       s.bad_requests, s.send_errors);
	if (serve_stop)
		serve_print_services(&s);
	if (serve_stop) {
		struct wp_meter_snap ms;
		char js[4096];

		wp_meter_snapshot(&ms);
		if (wp_meter_json(&ms, js, sizeof(js)) < (int)sizeof(js))
			printf("meter: %s\n", js);
	}
	if (cfg.kitchen_cuda)
		printf("kitchen: %" PRIu64 " prompts (%" PRIu64 " bytes) in GPU memory, %" PRIu64
		       " host bytes copied, %" PRIu64 " checksum mismatches, %" PRIu64 " errors\n",
		       s.kitchen_payloads, s.kitchen_bytes, s.kitchen_host_copies,
		       s.kitchen_mismatch, s.kitchen_errors);
	fflush(stdout);
out_destroy:
	if (s.feed)
		wp_gpu_feed_close(s.feed);
	wp_ctx_destroy(s.ctx);
out_unmap:
	sched_fini(&s.sched); /* drops nothing after a run: the heap is empty */
	svc_destroy(s.svc);
	wp_policy_free(pol); /* NULL once applied */
	while (s.free_jobs) {
		struct job *j = s.free_jobs;

		s.free_jobs = j->next_free;
		free(j);
	}
	munmap(s.pattern, WPB_CHUNK_MAX);
	return status;
}
