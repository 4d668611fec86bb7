name = bad/name
= 3
mem_bytes =
retry_pct = -1
