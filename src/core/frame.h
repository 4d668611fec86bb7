/* SPDX-License-Identifier: MIT */
/*
 * The wirepath frame: a fixed 40-byte little-endian header followed by the
 * payload. See docs/protocol.md. The decoder validates a header before any
 * byte of the payload is looked at or any buffer is sized from it, so a peer
 * can never make us allocate more than max_frame.
 */
#ifndef WP_FRAME_H
#define WP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WP_FRAME_MAGIC 0x31465057u /* "WPF1" read as little-endian bytes */
#define WP_FRAME_VERSION 2         /* 2: authentication v2 (handshake, records) */
#define WP_FRAME_HDR 40u
#define WP_FRAME_MAX_DEFAULT (16u << 20)

enum wp_frame_type {
	WP_FT_MSG = 1,    /* one-way message */
	WP_FT_REQ = 2,    /* RPC request */
	WP_FT_DATA = 3,   /* one response chunk (stream or unary) */
	WP_FT_END = 4,    /* end of response; aux = application status */
	WP_FT_ERR = 5,    /* call failed; aux = status, payload = reason text */
	WP_FT_CANCEL = 6, /* client cancels req_id */
	WP_FT_CLOSE = 7,  /* connection-level error; aux = wp_bad_reason, payload = text */
	WP_FT_XFER = 8,   /* bulk transfer data for req_id; payload = placement prefix + bytes */
	WP_FT_HELLO = 9,  /* authentication v2 handshake; aux = phase (src/auth/hello.h) */
	WP_FT_SEAL = 10,  /* ends a record: auth = conn id | seq | frames, the 16-byte
			   * tag in method, req_id, aux (docs/protocol.md) */
	WP_FT__MAX = 10
};

/* XFER payload prefix (16 bytes, LE): u64 offset in the target region,
 * u32 region id, u32 region key. The bytes that follow land at that offset. */
#define WP_XFER_PREFIX 16u

/* Flags (u16). Unknown flags are a protocol error. */
#define WP_FF_LAST \
	(1u << 0) /* DATA: this chunk also ends the response (aux = status);
			      * XFER: last frame of a write: the receiver answers */
#define WP_FF__KNOWN (WP_FF_LAST)

struct wp_frame_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t tenant;
	uint32_t method;
	uint64_t req_id;
	uint32_t len;  /* payload bytes that follow */
	uint32_t aux;  /* status for END/ERR/DATA+LAST, reason for CLOSE, else 0 */
	uint64_t auth; /* v2 records: conn id (16) | record seq (40) | index (8); 0 without;
			* datagrams: the SipHash tag (docs/protocol.md) */
};

/* Encode h into exactly WP_FRAME_HDR bytes at out. */
void wp_frame_encode(const struct wp_frame_hdr *h, void *out);

/*
 * Decode and validate a header from buf[0..avail).
 * Returns WP_FRAME_HDR when a valid header was decoded into *h, 0 when more
 * bytes are needed, or -EPROTO with *reason (enum wp_bad_reason) set.
 * Validation: magic, version, type range, known flags, len <= max_payload.
 * On WP_BAD_VERSION, h->version holds the version the peer sent.
 * Checks magic and version as soon as their bytes are present, so garbage is
 * rejected without waiting for a full header.
 */
int wp_frame_decode(const void *buf, size_t avail, uint32_t max_payload, struct wp_frame_hdr *h,
		    int *reason);

#endif
