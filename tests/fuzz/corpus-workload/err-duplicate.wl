name = a
fanout = 8
fanout = 9
