# SPDX-License-Identifier: MIT
# The agentic step with 64 parallel tool calls: the top of the fan-out sweep
# (1, 2, 4, 8, 16, 64), where parallel planners such as LLMCompiler go.
# Everything else is the agentic default.

base = agentic
name = fanout64

fanout = 64                 # tool calls per step, issued in parallel
