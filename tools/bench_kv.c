// SPDX-License-Identifier: MIT
/*
 * `wirepath bench --workload kv`: the bulk context/KV transfer sweep. For
 * each path, one-sided writes (wp_xfer_post) into a region the spawned
 * server exports (WPB_KV), KV_DEPTH in flight, at sizes from 64 KiB to
 * 64 MiB; per size: GB/s, host CPU seconds per GB (both processes) and host
 * bytes copied per byte moved, and whether the path mapped the region
 * (shm: one memcpy; ucx: RMA put) or framed it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirepath/policy.h"
#include "bench.h"
#include "stub_proto.h"
#include "util.h"

static const uint64_t kv_sizes[] = {
	64u << 10, 256u << 10, 1u << 20, 4u << 20, 16u << 20, 64u << 20
};
#define KV_NSIZES (sizeof(kv_sizes) / sizeof(kv_sizes[0]))
#define KV_DEPTH 2 /* transfers in flight */
#define KV_REGION (KV_DEPTH * (64ull << 20))

struct kv_row {
	uint64_t size, n;
	double secs, gb_per_s, cpu_s_per_gb, copied_per_byte;
	int mapped;
};

struct kv_path {
	char path[16];
	enum res_state state;
	char msg[512], explain[512];
	struct kv_row rows[KV_NSIZES];
	int nrows;
};

struct kv_run {
	struct wp_ctx *ctx;
	struct wp_ep *ep;
	int up, closed, err;
	int call_done, call_status;
	uint32_t reply_len;
	uint8_t reply[WPB_KV_REPLY];
	int inflight, failed, mapped;
	uint64_t done_n;
	char why[200];
};

static void kv_on_event(void *arg, struct wp_ep *ep, enum wp_ep_event ev, int err)
{
	struct kv_run *k = arg;

	if (ev == WP_EP_CONNECTED) {
		k->up = 1;
	} else {
		k->closed = 1;
		k->err = err;
	}
}

static void kv_on_data(void *arg, struct wp_msg *m)
{
	struct kv_run *k = arg;

	k->reply_len = m->len < sizeof(k->reply) ? m->len : (uint32_t)sizeof(k->reply);
	memcpy(k->reply, m->data, k->reply_len);
}

static void kv_on_call_done(void *arg, int status)
{
	struct kv_run *k = arg;

	k->call_status = status;
	k->call_done = 1;
}

/* A unary call, driven to its end. Returns 0 or -1 with k->why set. */
static int kv_call(struct kv_run *k, uint32_t method, const void *req, uint32_t len)
{
	struct wp_call_params p = { .method = method,
				    .req = req,
				    .req_len = len,
				    .deadline_us = (int64_t)(BENCH_STATS_TIMEOUT_NS / 1000),
				    .on_data = kv_on_data,
				    .on_done = kv_on_call_done,
				    .arg = k };
	int rc;

	k->call_done = 0;
	k->reply_len = 0;
	rc = wp_rpc_call(k->ep, &p, NULL);
	if (rc < 0) {
		snprintf(k->why, sizeof(k->why), "call %#x: %s", method, strerror(-rc));
		return -1;
	}
	while (!k->call_done && !bench_interrupted)
		wp_ctx_progress(k->ctx, 100000);
	if (!k->call_done || k->call_status != 0) {
		snprintf(k->why, sizeof(k->why), "call %#x failed: %s", method,
			 k->call_done ? strerror(abs(k->call_status)) : "interrupted");
		return -1;
	}
	return 0;
}

static int kv_server_stats(struct kv_run *k, struct wp_meter_snap *s)
{
	struct bench_stats st;
	int rc = bench_stats_call(k->ep, &st);

	if (rc < 0) {
		snprintf(k->why, sizeof(k->why), "cannot call the server's stats: %s",
			 strerror(-rc));
		return -1;
	}
	while (!st.done && !bench_interrupted)
		wp_ctx_progress(k->ctx, 100000);
	if (!st.done) {
		snprintf(k->why, sizeof(k->why), "interrupted");
		return -1;
	}
	return bench_stats_result(&st, s, k->why, sizeof(k->why));
}

