# SPDX-License-Identifier: MIT
# The built-in "classic" workload written out: single-shot inference, one
# request and one streamed answer per step, no tools and no memory. It is the
# baseline the agentic step is compared with (docs/workload.md, "The
# defaults, key by key", column "classic").

base = classic              # start from the classic defaults (all set below anyway)
name = classic

fanout = 0                  # no tool calls
tool_req_bytes = 0          # unused (fanout 0)
tool_resp_bytes = 4 KiB     # unused; p50 = p90 = p99 keeps the limits satisfied
tool_resp_p90_bytes = 4 KiB # unused
tool_resp_p99_bytes = 4 KiB # unused

mem_lookups = 0             # no memory/KV lookups
mem_bytes = 0               # unused

model_req_bytes = 8 KiB     # one 8 KiB request
tokens = 520                # 520 streamed tokens, as in the agentic step
token_bytes = 4             # about 4 bytes per token
token_batch = 1             # one small frame per token

telemetry_counters = 10     # the same per-step telemetry event as agentic
telemetry_hists = 2

retry_pct = 0               # no retries

tool_service_us = 0         # data path only
mem_service_us = 0
model_service_us = 0
token_interval_us = 0

bulk_bytes = 0              # no bulk transfer
