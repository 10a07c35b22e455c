#!/usr/bin/env python3
"""A Chimera internal handler: serves `lead_summary` for task kind `summarize` by returning the
first sentences of the text (the "lead" baseline of summarization research). JHADE may route
summarize tasks here instead of to an external model; see docs/PROTOCOL.md for the protocol.

Input: {"text": "...", "kind": "summarize"} (what `chimera task` sends) or a bare string.
Output: {"output": "the first two sentences"}.
"""
import json
import re
import sys

SENTENCES = 2


def send(message):
    print(json.dumps(message), flush=True)


def lead(text, n=SENTENCES):
    # Drop an instruction line such as "Summarize:" before the text itself.
    body = re.sub(r"^\s*(summari[sz]e|tl;?dr)[^:\n]*:\s*", "", text, flags=re.IGNORECASE)
    sentences = re.split(r"(?<=[.!?])\s+", body.strip())
    return " ".join(s for s in sentences[:n] if s)


for line in sys.stdin:
    msg = json.loads(line)
    method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocol_version": 1, "name": "lead_summary.py", "max_concurrency": 4,
            "handlers": [{"name": "lead_summary", "kinds": ["summarize"]}]}})
    elif method == "task/run":
        value = params.get("input")
        text = value.get("text") if isinstance(value, dict) else value
        if isinstance(text, str) and text.strip():
            send({"jsonrpc": "2.0", "id": mid, "result": {"output": lead(text)}})
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "expected {\"text\": string}",
                                                         "data": {"kind": "invalid_input"}}})
    elif method in ("heartbeat", "shutdown"):
        send({"jsonrpc": "2.0", "id": mid, "result": {} if method == "heartbeat" else None})
    elif method == "exit":
        break
    elif mid is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "unknown method " + str(method)}})
