// The sidecar's model gateway across providers, driven by the official
// OpenAI and Anthropic SDKs and by the Vercel AI SDK. Run by
// TestCrossProviderWithOfficialSDKs (cmd/sidecar/sdk_crossing_test.go),
// which starts the fake models and the sidecar; crossing.helpers.mjs reads
// what it passes.
//
// Every chain starts with a model of the agent's own provider, whose fake
// fails (503), and falls back to a model of the other provider: the agent's
// request is translated there and the answer translated back. Each
// scenario has chains of its own, so breaker state does not leak from one
// test to the next; tests run one after another (node:test runs a file's
// tests in order), each with healed fakes and zeroed stats.

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import Anthropic from '@anthropic-ai/sdk';
import {
  AGENT_KEY, FAKES, NAME, REPLY, SIDECAR, OPEN_FOR_MS, RETRY_AFTER_MS, QUESTION, TOOL_OUTPUT,
  afterTool, weatherSchema, assertAccepted, assertOwnKey, assertServedBy, breaker, calls, healFake, lastBody, resetStats,
  seconds, secondsUntilUTC, setFaults, sleep,
} from './crossing.helpers.mjs';
import { frameworkTests } from './crossing.framework.mjs';

const openai = new OpenAI({ baseURL: `${SIDECAR}/llm/v1`, apiKey: AGENT_KEY, maxRetries: 0, timeout: 15_000 });
const anthropic = new Anthropic({ baseURL: `${SIDECAR}/llm`, apiKey: AGENT_KEY, maxRetries: 0, timeout: 15_000 });

const ASK = [{ role: 'user', content: 'Say hello.' }];
const chatTools = [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherSchema } }];
const messagesTools = [{ name: 'get_weather', description: 'The weather in a city', input_schema: weatherSchema }];
const responsesTools = [{ type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: weatherSchema, strict: true }];

beforeEach(async () => {
  for (const name of FAKES) {
    await healFake(name);
    await resetStats(name);
  }
  // Each provider's first models are down.
  await setFaults('gptDown', { fail_next: 100_000, fail_status: 503 });
  await setFaults('claudeDown', { fail_next: 100_000, fail_status: 503 });
});

// --- 1. OpenAI Chat Completions served by Claude -----------------------------

// chatStream reads a streamed chat completion as an agent does: its text,
// finish reason and models, and the completion the SDK's stream helper
// assembles from the same chunks.
async function chatStream(params) {
  const { data, response } = await openai.chat.completions.create({ ...params, stream: true }).withResponse();
  const final = await ChatCompletionStream.fromReadableStream(data.toReadableStream()).finalChatCompletion();
  return { response, final };
}

test('chat completions: plain and streamed answers of the failing GPT come from Claude', async () => {
  const { data, response } = await openai.chat.completions.create({ model: 'gpt-chat', messages: ASK }).withResponse();
  assertServedBy(response.headers, 'claude-for-chat', { attempts: 2 });
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, REPLY.claudeUp);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(data.model, NAME.claude, "the answer names the fallback's upstream model");
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0, `usage: ${JSON.stringify(data.usage)}`);

  const streamed = await openai.chat.completions.create({ model: 'gpt-chat', messages: ASK, stream: true }).withResponse();
  assertServedBy(streamed.response.headers, 'claude-for-chat', { attempts: 2 });
  let text = '';
  let finish = null;
  for await (const chunk of streamed.data) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, REPLY.claudeUp, 'streamed text');
  assert.equal(finish, 'stop');

  assert.equal(await calls('gptDown'), 2, 'the GPT was tried each time');
  assert.equal(await calls('claudeUp'), 2);
  await assertAccepted('claudeUp');
  await assertOwnKey('claudeUp', 'claude-for-chat');
  const sent = await lastBody('claudeUp');
  assert.equal(sent.model, NAME.claude);
  assert.equal(sent.stream, true);
  assert.ok(sent.max_tokens > 0, 'Anthropic gets the max_tokens it requires');
});

