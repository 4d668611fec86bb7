/* SPDX-License-Identifier: MIT */
/*
 * The shm path's shared memory and setup messages: everything both peers must
 * agree on (the control block, the descriptor, the geometry, the messages on
 * the unix socket). The peer may be another build or hostile;
 * tests/integ/test_shm.c writes one by hand against this header. What each
 * side keeps to itself is in shm.h.
 *
 * The shm path: co-located processes exchange frames through lock-free
 * single-producer/single-consumer rings in one shared memfd region per
 * connection. Payloads never pass through a ring: the producer places them in
 * its own part of the region (its arena, where the library copies a caller's
 * payload, or its heap, where wp_ep_buf_alloc hands out buffers the caller
 * fills in place) and the ring carries a 64-byte descriptor: the frame header
 * in wire encoding plus the payload's offset. The consumer delivers the
 * payload in place and returns ownership by advancing its `cons` index once
 * the callback returned; the producer then frees arena space and runs the
 * in-place sender's completion. Releases come back in ring order (a lent
 * message is kept by copying it, see wp_msg_keep), so the arena is itself a
 * ring and one index per direction says what is free.
 *
 * Setup: the connecting side creates and sizes the region (2 MiB hugepages
 * when the kernel has them reserved, 4 KiB pages otherwise), seals its size,
 * and passes it with two eventfds (one doorbell per side) over a unix
 * SOCK_SEQPACKET socket with SCM_RIGHTS. The acceptor validates everything it
 * is given (size, seals, geometry) before mapping it. The socket stays open:
 * its hang-up is how either side learns the other died (the kernel closes a
 * killed process's sockets), so nothing hangs on a dead peer.
 *
 * Wake-ups: a progress round polls every ring; with nothing to do it spins
 * (spin_us), then sets its `sleeping` flag in each connection, re-checks the
 * rings (the flag store and the re-check pair with the producer's index store
 * and flag load, both behind full fences: Dekker's handshake) and sleeps in
 * epoll_wait on the doorbells and sockets. A producer rings the doorbell only
 * when the peer said it sleeps, so a busy connection makes no syscalls.
 *
 * Trust: the peer can write anything into the shared part. Every index and
 * offset read from it is checked against the geometry this side computed
 * itself (never against offsets stored in shared memory), every header goes
 * through the same decoder as a stream's, and a violation closes the
 * connection with a counted bad-frame reason.
 */
#ifndef WP_SHM_LAYOUT_H
#define WP_SHM_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/frame.h"

#define SHM_MAGIC 0x314d5057u /* "WPM1" */
#define SHM_VERSION 1         /* unauthenticated setup: HELLO, ACK, MR */
#define SHM_VERSION_AUTH 2    /* authenticated setup: AUTH_* messages */
#define SHM_HUGE (2u << 20)
#define SHM_GRANULE 256u /* heap allocation unit */

enum {
	SHM_MSG_HELLO = 1, /* v1: the region, unauthenticated */
	SHM_MSG_ACK = 2,   /* v1: the acceptor's verdict */
	SHM_MSG_MR = 3,    /* v1: an exported region, after setup (either version) */
	/* v2 (struct shm_auth_msg), setup/docs/protocol.md: */
	SHM_MSG_AUTH_HELLO = 4,     /* connector: tenant, its nonce; no descriptors */
	SHM_MSG_AUTH_CHALLENGE = 5, /* acceptor: its nonce and proof of the key */
	SHM_MSG_AUTH_REGION = 6,    /* connector: its proof, geometry, the 3 descriptors */
	SHM_MSG_AUTH_ACK = 7,       /* acceptor: verdict (also any refusal, at any step) */
};

/* ---- the shared region --------------------------------------------- */

struct shm_dir_ctl {
	/* Descriptors published; written by the producer only (release), read
	 * by the consumer (acquire). */
	_Atomic uint64_t prod __attribute__((aligned(64)));
	/* Descriptors released; written by the consumer only (release) once
	 * the payload's callback returned, read by the producer (acquire). */
	_Atomic uint64_t cons __attribute__((aligned(64)));
};

struct shm_side_ctl {
	/* The side is in (or about to enter) epoll_wait: ring its doorbell. */
	_Atomic uint32_t sleeping __attribute__((aligned(64)));
	/* The side has sends waiting for ring or arena room, or in-place
	 * completions waiting for the peer's release: wake it on release. */
	_Atomic uint32_t want_space;
};

struct shm_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t size;
	struct shm_dir_ctl dir[2]; /* dir[s]: produced by side s */
	struct shm_side_ctl side[2];
};

struct shm_desc {
	uint8_t hdr[WP_FRAME_HDR]; /* the frame header, wire encoding */
	uint64_t off;              /* payload offset from the region start */
	uint64_t pad[2];
};
_Static_assert(sizeof(struct shm_desc) == 64, "descriptor is one cache line");

/* Where everything lies; computed by each side from the geometry alone. */
struct shm_geom {
	uint32_t slots;
	uint64_t arena, heap; /* bytes per direction */
	uint64_t align;       /* page size of the region */
	uint64_t ring_off[2], arena_off[2], heap_off[2];
	uint64_t size;
};

