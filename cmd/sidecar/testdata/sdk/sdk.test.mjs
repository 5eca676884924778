// The sidecar's model gateway driven by the official OpenAI and Anthropic
// SDKs. Run by TestModelGatewayWithOfficialSDKs (cmd/sidecar/sdk_test.go),
// which starts the fake models and the sidecar and sets:
//
//   SIDECAR_URL                  the sidecar's control listener
//   FAKE_OPENAI_PRIMARY_URL      the fake models' base URLs (control at /_control,
//   FAKE_OPENAI_LITE_URL         /_heal, /_stats, /_stats/reset, /_last)
//   FAKE_ANTHROPIC_PRIMARY_URL
//   FAKE_ANTHROPIC_LITE_URL
//   BREAKER_OPEN_FOR_MS          open_for of breaker "default"
//
// The model labels, upstream names, replies and keys below are those of the
// configuration sdk_test.go writes. Tests run one after another (node:test
// runs a file's tests in order); each starts with healed fakes and zeroed
// stats, and each scenario has chains of its own, so breaker state does not
// leak from one test to the next.

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test ./cmd/sidecar/ -run TestModelGatewayWithOfficialSDKs`);
  return v.replace(/\/+$/, '');
}

const SIDECAR = env('SIDECAR_URL');
const OPEN_FOR_MS = Number(env('BREAKER_OPEN_FOR_MS'));
const fakes = {
  openaiPrimary: env('FAKE_OPENAI_PRIMARY_URL'),
  openaiLite: env('FAKE_OPENAI_LITE_URL'),
  anthropicPrimary: env('FAKE_ANTHROPIC_PRIMARY_URL'),
  anthropicLite: env('FAKE_ANTHROPIC_LITE_URL'),
};

const REPLY = {
  openaiPrimary: 'Hello from the primary GPT.',
  openaiLite: 'Hello from the lite GPT.',
  anthropicPrimary: 'Hello from the primary Claude.',
  anthropicLite: 'Hello from the lite Claude.',
};
const KEY = {
  openaiPrimary: 'sk-openai-primary',
  openaiLite: 'sk-openai-lite',
  anthropicPrimary: 'sk-ant-primary',
  anthropicLite: 'sk-ant-lite',
};
const NAME = {
  gpt: 'gpt-4o',
  gptLite: 'gpt-4o-mini',
  claude: 'claude-sonnet-4-5',
  claudeLite: 'claude-haiku-4-5',
};
const LABELS = [
  'claude-breaker', 'claude-cut', 'claude-down', 'claude-down-lite', 'claude-lite', 'claude-main',
  'gpt-breaker', 'gpt-cut', 'gpt-down', 'gpt-down-lite', 'gpt-lite', 'gpt-main',
];

// The agent has no provider key: the sidecar sends each model's own.
const openai = new OpenAI({ baseURL: `${SIDECAR}/llm/v1`, apiKey: 'agent-has-no-key', maxRetries: 0, timeout: 15_000 });
const anthropic = new Anthropic({ baseURL: `${SIDECAR}/llm`, apiKey: 'agent-has-no-key', maxRetries: 0, timeout: 15_000 });

const ASK = [{ role: 'user', content: 'Say hello.' }];

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
const setFaults = (name, faults) => fake(name, 'POST', '/_control', faults);
const calls = async (name) => (await fake(name, 'GET', '/_stats')).calls;
const lastCall = (name) => fake(name, 'GET', '/_last');

beforeEach(async () => {
  for (const name of Object.keys(fakes)) {
    await fake(name, 'POST', '/_heal');
    await fake(name, 'POST', '/_stats/reset');
  }
});

// --- helpers ---------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what, cond, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

// within fails when p has not settled after ms: a hang is a failure, not a
// test timeout.
function within(ms, what, p) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms (a hang)`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function sidecarHeaders(response) {
  return {
    model: response.headers.get('x-sidecar-model'),
    degraded: response.headers.get('x-sidecar-degraded'),
    attempts: response.headers.get('x-sidecar-attempts'),
    overhead: response.headers.get('x-sidecar-overhead-ms'),
  };
}

