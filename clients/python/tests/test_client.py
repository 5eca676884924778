"""The client against small HTTP servers standing in for the sidecar: what
it sends, how it reads answers and errors, the heartbeat loop's timing and
failures, and trace context."""

import asyncio
import contextvars
import datetime
import json
import threading
import unittest
import unittest.mock

from tests.support import FakeServer, eventually, free_port, json_reply

import agent_sidecar
from agent_sidecar import (BadRequestError, RateLimitedError, Sidecar, SidecarError,
                           SidecarUnreachableError, UnavailableError, UpstreamTimeoutError,
                           control_url, error_from_answer, trace_context)
from agent_sidecar.heartbeat import expected_interval, parse_time

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class AddressTest(unittest.TestCase):
    def test_addresses_as_the_cli_reads_them(self) -> None:
        good = {
            "127.0.0.1:7070": "http://127.0.0.1:7070",
            "http://127.0.0.1:7070/": "http://127.0.0.1:7070",
            "https://sidecar.internal": "https://sidecar.internal",
            "http://[::1]:7070/prefix/": "http://[::1]:7070/prefix",
        }
        for addr, want in good.items():
            with self.subTest(addr):
                self.assertEqual(control_url(addr), want)
        bad = {
            "127.0.0.1": "the port is missing",
            "127.0.0.1:0": "the port must be",
            "ftp://h:1": "not an address",
            "http://user:secret@h:1": "user information",
            "http://h:1/?x=1": "query or fragment",
        }
        for addr, want in bad.items():
            with self.subTest(addr):
                with self.assertRaises(ValueError) as caught:
                    control_url(addr)
                self.assertIn(want, str(caught.exception))
                self.assertNotIn("secret", str(caught.exception))

    def test_from_env(self) -> None:
        env = {"SIDECAR_ADDR": "127.0.0.1:7171", "SIDECAR_TOKEN": "t" * 20}
        with unittest.mock.patch.dict("os.environ", env):
            sc = Sidecar.from_env()
        self.assertEqual(sc.addr, "http://127.0.0.1:7171")
        self.assertEqual(sc.token, "t" * 20)
        self.assertNotIn("t" * 20, repr(sc))
        with unittest.mock.patch.dict("os.environ", {"SIDECAR_ADDR": "", "SIDECAR_TOKEN": ""}):
            sc = Sidecar.from_env()
        self.assertEqual((sc.addr, sc.token), ("http://127.0.0.1:7070", None))
        self.assertEqual(sc.openai_base_url, "http://127.0.0.1:7070/llm/v1")
        self.assertEqual(sc.anthropic_base_url, "http://127.0.0.1:7070/llm")


class ErrorTest(unittest.TestCase):
    def test_the_three_error_shapes(self) -> None:
        cases = [
            ("sidecar", 503, {"error": {"type": "unavailable", "message": "no instance", "trace_id": "abc"}},
             UnavailableError, "unavailable", "no instance", None, "abc"),
            ("openai", 429, {"error": {"message": "budget spent", "type": "rate_limit_error", "param": None,
                                       "code": "budget_exceeded"}},
             RateLimitedError, "rate_limit_error", "budget spent", "budget_exceeded", None),
            ("anthropic", 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
             BadRequestError, "invalid_request_error", "bad", None, None),
            ("plain service", 502, {"error": "boom"}, agent_sidecar.UpstreamError, "", "boom", None, None),
        ]
        for name, status, doc, cls, etype, message, code, trace_id in cases:
            with self.subTest(name):
                err = error_from_answer(status, {}, json.dumps(doc).encode())
                self.assertIs(type(err), cls)
                self.assertEqual((err.status, err.type, err.message, err.code, err.trace_id),
                                 (status, etype, message, code, trace_id))

    def test_a_body_that_is_not_json_is_quoted(self) -> None:
        err = error_from_answer(500, {}, b"<html>oops</html>")
        self.assertIsInstance(err, SidecarError)
        self.assertIn("<html>oops</html>", err.message)
        self.assertEqual(error_from_answer(418, {}, b"", "I'm a teapot").message, "I'm a teapot")

    def test_retry_after(self) -> None:
        in_a_minute = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60)
        cases = [
            ({"Retry-After": "7"}, 7.0),
            ({"retry-after-ms": "1500", "Retry-After": "7"}, 1.5),
            ({"Retry-After": in_a_minute.strftime("%a, %d %b %Y %H:%M:%S GMT")}, 60.0),
            ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
            ({"Retry-After": "soon"}, None),
            ({}, None),
        ]
        for headers, want in cases:
            with self.subTest(headers):
                got = error_from_answer(503, headers, b"").retry_after  # type: ignore[attr-defined]
                if want is None:
                    self.assertIsNone(got)
                else:
                    self.assertAlmostEqual(got, want, delta=2)


