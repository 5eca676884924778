"""The client against the real sidecar and Consul (SIDECAR_BIN,
CONSUL_HTTP_ADDR): heartbeats, progress and stalls, calls that fail over,
errors, and a heartbeat loop that outlives a sidecar restart."""

import json
import shutil
import sys
import unittest
import uuid
from typing import List

from tests.support import (CONSUL_HTTP_ADDR, E2E_REASON, SIDECAR_BIN, FakeServer, SidecarProcess,
                           consul_check, eventually, json_reply)

from agent_sidecar import (BadRequestError, NotFoundError, RateLimitedError, Sidecar,
                           SidecarUnreachableError, TooLargeError, UnauthorizedError,
                           UnavailableError)

HEALTH = """
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "1s"
  stall_after        = "3s"
}
"""

TOKEN = "py-client-test-token-0123456789"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@unittest.skipUnless(SIDECAR_BIN and CONSUL_HTTP_ADDR, E2E_REASON)
class SidecarTest(unittest.TestCase):
    def run(self, result=None):  # type: ignore[no-untyped-def]
        """Runs the test; shows the output of its sidecars when it failed,
        then removes their directories."""
        self.sidecars: List[SidecarProcess] = []
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            for sc in self.sidecars:
                if failed:
                    print(f"\n--- sidecar {sc.agent_id} ---\n{sc.output()}", file=sys.stderr)
                shutil.rmtree(sc.dir, ignore_errors=True)

    def start(self, extra: str = "", listen: str = "") -> SidecarProcess:
        agent_id = "pyclient-" + uuid.uuid4().hex[:8]
        config = ('agent {\n  name = "pyclient"\n  id = "{id}"\n}\n'
                  'listen {\n  address = "{addr}"\n' + listen + "}\n" + HEALTH + extra)
        sc = SidecarProcess(config, agent_id)
        self.sidecars.append(sc)
        self.addCleanup(sc.stop)
        sc.start()
        return sc

    def test_heartbeats_make_the_agent_passing_in_consul(self) -> None:
        # Given a sidecar expecting a heartbeat every second,
        sc = self.start()
        client = Sidecar(sc.addr)
        # when the loop runs with no interval of its own (5 s until told),
        with client.heartbeats(default_interval=5) as hb:
            hb.note("handled 2 tasks")
            hb.metrics({"tasks": 2, "model": "gpt-4o"})
            # then Consul's check passes with the note,
            check = eventually("the heartbeat check to pass with the note", lambda: (
                (c := consul_check(sc.agent_id)) and c["Status"] == "passing"
                and "handled 2 tasks" in c["Output"] and c))
            self.assertIn("handled 2 tasks", check["Output"])
            # and the loop follows the sidecar's 1 s interval, so it stays passing.
            self.assertLess(hb.interval, 1.0)
            eventually("5 heartbeats", lambda: client.status()["health"]["heartbeats"] >= 5, limit=15)
            self.assertEqual(consul_check(sc.agent_id)["Status"], "passing")
            self.assertEqual(client.status()["health"]["metrics"], {"tasks": 2, "model": "gpt-4o"})
            # A failing status turns the check critical.
            hb.status("failing")
            eventually("the check to turn critical", lambda: consul_check(sc.agent_id)["Status"] == "critical")

    def test_progress_shows_in_status_and_a_frozen_progress_isolates(self) -> None:
        sc = self.start()
        client = Sidecar(sc.addr)
        with client.heartbeats(interval=0.3) as hb:
            hb.progress(41)
            self.assertEqual(hb.progress(), 42)
            eventually("progress 42 in /v1/status", lambda: client.status()["health"].get("progress") == "42")
            # The progress stays at 42 while heartbeats go on: after
            # stall_after (3 s) the agent is isolated as stalled.
            health = eventually("the agent to be isolated as stalled", lambda: (
                (h := client.status()["health"])["state"] == "isolated" and h), limit=15)
            self.assertEqual(health.get("reason"), "stalled", health)
            self.assertEqual(consul_check(sc.agent_id)["Status"], "critical")
            # Progress again: healthy again.
            hb.progress()
            eventually("the agent to be healthy again",
                       lambda: client.status()["health"]["state"] == "healthy", limit=15)

    def test_a_call_that_fails_over_says_so_and_carries_the_trace(self) -> None:
        flaky = FakeServer(lambda req: json_reply(503, {"error": "overloaded"}))
        steady = FakeServer(lambda req: json_reply(200, {"served_by": "steady", "path": req["path"]}))
        self.addCleanup(flaky.close)
        self.addCleanup(steady.close)
        sc = self.start(f'''
upstream "flaky" {{
  url      = "{flaky.url}"
  fallback = ["steady"]
}}
upstream "steady" {{
  url = "{steady.url}"
}}
''')
        client = Sidecar(sc.addr)
        with client.trace_context({"Traceparent": TRACEPARENT, "baggage": "tenant=acme"}):
            result = client.call("flaky", "/task", json={"input": "a haiku"})
        self.assertEqual(result.status, 200)
        self.assertEqual(result.json(), {"served_by": "steady", "path": "/task"})
        self.assertTrue(result.fallback)
        self.assertEqual(result.upstream, "steady")
        self.assertEqual(result.fallback_name, "steady")
        self.assertTrue(result.instance)
        # Both received the same Idempotency-Key (the POST was safe to send
        # again) and the task's trace context.
        self.assertEqual(len(flaky.requests), 1)
        sent, got = flaky.requests[0]["headers"], steady.requests[0]["headers"]
        self.assertTrue(sent.get("idempotency-key"))
        self.assertEqual(sent["idempotency-key"], got["idempotency-key"])
        self.assertEqual(json.loads(steady.requests[0]["body"]), {"input": "a haiku"})
        self.assertEqual(got["traceparent"].split("-")[1], TRACEPARENT.split("-")[1])
        self.assertEqual(got.get("baggage"), "tenant=acme")
        # Outside the block, no trace context is added.
        client.call("steady", "/plain")
        self.assertNotIn("traceparent", steady.requests[-1]["headers"])
        self.assertEqual(steady.requests[-1]["method"], "GET")
        self.assertNotIn("idempotency-key", steady.requests[-1]["headers"])

    def test_chat_reports_the_model_and_carries_the_trace(self) -> None:
        model = FakeServer(lambda req: json_reply(200, {
            "id": "c1", "object": "chat.completion", "model": "fake-1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "A haiku."},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}))
        self.addCleanup(model.close)
        sc = self.start(f'''
model "writer" {{
  provider = "openai"
  base_url = "{model.url}/v1"
  api_key  = "sk-pyclient-planted-key-0123456789"
}}
''')
        client = Sidecar(sc.addr)
        with client.trace_context({"traceparent": TRACEPARENT}):
            self.assertEqual(client.trace_headers(), {"traceparent": TRACEPARENT})
            answer = client.chat("writer", [{"role": "user", "content": "a haiku"}], max_tokens=50)
        self.assertEqual(answer.text, "A haiku.")
        self.assertEqual(answer.model, "writer")
        self.assertFalse(answer.degraded)
        self.assertEqual(answer.attempts, 1)
        self.assertEqual(answer.usage["total_tokens"], 5)
        sent = model.requests[-1]["headers"]
        self.assertEqual(sent["traceparent"].split("-")[1], TRACEPARENT.split("-")[1])
        self.assertEqual(sent["authorization"], "Bearer sk-pyclient-planted-key-0123456789")
        with self.assertRaises(NotFoundError) as caught:
            client.chat("no-such-model", [{"role": "user", "content": "hi"}])
        self.assertEqual(caught.exception.status, 404)

    def test_errors_become_typed_exceptions(self) -> None:
        limited = FakeServer(lambda req: json_reply(429, {"error": "slow down"}, {"Retry-After": "7"}))
        self.addCleanup(limited.close)
        sc = self.start(f'''
upstream "limited" {{
  url = "{limited.url}"
}}
''', listen=f'  token = "{TOKEN}"\n')
        client = Sidecar(sc.addr, TOKEN)

        cases = [
            ("no token", lambda: Sidecar(sc.addr).status(), UnauthorizedError, 401, "unauthorized"),
            ("wrong token", lambda: Sidecar(sc.addr, "x" * 32).status(), UnauthorizedError, 401, "unauthorized"),
            ("bad status", lambda: client.heartbeat(status="great"), BadRequestError, 400, "invalid_request"),
            ("too large", lambda: client.heartbeat(note="x" * (70 << 10)), TooLargeError, 413, "request_too_large"),
            ("unknown upstream", lambda: client.call("nowhere", "/task"), NotFoundError, 404, "not_found"),
        ]
        for name, do, cls, status, etype in cases:
            with self.subTest(name):
                with self.assertRaises(cls) as caught:
                    do()
                self.assertEqual(caught.exception.status, status)
                self.assertEqual(caught.exception.type, etype)
                self.assertTrue(caught.exception.message)

        # A rate limit: the upstream's 429 opens its breaker until Retry-After.
        with self.assertRaises(RateLimitedError) as caught:
            client.call("limited", "/task", json={})
        self.assertEqual(caught.exception.status, 429)
        self.assertEqual(caught.exception.retry_after, 7)
        # Held open: the next call gets the sidecar's own 503 with Retry-After.
        with self.assertRaises(UnavailableError) as unavailable:
            client.call("limited", "/task", json={})
        self.assertEqual(unavailable.exception.type, "unavailable")
        self.assertIn("limited", unavailable.exception.message)
        self.assertTrue(0 < (unavailable.exception.retry_after or 0) <= 7)
        self.assertEqual(len(limited.requests), 1)

        # Not raised when asked not to.
        got = client.call("limited", "/task", raise_for_status=False)
        self.assertEqual(got.status, 503)

        sc.stop()
        with self.assertRaises(SidecarUnreachableError):
            client.status()

    def test_the_heartbeat_loop_survives_a_sidecar_restart(self) -> None:
        sc = self.start()
        client = Sidecar(sc.addr)
        with self.assertLogs("agent_sidecar", "WARNING") as logs:
            with client.heartbeats(interval=0.3) as hb:
                eventually("a heartbeat", lambda: hb.sent >= 1)
                # The sidecar goes away: beats fail, the loop goes on.
                sc.stop()
                eventually("a failed heartbeat", lambda: hb.failures >= 2)
                self.assertTrue(hb.running)
                # It comes back on the same address: the next beats arrive.
                sc.start()
                eventually("heartbeats at the new sidecar",
                           lambda: client.status()["health"]["heartbeats"] >= 2)
                eventually("the loop to count no failure", lambda: hb.failures == 0)
                eventually("the check to pass again",
                           lambda: (consul_check(sc.agent_id) or {}).get("Status") == "passing")
        self.assertTrue(any("heartbeat failed" in line for line in logs.output), logs.output)


if __name__ == "__main__":
    unittest.main()
