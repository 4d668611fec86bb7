// SPDX-License-Identifier: MIT
/*
 * The shm region: the memfd behind one connection (sized, sealed, on 2 MiB
 * hugepages when the host has them reserved), where its parts lie, and this
 * side's heap, the part wp_ep_buf_alloc hands out so that a payload is written
 * once, in place, and read there by the peer. The heap's bookkeeping is
 * private memory: the peer cannot corrupt it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm.h"

/* ---- heap allocator ----------------------------------------------- */

static int heap_init(struct shm_ep *se)
{
	uint32_t n = (uint32_t)(se->g.heap / SHM_GRANULE);

	se->blk_len = calloc(n, sizeof(*se->blk_len));
	se->free_ext = malloc(sizeof(*se->free_ext));
	if (!se->blk_len || !se->free_ext)
		return -ENOMEM;
	*se->free_ext = (struct shm_ext){ 0, n, NULL };
	return 0;
}

static void *heap_alloc(struct shm_ep *se, size_t len)
{
	uint32_t n = (uint32_t)((len + SHM_GRANULE - 1) / SHM_GRANULE);

	for (struct shm_ext **pp = &se->free_ext; *pp; pp = &(*pp)->next) {
		struct shm_ext *e = *pp;
		uint32_t start = e->start;

		if (e->len < n)
			continue;
		e->start += n;
		e->len -= n;
		if (!e->len) {
			*pp = e->next;
			free(e);
		}
		se->blk_len[start] = n;
		return se->base + se->g.heap_off[se->side] + (uint64_t)start * SHM_GRANULE;
	}
	return NULL;
}

bool shm_in_heap(const struct shm_ep *se, const void *p, size_t len)
{
	const uint8_t *h = se->base + se->g.heap_off[se->side];
	const uint8_t *b = p;

	return b >= h && b < h + se->g.heap && len <= (size_t)(h + se->g.heap - b);
}

static int heap_free(struct shm_ep *se, void *p)
{
	uint64_t off;
	uint32_t start, n;
	struct shm_ext **pp, *prev = NULL, *e;

	if (!shm_in_heap(se, p, 1))
		return -EINVAL;
	off = (uint64_t)((uint8_t *)p - (se->base + se->g.heap_off[se->side]));
	if (off % SHM_GRANULE)
		return -EINVAL;
	start = (uint32_t)(off / SHM_GRANULE);
	n = se->blk_len[start];
	if (!n)
		return -EINVAL; /* not allocated, or freed twice */
	se->blk_len[start] = 0;
	/* Insert sorted by start, merging with both neighbours. */
	for (pp = &se->free_ext; *pp && (*pp)->start < start; pp = &(*pp)->next)
		prev = *pp;
	if (prev && prev->start + prev->len == start) {
		prev->len += n;
		e = prev;
	} else {
		e = malloc(sizeof(*e));
		if (!e) {
			se->blk_len[start] = n; /* leak the extent rather than corrupt */
			return -ENOMEM;
		}
		*e = (struct shm_ext){ start, n, *pp };
		*pp = e;
	}
	if (e->next && e->start + e->len == e->next->start) {
		struct shm_ext *nx = e->next;

		e->len += nx->len;
		e->next = nx->next;
		free(nx);
	}
	return 0;
}

/* ---- region ---------------------------------------------------------- */

int shm_memfd_sized(uint64_t size, bool huge)
{
	unsigned int fl = MFD_CLOEXEC | MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB | (21u << 26) : 0);
	int fd, err;

	WP_SYSCALL(WP_SYS_OTHER);
	fd = memfd_create("wirepath-shm", fl);
	if (fd < 0)
		return -errno;
	WP_SYSCALL(WP_SYS_OTHER);
	if (ftruncate(fd, (off_t)size) < 0)
		goto out_errno;
	/* Sealed size: a peer cannot shrink the region under us (SIGBUS). */
	WP_SYSCALL(WP_SYS_OTHER);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto out_errno;
	return fd;
out_errno:
	err = -errno;
	close(fd);
	return err;
}

