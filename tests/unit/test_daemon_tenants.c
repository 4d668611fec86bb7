// SPDX-License-Identifier: MIT
/*
 * wirepathd's tenants (src/daemon/tenants.c) on a controlled clock: API key
 * hits and misses, request-rate, concurrency and token-budget refusals with
 * their Retry-After, per-minute and per-hour rates, model and tool
 * allow-lists, the carry of live state across a reload (and in-flight
 * requests that end on the old set), reference counting, and a bad rules
 * file's FILE:LINE. No privileges needed.
 */
#include <sys/stat.h>

#include "testlib.h"
#include "daemon/tenants.h"

#define S 1000000000ull
#define T0 (1000 * S) /* the test clock's start */

/* SHA-256("test"), SHA-256("sk-acme-2"), SHA-256("sk-beta") */
#define H_TEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static char dir[] = "/tmp/wpd-tenants-XXXXXX";
static char path[256];

static void write_rules(const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

static struct wpd_tenants *load(const char *text)
{
	struct wpd_tenants *t = NULL;
	char err[512] = "";

	write_rules(text);
	if (wpd_tenants_load(path, &t, err, sizeof(err))) {
		fprintf(stderr, "load failed: %s\n", err);
		exit(1);
	}
	CHECK(t);
	return t;
}

/* The hex SHA-256 of s, as `wirepath policy hash-key` prints it. */
#include <openssl/evp.h>
static const char *hash(const char *s)
{
	static char out[8][65];
	static int k;
	unsigned char d[32];
	unsigned int n = 0;
	char *o = out[k++ % 8];

	CHECK(EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL) && n == 32);
	for (int i = 0; i < 32; i++)
		sprintf(o + 2 * i, "%02x", d[i]);
	return o;
}

static struct wpd_tenant *auth(const struct wpd_tenants *t, const char *token)
{
	return (struct wpd_tenant *)wpd_tenants_auth(t, token, strlen(token));
}

static void test_auth(void)
{
	char rules[2048];
	struct wpd_tenants *t;
	struct wpd_tenant *a, *b;

	CHECK(!strcmp(hash("test"), H_TEST));
	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 7 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  api_key sha256:%s\n"
		 "tenant beta id 9 key 0f0e0d0c0b0a09080706050403020100\n"
		 "  api_key sha256:%s\n"
		 "tenant nokey id 11 key 0f0e0d0c0b0a09080706050403020101\n",
		 H_TEST, hash("sk-acme-2"), hash("sk-beta"));
	t = load(rules);
	CHECK_EQ(wpd_tenants_count(t), 3);
	a = auth(t, "test");
	CHECK(a);
	CHECK(!strcmp(wpd_tenant_name(a), "acme"));
	CHECK_EQ(wpd_tenant_id(a), 7);
	CHECK(wpd_tenant_set(a) == t);
	CHECK(auth(t, "sk-acme-2") == a);
	b = auth(t, "sk-beta");
	CHECK(b && b != a);
	CHECK_EQ(wpd_tenant_id(b), 9);
	CHECK(wpd_tenants_at(t, 2) && !strcmp(wpd_tenant_name(wpd_tenants_at(t, 2)), "nokey"));
	CHECK(wpd_tenants_at(t, 3) == NULL);
	/* misses: another token, a prefix, a longer one, empty, NULL */
	CHECK(auth(t, "tesT") == NULL);
	CHECK(auth(t, "tes") == NULL);
	CHECK(auth(t, "test ") == NULL);
	CHECK(wpd_tenants_auth(t, "test", 0) == NULL);
	CHECK(wpd_tenants_auth(t, NULL, 4) == NULL);
	/* the length given is what counts, not a NUL */
	CHECK(wpd_tenants_auth(t, "testXYZ", 4) == a);
	/* no allow-lists: everything allowed; no limits: always admitted */
	CHECK(wpd_tenant_model_ok(a, "anything"));
	CHECK(wpd_tenant_tool_ok(a, "any_tool"));
	for (int i = 0; i < 1000; i++) {
		uint32_t ra = 99;

		CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK);
		CHECK_EQ(ra, 0);
	}
	CHECK_EQ(wpd_tenant_inflight(a), 1000);
	for (int i = 0; i < 1000; i++)
		wpd_tenant_done(a);
	CHECK_EQ(wpd_tenant_inflight(a), 0);
	wpd_tenant_done(a); /* never below zero */
	CHECK_EQ(wpd_tenant_inflight(a), 0);
	wpd_tenants_free(t);

	/* many keys: the table grows, every one found */
	{
		char *big = malloc(200000);
		size_t n = 0;
		char tok[32];

		CHECK(big);
		n += (size_t)sprintf(big, "default drop\n");
		for (int i = 0; i < 100; i++) {
			n += (size_t)sprintf(big + n, "tenant t%d id %d key %032x\n", i, i + 1,
					     i + 1);
			for (int k = 0; k < 8; k++) {
				snprintf(tok, sizeof(tok), "tok-%d-%d", i, k);
				n += (size_t)sprintf(big + n, "  api_key sha256:%s\n", hash(tok));
			}
		}
		t = load(big);
		for (int i = 0; i < 100; i++)
			for (int k = 0; k < 8; k++) {
				snprintf(tok, sizeof(tok), "tok-%d-%d", i, k);
				a = auth(t, tok);
				CHECK(a && wpd_tenant_id(a) == (uint32_t)i + 1);
			}
		CHECK(auth(t, "tok-100-0") == NULL);
		wpd_tenants_free(t);
		free(big);
	}
}

