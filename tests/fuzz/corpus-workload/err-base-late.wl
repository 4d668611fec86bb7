fanout = 8
base = agentic
