// A minimal AI agent that runs beside its sidecar, the Node twin of
// examples/python/agent.py (Node 20+, the official `openai` package only).
//
// It takes tasks over HTTP, heartbeats to its sidecar with a note, metrics and
// a progress counter, asks a model through the sidecar's OpenAI-compatible
// gateway (MODEL), calls another agent through the sidecar's /call/ (PEER),
// and can be told to hang, stall or fail so you can watch the sidecar deal
// with it.
//
// Environment (the sidecar sets the SIDECAR_* ones when it supervises the agent):
//   SIDECAR_ADDR      the sidecar's control API (default http://127.0.0.1:7070)
//   SIDECAR_TOKEN     the control API's token, when the sidecar requires one
//   SIDECAR_AGENT_ID  the agent's id, used in answers (default node-agent)
//   AGENT_PORT        where to take tasks, on 127.0.0.1 (default 8082)
//   HEARTBEAT_EVERY   seconds between heartbeats (default 5, may be fractional)
//   MODEL             a model of the sidecar's gateway to ask for each task (default: none)
//   PEER              an upstream of the sidecar to call for each task (default: none)
//
// Endpoints: POST /task {"input": "..."}, GET /healthz, POST /hang, /stall,
// /fail, /heal, /crash. SIGUSR1 hangs the agent too.
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";

const SIDECAR_ADDR = process.env.SIDECAR_ADDR || "http://127.0.0.1:7070";
const AGENT_ID = process.env.SIDECAR_AGENT_ID || "node-agent";
const PORT = Number(process.env.AGENT_PORT || 8082);
const EVERY = Number(process.env.HEARTBEAT_EVERY || 5);
const MODEL = process.env.MODEL || "";
const PEER = process.env.PEER || "";
// Every request to the sidecar carries its token when it requires one (listen.token).
const TOKEN_HEADERS = process.env.SIDECAR_TOKEN ? { "X-Sidecar-Token": process.env.SIDECAR_TOKEN } : {};

const log = (msg) => console.error(`[agent ${AGENT_ID}] ${msg}`);
if (!(Number.isInteger(PORT) && PORT > 0 && PORT < 65536 && EVERY > 0)) {
  log("AGENT_PORT must be a port and HEARTBEAT_EVERY a positive number of seconds");
  process.exit(2);
}

// The sidecar's gateway speaks OpenAI's API and adds the provider key itself:
// the SDK wants some apiKey, never a real one. No retries here: when the model
// fails the sidecar already sends the same request to a lighter fallback model.
const openai = new OpenAI({
  baseURL: `${SIDECAR_ADDR}/llm/v1`,
  apiKey: "sidecar-injects-the-key",
  defaultHeaders: TOKEN_HEADERS,
  maxRetries: 0,
  timeout: 60_000,
});

const state = { tasks: 0, loops: 0, started: Date.now(), hung: false, stalled: false, failing: false };

// Stands for the agent's main loop (polling a queue, thinking, ...): its turns
// are the heartbeat's progress, which freezes when the agent stalls or hangs.
setInterval(() => {
  if (!state.stalled && !state.hung) state.loops++;
}, 500);

async function heartbeat() {
  const res = await fetch(`${SIDECAR_ADDR}/v1/heartbeat`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...TOKEN_HEADERS },
    body: JSON.stringify({
      status: "ok",
      note: `handled ${state.tasks} tasks`,
      metrics: { tasks: state.tasks, uptime_s: Math.round((Date.now() - state.started) / 1000) },
      progress: state.loops,
    }),
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`the sidecar answered ${res.status}`);
}

async function heartbeatLoop() {
  // A hung agent sends no heartbeats: only a restart helps.
  while (!state.hung) {
    // A failed heartbeat (the sidecar may be restarting) is tried again next time.
    await heartbeat().catch((err) => log(`heartbeat failed: ${err.cause?.message ?? err.message}`));
    await sleep(EVERY * 1000);
  }
}

