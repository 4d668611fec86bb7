// SPDX-License-Identifier: MIT
/*
 * Logging: the library never prints. A message goes to the callback of the
 * context it concerns (wp_ctx_opts.log) or, when there is no context (the
 * rules parser, the XDP loader, the probes) or the context has no callback,
 * to the process-wide hook (wp_set_log, as libxdp's libxdp_set_print).
 * Either is filtered by level before formatting, so a disabled message costs
 * one compare.
 *
 * The process hook may be set and used from any thread. A read-write lock
 * makes (fn, arg, level) one value: loggers hold it shared while the hook
 * runs, so once wp_set_log (exclusive) returns the previous hook is not
 * running and never runs again, and its arg may be freed. glibc's default
 * rwlock prefers readers, so a hook that itself calls into the library
 * (which may log again) cannot deadlock against a waiting wp_set_log.
 *
 * Rate-limited lines (wp_vlog_rl) are for what a peer can make happen at
 * will (refused accepts, timeouts, out of descriptors): one line per interval
 * per key, as the kernel's printk_ratelimit, and the next line says how many
 * were dropped, so a flood costs a counter, not a disk.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core.h"

static pthread_rwlock_t hook_lock = PTHREAD_RWLOCK_INITIALIZER;
static wp_log_fn hook_fn;
static void *hook_arg;
/* The hook's level, or -1 with no hook: read without the lock as a cheap
 * first filter (a stale value only costs or skips one message around a
 * wp_set_log); the lock-held copy decides. Written under hook_lock. */
static _Atomic int hook_level = -1;

wp_log_fn wp_set_log(wp_log_fn fn, void *arg, enum wp_log_level level)
{
	wp_log_fn prev;

	pthread_rwlock_wrlock(&hook_lock);
	prev = hook_fn;
	hook_fn = fn;
	hook_arg = arg;
	atomic_store_explicit(&hook_level, fn ? (int)level : -1, memory_order_relaxed);
	pthread_rwlock_unlock(&hook_lock);
	return prev;
}

void wp_vlog_global(enum wp_log_level lvl, const char *fmt, va_list ap)
{
	char buf[WP_LOG_LINE_MAX];

	if ((int)lvl > atomic_load_explicit(&hook_level, memory_order_relaxed))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	pthread_rwlock_rdlock(&hook_lock);
	if (hook_fn && (int)lvl <= atomic_load_explicit(&hook_level, memory_order_relaxed))
		hook_fn(hook_arg, lvl, buf);
	pthread_rwlock_unlock(&hook_lock);
}

void wp_log_global(enum wp_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wp_vlog_global(lvl, fmt, ap);
	va_end(ap);
}

void wp_log(struct wp_ctx *ctx, enum wp_log_level lvl, const char *fmt, ...)
{
	char buf[WP_LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (!ctx || !ctx->o.log) {
		wp_vlog_global(lvl, fmt, ap);
	} else if (lvl <= ctx->o.log_level) {
		vsnprintf(buf, sizeof(buf), fmt, ap);
		ctx->o.log(ctx->o.log_arg, lvl, buf);
	}
	va_end(ap);
}

uint64_t wp_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wp_vlog_rl(struct wp_ctx *ctx, struct wp_ratelimit *rl, uint64_t interval_ns,
	       enum wp_log_level lvl, const char *fmt, va_list ap)
{
	char buf[WP_LOG_LINE_MAX];
	uint64_t now = wp_coarse_ns();

	if (now < rl->next_ns) {
		rl->suppressed++;
		return 0;
	}
	rl->next_ns = now + interval_ns;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (rl->suppressed)
		wp_log(ctx, lvl, "%s (%llu more suppressed)", buf,
		       (unsigned long long)rl->suppressed);
	else
		wp_log(ctx, lvl, "%s", buf);
	rl->suppressed = 0;
	return 1;
}
