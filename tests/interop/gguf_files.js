// Our GGUF writer against an independent reader: Hugging Face's @huggingface/gguf (pinned in
// tools/). `apiary model synth` and `apiary model quantize` must write files llama.cpp
// loads; llama.cpp cannot run here, so this checks what its loader requires, read back
// through a parser we did not write:
//   - GGUF v3, data section and every tensor offset aligned to general.alignment (or 32),
//     tensors inside the file and not overlapping (sizes from the block layouts of the
//     GGUF spec);
//   - every row a whole number of blocks of its type;
//   - the architecture's hyperparameter keys, and exactly the tensor set llama.cpp's loader
//     creates for llama / qwen2 (it refuses files with extra tensors), each with the shape
//     it expects from those hyperparameters; the vocabulary size equal to the embedding's;
//   - the tokenizer arrays of equal length (and merges for byte-level BPE);
//   - the reader's parameter count equal to the one apiary reports.
// Usage: node gguf_files.js APIARY_BIN SHARED_DIR WORK_DIR — prints "N passed, N failed".
'use strict';
const path = require('path');
const fs = require('fs');
const { execFileSync } = require('child_process');
const { gguf, GGMLQuantizationType: T } = require(
  path.join(__dirname, '../../tools/node_modules/@huggingface/gguf'));

const [bin, shared, work] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) passed++; else failed++;
  console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${name}${ok || detail === undefined ? '' : ' ' + detail}`);
}

// [elements, bytes] per block of each type apiary writes (GGUF spec facts; the type codes
// are the reader's).
const LAYOUT = {
  [T.F32]: [1, 4], [T.F16]: [1, 2], [T.BF16]: [1, 2], [T.Q4_0]: [32, 18], [T.Q4_1]: [32, 20],
  [T.Q5_0]: [32, 22], [T.Q5_1]: [32, 24], [T.Q8_0]: [32, 34], [T.Q4_K]: [256, 144],
  [T.Q5_K]: [256, 176], [T.Q6_K]: [256, 210],
};
const BLOCK = Object.fromEntries(Object.entries(LAYOUT).map(([k, v]) => [k, v[0]]));

function tensorBytes(t) {
  const n = t.shape.reduce((a, b) => a * b, 1n);
  const [be, bb] = LAYOUT[t.dtype];
  return (n / BigInt(be)) * BigInt(bb);
}

// The tensors llama.cpp's loader creates for a llama/qwen2 block and the model, with shapes
// (ne0 first, as in GGUF) from the hyperparameters. Optional tensors may be absent.
function expectedTensors(md, nVocab, names) {
  const a = md['general.architecture'];
  const E = md[`${a}.embedding_length`], L = md[`${a}.block_count`], F = md[`${a}.feed_forward_length`];
  const H = md[`${a}.attention.head_count`], HKV = md[`${a}.attention.head_count_kv`] ?? H;
  const HD = md[`${a}.attention.key_length`] ?? E / H;
  const want = new Map([['token_embd.weight', [E, nVocab]], ['output_norm.weight', [E]]]);
  const optional = new Set(['output.weight', 'rope_freqs.weight']);
  if (names.has('output.weight')) want.set('output.weight', [E, nVocab]);
  if (names.has('rope_freqs.weight')) want.set('rope_freqs.weight', [(md[`${a}.rope.dimension_count`] ?? HD) / 2]);
  for (let i = 0; i < L; i++) {
    const b = `blk.${i}.`;
    want.set(b + 'attn_norm.weight', [E]);
    want.set(b + 'attn_q.weight', [E, H * HD]);
    want.set(b + 'attn_k.weight', [E, HKV * HD]);
    want.set(b + 'attn_v.weight', [E, HKV * HD]);
    want.set(b + 'attn_output.weight', [H * HD, E]);
    want.set(b + 'ffn_norm.weight', [E]);
    want.set(b + 'ffn_gate.weight', [E, F]);
    want.set(b + 'ffn_up.weight', [E, F]);
    want.set(b + 'ffn_down.weight', [F, E]);
    if (a === 'qwen2') {
      want.set(b + 'attn_q.bias', [H * HD]);
      want.set(b + 'attn_k.bias', [HKV * HD]);
      want.set(b + 'attn_v.bias', [HKV * HD]);
    }
  }
  return { want, optional };
}

async function checkFile(label, file, apiaryParams) {
  const size = BigInt(fs.statSync(file).size);
  let r;
  try {
    r = await gguf(file, { allowLocalFile: true, computeParametersCount: true });
  } catch (e) {
    check(`${label}: the reader parses it`, false, String(e));
    return;
  }
  check(`${label}: the reader parses it`, true);
  const md = r.metadata, a = md['general.architecture'];
  check(`${label}: GGUF v3`, md.version === 3, String(md.version));
  const align = BigInt(md['general.alignment'] ?? 32);
  check(`${label}: data section aligned`, r.tensorDataOffset % align === 0n, String(r.tensorDataOffset));

  // Offsets, sizes, overlaps, whole blocks.
  const ts = [...r.tensorInfos].sort((x, y) => (x.offset < y.offset ? -1 : x.offset > y.offset ? 1 : 0));
  let end = 0n, bad = [];
  for (const t of ts) {
    if (BLOCK[t.dtype] === undefined) { bad.push(`${t.name}: type ${t.dtype}`); continue; }
    if (t.offset % align !== 0n) bad.push(`${t.name}: offset ${t.offset} not aligned`);
    if (t.offset < end) bad.push(`${t.name}: overlaps the previous tensor`);
    if (t.shape[0] % BigInt(BLOCK[t.dtype]) !== 0n) bad.push(`${t.name}: row of ${t.shape[0]} is not whole blocks`);
    end = t.offset + tensorBytes(t);
    if (r.tensorDataOffset + end > size) bad.push(`${t.name}: ends past the file`);
  }
  check(`${label}: ${ts.length} tensors aligned, in the file, not overlapping, whole blocks`, bad.length === 0,
        bad.slice(0, 3).join('; '));

  // Hyperparameters llama.cpp requires.
  const keys = ['context_length', 'embedding_length', 'block_count', 'feed_forward_length',
                'attention.head_count', 'attention.layer_norm_rms_epsilon'].map((k) => `${a}.${k}`);
  const missing = keys.filter((k) => md[k] === undefined);
  check(`${label}: ${a} hyperparameters present`, missing.length === 0, missing.join(', '));

  // Tokenizer.
  const toks = md['tokenizer.ggml.tokens'] || [];
  const model = md['tokenizer.ggml.model'];
  let tokOk = toks.length > 0 && (!md['tokenizer.ggml.token_type'] || md['tokenizer.ggml.token_type'].length === toks.length) &&
              (!md['tokenizer.ggml.scores'] || md['tokenizer.ggml.scores'].length === toks.length);
  if (model === 'gpt2') tokOk = tokOk && Array.isArray(md['tokenizer.ggml.merges']) && md['tokenizer.ggml.merges'].length > 0;
  check(`${label}: tokenizer (${model}, ${toks.length} tokens) arrays consistent`, tokOk);

  // Exactly the tensors llama.cpp creates, with its shapes.
  const names = new Set(r.tensorInfos.map((t) => t.name));
  const { want, optional } = expectedTensors(md, toks.length, names);
  const problems = [];
  for (const [n, shape] of want) {
    const t = r.tensorInfos.find((x) => x.name === n);
    if (!t) { if (!optional.has(n)) problems.push(`missing ${n}`); continue; }
    const got = t.shape.map(Number);
    if (got.length !== shape.length || got.some((v, i) => v !== shape[i])) problems.push(`${n}: [${got}] != [${shape}]`);
  }
  for (const n of names) if (!want.has(n)) problems.push(`unexpected ${n}`);
  check(`${label}: the tensor set and shapes llama.cpp's ${a} loader expects`, problems.length === 0,
        problems.slice(0, 4).join('; '));

  if (apiaryParams !== undefined)
    check(`${label}: parameter count ${r.parameterCount} equals apiary's`, r.parameterCount === apiaryParams,
          `apiary says ${apiaryParams}`);
}

