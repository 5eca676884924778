// The usage the sidecar counts, checked against what the official OpenAI
// and Anthropic SDKs received. Run by TestUsageWithOfficialSDKs
// (cmd/sidecar/sdk_usage_test.go), which starts the fake models and the
// sidecar and sets:
//
//   SIDECAR_URL             the sidecar's control listener
//   FAKE_OPENAI_URL         the fake OpenAI models' base URLs (control at
//   FAKE_OPENAI_CACHED_URL  /_last): the second reports half of every
//                           prompt as cached
//   USAGE_CACHE_READ        the cache_read_input_tokens and
//   USAGE_CACHE_WRITE       cache_creation_input_tokens of every answer of
//                           the fake Anthropic model behind claude-cached
//   USAGE_PRICES            {label: {input, output, cached_input, cache_write}},
//                           the price blocks of the models, US dollars per
//                           million tokens
//
// Each test reads the model's totals in GET /v1/status, makes one call
// through the SDK, reads the usage the SDK received (the answer's usage,
// a stream's usage chunk or event) and checks that the totals grew by
// exactly that: one answer, its tokens as docs/model-gateway.md "Usage"
// splits them, and their cost at the model's price. The chat, completions,
// responses and messages tests run twice: against models whose fakes
// report no caching, and against models whose fakes report cached input
// (and, for Anthropic, cache writes), which must show in the counts. Tests
// run one after another (node:test runs a file's tests in order).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run this through go test -tags e2e ./cmd/sidecar/ -run TestUsageWithOfficialSDKs`);
  return v.replace(/\/+$/, '');
}

const SIDECAR = env('SIDECAR_URL');
const CACHE_READ = Number(env('USAGE_CACHE_READ'));
const CACHE_WRITE = Number(env('USAGE_CACHE_WRITE'));
const PRICES = JSON.parse(env('USAGE_PRICES'));

// The agent has no provider key: the sidecar sends each model's own.
const openai = new OpenAI({ baseURL: `${SIDECAR}/llm/v1`, apiKey: 'agent-has-no-key', maxRetries: 0, timeout: 15_000 });
const anthropic = new Anthropic({ baseURL: `${SIDECAR}/llm`, apiKey: 'agent-has-no-key', maxRetries: 0, timeout: 15_000 });

const ASK = [{ role: 'user', content: 'Count the tokens of this question, please.' }];
const PROMPT = 'Count the tokens of this prompt, please.';
const ZERO = { answers: 0, input: 0, output: 0, cached_input: 0, cache_write: 0, cost_usd: 0 };

// --- the sidecar's totals -----------------------------------------------

// totals is the model's usage today in GET /v1/status (zeros before its
// first answer).
async function totals(label) {
  const res = await fetch(`${SIDECAR}/v1/status`);
  assert.equal(res.status, 200, `GET /v1/status: ${res.status}`);
  const status = await res.json();
  return { ...ZERO, ...(status.usage?.models?.[label] ?? {}) };
}

// grownBy waits for the model's totals to count one more answer than
// before (a stream is counted once it has ended, which can be a moment
// after the SDK read its last event), then checks they grew by exactly
// want's tokens and their cost at the model's price.
async function grownBy(label, before, want) {
  let after = before;
  for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
    after = await totals(label);
    if (after.answers > before.answers) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const got = {
    answers: after.answers - before.answers,
    input: after.input - before.input,
    output: after.output - before.output,
    cached_input: after.cached_input - before.cached_input,
    cache_write: after.cache_write - before.cache_write,
  };
  assert.deepEqual(got, { answers: 1, ...want }, `${label}: what status counted for the answer`);
  const p = PRICES[label];
  const cost = (want.input * p.input + want.output * p.output + want.cached_input * p.cached_input +
    want.cache_write * p.cache_write) / 1e6;
  const grew = after.cost_usd - before.cost_usd;
  assert.ok(Math.abs(grew - cost) <= 1e-12 + 1e-9 * cost, `${label}: cost grew by ${grew}, want ${cost}`);
  assert.ok(cost > 0, `${label}: an answer of ${JSON.stringify(want)} costs something`);
  assert.equal(after.priced, true, `${label}: every answer was priced`);
}

// --- the usage as the SDKs received it ------------------------------------

// openAIUsage splits an OpenAI chat or completions usage object as the
// sidecar counts it.
function openAIUsage(u) {
  assert.ok(u && Number.isInteger(u.prompt_tokens), `an OpenAI usage object: ${JSON.stringify(u)}`);
  const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  return { input: u.prompt_tokens - cached, output: u.completion_tokens, cached_input: cached, cache_write: 0 };
}

// responsesUsage splits a Responses API usage object.
function responsesUsage(u) {
  assert.ok(u && Number.isInteger(u.input_tokens), `a Responses usage object: ${JSON.stringify(u)}`);
  const cached = u.input_tokens_details?.cached_tokens ?? 0;
  return { input: u.input_tokens - cached, output: u.output_tokens, cached_input: cached, cache_write: 0 };
}

