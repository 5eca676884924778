// agent-sidecar: the client of the agent sidecar for Node.js agents (20+, no
// dependencies). Heartbeats in the background, calls to other services
// through /call/, the model gateway (/llm/) with or without the official
// SDKs, the sidecar's errors as classes, and the W3C trace context of the
// task being handled forwarded on every call and model request.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const DEFAULT_ADDR = "http://127.0.0.1:7070";

const CONTROL_TIMEOUT_MS = 10_000; // heartbeats and status: answered at once
const CALL_TIMEOUT_MS = 120_000; // calls and model answers, unless told otherwise
const MAX_RESPONSE_BYTES = 32 << 20; // an answer read into memory
const MAX_ERROR_BYTES = 64 << 10; // an error answer read to tell its type
const MIN_HEARTBEAT_MS = 100;

// The W3C headers of a task's trace context, forwarded as they came.
const TRACE_HEADERS = ["traceparent", "tracestate", "baggage"];
const MAX_TRACE_HEADER = 8 << 10;

// ---------------------------------------------------------------- errors

/** An answer of the sidecar (or a model, or an upstream) that is not 2xx. */
export class SidecarError extends Error {
  constructor(message, { status = 0, type = "", code = "", traceId = "", retryAfter, response } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.type = type;
    this.code = code;
    this.traceId = traceId;
    this.retryAfter = retryAfter; // seconds, from Retry-After; undefined when absent
    this.response = response; // the whole answer (status, headers, body, who answered)
  }
}
/** 400: the request is wrong (invalid_request, or the provider's invalid_request_error). */
export class BadRequestError extends SidecarError {}
/** 401 or 403: the token is missing or wrong (unauthorized, forbidden). */
export class AuthError extends SidecarError {}
/** 413: the body is over a limit (request_too_large). */
export class PayloadTooLargeError extends SidecarError {}
/** 429: rate limited, or a budget is spent; retryAfter says for how long. */
export class RateLimitError extends SidecarError {}
/** 502: the upstream broke the connection after the request was sent (upstream_error). */
export class BadGatewayError extends SidecarError {}
/** 503: nothing could take the call (unavailable, models_unavailable); retryAfter says when to try again. */
export class UnavailableError extends SidecarError {}
/** 504: the upstream did not answer in time (timeout). */
export class GatewayTimeoutError extends SidecarError {}
/** The sidecar could not be reached, or did not answer within the client's timeout. */
export class SidecarConnectionError extends SidecarError {}

const ERROR_CLASSES = {
  400: BadRequestError,
  401: AuthError,
  403: AuthError,
  413: PayloadTooLargeError,
  429: RateLimitError,
  502: BadGatewayError,
  503: UnavailableError,
  504: GatewayTimeoutError,
};

// errorFrom builds the error of a non-2xx answer from its JSON: the sidecar's
// {"error":{"type","message","trace_id"}}, OpenAI's {"error":{"message","type",
// "code"}} and Anthropic's {"type":"error","error":{"type","message"}} alike.
function errorFrom(response) {
  const text = response.text();
  let type = "",
    message = "",
    code = "",
    traceId = "";
  try {
    const e = JSON.parse(text)?.error;
    if (e && typeof e === "object") {
      type = typeof e.type === "string" ? e.type : "";
      message = typeof e.message === "string" ? e.message : "";
      code = typeof e.code === "string" ? e.code : "";
      traceId = typeof e.trace_id === "string" ? e.trace_id : "";
    }
  } catch {}
  if (!message) {
    const plain = text.trim();
    message = plain && plain.length <= 200 ? plain : response.statusText || `status ${response.status}`;
  }
  const Class = ERROR_CLASSES[response.status] ?? SidecarError;
  const head = `sidecar: ${response.status}${type ? " " + type : ""}: ${message}`;
  return new Class(head, {
    status: response.status,
    type,
    code,
    traceId,
    retryAfter: retryAfterSeconds(response.headers.get("retry-after")),
    response,
  });
}