/* The setup messages on the unix socket. */
struct shm_wire_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	int32_t status; /* ACK: 0 or -errno */
	uint32_t slots;
	uint64_t arena, heap, align, size;
	int32_t pid;
	uint32_t mr_id; /* MR: an exported region, its memfd attached */
	uint32_t mr_key;
	uint32_t pad;
	uint64_t mr_len;
};
_Static_assert(sizeof(struct shm_wire_msg) == 72, "the setup message is 72 bytes on the wire");

#define SHM_AUTH_NONCE 32
#define SHM_AUTH_PROOF 32

/*
 * The authenticated setup's messages (version 2), used when the acceptor has
 * a policy or the connector a tenant key. Both sides prove the tenant's key:
 * proof = HMAC-SHA256(key, label || tenant (le32) || nonce_c || nonce_a), the
 * label naming the side that proves ("wirepath shm v2 acceptor" or
 * "... connector"), so a proof can never be reflected back. The region and
 * the doorbells travel only in AUTH_REGION, after the acceptor proved itself,
 * and the acceptor maps them only after the connector's proof verified.
 */
struct shm_auth_msg {
	uint32_t magic;
	uint16_t version; /* SHM_VERSION_AUTH */
	uint16_t type;    /* SHM_MSG_AUTH_* */
	int32_t status;   /* AUTH_ACK: 0 or -errno; else 0 */
	uint32_t tenant;  /* the tenant whose key is proved */
	uint32_t slots;   /* AUTH_REGION: the geometry, as in HELLO v1 */
	int32_t pid;      /* sender's pid (informational: SO_PEERCRED is what counts) */
	uint64_t arena, heap, align, size;
	uint8_t nonce[SHM_AUTH_NONCE]; /* AUTH_HELLO: nonce_c; AUTH_CHALLENGE: nonce_a */
	uint8_t proof[SHM_AUTH_PROOF]; /* AUTH_CHALLENGE, AUTH_REGION */
	uint64_t reserved;             /* zero */
};
_Static_assert(sizeof(struct shm_auth_msg) == 128, "the v2 setup message is 128 bytes");

/* A setup message of either version, parsed (shm_setup_parse). */
struct shm_setup {
	uint16_t version, type;
	int32_t status;
	uint32_t tenant;
	int32_t pid;
	uint32_t slots;
	uint64_t arena, heap, align, size;
	uint8_t nonce[SHM_AUTH_NONCE];
	uint8_t proof[SHM_AUTH_PROOF];
	uint32_t mr_id, mr_key; /* MR */
	uint64_t mr_len;
	struct shm_geom g; /* HELLO, AUTH_REGION: the layout computed from the geometry */
};

#define SHM_SETUP_MAX 128 /* the largest setup message */
#define SHM_WANT(t) (1u << (t))

/*
 * Validate one setup message as received (bytes in, nothing else: no
 * descriptors, no state; fuzzed by tests/fuzz/fuzz_shm_hello.c): the size of
 * its version, magic, version, a type in the mask `want` (SHM_WANT bits),
 * reserved bytes zero, and for HELLO and AUTH_REGION a geometry in bounds
 * whose computed layout has exactly the announced size. Returns 0 with *out
 * filled, or -EPROTO with *reason (enum wp_setup_reason) and *why (a static
 * string for the log) set.
 */
int shm_setup_parse(const void *buf, size_t n, unsigned want, struct shm_setup *out, int *reason,
		    const char **why);
/* Encode m as its version's wire message into buf (SHM_SETUP_MAX bytes).
 * Returns the length (72 or 128). The exact inverse of shm_setup_parse. */
size_t shm_setup_encode(const struct shm_setup *m, void *buf);

static inline uint64_t shm_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * Where each part lies for a geometry, every part on an `align` boundary. It
 * judges nothing: shm_geom_compute checks the bounds first, and the hostile
 * peer of tests/integ/test_shm.c uses this alone to build regions out of them.
 */
static inline void shm_geom_layout(struct shm_geom *g, uint32_t slots, uint64_t arena,
				   uint64_t heap, uint64_t align)
{
	uint64_t off;

	g->slots = slots;
	g->arena = arena;
	g->heap = heap;
	g->align = align;
	off = shm_align_up(sizeof(struct shm_hdr), align);
	for (int d = 0; d < 2; d++) {
		g->ring_off[d] = off;
		off = shm_align_up(off + (uint64_t)slots * sizeof(struct shm_desc), align);
	}
	for (int d = 0; d < 2; d++) {
		g->arena_off[d] = off;
		off = shm_align_up(off + arena, align);
	}
	for (int d = 0; d < 2; d++) {
		g->heap_off[d] = off;
		off = shm_align_up(off + heap, align);
	}
	g->size = off;
}

/* Lay the region out (region.c). Returns 0 or -EINVAL for a geometry out of
 * bounds. */
int shm_geom_compute(struct shm_geom *g, uint32_t slots, uint64_t arena, uint64_t heap,
		     uint64_t align);

#endif /* WP_SHM_LAYOUT_H */
