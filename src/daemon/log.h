/* SPDX-License-Identifier: MIT */
/*
 * wirepathd's log: one line per event on stderr (journald adds the time
 * under systemd; --log-time adds it otherwise), with a level filter, and
 * the library's log hook routed here. wpd_log_rl rate-limits a key to one
 * line per second, counting what it suppressed.
 */
#ifndef WPD_LOG_H
#define WPD_LOG_H

#include <wirepath/wirepath.h>

void wpd_log_setup(enum wp_log_level level, int with_time);
/* The program name that starts each line (default "wirepathd"; tools built
 * on the daemon's code set their own: a static string). */
void wpd_log_prog(const char *name);
void wpd_log(enum wp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* At most one line per second for this key (a static string the caller
 * owns); the next line that passes says how many were suppressed. */
void wpd_log_rl(const char *key, enum wp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The library's hook (wp_set_log / wp_ctx_opts.log) into this log. */
void wpd_log_lib(void *arg, enum wp_log_level level, const char *msg);

#define wpd_err(...) wpd_log(WP_LOG_ERR, __VA_ARGS__)
#define wpd_warn(...) wpd_log(WP_LOG_WARN, __VA_ARGS__)
#define wpd_info(...) wpd_log(WP_LOG_INFO, __VA_ARGS__)
#define wpd_debug(...) wpd_log(WP_LOG_DEBUG, __VA_ARGS__)

#endif
