// SPDX-License-Identifier: MIT
/*
 * The shm setup messages as bytes: validation (shm_setup_parse) and encoding
 * (shm_setup_encode), and the geometry bounds both sides judge a region by.
 * Pure functions of their input (no descriptors, no state, no syscalls), so
 * that tests/fuzz/fuzz_shm_hello.c can drive them alone: everything the
 * hostile peer controls in a setup message goes through here before setup.c
 * looks at a field. What the descriptors attached to a message must be is
 * setup.c's to check (it holds them).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "wirepath/wirepath.h"
#include "layout.h"

/* Lay the region out. Returns 0 or -EINVAL for a geometry out of bounds. */
int shm_geom_compute(struct shm_geom *g, uint32_t slots, uint64_t arena, uint64_t heap,
		     uint64_t align)
{
	if (slots < 8 || slots > (1u << 20) || (slots & (slots - 1)) ||
	    (align != 4096 && align != SHM_HUGE) || arena < 4096 || arena > (1ull << 30) ||
	    heap < SHM_GRANULE || heap > (4ull << 30) || arena % 64 || heap % SHM_GRANULE)
		return -EINVAL;
	shm_geom_layout(g, slots, arena, heap, align);
	return 0;
}

static int refuse(int *reason, const char **why, int r, const char *w)
{
	*reason = r;
	*why = w;
	return -EPROTO;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int shm_setup_parse(const void *buf, size_t n, unsigned want, struct shm_setup *out, int *reason,
		    const char **why)
{
	bool has_nonce, has_proof;
	uint32_t magic;
	uint16_t version, type;

	memset(out, 0, sizeof(*out));
	if (n < 8)
		return refuse(reason, why, WP_SETUP_GARBAGE, "truncated setup message");
	memcpy(&magic, buf, 4);
	memcpy(&version, (const uint8_t *)buf + 4, 2);
	memcpy(&type, (const uint8_t *)buf + 6, 2);
	if (magic != SHM_MAGIC)
		return refuse(reason, why, WP_SETUP_GARBAGE, "not a wirepath shm setup message");
	if (version != SHM_VERSION && version != SHM_VERSION_AUTH)
		return refuse(reason, why, WP_SETUP_VERSION, "unsupported shm setup version");
	if (type >= 32 || !(want & SHM_WANT(type)))
		return refuse(reason, why, WP_SETUP_GARBAGE,
			      "setup message of the wrong type here");
	out->version = version;
	out->type = type;
	if (version == SHM_VERSION) {
		struct shm_wire_msg m;

		if (type > SHM_MSG_MR)
			return refuse(reason, why, WP_SETUP_GARBAGE,
				      "setup message of the wrong type here");
		if (n != sizeof(m))
			return refuse(reason, why, WP_SETUP_GARBAGE,
				      "truncated or oversized setup message");
		memcpy(&m, buf, sizeof(m));
		if (m.pad)
			return refuse(reason, why, WP_SETUP_GARBAGE, "reserved bytes not zero");
		out->status = m.status;
		out->slots = m.slots;
		out->arena = m.arena;
		out->heap = m.heap;
		out->align = m.align;
		out->size = m.size;
		out->pid = m.pid;
		out->mr_id = m.mr_id;
		out->mr_key = m.mr_key;
		out->mr_len = m.mr_len;
	} else {
		struct shm_auth_msg m;

		if (type < SHM_MSG_AUTH_HELLO || type > SHM_MSG_AUTH_ACK)
			return refuse(reason, why, WP_SETUP_GARBAGE,
				      "setup message of the wrong type here");
		if (n != sizeof(m))
			return refuse(reason, why, WP_SETUP_GARBAGE,
				      "truncated or oversized setup message");
		memcpy(&m, buf, sizeof(m));
		if (m.reserved)
			return refuse(reason, why, WP_SETUP_GARBAGE, "reserved bytes not zero");
		if (type != SHM_MSG_AUTH_ACK && m.status)
			return refuse(reason, why, WP_SETUP_GARBAGE, "status outside an ACK");
		/* Each field only where it belongs, so every accepted message
		 * has one encoding (shm_setup_encode gives the bytes back). */
		has_nonce = type == SHM_MSG_AUTH_HELLO || type == SHM_MSG_AUTH_CHALLENGE;
		has_proof = type == SHM_MSG_AUTH_CHALLENGE || type == SHM_MSG_AUTH_REGION;
		if (all_zero(m.nonce, sizeof(m.nonce)) == has_nonce)
			return refuse(reason, why, WP_SETUP_GARBAGE,
				      has_nonce ? "no nonce" : "a nonce where none belongs");
		if (all_zero(m.proof, sizeof(m.proof)) == has_proof)
			return refuse(reason, why, WP_SETUP_GARBAGE,
				      has_proof ? "no proof" : "a proof where none belongs");
		if (type != SHM_MSG_AUTH_REGION &&
		    (m.slots || m.arena || m.heap || m.align || m.size))
			return refuse(reason, why, WP_SETUP_GARBAGE, "geometry where none belongs");
		if (type != SHM_MSG_AUTH_ACK && !m.tenant)
			return refuse(reason, why, WP_SETUP_GARBAGE, "tenant 0 cannot prove a key");
		out->status = m.status;
		out->tenant = m.tenant;
		out->slots = m.slots;
		out->arena = m.arena;
		out->heap = m.heap;
		out->align = m.align;
		out->size = m.size;
		out->pid = m.pid;
		memcpy(out->nonce, m.nonce, sizeof(m.nonce));
		memcpy(out->proof, m.proof, sizeof(m.proof));
	}
	if (type == SHM_MSG_HELLO || type == SHM_MSG_AUTH_REGION) {
		if (shm_geom_compute(&out->g, out->slots, out->arena, out->heap, out->align) < 0 ||
		    out->g.size != out->size)
			return refuse(reason, why, WP_SETUP_REGION,
				      "region geometry out of bounds");
	}
	if (type == SHM_MSG_ACK || type == SHM_MSG_AUTH_ACK) {
		if (out->status > 0 || out->status < -4095)
			return refuse(reason, why, WP_SETUP_GARBAGE, "status is not 0 or -errno");
	}
	return 0;
}

size_t shm_setup_encode(const struct shm_setup *s, void *buf)
{
	if (s->version == SHM_VERSION) {
		struct shm_wire_msg m = { .magic = SHM_MAGIC,
					  .version = SHM_VERSION,
					  .type = s->type,
					  .status = s->status,
					  .slots = s->slots,
					  .arena = s->arena,
					  .heap = s->heap,
					  .align = s->align,
					  .size = s->size,
					  .pid = s->pid,
					  .mr_id = s->mr_id,
					  .mr_key = s->mr_key,
					  .mr_len = s->mr_len };

		memcpy(buf, &m, sizeof(m));
		return sizeof(m);
	} else {
		struct shm_auth_msg m = { .magic = SHM_MAGIC,
					  .version = SHM_VERSION_AUTH,
					  .type = s->type,
					  .status = s->status,
					  .tenant = s->tenant,
					  .slots = s->slots,
					  .pid = s->pid,
					  .arena = s->arena,
					  .heap = s->heap,
					  .align = s->align,
					  .size = s->size };

		memcpy(m.nonce, s->nonce, sizeof(m.nonce));
		memcpy(m.proof, s->proof, sizeof(m.proof));
		memcpy(buf, &m, sizeof(m));
		return sizeof(m);
	}
}
