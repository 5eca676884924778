// Helpers of the client's tests: a real sidecar (SIDECAR_BIN) on free ports,
// registered in a real Consul (CONSUL_HTTP_ADDR), and scripted upstreams.
// clients/node_test.go builds the sidecar, starts Consul and runs these tests.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const SIDECAR_BIN = process.env.SIDECAR_BIN || "";
export const CONSUL = process.env.CONSUL_HTTP_ADDR || "";
/** Why the tests cannot run here, or "" when they can. */
export const missing = !SIDECAR_BIN || !CONSUL ? "SIDECAR_BIN and CONSUL_HTTP_ADDR are needed (go test -tags e2e ./clients/ sets them)" : "";

export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** An HTTP server on a free port; answer(req, body) returns {status, json}. Records what it received. */
export async function startUpstream(t, answer) {
  const seen = [];
  const srv = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    const { status = 200, json = {} } = answer(req, body);
    const data = JSON.stringify(json);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
    res.end(data);
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => srv.close(resolve)));
  return { url: `http://127.0.0.1:${srv.address().port}`, seen };
}

/** Polls cond (sync or async) every 100 ms until it is truthy; fails after limitMs with what. */
export async function eventually(what, limitMs, cond) {
  const end = Date.now() + limitMs;
  for (;;) {
    const got = await cond();
    if (got) return got;
    if (Date.now() > end) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

let serial = 0;

/**
 * A sidecar process for agent id on a free port, with hcl after the agent,
 * listen and health blocks (heartbeats every second). stop() and start()
 * restart it on the same port; it is stopped when the test ends.
 */
export async function startSidecar(t, { hcl = "", token = "", health = "" } = {}) {
  const id = `node-client-${process.pid}-${++serial}`;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "sidecar-node-client-"));
  const config = join(dir, "sidecar.hcl");
  writeFileSync(
    config,
    `agent {
  name      = "node-client-test"
  id        = "${id}"
  state_dir = "${join(dir, "state")}"
}
listen {
  address = "127.0.0.1:${port}"
  ${token ? `token = "${token}"` : ""}
}
health {
  heartbeat_interval = "1s"
  missed_heartbeats  = 2
  grace              = "1s"
  ${health}
}
${hcl}
`,
  );
  const sc = { id, port, addr: `http://127.0.0.1:${port}`, output: "", proc: undefined };
  // Only what the sidecar needs: never the caller's SIDECAR_TOKEN or keys.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME ?? dir, CONSUL_HTTP_ADDR: CONSUL, OPENAI_API_KEY: "sk-node-client-test-key" };
  sc.start = async () => {
    const proc = spawn(SIDECAR_BIN, ["agent", "-config", config], { env, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout.on("data", (d) => (sc.output += d));
    proc.stderr.on("data", (d) => (sc.output += d));
    proc.exited = new Promise((resolve) => proc.on("exit", resolve));
    sc.proc = proc;
    await eventually(`the sidecar on ${sc.addr}\n${sc.output}`, 20_000, async () => {
      if (proc.exitCode !== null) throw new Error(`the sidecar exited: ${proc.exitCode}\n${sc.output}`);
      try {
        return (await fetch(`${sc.addr}/v1/health`)).ok;
      } catch {
        return false;
      }
    });
  };
  sc.stop = async () => {
    const proc = sc.proc;
    if (!proc || proc.exitCode !== null) return;
    proc.kill("SIGTERM");
    const killer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    await proc.exited;
    clearTimeout(killer);
  };
  t.after(async () => {
    await sc.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await sc.start();
  return sc;
}

/** The agent's heartbeat check in Consul, or undefined. */
export async function consulCheck(serviceID) {
  const res = await fetch(`http://${CONSUL}/v1/agent/checks`);
  const checks = await res.json();
  return Object.values(checks).find((c) => c.ServiceID === serviceID && c.Name === "heartbeat");
}

/** A logger that keeps what it is told. */
export function recordingLogger() {
  const lines = [];
  return { lines, warn: (m) => lines.push(`warn ${m}`), info: (m) => lines.push(`info ${m}`) };
}
