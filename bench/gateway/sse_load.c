// SPDX-License-Identifier: MIT
/*
 * sse_load: the gateway benchmark's load client (bench/gateway/run.sh,
 * docs/performance.md "Gateway (wirepathd)"). One thread, epoll, plain
 * HTTP/1.1 keep-alive connections to HOST:PORT, OpenAI-style POSTs to
 * /v1/chat/completions. Two modes:
 *
 *   stream (default): N connections, each runs one `stream: true` request
 *     after another until the duration is over. It parses the chunked body
 *     and the SSE events in it and timestamps every token event (a data:
 *     chunk whose delta carries non-empty content). Reports time to first
 *     token (request written -> first token event), the gap between tokens
 *     and its excess over the pace the service was configured with, streams
 *     that stalled (one gap above 3x the pace) and errors by kind.
 *     Connections start spread over --ramp-ms, so their token clocks are
 *     spread too, as real clients' are.
 *
 *   rate (--rate R): open loop. Request i is due at t0 + i/R whatever
 *     happened before it, and its latency runs from that due time to the
 *     last byte of the response, so a stalled response delays the requests
 *     behind it in the measurement as it does for real clients (coordinated
 *     omission is not hidden). Non-streaming, a body of --body-bytes (1 KiB
 *     by default), sent on any idle connection of a pool of --conns; when
 *     none is idle the request waits (its wait is counted) and "late"
 *     counts requests sent more than 1 ms after their due time.
 *
 * Prints one JSON object on stdout. `--print-body` prints the rate mode's
 * request body (run.sh gives the same bytes to wrk). Exit status 0 when the
 * run completed (errors are reported in the JSON, not as a failure), 2 for
 * bad arguments, 1 when the run could not be made at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192 /* one SSE line, or the response head */
#define RX_BYTES 65536
#define LATE_NS 1000000ull

enum mode { MODE_STREAM, MODE_RATE };

enum err_kind {
	ERR_CONNECT,   /* connect failed */
	ERR_RESET,     /* the connection broke or closed mid-response */
	ERR_STATUS,    /* a status other than 200 */
	ERR_PARSE,     /* a malformed response head, chunk or line */
	ERR_NO_DONE,   /* a stream ended without data: [DONE] */
	ERR_NO_TOKENS, /* a stream ended without a token event */
	ERR_BODY,      /* rate mode: a body differing from the first one */
	ERR_TIMEOUT,   /* still unanswered at the end of the grace time */
	ERR_N
};
static const char *const err_names[ERR_N] = { "connect", "reset",     "status", "parse",
					      "no_done", "no_tokens", "body",   "timeout" };

/* A growable array of samples (nanoseconds). */
struct samples {
	uint64_t *v;
	size_t n, cap;
};

static void samples_add(struct samples *s, uint64_t x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "sse_load: out of memory for samples\n");
			exit(1);
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct_us(const struct samples *s, double p)
{
	size_t i;

	if (!s->n)
		return 0;
	i = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > s->n)
		i = s->n;
	return (double)s->v[i - 1] / 1000.0;
}

enum rx_state {
	RX_HEAD,       /* status line and headers, into line[] */
	RX_CHUNK_SIZE, /* the hex size line */
	RX_CHUNK_DATA,
	RX_CHUNK_CRLF, /* the CRLF after a chunk's data */
	RX_TRAILER,    /* after the last chunk: lines until an empty one */
	RX_LENGTH,     /* a Content-Length body */
	RX_EOF_BODY,   /* a body that ends at EOF */
};

struct conn {
	int fd;
	int idx;
	int connected;
	int busy;       /* a request is out */
	int in_idle;    /* rate mode: on the idle stack */
	int keep;       /* the response allows another request on this connection */
	uint64_t t_req; /* stream: when the request was written; rate: when it was due */
	uint64_t t_sent;
	/* the request being written */
	const char *out;
	size_t out_len, out_off;
	/* the response */
	enum rx_state st;
	int status;
	uint64_t left; /* chunk or Content-Length bytes left */
	char *line;
	size_t line_len;
	int line_over;
	uint64_t body_hash; /* FNV-1a of the body (rate mode) */
	/* SSE (stream mode) */
	int tokens;
	int done_seen;
	uint64_t t_last_tok;
	int stalled;
};

