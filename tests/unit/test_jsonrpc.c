// SPDX-License-Identifier: MIT
/*
 * JSON-RPC for MCP (src/daemon/jsonrpc.c): every kind of message is
 * classified as it should be, every malformed shape is INVALID with the id
 * kept when it could be read, batches are seen as arrays, and what the
 * encoders write parses back into the same kind with the same id.
 */
#include "testlib.h"
#include "daemon/jsonrpc.h"

#define LOAD(s, why) wpd_rpc_load(s, strlen(s), why)

static enum wpd_rpc_kind kind_of(const char *text, struct wpd_rpc *r, json_t **root)
{
	const char *why = NULL;

	*root = wpd_rpc_load(text, strlen(text), &why);
	if (!*root) {
		fprintf(stderr, "load failed: %s: %s\n", text, why);
		exit(1);
	}
	return wpd_rpc_classify(*root, r);
}

static void expect(const char *text, enum wpd_rpc_kind k)
{
	struct wpd_rpc r;
	json_t *root;
	enum wpd_rpc_kind got = kind_of(text, &r, &root);

	if (got != k) {
		fprintf(stderr, "%s: kind %d, expected %d (%s)\n", text, got, k,
			r.why ? r.why : "");
		exit(1);
	}
	if (k == WPD_RPC_INVALID)
		CHECK_EQ(r.code, WPD_RPC_INVALID_REQUEST);
	json_decref(root);
}

static void roundtrip(json_t *msg, enum wpd_rpc_kind k)
{
	size_t len;
	char *text = wpd_rpc_dump(msg, &len);
	struct wpd_rpc a, b;
	json_t *back;

	CHECK(text);
	CHECK_EQ(wpd_rpc_classify(msg, &a), k);
	back = wpd_rpc_load(text, len, NULL);
	CHECK(back);
	CHECK_EQ(wpd_rpc_classify(back, &b), k);
	CHECK(json_equal(a.id ? a.id : json_null(), b.id ? b.id : json_null()));
	free(text);
	json_decref(back);
	json_decref(msg);
}

int main(void)
{
	struct wpd_rpc r;
	json_t *root, *id;
	const char *why;

	test_watchdog(30);
	/* the four kinds */
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", WPD_RPC_REQUEST);
	expect("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{}}",
	       WPD_RPC_REQUEST);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"x\",\"params\":[1]}", WPD_RPC_REQUEST);
	expect("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
	       WPD_RPC_NOTIFICATION);
	expect("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}", WPD_RPC_RESPONSE);
	expect("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}", WPD_RPC_RESPONSE);
	expect("{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"error\":{\"code\":-32601,\"message\":\"no\"}}",
	       WPD_RPC_ERROR);
	expect("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"p\"}}",
	       WPD_RPC_ERROR);

	/* what MCP forbids */
	expect("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", WPD_RPC_INVALID);
	expect("{\"id\":1,\"method\":\"ping\"}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":3}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"result\":{}}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"\"}}",
	       WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"result\":{}}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"\"}}",
	       WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":5}", WPD_RPC_INVALID);
	expect("{\"jsonrpc\":\"2.0\",\"id\":1}", WPD_RPC_INVALID);
	expect("{}", WPD_RPC_INVALID);

	/* an invalid request keeps its id when the id itself is fine */
	CHECK_EQ(kind_of("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":7}", &r, &root),
		 WPD_RPC_INVALID);
	CHECK(json_is_integer(r.id) && json_integer_value(r.id) == 42);
	json_decref(root);
	CHECK_EQ(kind_of("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"x\"}", &r, &root),
		 WPD_RPC_INVALID);
	CHECK(r.id == NULL);
	json_decref(root);

	/* _meta */
	CHECK_EQ(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
			 "{\"_meta\":{\"progressToken\":\"t1\"}}}",
			 &r, &root),
		 WPD_RPC_REQUEST);
	CHECK(!strcmp(json_string_value(wpd_rpc_meta(&r, "progressToken")), "t1"));
	CHECK(wpd_rpc_meta(&r, "other") == NULL);
	json_decref(root);

	/* load: not JSON, scalars, duplicates, too big; a batch is an array */
	CHECK(!LOAD("{", &why) && why && *why);
	CHECK(!LOAD("42", &why));
	CHECK(!LOAD("\"s\"", &why));
	CHECK(!LOAD("{\"id\":1,\"id\":2}", &why));
	CHECK(!LOAD("{\"m\":\"a\\u0000b\"}", &why)); /* NUL inside a string */
	CHECK(!LOAD("{} {}", &why));
	root = LOAD("[{\"jsonrpc\":\"2.0\",\"method\":\"a\"},1]", &why);
	CHECK(json_is_array(root));
	CHECK_EQ(wpd_rpc_classify(json_array_get(root, 0), &r), WPD_RPC_NOTIFICATION);
	CHECK_EQ(wpd_rpc_classify(json_array_get(root, 1), &r), WPD_RPC_INVALID);
	json_decref(root);
	{
		size_t n = WPD_RPC_MAX_BYTES + 1;
		char *big = malloc(n);

		CHECK(big);
		memset(big, ' ', n);
		big[0] = '{';
		big[n - 1] = '}';
		CHECK(!wpd_rpc_load(big, n, &why));
		CHECK(!strcmp(why, "message too large"));
		free(big);
	}

	/* encoders: the right kind, the id kept, exactly what was asked */
	id = json_string("abc");
	roundtrip(wpd_rpc_response(id, json_pack("{s:i}", "x", 1)), WPD_RPC_RESPONSE);
	roundtrip(wpd_rpc_response(id, NULL), WPD_RPC_RESPONSE);
	roundtrip(wpd_rpc_error(id, WPD_RPC_METHOD_NOT_FOUND, "Method not found", NULL),
		  WPD_RPC_ERROR);
	roundtrip(wpd_rpc_error(NULL, WPD_RPC_PARSE_ERROR, "Parse error", id), WPD_RPC_ERROR);
	roundtrip(wpd_rpc_errorf(id, WPD_RPC_INVALID_PARAMS, "bad %d", 3), WPD_RPC_ERROR);
	roundtrip(wpd_rpc_request(id, "tools/list", NULL), WPD_RPC_REQUEST);
	roundtrip(wpd_rpc_notification("notifications/cancelled", NULL), WPD_RPC_NOTIFICATION);
	json_decref(id);
	id = json_integer(9007199254740993ll);
	root = wpd_rpc_error(id, -32000, "x", NULL);
	CHECK(json_integer_value(json_object_get(root, "id")) == 9007199254740993ll);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(root, "error"), "code")),
		 -32000);
	json_decref(root);
	json_decref(id);
	{
		size_t len;
		json_t *e = wpd_rpc_error(NULL, -32700, "Parse error", NULL);
		char *t = wpd_rpc_dump(e, &len);

		CHECK(!strcmp(t, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
				 "\"message\":\"Parse error\"}}"));
		CHECK_EQ(len, strlen(t));
		free(t);
		json_decref(e);
	}
	printf("test_jsonrpc: ok\n");
	return 0;
}
