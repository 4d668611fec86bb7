/* SPDX-License-Identifier: MIT */
/*
 * `wirepath soak` (docs/soak.md): what the soak's processes share.
 *
 * - The payload format. Every request, reply chunk, token chunk, telemetry
 *   and hog message the soak sends starts with a 40-byte header naming the
 *   call it belongs to (id), its place in the answer (idx of n) and a 64-bit
 *   checksum over the whole payload; the body bytes are derived from (id,
 *   idx), so a payload delivered to the wrong call, out of order, stale or
 *   with one byte changed fails the check.
 * - The report records: each child process writes fixed 32-byte records to
 *   its own pipe to the orchestrator (executions, acknowledgements,
 *   violations, counters). A write to a pipe survives the writer's SIGKILL,
 *   so the orchestrator's ledger never loses what a killed peer reported.
 * - The roles (tools/soak_peers.c, tools/soak_proxy.c) and their config.
 *
 * Tool code: the public API only.
 */
#ifndef WP_TOOLS_SOAK_H
#define WP_TOOLS_SOAK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stub_proto.h"
#include "workload.h"

/* ------------------------------------------------------------------ */
/* Payloads                                                            */
/* ------------------------------------------------------------------ */

#define SOAK_MAGIC 0x4b414f53u /* "SOAK", little-endian */
#define SOAK_HDR 40u

/* Payload kinds; the RPC method of a call is its kind. */
enum soak_kind {
	SOAK_TOOL = 1,  /* request -> one reply of `arg` body bytes */
	SOAK_MEM = 2,   /* memory lookup: the same shape */
	SOAK_MODEL = 3, /* request -> `n` token chunks of `arg` body bytes each */
	SOAK_TEL = 4,   /* one-way telemetry; idx = index on this connection */
	SOAK_HOG = 5,   /* one-way, large, sent slowly (the memory-budget fault) */
	SOAK_KIND_MAX = SOAK_HOG
};

/*
 * The header, little-endian:
 *   0 u32 magic   4 u32 kind   8 u64 id   16 u32 idx   20 u32 n
 *  24 u32 len (whole payload, header included)   28 u32 arg
 *  32 u64 sum: soak_sum over the payload with these 8 bytes taken as 0.
 * id = client id << 32 | sequence number (per client incarnation).
 */
struct soak_hdr {
	uint32_t kind;
	uint64_t id;
	uint32_t idx, n, len, arg;
};

/* Why a payload was refused (soak_check). */
enum soak_bad {
	SOAK_OK = 0,
	SOAK_BAD_SHORT, /* shorter than the header or than its len says */
	SOAK_BAD_MAGIC,
	SOAK_BAD_SUM,     /* checksum mismatch: corrupted */
	SOAK_BAD_ID,      /* a payload of another call */
	SOAK_BAD_ORDER,   /* a chunk out of order, or a telemetry gap */
	SOAK_BAD_COUNT,   /* a stream with too few or too many chunks */
	SOAK_BAD_STATUS,  /* a call ended with a server error (the server saw corruption) */
	SOAK_BAD_HUNG,    /* a call with no completion long past its deadline */
	SOAK_BAD_EXIT,    /* a process died that nobody killed */
	SOAK_BAD_AUTH,    /* a server refused good frames after a policy reload */
	SOAK_BAD_SETUP,   /* a peer could not start */
	SOAK_BAD_RETRIES, /* a call still unacknowledged after SOAK_MAX_ATTEMPTS */
	SOAK_BAD_STALLED, /* an agent's step did not end in SOAK_STEP_STALL_NS */
	SOAK_BAD__COUNT
};

const char *soak_bad_name(unsigned bad);

/* 64-bit word hash: (h ^ w) * P, rotated. Every step is a bijection in h and
 * in w, so any change confined to one 8-byte word always changes the sum. */
static inline uint64_t soak_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x100000001b3ull;
	return (h << 31) | (h >> 33);
}

uint64_t soak_sum(const void *p, size_t len);
/* Fill buf[0..len) (len >= SOAK_HDR): header h (len taken from the argument),
 * the body derived from (id, idx), the checksum. */
void soak_fill(void *buf, size_t len, const struct soak_hdr *h);
/* Decode and verify a payload: SOAK_OK with *h filled, or a soak_bad. */
int soak_check(const void *buf, size_t len, struct soak_hdr *h);

/* ------------------------------------------------------------------ */
/* Report records (child -> orchestrator)                              */
/* ------------------------------------------------------------------ */