struct cfg {
	enum mode mode;
	const char *host, *port;
	const char *model;
	const char *target;
	int streams;      /* stream: connections; rate: the pool */
	int tokens;       /* max_tokens per stream */
	uint64_t pace_ns; /* the service's token interval (reporting only) */
	double duration_s;
	uint64_t ramp_ns;
	double rate;
	int body_bytes;
	double grace_s;
};

static struct cfg cfg = {
	.mode = MODE_STREAM,
	.model = "wp-stub",
	.target = "",
	.streams = 100,
	.tokens = 40,
	.pace_ns = 25000000,
	.duration_s = 5,
	.ramp_ns = 1000000000ull,
	.rate = 0,
	.body_bytes = 1024,
	.grace_s = 10,
};

struct stats {
	struct samples ttft, gap, lat, svc;
	uint64_t err[ERR_N];
	uint64_t streams_done, tokens, stalled, requests_done, late, sent;
	uint64_t max_wait_queue;
	uint64_t first_hash;
	int have_hash;
	uint64_t bytes_rx;
};

static struct stats st;
static int epfd, tfd;
static struct addrinfo *ai;
static char *req_buf;
static size_t req_len, body_len;
static uint64_t t_start, t_end;
static int stopping;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void arm_timer(uint64_t at_ns)
{
	struct itimerspec its = { 0 };

	if (at_ns == 0)
		at_ns = 1; /* "now": 0 would disarm it */
	its.it_value.tv_sec = (time_t)(at_ns / 1000000000ull);
	its.it_value.tv_nsec = (long)(at_ns % 1000000000ull);
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- request bodies ------------------------------------------------- */

/*
 * The rate mode's body: an OpenAI chat request of exactly n bytes (the user
 * message is padded with words), non-streaming.
 */
static char *make_rate_body(int n, size_t *len)
{
	static const char head[] = "{\"model\":\"%s\",\"max_tokens\":16,\"stream\":false,"
				   "\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
				   "helpful assistant.\"},{\"role\":\"user\",\"content\":\"";
	static const char tail[] = "\"}]}";
	static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
	char *b = malloc((size_t)n + sizeof(head) + sizeof(tail) + 256);
	int k, w = 0;

	if (!b)
		return NULL;
	k = snprintf(b, (size_t)n + sizeof(head) + 256, head, cfg.model);
	while (k < n - (int)sizeof(tail) + 1)
		b[k++] = words[w++ % (sizeof(words) - 1)];
	if (b[k - 1] == ' ')
		b[k - 1] = '.';
	memcpy(b + k, tail, sizeof(tail));
	*len = (size_t)k + sizeof(tail) - 1;
	return b;
}

static int build_request(void)
{
	char *body;
	size_t blen;
	char tmp[512];

	if (cfg.mode == MODE_RATE) {
		body = make_rate_body(cfg.body_bytes, &blen);
		if (!body)
			return -ENOMEM;
	} else {
		int n = snprintf(
			tmp, sizeof(tmp),
			"{\"model\":\"%s\",\"stream\":true,\"max_tokens\":%d,"
			"\"messages\":[{\"role\":\"user\",\"content\":\"Count slowly.\"}]}",
			cfg.model, cfg.tokens);

		body = strdup(tmp);
		if (!body || n >= (int)sizeof(tmp))
			return -ENOMEM;
		blen = (size_t)n;
	}
	req_buf = malloc(blen + 512);
	if (!req_buf) {
		free(body);
		return -ENOMEM;
	}
	req_len = (size_t)snprintf(req_buf, 512,
				   "POST /v1/chat/completions HTTP/1.1\r\n"
				   "Host: %s:%s\r\n"
				   "Content-Type: application/json\r\n"
				   "Accept: %s\r\n"
				   "Content-Length: %zu\r\n\r\n",
				   cfg.host, cfg.port,
				   cfg.mode == MODE_RATE ? "application/json" : "text/event-stream",
				   blen);
	memcpy(req_buf + req_len, body, blen);
	body_len = blen;
	req_len += blen;
	free(body);
	return 0;
}

/* ---- connections ------------------------------------------------------ */

static struct conn *conns;
static int nconns;
/* rate mode: idle connections (a stack) and requests waiting for one */
static int *idle;
static int nidle;
static uint64_t next_due, due_count, waiting;
static int rate_running; /* the pool is up and the clock runs */

static void conn_close(struct conn *c)
{
	if (c->in_idle) {
		/* rare (a server closed an idle connection): a linear removal */
		for (int i = 0; i < nidle; i++) {
			if (idle[i] == c->idx) {
				idle[i] = idle[--nidle];
				break;
			}
		}
		c->in_idle = 0;
	}
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->connected = 0;
	c->busy = 0;
}

static int conn_open(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)c->idx };
	int one = 1, fd;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	c->fd = fd;
	c->connected = 0;
	c->busy = 0;
	return 0;
}

