// SPDX-License-Identifier: MIT
/*
 * MCP servers run as stdio children (the stdio transport: newline-delimited
 * JSON-RPC on the child's stdin and stdout, stderr free for logs). The
 * daemon is the child's one client: it initializes the child once, shares
 * that backend session among all client sessions, numbers requests itself
 * (1, 2, 3, ... per child, so concurrent clients never collide) and maps
 * progress tokens the same way.
 *
 * What a child may do, and what happens:
 *  - exit or crash: the calls pending on it fail at once with a JSON-RPC
 *    error, and it is started again after a backoff that doubles from
 *    100 ms to 30 s (back to 100 ms once a child has stayed up 10 s);
 *  - never answer initialize: killed after 10 s, then the same;
 *  - write garbage (not JSON, not JSON-RPC, a line over 4 MiB, an answer
 *    to an id it was never asked): counted, logged (rate limited) and
 *    skipped; the child keeps serving;
 *  - never answer a call: the call fails after the backend's timeout_ms
 *    and the child is sent notifications/cancelled;
 *  - stop reading its stdin: what the daemon queues for it is bounded
 *    (STDIO_WBUF_MAX), calls past that fail with -ENOBUFS;
 *  - write to stderr: each line goes to the daemon's log, rate limited.
 * Requests from the child (sampling, elicitation, roots) are answered by
 * the daemon with -32601: it does not forward server-initiated requests
 * (docs/daemon.md, "MCP"); ping is answered {}.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/buf.h"
#include "daemon/jsonrpc.h"
#include "daemon/mcp_int.h"

extern char **environ;

#define STDIO_LINE_MAX WPD_RPC_MAX_BYTES /* a line longer than this is garbage */
#define STDIO_WBUF_MAX (16u << 20)       /* queued for the child's stdin */
#define STDIO_READ_CHUNK 65536
#define STDIO_READS_PER_WAKE 16 /* 1 MiB, then yield to the rest of the loop */
#define STDIO_ERR_LINE 1024     /* a stderr line is logged up to this long */
#define STDIO_INIT_TIMEOUT_NS (10ull * 1000000000ull)
#define STDIO_BACKOFF_MIN_MS 100u
#define STDIO_BACKOFF_MAX_MS 30000u
#define STDIO_STABLE_NS (10ull * 1000000000ull) /* up this long: backoff resets */

enum stdio_state { ST_DOWN = 0, ST_INIT = 1, ST_UP = 2 };

struct stdio_be {
	struct mcp_backend b;
	char **argv, **env; /* copies: the config may be freed at a reload */
	pid_t pid;
	int in_fd, out_fd, err_fd; /* our ends: child's stdin, stdout, stderr */
	struct wpd_io io_in, io_out, io_err;
	struct wpd_buf wbuf, rbuf, ebuf;
	int skipping; /* discarding the rest of an oversized line */
	enum stdio_state state;
	uint64_t next_id, init_id, starts;
	struct mcp_bcall *calls; /* sent, waiting for an answer */
	struct mcp_bcall *queue; /* waiting for the child's initialize */
	struct wpd_timer restart_timer, init_timer;
	struct wpd_timer fail_timer; /* a write failed: down, from the loop */
	uint32_t backoff_ms;
	uint64_t up_since_ns;
	struct mcp_ratelimit rl, rl_err;
};

static const struct mcp_backend_ops stdio_ops;
static void stdio_down(struct stdio_be *s, const char *why);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char **strv_dup(char **v)
{
	size_t n = 0;
	char **c;

	if (!v)
		return NULL;
	while (v[n])
		n++;
	c = calloc(n + 1, sizeof(*c));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i] = strdup(v[i]);
		if (!c[i]) {
			while (i--)
				free(c[i]);
			free(c);
			return NULL;
		}
	}
	return c;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int strv_eq(char **a, char **b)
{
	size_t i;

	if (!a || !b)
		return a == b;
	for (i = 0; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]))
			return 0;
	return !a[i] && !b[i];
}

/* ---- output to the child ---- */

static void stdin_failed(void *arg)
{
	stdio_down(arg, "closed its stdin");
}

/* Write what is queued. Never takes the child down itself (its callers
 * may be in the middle of a call): a failed write arms fail_timer. */
