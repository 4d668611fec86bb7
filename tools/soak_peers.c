// SPDX-License-Identifier: MIT
/*
 * The soak's peers (docs/soak.md): the server and the client processes that
 * `wirepath soak` forks for each path, plus what every child shares (the
 * payload checksum, the report pipe).
 *
 * The server executes the agentic stub calls (tool, memory, model stream,
 * telemetry, hog) and checks every request before it does anything with it.
 * Executions are logged write-ahead: handlers only queue the answer and a
 * SOAK_REC_EXEC record; the loop writes the records to the report pipe and
 * only then starts the answers, which leave at the next wp_ctx_progress. So
 * an answer a client acknowledged always has its execution in the pipe, even
 * if the server was killed right after sending it.
 *
 * The client runs agents, each on its own endpoint, each a closed loop of
 * agent steps (memory lookups, one model token stream, `fanout` tool calls,
 * one telemetry message: docs/workload.md). A call that fails cleanly (a
 * negative errno: the peer died, the connection was reset, the deadline
 * passed) is issued again with the same id once the agent has reconnected:
 * an idempotent retry, which the ledger allows to execute more than once. A
 * call is acknowledged when on_done(0) ran and every chunk of its answer
 * was verified (checksum, id, index, count); only then is SOAK_REC_ACK sent.
 *
 * Tool code: the public API only.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "soak.h"
#include "util.h"
#include "wirepath/policy.h"

/* ------------------------------------------------------------------ */
/* Payloads                                                            */
/* ------------------------------------------------------------------ */

static const char *const soak_bad_names[SOAK_BAD__COUNT] = {
	[SOAK_OK] = "ok",
	[SOAK_BAD_SHORT] = "short",
	[SOAK_BAD_MAGIC] = "magic",
	[SOAK_BAD_SUM] = "checksum",
	[SOAK_BAD_ID] = "wrong_id",
	[SOAK_BAD_ORDER] = "order",
	[SOAK_BAD_COUNT] = "chunk_count",
	[SOAK_BAD_STATUS] = "server_error",
	[SOAK_BAD_HUNG] = "hung",
	[SOAK_BAD_EXIT] = "unexpected_exit",
	[SOAK_BAD_AUTH] = "auth_refused",
	[SOAK_BAD_SETUP] = "setup",
	[SOAK_BAD_RETRIES] = "retries_exhausted",
	[SOAK_BAD_STALLED] = "agent_stalled",
};

const char *soak_bad_name(unsigned bad)
{
	return bad < SOAK_BAD__COUNT ? soak_bad_names[bad] : "?";
}

static const char *const soak_ctr_names[SC__COUNT] = {
	[SC_STEPS] = "steps",
	[SC_ACKED] = "calls_acked",
	[SC_TOKENS] = "tokens_verified",
	[SC_TEL_SENT] = "telemetry_sent",
	[SC_RETRIES] = "retries",
	[SC_FAIL_RESET] = "failed_econnreset",
	[SC_FAIL_ABORT] = "failed_econnaborted",
	[SC_FAIL_TIMEOUT] = "failed_etimedout",
	[SC_FAIL_OTHER] = "failed_other_errno",
	[SC_RECONNECTS] = "reconnects",
	[SC_BACKPRESSURE] = "backpressure",
	[SC_RX_RING_EMPTY] = "uring_rx_enobufs",
	[SC_ABORTS] = "aborted_endpoints",
	[SC_HOG_SENT] = "hog_sent",
	[SC_EXECUTED] = "executed",
	[SC_REPLY_LOST] = "replies_to_gone_clients",
	[SC_TEL_OK] = "telemetry_verified",
	[SC_HOG_OK] = "hog_verified",
	[SC_RELOADS] = "policy_reloads",
	[SC_BAD_AUTH] = "frames_refused_auth",
	[SC_CONNS] = "connections",
	[SC_LISTEN_RETRIES] = "listen_eaddrinuse_retries",
	[SC_PX_CONNS] = "proxy_connections",
	[SC_PX_RESETS] = "proxy_resets",
	[SC_PX_BYTES] = "proxy_bytes",
	[SC_PX_DRIP_BYTES] = "proxy_drip_bytes",
	[SC_PX_ORPHANS] = "proxy_orphans_reset",
};

const char *soak_ctr_name(unsigned c)
{
	return c < SC__COUNT ? soak_ctr_names[c] : "?";
}

uint64_t soak_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		/* The checksum field (bytes 32..39) counts as zero. */
		if (i == 32) {
			h = soak_mix(h, 0);
			continue;
		}
		memcpy(&w, b + i, 8);
		h = soak_mix(h, w);
	}
	if (i < len) {
		uint64_t w = 0;

		memcpy(&w, b + i, len - i);
		h = soak_mix(h, w);
	}
	return soak_mix(h, len);
}

static uint64_t body_word(const struct soak_hdr *h, uint64_t i)
{
	uint64_t x = h->id * 0x9e3779b97f4a7c15ull + h->idx * 0xbf58476d1ce4e5b9ull + i;

	x ^= x >> 31;
	return x * 0x94d049bb133111ebull;
}

