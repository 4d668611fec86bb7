// SPDX-License-Identifier: MIT
/*
 * The GPU feed's registrations (feed.h has the whole design): host memory
 * pinned and mapped for the device, kept as a sorted array of ranges with
 * no partial overlaps. Registering inside a registered range takes a
 * reference (the registration cache); a range with reads in flight (busy)
 * refuses to go. Receive pools (wp_gpu_register_pools) and the feed's own
 * pinned memory (wp_gpu_host_alloc) are ranges like any other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/feed.h"

/* Index of the last range starting at or below p, or -1. */
static int reg_floor(const struct wp_gpu_feed *f, const uint8_t *p)
{
	int lo = 0, hi = (int)f->nregs - 1, ans = -1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;

		if (f->regs[mid].addr <= p) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

/* The range holding all of [p, p+len), or NULL. */
struct reg *wpf_reg_find(struct wp_gpu_feed *f, const void *p, size_t len)
{
	const uint8_t *b = p;
	int i = reg_floor(f, b);

	if (i < 0)
		return NULL;
	if (len > f->regs[i].len || b - f->regs[i].addr > (ptrdiff_t)(f->regs[i].len - len))
		return NULL;
	return &f->regs[i];
}

static int reg_insert(struct wp_gpu_feed *f, void *addr, size_t len, bool readonly, bool owned)
{
	uint8_t *a = addr;
	struct reg *r;
	uint64_t dev = 0;
	int i, ret;

	if (f->nregs == f->regs_cap) {
		uint32_t cap = f->regs_cap ? f->regs_cap * 2 : 16;
		struct reg *n = realloc(f->regs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		f->regs = n;
		f->regs_cap = cap;
	}
	if (!owned) {
		ret = f->ops->host_register(f->bk, addr, len, readonly);
		if (ret < 0) {
			wp_log(f->ctx, WP_LOG_ERR, "gpu feed: cannot pin %zu bytes at %p: %s", len,
			       addr, f->ops->last_error(f->bk));
			return ret;
		}
	}
	ret = f->ops->host_devptr(f->bk, addr, &dev);
	if (ret < 0) {
		wp_log(f->ctx, WP_LOG_ERR, "gpu feed: no device alias for %p: %s", addr,
		       f->ops->last_error(f->bk));
		if (!owned)
			f->ops->host_unregister(f->bk, addr);
		return ret;
	}
	i = reg_floor(f, a) + 1;
	memmove(&f->regs[i + 1], &f->regs[i], (f->nregs - (uint32_t)i) * sizeof(*r));
	r = &f->regs[i];
	*r = (struct reg){ .addr = a, .len = len, .dev = dev, .refs = 1, .owned = owned };
	f->nregs++;
	f->st.regs = f->nregs;
	f->st.reg_bytes += len;
	return 0;
}

int wp_gpu_register(struct wp_gpu_feed *f, void *addr, size_t len, uint32_t flags)
{
	uint8_t *a = addr;
	struct reg *r;
	int i;

	if (!addr || !len || (uintptr_t)a + len < (uintptr_t)a)
		return -EINVAL;
	r = wpf_reg_find(f, addr, len);
	if (r) {
		/* Inside a registered range: the registration cache. */
		r->refs++;
		return 0;
	}
	/* Partial overlap with the range below or the one above. */
	i = reg_floor(f, a + len - 1);
	if (i >= 0 && f->regs[i].addr + f->regs[i].len > a)
		return -EEXIST;
	return reg_insert(f, addr, len, flags & WP_MEM_READONLY, false);
}

void wpf_reg_remove(struct wp_gpu_feed *f, struct reg *r)
{
	uint32_t i = (uint32_t)(r - f->regs);

	if (r->owned)
		f->ops->host_free(f->bk, r->addr);
	else
		f->ops->host_unregister(f->bk, r->addr);
	f->st.reg_bytes -= r->len;
	memmove(&f->regs[i], &f->regs[i + 1], (f->nregs - i - 1) * sizeof(*r));
	f->nregs--;
	f->st.regs = f->nregs;
}

int wp_gpu_unregister(struct wp_gpu_feed *f, void *addr)
{
	struct reg *r = addr ? wpf_reg_find(f, addr, 1) : NULL;

	if (!r)
		return -ENOENT;
	if (r->refs == 1 && r->busy)
		return -EBUSY;
	if (--r->refs == 0)
		wpf_reg_remove(f, r);
	return 0;
}

static int pools_of(struct wp_gpu_feed *f, struct wp_ep *ep, struct wp_mem_range *r, uint32_t max)
{
	int n = ep ? wp_ep_pools(ep, r, max) : wp_ctx_pools(f->ctx, r, max);

	return n > (int)max ? (int)max : n;
}

/*
 * What can be pinned is pinned: a range the driver refuses (say, read-only
 * memory on a device without cudaHostRegisterReadOnly) only means payloads
 * received there are staged, which is logged, not fatal.
 */
int wp_gpu_register_pools(struct wp_gpu_feed *f, struct wp_ep *ep)
{
	struct wp_mem_range r[8];
	int n = pools_of(f, ep, r, 8), done = 0, err = 0, ret;

	for (int i = 0; i < n; i++) {
		if (!r[i].len)
			continue;
		ret = wp_gpu_register(f, r[i].addr, r[i].len, r[i].flags);
		if (ret < 0) {
			wp_log(f->ctx, WP_LOG_WARN,
			       "gpu feed: receive pool (kind %u, %zu bytes%s) not registered: %s; "
			       "payloads received there are staged",
			       r[i].kind, r[i].len,
			       r[i].flags & WP_MEM_READONLY ? ", read-only" : "", strerror(-ret));
			err = ret;
			continue;
		}
		done++;
	}
	return done || !err ? done : err;
}

int wp_gpu_unregister_pools(struct wp_gpu_feed *f, struct wp_ep *ep)
{
	struct wp_mem_range r[8];
	int n = pools_of(f, ep, r, 8), ret = 0;

	for (int i = 0; i < n; i++) {
		int e;

		if (!r[i].len)
			continue;
		e = wp_gpu_unregister(f, r[i].addr);
		/* -ENOENT: a range register_pools could not pin. */
		if (e < 0 && e != -ENOENT && !ret)
			ret = e;
	}
	return ret;
}

void *wp_gpu_host_alloc(struct wp_gpu_feed *f, size_t len)
{
	void *p = NULL;

	if (!len || f->ops->host_alloc(f->bk, len, &p) < 0)
		return NULL;
	if (reg_insert(f, p, len, false, true) < 0) {
		f->ops->host_free(f->bk, p);
		return NULL;
	}
	return p;
}

void wp_gpu_host_free(struct wp_gpu_feed *f, void *p)
{
	struct reg *r = p ? wpf_reg_find(f, p, 1) : NULL;

	if (!r || !r->owned || r->addr != p) {
		wp_log(f->ctx, WP_LOG_ERR, "wp_gpu_host_free: %p is not from wp_gpu_host_alloc", p);
		return;
	}
	if (r->busy) {
		wp_log(f->ctx, WP_LOG_ERR, "wp_gpu_host_free: %p is still being read by the GPU",
		       p);
		return;
	}
	wpf_reg_remove(f, r);
}
