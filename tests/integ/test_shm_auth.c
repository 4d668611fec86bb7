// SPDX-License-Identifier: MIT
/*
 * shm peer authentication at set-up (docs/protocol.md, "The shm path"): a
 * server context with a policy, a client with a tenant key set right after
 * wp_connect.
 *
 * 1. The right key: both ends see the peer verified (wp_ep_peer: the tenant,
 *    and the kernel's pid/uid/gid of the other process), 200 checksummed
 *    echo calls of 0..64 KiB plus a 1000-chunk stream pass, stats answers the
 *    admin tenant and refuses (EACCES) the other, and a verified client that
 *    then claims another tenant's id in its frames is closed as bad_auth.
 * 2. A wrong key: the client finds the server's proof wrong, keeps its
 *    region and says so; both sides count bad_proof; the client's endpoint
 *    closes with -EACCES and never connected.
 * 3. Hostile hellos on a raw socket, each refused with its reason and an
 *    answer in the version it spoke, the server serving throughout: garbage,
 *    truncated (and oversized) AUTH_HELLOs, an AUTH_HELLO with descriptors
 *    attached, a v1 hello carrying a region to a context with a policy
 *    (no_auth: the region, a memfd named so this test can look for it, is
 *    never mapped).
 * 4. A process that does not know the key cannot get the region:
 *    a. a forked child, without the key, answers the challenge with a made-up
 *       proof and attaches a region: bad_proof, logged with the child's pid
 *       (SO_PEERCRED), its memfd never mapped in the server;
 *    b. a rogue server without the key (a raw listening socket) sends a
 *       made-up challenge: the client refuses it and no descriptor ever
 *       reaches the rogue.
 * 5. shm_same_uid: a client of our own uid is served; as root, a forked
 *    child that switched to uid 65534 is refused (peer_uid). Not root: that
 *    half is reported as not run.
 *
 * wp-test-paths: shm
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "harness.h"
#include "procs.h"
#include "wirepath/policy.h"
#include "transport/shm/layout.h"

#define M_ECHO 0x100u
#define M_STREAM 0x101u
#define ROGUE_MEMFD "wp-test-rogue-region"

static const char rules[] = "default drop\n"
			    "tenant acme id 1 key 00112233445566778899aabbccddeeff admin\n"
			    "tenant beta id 2 key 0f0e0d0c0b0a09080706050403020100\n";
static const uint8_t ka[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t kb[16] = { 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
				0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00 };

/* ---- the server: its own thread, its log captured ------------------------ */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[16384];
static size_t log_len;

static void srv_log(void *arg, enum wp_log_level lvl, const char *msg)
{
	pthread_mutex_lock(&log_mu);
	if (log_len + strlen(msg) + 2 < sizeof(log_buf))
		log_len += (size_t)snprintf(log_buf + log_len, sizeof(log_buf) - log_len, "%s\n",
					    msg);
	pthread_mutex_unlock(&log_mu);
	if (getenv("WP_TEST_VERBOSE"))
		fprintf(stderr, "[%s] %s\n", (const char *)arg, msg);
}

static int log_has(const char *needle)
{
	int r;

	pthread_mutex_lock(&log_mu);
	r = strstr(log_buf, needle) != NULL;
	pthread_mutex_unlock(&log_mu);
	return r;
}

static struct wp_policy *pol;
static atomic_int srv_peer_ok; /* accepted endpoints that wp_ep_peer says verified */

static void h_echo(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_ep_peer p;

	if (wp_ep_peer(wp_call_ep(call), &p) == 0 && p.verified && p.tenant == req->tenant &&
	    p.cred && p.pid == getpid() && p.uid == getuid())
		atomic_fetch_add(&srv_peer_ok, 1);
	wp_call_reply(call, req->data, req->len, NULL, NULL);
}

static void chunk_fill(uint8_t *p, uint32_t seq, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i * 7);
}

static void h_stream(void *arg, struct wp_call *call, struct wp_msg *req)
{
	uint8_t b[256];

	for (uint32_t i = 0; i < 1000; i++) {
		chunk_fill(b, i, sizeof(b));
		CHECK(wp_call_stream(call, b, sizeof(b), NULL, NULL) == 0);
	}
	wp_call_end(call, 0);
}

struct asrv {
	struct wp_ctx *ctx;
	struct wp_ep *l;
	int port;
	atomic_int stop;
	pthread_t th;
};