static void stdio_flush(struct stdio_be *s)
{
	while (s->wbuf.len) {
		ssize_t n = write(s->in_fd, s->wbuf.p, s->wbuf.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			wpd_buf_reset(&s->wbuf);
			wpd_timer_arm(s->b.loop, &s->fail_timer, 0, stdin_failed, s);
			break;
		}
		wpd_buf_consume(&s->wbuf, (size_t)n);
	}
	if (s->io_in.live)
		wpd_io_mod(s->b.loop, &s->io_in, s->wbuf.len ? EPOLLOUT : 0);
}

/* Queue one message (a line) for the child. Returns 0, -ENOBUFS or -ENOMEM. */
static int stdio_send(struct stdio_be *s, const json_t *msg)
{
	size_t len;
	char *text = wpd_rpc_dump(msg, &len);

	if (!text)
		return -ENOMEM;
	if (s->wbuf.len + len + 1 > STDIO_WBUF_MAX) {
		free(text);
		return -ENOBUFS;
	}
	wpd_buf_add(&s->wbuf, text, len);
	wpd_buf_add(&s->wbuf, "\n", 1);
	free(text);
	if (s->wbuf.oom) {
		wpd_buf_reset(&s->wbuf);
		return -ENOMEM;
	}
	stdio_flush(s);
	return 0;
}

static void stdio_in_ready(void *arg, uint32_t events)
{
	struct stdio_be *s = arg;

	(void)events;
	stdio_flush(s);
}

/* ---- calls ---- */

static void call_timeout(void *arg);

static void call_done(struct stdio_be *s, struct mcp_bcall *bc, json_t *resp)
{
	wpd_timer_cancel(s->b.loop, &bc->timer);
	if (json_object_get(resp, "error"))
		s->b.call_errors++;
	bc->on_done(bc, resp);
}

/* The request line for bc: our id, and our progress token in place of the
 * client's. */
static json_t *call_request(struct stdio_be *s, const char *method, json_t *params,
			    struct mcp_bcall *bc)
{
	json_t *id = json_integer((json_int_t)bc->bid);
	json_t *req = wpd_rpc_request(id, method, params);
	json_t *p, *meta;

	json_decref(id);
	if (!req || !bc->token)
		return req;
	p = json_object_get(req, "params");
	meta = json_is_object(p) ? json_object_get(p, "_meta") : NULL;
	if (!json_is_object(meta) ||
	    json_object_set_new(meta, "progressToken", json_integer((json_int_t)bc->bid))) {
		json_decref(req);
		return NULL;
	}
	(void)s;
	return req;
}

static int stdio_call(struct mcp_backend *b, const char *method, json_t *params,
		      struct mcp_bcall *bc)
{
	struct stdio_be *s = (struct stdio_be *)b;
	json_t *req;
	int ret;

	if (s->state == ST_DOWN)
		return -ENOTCONN;
	bc->b = b;
	bc->bid = ++s->next_id;
	bc->queued = 0;
	bc->req = NULL;
	req = call_request(s, method, params, bc);
	if (!req)
		return -ENOMEM;
	b->calls++;
	if (s->state == ST_INIT) {
		bc->queued = 1;
		bc->req = req;
		mcp_bcall_link(&s->queue, bc);
	} else {
		ret = stdio_send(s, req);
		json_decref(req);
		if (ret < 0) {
			b->calls--;
			return ret;
		}
		mcp_bcall_link(&s->calls, bc);
	}
	memset(&bc->timer, 0, sizeof(bc->timer));
	wpd_timer_arm(b->loop, &bc->timer, (uint64_t)b->timeout_ms * 1000000ull, call_timeout, bc);
	return 0;
}

static void send_cancelled(struct stdio_be *s, uint64_t bid, const char *reason)
{
	json_t *p = json_pack("{s:I,s:s}", "requestId", (json_int_t)bid, "reason", reason);
	json_t *n = p ? wpd_rpc_notification("notifications/cancelled", p) : NULL;

	if (n && stdio_send(s, n) < 0)
		mcp_log(&s->rl, WP_LOG_WARN, "%s: could not send notifications/cancelled for %llu",
			s->b.name, (unsigned long long)bid);
	json_decref(n);
	json_decref(p);
}

