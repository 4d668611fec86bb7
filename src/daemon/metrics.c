// SPDX-License-Identifier: MIT
/*
 * /metrics and the access log (metrics.h). Series are keyed by route,
 * tenant and backend, found by a linear scan over a small table (routes x
 * tenants x backends stays in the hundreds; past 4096 series new ones fold
 * into tenant "other" so a tenant storm cannot grow memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daemon/buf.h"
#include "daemon/exchange.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/sse.h"
#include "daemon/tenants.h"
#include "daemon/tls.h"
#include "daemon/uedge.h"

#define MAX_SERIES 4096
#define MAX_CODES 12

/* Latency bucket bounds in microseconds (le="..." in seconds). */
static const uint64_t bounds_us[] = { 50,      100,      250,      500,     1000,
				      2500,    5000,     10000,    25000,   50000,
				      100000,  250000,   500000,   1000000, 2500000,
				      5000000, 10000000, 30000000, 60000000 };
#define NB (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct series {
	char route[16];
	char tenant[32];
	char backend[64];
	uint16_t code[MAX_CODES];
	uint64_t count[MAX_CODES];
	uint64_t hist[NB + 1];
	uint64_t sum_us;
	uint64_t n;
	uint64_t bytes_in, bytes_out, tokens;
};

static struct series *series;
static uint32_t nseries;
static int access_fd = -1;
static char access_path[256];

int wpd_metrics_access_log(const char *path)
{
	int fd = -1;

	if (path && path[0]) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0) {
			int err = -errno;

			wpd_err("access log %s: %s", path, strerror(errno));
			return err;
		}
	}
	if (access_fd >= 0)
		close(access_fd);
	access_fd = fd;
	snprintf(access_path, sizeof(access_path), "%s", path ? path : "");
	return 0;
}

int wpd_metrics_init(const char *access_log)
{
	series = calloc(MAX_SERIES, sizeof(*series));
	if (!series)
		return -ENOMEM;
	return wpd_metrics_access_log(access_log);
}

void wpd_metrics_fini(void)
{
	if (access_fd >= 0)
		close(access_fd);
	access_fd = -1;
	free(series);
	series = NULL;
	nseries = 0;
}

static struct series *series_get(const char *route, const char *tenant, const char *backend)
{
	for (uint32_t i = 0; i < nseries; i++) {
		struct series *s = &series[i];

		if (!strcmp(s->route, route) && !strcmp(s->tenant, tenant) &&
		    !strcmp(s->backend, backend))
			return s;
	}
	if (nseries == MAX_SERIES - 1 && strcmp(tenant, "other"))
		return series_get(route, "other", backend);
	if (nseries == MAX_SERIES)
		return &series[MAX_SERIES - 1];
	struct series *s = &series[nseries++];

	snprintf(s->route, sizeof(s->route), "%s", route);
	snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
	snprintf(s->backend, sizeof(s->backend), "%s", backend);
	return s;
}

static void access_line(const struct wpd_ex *ex, int status, uint64_t dur_ns, uint64_t bytes_in,
			uint64_t bytes_out, uint32_t tokens, const char *route, const char *tenant,
			const char *backend)
{
	struct wpd_buf b = { 0 };
	struct timespec ts;
	struct tm tm;
	char when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	wpd_buf_addf(&b, "{\"time\":\"%s.%06ldZ\",\"peer\":\"", when, ts.tv_nsec / 1000);
	wpd_json_escape(&b, wpd_ex_peer(ex), strlen(wpd_ex_peer(ex)));
	wpd_buf_addf(&b, "\",\"method\":\"%s\",\"path\":\"", wpd_ex_method(ex));
	wpd_json_escape(&b, wpd_ex_path(ex), strlen(wpd_ex_path(ex)));
	wpd_buf_addf(&b,
		     "\",\"status\":%d,\"route\":\"%s\",\"tenant\":\"%s\",\"backend\":\"%s\","
		     "\"duration_us\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"tokens\":%u}\n",
		     status, route, tenant, backend, (unsigned long long)(dur_ns / 1000),
		     (unsigned long long)bytes_in, (unsigned long long)bytes_out, tokens);
	if (!b.oom && write(access_fd, b.p, b.len) < 0)
		wpd_log_rl("access-log", WP_LOG_WARN, "access log %s: %s", access_path,
			   strerror(errno));
	wpd_buf_free(&b);
}