// One chat completion through the sidecar's gateway. The answer's headers say
// which model answered, and whether it was the lighter fallback.
async function askModel(input) {
  const { data, response } = await openai.chat.completions
    .create({
      model: MODEL,
      messages: [
        { role: "system", content: "You are a concise writer." },
        { role: "user", content: input },
      ],
      max_tokens: 4000,
    })
    .withResponse();
  return {
    output: data.choices[0].message.content,
    model: response.headers.get("x-sidecar-model") || MODEL,
    degraded: response.headers.get("x-sidecar-degraded") === "true",
  };
}

// One call to another agent through the sidecar: POST /call/{PEER}/task. The
// sidecar picks a healthy instance (found in Consul) behind its breaker. The
// Idempotency-Key tells it the task may be sent again if an instance hangs
// mid-call. A failed call is reported in the answer; the task still succeeds.
async function askPeer(input) {
  try {
    const res = await fetch(`${SIDECAR_ADDR}/call/${PEER}/task`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID(), ...TOKEN_HEADERS },
      body: JSON.stringify({ input }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.ok) {
      try {
        return { peer: JSON.parse(text) };
      } catch {
        return { peer_error: `${res.status}: the peer's answer is not JSON` };
      }
    }
    // The sidecar's own errors are {"error": {"type": ..., "message": ...}}.
    let message = res.statusText;
    try {
      message = JSON.parse(text).error.message ?? message;
    } catch {}
    return { peer_error: `${res.status}: ${message}` };
  } catch (err) {
    return { peer_error: err.cause?.message ?? err.message };
  }
}

function reply(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

async function handleTask(req, res) {
  let task;
  try {
    let raw = "";
    req.setEncoding("utf8");
    for await (const chunk of req) raw += chunk;
    task = JSON.parse(raw.trim() || "{}");
    if (task === null || typeof task !== "object" || Array.isArray(task)) throw new Error("not an object");
  } catch {
    return reply(res, 400, { error: "body must be JSON" });
  }
  if (state.failing) return reply(res, 503, { agent: AGENT_ID, error: "told to fail" });
  state.tasks++;
  const input = typeof task.input === "string" ? task.input : task.input == null ? "" : JSON.stringify(task.input);
  const answer = { agent: AGENT_ID, output: `done: ${input}` };
  if (PEER) Object.assign(answer, await askPeer(input));
  if (MODEL) {
    try {
      Object.assign(answer, await askModel(input));
    } catch (err) {
      return reply(res, 502, { agent: AGENT_ID, error: err.message });
    }
  }
  return reply(res, 200, answer);
}

function hang(why) {
  if (!state.hung) log(`${why}: hanging, no more heartbeats or answers`);
  state.hung = true;
}

const server = http.createServer((req, res) => {
  // A hung agent answers nothing: the request stays open until its caller gives up.
  if (state.hung) return;
  const route = `${req.method} ${req.url}`;
  if (route === "POST /task") return handleTask(req, res);
  if (route === "GET /healthz") return reply(res, 200, { status: "ok" });
  if (route === "POST /hang") {
    reply(res, 200, { hanging: true });
    return hang("told to hang");
  }
  if (route === "POST /stall") {
    log("told to stall: heartbeats go on, progress stops");
    state.stalled = true;
    return reply(res, 200, { stalled: true });
  }
  if (route === "POST /fail" || route === "POST /heal") {
    state.failing = route === "POST /fail";
    log(state.failing ? "told to fail: every task gets 503" : "told to heal: taking tasks again");
    return reply(res, 200, { failing: state.failing });
  }
  if (route === "POST /crash") {
    log("told to crash");
    res.on("close", () => process.exit(1)); // once the answer is out
    return reply(res, 200, { crashing: true });
  }
  return reply(res, 404, { error: "not found" });
});

process.on("SIGUSR1", () => hang("SIGUSR1"));
process.on("SIGTERM", () => {
  log("SIGTERM: stopping");
  process.exit(0);
});

server.on("error", (err) => {
  log(`serving: ${err.message}`);
  process.exit(1);
});
server.listen(PORT, "127.0.0.1", () => {
  log(`taking tasks on 127.0.0.1:${PORT}, heartbeating to ${SIDECAR_ADDR}/v1/heartbeat every ${EVERY}s`);
  heartbeatLoop();
});
