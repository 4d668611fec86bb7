// SPDX-License-Identifier: MIT
/*
 * `wirepath soak` (docs/soak.md): agentic load over every path for a long
 * time with faults injected, proving that no acknowledged call is lost or
 * corrupted and that the long-lived processes neither grow nor leak fds.
 *
 * This process is the orchestrator. It creates no context; for each path
 * (all paths run concurrently) it forks:
 *   server-S  long-lived server (stalled with SIGSTOP, policy reloads)
 *   server-V  victim server, SIGKILLed and restarted on the same address
 *   client-A  long-lived client, "squeezed" options (8 shm slots and a
 *             1 MiB arena; 4 uring provided buffers of 4 KiB), agents on S
 *             (through the proxy on tcp/uring) and on V
 *   client-B  victim client, SIGKILLed and restarted as a new client id,
 *             agents on S and, on tcp/uring, two hogs on the drip port
 *   proxy-X   tcp/uring only: small socket buffers, RSTs, the drip port
 * and injects one fault per path every --fault-secs, in turn: kill_server,
 * reset (proxy RST on tcp/uring; on shm an endpoint closed with its calls in
 * flight), stall (S stopped for 300 ms so rings and socket buffers fill),
 * kill_client, reload (a new tenant table in S and V). The two hogs' slow
 * 3 MiB frames (the memory-budget fault) run all the time on tcp/uring.
 *
 * The ledger: servers report each executed call id before answering it,
 * clients each acknowledged id with its attempt count, through pipes that
 * outlive a killed writer. At the end every acknowledged id must have been
 * executed at least once and at most once per attempt; every payload was
 * verified by its receiver (a violation is reported at once). /proc is
 * sampled for VmRSS and the fd count of each process; S, A and X, which are
 * never killed, must stay flat (first quarter against last, after warm-up).
 *
 * Tool code: the public API only.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "opt.h"
#include "soak.h"
#include "tools.h"
#include "util.h"

#define NS 1000000000ull
#define SOAK_STALL_MS 300
#define SOAK_RESPAWN_MS 100
/*
 * Flatness tolerance (docs/soak.md): last quarter against first quarter.
 * The absolute part covers what S legitimately holds at any instant: the
 * two hogs' partial 3 MiB frames (a 6 MiB sawtooth) and the allocator's
 * keeping of such blocks once freed.
 */
#define SOAK_RSS_TOL_PCT 10
#define SOAK_RSS_TOL_KB (8 * 1024)
#define SOAK_FD_TOL 2

enum { R_S, R_V, R_A, R_B, R_X, R__COUNT };
static const char *const role_names[R__COUNT] = { "server-S", "server-V", "client-A", "client-B",
						  "proxy-X" };
/* Never killed on purpose: these must stay flat. */
static const int role_flat[R__COUNT] = { 1, 0, 1, 0, 1 };

enum { F_KILL_SERVER, F_RESET, F_STALL, F_KILL_CLIENT, F_RELOAD, F__COUNT };
static const char *const fault_names[F__COUNT] = { "kill_server", "reset", "stall", "kill_client",
						   "reload" };

struct series {
	uint32_t n, cap;
	uint32_t *rss_kb, *fds;
	uint64_t *t_ns;
};

struct spath;

struct proc {
	struct spath *p;
	int role;
	pid_t pid;
	int fd; /* the report pipe's read end; -1 when dead */
	uint8_t part[sizeof(struct soak_rec)];
	uint32_t partlen;
	int alive, killed, stopped, used;
	uint64_t respawn_at;
	uint32_t incarnations;
	uint64_t ctr[SC__COUNT], ctr_dead[SC__COUNT];
	struct series s;
	int px_cmd; /* proxy: the command pipe's write end */
	char who[48];
	struct soak_peer_cfg cfg;
};

struct spath {
	const char *name;
	int avail;
	char why[256];
	int proxy;
	int port[4]; /* S, V, X, drip */
	struct proc pr[R__COUNT];
	uint64_t faults[F__COUNT];
	unsigned fault_i;
	uint64_t next_fault, cont_at;
	uint64_t bad[SOAK_BAD__COUNT];
	/* the verdict */
	uint64_t acked, executed_ids, lost, dup_excess, dup_allowed, ack_twice, late_exec;
	int flat_fail;
};

/*
 * The ledger of one client id, in chunks of LEDGER_CHUNK sequence numbers:
 * exec[] counts the server's executions, ack[] holds the attempts of an
 * acknowledged call (0: not acknowledged). A chunk is judged and freed once
 * the client has settled every call in it (its low-water mark passed the
 * chunk) and LEDGER_GRACE_NS more have gone by for late executions, so the
 * orchestrator's memory stays bounded on a run of any length.
 */
#define LEDGER_CHUNK 65536u
#define LEDGER_GRACE_NS (30 * NS)
#define LEDGER_SNAPS 4

struct lchunk {
	uint8_t exec[LEDGER_CHUNK], ack[LEDGER_CHUNK];
};

struct lcid {
	struct spath *p;
	struct lchunk **ch;
	uint32_t nch;
	uint32_t retired; /* chunks below this are judged and freed */
	uint32_t low;     /* the client's low-water mark: every seq below is settled */
	int dead;         /* the client process is gone: everything is settled */
	/* low / LEDGER_CHUNK seen at past times, newest first */
	uint32_t snap_chunk[LEDGER_SNAPS];
	uint64_t snap_t[LEDGER_SNAPS];
};

struct soak_cfg {
	const char *paths;
	const char *out;
	const char *workload;
	double secs, fault_secs, sample_secs, progress_secs;
	uint64_t seed;
	uint32_t agents;
	int no_rss_verdict;
};

struct soak {
	struct soak_cfg cfg;
	struct wl w;
	struct spath paths[3];
	int npaths;
	struct lcid *L;
	uint32_t nL;
	uint32_t next_cid;
	uint8_t key_a[16], key_b[16];
	uint64_t t0;
	int ending;
	uint64_t forged;
	struct series self;
};

static volatile sig_atomic_t soak_interrupted;

static void soak_on_signal(int sig)
{
	soak_interrupted = sig;
}

/* ------------------------------------------------------------------ */
/* The ledger                                                          */
/* ------------------------------------------------------------------ */

/* A new client id, owned by path p. */
static int ledger_new(struct soak *S, uint32_t cid, struct spath *p)
{
	if (cid >= S->nL) {
		uint32_t n = cid + 16;
		struct lcid *L = realloc(S->L, n * sizeof(*L));

		if (!L)
			return -ENOMEM;
		memset(L + S->nL, 0, (n - S->nL) * sizeof(*L));
		S->L = L;
		S->nL = n;
	}
	S->L[cid].p = p;
	return 0;
}

/* The ledger bytes of a call id (*e: executions, *k: acknowledgement), or
 * NULL: an id no client was given (-1 in *late: its chunk was retired). */