static void test_limits(void)
{
	struct wpd_tenants *t;
	struct wpd_tenant *a;
	uint32_t ra;
	char rules[1024];

	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  requests 10/s burst 5\n"
		 "  concurrency 3\n",
		 H_TEST);
	t = load(rules);
	a = auth(t, "test");
	CHECK(a);
	/* concurrency: 3 in flight, the 4th refused, a slot freed admits again */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK);
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_CONCURRENCY);
	CHECK_EQ(ra, 1);
	wpd_tenant_done(a);
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK); /* 4 taken of the burst 5 */
	for (int i = 0; i < 3; i++)
		wpd_tenant_done(a);
	/* the burst: one more, then the rate; a concurrency refusal took no token */
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK);
	wpd_tenant_done(a);
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_RATE);
	CHECK_EQ(ra, 1); /* 0.1 s away: rounded up to 1 */
	/* 10/s: 100 ms later there is exactly one */
	CHECK_EQ(wpd_tenant_admit(a, T0 + S / 10 - 1, &ra), WPD_ADMIT_RATE);
	CHECK_EQ(wpd_tenant_admit(a, T0 + S / 10, &ra), WPD_ADMIT_OK);
	wpd_tenant_done(a);
	CHECK_EQ(wpd_tenant_admit(a, T0 + S / 10, &ra), WPD_ADMIT_RATE);
	/* an hour idle refills to the burst, never beyond */
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(wpd_tenant_admit(a, T0 + 3600 * S, &ra), WPD_ADMIT_OK);
		wpd_tenant_done(a);
	}
	CHECK_EQ(wpd_tenant_admit(a, T0 + 3600 * S, &ra), WPD_ADMIT_RATE);
	/* a clock that steps back changes nothing */
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_RATE);
	wpd_tenants_free(t);

	/* per minute and per hour: Retry-After in whole seconds */
	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant a id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  requests 6/m burst 1\n"
		 "tenant b id 2 key 0f0e0d0c0b0a09080706050403020100\n"
		 "  api_key sha256:%s\n"
		 "  requests 2/h burst 1\n",
		 H_TEST, hash("b"));
	t = load(rules);
	a = auth(t, "test");
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK);
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_RATE);
	CHECK_EQ(ra, 10);
	CHECK_EQ(wpd_tenant_admit(a, T0 + 4 * S, &ra), WPD_ADMIT_RATE);
	CHECK_EQ(ra, 6);
	CHECK_EQ(wpd_tenant_admit(a, T0 + 10 * S, &ra), WPD_ADMIT_OK);
	a = auth(t, "b");
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK);
	CHECK_EQ(wpd_tenant_admit(a, T0 + 1, &ra), WPD_ADMIT_RATE);
	CHECK_EQ(ra, 1800);
	wpd_tenants_free(t);
}

