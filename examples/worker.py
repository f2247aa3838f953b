#!/usr/bin/env python3
"""A Conveyor worker in plain Python (standard library only), for `handler: http` task types.

The agent POSTs each task here as JSON:
    {"id": 42, "type": "resize", "attempt": 1, "max_attempts": 3, "params": {...},
     "correlation_id": "...", "deadline": "2026-12-01T09:30:00.000Z"}
and reads the reply:
    2xx            -> succeeded; a JSON body is the task's result (an empty body: no result)
    4xx (not 408/429) -> failed for good: retrying the same request cannot help
    408, 429, 5xx  -> failed, retried after the type's backoff (Retry-After: seconds, if longer)

Run:  python3 examples/worker.py --port 9000
It also serves POST /webhook, which checks a completion webhook's Conveyor-Signature
(set CONVEYOR_WEBHOOK_SECRET to the coordinator's secret).
"""
import argparse
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def run_task(task):
    """The work itself. Return a JSON-able result, or raise one of the errors below."""
    params = task["params"]
    if task["type"] == "word_count":
        text = params.get("text")
        if not isinstance(text, str):
            raise PermanentError("params.text must be a string")
        return {"words": len(text.split())}
    if task["type"] == "flaky":
        if task["attempt"] < 2:
            raise RetryLater("the upstream service is busy", after_seconds=2)
        return {"ok": True, "attempt": task["attempt"]}
    raise PermanentError(f"this worker does not know the type {task['type']!r}")


class PermanentError(Exception):
    """Answered with 400: the task fails at once, without retries."""


class RetryLater(Exception):
    """Answered with 503 and Retry-After: the task is retried (after at least that long)."""

    def __init__(self, message, after_seconds=None):
        super().__init__(message)
        self.after_seconds = after_seconds


def verify_signature(header, body, secret, tolerance=300):
    """True when `header` ("t=<unix>,v1=<hex>") is HMAC-SHA256 of "<t>.<body>" made within `tolerance` s."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the agent reuses its connections

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/webhook":
            return self.webhook(body)
        try:
            task = json.loads(body)
            result = run_task(task)
        except PermanentError as error:
            return self.reply(400, {"error": str(error)})
        except RetryLater as error:
            headers = {"Retry-After": str(error.after_seconds)} if error.after_seconds else {}
            return self.reply(503, {"error": str(error)}, headers)
        except Exception as error:  # a bug or an outage: let Conveyor retry it
            return self.reply(500, {"error": repr(error)})
        self.reply(200, result)

    def webhook(self, body):
        secret = os.environ.get("CONVEYOR_WEBHOOK_SECRET", "")
        if not verify_signature(self.headers.get("Conveyor-Signature", ""), body, secret):
            return self.reply(401, {"error": "bad signature"})
        record = json.loads(body)["task"]
        print(f"task {record['id']} {record['status']}: {json.dumps(record['result'])}", flush=True)
        self.reply(204, None)

    def reply(self, status, payload, headers=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print(f"{self.headers.get('X-Correlation-ID', '-')} {fmt % args}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    arguments = parser.parse_args()
    print(f"worker listening on http://{arguments.host}:{arguments.port}", flush=True)
    ThreadingHTTPServer((arguments.host, arguments.port), Handler).serve_forever()