static struct lcid *ledger_get(struct soak *S, uint64_t id, uint8_t **e, uint8_t **k, int *late)
{
	uint32_t cid = (uint32_t)(id >> 32), seq = (uint32_t)id;
	uint32_t c = seq / LEDGER_CHUNK;
	struct lcid *l;

	*late = 0;
	if (cid == 0 || cid >= S->nL || !S->L[cid].p || seq >= (1u << 30))
		return NULL;
	l = &S->L[cid];
	if (c < l->retired) {
		*late = 1;
		return NULL;
	}
	if (c >= l->nch) {
		uint32_t n = c + 8;
		struct lchunk **ch = realloc(l->ch, n * sizeof(*ch));

		if (!ch)
			return NULL;
		memset(ch + l->nch, 0, (n - l->nch) * sizeof(*ch));
		l->ch = ch;
		l->nch = n;
	}
	if (!l->ch[c]) {
		l->ch[c] = calloc(1, sizeof(struct lchunk));
		if (!l->ch[c])
			return NULL;
	}
	*e = &l->ch[c]->exec[seq % LEDGER_CHUNK];
	*k = &l->ch[c]->ack[seq % LEDGER_CHUNK];
	return l;
}

static void ledger_judge_chunk(struct spath *p, const struct lchunk *ch)
{
	for (uint32_t s = 0; s < LEDGER_CHUNK; s++) {
		uint8_t e = ch->exec[s], a = ch->ack[s];

		p->executed_ids += e > 0;
		if (a) {
			p->acked++;
			if (!e)
				p->lost++;
			else if (e > a)
				p->dup_excess++;
			else if (e > 1)
				p->dup_allowed++;
		} else if (e > SOAK_MAX_ATTEMPTS) {
			p->dup_excess++;
		}
	}
}

/* Judge and free the chunks of l below `upto`. */
static void ledger_retire(struct lcid *l, uint32_t upto)
{
	for (; l->retired < upto && l->retired < l->nch; l->retired++) {
		struct lchunk *ch = l->ch[l->retired];

		if (ch)
			ledger_judge_chunk(l->p, ch);
		free(ch);
		l->ch[l->retired] = NULL;
	}
	if (upto > l->retired)
		l->retired = upto;
}

/* Every 10 s: remember each client's settled chunk count, and retire what
 * was settled at least LEDGER_GRACE_NS ago. */
static void ledger_tick(struct soak *S, uint64_t now)
{
	for (uint32_t cid = 1; cid < S->nL; cid++) {
		struct lcid *l = &S->L[cid];
		uint32_t settled = l->dead ? UINT32_MAX : l->low / LEDGER_CHUNK;

		if (!l->p)
			continue;
		memmove(l->snap_chunk + 1, l->snap_chunk,
			(LEDGER_SNAPS - 1) * sizeof(l->snap_chunk[0]));
		memmove(l->snap_t + 1, l->snap_t, (LEDGER_SNAPS - 1) * sizeof(l->snap_t[0]));
		l->snap_chunk[0] = settled;
		l->snap_t[0] = now;
		for (int k = 0; k < LEDGER_SNAPS; k++)
			if (l->snap_t[k] && now - l->snap_t[k] >= LEDGER_GRACE_NS) {
				ledger_retire(l, l->snap_chunk[k]);
				break;
			}
	}
}

static void on_record(struct soak *S, struct proc *pr, const struct soak_rec *r)
{
	uint8_t *e, *k;
	int late;

	switch (r->type) {
	case SOAK_REC_EXEC:
		if (!ledger_get(S, r->id, &e, &k, &late)) {
			/* An execution of an id no client was given, or one that
			 * came LEDGER_GRACE_NS after its client had settled it. */
			if (late)
				pr->p->late_exec++;
			else
				S->forged++;
			break;
		}
		if (*e < 255)
			(*e)++;
		break;
	case SOAK_REC_ACK:
		if (!ledger_get(S, r->id, &e, &k, &late)) {
			pr->p->bad[SOAK_BAD_ID]++;
			break;
		}
		if (*k)
			pr->p->ack_twice++;
		*k = (uint8_t)(r->a > 255 ? 255 : r->a ? r->a : 1);
		break;
	case SOAK_REC_LOW:
		if ((uint32_t)(r->id >> 32) < S->nL && S->L[r->id >> 32].p)
			S->L[r->id >> 32].low = (uint32_t)r->id;
		break;
	case SOAK_REC_BAD:
		pr->p->bad[r->key < SOAK_BAD__COUNT ? r->key : SOAK_BAD_SETUP]++;
		break;
	case SOAK_REC_COUNT:
		if (r->key < SC__COUNT)
			pr->ctr[r->key] = r->a;
		break;
	}
}

/* Read what the pipe holds (until EAGAIN, or EOF after the writer died). */
static int proc_drain(struct soak *S, struct proc *pr)
{
	uint8_t buf[64 * 1024];

	while (pr->fd >= 0) {
		ssize_t n = read(pr->fd, buf, sizeof(buf));
		size_t i = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0; /* EAGAIN: all read */
		if (n == 0)
			return 1; /* EOF */
		while (i < (size_t)n) {
			size_t take = sizeof(pr->part) - pr->partlen;

			if (take > (size_t)n - i)
				take = (size_t)n - i;
			memcpy(pr->part + pr->partlen, buf + i, take);
			pr->partlen += (uint32_t)take;
			i += take;
			if (pr->partlen == sizeof(pr->part)) {
				struct soak_rec r;

				memcpy(&r, pr->part, sizeof(r));
				on_record(S, pr, &r);
				pr->partlen = 0;
			}
		}
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int proc_spawn(struct soak *S, struct proc *pr)
{
	int rep[2], cmd[2] = { -1, -1 };
	pid_t pid;

	if (pipe(rep) < 0)
		return -errno;
	/* 1 MiB (the unprivileged maximum): 32 k records of slack. */
	fcntl(rep[0], F_SETPIPE_SZ, 1 << 20);
	if (pr->role == R_X) {
		if (pr->px_cmd >= 0)
			close(pr->px_cmd);
		pr->px_cmd = -1;
		if (pipe(cmd) < 0) {
			close(rep[0]);
			close(rep[1]);
			return -errno;
		}
	}
	if (pr->role == R_A || pr->role == R_B) {
		pr->cfg.cid = ++S->next_cid;
		if (ledger_new(S, pr->cfg.cid, pr->p) < 0) {
			close(rep[0]);
			close(rep[1]);
			return -ENOMEM;
		}
	}
	pr->cfg.seed = S->cfg.seed * 1000003u + pr->incarnations * 7919u + (uint64_t)pr->role;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(rep[0]);
		close(rep[1]);
		return -errno;
	}
	if (pid == 0) {
		int r = fcntl(rep[1], F_DUPFD, 100),
		    c = cmd[0] >= 0 ? fcntl(cmd[0], F_DUPFD, 100) : -1;
		struct soak_peer_cfg cfg = pr->cfg;
		int rc = 1;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGCHLD, SIG_DFL);
		dup2(r, 3);
		if (c >= 0)
			dup2(c, 4);
		/* Only our own pipe ends: a sibling's write end held here would
		 * keep its pipe from ever reporting EOF. */
		close_range(c >= 0 ? 5 : 4, ~0u, 0);
		cfg.report_fd = 3;
		cfg.px_cmd_fd = 4;
		switch (pr->role) {
		case R_S:
		case R_V:
			rc = soak_server_main(&cfg);
			break;
		case R_A:
		case R_B:
			rc = soak_client_main(&cfg);
			break;
		case R_X:
			rc = soak_proxy_main(&cfg);
			break;
		}
		/* exit, not _exit: a sanitized build checks the peer for leaks. */
		exit(rc);
	}
	close(rep[1]);
	if (cmd[0] >= 0) {
		close(cmd[0]);
		pr->px_cmd = cmd[1];
	}
	fcntl(rep[0], F_SETFL, fcntl(rep[0], F_GETFL) | O_NONBLOCK);
	pr->fd = rep[0];
	pr->partlen = 0;
	pr->pid = pid;
	pr->alive = 1;
	pr->killed = 0;
	pr->stopped = 0;
	pr->respawn_at = 0;
	pr->incarnations++;
	memset(pr->ctr, 0, sizeof(pr->ctr));
	return 0;
}

