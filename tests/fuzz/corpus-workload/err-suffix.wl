tool_req_bytes = 4 TiB
