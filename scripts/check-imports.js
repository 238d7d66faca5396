#!/usr/bin/env node
'use strict';
// The layering of lib/ and native/, checked: imports point down the layers of docs/ARCHITECTURE.md (LAYERS below;
// a layer's groups do not import each other), no import cycle among lib/ files (type-only imports count),
// lib/native.ts alone loads the addon; in native/, includes point down NATIVE_LAYERS and only native/binding/
// includes napi.h. Exit 1 with each problem.
//   node scripts/check-imports.js
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

const root = path.join(__dirname, '..');
const problems = [];

function walk(dir, ext) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}

function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
}

// lib/'s layers, top down: a file imports its own group and the layers below. Groups are folders or files of lib/.
const LAYERS = [
  ['index.ts'],
  ['cli'],
  ['runs'],
  ['config'],
  ['train', 'serve'],
  ['model'],
  ['inference'],
  ['datasets', 'plot', 'predictions.ts', 'cuda.ts'],
  ['io', 'images.ts'],
  ['preprocess.ts', 'info.ts', 'eval-metrics.ts'],
  ['tensor.ts'],
  ['native.ts'],
  ['validate.ts'],
  ['errors.ts', 'paths.ts', 'random.ts', 'metric-names.ts'],
];
const groupOf = (file) => path.relative(path.join(root, 'lib'), file).split(path.sep)[0];
const layerOf = (group) => LAYERS.findIndex((l) => l.includes(group));

const files = walk(path.join(root, 'lib'), '.ts');
for (const file of files)
  if (layerOf(groupOf(file)) < 0)
    problems.push(`${path.relative(root, file)}: in no layer of scripts/check-imports.js`);
const graph = new Map();
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const { importedFiles } = ts.preProcessFile(text, true, true);
  graph.set(file, importedFiles.map((i) => resolveImport(file, i.fileName)).filter(Boolean));
  for (const target of graph.get(file)) {
    const [from, to] = [groupOf(file), groupOf(target)];
    if (from === to) continue;
    const [lf, lt] = [layerOf(from), layerOf(to)];
    if (lt <= lf)
      problems.push(
        `${path.relative(root, file)} imports ${path.relative(root, target)}: ${lt === lf ? 'a peer' : 'a layer above'} (${from} -> ${to})`,
      );
  }
  if (/require\([^)]*\.node['"]?\)|process\.dlopen/.test(text) && !file.endsWith(path.join('lib', 'native.ts')))
    problems.push(`${path.relative(root, file)} loads the addon: only lib/native.ts may`);
}

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0;
const stack = [],
  on = new Set(),
  idx = new Map(),
  low = new Map();
function strong(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  on.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      component.push(path.relative(root, w));
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v))
      problems.push(`import cycle: ${component.sort().join(' <-> ')}`);
  }
}
for (const f of files) if (!idx.has(f)) strong(f);

// native/'s layers, top down, as lib/'s: a folder includes its own headers and those of the layers below.
const NATIVE_LAYERS = [
  ['binding'],
  ['train'],
  ['distributed', 'infer'],
  ['data', 'io'],
  ['models'],
  ['device'],
  ['common', 'compat'],
];
const nativeLayer = (folder) => NATIVE_LAYERS.findIndex((l) => l.includes(folder));
for (const file of walk(path.join(root, 'native'), '')) {
  if (!/\.(h|cpp)$/.test(file)) continue;
  const text = fs.readFileSync(file, 'utf8');
  const folder = path.relative(path.join(root, 'native'), file).split(path.sep)[0];
  if (folder !== 'binding' && /#include\s*[<"]napi\.h[>"]/.test(text))
    problems.push(`${path.relative(root, file)} includes napi.h: only native/binding/ may`);
  if (nativeLayer(folder) < 0) problems.push(`${path.relative(root, file)}: in no layer of scripts/check-imports.js`);
  for (const [, header] of text.matchAll(/#include\s*"([^"]+)"/g)) {
    const to = header.split('/')[0];
    if (!header.includes('/') || to === folder || nativeLayer(to) < 0) continue;
    if (nativeLayer(to) <= nativeLayer(folder))
      problems.push(
        `${path.relative(root, file)} includes ${header}: ${nativeLayer(to) === nativeLayer(folder) ? 'a peer' : 'a layer above'}`,
      );
  }
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(
  `imports: ${files.length} lib/ files, down the layers, no cycle; the addon is loaded by lib/native.ts alone; ` +
    'native/ includes down its layers, napi.h only in native/binding/',
);
