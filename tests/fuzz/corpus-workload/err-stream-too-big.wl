tokens = 1048576
token_bytes = 65
