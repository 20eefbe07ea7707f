#!/usr/bin/env node
// Writes the tokenizer benchmark corpus, deterministically (fixed seed, no
// downloads): <dir>/english.txt (prose), <dir>/multilingual.txt,
// <dir>/code.txt; about 11 MB in all. Documents (2-8 KB) are separated by
// the byte 0x1E, which the generator never produces otherwise.
// Usage: node gen_bench_corpus.js <dir>
'use strict';
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
if (!dir) { console.error('usage: gen_bench_corpus.js dir'); process.exit(2); }
fs.mkdirSync(dir, { recursive: true });

let seed = 0xbe7c4;
function rnd() {
  seed = (seed + 0x6D2B79F5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const zipf = (a) => a[Math.min(a.length - 1, Math.floor(a.length * Math.pow(rnd(), 2.2)))];
const rint = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

const common = ('the of and to a in is it you that he was for on are with as I his they be at one have this from or ' +
  'had by hot word but what some we can out other were all there when up use your how said an each she which do ' +
  'their time if will way about many then them write would like so these her long make thing see him two has look ' +
  'more day could go come did number sound no most people my over know water than call first who may down side been ' +
  'now find any new work part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line differ turn cause much ' +
  'mean before move right boy old too same tell does set three want air well also play small end put home read hand ' +
  'port large spell add even land here must big high such follow act why ask men change went light kind off need ' +
  'house picture try us again animal point mother world near build self earth father head stand own page should ' +
  'country found answer school grow study still learn plant cover food sun four between state keep eye never last ' +
  'let thought city tree cross farm hard start might story saw far sea draw left late run while press close night ' +
  'real life few north open seem together next white children begin got walk example ease paper group always music ' +
  'those both mark often letter until mile river car feet care second book carry took science eat room friend began ' +
  'idea fish mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual young ' +
  'ready above ever red list though feel talk bird soon body dog family direct pose leave song measure door product ' +
  'black short numeral class wind question happen complete ship area half rock order fire south problem piece told ' +
  'knew pass since top whole king space heard best hour better true during hundred five remember step early hold ' +
  'west ground interest reach fast verb sing listen six table travel less morning ten simple several vowel toward ' +
  'war lay against pattern slow center love person money serve appear road map rain rule govern pull cold notice ' +
  'voice unit power town fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest ' +
  'correct able pound done beauty drive stood contain front teach week final gave green oh quick develop ocean warm ' +
  'free minute strong special mind behind clear tail produce fact street inch multiply nothing course stay wheel ' +
  'full force blue object decide surface deep moon island foot system busy test record boat common gold possible ' +
  'plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes ' +
  'distant fill east paint language among embedding tokenizer representation retrieval semantic benchmark throughput ' +
  'latency architecture transformer attention vector dimension normalization inference quantization').split(' ');
const names = ['Alice', 'Bob', 'London', 'Paris', 'Microsoft', 'Einstein', 'Shakespeare', 'Amazon', 'Tokyo', 'NASA',
  'Wikipedia', 'Monday', 'January', 'Europe', 'Python', 'Linux', 'Google', 'Mary', 'John', 'Mississippi'];
const contr = ["don't", "it's", "I'm", "we'll", "they're", "can't", "won't", "he'd", "you've", "isn't", "that's"];

function sentence() {
  const n = rint(6, 24);
  const w = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.05) w.push(pick(names));
    else if (r < 0.08) w.push(pick(contr));
    else if (r < 0.10) w.push(String(rint(1, 2025)));
    else w.push(zipf(common));
    if (rnd() < 0.07 && i < n - 1) w[w.length - 1] += pick([',', ',', ';', ':']);
  }
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  if (rnd() < 0.05) w.splice(rint(1, w.length - 1), 0, '"' + zipf(common) + '"');
  if (rnd() < 0.04) w.splice(rint(1, w.length - 1), 0, '(' + zipf(common) + ' ' + zipf(common) + ')');
  return w.join(' ') + pick(['.', '.', '.', '.', '?', '!']);
}
function english() {
  let s = '';
  const paras = rint(2, 8);
  for (let p = 0; p < paras; p++) {
    const k = rint(2, 7);
    const ss = [];
    for (let i = 0; i < k; i++) ss.push(sentence());
    s += ss.join(' ') + '\n\n';
  }
  return s;
}

