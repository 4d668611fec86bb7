// SPDX-License-Identifier: MIT
/*
 * Fuzz target for JSON-RPC framing (src/daemon/jsonrpc.c): what a client
 * POSTs to /mcp and what a stdio child writes are the same untrusted text.
 * Built two ways (tests/fuzz/fuzz.h): with libFuzzer by tests/fuzz/run.sh,
 * and into test_fuzz_jsonrpc, which replays tests/fuzz/corpus-jsonrpc/ and
 * mutations of it.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * Per input, parsed as a message or a batch:
 *  (a) no crash, no leak;
 *  (b) classification is consistent: the same answer twice, and each kind
 *      has exactly the fields it promises (a request a method and an id, a
 *      notification a method and no id, ...); INVALID carries -32600;
 *  (c) encode(parse(x)) parses: the compact dump loads again, is equal,
 *      and classifies the same way with an equal id;
 *  (d) an answer built for a request (result and error) is a RESPONSE and
 *      an ERROR with the request's id, after a dump and a load.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/jsonrpc.h"
#include "fuzz.h"

static int id_eq(const json_t *a, const json_t *b)
{
	if (!a || !b)
		return a == b;
	return json_equal(a, b);
}

static json_t *reload(const json_t *v)
{
	size_t len;
	char *text = wpd_rpc_dump(v, &len);
	json_t *back;

	FUZZ_CHECK(text);
	back = wpd_rpc_load(text, len, NULL);
	free(text);
	return back;
}

static void one(json_t *msg)
{
	struct wpd_rpc a, b, c;
	enum wpd_rpc_kind k = wpd_rpc_classify(msg, &a);
	json_t *back, *ans;

	FUZZ_CHECK(wpd_rpc_classify(msg, &b) == k && id_eq(a.id, b.id));
	switch (k) {
	case WPD_RPC_REQUEST:
		FUZZ_CHECK(a.method && *a.method && a.id && wpd_rpc_id_ok(a.id));
		FUZZ_CHECK(!a.params || json_is_object(a.params) || json_is_array(a.params));
		break;
	case WPD_RPC_NOTIFICATION:
		FUZZ_CHECK(a.method && *a.method && !a.id);
		break;
	case WPD_RPC_RESPONSE:
		FUZZ_CHECK(a.result && a.id && wpd_rpc_id_ok(a.id) && !a.method);
		break;
	case WPD_RPC_ERROR:
		FUZZ_CHECK(a.error && a.id && (json_is_null(a.id) || wpd_rpc_id_ok(a.id)));
		FUZZ_CHECK(json_is_integer(json_object_get(a.error, "code")));
		break;
	case WPD_RPC_INVALID:
		FUZZ_CHECK(a.code == WPD_RPC_INVALID_REQUEST && a.why && *a.why);
		FUZZ_CHECK(!a.id || wpd_rpc_id_ok(a.id));
		break;
	default:
		FUZZ_CHECK(0);
	}
	if (!json_is_object(msg))
		return;
	back = reload(msg);
	FUZZ_CHECK(back && json_equal(back, msg));
	FUZZ_CHECK(wpd_rpc_classify(back, &c) == k && id_eq(a.id, c.id));
	json_decref(back);
	if (k != WPD_RPC_REQUEST)
		return;
	ans = wpd_rpc_response(a.id, json_string("ok"));
	back = reload(ans);
	FUZZ_CHECK(back && wpd_rpc_classify(back, &c) == WPD_RPC_RESPONSE && id_eq(a.id, c.id));
	json_decref(back);
	json_decref(ans);
	ans = wpd_rpc_errorf(a.id, WPD_RPC_METHOD_NOT_FOUND, "Method not found: %.50s", a.method);
	back = reload(ans);
	FUZZ_CHECK(back && wpd_rpc_classify(back, &c) == WPD_RPC_ERROR && id_eq(a.id, c.id));
	json_decref(back);
	json_decref(ans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = wpd_rpc_load((const char *)data, size, NULL);
	size_t i;
	json_t *v;

	if (!root)
		return 0;
	FUZZ_CHECK(json_is_object(root) || json_is_array(root));
	if (json_is_array(root)) {
		json_t *back = reload(root);

		FUZZ_CHECK(back && json_equal(back, root));
		json_decref(back);
		json_array_foreach(root, i, v) one(v);
	} else {
		one(root);
	}
	json_decref(root);
	return 0;
}
