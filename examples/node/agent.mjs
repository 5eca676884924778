// A minimal AI agent that runs beside its sidecar, the Node twin of
// examples/python/agent.py (Node 20+, the sidecar's client agent-sidecar
// and the official `openai` package).
//
// It takes tasks over HTTP, heartbeats to its sidecar with a note, metrics and
// a progress counter, asks a model through the sidecar's OpenAI-compatible
// gateway (MODEL), calls another agent through the sidecar's /call/ (PEER),
// and can be told to hang, stall or fail so you can watch the sidecar deal
// with it. The trace context of each task (traceparent) goes on with its
// model and peer requests.
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
import { Sidecar } from "agent-sidecar";

const AGENT_ID = process.env.SIDECAR_AGENT_ID || "node-agent";
const PORT = Number(process.env.AGENT_PORT || 8082);
const EVERY = Number(process.env.HEARTBEAT_EVERY || 5);
const MODEL = process.env.MODEL || "";
const PEER = process.env.PEER || "";

const log = (msg) => console.error(`[agent ${AGENT_ID}] ${msg}`);
if (!(Number.isInteger(PORT) && PORT > 0 && PORT < 65536 && EVERY > 0)) {
  log("AGENT_PORT must be a port and HEARTBEAT_EVERY a positive number of seconds");
  process.exit(2);
}

// SIDECAR_ADDR and SIDECAR_TOKEN, set by the sidecar.
const sidecar = Sidecar.fromEnv({ logger: { warn: log, info: log } });

// The official openai package, pointed at the sidecar's gateway: no key (the
// sidecar adds the provider's), no SDK retries (when the model fails the
// sidecar already sends the same request to a lighter fallback model), and
// the token and the task's trace headers on every request.
const openai = MODEL ? await sidecar.openaiClient({ timeout: 60_000 }) : undefined;

const state = { tasks: 0, started: Date.now(), hung: false, stalled: false, failing: false };

// Heartbeats in the background; a failed one (the sidecar may be restarting)
// is tried again, and logged once.
const heartbeats = sidecar.startHeartbeats({ intervalMs: EVERY * 1000, note: "handled 0 tasks", progress: 0 });

// Stands for the agent's main loop (polling a queue, thinking, ...): its turns
// are the heartbeat's progress, which freezes when the agent stalls or hangs.
setInterval(() => {
  if (!state.stalled && !state.hung) heartbeats.increment();
  heartbeats.note(`handled ${state.tasks} tasks`).metrics({ tasks: state.tasks, uptime_s: Math.round((Date.now() - state.started) / 1000) });
}, 500);

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
// sidecar picks a healthy instance (found in Consul) behind its breaker; the
// client's Idempotency-Key lets it send the task again if an instance hangs
// mid-call. A failed call is reported in the answer; the task still succeeds.
async function askPeer(input) {
  try {
    const res = await sidecar.call(PEER, "/task", { json: { input }, timeout: 30_000 });
    try {
      return { peer: res.json() };
    } catch {
      return { peer_error: `${res.status}: the peer's answer is not JSON` };
    }
  } catch (err) {
    // A SidecarError says the status and type: "sidecar: 503 unavailable: no instance of researcher is passing".
    return { peer_error: err.message };
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
  heartbeats.stop(); // a hung agent sends no heartbeats: only a restart helps
}

const server = http.createServer((req, res) => {
  // A hung agent answers nothing: the request stays open until its caller gives up.
  if (state.hung) return;
  const route = `${req.method} ${req.url}`;
  // The task's trace context goes on with the requests made for it.
  if (route === "POST /task") return sidecar.withTraceContext(req.headers, () => handleTask(req, res));
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
  log(`taking tasks on 127.0.0.1:${PORT}, heartbeating to ${sidecar.addr}/v1/heartbeat every ${EVERY}s`);
});