test('chat completions: a tool call round trip through Claude, plain and streamed', async () => {
  for (const stream of [false, true]) {
    const what = stream ? 'streamed' : 'plain';
    const messages = [{ role: 'user', content: QUESTION }];
    const params = { model: 'gpt-chat', messages, tools: chatTools };

    // The model calls the tool.
    const first = stream
      ? await chatStream(params)
      : await openai.chat.completions.create(params).withResponse().then(({ data, response }) => ({ response, final: data }));
    assertServedBy(first.response.headers, 'claude-for-chat');
    const choice = first.final.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls', `${what}: finish_reason`);
    assert.equal(choice.message.tool_calls?.length, 1, `${what}: one tool call: ${JSON.stringify(choice.message)}`);
    const call = choice.message.tool_calls[0];
    assert.match(call.id, /^toolu_/, `${what}: the call keeps the id Claude gave it`);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: QUESTION }, `${what}: the arguments are JSON`);

    // The agent runs it and sends the result back.
    messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: TOOL_OUTPUT });
    let text;
    if (stream) {
      const { final, response } = await chatStream(params);
      assertServedBy(response.headers, 'claude-for-chat');
      text = final.choices[0].message.content;
      assert.equal(final.choices[0].finish_reason, 'stop');
    } else {
      const { data, response } = await openai.chat.completions.create(params).withResponse();
      assertServedBy(response.headers, 'claude-for-chat');
      text = data.choices[0].message.content;
    }
    assert.equal(text, afterTool(REPLY.claudeUp), `${what}: the answer after the tool`);

    // Claude received the call and its result under the same id.
    await assertAccepted('claudeUp');
    const sent = await lastBody('claudeUp');
    const use = sent.messages.at(-2).content.find((b) => b.type === 'tool_use');
    const result = sent.messages.at(-1).content.find((b) => b.type === 'tool_result');
    assert.equal(use?.id, call.id, `${what}: tool_use id`);
    assert.equal(result?.tool_use_id, call.id, `${what}: tool_result tool_use_id`);
  }
});

// --- 2. Anthropic Messages served by GPT -------------------------------------

test('messages: plain and streamed answers of the failing Claude come from GPT', async () => {
  const params = { model: 'claude-msg', max_tokens: 256, messages: ASK };
  const { data, response } = await anthropic.messages.create(params).withResponse();
  assertServedBy(response.headers, 'gpt-for-msg', { attempts: 2 });
  assert.equal(data.type, 'message');
  assert.equal(data.role, 'assistant');
  assert.deepEqual(data.content.map((b) => b.type), ['text']);
  assert.equal(data.content[0].text, REPLY.gptUp);
  assert.equal(data.stop_reason, 'end_turn');
  assert.equal(data.model, NAME.gptFallback);

  const stream = anthropic.messages.stream(params);
  const types = [];
  stream.on('streamEvent', (ev) => types.push(ev.type));
  const streamed = await stream.withResponse();
  assertServedBy(streamed.response.headers, 'gpt-for-msg', { attempts: 2 });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, REPLY.gptUp, 'streamed text');
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');

  assert.equal(await calls('claudeDown'), 2);
  assert.equal(await calls('gptUp'), 2);
  await assertAccepted('gptUp');
  await assertOwnKey('gptUp', 'gpt-for-msg');
  const sent = await lastBody('gptUp');
  assert.equal(sent.model, NAME.gptFallback);
});