class TraceTest(unittest.TestCase):
    def test_extract(self) -> None:
        got = agent_sidecar.trace.extract({"TraceParent": TRACEPARENT, "tracestate": "k=v",
                                           "Baggage": "a=1", "other": "x"})
        self.assertEqual(got, {"traceparent": TRACEPARENT, "tracestate": "k=v", "baggage": "a=1"})
        for bad in ["00-" + "0" * 32 + "-00f067aa0ba902b7-01", "ff" + TRACEPARENT[2:], "garbage",
                    TRACEPARENT + "\r\nX: y", TRACEPARENT.upper()]:
            with self.subTest(bad):
                got = agent_sidecar.trace.extract([("traceparent", bad), ("tracestate", "k=v"), ("baggage", "a=1")])
                self.assertEqual(got, {"baggage": "a=1"})

    def test_contexts_nest_and_stay_in_their_task(self) -> None:
        self.assertEqual(Sidecar.trace_headers(), {})
        other = TRACEPARENT.replace("4bf9", "1111")
        with trace_context({"traceparent": TRACEPARENT}):
            with trace_context({"traceparent": other}):
                self.assertEqual(Sidecar.trace_headers(), {"traceparent": other})
            self.assertEqual(Sidecar.trace_headers(), {"traceparent": TRACEPARENT})
            # A new thread starts without it; a copied context carries it.
            seen = {}
            t = threading.Thread(target=lambda: seen.update(Sidecar.trace_headers()))
            t.start()
            t.join()
            self.assertEqual(seen, {})
            self.assertEqual(contextvars.copy_context().run(Sidecar.trace_headers), {"traceparent": TRACEPARENT})
        self.assertEqual(Sidecar.trace_headers(), {})

        async def task(tp: str) -> str:
            with trace_context({"traceparent": tp}):
                await asyncio.sleep(0.01)
                return Sidecar.trace_headers()["traceparent"]

        async def both() -> list:
            return list(await asyncio.gather(task(TRACEPARENT), task(other)))

        self.assertEqual(asyncio.run(both()), [TRACEPARENT, other])