static void stdio_cancel(struct mcp_backend *b, struct mcp_bcall *bc, const char *reason)
{
	struct stdio_be *s = (struct stdio_be *)b;

	wpd_timer_cancel(b->loop, &bc->timer);
	if (bc->queued) {
		mcp_bcall_unlink(&s->queue, bc);
		json_decref(bc->req);
		bc->req = NULL;
		bc->queued = 0;
		return;
	}
	mcp_bcall_unlink(&s->calls, bc);
	if (s->state == ST_UP)
		send_cancelled(s, bc->bid, reason);
}

static void call_timeout(void *arg)
{
	struct mcp_bcall *bc = arg;
	struct stdio_be *s = (struct stdio_be *)bc->b;
	json_t *err = mcp_error_resp(WPD_RPC_BACKEND_ERROR,
				     "MCP server %s did not answer within %u ms", s->b.name,
				     s->b.timeout_ms);

	stdio_cancel(&s->b, bc, "timed out");
	s->b.call_errors++;
	bc->on_done(bc, err);
	json_decref(err);
}

static void stdio_notify(struct mcp_backend *b, const char *method, json_t *params)
{
	struct stdio_be *s = (struct stdio_be *)b;
	json_t *n;

	if (s->state != ST_UP)
		return;
	n = wpd_rpc_notification(method, params);
	if (n)
		stdio_send(s, n);
	json_decref(n);
}

/* Fail every call, sent or queued (the child is gone). */
static void fail_all(struct stdio_be *s, const char *why)
{
	struct mcp_bcall *list = s->calls, *q = s->queue, *bc;

	s->calls = s->queue = NULL;
	/* Queued calls join the list: one pass fails them all. Each on_done
	 * may start new calls: they meet ST_DOWN and fail fast. */
	while (q) {
		bc = q;
		q = q->next;
		json_decref(bc->req);
		bc->req = NULL;
		bc->queued = 0;
		mcp_bcall_link(&list, bc);
	}
	while (list) {
		json_t *err;

		bc = list;
		list = list->next;
		err = mcp_error_resp(WPD_RPC_BACKEND_ERROR, "MCP server %s %s; the call was lost",
				     s->b.name, why);
		call_done(s, bc, err);
		json_decref(err);
	}
}

/* ---- the child's output ---- */

static struct mcp_bcall *find_call(struct stdio_be *s, const json_t *id)
{
	json_int_t v;

	if (!json_is_integer(id))
		return NULL;
	v = json_integer_value(id);
	for (struct mcp_bcall *bc = s->calls; bc; bc = bc->next)
		if ((json_int_t)bc->bid == v)
			return bc;
	return NULL;
}

static void garbage(struct stdio_be *s, const char *what, const char *line, size_t len)
{
	s->b.garbage++;
	mcp_log(&s->rl, WP_LOG_WARN, "%s: garbage from the child (%s): %.*s%s", s->b.name, what,
		(int)(len > 120 ? 120 : len), line, len > 120 ? "..." : "");
}

static void init_done(struct stdio_be *s, const struct wpd_rpc *r)
{
	json_t *ver = json_object_get(r->result, "protocolVersion");
	json_t *n;

	wpd_timer_cancel(s->b.loop, &s->init_timer);
	if (r->kind == WPD_RPC_ERROR || !json_is_object(r->result) || !json_is_string(ver) ||
	    !mcp_version_ok(json_string_value(ver))) {
		stdio_down(s,
			   "refused initialize (or answered a revision the daemon does not speak)");
		return;
	}
	json_decref(s->b.init);
	s->b.init = json_incref(r->result);
	n = wpd_rpc_notification("notifications/initialized", NULL);
	if (!n || stdio_send(s, n) < 0) {
		json_decref(n);
		stdio_down(s, "could not be sent notifications/initialized");
		return;
	}
	json_decref(n);
	s->state = ST_UP;
	s->b.up = 1;
	s->up_since_ns = now_ns();
	mcp_log(&s->rl, WP_LOG_INFO, "%s: up (pid %d, revision %s)", s->b.name, (int)s->pid,
		json_string_value(ver));
	/* The calls that waited for initialize, oldest first. */
	while (s->queue) {
		struct mcp_bcall *bc = s->queue;

		while (bc->next)
			bc = bc->next;
		mcp_bcall_unlink(&s->queue, bc);
		bc->queued = 0;
		if (stdio_send(s, bc->req) < 0) {
			json_t *err = mcp_error_resp(WPD_RPC_BACKEND_ERROR,
						     "MCP server %s: its input is full", s->b.name);

			json_decref(bc->req);
			bc->req = NULL;
			call_done(s, bc, err);
			json_decref(err);
			continue;
		}
		json_decref(bc->req);
		bc->req = NULL;
		mcp_bcall_link(&s->calls, bc);
	}
}

