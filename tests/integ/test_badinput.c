// SPDX-License-Identifier: MIT
/*
 * Hostile and odd input on the wire, once per path. A wirepath server runs
 * in-process on a thread; raw TCP sockets (plain socket/connect/write, not the
 * library) send it garbage, a bad version, bad frame types, unknown flags, a
 * header declaring max_frame + 1 bytes, truncated frames, well-formed frames
 * a server does not expect, a CLOSE from the client, and frames dribbled in
 * one byte per write.
 *
 * For every bad frame: the raw socket sees the server hang up within 2 s
 * (EOF or ECONNRESET; if a CLOSE frame arrives first, its reason code must
 * be the right one), the meter counts exactly one more bad frame of the
 * right reason and nothing else, the server reports WP_EP_CLOSED with the
 * right error, and a library client connected before any of this keeps
 * getting checksummed echo answers. The too-big case also checks that the
 * server's resident memory does not grow by anything like max_frame.
 *
 * wp-test-paths: tcp uring (raw TCP peers writing bad bytes; shm's hostile-peer cases are in test_shm.c)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "harness.h"
#include "core/frame.h"

enum { M_ECHO = 1 };

/* ---- server ---------------------------------------------------------- */

/* Written by the server thread, read by the test thread. */
static atomic_int srv_up, srv_closed, srv_last_err;

static void srv_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	if (ev == WP_EP_CONNECTED) {
		atomic_fetch_add(&srv_up, 1);
	} else {
		atomic_store(&srv_last_err, err);
		atomic_fetch_add(&srv_closed, 1);
	}
}

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	/* The request is lent: no done callback, so the reply copies it. */
	CHECK(wp_call_reply(call, req->data, req->len, NULL, NULL) == 0);
}

static void srv_setup(struct srv *s)
{
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
}

/* ---- library client ------------------------------------------------- */

struct res {
	int done, status;
	uint32_t got;
	uint64_t sum;
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	r->sum = fnv1a(m->data, m->len, r->sum);
	r->got += m->len;
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	CHECK(!r->done); /* exactly once */
	r->done = 1;
	r->status = status;
}

/* The library connection opened before the bad input still works. */
static void lib_echo_check(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w, uint32_t seed)
{
	uint8_t buf[1500];
	size_t len = 100 + seed * 37 % 1400;
	struct res r = { .sum = FNV_INIT };
	struct wp_call_params p = { .method = M_ECHO,
				    .req = buf,
				    .req_len = (uint32_t)len,
				    .deadline_us = 2000000,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = &r };

	test_fill(buf, len, seed);
	CHECK(!w->closed);
	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &r.done, 3000);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.got, len);
	CHECK(r.sum == fnv1a(buf, len, FNV_INIT));
	CHECK(!w->closed);
}

/* ---- raw sockets ------------------------------------------------------ */