static void test_tokens(void)
{
	struct wpd_tenants *t;
	struct wpd_tenant *a;
	uint32_t ra;
	char rules[1024];

	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  tokens 100/s burst 1000\n",
		 H_TEST);
	t = load(rules);
	a = auth(t, "test");
	/* the budget is checked at admission, charged after generation: a
	 * request that runs over is never cut, the next one waits */
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK);
	wpd_tenant_charge_tokens(a, T0, 999);
	wpd_tenant_done(a);
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_OK); /* one token left */
	wpd_tenant_charge_tokens(a, T0, 1500);                /* 1499 in debt */
	wpd_tenant_done(a);
	CHECK_EQ(wpd_tenant_admit(a, T0, &ra), WPD_ADMIT_TOKENS);
	CHECK_EQ(ra, 15); /* 1500 tokens at 100/s to be above zero again */
	CHECK_EQ(wpd_tenant_admit(a, T0 + 14 * S, &ra), WPD_ADMIT_TOKENS);
	CHECK_EQ(ra, 1);
	CHECK_EQ(wpd_tenant_admit(a, T0 + 15 * S, &ra), WPD_ADMIT_OK);
	wpd_tenant_done(a);
	/* charging nothing, or a tenant without a token rate, is a no-op */
	wpd_tenant_charge_tokens(a, T0 + 15 * S, 0);
	CHECK_EQ(wpd_tenant_admit(a, T0 + 15 * S, &ra), WPD_ADMIT_OK);
	wpd_tenant_done(a);
	wpd_tenants_free(t);
}

static void test_allow_lists(void)
{
	struct wpd_tenants *t;
	const struct wpd_tenant *a, *b;
	char rules[1024];

	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  models wp-stub gpt-* meta-llama/*\n"
		 "  tools everything_* echo ?dd\n"
		 "tenant beta id 2 key 0f0e0d0c0b0a09080706050403020100\n"
		 "  api_key sha256:%s\n"
		 "  tools none_at_all\n",
		 H_TEST, hash("b"));
	t = load(rules);
	a = auth(t, "test");
	b = auth(t, "b");
	CHECK(wpd_tenant_model_ok(a, "wp-stub"));
	CHECK(wpd_tenant_model_ok(a, "gpt-4o"));
	CHECK(wpd_tenant_model_ok(a, "gpt-"));
	CHECK(wpd_tenant_model_ok(a, "meta-llama/Llama-3.1-8B-Instruct"));
	CHECK(!wpd_tenant_model_ok(a, "wp-stub2"));
	CHECK(!wpd_tenant_model_ok(a, "gpt4"));
	CHECK(!wpd_tenant_model_ok(a, "claude"));
	CHECK(!wpd_tenant_model_ok(a, ""));
	CHECK(!wpd_tenant_model_ok(a, NULL));
	CHECK(wpd_tenant_tool_ok(a, "everything_echo"));
	CHECK(wpd_tenant_tool_ok(a, "echo"));
	CHECK(wpd_tenant_tool_ok(a, "add"));
	CHECK(!wpd_tenant_tool_ok(a, "adds"));
	CHECK(!wpd_tenant_tool_ok(a, "other_echo"));
	/* beta: no model list (all), a tool list that matches nothing real */
	CHECK(wpd_tenant_model_ok(b, "anything/at:all"));
	CHECK(!wpd_tenant_tool_ok(b, "everything_echo"));
	CHECK(wpd_tenant_tool_ok(b, "none_at_all"));
	wpd_tenants_free(t);
}

