#!/usr/bin/env python3
"""A minimal AI agent that runs beside its sidecar (standard library only).

It takes tasks over HTTP, heartbeats to its sidecar with a note, metrics and a
progress counter, asks a model through the sidecar's OpenAI-compatible
endpoint (when MODEL is set), calls another agent through the sidecar's
/call/ (when PEER is set), and can be told to hang, stall or fail so you can
watch the sidecar and its peers deal with it.

Environment (the sidecar sets the first two when it supervises the agent):
  SIDECAR_HEARTBEAT_URL  where to send heartbeats (default http://127.0.0.1:7070/v1/heartbeat)
  SIDECAR_AGENT_ID       the agent's id, used in answers
  AGENT_PORT             where to take tasks (default 8081)
  AGENT_HOST             the address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  HEARTBEAT_EVERY        seconds between heartbeats (default 5)
  SIDECAR_ADDR           the sidecar's control API (set by the sidecar; default http://127.0.0.1:7070)
  MODEL                  a model of the sidecar's gateway to ask for each task (default: none)
  PEER                   an upstream of the sidecar to call for each task (default: none)
  SIDECAR_TOKEN          the control API's token, when the sidecar requires one (set by the sidecar)

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
import os
import signal
import sys
import threading
import time
import urllib.error
import uuid
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEARTBEAT_URL = os.environ.get("SIDECAR_HEARTBEAT_URL", "http://127.0.0.1:7070/v1/heartbeat")
AGENT_ID = os.environ.get("SIDECAR_AGENT_ID", "python-agent")
PORT = int(os.environ.get("AGENT_PORT", "8081"))
HOST = os.environ.get("AGENT_HOST", "127.0.0.1")
EVERY = float(os.environ.get("HEARTBEAT_EVERY", "5"))
SIDECAR_ADDR = os.environ.get("SIDECAR_ADDR", "http://127.0.0.1:7070")
MODEL = os.environ.get("MODEL", "")
PEER = os.environ.get("PEER", "")
# The control API's token, when the sidecar requires one (listen.token).
TOKEN_HEADERS = {"X-Sidecar-Token": os.environ["SIDECAR_TOKEN"]} if os.environ.get("SIDECAR_TOKEN") else {}

state = {"tasks": 0, "loops": 0, "started": time.time(), "slow": 0.0}
lock = threading.Lock()
hung = threading.Event()
stalled = threading.Event()
failing = threading.Event()
garbage = threading.Event()


def log(msg):
    print(f"[agent {AGENT_ID}] {msg}", file=sys.stderr, flush=True)


def heartbeat():
    with lock:
        tasks = state["tasks"]
    body = json.dumps({
        "status": "ok",
        "note": f"handled {tasks} tasks",
        "metrics": {"tasks": tasks, "uptime_s": round(time.time() - state["started"])},
        # Progress: the number of turns of the work loop, which changes while
        # the agent gets work done and freezes when the loop is stuck.
        "progress": state["loops"],
    }).encode()
    req = urllib.request.Request(HEARTBEAT_URL, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **TOKEN_HEADERS})
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def ask_model(text):
    """One chat completion through the sidecar's gateway, as any OpenAI client
    would send it with OPENAI_BASE_URL=$SIDECAR_ADDR/llm/v1. The sidecar adds
    the provider key and falls back to a lighter model when this one fails."""
    body = json.dumps({
        "model": MODEL,
        "messages": [{"role": "system", "content": "You are a concise writer."},
                     {"role": "user", "content": text}],
        "max_tokens": 4000,
    }).encode()
    req = urllib.request.Request(SIDECAR_ADDR + "/llm/v1/chat/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **TOKEN_HEADERS})
    with urllib.request.urlopen(req, timeout=60) as resp:
        answer = json.loads(resp.read())
        return {
            "output": answer["choices"][0]["message"]["content"],
            "model": resp.headers.get("X-Sidecar-Model", MODEL),
            "degraded": resp.headers.get("X-Sidecar-Degraded") == "true",
        }


def ask_peer(text):
    """One call to another agent through the sidecar: POST /call/{PEER}/task.
    The sidecar picks a healthy instance (found in Consul), keeps a breaker
    per instance and falls back when they fail. The Idempotency-Key tells it
    the task may be sent again if an instance hangs mid-call."""
    req = urllib.request.Request(f"{SIDECAR_ADDR}/call/{PEER}/task", method="POST",
                                 data=json.dumps({"input": text}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Idempotency-Key": str(uuid.uuid4()), **TOKEN_HEADERS})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return {"peer": json.loads(resp.read())}
    except urllib.error.HTTPError as exc:
        try:
            msg = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = exc.reason
        return {"peer_error": f"{exc.code}: {msg}"}
    except OSError as exc:
        return {"peer_error": str(exc)}


def work_loop():
    """Stands for the agent's main loop (polling a queue, thinking, ...)."""
    while True:
        if not stalled.is_set() and not hung.is_set():
            with lock:
                state["loops"] += 1
        time.sleep(0.5)


def heartbeat_loop():
    while True:
        if hung.is_set():
            # A stuck agent: no heartbeats, no work. Only a restart helps.
            time.sleep(3600)
            continue
        try:
            heartbeat()
        except Exception as exc:  # the sidecar may be restarting
            log(f"heartbeat failed: {exc}")
        time.sleep(EVERY)


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
            answer = {"agent": AGENT_ID, "output": f"done: {task.get('input', '')}"}
            if PEER:
                answer.update(ask_peer(str(task.get("input", ""))))
            if MODEL:
                try:
                    answer.update(ask_model(str(task.get("input", ""))))
                except urllib.error.HTTPError as exc:
                    # The sidecar answers in OpenAI's error shape.
                    self.reply(502, {"agent": AGENT_ID, "error": json.loads(exc.read() or b"{}")})
                    return
                except OSError as exc:
                    self.reply(502, {"agent": AGENT_ID, "error": str(exc)})
                    return
            self.reply(200, answer)
        elif self.path == "/hang":
            log("told to hang: no more heartbeats")
            self.reply(200, {"hanging": True})
            hung.set()
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


def main():
    signal.signal(signal.SIGUSR1, lambda *_: (log("SIGUSR1: hanging"), hung.set()))
    signal.signal(signal.SIGTERM, lambda *_: (log("SIGTERM: stopping"), os._exit(0)))
    threading.Thread(target=work_loop, daemon=True).start()
    threading.Thread(target=heartbeat_loop, daemon=True).start()
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    log(f"taking tasks on {HOST}:{PORT}, heartbeating to {HEARTBEAT_URL} every {EVERY:g}s")
    server.serve_forever()


if __name__ == "__main__":
    main()
