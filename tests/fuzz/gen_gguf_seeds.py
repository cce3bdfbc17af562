#!/usr/bin/env python3
"""Writes small seed GGUF files for fuzz_gguf into tests/fuzz/corpus/fuzz_gguf (or argv[1]).

seed-kinds.bin: one kv of every value type, arrays, three tensors (F32, Q8_0, F16).
seed-vocab.bin: a tiny llama/SPM tokenizer (controls, byte tokens, ▁ pieces) and one tensor.
seed-bpe.bin: a tiny gpt2 byte-level BPE tokenizer (merges, llama-bpe pre-tokenizer), no tensors.
Regenerate with: python3 tests/fuzz/gen_gguf_seeds.py (named .bin: .gitignore drops *.gguf).
"""
import os, struct, sys

def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack('<Q', len(b)) + b

SC = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}

def val(t, v):
    if t == 8: return s(v)
    if t == 9:
        et, items = v
        return struct.pack('<IQ', et, len(items)) + b''.join(val(et, x) for x in items)
    return struct.pack('<' + SC[t], v)

def gguf(kvs, tensors, align=32):
    out = struct.pack('<IIQQ', 0x46554747, 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack('<I', t) + val(t, v)
    off, datas = 0, []
    for name, ne, typ, data in tensors:
        out += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', n) for n in ne)
        out += struct.pack('<IQ', typ, off)
        datas.append((off, data))
        off += len(data)
        off += (-off) % align
    out += b'\0' * ((-len(out)) % align)
    base = len(out)
    for o, d in datas:
        out += b'\0' * (base + o - len(out)) + d
    return out + b'\0' * ((-len(out)) % align)

kinds = gguf(
    [('u8', 0, 7), ('i8', 1, -7), ('u16', 2, 700), ('i16', 3, -700), ('u32', 4, 70000), ('i32', 5, -70000),
     ('f32', 6, 1.5), ('bool', 7, 1), ('str', 8, 'llama'), ('u64', 10, 1 << 40), ('i64', 11, -(1 << 40)),
     ('f64', 12, 2.5), ('arr.i32', 9, (5, [1, -2, 3])), ('arr.str', 9, (8, ['a', '', 'bc'])),
     ('general.alignment', 4, 32)],
    [('t.f32', [8], 0, struct.pack('<8f', *range(8))), ('t.q8', [32, 1], 8, bytes(range(34))),
     ('t.f16', [4, 2], 1, bytes(16))])

toks = ['<unk>', '<s>', '</s>', '<0x0A>', '<0x20>', '<0xE2>', '<0x96>', '<0x81>', '▁', '▁t', 'he', '▁the',
        'h', 'e', 't', 'a', '▁a', '<|eot_id|>', '<user>']
types = [2, 3, 3, 6, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 4]
scores = [0.0] * 8 + [-1.0, -2.0, -3.0, -4.0, -10.0, -11.0, -12.0, -13.0, -5.0, 0.0, 0.0]
vocab = gguf(
    [('general.architecture', 8, 'llama'), ('tokenizer.ggml.model', 8, 'llama'),
     ('tokenizer.ggml.tokens', 9, (8, toks)), ('tokenizer.ggml.scores', 9, (6, scores)),
     ('tokenizer.ggml.token_type', 9, (5, types)), ('tokenizer.ggml.bos_token_id', 4, 1),
     ('tokenizer.ggml.eos_token_id', 4, 2), ('tokenizer.ggml.add_bos_token', 7, 1)],
    [('token_embd.weight', [4, len(toks)], 0, bytes(16 * len(toks)))])

btoks = ['a', 'b', 'c', 'ab', 'abc', '\u0120', '\u0120ab', '\u010a', '1', '2', '12', '<|end|>', '<tool>']
btypes = [1] * 11 + [3, 4]
bpe = gguf(
    [('general.architecture', 8, 'llama'), ('tokenizer.ggml.model', 8, 'gpt2'), ('tokenizer.ggml.pre', 8, 'llama-bpe'),
     ('tokenizer.ggml.tokens', 9, (8, btoks)), ('tokenizer.ggml.token_type', 9, (5, btypes)),
     ('tokenizer.ggml.merges', 9, (8, ['a b', 'ab c', '\u0120 ab', '1 2'])), ('tokenizer.ggml.eos_token_id', 4, 11)],
    [])

d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'fuzz_gguf')
os.makedirs(d, exist_ok=True)
for name, data in (('seed-kinds.bin', kinds), ('seed-vocab.bin', vocab), ('seed-bpe.bin', bpe)):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)