function retryAfterSeconds(value) {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

// ---------------------------------------------------------------- trace context

const traceContext = new AsyncLocalStorage();

// pickTrace keeps the W3C headers of an incoming request: a Node
// IncomingHttpHeaders object, a fetch Headers, or a plain object in any case.
function pickTrace(headers) {
  const out = {};
  if (!headers) return out;
  const get =
    typeof headers.get === "function"
      ? (name) => headers.get(name)
      : (name) => {
          for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(",") : v;
          return undefined;
        };
  for (const name of TRACE_HEADERS) {
    const v = get(name);
    if (typeof v === "string" && v !== "" && v.length <= MAX_TRACE_HEADER && !/[\r\n]/.test(v)) out[name] = v;
  }
  return out;
}

/** Runs fn with the trace context of incomingHeaders: calls and model requests made inside it carry it. */
export function withTraceContext(incomingHeaders, fn) {
  return traceContext.run(pickTrace(incomingHeaders), fn);
}

/** The traceparent, tracestate and baggage of the task being handled ({} outside withTraceContext). */
export function traceHeaders() {
  return { ...(traceContext.getStore() ?? {}) };
}

// ---------------------------------------------------------------- the client

function normalizeAddr(addr) {
  let a = String(addr || DEFAULT_ADDR).trim().replace(/\/+$/, "");
  if (!a.includes("://")) a = "http://" + a;
  const u = new URL(a); // throws on garbage
  if (u.username || u.password) throw new TypeError("sidecar: the address must not carry user information (use the token)");
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError(`sidecar: the address must be http(s), not ${u.protocol}`);
  return a;
}

/** A client of one sidecar. */
export class Sidecar {
  /**
   * @param {{addr?: string, token?: string, logger?: {warn: Function, info?: Function}, fetch?: typeof fetch}} [options]
   */
  constructor({ addr = DEFAULT_ADDR, token = "", logger = console, fetch: fetchImpl = globalThis.fetch } = {}) {
    this.addr = normalizeAddr(addr);
    this.token = token || "";
    this.logger = logger;
    this._fetch = fetchImpl;
  }

  /** A client of $SIDECAR_ADDR (default http://127.0.0.1:7070) with the token $SIDECAR_TOKEN. */
  static fromEnv(options = {}) {
    return new Sidecar({ addr: process.env.SIDECAR_ADDR || DEFAULT_ADDR, token: process.env.SIDECAR_TOKEN || "", ...options });
  }

  /** The base URL for the OpenAI SDKs (OPENAI_BASE_URL). */
  get openaiBaseURL() {
    return `${this.addr}/llm/v1`;
  }

  /** The base URL for the Anthropic SDKs (ANTHROPIC_BASE_URL). */
  get anthropicBaseURL() {
    return `${this.addr}/llm`;
  }

  /** The headers of a call or model request: the token, and the trace context of the task being handled. */
  headers() {
    return { ...this._tokenHeader(), ...traceHeaders() };
  }

  _tokenHeader() {
    return this.token ? { "X-Sidecar-Token": this.token } : {};
  }

  /** Runs fn with the trace context of incomingHeaders (see the module's withTraceContext). */
  withTraceContext(incomingHeaders, fn) {
    return withTraceContext(incomingHeaders, fn);
  }

  /** The trace headers of the task being handled. */
  traceHeaders() {
    return traceHeaders();
  }

  // send makes one request and reads the answer; a non-2xx answer is thrown.
  async _send(method, url, { headers = {}, body, timeout = CALL_TIMEOUT_MS, signal, trace = true } = {}) {
    // AbortSignal.any is Node 20.3+; before it, the caller's signal alone.
    const timer = AbortSignal.timeout(timeout);
    const both = !signal ? timer : AbortSignal.any ? AbortSignal.any([timer, signal]) : signal;
    let res;
    try {
      res = await this._fetch(url, {
        method,
        headers: { ...(trace ? this.headers() : this._tokenHeader()), ...headers },
        body,
        signal: both,
        redirect: "manual",
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const timedOut = err?.name === "TimeoutError";
      throw new SidecarConnectionError(
        timedOut ? `sidecar: no answer from ${this.addr} within ${timeout} ms` : `sidecar: ${this.addr} unreachable: ${err?.cause?.message ?? err?.message}`,
        { type: timedOut ? "timeout" : "connection_error" },
      );
    }
    const ok = res.status >= 200 && res.status < 300;
    const raw = await readBounded(res, ok ? MAX_RESPONSE_BYTES : MAX_ERROR_BYTES, ok);
    const answer = new SidecarResponse(res, raw);
    if (!ok) throw errorFrom(answer);
    return answer;
  }

  /** POST /v1/heartbeat once: {status, note, metrics, progress}; answers the agent's health ({state, next_due, ...}). */
  async heartbeat(hb = {}) {
    const body = {};
    for (const k of ["status", "note", "metrics", "progress"]) if (hb[k] !== undefined && hb[k] !== null && hb[k] !== "") body[k] = hb[k];
    const res = await this._send("POST", `${this.addr}/v1/heartbeat`, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      timeout: CONTROL_TIMEOUT_MS,
      trace: false,
    });
    return res.json();
  }

  /** GET /v1/status, decoded. */
  async status() {
    return (await this._send("GET", `${this.addr}/v1/status`, { timeout: CONTROL_TIMEOUT_MS, trace: false })).json();
  }

  /**
   * Starts heartbeating in the background (an unref'd timer: it never keeps
   * the process alive). A failed heartbeat is logged and tried again at the
   * next turn, so a sidecar that restarts loses nothing.
   */
  startHeartbeats(options = {}) {
    return new Heartbeats(this, options).start();
  }

  /**
   * A request through the sidecar to the upstream: {addr}/call/{upstream}{path}.
   * A POST gets an Idempotency-Key unless idempotencyKey is false, so the
   * sidecar may send it again to another instance.
   */
  async call(upstream, path = "/", { method, json, body, headers = {}, idempotencyKey, timeout = CALL_TIMEOUT_MS, signal } = {}) {
    if (typeof upstream !== "string" || !/^[A-Za-z0-9._~-]+$/.test(upstream)) throw new TypeError(`sidecar: bad upstream name ${JSON.stringify(upstream)}`);
    if (!path.startsWith("/")) path = "/" + path;
    if (json !== undefined && body !== undefined) throw new TypeError("sidecar: pass json or body, not both");
    method = (method ?? (json !== undefined || body !== undefined ? "POST" : "GET")).toUpperCase();
    const h = { ...headers };
    if (json !== undefined) {
      body = JSON.stringify(json);
      if (!hasHeader(h, "content-type")) h["Content-Type"] = "application/json";
    }
    if (idempotencyKey !== false && !hasHeader(h, "idempotency-key")) {
      if (typeof idempotencyKey === "string" && idempotencyKey) h["Idempotency-Key"] = idempotencyKey;
      else if (method === "POST") h["Idempotency-Key"] = randomUUID();
    }
    return this._send(method, `${this.addr}/call/${upstream}${path}`, { headers: h, body, timeout, signal });
  }

  /**
   * One chat completion through the gateway: {content, model, degraded,
   * attempts, response}. model is a label of the sidecar's configuration.
   */
  async chat(model, messages, { maxTokens, timeout = CALL_TIMEOUT_MS, signal } = {}) {
    const req = { model, messages };
    if (maxTokens) req.max_tokens = maxTokens;
    const res = await this._send("POST", `${this.openaiBaseURL}/chat/completions`, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(req),
      timeout,
      signal,
    });
    const completion = res.json();
    const content = completion?.choices?.[0]?.message?.content;
    if (typeof content !== "string") throw new SidecarError("sidecar: the model's answer has no message", { status: res.status, response: res });
    return { content, model: res.model || model, degraded: res.degraded, attempts: res.attempts, response: res };
  }

  /** Options for `new OpenAI(...)`: the gateway's base URL, no key (the sidecar adds it), the token and trace headers. */
  openaiOptions(extra = {}) {
    return { baseURL: this.openaiBaseURL, apiKey: "sidecar-injects-the-key", maxRetries: 0, fetch: this._tracingFetch(), ...extra };
  }

  /** Options for `new Anthropic(...)`, as openaiOptions. */
  anthropicOptions(extra = {}) {
    return { baseURL: this.anthropicBaseURL, apiKey: "sidecar-injects-the-key", maxRetries: 0, fetch: this._tracingFetch(), ...extra };
  }

  /** An OpenAI client of the gateway, when the `openai` package is installed. */
  async openaiClient(extra = {}) {
    const mod = await importOptional("openai");
    const OpenAI = mod.default?.OpenAI ?? mod.OpenAI ?? mod.default;
    return new OpenAI(this.openaiOptions(extra));
  }

  /** An Anthropic client of the gateway, when the `@anthropic-ai/sdk` package is installed. */
  async anthropicClient(extra = {}) {
    const mod = await importOptional("@anthropic-ai/sdk");
    const Anthropic = mod.default?.Anthropic ?? mod.Anthropic ?? mod.default;
    return new Anthropic(this.anthropicOptions(extra));
  }

  // _tracingFetch adds the token and the trace context at the time of each
  // request, so one SDK client serves every task with its own trace.
  _tracingFetch() {
    return (input, init = {}) => {
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
      for (const [k, v] of Object.entries(this.headers())) if (!headers.has(k)) headers.set(k, v);
      return this._fetch(input, { ...init, headers });
    };
  }
}

function hasHeader(headers, name) {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

// importOptional imports an SDK the agent installed: from here first, then
// from the agent's own directory (this package may be linked from elsewhere).
async function importOptional(name) {
  try {
    return await import(name);
  } catch (err) {
    if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
  }
  const bases = [process.argv[1], join(process.cwd(), "index.js")].filter(Boolean);
  for (const base of bases) {
    try {
      return await import(pathToFileURL(createRequire(base).resolve(name)).href);
    } catch {}
  }
  throw new Error(`sidecar: the ${name} package is not installed: npm install ${name}`);
}

async function readBounded(res, limit, strict) {
  if (!res.body) return new Uint8Array();
  const chunks = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > limit) {
      await res.body.cancel().catch(() => {});
      if (strict) throw new SidecarError(`sidecar: the answer is larger than ${limit} bytes`, { status: res.status });
      chunks.push(chunk.subarray(0, chunk.byteLength - (size - limit)));
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** An answer, read whole, and who answered it (the X-Sidecar-* headers). */
export class SidecarResponse {
  constructor(res, body) {
    this.status = res.status;
    this.statusText = res.statusText;
    this.headers = res.headers;
    this.body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    const h = res.headers;
    this.upstream = h.get("x-sidecar-upstream") ?? undefined; // the upstream that answered a call
    this.instance = h.get("x-sidecar-instance") ?? undefined; // its instance, host:port
    this.fallback = h.get("x-sidecar-fallback") === "true"; // a fallback answered, not the first choice
    this.model = h.get("x-sidecar-model") ?? undefined; // the model label that answered
    this.degraded = h.get("x-sidecar-degraded") === "true"; // a lighter model answered
    const attempts = Number(h.get("x-sidecar-attempts"));
    this.attempts = Number.isInteger(attempts) && attempts > 0 ? attempts : undefined; // model calls made
  }

  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  text() {
    return Buffer.from(this.body).toString("utf8");
  }

  json() {
    return JSON.parse(this.text());
  }
}

// ---------------------------------------------------------------- heartbeats

const STATUSES = new Set(["ok", "degraded", "failing"]);

/**
 * A heartbeat loop: what it sends is set with progress(), increment(),
 * note(), metrics() and status(); stop() (or `await using`) ends it.
 */
export class Heartbeats {
  constructor(sidecar, { intervalMs = 5000, status = "ok", note, metrics, progress } = {}) {
    if (!(intervalMs > 0)) throw new TypeError("sidecar: intervalMs must be positive");
    this._sidecar = sidecar;
    this._interval = intervalMs;
    this._state = { status, note, metrics, progress };
    this._timer = undefined;
    this._running = false;
    this._inflight = undefined;
    this._failing = false;
    this.last = undefined; // the last answer: {state, next_due, ...}
  }

  start() {
    if (this._running) return this;
    this._running = true;
    this._tick(0);
    return this;
  }

  _tick(delay) {
    if (!this._running) return;
    this._timer = setTimeout(() => {
      this._inflight = this._beat().finally(() => {
        this._inflight = undefined;
      });
    }, delay);
    this._timer.unref();
  }

  async _beat() {
    let wait = this._interval;
    try {
      const reply = await this._sidecar.heartbeat(this._state);
      this.last = reply;
      if (this._failing) this._sidecar.logger?.info?.("sidecar: heartbeats are answered again");
      this._failing = false;
      // Never later than half the time the sidecar still waits for the next one.
      const due = Date.parse(reply?.next_due);
      if (!Number.isNaN(due)) wait = Math.min(wait, Math.max(MIN_HEARTBEAT_MS, (due - Date.now()) / 2));
    } catch (err) {
      if (!this._failing) this._sidecar.logger?.warn?.(`sidecar: heartbeat failed, trying again: ${err.message}`);
      this._failing = true;
      wait = Math.min(wait, 1000); // a restarting sidecar is back soon: do not miss its first interval
    }
    this._tick(wait);
  }

  /** Sets the progress (a number or a string that changes while work gets done). */
  progress(value) {
    this._state.progress = value;
    return this;
  }

  /** Adds by (default 1) to a numeric progress. */
  increment(by = 1) {
    this._state.progress = (typeof this._state.progress === "number" ? this._state.progress : 0) + by;
    return this;
  }

  note(text) {
    this._state.note = text;
    return this;
  }

  metrics(values) {
    this._state.metrics = values;
    return this;
  }

  /** "ok", "degraded" or "failing". */
  status(value) {
    if (!STATUSES.has(value)) throw new TypeError(`sidecar: status ${JSON.stringify(value)}: use "ok", "degraded" or "failing"`);
    this._state.status = value;
    return this;
  }

  /** Sends one heartbeat now, with what is set. */
  async beatNow() {
    return this._sidecar.heartbeat(this._state);
  }

  /** Stops the loop; waits for a heartbeat under way. Safe to call twice. */
  async stop() {
    this._running = false;
    clearTimeout(this._timer);
    await this._inflight?.catch(() => {});
  }

  async [Symbol.asyncDispose]() {
    await this.stop();
  }
}
