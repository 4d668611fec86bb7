/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 as MCP uses it (docs/daemon.md, "MCP"): parse and classify
 * one message (request, notification, response, error response), detect a
 * batch, and encode responses and errors. Built on jansson; the parsed tree
 * belongs to the caller (json_decref).
 *
 * MCP narrows JSON-RPC: a request id is a string or a number, never null
 * (an error response may carry id null when the request's id could not be
 * read). Everything here is pure: no I/O, no global state.
 */
#ifndef WPD_JSONRPC_H
#define WPD_JSONRPC_H

#include <stddef.h>

#include <jansson.h>

/* JSON-RPC error codes (and MCP's use of them). */
#define WPD_RPC_PARSE_ERROR -32700
#define WPD_RPC_INVALID_REQUEST -32600
#define WPD_RPC_METHOD_NOT_FOUND -32601
#define WPD_RPC_INVALID_PARAMS -32602
#define WPD_RPC_INTERNAL_ERROR -32603
/* Server errors (-32000..-32099): a backend is down or failed the call. */
#define WPD_RPC_BACKEND_ERROR -32000
/* The request was cancelled (notifications/cancelled) before its answer. */
#define WPD_RPC_CANCELLED -32800

/* Messages and lines bigger than this are refused before parsing. */
#define WPD_RPC_MAX_BYTES (4u << 20)

enum wpd_rpc_kind {
	WPD_RPC_INVALID = 0,      /* not a JSON-RPC 2.0 message: see code, why, id */
	WPD_RPC_REQUEST = 1,      /* method + id */
	WPD_RPC_NOTIFICATION = 2, /* method, no id */
	WPD_RPC_RESPONSE = 3,     /* result + id */
	WPD_RPC_ERROR = 4,        /* error + id (possibly null) */
};

/* One classified message: borrowed views into msg (valid while msg is). */
struct wpd_rpc {
	enum wpd_rpc_kind kind;
	json_t *msg;        /* the object itself */
	json_t *id;         /* string or number; NULL for notifications; for an
			     * error response maybe json null; for INVALID the id
			     * if one of a valid type could be read, else NULL */
	const char *method; /* requests and notifications */
	json_t *params;     /* object or array, or NULL when absent */
	json_t *result;     /* responses */
	json_t *error;      /* error responses: an object with an integer code */
	int code;           /* INVALID: WPD_RPC_INVALID_REQUEST */
	const char *why;    /* INVALID: what is wrong, one phrase */
};

/*
 * Parse text (len bytes, not necessarily terminated) into a tree. Returns
 * the root (an object or an array), or NULL when it is not JSON, too big
 * (WPD_RPC_MAX_BYTES), or neither an object nor an array; then *why (if not
 * NULL) says so (a static string or one of jansson's, valid until the next
 * call from this thread).
 */
json_t *wpd_rpc_load(const char *text, size_t len, const char **why);

/* Classify one message (an element of a batch, or the root). Never fails:
 * anything malformed is WPD_RPC_INVALID with code and why set. */
enum wpd_rpc_kind wpd_rpc_classify(json_t *msg, struct wpd_rpc *out);

/* 1 if the id is usable as a request id (string or number). */
int wpd_rpc_id_ok(const json_t *id);

/* The value of params._meta.<key>, or NULL. */
json_t *wpd_rpc_meta(const struct wpd_rpc *r, const char *key);

/*
 * Encoders: each returns a new object (json_decref), or NULL on
 * out-of-memory. id is copied (NULL becomes json null). result is stolen
 * (a reference the caller gives away; NULL means {}). data is borrowed and
 * copied when not NULL.
 */
json_t *wpd_rpc_response(const json_t *id, json_t *result);
json_t *wpd_rpc_error(const json_t *id, int code, const char *message, const json_t *data);
json_t *wpd_rpc_errorf(const json_t *id, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
json_t *wpd_rpc_request(const json_t *id, const char *method, const json_t *params);
json_t *wpd_rpc_notification(const char *method, const json_t *params);

/* Compact text of v, NUL-terminated, in a malloc'd string (free), its length
 * in *len; NULL on out-of-memory. */
char *wpd_rpc_dump(const json_t *v, size_t *len);

#endif
