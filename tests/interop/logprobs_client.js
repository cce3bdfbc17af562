// logprobs, echo and several streamed choices through real clients: the official OpenAI
// client, LangChain's ChatOpenAI (logprobs: true, response_metadata.logprobs) and the Vercel
// AI SDK's OpenAI-compatible provider (which has no logprobs option of its own: extra provider
// options go into the body and the raw answer is read back; echo is a completion option).
// Usage: node logprobs_client.js BASE_URL TOKEN MODEL PROMPT ROUTED — prints one JSON object:
// {checks: [[name, ok, detail]...], first: {token, logprob, top: [[token, logprob]...]}} (the
// completion's first generated position, compared with llama.cpp by openai_api.py).
// ROUTED "1": the model is bought from another node: the provider's chunks carry the records
// (the same checks hold); echo with logprobs (the prompt's records) is refused there (400).
const path = require('path');
const mod = (m) => require(path.join(__dirname, '../../tools/node_modules', m));
const OpenAI = mod('openai').default;

const checks = [];
const out = { checks };
function check(name, ok, detail) { checks.push([name, !!ok, ok ? '' : JSON.stringify(detail).slice(0, 400)]); }
const bytesOf = (entries) => Buffer.concat(entries.map((e) => Buffer.from(e.bytes)));
function wellShaped(name, entries, k) {
  const bad = entries.find((e) => typeof e.token !== 'string' || !(e.logprob <= 0) || !Array.isArray(e.bytes) ||
    e.top_logprobs.length !== k || e.top_logprobs[0].token !== e.token || e.top_logprobs[0].logprob !== e.logprob ||
    e.top_logprobs.some((t, i) => i > 0 && t.logprob > e.top_logprobs[i - 1].logprob));
  check(name + ': entries shaped as OpenAI (greedy token first of its top_logprobs, sorted)', entries.length > 0 && !bad, bad || entries.length);
}

async function refused(name, f) {
  let status = 0, code = '';
  try { await f(); } catch (e) { status = e.status; code = e.code || (e.error && e.error.code) || ''; }
  check(name + ': refused with 400 unsupported_parameter', status === 400 && code === 'unsupported_parameter', { status, code });
}

async function openaiFlows(baseURL, apiKey, model, prompt, routed) {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 180000 });
  const messages = [{ role: 'user', content: 'Tell me about a cat.' }];
  {
    const r = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 4 });
    const entries = r.choices[0].logprobs.content;
    wellShaped('openai chat logprobs', entries, 4);
    check('openai chat logprobs: one entry per completion token', entries.length === r.usage.completion_tokens, [entries.length, r.usage]);
    check('openai chat logprobs: the bytes spell the content', bytesOf(entries).toString('utf8') === r.choices[0].message.content,
      [bytesOf(entries).toString('utf8'), r.choices[0].message.content]);
    const s = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 4, stream: true });
    const se = [];
    let text = '';
    let chunkOk = true;
    for await (const ch of s) {
      const c = ch.choices[0];
      if (!c) continue;
      text += c.delta.content || '';
      const lp = c.logprobs && c.logprobs.content ? c.logprobs.content : [];
      se.push(...lp);
      if (lp.length && c.delta.content !== undefined && bytesOf(lp).toString('utf8') !== c.delta.content && !/\ufffd/.test(c.delta.content)) chunkOk = false;
    }
    check('openai chat stream logprobs: the chunks carry the whole answer\'s entries', JSON.stringify(se) === JSON.stringify(entries),
      [se.length, entries.length]);
    check('openai chat stream logprobs: each chunk\'s entries spell its text', chunkOk && text === r.choices[0].message.content, text);
    const c = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, logprobs: 5 });
    const lp = c.choices[0].logprobs;
    check('openai completions logprobs: tokens, token_logprobs, top_logprobs, text_offset',
      lp.tokens.length === 8 && lp.token_logprobs.length === 8 && lp.top_logprobs.length === 8 && lp.text_offset[0] === prompt.length &&
      lp.tokens.join('') === c.choices[0].text, lp);
    const top0 = Object.entries(lp.top_logprobs[0]).sort((a, b) => b[1] - a[1]);
    out.first = { token: lp.tokens[0], logprob: lp.token_logprobs[0], top: top0 };
    if (routed) {
      await refused('openai completions echo + logprobs (bought)', () => client.completions.create({ model, prompt, max_tokens: 4, logprobs: 1, echo: true }));
      return;
    }
    const e = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, logprobs: 1, echo: true });
    const el = e.choices[0].logprobs;
    check('openai completions echo: the prompt, then the same text', e.choices[0].text === prompt + c.choices[0].text, e.choices[0].text);
    check('openai completions echo + logprobs: the prompt\'s tokens first, offsets into the echoed text',
      el.tokens.length > 8 && el.text_offset[0] === 0 && el.tokens.slice(-8).join('') === c.choices[0].text &&
      el.text_offset[el.tokens.length - 8] === prompt.length &&
      el.token_logprobs.slice(-8).every((v, i) => Math.abs(v - lp.token_logprobs[i]) < 1e-5), el);
  }
}

