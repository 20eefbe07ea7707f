#!/usr/bin/env node
// The reference side of the tokenizer benchmark: Hugging Face tokenizers
// (Rust, npm binding), one document at a time, single-threaded (run with
// RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false; each encode is awaited
// before the next starts). Same output format as bench_tokenizer.
//   node ref_bench.js <tokenizer.json> [--reps N] <file>...
'use strict';
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
const path = require('path');
const args = process.argv.slice(2);
let reps = 3;
const ri = args.indexOf('--reps');
if (ri >= 0) { reps = Number(args[ri + 1]); args.splice(ri, 2); }
const [tokFile, ...files] = args;
(async () => {
  let best = Infinity, tok;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    tok = Tokenizer.fromFile(tokFile);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(`reference load_ms=${best.toFixed(1)}`);
  for (const f of files) {
    const buf = fs.readFileSync(f);
    const docs = buf.toString('utf8').split('\x1e');
    let bestS = Infinity, tokens = 0;
    for (let r = 0; r < reps; r++) {
      let n = 0;
      const t0 = process.hrtime.bigint();
      for (const d of docs) n += (await tok.encode(d, null, { addSpecialTokens: true })).getLength();
      bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9);
      tokens = n;
    }
    console.log(`reference file=${path.basename(f)} bytes=${buf.length} tokens=${tokens} seconds=${bestS.toFixed(4)} ` +
      `MB/s=${(buf.length / bestS / 1e6).toFixed(2)} tokens/s=${(tokens / bestS).toFixed(0)}`);
  }
})();