static void *asrv_loop(void *arg)
{
	struct asrv *s = arg;

	while (!atomic_load(&s->stop))
		wp_ctx_progress(s->ctx, 2000);
	wp_ctx_destroy(s->ctx);
	return NULL;
}

static void asrv_start(struct asrv *s, int same_uid)
{
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs = { 0 };
	int ret;

	h_opts(&o, "server");
	o.log = srv_log;
	o.log_level = WP_LOG_INFO;
	o.shm_same_uid = same_uid;
	CHECK(wp_ctx_create(&o, &s->ctx) == 0);
	CHECK(wp_rpc_register(s->ctx, M_ECHO, h_echo, NULL) == 0);
	CHECK(wp_rpc_register(s->ctx, M_STREAM, h_stream, NULL) == 0);
	CHECK(wp_ctx_set_policy(s->ctx, pol) == 0);
	ret = wp_listen(s->ctx, "shm://@", &cbs, &s->l);
	if (ret == -ENOSYS || ret == -EOPNOTSUPP || ret == -EPERM)
		SKIP("shm unavailable here: %s", strerror(-ret));
	CHECK(ret == 0);
	s->port = wp_ep_local_port(s->l);
	CHECK(pthread_create(&s->th, NULL, asrv_loop, s) == 0);
}

static void asrv_stop(struct asrv *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
}

/* ---- a client --------------------------------------------------------- */

static void kc_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct conn_wait *w = arg;

	if (ev == WP_EP_CONNECTED) {
		w->up = 1;
	} else {
		w->closed = 1;
		w->err = err;
	}
}

static struct wp_ep *kconnect(struct wp_ctx *c, int port, struct conn_wait *w, uint32_t tenant,
			      const uint8_t *key)
{
	struct wp_ep_cbs cbs = { .event = kc_event, .arg = w };
	struct wp_ep *ep;
	char uri[64];

	h_uri(uri, sizeof(uri), "shm", port);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	if (key)
		CHECK(wp_ep_set_tenant_key(ep, tenant, key) == 0);
	while (!w->up && !w->closed)
		CHECK(wp_ctx_progress(c, 1000) >= 0);
	return ep;
}

struct res {
	int done, status;
	uint32_t chunks, bad;
	uint8_t *want;
	uint32_t want_len;
};

static void on_data(void *arg, struct wp_msg *m)
{
	struct res *r = arg;

	if (r->want) {
		if (m->len != r->want_len || (m->len && memcmp(m->data, r->want, m->len)))
			r->bad++;
	} else {
		uint8_t b[256];

		chunk_fill(b, r->chunks, sizeof(b));
		if (m->len != sizeof(b) || memcmp(m->data, b, sizeof(b)))
			r->bad++;
	}
	r->chunks++;
}

static void on_done(void *arg, int status)
{
	struct res *r = arg;

	r->status = status;
	r->done = 1;
}

static int call(struct wp_ctx *c, struct wp_ep *ep, uint32_t method, const void *req, uint32_t len,
		struct res *r)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = len,
				    .on_data = on_data,
				    .on_done = on_done,
				    .arg = r };

	CHECK(wp_rpc_call(ep, &p, NULL) == 0);
	drive_until(c, &r->done, 5000);
	return r->status;
}

static uint64_t sr(const struct wp_meter_snap *a, const struct wp_meter_snap *b, int r)
{
	return b->setup_refused[r] - a->setup_refused[r];
}

/* Wait until the server thread counted setup_refused[r] n more times. */
static void wait_refused(const struct wp_meter_snap *a, int r, uint64_t n)
{
	struct wp_meter_snap b;

	for (int i = 0; i < 300; i++) {
		wp_meter_snapshot(&b);
		if (sr(a, &b, r) >= n)
			return;
		usleep(10000);
	}
	fprintf(stderr, "setup_refused[%s]: +%llu, expected +%llu\n", wp_setup_reason_name(r),
		(unsigned long long)sr(a, &b, r), (unsigned long long)n);
	exit(1);
}

/* Is a memfd of that name mapped in this process? */
static int mapped(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, name) != NULL;
	fclose(f);
	return n;
}

/* ---- 1: the right key ---------------------------------------------------- */

