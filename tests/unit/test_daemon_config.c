// SPDX-License-Identifier: MIT
/*
 * wirepathd's configuration (src/daemon/config.c): the example file in
 * contrib/ and a full file give every field; a minimal one gives the
 * defaults; each bad file gives exactly the expected "FILE:LINE: reason";
 * wpd_config_load resolves relative paths against the file's folder; and
 * wpd_config_check (`wirepathd --check`) loads the rules file it names and
 * prints one line either way. No privileges needed.
 */
#include <sys/stat.h>

#include "testlib.h"
#include "daemon/config.h"

static const char full[] =
	"# a full configuration\n"
	"listen:\n"
	"  - tcp: 127.0.0.1:8080\n"
	"    io: uring\n"
	"    tls: {cert: /etc/w/cert.pem, key: /etc/w/key.pem}\n"
	"  - tcp: \"[::1]:0\"\n"
	"  - unix: \"@wirepathd\"\n"
	"policy: /etc/wirepath/tenants.rules\n"
	"xdp: eth0\n"
	"backends:\n"
	"  - {name: local, native: \"shm://@wirepath-model\"}\n"
	"  - {name: vllm, http: \"http://127.0.0.1:8000/v1\", pool: 8, timeout: 2m}\n"
	"  - name: everything\n"
	"    stdio: [node, /srv/everything/index.js, stdio]\n"
	"    env: {FOO: bar, N: 1}\n"
	"models:\n"
	"  - {name: wp-stub, backend: local}\n"
	"  - {name: \"org/model:8b\", backend: vllm}\n"
	"mcp:\n"
	"  servers:\n"
	"    - {name: everything, backend: everything, prefix: every_}\n"
	"    - {name: tools, backend: local}\n"
	"  origins: [http://localhost:3000, \"https://app.example.com\"]\n"
	"limits: {conns: 500, header_bytes: 8KiB, body_bytes: 2MiB, header_timeout: 5s,\n"
	"         body_timeout: 500ms, idle_timeout: 2m, rx_budget: 64MiB, out_bytes: 1MB,\n"
	"         mcp_sessions: 7, mcp_session_idle: 1h}\n"
	"metrics: false\n"
	"access_log: /var/log/w.jsonl\n"
	"user: nobody\n"
	"drain: 0s\n";

static struct wpd_config *parse_ok(const char *text)
{
	struct wpd_config *c = NULL;
	char err[512] = "";
	int ret = wpd_config_parse("t.yaml", text, strlen(text), &c, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "unexpected error %d: %s\n", ret, err);
		exit(1);
	}
	CHECK(c);
	CHECK_EQ(err[0], 0);
	return c;
}

