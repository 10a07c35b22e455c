#!/usr/bin/env python3
"""A Chimera custom scorer: a handler that scores answers (`chimera task --scorer custom
--custom-scorer keyword_scorer`). Score = the share of the reference's content words (else the
task's) that the answer contains. Input: {"task", "answer", "reference"?, "kind"};
output: {"score": 0..1, "explanation": "..."}. Protocol: docs/PROTOCOL.md.
"""
import json
import re
import sys

STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "is", "it", "for", "on", "with", "as", "by", "at", "be", "this", "that"}


def words(text):
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP and len(w) > 2}


def send(message):
    print(json.dumps(message), flush=True)


for line in sys.stdin:
    msg = json.loads(line)
    method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocol_version": 1, "name": "keyword_scorer.py", "max_concurrency": 4,
            "handlers": [{"name": "keyword_scorer", "kinds": ["score"]}]}})
    elif method == "task/run":
        value = params.get("input") or {}
        want = words(value.get("reference") or value.get("task") or "")
        have = words(value.get("answer") or "")
        if not want:
            send({"jsonrpc": "2.0", "id": mid, "result": {"output": {"score": 0.5, "explanation": "nothing to compare with"}}})
        else:
            found = len(want & have)
            send({"jsonrpc": "2.0", "id": mid, "result": {"output": {
                "score": found / len(want), "explanation": f"{found} of {len(want)} key words present"}}})
    elif method in ("heartbeat", "shutdown"):
        send({"jsonrpc": "2.0", "id": mid, "result": {} if method == "heartbeat" else None})
    elif method == "exit":
        break
    elif mid is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "unknown method " + str(method)}})