static void answer_request(struct stdio_be *s, const struct wpd_rpc *r)
{
	json_t *resp;

	if (!strcmp(r->method, "ping"))
		resp = wpd_rpc_response(r->id, NULL);
	else
		resp = wpd_rpc_errorf(r->id, WPD_RPC_METHOD_NOT_FOUND,
				      "wirepathd does not forward server requests (%s)", r->method);
	if (resp)
		stdio_send(s, resp);
	json_decref(resp);
}

static void progress(struct stdio_be *s, const struct wpd_rpc *r)
{
	json_t *tok = json_object_get(r->params, "progressToken");
	struct mcp_bcall *bc = find_call(s, tok);
	json_t *note, *p;

	if (!bc || !bc->token || !bc->on_note) {
		s->b.garbage += !bc;
		return;
	}
	p = json_deep_copy(r->params);
	if (!p || json_object_set(p, "progressToken", bc->token)) {
		json_decref(p);
		return;
	}
	note = wpd_rpc_notification("notifications/progress", p);
	json_decref(p);
	if (note)
		bc->on_note(bc, note);
	json_decref(note);
}

static void handle_msg(struct stdio_be *s, json_t *msg, const char *line, size_t len)
{
	struct wpd_rpc r;
	struct mcp_bcall *bc;

	switch (wpd_rpc_classify(msg, &r)) {
	case WPD_RPC_RESPONSE:
	case WPD_RPC_ERROR:
		if (s->state == ST_INIT && json_is_integer(r.id) &&
		    (uint64_t)json_integer_value(r.id) == s->init_id) {
			init_done(s, &r);
			return;
		}
		bc = find_call(s, r.id);
		if (!bc) {
			garbage(s, "an answer to an id it was not asked", line, len);
			return;
		}
		mcp_bcall_unlink(&s->calls, bc);
		call_done(s, bc, msg);
		return;
	case WPD_RPC_NOTIFICATION:
		if (!strcmp(r.method, "notifications/progress"))
			progress(s, &r);
		else if (!strcmp(r.method, "notifications/message"))
			mcp_log(&s->rl_err, WP_LOG_INFO, "%s: log: %.*s", s->b.name,
				(int)(len > 300 ? 300 : len), line);
		return;
	case WPD_RPC_REQUEST:
		answer_request(s, &r);
		return;
	case WPD_RPC_INVALID:
		garbage(s, r.why, line, len);
		return;
	}
}

static void handle_line(struct stdio_be *s, char *line, size_t len)
{
	const char *why;
	json_t *root;

	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return;
	root = wpd_rpc_load(line, len, &why);
	if (!root) {
		garbage(s, why, line, len);
		return;
	}
	if (json_is_array(root)) {
		size_t i;
		json_t *v;

		if (!json_array_size(root))
			garbage(s, "an empty batch", line, len);
		json_array_foreach(root, i, v)
		{
			handle_msg(s, v, line, len);
			if (s->state == ST_DOWN)
				break;
		}
	} else {
		handle_msg(s, root, line, len);
	}
	json_decref(root);
}

/* Split what arrived into lines; keep a partial line; skip a line past
 * STDIO_LINE_MAX to its end. Returns 0, or -1 if the child went down while
 * its lines were handled. */
static int take_lines(struct stdio_be *s, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t part = nl ? (size_t)(nl - p) : n;

		if (s->skipping) {
			if (nl)
				s->skipping = 0;
		} else if (s->rbuf.len + part > STDIO_LINE_MAX) {
			s->b.garbage++;
			mcp_log(&s->rl, WP_LOG_WARN,
				"%s: garbage from the child: a line over %u bytes, skipped",
				s->b.name, STDIO_LINE_MAX);
			wpd_buf_reset(&s->rbuf);
			s->skipping = !nl;
		} else if (nl && !s->rbuf.len) {
			/* The common case: a whole line inside this read. */
			handle_line(s, (char *)p, part);
		} else {
			wpd_buf_add(&s->rbuf, p, part);
			if (nl) {
				handle_line(s, s->rbuf.p, s->rbuf.len);
				wpd_buf_reset(&s->rbuf);
			}
		}
		if (s->state == ST_DOWN)
			return -1;
		if (!nl)
			break;
		p = nl + 1;
		n -= part + 1;
	}
	return 0;
}

