// SPDX-License-Identifier: MIT
/*
 * The xsk path's packet parser (src/transport/xsk/wire.c), table-driven:
 * good packets of each kind parse to the fields they were built with, and
 * each bad one is refused by the check it names (tests/fuzz/fuzz_xsk_pkt.c
 * fuzzes the same functions).
 */
#include <errno.h>
#include <string.h>

#include "testlib.h"
#include "transport/xsk/wire.h"

static uint8_t buf[2048];

/* Ethernet + IPv4 + UDP around a UDP payload of n bytes at buf + 42; the
 * knobs break one field each. Returns the frame's length. */
struct knobs {
	uint16_t ethertype;
	uint8_t ihl, proto;
	uint16_t frag;
	int tot_delta, ulen_delta, pad;
};

static uint32_t wrap(uint32_t n, const struct knobs *k)
{
	uint8_t ihl = k->ihl ? k->ihl : 5;
	uint32_t iph = ihl * 4u, tot = iph + 8 + n + (uint32_t)k->tot_delta;
	uint32_t ulen = 8 + n + (uint32_t)k->ulen_delta;
	uint8_t *ip = buf + 14, *udp;

	/* the payload was written at 42; options push it */
	if (iph > 20)
		memmove(buf + 14 + iph + 8, buf + 42, n);
	memset(buf, 0, 14 + iph + 8);
	memcpy(buf, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02", 12);
	buf[12] = (uint8_t)((k->ethertype ? k->ethertype : 0x0800) >> 8);
	buf[13] = (uint8_t)(k->ethertype ? k->ethertype : 0x0800);
	ip[0] = (uint8_t)(0x40 | ihl);
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[6] = (uint8_t)(k->frag >> 8);
	ip[7] = (uint8_t)k->frag;
	ip[9] = k->proto ? k->proto : 17;
	memcpy(ip + 12, "\x0a\x62\x00\x02", 4);
	memcpy(ip + 16, "\x0a\x62\x00\x01", 4);
	udp = ip + iph;
	udp[0] = 0x9c;
	udp[1] = 0x40; /* 40000 */
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	memset(udp + 8 + n, 0, (size_t)k->pad);
	return 14 + iph + 8 + n + (uint32_t)k->pad;
}

/* A frame header + prefix + fragment at buf + 42; returns the UDP payload
 * length. */
static uint32_t path_pkt(uint8_t type, uint32_t method, uint32_t tenant, uint32_t mlen,
			 uint32_t off, const uint8_t *frag, uint32_t fn)
{
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = type == XSK_T_CTL ? 1 : type,
				  .tenant = tenant,
				  .method = method,
				  .len = XSK_PREFIX + fn };
	uint8_t *p = buf + 42;
	uint64_t sid = 0x1122334455667788ull;

	wp_frame_encode(&h, p);
	p[5] = type;
	memcpy(p + WP_FRAME_HDR, &sid, 8);
	put32(p + WP_FRAME_HDR + 8, 7);  /* seq */
	put32(p + WP_FRAME_HDR + 12, 3); /* ack */
	put32(p + WP_FRAME_HDR + 16, mlen);
	put32(p + WP_FRAME_HDR + 20, off);
	if (fn)
		memcpy(p + WP_FRAME_HDR + XSK_PREFIX, frag, fn);
	return WP_FRAME_HDR + XSK_PREFIX + fn;
}

static uint32_t record(uint8_t *p, uint32_t tenant, uint32_t len)
{
	struct wp_frame_hdr h = { .magic = WP_FRAME_MAGIC,
				  .version = WP_FRAME_VERSION,
				  .type = WP_FT_REQ,
				  .tenant = tenant,
				  .method = 1,
				  .len = len };

	wp_frame_encode(&h, p);
	memset(p + WP_FRAME_HDR, 0x5a, len);
	return WP_FRAME_HDR + len;
}