static void test_full(void)
{
	struct wpd_config *c = parse_ok(full);
	const struct wpd_backend *b;

	CHECK(!strcmp(c->path, "t.yaml"));
	CHECK_EQ(c->nlisten, 3);
	CHECK_EQ(c->listen[0].kind, WPD_LISTEN_TCP);
	CHECK(!strcmp(c->listen[0].addr, "127.0.0.1:8080"));
	CHECK_EQ(c->listen[0].io, WPD_IO_URING);
	CHECK(!strcmp(c->listen[0].tls_cert, "/etc/w/cert.pem"));
	CHECK(!strcmp(c->listen[0].tls_key, "/etc/w/key.pem"));
	CHECK_EQ(c->listen[0].line, 3);
	CHECK(!strcmp(c->listen[1].addr, "[::1]:0"));
	CHECK_EQ(c->listen[1].io, WPD_IO_EPOLL);
	CHECK_EQ(c->listen[1].tls_cert[0], 0);
	CHECK_EQ(c->listen[2].kind, WPD_LISTEN_UNIX);
	CHECK(!strcmp(c->listen[2].addr, "@wirepathd"));
	CHECK(!strcmp(c->policy, "/etc/wirepath/tenants.rules"));
	CHECK_EQ(c->policy_line, 8);
	CHECK_EQ(c->auth_none, 0);
	CHECK(!strcmp(c->xdp_iface, "eth0"));
	CHECK_EQ(c->xdp_line, 9);

	CHECK_EQ(c->nbackends, 3);
	b = &c->backends[0];
	CHECK(!strcmp(b->name, "local"));
	CHECK_EQ(b->kind, WPD_BACKEND_NATIVE);
	CHECK(!strcmp(b->uri, "shm://@wirepath-model"));
	CHECK_EQ(b->pool, 64);
	CHECK_EQ(b->timeout_ms, 300000);
	CHECK_EQ(b->line, 11);
	b = &c->backends[1];
	CHECK_EQ(b->kind, WPD_BACKEND_HTTP);
	CHECK(!strcmp(b->url, "http://127.0.0.1:8000/v1"));
	CHECK_EQ(b->pool, 8);
	CHECK_EQ(b->timeout_ms, 120000);
	b = &c->backends[2];
	CHECK_EQ(b->kind, WPD_BACKEND_STDIO);
	CHECK(b->argv && !strcmp(b->argv[0], "node") && !strcmp(b->argv[2], "stdio"));
	CHECK(b->argv[3] == NULL);
	CHECK(b->env && !strcmp(b->env[0], "FOO=bar") && !strcmp(b->env[1], "N=1"));
	CHECK(b->env[2] == NULL);
	CHECK_EQ(b->line, 13);
	CHECK_EQ(wpd_config_backend(c, "vllm"), 1);
	CHECK_EQ(wpd_config_backend(c, "nope"), -1);

	CHECK_EQ(c->nmodels, 2);
	CHECK(!strcmp(c->models[0].name, "wp-stub"));
	CHECK_EQ(c->models[0].backend, 0);
	CHECK(!strcmp(c->models[1].name, "org/model:8b"));
	CHECK_EQ(c->models[1].backend, 1);
	CHECK_EQ(c->models[1].line, 18);

	CHECK_EQ(c->nmcp, 2);
	CHECK(!strcmp(c->mcp[0].name, "everything"));
	CHECK_EQ(c->mcp[0].backend, 2);
	CHECK(!strcmp(c->mcp[0].prefix, "every_"));
	CHECK(!strcmp(c->mcp[1].prefix, "tools_")); /* the default: NAME_ */
	CHECK(c->mcp_origins && !strcmp(c->mcp_origins[1], "https://app.example.com"));
	CHECK(c->mcp_origins[2] == NULL);

	CHECK_EQ(c->limits.conns_max, 500);
	CHECK_EQ(c->limits.header_bytes, 8192);
	CHECK_EQ(c->limits.body_bytes, 2 << 20);
	CHECK_EQ(c->limits.header_timeout_ms, 5000);
	CHECK_EQ(c->limits.body_timeout_ms, 500);
	CHECK_EQ(c->limits.idle_timeout_ms, 120000);
	CHECK_EQ(c->limits.rx_budget, 64 << 20);
	CHECK_EQ(c->limits.out_bytes, 1000000);
	CHECK_EQ(c->limits.mcp_sessions_max, 7);
	CHECK_EQ(c->limits.mcp_session_idle_ms, 3600000);
	CHECK_EQ(c->metrics, 0);
	CHECK(!strcmp(c->access_log, "/var/log/w.jsonl"));
	CHECK(!strcmp(c->user, "nobody"));
	CHECK_EQ(c->drain_ms, 0);
	wpd_config_free(c);
}

static void test_defaults(void)
{
	struct wpd_config *c = parse_ok("listen: [{unix: /tmp/w.sock}]\nauth: none\n");

	CHECK_EQ(c->nlisten, 1);
	CHECK_EQ(c->listen[0].io, WPD_IO_EPOLL);
	CHECK_EQ(c->auth_none, 1);
	CHECK_EQ(c->policy[0], 0);
	CHECK_EQ(c->policy_line, 0);
	CHECK_EQ(c->nbackends + c->nmodels + c->nmcp, 0);
	CHECK(c->mcp_origins == NULL);
	CHECK_EQ(c->limits.conns_max, 10000);
	CHECK_EQ(c->limits.header_bytes, 16 << 10);
	CHECK_EQ(c->limits.body_bytes, 1 << 20);
	CHECK_EQ(c->limits.header_timeout_ms, 10000);
	CHECK_EQ(c->limits.body_timeout_ms, 30000);
	CHECK_EQ(c->limits.idle_timeout_ms, 60000);
	CHECK_EQ(c->limits.rx_budget, 256ull << 20);
	CHECK_EQ(c->limits.out_bytes, 8 << 20);
	CHECK_EQ(c->limits.mcp_sessions_max, 10000);
	CHECK_EQ(c->limits.mcp_session_idle_ms, 1800000);
	CHECK_EQ(c->metrics, 1);
	CHECK_EQ(c->access_log[0], 0);
	CHECK_EQ(c->user[0], 0);
	CHECK_EQ(c->drain_ms, 10000);
	wpd_config_free(c);

	/* the contrib example is a valid file */
	{
		struct wpd_config *e;
		char err[512];

		CHECK_EQ(wpd_config_load(WP_SRC_DIR "/contrib/wirepathd.yaml", &e, err,
					 sizeof(err)),
			 0);
		CHECK_EQ(e->nlisten, 2);
		CHECK_EQ(e->nbackends, 3);
		CHECK_EQ(e->nmodels, 2);
		CHECK_EQ(e->nmcp, 1);
		wpd_config_free(e);
	}
}

