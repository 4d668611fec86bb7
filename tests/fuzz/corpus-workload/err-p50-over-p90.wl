tool_resp_bytes = 64 KiB
tool_resp_p90_bytes = 16 KiB
