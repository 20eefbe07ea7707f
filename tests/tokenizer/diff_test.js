#!/usr/bin/env node
// Differential test: qembed's tokenizer against the reference, Hugging Face
// tokenizers (Rust, through its npm binding), on every line of the corpus.
// The reference ids are computed here, at test time, never stored.
//
//   node diff_test.js <tok_dump> <corpus.jsonl> <tokenizer.json>...
//
// For each tokenizer file it compares:
//   1. ids with add_special_tokens (the post-processor), and the decoding of
//      those ids with and without skip_special_tokens;
//   2. ids without add_special_tokens;
//   3. ids with parse_special = 0 against the reference given the same file
//      minus its special added tokens (what encode_special_tokens means);
//   4. decoding of the corpus's raw id sequences (invalid UTF-8 -> U+FFFD).
// With --variant, each file is replaced by a variant written to a
// temporary file: added tokens with lstrip, rstrip, single_word and
// normalized set, and two new normalized added tokens (so every added-token
// rule of the reference is exercised, which the Qwen files alone do not),
// and truncation to 48 ids from the left.
// Exits 1 on any mismatch, printing the first ones in full.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

let tokenizers;
try {
  tokenizers = require('tokenizers');
} catch (e) {
  console.error('FAIL: the reference library is missing (npm ci in tests/node; scripts/deps.sh does it): ' + e.message);
  process.exit(1);
}
const { Tokenizer } = tokenizers;

const args = process.argv.slice(2);
const variant = args.includes('--variant');
const [dump, corpusFile, ...tokFiles] = args.filter((a) => a !== '--variant');
if (!dump || !corpusFile || tokFiles.length === 0) {
  console.error('usage: diff_test.js tok_dump corpus.jsonl tokenizer.json...');
  process.exit(2);
}
const corpus = fs.readFileSync(corpusFile, 'utf8').split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
const texts = corpus.filter((c) => 'text' in c).map((c) => c.text);
const idSeqs = corpus.filter((c) => 'ids' in c).map((c) => c.ids);

function runDump(file, extra) {
  const out = execFileSync(dump, [file, corpusFile, ...extra], { maxBuffer: 1 << 30, encoding: 'utf8' });
  const res = out.split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
  if (res.length !== corpus.length) throw new Error(`tok_dump gave ${res.length} lines for ${corpus.length}`);
  return res;
}

async function refEncode(tok, add) {
  const out = [];
  for (let i = 0; i < texts.length; i += 500) {
    const encs = await tok.encodeBatch(texts.slice(i, i + 500), { addSpecialTokens: add });
    for (const e of encs) out.push(Array.from(e.getIds()));
  }
  return out;
}

const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const show = (s) => JSON.stringify(s).slice(0, 300);
let failures = 0;
const kinds = {};
function report(what, i, text, ours, ref) {
  failures++;
  kinds[what] = (kinds[what] || 0) + 1;
  if (failures > 25) return;
  let d = 0;
  if (Array.isArray(ours) && Array.isArray(ref)) while (d < ours.length && d < ref.length && ours[d] === ref[d]) d++;
  console.log(`MISMATCH [${what}] #${i} text=${show(text)}\n  ours=${show(ours)}\n  ref =${show(ref)}` +
    (Array.isArray(ours) ? `\n  first difference at index ${d}` : ''));
}

// The reference's encode_special_tokens is not exposed by the binding: give
// it the same file with the special tokens renamed to strings that never
// occur (removing them would renumber the other added tokens).
function withoutSpecials(file) {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const t of j.added_tokens) if (t.special) t.content = '\u0001qembed-test-renamed-' + t.id + '\u0001';
  return Tokenizer.fromString(JSON.stringify(j));
}
const unhex = (h) => Buffer.from(h, 'hex').toString('utf8');
async function refDecode(tok, seqs, skip) {
  const out = [];
  for (let i = 0; i < seqs.length; i += 500) out.push(...(await tok.decodeBatch(seqs.slice(i, i + 500), skip)));
  return out;
}

