#!/usr/bin/env node
'use strict';
// Runs the jest lanes (jest.config.js) and ends with the total "N passed, N failed".
//   node scripts/test.js [all|unit|integration|user] [filters...]
// all (npm test): unit and integration in band (each integration file keeps every core busy), then the user
// lane in parallel workers (it proves the library in a user's multi-worker jest suite). unit (npm run
// test:unit): no addon, no Python; run with RESNET_TORCH_ADDON pointing nowhere, so a test that loads the
// addon fails. Filters select test files by path, as `jest <pattern>` does: `npm test -- checkpoints`.
const path = require('path');
const { runCLI } = require('jest');

const root = path.join(__dirname, '..');
const lanes = ['all', 'unit', 'integration', 'user'];
const args = process.argv.slice(2);
const lane = lanes.includes(args[0]) ? args.shift() : 'all';
const filters = args;

const runs = {
  all: [
    { selectProjects: ['unit', 'integration'], runInBand: true },
    { selectProjects: ['user'], maxWorkers: 2 },
  ],
  unit: [{ selectProjects: ['unit'], maxWorkers: 2 }],
  integration: [{ selectProjects: ['integration'], runInBand: true }],
  user: [{ selectProjects: ['user'], maxWorkers: 2 }],
}[lane];

process.env.RESNET_TORCH_JEST_MAIN_PID = String(process.pid);
if (lane === 'unit') process.env.RESNET_TORCH_ADDON = path.join(root, 'no-addon-in-the-unit-lane.node');

(async () => {
  let passed = 0,
    failed = 0,
    skipped = 0,
    ran = 0;
  for (const options of runs) {
    const { results } = await runCLI({ _: filters, $0: 'jest', passWithNoTests: true, ...options }, [root]);
    passed += results.numPassedTests;
    failed += results.numFailedTests + results.numRuntimeErrorTestSuites;
    skipped += results.numPendingTests + results.numTodoTests;
    ran += results.numTotalTestSuites;
  }
  if (ran === 0) {
    console.error(`no test file matches ${filters.join(', ')}`);
    process.exit(1);
  }
  console.log(`\ntotal: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed > 0 ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