static void case_good(int port)
{
	struct wp_ctx *c = client_ctx("shm");
	struct conn_wait w = { 0 };
	struct wp_ep *ep = kconnect(c, port, &w, 1, ka);
	struct wp_ep_peer p;
	uint8_t *buf = malloc(64 << 10);
	struct res r;

	CHECK(w.up);
	CHECK(wp_ep_peer(ep, &p) == 0);
	CHECK(p.verified && p.tenant == 1 && p.cred && p.pid == getpid() && p.uid == getuid());
	CHECK(buf != NULL);
	for (uint32_t i = 0; i < 200; i++) {
		uint32_t len = i % 10 == 9 ? (64u << 10) : (i * 37) % 3000;

		for (uint32_t k = 0; k < len; k++)
			buf[k] = (uint8_t)(i * 13 + k);
		r = (struct res){ .want = buf, .want_len = len };
		CHECK_EQ(call(c, ep, M_ECHO, buf, len, &r), 0);
		CHECK_EQ(r.chunks, 1);
		CHECK_EQ(r.bad, 0);
	}
	CHECK(atomic_load(&srv_peer_ok) >= 200);
	r = (struct res){ 0 };
	CHECK_EQ(call(c, ep, M_STREAM, "s", 1, &r), 0);
	CHECK_EQ(r.chunks, 1000);
	CHECK_EQ(r.bad, 0);
	r = (struct res){ 0 };
	CHECK_EQ(call(c, ep, WP_METHOD_STATS, NULL, 0, &r), 0); /* acme is admin */
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	printf("1. right key: peer verified on both ends (tenant 1, pid %d), 200 echo calls up to "
	       "64 KiB and a 1000-chunk stream intact, stats for the admin\n",
	       (int)p.pid);

	/* beta: served, but stats is admin-only; claiming acme's id closes it. */
	c = client_ctx("shm");
	memset(&w, 0, sizeof(w));
	ep = kconnect(c, port, &w, 2, kb);
	CHECK(w.up);
	r = (struct res){ .want = buf, .want_len = 0 };
	CHECK_EQ(call(c, ep, M_ECHO, NULL, 0, &r), 0);
	r = (struct res){ 0 };
	CHECK_EQ(call(c, ep, WP_METHOD_STATS, NULL, 0, &r), EACCES);
	{
		struct wp_meter_snap a, b;

		wp_meter_snapshot(&a);
		wp_ep_set_tenant(ep, 1); /* speak as acme on beta's connection */
		r = (struct res){ 0 };
		CHECK(call(c, ep, WP_METHOD_STATS, NULL, 0, &r) < 0);
		drive_until(c, &w.closed, 5000);
		for (int i = 0; i < 300; i++) {
			wp_meter_snapshot(&b);
			if (b.bad_frames[WP_BAD_AUTH] > a.bad_frames[WP_BAD_AUTH])
				break;
			usleep(10000);
		}
		CHECK_EQ(b.bad_frames[WP_BAD_AUTH] - a.bad_frames[WP_BAD_AUTH], 1);
	}
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	free(buf);
	printf("   beta: served, stats refused (EACCES); its frames claiming acme's id closed as "
	       "bad_auth\n");
}

/* ---- 2: a wrong key ------------------------------------------------------ */

static void case_wrong_key(int port)
{
	static const uint8_t wrong[16] = { 1, 2, 3 };
	struct wp_ctx *c = client_ctx("shm");
	struct conn_wait w = { 0 };
	struct wp_meter_snap a;
	struct wp_ep *ep;

	wp_meter_snapshot(&a);
	ep = kconnect(c, port, &w, 1, wrong);
	CHECK(!w.up && w.closed);
	CHECK_EQ(w.err, -EACCES);
	CHECK(wp_ep_peer(ep, &(struct wp_ep_peer){ 0 }) == -ENOTCONN);
	wait_refused(&a, WP_SETUP_BAD_PROOF, 2); /* the client's view and the server's */
	CHECK(log_has("the client refused our proof of tenant 1's key"));
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	printf("2. wrong key: the client refused the server's proof (kept its region), the server "
	       "logged why; bad_proof +2, -EACCES, never connected\n");
}

/* ---- raw peers ----------------------------------------------------------- */

static int raw_sock(int port)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "%05x", port);
	CHECK(connect(fd, (struct sockaddr *)&un, offsetof(struct sockaddr_un, sun_path) + 6) == 0);
	return fd;
}

static void raw_send(int sock, const void *m, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { (void *)m, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	CHECK(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Receive one message within 2 s: its length (0 at EOF), *nfds descriptors
 * attached (closed here). */
static ssize_t raw_recv(int sock, void *buf, size_t cap, int *nfds)
{
	char cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd pf = { .fd = sock, .events = POLLIN };
	ssize_t n;

	*nfds = 0;
	CHECK(poll(&pf, 1, 2000) == 1);
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	CHECK(n >= 0);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + (size_t)i * sizeof(int), sizeof(fd));
			close(fd);
			(*nfds)++;
		}
	}
	return n;
}

