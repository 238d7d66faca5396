#!/usr/bin/env node
'use strict';
// The layering of lib/ and native/, checked: no import cycle among lib/ files (type-only imports count),
// lib/native.ts alone loads the addon, and only native/binding/ includes napi.h. Exit 1 with each problem.
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

const files = walk(path.join(root, 'lib'), '.ts');
const graph = new Map();
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const { importedFiles } = ts.preProcessFile(text, true, true);
  graph.set(file, importedFiles.map((i) => resolveImport(file, i.fileName)).filter(Boolean));
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

for (const file of walk(path.join(root, 'native'), '')) {
  if (!/\.(h|cpp)$/.test(file) || file.includes(`${path.sep}binding${path.sep}`)) continue;
  if (/#include\s*[<"]napi\.h[>"]/.test(fs.readFileSync(file, 'utf8')))
    problems.push(`${path.relative(root, file)} includes napi.h: only native/binding/ may`);
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(
  `imports: ${files.length} lib/ files, no cycle; the addon is loaded by lib/native.ts alone; napi.h only in native/binding/`,
);
