// SPDX-License-Identifier: MIT
/*
 * tests/integ/test_stream.c under authentication v2: the harness gives its
 * server a policy and runs the handshake on its client, so every frame of
 * the test travels in records (docs/protocol.md, "Records").
 * wp-test-paths: tcp uring mem rdma (paths with a byte stream: shm has no records)
 */
#define WP_TEST_AUTH 1
#include "test_stream.c"
