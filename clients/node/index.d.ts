// Types of agent-sidecar (index.js).

/** The sidecar's control API when SIDECAR_ADDR is not set: http://127.0.0.1:7070. */
export declare const DEFAULT_ADDR: string;

export interface Logger {
  warn(message: string): void;
  info?(message: string): void;
}

export interface SidecarOptions {
  /** The control API: "http://127.0.0.1:7070" or "127.0.0.1:7070". Default DEFAULT_ADDR. */
  addr?: string;
  /** Sent as X-Sidecar-Token when set (listen.token). */
  token?: string;
  /** Where the heartbeat loop warns; default console. */
  logger?: Logger;
  /** The fetch to send with; default globalThis.fetch. */
  fetch?: typeof fetch;
}

/** A heartbeat's body. */
export interface HeartbeatBody {
  status?: "ok" | "degraded" | "failing";
  note?: string;
  metrics?: Record<string, number | string | boolean>;
  progress?: number | string;
}

/** The sidecar's answer to a heartbeat: the agent's health. */
export interface HeartbeatReply {
  state: "waiting" | "healthy" | "isolated";
  reported_status?: string;
  heartbeats: number;
  next_due?: string;
  isolated_after?: string;
  reason?: string;
  detail?: string;
  [key: string]: unknown;
}

export interface HeartbeatOptions extends HeartbeatBody {
  /** Milliseconds between heartbeats (default 5000); never more than half the time the sidecar still waits. */
  intervalMs?: number;
}

export type IncomingHeaders = Headers | Record<string, string | string[] | undefined>;

export interface CallOptions {
  /** Default POST with a body, else GET. */
  method?: string;
  /** Sent as JSON, with Content-Type: application/json. */
  json?: unknown;
  /** Sent as is (not with json). */
  body?: string | Uint8Array | Blob | URLSearchParams | FormData | ReadableStream;
  headers?: Record<string, string>;
  /** A key of your own; false sends none. By default a POST gets a random one. */
  idempotencyKey?: string | false;
  /** Milliseconds until the client gives up (default 120000). */
  timeout?: number;
  signal?: AbortSignal;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | (string & {});
  content: string;
}

export interface ChatOptions {
  maxTokens?: number;
  timeout?: number;
  signal?: AbortSignal;
}

export interface ChatAnswer {
  content: string;
  /** The label that answered (X-Sidecar-Model), else the one asked for. */
  model: string;
  /** A lighter fallback model answered. */
  degraded: boolean;
  /** Model calls made (X-Sidecar-Attempts). */
  attempts: number | undefined;
  response: SidecarResponse;
}

/** Options for the OpenAI or Anthropic SDK's constructor. */
export interface SdkOptions {
  baseURL: string;
  apiKey: string;
  maxRetries: number;
  fetch: typeof fetch;
  [key: string]: unknown;
}

export declare class Sidecar {
  constructor(options?: SidecarOptions);
  /** $SIDECAR_ADDR (default DEFAULT_ADDR) and $SIDECAR_TOKEN. */
  static fromEnv(options?: Omit<SidecarOptions, "addr" | "token">): Sidecar;
  readonly addr: string;
  readonly token: string;
  logger: Logger;
  /** …/llm/v1, for the OpenAI SDKs. */
  readonly openaiBaseURL: string;
  /** …/llm, for the Anthropic SDKs. */
  readonly anthropicBaseURL: string;
  /** The token and trace headers a call or model request carries. */
  headers(): Record<string, string>;
  withTraceContext<T>(incomingHeaders: IncomingHeaders | undefined, fn: () => T): T;
  traceHeaders(): Record<string, string>;
  heartbeat(body?: HeartbeatBody): Promise<HeartbeatReply>;
  status(): Promise<Record<string, any>>;
  startHeartbeats(options?: HeartbeatOptions): Heartbeats;
  call(upstream: string, path?: string, options?: CallOptions): Promise<SidecarResponse>;
  chat(model: string, messages: ChatMessage[], options?: ChatOptions): Promise<ChatAnswer>;
  openaiOptions(extra?: Record<string, unknown>): SdkOptions;
  anthropicOptions(extra?: Record<string, unknown>): SdkOptions;
  /** A client of the `openai` package; fails with how to install it when it is not. */
  openaiClient(extra?: Record<string, unknown>): Promise<any>;
  /** A client of the `@anthropic-ai/sdk` package; fails with how to install it when it is not. */
  anthropicClient(extra?: Record<string, unknown>): Promise<any>;
}

/** An answer, read whole, and who answered it. */
export declare class SidecarResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly ok: boolean;
  /** The upstream that answered a call (X-Sidecar-Upstream). */
  readonly upstream: string | undefined;
  /** Its instance, host:port (X-Sidecar-Instance). */
  readonly instance: string | undefined;
  /** A fallback answered, not the first choice (X-Sidecar-Fallback). */
  readonly fallback: boolean;
  /** The model label that answered (X-Sidecar-Model). */
  readonly model: string | undefined;
  /** A lighter model answered (X-Sidecar-Degraded). */
  readonly degraded: boolean;
  /** Model calls made (X-Sidecar-Attempts). */
  readonly attempts: number | undefined;
  text(): string;
  json<T = any>(): T;
}

export declare class Heartbeats implements AsyncDisposable {
  /** The last answer of the sidecar. */
  readonly last: HeartbeatReply | undefined;
  start(): this;
  progress(value: number | string): this;
  increment(by?: number): this;
  note(text: string): this;
  metrics(values: Record<string, number | string | boolean>): this;
  status(value: "ok" | "degraded" | "failing"): this;
  beatNow(): Promise<HeartbeatReply>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface SidecarErrorFields {
  status?: number;
  type?: string;
  code?: string;
  traceId?: string;
  retryAfter?: number;
  response?: SidecarResponse;
}

/** A non-2xx answer: the sidecar's {"error":{"type","message","trace_id"}} or a provider's error. */
export declare class SidecarError extends Error {
  constructor(message: string, fields?: SidecarErrorFields);
  /** The HTTP status; 0 when nothing was answered. */
  readonly status: number;
  /** e.g. "invalid_request", "unavailable", "server_error". */
  readonly type: string;
  /** A provider error's code, e.g. "models_unavailable". */
  readonly code: string;
  readonly traceId: string;
  /** Seconds, from Retry-After. */
  readonly retryAfter: number | undefined;
  readonly response: SidecarResponse | undefined;
}
export declare class BadRequestError extends SidecarError {}
export declare class AuthError extends SidecarError {}
export declare class PayloadTooLargeError extends SidecarError {}
export declare class RateLimitError extends SidecarError {}
export declare class BadGatewayError extends SidecarError {}
export declare class UnavailableError extends SidecarError {}
export declare class GatewayTimeoutError extends SidecarError {}
export declare class SidecarConnectionError extends SidecarError {}

export declare function withTraceContext<T>(incomingHeaders: IncomingHeaders | undefined, fn: () => T): T;
export declare function traceHeaders(): Record<string, string>;
