#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Seeds for tests/fuzz/fuzz_service.c: one of each message of the native
# service contracts (include/wirepath/service.h), valid, and near misses.
# Writes tests/fuzz/corpus-service/.
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-service")
os.makedirs(out, exist_ok=True)


def req(kind, max_tokens, model, prompt, body, version=1, flags=0):
    return struct.pack("<8I", version, kind, max_tokens, flags, len(model), len(prompt),
                       len(body), 0) + model + prompt + body


def inputs(*xs):
    return b"".join(struct.pack("<I", len(x)) + x for x in xs)


def tool(name, args):
    return struct.pack("<II", len(name), 0) + name + args


seeds = {
    "generate-chat": req(1, 0, b"wp-stub", b"user: hi there", b'{"stream":true}'),
    "generate-completion": req(2, 16, b"", b"once upon", b""),
    "embed": req(3, 0, b"wp-stub", inputs(b"a", b"b c", b""), b'{"input":["a","b c",""]}'),
    "embed-inputs": inputs(b"hello world", b"x"),
    "finish-stop": struct.pack("<BBHII", ord("F"), 0, 0, 3, 5),
    "finish-length": struct.pack("<BBHII", ord("F"), 1, 0, 1, 7),
    "tool-echo": tool(b"echo", b'{"message":"hi"}'),
    "tool-empty-args": tool(b"add", b""),
    # near misses
    "generate-version-2": req(1, 0, b"m", b"p", b"", version=2),
    "generate-kind-4": req(4, 0, b"m", b"p", b""),
    "generate-short": req(1, 0, b"m", b"p", b"")[:-1],
    "generate-model-257": req(1, 0, b"m" * 257, b"", b""),
    "finish-reason-2": struct.pack("<BBHII", ord("F"), 2, 0, 0, 0),
    "tool-name-0": tool(b"", b"{}"),
    "tool-name-past-end": struct.pack("<II", 9, 0) + b"echo",
    "embed-input-cut": inputs(b"abc")[:-1],
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
