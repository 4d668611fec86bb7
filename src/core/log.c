// SPDX-License-Identifier: MIT
/*
 * Logging: the library never prints. Messages go to the callback the user
 * set in wp_ctx_opts (or nowhere), filtered by level before formatting so a
 * disabled debug message costs one compare.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core.h"

void wp_log(struct wp_ctx *ctx, enum wp_log_level lvl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!ctx || !ctx->o.log || lvl > ctx->o.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ctx->o.log(ctx->o.log_arg, lvl, buf);
}