static void test_reload(void)
{
	struct wpd_tenants *t1, *t2, *t3;
	struct wpd_tenant *a1, *a2, *c2, *a3;
	uint32_t ra;
	char rules[1024];

	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  requests 1/s burst 4\n"
		 "  concurrency 2\n",
		 H_TEST);
	t1 = load(rules);
	a1 = auth(t1, "test");
	/* two requests in flight on the old set, each holding a reference */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(wpd_tenant_admit(a1, T0, &ra), WPD_ADMIT_OK);
		wpd_tenants_get(wpd_tenant_set(a1));
	}
	/* the reload: a new key for acme, a new tenant; same id carries */
	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme-renamed id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  requests 1/s burst 4\n"
		 "  concurrency 2\n"
		 "tenant carol id 3 key 0f0e0d0c0b0a09080706050403020100\n"
		 "  api_key sha256:%s\n"
		 "  concurrency 1\n",
		 hash("new-acme"), hash("carol"));
	t2 = load(rules);
	wpd_tenants_carry(t2, t1);
	wpd_tenants_free(t1);            /* the owner lets go; requests still hold it */
	CHECK(auth(t2, "test") == NULL); /* the old key is gone */
	a2 = auth(t2, "new-acme");
	CHECK(a2 && !strcmp(wpd_tenant_name(a2), "acme-renamed"));
	/* the carried state: 2 in flight (concurrency full), 2 of 4 tokens used */
	CHECK_EQ(wpd_tenant_inflight(a2), 2);
	CHECK_EQ(wpd_tenant_admit(a2, T0, &ra), WPD_ADMIT_CONCURRENCY);
	/* the old requests end on the old tenant object: the new one sees it */
	wpd_tenant_done(a1);
	CHECK_EQ(wpd_tenant_inflight(a2), 1);
	wpd_tenants_put(wpd_tenant_set(a1));
	CHECK_EQ(wpd_tenant_admit(a2, T0, &ra), WPD_ADMIT_OK); /* 3 of 4 */
	wpd_tenant_done(a1);
	wpd_tenants_put(wpd_tenant_set(a1)); /* the last one: t1 is freed here */
	CHECK_EQ(wpd_tenant_inflight(a2), 1);
	CHECK_EQ(wpd_tenant_admit(a2, T0, &ra), WPD_ADMIT_OK); /* 4 of 4 */
	CHECK_EQ(wpd_tenant_admit(a2, T0, &ra), WPD_ADMIT_CONCURRENCY);
	wpd_tenant_done(a2);
	wpd_tenant_done(a2);
	CHECK_EQ(wpd_tenant_admit(a2, T0, &ra), WPD_ADMIT_RATE); /* not reset by the reload */
	/* a new tenant starts fresh */
	c2 = auth(t2, "carol");
	CHECK(c2);
	CHECK_EQ(wpd_tenant_admit(c2, T0, &ra), WPD_ADMIT_OK);
	CHECK_EQ(wpd_tenant_admit(c2, T0, &ra), WPD_ADMIT_CONCURRENCY);
	wpd_tenant_done(c2);

	/* a second reload that lowers the burst: the level is clamped to it */
	snprintf(rules, sizeof(rules),
		 "default drop\n"
		 "tenant acme id 1 key 00112233445566778899aabbccddeeff\n"
		 "  api_key sha256:%s\n"
		 "  requests 1/s burst 1\n",
		 hash("new-acme"));
	t3 = load(rules);
	wpd_tenants_carry(t3, t2);
	wpd_tenants_free(t2);
	a3 = auth(t3, "new-acme");
	CHECK_EQ(wpd_tenant_admit(a3, T0 + 100 * S, &ra), WPD_ADMIT_OK);
	wpd_tenant_done(a3);
	CHECK_EQ(wpd_tenant_admit(a3, T0 + 100 * S, &ra), WPD_ADMIT_RATE);
	CHECK_EQ(ra, 1);
	/* carry with nothing to carry from is a no-op */
	wpd_tenants_carry(t3, NULL);
	wpd_tenants_free(t3);
}

static void test_errors(void)
{
	struct wpd_tenants *t = (struct wpd_tenants *)1;
	char err[512], want[600];

	write_rules("default drop\ntenant a id 1 key 00112233445566778899aabbccddeeff\n"
		    "  concurrency lots\n");
	CHECK_EQ(wpd_tenants_load(path, &t, err, sizeof(err)), -EINVAL);
	CHECK(t == NULL);
	snprintf(want, sizeof(want),
		 "%s:3: expected 'concurrency N' with N 1..1000000 (requests in flight)", path);
	CHECK(!strcmp(err, want));
	CHECK_EQ(wpd_tenants_load(path, &t, NULL, 0), -EINVAL); /* no buffer: no reason */
	CHECK_EQ(wpd_tenants_load("/nonexistent/t.rules", &t, err, sizeof(err)), -ENOENT);
	CHECK(!strcmp(err, "/nonexistent/t.rules: cannot open: No such file or directory"));
	/* a file without tenants is a valid, empty set */
	t = load("default pass\n");
	CHECK_EQ(wpd_tenants_count(t), 0);
	CHECK(auth(t, "test") == NULL);
	wpd_tenants_free(t);
	wpd_tenants_free(NULL);
}

int main(void)
{
	test_watchdog(60);
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.rules", dir);
	test_auth();
	test_limits();
	test_tokens();
	test_allow_lists();
	test_reload();
	test_errors();
	unlink(path);
	rmdir(dir);
	printf("test_daemon_tenants: auth, rates, concurrency, tokens, allow-lists, reload "
	       "carry\n");
	return 0;
}
