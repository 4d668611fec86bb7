// SPDX-License-Identifier: MIT
/*
 * Fuzz target for the native service contracts' decoders: the header-only
 * ones of include/wirepath/service.h (a service parses requests the daemon
 * built from client input; the daemon parses finish chunks a service sent)
 * and the embeddings prompt walk `wirepath serve` uses (tools/svc.h). Built
 * two ways (tests/fuzz/fuzz.h): with libFuzzer by tests/fuzz/run.sh, and
 * into test_fuzz_service, which replays tests/fuzz/corpus-service/ (written
 * by make-corpus-service.py) and mutations of it.
 *
 * wp-fuzz-args: -max_len=4096
 *
 * Per input, each decoder on the whole input:
 *  (a) wp_svc_req_parse: accepts exactly when the header is whole, version
 *      1, kind 1..3, model_len <= 256 and the three lengths add up to the
 *      input; the parts it points at tile the input; re-encoding the header
 *      gives the input's bytes when its flags and reserved are 0. When the
 *      request is accepted, its prompt goes through (d).
 *  (b) wp_svc_finish_parse: accepts exactly 12 bytes of type 'F' with reason
 *      0 or 1; re-encoding gives the input when its reserved bytes are 0.
 *  (c) wp_svc_tool_parse: accepts exactly when name_len is 1..256 and fits;
 *      name and arguments tile the rest of the input.
 *  (d) svc_embed_inputs: accepts exactly when [u32 len][bytes] records fill
 *      the input (1..65536 of them), with the word count of a second walk;
 *      a refusal says why.
 * A broken invariant aborts.
 */
#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "svc.h"
#include "wirepath/service.h"

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static void check_embed(const char *p, uint32_t len)
{
	uint32_t count = 0xdead, words = 0xbeef, off = 0, n = 0, w = 0;
	const char *why = NULL;
	int ok = 1;
	int rc = svc_embed_inputs(p, len, &count, &words, &why);

	while (off < len) {
		uint32_t l;

		if (len - off < 4 || (l = get32((const uint8_t *)p + off)) > len - off - 4 ||
		    n == SVC_EMBED_INPUTS_MAX) {
			ok = 0;
			break;
		}
		w += svc_count_words(p + off + 4, l);
		off += 4 + l;
		n++;
	}
	ok = ok && n > 0;
	FUZZ_CHECK((rc == 0) == ok);
	if (rc == 0) {
		FUZZ_CHECK(count == n && words == w);
		FUZZ_CHECK(words <= len);
	} else {
		FUZZ_CHECK(rc == -EINVAL && why && *why);
		FUZZ_CHECK(count == 0xdead && words == 0xbeef); /* untouched */
	}
}

static void check_req(const uint8_t *data, uint32_t size)
{
	struct wp_svc_req r;
	struct wp_svc_req_hdr h;
	int rc = wp_svc_req_parse(data, size, &r);
	int ok = size >= 32;

	if (ok) {
		uint32_t kind = get32(data + 4);
		uint64_t sum = 32ull + get32(data + 16) + get32(data + 20) + get32(data + 24);

		ok = get32(data) == WP_SVC_VERSION && kind >= 1 && kind <= 3 &&
		     get32(data + 16) <= WP_SVC_MODEL_MAX && sum == size;
	}
	FUZZ_CHECK((rc == 0) == ok);
	if (rc != 0) {
		FUZZ_CHECK(rc == -22);
		return;
	}
	FUZZ_CHECK(r.model == (const char *)data + 32);
	FUZZ_CHECK(r.prompt == r.model + r.h.model_len);
	FUZZ_CHECK(r.body == r.prompt + r.h.prompt_len);
	FUZZ_CHECK(r.body + r.h.body_len == (const char *)data + size);
	wp_svc_req_hdr_init(&h, r.h.kind, r.h.max_tokens, r.h.model_len, r.h.prompt_len,
			    r.h.body_len);
	if (get32(data + 12) == 0 && get32(data + 28) == 0)
		FUZZ_CHECK(!memcmp(&h, data, sizeof(h)));
	check_embed(r.prompt, r.h.prompt_len);
}

static void check_finish(const uint8_t *data, uint32_t size)
{
	struct wp_svc_finish f, g;
	int rc = wp_svc_finish_parse(data, size, &f);
	int ok = size == 12 && data[0] == WP_SVC_CHUNK_FINISH && data[1] <= WP_SVC_FINISH_LENGTH;

	FUZZ_CHECK((rc == 0) == ok);
	if (rc != 0)
		return;
	FUZZ_CHECK(f.prompt_tokens == get32(data + 4) && f.completion_tokens == get32(data + 8));
	wp_svc_finish_init(&g, f.reason, f.prompt_tokens, f.completion_tokens);
	if (data[2] == 0 && data[3] == 0)
		FUZZ_CHECK(!memcmp(&g, data, sizeof(g)));
}

static void check_tool(const uint8_t *data, uint32_t size)
{
	const char *name = NULL, *args = NULL;
	uint32_t name_len = 0, args_len = 0;
	int rc = wp_svc_tool_parse(data, size, &name, &name_len, &args, &args_len);
	int ok = size >= 8 && get32(data) >= 1 && get32(data) <= WP_SVC_TOOL_NAME_MAX &&
		 get32(data) <= size - 8;

	FUZZ_CHECK((rc == 0) == ok);
	if (rc != 0) {
		FUZZ_CHECK(name == NULL && args == NULL);
		return;
	}
	FUZZ_CHECK(name == (const char *)data + 8 && name_len == get32(data));
	FUZZ_CHECK(args == name + name_len && args + args_len == (const char *)data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t n = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;

	check_req(data, n);
	check_finish(data, n);
	check_tool(data, n);
	check_embed((const char *)data, n);
	return 0;
}
