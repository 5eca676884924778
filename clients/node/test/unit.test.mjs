// The client against a scripted sidecar (no binary needed): errors in each
// shape, Retry-After, trace context and idempotency keys.
import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";

import { RateLimitError, Sidecar, SidecarError, UnavailableError, BadGatewayError, GatewayTimeoutError, PayloadTooLargeError, traceHeaders, withTraceContext } from "agent-sidecar";

async function scripted(t, answer) {
  const seen = [];
  const srv = http.createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    const { status, headers = {}, text } = answer(req);
    res.writeHead(status, headers);
    res.end(text);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => srv.close(r)));
  return { sidecar: new Sidecar({ addr: `127.0.0.1:${srv.address().port}/`, token: "tok-0123456789abcdef" }), seen };
}

test("each error shape becomes its class, with type, code, trace id and Retry-After", async (t) => {
  for (const tc of [
    { status: 503, text: `{"error":{"type":"unavailable","message":"no instance of researcher is passing","trace_id":"abc"}}`, headers: { "Retry-After": "7" }, Class: UnavailableError, type: "unavailable", traceId: "abc", retryAfter: 7 },
    { status: 429, text: `{"error":{"message":"budget spent","type":"rate_limit_error","param":null,"code":"budget_exceeded"}}`, headers: { "Retry-After": "30" }, Class: RateLimitError, type: "rate_limit_error", code: "budget_exceeded", retryAfter: 30 },
    { status: 529, text: `{"type":"error","error":{"type":"overloaded_error","message":"no model could answer"}}`, Class: SidecarError, type: "overloaded_error" },
    { status: 502, text: `{"error":{"type":"upstream_error","message":"connection reset"}}`, Class: BadGatewayError, type: "upstream_error" },
    { status: 504, text: `{"error":{"type":"timeout","message":"no answer within 60s"}}`, Class: GatewayTimeoutError, type: "timeout" },
    { status: 413, text: `{"error":{"type":"request_too_large","message":"over 64 KiB"}}`, Class: PayloadTooLargeError, type: "request_too_large" },
    { status: 418, text: "upstream says no\n", Class: SidecarError, type: "", message: "sidecar: 418: upstream says no" },
  ]) {
    const { sidecar } = await scripted(t, () => ({ status: tc.status, headers: tc.headers, text: tc.text }));
    await assert.rejects(sidecar.call("researcher", "/task"), (err) => {
      assert.equal(err.constructor, tc.Class, `${tc.status}: ${err.name}`);
      assert.equal(err.status, tc.status);
      assert.equal(err.type, tc.type);
      assert.equal(err.code, tc.code ?? "");
      assert.equal(err.traceId, tc.traceId ?? "");
      assert.equal(err.retryAfter, tc.retryAfter);
      assert.equal(err.response.status, tc.status);
      if (tc.message) assert.equal(err.message, tc.message);
      return true;
    });
  }
});

test("calls carry the token, a key for a POST, and the trace of the task being handled", async (t) => {
  const { sidecar, seen } = await scripted(t, () => ({
    status: 200,
    headers: { "X-Sidecar-Upstream": "researcher", "X-Sidecar-Instance": "10.0.0.7:8080" },
    text: `{"ok":true}`,
  }));
  const incoming = { Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "a=1", baggage: "user=7", cookie: "secret" };
  const res = await withTraceContext(incoming, async () => {
    assert.deepEqual(traceHeaders(), { traceparent: incoming.Traceparent, tracestate: "a=1", baggage: "user=7" });
    await new Promise((r) => setTimeout(r, 5)); // the context survives awaits and timers
    return sidecar.call("researcher", "task", { json: { input: "x" }, idempotencyKey: "k-1" });
  });
  assert.deepEqual(traceHeaders(), {});
  assert.equal(res.upstream, "researcher");
  assert.equal(res.instance, "10.0.0.7:8080");
  assert.equal(res.fallback, false);
  assert.deepEqual(res.json(), { ok: true });
  const [sent] = seen;
  assert.equal(sent.url, "/call/researcher/task");
  assert.equal(sent.headers["x-sidecar-token"], "tok-0123456789abcdef");
  assert.equal(sent.headers["idempotency-key"], "k-1");
  assert.equal(sent.headers["content-type"], "application/json");
  assert.equal(sent.headers.traceparent, incoming.Traceparent);
  assert.equal(sent.headers.baggage, "user=7");
  assert.equal(sent.headers.cookie, undefined);

  await sidecar.call("researcher", "/task", { json: {}, idempotencyKey: false });
  assert.equal(seen[1].headers["idempotency-key"], undefined);
  await sidecar.call("researcher", "/task", { method: "PUT", body: "raw" });
  assert.equal(seen[2].method, "PUT");
  assert.equal(seen[2].headers["idempotency-key"], undefined);
  assert.equal(seen[2].body, "raw");
});

