// SPDX-License-Identifier: MIT
/*
 * Registered memory regions and buffer pools. Registration is made once per
 * region and cached: a range inside an already registered region gets that
 * region back with one more reference, so "register before every send" costs
 * a list walk, not a syscall and a page pin. The path decides what
 * registration means (uring: pinned and entered in the ring's buffer table;
 * tcp: bookkeeping), and regions registered before the path is chosen are
 * handed to it when it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "core.h"

struct wp_pool {
	struct wp_ctx *ctx;
	struct wp_mr *mr;
	uint8_t *base;
	size_t size, map_len;
	uint32_t count, navail;
	void **stack;
};

/* Random, so a peer cannot name regions it was not given. */
static uint32_t mr_key(void)
{
	uint32_t k = 0;

	while (!k) {
		if (getrandom(&k, sizeof(k), 0) != sizeof(k))
			k = (uint32_t)wp_now_ns() * 2654435761u;
	}
	return k;
}

struct wp_mr *wp_mr_by_id(struct wp_ctx *ctx, uint32_t id, uint32_t key)
{
	for (struct wp_mr *mr = ctx->mrs; mr; mr = mr->next)
		if (mr->id == id)
			return mr->exported && mr->key == key ? mr : NULL;
	return NULL;
}

struct wp_mr *wp_mr_find(struct wp_ctx *ctx, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (struct wp_mr *mr = ctx->mrs; mr; mr = mr->next)
		if (b >= mr->addr && b + len <= mr->addr + mr->len)
			return mr;
	return NULL;
}

static int mr_create(struct wp_ctx *ctx, void *addr, size_t len, bool strict, struct wp_mr **out);

int wp_mr_register(struct wp_ctx *ctx, void *addr, size_t len, struct wp_mr **out)
{
	struct wp_mr *mr;

	if (!addr || !len)
		return -EINVAL;
	mr = wp_mr_find(ctx, addr, len);
	if (mr) {
		mr->refs++;
		*out = mr;
		return 0;
	}
	return mr_create(ctx, addr, len, true, out);
}

/* strict: a backend refusal (say, beyond RLIMIT_MEMLOCK) fails the call;
 * otherwise the region stays unpinned (sends from it still work). */
static int mr_create(struct wp_ctx *ctx, void *addr, size_t len, bool strict, struct wp_mr **out)
{
	struct wp_mr *mr;
	int ret;

	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	mr->ctx = ctx;
	mr->addr = addr;
	mr->len = len;
	mr->refs = 1;
	mr->idx = -1;
	mr->memfd = -1;
	mr->id = ++ctx->next_mr_id;
	mr->key = mr_key();
	if (ctx->ops) {
		ret = ctx->ops->mem_register(ctx, mr);
		if (ret < 0 && strict) {
			free(mr);
			return ret;
		}
	}
	mr->next = ctx->mrs;
	ctx->mrs = mr;
	*out = mr;
	return 0;
}

/* The path just started: give it the regions registered before. */
void wp_mr_attach_all(struct wp_ctx *ctx)
{
	for (struct wp_mr *mr = ctx->mrs; mr; mr = mr->next)
		if (ctx->ops->mem_register(ctx, mr) < 0)
			wp_log(ctx, WP_LOG_WARN,
			       "region %p+%zu stays unregistered with %s (sends from it work, "
			       "without fixed buffers)",
			       (void *)mr->addr, mr->len, ctx->ops->name);
}

static void mr_free(struct wp_mr *mr)
{
	if (mr->memfd >= 0) {
		munmap(mr->addr, mr->len);
		close(mr->memfd);
	}
	free(mr);
}

int wp_mr_deregister(struct wp_mr *mr)
{
	struct wp_ctx *ctx;

	if (!mr)
		return 0;
	ctx = mr->ctx;
	/* The last reference: the path may still need the region (rdma:
	 * transfers in flight, peers holding its rkey). */
	if (mr->refs == 1 && ctx->ops && ctx->ops->mem_busy) {
		int ret = ctx->ops->mem_busy(ctx, mr);

		if (ret < 0)
			return ret;
	}
	if (--mr->refs)
		return 0;
	if (ctx->ops)
		ctx->ops->mem_unregister(ctx, mr);
	for (struct wp_mr **pp = &ctx->mrs; *pp; pp = &(*pp)->next) {
		if (*pp == mr) {
			*pp = mr->next;
			break;
		}
	}
	mr_free(mr);
	return 0;
}