static void proc_exited(struct soak *S, struct proc *pr, int st)
{
	proc_drain(S, pr);
	close(pr->fd);
	pr->fd = -1;
	pr->alive = 0;
	if ((pr->role == R_A || pr->role == R_B) && pr->cfg.cid < S->nL)
		S->L[pr->cfg.cid].dead = 1;
	for (int i = 0; i < SC__COUNT; i++) {
		pr->ctr_dead[i] += pr->ctr[i];
		pr->ctr[i] = 0;
	}
	if (pr->killed) {
		if (!S->ending || pr->role == R_V || pr->role == R_B)
			pr->respawn_at = wp_now_ns() + SOAK_RESPAWN_MS * 1000000ull;
		if (S->ending >= 2)
			pr->respawn_at = 0;
		return;
	}
	if (S->ending >= 2 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	pr->p->bad[SOAK_BAD_EXIT]++;
	if (WIFSIGNALED(st))
		fprintf(stderr, "wirepath soak: %s/%s: VIOLATION died of signal %d\n", pr->p->name,
			role_names[pr->role], WTERMSIG(st));
	else
		fprintf(stderr, "wirepath soak: %s/%s: VIOLATION exited with status %d\n",
			pr->p->name, role_names[pr->role], WEXITSTATUS(st));
	/* Keep the soak going: the rest still tells something. */
	if (!S->ending)
		pr->respawn_at = wp_now_ns() + SOAK_RESPAWN_MS * 1000000ull;
}

static void reap(struct soak *S)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < S->npaths; i++)
			for (int r = 0; r < R__COUNT; r++) {
				struct proc *pr = &S->paths[i].pr[r];

				if (pr->used && pr->alive && pr->pid == pid)
					proc_exited(S, pr, st);
			}
	}
}

/* ------------------------------------------------------------------ */
/* Sampling                                                            */
/* ------------------------------------------------------------------ */

static int sample_pid(pid_t pid, uint32_t *rss_kb, uint32_t *fds)
{
	char path[64], line[256];
	FILE *f;
	DIR *d;
	struct dirent *e;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %u kB", rss_kb) == 1)
			found = 1;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	*fds = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			(*fds)++;
	closedir(d);
	return found ? 0 : -1;
}

static void series_add(struct series *s, uint64_t t, uint32_t rss, uint32_t fds)
{
	if (s->n == s->cap) {
		uint32_t n = s->cap ? s->cap * 2 : 256;
		uint32_t *a = realloc(s->rss_kb, n * sizeof(*a)), *b;
		uint64_t *c;

		if (!a)
			return;
		s->rss_kb = a;
		b = realloc(s->fds, n * sizeof(*b));
		if (!b)
			return;
		s->fds = b;
		c = realloc(s->t_ns, n * sizeof(*c));
		if (!c)
			return;
		s->t_ns = c;
		s->cap = n;
	}
	s->rss_kb[s->n] = rss;
	s->fds[s->n] = fds;
	s->t_ns[s->n] = t;
	s->n++;
}

static void sample_all(struct soak *S, uint64_t now)
{
	uint32_t rss, fds;

	for (int i = 0; i < S->npaths; i++)
		for (int r = 0; r < R__COUNT; r++) {
			struct proc *pr = &S->paths[i].pr[r];

			/* A stopped server is sampled too: stopping changes nothing. */
			if (pr->used && pr->alive && sample_pid(pr->pid, &rss, &fds) == 0)
				series_add(&pr->s, now, rss, fds);
		}
	if (sample_pid(getpid(), &rss, &fds) == 0)
		series_add(&S->self, now, rss, fds);
}

struct flat {
	uint32_t n;                                        /* samples judged */
	double rss_first, rss_last, fd_first_max, fd_last; /* fd_last: the minimum */
	uint32_t rss_min, rss_max, fd_min, fd_max;
	int ok, rss_ok;
};

/*
 * First quarter against last quarter of the samples after warm-up. RSS:
 * the means. fds: the last quarter's minimum against the first quarter's
 * maximum, since fds come and go with every reconnect (a killed client's
 * socket drains its unsent bytes through the drip port for seconds) and a
 * leak shows as a floor that rises.
 */
static void flat_judge(const struct series *s, uint64_t warm_until, int no_rss, struct flat *f)
{
	uint32_t i0 = 0, q;

	memset(f, 0, sizeof(*f));
	f->ok = f->rss_ok = 1;
	while (i0 < s->n && s->t_ns[i0] < warm_until)
		i0++;
	f->n = s->n - i0;
	if (f->n < 4)
		return;
	q = f->n / 4;
	f->rss_min = f->fd_min = UINT32_MAX;
	for (uint32_t i = i0; i < s->n; i++) {
		uint32_t k = i - i0;

		f->rss_min = s->rss_kb[i] < f->rss_min ? s->rss_kb[i] : f->rss_min;
		f->rss_max = s->rss_kb[i] > f->rss_max ? s->rss_kb[i] : f->rss_max;
		f->fd_min = s->fds[i] < f->fd_min ? s->fds[i] : f->fd_min;
		f->fd_max = s->fds[i] > f->fd_max ? s->fds[i] : f->fd_max;
		if (k < q) {
			f->rss_first += s->rss_kb[i];
			if (s->fds[i] > f->fd_first_max)
				f->fd_first_max = s->fds[i];
		}
		if (k >= f->n - q) {
			f->rss_last += s->rss_kb[i];
			if (k == f->n - q || s->fds[i] < f->fd_last)
				f->fd_last = s->fds[i];
		}
	}
	f->rss_first /= q;
	f->rss_last /= q;
	f->rss_ok = f->rss_last <= f->rss_first * (100 + SOAK_RSS_TOL_PCT) / 100 + SOAK_RSS_TOL_KB;
	f->ok = (f->rss_ok || no_rss) && f->fd_last <= f->fd_first_max + SOAK_FD_TOL;
}