void wpd_metrics_done(void *arg, const struct wpd_ex *ex, int status, uint64_t dur_ns,
		      uint64_t bytes_in, uint64_t bytes_out, uint32_t tokens, const char *route,
		      const char *backend)
{
	const struct wpd_tenant *t = wpd_ex_tenant(ex);
	const char *tenant = t ? wpd_tenant_name(t) : "";
	struct series *s;
	uint64_t us = dur_ns / 1000;
	uint32_t i;

	if (access_fd >= 0)
		access_line(ex, status, dur_ns, bytes_in, bytes_out, tokens, route, tenant,
			    backend ? backend : "");
	if (!series)
		return;
	s = series_get(route ? route : "other", tenant, backend ? backend : "");
	for (i = 0; i < MAX_CODES && s->code[i] && s->code[i] != status; i++)
		;
	if (i == MAX_CODES)
		i = MAX_CODES - 1; /* a 13th distinct code shares the last slot */
	s->code[i] = (uint16_t)status;
	s->count[i]++;
	for (i = 0; i < NB && us > bounds_us[i]; i++)
		;
	s->hist[i]++;
	s->sum_us += us;
	s->n++;
	s->bytes_in += bytes_in;
	s->bytes_out += bytes_out;
	s->tokens += tokens;
}

static void labels(struct wpd_buf *out, const struct series *s)
{
	wpd_buf_addf(out, "route=\"%s\",tenant=\"%s\",backend=\"%s\"", s->route, s->tenant,
		     s->backend);
}

static uint64_t rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