static void want_out(struct conn *c, int on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0),
				  .data.u32 = (uint32_t)c->idx };

	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void rx_reset(struct conn *c)
{
	c->st = RX_HEAD;
	c->status = 0;
	c->left = 0;
	c->line_len = 0;
	c->line_over = 0;
	c->body_hash = 1469598103934665603ull;
	c->tokens = 0;
	c->done_seen = 0;
	c->stalled = 0;
	c->keep = 1;
}

static int flush_out(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	want_out(c, c->out_off < c->out_len);
	return 0;
}

static void fail(struct conn *c, enum err_kind k);

/* Start one request on c. due_ns: rate mode's due time (0: now). */
static void send_request(struct conn *c, uint64_t due_ns)
{
	uint64_t now = now_ns();

	rx_reset(c);
	c->busy = 1;
	c->t_sent = now;
	c->t_req = due_ns ? due_ns : now;
	c->out = req_buf;
	c->out_len = req_len;
	c->out_off = 0;
	st.sent++;
	if (due_ns && now > due_ns + LATE_NS)
		st.late++;
	if (flush_out(c) < 0)
		fail(c, ERR_RESET);
}

/* Rate mode: send every request that is due and has a connection. */
static void rate_pump(uint64_t now)
{
	uint64_t period = (uint64_t)(1e9 / cfg.rate);

	if (!rate_running)
		return;
	while (!stopping && next_due <= now && next_due < t_end) {
		waiting++;
		next_due += period;
		due_count++;
	}
	if (waiting > st.max_wait_queue)
		st.max_wait_queue = waiting;
	while (waiting && nidle) {
		struct conn *c = &conns[idle[--nidle]];
		/* the due time of the oldest waiting request */
		uint64_t due = next_due - waiting * period;

		waiting--;
		c->in_idle = 0;
		send_request(c, due);
	}
}

static void conn_idle(struct conn *c)
{
	c->busy = 0;
	if (cfg.mode == MODE_RATE) {
		c->in_idle = 1;
		idle[nidle++] = c->idx;
		rate_pump(now_ns());
	} else if (!stopping && now_ns() < t_end) {
		send_request(c, 0);
	}
}

/* k == ERR_N: a reconnect that is no error (a server closed an idle connection). */
static void fail(struct conn *c, enum err_kind k)
{
	if (k < ERR_N)
		st.err[k]++;
	conn_close(c);
	/* replace the connection so the offered load stays what was asked */
	if (!stopping && now_ns() < t_end && conn_open(c) == 0)
		return;
	if (!stopping && now_ns() < t_end)
		st.err[ERR_CONNECT]++;
}

/* A complete response: account for it, then reuse the connection. */
static void response_done(struct conn *c, int keep)
{
	uint64_t now = now_ns();

	st.requests_done++;
	if (c->status != 200) {
		st.err[ERR_STATUS]++;
	} else if (cfg.mode == MODE_RATE) {
		if (!st.have_hash) {
			st.first_hash = c->body_hash;
			st.have_hash = 1;
		}
		if (c->body_hash != st.first_hash)
			st.err[ERR_BODY]++;
		samples_add(&st.lat, now - c->t_req);
		samples_add(&st.svc, now - c->t_sent);
	} else {
		st.streams_done++;
		if (!c->tokens)
			st.err[ERR_NO_TOKENS]++;
		else if (!c->done_seen)
			st.err[ERR_NO_DONE]++;
		if (c->stalled)
			st.stalled++;
	}
	if (!keep) {
		/* the next request goes out once the new connection is up */
		conn_close(c);
		if (!stopping && now < t_end && conn_open(c) < 0)
			st.err[ERR_CONNECT]++;
		return;
	}
	conn_idle(c);
}

