#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wirepathd with the official clients (tests/daemon/node): the openai npm
# client (streaming with include_usage, non-streaming, completions,
# embeddings base64 and float, models, errors, an abort mid-stream that must
# cancel the model in `wirepath serve`) and the MCP TypeScript SDK
# (initialize, tools/list, tools/call, session end; the three revisions)
# against /mcp aggregating server-everything (a stdio child) and serve's
# native tools, and /mcp/everything alone.
. "$(dirname "$0")/lib.sh" "$1"
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/node/setup.sh" || exit $?
everything="$here/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
[ -f "$everything" ] || wpd_fail "setup.sh passed but $everything is missing"
rules=$(WPD_BETA_TOOLS="everything_echo" wpd_rules)
wpd_serve svc "shm://@wpd-test-$$-n" --token-interval-us 5000
wpd_start <<CONF
listen:
  - tcp: 127.0.0.1:0
policy: $rules
backends:
  - {name: local, native: "shm://@wpd-test-$$-n"}
  - {name: everything, stdio: [node, "$everything", stdio]}
models:
  - {name: wp-stub, backend: local}
mcp:
  servers:
    - {name: everything, backend: everything, prefix: everything_}
    - {name: wp, backend: local, prefix: wp_}
CONF
for _ in $(seq 200); do [ "$(curl -s "$WPD_URL/readyz")" = ready ] && break; sleep 0.05; done
[ "$(curl -s "$WPD_URL/readyz")" = ready ] || wpd_fail "not ready: $(curl -s "$WPD_URL/readyz")"
export WP_BASE_URL=$WPD_URL WP_API_KEY=$KEY_A WP_MODEL=wp-stub
cd "$here/node" || exit 1
node openai_stream.mjs --max-tokens 16 || wpd_fail "openai_stream.mjs"
node openai_unary.mjs || wpd_fail "openai_unary.mjs"

# The abort: the cancel must reach serve while the client is still alive.
kill -USR1 "$SERVE_PID_svc"; sleep 0.2
before=$(grep -o '"cancelled":[0-9]*' "$T/svc.log" | tail -n 1 | cut -d: -f2)
aborts0=$(wpd_metric wirepathd_aborts_total)
node openai_abort.mjs --max-tokens 5000 --hold-ms 1500 &
client=$!
sleep 1.2
kill -USR1 "$SERVE_PID_svc"; sleep 0.2
after=$(grep -o '"cancelled":[0-9]*' "$T/svc.log" | tail -n 1 | cut -d: -f2)
wait "$client" || wpd_fail "openai_abort.mjs"
[ "${after:-0}" -gt "${before:-0}" ] || wpd_fail "the abort did not cancel the model (cancelled ${before:-0} -> ${after:-0})"
[ "$(wpd_metric wirepathd_aborts_total)" -gt "${aborts0:-0}" ] || wpd_fail "abort not counted"
ok "openai abort cancelled the model while the client was alive (cancelled ${before:-0} -> $after)"

node mcp_client.mjs --tools everything_echo,everything_get-sum,wp_echo,wp_add || wpd_fail "mcp_client.mjs /mcp"
for v in 2025-03-26 2025-06-18; do
	node mcp_client.mjs --protocol-version "$v" --tools everything_echo || wpd_fail "mcp_client.mjs $v"
done
node mcp_client.mjs --path /mcp/everything --tools echo --echo-tool echo || wpd_fail "mcp_client.mjs /mcp/everything"
# beta may use everything_echo only.
WP_API_KEY=$KEY_B node mcp_client.mjs --tools everything_echo >"$T/beta" 2>&1 || { cat "$T/beta"; wpd_fail "beta's MCP session"; }
grep -q 'everything_get-sum' "$T/beta" && wpd_fail "beta saw a tool its allow-list excludes"
ok "real clients passed"
echo PASS
