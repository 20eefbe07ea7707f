#!/usr/bin/env node
// Writes the differential-test corpus (tests/tokenizer/data/corpus.jsonl)
// deterministically: a hand-written list of hard cases, systematic NFC probes
// (every combining mark, every canonically decomposable character), and
// strings drawn with a fixed seed from many scripts, whitespace kinds, digits,
// code, emoji, special tokens and random code points of every plane. Also
// some id sequences for decoding (invalid UTF-8 -> U+FFFD).
// The expected ids are NOT stored: the test computes them with the reference.
// Usage: node tests/tokenizer/gen_corpus.js > tests/tokenizer/data/corpus.jsonl
'use strict';

let seed = 0x5eed1234;
function rnd() { // mulberry32
  seed = (seed + 0x6D2B79F5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const rint = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const cp = (c) => String.fromCodePoint(c);
const lines = [];
const text = (s) => { if (!s.includes('\0')) lines.push(JSON.stringify({ text: s })); };

// ---- hand-written hard cases -------------------------------------------
const hard = [
  '', ' ', '  ', '   ', '\t', '\n', '\r', '\r\n', '\n\n\n', '\r\n\r\n', ' \n', '\n ', ' \n ', 'a\r\nb', 'a \r\n b',
  'trailing   ', '   leading', 'both  ', 'x\t\ty', 'x \t y', 'line1\n\n\nline2   \n  ', 'a\n\n\n', 'end\n',
  'a  b', 'a   b', 'a \tb', 'a\t b', '\t\tx', ' \t\n\r\u000b\u000c', 'x\u000by\u000cz',
  '\u00a0', 'a\u00a0b', ' \u00a0 ', '\u00a0a', '\u3000', 'a\u3000b', '日本\u3000語', '\u2028', 'a\u2028b', '\u2029x',
  '\u0085', 'a\u0085b', ' \u0085 ', '\u0085\u0085a', '\ufeff', '\ufeffHello', 'a\ufeffb', ' \ufeff ', '\u200b', 'a\u200bb',
  '\u200d', '\u200c', '\u180e', 'a\u180eb', '\u2000\u2001\u2002\u200a', '\u202f', '\u205f', '\u1680', 'x\u2060y',
  "it's", "IT'S", "It'S", "we'll", "WE'LL", "We'Ll", "I've", "I'VE", "I'vE", "you're", "YOU'RE", "yOu'Re", "I'm", "I'M",
  "he'd", "HE'D", "don't", "DON'T", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "''", "'''s", "'ſ", "it'ſ",
  "IT'ſ", "'ſt", "''s", "'sup", "x'LLy", "x'Re", "'\u212a", "'\ufb06", "'İ", "’s", "it’s", "'s's", " 's", "a 's", "'1",
  "'\u017f\u017f", "O'Neil", "rock'n'roll", "'LL", "'lL", "'Ll", "'D", "'M", "'T", "'RE", "'VE", "'rE", "'Ve", "'e", "'r",
  '1234567890', '3.14159', '1,000,000', '12345678901234567890123456789', '०१२३४५६७८९', '١٢٣٤', '۱۲۳', '½', '²³', 'Ⅻ',
  '𝟘𝟙𝟚', '①②', 'x1y2z3', 'v1.2.3-rc4', '0x1F600', '1e-10', '$100', '100%', '10:30', '2024-01-01T00:00:00Z',
  '9'.repeat(100), '٣٫١٤', '༡༢', '๑๒๓', '一二三', '〇',
  'Hello world', 'Hello, World!', 'HELLO WORLD', 'hello\tworld', 'The quick brown fox jumps over the lazy dog.',
  'Ünïcödé tëxt', 'naïve café résumé', 'Straße', 'ǅemal', 'ﬁne ﬂow', 'Ǆ ǅ ǆ', 'İstanbul ıi', 'ΑΒΓ αβγ ς',
  '中文测试', '日本語のテキスト', 'カタカナ ひらがな', '한국어 텍스트', 'العربية نص', 'עברית', 'हिन्दी पाठ', 'ภาษาไทย',
  'Русский текст', 'Ελληνικά', 'ქართული', 'Հայերեն', 'தமிழ்', 'বাংলা', 'ગુજરાતી', 'ಕನ್ನಡ', 'മലയാളം', 'සිංහල', 'ትግርኛ',
  'བོད་ཡིག', 'ᠮᠣᠩᠭᠣᠯ', 'ភាសាខ្មែរ', 'ພາສາລາວ', 'မြန်မာ', 'ᏣᎳᎩ', 'ᐃᓄᒃᑎᑐᑦ', 'ߒߞߏ', 'ܣܘܪܝܝܐ', 'ދިވެހި',
  'e\u0301', 'E\u0301\u0323', 'e\u0323\u0301', '\u1100\u1161\u11a8', '\u1100\u1161', '\u1100\u1161\u11a8\u11a8',
  '\uac00\u11a8', '\u1100\u1100\u1161', '한\u11a8', '\u0958', '\u212b', '\u2126', '\u212a', '\ufb01', '\u0344', 'a\u0315\u0301',
  'a\u0301\u0315', '\u0f73', '\u1e0b\u0323', 'q\u0307\u0323', '\u00c5', 'A\u030a', '\u05d0\u05b8\u05bc', '\u0340\u0341',
  '\u0374\u037e\u0387', '\uf900\ufa10', '\u2f800', '\u{2f800}', '\u{1d15e}', 'ö\u0308', 'o\u0308\u0304', '\u01d5',
  '\u0627\u0653', '\u0928\u093c', '\u0915\u093c', '\u09c7\u09be', '\u0b47\u0b3e', '\u0bc6\u0bbe', '\u0cc6\u0cd5',
  '\u1025\u102e', '\u1b05\u1b35', 'a\u0300\u0316\u0301\u0317', '\u0301a', '\u0301', ' \u0301', '\n\u0301',
  '\u{11935}\u{11930}', 'a\u1df6\u0301', 'a\u1ac1\u0301', 'a\u0d00', 'a\u{1e4ec}\u0301', 'x\u{11f41}\u0301',
  'a\u{16ff0}', 'a\u{1e08f}\u0301', 'a\u0898\u0301', 'a\u{10efd}\u0301', 'a\u1abf\u0316',
  '👍', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇺🇸🇯🇵', '❤️', '1️⃣', '#️⃣', '🧑🏿‍💻', '😀😃😄', '🫠', '🫨', '🪉', '🫩', 'a👍b', ' 👍 ',
  '👩🏽‍❤️‍💋‍👨🏻', '☺︎', '✌🏿', '🏴󠁧󠁢󠁳󠁣󠁴󠁿',
  '<|endoftext|>', 'a<|endoftext|>b', '<|im_start|>user\nhi<|im_end|>', '<|endoftext|>\u0301', '<|endoftext|>\u0301a',
  '<think>x</think>', '<|endoftext', '<|endoftext|><|endoftext|>', '<<|endoftext|>>', ' <|endoftext|> ',
  '<|EndOfText|>', '<tool_call>{"a":1}</tool_call>', '<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>', '<|im_start|>',
  '\u0301<|im_end|>', 'x <|im_start|>  y', '<|box_start|><|box_end|>', '<|vision_pad|><|image_pad|><|video_pad|>',
  '<tool_response>\n</tool_response>', 'I like café and cafe\u0301.', '\u212b\u00c5A\u030a \u212b', ' <|im_start|>\n',
  '<think>word', 'a <think> b', 'word <think>', '<think>', 'x<think>y', 'x_<think>', '\u0301<think>', 'a\t<|im_end|>\t\nb',
  '</think>  x  </think>', '  <|im_start|>  <|im_start|>', '<|im_end|>  <|im_end|>  ', '\u00a0<|im_start|>\u3000',
  '<tool_call>\u0301', 'e<tool_call>', 'x  </think>\n\n</think>', '<|im_end|><|im_start|>', 'cafe\u0301<think>', '< |endoftext|>', '<|endoftext|>' + 'e\u0301',
  'def f(x):\n    return x * 2\n', 'int main(void) {\n\treturn 0;\n}\n', 'if (a && b || !c) { x += 1; }',
  'const f = async () => { await g(); };', '{"key": [1, 2, 3], "k2": null}', '<div class="a">b</div>',
  'SELECT * FROM t WHERE x = \'y\';', '#include <stdio.h>', '    indented\n        more\n', 'a->b::c', 'x!=y==z',
  'https://example.com/path?q=1&r=2#frag', 'user@example.com', 'C:\\Windows\\System32', '/usr/bin/env', '$HOME',
  '```python\nprint("hi")\n```', '// comment\n/* block */', '    \n    \n', 'a;\r\n\tb;\r\n', '...', '!!!', '?!', '---',
  '***bold***', '__init__', 'snake_case_name', 'camelCaseName', 'PascalCase', 'SCREAMING_CASE', 'kebab-case',
  '😀'.repeat(50), 'a'.repeat(3000), 'ab'.repeat(1500), 'supercalifragilisticexpialidocious'.repeat(40),
  '中'.repeat(1500), ' '.repeat(1000), ' '.repeat(999) + 'x', '\n'.repeat(500), '!'.repeat(1000), '1'.repeat(1000),
  'ก'.repeat(700), 'é'.repeat(500), 'e\u0301'.repeat(300), '\t'.repeat(300) + 'a', ('word ').repeat(500),
  'Pneumonoultramicroscopicsilicovolcanoconiosis', 'Donaudampfschifffahrtsgesellschaftskapitän',
  'x\u00ady', 'soft\u00adhyphen', '\u0000'.slice(1) + 'nul-free', '\u007f', 'a\u0001b', '\u001b[31mred\u001b[0m',
  '\u{10ffff}', '\u{e0001}', '\u{f0000}', '\ufffd', '\uffff', '\u{1fffe}', 'x\u{e0100}y',
];
for (const s of hard) text(s);

// Letters of recent Unicode versions (15, 16, 17) and their marks.
const recent = [
  [0x11f00, 0x11f5f], [0x1e4d0, 0x1e4ff], [0x2ebf0, 0x2ec0f], [0x10d40, 0x10d8f], [0x16d40, 0x16d7f],
  [0x11380, 0x113ff], [0x105c0, 0x105ff], [0x11bc0, 0x11bff], [0x16100, 0x1613f], [0x1e5d0, 0x1e5ff],
  [0x10940, 0x1095f], [0x11db0, 0x11def], [0x16ea0, 0x16edf], [0x323b0, 0x323ff], [0x1e6c0, 0x1e6ff],
  [0xa7c0, 0xa7df], [0x0890, 0x08ff], [0x1df00, 0x1df2f], [0x10ec0, 0x10eff], [0x1ae0, 0x1aff],
];
for (const [lo, hi] of recent) {
  for (let c = lo; c <= hi; c += 16) {
    let s = '';
    for (let k = c; k < Math.min(c + 16, hi + 1); k++) s += (k % 4 === 0 ? ' ' : '') + cp(k);
    text(s);
    text('x' + cp(c) + '\u0301' + cp(c + 1) + ' ' + cp(c + 2) + '1');
  }
}

// ---- systematic NFC probes --------------------------------------------
const marks = [], decomposable = [];
for (let c = 0; c < 0x110000; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  const s = cp(c);
  if (/\p{M}/u.test(s)) marks.push(c);
  if (s.normalize('NFD') !== s && !(c >= 0xac00 && c <= 0xd7a3)) decomposable.push(c);
}
for (const m of marks) {
  text('a' + cp(m) + '\u0301\u0316 ' + cp(m) + 'x');      // reordering against ccc 230 / 220
  text('\u0627' + cp(m) + '\u064b');                      // ccc 27 neighbour
}
for (let i = 0; i < decomposable.length; i += 6) {
  const chunk = decomposable.slice(i, i + 6).map(cp).join('');
  text(chunk + ' ' + chunk.normalize('NFD') + ' ' + chunk.normalize('NFKD').slice(0, 40));
}
for (let i = 0; i < 300; i++) { // Hangul: precomposed, jamo sequences, mixed
  const s = cp(0xac00 + rint(0, 11171));
  text(s + s.normalize('NFD') + cp(0x1100 + rint(0, 18)) + cp(0x1161 + rint(0, 20)) + cp(0x11a8 + rint(0, 26)) + ' ' +
       cp(0x1100 + rint(0, 18)) + cp(0x1161 + rint(0, 20)));
}

// ---- seeded random strings ----------------------------------------------
const words = {
  en: ['the', 'of', 'and', 'to', 'in', 'is', 'The', 'THE', 'was', 'that', 'tokenizer', 'embedding', 'quick', 'brown',
       'Fox', 'isn\'t', 'they\'re', 'I\'LL', 'we\'VE', 'O\'Brien', 'e-mail', 'co-operate', 'naïve', 'Zürich'],
  zh: ['的', '中国', '模型', '向量', '嵌入', '我们', '测试', '数据', '人工智能'],
  ja: ['日本', 'です', 'トークン', 'ひらがな', '東京', 'カタカナ'],
  ko: ['한국', '안녕하세요', '모델', '임베딩', '텍스트'],
  ar: ['مرحبا', 'العالم', 'نموذج', 'كتاب', 'بِسْمِ'],
  hi: ['नमस्ते', 'भारत', 'हिन्दी', 'क़िला', 'ज़िंदगी'],
  th: ['สวัสดี', 'ประเทศไทย', 'ภาษา', 'น้ำ'],
  ru: ['привет', 'мир', 'Москва', 'ЁЛКА', 'съешь'],
  el: ['γειά', 'κόσμος', 'ΕΛΛΑΔΑ', 'ῥῆμα'],
  vi: ['Tiếng', 'Việt', 'người', 'đường', 'Nguyễn'],
  he: ['שלום', 'עולם', 'בְּרֵאשִׁית'],
  misc: ['ქართული', 'Հայերեն', 'தமிழ்', 'বাংলা', 'ትግርኛ', 'བོད་', 'ᠮᠣᠩᠭᠣᠯ', 'ខ្មែរ', 'ᏣᎳᎩ', '𐌰𐌱𐌲', '𓀀𓀁', '𒀀'],
};
const wordPools = Object.values(words);
const seps = [' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\u00a0', '\u3000', '\u2028', '\u0085',
  '\ufeff', ', ', '. ', '; ', ' - ', '\u200b', '', '', "'", "'s ", '’', ' \t ', '\n  ', '    '];
const puncts = ['!', '?', '...', '"', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '#', '@', '$', '%', '^', '&',
  '*', '+', '=', '~', '`', '|', '«', '»', '“', '”', '。', '、', '！', '？', '：', '—', '–', '•', '§', '¶', '©', '°', '€', '£'];
const emoji = ['😀', '👍', '👍🏻', '👍🏿', '👨‍💻', '👩‍👩‍👦', '🏳️‍⚧️', '🇩🇪', '✨', '🔥', '❤️‍🔥', '🙂‍↔️', '🧔🏽‍♂️', '🫶🏼'];
const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<tool_call>', '<|fim_pad|>',
  '<|repo_name|>', '<|file_sep|>', '<|endoftext|', '<|im_', '<|', '|>'];
const code = ['def ', 'return ', 'x = 1', 'for i in range(10):', '    ', '\t', '{', '}', '();', '=>', '!==', '&&', '||',
  '#include', 'std::vector<int>', 'fn main() {}', 'SELECT', '0x7f', '// TODO', '/* */', '"str"', "'c'", '\\n'];
function randomCp(weightBMP) {
  const r = rnd();
  let c;
  if (r < weightBMP) c = rint(0x20, 0xffff);
  else if (r < 0.8) c = rint(0x10000, 0x1ffff);
  else if (r < 0.92) c = rint(0x20000, 0x3ffff);
  else c = rint(0x40000, 0x10ffff);
  if (c >= 0xd800 && c <= 0xdfff) c = 0x41;
  return cp(c);
}
function component() {
  const r = rnd();
  if (r < 0.35) return pick(pick(wordPools));
  if (r < 0.55) return pick(seps);
  if (r < 0.62) return String(rint(0, 10 ** rint(1, 9)));
  if (r < 0.68) return pick(puncts).repeat(rint(1, 3));
  if (r < 0.72) return pick(emoji);
  if (r < 0.76) return pick(specials);
  if (r < 0.82) return pick(code);
  if (r < 0.86) return cp(pick(marks));
  if (r < 0.93) return randomCp(0.6);
  // a word in mixed case
  const w = pick(words.en);
  return [...w].map((ch) => (rnd() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join('');
}
for (let i = 0; i < 3600; i++) {
  const n = rint(1, 30);
  let s = '';
  for (let k = 0; k < n; k++) s += component();
  text(s);
}
// Random code points of every plane (class tables), with spaces and letters around.
for (let i = 0; i < 800; i++) {
  let s = '';
  const n = rint(1, 24);
  for (let k = 0; k < n; k++) {
    s += randomCp(0.5);
    const r = rnd();
    if (r < 0.2) s += ' ';
    else if (r < 0.3) s += 'a';
    else if (r < 0.35) s += '1';
    else if (r < 0.4) s += '\n';
  }
  text(s);
}

// ---- id sequences for decoding ------------------------------------------
const ids = (a) => lines.push(JSON.stringify({ ids: a }));
ids([]);
ids([151643]);
ids([9707, 1879, 151643, 151644, 151645]);
for (let i = 0; i < 400; i++) {
  const n = rint(1, 12);
  const a = [];
  for (let k = 0; k < n; k++) {
    const r = rnd();
    a.push(r < 0.4 ? rint(0, 255) : r < 0.9 ? rint(0, 151642) : rint(151643, 151668));
  }
  ids(a);
}
process.stdout.write(lines.join('\n') + '\n');
