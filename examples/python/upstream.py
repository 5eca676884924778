#!/usr/bin/env python3
"""A small HTTP service for the demo: answers JSON, and can be told to fail.

  python3 upstream.py NAME PORT      (standard library only)

  GET|POST /...   {"from": NAME, "path": ...}, or 503 while failing
  POST /_fail     start answering 503
  POST /_heal     answer 200 again
  GET  /_calls    {"calls": N}: how many calls reached it (the _ paths excluded)
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1] if len(sys.argv) > 1 else "upstream"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9100
state = {"failing": False, "calls": 0}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/_fail":
            state["failing"] = True
            return self.reply(200, {"failing": True})
        if self.path == "/_heal":
            state["failing"] = False
            return self.reply(200, {"failing": False})
        if self.path == "/_calls":
            return self.reply(200, {"calls": state["calls"]})
        with lock:
            state["calls"] += 1
        if state["failing"]:
            return self.reply(503, {"error": f"{NAME} is failing"})
        self.reply(200, {"from": NAME, "path": self.path})

    do_GET = handle_any
    do_POST = handle_any


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a caller closing a kept-alive connection is not an error here


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
