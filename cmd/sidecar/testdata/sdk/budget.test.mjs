// Budgets driven by the official OpenAI SDK. Run by TestBudgetWithOfficialSDKs
// (cmd/sidecar/sdk_budget_test.go), which starts the fake models and the
// sidecar and sets:
//
//   SIDECAR_URL       the sidecar's control listener
//   BUDGET_WINDOW_MS  the window of budget "daily"
//
// The model labels, budgets and replies below are those of the
// configuration sdk_budget_test.go writes: budget "daily" rejects gpt-loop
// once a few calls' tokens are spent in its short window; budget
// "big-model" sends gpt-big's requests to gpt-small once spent. Tests run
// one after another (node:test runs a file's tests in order).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test -tags e2e ./cmd/sidecar/ -run TestBudgetWithOfficialSDKs`);
  return v.replace(/\/+$/, '');
}

const SIDECAR = env('SIDECAR_URL');
const WINDOW_MS = Number(env('BUDGET_WINDOW_MS'));

// The agent has no provider key, and does not retry: the sidecar sends
// each model's own key, and the test sees every 429.
const openai = new OpenAI({ baseURL: `${SIDECAR}/llm/v1`, apiKey: 'agent-has-no-key', maxRetries: 0, timeout: 15_000 });

const ASK = [{ role: 'user', content: 'Loop once more, please.' }];
const MAX_CALLS = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// header reads a header of a Headers object or of a plain object.
function header(headers, name) {
  if (!headers) return null;
  if (typeof headers.get === 'function') return headers.get(name);
  return headers[name] ?? null;
}

test('a budget in reject mode stops a looping agent with a rate-limit error naming it, until the window resets', async () => {
  // The agent loops on calls until one throws.
  let served = 0;
  let err;
  for (; served < MAX_CALLS; served++) {
    try {
      const res = await openai.chat.completions.create({ model: 'gpt-loop', messages: ASK });
      assert.equal(res.choices[0].message.content, 'Hello from the looping GPT.');
    } catch (e) {
      err = e;
      break;
    }
  }
  const stoppedAt = Date.now();
  assert.ok(err, `the agent was served ${MAX_CALLS} calls: the budget never stopped it`);
  assert.ok(served > 0, 'the budget stopped the very first call');

  // The SDK raises its rate-limit error, whose message names the budget,
  // with Retry-After within the window.
  assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 429);
  assert.match(err.message, /budget "daily" is spent/);
  assert.equal(err.type, 'rate_limit_error');
  assert.equal(err.code, 'budget_exceeded');
  const retryAfter = Number(header(err.headers, 'retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter * 1000 <= WINDOW_MS,
    `Retry-After ${header(err.headers, 'retry-after')}, want whole seconds from 1 to the window (${WINDOW_MS} ms)`);

  // Once the window resets, the agent is served again (polled, at most a
  // window and a bit after the refusal).
  let again;
  while (!again && Date.now() - stoppedAt < WINDOW_MS + 2_000) {
    try {
      again = await openai.chat.completions.create({ model: 'gpt-loop', messages: ASK });
    } catch (e) {
      assert.ok(e instanceof OpenAI.RateLimitError, `while waiting for the reset: ${e?.constructor?.name}: ${e?.message}`);
      await sleep(250);
    }
  }
  assert.ok(again, `not served again within ${WINDOW_MS + 2_000} ms of the refusal`);
  assert.equal(again.choices[0].message.content, 'Hello from the looping GPT.');
  const waited = Date.now() - stoppedAt;
  assert.ok(waited <= retryAfter * 1000 + 1_500, `served again after ${waited} ms, Retry-After said ${retryAfter} s`);
});

test('a budget in degrade mode sends every request to the cheaper model once spent', async () => {
  // The first answer comes from the model asked for.
  const first = await openai.chat.completions.create({ model: 'gpt-big', messages: ASK }).withResponse();
  assert.equal(header(first.response.headers, 'x-sidecar-model'), 'gpt-big');
  assert.equal(first.data.choices[0].message.content, 'Hello from the big GPT.');

  // The agent keeps calling until the budget is spent: then the answers
  // come from gpt-small, marked degraded.
  let degraded;
  for (let i = 0; i < MAX_CALLS && !degraded; i++) {
    const r = await openai.chat.completions.create({ model: 'gpt-big', messages: ASK }).withResponse();
    if (header(r.response.headers, 'x-sidecar-model') === 'gpt-small') degraded = r;
  }
  assert.ok(degraded, `${MAX_CALLS} calls and still served by gpt-big: the budget never degraded them`);
  for (let i = 0; i < 3; i++) {
    const { data, response } = await openai.chat.completions.create({ model: 'gpt-big', messages: ASK }).withResponse();
    assert.equal(header(response.headers, 'x-sidecar-model'), 'gpt-small', 'X-Sidecar-Model once spent');
    assert.equal(header(response.headers, 'x-sidecar-degraded'), 'true', 'X-Sidecar-Degraded once spent');
    assert.equal(data.choices[0].message.content, 'Hello from the small GPT.');
  }

  // A model the budget does not count is served as asked.
  const { response } = await openai.chat.completions.create({ model: 'gpt-small', messages: ASK }).withResponse();
  assert.equal(header(response.headers, 'x-sidecar-model'), 'gpt-small');
  assert.equal(header(response.headers, 'x-sidecar-degraded'), 'false');
});
