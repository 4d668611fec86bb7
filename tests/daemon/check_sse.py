#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Check an OpenAI streaming response body, byte for byte where the official
# clients care: every event is "data: <json>\n\n" with no "event:" name,
# chunks are chat.completion.chunk (or text_completion), one id throughout,
# the first chat chunk carries the role, finish_reason appears on the last
# choice chunk only, a usage chunk with "choices": [] follows when asked
# for, and the stream ends with "data: [DONE]\n\n".
#   check_sse.py FILE chat|completion USAGE(0|1) EXPECT_TOKENS [EXPECT_TEXT]
import json
import sys

path, kind, want_usage, want_tokens = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
want_text = sys.argv[5] if len(sys.argv) > 5 else None
raw = open(path, "rb").read().decode("utf-8")
if not raw.endswith("data: [DONE]\n\n"):
    sys.exit("stream does not end with 'data: [DONE]\\n\\n': ...%r" % raw[-60:])
events = raw.split("\n\n")
assert events[-1] == "", "trailing bytes after the last event"
events = events[:-1]
if any(not e.startswith("data: ") or "\n" in e for e in events):
    sys.exit("an event is not one 'data: ' line: %r" % [e for e in events if not e.startswith("data: ") or "\n" in e][:1])
assert events[-1] == "data: [DONE]"
chunks = [json.loads(e[6:]) for e in events[:-1]]
obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
ids = {c["id"] for c in chunks}
if len(ids) != 1:
    sys.exit("ids differ: %s" % ids)
for c in chunks:
    if c["object"] != obj:
        sys.exit("object %r, want %r" % (c["object"], obj))
    for k in ("id", "created", "model", "choices"):
        if k not in c:
            sys.exit("chunk without %s: %s" % (k, c))
usage = [c for c in chunks if c["choices"] == []]
choice_chunks = [c for c in chunks if c["choices"]]
if want_usage:
    if len(usage) != 1 or chunks[-1] is not usage[0]:
        sys.exit("want exactly one usage chunk, last: %s" % usage)
    u = usage[0]["usage"]
    if u["total_tokens"] != u["prompt_tokens"] + u["completion_tokens"] or u["completion_tokens"] != want_tokens:
        sys.exit("usage wrong: %s (want %d completion tokens)" % (u, want_tokens))
elif usage:
    sys.exit("usage chunk without include_usage")
fin = [c for c in choice_chunks if c["choices"][0].get("finish_reason")]
if len(fin) != 1 or fin[0] is not choice_chunks[-1]:
    sys.exit("finish_reason must be on the last choice chunk only: %s" % fin)
text = ""
for c in choice_chunks:
    ch = c["choices"][0]
    if kind == "chat":
        text += ch["delta"].get("content") or ""
    else:
        text += ch.get("text") or ""
if kind == "chat" and choice_chunks[0]["choices"][0]["delta"].get("role") != "assistant":
    sys.exit("first chat chunk has no role")
content_chunks = [c for c in choice_chunks if (c["choices"][0].get("delta", {}).get("content") if kind == "chat" else c["choices"][0].get("text"))]
if len(content_chunks) != want_tokens:
    sys.exit("%d content chunks, want %d" % (len(content_chunks), want_tokens))
if want_text is not None and text != want_text:
    sys.exit("text %r, want %r" % (text, want_text))
print("sse ok: %d chunks, %d tokens, finish %s, text %r" % (len(chunks), want_tokens, fin[0]["choices"][0]["finish_reason"], text[:60]))