static void kv_on_xfer(void *arg, int status, const struct wp_xfer_stats *st)
{
	struct kv_run *k = arg;

	k->inflight--;
	if (status != 0 && !k->failed) {
		k->failed = 1;
		snprintf(k->why, sizeof(k->why), "transfer failed: %s", strerror(abs(status)));
	}
	k->mapped = (int)st->direct;
	k->done_n++;
}

/* Keep KV_DEPTH writes of `size` in flight until `until` (and at least min). */
static int kv_pump(struct kv_run *k, struct wp_mr *local, const struct wp_rkey *rk, uint64_t size,
		   uint64_t until, uint64_t min)
{
	uint64_t posted = 0, start_n = k->done_n;

	for (;;) {
		while (k->inflight < KV_DEPTH && !k->failed &&
		       (wp_now_ns() < until || posted < min)) {
			uint64_t slot = posted % KV_DEPTH;
			struct wp_xfer_desc d = { slot * (64ull << 20), slot * (64ull << 20),
						  size };
			struct wp_xfer_params p = { .op = WP_XFER_WRITE,
						    .local = local,
						    .remote = rk,
						    .desc = &d,
						    .ndesc = 1,
						    .on_done = kv_on_xfer,
						    .arg = k };
			int rc = wp_xfer_post(k->ep, &p);

			if (rc < 0) {
				snprintf(k->why, sizeof(k->why), "wp_xfer_post: %s", strerror(-rc));
				return -1;
			}
			k->inflight++;
			posted++;
		}
		if (k->failed || k->closed || bench_interrupted)
			break;
		if (k->inflight == 0)
			return 0;
		wp_ctx_progress(k->ctx, 100000);
	}
	if (k->closed && !k->failed)
		snprintf(k->why, sizeof(k->why), "connection closed: %s", strerror(-k->err));
	(void)start_n;
	return -1;
}