function assertServedBy(response, label, degraded, attempts) {
  const h = sidecarHeaders(response);
  assert.equal(h.model, label, 'X-Sidecar-Model');
  assert.equal(h.degraded, String(degraded), 'X-Sidecar-Degraded');
  if (attempts !== undefined) assert.equal(h.attempts, String(attempts), 'X-Sidecar-Attempts');
  assert.match(h.overhead ?? '', /^\d+(\.\d+)?$/, 'X-Sidecar-Overhead-Ms');
}

// OpenAI chat completion, plain or streamed, as an agent reads it.
async function gptChat(model, { stream = false } = {}) {
  if (!stream) {
    const { data, response } = await openai.chat.completions.create({ model, messages: ASK }).withResponse();
    return { response, text: data.choices[0].message.content, model: data.model };
  }
  const { data, response } = await openai.chat.completions.create({ model, messages: ASK, stream: true }).withResponse();
  let text = '';
  const models = new Set();
  let finish = null;
  for await (const chunk of data) {
    models.add(chunk.model);
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'stop', 'the stream ends with finish_reason stop');
  assert.equal(models.size, 1, `one model in the stream: ${[...models]}`);
  return { response, text, model: [...models][0] };
}

// Anthropic message, plain or streamed, as an agent reads it.
async function claudeMessage(model, { stream = false } = {}) {
  const params = { model, max_tokens: 256, messages: ASK };
  if (!stream) {
    const { data, response } = await anthropic.messages.create(params).withResponse();
    return { response, text: data.content.map((b) => b.text ?? '').join(''), model: data.model };
  }
  const { data, response } = await anthropic.messages.create({ ...params, stream: true }).withResponse();
  let text = '';
  let started = null;
  const types = [];
  for await (const ev of data) {
    types.push(ev.type);
    if (ev.type === 'message_start') started = ev.message;
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  }
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop', 'the stream ends with message_stop');
  return { response, text, model: started.model };
}

const providers = [
  {
    name: 'openai', call: gptChat, primary: 'openaiPrimary', lite: 'openaiLite',
    labels: { main: 'gpt-main', lite: 'gpt-lite', breaker: 'gpt-breaker', cut: 'gpt-cut', down: 'gpt-down', downLite: 'gpt-down-lite' },
    names: { main: NAME.gpt, lite: NAME.gptLite },
  },
  {
    name: 'anthropic', call: claudeMessage, primary: 'anthropicPrimary', lite: 'anthropicLite',
    labels: { main: 'claude-main', lite: 'claude-lite', breaker: 'claude-breaker', cut: 'claude-cut', down: 'claude-down', downLite: 'claude-down-lite' },
    names: { main: NAME.claude, lite: NAME.claudeLite },
  },
];

// --- a. steady state -------------------------------------------------------

for (const p of providers) {
  test(`${p.name}: steady state, plain and streaming, answered by the primary`, async () => {
    for (const stream of [false, true]) {
      const got = await p.call(p.labels.main, { stream });
      assertServedBy(got.response, p.labels.main, false, 1);
      assert.equal(got.text, REPLY[p.primary], `${stream ? 'streamed' : 'plain'} text`);
      assert.equal(got.model, p.names.main, 'the answer names the upstream model');
    }
    assert.equal(await calls(p.primary), 2);
    assert.equal(await calls(p.lite), 0);
    // The sidecar sent the model's own key, not the agent's.
    const last = await lastCall(p.primary);
    const sent = JSON.parse(last.body);
    assert.equal(sent.model, p.names.main);
    if (p.name === 'openai') {
      assert.deepEqual(last.headers.Authorization, [`Bearer ${KEY[p.primary]}`]);
    } else {
      assert.deepEqual(last.headers['X-Api-Key'], [KEY[p.primary]]);
      assert.ok(last.headers['Anthropic-Version'], 'anthropic-version is sent');
    }
  });
}