/* ---- response parsing ------------------------------------------------- */

static void sse_line(struct conn *c, const char *s, size_t n)
{
	static const char key[] = "\"content\":\"";
	const char *p;

	if (n < 6 || memcmp(s, "data:", 5))
		return;
	s += 5;
	n -= 5;
	if (*s == ' ') {
		s++;
		n--;
	}
	if (n == 6 && !memcmp(s, "[DONE]", 6)) {
		c->done_seen = 1;
		return;
	}
	p = memmem(s, n, key, sizeof(key) - 1);
	if (!p || p + sizeof(key) - 1 >= s + n || p[sizeof(key) - 1] == '"')
		return; /* the role chunk, the finish chunk, the usage chunk */
	{
		uint64_t now = now_ns();

		if (!c->tokens) {
			samples_add(&st.ttft, now - c->t_req);
		} else {
			uint64_t g = now - c->t_last_tok;

			samples_add(&st.gap, g);
			if (g > 3 * cfg.pace_ns)
				c->stalled = 1;
		}
		c->t_last_tok = now;
		c->tokens++;
		st.tokens++;
	}
}

/* Body bytes: SSE lines (stream mode) or a hash (rate mode). */
static int body_bytes(struct conn *c, const char *p, size_t n)
{
	if (cfg.mode == MODE_RATE) {
		for (size_t i = 0; i < n; i++)
			c->body_hash = (c->body_hash ^ (uint8_t)p[i]) * 1099511628211ull;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (ch == '\n') {
			size_t l = c->line_len;

			if (c->line_over)
				return -EPROTO;
			if (l && c->line[l - 1] == '\r')
				l--;
			sse_line(c, c->line, l);
			c->line_len = 0;
			continue;
		}
		if (c->line_len == LINE_MAX_BYTES)
			c->line_over = 1;
		else
			c->line[c->line_len++] = ch;
	}
	return 0;
}

static int parse_head(struct conn *c, int *chunked, int64_t *clen, int *close_after)
{
	char *s = c->line, *e;
	int minor;

	c->line[c->line_len] = 0;
	if (sscanf(s, "HTTP/1.%d %d", &minor, &c->status) != 2)
		return -EPROTO;
	*chunked = 0;
	*clen = -1;
	*close_after = minor == 0;
	for (s = strstr(s, "\r\n"); s && s[2]; s = e) {
		char *v;

		s += 2;
		e = strstr(s, "\r\n");
		if (!e || e == s)
			break; /* the empty line that ends the head */
		v = memchr(s, ':', (size_t)(e - s));
		if (!v)
			return -EPROTO;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strncasecmp(s, "transfer-encoding:", 18) && !strncasecmp(v, "chunked", 7))
			*chunked = 1;
		else if (!strncasecmp(s, "content-length:", 15))
			*clen = strtoll(v, NULL, 10);
		else if (!strncasecmp(s, "connection:", 11) && !strncasecmp(v, "close", 5))
			*close_after = 1;
	}
	return 0;
}

/*
 * Feed received bytes through the state machine. Returns 0, or -EPROTO for
 * a malformed response. Calls response_done at the end of each response.
 */
