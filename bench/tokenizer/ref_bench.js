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
  // CPU time is the whole node process (the Rust work runs on a libuv
  // worker thread, the JS loop on the main thread).
  const cpuS = (u) => (u.user + u.system) / 1e6;
  let best = Infinity, bestCpu = Infinity, tok;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    tok = Tokenizer.fromFile(tokFile);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    bestCpu = Math.min(bestCpu, cpuS(process.cpuUsage(c0)) * 1e3);
  }
  console.log(`reference load_ms=${best.toFixed(1)} load_cpu_ms=${bestCpu.toFixed(1)}`);
  for (const f of files) {
    const buf = fs.readFileSync(f);
    const docs = buf.toString('utf8').split('\x1e');
    let bestS = Infinity, bestC = Infinity, tokens = 0;
    for (let r = 0; r < reps; r++) {
      let n = 0;
      const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
      for (const d of docs) n += (await tok.encode(d, null, { addSpecialTokens: true })).getLength();
      bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9);
      bestC = Math.min(bestC, cpuS(process.cpuUsage(c0)));
      tokens = n;
    }
    report('reference', f, buf.length, tokens, bestS, bestC);
    // The same through one encodeBatch call (RAYON_NUM_THREADS=1 keeps it on
    // one thread): no per-document crossing between JS and Rust, so this is
    // closer to the Rust library's own speed.
    bestS = Infinity;
    bestC = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
      const encs = await tok.encodeBatch(docs, { addSpecialTokens: true });
      bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9);
      bestC = Math.min(bestC, cpuS(process.cpuUsage(c0)));
      tokens = encs.reduce((a, e) => a + e.getLength(), 0);
    }
    report('reference-batch', f, buf.length, tokens, bestS, bestC);
  }
})();
function report(who, f, bytes, tokens, bestS, bestC) {
    console.log(`${who} file=${path.basename(f)} bytes=${bytes} tokens=${tokens} seconds=${bestS.toFixed(4)} ` +
      `MB/s=${(bytes / bestS / 1e6).toFixed(2)} tokens/s=${(tokens / bestS).toFixed(0)} ` +
      `cpu_seconds=${bestC.toFixed(4)} cpu_MB/s=${(bytes / bestC / 1e6).toFixed(2)} ` +
      `cpu_tokens/s=${(tokens / bestC).toFixed(0)}`);
}
