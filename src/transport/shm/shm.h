/* SPDX-License-Identifier: MIT */
/*
 * The shm backend's private state and the calls its files make of each other:
 * region.c (the memfd region, its geometry and this side's heap), setup.c (the
 * unix socket: handshake, region offers, close) and ring.c (the data path, the
 * progress round and the ops table). The design, the wake-up handshake and the
 * trust model are described in layout.h, next to what the peers share.
 */
#ifndef WP_SHM_H
#define WP_SHM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/core.h"
#include "layout.h"

#define SHM_EVENTS 64

struct shm_rmr { /* a region the peer exported to us */
	uint32_t id, key;
	uint64_t len;
	int fd;
	uint8_t *map; /* mapped at first use */
};

/* ---- private state -------------------------------------------------- */

struct shm_infl {           /* a published descriptor awaiting release */
	uint64_t arena_end; /* arena head after its payload */
	wp_done_fn done;    /* in place: the sender's completion */
	void *arg;
};

struct shm_pend { /* a send that found no room yet */
	struct wp_frame_hdr h;
	const void *data;
	size_t len;
	wp_done_fn done;
	void *arg;
};

struct shm_ext { /* a free heap extent, in granules */
	uint32_t start, len;
	struct shm_ext *next;
};

struct shm_ep {
	int sock, efd_me, efd_peer;
	int side; /* 0 connected, 1 accepted */
	uint8_t *base;
	struct shm_geom g;
	struct shm_hdr *hdr;
	bool open; /* on the poll list */
	struct wp_ep *next_open, *prev_open;
	/* transmit (direction `side`) */
	struct shm_desc *tx_ring;
	uint64_t tx_prod, tx_done;
	uint32_t infl_cb; /* published descriptors with a completion to run */
	uint64_t arena_head, arena_tail;
	struct shm_infl *infl;
	struct shm_pend *pend;
	uint32_t pend_head, pend_tail, pend_cap; /* ring, absolute indices */
	bool bell;                               /* published since the last doorbell check */
	/* heap allocator (private: the peer cannot corrupt it) */
	struct shm_ext *free_ext;
	uint32_t *blk_len; /* granules per live allocation, by start */
	/* receive (direction 1 - side) */
	struct shm_desc *rx_ring;
	uint64_t rx_cons;
	/* regions the peer exported (bulk transfers map them) */
	struct shm_rmr *rmr;
	uint32_t nrmr;
	/* listener: a filesystem socket we created, unlinked at close */
	char *unlink_path;
	/* set-up (setup.c): the region until it is passed, and the key proof */
	int memfd;
	uint8_t step; /* enum shm_step */
	uint32_t auth_tenant;
	uint8_t nonce_c[SHM_AUTH_NONCE], nonce_a[SHM_AUTH_NONCE];
	uint8_t key[16]; /* the tenant's key, wiped when set-up ends */
};

/* Where a connection is in its set-up (shm_ep.step). */
enum shm_step {
	SHM_STEP_SEND_HELLO = 0, /* connector: at the first event (a key set after
				  * wp_connect goes with the hello) */
	SHM_STEP_WAIT_ACK,       /* connector: v1 hello sent */
	SHM_STEP_WAIT_CHALLENGE, /* connector: AUTH_HELLO sent */
	SHM_STEP_WAIT_AUTH_ACK,  /* connector: AUTH_REGION sent */
	SHM_STEP_WAIT_HELLO,     /* acceptor: nothing received yet */
	SHM_STEP_WAIT_REGION,    /* acceptor: CHALLENGE sent */
};

/*
 * Adaptive spin. Spinning before sleeping pays only when work comes back
 * within the spin budget: then a ~100 ns poll replaces a wake-up that costs
 * tens of microseconds. When the gaps between bursts are long (tokens paced
 * every 25 ms, tool calls with service times), every spin burns its whole
 * budget for nothing, on both sides of each message. So each idle period's
 * length is learned: hit_q16 is an average (weight 1/8) of "the gap was
 * within spin_us" in Q16, and the context spins only while at least half of
 * the recent gaps were. It keeps learning while it does not spin (the
 * length of each sleep that ended with work, and a spin every 16th idle
 * period, since a sleep's length includes this side's own wake-up), so a
 * burst of dense traffic turns spinning back on.
 */
#define SHM_SPIN_ONE 65536u
static inline void shm_spin_learn(uint32_t *hit_q16, uint64_t gap_ns, uint64_t spin_ns)
{
	int64_t x = gap_ns <= spin_ns ? SHM_SPIN_ONE : 0;

	*hit_q16 = (uint32_t)((int64_t)*hit_q16 + (x - (int64_t)*hit_q16) / 8);
}

static inline bool shm_spin_wanted(uint32_t hit_q16)
{
	return hit_q16 >= SHM_SPIN_ONE / 2;
}

struct shm_ctx {
	int epfd;           /* first: wp_epoll_bk_init */
	struct wp_ep *open; /* connections to poll */
	uint64_t last_epoll_ns;
	uint32_t spin_hit_q16; /* adaptive spin: see shm_spin_learn */
	uint32_t spin_probe;   /* idle periods while off: every 16th spins */
	bool armed;            /* wp_ctx_arm set the sleeping flags: an embedding loop sleeps */
	bool huge;             /* 2 MiB hugetlb memfds work here */
	char pages_why[128];
	struct epoll_event ev[SHM_EVENTS];
};

static inline struct shm_ctx *sctx(struct wp_ctx *ctx)
{
	return ctx->bk;
}

static inline struct shm_ep *sep(const struct wp_ep *ep)
{
	return ep->bk;
}

/* region.c: the region and the heap */
int shm_memfd_sized(uint64_t size, bool huge);
void *shm_region_map(int fd, uint64_t size, bool populate);
int shm_ep_attach(struct wp_ep *ep, uint8_t *base);
void shm_probe_huge(struct shm_ctx *sc);
bool shm_in_heap(const struct shm_ep *se, const void *p, size_t len);
void *shm_buf_alloc(struct wp_ep *ep, size_t len);
void shm_buf_free(struct wp_ep *ep, void *buf);
int shm_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
	      uint32_t max);

/* setup.c: the unix socket, from listen to close */
void shm_ep_init(struct wp_ep *ep);
int shm_addr_parse(const char *rest, struct sockaddr_storage *ss, socklen_t *salen);
int shm_listen(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
int shm_connect(struct wp_ep *ep, const struct sockaddr *sa, socklen_t salen);
void shm_sock_event(struct wp_ep *ep, uint32_t e);
void shm_rx_pause(struct wp_ep *ep, bool pause);
ssize_t shm_sock_drain(struct wp_ep *ep);
struct shm_rmr *shm_rmr_find(struct shm_ep *se, uint32_t id);
void shm_close(struct wp_ep *ep);
void shm_ep_free(struct wp_ep *ep);
int shm_local_uri(const struct wp_ep *ep, char *buf, size_t len);
void shm_mr_exported(struct wp_ctx *ctx, struct wp_mr *mr);
int shm_mem_register(struct wp_ctx *ctx, struct wp_mr *mr);
void shm_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr);

/* ring.c: the data path */
void shm_bad_peer(struct wp_ep *ep, int reason, const char *what);
int shm_rx_poll(struct wp_ep *ep);

#endif /* WP_SHM_H */
