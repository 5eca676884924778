"""What the tests share: small HTTP servers in threads, sidecar processes on
free ports, Consul's HTTP API and a poll helper."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # agent_sidecar from this checkout

SIDECAR_BIN = os.environ.get("SIDECAR_BIN", "")
CONSUL_HTTP_ADDR = os.environ.get("CONSUL_HTTP_ADDR", "")
E2E_REASON = "needs SIDECAR_BIN and CONSUL_HTTP_ADDR (go test -tags e2e -run Python ./clients/)"


def eventually(what: str, cond: Callable[[], Any], limit: float = 20.0, every: float = 0.1) -> Any:
    """Polls cond until it returns something true, and returns it; raises
    AssertionError after limit seconds."""
    deadline = time.monotonic() + limit
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:g}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    """A free port on 127.0.0.1 below Linux's ephemeral range, which no
    outgoing connection can take before the sidecar binds it."""
    for _ in range(100):
        port = random.randint(20000, 31999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-31999")


Reply = Tuple[int, Dict[str, str], bytes]


class FakeServer:
    """An HTTP server in a thread that records each request (method, path,
    headers, body) and answers with handler(request) -> (status, headers, body)."""

    def __init__(self, handler: Callable[[Dict[str, Any]], Reply]) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.handler = handler
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": self.rfile.read(n) if n else b""}
                fake.requests.append(req)
                status, headers, body = fake.handler(req)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(status: int, doc: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(doc).encode()


class SidecarProcess:
    """A sidecar of SIDECAR_BIN on a free port with the configuration
    ``config`` (``{addr}`` stands for its listen address); ``stop()`` and
    ``start()`` again keep the address."""

    def __init__(self, config: str, agent_id: str) -> None:
        self.agent_id = agent_id
        self.addr = "127.0.0.1:%d" % free_port()
        self.dir = tempfile.mkdtemp(prefix="pyclient-sidecar-")
        self.config = os.path.join(self.dir, "sidecar.hcl")
        with open(self.config, "w") as f:
            f.write(config.replace("{addr}", self.addr).replace("{id}", agent_id))
        self.log = os.path.join(self.dir, "sidecar.log")
        self.proc: Optional[subprocess.Popen] = None  # type: ignore[type-arg]

    def start(self) -> "SidecarProcess":
        env = {"PATH": os.environ.get("PATH", ""), "CONSUL_HTTP_ADDR": CONSUL_HTTP_ADDR,
               "XDG_STATE_HOME": self.dir}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([SIDECAR_BIN, "agent", "-config", self.config],
                                         stdout=out, stderr=subprocess.STDOUT, env=env)
        eventually("the sidecar to answer /v1/health", self._healthy, every=0.05)
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the sidecar exited with {self.proc.returncode}:\n{self.output()}")
        try:
            with urllib.request.urlopen(f"http://{self.addr}/v1/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def output(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return ""


def consul_check(service_id: str) -> Optional[Dict[str, Any]]:
    """The sidecar's heartbeat check of service_id in Consul, or None."""
    with urllib.request.urlopen(f"http://{CONSUL_HTTP_ADDR}/v1/agent/checks", timeout=5) as r:
        checks = json.load(r)
    for check in checks.values():
        if check.get("ServiceID") == service_id and check.get("Name") == "heartbeat":
            return check
    return None
