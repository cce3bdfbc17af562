// Tool calls and structured output through three real clients: the official OpenAI client,
// LangChain's ChatOpenAI and the Vercel AI SDK (OpenAI-compatible provider), all pinned in
// tools/. Every JSON object the model produced is checked against its schema with ajv (an
// independent JSON Schema validator).
// Usage: node tools_client.js BASE_URL TOKEN MODEL — prints one JSON object: {checks: [[name, ok, detail]...]}.
const path = require('path');
const mod = (m) => require(path.join(__dirname, '../../tools/node_modules', m));
const OpenAI = mod('openai').default;
const Ajv = mod('ajv').default;

const weatherSchema = {
  type: 'object',
  properties: {
    city: { type: 'string', minLength: 1, maxLength: 12 },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
  },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const timeSchema = {
  type: 'object',
  properties: { zone: { type: 'string', enum: ['UTC', 'CET', 'PST'] } },
  required: ['zone'],
  additionalProperties: false,
};
const storySchema = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 10 },
    age: { type: 'integer', minimum: 1, maximum: 99 },
    happy: { type: 'boolean' },
  },
  required: ['name', 'age', 'happy'],
  additionalProperties: false,
};
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherSchema } },
  { type: 'function', function: { name: 'get_time', description: 'The time in a zone', parameters: timeSchema } },
];
const schemaOf = { get_weather: weatherSchema, get_time: timeSchema };

const checks = [];
const ajv = new Ajv({ strict: false });
function check(name, ok, detail) { checks.push([name, !!ok, ok ? '' : JSON.stringify(detail).slice(0, 400)]); }
function validCall(name, fnName, args) {
  const schema = schemaOf[fnName];
  const v = schema ? ajv.compile(schema) : null;
  check(name + ': names an offered tool', !!schema, fnName);
  if (v) check(name + ': arguments valid under the schema (ajv)', v(args), { args, errors: v.errors });
}
function parseArgs(name, s) {
  try { return JSON.parse(s); } catch (e) { check(name + ': arguments are JSON', false, s); return null; }
}