/* A sealed memfd region of geometry g with its header written. */
static int rogue_region(const struct shm_geom *g)
{
	int fd = memfd_create(ROGUE_MEMFD, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct shm_hdr *h;

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)g->size) == 0);
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(h != MAP_FAILED);
	h->magic = SHM_MAGIC;
	h->version = SHM_VERSION;
	h->size = g->size;
	munmap(h, sizeof(*h));
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	return fd;
}

static struct shm_auth_msg auth_hello(uint32_t tenant)
{
	struct shm_auth_msg m = { .magic = SHM_MAGIC,
				  .version = SHM_VERSION_AUTH,
				  .type = SHM_MSG_AUTH_HELLO,
				  .tenant = tenant,
				  .pid = getpid() };

	memset(m.nonce, 0x5a, sizeof(m.nonce));
	return m;
}

/* Send m (len bytes, fds), expect a refusal of `version` with status < 0,
 * then the hang-up, and reason counted once. */
static void hostile(int port, const char *what, const void *m, size_t len, const int *fds, int nfds,
		    int version, int reason)
{
	struct wp_meter_snap a;
	uint8_t ans[256];
	int sock, got_fds;
	ssize_t n;

	wp_meter_snapshot(&a);
	sock = raw_sock(port);
	raw_send(sock, m, len, fds, nfds);
	n = raw_recv(sock, ans, sizeof(ans), &got_fds);
	CHECK_EQ(got_fds, 0);
	if (version == SHM_VERSION) {
		struct shm_wire_msg v1;

		CHECK_EQ(n, sizeof(v1));
		memcpy(&v1, ans, sizeof(v1));
		CHECK(v1.magic == SHM_MAGIC && v1.type == SHM_MSG_ACK && v1.status < 0);
	} else {
		struct shm_auth_msg v2;

		CHECK_EQ(n, sizeof(v2));
		memcpy(&v2, ans, sizeof(v2));
		CHECK(v2.magic == SHM_MAGIC && v2.version == SHM_VERSION_AUTH &&
		      v2.type == SHM_MSG_AUTH_ACK && v2.status < 0);
	}
	CHECK_EQ(raw_recv(sock, ans, sizeof(ans), &got_fds), 0); /* the hang-up */
	close(sock);
	wait_refused(&a, reason, 1);
	printf("   %s: refused (%s)\n", what, wp_setup_reason_name(reason));
}

/* ---- 3: hostile hellos --------------------------------------------------- */

