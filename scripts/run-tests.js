#!/usr/bin/env node
'use strict';
// Compiles the tests (TypeScript) and runs them with Node's test runner, one file at a time (each file
// already keeps both cores busy). Arguments filter the files: `npm test -- models training`.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', 'tsconfig.test.json'],
  { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status || 1);
const dir = path.join(root, '.test-build', 'test');
const filters = process.argv.slice(2);
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort().map((f) => path.join(dir, f));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(', ')}`);
  process.exit(1);
}
const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