void soak_fill(void *buf, size_t len, const struct soak_hdr *h)
{
	uint8_t *b = buf;
	size_t i;

	wpb_put32(b, SOAK_MAGIC);
	wpb_put32(b + 4, h->kind);
	wpb_put64(b + 8, h->id);
	wpb_put32(b + 16, h->idx);
	wpb_put32(b + 20, h->n);
	wpb_put32(b + 24, (uint32_t)len);
	wpb_put32(b + 28, h->arg);
	wpb_put64(b + 32, 0);
	for (i = SOAK_HDR; i + 8 <= len; i += 8) {
		uint64_t w = body_word(h, i);

		memcpy(b + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = body_word(h, i);

		memcpy(b + i, &w, len - i);
	}
	wpb_put64(b + 32, soak_sum(b, len));
}

int soak_check(const void *buf, size_t len, struct soak_hdr *h)
{
	const uint8_t *b = buf;

	if (len < SOAK_HDR)
		return SOAK_BAD_SHORT;
	if (wpb_get32(b) != SOAK_MAGIC)
		return SOAK_BAD_MAGIC;
	h->kind = wpb_get32(b + 4);
	h->id = wpb_get64(b + 8);
	h->idx = wpb_get32(b + 16);
	h->n = wpb_get32(b + 20);
	h->len = wpb_get32(b + 24);
	h->arg = wpb_get32(b + 28);
	if (h->len != len)
		return SOAK_BAD_SHORT;
	if (wpb_get64(b + 32) != soak_sum(b, len))
		return SOAK_BAD_SUM;
	return SOAK_OK;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

#define REPORT_BUF 256 /* records: 8 KiB per write at most */

static struct {
	int fd;
	uint32_t n;
	struct soak_rec r[REPORT_BUF];
	unsigned printed;
} rep = { .fd = -1 };

void soak_report_init(int fd)
{
	rep.fd = fd;
	rep.n = 0;
}

void soak_report_flush(void)
{
	const uint8_t *p = (const uint8_t *)rep.r;
	size_t left = rep.n * sizeof(rep.r[0]);

	/* Blocking writes: the orchestrator drains every pipe in its loop, and a
	 * full pipe holding a server back is back-pressure, not loss. */
	while (left) {
		ssize_t n = write(rep.fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3); /* the orchestrator is gone: nobody to report to */
		p += n;
		left -= (size_t)n;
	}
	rep.n = 0;
}

void soak_report(uint32_t type, uint32_t key, uint64_t id, uint64_t a, uint64_t b)
{
	if (rep.n == REPORT_BUF)
		soak_report_flush();
	rep.r[rep.n++] = (struct soak_rec){ .type = type, .key = key, .id = id, .a = a, .b = b };
}

void soak_report_counters(const uint64_t *ctr)
{
	for (unsigned i = 0; i < SC__COUNT; i++)
		if (ctr[i])
			soak_report(SOAK_REC_COUNT, i, 0, ctr[i], 0);
}

void soak_violation(const char *who, unsigned bad, uint64_t id, const char *fmt, ...)
{
	va_list ap;

	soak_report(SOAK_REC_BAD, bad, id, bad, 0);
	if (rep.printed++ >= 10)
		return;
	fprintf(stderr, "wirepath soak: %s: VIOLATION %s (call %" PRIx64 "): ", who,
		soak_bad_name(bad), id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * The contexts' log: only with SOAK_DEBUG set. The faults make the library
 * log errors by design (refused connects while a victim restarts, resets),
 * thousands in a long run; what matters is counted and checked instead.
 */
static void peer_log(void *arg, enum wp_log_level level, const char *msg)
{
	static int debug = -1;

	if (debug < 0)
		debug = getenv("SOAK_DEBUG") != NULL;
	if (debug && level <= WP_LOG_WARN)
		fprintf(stderr, "wirepath soak: %s: library: %s\n", (const char *)arg, msg);
}

static volatile sig_atomic_t peer_stop, peer_usr1;

static void peer_on_signal(int sig)
{
	if (sig == SIGUSR1)
		peer_usr1 = 1;
	else
		peer_stop = 1;
}

static void peer_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = peer_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void peer_opts(const struct soak_peer_cfg *c, struct wp_ctx_opts *o)
{
	wp_ctx_opts_init(o);
	o->select = WP_SELECT_REQUIRE;
	o->log = peer_log;
	o->log_arg = (void *)c->who;
	o->log_level = WP_LOG_ERR;
	if (c->squeeze) {
		/* Rings full: 8 shm descriptors and a 1 MiB arena per direction,
		 * so senders meet back-pressure all the time; 4 provided buffers of
		 * 4 KiB on uring, so the kernel runs out and answers ENOBUFS. */
		o->shm_slots = 8;
		o->shm_arena_mb = 1;
		o->shm_heap_mb = 1;
		o->rx_buf_count = 4;
		o->rx_buf_size = 4096;
	}
}

static void hex_key(const uint8_t k[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

struct sjob {
	struct sjob *next;
	struct wp_call *call;
	struct soak_hdr h; /* the request's: kind, id, n answers of arg bytes */
	uint32_t sent;
};

struct sconn {
	struct sconn *prev, *next; /* every open connection, freed at the end */
	uint32_t tel_next;         /* the index the next telemetry message must carry */
};

struct ssrv {
	const struct soak_peer_cfg *c;
	struct wp_ctx *ctx;
	struct sjob *head, *tail; /* answers to start or continue, in order */
	struct sjob *free_jobs;
	struct sconn *conns;
	uint64_t ctr[SC__COUNT];
	uint64_t rng;
	uint32_t reload_gen;
};

static void srv_buf_done(void *arg, int status)
{
	free(arg);
}

static void srv_push(struct ssrv *s, struct sjob *j)
{
	j->next = NULL;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
}

/* Every request: checked before anything is done with it. */
static void srv_on_call(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct ssrv *s = arg;
	struct soak_hdr h;
	struct sjob *j;
	int bad = soak_check(req->data, req->len, &h);

	if (bad == SOAK_OK && h.kind != req->method)
		bad = SOAK_BAD_ID;
	if (bad == SOAK_OK && (h.n == 0 || h.n > 1u << 16 || h.arg > (1u << 20)))
		bad = SOAK_BAD_COUNT;
	if (bad != SOAK_OK) {
		soak_violation(s->c->who, bad,
			       req->len >= 16 ? wpb_get64((const uint8_t *)req->data + 8) : 0,
			       "request of %u bytes (method %u) refused", req->len, req->method);
		wp_call_error(call, EPROTO, "soak: request failed its check");
		return;
	}
	j = s->free_jobs;
	if (j)
		s->free_jobs = j->next;
	else
		j = malloc(sizeof(*j));
	if (!j) {
		wp_call_error(call, ENOMEM, "soak: server out of memory");
		return;
	}
	j->call = call;
	j->h = h;
	j->sent = 0;
	/* Write-ahead: the record reaches the pipe before the answer starts. */
	soak_report(SOAK_REC_EXEC, 0, h.id, h.kind, 0);
	s->ctr[SC_EXECUTED]++;
	srv_push(s, j);
}

/* Send what back-pressure allows of one answer; 1 when it is over. */
static int srv_job_run(struct ssrv *s, struct sjob *j)
{
	uint32_t len = SOAK_HDR + j->h.arg;
	int rc;

	if (wp_call_cancelled(j->call)) {
		wp_call_end(j->call, ECANCELED);
		s->ctr[SC_REPLY_LOST]++;
		return 1;
	}
	for (uint32_t burst = 0; j->sent < j->h.n && burst < 64; burst++) {
		struct soak_hdr r = { .kind = j->h.kind,
				      .id = j->h.id,
				      .idx = j->sent,
				      .n = j->h.n,
				      .arg = j->h.arg };
		uint8_t *buf = malloc(len);

		if (!buf)
			return 0; /* try again next round */
		soak_fill(buf, len, &r);
		if (j->h.n == 1) {
			/* Terminal: the handle is freed whatever this returns. */
			rc = wp_call_reply(j->call, buf, len, srv_buf_done, buf);
			if (rc < 0) {
				free(buf);
				s->ctr[SC_REPLY_LOST]++;
			}
			return 1;
		}
		rc = wp_call_stream(j->call, buf, len, srv_buf_done, buf);
		if (rc < 0) {
			free(buf); /* an error took nothing: done will not run */
			if (tool_backpressure(rc))
				return 0;
			s->ctr[SC_REPLY_LOST]++;
			wp_call_end(j->call, EIO);
			return 1;
		}
		j->sent++;
	}
	if (j->sent < j->h.n)
		return 0;
	wp_call_end(j->call, 0);
	return 1;
}

static void srv_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct ssrv *s = arg;

	struct sconn *sc;

	if (ev == WP_EP_CONNECTED) {
		s->ctr[SC_CONNS]++;
		sc = calloc(1, sizeof(*sc));
		if (sc) {
			sc->next = s->conns;
			if (s->conns)
				s->conns->prev = sc;
			s->conns = sc;
		}
		wp_ep_set_user(ep, sc);
	} else if (ev == WP_EP_CLOSED && (sc = wp_ep_user(ep))) {
		if (sc->prev)
			sc->prev->next = sc->next;
		else
			s->conns = sc->next;
		if (sc->next)
			sc->next->prev = sc->prev;
		free(sc);
		wp_ep_set_user(ep, NULL);
	}
}

static void srv_on_msg(void *arg, struct wp_ep *ep, struct wp_msg *msg)
{
	struct ssrv *s = arg;
	struct sconn *sc = wp_ep_user(ep);
	struct soak_hdr h;
	int bad = soak_check(msg->data, msg->len, &h);

	if (bad == SOAK_OK && h.kind != msg->method)
		bad = SOAK_BAD_ID;
	if (bad != SOAK_OK) {
		soak_violation(s->c->who, bad, 0, "one-way message of %u bytes (method %u)",
			       msg->len, msg->method);
		return;
	}
	if (h.kind == SOAK_HOG) {
		s->ctr[SC_HOG_OK]++;
		return;
	}
	/* Telemetry: in order, no gap, on each connection (a stream loses
	 * nothing in the middle; only a connection's end may cut the tail). */
	if (sc && h.idx != sc->tel_next)
		soak_violation(s->c->who, SOAK_BAD_ORDER, h.id,
			       "telemetry #%u on a connection that expected #%u", h.idx,
			       sc->tel_next);
	if (sc)
		sc->tel_next = h.idx + 1;
	s->ctr[SC_TEL_OK]++;
}

/*
 * A policy reload: the two good tenants keep their keys, so good traffic
 * goes on; a third tenant comes and goes with a fresh key each time.
 */
static int srv_reload(struct ssrv *s)
{
	char ka[33], kb[33], kx[33], text[512];
	uint8_t x[16];
	struct wp_policy *p;
	int n, rc;

	hex_key(s->c->key, ka);
	hex_key(s->c->key_other, kb);
	for (int i = 0; i < 16; i += 8) {
		s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(x + i, &s->rng, 8);
	}
	x[0] |= 1; /* never all zero */
	hex_key(x, kx);
	n = snprintf(text, sizeof(text),
		     "default pass\n"
		     "tenant agents-a id %u key %s\n"
		     "tenant agents-b id %u key %s\n",
		     SOAK_TENANT_A, ka, SOAK_TENANT_B, kb);
	if (s->reload_gen & 1)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "tenant visitor-%u id %u key %s\n", s->reload_gen,
			      3 + s->reload_gen % 64, kx);
	rc = wp_policy_parse("soak-policy", text, (size_t)n, &p);
	if (rc < 0)
		return rc;
	rc = wp_ctx_set_policy(s->ctx, p);
	wp_policy_free(p);
	if (rc == 0) {
		s->reload_gen++;
		s->ctr[SC_RELOADS]++;
	}
	return rc;
}

int soak_server_main(const struct soak_peer_cfg *c)
{
	struct ssrv s;
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs;
	struct wp_ep *l;
	struct wp_meter_snap m;
	uint64_t next_ctr = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	s.c = c;
	s.rng = c->seed | 1;
	soak_report_init(c->report_fd);
	peer_signals();
	peer_opts(c, &o);
	/*
	 * SOAK_RX_BUDGET (issue 12, the memory-budget fault): the two hogs'
	 * partial 3 MiB frames (6 MiB) overrun a 4 MiB receive budget
	 * (docs/limits.md): one assembles, the other is paused until it can.
	 */
	if (c->rx_budget) {
		o.max_frame = (uint32_t)c->rx_budget;
		o.rx_budget = c->rx_budget;
	}
	rc = wp_ctx_create(&o, &s.ctx);
	if (rc < 0) {
		soak_violation(c->who, SOAK_BAD_SETUP, 0, "cannot create a context: %s",
			       strerror(-rc));
		soak_report_flush();
		return 1;
	}
	for (uint32_t k = SOAK_TOOL; k <= SOAK_MODEL && rc == 0; k++)
		rc = wp_rpc_register(s.ctx, k, srv_on_call, &s);
	if (rc == 0)
		rc = srv_reload(&s);
	memset(&cbs, 0, sizeof(cbs));
	cbs.event = srv_on_event;
	cbs.msg = srv_on_msg;
	cbs.arg = &s;
	/*
	 * A restarted server takes its predecessor's address. On uring the
	 * killed process's listening socket outlives it for a moment: the
	 * kernel tears an io_uring instance down in a workqueue after the
	 * process is gone (io_ring_exit_work), and the ring's registered files,
	 * the listener among them, are released only then. So EADDRINUSE is
	 * retried for up to 10 s, and counted.
	 */
	for (int tries = 0; rc == 0; tries++) {
		rc = wp_listen(s.ctx, c->listen, &cbs, &l);
		if (rc != -EADDRINUSE || tries >= 200 || peer_stop)
			break;
		s.ctr[SC_LISTEN_RETRIES]++;
		rc = 0;
		usleep(50000);
	}
	if (rc < 0) {
		soak_violation(c->who, SOAK_BAD_SETUP, 0, "cannot serve %s: %s", c->listen,
			       strerror(-rc));
		soak_report_flush();
		wp_ctx_destroy(s.ctx);
		return 1;
	}

	while (!peer_stop) {
		struct sjob *list = s.head;

		rc = wp_ctx_progress(s.ctx, list ? 0 : 20000);
		if (rc < 0 && rc != -EINTR) {
			soak_violation(c->who, SOAK_BAD_SETUP, 0, "the context failed: %s",
				       strerror(-rc));
			break;
		}
		if (peer_usr1) {
			peer_usr1 = 0;
			rc = srv_reload(&s);
			if (rc < 0)
				soak_violation(c->who, SOAK_BAD_SETUP, 0,
					       "policy reload failed: %s", strerror(-rc));
		}
		/* The executions of this round reach the pipe before their answers
		 * are queued (they leave at the next progress). */
		soak_report_flush();
		list = s.head;
		s.head = s.tail = NULL;
		while (list) {
			struct sjob *j = list;

			list = j->next;
			if (srv_job_run(&s, j)) {
				j->next = s.free_jobs;
				s.free_jobs = j;
			} else {
				srv_push(&s, j);
			}
		}
		if (wp_now_ns() >= next_ctr) {
			next_ctr = wp_now_ns() + 500 * 1000000ull;
			wp_meter_snapshot(&m);
			s.ctr[SC_BAD_AUTH] = m.bad_frames[WP_BAD_AUTH];
			soak_report_counters(s.ctr);
			soak_report_flush();
		}
	}
	while (s.head) {
		struct sjob *j = s.head;

		s.head = j->next;
		wp_call_end(j->call, ECANCELED);
		free(j);
	}
	wp_ctx_destroy(s.ctx);
	/* Connections still open at the destroy got no WP_EP_CLOSED. */
	while (s.conns) {
		struct sconn *sc = s.conns;

		s.conns = sc->next;
		free(sc);
	}
	while (s.free_jobs) {
		struct sjob *j = s.free_jobs;

		s.free_jobs = j->next;
		free(j);
	}
	wp_meter_snapshot(&m);
	s.ctr[SC_BAD_AUTH] = m.bad_frames[WP_BAD_AUTH];
	soak_report_counters(s.ctr);
	soak_report_flush();
	return 0;
}

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

enum { OP_WAIT, OP_FLIGHT, OP_ACKED, OP_GAVE_UP };
enum { PH_MEM, PH_MODEL, PH_TOOL, PH_TEL, PH_IDLE };
enum { AG_DOWN, AG_CONNECTING, AG_UP, AG_CLOSED };

struct cagent;

struct cop {
	struct cagent *a;
	struct soak_hdr h; /* the request: kind, id, n answers of arg bytes */
	int state;
	uint32_t attempts;
	uint32_t req_pending; /* attempts whose request the library still holds */
	uint32_t got;         /* answer chunks verified in this attempt */
	int bad;              /* this attempt had a bad chunk */
	int hung_reported;
	uint64_t t_issue;
	uint32_t req_len;
	uint8_t *req;
};

struct ccli;

struct cagent {
	struct ccli *cl;
	uint32_t idx;
	const char *uri;
	int hog; /* the hog endpoint: one slow SOAK_HOG message at a time */
	struct wp_ep *ep;
	int state;
	uint64_t reconnect_at;
	uint32_t backoff_ms;
	int ph;
	struct cop *ops;
	uint32_t nops, cap;
	uint32_t inflight; /* calls whose on_done has not run */
	int stalled;
	/* telemetry (and the hog's message) */
	uint32_t tel_idx; /* index on this connection */
	int tel_state;    /* 0 to send, 1 in flight, 2 sent */
	uint64_t tel_t0;  /* when the one in flight was sent */
	int tel_hung_reported;
	uint8_t *tel_buf;
	uint32_t tel_len;
	uint64_t rng;
	uint64_t step_t0; /* when the step in hand started (liveness) */
	int stall_reported;
};

struct ccli {
	const struct soak_peer_cfg *c;
	const struct wl *w;
	struct wp_ctx *ctx;
	struct cagent *agents;
	uint32_t nagents;
	uint32_t next_seq;
	uint64_t ctr[SC__COUNT];
	int stopping;
	uint32_t abort_next;
};

static uint64_t cl_rng(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t cl_next_id(struct ccli *cl)
{
	return (uint64_t)cl->c->cid << 32 | ++cl->next_seq;
}

static void agent_advance(struct cagent *a);

static void op_req_done(void *arg, int status)
{
	struct cop *op = arg;

	op->req_pending--;
	agent_advance(op->a);
}

static void op_on_data(void *arg, struct wp_msg *chunk)
{
	struct cop *op = arg;
	struct ccli *cl = op->a->cl;
	struct soak_hdr h;
	int bad = soak_check(chunk->data, chunk->len, &h);

	if (op->bad)
		return;
	if (bad == SOAK_OK && (h.id != op->h.id || h.kind != op->h.kind))
		bad = SOAK_BAD_ID;
	if (bad == SOAK_OK && (h.idx != op->got || h.n != op->h.n))
		bad = SOAK_BAD_ORDER;
	if (bad == SOAK_OK && h.len != SOAK_HDR + op->h.arg)
		bad = SOAK_BAD_SHORT;
	if (bad != SOAK_OK) {
		op->bad = 1;
		soak_violation(
			cl->c->who, bad, op->h.id, "%s answer chunk %u (of %u) with %u bytes: %s",
			wpb_method_name(op->h.kind), op->got, op->h.n, chunk->len,
			bad == SOAK_BAD_SUM ? "checksum mismatch" : "not the chunk expected");
		return;
	}
	op->got++;
	if (op->h.kind == SOAK_MODEL)
		cl->ctr[SC_TOKENS]++;
}

static void op_on_done(void *arg, int status)
{
	struct cop *op = arg;
	struct cagent *a = op->a;
	struct ccli *cl = a->cl;

	a->inflight--;
	if (status == 0 && !op->bad && op->got == op->h.n) {
		op->state = OP_ACKED;
		cl->ctr[SC_ACKED]++;
		soak_report(SOAK_REC_ACK, 0, op->h.id, op->attempts, op->h.kind);
	} else if (status == 0) {
		if (!op->bad)
			soak_violation(cl->c->who, SOAK_BAD_COUNT, op->h.id,
				       "%s answer ended after %u of %u chunks",
				       wpb_method_name(op->h.kind), op->got, op->h.n);
		op->state = OP_GAVE_UP;
	} else if (status > 0) {
		soak_violation(cl->c->who, SOAK_BAD_STATUS, op->h.id,
			       "%s call ended with server status %d", wpb_method_name(op->h.kind),
			       status);
		op->state = OP_GAVE_UP;
	} else {
		/* A clean failure: the call ended with the reason, exactly once. */
		if (getenv("SOAK_DEBUG"))
			fprintf(stderr,
				"%s: agent %u (%s, state %d): %s call %" PRIx64 " attempt %u: %s\n",
				cl->c->who, a->idx, a->uri, a->state, wpb_method_name(op->h.kind),
				op->h.id, op->attempts, tool_errno_name(status));
		cl->ctr[status == -ECONNRESET     ? SC_FAIL_RESET
			: status == -ECONNABORTED ? SC_FAIL_ABORT
			: status == -ETIMEDOUT    ? SC_FAIL_TIMEOUT
						  : SC_FAIL_OTHER]++;
		if (op->attempts >= SOAK_MAX_ATTEMPTS) {
			soak_violation(cl->c->who, SOAK_BAD_RETRIES, op->h.id,
				       "%s call failed %u times, last: %s",
				       wpb_method_name(op->h.kind), op->attempts,
				       tool_errno_name(status));
			op->state = OP_GAVE_UP;
		} else {
			op->state = OP_WAIT;
		}
	}
	agent_advance(a);
}

/* 0 issued, 1 back-pressure or endpoint going down (try later). */
static int op_issue(struct cagent *a, struct cop *op)
{
	struct wp_call_params p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.method = op->h.kind;
	p.req = op->req;
	p.req_len = op->req_len;
	p.deadline_us = SOAK_CALL_DEADLINE_US;
	p.req_done = op_req_done;
	p.on_data = op_on_data;
	p.on_done = op_on_done;
	p.arg = op;
	rc = wp_rpc_call(a->ep, &p, NULL);
	if (rc < 0) {
		if (tool_backpressure(rc)) {
			a->cl->ctr[SC_BACKPRESSURE]++;
			a->stalled = 1;
		}
		return 1;
	}
	if (op->attempts)
		a->cl->ctr[SC_RETRIES]++;
	op->attempts++;
	op->req_pending++;
	op->state = OP_FLIGHT;
	op->got = 0;
	op->bad = 0;
	op->hung_reported = 0;
	op->t_issue = wp_now_ns();
	a->inflight++;
	return 0;
}

static void phase_start(struct cagent *a, int ph, uint32_t count, uint32_t kind, uint32_t req_bytes,
			uint32_t n)
{
	const struct wl *w = a->cl->w;

	a->ph = ph;
	a->nops = count;
	for (uint32_t i = 0; i < count; i++) {
		struct cop *op = &a->ops[i];
		uint32_t arg = kind == SOAK_MODEL ? w->token_bytes * w->token_batch
			       : kind == SOAK_MEM
				       ? w->mem_bytes
				       : wl_tool_resp_size(w, (double)(cl_rng(&a->rng) >> 11) /
								      9007199254740992.0);

		op->a = a;
		op->h = (struct soak_hdr){ .kind = kind,
					   .id = cl_next_id(a->cl),
					   .n = n,
					   .arg = arg };
		op->state = OP_WAIT;
		op->attempts = 0;
		op->req_len = req_bytes > SOAK_HDR ? req_bytes : SOAK_HDR;
		soak_fill(op->req, op->req_len, &op->h);
	}
}

static int phase_settled(const struct cagent *a)
{
	for (uint32_t i = 0; i < a->nops; i++) {
		const struct cop *op = &a->ops[i];

		if (op->req_pending || (op->state != OP_ACKED && op->state != OP_GAVE_UP))
			return 0;
	}
	return 1;
}

static void tel_done(void *arg, int status)
{
	struct cagent *a = arg;

	if (status == 0) {
		a->tel_state = 2;
		a->cl->ctr[a->hog ? SC_HOG_SENT : SC_TEL_SENT]++;
	} else {
		a->tel_state = 0; /* on the next connection */
	}
	agent_advance(a);
}

/* Send the telemetry (or hog) message; 0 sent, 1 not now. */
static int tel_send(struct cagent *a)
{
	struct ccli *cl = a->cl;
	struct soak_hdr h = { .kind = a->hog ? SOAK_HOG : SOAK_TEL,
			      .id = cl_next_id(cl),
			      .idx = a->tel_idx,
			      .n = 1 };
	int rc;

	soak_fill(a->tel_buf, a->tel_len, &h);
	rc = wp_ep_send_msg(a->ep, h.kind, a->tel_buf, a->tel_len, tel_done, a);
	if (rc < 0) {
		if (tool_backpressure(rc)) {
			cl->ctr[SC_BACKPRESSURE]++;
			a->stalled = 1;
		}
		return 1;
	}
	a->tel_idx++;
	a->tel_state = 1;
	a->tel_t0 = wp_now_ns();
	a->tel_hung_reported = 0;
	return 0;
}

static void step_done(struct cagent *a)
{
	struct ccli *cl = a->cl;

	cl->ctr[SC_STEPS]++;
	a->tel_state = 0;
	a->step_t0 = wp_now_ns();
	a->stall_reported = 0;
	if (cl->stopping) {
		a->ph = PH_IDLE;
		return;
	}
	phase_start(a, PH_MEM, cl->w->mem_lookups, SOAK_MEM, SOAK_HDR, 1);
}

/*
 * Move the agent as far as it goes without waiting. Runs from callbacks
 * (the library allows new calls there) and from the loop.
 */
static void agent_advance(struct cagent *a)
{
	struct ccli *cl = a->cl;
	const struct wl *w = cl->w;

	while (a->state == AG_UP) {
		if (a->hog) {
			if (a->tel_state == 1 || cl->stopping || tel_send(a))
				return;
			continue;
		}
		a->stalled = 0;
		for (uint32_t i = 0; i < a->nops; i++)
			if (a->ops[i].state == OP_WAIT && op_issue(a, &a->ops[i]))
				return;
		if (!phase_settled(a))
			return;
		switch (a->ph) {
		case PH_MEM:
			phase_start(a, PH_MODEL, w->model_req_bytes ? 1 : 0, SOAK_MODEL,
				    w->model_req_bytes,
				    wpb_model_chunks(w->tokens, w->token_batch));
			break;
		case PH_MODEL:
			phase_start(a, PH_TOOL, w->fanout, SOAK_TOOL, w->tool_req_bytes, 1);
			break;
		case PH_TOOL:
			a->nops = 0;
			a->ph = PH_TEL;
			break;
		case PH_TEL:
			if (a->tel_state == 2) {
				step_done(a);
				break;
			}
			if (a->tel_state == 1 || tel_send(a))
				return;
			break;
		case PH_IDLE:
			return;
		}
	}
}

static void agent_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct cagent *a = arg;

	if (ev == WP_EP_CONNECTED) {
		a->state = AG_UP;
		a->backoff_ms = 0;
		a->tel_idx = 0;
		agent_advance(a);
	} else if (ev == WP_EP_CLOSED) {
		a->state = AG_CLOSED; /* the loop closes it and reconnects */
	}
}

static void agent_on_msg(void *arg, struct wp_ep *ep, struct wp_msg *msg)
{
}

static void agent_connect(struct cagent *a)
{
	struct ccli *cl = a->cl;
	struct wp_ep_cbs cbs = { .event = agent_on_event, .msg = agent_on_msg, .arg = a };
	int rc;

	rc = wp_connect(cl->ctx, a->uri, &cbs, &a->ep);
	if (rc < 0) {
		a->ep = NULL;
		a->state = AG_DOWN;
		a->reconnect_at = wp_now_ns() + 100 * 1000000ull;
		return;
	}
	rc = wp_ep_set_tenant_key(a->ep, cl->c->tenant, cl->c->key);
	if (rc < 0) {
		soak_violation(cl->c->who, SOAK_BAD_SETUP, 0, "cannot set the tenant key: %s",
			       strerror(-rc));
	}
	a->state = AG_CONNECTING;
	cl->ctr[SC_RECONNECTS]++;
}

/* The endpoint closed (or we closed it): free it, come back after a backoff. */
static void agent_down(struct cagent *a, uint64_t now)
{
	struct wp_ep *ep = a->ep;

	/* Down first: nothing is issued on an endpoint being closed. */
	a->state = AG_DOWN;
	a->ep = NULL;
	if (ep)
		wp_ep_close(ep);
	a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : 10;
	if (a->backoff_ms > 500)
		a->backoff_ms = 500;
	a->reconnect_at = now + a->backoff_ms * 1000000ull;
	/* A telemetry message in flight stays the library's until its done runs
	 * (with the error): tel_state stays 1 until then. */
}

static int agent_settled_for_stop(const struct cagent *a)
{
	if (a->hog)
		return a->tel_state != 1;
	return a->ph == PH_IDLE;
}

static void client_watchdog(struct ccli *cl, uint64_t now)
{
	/* A call must end (on_done) by its deadline; 10 s past it, the
	 * library lost a completion. */
	const uint64_t limit = (uint64_t)SOAK_CALL_DEADLINE_US * 1000 + 10 * 1000000000ull;

	for (uint32_t i = 0; i < cl->nagents; i++) {
		struct cagent *a = &cl->agents[i];

		/* Liveness: calls may fail and be retried, but a step must end.
		 * Faults keep a target away for a second or two at most. */
		if (!a->hog && a->ph != PH_IDLE && !a->stall_reported &&
		    now - a->step_t0 > SOAK_STEP_STALL_NS) {
			a->stall_reported = 1;
			soak_violation(cl->c->who, SOAK_BAD_STALLED, 0,
				       "agent %u (%s) in the same step for %.0f s (phase %d, "
				       "endpoint state %d, %u calls in flight)",
				       a->idx, a->uri, (double)(now - a->step_t0) / 1e9, a->ph,
				       a->state, a->inflight);
		}
		/* A one-way send's done runs when the bytes are gone or the
		 * endpoint closed; a hog's frame takes about 6 s at the drip. */
		if (a->tel_state == 1 && !a->tel_hung_reported && now - a->tel_t0 > limit) {
			a->tel_hung_reported = 1;
			soak_violation(cl->c->who, SOAK_BAD_HUNG, 0,
				       "%s message without a completion for %.1f s",
				       a->hog ? "hog" : "telemetry",
				       (double)(now - a->tel_t0) / 1e9);
		}
		for (uint32_t k = 0; k < a->nops; k++) {
			struct cop *op = &a->ops[k];

			if (op->state != OP_FLIGHT || op->hung_reported ||
			    now - op->t_issue < limit)
				continue;
			op->hung_reported = 1;
			soak_violation(cl->c->who, SOAK_BAD_HUNG, op->h.id,
				       "%s call without a completion for %.1f s (deadline %.1f s)",
				       wpb_method_name(op->h.kind),
				       (double)(now - op->t_issue) / 1e9,
				       SOAK_CALL_DEADLINE_US / 1e6);
		}
	}
}

/* The lowest call id not yet settled (acknowledged or given up, its request
 * released); every id below it is settled for good. */
static uint64_t client_low(const struct ccli *cl)
{
	uint64_t low = (uint64_t)cl->c->cid << 32 | (cl->next_seq + 1ull);

	for (uint32_t i = 0; i < cl->nagents; i++) {
		const struct cagent *a = &cl->agents[i];

		for (uint32_t k = 0; k < a->nops; k++) {
			const struct cop *op = &a->ops[k];

			if ((op->req_pending ||
			     (op->state != OP_ACKED && op->state != OP_GAVE_UP)) &&
			    op->h.id < low)
				low = op->h.id;
		}
	}
	return low;
}

int soak_client_main(const struct soak_peer_cfg *c)
{
	struct ccli cl;
	struct wp_ctx_opts o;
	struct wp_meter_snap m;
	uint64_t next_ctr = 0, next_dog = 0, stop_deadline = 0;
	uint32_t cap, req_max;
	int rc, status = 0;

	memset(&cl, 0, sizeof(cl));
	cl.c = c;
	cl.w = c->w;
	soak_report_init(c->report_fd);
	peer_signals();
	peer_opts(c, &o);
	rc = wp_ctx_create(&o, &cl.ctx);
	if (rc < 0) {
		soak_violation(c->who, SOAK_BAD_SETUP, 0, "cannot create a context: %s",
			       strerror(-rc));
		soak_report_flush();
		return 1;
	}
	cl.nagents = c->agents[0] + c->agents[1] + (c->hog_target[0] ? SOAK_HOGS : 0);
	cl.agents = calloc(cl.nagents, sizeof(*cl.agents));
	cap = cl.w->fanout > cl.w->mem_lookups ? cl.w->fanout : cl.w->mem_lookups;
	cap = cap ? cap : 1;
	req_max = cl.w->tool_req_bytes > cl.w->model_req_bytes ? cl.w->tool_req_bytes
							       : cl.w->model_req_bytes;
	req_max = req_max > SOAK_HDR ? req_max : SOAK_HDR;
	if (!cl.agents) {
		status = 1;
		goto out;
	}
	for (uint32_t i = 0; i < cl.nagents; i++) {
		struct cagent *a = &cl.agents[i];

		a->cl = &cl;
		a->idx = i;
		a->rng = (c->seed ^ (0x9e3779b97f4a7c15ull * (i + 1))) | 1;
		a->hog = c->hog_target[0] && i >= cl.nagents - SOAK_HOGS;
		a->uri = a->hog ? c->hog_target : c->target[i < c->agents[0] ? 0 : 1];
		a->tel_len = a->hog ? SOAK_HOG_BYTES
				    : SOAK_HDR + 8 * cl.w->telemetry_counters +
					      16 * 8 * cl.w->telemetry_hists;
		a->tel_buf = malloc(a->tel_len);
		a->cap = cap;
		a->ops = calloc(cap, sizeof(*a->ops));
		if (!a->tel_buf || !a->ops) {
			status = 1;
			goto out;
		}
		for (uint32_t k = 0; k < cap; k++) {
			a->ops[k].req = malloc(req_max);
			if (!a->ops[k].req) {
				status = 1;
				goto out;
			}
		}
		a->step_t0 = wp_now_ns();
		if (!a->hog)
			phase_start(a, PH_MEM, cl.w->mem_lookups, SOAK_MEM, SOAK_HDR, 1);
		agent_connect(a);
	}

	for (;;) {
		uint64_t now = wp_now_ns();
		int all_idle = 1, any_stalled = 0;

		if (peer_stop && !cl.stopping) {
			/* Finish the step in hand, then stop: nothing cut off mid-call. */
			cl.stopping = 1;
			stop_deadline = now + 20 * 1000000000ull;
		}
		if (peer_usr1) {
			/* The reset fault from inside: close an endpoint with its calls
			 * in flight (they end -ECONNABORTED) and reconnect. */
			peer_usr1 = 0;
			for (uint32_t k = 0; k < cl.nagents; k++) {
				struct cagent *a = &cl.agents[cl.abort_next++ % cl.nagents];

				if (a->state == AG_UP && !a->hog) {
					cl.ctr[SC_ABORTS]++;
					agent_down(a, now);
					break;
				}
			}
		}
		for (uint32_t i = 0; i < cl.nagents; i++) {
			struct cagent *a = &cl.agents[i];

			if (a->state == AG_CLOSED)
				agent_down(a, now);
			if (a->state == AG_DOWN && !a->inflight && now >= a->reconnect_at &&
			    !(cl.stopping && agent_settled_for_stop(a)))
				agent_connect(a);
			if (a->state == AG_UP && a->stalled)
				agent_advance(a);
			any_stalled |= a->stalled;
			if (!agent_settled_for_stop(a))
				all_idle = 0;
		}
		if (cl.stopping && (all_idle || now > stop_deadline)) {
			if (!all_idle)
				soak_violation(c->who, SOAK_BAD_HUNG, 0,
					       "agents still mid-step 20 s after the stop");
			break;
		}
		if (now >= next_dog) {
			next_dog = now + 1000000000ull;
			client_watchdog(&cl, now);
		}
		rc = wp_ctx_progress(cl.ctx, any_stalled ? 1000 : 10000);
		if (rc < 0 && rc != -EINTR) {
			soak_violation(c->who, SOAK_BAD_SETUP, 0, "the context failed: %s",
				       strerror(-rc));
			status = 1;
			break;
		}
		if (wp_now_ns() >= next_ctr) {
			next_ctr = wp_now_ns() + 500 * 1000000ull;
			wp_meter_snapshot(&m);
			cl.ctr[SC_RX_RING_EMPTY] = m.rx_ring_empty;
			soak_report_counters(cl.ctr);
			soak_report(SOAK_REC_LOW, 0, client_low(&cl), 0, 0);
		}
		soak_report_flush();
	}
out:
	/* Anything still in flight ends -ECONNABORTED here; expected now, and
	 * nothing is issued again (agent_advance needs AG_UP). */
	cl.stopping = 1;
	for (uint32_t i = 0; cl.agents && i < cl.nagents; i++)
		cl.agents[i].state = AG_DOWN;
	wp_ctx_destroy(cl.ctx);
	wp_meter_snapshot(&m);
	cl.ctr[SC_RX_RING_EMPTY] = m.rx_ring_empty;
	soak_report_counters(cl.ctr);
	soak_report_flush();
	for (uint32_t i = 0; cl.agents && i < cl.nagents; i++) {
		struct cagent *a = &cl.agents[i];

		for (uint32_t k = 0; a->ops && k < a->cap; k++)
			free(a->ops[k].req);
		free(a->ops);
		free(a->tel_buf);
	}
	free(cl.agents);
	return status;
}