static void kv_run_path(struct bench_cfg *cfg, struct kv_path *res)
{
	const struct wp_probe_result *pr = bench_path_probe(res->path);
	double per_size = cfg->duration_s;
	struct kv_run k = { 0 };
	struct wp_ctx_opts o;
	struct wp_ep_cbs cbs = { .event = kv_on_event, .arg = &k };
	struct wp_mr *local = NULL;
	struct wp_rkey rk;
	struct bench_server sv = { 0 };
	uint8_t req[WPB_KV_HDR];
	char uri[320];

	res->state = RES_ERROR;
	if (!pr || !pr->ok) {
		res->state = RES_UNAVAILABLE;
		snprintf(res->msg, sizeof(res->msg), "%s", pr ? pr->detail : "not in this build");
		return;
	}
	if (bench_server_start(cfg, res->path, &sv, res->msg, sizeof(res->msg)) < 0)
		return;
	bench_uri(uri, sizeof(uri), res->path, sv.port);
	wp_ctx_opts_init(&o);
	o.select = WP_SELECT_REQUIRE;
	o.busy_poll = cfg->busy_poll;
	o.ucx_trust_rma = cfg->ucx_trust_rma;
	o.sqpoll = cfg->sqpoll;
	if (cfg->zc_threshold)
		o.zc_threshold = cfg->zc_threshold;
	if (wp_ctx_create(&o, &k.ctx) < 0 || wp_connect(k.ctx, uri, &cbs, &k.ep) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot connect to %s", uri);
		goto out;
	}
	if (cfg->tenant.on)
		wp_ep_set_tenant_key_flags(
			k.ep, cfg->tenant.id, cfg->tenant.key,
			cfg->auth == BENCH_AUTH_V2_CONF ? WP_TENANT_KEY_CONFIDENTIAL : 0);
	while (!k.up && !k.closed && !bench_interrupted)
		wp_ctx_progress(k.ctx, 100000);
	if (!k.up) {
		snprintf(res->msg, sizeof(res->msg), "connect to %s: %s", uri,
			 k.err ? strerror(-k.err) : "interrupted");
		goto out;
	}
	snprintf(res->explain, sizeof(res->explain), "%s", wp_ctx_explain(k.ctx));
	wpb_put64(req, KV_REGION);
	if (kv_call(&k, WPB_KV, req, sizeof(req)) < 0 ||
	    wpb_kv_reply_get(k.reply, k.reply_len, &rk) < 0) {
		snprintf(res->msg, sizeof(res->msg), "no region from the server: %s", k.why);
		goto out;
	}
	if (wp_mr_alloc(k.ctx, KV_REGION, &local) < 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot allocate %llu MiB",
			 (unsigned long long)(KV_REGION >> 20));
		goto out;
	}
	for (uint64_t i = 0; i < KV_REGION; i += 8)
		*(uint64_t *)((uint8_t *)wp_mr_addr(local) + i) = i * 0x9e3779b97f4a7c15ull;

	for (size_t si = 0; si < KV_NSIZES && !bench_interrupted; si++) {
		uint64_t size = kv_sizes[si], n0, t0, t1;
		struct wp_meter_snap sa, sb, la, lb, sd, ld;
		struct kv_row *row = &res->rows[si];
		double cpu, bytes;

		/* Warm-up: pages faulted in, connection and caches warm. */
		if (kv_pump(&k, local, &rk, size, 0, 2 * KV_DEPTH) < 0)
			goto out_why;
		if (kv_server_stats(&k, &sa) < 0)
			goto out_why;
		wp_meter_snapshot(&la);
		n0 = k.done_n;
		t0 = wp_now_ns();
		if (kv_pump(&k, local, &rk, size, t0 + (uint64_t)(per_size * 1e9), 4) < 0)
			goto out_why;
		t1 = wp_now_ns();
		wp_meter_snapshot(&lb);
		if (kv_server_stats(&k, &sb) < 0)
			goto out_why;
		wp_meter_diff(&la, &lb, &ld);
		wp_meter_diff(&sa, &sb, &sd);
		row->size = size;
		row->n = k.done_n - n0;
		row->secs = (double)(t1 - t0) / 1e9;
		bytes = (double)row->n * (double)size;
		cpu = (double)(ld.cpu_user_ns + ld.cpu_sys_ns + sd.cpu_user_ns + sd.cpu_sys_ns) /
		      1e9;
		row->gb_per_s = bytes / row->secs / 1e9;
		row->cpu_s_per_gb = cpu / (bytes / 1e9);
		/* The stats calls themselves copy a few hundred bytes: noise. */
		row->copied_per_byte = (double)(ld.bytes_copied + sd.bytes_copied) / bytes;
		row->mapped = k.mapped;
		res->nrows = (int)si + 1;
		if (!cfg->quiet)
			fprintf(stderr,
				"wirepath bench: kv %s %6llu KiB: %7.2f GB/s, %.3f CPU s/GB, "
				"%.2f B copied per B\n",
				res->path, (unsigned long long)(size >> 10), row->gb_per_s,
				row->cpu_s_per_gb, row->copied_per_byte);
	}
	res->state = bench_interrupted ? RES_ERROR : RES_OK;
	if (bench_interrupted)
		snprintf(res->msg, sizeof(res->msg), "interrupted");
	goto out;

out_why:
	snprintf(res->msg, sizeof(res->msg), "%s", k.why);
out:
	if (local)
		wp_mr_deregister(local);
	if (k.ep)
		wp_ep_close(k.ep);
	wp_ctx_destroy(k.ctx);
	bench_server_stop(&sv, 1);
}

static int kv_write_json(const struct bench_cfg *cfg, const struct kv_path *res, int n)
{
	struct sbuf b = { 0 };
	int first = 1;

	sb_printf(&b,
		  "{\n  \"workload\": \"kv\",\n  \"depth\": %d,\n  \"seconds_per_size\": %.3f,\n",
		  KV_DEPTH, cfg->duration_s);
	sb_printf(&b, "  \"paths\": {");
	for (int i = 0; i < n; i++) {
		sb_printf(&b, "%s\n    \"%s\": {\"state\": \"%s\", \"msg\": ", i ? "," : "",
			  res[i].path,
			  res[i].state == RES_OK            ? "ok"
			  : res[i].state == RES_UNAVAILABLE ? "unavailable"
							    : "error");
		sb_json_str(&b, res[i].msg);
		sb_printf(&b, ", \"explain\": ");
		sb_json_str(&b, res[i].explain);
		sb_printf(&b, "}");
	}
	sb_printf(&b, "\n  },\n  \"results\": [");
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < res[i].nrows; j++) {
			const struct kv_row *r = &res[i].rows[j];

			sb_printf(&b,
				  "%s\n    {\"path\": \"%s\", \"op\": \"write\", \"size\": %" PRIu64
				  ", \"transfers\": %" PRIu64
				  ", \"seconds\": %.3f, \"gb_per_s\": %.4f"
				  ", \"cpu_s_per_gb\": %.5f, \"copied_bytes_per_byte\": %.4f"
				  ", \"mapped\": %s}",
				  first ? "" : ",", res[i].path, r->size, r->n, r->secs,
				  r->gb_per_s, r->cpu_s_per_gb, r->copied_per_byte,
				  r->mapped ? "true" : "false");
			first = 0;
		}
	}
	sb_printf(&b, "\n  ]\n}\n");
	return bench_write_sb(cfg->json_path, &b);
}