test("heartbeats never carry a task's trace", async (t) => {
  const { sidecar, seen } = await scripted(t, () => ({ status: 200, headers: { "Content-Type": "application/json" }, text: `{"state":"healthy","heartbeats":1}` }));
  await withTraceContext({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, () => sidecar.heartbeat({ progress: 0, note: "" }));
  assert.equal(seen[0].headers.traceparent, undefined);
  assert.equal(seen[0].body, `{"progress":0}`);
});

test("chat reads the answer and who wrote it", async (t) => {
  const { sidecar, seen } = await scripted(t, () => ({
    status: 200,
    headers: { "X-Sidecar-Model": "gpt-4o-mini", "X-Sidecar-Degraded": "true", "X-Sidecar-Attempts": "2" },
    text: `{"choices":[{"message":{"role":"assistant","content":"a haiku"}}]}`,
  }));
  const answer = await sidecar.chat("gpt-4o", [{ role: "user", content: "hi" }], { maxTokens: 40 });
  assert.deepEqual([answer.content, answer.model, answer.degraded, answer.attempts], ["a haiku", "gpt-4o-mini", true, 2]);
  assert.equal(seen[0].url, "/llm/v1/chat/completions");
  assert.deepEqual(JSON.parse(seen[0].body), { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 40 });
  assert.equal(seen[0].headers["idempotency-key"], undefined);
});

test("the address and the SDKs' base URLs", () => {
  const prev = { ...process.env };
  try {
    delete process.env.SIDECAR_ADDR;
    delete process.env.SIDECAR_TOKEN;
    assert.equal(Sidecar.fromEnv().addr, "http://127.0.0.1:7070");
    process.env.SIDECAR_ADDR = "127.0.0.1:7072";
    process.env.SIDECAR_TOKEN = "tok";
    const s = Sidecar.fromEnv();
    assert.equal(s.openaiBaseURL, "http://127.0.0.1:7072/llm/v1");
    assert.equal(s.anthropicBaseURL, "http://127.0.0.1:7072/llm");
    assert.equal(s.token, "tok");
    assert.throws(() => new Sidecar({ addr: "http://user:pw@127.0.0.1:7070" }), /user information/);
  } finally {
    process.env = prev;
  }
});

test("openaiClient: the SDK's requests carry the token and the task's trace, or how to install it", async (t) => {
  // Without the SDK the client says how to get it.
  const sidecar = new Sidecar({ addr: "127.0.0.1:1", token: "t-0123456789abcdef" });
  let client;
  try {
    client = await sidecar.openaiClient();
  } catch (err) {
    assert.match(err.message, /npm install openai/);
    return;
  }
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ id: "x", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] }));
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => srv.close(r)));
  client = await new Sidecar({ addr: `127.0.0.1:${srv.address().port}`, token: "t-0123456789abcdef" }).openaiClient();
  await sidecar.withTraceContext({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, () => client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }));
  assert.equal(seen[0]["x-sidecar-token"], "t-0123456789abcdef");
  assert.equal(seen[0].traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
});
