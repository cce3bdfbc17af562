// Calls an apiary node's API with the official OpenAI client (tools/node_modules/openai).
// Usage: node openai_client.js BASE_URL TOKEN MODEL PROMPT — prints one JSON object with what it saw.
const path = require('path');
const OpenAI = require(path.join(__dirname, '../../tools/node_modules/openai')).default;

async function main() {
  const [baseURL, apiKey, model, prompt] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
  const out = {};
  const list = await client.models.list();
  out.models = list.data.map((m) => m.id);

  const c = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
  out.completion = { text: c.choices[0].text, finish: c.choices[0].finish_reason, usage: c.usage };

  const stream = await client.completions.create({
    model, prompt, max_tokens: 24, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '', chunks = 0, usage = null, finish = null;
  for await (const ch of stream) {
    chunks++;
    if (ch.choices && ch.choices[0]) {
      text += ch.choices[0].text || '';
      if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    }
    if (ch.usage) usage = ch.usage;
  }
  out.stream = { text, chunks, usage, finish };

  const messages = [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about a cat.' }];
  const cc = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
  out.chat = { role: cc.choices[0].message.role, text: cc.choices[0].message.content, finish: cc.choices[0].finish_reason, usage: cc.usage, object: cc.object };
  const cs = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let ctext = '', crole = null, cusage = null;
  for await (const ch of cs) {
    if (ch.choices && ch.choices[0] && ch.choices[0].delta) {
      if (ch.choices[0].delta.role) crole = ch.choices[0].delta.role;
      ctext += ch.choices[0].delta.content || '';
    }
    if (ch.usage) cusage = ch.usage;
  }
  out.chat_stream = { role: crole, text: ctext, usage: cusage };

  try {
    await new OpenAI({ baseURL, apiKey: 'apy_' + 'A'.repeat(43), maxRetries: 0 }).models.list();
    out.bad_token = 'accepted';
  } catch (e) {
    out.bad_token = e.status;
  }
  console.log(JSON.stringify(out));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