function apiary(...args) {
  return execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
}

async function main() {
  const stories = path.join(shared, 'models', 'stories15M-F32.gguf');
  const bpe = path.join(__dirname, '../../build/bpe_ref');
  const jobs = [];
  // synth: the three shapes (two blocks each, the real widths and vocabulary).
  const shapes = [['smollm2-135m', 'Q4_K_M', 'llama3'], ['qwen2.5-0.5b', 'Q4_0', 'qwen3'], ['llama3.2-1b', 'Q8_0', 'llama3']];
  for (const [shape, type, vocab] of shapes) {
    const out = path.join(work, `${shape}-${type}.gguf`);
    const args = ['model', 'synth', '--shape', shape, '--type', type, '--layers', '2', '-o', out, '--pad-vocab'];
    const vf = path.join(bpe, `${vocab}.gguf`);
    if (fs.existsSync(vf)) args.push('--vocab-from', vf);
    else if (fs.existsSync(stories)) args.push('--vocab-from', path.join(shared, 'models', 'stories15M-Q8_0.gguf'));
    else continue;
    jobs.push([`synth ${shape} ${type}`, out, args]);
  }
  // quantize: a real model into the types users download.
  if (fs.existsSync(stories))
    for (const type of ['Q8_0', 'Q4_0', 'Q5_1', 'Q4_K_M', 'Q5_K_M', 'Q6_K', 'F16', 'BF16'])
      jobs.push([`quantize stories15M ${type}`, path.join(work, `stories15M-${type}.gguf`),
                 ['model', 'quantize', stories, path.join(work, `stories15M-${type}.gguf`), type]]);
  if (jobs.length === 0) {
    console.log('no reference model (shared/) and no vocabulary: nothing to write; skipping');
  }
  for (const [label, out, args] of jobs) {
    try {
      apiary(...args);
    } catch (e) {
      check(`${label}: apiary writes it`, false, String(e.stderr || e).slice(0, 400));
      continue;
    }
    let params;
    try {
      params = JSON.parse(apiary('model', 'inspect', out, '--json')).parameters;
    } catch (e) {
      params = undefined;
    }
    await checkFile(label, out, params);
    fs.rmSync(out, { force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
main().catch((e) => { console.log(String(e.stack || e)); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