class CallTest(unittest.TestCase):
    def setUp(self) -> None:
        self.reply = json_reply(200, {"ok": True}, {"X-Sidecar-Upstream": "steady", "X-Sidecar-Fallback": "true",
                                                    "X-Sidecar-Instance": "127.0.0.1:9", "X-Sidecar-Attempts": "2"})
        self.server = FakeServer(lambda req: self.reply)
        self.addCleanup(self.server.close)
        self.sc = Sidecar(self.server.url, "token-" + "x" * 20)

    def test_what_a_call_sends_and_reads(self) -> None:
        with trace_context({"traceparent": TRACEPARENT}):
            got = self.sc.call("researcher", "/task", json={"input": "a"}, params={"q": "1 2"})
        req = self.server.requests[-1]
        self.assertEqual((req["method"], req["path"]), ("POST", "/call/researcher/task?q=1+2"))
        self.assertEqual(json.loads(req["body"]), {"input": "a"})
        self.assertEqual(req["headers"]["content-type"], "application/json")
        self.assertEqual(req["headers"]["x-sidecar-token"], "token-" + "x" * 20)
        self.assertEqual(req["headers"]["traceparent"], TRACEPARENT)
        key = req["headers"]["idempotency-key"]
        self.assertEqual(len(key), 36)
        self.assertEqual((got.status, got.json(), got.upstream, got.fallback, got.fallback_name,
                          got.instance, got.attempts, got.degraded),
                         (200, {"ok": True}, "steady", True, "steady", "127.0.0.1:9", 2, False))
        # A new key for each POST; the caller's own when given; none for a GET.
        self.sc.call("researcher", "task", json={})
        self.assertNotEqual(self.server.requests[-1]["headers"]["idempotency-key"], key)
        self.sc.call("researcher", "task", data=b"raw", idempotency_key="mine")
        self.assertEqual(self.server.requests[-1]["headers"]["idempotency-key"], "mine")
        self.assertEqual(self.server.requests[-1]["body"], b"raw")
        self.sc.call("researcher", "task", json={}, idempotency_key=False)
        self.assertNotIn("idempotency-key", self.server.requests[-1]["headers"])
        self.sc.call("researcher", "task")
        self.assertEqual(self.server.requests[-1]["method"], "GET")
        self.assertNotIn("idempotency-key", self.server.requests[-1]["headers"])
        self.assertNotIn("traceparent", self.server.requests[-1]["headers"])
        # The caller's own headers win.
        with trace_context({"traceparent": TRACEPARENT}):
            self.sc.call("researcher", "task", headers={"traceparent": "mine", "Idempotency-Key": "k"}, json={})
        self.assertEqual(self.server.requests[-1]["headers"]["traceparent"], "mine")
        self.assertEqual(self.server.requests[-1]["headers"]["idempotency-key"], "k")

    def test_paths(self) -> None:
        self.sc.call("researcher", "/a b/é%2F")
        self.assertEqual(self.server.requests[-1]["path"], "/call/researcher/a%20b/%C3%A9%2F")
        self.sc.call("researcher", "/search?q=a+b&n=1", params={"page": 2})
        self.assertEqual(self.server.requests[-1]["path"], "/call/researcher/search?q=a+b&n=1&page=2")

    def test_bad_arguments(self) -> None:
        for upstream in ("../admin", "..", "a/b", ""):
            with self.subTest(upstream):
                with self.assertRaises(ValueError):
                    self.sc.call(upstream, "/x")
        with self.assertRaises(ValueError):
            self.sc.call("a", "/x\r\nHost: evil")
        with self.assertRaises(ValueError):
            self.sc.call("a", "/x", json={}, data=b"x")

    def test_answers_that_are_errors(self) -> None:
        self.reply = json_reply(503, {"error": {"type": "unavailable", "message": "all open"}}, {"Retry-After": "3"})
        with self.assertRaises(UnavailableError) as caught:
            self.sc.call("researcher", "/task")
        self.assertEqual((caught.exception.type, caught.exception.retry_after), ("unavailable", 3))
        self.assertEqual(self.sc.call("researcher", "/task", raise_for_status=False).status, 503)
        # A redirect is passed back, not followed.
        self.reply = (307, {"Location": "http://127.0.0.1:1/elsewhere"}, b"")
        got = self.sc.call("researcher", "/task", json={})
        self.assertEqual(got.status, 307)

    def test_no_sidecar_or_no_answer(self) -> None:
        with self.assertRaises(SidecarUnreachableError) as caught:
            Sidecar("127.0.0.1:%d" % free_port()).status()
        self.assertIsInstance(caught.exception, ConnectionError)
        self.assertEqual(caught.exception.status, 0)
        gate = threading.Event()
        self.addCleanup(gate.set)
        self.server.handler = lambda req: (gate.wait(5), self.reply)[1]
        with self.assertRaises(UpstreamTimeoutError):
            self.sc.call("researcher", "/task", timeout=0.2)

    def test_sdk_clients_need_their_package(self) -> None:
        for make, package in ((self.sc.openai_client, "openai"), (self.sc.anthropic_client, "anthropic")):
            try:
                __import__(package)
            except ImportError:
                with self.assertRaises(ImportError) as caught:
                    make()
                self.assertIn(f"pip install {package}", str(caught.exception))