int bench_kv(struct bench_cfg *cfg)
{
	struct kv_path res[BENCH_MAX_PATHS];
	int status = 0, nok = 0, rc;

	memset(res, 0, sizeof(res));
	for (int i = 0; i < cfg->paths.n && !bench_interrupted; i++) {
		snprintf(res[i].path, sizeof(res[i].path), "%s", cfg->paths.name[i]);
		kv_run_path(cfg, &res[i]);
		if (res[i].state == RES_OK)
			nok++;
		else if (res[i].state == RES_ERROR) {
			fprintf(stderr, "wirepath bench: kv %s failed: %s\n", res[i].path,
				res[i].msg);
			status = 1;
		} else if (!cfg->quiet) {
			fprintf(stderr, "wirepath bench: %s unavailable: %s\n", res[i].path,
				res[i].msg);
		}
	}
	if (bench_interrupted)
		return 130;
	printf("workload kv: one-sided writes into the server's region, %d in flight, %.1f s per size\n",
	       KV_DEPTH, cfg->duration_s);
	printf("path    size      GB/s  CPU s/GB  copied B/B  mapped\n");
	for (int i = 0; i < cfg->paths.n; i++) {
		if (res[i].state != RES_OK) {
			printf("%-6s  %s: %s\n", res[i].path,
			       res[i].state == RES_UNAVAILABLE ? "unavailable" : "error",
			       res[i].msg);
			continue;
		}
		for (int j = 0; j < res[i].nrows; j++) {
			const struct kv_row *r = &res[i].rows[j];

			printf("%-6s %5llu%s %8.2f %9.4f %11.2f  %s\n", res[i].path,
			       (unsigned long long)(r->size >= (1u << 20) ? r->size >> 20
									  : r->size >> 10),
			       r->size >= (1u << 20) ? "M" : "K", r->gb_per_s, r->cpu_s_per_gb,
			       r->copied_per_byte,
			       !r->mapped                     ? "no (frames)"
			       : !strcmp(res[i].path, "rdma") ? "yes (RDMA WRITE)"
			       : !strcmp(res[i].path, "ucx")  ? "yes (RMA, no frames)"
							      : "yes (one memcpy)");
		}
	}
	/* CPU per GB against tcp at 4 MiB, the yardstick. */
	for (int i = 0; i < cfg->paths.n; i++)
		for (int t = 0; t < cfg->paths.n; t++)
			if (i != t && !strcmp(res[t].path, "tcp") && res[i].state == RES_OK &&
			    res[t].state == RES_OK && res[i].nrows > 3 && res[t].nrows > 3)
				printf("%s / tcp at 4 MiB: CPU per GB %.2fx, GB/s %.2fx\n",
				       res[i].path,
				       res[i].rows[3].cpu_s_per_gb / res[t].rows[3].cpu_s_per_gb,
				       res[i].rows[3].gb_per_s / res[t].rows[3].gb_per_s);
	rc = kv_write_json(cfg, res, cfg->paths.n);
	if (rc < 0) {
		fprintf(stderr, "wirepath bench: cannot write %s: %s\n", cfg->json_path,
			strerror(-rc));
		status = 1;
	} else if (!cfg->quiet) {
		fprintf(stderr, "wirepath bench: wrote %s\n", cfg->json_path);
	}
	if (!nok)
		status = 1;
	return status;
}
