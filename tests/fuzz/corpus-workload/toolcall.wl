# SPDX-License-Identifier: MIT
# One tool call per step and nothing else: no memory lookup, no model call,
# no tokens, no telemetry. One step is then one request/response pair, which
# makes "one tool call" directly comparable with one HTTP request.

name = toolcall

fanout = 1                  # a single tool call
tool_req_bytes = 1 KiB      # agentic default request
tool_resp_bytes = 4 KiB     # fixed 4 KiB result: p50 = p90 = p99
tool_resp_p90_bytes = 4 KiB
tool_resp_p99_bytes = 4 KiB

mem_lookups = 0             # no memory lookups
model_req_bytes = 0         # no model call (0 = none) ...
tokens = 0                  # ... so no tokens
telemetry_counters = 0      # no telemetry message
telemetry_hists = 0