def beat_reply(interval: float) -> dict:
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    due = now + datetime.timedelta(seconds=interval)
    return {"state": "healthy", "last_heartbeat": now.isoformat().replace("+00:00", "Z"),
            "next_due": due.isoformat().replace("+00:00", "Z")}


class HeartbeatTest(unittest.TestCase):
    def setUp(self) -> None:
        self.status = 200
        self.server = FakeServer(lambda req: json_reply(self.status, beat_reply(0.2) if self.status == 200 else
                                                        {"error": {"type": "internal_error", "message": "x"}}))
        self.addCleanup(self.server.close)
        self.sc = Sidecar(self.server.url)

    def bodies(self) -> list:
        return [json.loads(r["body"]) for r in self.server.requests if r["path"] == "/v1/heartbeat"]

    def test_times(self) -> None:
        self.assertEqual(parse_time("2026-01-01T12:00:01.123456789Z"),
                         datetime.datetime(2026, 1, 1, 12, 0, 1, 123456, tzinfo=datetime.timezone.utc))
        self.assertIsNone(parse_time("yesterday"))
        self.assertEqual(expected_interval({"last_heartbeat": "2026-01-01T12:00:00Z",
                                            "next_due": "2026-01-01T12:00:10.5+00:00"}), 10.5)
        self.assertIsNone(expected_interval({"next_due": "2026-01-01T12:00:10Z"}))

    def test_the_loop_follows_the_sidecar_and_sends_what_it_is_told(self) -> None:
        with self.sc.heartbeats(default_interval=30, note="starting", progress=0) as hb:
            eventually("the first beat", lambda: hb.sent >= 1)
            self.assertAlmostEqual(hb.interval, 0.18)  # 90% of the sidecar's 0.2 s
            hb.progress(10)
            hb.progress()
            hb.metrics({"queue": 3}, model="m")
            hb.status("degraded")
            hb.note("n" * 2000)
            eventually("a beat with the new values", lambda: self.bodies()[-1].get("progress") == 11)
        sent = len(self.bodies())
        last = self.bodies()[-1]
        self.assertEqual(last["status"], "degraded")
        self.assertEqual(last["metrics"], {"queue": 3, "model": "m"})
        self.assertEqual(len(last["note"]), 1024)
        self.assertEqual(self.bodies()[0], {"status": "ok", "note": "starting", "progress": 0})
        self.assertFalse(hb.running)
        # Stopped: nothing more is sent.
        threading.Event().wait(0.5)
        self.assertEqual(len(self.bodies()), sent)
        with self.assertRaises(ValueError):
            hb.status("great")
        with self.assertRaises(TypeError):
            hb.metrics(nested={"a": 1})

    def test_failures_are_logged_and_the_loop_goes_on(self) -> None:
        self.status = 500
        with self.assertLogs("agent_sidecar", "INFO") as logs:
            with self.sc.heartbeats(interval=0.05) as hb:
                eventually("three failed beats", lambda: hb.failures >= 3)
                self.status = 200
                eventually("a beat that went through", lambda: hb.sent >= 1 and hb.failures == 0)
        warnings = [line for line in logs.output if line.startswith("WARNING")]
        self.assertEqual(len(warnings), 1, logs.output)  # once per outage, not per beat
        self.assertIn("internal_error", warnings[0])
        self.assertTrue(any("again" in line for line in logs.output if line.startswith("INFO")), logs.output)

    def test_the_asyncio_loop(self) -> None:
        async def run() -> int:
            async with self.sc.heartbeats(interval=0.05) as hb:
                while hb.sent < 3:
                    await asyncio.sleep(0.01)
                hb.progress()
            return hb.sent

        sent = asyncio.run(run())
        self.assertGreaterEqual(sent, 3)
        threading.Event().wait(0.3)
        self.assertLessEqual(len(self.bodies()), sent + 1)


if __name__ == "__main__":
    unittest.main()
