/* SPDX-License-Identifier: MIT */
/*
 * TLS on wirepathd's listeners (OpenSSL 3, libssl): a server context per
 * listener, a session per connection on its non-blocking socket. kTLS is
 * asked for (SSL_OP_ENABLE_KTLS); whether the kernel took the keys is
 * checked after each handshake (BIO_get_ktls_send/recv) and reported, with
 * the kernel's reason when it did not (the library's tls.ktls probe: this
 * kernel lacks the tls module).
 */
#ifndef WPD_TLS_H
#define WPD_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct wpd_tls_ctx;
struct wpd_tls;

int wpd_tls_ctx_create(const char *cert, const char *key, struct wpd_tls_ctx **out, char *why,
		       size_t len);
void wpd_tls_ctx_free(struct wpd_tls_ctx *t);
int wpd_tls_new(struct wpd_tls_ctx *t, int fd, struct wpd_tls **out);
void wpd_tls_free(struct wpd_tls *s);
/* 0 done, -EAGAIN in progress, -EPROTO failed (logged, rate-limited). */
int wpd_tls_handshake(struct wpd_tls *s);
int wpd_tls_established(const struct wpd_tls *s);
/* Like read/write: bytes, 0 = closed, -EAGAIN, or -errno. */
ssize_t wpd_tls_read(struct wpd_tls *s, void *buf, size_t len);
ssize_t wpd_tls_write(struct wpd_tls *s, const void *buf, size_t len);
/* 1 when the last operation waits for the socket to be writable. */
int wpd_tls_wants_write(const struct wpd_tls *s);
/* Handshakes done, and how many got kTLS in each direction (for /metrics). */
void wpd_tls_counts(unsigned long long *handshakes, unsigned long long *ktls_tx,
		    unsigned long long *ktls_rx, unsigned long long *failed);

#endif
