/* SPDX-License-Identifier: MIT */
/*
 * Native backends: a wirepath service (include/wirepath/service.h) reached
 * over any path by URI, driven from the daemon's loop. One context and one
 * endpoint per backend; reconnects with backoff when the service goes away
 * (calls in flight then fail with -ECONNRESET, new calls fail fast with
 * -ENOTCONN until it is back).
 */
#ifndef WPD_NATIVE_H
#define WPD_NATIVE_H

#include <stdint.h>

#include <wirepath/wirepath.h>

struct wpd_native;
struct wpd_loop;

int wpd_native_open(struct wpd_loop *l, const char *name, const char *uri, struct wpd_native **out);
void wpd_native_close(struct wpd_native *n);
/* 1 when connected. */
int wpd_native_up(const struct wpd_native *n);
const char *wpd_native_name(const struct wpd_native *n);
/* The path's explain string (what the library chose), or "" before. */
const char *wpd_native_explain(const struct wpd_native *n);
/* Start a call (wp_rpc_call semantics; callbacks run from the loop).
 * Returns 0, -ENOTCONN (not connected), or the library's error. */
int wpd_native_call(struct wpd_native *n, const struct wp_call_params *p, uint64_t *id);
int wpd_native_cancel(struct wpd_native *n, uint64_t id);

#endif