/* ------------------------------------------------------------------ */
/* Faults                                                              */
/* ------------------------------------------------------------------ */

static void proc_kill(struct proc *pr)
{
	if (!pr->used || !pr->alive)
		return;
	pr->killed = 1;
	kill(pr->pid, SIGKILL);
}

static void inject(struct soak *S, struct spath *p, uint64_t now)
{
	unsigned f = p->fault_i++ % F__COUNT;
	struct proc *s = &p->pr[R_S];

	switch (f) {
	case F_KILL_SERVER:
		if (!p->pr[R_V].alive)
			return;
		proc_kill(&p->pr[R_V]);
		break;
	case F_KILL_CLIENT:
		if (!p->pr[R_B].alive)
			return;
		proc_kill(&p->pr[R_B]);
		break;
	case F_RESET:
		if (p->proxy) {
			if (write(p->pr[R_X].px_cmd, "R", 1) != 1)
				return;
		} else {
			kill(p->pr[R_A].pid, SIGUSR1);
		}
		break;
	case F_STALL:
		if (!s->alive || s->stopped)
			return;
		kill(s->pid, SIGSTOP);
		s->stopped = 1;
		p->cont_at = now + SOAK_STALL_MS * 1000000ull;
		break;
	case F_RELOAD:
		if (s->alive)
			kill(s->pid, SIGUSR1);
		if (p->pr[R_V].alive)
			kill(p->pr[R_V].pid, SIGUSR1);
		break;
	}
	p->faults[f]++;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static uint64_t path_ctr(const struct spath *p, unsigned c)
{
	uint64_t v = 0;

	for (int r = 0; r < R__COUNT; r++)
		v += p->pr[r].ctr[c] + p->pr[r].ctr_dead[c];
	return v;
}

static uint64_t path_bad(const struct spath *p)
{
	uint64_t v = 0;

	for (int b = 1; b < SOAK_BAD__COUNT; b++)
		v += p->bad[b];
	return v;
}

/* Payloads that failed a check: wrong sum, length, id, order, count, or a
 * server that refused a request. */
static uint64_t path_corrupt(const struct spath *p)
{
	return p->bad[SOAK_BAD_SUM] + p->bad[SOAK_BAD_MAGIC] + p->bad[SOAK_BAD_SHORT] +
	       p->bad[SOAK_BAD_ID] + p->bad[SOAK_BAD_ORDER] + p->bad[SOAK_BAD_COUNT] +
	       p->bad[SOAK_BAD_STATUS];
}

static int path_setup(struct soak *S, struct spath *p)
{
	const struct wp_probe_result *pr = wp_probe_get(p->name);
	char uri[4][128], pname[32];
	pid_t me = getpid();

	if (!pr) { /* shm's probe is "path.shm" */
		snprintf(pname, sizeof(pname), "path.%s", p->name);
		pr = wp_probe_get(pname);
	}
	if (!pr || !pr->ok) {
		snprintf(p->why, sizeof(p->why), "%s", pr ? pr->detail : "not built");
		return 0;
	}
	p->avail = 1;
	p->proxy = strcmp(p->name, "shm") != 0;
	for (int k = 0; k < 4; k++) {
		p->port[k] = p->proxy ? free_port() : 0;
		if (p->proxy && p->port[k] <= 0) {
			snprintf(p->why, sizeof(p->why), "no free loopback port");
			p->avail = 0;
			return -1;
		}
		if (p->proxy)
			snprintf(uri[k], sizeof(uri[k]), "%s://127.0.0.1:%d", p->name, p->port[k]);
		else
			snprintf(uri[k], sizeof(uri[k]), "shm://@wp-soak-%d-%c", (int)me,
				 "SVXD"[k]);
	}
	for (int r = 0; r < R__COUNT; r++) {
		struct proc *x = &p->pr[r];
		struct soak_peer_cfg *c = &x->cfg;

		x->p = p;
		x->role = r;
		x->fd = -1;
		x->px_cmd = -1;
		x->used = r != R_X || p->proxy;
		snprintf(x->who, sizeof(x->who), "%s/%s", p->name, role_names[r]);
		c->path = p->name;
		c->who = x->who;
		c->w = &S->w;
		memcpy(c->key, r == R_B ? S->key_b : S->key_a, 16);
		memcpy(c->key_other, S->key_b, 16);
		c->tenant = r == R_B ? SOAK_TENANT_B : SOAK_TENANT_A;
		c->rx_budget = SOAK_RX_BUDGET;
	}
	snprintf(p->pr[R_S].cfg.listen, 128, "%s", uri[0]);
	snprintf(p->pr[R_V].cfg.listen, 128, "%s", uri[1]);
	p->pr[R_X].cfg.px_port = p->port[2];
	p->pr[R_X].cfg.px_drip_port = p->port[3];
	p->pr[R_X].cfg.px_target_port = p->port[0];
	/* A: the squeezed client, on S (through the proxy) and on V. */
	p->pr[R_A].cfg.squeeze = 1;
	snprintf(p->pr[R_A].cfg.target[0], 128, "%s", p->proxy ? uri[2] : uri[0]);
	snprintf(p->pr[R_A].cfg.target[1], 128, "%s", uri[1]);
	p->pr[R_A].cfg.agents[0] = S->cfg.agents;
	p->pr[R_A].cfg.agents[1] = S->cfg.agents;
	/* B: the victim client, on S directly, and the hog on the drip port. */
	snprintf(p->pr[R_B].cfg.target[0], 128, "%s", uri[0]);
	p->pr[R_B].cfg.agents[0] = S->cfg.agents;
	if (p->proxy)
		snprintf(p->pr[R_B].cfg.hog_target, 128, "%s", uri[3]);
	return 0;
}

static int spawn_all(struct soak *S, struct spath *p)
{
	static const int order[R__COUNT] = { R_S, R_V, R_X, R_A, R_B };
	int rc;

	for (int k = 0; k < R__COUNT; k++) {
		struct proc *x = &p->pr[order[k]];

		if (!x->used)
			continue;
		rc = proc_spawn(S, x);
		if (rc < 0) {
			fprintf(stderr, "wirepath soak: %s: cannot fork: %s\n", x->who,
				strerror(-rc));
			return rc;
		}
		/* Servers and proxy first; clients retry connecting anyway. */
		if (order[k] == R_X || order[k] == R_V)
			usleep(50000);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

static void pump(struct soak *S, int timeout_ms)
{
	struct pollfd pfd[3 * R__COUNT];
	struct proc *who[3 * R__COUNT];
	int n = 0;

	for (int i = 0; i < S->npaths; i++)
		for (int r = 0; r < R__COUNT; r++) {
			struct proc *pr = &S->paths[i].pr[r];

			if (pr->used && pr->fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = pr->fd, .events = POLLIN };
				who[n++] = pr;
			}
		}
	if (poll(pfd, (nfds_t)n, timeout_ms) > 0)
		for (int k = 0; k < n; k++)
			if (pfd[k].revents & POLLIN)
				proc_drain(S, who[k]);
	reap(S);
}

static void housekeeping(struct soak *S, uint64_t now)
{
	for (int i = 0; i < S->npaths; i++) {
		struct spath *p = &S->paths[i];

		if (p->cont_at && now >= p->cont_at) {
			if (p->pr[R_S].alive)
				kill(p->pr[R_S].pid, SIGCONT);
			p->pr[R_S].stopped = 0;
			p->cont_at = 0;
		}
		for (int r = 0; r < R__COUNT; r++) {
			struct proc *pr = &p->pr[r];

			if (pr->used && !pr->alive && pr->respawn_at && now >= pr->respawn_at &&
			    proc_spawn(S, pr) < 0)
				pr->respawn_at = now + NS;
		}
	}
}

static void fmt_mib(char *b, size_t n, const struct proc *pr)
{
	if (pr->used && pr->s.n)
		snprintf(b, n, "%.1f", pr->s.rss_kb[pr->s.n - 1] / 1024.0);
	else
		snprintf(b, n, "-");
}

static void progress(struct soak *S, uint64_t now)
{
	for (int i = 0; i < S->npaths; i++) {
		struct spath *p = &S->paths[i];
		char rs[3][16], xfd[16];
		const int flat[3] = { R_S, R_A, R_X };

		if (!p->avail)
			continue;
		for (int k = 0; k < 3; k++)
			fmt_mib(rs[k], sizeof(rs[k]), &p->pr[flat[k]]);
		if (p->pr[R_X].used && p->pr[R_X].s.n)
			snprintf(xfd, sizeof(xfd), "%u", p->pr[R_X].s.fds[p->pr[R_X].s.n - 1]);
		else
			snprintf(xfd, sizeof(xfd), "-");
		fprintf(stderr,
			"soak %5.0f/%.0f s %-5s steps %" PRIu64 " acked %" PRIu64 " tokens %" PRIu64
			" | faults kill_server %" PRIu64 " reset %" PRIu64 " stall %" PRIu64
			" kill_client %" PRIu64 " reload %" PRIu64 " hog %" PRIu64
			" | RSS MiB S %s A %s X %s | fds S %u A %u X %s | violations %" PRIu64 "\n",
			(double)(now - S->t0) / 1e9, S->cfg.secs, p->name, path_ctr(p, SC_STEPS),
			path_ctr(p, SC_ACKED), path_ctr(p, SC_TOKENS), p->faults[F_KILL_SERVER],
			p->faults[F_RESET], p->faults[F_STALL], p->faults[F_KILL_CLIENT],
			p->faults[F_RELOAD], path_ctr(p, SC_HOG_SENT), rs[0], rs[1], rs[2],
			p->pr[R_S].s.n ? p->pr[R_S].s.fds[p->pr[R_S].s.n - 1] : 0,
			p->pr[R_A].s.n ? p->pr[R_A].s.fds[p->pr[R_A].s.n - 1] : 0, xfd,
			path_bad(p));
	}
}

/* Signal every live process of `role` and wait (bounded) for it to exit. */
static void stop_role(struct soak *S, const int *roles, int nroles, int sig, double wait_s)
{
	uint64_t deadline = wp_now_ns() + (uint64_t)(wait_s * 1e9);
	int left;

	for (int i = 0; i < S->npaths; i++)
		for (int k = 0; k < nroles; k++) {
			struct proc *pr = &S->paths[i].pr[roles[k]];

			pr->respawn_at = 0;
			if (pr->used && pr->alive)
				kill(pr->pid, sig);
		}
	do {
		pump(S, 20);
		left = 0;
		for (int i = 0; i < S->npaths; i++)
			for (int k = 0; k < nroles; k++) {
				struct proc *pr = &S->paths[i].pr[roles[k]];

				left += pr->used && pr->alive;
			}
	} while (left && wp_now_ns() < deadline);
	if (!left)
		return;
	for (int i = 0; i < S->npaths; i++)
		for (int k = 0; k < nroles; k++) {
			struct proc *pr = &S->paths[i].pr[roles[k]];

			if (pr->used && pr->alive) {
				fprintf(stderr,
					"wirepath soak: %s: VIOLATION still running %.0f s after the stop\n",
					pr->who, wait_s);
				pr->p->bad[SOAK_BAD_HUNG]++;
				pr->killed = 1;
				kill(pr->pid, SIGKILL);
			}
		}
	while (left) {
		pump(S, 20);
		left = 0;
		for (int i = 0; i < S->npaths; i++)
			for (int k = 0; k < nroles; k++)
				left += S->paths[i].pr[roles[k]].used &&
					S->paths[i].pr[roles[k]].alive;
	}
}

/* ------------------------------------------------------------------ */
/* The verdict                                                         */
/* ------------------------------------------------------------------ */

static void ledger_verdict(struct soak *S)
{
	for (uint32_t cid = 1; cid < S->nL; cid++)
		if (S->L[cid].p)
			ledger_retire(&S->L[cid], UINT32_MAX);
}

static int write_json(struct soak *S, const char *path, uint64_t warm_until, int pass)
{
	struct sbuf b = { 0 };
	char tbuf[64];
	time_t t = time(NULL);
	FILE *f;
	int rc = 0;

	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	sb_printf(&b, "{\"tool\":\"wirepath soak\",\"version\":");
	sb_json_str(&b, wp_version());
	sb_printf(&b, ",\"date\":\"%s\",\"secs\":", tbuf);
	sb_json_num(&b, S->cfg.secs);
	sb_printf(&b, ",\"fault_secs\":");
	sb_json_num(&b, S->cfg.fault_secs);
	sb_printf(&b, ",\"mode\":\"concurrent\",\"workload\":");
	sb_json_str(&b, S->w.name);
	sb_printf(
		&b,
		",\"agents_per_target\":%u,\"seed\":%" PRIu64
		",\"tolerance\":{\"rss_pct\":%d,\"rss_kb\":%d,\"fds\":%d},\"pass\":%s,\"paths\":[",
		S->cfg.agents, S->cfg.seed, SOAK_RSS_TOL_PCT, SOAK_RSS_TOL_KB, SOAK_FD_TOL,
		pass ? "true" : "false");
	for (int i = 0; i < S->npaths; i++) {
		struct spath *p = &S->paths[i];

		sb_printf(&b, "%s{\"path\":\"%s\",\"available\":%s", i ? "," : "", p->name,
			  p->avail ? "true" : "false");
		if (!p->avail) {
			sb_printf(&b, ",\"why\":");
			sb_json_str(&b, p->why);
			sb_printf(&b, "}");
			continue;
		}
		sb_printf(&b,
			  ",\"acked\":%" PRIu64 ",\"executed_ids\":%" PRIu64 ",\"lost\":%" PRIu64
			  ",\"executed_beyond_attempts\":%" PRIu64
			  ",\"retried_and_executed_twice\":%" PRIu64 ",\"acked_twice\":%" PRIu64
			  ",\"late_executions\":%" PRIu64,
			  p->acked, p->executed_ids, p->lost, p->dup_excess, p->dup_allowed,
			  p->ack_twice, p->late_exec);
		sb_printf(&b, ",\"violations\":{");
		for (int k = 1; k < SOAK_BAD__COUNT; k++)
			sb_printf(&b, "%s\"%s\":%" PRIu64, k > 1 ? "," : "", soak_bad_name(k),
				  p->bad[k]);
		sb_printf(&b, "},\"faults\":{");
		for (int k = 0; k < F__COUNT; k++)
			sb_printf(&b, "%s\"%s\":%" PRIu64, k ? "," : "", fault_names[k],
				  p->faults[k]);
		sb_printf(&b, ",\"hog_frames\":%" PRIu64 "},\"counters\":{",
			  path_ctr(p, SC_HOG_SENT));
		for (int k = 0; k < SC__COUNT; k++)
			sb_printf(&b, "%s\"%s\":%" PRIu64, k ? "," : "", soak_ctr_name(k),
				  path_ctr(p, k));
		sb_printf(&b, "},\"processes\":[");
		for (int r = 0, first = 1; r < R__COUNT; r++) {
			struct proc *pr = &p->pr[r];
			struct flat fl;

			if (!pr->used)
				continue;
			flat_judge(&pr->s, warm_until, S->cfg.no_rss_verdict, &fl);
			sb_printf(
				&b,
				"%s{\"role\":\"%s\",\"long_lived\":%s,\"incarnations\":%u,"
				"\"samples\":%u,\"rss_kb_first_quarter\":%.0f,"
				"\"rss_kb_last_quarter\":%.0f,\"rss_kb_min\":%u,\"rss_kb_max\":%u,"
				"\"fds_first_quarter_max\":%.0f,\"fds_last_quarter_min\":%.0f,"
				"\"fds_min\":%u,\"fds_max\":%u,\"flat\":%s}",
				first ? "" : ",", role_names[r], role_flat[r] ? "true" : "false",
				pr->incarnations, fl.n, fl.rss_first, fl.rss_last, fl.rss_min,
				fl.rss_max, fl.fd_first_max, fl.fd_last, fl.fd_min, fl.fd_max,
				!role_flat[r] ? "null"
				: fl.ok       ? "true"
					      : "false");
			first = 0;
		}
		sb_printf(&b, "]}");
	}
	sb_printf(&b, "],\"forged_executions\":%" PRIu64 "}\n", S->forged);
	if (b.oom) {
		sb_free(&b);
		return -ENOMEM;
	}
	{
		/* results/ (or the directory of the path given) is made if missing. */
		char dir[4096];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			mkdir(dir, 0755);
		}
	}
	f = fopen(path, "w");
	if (!f || fwrite(b.p, 1, b.len, f) != b.len)
		rc = -errno;
	if (f && fclose(f) != 0)
		rc = -errno;
	sb_free(&b);
	return rc;
}

/* One row for docs/soak.md's "Recorded runs" table, to paste as it is. */
static void record_line(struct soak *S, int pass)
{
	char date[32], host[64] = "?", paths[64] = "";
	uint64_t steps = 0, acked = 0, lost = 0, corrupt = 0, faults = 0;
	time_t t = time(NULL);
	int n = 0;

	strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&t));
	gethostname(host, sizeof(host) - 1);
	for (int i = 0; i < S->npaths; i++) {
		struct spath *p = &S->paths[i];

		if (!p->avail)
			continue;
		snprintf(paths + strlen(paths), sizeof(paths) - strlen(paths), "%s%s",
			 n++ ? ", " : "", p->name);
		steps += path_ctr(p, SC_STEPS);
		acked += p->acked;
		lost += p->lost;
		corrupt += path_corrupt(p);
		for (int k = 0; k < F__COUNT; k++)
			faults += p->faults[k];
	}
	fprintf(stderr,
		"record: | %s | %s | %.0f | %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
		" | %.0f | %s |\n",
		date, host, S->cfg.secs, paths, steps, acked, lost, corrupt,
		n ? (double)faults / n : 0.0, pass ? "pass" : "FAIL");
}