// anthropicUsage splits an Anthropic usage object.
function anthropicUsage(u) {
  assert.ok(u && Number.isInteger(u.input_tokens), `an Anthropic usage object: ${JSON.stringify(u)}`);
  return {
    input: u.input_tokens,
    output: u.output_tokens,
    cached_input: u.cache_read_input_tokens ?? 0,
    cache_write: u.cache_creation_input_tokens ?? 0,
  };
}

// usageChunks are the chunks of an OpenAI stream that carry usage: those
// with no choices and a usage object.
const usageChunks = (chunks) => chunks.filter((c) => c.choices?.length === 0 && c.usage && typeof c.usage === 'object');

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

// lastSent is the body the fake OpenAI model at base last received.
async function lastSent(base) {
  const res = await fetch(`${base}/_last`);
  assert.equal(res.status, 200, `GET /_last: ${res.status}`);
  return JSON.parse((await res.json()).body);
}

// The two sets of models: on fakes that report no caching, and on fakes
// that do (every check of a cached set also checks that the caching shows).
const SETS = [
  { name: 'no cache', gpt: 'gpt-usage', twin: 'gpt-usage-twin', claude: 'claude-usage', fake: env('FAKE_OPENAI_URL'), cached: false },
  { name: 'cached', gpt: 'gpt-cached', twin: 'gpt-cached-twin', claude: 'claude-cached', fake: env('FAKE_OPENAI_CACHED_URL'), cached: true },
];

// reported checks that the usage an SDK received shows the set's caching
// (or none), then returns it.
function reported(set, usage, anthropicUsage = false) {
  if (!set.cached) {
    assert.deepEqual([usage.cached_input, usage.cache_write], [0, 0], `no cache counts: ${JSON.stringify(usage)}`);
  } else if (anthropicUsage) {
    assert.deepEqual([usage.cached_input, usage.cache_write], [CACHE_READ, CACHE_WRITE], `the fake's cache counts: ${JSON.stringify(usage)}`);
  } else {
    assert.ok(usage.cached_input > 0 && usage.input > 0, `some input cached, some not: ${JSON.stringify(usage)}`);
  }
  return usage;
}