static int raw_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	CHECK(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
	CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

/* Write everything; with ignore_err, a failed write (the server already hung
 * up on us) just stops. Returns bytes written. */
static size_t raw_write(int fd, const void *p, size_t n, int ignore_err)
{
	size_t off = 0;

	while (off < n) {
		ssize_t w = send(fd, (const uint8_t *)p + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && ignore_err)
			break;
		CHECK(w > 0);
		off += (size_t)w;
	}
	return off;
}

/* One byte per write, a small pause between. */
static void raw_dribble(int fd, const void *p, size_t n, int ignore_err)
{
	struct timespec ts = { 0, 300 * 1000 };

	for (size_t i = 0; i < n; i++) {
		if (raw_write(fd, (const uint8_t *)p + i, 1, ignore_err) != 1)
			return;
		nanosleep(&ts, NULL);
	}
}

/* Read exactly n bytes within ms; 0 on success, -1 on EOF/error/timeout. */
static int raw_read_exact(int fd, void *buf, size_t n, int ms)
{
	uint64_t end = wp_now_ns() + (uint64_t)ms * 1000000;
	size_t off = 0;

	while (off < n) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int left = (int)((end - wp_now_ns()) / 1000000);
		ssize_t r;

		if (wp_now_ns() >= end)
			return -1;
		if (poll(&pf, 1, left > 0 ? left : 1) <= 0)
			continue;
		r = read(fd, (uint8_t *)buf + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static void raw_read_frame(int fd, struct wp_frame_hdr *h, uint8_t *payload, uint32_t cap)
{
	uint8_t hb[WP_FRAME_HDR];
	int reason = -1;

	CHECK(raw_read_exact(fd, hb, sizeof(hb), 2000) == 0);
	CHECK_EQ(wp_frame_decode(hb, sizeof(hb), cap, h, &reason), WP_FRAME_HDR);
	CHECK(raw_read_exact(fd, payload, h->len, 2000) == 0);
}

/*
 * The server must hang up on fd within 2 s: read returns 0 or ECONNRESET.
 * Anything received before must be exactly one CLOSE frame whose aux is
 * `reason` and whose text is the reason's name. want_frame: an orderly EOF
 * without the CLOSE frame is a failure (the server always tries to send it
 * for a bad frame, and it cannot fail on an idle socket). Returns 1 if the
 * CLOSE frame was seen.
 */
static int raw_expect_close(int fd, int reason, int want_frame)
{
	uint8_t buf[4096];
	size_t have = 0;
	uint64_t end = wp_now_ns() + 2000000000ull;
	int eof = 0, reset = 0;

	while (!eof && !reset) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (wp_now_ns() >= end) {
			fprintf(stderr, "server did not close the raw socket within 2 s\n");
			exit(1);
		}
		if (poll(&pf, 1, 50) <= 0)
			continue;
		r = read(fd, buf + have, sizeof(buf) - have);
		if (r > 0) {
			have += (size_t)r;
			CHECK(have < sizeof(buf));
		} else if (r == 0) {
			eof = 1;
		} else if (errno == ECONNRESET) {
			reset = 1;
		} else {
			CHECK(errno == EINTR);
		}
	}
	if (have == 0) {
		CHECK(!(eof && want_frame));
		return 0;
	}
	{
		struct wp_frame_hdr h;
		int why = -1;
		const char *name = wp_bad_reason_name(reason);

		CHECK(have >= WP_FRAME_HDR);
		CHECK_EQ(wp_frame_decode(buf, have, 4096, &h, &why), WP_FRAME_HDR);
		CHECK_EQ(h.type, WP_FT_CLOSE);
		CHECK_EQ(h.aux, reason);
		CHECK_EQ(have, WP_FRAME_HDR + h.len);
		CHECK_EQ(h.len, strlen(name));
		CHECK(!memcmp(buf + WP_FRAME_HDR, name, h.len));
	}
	return 1;
}

/* ---- meter and memory ------------------------------------------------ */

static void snap(struct wp_meter_snap *s)
{
	wp_meter_snapshot(s);
}

/* Wait (2 s) until bad_frames[reason] moved, then demand exactly +1 there
 * and no change for every other reason. reason < 0: no bad frame at all. */
static void expect_bad(const struct wp_meter_snap *before, int reason)
{
	struct wp_meter_snap now;
	uint64_t end = wp_now_ns() + 2000000000ull;

	if (reason >= 0) {
		for (;;) {
			snap(&now);
			if (now.bad_frames[reason] != before->bad_frames[reason])
				break;
			if (wp_now_ns() > end) {
				fprintf(stderr, "meter: bad_frames[%s] did not move\n",
					wp_bad_reason_name(reason));
				exit(1);
			}
			usleep(1000);
		}
	}
	usleep(20000); /* a second, wrong count would show up by now */
	snap(&now);
	for (int i = 0; i < WP_BAD__COUNT; i++) {
		uint64_t want = before->bad_frames[i] + (i == reason ? 1 : 0);

		if (now.bad_frames[i] != want) {
			fprintf(stderr, "meter: bad_frames[%s] = %llu, want %llu\n",
				wp_bad_reason_name(i), (unsigned long long)now.bad_frames[i],
				(unsigned long long)want);
			exit(1);
		}
	}
}

/* Wait until the server reported n closed endpoints; check the last error. */
static void expect_srv_closed(int n, int err)
{
	uint64_t end = wp_now_ns() + 2000000000ull;

	while (atomic_load(&srv_closed) < n) {
		CHECK(wp_now_ns() < end);
		usleep(1000);
	}
	CHECK_EQ(atomic_load(&srv_closed), n);
	CHECK_EQ(atomic_load(&srv_last_err), err);
}

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;

	CHECK(f);
	CHECK(fscanf(f, "%ld %ld", &size, &res) == 2);
	fclose(f);
	return res * sysconf(_SC_PAGESIZE);
}

/* ---- cases ------------------------------------------------------------ */

static void hdr_bytes(uint8_t *out, uint8_t type, uint16_t flags, uint64_t id, uint32_t method,
		      uint32_t len)
{
	struct wp_frame_hdr h = { .type = type,
				  .flags = flags,
				  .req_id = id,
				  .method = method,
				  .len = len };

	wp_frame_encode(&h, out);
}

struct bad_case {
	const char *name;
	uint8_t bytes[64];
	size_t n;
	int reason;
};

static int port;
static int nclosed; /* server-side closes seen so far */
static int frames_seen, cases_run;

/* Send one bad input on a fresh raw socket (whole, or one byte per write)
 * and check the outcome. */
static void run_bad(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w,
		    const struct bad_case *bc, int dribble, uint32_t seed)
{
	struct wp_meter_snap before;
	int up0 = atomic_load(&srv_up);
	int fd;

	snap(&before);
	fd = raw_connect(port);
	/* Accepted before we speak, so the server's event counts line up. */
	while (atomic_load(&srv_up) == up0)
		usleep(500);
	if (dribble)
		raw_dribble(fd, bc->bytes, bc->n, 1);
	else
		raw_write(fd, bc->bytes, bc->n, 0);
	frames_seen += raw_expect_close(fd, bc->reason, 1);
	cases_run++;
	close(fd);
	expect_bad(&before, bc->reason);
	expect_srv_closed(++nclosed, -EPROTO);
	lib_echo_check(c, ep, w, seed);
	printf("  %-22s %s: closed, counted as %s\n", bc->name,
	       dribble ? "1-byte writes" : "one write", wp_bad_reason_name(bc->reason));
}

static struct bad_case mk(const char *name, int reason, uint8_t type, uint16_t flags, uint32_t len)
{
	struct bad_case bc = { .name = name, .n = WP_FRAME_HDR, .reason = reason };

	hdr_bytes(bc.bytes, type, flags, 1, M_ECHO, len);
	return bc;
}

/* Send a REQ for M_ECHO on a raw socket and check the answer, byte for byte. */
static void raw_echo(int fd, uint64_t id, uint32_t len, uint32_t seed, int dribble)
{
	static uint8_t req[WP_FRAME_HDR + 4096], resp[4096];
	struct wp_frame_hdr h;

	CHECK(len <= 4096);
	hdr_bytes(req, WP_FT_REQ, 0, id, M_ECHO, len);
	test_fill(req + WP_FRAME_HDR, len, seed);
	if (dribble)
		raw_dribble(fd, req, WP_FRAME_HDR + len, 0);
	else
		raw_write(fd, req, WP_FRAME_HDR + len, 0);
	raw_read_frame(fd, &h, resp, sizeof(resp));
	CHECK_EQ(h.type, WP_FT_DATA);
	CHECK_EQ(h.flags, WP_FF_LAST);
	CHECK(h.req_id == id);
	CHECK_EQ(h.method, M_ECHO);
	CHECK_EQ(h.aux, 0);
	CHECK_EQ(h.len, len);
	CHECK(fnv1a(resp, len, FNV_INIT) == fnv1a(req + WP_FRAME_HDR, len, FNV_INIT));
}

/*
 * Warm-up for the memory check: one valid 8 MiB one-way message (the server
 * has no message callback, so it is ignored), then an echo on the same
 * connection. Afterwards every receive buffer the server will ever use has
 * been filled once (uring: the whole provided buffer ring; tcp: the read
 * buffer) and the big assembly buffer came and went, so what the too-big
 * cases add to the resident set is theirs alone.
 */
static uint8_t junk[8 << 20];

static void big_valid_msg(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w)
{
	uint8_t hb[WP_FRAME_HDR];
	struct wp_meter_snap before;
	int up0 = atomic_load(&srv_up);
	int fd;

	memset(junk, 0x5a, sizeof(junk));
	snap(&before);
	fd = raw_connect(port);
	while (atomic_load(&srv_up) == up0)
		usleep(500);
	hdr_bytes(hb, WP_FT_MSG, 0, 0, 5, sizeof(junk));
	raw_write(fd, hb, sizeof(hb), 0);
	raw_write(fd, junk, sizeof(junk), 0);
	raw_echo(fd, 77, 1000, 77, 0);
	close(fd);
	expect_srv_closed(++nclosed, 0);
	expect_bad(&before, -1);
	lib_echo_check(c, ep, w, 50);
	printf("  valid 8 MiB message: taken (ignored, no callback), next REQ answered\n");
}

/* (e) len = max_frame + 1: rejected from the header alone, nothing sized from it. */
static void case_too_big(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w)
{
	struct bad_case bc = mk("len = max_frame + 1", WP_BAD_TOO_BIG, WP_FT_REQ, 0,
				WP_FRAME_MAX_DEFAULT + 1);
	struct wp_meter_snap before;
	long rss0, rss1;
	struct timeval tv = { 2, 0 };
	size_t sent;
	int fd;

	big_valid_msg(c, ep, w);
	rss0 = rss_bytes();
	run_bad(c, ep, w, &bc, 0, 51);
	run_bad(c, ep, w, &bc, 1, 52);
	/* The same header followed by 8 MiB of payload: a server that took the
	 * header would copy (touch) it all into a 16 MiB buffer. It must hang up
	 * instead; our writes then fail, which is fine. */
	snap(&before);
	fd = raw_connect(port);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
	raw_write(fd, bc.bytes, bc.n, 0);
	sent = raw_write(fd, junk, sizeof(junk), 1);
	frames_seen += raw_expect_close(fd, WP_BAD_TOO_BIG, 0);
	cases_run++;
	close(fd);
	expect_bad(&before, WP_BAD_TOO_BIG);
	expect_srv_closed(++nclosed, -EPROTO);
	lib_echo_check(c, ep, w, 53);
	rss1 = rss_bytes();
	printf("  len = max_frame + 1    + payload (%zu KiB went out): closed; RSS %+ld KiB\n",
	       sent >> 10, (rss1 - rss0) >> 10);
	/* Anything like max_frame (16 MiB) would show; allocator noise is far less. */
	CHECK(rss1 - rss0 < (4l << 20));

	/* The largest u32 too. */
	bc = mk("len = UINT32_MAX", WP_BAD_TOO_BIG, WP_FT_DATA, 0, UINT32_MAX);
	run_bad(c, ep, w, &bc, 0, 54);
	CHECK(rss_bytes() - rss0 < (4l << 20));
}

/* (f) A valid header then part of its payload (or part of a header), then
 * our side closes: truncated. No CLOSE frame is owed (the peer left). */
static void case_truncated(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w,
			   size_t send_bytes, const char *what, uint32_t seed)
{
	uint8_t buf[WP_FRAME_HDR + 1000];
	struct wp_meter_snap before;
	int up0 = atomic_load(&srv_up);
	int fd;

	hdr_bytes(buf, WP_FT_REQ, 0, 9, M_ECHO, 1000);
	test_fill(buf + WP_FRAME_HDR, 1000, seed);
	snap(&before);
	fd = raw_connect(port);
	while (atomic_load(&srv_up) == up0)
		usleep(500);
	raw_write(fd, buf, send_bytes, 0);
	usleep(20000); /* let the server take the part in a separate read */
	/* Half-close: the server sees EOF mid-frame, and we still see it hang up. */
	CHECK(shutdown(fd, SHUT_WR) == 0);
	raw_expect_close(fd, WP_BAD_TRUNCATED, 0);
	close(fd);
	expect_bad(&before, WP_BAD_TRUNCATED);
	expect_srv_closed(++nclosed, -EPIPE);
	lib_echo_check(c, ep, w, seed);
	printf("  truncated (%s): closed, counted as truncated\n", what);

	/* The same, but a full close() instead of a half-close. */
	snap(&before);
	up0 = atomic_load(&srv_up);
	fd = raw_connect(port);
	while (atomic_load(&srv_up) == up0)
		usleep(500);
	raw_write(fd, buf, send_bytes, 0);
	close(fd);
	expect_bad(&before, WP_BAD_TRUNCATED);
	expect_srv_closed(++nclosed, -EPIPE);
	lib_echo_check(c, ep, w, seed + 1);
}

/* (g) Well-formed frames a server does not expect: answers to calls it never
 * made, a CANCEL for nothing, a one-way message with no handler. Ignored:
 * the connection stays up and serves a REQ. Then a CLOSE from the client:
 * the server hangs up, and that is not a bad frame. */
static void case_unexpected(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w)
{
	uint8_t buf[WP_FRAME_HDR + 64];
	struct wp_meter_snap before;
	int up0 = atomic_load(&srv_up);
	int fd;
	struct {
		uint8_t type;
		uint16_t flags;
		uint32_t len;
	} ign[] = {
		{ WP_FT_DATA, 0, 16 }, { WP_FT_DATA, WP_FF_LAST, 0 }, { WP_FT_END, 0, 0 },
		{ WP_FT_ERR, 0, 11 },  { WP_FT_CANCEL, 0, 0 },        { WP_FT_MSG, 0, 33 },
	};

	snap(&before);
	fd = raw_connect(port);
	while (atomic_load(&srv_up) == up0)
		usleep(500);
	for (size_t i = 0; i < sizeof(ign) / sizeof(ign[0]); i++) {
		hdr_bytes(buf, ign[i].type, ign[i].flags, 0xdead0000beefull + i, M_ECHO,
			  ign[i].len);
		test_fill(buf + WP_FRAME_HDR, ign[i].len, (uint32_t)i);
		raw_write(fd, buf, WP_FRAME_HDR + ign[i].len, 0);
		raw_echo(fd, 100 + i, 64 + (uint32_t)i * 100, (uint32_t)i, 0);
	}
	expect_bad(&before, -1);
	CHECK_EQ(atomic_load(&srv_closed), nclosed);
	lib_echo_check(c, ep, w, 71);
	printf("  DATA/END/ERR for unknown ids, CANCEL, MSG: ignored, REQ answered\n");

	/* CLOSE from the client: the server hangs up (err -ECONNRESET). */
	{
		static const char bye[] = "client says bye";

		hdr_bytes(buf, WP_FT_CLOSE, 0, 0, 0, sizeof(bye) - 1);
		memcpy(buf + WP_FRAME_HDR, bye, sizeof(bye) - 1);
		raw_write(fd, buf, WP_FRAME_HDR + sizeof(bye) - 1, 0);
		/* The server does not answer a CLOSE with a CLOSE. */
		CHECK_EQ(raw_expect_close(fd, 0, 0), 0);
		close(fd);
		expect_srv_closed(++nclosed, -ECONNRESET);
		expect_bad(&before, -1);
		lib_echo_check(c, ep, w, 72);
		printf("  CLOSE from the client: server closed, no bad frame counted\n");
	}
}

/* (h) Frames split across writes: one byte per write, header and payload
 * in separate writes, several frames in one write with a split at the end. */
static void case_split(struct wp_ctx *c, struct wp_ep *ep, struct conn_wait *w)
{
	static uint8_t buf[3 * (WP_FRAME_HDR + 700)], resp[1024];
	struct wp_meter_snap before;
	int up0 = atomic_load(&srv_up);
	size_t off = 0;
	int fd;

	snap(&before);
	fd = raw_connect(port);
	while (atomic_load(&srv_up) == up0)
		usleep(500);
	raw_echo(fd, 1, 200, 1, 1); /* 240 one-byte writes */
	raw_echo(fd, 2, 0, 2, 1);   /* header only, one byte at a time */
	raw_echo(fd, 3, 600, 3, 0); /* whole */

	/* Header, pause, payload in two pieces. */
	hdr_bytes(buf, WP_FT_REQ, 0, 4, M_ECHO, 700);
	test_fill(buf + WP_FRAME_HDR, 700, 4);
	raw_write(fd, buf, WP_FRAME_HDR, 0);
	usleep(5000);
	raw_write(fd, buf + WP_FRAME_HDR, 333, 0);
	usleep(5000);
	raw_write(fd, buf + WP_FRAME_HDR + 333, 700 - 333, 0);
	{
		struct wp_frame_hdr h;

		raw_read_frame(fd, &h, resp, sizeof(resp));
		CHECK(h.req_id == 4 && h.len == 700 && h.type == WP_FT_DATA);
		CHECK(!memcmp(resp, buf + WP_FRAME_HDR, 700));
	}

	/* Three frames: two and a half in one write, the rest later. */
	for (uint64_t i = 0; i < 3; i++) {
		hdr_bytes(buf + off, WP_FT_REQ, 0, 10 + i, M_ECHO, 700);
		test_fill(buf + off + WP_FRAME_HDR, 700, 10 + (uint32_t)i);
		off += WP_FRAME_HDR + 700;
	}
	raw_write(fd, buf, off - 500, 0);
	usleep(5000);
	raw_write(fd, buf + off - 500, 500, 0);
	for (uint64_t i = 0; i < 3; i++) {
		struct wp_frame_hdr h;

		raw_read_frame(fd, &h, resp, sizeof(resp));
		CHECK(h.req_id == 10 + i && h.len == 700 && h.type == WP_FT_DATA);
		CHECK(!memcmp(resp, buf + i * (WP_FRAME_HDR + 700) + WP_FRAME_HDR, 700));
	}
	expect_bad(&before, -1);
	CHECK_EQ(atomic_load(&srv_closed), nclosed);

	/* An orderly close at a frame boundary is not truncation. */
	close(fd);
	expect_srv_closed(++nclosed, 0);
	expect_bad(&before, -1);
	lib_echo_check(c, ep, w, 81);
	printf("  split frames (1-byte writes, header/payload apart, 2.5 frames per write): "
	       "answered\n");
}

int main(int argc, char **argv)
{
	static struct srv s;
	struct wp_ep_cbs scbs = { .event = srv_event };
	struct conn_wait w = { 0 };
	struct wp_ctx *c;
	struct wp_ep *ep;
	struct bad_case bc;

	test_watchdog(25);
	signal(SIGPIPE, SIG_IGN);
	s.path = test_path(argc, argv);
	s.setup = srv_setup;
	srv_start(&s, &scbs);
	port = s.port;
	c = client_ctx(s.path);
	ep = client_connect(c, s.path, s.port, &w, NULL, NULL);
	CHECK(!strcmp(wp_ctx_path(c), s.path));
	/* Wait for the server to see it, so later counts are ours alone. */
	while (atomic_load(&srv_up) < 1)
		usleep(500);
	lib_echo_check(c, ep, &w, 1);
	printf("path: %s\n", wp_ctx_explain(c));

	/* (a) garbage: no magic. */
	bc = (struct bad_case){ .name = "garbage", .n = 48, .reason = WP_BAD_MAGIC };
	test_fill(bc.bytes, bc.n, 7);
	bc.bytes[0] = 'G'; /* not 'W': rejected at the first byte */
	run_bad(c, ep, &w, &bc, 0, 2);
	run_bad(c, ep, &w, &bc, 1, 3);
	/* HTTP at a wirepath port. */
	bc = (struct bad_case){ .name = "HTTP request", .reason = WP_BAD_MAGIC };
	bc.n = (size_t)snprintf((char *)bc.bytes, sizeof(bc.bytes), "GET / HTTP/1.1\r\n\r\n");
	run_bad(c, ep, &w, &bc, 0, 4);
	/* The magic's first three bytes, then a wrong fourth. */
	bc = mk("magic 'WPF2'", WP_BAD_MAGIC, WP_FT_REQ, 0, 0);
	bc.bytes[3] = '2';
	run_bad(c, ep, &w, &bc, 1, 5);

	/* (b) valid magic, version 1: a v1 peer. */
	bc = mk("version 1", WP_BAD_VERSION, WP_FT_REQ, 0, 0);
	bc.bytes[4] = 1;
	run_bad(c, ep, &w, &bc, 0, 11);
	run_bad(c, ep, &w, &bc, 1, 12);
	bc.bytes[4] = 0;
	bc.name = "version 0";
	run_bad(c, ep, &w, &bc, 0, 13);

	/* (c) frame types 0 and 99 (and 8, one past the last). */
	bc = mk("type 0", WP_BAD_TYPE, 0, 0, 0);
	run_bad(c, ep, &w, &bc, 0, 21);
	bc = mk("type 99", WP_BAD_TYPE, 99, 0, 4);
	run_bad(c, ep, &w, &bc, 0, 22);
	run_bad(c, ep, &w, &bc, 1, 23);
	bc = mk("type past the last", WP_BAD_TYPE, WP_FT__MAX + 1, 0, 0);
	run_bad(c, ep, &w, &bc, 0, 24);

	/* (d) unknown flag bits. */
	bc = mk("flags 0x8000", WP_BAD_FLAGS, WP_FT_REQ, 0x8000, 0);
	run_bad(c, ep, &w, &bc, 0, 31);
	bc = mk("flags LAST|0x2", WP_BAD_FLAGS, WP_FT_DATA, WP_FF_LAST | 0x2, 0);
	run_bad(c, ep, &w, &bc, 1, 32);

	/* (e) too big. */
	case_too_big(c, ep, &w);

	/* (f) truncated: mid-payload, and mid-header. */
	case_truncated(c, ep, &w, WP_FRAME_HDR + 300, "header + 300 of 1000 payload bytes", 61);
	case_truncated(c, ep, &w, 17, "17 of 40 header bytes", 63);

	/* (g) unexpected but well-formed; CLOSE from the client. */
	case_unexpected(c, ep, &w);

	/* (h) split frames. */
	case_split(c, ep, &w);

	printf("%d bad inputs, %d answered with a CLOSE frame before the hang-up\n", cases_run,
	       frames_seen);
	lib_echo_check(c, ep, &w, 99);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	srv_stop(&s);
	printf("ok\n");
	return 0;
}