async function openaiFlows(baseURL, apiKey, model) {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 180000 });
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  // required: the grammar makes the model call one of the tools
  let r = await client.chat.completions.create({ model, messages, tools, tool_choice: 'required', max_tokens: 96, temperature: 0 });
  let m = r.choices[0].message;
  check('openai required: tool_calls present', m.tool_calls && m.tool_calls.length >= 1, r.choices[0]);
  check('openai required: finish_reason tool_calls', r.choices[0].finish_reason === 'tool_calls', r.choices[0].finish_reason);
  for (const tc of m.tool_calls || []) {
    check('openai required: call shape', tc.type === 'function' && typeof tc.id === 'string' && tc.id.length > 0, tc);
    const a = parseArgs('openai required', tc.function.arguments);
    if (a) validCall('openai required', tc.function.name, a);
  }
  const firstCall = (m.tool_calls || [])[0];
  // a named function
  r = await client.chat.completions.create({
    model, messages, tools, tool_choice: { type: 'function', function: { name: 'get_time' } }, max_tokens: 64, temperature: 0.7, seed: 7,
  });
  m = r.choices[0].message;
  check('openai named: exactly that function', m.tool_calls && m.tool_calls.length === 1 && m.tool_calls[0].function.name === 'get_time', m);
  if (m.tool_calls) { const a = parseArgs('openai named', m.tool_calls[0].function.arguments); if (a) validCall('openai named', 'get_time', a); }
  // streamed: delta.tool_calls fragments with index, joined by the client
  const stream = await client.chat.completions.create({ model, messages, tools, tool_choice: 'required', max_tokens: 96, temperature: 0, stream: true });
  const acc = {};
  let finish = null, sawIndex = true;
  for await (const ch of stream) {
    const d = ch.choices && ch.choices[0] && ch.choices[0].delta;
    if (ch.choices && ch.choices[0] && ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    for (const f of (d && d.tool_calls) || []) {
      if (typeof f.index !== 'number') sawIndex = false;
      const c = acc[f.index] || (acc[f.index] = { name: '', args: '' });
      if (f.function && f.function.name) c.name += f.function.name;
      if (f.function && f.function.arguments) c.args += f.function.arguments;
    }
  }
  const calls = Object.values(acc);
  check('openai stream: delta.tool_calls with index', calls.length >= 1 && sawIndex, acc);
  check('openai stream: finish_reason tool_calls', finish === 'tool_calls', finish);
  check('openai stream: same calls as not streamed (same seed)', firstCall && calls.length >= 1 && calls[0].name === firstCall.function.name &&
    calls[0].args === firstCall.function.arguments, { calls, firstCall });
  // the result goes back: an assistant message with tool_calls and a tool message in the history
  if (firstCall) {
    r = await client.chat.completions.create({
      model, max_tokens: 24, temperature: 0,
      messages: [...messages, { role: 'assistant', content: null, tool_calls: [firstCall] },
        { role: 'tool', tool_call_id: firstCall.id, content: '{"temp": 21}' }],
      tools,
    });
    check('openai history with tool_calls and a tool result: answered', r.choices[0].message.role === 'assistant' &&
      (typeof r.choices[0].message.content === 'string' || r.choices[0].message.tool_calls), r.choices[0]);
  }
  // content given as text parts
  r = await client.chat.completions.create({ model, max_tokens: 8, temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Once upon' }, { type: 'text', text: ' a time' }] }] });
  check('openai text-part content: answered', typeof r.choices[0].message.content === 'string', r.choices[0]);
  // response_format json_schema (strict) and json_object
  r = await client.chat.completions.create({
    model, max_tokens: 64, temperature: 0, messages: [{ role: 'user', content: 'Tell me about a girl.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'story', strict: true, schema: storySchema } },
  });
  let obj = null;
  try { obj = JSON.parse(r.choices[0].message.content); } catch (e) { }
  check('openai json_schema: content is JSON', obj !== null, r.choices[0].message.content);
  if (obj !== null) { const v = ajv.compile(storySchema); check('openai json_schema: valid under the schema (ajv)', v(obj), { obj, e: v.errors }); }
  r = await client.chat.completions.create({
    model, max_tokens: 48, temperature: 0, messages: [{ role: 'user', content: 'A JSON object please.' }],
    response_format: { type: 'json_object' },
  });
  const jo = r.choices[0].message.content;
  obj = null;
  try { obj = JSON.parse(jo); } catch (e) { }
  // json_object without a bound on length may be cut by max_tokens: then it must be a prefix of an object
  check('openai json_object: an object (or cut by max_tokens)', (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) ||
    (r.choices[0].finish_reason === 'length' && jo.trimStart().startsWith('{')), { jo, f: r.choices[0].finish_reason });
  // an unsupported schema keyword is a clear 400
  let status = 0, msg = '';
  try {
    await client.chat.completions.create({ model, max_tokens: 8, messages,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', unevaluatedProperties: false } } } });
  } catch (e) { status = e.status; msg = String(e.message); }
  check('openai unsupported schema keyword: 400 naming it', status === 400 && /unevaluatedProperties/.test(msg), { status, msg });
}

async function langchainFlows(baseURL, apiKey, model) {
  const { ChatOpenAI } = mod('@langchain/openai');
  const llm = new ChatOpenAI({ model, apiKey, temperature: 0, maxTokens: 96, maxRetries: 0, configuration: { baseURL } });
  const bound = llm.bindTools(tools, { tool_choice: 'required' });
  const msg = await bound.invoke('What is the weather in Paris?');
  check('langchain bindTools: tool_calls', msg.tool_calls && msg.tool_calls.length >= 1, msg.tool_calls);
  for (const tc of msg.tool_calls || []) validCall('langchain bindTools', tc.name, tc.args);
  const structured = llm.withStructuredOutput(storySchema, { name: 'story', method: 'jsonSchema' });
  const obj = await structured.invoke('Tell me about a girl.');
  const v = ajv.compile(storySchema);
  check('langchain withStructuredOutput: valid under the schema (ajv)', v(obj), { obj, e: v.errors });
}

async function vercelFlows(baseURL, apiKey, model) {
  const ai = mod('ai');
  const { createOpenAICompatible } = mod('@ai-sdk/openai-compatible');
  const provider = createOpenAICompatible({ name: 'apiary', baseURL, apiKey, supportsStructuredOutputs: true });
  const lm = provider.chatModel(model);
  const r = await ai.generateText({
    model: lm, prompt: 'What is the weather in Paris?', toolChoice: 'required', maxOutputTokens: 96, temperature: 0, maxRetries: 0,
    tools: {
      get_weather: ai.tool({ description: 'The weather in a city', inputSchema: ai.jsonSchema(weatherSchema) }),
      get_time: ai.tool({ description: 'The time in a zone', inputSchema: ai.jsonSchema(timeSchema) }),
    },
  });
  check('vercel generateText: tool calls', r.toolCalls && r.toolCalls.length >= 1, r.toolCalls);
  for (const tc of r.toolCalls || []) validCall('vercel generateText', tc.toolName, tc.input);
  const o = await ai.generateObject({ model: lm, schema: ai.jsonSchema(storySchema), prompt: 'Tell me about a girl.',
    maxOutputTokens: 64, temperature: 0, maxRetries: 0 });
  const v = ajv.compile(storySchema);
  check('vercel generateObject: valid under the schema (ajv)', v(o.object), { o: o.object, e: v.errors });
}

async function main() {
  const [baseURL, apiKey, model] = process.argv.slice(2);
  for (const [name, f] of [['openai', openaiFlows], ['langchain', langchainFlows], ['vercel', vercelFlows]]) {
    try { await f(baseURL, apiKey, model); } catch (e) { check(name + ': the flow ran', false, String(e && e.stack || e).slice(0, 600)); }
  }
  console.log(JSON.stringify({ checks }));
}
main();
