/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the wirepath commands (tools/util.c): a growable string
 * for JSON output, errno names, the log callback for tool contexts, strict
 * number parsing for flags and the one-line usage error. They depend on no
 * command, so any command file may include this without a cycle.
 */
#ifndef WP_TOOLS_UTIL_H
#define WP_TOOLS_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wirepath/wirepath.h"

/* Exit status for a bad flag or value (after one line that says what to do). */
#define EXIT_USAGE 2

/* -EAGAIN and -ENOBUFS from a send or a call are back-pressure, not failure. */
static inline int tool_backpressure(int rc)
{
	return rc == -EAGAIN || rc == -ENOBUFS;
}

/* A growable string; on allocation failure `oom` is set and appends are dropped. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal (quotes included); NULL gives null. */
void sb_json_str(struct sbuf *b, const char *s);
/* Append a JSON number; NaN and infinities give null. */
void sb_json_num(struct sbuf *b, double v);
void sb_free(struct sbuf *b);

/* "EOPNOTSUPP", or "E<n>" when glibc has no name. */
const char *tool_errno_name(int err);
/* A call's final status in words: library errno (< 0) or server status (> 0). */
const char *tool_status_str(int status, char *buf, size_t len);
/* The probe table as a JSON array of {name, ok, err, errno, error, detail}. */
void tool_probes_json(struct sbuf *b);
/* wp_ctx_opts.log for tools: "wirepath: <level>: msg" on stderr. */
void tool_log(void *arg, enum wp_log_level level, const char *msg);

/*
 * Parse numbers in flags. Each returns 0 or -EINVAL (not a number, trailing
 * junk, out of [min, max]).
 * - tool_parse_u64: plain decimal.
 * - tool_parse_size: bytes with an optional K/KiB/M/MiB/G/GiB suffix.
 * - tool_parse_secs: seconds, decimal fraction allowed ("0.3").
 */
int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int tool_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int tool_parse_secs(const char *s, double min, double max, double *out);
/* Parse "require" | "prefer" | "any". */
int tool_parse_select(const char *s, enum wp_select *out);

/*
 * One entry of a help listing: "  LEFT" and, from column `col`, HELP. Lines
 * of HELP after the first, and HELP under a LEFT too wide for the column,
 * start on a new line at `col`. Commands and options are listed with it.
 */
void tool_help_entry(FILE *f, int col, const char *left, const char *help);

/*
 * Report a bad flag or value: "wirepath CMD: <message>; see 'wirepath CMD
 * --help'" on stderr. Returns EXIT_USAGE so callers can `return usage_error()`.
 */
int tool_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
