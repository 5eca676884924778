// The cross-provider scenarios of crossing.test.mjs for an agent framework,
// the Vercel AI SDK: its OpenAI provider pointed at the sidecar, over Chat
// Completions (openai.chat(model)) and over the Responses API (openai(model),
// its default), answered by Claude when the GPT fails; and its Anthropic
// provider answered by GPT when Claude fails. The tool has an execute
// function, so the SDK runs the whole tool loop itself: the call, the tool,
// the result sent back, the final answer, every step across providers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import {
  AGENT_KEY, QUESTION, REPLY, SIDECAR, TOOL_OUTPUT,
  afterTool, assertAccepted, assertOwnKey, assertServedBy, calls, lastBody, weatherSchema,
} from './crossing.helpers.mjs';

const gateway = { baseURL: `${SIDECAR}/llm/v1`, apiKey: AGENT_KEY };
const openai = createOpenAI(gateway);
const anthropic = createAnthropic(gateway);

// The agents: how each builds its model (and its settings: the Anthropic
// provider wants a cap for a model it does not know), the label that
// serves it, the fakes behind, and the id prefix of the tool calls of the
// serving fake.
const agents = [
  {
    name: 'Vercel AI SDK, OpenAI chat completions',
    model: () => openai.chat('gpt-ai'), served: 'claude-for-ai', failing: 'gptDown', fake: 'claudeUp', callID: /^toolu_/,
  },
  {
    name: 'Vercel AI SDK, OpenAI Responses API',
    model: () => openai('gpt-ai'), served: 'claude-for-ai', failing: 'gptDown', fake: 'claudeUp', callID: /^toolu_/,
  },
  {
    name: 'Vercel AI SDK, Anthropic messages',
    model: () => anthropic('claude-ai'), settings: { maxOutputTokens: 256 }, served: 'gpt-for-ai', failing: 'claudeDown', fake: 'gptUp', callID: /^call_/,
  },
];

// stream runs streamText with opts as an agent reading its text does, and
// returns what generateText would, failing on any error the SDK reports
// (streamText hands errors to onError instead of throwing them).
async function stream(opts) {
  const errors = [];
  const s = streamText({ ...opts, onError: ({ error }) => errors.push(error) });
  let text = '';
  for await (const piece of s.textStream) text += piece;
  assert.deepEqual(errors, [], 'streamText reported errors');
  return { text, steps: await s.steps, finishReason: await s.finishReason, response: await s.response };
}

// idsSent are the ids of the tool call and of its result in the last
// request fake received.
async function idsSent(fake) {
  const sent = await lastBody(fake);
  if (fake === 'gptUp') {
    const assistant = sent.messages.findLast((m) => m.role === 'assistant');
    return { call: assistant?.tool_calls?.[0]?.id, result: sent.messages.at(-1).tool_call_id };
  }
  const use = sent.messages.at(-2).content.find((b) => b.type === 'tool_use');
  const result = sent.messages.at(-1).content.find((b) => b.type === 'tool_result');
  return { call: use?.id, result: result?.tool_use_id };
}

export function frameworkTests() {
  for (const a of agents) {
    test(`${a.name}: generateText and streamText answered across providers`, async () => {
      const opts = { model: a.model(), ...a.settings, prompt: 'Say hello.', maxRetries: 0 };
      const reply = a.fake === 'gptUp' ? REPLY.gptUp : REPLY.claudeUp;
      for (const [what, got] of [['generateText', await generateText(opts)], ['streamText', await stream(opts)]]) {
        assert.equal(got.text, reply, `${what}: text`);
        assert.equal(got.finishReason, 'stop', `${what}: finishReason`);
        assertServedBy(got.response.headers, a.served, { attempts: 2 });
      }
      assert.equal(await calls(a.failing), 2, 'the failing model was tried each time');
      assert.equal(await calls(a.fake), 2);
      await assertAccepted(a.fake);
      await assertOwnKey(a.fake, a.served);
      if (a.settings?.maxOutputTokens) {
        const sent = await lastBody(a.fake);
        assert.equal(sent.max_completion_tokens ?? sent.max_tokens, a.settings.maxOutputTokens, "the agent's cap is carried over");
      }
    });

    test(`${a.name}: a tool with execute, the whole loop across providers`, async () => {
      const reply = a.fake === 'gptUp' ? REPLY.gptUp : REPLY.claudeUp;
      for (const streamed of [false, true]) {
        const what = streamed ? 'streamText' : 'generateText';
        const ran = [];
        const tools = {
          get_weather: tool({
            description: 'The weather in a city',
            inputSchema: jsonSchema(weatherSchema),
            execute: async ({ city }) => {
              ran.push(city);
              return TOOL_OUTPUT;
            },
          }),
        };
        const opts = { model: a.model(), ...a.settings, prompt: QUESTION, tools, stopWhen: stepCountIs(3), maxRetries: 0 };
        const got = streamed ? await stream(opts) : await generateText(opts);

        assert.deepEqual(ran, [QUESTION], `${what}: the tool ran once, with the arguments the model gave`);
        assert.equal(got.steps.length, 2, `${what}: a tool step, then the answer`);
        const [callStep, answerStep] = got.steps;
        assert.equal(callStep.finishReason, 'tool-calls', `${what}: the first step ends in a tool call`);
        assert.equal(callStep.toolCalls.length, 1);
        const call = callStep.toolCalls[0];
        assert.equal(call.toolName, 'get_weather');
        assert.match(call.toolCallId, a.callID, `${what}: the call keeps the id the serving model gave it`);
        assert.deepEqual(call.input, { city: QUESTION });
        assert.equal(callStep.toolResults[0]?.output, TOOL_OUTPUT);
        assert.equal(answerStep.finishReason, 'stop');
        assert.equal(got.text, afterTool(reply), `${what}: the answer quotes the tool's output`);
        for (const step of got.steps) assertServedBy(step.response.headers, a.served, { attempts: 2 });

        await assertAccepted(a.fake);
        const ids = await idsSent(a.fake);
        assert.equal(ids.call, call.toolCallId, `${what}: the call sent back under its id`);
        assert.equal(ids.result, call.toolCallId, `${what}: the result answers that id`);
      }
    });
  }
}