test('messages: a tool_use round trip through GPT, plain and streamed', async () => {
  for (const stream of [false, true]) {
    const what = stream ? 'streamed' : 'plain';
    const messages = [{ role: 'user', content: QUESTION }];
    const params = { model: 'claude-msg', max_tokens: 256, messages, tools: messagesTools };
    const ask = async () => {
      if (!stream) {
        const { data, response } = await anthropic.messages.create(params).withResponse();
        return { data, response };
      }
      const s = anthropic.messages.stream(params);
      const { response } = await s.withResponse();
      return { data: await s.finalMessage(), response };
    };

    const first = await ask();
    assertServedBy(first.response.headers, 'gpt-for-msg');
    assert.equal(first.data.stop_reason, 'tool_use', `${what}: stop_reason`);
    const uses = first.data.content.filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 1, `${what}: one tool_use: ${JSON.stringify(first.data.content)}`);
    const use = uses[0];
    assert.match(use.id, /^call_/, `${what}: the tool_use keeps the id GPT gave the call`);
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: QUESTION }, `${what}: the input`);

    messages.push(
      { role: 'assistant', content: first.data.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: TOOL_OUTPUT }] },
    );
    const second = await ask();
    assertServedBy(second.response.headers, 'gpt-for-msg');
    assert.equal(second.data.stop_reason, 'end_turn');
    assert.equal(second.data.content.map((b) => b.text ?? '').join(''), afterTool(REPLY.gptUp), `${what}: the answer after the tool`);

    // The strict OpenAI fake took the call and the result under the same id.
    await assertAccepted('gptUp');
    const sent = await lastBody('gptUp');
    const assistant = sent.messages.findLast((m) => m.role === 'assistant');
    assert.equal(assistant?.tool_calls?.[0]?.id, use.id, `${what}: tool_calls id`);
    assert.equal(sent.messages.at(-1).role, 'tool');
    assert.equal(sent.messages.at(-1).tool_call_id, use.id, `${what}: tool_call_id`);
  }
});

// --- 3. OpenAI Responses API served by Claude --------------------------------

// responsesStream reads a streamed response: the text of its deltas, the
// event types, and the response of its last event.
async function responsesStream(params) {
  const { data, response } = await openai.responses.create({ ...params, stream: true }).withResponse();
  let text = '';
  const types = [];
  let done = null;
  for await (const ev of data) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') done = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed', `the stream ends with response.completed: ${types}`);
  return { response, text, types, done };
}

test('responses: plain and streamed answers of the failing GPT come from Claude', async () => {
  const { data, response } = await openai.responses.create({ model: 'gpt-resp', input: 'Say hello.' }).withResponse();
  assertServedBy(response.headers, 'claude-for-resp', { attempts: 2 });
  assert.equal(data.object, 'response');
  assert.equal(data.status, 'completed');
  assert.equal(data.output_text, REPLY.claudeUp);
  assert.equal(data.model, NAME.claude);

  const streamed = await responsesStream({ model: 'gpt-resp', input: 'Say hello.' });
  assertServedBy(streamed.response.headers, 'claude-for-resp', { attempts: 2 });
  assert.equal(streamed.text, REPLY.claudeUp, 'streamed text');
  assert.equal(streamed.done.status, 'completed');

  assert.equal(await calls('gptDown'), 2);
  assert.equal(await calls('claudeUp'), 2);
  await assertAccepted('claudeUp');
  await assertOwnKey('claudeUp', 'claude-for-resp');
});