async function moreFlows(baseURL, apiKey, model, prompt) {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 180000 });
  const messages = [{ role: 'user', content: 'Tell me about a cat.' }];
  // echo without logprobs, and n = 2 streamed, work bought as well as local
  const e2 = await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0, echo: true });
  check('openai completions echo: text starts with the prompt', e2.choices[0].text.startsWith(prompt) && e2.choices[0].text.length > prompt.length, e2.choices[0].text);
  const whole = await client.chat.completions.create({ model, messages, max_tokens: 8, n: 2, seed: 5 });
  const st = await client.chat.completions.create({ model, messages, max_tokens: 8, n: 2, seed: 5, stream: true, stream_options: { include_usage: true } });
  const texts = ['', ''], fins = [0, 0];
  let order = true, last = 0, usage = null;
  for await (const ch of st) {
    if (ch.usage) usage = ch.usage;
    const c = ch.choices[0];
    if (!c) continue;
    if (c.index < last) order = false;
    last = c.index;
    texts[c.index] += c.delta.content || '';
    if (c.finish_reason) fins[c.index]++;
  }
  check('openai n=2 stream: each choice under its index, one finish chunk each, one after the other', order && fins[0] === 1 && fins[1] === 1, fins);
  check('openai n=2 stream: the same choices as the whole answer (same seed)',
    texts[0] === whole.choices[0].message.content && texts[1] === whole.choices[1].message.content, [texts, whole.choices.map((x) => x.message.content)]);
  check('openai n=2 stream: usage summed, the prompt counted once', usage && JSON.stringify(usage) === JSON.stringify(whole.usage), [usage, whole.usage]);
}

async function langchainFlows(baseURL, apiKey, model, prompt, routed) {
  const { ChatOpenAI } = mod('@langchain/openai');
  const llm = new ChatOpenAI({ model, apiKey, temperature: 0, maxTokens: 12, maxRetries: 0, logprobs: true, topLogprobs: 2, configuration: { baseURL } });
  const m = await llm.invoke('Tell me about a dog.');
  const entries = (m.response_metadata.logprobs || {}).content || [];
  wellShaped('langchain ChatOpenAI logprobs: response_metadata.logprobs', entries, 2);
  check('langchain ChatOpenAI logprobs: the bytes spell the content', bytesOf(entries).toString('utf8') === m.content, m.content);
}

async function vercelFlows(baseURL, apiKey, model, prompt, routed) {
  const ai = mod('ai');
  const { createOpenAICompatible } = mod('@ai-sdk/openai-compatible');
  const provider = createOpenAICompatible({ name: 'apiary', baseURL, apiKey });
  const c = await ai.generateText({ model: provider.completionModel(model), prompt, maxOutputTokens: 4, temperature: 0, maxRetries: 0,
    providerOptions: { apiary: { echo: true } } });
  // the SDK lays the prompt out as a "user:"/"assistant:" conversation: that text comes back first
  check('vercel completion echo: the answer starts with the prompt as sent', /^user:\n/.test(c.text) && c.text.includes(prompt), c.text);
  const r = await ai.generateText({ model: provider.chatModel(model), prompt: 'Tell me about a bird.', maxOutputTokens: 8, temperature: 0,
    maxRetries: 0, providerOptions: { apiary: { logprobs: true, top_logprobs: 3 } } });
  const entries = (((r.response.body || {}).choices || [{}])[0].logprobs || {}).content || [];
  wellShaped('vercel generateText (logprobs as a body option, read from the raw answer)', entries, 3);
}

async function main() {
  const [baseURL, apiKey, model, prompt, routed] = process.argv.slice(2);
  for (const [name, f] of [['openai', openaiFlows], ['openai (echo, n)', moreFlows], ['langchain', langchainFlows], ['vercel', vercelFlows]]) {
    try { await f(baseURL, apiKey, model, prompt, routed === '1'); } catch (e) { check(name + ': the flow ran', false, String(e && e.stack || e).slice(0, 600)); }
  }
  console.log(JSON.stringify(out));
}
main();