static void parse_bad(const char *what, uint32_t len, int want)
{
	struct xsk_view v;
	int ret = xsk_parse(buf, len, &v);

	if (ret != want)
		fprintf(stderr, "%s: got %d, want %d\n", what, ret, want);
	CHECK_EQ(ret, want);
}

int main(void)
{
	static const struct knobs none;
	uint8_t frag[1400], bundle[1400];
	struct xsk_view v;
	struct xsk_body b;
	struct wp_frame_hdr h;
	const uint8_t *p, *payload;
	uint32_t n, len, blen;
	int why, ret;

	for (size_t i = 0; i < sizeof(frag); i++)
		frag[i] = (uint8_t)i;

	/* good: a control packet */
	len = wrap(path_pkt(XSK_T_CTL, 6, 0, 0, 0, NULL, 0), &none);
	CHECK_EQ(xsk_parse(buf, len, &v), 0);
	CHECK(v.ctl && v.kind == 6 && v.flen == WP_FRAME_HDR + XSK_PREFIX);
	CHECK_EQ(v.src_port, 40000);
	CHECK(!memcmp(&v.src_ip, "\x0a\x62\x00\x02", 4));
	CHECK_EQ(xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b), 0);
	CHECK(b.sid == 0x1122334455667788ull && b.seq == 7 && b.ack == 3 && b.fn == 0);
	CHECK_EQ(xsk_body(v.hdr + WP_FRAME_HDR, XSK_PREFIX - 1, &b), -EPROTO);

	/* good: whole, first fragment, last fragment; Ethernet padding and
	 * IPv4 options are fine */
	len = wrap(path_pkt(WP_FT_REQ, 1, 9, 100, 0, frag, 100), &(struct knobs){ .pad = 18 });
	CHECK_EQ(xsk_parse(buf, len, &v), 0);
	CHECK(!v.ctl && v.tenant == 9);
	CHECK_EQ(xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b), 0);
	CHECK(b.fn == 100 && !memcmp(b.frag, frag, 100));
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), XSK_DATA_WHOLE);
	len = wrap(path_pkt(WP_FT_REQ, 1, 9, 5000, 0, frag, 1400), &(struct knobs){ .ihl = 6 });
	CHECK_EQ(xsk_parse(buf, len, &v), 0);
	CHECK_EQ(xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b), 0);
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), XSK_DATA_FRAG);
	b.off = 3600;
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), XSK_DATA_FRAG); /* 3600 + 1400 = 5000 */

	/* bad data: too big for max_frame, past its message, an offset that
	 * would wrap a uint32 */
	CHECK_EQ(xsk_data_kind(&b, 4999, &why), -EPROTO);
	CHECK_EQ(why, WP_BAD_TOO_BIG);
	b.off = 3601;
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), -EPROTO);
	CHECK_EQ(why, WP_BAD_TRUNCATED);
	b.off = 0xffffff00u;
	b.fn = 0x100;
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), -EPROTO);
	b.off = 6000;
	b.fn = 0;
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), -EPROTO);

	/* a bundle: the first message (60 B), then three records */
	memcpy(bundle, frag, 60);
	blen = 60;
	blen += record(bundle + blen, 9, 30);
	blen += record(bundle + blen, 9, 0);
	blen += record(bundle + blen, 9, 200);
	len = wrap(path_pkt(WP_FT_REQ, 1, 9, 60, 0, bundle, blen), &none);
	CHECK_EQ(xsk_parse(buf, len, &v), 0);
	CHECK_EQ(xsk_body(v.hdr + WP_FRAME_HDR, v.flen - WP_FRAME_HDR, &b), 0);
	CHECK_EQ(xsk_data_kind(&b, 1 << 20, &why), XSK_DATA_BUNDLE);
	p = b.frag + b.mlen;
	n = b.fn - b.mlen;
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 1 << 20, &h, &payload, &why), 1);
	CHECK(h.len == 30 && payload[0] == 0x5a);
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 1 << 20, &h, &payload, &why), 1);
	CHECK_EQ(h.len, 0);
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 1 << 20, &h, &payload, &why), 1);
	CHECK_EQ(h.len, 200);
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 1 << 20, &h, &payload, &why), 0);
	CHECK_EQ(n, 0);
	/* ... a record of another tenant, one past max_frame, one cut short,
	 * a header cut short */
	p = b.frag + b.mlen;
	n = b.fn - b.mlen;
	CHECK_EQ(xsk_bundle_next(&p, &n, 8, 1 << 20, &h, &payload, &why), -EPROTO);
	CHECK_EQ(why, WP_BAD_AUTH);
	p = b.frag + b.mlen;
	n = b.fn - b.mlen;
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 20, &h, &payload, &why), -EPROTO);
	CHECK_EQ(why, WP_BAD_TOO_BIG);
	p = b.frag + b.mlen;
	n = WP_FRAME_HDR + 29;
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 1 << 20, &h, &payload, &why), -EPROTO);
	CHECK_EQ(why, WP_BAD_TRUNCATED);
	p = b.frag + b.mlen;
	n = WP_FRAME_HDR - 1;
	CHECK_EQ(xsk_bundle_next(&p, &n, 9, 1 << 20, &h, &payload, &why), -EPROTO);
	CHECK_EQ(why, WP_BAD_TRUNCATED);

	/* bad frames, each by the check it names */
	n = path_pkt(WP_FT_REQ, 1, 9, 16, 0, frag, 16);
	wrap(n, &none);
	parse_bad("short", XSK_HDRS - 1, -XSK_BAD_SHORT);
	parse_bad("ipv6", wrap(n, &(struct knobs){ .ethertype = 0x86dd }), -XSK_BAD_ETH);
	parse_bad("vlan", wrap(n, &(struct knobs){ .ethertype = 0x8100 }), -XSK_BAD_ETH);
	parse_bad("ihl 4", wrap(n, &(struct knobs){ .ihl = 4 }), -XSK_BAD_IP);
	parse_bad("tcp", wrap(n, &(struct knobs){ .proto = 6 }), -XSK_BAD_IP);
	parse_bad("more fragments", wrap(n, &(struct knobs){ .frag = 0x2000 }), -XSK_BAD_IP);
	parse_bad("fragment offset", wrap(n, &(struct knobs){ .frag = 0x0001 }), -XSK_BAD_IP);
	parse_bad("total past the frame", wrap(n, &(struct knobs){ .tot_delta = 1 }), -XSK_BAD_IP);
	parse_bad("udp past the total", wrap(n, &(struct knobs){ .ulen_delta = 1 }), -XSK_BAD_UDP);
	parse_bad("udp under 8", wrap(n, &(struct knobs){ .ulen_delta = -(int)n - 1 }),
		  -XSK_BAD_UDP);
	len = wrap(n, &(struct knobs){ .ulen_delta = -(int)n + WP_FRAME_HDR + XSK_PREFIX - 1 });
	parse_bad("no room for the prefix", len, -XSK_BAD_FRAME);
	path_pkt(WP_FT_REQ, 1, 9, 16, 0, frag, 16);
	buf[42] = 'X';
	parse_bad("magic", wrap(n, &none), -XSK_BAD_FRAME);
	path_pkt(WP_FT_REQ, 1, 9, 16, 0, frag, 16);
	buf[42 + 4] = 1;
	parse_bad("version 1", wrap(n, &none), -XSK_BAD_FRAME);
	path_pkt(WP_FT_REQ, 1, 9, 16, 0, frag, 16);
	put32(buf + 42 + 24, XSK_PREFIX + 17);
	parse_bad("frame len", wrap(n, &none), -XSK_BAD_LEN);
	/* a frame the UDP length ends early: the header's len no longer fits */
	path_pkt(WP_FT_REQ, 1, 9, 16, 0, frag, 16);
	ret = xsk_parse(buf, wrap(n, &(struct knobs){ .ulen_delta = -1, .tot_delta = 0 }), &v);
	CHECK_EQ(ret, -XSK_BAD_LEN);
	printf("ok\n");
	return 0;
}