static int summary(struct soak *S, uint64_t warm_until)
{
	int pass = 1, nrun = 0;

	ledger_verdict(S);
	fprintf(stderr,
		"\nwirepath soak: %.0f s, paths concurrently, a fault per path every %.1f s\n",
		S->cfg.secs, S->cfg.fault_secs);
	for (int i = 0; i < S->npaths; i++) {
		struct spath *p = &S->paths[i];
		uint64_t corrupt = path_corrupt(p);

		if (!p->avail) {
			fprintf(stderr, "  %-5s unavailable: %s\n", p->name, p->why);
			continue;
		}
		nrun++;
		fprintf(stderr,
			"  %-5s steps %" PRIu64 ", calls acked %" PRIu64
			" (all verified), tokens %" PRIu64 ", telemetry %" PRIu64
			", hog frames %" PRIu64 "\n",
			p->name, path_ctr(p, SC_STEPS), p->acked, path_ctr(p, SC_TOKENS),
			path_ctr(p, SC_TEL_OK), path_ctr(p, SC_HOG_OK));
		fprintf(stderr,
			"        acknowledged lost %" PRIu64 ", corrupted %" PRIu64
			", executed beyond attempts %" PRIu64
			", retried and executed twice %" PRIu64 " (allowed)\n",
			p->lost, corrupt, p->dup_excess, p->dup_allowed);
		fprintf(stderr,
			"        faults: kill_server %" PRIu64 ", reset %" PRIu64 ", stall %" PRIu64
			", kill_client %" PRIu64 ", reload %" PRIu64 " (%" PRIu64
			" applied), hog %" PRIu64 "\n",
			p->faults[F_KILL_SERVER], p->faults[F_RESET], p->faults[F_STALL],
			p->faults[F_KILL_CLIENT], p->faults[F_RELOAD], path_ctr(p, SC_RELOADS),
			path_ctr(p, SC_HOG_SENT));
		fprintf(stderr,
			"        clean failures: reset %" PRIu64 ", aborted %" PRIu64
			", timed out %" PRIu64 ", other %" PRIu64 "; retries %" PRIu64
			", reconnects %" PRIu64 ", back-pressure %" PRIu64
			", uring ENOBUFS %" PRIu64 ", proxy RSTs %" PRIu64 "\n",
			path_ctr(p, SC_FAIL_RESET), path_ctr(p, SC_FAIL_ABORT),
			path_ctr(p, SC_FAIL_TIMEOUT), path_ctr(p, SC_FAIL_OTHER),
			path_ctr(p, SC_RETRIES), path_ctr(p, SC_RECONNECTS),
			path_ctr(p, SC_BACKPRESSURE), path_ctr(p, SC_RX_RING_EMPTY),
			path_ctr(p, SC_PX_RESETS));
		for (int r = 0; r < R__COUNT; r++) {
			struct proc *pr = &p->pr[r];
			struct flat fl;

			if (!pr->used)
				continue;
			flat_judge(&pr->s, warm_until, S->cfg.no_rss_verdict, &fl);
			fprintf(stderr,
				"        %-8s x%-3u RSS MiB %.1f -> %.1f (min %.1f max %.1f), fds max %.0f "
				"-> min %.0f (min %u max %u), %u samples: %s\n",
				role_names[r], pr->incarnations, fl.rss_first / 1024,
				fl.rss_last / 1024, fl.rss_min / 1024.0, fl.rss_max / 1024.0,
				fl.fd_first_max, fl.fd_last, fl.fd_min, fl.fd_max, fl.n,
				!role_flat[r]           ? "restarted, not judged"
				: !fl.ok                ? "GROWS"
				: !fl.rss_ok            ? "RSS grows (not judged), fds flat"
				: S->cfg.no_rss_verdict ? "flat (RSS not judged)"
							: "flat");
			if (role_flat[r] && !fl.ok)
				p->flat_fail = 1;
		}
		fprintf(stderr, "        violations:");
		for (int k = 1; k < SOAK_BAD__COUNT; k++)
			if (p->bad[k])
				fprintf(stderr, " %s %" PRIu64, soak_bad_name(k), p->bad[k]);
		fprintf(stderr, "%s\n", path_bad(p) ? "" : " none");
		if (p->late_exec)
			fprintf(stderr,
				"        FAIL: %" PRIu64
				" executions arrived over 30 s after their "
				"client had settled the call\n",
				p->late_exec);
		if (p->lost || p->dup_excess || path_bad(p) || p->flat_fail || p->ack_twice ||
		    p->late_exec || !p->acked)
			pass = 0;
		if (!p->acked)
			fprintf(stderr, "        FAIL: no call was acknowledged at all\n");
	}
	if (S->forged) {
		fprintf(stderr, "  executions of ids no client was given: %" PRIu64 "\n",
			S->forged);
		pass = 0;
	}
	if (S->self.n)
		fprintf(stderr,
			"  orchestrator RSS %.1f MiB (the ledger keeps about 30 s of calls)\n",
			S->self.rss_kb[S->self.n - 1] / 1024.0);
	if (!nrun)
		pass = 0;
	record_line(S, pass);
	fprintf(stderr, "wirepath soak: %s\n", pass ? "PASS" : "FAIL");
	return pass;
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

static const struct tool_opt soak_opts[] = {
	{ .name = "paths",
	  .kind = TOOL_OPT_STR,
	  .off = offsetof(struct soak_cfg, paths),
	  .meta = "LIST",
	  .help = "comma-separated paths, all run concurrently\n(default tcp,uring,shm)" },
	{ .name = "secs",
	  .kind = TOOL_OPT_SECS,
	  .off = offsetof(struct soak_cfg, secs),
	  .fmin = 2,
	  .fmax = 7 * 86400,
	  .meta = "S",
	  .help = "how long (default $SOAK_SECS, else 1800)" },
	{ .name = "fault-secs",
	  .kind = TOOL_OPT_SECS,
	  .off = offsetof(struct soak_cfg, fault_secs),
	  .fmin = 0.2,
	  .fmax = 3600,
	  .meta = "S",
	  .help = "one fault per path every S seconds, kinds in turn\n(default 3)" },
	{ .name = "sample-secs",
	  .kind = TOOL_OPT_SECS,
	  .off = offsetof(struct soak_cfg, sample_secs),
	  .fmin = 0.1,
	  .fmax = 600,
	  .meta = "S",
	  .help = "RSS and fd sampling period (default: secs / 200,\nwithin 0.5 to 5)" },
	{ .name = "progress-secs",
	  .kind = TOOL_OPT_SECS,
	  .off = offsetof(struct soak_cfg, progress_secs),
	  .fmin = 1,
	  .fmax = 3600,
	  .meta = "S",
	  .help = "a progress line per path every S seconds (default 30)" },
	{ .name = "out",
	  .kind = TOOL_OPT_FILE,
	  .off = offsetof(struct soak_cfg, out),
	  .meta = "FILE",
	  .help = "the JSON result (default $SOAK_OUT, else\nresults/soak.json)" },
	{ .name = "workload",
	  .kind = TOOL_OPT_FILE,
	  .off = offsetof(struct soak_cfg, workload),
	  .meta = "NAME|FILE",
	  .help = "the agent step (default agentic; docs/workload.md)" },
	{ .name = "agents",
	  .kind = TOOL_OPT_U32,
	  .off = offsetof(struct soak_cfg, agents),
	  .min = 1,
	  .max = 64,
	  .meta = "N",
	  .help = "agents per client and target (default 2)" },
	{ .name = "no-rss-verdict",
	  .kind = TOOL_OPT_FLAG,
	  .off = offsetof(struct soak_cfg, no_rss_verdict),
	  .help = "report RSS but do not judge it (sanitized builds:\nASan's quarantine keeps freed memory)" },
	{ .name = "seed",
	  .kind = TOOL_OPT_U64,
	  .off = offsetof(struct soak_cfg, seed),
	  .min = 0,
	  .max = UINT64_MAX,
	  .meta = "N",
	  .help = "seed for sizes and keys (default 1)" },
	{ .name = NULL },
};

static void soak_usage(FILE *f)
{
	fprintf(f, "usage: wirepath soak [--secs S] [--paths tcp,uring,shm] [--fault-secs S]\n"
		   "                     [--out FILE] [--workload NAME|FILE] [--agents N]\n"
		   "\n"
		   "Agentic load over every path at once, with peers killed, connections reset,\n"
		   "rings and socket buffers full, policy reloads and slow large frames. Every\n"
		   "payload is checksummed; at the end no acknowledged call may be lost or\n"
		   "corrupted, and the long-lived processes' RSS and fd counts must be flat.\n"
		   "Exit 0 pass, 1 fail. docs/soak.md says what is injected and checked.\n"
		   "\n");
	tool_opt_help(f, soak_opts, 23);
}

static int parse_paths(struct soak *S, const char *list)
{
	char buf[128], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		static const char *const known[] = { "tcp", "uring", "shm" };
		int k;

		for (k = 0; k < 3 && strcmp(tok, known[k]); k++)
			;
		if (k == 3)
			return tool_usage_error(
				"soak", "--paths: unknown path '%s' (tcp, uring, shm)", tok);
		for (int i = 0; i < S->npaths; i++)
			if (!strcmp(S->paths[i].name, known[k]))
				return tool_usage_error("soak", "--paths: '%s' given twice", tok);
		S->paths[S->npaths++].name = known[k];
	}
	if (!S->npaths)
		return tool_usage_error("soak", "--paths: no path given");
	return 0;
}