static void stdio_out_ready(void *arg, uint32_t events)
{
	struct stdio_be *s = arg;
	char buf[STDIO_READ_CHUNK];

	(void)events;
	for (int i = 0; i < STDIO_READS_PER_WAKE; i++) {
		ssize_t n = read(s->out_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			stdio_down(s,
				   n == 0 ? "exited (its stdout closed)" : "failed (stdout error)");
			return;
		}
		if (take_lines(s, buf, (size_t)n) < 0)
			return;
	}
}

static void err_line(struct stdio_be *s, const char *p, size_t n)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n)
		mcp_log(&s->rl_err, WP_LOG_INFO, "%s: stderr: %.*s%s", s->b.name,
			(int)(n > STDIO_ERR_LINE ? STDIO_ERR_LINE : n), p,
			n > STDIO_ERR_LINE ? "..." : "");
}

static void stdio_err_ready(void *arg, uint32_t events)
{
	struct stdio_be *s = arg;
	char buf[4096];
	ssize_t n;

	(void)events;
	n = read(s->err_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* stderr closed: stdout decides whether the child is gone. */
		wpd_io_del(s->b.loop, &s->io_err);
		return;
	}
	for (ssize_t i = 0, start = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (i + 1 == n)
				wpd_buf_add(&s->ebuf, buf + start, (size_t)(n - start));
			continue;
		}
		if (s->ebuf.len) {
			wpd_buf_add(&s->ebuf, buf + start, (size_t)(i - start));
			err_line(s, s->ebuf.p, s->ebuf.len);
			wpd_buf_reset(&s->ebuf);
		} else {
			err_line(s, buf + start, (size_t)(i - start));
		}
		start = i + 1;
	}
	if (s->ebuf.len > STDIO_ERR_LINE) {
		err_line(s, s->ebuf.p, s->ebuf.len);
		wpd_buf_reset(&s->ebuf);
	}
}

/* ---- the child's life ---- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Kill (if still running) and reap a child. SIGKILL cannot be caught, so
 * the wait is for the kernel to tear the process down (well under a ms
 * for an ordinary process). */
static void reap_pid(pid_t pid, int sig)
{
	int st;

	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, sig);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
}

static void reap(struct stdio_be *s, int sig)
{
	if (s->pid <= 0)
		return;
	reap_pid(s->pid, sig);
	s->pid = 0;
}

static void stdio_start(void *arg);

static void stdio_down(struct stdio_be *s, const char *why)
{
	uint64_t now = now_ns();

	if (s->state == ST_DOWN)
		return;
	wpd_io_del(s->b.loop, &s->io_in);
	wpd_io_del(s->b.loop, &s->io_out);
	wpd_io_del(s->b.loop, &s->io_err);
	close_fd(&s->in_fd);
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	reap(s, SIGKILL);
	wpd_timer_cancel(s->b.loop, &s->init_timer);
	wpd_timer_cancel(s->b.loop, &s->fail_timer);
	wpd_buf_reset(&s->wbuf);
	wpd_buf_reset(&s->rbuf);
	wpd_buf_reset(&s->ebuf);
	s->skipping = 0;
	s->state = ST_DOWN;
	s->b.up = 0;
	json_decref(s->b.init);
	s->b.init = NULL;
	if (s->up_since_ns && now - s->up_since_ns >= STDIO_STABLE_NS)
		s->backoff_ms = STDIO_BACKOFF_MIN_MS;
	s->up_since_ns = 0;
	mcp_log(&s->rl, WP_LOG_WARN, "%s: %s; restarting in %u ms", s->b.name, why, s->backoff_ms);
	s->b.restart_delay_ms = s->backoff_ms;
	wpd_timer_arm(s->b.loop, &s->restart_timer, (uint64_t)s->backoff_ms * 1000000ull,
		      stdio_start, s);
	s->backoff_ms = s->backoff_ms * 2 > STDIO_BACKOFF_MAX_MS ? STDIO_BACKOFF_MAX_MS
								 : s->backoff_ms * 2;
	fail_all(s, why);
}

static void init_timeout(void *arg)
{
	stdio_down(arg, "did not answer initialize within 10 s");
}