test('openai: the stream helper assembles the final completion', async () => {
  const stream = openai.chat.completions.stream({ model: 'gpt-main', messages: ASK });
  const final = await within(5_000, 'finalChatCompletion', stream.finalChatCompletion());
  assert.equal(final.choices[0].message.content, REPLY.openaiPrimary);
  assert.equal(final.model, NAME.gpt);
});

test('anthropic: the stream helper assembles the final message', async () => {
  const stream = anthropic.messages.stream({ model: 'claude-main', max_tokens: 256, messages: ASK });
  const { response } = await stream.withResponse();
  assertServedBy(response, 'claude-main', false, 1);
  assert.equal(await within(5_000, 'finalText', stream.finalText()), REPLY.anthropicPrimary);
});

// --- b. the primary fails: the lite model answers ------------------------

for (const p of providers) {
  test(`${p.name}: primary failing, plain and streaming, answered by the lite model`, async () => {
    await setFaults(p.primary, { fail_next: 1000, fail_status: 500 });
    for (const stream of [false, true]) {
      const got = await p.call(p.labels.main, { stream });
      assertServedBy(got.response, p.labels.lite, true, 2);
      assert.equal(got.text, REPLY[p.lite], `${stream ? 'streamed' : 'plain'} text`);
      assert.equal(got.model, p.names.lite, "the answer's model is the lite model's upstream name");
    }
    assert.equal(await calls(p.primary), 2, 'the primary was tried each time');
    assert.equal(await calls(p.lite), 2);
  });
}

// --- c. breaker: the failing primary is cut off, then probed ---------------

for (const p of providers) {
  test(`${p.name}: after 3 failures the primary's breaker opens, then one probe closes it`, async () => {
    const label = p.labels.breaker;
    await setFaults(p.primary, { fail_next: 1000, fail_status: 500 });

    // Three failures: each call still reaches the primary, then the lite model.
    for (const stream of [false, true, false]) {
      const got = await p.call(label, { stream });
      assertServedBy(got.response, p.labels.lite, true, 2);
    }
    const openedAt = Date.now();
    assert.equal(await calls(p.primary), 3);

    // Breaker open: the primary gets no call at all.
    for (const stream of [false, true, false, true]) {
      const got = await p.call(label, { stream });
      assertServedBy(got.response, p.labels.lite, true, 1);
      assert.equal(got.text, REPLY[p.lite]);
    }
    assert.ok(Date.now() - openedAt < OPEN_FOR_MS, 'the open-breaker calls took longer than open_for; the test is too slow');
    assert.equal(await calls(p.primary), 3, 'no call reaches the primary while its breaker is open');
    assert.equal(await calls(p.lite), 7);

    // The primary recovers (slowly, so the probe is still in flight when the
    // others arrive); after open_for exactly one probe reaches it.
    await setFaults(p.primary, { fail_next: 0, latency: '1s' });
    await sleep(Math.max(0, openedAt + OPEN_FOR_MS + 300 - Date.now()));
    const probe = p.call(label);
    await waitUntil('the probe reaches the primary', async () => (await calls(p.primary)) === 4);
    const others = await Promise.all([p.call(label), p.call(label, { stream: true })]);
    for (const got of others) assertServedBy(got.response, p.labels.lite, true, 1);
    const probed = await probe;
    assertServedBy(probed.response, label, false, 1);
    assert.equal(probed.text, REPLY[p.primary]);
    assert.equal(await calls(p.primary), 4, 'exactly one probe while half-open');

    // The probe succeeded: the breaker is closed and the primary serves again.
    await setFaults(p.primary, { latency: 0 });
    for (const stream of [false, true]) {
      const got = await p.call(label, { stream });
      assertServedBy(got.response, label, false, 1);
      assert.equal(got.text, REPLY[p.primary]);
    }
    assert.equal(await calls(p.primary), 6);
  });
}

// --- d. a stream cut midway ends in an error, not a hang or a clean end -----

async function drain(iterable, sink) {
  for await (const ev of iterable) sink(ev);
}