function writeVariant(file) {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  const set = (content, flags) => Object.assign(j.added_tokens.find((t) => t.content === content), flags);
  set('<|im_start|>', { lstrip: true });
  set('<|im_end|>', { rstrip: true });
  set('<think>', { single_word: true });
  set('</think>', { lstrip: true, rstrip: true });
  set('<tool_call>', { normalized: true });
  set('<|fim_pad|>', { normalized: true });
  const next = Math.max(...j.added_tokens.map((t) => t.id)) + 1;
  const tok = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
  j.added_tokens.push(tok(next, 'cafe\u0301'), tok(next + 1, '\u212b'));
  j.truncation = { direction: 'Left', max_length: 48, strategy: 'LongestFirst', stride: 0 };
  const out = path.join(os.tmpdir(), `qembed-tok-variant-${process.pid}.json`);
  fs.writeFileSync(out, JSON.stringify(j));
  return out;
}

(async () => {
  const files = [];
  for (const file0 of tokFiles) {
    const file = fs.existsSync(file0) && fs.statSync(file0).isDirectory() ? path.join(file0, 'tokenizer.json') : file0;
    if (!fs.existsSync(file)) {
      console.error('FAIL: missing tokenizer file ' + file);
      process.exit(1);
    }
    files.push(variant ? writeVariant(file) : file);
  }
  for (const file of files) {
    const ref = Tokenizer.fromFile(file);
    const before = failures;

    // 1 + 4: default options, and decoding
    const ours = runDump(file, []);
    const ourText = ours.filter((_, i) => 'text' in corpus[i]);
    const ourIds = ours.filter((_, i) => 'ids' in corpus[i]);
    const refIds = await refEncode(ref, true);
    const refDec0 = await refDecode(ref, refIds, false), refDec1 = await refDecode(ref, refIds, true);
    let n = 0;
    for (let i = 0; i < texts.length; i++) {
      const o = ourText[i];
      n++;
      if (!o.ids || !eq(o.ids, refIds[i])) { report('ids', i, texts[i], o.ids || o, refIds[i]); continue; }
      if (unhex(o.dec) !== refDec0[i]) report('decode', i, texts[i], unhex(o.dec), refDec0[i]);
      if (unhex(o.dec_skip) !== refDec1[i]) report('decode skip_special', i, texts[i], unhex(o.dec_skip), refDec1[i]);
    }
    const seqDec0 = await refDecode(ref, idSeqs, false), seqDec1 = await refDecode(ref, idSeqs, true);
    for (let i = 0; i < idSeqs.length; i++) {
      if (unhex(ourIds[i].dec) !== seqDec0[i]) report('decode ids', i, idSeqs[i], unhex(ourIds[i].dec), seqDec0[i]);
      if (unhex(ourIds[i].dec_skip) !== seqDec1[i]) report('decode ids skip_special', i, idSeqs[i], unhex(ourIds[i].dec_skip), seqDec1[i]);
    }
    // 2: without the post-processor
    const oursNoAdd = runDump(file, ['--no-add-special']).filter((_, i) => 'text' in corpus[i]);
    const refNoAdd = await refEncode(ref, false);
    for (let i = 0; i < texts.length; i++)
      if (!oursNoAdd[i].ids || !eq(oursNoAdd[i].ids, refNoAdd[i])) report('ids no-add-special', i, texts[i], oursNoAdd[i].ids || oursNoAdd[i], refNoAdd[i]);
    // 3: special tokens as plain text
    const oursPlain = runDump(file, ['--no-parse-special']).filter((_, i) => 'text' in corpus[i]);
    const refPlain = await refEncode(withoutSpecials(file), true);
    for (let i = 0; i < texts.length; i++)
      if (!oursPlain[i].ids || !eq(oursPlain[i].ids, refPlain[i])) report('ids parse_special=0', i, texts[i], oursPlain[i].ids || oursPlain[i], refPlain[i]);

    if (file.includes('qembed-tok-variant-')) fs.unlinkSync(file);
    console.log(`${file}: ${n} texts x 3 option sets + ${idSeqs.length} id sequences decoded: ` +
      `${failures - before} mismatches`);
  }
  if (failures) {
    console.log('mismatches by kind: ' + JSON.stringify(kinds));
    console.log(`FAIL: ${failures} mismatches`);
    process.exit(1);
  }
  console.log('PASS');
})().catch((e) => { console.error('FAIL: ' + (e.stack || e)); process.exit(1); });