static int rx_bytes(struct conn *c, const char *p, size_t n)
{
	while (n) {
		switch (c->st) {
		case RX_HEAD: {
			char ch = *p++;

			n--;
			if (c->line_len == LINE_MAX_BYTES - 1)
				return -EPROTO;
			c->line[c->line_len++] = ch;
			if (c->line_len >= 4 && !memcmp(c->line + c->line_len - 4, "\r\n\r\n", 4)) {
				int chunked, close_after;
				int64_t clen;

				if (parse_head(c, &chunked, &clen, &close_after) < 0)
					return -EPROTO;
				c->line_len = 0;
				if (chunked) {
					c->st = RX_CHUNK_SIZE;
				} else if (clen >= 0) {
					c->st = RX_LENGTH;
					c->left = (uint64_t)clen;
					if (!clen) {
						response_done(c, !close_after);
						return 1;
					}
				} else {
					c->st = RX_EOF_BODY;
					close_after = 1;
				}
				c->keep = !close_after;
			}
			break;
		}
		case RX_CHUNK_SIZE:
		case RX_TRAILER: {
			char ch = *p++;

			n--;
			if (ch != '\n') {
				if (c->line_len == 64)
					return -EPROTO;
				c->line[c->line_len++] = ch;
				break;
			}
			if (c->line_len && c->line[c->line_len - 1] == '\r')
				c->line_len--;
			c->line[c->line_len] = 0;
			if (c->st == RX_TRAILER) {
				if (c->line_len == 0) {
					c->line_len = 0;
					response_done(c, c->keep);
					return 1;
				}
				c->line_len = 0;
				break;
			}
			{
				char *end;
				unsigned long long sz = strtoull(c->line, &end, 16);

				if (end == c->line || (*end && *end != ';'))
					return -EPROTO;
				c->line_len = 0;
				if (sz == 0) {
					c->st = RX_TRAILER;
				} else {
					c->left = sz;
					c->st = RX_CHUNK_DATA;
				}
			}
			break;
		}
		case RX_CHUNK_DATA:
		case RX_LENGTH: {
			size_t k = n < c->left ? n : (size_t)c->left;

			if (body_bytes(c, p, k) < 0)
				return -EPROTO;
			p += k;
			n -= k;
			c->left -= k;
			if (!c->left) {
				if (c->st == RX_LENGTH) {
					response_done(c, c->keep);
					return 1;
				}
				c->st = RX_CHUNK_CRLF;
				c->line_len = 0;
			}
			break;
		}
		case RX_CHUNK_CRLF: {
			char ch = *p++;

			n--;
			if (ch == '\r')
				break;
			if (ch != '\n')
				return -EPROTO;
			c->st = RX_CHUNK_SIZE;
			break;
		}
		case RX_EOF_BODY:
			if (body_bytes(c, p, n) < 0)
				return -EPROTO;
			n = 0;
			break;
		}
	}
	return 0;
}

static char rxbuf[RX_BYTES];

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, rxbuf, sizeof(rxbuf));

		if (n < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR)
				continue;
			fail(c, ERR_RESET);
			return;
		}
		if (n == 0) {
			if (c->busy && c->st == RX_EOF_BODY) {
				response_done(c, 0);
				return;
			}
			/* an idle keep-alive connection the server closed: reopen */
			fail(c, c->busy ? ERR_RESET : ERR_N);
			return;
		}
		st.bytes_rx += (uint64_t)n;
		if (!c->busy) {
			fail(c, ERR_PARSE); /* bytes nobody asked for */
			return;
		}
		/* One request is out at a time, so a response ends at the end of
		 * a read or the server sent bytes nobody asked for: those count
		 * as a parse error on the next read (the connection is idle). */
		if (rx_bytes(c, rxbuf, (size_t)n) < 0) {
			fail(c, ERR_PARSE);
			return;
		}
		if (c->fd < 0 || !c->connected)
			return;
	}
}

