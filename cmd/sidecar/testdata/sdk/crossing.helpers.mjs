// What crossing.test.mjs shares between its scenarios: the settings
// TestCrossProviderWithOfficialSDKs (cmd/sidecar/sdk_crossing_test.go)
// passes, the fake models' control endpoints, and the checks of what an
// agent sees of the sidecar (its headers) and what a model received.

import assert from 'node:assert/strict';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test -tags e2e ./cmd/sidecar/ -run TestCrossProviderWithOfficialSDKs`);
  return v.replace(/\/+$/, '');
}

export const SIDECAR = env('SIDECAR_URL');
export const OPEN_FOR_MS = Number(env('BREAKER_OPEN_FOR_MS'));
export const RETRY_AFTER_MS = Number(env('RETRY_AFTER_MS'));

// The fake models: a failing and an answering one per provider, and an
// OpenAI one that the rate-limit scenario makes answer 429.
const fakes = {
  gptDown: env('FAKE_OPENAI_DOWN_URL'),
  gptUp: env('FAKE_OPENAI_UP_URL'),
  gptLimited: env('FAKE_OPENAI_LIMITED_URL'),
  claudeDown: env('FAKE_ANTHROPIC_DOWN_URL'),
  claudeUp: env('FAKE_ANTHROPIC_UP_URL'),
};
export const FAKES = Object.keys(fakes);

// The replies of the answering fakes, and the upstream names their models
// have in sdk_crossing_test.go's configuration.
export const REPLY = {
  gptUp: 'Hello from the fallback GPT.',
  claudeUp: 'Hello from the fallback Claude.',
};
export const NAME = { gpt: 'gpt-4o', gptFallback: 'gpt-4o-mini', claude: 'claude-sonnet-4-5' };

// The key the agents use: the sidecar must send each model's own instead.
export const AGENT_KEY = 'agent-has-no-key';

// The tool every scenario offers, the question that makes the fakes call
// it, and what it answers.
export const QUESTION = 'What is the weather in Paris?';
export const TOOL_OUTPUT = 'Sunny, 21 C';
export const weatherSchema = {
  type: 'object',
  properties: { city: { type: 'string', description: 'the city' } },
  required: ['city'],
  additionalProperties: false,
};

// afterTool is what a fake whose reply is reply answers once it receives
// the tool's output.
export const afterTool = (reply) => `${reply} (tool said: ${TOOL_OUTPUT})`;

// A model's own key, as sdk_crossing_test.go configures it.
export const keyOf = (label) => (label.startsWith('gpt') ? `sk-openai-${label}` : `sk-ant-${label}`);

// --- the fakes' control endpoints ---------------------------------------

async function fake(name, method, path, body) {
  const res = await fetch(fakes[name] + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${name}: ${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}
export const healFake = (name) => fake(name, 'POST', '/_heal');
export const resetStats = (name) => fake(name, 'POST', '/_stats/reset');
export const setFaults = (name, faults) => fake(name, 'POST', '/_control', faults);
export const stats = (name) => fake(name, 'GET', '/_stats');
export const calls = async (name) => (await stats(name)).calls;
export const lastCall = (name) => fake(name, 'GET', '/_last');

// lastBody is the JSON body of the last call fake name received.
export async function lastBody(name) {
  return JSON.parse((await lastCall(name)).body);
}

// assertAccepted fails when fake name refused a request as malformed, the
// way the real API would have: a translated request that keeps a trace of
// the other provider's shape.
export async function assertAccepted(name) {
  const s = await stats(name);
  if (s.bad_requests !== 0) {
    const last = await lastCall(name);
    assert.fail(`${name} refused ${s.bad_requests} request(s); the last: ${last.rejected ?? '(accepted)'}\n${last.body}`);
  }
}

// assertOwnKey checks that the last call to fake name carried the key of
// model label and nothing of the agent's credentials or of the other
// provider's headers.
export async function assertOwnKey(name, label) {
  const { path, headers } = await lastCall(name);
  if (label.startsWith('gpt')) {
    assert.equal(path, '/v1/chat/completions');
    assert.deepEqual(headers.Authorization, [`Bearer ${keyOf(label)}`], 'the OpenAI model gets its own key');
    assert.equal(headers['X-Api-Key'], undefined, "the agent's Anthropic key is not sent to OpenAI");
    for (const k of Object.keys(headers)) assert.doesNotMatch(k, /^Anthropic-/, `header ${k} is Anthropic's`);
  } else {
    assert.equal(path, '/v1/messages');
    assert.deepEqual(headers['X-Api-Key'], [keyOf(label)], 'the Anthropic model gets its own key');
    assert.equal(headers.Authorization, undefined, "the agent's OpenAI key is not sent to Anthropic");
    assert.ok(headers['Anthropic-Version'], 'anthropic-version is sent');
    for (const k of Object.keys(headers)) assert.doesNotMatch(k, /^Openai-/, `header ${k} is OpenAI's`);
  }
}

// --- what the agent sees ----------------------------------------------------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// header reads a header from a fetch Headers or a plain object (the Vercel
// AI SDK's step headers, lower-cased).
function header(headers, name) {
  if (typeof headers?.get === 'function') return headers.get(name);
  return headers?.[name] ?? null;
}

// assertServedBy checks the sidecar's headers on an answer: the label that
// answered, degraded, and (when given) the upstream calls made.
export function assertServedBy(headers, label, { attempts } = {}) {
  assert.equal(header(headers, 'x-sidecar-model'), label, 'X-Sidecar-Model');
  assert.equal(header(headers, 'x-sidecar-degraded'), 'true', 'X-Sidecar-Degraded');
  if (attempts !== undefined) assert.equal(header(headers, 'x-sidecar-attempts'), String(attempts), 'X-Sidecar-Attempts');
}

// --- the sidecar's breakers ------------------------------------------------

// breaker is the sidecar's view of model label's breaker (GET /v1/breakers).
export async function breaker(label) {
  const res = await fetch(`${SIDECAR}/v1/breakers`);
  assert.equal(res.status, 200, 'GET /v1/breakers');
  const { breakers } = await res.json();
  const b = breakers.find((x) => x.name === `model:${label}`);
  assert.ok(b, `no breaker model:${label} in ${JSON.stringify(breakers.map((x) => x.name))}`);
  return b;
}

// seconds reads a Go duration as the sidecar prints it ("19.9s", "1m0s",
// "850ms") in seconds.
export function seconds(text) {
  const units = { h: 3600, m: 60, s: 1, ms: 1e-3, 'µs': 1e-6, us: 1e-6, ns: 1e-9 };
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|µs|us|ns|h|m|s)/.exec(rest);
    assert.ok(m, `${JSON.stringify(text)} is not a duration`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

// secondsUntilUTC is how far ahead the time of day hh:mm:ss (UTC) is, in
// seconds, taking it as the next such time.
export function secondsUntilUTC(hhmmss) {
  const [h, m, s] = hhmmss.split(':').map(Number);
  const now = new Date();
  const at = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), h, m, s);
  let ahead = (at - now.getTime()) / 1000;
  if (ahead < -43_200) ahead += 86_400; // past midnight UTC
  return ahead;
}