enum soak_rec_type {
	SOAK_REC_EXEC = 1, /* server: executed call id (a = kind), logged before the reply */
	SOAK_REC_ACK,      /* client: call id acknowledged (a = attempts, b = kind) */
	SOAK_REC_BAD,      /* a violation: a = enum soak_bad, id = the call if known */
	SOAK_REC_COUNT,    /* a counter's current value: key = enum soak_ctr, a = value */
	SOAK_REC_LOW,      /* client: id = its low-water mark (every call below is settled) */
};

struct soak_rec {
	uint32_t type;
	uint32_t key;
	uint64_t id;
	uint64_t a, b;
};
_Static_assert(sizeof(struct soak_rec) == 32, "records are 32 bytes (atomic pipe writes)");

/* Counters the children report (absolute values per process incarnation). */
enum soak_ctr {
	/* client */
	SC_STEPS,
	SC_ACKED,
	SC_TOKENS, /* token chunks verified in order */
	SC_TEL_SENT,
	SC_RETRIES,    /* calls issued again after a clean failure */
	SC_FAIL_RESET, /* calls failed -ECONNRESET */
	SC_FAIL_ABORT, /* -ECONNABORTED (our own close) */
	SC_FAIL_TIMEOUT,
	SC_FAIL_OTHER, /* any other negative errno */
	SC_RECONNECTS,
	SC_BACKPRESSURE,  /* -EAGAIN/-ENOBUFS from a call or a send */
	SC_RX_RING_EMPTY, /* meter: uring provided-buffer ring ran dry (ENOBUFS) */
	SC_ABORTS,        /* endpoints closed on purpose with calls in flight */
	SC_HOG_SENT,
	/* server */
	SC_EXECUTED,
	SC_REPLY_LOST, /* a reply or chunk refused: the client went away */
	SC_TEL_OK,
	SC_HOG_OK,
	SC_RELOADS,
	SC_BAD_AUTH, /* meter: frames refused by the policy */
	SC_CONNS,
	SC_LISTEN_RETRIES, /* a restarted server's address still held (uring) */
	/* proxy */
	SC_PX_CONNS,
	SC_PX_RESETS,
	SC_PX_BYTES,
	SC_PX_DRIP_BYTES,
	SC_PX_ORPHANS, /* drip pairs of a killed client-B reset */
	SC__COUNT
};

const char *soak_ctr_name(unsigned c);

/* ------------------------------------------------------------------ */
/* Roles                                                               */
/* ------------------------------------------------------------------ */

#define SOAK_TENANT_A 1u
#define SOAK_TENANT_B 2u
#define SOAK_MAX_ATTEMPTS 200u
#define SOAK_CALL_DEADLINE_US 5000000
#define SOAK_STEP_STALL_NS (30 * 1000000000ull)
#define SOAK_HOG_BYTES (3u << 20)   /* a hog's one-way frame */
#define SOAK_HOGS 2                 /* hog endpoints in client-B (tcp, uring) */
#define SOAK_DRIP_BPS (1u << 20)    /* the drip port's client -> server rate, all hogs */
#define SOAK_RX_BUDGET (4ull << 20) /* server: the receive budget (SOAK_RX_BUDGET line) */

/* What a forked peer is told (it reads this in its copy of the parent). */
struct soak_peer_cfg {
	const char *path; /* "tcp", "uring", "shm" */
	const char *who;  /* "tcp/server-S", for its messages */
	int report_fd;    /* its end of the report pipe */
	uint32_t cid;     /* client: this incarnation's client id */
	uint64_t seed;
	const struct wl *w;
	int squeeze; /* small rings and buffers (docs/soak.md) */
	uint32_t tenant;
	uint8_t key[16];
	uint8_t key_other[16]; /* the other good tenant's key (server policies) */
	/* server: where to listen; client: up to two targets and agents on each */
	char listen[128];
	char target[2][128];
	uint32_t agents[2];
	char hog_target[128]; /* client: "" = no hog */
	uint64_t rx_budget;   /* server: the per-context receive budget (SOAK_RX_BUDGET) */
	/* proxy */
	int px_port, px_drip_port, px_target_port, px_cmd_fd;
};

int soak_server_main(const struct soak_peer_cfg *c);
int soak_client_main(const struct soak_peer_cfg *c);
int soak_proxy_main(const struct soak_peer_cfg *c);

/* Reporting from a child (buffered; flushed by soak_report_flush). */
void soak_report_init(int fd);
void soak_report(uint32_t type, uint32_t key, uint64_t id, uint64_t a, uint64_t b);
void soak_report_flush(void);
void soak_report_counters(const uint64_t *ctr);
/* Report a violation and print it once (the first few per process). */
void soak_violation(const char *who, unsigned bad, uint64_t id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
