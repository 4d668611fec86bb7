/* SPDX-License-Identifier: MIT */
/*
 * The xsk path's packet format, parsed without a context (so it is fuzzed:
 * tests/fuzz/fuzz_xsk_pkt.c, and unit-tested: tests/unit/test_xsk_wire.c).
 * Every length the receive side uses is checked here; rx.c trusts only the
 * views these fill. Layout (docs/architecture.md, "xsk"): Ethernet, IPv4
 * (no options needed, no fragments), UDP, the 40-byte frame header, the
 * 24-byte prefix (session id, seq, ack, message length, fragment offset;
 * little-endian), the fragment. A bundle's fragment is its first message
 * followed by records: a frame header (len = its payload) and the payload.
 */
#ifndef WP_XSK_WIRE_H
#define WP_XSK_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/frame.h"
#include "wirepath/wirepath.h" /* WP_BAD_ reasons */

#define XSK_HDRS 42u /* Ethernet 14 + IPv4 20 + UDP 8 */
#define XSK_PREFIX 24u
#define XSK_T_CTL 0xc5 /* control packet type (never a frame type) */

/* The path's byte order, for the parser and the rest of the path. */
static inline void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* little-endian hosts (x86, arm64): the wire order */
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Why a datagram was not the path's (xsk_parse's return, negated). */
enum xsk_bad {
	XSK_BAD_SHORT = 1, /* shorter than Ethernet + IPv4 + UDP */
	XSK_BAD_ETH,       /* not IPv4 */
	XSK_BAD_IP,        /* header length, total length, protocol, a fragment */
	XSK_BAD_UDP,       /* UDP length outside the IPv4 datagram */
	XSK_BAD_FRAME,     /* too short for the frame header and prefix, magic, version */
	XSK_BAD_LEN,       /* the frame header's len is not the rest of the datagram */
};

/* One received datagram, as far as it is the path's. */
struct xsk_view {
	const uint8_t *src_mac; /* 6 bytes */
	uint32_t src_ip;        /* network order */
	uint16_t src_port;      /* host order */
	const uint8_t *hdr;     /* the 40-byte frame header */
	uint32_t flen;          /* the UDP payload from hdr: header, prefix, fragment */
	bool ctl;               /* a control packet (type XSK_T_CTL) */
	uint32_t kind;          /* the header's method: a control packet's kind */
	uint32_t tenant;
};

/* The prefix and what follows it: from the datagram (unsealed), or from a
 * sealed datagram's opened payload. */
struct xsk_body {
	uint64_t sid;
	uint32_t seq, ack, mlen, off;
	const uint8_t *frag; /* after the prefix */
	uint32_t fn;         /* bytes after the prefix */
};

/* An Ethernet frame of len bytes: 0 and *v filled, or -enum xsk_bad. */
int xsk_parse(const uint8_t *p, uint32_t len, struct xsk_view *v);

/* The prefix at pre, n bytes in all with what follows (n >= XSK_PREFIX, or
 * -EPROTO). */
int xsk_body(const uint8_t *pre, uint32_t n, struct xsk_body *b);

/* What a data packet is, for max_frame: XSK_DATA_WHOLE (the whole message:
 * off 0, fn == mlen), XSK_DATA_FRAG (fragment off..off+fn of a larger
 * message: off + fn <= mlen without overflow), XSK_DATA_BUNDLE (off 0, mlen <
 * fn: the first message, then records), or -EPROTO with *why (a
 * WP_BAD_ reason) when mlen exceeds max_frame or the fragment runs past
 * its message. */
enum { XSK_DATA_WHOLE = 0, XSK_DATA_FRAG = 1, XSK_DATA_BUNDLE = 2 };
int xsk_data_kind(const struct xsk_body *b, uint32_t max_frame, int *why);

/* A bundle's next record from *p (*n bytes left): its header in *h and its
 * payload at *payload; *p and *n advance past it. 1 = a record, 0 = none
 * left, -EPROTO with *why (a WP_BAD_ reason) when the record is truncated,
 * its header does not decode, it exceeds max_frame, or its tenant is not
 * tenant (the packet's first header's, which the XDP program judged). */
int xsk_bundle_next(const uint8_t **p, uint32_t *n, uint32_t tenant, uint32_t max_frame,
		    struct wp_frame_hdr *h, const uint8_t **payload, int *why);

#endif