/* The child's environment: ours plus the configured entries. */
static char **child_env(char **extra)
{
	size_t n = 0, m = 0;
	char **e;

	while (environ && environ[n])
		n++;
	while (extra && extra[m])
		m++;
	e = calloc(n + m + 1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e, environ, n * sizeof(*e));
	if (m)
		memcpy(e + n, extra, m * sizeof(*e));
	return e;
}

static int spawn(struct stdio_be *s)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	char **envp;
	int ret;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		ret = -errno;
		goto out_close;
	}
	envp = child_env(s->env);
	if (!envp) {
		ret = -ENOMEM;
		goto out_close;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE); /* the daemon ignores it; the child should not inherit that */
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGINT);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	/* Its own process group: a terminal's ^C reaches the daemon, which
	 * stops its children itself (SIGTERM, then SIGKILL). */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					      POSIX_SPAWN_SETPGROUP);
	ret = -posix_spawnp(&s->pid, s->argv[0], &fa, &at, s->argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(envp);
	if (ret) {
		s->pid = 0;
		goto out_close;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	s->in_fd = in[1];
	s->out_fd = out[0];
	s->err_fd = err[0];
	fcntl(s->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(s->err_fd, F_SETFL, O_NONBLOCK);
	return 0;
out_close:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return ret;
}

static void stdio_start(void *arg)
{
	struct stdio_be *s = arg;
	json_t *id, *params, *req;
	int ret;

	s->b.restarts += s->starts++ != 0; /* the first start is not a restart */
	ret = spawn(s);
	if (ret < 0) {
		s->state = ST_INIT; /* so stdio_down runs its course */
		mcp_log(&s->rl, WP_LOG_ERR, "%s: cannot start %s: %s", s->b.name, s->argv[0],
			strerror(-ret));
		stdio_down(s, "could not be started");
		return;
	}
	s->state = ST_INIT;
	if (wpd_io_add(s->b.loop, &s->io_in, s->in_fd, 0, stdio_in_ready, s) ||
	    wpd_io_add(s->b.loop, &s->io_out, s->out_fd, EPOLLIN, stdio_out_ready, s) ||
	    wpd_io_add(s->b.loop, &s->io_err, s->err_fd, EPOLLIN, stdio_err_ready, s)) {
		stdio_down(s, "could not be watched");
		return;
	}
	s->init_id = ++s->next_id;
	id = json_integer((json_int_t)s->init_id);
	params = json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", MCP_VERSION_LATEST,
			   "capabilities", "clientInfo", "name", "wirepathd", "version", "0.1");
	req = id && params ? wpd_rpc_request(id, "initialize", params) : NULL;
	ret = req ? stdio_send(s, req) : -ENOMEM;
	json_decref(id);
	json_decref(params);
	json_decref(req);
	if (ret < 0) {
		stdio_down(s, "could not be sent initialize");
		return;
	}
	wpd_timer_arm(s->b.loop, &s->init_timer, STDIO_INIT_TIMEOUT_NS, init_timeout, s);
}

static int stdio_adopt(struct mcp_backend *b, const struct wpd_backend *bk)
{
	struct stdio_be *s = (struct stdio_be *)b;

	if (bk->kind != WPD_BACKEND_STDIO || !strv_eq(s->argv, bk->argv) ||
	    !strv_eq(s->env, bk->env))
		return 0;
	b->timeout_ms = bk->timeout_ms ? bk->timeout_ms : 300000;
	return 1;
}

/* Children told to stop (SIGTERM) and not yet gone: polled from the loop,
 * SIGKILLed after STDIO_STOP_NS, so neither a reload nor a removal ever
 * blocks the loop on a child. One list for the process (one loop thread). */
#define STDIO_STOP_NS (2ull * 1000000000ull)
#define STDIO_STOP_POLL_NS (20ull * 1000000ull)

struct stopping {
	pid_t pid;
	uint64_t kill_at_ns;
	struct wpd_loop *loop;
	struct wpd_timer t;
	struct stopping *next;
};
static struct stopping *stopping_list;

static void stopping_free(struct stopping *st)
{
	struct stopping **pp;

	for (pp = &stopping_list; *pp; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	wpd_timer_cancel(st->loop, &st->t);
	free(st);
}

static void stopping_poll(void *arg)
{
	struct stopping *st = arg;
	int status;

	if (waitpid(st->pid, &status, WNOHANG) != 0) {
		stopping_free(st); /* gone (or not ours any more) */
		return;
	}
	if (now_ns() >= st->kill_at_ns) {
		kill(st->pid, SIGKILL);
		while (waitpid(st->pid, &status, 0) < 0 && errno == EINTR)
			;
		stopping_free(st);
		return;
	}
	wpd_timer_arm(st->loop, &st->t, STDIO_STOP_POLL_NS, stopping_poll, st);
}

void mcp_stdio_stop_all(void)
{
	/* Shutdown: everyone got SIGTERM already; wait out the rest of their
	 * 2 s together, then SIGKILL. */
	while (stopping_list) {
		struct stopping *st = stopping_list;
		int status;

		while (waitpid(st->pid, &status, WNOHANG) == 0 && now_ns() < st->kill_at_ns)
			usleep(10000);
		reap_pid(st->pid, SIGKILL);
		stopping_free(st);
	}
}

static void stdio_destroy(struct mcp_backend *b)
{
	struct stdio_be *s = (struct stdio_be *)b;

	wpd_timer_cancel(b->loop, &s->restart_timer);
	wpd_timer_cancel(b->loop, &s->init_timer);
	wpd_timer_cancel(b->loop, &s->fail_timer);
	if (s->state != ST_DOWN) {
		wpd_io_del(b->loop, &s->io_in);
		wpd_io_del(b->loop, &s->io_out);
		wpd_io_del(b->loop, &s->io_err);
		close_fd(&s->in_fd); /* EOF on stdin: the polite way to stop */
		close_fd(&s->out_fd);
		close_fd(&s->err_fd);
		if (s->pid > 0) {
			struct stopping *st = calloc(1, sizeof(*st));

			kill(s->pid, SIGTERM);
			if (st) {
				st->pid = s->pid;
				st->kill_at_ns = now_ns() + STDIO_STOP_NS;
				st->loop = b->loop;
				st->next = stopping_list;
				stopping_list = st;
				wpd_timer_arm(b->loop, &st->t, STDIO_STOP_POLL_NS, stopping_poll,
					      st);
				s->pid = 0;
			}
		}
		reap(s, SIGKILL); /* only if it could not be queued above */
		s->state = ST_DOWN;
		s->b.up = 0;
	}
	fail_all(s, "was stopped");
	json_decref(b->init);
	wpd_buf_free(&s->wbuf);
	wpd_buf_free(&s->rbuf);
	wpd_buf_free(&s->ebuf);
	strv_free(s->argv);
	strv_free(s->env);
	free(s);
}

static const struct mcp_backend_ops stdio_ops = {
	.call = stdio_call,
	.cancel = stdio_cancel,
	.notify = stdio_notify,
	.adopt = stdio_adopt,
	.destroy = stdio_destroy,
};

int mcp_stdio_create(struct wpd_loop *l, const char *name, const struct wpd_backend *bk,
		     struct mcp_backend **out)
{
	struct stdio_be *s;

	if (!bk->argv || !bk->argv[0])
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->b.ops = &stdio_ops;
	s->b.loop = l;
	s->b.kind = "stdio";
	snprintf(s->b.name, sizeof(s->b.name), "%s", name);
	s->b.timeout_ms = bk->timeout_ms ? bk->timeout_ms : 300000;
	s->in_fd = s->out_fd = s->err_fd = -1;
	s->backoff_ms = STDIO_BACKOFF_MIN_MS;
	s->state = ST_INIT; /* calls made before the first start wait for it */
	s->argv = strv_dup(bk->argv);
	s->env = strv_dup(bk->env);
	if (!s->argv || (bk->env && !s->env)) {
		strv_free(s->argv);
		strv_free(s->env);
		free(s);
		return -ENOMEM;
	}
	/* The line buffer holds at most one line; the queue is bounded by
	 * stdio_send's check, the buffer's own max is a second fence. */
	s->rbuf.max = STDIO_LINE_MAX + STDIO_READ_CHUNK;
	s->wbuf.max = STDIO_WBUF_MAX;
	s->ebuf.max = STDIO_ERR_LINE + 4096;
	/* Start from the loop, like a restart, so creation never blocks. */
	wpd_timer_arm(l, &s->restart_timer, 0, stdio_start, s);
	*out = &s->b;
	return 0;
}
