#!/usr/bin/env python3
"""A minimal AI agent that runs beside its sidecar, on the agent_sidecar
client (clients/python; standard library only).

It takes tasks over HTTP, heartbeats to its sidecar with a note, metrics and a
progress counter, asks a model through the sidecar's OpenAI-compatible
endpoint (when MODEL is set), calls another agent through the sidecar's
/call/ (when PEER is set), and can be told to hang, stall or fail so you can
watch the sidecar and its peers deal with it. The model request and the call
carry the trace context (traceparent, tracestate, baggage) of the task.

It finds agent_sidecar installed (pip install ./clients/python), else in
the repository beside it (../../clients/python), else in its own directory
(copy clients/python/agent_sidecar next to agent.py, as the images do).

Environment (the sidecar sets the SIDECAR_ ones when it supervises the agent):
  SIDECAR_ADDR           the sidecar's control API (default http://127.0.0.1:7070)
  SIDECAR_TOKEN          the control API's token, when the sidecar requires one
  SIDECAR_AGENT_ID       the agent's id, used in answers
  AGENT_PORT             where to take tasks (default 8081)
  AGENT_HOST             the address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  HEARTBEAT_EVERY        at most this many seconds between heartbeats (default 5;
                         the sidecar's heartbeat_interval when it is shorter)
  MODEL                  a model of the sidecar's gateway to ask for each task (default: none)
  PEER                   an upstream of the sidecar to call for each task (default: none)

Endpoints:
  POST /task    {"input": "..."} -> {"agent", "output", "model", "degraded", "peer" | "peer_error"}
  GET  /healthz 200 while the agent works (for sidecars that probe instead)
  POST /hang    stop heartbeating and answering, as a hung agent does
  POST /stall   keep heartbeating but stop making progress, as a stuck agent does
  POST /fail    answer every task with 503 until POST /heal, as a broken agent does
  POST /slow    {"seconds": N}: answer tasks N seconds late, until POST /heal
  POST /garbage answer tasks with bytes that are not HTTP, until POST /heal
  POST /heal    take tasks again
  POST /crash   exit with status 1

Signals: SIGUSR1 hangs the agent too (kill -USR1 <pid>).
"""

import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from agent_sidecar import Sidecar, SidecarError
except ImportError:  # not installed: the copy in this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    from agent_sidecar import Sidecar, SidecarError

AGENT_ID = os.environ.get("SIDECAR_AGENT_ID", "python-agent")
PORT = int(os.environ.get("AGENT_PORT", "8081"))
HOST = os.environ.get("AGENT_HOST", "127.0.0.1")
EVERY = float(os.environ.get("HEARTBEAT_EVERY", "5"))
MODEL = os.environ.get("MODEL", "")
PEER = os.environ.get("PEER", "")

sidecar = Sidecar.from_env()  # SIDECAR_ADDR and SIDECAR_TOKEN
heartbeats = sidecar.heartbeats(interval=EVERY, note="handled 0 tasks", progress=0)
state = {"tasks": 0, "started": time.time(), "slow": 0.0}
lock = threading.Lock()
hung = threading.Event()
stalled = threading.Event()
failing = threading.Event()
garbage = threading.Event()


def log(msg):
    print(f"[agent {AGENT_ID}] {msg}", file=sys.stderr, flush=True)


def hang():
    """A stuck agent: no heartbeats, no work. Only a restart helps."""
    hung.set()
    heartbeats.stop(timeout=0)


def ask_model(text):
    """One chat completion through the sidecar's gateway. The sidecar adds
    the provider key and falls back to a lighter model when this one fails;
    the answer says which model answered."""
    answer = sidecar.chat(MODEL, [{"role": "system", "content": "You are a concise writer."},
                                  {"role": "user", "content": text}], max_tokens=4000, timeout=60)
    return {"output": answer.text, "model": answer.model or MODEL, "degraded": answer.degraded}


