# SPDX-License-Identifier: MIT
# The smallest round trip: one tool call per step with a 64-byte request
# (8 bytes of header + 56 of payload) and a 64-byte result, nothing else.
# With one agent and --busy-poll this is the small-message latency figure
# compared with ucx_perftest tag_lat and sockperf ping-pong (bench/peers/).

name = pingpong

fanout = 1
tool_req_bytes = 64
tool_resp_bytes = 64
tool_resp_p90_bytes = 64
tool_resp_p99_bytes = 64

mem_lookups = 0
model_req_bytes = 0
tokens = 0
telemetry_counters = 0
telemetry_hists = 0