void *shm_region_map(int fd, uint64_t size, bool populate)
{
	void *p;

	WP_SYSCALL(WP_SYS_OTHER);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd,
		 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Point the private state at the mapped region. */
int shm_ep_attach(struct wp_ep *ep, uint8_t *base)
{
	struct shm_ep *se = sep(ep);
	int tx = se->side, rx = 1 - se->side;
	int ret;

	se->base = base;
	se->hdr = (struct shm_hdr *)base;
	se->tx_ring = (struct shm_desc *)(base + se->g.ring_off[tx]);
	se->rx_ring = (struct shm_desc *)(base + se->g.ring_off[rx]);
	se->infl = calloc(se->g.slots, sizeof(*se->infl));
	if (!se->infl)
		return -ENOMEM;
	ret = heap_init(se);
	if (ret < 0)
		return ret;
	/* The peer's parts are read-only here: a bug of ours cannot scribble
	 * on what the peer owns (each side writes only its own ring, arena and
	 * heap, and the control block). */
	WP_SYSCALL(WP_SYS_OTHER);
	mprotect(base + se->g.ring_off[rx], shm_align_up((uint64_t)se->g.slots * 64, se->g.align),
		 PROT_READ);
	WP_SYSCALL(WP_SYS_OTHER);
	mprotect(base + se->g.arena_off[rx], shm_align_up(se->g.arena, se->g.align), PROT_READ);
	WP_SYSCALL(WP_SYS_OTHER);
	mprotect(base + se->g.heap_off[rx], shm_align_up(se->g.heap, se->g.align), PROT_READ);
	return 0;
}

/* Can this host back a region with 2 MiB pages? Tried for real, once. */
void shm_probe_huge(struct shm_ctx *sc)
{
	int fd = shm_memfd_sized(SHM_HUGE, true);
	void *p;

	if (fd < 0) {
		snprintf(sc->pages_why, sizeof(sc->pages_why), "hugetlb memfd: %s", strerror(-fd));
		return;
	}
	p = shm_region_map(fd, SHM_HUGE, true);
	if (!p) {
		int nr = -1;
		FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");

		if (f) {
			if (fscanf(f, "%d", &nr) != 1)
				nr = -1;
			fclose(f);
		}
		snprintf(sc->pages_why, sizeof(sc->pages_why),
			 "no free 2 MiB hugepage (vm.nr_hugepages=%d)", nr);
	} else {
		munmap(p, SHM_HUGE);
		sc->huge = true;
	}
	close(fd);
}

/* ---- what the core sees: wp_ep_buf_alloc buffers, memory ranges ---- */

void *shm_buf_alloc(struct wp_ep *ep, size_t len)
{
	struct shm_ep *se = sep(ep);

	if (!se->base || !len || len > ep->ctx->o.max_frame)
		return NULL;
	return heap_alloc(se, len);
}

void shm_buf_free(struct wp_ep *ep, void *buf)
{
	if (heap_free(sep(ep), buf) < 0)
		wp_log(ep->ctx, WP_LOG_ERR,
		       "wp_ep_buf_free: %p is not a live buffer of this endpoint's heap", buf);
}

/* Payloads arrive in the peer's arena or heap (read-only here: shm_ep_attach);
 * this side's heap is where wp_ep_buf_alloc buffers lie. */
int shm_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
	      uint32_t max)
{
	const struct shm_ep *se = ep ? sep(ep) : NULL;
	struct wp_mem_range r[3];
	int rx;

	if (!se || !se->base)
		return 0;
	rx = 1 - se->side;
	r[0] = (struct wp_mem_range){ se->base + se->g.arena_off[rx], se->g.arena,
				      WP_MEM_SHM_RX_ARENA, WP_MEM_READONLY };
	r[1] = (struct wp_mem_range){ se->base + se->g.heap_off[rx], se->g.heap, WP_MEM_SHM_RX_HEAP,
				      WP_MEM_READONLY };
	r[2] = (struct wp_mem_range){ se->base + se->g.heap_off[se->side], se->g.heap,
				      WP_MEM_SHM_TX_HEAP, 0 };
	for (uint32_t i = 0; i < 3 && i < max; i++)
		out[i] = r[i];
	return 3;
}