void wpd_metrics_render(const struct wpd_server *srv, struct wpd_buf *out)
{
	struct wpd_server_stats st;
	struct rusage ru;
	unsigned long long hs, ktx, krx, hf;

	wpd_buf_adds(out, "# HELP wirepathd_requests_total Requests answered, by status code "
			  "(499: the client left first).\n"
			  "# TYPE wirepathd_requests_total counter\n");
	for (uint32_t i = 0; i < nseries; i++)
		for (uint32_t k = 0; k < MAX_CODES && series[i].code[k]; k++) {
			wpd_buf_adds(out, "wirepathd_requests_total{");
			labels(out, &series[i]);
			wpd_buf_addf(out, ",code=\"%u\"} %llu\n", series[i].code[k],
				     (unsigned long long)series[i].count[k]);
		}
	wpd_buf_adds(out, "# HELP wirepathd_request_duration_seconds Time from the request's "
			  "last byte to the response's end.\n"
			  "# TYPE wirepathd_request_duration_seconds histogram\n");
	for (uint32_t i = 0; i < nseries; i++) {
		const struct series *s = &series[i];
		uint64_t cum = 0;

		for (uint32_t k = 0; k <= NB; k++) {
			cum += s->hist[k];
			wpd_buf_adds(out, "wirepathd_request_duration_seconds_bucket{");
			labels(out, s);
			if (k < NB)
				wpd_buf_addf(out, ",le=\"%g\"} %llu\n", (double)bounds_us[k] / 1e6,
					     (unsigned long long)cum);
			else
				wpd_buf_addf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		wpd_buf_adds(out, "wirepathd_request_duration_seconds_sum{");
		labels(out, s);
		wpd_buf_addf(out, "} %.6f\n", (double)s->sum_us / 1e6);
		wpd_buf_adds(out, "wirepathd_request_duration_seconds_count{");
		labels(out, s);
		wpd_buf_addf(out, "} %llu\n", (unsigned long long)s->n);
	}
	static const char *const ctr[3][2] = {
		{ "wirepathd_request_bytes_total", "Request bytes read from clients." },
		{ "wirepathd_response_bytes_total", "Response bytes queued to clients." },
		{ "wirepathd_sse_tokens_total", "Tokens streamed (SSE events with content)." },
	};
	for (int c = 0; c < 3; c++) {
		wpd_buf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", ctr[c][0], ctr[c][1],
			     ctr[c][0]);
		for (uint32_t i = 0; i < nseries; i++) {
			const struct series *s = &series[i];
			uint64_t v = c == 0 ? s->bytes_in : c == 1 ? s->bytes_out : s->tokens;

			wpd_buf_addf(out, "%s{", ctr[c][0]);
			labels(out, s);
			wpd_buf_addf(out, "} %llu\n", (unsigned long long)v);
		}
	}
	wpd_server_stats(srv, &st);
	wpd_buf_addf(out,
		     "# TYPE wirepathd_connections gauge\nwirepathd_connections %llu\n"
		     "# TYPE wirepathd_connections_total counter\n"
		     "wirepathd_connections_total %llu\n"
		     "# TYPE wirepathd_connections_refused_total counter\n"
		     "wirepathd_connections_refused_total %llu\n"
		     "# TYPE wirepathd_active_requests gauge\nwirepathd_active_requests %llu\n"
		     "# TYPE wirepathd_active_streams gauge\nwirepathd_active_streams %llu\n"
		     "# TYPE wirepathd_bad_requests_total counter\n"
		     "wirepathd_bad_requests_total %llu\n"
		     "# TYPE wirepathd_timeouts_total counter\nwirepathd_timeouts_total %llu\n"
		     "# TYPE wirepathd_slow_clients_total counter\n"
		     "wirepathd_slow_clients_total %llu\n"
		     "# TYPE wirepathd_aborts_total counter\nwirepathd_aborts_total %llu\n"
		     "# TYPE wirepathd_rx_bytes_held gauge\nwirepathd_rx_bytes_held %llu\n",
		     (unsigned long long)st.conns_open, (unsigned long long)st.conns_total,
		     (unsigned long long)st.conns_refused, (unsigned long long)st.exchanges_active,
		     (unsigned long long)st.streams_active, (unsigned long long)st.bad_requests,
		     (unsigned long long)st.timeouts, (unsigned long long)st.slow_clients,
		     (unsigned long long)st.aborts, (unsigned long long)st.rx_mem);
	{
		const char *name, *io;
		struct wpd_uedge_stats us;

		wpd_buf_adds(out, "# HELP wirepathd_listener_info The edge each listener really "
				  "got (io: uring falls back to epoll).\n"
				  "# TYPE wirepathd_listener_info gauge\n");
		for (uint32_t i = 0; wpd_server_listener(srv, i, &name, &io) == 0; i++)
			wpd_buf_addf(out, "wirepathd_listener_info{listener=\"%s\",io=\"%s\"} 1\n",
				     name, io);
		if (wpd_server_uring_stats(srv, &us))
			wpd_buf_addf(out,
				     "# HELP wirepathd_uring_submits_total io_uring_submit calls "
				     "of the io_uring edge.\n"
				     "# TYPE wirepathd_uring_submits_total counter\n"
				     "wirepathd_uring_submits_total %llu\n"
				     "# TYPE wirepathd_uring_sqes_total counter\n"
				     "wirepathd_uring_sqes_total %llu\n"
				     "# TYPE wirepathd_uring_cqes_total counter\n"
				     "wirepathd_uring_cqes_total %llu\n"
				     "# TYPE wirepathd_uring_wakeups_total counter\n"
				     "wirepathd_uring_wakeups_total %llu\n",
				     (unsigned long long)us.submits, (unsigned long long)us.sqes,
				     (unsigned long long)us.cqes, (unsigned long long)us.wakeups);
	}
	wpd_tls_counts(&hs, &ktx, &krx, &hf);
	wpd_buf_addf(
		out,
		"# TYPE wirepathd_tls_handshakes_total counter\n"
		"wirepathd_tls_handshakes_total %llu\n"
		"wirepathd_tls_handshakes_failed_total %llu\n"
		"# HELP wirepathd_tls_ktls_total Handshakes whose keys the kernel took.\n"
		"# TYPE wirepathd_tls_ktls_total counter\n"
		"wirepathd_tls_ktls_total{dir=\"tx\"} %llu\nwirepathd_tls_ktls_total{dir=\"rx\"} "
		"%llu\n",
		hs, hf, ktx, krx);
	getrusage(RUSAGE_SELF, &ru);
	wpd_buf_addf(out,
		     "# HELP process_cpu_seconds_total The daemon's CPU time (all threads).\n"
		     "# TYPE process_cpu_seconds_total counter\n"
		     "process_cpu_seconds_total{mode=\"user\"} %ld.%06ld\n"
		     "process_cpu_seconds_total{mode=\"system\"} %ld.%06ld\n"
		     "# TYPE process_resident_memory_bytes gauge\n"
		     "process_resident_memory_bytes %llu\n"
		     "# TYPE wirepathd_context_switches_total counter\n"
		     "wirepathd_context_switches_total{kind=\"voluntary\"} %ld\n"
		     "wirepathd_context_switches_total{kind=\"involuntary\"} %ld\n",
		     (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec,
		     (long)ru.ru_stime.tv_usec, (unsigned long long)rss_bytes(), ru.ru_nvcsw,
		     ru.ru_nivcsw);
}