int wp_mr_alloc(struct wp_ctx *ctx, size_t len, struct wp_mr **out)
{
	struct wp_mr *mr;
	void *p;
	int fd, ret;

	if (!len || len > (64ull << 30))
		return -EINVAL;
	fd = memfd_create("wirepath-mr", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		goto out_close;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto out_close;
	}
	/* A fresh mapping is not inside any registered region: a new one. */
	ret = mr_create(ctx, p, len, false, &mr);
	if (ret < 0)
		goto out_unmap;
	mr->memfd = fd;
	*out = mr;
	return 0;

out_unmap:
	munmap(p, len);
out_close:
	close(fd);
	return ret;
}

void *wp_mr_addr(const struct wp_mr *mr)
{
	return mr->addr;
}

size_t wp_mr_size(const struct wp_mr *mr)
{
	return mr->len;
}

int wp_mr_export(struct wp_mr *mr, struct wp_rkey *out)
{
	struct wp_ctx *ctx = mr->ctx;
	bool first = !mr->exported;

	mr->exported = true;
	if (out)
		*out = (struct wp_rkey){ .id = mr->id,
					 .key = mr->key,
					 .len = mr->len,
					 .flags = mr->memfd >= 0 ? WP_RKEY_SHARED : 0 };
	if (first && ctx->ops)
		ctx->ops->mr_exported(ctx, mr);
	return 0;
}

int wp_mr_is_pinned(const struct wp_mr *mr)
{
	return mr->idx >= 0;
}

void wp_mr_free_all(struct wp_ctx *ctx)
{
	while (ctx->mrs) {
		struct wp_mr *mr = ctx->mrs;

		ctx->mrs = mr->next;
		mr_free(mr);
	}
}

int wp_pool_create(struct wp_ctx *ctx, size_t size, uint32_t count, struct wp_pool **out)
{
	struct wp_pool *p;
	int ret;

	if (!size || !count || size > (1u << 30) || count > (1u << 20))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	p->size = (size + 63) & ~(size_t)63; /* cache-line aligned buffers */
	p->count = count;
	p->map_len = p->size * count;
	p->base = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (p->base == MAP_FAILED) {
		ret = -errno;
		goto out_free;
	}
	p->stack = malloc(count * sizeof(*p->stack));
	if (!p->stack) {
		ret = -ENOMEM;
		goto out_unmap;
	}
	for (uint32_t i = 0; i < count; i++)
		p->stack[i] = p->base + (size_t)(count - 1 - i) * p->size;
	p->navail = count;
	ret = wp_mr_register(ctx, p->base, p->map_len, &p->mr);
	if (ret < 0)
		goto out_stack;
	*out = p;
	return 0;

out_stack:
	free(p->stack);
out_unmap:
	munmap(p->base, p->map_len);
out_free:
	free(p);
	return ret;
}

void *wp_pool_get(struct wp_pool *p)
{
	return p->navail ? p->stack[--p->navail] : NULL;
}

void wp_pool_put(struct wp_pool *p, void *buf)
{
	/* A buffer from elsewhere, or one given back twice, would corrupt the
	 * pool silently: refuse it loudly instead. */
	if (!buf || (uint8_t *)buf < p->base || (uint8_t *)buf >= p->base + p->map_len ||
	    ((uint8_t *)buf - p->base) % p->size || p->navail == p->count) {
		wp_log(p->ctx, WP_LOG_ERR, "wp_pool_put: %p is not a buffer of this pool in use",
		       buf);
		return;
	}
	p->stack[p->navail++] = buf;
}

uint32_t wp_pool_avail(const struct wp_pool *p)
{
	return p->navail;
}

void wp_pool_destroy(struct wp_pool *p)
{
	if (!p)
		return;
	wp_mr_deregister(p->mr);
	free(p->stack);
	munmap(p->base, p->map_len);
	free(p);
}

/* ---- receive memory (wp_ctx_pools, wp_ep_pools) ------------------- */

/* Paths that copy from any memory: registration is bookkeeping only. */
int wp_no_mem_register(struct wp_ctx *ctx, struct wp_mr *mr)
{
	mr->idx = -1;
	return 0;
}

void wp_no_mem_unregister(struct wp_ctx *ctx, struct wp_mr *mr)
{
}

int wp_no_pools(const struct wp_ctx *ctx, const struct wp_ep *ep, struct wp_mem_range *out,
		uint32_t max)
{
	return 0;
}

int wp_ctx_pools(const struct wp_ctx *ctx, struct wp_mem_range *out, uint32_t max)
{
	if (!ctx || !ctx->ops || !ctx->bk)
		return 0;
	return ctx->ops->pools(ctx, NULL, out, max);
}

int wp_ep_pools(const struct wp_ep *ep, struct wp_mem_range *out, uint32_t max)
{
	/* Still answered after WP_EP_CLOSED: the memory stays mapped until the
	 * endpoint is freed, and that is when users unregister it. */
	if (!ep || !ep->ctx->ops)
		return 0;
	return ep->ctx->ops->pools(ep->ctx, ep, out, max);
}