static void case_hostile(int port)
{
	struct shm_auth_msg h = auth_hello(1);
	uint8_t big[200];
	struct shm_geom g;
	struct shm_wire_msg v1;
	int fds[3];

	printf("3. hostile hellos:\n");
	hostile(port, "10 bytes of garbage", "0123456789", 10, NULL, 0, SHM_VERSION,
		WP_SETUP_GARBAGE);
	hostile(port, "AUTH_HELLO cut to 100 bytes", &h, 100, NULL, 0, SHM_VERSION_AUTH,
		WP_SETUP_GARBAGE);
	memset(big, 0, sizeof(big));
	memcpy(big, &h, sizeof(h));
	hostile(port, "AUTH_HELLO of 200 bytes", big, sizeof(big), NULL, 0, SHM_VERSION_AUTH,
		WP_SETUP_GARBAGE);
	h.version = 7;
	hostile(port, "version 7", &h, sizeof(h), NULL, 0, SHM_VERSION, WP_SETUP_VERSION);
	h = auth_hello(1);
	memset(h.nonce, 0, sizeof(h.nonce));
	hostile(port, "AUTH_HELLO without a nonce", &h, sizeof(h), NULL, 0, SHM_VERSION_AUTH,
		WP_SETUP_GARBAGE);
	h = auth_hello(9);
	hostile(port, "AUTH_HELLO for an unknown tenant", &h, sizeof(h), NULL, 0, SHM_VERSION_AUTH,
		WP_SETUP_NO_KEY);

	shm_geom_layout(&g, 8, 64 << 10, 64 << 10, 4096);
	fds[0] = rogue_region(&g);
	fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(fds[1] >= 0 && fds[2] >= 0);
	h = auth_hello(1);
	hostile(port, "AUTH_HELLO with the region attached", &h, sizeof(h), fds, 3,
		SHM_VERSION_AUTH, WP_SETUP_GARBAGE);
	v1 = (struct shm_wire_msg){ .magic = SHM_MAGIC,
				    .version = SHM_VERSION,
				    .type = SHM_MSG_HELLO,
				    .slots = g.slots,
				    .arena = g.arena,
				    .heap = g.heap,
				    .align = g.align,
				    .size = g.size,
				    .pid = getpid() };
	hostile(port, "v1 hello with a valid region", &v1, sizeof(v1), fds, 3, SHM_VERSION,
		WP_SETUP_NO_AUTH);
	CHECK(log_has("unauthenticated (v1) hello"));
	CHECK_EQ(mapped(ROGUE_MEMFD), 0); /* never mapped by the server */
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

/* ---- 4: without the key, no region -------------------------------------- */

static void case_rogue_client(int port)
{
	int rep[2], v = 0, n;
	uint8_t ans[256];
	struct wp_meter_snap a;
	char needle[64];
	pid_t pid;

	CHECK(pipe(rep) == 0);
	wp_meter_snapshot(&a);
	pid = fork_child();
	if (pid == 0) {
		/* The child knows tenant 1's id, not its key. */
		struct shm_auth_msg h = auth_hello(1), r;
		struct shm_geom g;
		int sock = raw_sock(port), nf, fds[3];

		raw_send(sock, &h, sizeof(h), NULL, 0);
		if (raw_recv(sock, ans, sizeof(ans), &nf) != sizeof(r))
			_exit(2);
		memcpy(&r, ans, sizeof(r));
		if (r.type != SHM_MSG_AUTH_CHALLENGE)
			_exit(3);
		shm_geom_layout(&g, 8, 64 << 10, 64 << 10, 4096);
		r = (struct shm_auth_msg){ .magic = SHM_MAGIC,
					   .version = SHM_VERSION_AUTH,
					   .type = SHM_MSG_AUTH_REGION,
					   .tenant = 1,
					   .slots = g.slots,
					   .arena = g.arena,
					   .heap = g.heap,
					   .align = g.align,
					   .size = g.size };
		memset(r.proof, 0x42, sizeof(r.proof)); /* made up */
		fds[0] = rogue_region(&g);
		fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		raw_send(sock, &r, sizeof(r), fds, 3);
		n = (int)raw_recv(sock, ans, sizeof(ans), &nf);
		memcpy(&r, ans, sizeof(r));
		pipe_write_int(rep[1], n == sizeof(r) && r.type == SHM_MSG_AUTH_ACK ? r.status : 1);
		_exit(0);
	}
	CHECK(pipe_read_int(rep[0], 5000, &v) == 0);
	CHECK_EQ(v, -EACCES);
	CHECK(waitpid(pid, &n, 0) == pid); /* its verdict came over the pipe */
	wait_refused(&a, WP_SETUP_BAD_PROOF, 1);
	snprintf(needle, sizeof(needle), "peer pid %d uid %u", (int)pid, (unsigned)getuid());
	CHECK(log_has(needle));
	CHECK(log_has("wrong proof of tenant 1's key"));
	CHECK_EQ(mapped(ROGUE_MEMFD), 0);
	close(rep[0]);
	close(rep[1]);
	printf("4a. a child without the key (pid %d): refused at its proof, logged with its "
	       "SO_PEERCRED, its region never mapped\n",
	       (int)pid);
}

static void case_rogue_server(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	socklen_t sl = sizeof(un);
	struct wp_ctx *c = client_ctx("shm");
	struct wp_ep_cbs cbs = { .event = kc_event };
	struct conn_wait w = { 0 };
	struct shm_auth_msg m;
	struct wp_meter_snap a;
	struct wp_ep *ep;
	uint8_t buf[256];
	int l, s, nf, total_fds = 0, port;
	ssize_t n;
	char uri[64];

	l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(l >= 0);
	CHECK(bind(l, (struct sockaddr *)&un, sizeof(sa_family_t)) == 0); /* autobind */
	CHECK(listen(l, 4) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&un, &sl) == 0);
	port = (int)strtol(un.sun_path + 1, NULL, 16);
	h_uri(uri, sizeof(uri), "shm", port);
	cbs.arg = &w;
	wp_meter_snapshot(&a);
	CHECK(wp_connect(c, uri, &cbs, &ep) == 0);
	CHECK(wp_ep_set_tenant_key(ep, 1, ka) == 0);
	for (int i = 0; i < 5; i++)
		wp_ctx_progress(c, 1000); /* the hello leaves */
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(s >= 0);
	n = raw_recv(s, buf, sizeof(buf), &nf);
	total_fds += nf;
	CHECK_EQ(n, sizeof(m));
	memcpy(&m, buf, sizeof(m));
	CHECK(m.type == SHM_MSG_AUTH_HELLO && m.tenant == 1);
	/* A challenge with a proof the rogue cannot compute. */
	m.type = SHM_MSG_AUTH_CHALLENGE;
	memset(m.nonce, 0x33, sizeof(m.nonce));
	memset(m.proof, 0x44, sizeof(m.proof));
	raw_send(s, &m, sizeof(m), NULL, 0);
	drive_until(c, &w.closed, 5000);
	CHECK(!w.up);
	CHECK_EQ(w.err, -EACCES);
	/* What the client sent afterwards: its refusal, no descriptors. */
	while ((n = raw_recv(s, buf, sizeof(buf), &nf)) > 0) {
		total_fds += nf;
		CHECK_EQ(n, sizeof(m));
		memcpy(&m, buf, sizeof(m));
		CHECK(m.type == SHM_MSG_AUTH_ACK && m.status == -EACCES);
	}
	CHECK_EQ(total_fds, 0);
	wait_refused(&a, WP_SETUP_BAD_PROOF, 1);
	close(s);
	close(l);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	printf("4b. a rogue server without the key: its challenge refused, no descriptor ever "
	       "reached it\n");
}

