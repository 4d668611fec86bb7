// SPDX-License-Identifier: MIT
/* wirepathd's log (log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"

static enum wp_log_level log_level = WP_LOG_INFO;
static int log_time;
static const char *log_prog = "wirepathd";

static const char *const level_name[] = { "error", "warn", "info", "debug" };

void wpd_log_setup(enum wp_log_level level, int with_time)
{
	log_level = level;
	log_time = with_time;
}

void wpd_log_prog(const char *name)
{
	log_prog = name;
}

static void log_line(enum wp_log_level level, const char *msg)
{
	char ts[40] = "";

	if (log_time) {
		struct timespec t;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &t);
		gmtime_r(&t.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ ", t.tv_nsec / 1000000);
	}
	fprintf(stderr, "%s%s: %s: %s\n", ts, log_prog, level_name[level], msg);
}

static void vlog(enum wp_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_line(level, msg);
}

void wpd_log(enum wp_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

/* A few keys are enough: the daemon's rate-limited lines are per kind of
 * event (accept errors, garbage from a child), not per peer. */
#define RL_KEYS 32

static struct {
	const char *key;
	time_t sec;
	unsigned long suppressed;
} rl[RL_KEYS];

void wpd_log_rl(const char *key, enum wp_log_level level, const char *fmt, ...)
{
	struct timespec now;
	unsigned i;
	va_list ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	for (i = 0; i < RL_KEYS && rl[i].key && rl[i].key != key; i++)
		;
	if (i < RL_KEYS) {
		if (!rl[i].key) {
			rl[i].key = key;
			rl[i].sec = now.tv_sec - 1;
		}
		if (rl[i].sec == now.tv_sec) {
			rl[i].suppressed++;
			return;
		}
		rl[i].sec = now.tv_sec;
	}
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (i < RL_KEYS && rl[i].suppressed) {
		size_t n = strlen(msg);

		snprintf(msg + n, sizeof(msg) - n, " (%lu more suppressed)", rl[i].suppressed);
		rl[i].suppressed = 0;
	}
	log_line(level, msg);
}

void wpd_log_lib(void *arg, enum wp_log_level level, const char *msg)
{
	if (level <= log_level)
		log_line(level, msg);
}