test('responses: a function call round trip through Claude, plain and streamed', async () => {
  for (const stream of [false, true]) {
    const what = stream ? 'streamed' : 'plain';
    const input = [{ role: 'user', content: QUESTION }];
    const params = { model: 'gpt-resp', input, tools: responsesTools };

    let output;
    if (stream) {
      const got = await responsesStream(params);
      assertServedBy(got.response.headers, 'claude-for-resp');
      assert.ok(got.types.includes('response.function_call_arguments.delta'), `${what}: argument deltas: ${got.types}`);
      output = got.done.output;
    } else {
      const { data, response } = await openai.responses.create(params).withResponse();
      assertServedBy(response.headers, 'claude-for-resp');
      output = data.output;
    }
    const fnCalls = output.filter((item) => item.type === 'function_call');
    assert.equal(fnCalls.length, 1, `${what}: one function call: ${JSON.stringify(output)}`);
    const call = fnCalls[0];
    assert.match(call.call_id, /^toolu_/, `${what}: the call keeps the id Claude gave it`);
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: QUESTION }, `${what}: the arguments are JSON`);

    // The agent sends back the output items as they came, and the result.
    input.push(...output, { type: 'function_call_output', call_id: call.call_id, output: TOOL_OUTPUT });
    let text;
    if (stream) {
      const got = await responsesStream(params);
      assertServedBy(got.response.headers, 'claude-for-resp');
      text = got.text;
    } else {
      const { data, response } = await openai.responses.create(params).withResponse();
      assertServedBy(response.headers, 'claude-for-resp');
      text = data.output_text;
    }
    assert.equal(text, afterTool(REPLY.claudeUp), `${what}: the answer after the tool`);

    await assertAccepted('claudeUp');
    const sent = await lastBody('claudeUp');
    const use = sent.messages.at(-2).content.find((b) => b.type === 'tool_use');
    const result = sent.messages.at(-1).content.find((b) => b.type === 'tool_result');
    assert.equal(use?.id, call.call_id, `${what}: tool_use id`);
    assert.equal(result?.tool_use_id, call.call_id, `${what}: tool_result tool_use_id`);
  }
});

// --- 4. an agent framework: the Vercel AI SDK ----------------------------------

frameworkTests();

// --- 5. a rate-limited model is left alone until its Retry-After ---------------

test('rate limits: a 429 with Retry-After holds the GPT off for that long while Claude serves', async () => {
  await setFaults('gptLimited', { fail_next: 100_000, fail_status: 429, retry_after: `${RETRY_AFTER_MS}ms` });
  const ask = async (stream) => {
    if (!stream) return (await openai.chat.completions.create({ model: 'gpt-limited', messages: ASK }).withResponse()).response;
    const { data, response } = await openai.chat.completions.create({ model: 'gpt-limited', messages: ASK, stream: true }).withResponse();
    let text = '';
    for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, REPLY.claudeUp);
    return response;
  };

  // The first call meets the 429 and is served by Claude.
  assertServedBy((await ask(false)).headers, 'claude-for-limited', { attempts: 2 });
  const limitedAt = Date.now();
  assert.equal(await calls('gptLimited'), 1);

  // The breaker is open on the model's word, for its Retry-After.
  const checkHeld = async (when) => {
    const b = await breaker('gpt-limited');
    assert.equal(b.state, 'open', `${when}: state`);
    const held = /^rate limited until (\d\d:\d\d:\d\d)/.exec(b.held ?? '');
    assert.ok(held, `${when}: held says until when: ${JSON.stringify(b)}`);
    const until = secondsUntilUTC(held[1]);
    const halfOpenIn = seconds(b.half_open_in ?? '');
    // Seconds are whole in held, and the watch below takes 3 s: 15–21 s
    // for a Retry-After of 20 s.
    const want = RETRY_AFTER_MS / 1000;
    for (const [what, s] of [['held', until], ['half_open_in', halfOpenIn]]) {
      assert.ok(s >= want - 5 && s <= want + 1, `${when}: ${what} is ${s}s away, want about ${want}s: ${JSON.stringify(b)}`);
    }
    assert.match(b.last_failure_reason ?? '', /429/, `${when}: last_failure_reason`);
  };
  await checkHeld('right after the 429');

  // For longer than open_for, no call reaches it; Claude serves them all.
  let served = 0;
  for (let stream = false; Date.now() - limitedAt < OPEN_FOR_MS + 1_000; stream = !stream) {
    assertServedBy((await ask(stream)).headers, 'claude-for-limited', { attempts: 1 });
    served++;
    await sleep(150);
  }
  assert.ok(served >= 5, `only ${served} calls in ${OPEN_FOR_MS + 1_000} ms`);
  assert.equal(await calls('gptLimited'), 1, 'no call reaches the rate-limited model before its Retry-After');
  assert.equal(await calls('claudeUp'), served + 1);
  await checkHeld(`${Date.now() - limitedAt} ms later`);
  await assertAccepted('claudeUp');
});