struct bad {
	const char *text;
	const char *msg;
};

#define L "listen: [{tcp: 1.2.3.4:80}]\nauth: none\n"
#define BK L "backends:\n  - {name: vllm, http: \"http://h:1\"}\n  - {name: ev, stdio: [x]}\n"

static const struct bad bads[] = {
	/* the document */
	{ "", "t.yaml:1: no listener: add 'listen:' with at least one entry "
	      "(- tcp: 127.0.0.1:8080)" },
	{ "# nothing\n", "t.yaml:1: no listener: add 'listen:' with at least one entry "
			 "(- tcp: 127.0.0.1:8080)" },
	{ "- 1\n",
	  "t.yaml:1: the configuration must be a mapping (listen:, backends:, ...), not a list" },
	{ L "lisen: 3\n", "t.yaml:3: unknown key 'lisen'; did you mean 'listen'?" },
	{ L "foo: 3\n", "t.yaml:3: unknown key 'foo' (listen, policy, auth, xdp, backends, models, "
			"mcp, limits, metrics, access_log, user, drain)" },
	{ L "---\nx: 1\n",
	  "t.yaml:4: a second YAML document ('---'): the configuration is one document" },
	{ "listen: [{tcp: 1.2.3.4:80}\n",
	  "t.yaml:2: YAML: flow sequence without a closing bracket" },
	{ L "auth: none\n", "t.yaml:3: YAML: duplicate key" },
	{ L "user: &u nobody\ndrain: *u\n",
	  "t.yaml:4: aliases (*name) are not supported; write the value out" },
	{ L "drain: !!str 5s\n", "t.yaml:3: tags (!!type) are not supported; remove it" },
	{ "? [a]\n: 1\n", "t.yaml:1: keys must be names" },
	/* libfyaml 0.7.12 loops forever on this one: refused before it */
	{ L "%@\xcb"
	    "a\nx: 1\n",
	  "t.yaml:3: not valid UTF-8" },
	{ L "user: \xc0\xaf\n", "t.yaml:3: not valid UTF-8" },     /* overlong '/' */
	{ L "user: \xed\xa0\x80\n", "t.yaml:3: not valid UTF-8" }, /* a surrogate */
	{ L "user: \xe2\x82\n", "t.yaml:3: not valid UTF-8" },     /* cut */
	{ L "user: a\rdrain: 1s\n", "t.yaml:3: a CR without LF; end lines with LF or CR LF" },
	/* listen */
	{ "auth: none\n", "t.yaml:1: no listener: add 'listen:' with at least one entry "
			  "(- tcp: 127.0.0.1:8080)" },
	{ "listen: []\nauth: none\n",
	  "t.yaml:1: 'listen' is empty; at least one listener is needed" },
	{ "listen:\nauth: none\n", "t.yaml:1: 'listen' has no value; expected a list" },
	{ "listen: {tcp: 1.2.3.4:80}\nauth: none\n",
	  "t.yaml:1: 'listen' must be a list (- item), not a mapping" },
	{ "listen:\n  - tcp: 1.2.3.4\nauth: none\n",
	  "t.yaml:2: tcp: '1.2.3.4': needs a port: HOST:PORT" },
	{ "listen:\n  - tcp: 1.2.3.4:70000\n",
	  "t.yaml:2: tcp: '1.2.3.4:70000': the port must be 0..65535" },
	{ "listen:\n  - tcp: \"::1:80\"\n",
	  "t.yaml:2: tcp: '::1:80': an IPv6 address is written [ADDR]:PORT" },
	{ "listen:\n  - tcp: \"[::g]:80\"\n", "t.yaml:2: tcp: '[::g]:80': bad IPv6 address" },
	{ "listen:\n  - tcp: example.com:80\n",
	  "t.yaml:2: tcp: 'example.com:80': listen on an IP address (127.0.0.1, 0.0.0.0, [::1]) "
	  "or localhost" },
	{ "listen:\n  - tcp: 1.2.3.4:80\n    io: epol\nauth: none\n",
	  "t.yaml:3: unknown io 'epol'; did you mean 'epoll'?" },
	{ "listen:\n  - tcp: 1.2.3.4:80\n    tsl: {}\n",
	  "t.yaml:3: unknown key 'tsl' in a listener; did you mean 'tls'?" },
	{ "listen:\n  - tcp: 1.2.3.4:80\n    unix: /x\n",
	  "t.yaml:3: a listener is either tcp or unix, not both" },
	{ "listen:\n  - io: epoll\n", "t.yaml:2: a listener needs tcp: HOST:PORT or unix: PATH" },
	{ "listen:\n  - tcp: 1.2.3.4:80\n    tls: {cert: /c}\n",
	  "t.yaml:3: tls needs both cert and key (PEM files)" },
	{ "listen:\n  - tcp: 1.2.3.4:80\n    tls: {cert: /c, key: /k, ca: /a}\n",
	  "t.yaml:3: unknown key 'ca' in tls (cert, key)" },
	{ "listen:\n  - unix: \"@\"\n", "t.yaml:2: unix: '@' needs a name (@wirepathd)" },
	{ "listen:\n  - unix: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
	  "t.yaml:2: unix: a socket path is at most 107 bytes" },
	{ "listen:\n  - tcp: 1.2.3.4:80\n  - tcp: 1.2.3.4:80\n",
	  "t.yaml:3: '1.2.3.4:80' is already a listener (line 2)" },
	/* policy / auth / xdp */
	{ "listen: [{tcp: 1.2.3.4:80}]\n",
	  "t.yaml:1: no 'policy' (the rules file with tenants and API keys) and no 'auth: none'; "
	  "one is required" },
	{ "listen: [{tcp: 1.2.3.4:80}]\npolicy: /x\nauth: none\n",
	  "t.yaml:3: 'policy' and 'auth: none' contradict: keep one" },
	{ "listen: [{tcp: 1.2.3.4:80}]\nauth: basic\n",
	  "t.yaml:2: 'auth: basic': 'auth' can only be 'none' (serve without API keys); API keys "
	  "come from the 'policy' rules file" },
	{ "listen: [{tcp: 1.2.3.4:80}]\npolicy: [a]\n",
	  "t.yaml:2: 'policy' must be a string, not a list" },
	{ "listen: [{tcp: 1.2.3.4:80}]\npolicy: ''\n", "t.yaml:2: 'policy' is empty" },
	{ L "xdp: a/b\n",
	  "t.yaml:3: xdp: 'a/b' is not an interface name (1..15 bytes, no '/' or spaces)" },
	/* backends */
	{ L "backends: {a: 1}\n", "t.yaml:3: 'backends' must be a list (- item), not a mapping" },
	{ L "backends:\n  - {name: a, native: \"tcp://x\"}\n",
	  "t.yaml:4: native: 'tcp://x': needs a port: HOST:PORT" },
	{ L "backends:\n  - {name: a, native: \"shm://x\"}\n",
	  "t.yaml:4: native: 'shm://x': a shm URI is shm://@NAME or shm:///PATH" },
	{ L "backends:\n  - {name: a, native: \"rdma://x:1\"}\n",
	  "t.yaml:4: native: 'rdma://x:1': use tcp://HOST:PORT, uring://HOST:PORT, "
	  "any://HOST:PORT, shm://@NAME or shm:///PATH" },
	{ L "backends:\n  - {name: a, native: \"uring://h:0\"}\n",
	  "t.yaml:4: native: 'uring://h:0': the port must be 1..65535" },
	{ L "backends:\n  - {name: a, http: \"https://x:1\"}\n",
	  "t.yaml:4: http: 'https://x:1': TLS to an upstream is not supported; use http://" },
	{ L "backends:\n  - {name: a, http: \"http://x\"}\n",
	  "t.yaml:4: http: 'http://x': needs a port: HOST:PORT" },
	{ L "backends:\n  - {name: a, http: \"http://x:1/v1?k=1\"}\n",
	  "t.yaml:4: http: 'http://x:1/v1?k=1': the prefix is a plain path (no '?', '#', '%' or "
	  "spaces)" },
	{ L "backends:\n  - {name: a, http: \"ftp://x:1\"}\n",
	  "t.yaml:4: http: 'ftp://x:1': expected http://HOST:PORT[/prefix]" },
	{ L "backends:\n  - {name: a, http: \"http://x:1\", native: \"shm://@a\"}\n",
	  "t.yaml:4: a backend is one of native, http or stdio; this one already has http (line "
	  "4)" },
	{ L "backends:\n  - {name: a, native: \"shm://@a\", pool: 3}\n",
	  "t.yaml:4: backend 'a': 'pool' is for http backends" },
	{ L "backends:\n  - {name: a, native: \"shm://@a\", env: {A: b}}\n",
	  "t.yaml:4: backend 'a': 'env' is for stdio backends" },
	{ L "backends:\n  - {name: a, http: \"http://x:1\", pool: 0}\n",
	  "t.yaml:4: 'pool' is 0; it must be 1..4096" },
	{ L "backends:\n  - {name: a, http: \"http://x:1\", pool: \"8\"}\n",
	  "t.yaml:4: 'pool' must be a number, not the quoted string \"8\"" },
	{ L "backends:\n  - {name: a, native: \"shm://@a\"}\n  - {name: a, native: \"shm://@b\"}\n",
	  "t.yaml:5: backend 'a' is already defined at line 4" },
	{ L "backends:\n  - {native: \"shm://@a\"}\n", "t.yaml:4: a backend needs a name" },
	{ L "backends:\n  - {name: a}\n",
	  "t.yaml:4: backend 'a' needs one of native, http or stdio" },
	{ L "backends:\n  - {name: a b, stdio: [x]}\n",
	  "t.yaml:4: 'a b' is not a name: use 1..63 of A-Z a-z 0-9 _ - ." },
	{ L "backends:\n  - {name: a, stdio: x}\n",
	  "t.yaml:4: 'stdio' must be a list (- item), not a scalar" },
	{ L "backends:\n  - {name: a, stdio: []}\n",
	  "t.yaml:4: 'stdio' is empty; expected [command, arg, ...]" },
	{ L "backends:\n  - {name: a, stdio: [x], env: {1A: b}}\n",
	  "t.yaml:4: env: '1A' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)" },
	{ L "backends:\n  - {name: a, stdio: [x], env: {A: [b]}}\n",
	  "t.yaml:4: 'A' must be a string, not a list" },
	{ L "backends:\n  - {name: a, stdio: [x], timeout: 0ms}\n",
	  "t.yaml:4: 'timeout': 0ms is out of range 1ms..24h" },
	{ L "backends:\n  - {name: a, stdio: [x], timeout: 300}\n",
	  "t.yaml:4: 'timeout': '300' needs a unit: ms, s, m or h (like 300s)" },
	{ L "backends:\n  - {name: a, stdio: [x], timout: 3s}\n",
	  "t.yaml:4: unknown key 'timout' in a backend; did you mean 'timeout'?" },
	/* models */
	{ BK "models:\n  - {name: m, backend: ev}\n",
	  "t.yaml:7: model 'm': backend 'ev' is stdio, which serves MCP tools, not models; use a "
	  "native or http backend" },
	{ BK "models:\n  - {name: m, backend: vlm}\n",
	  "t.yaml:7: model 'm': no backend 'vlm'; did you mean 'vllm'?" },
	{ BK "models:\n  - {name: m, backend: other}\n",
	  "t.yaml:7: model 'm': no backend 'other' in 'backends'" },
	{ BK "models:\n  - {name: m}\n", "t.yaml:7: model 'm' needs a backend" },
	{ BK "models:\n  - {backend: vllm}\n", "t.yaml:7: a model needs a name" },
	{ BK "models:\n  - {name: m, backend: vllm}\n  - {name: m, backend: vllm}\n",
	  "t.yaml:8: model 'm' is already defined at line 7" },
	{ BK "models:\n  - {name: \"a b\", backend: vllm}\n",
	  "t.yaml:7: model name 'a b': printable ASCII without spaces, quotes or '\\'" },
	/* mcp */
	{ L "mcp: {server: []}\n",
	  "t.yaml:3: unknown key 'server' in mcp; did you mean 'servers'?" },
	{ BK "mcp:\n  servers:\n    - {name: a, backend: ev}\n    - {name: b, backend: ev, prefix: "
	     "a_x}\n",
	  "t.yaml:9: MCP server 'b': prefix 'a_x' and server 'a''s prefix 'a_' (line 8) overlap; "
	  "tool names would be ambiguous" },
	{ BK "mcp:\n  servers:\n    - {name: a, backend: ev}\n    - {name: a, backend: vllm, "
	     "prefix: z_}\n",
	  "t.yaml:9: MCP server 'a' is already defined at line 8" },
	{ BK "mcp:\n  servers:\n    - {name: a, backend: nope}\n",
	  "t.yaml:8: MCP server 'a': no backend 'nope' in 'backends'" },
	{ BK "mcp:\n  servers:\n    - {name: a}\n", "t.yaml:8: MCP server 'a' needs a backend" },
	{ BK "mcp:\n  origins: [localhost:3000]\n",
	  "t.yaml:7: origins: 'localhost:3000' is not an origin like http://localhost:3000 "
	  "(scheme, host, optional port; no path)" },
	{ BK "mcp:\n  origins: [\"http://localhost:3000/\"]\n",
	  "t.yaml:7: origins: 'http://localhost:3000/' is not an origin like "
	  "http://localhost:3000 (scheme, host, optional port; no path)" },
	/* limits */
	{ L "limits: [1]\n", "t.yaml:3: 'limits' must be a mapping (key: value), not a list" },
	{ L "limits: {conns: 0}\n", "t.yaml:3: 'conns' is 0; it must be 1..1000000" },
	{ L "limits: {conns: -5}\n", "t.yaml:3: 'conns' must be a whole number, not '-5'" },
	{ L "limits: {conns: 99999999999999999999999}\n",
	  "t.yaml:3: 'conns' must be a whole number, not '99999999999999999999999'" },
	{ L "limits: {header_bytes: 16K}\n",
	  "t.yaml:3: 'header_bytes': '16K' is not a size; use bytes or a whole number with KiB, "
	  "MiB, GiB (16KiB) or KB, MB, GB" },
	{ L "limits: {header_bytes: 512}\n",
	  "t.yaml:3: 'header_bytes': 512 is out of range 1KiB..1MiB" },
	{ L "limits: {body_bytes: 2GiB}\n",
	  "t.yaml:3: 'body_bytes': 2GiB is out of range 1KiB..1GiB" },
	{ L "limits: {out_bytes: 99999999999999999GiB}\n",
	  "t.yaml:3: 'out_bytes': 99999999999999999GiB is out of range 64KiB..1GiB" },
	{ L "limits: {header_timeout: 1.5s}\n",
	  "t.yaml:3: 'header_timeout': '1.5s' is not a duration; use a whole number with ms, s, m "
	  "or h (500ms, 10s, 2m, 1h)" },
	{ L "limits:\n  idle_timeout: 10\n",
	  "t.yaml:4: 'idle_timeout': '10' needs a unit: ms, s, m or h (like 10s)" },
	{ L "limits: {mcp_session_idle: 8d}\n",
	  "t.yaml:3: 'mcp_session_idle': '8d' is not a duration; use a whole number with ms, s, m "
	  "or h (500ms, 10s, 2m, 1h)" },
	{ L "limits: {mcp_session_idle: 169h}\n",
	  "t.yaml:3: 'mcp_session_idle': 169h is out of range 1s..168h" },
	{ L "limits:\n  body_bytes: 2MiB\n  rx_budget: 1MiB\n",
	  "t.yaml:5: limits: rx_budget 1MiB is below header_bytes + body_bytes (2064KiB): a "
	  "largest request could never be whole" },
	{ L "limits: {conn: 5}\n",
	  "t.yaml:3: unknown key 'conn' in limits; did you mean 'conns'?" },
	/* the rest */
	{ L "metrics: \"true\"\n",
	  "t.yaml:3: 'metrics' must be true or false, not the quoted string \"true\"" },
	{ L "metrics: yes\n", "t.yaml:3: 'metrics' must be true or false, not 'yes'" },
	{ L "metrics:\n", "t.yaml:3: 'metrics' has no value; expected true or false" },
	{ L "user: \"a:b\"\n", "t.yaml:3: user: 'a:b' is not a user name" },
	{ L "drain: 2h\n", "t.yaml:3: 'drain': 2h is out of range 0s..1h" },
	{ L "access_log: \"a\\tb\"\n", "t.yaml:3: 'access_log' contains a control character" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct wpd_config *c = (struct wpd_config *)1;
		char err[512] = "";
		int ret = wpd_config_parse("t.yaml", bads[i].text, strlen(bads[i].text), &c, err,
					   sizeof(err));

		if (ret != -EINVAL || c != NULL || strcmp(err, bads[i].msg)) {
			fprintf(stderr, "case %zu: ret %d\n  got:  %s\n  want: %s\n", i, ret, err,
				bads[i].msg);
			exit(1);
		}
	}
	/* a NUL byte, a file too large, a short error buffer */
	{
		struct wpd_config *c;
		char err[64], *big;

		CHECK_EQ(wpd_config_parse("t.yaml", "a\0b", 3, &c, err, sizeof(err)), -EINVAL);
		CHECK(!strcmp(err, "t.yaml: contains a NUL byte: not a text file?"));
		big = calloc(1, (2u << 20) + 1);
		CHECK(big);
		memset(big, ' ', 2u << 20);
		CHECK_EQ(wpd_config_parse("t.yaml", big, 2u << 20, &c, err, sizeof(err)), -EINVAL);
		CHECK(!strcmp(err, "t.yaml: larger than 1048576 bytes"));
		free(big);
		CHECK_EQ(wpd_config_parse("t.yaml", "x: 1\n", 5, &c, err, 8), -EINVAL);
		CHECK(!strcmp(err, "t.yaml:"));
		CHECK_EQ(wpd_config_parse("t.yaml", "x: 1\n", 5, &c, NULL, 0), -EINVAL);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

/* A check's one line of output. */
static int check_out(const char *path, char *out, size_t len)
{
	FILE *f = fmemopen(out, len, "w");
	int rc;

	CHECK(f);
	rc = wpd_config_check(path, f);
	fclose(f);
	return rc;
}

static void test_load_and_check(void)
{
	char dir[] = "/tmp/wpd-config-XXXXXX", p[256], q[256], out[1024], want[1024];
	struct wpd_config *c;
	char err[512];

	CHECK(mkdtemp(dir));
	/* relative paths are the config file's folder's */
	snprintf(p, sizeof(p), "%s/w.yaml", dir);
	write_file(p, "listen:\n  - unix: w.sock\n  - unix: \"@abs\"\n"
		      "  - tcp: 127.0.0.1:0\n    tls: {cert: c.pem, key: /k.pem}\n"
		      "policy: t.rules\naccess_log: log/a.jsonl\n");
	CHECK_EQ(wpd_config_load(p, &c, err, sizeof(err)), 0);
	snprintf(q, sizeof(q), "%s/w.sock", dir);
	CHECK(!strcmp(c->listen[0].addr, q));
	CHECK(!strcmp(c->listen[1].addr, "@abs"));
	snprintf(q, sizeof(q), "%s/c.pem", dir);
	CHECK(!strcmp(c->listen[2].tls_cert, q));
	CHECK(!strcmp(c->listen[2].tls_key, "/k.pem"));
	snprintf(q, sizeof(q), "%s/t.rules", dir);
	CHECK(!strcmp(c->policy, q));
	snprintf(q, sizeof(q), "%s/log/a.jsonl", dir);
	CHECK(!strcmp(c->access_log, q));
	CHECK(!strcmp(c->path, p));
	wpd_config_free(c);

	/* file errors */
	snprintf(q, sizeof(q), "%s/none.yaml", dir);
	CHECK_EQ(wpd_config_load(q, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", q);
	CHECK(!strcmp(err, want));
	CHECK_EQ(wpd_config_load(q, &c, NULL, 0), -ENOENT); /* no buffer: no reason */
	CHECK_EQ(wpd_config_load(dir, &c, err, sizeof(err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: not a regular file of at most 1048576 bytes", dir);
	CHECK(!strcmp(err, want));

	/* --check: the rules file is loaded too */
	write_file(p, "listen: [{tcp: 127.0.0.1:0}, {unix: w.sock}]\npolicy: t.rules\n"
		      "backends:\n  - {name: a, native: \"shm://@m\"}\n  - {name: e, stdio: [x]}\n"
		      "models: [{name: m, backend: a}]\n"
		      "mcp: {servers: [{name: e, backend: e}]}\n");
	snprintf(q, sizeof(q), "%s/t.rules", dir);
	write_file(
		q,
		"default drop\n"
		"tenant a id 1 key 00112233445566778899aabbccddeeff\n"
		"  api_key sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		"tenant b id 2 key 0f0e0d0c0b0a09080706050403020100\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 0);
	snprintf(want, sizeof(want),
		 "%s: ok (2 listeners, 2 backends, 1 models, 1 MCP servers, 2 tenants)\n", p);
	if (strcmp(out, want)) {
		fprintf(stderr, "got %s", out);
		exit(1);
	}
	/* a bad rules file: its own FILE:LINE, and which config line named it */
	write_file(q, "default drop\ntenant a id 1 key 00112233445566778899aabbccddeeff\n"
		      "  api_key sha256:"
		      "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 1);
	snprintf(want, sizeof(want),
		 "%s:3: 'api_key' needs 64 hex digits after 'sha256:' (policy at %s:2)\n", q, p);
	if (strcmp(out, want)) {
		fprintf(stderr, "got %s", out);
		exit(1);
	}
	unlink(q);
	CHECK_EQ(check_out(p, out, sizeof(out)), 1);
	snprintf(want, sizeof(want),
		 "%s: cannot open: No such file or directory (policy at %s:2)\n", q, p);
	CHECK(!strcmp(out, want));
	/* a bad config: its line */
	write_file(p, "listen: [{tcp: 127.0.0.1:0}]\nauth: none\ndrain: soon\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 1);
	snprintf(want, sizeof(want),
		 "%s:3: 'drain': 'soon' is not a duration; use a whole number with ms, s, m or h "
		 "(500ms, 10s, 2m, 1h)\n",
		 p);
	CHECK(!strcmp(out, want));
	/* auth: none: no tenants; TLS files must be readable; the XDP interface must exist */
	write_file(p, "listen: [{tcp: 127.0.0.1:0}]\nauth: none\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 0);
	snprintf(want, sizeof(want),
		 "%s: ok (1 listeners, 0 backends, 0 models, 0 MCP servers, 0 tenants)\n", p);
	CHECK(!strcmp(out, want));
	write_file(
		p,
		"auth: none\nlisten:\n  - tcp: 127.0.0.1:0\n    tls: {cert: c.pem, key: k.pem}\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "%s:3: tls cert '%s/c.pem': No such file or directory\n", p,
		 dir);
	CHECK(!strcmp(out, want));
	write_file(p, "auth: none\nlisten: [{tcp: 127.0.0.1:0}]\nxdp: wpdnosuch0\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "%s:3: xdp: no interface 'wpdnosuch0' here (No such device)\n",
		 p);
	CHECK(!strcmp(out, want));
	write_file(p, "auth: none\nlisten: [{tcp: 127.0.0.1:0}]\nxdp: lo\n");
	CHECK_EQ(check_out(p, out, sizeof(out)), 0);
	unlink(p);
	CHECK(rmdir(dir) == 0);
}

int main(void)
{
	test_watchdog(30);
	test_full();
	test_defaults();
	test_bad();
	test_load_and_check();
	printf("test_daemon_config: full and default files, %zu bad files with FILE:LINE, load "
	       "and --check\n",
	       sizeof(bads) / sizeof(bads[0]));
	return 0;
}
