# SPDX-License-Identifier: MIT
# The built-in "agentic" workload written out: one agent step of a tool-using
# agent. Every value below is the built-in default; the comment after each key
# gives its basis (sources: docs/workload.md). Format and the meaning
# of an agent step: bench/workloads/README.md.

name = agentic

fanout = 8                  # tool calls per step; traces: mean 1.2, p99 4; parallel planners (LLMCompiler) fan out further
tool_req_bytes = 1 KiB      # "a few hundred tokens" per tool round at about 4 bytes per token
tool_resp_bytes = 4 KiB     # median tool result: about 800 appended tokens per step (p50)
tool_resp_p90_bytes = 16 KiB  # p90 of appended tokens per step: 3-6 K tokens
tool_resp_p99_bytes = 64 KiB  # p99 of appended tokens per step: 9-31 K tokens

mem_lookups = 2             # memory/KV lookups per step: the fast (< 10 ms) class of tool latency
mem_bytes = 16 KiB          # bytes per lookup (docs/workload.md: 2 x 16 KiB)

model_req_bytes = 4 KiB     # prompt/context delta sent to the model per step
tokens = 520                # 186.9 M output tokens over 357 K steps in the same traces
token_bytes = 4             # about 4 bytes per token
token_batch = 1             # one small frame per token (coalescing allowed, off by default)

telemetry_counters = 10     # transfer-library telemetry event: 10 counters ...
telemetry_hists = 2         # ... and 2 histograms per step

retry_pct = 0               # no measured source: a parameter, not a claim (sweep 0-15)

tool_service_us = 0         # stub service times are 0 to measure the data path itself;
mem_service_us = 0          # the real-world tool median is 1.6 s (tool_service_us = 1600 ms)
model_service_us = 0        # the model's steps per second come from the GPU
token_interval_us = 0       # frames sent back to back

bulk_bytes = 0              # no bulk context/KV transfer in the step (bulk is swept on its own: 16 MiB per request, 64 KiB - 1 GiB)
