// SPDX-License-Identifier: MIT
/*
 * A model service written against libwirepath's public API only: an "echo
 * model" that streams the prompt back one word per token. It implements
 * the two methods wirepathd needs for chat and completions
 * (include/wirepath/service.h): WP_SVC_MODELS and WP_SVC_GENERATE.
 *
 * Run it, then point wirepathd at it as a native backend:
 *
 *   ./build/examples/model_service shm://@echo-model echo
 *
 *   # wirepathd's config (docs/daemon.md, "Configuration", has every key)
 *   backends:
 *     - name: echo
 *       native: shm://@echo-model
 *   models:
 *     - name: echo
 *       backend: echo
 *
 *   curl -N http://127.0.0.1:8080/v1/chat/completions -H 'Authorization: Bearer KEY' \
 *        -d '{"model":"echo","stream":true,"messages":[{"role":"user","content":"hi there"}]}'
 *
 * Any URI works (tcp://127.0.0.1:7100, uring://127.0.0.1:7100). One thread
 * drives one context; the handler answers at once, each word a TEXT chunk,
 * then the FINISH chunk with the reason and the token counts. A real model
 * would produce tokens later, from its own loop, with wp_call_stream on the
 * call handle it kept (tools/svc.c paces tokens that way).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <wirepath/service.h>
#include <wirepath/wirepath.h>

#define DEFAULT_MAX_TOKENS 256

static const char *model = "echo";
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void on_models(void *arg, struct wp_call *call, struct wp_msg *req)
{
	/* Model ids separated by '\n'; no done callback: the library copies it. */
	wp_call_reply(call, model, strlen(model), NULL, NULL);
}

static void on_generate(void *arg, struct wp_call *call, struct wp_msg *req)
{
	struct wp_svc_finish fin;
	struct wp_svc_req r;
	uint32_t max, words = 0, sent = 0, i = 0, reason = WP_SVC_FINISH_STOP;
	char tok[1 + 1 + 256]; /* type byte, a space, the word (long words are cut) */

	if (wp_svc_req_parse(req->data, req->len, &r) < 0) {
		wp_call_error(call, EINVAL, "malformed generate request");
		return;
	}
	if (r.h.model_len &&
	    (r.h.model_len != strlen(model) || memcmp(r.model, model, r.h.model_len))) {
		wp_call_error(call, ENOENT, "unknown model");
		return;
	}
	max = r.h.max_tokens ? r.h.max_tokens : DEFAULT_MAX_TOKENS;
	while (i < r.h.prompt_len) {
		uint32_t start, n, k;

		while (i < r.h.prompt_len && is_space(r.prompt[i]))
			i++;
		if (i == r.h.prompt_len)
			break;
		start = i;
		while (i < r.h.prompt_len && !is_space(r.prompt[i]))
			i++;
		words++; /* prompt_tokens: whitespace-separated words */
		if (sent == max) {
			reason = WP_SVC_FINISH_LENGTH;
			continue;
		}
		n = i - start < 256 ? i - start : 256;
		k = 0;
		tok[k++] = WP_SVC_CHUNK_TEXT;
		if (sent)
			tok[k++] = ' ';
		memcpy(tok + k, r.prompt + start, n);
		/* Copied (no done callback), so tok can be reused at once. The
		 * transmit queue is bounded: a full one is back-pressure; this
		 * simple service gives up rather than keep the rest for later. */
		if (wp_call_stream(call, tok, k + n, NULL, NULL) < 0) {
			wp_call_error(call, EAGAIN, "output queue full");
			return;
		}
		sent++;
	}
	wp_svc_finish_init(&fin, reason, words, sent);
	if (wp_call_stream(call, &fin, sizeof(fin), NULL, NULL) < 0) {
		wp_call_error(call, EAGAIN, "output queue full");
		return;
	}
	wp_call_end(call, 0);
}

int main(int argc, char **argv)
{
	struct wp_ctx_opts o;
	struct wp_ctx *ctx;
	struct wp_ep *l;
	char uri[256];
	int rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s URI [MODEL]   (e.g. shm://@echo-model echo)\n", argv[0]);
		return 2;
	}
	if (argc == 3)
		model = argv[2];
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE; /* the path asked for, or a clear error */
	rc = wp_ctx_create(&o, &ctx);
	if (rc < 0) {
		fprintf(stderr, "model_service: wp_ctx_create: %s\n", strerror(-rc));
		return 1;
	}
	if ((rc = wp_rpc_register(ctx, WP_SVC_MODELS, on_models, NULL)) < 0 ||
	    (rc = wp_rpc_register(ctx, WP_SVC_GENERATE, on_generate, NULL)) < 0 ||
	    (rc = wp_listen(ctx, argv[1], NULL, &l)) < 0) {
		fprintf(stderr, "model_service: cannot serve on %s: %s\n", argv[1], strerror(-rc));
		wp_ctx_destroy(ctx);
		return 1;
	}
	if (wp_ep_local_uri(l, uri, sizeof(uri)) == 0)
		printf("model_service: model '%s' at %s\n", model, uri);
	fflush(stdout);
	/* Handlers run from inside progress; the timeout bounds how late a
	 * signal is seen. */
	while (!stop) {
		rc = wp_ctx_progress(ctx, 100000);
		if (rc < 0 && rc != -EINTR) {
			fprintf(stderr, "model_service: %s\n", strerror(-rc));
			break;
		}
	}
	wp_ctx_destroy(ctx);
	return 0;
}
