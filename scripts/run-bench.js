#!/usr/bin/env node
'use strict';
// npm run bench [-- NAME [args]]: compiles the benchmarks and runs one (or, with no name, the CPU set).
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const BENCHES = [
  'train-vs-pytorch',
  'train-profile',
  'infer-vs-pytorch',
  'fmnist-epoch',
  'event-loop-lag',
  'image-folder-stream',
  'ddp-scaling',
  'ddp-model',
  'infer-engines',
  'serve-load',
];
// By name only: libtorch-lanes needs both builds of the addon (Debian's 1.13 and build/torch-2.15,
// scripts/test-torch2.15.sh); infer-int8 the venv's onnxruntime (scripts/torch-venv.sh) to quantize the reference.
const ON_REQUEST = ['libtorch-lanes', 'infer-int8'];
const tsc = spawnSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.bench.json'],
  { cwd: root, stdio: 'inherit' },
);
if (tsc.status !== 0) process.exit(tsc.status || 1);
const [name, ...args] = process.argv.slice(2);
if (name && !BENCHES.includes(name) && !ON_REQUEST.includes(name)) {
  console.error(`unknown benchmark ${name}; one of ${[...BENCHES, ...ON_REQUEST].join(', ')}`);
  process.exit(2);
}
for (const bench of name ? [name] : BENCHES) {
  const run = spawnSync(process.execPath, [path.join(root, '.test-build', 'bench', `${bench}.js`), ...args], {
    cwd: root,
    stdio: 'inherit',
  });
  if (run.status !== 0) process.exit(run.status || 1);
}