/* ---- 5: shm_same_uid ---------------------------------------------------- */

static void case_same_uid(void)
{
	struct asrv s = { 0 };
	struct wp_ctx *c;
	struct conn_wait w = { 0 };
	struct wp_ep *ep;
	struct wp_meter_snap a;
	int rep[2], v = 0, st;
	pid_t pid;

	asrv_start(&s, 1);
	c = client_ctx("shm");
	ep = kconnect(c, s.port, &w, 1, ka);
	CHECK(w.up);
	wp_ep_close(ep);
	wp_ctx_destroy(c);
	if (geteuid() != 0) {
		printf("5. shm_same_uid: our own uid served; the other-uid half not run (needs "
		       "root to switch a child's uid)\n");
		asrv_stop(&s);
		return;
	}
	CHECK(pipe(rep) == 0);
	wp_meter_snapshot(&a);
	pid = fork_child();
	if (pid == 0) {
		struct conn_wait cw = { 0 };
		struct wp_ctx *cc;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		cc = client_ctx("shm");
		kconnect(cc, s.port, &cw, 1, ka);
		pipe_write_int(rep[1], cw.up ? 1 : cw.err);
		_exit(0);
	}
	CHECK(pipe_read_int(rep[0], 5000, &v) == 0);
	CHECK_EQ(v, -EACCES);
	CHECK(waitpid(pid, &st, 0) == pid); /* its verdict came over the pipe */
	wait_refused(&a, WP_SETUP_PEER_UID, 1);
	close(rep[0]);
	close(rep[1]);
	asrv_stop(&s);
	printf("5. shm_same_uid: our own uid served, a child as uid 65534 refused (peer_uid)\n");
}

int main(int argc, char **argv)
{
	const char *path = test_path(argc, argv);
	struct asrv s = { 0 };

	if (strcmp(path, "shm") != 0)
		SKIP("shm only");
	test_watchdog(120);
	CHECK(wp_policy_parse("auth.rules", rules, sizeof(rules) - 1, &pol) == 0);
	asrv_start(&s, 0);
	case_good(s.port);
	case_wrong_key(s.port);
	case_hostile(s.port);
	case_rogue_client(s.port);
	case_rogue_server();
	/* still serving after all of it */
	{
		struct wp_ctx *c = client_ctx("shm");
		struct conn_wait w = { 0 };
		struct wp_ep *ep = kconnect(c, s.port, &w, 1, ka);
		struct res r = { .want = (uint8_t *)"ok", .want_len = 2 };

		CHECK(w.up);
		CHECK_EQ(call(c, ep, M_ECHO, "ok", 2, &r), 0);
		wp_ep_close(ep);
		wp_ctx_destroy(c);
	}
	asrv_stop(&s);
	case_same_uid();
	wp_policy_free(pol);
	printf("test_shm_auth: ok\n");
	return 0;
}