def ask_peer(text):
    """One call to another agent through the sidecar: POST /call/{PEER}/task.
    The sidecar picks a healthy instance (found in Consul), keeps a breaker
    per instance and falls back when they fail. The client adds an
    Idempotency-Key, which tells the sidecar the task may be sent again if
    an instance hangs mid-call."""
    try:
        return {"peer": sidecar.call(PEER, "/task", json={"input": text}, timeout=30).json()}
    except SidecarError as exc:
        return {"peer_error": f"{exc.status}: {exc.message}" if exc.status else str(exc)}
    except ValueError as exc:  # an answer that is not JSON
        return {"peer_error": f"the answer is not JSON: {exc}"}


def work_loop():
    """Stands for the agent's main loop (polling a queue, thinking, ...):
    each turn is progress, which freezes when the loop is stuck."""
    while True:
        if not stalled.is_set() and not hung.is_set():
            heartbeats.progress()
            with lock:
                tasks = state["tasks"]
            heartbeats.note(f"handled {tasks} tasks")
            heartbeats.metrics(tasks=tasks, uptime_s=round(time.time() - state["started"]))
        time.sleep(0.5)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if hung.is_set():
            time.sleep(3600)
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if hung.is_set():
            time.sleep(3600)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/task":
            try:
                task = json.loads(raw or b"{}")
            except ValueError:
                self.reply(400, {"error": "body must be JSON"})
                return
            if failing.is_set():
                self.reply(503, {"agent": AGENT_ID, "error": "told to fail"})
                return
            if garbage.is_set():
                self.wfile.write(b"\x00\x13garbage, not HTTP\r\n\r\n")
                self.close_connection = True
                return
            with lock:
                delay = state["slow"]
            if delay:
                time.sleep(delay)
            with lock:
                state["tasks"] += 1
            # The task's trace context goes with every request made for it.
            with sidecar.trace_context(self.headers):
                self.handle_task(task)
        elif self.path == "/hang":
            log("told to hang: no more heartbeats")
            self.reply(200, {"hanging": True})
            hang()
        elif self.path == "/stall":
            log("told to stall: heartbeats go on, progress stops")
            self.reply(200, {"stalled": True})
            stalled.set()
        elif self.path == "/fail":
            log("told to fail: every task gets 503")
            failing.set()
            self.reply(200, {"failing": True})
        elif self.path == "/slow":
            try:
                seconds = float(json.loads(raw or b"{}").get("seconds", 5))
            except (ValueError, AttributeError):
                self.reply(400, {"error": 'body must be {"seconds": N}'})
                return
            log(f"told to be slow: tasks answered {seconds:g}s late")
            with lock:
                state["slow"] = seconds
            self.reply(200, {"slow": seconds})
        elif self.path == "/garbage":
            log("told to answer garbage")
            garbage.set()
            self.reply(200, {"garbage": True})
        elif self.path == "/heal":
            log("told to heal: taking tasks again")
            failing.clear()
            garbage.clear()
            with lock:
                state["slow"] = 0.0
            self.reply(200, {"failing": False})
        elif self.path == "/crash":
            self.reply(200, {"crashing": True})
            log("told to crash")
            os._exit(1)
        else:
            self.reply(404, {"error": "not found"})

    def handle_task(self, task):
        text = str(task.get("input", ""))
        answer = {"agent": AGENT_ID, "output": f"done: {text}"}
        if PEER:
            answer.update(ask_peer(text))
        if MODEL:
            try:
                answer.update(ask_model(text))
            except SidecarError as exc:
                # The sidecar answers in OpenAI's error shape; without an
                # answer (the sidecar is away), the exception says why.
                try:
                    error = json.loads(exc.body)
                except ValueError:
                    error = str(exc)
                self.reply(502, {"agent": AGENT_ID, "error": error})
                return
        self.reply(200, answer)


def main():
    logging.basicConfig(format=f"[agent {AGENT_ID}] %(message)s", level=logging.INFO)
    signal.signal(signal.SIGUSR1, lambda *_: (log("SIGUSR1: hanging"), hang()))
    signal.signal(signal.SIGTERM, lambda *_: (log("SIGTERM: stopping"), os._exit(0)))
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    with heartbeats:  # a daemon thread; a sidecar away for a while is only logged
        threading.Thread(target=work_loop, daemon=True).start()
        log(f"taking tasks on {HOST}:{PORT}, heartbeating to {sidecar.addr} at least every {EVERY:g}s")
        server.serve_forever()


if __name__ == "__main__":
    main()
