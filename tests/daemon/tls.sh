#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS at the edge (OpenSSL 3): a self-signed certificate made here, curl
# over https (streaming included), a plain-HTTP client on the TLS port
# refused, and the kTLS report: whether the kernel took the keys, and the
# kernel's reason when it did not (this kernel has no tls module).
. "$(dirname "$0")/lib.sh" "$1"
command -v openssl >/dev/null || skip "openssl (the command) not installed"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
	-days 1 -subj /CN=localhost >/dev/null 2>&1 || wpd_fail "openssl req"
wpd_serve svc "shm://@wpd-test-$$-t" --token-text "secure words"
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
    tls: {cert: $T/cert.pem, key: $T/key.pem}
auth: none
backends:
  - {name: local, native: "shm://@wpd-test-$$-t"}
models:
  - {name: wp-stub, backend: local}
CONF
port=$(sed -n 's/.*ready: https:\/\/[^ ]* port \([0-9]*\).*/\1/p' "$WPD_LOG" | head -n 1)
[ -n "$port" ] || wpd_fail "no https listener in the log"
U="https://127.0.0.1:$port"
for _ in $(seq 100); do [ "$(curl -sk "$U/readyz")" = ready ] && break; sleep 0.05; done
[ "$(curl -sk "$U/healthz")" = ok ] || wpd_fail "https healthz"
curl -skN "$U/v1/chat/completions" -o "$T/s" \
	-d '{"model":"wp-stub","stream":true,"stream_options":{"include_usage":true},"max_tokens":4,"messages":[{"role":"user","content":"x"}]}'
python3 "$(dirname "$0")/check_sse.py" "$T/s" chat 1 4 "secure words secure words" || wpd_fail "stream over TLS"
# Plain HTTP on the TLS port: the handshake fails, the connection closes.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$code" = 000 ] || wpd_fail "plain HTTP on the TLS port got $code"
grep -q "TLS: kTLS" "$WPD_LOG" || wpd_fail "no kTLS report"
ok "$(grep -o 'TLS: kTLS.*' "$WPD_LOG" | head -n 1)"
curl -sk "$U/metrics" | grep -q '^wirepathd_tls_handshakes_total [1-9]' || wpd_fail "handshakes not counted"
echo PASS
