// SPDX-License-Identifier: MIT
/* TLS for wirepathd's listeners (tls.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <wirepath/wirepath.h>

#include "daemon/log.h"
#include "daemon/tls.h"

struct wpd_tls_ctx {
	SSL_CTX *ctx;
};

struct wpd_tls {
	SSL *ssl;
	int established;
	int want_write;
};

static unsigned long long n_handshakes, n_ktls_tx, n_ktls_rx, n_failed;
static int ktls_reported;

static void ssl_why(char *why, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	/* Cut to fit: a long path and OpenSSL's reason may not both fit. */
	if (snprintf(why, len, "%s: %s", what, e ? buf : "unknown error") >= (int)len && len > 4)
		memcpy(why + len - 4, "...", 4);
	ERR_clear_error();
}

int wpd_tls_ctx_create(const char *cert, const char *key, struct wpd_tls_ctx **out, char *why,
		       size_t len)
{
	struct wpd_tls_ctx *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx) {
		ssl_why(why, len, "SSL_CTX_new");
		free(t);
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	/* Ask OpenSSL to hand the record layer to the kernel when it can
	 * (CONFIG_TLS, a cipher the kernel has); it silently stays in user
	 * space otherwise, so we check and report after each handshake. */
	SSL_CTX_set_options(t->ctx, SSL_OP_ENABLE_KTLS | SSL_OP_NO_RENEGOTIATION);
	/* Our output buffer grows with realloc between retries of a write. */
	SSL_CTX_set_mode(t->ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
		ssl_why(why, len, cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_why(why, len, key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_why(why, len, "the key does not match the certificate");
		goto fail;
	}
	*out = t;
	return 0;
fail:
	SSL_CTX_free(t->ctx);
	free(t);
	return -EINVAL;
}

void wpd_tls_ctx_free(struct wpd_tls_ctx *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

int wpd_tls_new(struct wpd_tls_ctx *t, int fd, struct wpd_tls **out)
{
	struct wpd_tls *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ssl = SSL_new(t->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
		SSL_free(s->ssl);
		free(s);
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_accept_state(s->ssl);
	*out = s;
	return 0;
}

void wpd_tls_free(struct wpd_tls *s)
{
	if (!s)
		return;
	if (s->established)
		SSL_shutdown(s->ssl); /* close_notify, best effort (non-blocking) */
	SSL_free(s->ssl);
	ERR_clear_error();
	free(s);
}

/* What the kernel did with the keys, said once per process. */
static void ktls_report(struct wpd_tls *s)
{
	int tx = BIO_get_ktls_send(SSL_get_wbio(s->ssl));
	int rx = BIO_get_ktls_recv(SSL_get_rbio(s->ssl));

	n_ktls_tx += tx > 0;
	n_ktls_rx += rx > 0;
	if (ktls_reported)
		return;
	ktls_reported = 1;
	if (tx > 0 || rx > 0) {
		wpd_info("TLS: kTLS on (%s%s%s): the kernel encrypts records", tx > 0 ? "tx" : "",
			 tx > 0 && rx > 0 ? "+" : "", rx > 0 ? "rx" : "");
		return;
	}
	const struct wp_probe_result *p = wp_probe_get("tls.ktls");

	wpd_info("TLS: kTLS off: the kernel did not take the keys; records are encrypted "
		 "in user space (%s: %s)",
		 p ? p->name : "tls.ktls",
		 p ? (p->ok ? "the kernel has TLS; OpenSSL chose not to (cipher or version)"
			    : p->detail)
		   : "probe not built");
}

static int tls_result(struct wpd_tls *s, int ret)
{
	int e = SSL_get_error(s->ssl, ret);

	s->want_write = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->want_write = 1;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno ? -errno : -ECONNRESET;
	default: {
		char why[256];

		ssl_why(why, sizeof(why), "TLS");
		wpd_log_rl("tls", WP_LOG_INFO, "%s", why);
		return -EPROTO;
	}
	}
}

int wpd_tls_handshake(struct wpd_tls *s)
{
	int ret;

	if (s->established)
		return 0;
	ret = SSL_do_handshake(s->ssl);
	if (ret == 1) {
		s->established = 1;
		s->want_write = 0;
		n_handshakes++;
		ktls_report(s);
		return 0;
	}
	ret = tls_result(s, ret);
	if (ret != -EAGAIN) {
		n_failed++;
		return ret ? ret : -EPROTO;
	}
	return ret;
}

int wpd_tls_established(const struct wpd_tls *s)
{
	return s->established;
}

ssize_t wpd_tls_read(struct wpd_tls *s, void *buf, size_t len)
{
	size_t got = 0;
	int ret = SSL_read_ex(s->ssl, buf, len, &got);

	if (ret == 1)
		return (ssize_t)got;
	return tls_result(s, ret);
}

ssize_t wpd_tls_write(struct wpd_tls *s, const void *buf, size_t len)
{
	size_t put = 0;
	int ret = SSL_write_ex(s->ssl, buf, len, &put);

	if (ret == 1) {
		s->want_write = 0;
		return (ssize_t)put;
	}
	return tls_result(s, ret);
}

int wpd_tls_wants_write(const struct wpd_tls *s)
{
	return s->want_write;
}

void wpd_tls_counts(unsigned long long *handshakes, unsigned long long *ktls_tx,
		    unsigned long long *ktls_rx, unsigned long long *failed)
{
	*handshakes = n_handshakes;
	*ktls_tx = n_ktls_tx;
	*ktls_rx = n_ktls_rx;
	*failed = n_failed;
}
