// SPDX-License-Identifier: MIT
/*
 * The kTLS probe (`wirepath probe`: tls.ktls, tls.ktls_tx). Frame
 * authentication v2 offers confidentiality with TLS 1.3-style records; where
 * the kernel has kTLS those records could be sealed by the kernel on send
 * (and on zero-copy paths, by the NIC). A header proves nothing about the
 * running kernel, so this makes the real attempt: a connected loopback TCP
 * pair, setsockopt(SOL_TCP, TCP_ULP, "tls") on one end, and, when the kernel
 * takes the ULP, setsockopt(SOL_TLS, TLS_TX) with a TLS 1.3 AES-256-GCM
 * crypto_info keyed with random bytes (nothing is ever sent with it). The
 * errno each step got is reported as is: ENOENT from TCP_ULP means the
 * kernel has no "tls" ULP (CONFIG_TLS off, or the tls module not loadable).
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/crypto.h"
#include "core/probe.h"

#ifndef SOL_TLS
#define SOL_TLS 282 /* glibc headers before 2.34 lack it; the kernel's value */
#endif

/* A connected loopback TCP pair in fd[0] (client) and fd[1] (server).
 * Returns 0 or -errno (what failed goes to *what). */
static int tcp_pair(int fd[2], const char **what)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l, ret;

	fd[0] = fd[1] = -1;
	*what = "socket";
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	*what = "listen on 127.0.0.1";
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto out_errno;
	*what = "socket";
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd[0] < 0)
		goto out_errno;
	*what = "connect to 127.0.0.1";
	if (connect(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out_errno;
	*what = "accept";
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd[1] < 0)
		goto out_errno;
	close(l);
	return 0;

out_errno:
	ret = -errno;
	if (fd[0] >= 0)
		close(fd[0]);
	fd[0] = -1;
	close(l);
	return ret;
}

/* TLS_TX with a TLS 1.3 AES-256-GCM key (random: it never protects data). */
static int ktls_tx(int fd)
{
	struct tls12_crypto_info_aes_gcm_256 ci;
	int ret;

	memset(&ci, 0, sizeof(ci));
	ci.info.version = TLS_1_3_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_256;
	ret = wp_auth_random(ci.key, sizeof(ci.key));
	if (ret == 0)
		ret = wp_auth_random(ci.iv, sizeof(ci.iv));
	if (ret == 0)
		ret = wp_auth_random(ci.salt, sizeof(ci.salt));
	if (ret == 0 && setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) < 0)
		ret = -errno;
	memset(&ci, 0, sizeof(ci));
	return ret;
}

void wp_ktls_probe(void)
{
	const char *what;
	int fd[2], ret;

	ret = tcp_pair(fd, &what);
	if (ret < 0) {
		wp_probe_add("tls.ktls", ret,
			     "could not set up the loopback TCP pair to try it on (%s)", what);
		return;
	}
	if (setsockopt(fd[0], SOL_TCP, TCP_ULP, "tls", 3) < 0) {
		ret = -errno;
		wp_probe_add("tls.ktls", ret,
			     "TCP_ULP \"tls\" on loopback TCP: %s; confidentiality uses "
			     "user-space TLS 1.3-style records",
			     ret == -ENOENT ? "no tls ULP (CONFIG_TLS off or its module absent)"
					    : "refused");
		goto out_close;
	}
	wp_probe_add("tls.ktls", 0, "TCP_ULP \"tls\" accepted on a connected loopback TCP socket");
	ret = ktls_tx(fd[0]);
	wp_probe_add("tls.ktls_tx", ret, "SOL_TLS TLS_TX, TLS 1.3 AES-256-GCM: %s",
		     ret == 0 ? "the kernel seals records on send"
			      : "refused; records are sealed in user space");
out_close:
	close(fd[0]);
	close(fd[1]);
}
