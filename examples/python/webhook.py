#!/usr/bin/env python3
"""A notification receiver for the demo: prints each event the sidecar POSTs.

  python3 webhook.py [PORT]      (default 9090; standard library only)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            event = json.loads(raw)
            print(f"  >> notification {event.get('type')}: {event.get('text')}", flush=True)
        except ValueError:
            print(f"  >> notification (not JSON): {raw[:200]!r}", flush=True)
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9090
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