static void on_event(struct conn *c, uint32_t events)
{
	int fd = c->fd;

	if (fd < 0)
		return;
	if (!c->connected) {
		int err = 0;
		socklen_t el = sizeof(err);

		if ((events & (EPOLLERR | EPOLLHUP)) ||
		    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			fail(c, ERR_CONNECT);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		c->connected = 1;
		want_out(c, 0);
		conn_idle(c);
		return;
	}
	if (events & EPOLLIN)
		on_readable(c);
	/* on_readable may have replaced the connection: events were for fd */
	if (c->fd != fd)
		return;
	if (c->connected && (events & EPOLLOUT) && c->out_off < c->out_len && flush_out(c) < 0)
		fail(c, ERR_RESET);
	else if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
		fail(c, c->busy ? ERR_RESET : ERR_N);
}

static void print_json(double elapsed)
{
	uint64_t errs = 0;

	for (int i = 0; i < ERR_N; i++)
		errs += st.err[i];
	/* qsort(NULL, 0) is undefined (UBSan in make test-asan): an empty
	 * sample set has no array yet. */
	if (st.ttft.n)
		qsort(st.ttft.v, st.ttft.n, sizeof(uint64_t), cmp_u64);
	if (st.gap.n)
		qsort(st.gap.v, st.gap.n, sizeof(uint64_t), cmp_u64);
	if (st.lat.n)
		qsort(st.lat.v, st.lat.n, sizeof(uint64_t), cmp_u64);
	if (st.svc.n)
		qsort(st.svc.v, st.svc.n, sizeof(uint64_t), cmp_u64);
	printf("{\"target\":\"%s\",\"mode\":\"%s\",\"connections\":%d,\"elapsed_s\":%.3f,",
	       cfg.target, cfg.mode == MODE_RATE ? "rate" : "stream", cfg.streams, elapsed);
	if (cfg.mode == MODE_RATE) {
		printf("\"rate\":%.1f,\"body_bytes\":%zu,\"due\":%llu,\"sent\":%llu,\"done\":%llu,"
		       "\"late\":%llu,\"max_waiting\":%llu,\"achieved_rps\":%.1f,",
		       cfg.rate, body_len, (unsigned long long)due_count,
		       (unsigned long long)st.sent, (unsigned long long)st.requests_done,
		       (unsigned long long)st.late, (unsigned long long)st.max_wait_queue,
		       (double)st.requests_done / elapsed);
		printf("\"latency_us\":{\"n\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
		       "\"p999\":%.1f,\"max\":%.1f},",
		       st.lat.n, pct_us(&st.lat, 50), pct_us(&st.lat, 90), pct_us(&st.lat, 99),
		       pct_us(&st.lat, 99.9), pct_us(&st.lat, 100));
		printf("\"service_us\":{\"p50\":%.1f,\"p99\":%.1f},", pct_us(&st.svc, 50),
		       pct_us(&st.svc, 99));
	} else {
		/* gap excess over the pace, from the sorted gaps */
		double pace_us = (double)cfg.pace_ns / 1000.0;

		printf("\"tokens_per_stream\":%d,\"pace_us\":%.0f,\"streams_done\":%llu,"
		       "\"tokens\":%llu,\"tokens_per_s\":%.1f,\"stalled\":%llu,",
		       cfg.tokens, pace_us, (unsigned long long)st.streams_done,
		       (unsigned long long)st.tokens, (double)st.tokens / elapsed,
		       (unsigned long long)st.stalled);
		printf("\"ttft_us\":{\"n\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f},",
		       st.ttft.n, pct_us(&st.ttft, 50), pct_us(&st.ttft, 90), pct_us(&st.ttft, 99),
		       pct_us(&st.ttft, 100));
		printf("\"gap_us\":{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},", st.gap.n,
		       pct_us(&st.gap, 50), pct_us(&st.gap, 99), pct_us(&st.gap, 100));
		printf("\"gap_excess_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},",
		       pct_us(&st.gap, 50) - pace_us, pct_us(&st.gap, 99) - pace_us,
		       pct_us(&st.gap, 100) - pace_us);
	}
	printf("\"bytes_rx\":%llu,\"errors\":%llu,\"errors_by_kind\":{",
	       (unsigned long long)st.bytes_rx, (unsigned long long)errs);
	for (int i = 0; i < ERR_N; i++)
		printf("%s\"%s\":%llu", i ? "," : "", err_names[i], (unsigned long long)st.err[i]);
	printf("}}\n");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sse_load --connect HOST:PORT [--target NAME] [--model M]\n"
		"         stream mode: [--streams N (100)] [--tokens N (40)] [--pace-us N (25000)]\n"
		"                      [--ramp-ms N (1000)]\n"
		"         rate mode:   --rate R [--conns N (64)] [--body-bytes N (1024)]\n"
		"         both:        [--duration S (5)] [--grace S (10)]\n"
		"       sse_load --print-body [--body-bytes N] [--model M]\n");
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *e;
	double v = strtod(s, &e);

	if (e == s || *e || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *connect_to = NULL;
	int print_body = 0, conns_set = 0;
	double v, elapsed;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct epoll_event evs[256];
	uint64_t next_start = 0, stagger = 0, hard_end;
	int started = 0, rc;
	char hostbuf[256];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

#define NUM(lo, hi)                                                                     \
	do {                                                                            \
		if (!val || parse_num(val, lo, hi, &v) < 0) {                           \
			fprintf(stderr, "sse_load: %s needs a number in [%g, %g]\n", a, \
				(double)(lo), (double)(hi));                            \
			return 2;                                                       \
		}                                                                       \
		i++;                                                                    \
	} while (0)
		if (!strcmp(a, "--connect") && val) {
			connect_to = val;
			i++;
		} else if (!strcmp(a, "--target") && val) {
			cfg.target = val;
			i++;
		} else if (!strcmp(a, "--model") && val) {
			cfg.model = val;
			i++;
		} else if (!strcmp(a, "--streams")) {
			NUM(1, 1000000);
			cfg.streams = (int)v;
		} else if (!strcmp(a, "--conns")) {
			NUM(1, 100000);
			cfg.streams = (int)v;
			conns_set = 1;
		} else if (!strcmp(a, "--tokens")) {
			NUM(1, 100000);
			cfg.tokens = (int)v;
		} else if (!strcmp(a, "--pace-us")) {
			NUM(1, 10000000);
			cfg.pace_ns = (uint64_t)v * 1000;
		} else if (!strcmp(a, "--ramp-ms")) {
			NUM(0, 600000);
			cfg.ramp_ns = (uint64_t)(v * 1e6);
		} else if (!strcmp(a, "--duration")) {
			NUM(0.1, 86400);
			cfg.duration_s = v;
		} else if (!strcmp(a, "--grace")) {
			NUM(0, 3600);
			cfg.grace_s = v;
		} else if (!strcmp(a, "--rate")) {
			NUM(1, 10000000);
			cfg.rate = v;
			cfg.mode = MODE_RATE;
		} else if (!strcmp(a, "--body-bytes")) {
			NUM(200, 1 << 24);
			cfg.body_bytes = (int)v;
		} else if (!strcmp(a, "--print-body")) {
			print_body = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sse_load: unknown or incomplete argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
#undef NUM
	}
	if (print_body) {
		size_t n;
		char *b = make_rate_body(cfg.body_bytes, &n);

		if (!b)
			return 1;
		fwrite(b, 1, n, stdout);
		free(b);
		return 0;
	}
	if (!connect_to) {
		fprintf(stderr, "sse_load: --connect HOST:PORT is required\n");
		usage(stderr);
		return 2;
	}
	if (cfg.mode == MODE_RATE && !conns_set)
		cfg.streams = 64;
	{
		const char *colon = strrchr(connect_to, ':');
		size_t hl = colon ? (size_t)(colon - connect_to) : 0;

		if (!colon || !hl || hl >= sizeof(hostbuf) || !colon[1]) {
			fprintf(stderr, "sse_load: --connect wants HOST:PORT, got '%s'\n",
				connect_to);
			return 2;
		}
		memcpy(hostbuf, connect_to, hl);
		hostbuf[hl] = 0;
		cfg.host = hostbuf;
		cfg.port = colon + 1;
	}
	rc = getaddrinfo(cfg.host, cfg.port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "sse_load: %s: %s\n", connect_to, gai_strerror(rc));
		return 2;
	}
	{
		/* one descriptor per connection, plus a few */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)cfg.streams + 64) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			if (rl.rlim_cur < (rlim_t)cfg.streams + 64) {
				fprintf(stderr,
					"sse_load: %d connections need %d descriptors; the limit is "
					"%llu (raise it with ulimit -n)\n",
					cfg.streams, cfg.streams + 64,
					(unsigned long long)rl.rlim_cur);
				return 1;
			}
		}
	}
	if (build_request() < 0) {
		fprintf(stderr, "sse_load: out of memory\n");
		return 1;
	}
	nconns = cfg.streams;
	conns = calloc((size_t)nconns, sizeof(*conns));
	idle = calloc((size_t)nconns, sizeof(*idle));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!conns || !idle || epfd < 0 || tfd < 0) {
		fprintf(stderr, "sse_load: set-up failed: %s\n", strerror(errno));
		return 1;
	}
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };

		epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
	}
	for (int i = 0; i < nconns; i++) {
		conns[i].idx = i;
		conns[i].fd = -1;
		conns[i].line = malloc(LINE_MAX_BYTES + 1);
		if (!conns[i].line) {
			fprintf(stderr, "sse_load: out of memory for %d connections\n", nconns);
			return 1;
		}
	}

	t_start = now_ns();
	t_end = t_start + (uint64_t)(cfg.duration_s * 1e9);
	if (cfg.mode == MODE_STREAM) {
		/* the ramp is part of the run: streams start spread over it */
		stagger = nconns > 1 ? cfg.ramp_ns / (uint64_t)nconns : 0;
		t_end += cfg.ramp_ns;
	} else {
		/* the pool connects first; the clock starts when it is up */
		stagger = 0;
	}
	hard_end = t_end + (uint64_t)(cfg.grace_s * 1e9);
	next_start = t_start;

	if (cfg.mode == MODE_RATE) {
		for (int i = 0; i < nconns; i++)
			if (conn_open(&conns[i]) < 0)
				st.err[ERR_CONNECT]++;
		started = nconns;
		/* wait until the pool is connected (at most 5 s) */
		while (nidle < nconns && now_ns() < t_start + 5000000000ull) {
			int n = epoll_wait(epfd, evs, 256, 100);

			for (int i = 0; i < n; i++)
				if (evs[i].data.u32 != UINT32_MAX)
					on_event(&conns[evs[i].data.u32], evs[i].events);
		}
		if (nidle == 0) {
			fprintf(stderr, "sse_load: could not connect to %s\n", connect_to);
			return 1;
		}
		t_start = now_ns();
		t_end = t_start + (uint64_t)(cfg.duration_s * 1e9);
		hard_end = t_end + (uint64_t)(cfg.grace_s * 1e9);
		next_due = t_start;
		rate_running = 1;
		rate_pump(t_start);
	}

	for (;;) {
		uint64_t now = now_ns(), wake;
		int n, busy = 0;

		if (cfg.mode == MODE_STREAM) {
			while (started < nconns && next_start <= now) {
				if (conn_open(&conns[started]) < 0)
					st.err[ERR_CONNECT]++;
				started++;
				next_start += stagger;
			}
		} else {
			rate_pump(now);
		}
		if (now >= t_end) {
			for (int i = 0; i < nconns; i++)
				busy += conns[i].fd >= 0 && (conns[i].busy || !conns[i].connected);
			if (!busy || now >= hard_end)
				break;
		}
		wake = hard_end;
		if (cfg.mode == MODE_STREAM && started < nconns && next_start < wake)
			wake = next_start;
		if (cfg.mode == MODE_RATE && next_due < t_end && next_due < wake)
			wake = next_due;
		if (now < t_end && t_end < wake)
			wake = t_end;
		arm_timer(wake);
		n = epoll_wait(epfd, evs, 256, 1000);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "sse_load: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == UINT32_MAX) {
				uint64_t x;

				if (read(tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
					return 1;
				continue;
			}
			on_event(&conns[evs[i].data.u32], evs[i].events);
		}
	}
	stopping = 1;
	for (int i = 0; i < nconns; i++) {
		if (conns[i].fd >= 0 && conns[i].busy)
			st.err[ERR_TIMEOUT]++;
		else if (conns[i].fd >= 0 && !conns[i].connected)
			st.err[ERR_CONNECT]++; /* still connecting at the end */
		conn_close(&conns[i]);
	}
	if (cfg.mode == MODE_RATE)
		st.err[ERR_TIMEOUT] += waiting;
	elapsed = (double)(now_ns() - t_start) / 1e9;
	if (cfg.mode == MODE_RATE)
		elapsed = cfg.duration_s;
	else
		elapsed = (double)(t_end - t_start) / 1e9;
	print_json(elapsed);
	return 0;
}