int cmd_soak(int argc, char **argv)
{
	struct soak *S = calloc(1, sizeof(*S));
	struct sigaction sa;
	char err[256];
	const char *env;
	uint64_t now, end, next_sample, next_progress, next_ledger, warm_until = 0, rng;
	int rc, status = 1;

	if (!S) {
		fprintf(stderr, "wirepath soak: out of memory\n");
		return 1;
	}
	S->cfg.paths = "tcp,uring,shm";
	S->cfg.workload = "agentic";
	S->cfg.secs = 1800;
	S->cfg.fault_secs = 3;
	S->cfg.progress_secs = 30;
	S->cfg.agents = 2;
	S->cfg.seed = 1;
	S->cfg.out = "results/soak.json";
	env = getenv("SOAK_SECS");
	if (env && *env && tool_parse_secs(env, 2, 7 * 86400, &S->cfg.secs) < 0) {
		free(S);
		return tool_usage_error("soak", "SOAK_SECS takes seconds in [2, 604800], not '%s'",
					env);
	}
	env = getenv("SOAK_OUT");
	if (env && *env)
		S->cfg.out = env;
	rc = tool_opt_parse("soak", soak_opts, &S->cfg, argc, argv, NULL);
	if (rc == TOOL_OPT_HELP) {
		soak_usage(stdout);
		free(S);
		return 0;
	}
	if (rc) {
		free(S);
		return rc;
	}
	rc = parse_paths(S, S->cfg.paths);
	if (rc) {
		free(S);
		return rc;
	}
	if (wl_load(S->cfg.workload, &S->w, err, sizeof(err)) < 0) {
		fprintf(stderr, "wirepath soak: %s\n", err);
		free(S);
		return EXIT_USAGE;
	}
	if (S->w.fanout > 256 || S->w.mem_lookups > 256) {
		free(S);
		return tool_usage_error("soak", "the soak takes fanout and mem_lookups up to 256");
	}
	if (!S->cfg.sample_secs) {
		S->cfg.sample_secs = S->cfg.secs / 200;
		S->cfg.sample_secs = S->cfg.sample_secs < 0.5 ? 0.5
				     : S->cfg.sample_secs > 5 ? 5
							      : S->cfg.sample_secs;
	}
	rng = S->cfg.seed * 0x9e3779b97f4a7c15ull + 1;
	for (int i = 0; i < 16; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		S->key_a[i] = (uint8_t)(rng >> 33);
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		S->key_b[i] = (uint8_t)(rng >> 33);
	}
	S->key_a[0] |= 1;
	S->key_b[0] |= 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = soak_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (int i = 0; i < S->npaths; i++) {
		if (path_setup(S, &S->paths[i]) < 0)
			goto out;
		if (!S->paths[i].avail)
			fprintf(stderr, "wirepath soak: %s unavailable: %s\n", S->paths[i].name,
				S->paths[i].why);
	}
	S->t0 = wp_now_ns();
	for (int i = 0; i < S->npaths; i++) {
		struct spath *p = &S->paths[i];

		if (!p->avail)
			continue;
		if (spawn_all(S, p) < 0)
			goto out_stop;
		/* Stagger the paths' faults across the period. */
		p->next_fault = S->t0 +
				(uint64_t)(S->cfg.fault_secs * 1e9 * (1.0 + (double)i / S->npaths));
	}
	fprintf(stderr,
		"wirepath soak: %.0f s over %s concurrently, workload %s, %u agents per client and "
		"target, a fault per path every %.1f s\n",
		S->cfg.secs, S->cfg.paths, S->w.name, S->cfg.agents, S->cfg.fault_secs);

	end = S->t0 + (uint64_t)(S->cfg.secs * 1e9);
	warm_until = S->t0 + (uint64_t)(S->cfg.secs * 0.1e9 > 2e9 ? S->cfg.secs * 0.1e9 : 2e9);
	next_sample = S->t0;
	next_ledger = S->t0 + 10 * NS;
	next_progress = S->t0 + (uint64_t)(S->cfg.progress_secs * 1e9);
	while (!soak_interrupted && (now = wp_now_ns()) < end) {
		pump(S, 50);
		now = wp_now_ns();
		housekeeping(S, now);
		for (int i = 0; i < S->npaths; i++) {
			struct spath *p = &S->paths[i];

			if (p->avail && now >= p->next_fault) {
				inject(S, p, now);
				p->next_fault += (uint64_t)(S->cfg.fault_secs * 1e9);
			}
		}
		if (now >= next_ledger) {
			ledger_tick(S, now);
			next_ledger += 10 * NS;
		}
		if (now >= next_sample) {
			sample_all(S, now);
			next_sample += (uint64_t)(S->cfg.sample_secs * 1e9);
		}
		if (now >= next_progress) {
			progress(S, now);
			next_progress += (uint64_t)(S->cfg.progress_secs * 1e9);
		}
	}

out_stop:
	/* Let stalled servers go and killed victims come back, then stop the
	 * clients (each finishes its step), then the servers and proxies. */
	S->ending = 1;
	{
		uint64_t until = wp_now_ns() + 5 * NS;
		int pending;

		do {
			now = wp_now_ns();
			for (int i = 0; i < S->npaths; i++)
				if (S->paths[i].cont_at)
					S->paths[i].cont_at = now;
			housekeeping(S, now);
			pump(S, 20);
			pending = 0;
			for (int i = 0; i < S->npaths; i++)
				for (int r = 0; r < R__COUNT; r++)
					pending += S->paths[i].pr[r].used &&
						   !S->paths[i].pr[r].alive &&
						   S->paths[i].pr[r].respawn_at;
		} while (pending && wp_now_ns() < until);
	}
	S->ending = 2;
	{
		static const int clients[] = { R_A, R_B }, servers[] = { R_S, R_V, R_X };

		stop_role(S, clients, 2, SIGTERM, 30);
		stop_role(S, servers, 3, SIGTERM, 10);
	}
	if (soak_interrupted) {
		fprintf(stderr, "wirepath soak: interrupted after %.0f s; no verdict\n",
			(double)(wp_now_ns() - S->t0) / 1e9);
		status = 130;
		goto out;
	}
	status = summary(S, warm_until) ? 0 : 1;
	rc = write_json(S, S->cfg.out, warm_until, status == 0);
	if (rc < 0)
		fprintf(stderr, "wirepath soak: cannot write %s: %s\n", S->cfg.out, strerror(-rc));
	else
		fprintf(stderr, "wirepath soak: result in %s\n", S->cfg.out);
out:
	for (int i = 0; i < S->npaths; i++)
		for (int r = 0; r < R__COUNT; r++) {
			struct proc *pr = &S->paths[i].pr[r];

			if (pr->fd >= 0 && pr->used)
				close(pr->fd);
			if (pr->px_cmd >= 0 && pr->used)
				close(pr->px_cmd);
			free(pr->s.rss_kb);
			free(pr->s.fds);
			free(pr->s.t_ns);
		}
	for (uint32_t i = 0; i < S->nL; i++) {
		for (uint32_t c = 0; c < S->L[i].nch; c++)
			free(S->L[i].ch[c]);
		free(S->L[i].ch);
	}
	free(S->L);
	free(S->self.rss_kb);
	free(S->self.fds);
	free(S->self.t_ns);
	free(S);
	return status;
}
