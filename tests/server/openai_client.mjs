// server.openai: the official `openai` npm client (v4) against a running
// `qembed serve`; vectors must equal `qembed embed`'s for the same texts.
// Usage: node openai_client.mjs NODE_MODULES_DIR BASE_URL API_KEY REF_DIR
//   REF_DIR/texts.json        the texts (JSON array of strings)
//   REF_DIR/ref.json          `qembed embed -f json` of those texts
//   REF_DIR/ref_instr.json    `qembed embed --instruct TASK -f json` of those texts
//   REF_DIR/task.txt          TASK
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const [nodeModules, baseURL, apiKey, refDir] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), 'x.js'));
const OpenAIMod = require('openai');
const OpenAI = OpenAIMod.OpenAI || OpenAIMod.default || OpenAIMod;

const texts = JSON.parse(readFileSync(path.join(refDir, 'texts.json'), 'utf8'));
const ref = JSON.parse(readFileSync(path.join(refDir, 'ref.json'), 'utf8'));
const refInstr = JSON.parse(readFileSync(path.join(refDir, 'ref_instr.json'), 'utf8'));
const task = readFileSync(path.join(refDir, 'task.txt'), 'utf8');
if (ref.length !== texts.length || refInstr.length !== texts.length) throw new Error('reference row count');

let failures = 0;
const fail = (m) => { console.error('FAIL: ' + m); failures++; };
const ok = (m) => console.log('ok: ' + m);

function cosine(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
}
function decodeB64(s) {
  const buf = Buffer.from(s, 'base64');
  const out = new Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}
function sliceNorm(v, d) {
  const s = v.slice(0, d);
  const n = Math.sqrt(s.reduce((a, x) => a + x * x, 0));
  return s.map((x) => x / n);
}
// Every row of `data` must match `want` (cosine >= 0.99999, same length), in index order.
function check(what, data, want, decode = (x) => x) {
  if (data.length !== want.length) return fail(`${what}: ${data.length} rows, want ${want.length}`);
  let worst = 1;
  for (let i = 0; i < data.length; i++) {
    if (data[i].index !== i) return fail(`${what}: row ${i} has index ${data[i].index}`);
    const v = decode(data[i].embedding);
    if (v.length !== want[i].length) return fail(`${what}: row ${i} has ${v.length} dims, want ${want[i].length}`);
    worst = Math.min(worst, cosine(v, want[i]));
  }
  if (worst >= 0.99999) ok(`${what}: ${data.length} rows, min cosine ${worst.toFixed(7)}`);
  else fail(`${what}: min cosine ${worst} < 0.99999`);
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const model = 'qwen3-tiny-synth';

// 1. float, all texts in one request
let r = await client.embeddings.create({ model, input: texts, encoding_format: 'float' });
check('float batch', r.data, ref);
if (r.object !== 'list' || r.model !== model) fail(`response object/model: ${r.object} ${r.model}`);
if (!(r.usage && r.usage.prompt_tokens > texts.length && r.usage.total_tokens === r.usage.prompt_tokens))
  fail('usage: ' + JSON.stringify(r.usage));
else ok('usage ' + JSON.stringify(r.usage));

// 2. base64 asked explicitly: the client hands back the string
r = await client.embeddings.create({ model, input: texts, encoding_format: 'base64' });
if (typeof r.data[0].embedding !== 'string') fail('base64: embedding is not a string');
else check('base64 batch', r.data, ref, decodeB64);

// 3. no encoding_format: this client asks for base64 and decodes it itself
r = await client.embeddings.create({ model, input: texts });
check('default (client-decoded base64)', r.data, ref);

// 4. a single string
r = await client.embeddings.create({ model, input: texts[1], encoding_format: 'float' });
check('single string', r.data, [ref[1]]);

// 5. concurrent requests, one text each, sent together: they are batched by
// the server and each answer must be its own text's vector.
const N = 32;
const jobs = [];
for (let i = 0; i < N; i++) {
  const k = i % texts.length;
  jobs.push(client.embeddings.create({ model, input: [texts[k], texts[(k + 1) % texts.length]], encoding_format: i % 2 ? 'base64' : 'float' })
    .then((res) => ({ i, k, res })));
}
let bad = 0;
for (const { i, k, res } of await Promise.all(jobs)) {
  const dec = i % 2 ? decodeB64 : (x) => x;
  const c0 = cosine(dec(res.data[0].embedding), ref[k]);
  const c1 = cosine(dec(res.data[1].embedding), ref[(k + 1) % texts.length]);
  if (!(c0 >= 0.99999 && c1 >= 0.99999)) { bad++; fail(`concurrent request ${i}: cosines ${c0} ${c1}`); }
}
if (!bad) ok(`${N} concurrent requests each got their own vectors`);

// 6. dimensions (Matryoshka): first 32 values, re-normalised
r = await client.embeddings.create({ model, input: texts, dimensions: 32, encoding_format: 'float' });
check('dimensions 32', r.data, ref.map((v) => sliceNorm(v, 32)));

// 7. an instruction (an extra body field) equals `qembed embed --instruct`
r = await client.embeddings.create({ model, input: texts, encoding_format: 'float', instruction: task });
check('instruction', r.data, refInstr);

// 8. token ids: the ids from /tokenize give the same vectors as the texts
const tokRes = await fetch(baseURL.replace(/\/v1$/, '') + '/tokenize', {
  method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + apiKey },
  body: JSON.stringify({ inputs: texts }),
});
const toks = (await tokRes.json()).map((row) => row.map((t) => t.id));
r = await client.embeddings.create({ model, input: toks, encoding_format: 'float' });
check('token-id arrays', r.data, ref);
r = await client.embeddings.create({ model, input: toks[0], encoding_format: 'float' });
check('one token-id array', r.data, [ref[0]]);

// 9. errors surface as the client's typed errors
try {
  await new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).embeddings.create({ model, input: 'x' });
  fail('wrong API key accepted');
} catch (e) {
  if (e.status === 401 && e.code === 'invalid_api_key') ok('wrong API key -> 401 AuthenticationError');
  else fail(`wrong API key: ${e.status} ${e.code} ${e.message}`);
}
try {
  await client.embeddings.create({ model, input: [] });
  fail('empty input accepted');
} catch (e) {
  if (e.status === 400 && e.param === 'input') ok('empty array -> 400 BadRequestError param=input');
  else fail(`empty input: ${e.status} ${e.param} ${e.message}`);
}
const models = await client.models.list();
if (models.data.length === 1 && models.data[0].id === model) ok('models.list');
else fail('models.list: ' + JSON.stringify(models.data));

if (failures) { console.error(`${failures} failure(s)`); process.exit(1); }
console.log('all checks passed');
