base = classic
name = crlf
	tokens = 0	# no stream
model_req_bytes = 0