test('openai: a stream cut midway throws from the iterator', async () => {
  await setFaults('openaiPrimary', { cut_after: 3 });
  const { data, response } = await openai.chat.completions.create({ model: 'gpt-cut', messages: ASK, stream: true }).withResponse();
  assertServedBy(response, 'gpt-cut', false, 1);
  let text = '';
  await assert.rejects(
    within(5_000, 'iterating the cut stream', drain(data, (c) => { text += c.choices[0]?.delta?.content ?? ''; })),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `an APIError, got ${err}`);
      assert.match(err.message, /gpt-cut/);
      assert.match(err.message, /incomplete/);
      assert.equal(err.code, 'stream_interrupted');
      return true;
    });
  assert.ok(text.length > 0 && REPLY.openaiPrimary.startsWith(text) && text !== REPLY.openaiPrimary,
    `part of the answer arrived before the cut: ${JSON.stringify(text)}`);

  const helper = openai.chat.completions.stream({ model: 'gpt-cut', messages: ASK });
  await assert.rejects(within(5_000, 'finalChatCompletion of a cut stream', helper.finalChatCompletion()), OpenAI.APIError);
});

test('anthropic: a stream cut midway throws from the iterator', async () => {
  await setFaults('anthropicPrimary', { cut_after: 4 });
  const { data, response } = await anthropic.messages
    .create({ model: 'claude-cut', max_tokens: 256, messages: ASK, stream: true }).withResponse();
  assertServedBy(response, 'claude-cut', false, 1);
  let text = '';
  await assert.rejects(
    within(5_000, 'iterating the cut stream', drain(data, (ev) => {
      if (ev.type === 'content_block_delta') text += ev.delta.text ?? '';
    })),
    (err) => {
      assert.ok(err instanceof Anthropic.APIError, `an APIError, got ${err}`);
      assert.match(err.message, /claude-cut/);
      assert.match(err.message, /incomplete/);
      assert.equal(err.error?.error?.type, 'api_error');
      return true;
    });
  assert.ok(text.length > 0 && REPLY.anthropicPrimary.startsWith(text) && text !== REPLY.anthropicPrimary,
    `part of the answer arrived before the cut: ${JSON.stringify(text)}`);

  const helper = anthropic.messages.stream({ model: 'claude-cut', max_tokens: 256, messages: ASK });
  helper.on('error', () => {}); // the rejection below is what is checked
  await assert.rejects(within(5_000, 'finalText of a cut stream', helper.finalText()), Anthropic.APIError);
});

// --- e. the whole chain fails: 503 that names the models ---------------------

for (const p of providers) {
  test(`${p.name}: whole chain failing, plain and streaming, is a 503 naming the models`, async () => {
    await setFaults(p.primary, { fail_next: 1000, fail_status: 500 });
    await setFaults(p.lite, { fail_next: 1000, fail_status: 503 });
    const ErrorClass = p.name === 'openai' ? OpenAI.APIError : Anthropic.APIError;
    for (const stream of [false, true]) {
      await assert.rejects(p.call(p.labels.down, { stream }), (err) => {
        assert.ok(err instanceof ErrorClass, `an APIError, got ${err}`);
        assert.equal(err.status, 503);
        assert.match(err.message, new RegExp(`${p.labels.down}:`));
        assert.match(err.message, new RegExp(`${p.labels.downLite}:`));
        assert.match(err.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'Retry-After');
        assert.equal(err.headers.get('x-sidecar-attempts'), '2');
        if (p.name === 'openai') assert.equal(err.code, 'models_unavailable');
        else assert.equal(err.error?.error?.type, 'overloaded_error');
        return true;
      });
    }
    assert.equal(await calls(p.primary), 2);
    assert.equal(await calls(p.lite), 2);
  });
}

// --- f. the model list -------------------------------------------------------

test('openai: models.list() lists the configured labels', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), LABELS);
});

test('anthropic: models.list() lists the configured labels', async () => {
  const ids = [];
  for await (const m of anthropic.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), LABELS);
});
