#!/usr/bin/env python3
"""A Chimera handler in plain Python: serves `uppercase` over the worker protocol (docs/PROTOCOL.md)."""
import json
import sys


def send(message):
    # One JSON object per line; flush so the coordinator sees it now.
    print(json.dumps(message), flush=True)


for line in sys.stdin:  # Ends at EOF: the coordinator closed our input, so exit.
    msg = json.loads(line)
    method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocol_version": 1, "name": "uppercase.py", "max_concurrency": 1,
            "handlers": [{"name": "uppercase", "kinds": ["text.uppercase"]}]}})
    elif method == "task/run":
        value = params.get("input")
        text = value.get("text") if isinstance(value, dict) else value
        if isinstance(text, str):
            send({"jsonrpc": "2.0", "id": mid, "result": {"output": text.upper()}})
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "expected a string or {\"text\": string}",
                                                         "data": {"kind": "invalid_input"}}})
    elif method in ("heartbeat", "shutdown"):
        send({"jsonrpc": "2.0", "id": mid, "result": {} if method == "heartbeat" else None})
    elif method == "exit":
        break
    elif mid is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "unknown method " + str(method)}})
