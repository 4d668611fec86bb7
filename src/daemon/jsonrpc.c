// SPDX-License-Identifier: MIT
/*
 * JSON-RPC 2.0 messages for MCP (jsonrpc.h): parse with jansson, classify
 * by the fields present, encode answers. Classification is strict where
 * MCP is (id string or number, never null in a request; params an object
 * or array; exactly one of result and error) so that what the daemon
 * forwards is always well-formed, whatever a client or child sent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/jsonrpc.h"

static __thread json_error_t load_err;

json_t *wpd_rpc_load(const char *text, size_t len, const char **why)
{
	json_t *root;

	if (len > WPD_RPC_MAX_BYTES) {
		if (why)
			*why = "message too large";
		return NULL;
	}
	/* Duplicate keys are refused: two "id"s or two "method"s would make
	 * the daemon and the backend read different messages. */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &load_err);
	if (!root) {
		if (why)
			*why = load_err.text[0] ? load_err.text : "not JSON";
		return NULL;
	}
	if (!json_is_object(root) && !json_is_array(root)) {
		json_decref(root);
		if (why)
			*why = "not an object or an array";
		return NULL;
	}
	return root;
}

int wpd_rpc_id_ok(const json_t *id)
{
	if (json_is_string(id))
		return strlen(json_string_value(id)) == json_string_length(id);
	return json_is_integer(id) || json_is_real(id);
}

static enum wpd_rpc_kind invalid(struct wpd_rpc *out, const char *why)
{
	out->kind = WPD_RPC_INVALID;
	out->code = WPD_RPC_INVALID_REQUEST;
	out->why = why;
	out->method = NULL;
	out->params = out->result = out->error = NULL;
	return WPD_RPC_INVALID;
}

enum wpd_rpc_kind wpd_rpc_classify(json_t *msg, struct wpd_rpc *out)
{
	json_t *ver, *id, *method, *params, *result, *error, *code, *emsg;

	memset(out, 0, sizeof(*out));
	out->msg = msg;
	if (!json_is_object(msg))
		return invalid(out, "a message must be an object");
	id = json_object_get(msg, "id");
	if (id && wpd_rpc_id_ok(id))
		out->id = id;
	ver = json_object_get(msg, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0"))
		return invalid(out, "\"jsonrpc\" must be \"2.0\"");
	method = json_object_get(msg, "method");
	result = json_object_get(msg, "result");
	error = json_object_get(msg, "error");
	if (method) {
		if (result || error)
			return invalid(out, "a request cannot carry \"result\" or \"error\"");
		if (!json_is_string(method) || json_string_length(method) == 0 ||
		    strlen(json_string_value(method)) != json_string_length(method))
			return invalid(out, "\"method\" must be a non-empty string");
		params = json_object_get(msg, "params");
		if (params && !json_is_object(params) && !json_is_array(params))
			return invalid(out, "\"params\" must be an object or an array");
		if (id && !out->id)
			return invalid(out, "\"id\" must be a string or a number");
		out->method = json_string_value(method);
		out->params = params;
		out->kind = id ? WPD_RPC_REQUEST : WPD_RPC_NOTIFICATION;
		return out->kind;
	}
	if (result && error)
		return invalid(out, "a response cannot carry both \"result\" and \"error\"");
	if (result) {
		if (!out->id)
			return invalid(out, "a response needs a string or number \"id\"");
		out->result = result;
		out->kind = WPD_RPC_RESPONSE;
		return out->kind;
	}
	if (error) {
		code = json_object_get(error, "code");
		emsg = json_object_get(error, "message");
		if (!json_is_object(error) || !json_is_integer(code) || !json_is_string(emsg))
			return invalid(out, "\"error\" needs an integer code and a string message");
		if (!out->id && !json_is_null(id))
			return invalid(out, "an error response needs an id (or null)");
		if (!out->id)
			out->id = id; /* json null */
		out->error = error;
		out->kind = WPD_RPC_ERROR;
		return out->kind;
	}
	return invalid(out, "neither a request nor a response (no method, result or error)");
}

json_t *wpd_rpc_meta(const struct wpd_rpc *r, const char *key)
{
	json_t *meta = json_is_object(r->params) ? json_object_get(r->params, "_meta") : NULL;

	return json_is_object(meta) ? json_object_get(meta, key) : NULL;
}

static json_t *base(const json_t *id)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (json_object_set_new(o, "jsonrpc", json_string("2.0")) ||
	    json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null())) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *wpd_rpc_response(const json_t *id, json_t *result)
{
	json_t *o = base(id);

	if (!result)
		result = json_object();
	if (!o) {
		json_decref(result);
		return NULL;
	}
	/* json_object_set_new takes result's reference even when it fails. */
	if (!result || json_object_set_new(o, "result", result)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *wpd_rpc_error(const json_t *id, int code, const char *message, const json_t *data)
{
	json_t *o = base(id), *e = json_object();

	if (!o || !e)
		goto out_free;
	if (json_object_set_new(e, "code", json_integer(code)) ||
	    json_object_set_new(e, "message", json_string(message ? message : "")))
		goto out_free;
	if (data && json_object_set_new(e, "data", json_deep_copy(data)))
		goto out_free;
	if (json_object_set_new(o, "error", e)) {
		json_decref(o); /* e went with the failed set */
		return NULL;
	}
	return o;
out_free:
	json_decref(e);
	json_decref(o);
	return NULL;
}

json_t *wpd_rpc_errorf(const json_t *id, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return wpd_rpc_error(id, code, msg, NULL);
}

json_t *wpd_rpc_request(const json_t *id, const char *method, const json_t *params)
{
	json_t *o = id ? base(id) : json_object();

	if (!o)
		return NULL;
	if ((!id && json_object_set_new(o, "jsonrpc", json_string("2.0"))) ||
	    json_object_set_new(o, "method", json_string(method)) ||
	    (params && json_object_set_new(o, "params", json_deep_copy(params)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *wpd_rpc_notification(const char *method, const json_t *params)
{
	return wpd_rpc_request(NULL, method, params);
}

char *wpd_rpc_dump(const json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s && len)
		*len = strlen(s);
	return s;
}