const ml = {
  zh: '我们 的 模型 可以 生成 高质量 的 文本 向量 这 是 一个 测试 人工智能 正在 改变 世界 数据 研究 方法 系统 中国 北京 上海 学习 语言'.split(' '),
  ja: '私 は 日本語 の テキスト を 書きます 東京 大学 研究 データ モデル 言語 これ は テスト です とても 便利 です'.split(' '),
  ko: '안녕하세요 한국어 텍스트 모델 임베딩 연구 데이터 서울 대학교 학습 언어 시스템 우리는 이것은 테스트입니다'.split(' '),
  ar: 'مرحبا بالعالم هذا نص عربي للاختبار النموذج اللغوي البيانات البحث الجامعة التعلم الآلي الذكاء الاصطناعي'.split(' '),
  ru: 'Привет мир это русский текст для проверки модели языка данные исследование университет обучение система'.split(' '),
  hi: 'नमस्ते दुनिया यह हिन्दी पाठ है भाषा मॉडल डेटा अनुसंधान विश्वविद्यालय सीखना प्रणाली कृत्रिम बुद्धिमत्ता'.split(' '),
  de: 'Hallo Welt dies ist ein deutscher Text für die Prüfung des Sprachmodells Daten Forschung Universität Größe Straße'.split(' '),
  fr: 'Bonjour le monde ceci est un texte français pour tester le modèle de langue données recherche université été'.split(' '),
  es: 'Hola mundo este es un texto en español para probar el modelo de lenguaje datos investigación año niño'.split(' '),
  th: 'สวัสดี ชาวโลก นี่คือ ข้อความ ภาษาไทย สำหรับ ทดสอบ แบบจำลอง ภาษา ข้อมูล การวิจัย'.split(' '),
  vi: 'Xin chào thế giới đây là văn bản tiếng Việt để kiểm tra mô hình ngôn ngữ dữ liệu nghiên cứu'.split(' '),
  el: 'Γειά σου κόσμε αυτό είναι ελληνικό κείμενο για δοκιμή του γλωσσικού μοντέλου δεδομένα έρευνα'.split(' '),
};
const noSpace = new Set(['zh', 'ja', 'th']);
function multilingual() {
  const lang = pick(Object.keys(ml));
  let s = '';
  const k = rint(10, 40);
  for (let i = 0; i < k; i++) {
    const n = rint(5, 18);
    const w = [];
    for (let j = 0; j < n; j++) w.push(pick(ml[lang]));
    s += w.join(noSpace.has(lang) ? '' : ' ') + (noSpace.has(lang) && lang !== 'th' ? '。' : '. ');
    if (rnd() < 0.15) s += '\n';
  }
  return s + '\n';
}

const idents = ['value', 'count', 'index', 'buffer', 'result', 'config', 'node', 'list', 'data', 'size', 'len', 'ptr',
  'tokenizer', 'embedding', 'matrix', 'ctx', 'err', 'status', 'item', 'key', 'tmp', 'out', 'in', 'offset'];
const id = () => pick(idents) + (rnd() < 0.3 ? '_' + pick(idents) : '') + (rnd() < 0.2 ? String(rint(0, 9)) : '');
function code() {
  const lang = rint(0, 2);
  let s = '';
  const fns = rint(2, 6);
  for (let f = 0; f < fns; f++) {
    if (lang === 0) {
      s += `static int ${id()}(const struct ${id()} *${id()}, size_t ${id()}) {\n`;
      for (let i = 0; i < rint(3, 12); i++) {
        const r = rnd();
        if (r < 0.3) s += `    if (${id()} >= ${rint(0, 4096)} && ${id()} != NULL) {\n        return -${rint(1, 9)};\n    }\n`;
        else if (r < 0.6) s += `    for (size_t i = 0; i < ${id()}; i++) ${id()}[i] += ${id()}[i] * ${rint(2, 7)};\n`;
        else if (r < 0.8) s += `    /* ${sentence()} */\n`;
        else s += `    ${id()} = ${id()}(${id()}, "${zipf(common)} %d\\n", ${rint(0, 99)});\n`;
      }
      s += '    return 0;\n}\n\n';
    } else if (lang === 1) {
      s += `def ${id()}(${id()}, ${id()}=None):\n    """${sentence()}"""\n`;
      for (let i = 0; i < rint(3, 12); i++) {
        const r = rnd();
        if (r < 0.3) s += `    if ${id()} is not None and ${id()} > ${rint(0, 100)}:\n        ${id()}.append(${id()})\n`;
        else if (r < 0.6) s += `    for ${id()} in range(${rint(1, 64)}):\n        ${id()} += ${id()}[${id()}] ** 2\n`;
        else if (r < 0.8) s += `    # ${sentence()}\n`;
        else s += `    ${id()} = {"${id()}": ${rint(0, 999)}, "${id()}": [${rint(0, 9)}, ${rint(0, 9)}]}\n`;
      }
      s += `    return ${id()}\n\n\n`;
    } else {
      s += `export async function ${id()}(${id()}, ${id()}) {\n`;
      for (let i = 0; i < rint(3, 12); i++) {
        const r = rnd();
        if (r < 0.3) s += `  const ${id()} = await ${id()}.${id()}(\`${zipf(common)} \${${id()}}\`);\n`;
        else if (r < 0.6) s += `  if (!${id()} || ${id()}.length === ${rint(0, 9)}) throw new Error('${sentence()}');\n`;
        else if (r < 0.8) s += `  // ${sentence()}\n`;
        else s += `  ${id()}.forEach((x) => { ${id()}[x.${id()}] = x; });\n`;
      }
      s += '  return null;\n}\n\n';
    }
  }
  return s;
}

function write(name, gen, bytes) {
  const docs = [];
  let total = 0;
  while (total < bytes) {
    let d = '';
    const target = rint(2000, 8000);
    while (Buffer.byteLength(d) < target) d += gen();
    docs.push(d);
    total += Buffer.byteLength(d) + 1;
  }
  fs.writeFileSync(path.join(dir, name), docs.join('\x1e'));
  console.log(`${name}: ${docs.length} documents, ${(total / 1e6).toFixed(2)} MB`);
}
write('english.txt', english, 6e6);
write('multilingual.txt', multilingual, 3e6);
write('code.txt', code, 2e6);
