// SPDX-License-Identifier: MIT
/*
 * What parsing one request costs in wirepathd's HTTP parser
 * (src/daemon/http.c): a typical OpenAI chat request (a 1 KiB JSON body,
 * the headers the openai npm client sends), with Content-Length and
 * chunked, fed whole, then wpd_http_next; and writing the response head.
 * Thread CPU time, one thread. A one-off program: run it by hand, niced.
 *
 *   nice build/http_cost [REQUESTS]     (default 500000)
 *
 * Prints one JSON line: ns per request each way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/buf.h"
#include "daemon/http.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static const char head[] = "POST /v1/chat/completions HTTP/1.1\r\n"
			   "Host: 127.0.0.1:8080\r\n"
			   "Accept: application/json\r\n"
			   "Content-Type: application/json\r\n"
			   "User-Agent: OpenAI/JS 5.23.2\r\n"
			   "X-Stainless-Lang: js\r\n"
			   "X-Stainless-Package-Version: 5.23.2\r\n"
			   "X-Stainless-OS: Linux\r\n"
			   "X-Stainless-Arch: x64\r\n"
			   "X-Stainless-Runtime: node\r\n"
			   "X-Stainless-Runtime-Version: v18.19.0\r\n"
			   "Authorization: Bearer sk-0123456789abcdef0123456789abcdef\r\n"
			   "X-Stainless-Retry-Count: 0\r\n"
			   "Connection: keep-alive\r\n";

static double run(const char *req, size_t len, long n)
{
	struct wpd_http_parser p;
	double t0;

	wpd_http_init(&p, NULL);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		struct wpd_http_req *r;
		size_t used;

		if (wpd_http_feed(&p, req, len, &used, &r) != 1 || used != len ||
		    r->body_len != 1024) {
			fprintf(stderr, "http_cost: the request did not parse: %s\n",
				p.why ? p.why : "incomplete");
			exit(1);
		}
		wpd_http_next(&p);
	}
	t0 = (now_ns() - t0) / (double)n;
	wpd_http_fini(&p);
	return t0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 500000;
	struct wpd_buf cl = { 0 }, ch = { 0 }, out = { 0 };
	char body[1024];
	double t_cl, t_ch, t_head, t0;

	if (n < 1000)
		n = 1000;
	memset(body, 'a', sizeof(body));
	memcpy(body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"", 51);
	memcpy(body + sizeof(body) - 4, "\"}]}", 4);
	wpd_buf_adds(&cl, head);
	wpd_buf_addf(&cl, "Content-Length: %zu\r\n\r\n", sizeof(body));
	wpd_buf_add(&cl, body, sizeof(body));
	wpd_buf_adds(&ch, head);
	wpd_buf_adds(&ch, "Transfer-Encoding: chunked\r\n\r\n");
	for (size_t off = 0; off < sizeof(body); off += 256) { /* 4 chunks */
		wpd_buf_addf(&ch, "%x\r\n", 256);
		wpd_buf_add(&ch, body + off, 256);
		wpd_buf_adds(&ch, "\r\n");
	}
	wpd_buf_adds(&ch, "0\r\n\r\n");

	t_cl = run(cl.p, cl.len, n);
	t_ch = run(ch.p, ch.len, n);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		wpd_http_head(&out, 200, "text/event-stream", -1, 1, "Cache-Control: no-cache\r\n");
		if (out.len > 60000)
			wpd_buf_reset(&out);
	}
	t_head = (now_ns() - t0) / (double)n;
	printf("{\"requests\":%ld,\"request_bytes\":%zu,\"content_length_ns\":%.0f,"
	       "\"chunked_ns\":%.0f,\"response_head_ns\":%.0f}\n",
	       n, cl.len, t_cl, t_ch, t_head);
	wpd_buf_free(&cl);
	wpd_buf_free(&ch);
	wpd_buf_free(&out);
	return 0;
}
