// POST /v1/embeddings through three real clients: the official OpenAI client (its default
// base64 transfer, explicit float and base64), LangChain's OpenAIEmbeddings (embedQuery,
// embedDocuments) and the Vercel AI SDK (embed, embedMany through an OpenAI-compatible
// provider), all pinned in tools/. Every vector must match llama.cpp's mean-pooled,
// L2-normalized embedding of the same text (the reference JSON from tests/data/embeddings:
// cosine >= 0.999 and every element within 5e-3, the Q8_0 bounds of tests/unit/test_embed.c).
// Usage: node embed_client.js BASE_URL TOKEN MODEL REF_JSON — prints {checks: [[name, ok, detail]...]}.
const fs = require('fs');
const path = require('path');
const mod = (m) => require(path.join(__dirname, '../../tools/node_modules', m));
const OpenAI = mod('openai').default;

const checks = [];
function check(name, ok, detail) { checks.push([name, !!ok, ok ? '' : JSON.stringify(detail).slice(0, 400)]); }

// Cosine and largest difference of v against ref; a check that both are within bounds.
function near(name, v, ref) {
  if (!v || v.length !== ref.length) return check(name + ': ' + ref.length + ' numbers', false, v && v.length);
  let dot = 0, na = 0, nb = 0, worst = 0;
  for (let i = 0; i < ref.length; i++) {
    dot += v[i] * ref[i]; na += v[i] * v[i]; nb += ref[i] * ref[i];
    worst = Math.max(worst, Math.abs(v[i] - ref[i]));
  }
  const cos = dot / Math.sqrt(na * nb);
  check(name + ': matches llama.cpp (cosine, max diff)', cos >= 0.999 && worst <= 5e-3, { cos, worst });
}

function floatsOfBase64(s) {
  const b = Buffer.from(s, 'base64');
  const out = [];
  for (let i = 0; i + 4 <= b.length; i += 4) out.push(b.readFloatLE(i));
  return out;
}

async function openaiFlows(baseURL, apiKey, model, inputs) {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
  const texts = inputs.map((x) => x.text);
  const r = await client.embeddings.create({ model, input: texts }); // the client asks for base64 and decodes it
  check('openai embeddings.create: one item per input, in order', r.data.length === texts.length &&
        r.data.every((d, i) => d.index === i && d.object === 'embedding'), r.data.map((d) => d.index));
  r.data.forEach((d, i) => near('openai default (base64 on the wire) input ' + i, d.embedding, inputs[i].mean));
  const total = inputs.reduce((s, x) => s + x.n_tokens, 0);
  check('openai usage: prompt_tokens = total_tokens = llama.cpp token count', r.usage.prompt_tokens === total &&
        r.usage.total_tokens === total, r.usage);
  const f = await client.embeddings.create({ model, input: texts[0], encoding_format: 'float' });
  near('openai float', f.data[0].embedding, inputs[0].mean);
  const b = await client.embeddings.create({ model, input: texts[0], encoding_format: 'base64' });
  const dec = floatsOfBase64(b.data[0].embedding);
  check('openai base64: the float32 bytes equal the float answer', typeof b.data[0].embedding === 'string' &&
        dec.length === f.data[0].embedding.length && dec.every((x, i) => x === Math.fround(f.data[0].embedding[i])),
        String(b.data[0].embedding).slice(0, 60));
  try {
    await client.embeddings.create({ model, input: '' });
    check('openai empty input: a 400', false, 'accepted');
  } catch (e) {
    check('openai empty input: a 400', e.status === 400, e.status);
  }
  try {
    await client.embeddings.create({ model, input: 'x', dimensions: 7 });
    check('openai dimensions other than the model\'s: a 400', false, 'accepted');
  } catch (e) {
    check('openai dimensions other than the model\'s: a 400', e.status === 400, e.status);
  }
}

async function langchainFlows(baseURL, apiKey, model, inputs) {
  const { OpenAIEmbeddings } = mod('@langchain/openai');
  const emb = new OpenAIEmbeddings({ model, apiKey, maxRetries: 0, configuration: { baseURL } });
  near('langchain embedQuery', await emb.embedQuery(inputs[0].text), inputs[0].mean);
  const docs = await emb.embedDocuments(inputs.map((x) => x.text));
  check('langchain embedDocuments: one vector per text', docs.length === inputs.length, docs.length);
  docs.forEach((v, i) => near('langchain embedDocuments text ' + i, v, inputs[i].mean));
}

async function vercelFlows(baseURL, apiKey, model, inputs) {
  const ai = mod('ai');
  const { createOpenAICompatible } = mod('@ai-sdk/openai-compatible');
  const provider = createOpenAICompatible({ name: 'apiary', baseURL, apiKey });
  const em = provider.textEmbeddingModel(model);
  const one = await ai.embed({ model: em, value: inputs[0].text, maxRetries: 0 });
  near('vercel embed', one.embedding, inputs[0].mean);
  const many = await ai.embedMany({ model: em, values: inputs.map((x) => x.text), maxRetries: 0 });
  check('vercel embedMany: one vector per value', many.embeddings.length === inputs.length, many.embeddings.length);
  many.embeddings.forEach((v, i) => near('vercel embedMany value ' + i, v, inputs[i].mean));
}

async function main() {
  const [baseURL, apiKey, model, refPath] = process.argv.slice(2);
  // LangChain's embedDocuments and the OpenAI client may reshape text with newlines: the texts have none
  const inputs = JSON.parse(fs.readFileSync(refPath, 'utf8')).inputs.filter((x) => !x.text.includes('\n'));
  for (const [name, f] of [['openai', openaiFlows], ['langchain', langchainFlows], ['vercel', vercelFlows]]) {
    try { await f(baseURL, apiKey, model, inputs); } catch (e) { check(name + ': the flow ran', false, String(e && e.stack || e).slice(0, 600)); }
  }
  console.log(JSON.stringify({ checks }));
}
main();
