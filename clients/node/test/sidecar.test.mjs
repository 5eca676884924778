// The client against a real sidecar and a real Consul: run by
// clients/node_test.go (go test -tags e2e ./clients/), which sets SIDECAR_BIN
// and CONSUL_HTTP_ADDR.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthError,
  BadRequestError,
  Sidecar,
  SidecarConnectionError,
  SidecarError,
  UnavailableError,
} from "agent-sidecar";
import { consulCheck, eventually, missing, recordingLogger, startSidecar, startUpstream, freePort } from "./helpers.mjs";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

test("heartbeats make the agent passing in Consul, with its note", { skip: missing || false }, async (t) => {
  const sc = await startSidecar(t);
  const sidecar = new Sidecar({ addr: sc.addr });
  const hb = sidecar.startHeartbeats({ intervalMs: 500, note: "handled 0 tasks" });
  t.after(() => hb.stop());

  const check = await eventually("a passing heartbeat check", 20_000, async () => {
    const c = await consulCheck(sc.id);
    return c?.Status === "passing" && c;
  });
  assert.match(check.Output, /handled 0 tasks/);
  assert.equal(hb.last.state, "healthy");
});

test("progress shows in status, and frozen progress isolates the agent", { skip: missing || false }, async (t) => {
  const sc = await startSidecar(t, { health: `stall_after = "2s"` });
  const sidecar = new Sidecar({ addr: sc.addr });
  const hb = sidecar.startHeartbeats({ intervalMs: 300 }).progress(7);
  t.after(() => hb.stop());

  // Given progress that moves: the sidecar shows it, and the agent is healthy.
  const moving = setInterval(() => hb.increment(), 200);
  t.after(() => clearInterval(moving));
  await eventually("progress past 7 in /v1/status", 10_000, async () => {
    const { health } = await sidecar.status();
    return health.state === "healthy" && Number(health.progress) > 7;
  });

  // When it freezes while heartbeats go on, then the agent is isolated as stalled.
  clearInterval(moving);
  const { health } = await sidecar.status();
  const frozen = health.progress;
  const stalled = await eventually("a stalled agent", 15_000, async () => {
    const { health } = await sidecar.status();
    return health.state === "isolated" && health;
  });
  assert.equal(stalled.reason, "stalled");
  assert.ok(Number(stalled.progress) >= Number(frozen));
  const c = await consulCheck(sc.id);
  assert.equal(c?.Status, "critical");
});

test("a call that fails over says the fallback answered, with its idempotency key and trace", { skip: missing || false }, async (t) => {
  const primary = await startUpstream(t, () => ({ status: 503, json: { error: "busy" } }));
  const backup = await startUpstream(t, (req, body) => ({ json: { answered: "backup", got: body ? JSON.parse(body) : null } }));
  const sc = await startSidecar(t, {
    hcl: `
upstream "primary" {
  url      = "${primary.url}"
  fallback = ["backup"]
}
upstream "backup" { url = "${backup.url}" }
`,
  });
  const sidecar = new Sidecar({ addr: sc.addr });

  const res = await sidecar.withTraceContext({ traceparent: TRACEPARENT, "x-other": "not forwarded" }, () =>
    sidecar.call("primary", "/task?lang=en", { json: { input: "a haiku" } }),
  );
  assert.equal(res.status, 200);
  assert.deepEqual(res.json(), { answered: "backup", got: { input: "a haiku" } });
  assert.equal(res.upstream, "backup");
  assert.equal(res.fallback, true);
  assert.ok(primary.seen.length >= 1, "the primary was tried first");
  const sent = backup.seen.at(-1);
  assert.equal(sent.method, "POST");
  assert.equal(sent.url, "/task?lang=en");
  assert.match(sent.headers["idempotency-key"], /^[0-9a-f-]{36}$/);
  assert.equal(sent.headers["idempotency-key"], primary.seen.at(-1).headers["idempotency-key"], "one key for every attempt");
  assert.equal(sent.headers.traceparent.split("-")[1], TRACE_ID);
  assert.equal(sent.headers["x-other"], undefined);

  // Outside the task's context, no trace goes out; a GET gets no key.
  await sidecar.call("backup", "/ping");
  assert.equal(backup.seen.at(-1).headers.traceparent, undefined);
  assert.equal(backup.seen.at(-1).headers["idempotency-key"], undefined);
});

test("the sidecar's errors become their classes", { skip: missing || false }, async (t) => {
  const token = "node-client-token-0123456789";
  const dead = await freePort();
  const sc = await startSidecar(t, {
    token,
    hcl: `
model "dead" {
  provider = "openai"
  base_url = "http://127.0.0.1:${dead}/v1"
  api_key  = env("OPENAI_API_KEY")
}
`,
  });

  await assert.rejects(new Sidecar({ addr: sc.addr, token: "wrong-token-0123456789" }).heartbeat({}), (err) => {
    assert.ok(err instanceof AuthError && err instanceof SidecarError);
    assert.equal(err.status, 401);
    assert.equal(err.type, "unauthorized");
    return true;
  });

  const sidecar = new Sidecar({ addr: sc.addr, token });
  await assert.rejects(sidecar.heartbeat({ status: "great" }), (err) => {
    assert.ok(err instanceof BadRequestError);
    assert.equal(err.type, "invalid_request");
    assert.match(err.message, /"great" is not valid/);
    return true;
  });

  await assert.rejects(sidecar.chat("dead", [{ role: "user", content: "hi" }]), (err) => {
    assert.ok(err instanceof UnavailableError, `${err.name}: ${err.message}`);
    assert.equal(err.status, 503);
    assert.equal(err.code, "models_unavailable");
    assert.match(err.message, /no model could answer/);
    return true;
  });

  await assert.rejects(new Sidecar({ addr: `127.0.0.1:${dead}` }).status(), SidecarConnectionError);
});

test("the heartbeat loop goes on across a sidecar restart", { skip: missing || false }, async (t) => {
  const sc = await startSidecar(t);
  const logger = recordingLogger();
  const sidecar = new Sidecar({ addr: sc.addr, logger });
  const hb = sidecar.startHeartbeats({ intervalMs: 500 }).progress("step-1");
  t.after(() => hb.stop());
  await eventually("a passing check", 20_000, async () => (await consulCheck(sc.id))?.Status === "passing");

  // Given the sidecar stops: the loop warns once and keeps trying.
  await sc.stop();
  await eventually("a warning about the failed heartbeat", 10_000, () => logger.lines.some((l) => l.startsWith("warn ")));
  assert.equal(logger.lines.filter((l) => l.startsWith("warn ")).length, 1, logger.lines.join("\n"));

  // When it comes back, then the same loop makes the agent passing again.
  hb.progress("step-2");
  await sc.start();
  await eventually("heartbeats answered again", 20_000, async () => {
    const { health } = await sidecar.status();
    return health.state === "healthy" && health.progress === "step-2";
  });
  await eventually("a passing check after the restart", 20_000, async () => (await consulCheck(sc.id))?.Status === "passing");
  assert.ok(logger.lines.some((l) => l.startsWith("info ")), logger.lines.join("\n"));
});