for (const set of SETS) {
  // --- OpenAI -------------------------------------------------------------

  test(`${set.name}: chat completion: the answer's usage is counted`, async () => {
    const before = await totals(set.gpt);
    const answer = await openai.chat.completions.create({ model: set.gpt, messages: ASK });
    assert.equal(answer.choices[0].message.content, 'Hello from the counted GPT.');
    await grownBy(set.gpt, before, reported(set, openAIUsage(answer.usage)));
  });

  test(`${set.name}: chat stream with include_usage: the usage chunk the agent received is counted`, async () => {
    const before = await totals(set.gpt);
    const chunks = await collect(await openai.chat.completions.create({
      model: set.gpt, messages: ASK, stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hello from the counted GPT.');
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1, 'one usage chunk');
    assert.equal(chunks.at(-1), usage[0], 'the usage chunk comes last');
    await grownBy(set.gpt, before, reported(set, openAIUsage(usage[0].usage)));
  });

  test(`${set.name}: chat stream without include_usage: no usage chunk reaches the agent, and the answer is counted`, async () => {
    const before = await totals(set.gpt);
    const chunks = await collect(await openai.chat.completions.create({ model: set.gpt, messages: ASK, stream: true }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hello from the counted GPT.');
    assert.deepEqual(usageChunks(chunks), [], 'no usage chunk');
    assert.ok(chunks.every((c) => c.usage == null), 'no chunk carries usage');
    assert.equal(chunks.at(-1).choices[0]?.finish_reason, 'stop', 'the last chunk is the one that ends the answer');
    const sent = await lastSent(set.fake);
    assert.equal(sent.stream_options?.include_usage, true, 'the sidecar asked the model for the usage');

    // The same request, asking for the usage, to the twin model (the same
    // upstream) tells what the model reported for it.
    const beforeTwin = await totals(set.twin);
    const twin = await collect(await openai.chat.completions.create({
      model: set.twin, messages: ASK, stream: true, stream_options: { include_usage: true },
    }));
    const [chunk] = usageChunks(twin);
    assert.ok(chunk, 'the twin\'s stream has a usage chunk');
    const usage = reported(set, openAIUsage(chunk.usage));
    await grownBy(set.twin, beforeTwin, usage);
    await grownBy(set.gpt, before, usage);
  });

  test(`${set.name}: completion (legacy): the answer's usage is counted`, async () => {
    const before = await totals(set.gpt);
    const answer = await openai.completions.create({ model: set.gpt, prompt: PROMPT, max_tokens: 64 });
    assert.equal(answer.choices[0].text, 'Hello from the counted GPT.');
    await grownBy(set.gpt, before, reported(set, openAIUsage(answer.usage)));
  });

  test(`${set.name}: completion stream with include_usage: the usage chunk the agent received is counted`, async () => {
    const before = await totals(set.gpt);
    const chunks = await collect(await openai.completions.create({
      model: set.gpt, prompt: PROMPT, max_tokens: 64, stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'Hello from the counted GPT.');
    const usage = usageChunks(chunks);
    assert.equal(usage.length, 1, 'one usage chunk');
    await grownBy(set.gpt, before, reported(set, openAIUsage(usage[0].usage)));
  });

  test(`${set.name}: completion stream without include_usage: no usage chunk reaches the agent, and the answer is counted`, async () => {
    const before = await totals(set.gpt);
    const chunks = await collect(await openai.completions.create({
      model: set.gpt, prompt: PROMPT, max_tokens: 64, stream: true,
    }));
    assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), 'Hello from the counted GPT.');
    assert.deepEqual(usageChunks(chunks), [], 'no usage chunk');
    assert.ok(chunks.every((c) => c.usage == null), 'no chunk carries usage');
    assert.equal((await lastSent(set.fake)).stream_options?.include_usage, true, 'the sidecar asked the model for the usage');

    const beforeTwin = await totals(set.twin);
    const twin = await collect(await openai.completions.create({
      model: set.twin, prompt: PROMPT, max_tokens: 64, stream: true, stream_options: { include_usage: true },
    }));
    const [chunk] = usageChunks(twin);
    assert.ok(chunk, 'the twin\'s stream has a usage chunk');
    const usage = reported(set, openAIUsage(chunk.usage));
    await grownBy(set.twin, beforeTwin, usage);
    await grownBy(set.gpt, before, usage);
  });

  test(`${set.name}: response: the answer's usage is counted`, async () => {
    const before = await totals(set.gpt);
    const answer = await openai.responses.create({ model: set.gpt, input: PROMPT });
    assert.equal(answer.output_text, 'Hello from the counted GPT.');
    await grownBy(set.gpt, before, reported(set, responsesUsage(answer.usage)));
  });

  test(`${set.name}: response stream: the usage of response.completed is counted`, async () => {
    const before = await totals(set.gpt);
    const events = await collect(await openai.responses.create({ model: set.gpt, input: PROMPT, stream: true }));
    const done = events.filter((e) => e.type === 'response.completed');
    assert.equal(done.length, 1, 'one response.completed event');
    assert.equal(done[0].response.output[0].content[0].text, 'Hello from the counted GPT.');
    await grownBy(set.gpt, before, reported(set, responsesUsage(done[0].response.usage)));
  });

  // --- Anthropic ----------------------------------------------------------

  test(`${set.name}: message: the answer's usage is counted`, async () => {
    const before = await totals(set.claude);
    const answer = await anthropic.messages.create({ model: set.claude, max_tokens: 64, messages: ASK });
    assert.equal(answer.content[0].text, 'Hello from the counted Claude.');
    await grownBy(set.claude, before, reported(set, anthropicUsage(answer.usage), true));
  });

  test(`${set.name}: message stream: message_start's usage updated by message_delta's is counted`, async () => {
    const before = await totals(set.claude);
    const stream = anthropic.messages.stream({ model: set.claude, max_tokens: 64, messages: ASK });
    // The usage as the events reported it: message_start's, then each
    // message_delta's counts replacing it.
    let usage;
    for await (const ev of stream) {
      if (ev.type === 'message_start') usage = { ...ev.message.usage };
      if (ev.type === 'message_delta') {
        for (const [k, v] of Object.entries(ev.usage)) if (v != null) usage[k] = v;
      }
    }
    const final = await stream.finalMessage();
    assert.equal(final.content[0].text, 'Hello from the counted Claude.');
    assert.ok(usage, 'a message_start event');
    assert.deepEqual(anthropicUsage(final.usage), anthropicUsage(usage), 'the SDK\'s final message has the same usage');
    await grownBy(set.claude, before, reported(set, anthropicUsage(usage), true));
  });
}

test('embeddings: the prompt tokens are counted as input', async () => {
  const before = await totals('embed-usage');
  const answer = await openai.embeddings.create({ model: 'embed-usage', input: ['one text to embed', 'and another one'] });
  assert.equal(answer.data.length, 2);
  assert.ok(Number.isInteger(answer.usage?.prompt_tokens), `an embeddings usage object: ${JSON.stringify(answer.usage)}`);
  await grownBy('embed-usage', before, { input: answer.usage.prompt_tokens, output: 0, cached_input: 0, cache_write: 0 });
});

test('token count: counts nothing', async () => {
  const before = await totals('claude-usage');
  const counted = await anthropic.messages.countTokens({ model: 'claude-usage', messages: ASK });
  assert.ok(counted.input_tokens > 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await totals('claude-usage'), before, 'the totals after a token count');
});
