'use strict';
// Once per jest run: is there a Python with PyTorch for the reference tests? Workers read the answer from the
// environment (test/helpers/reference.ts). Missing: one line says why those tests are skipped; under CI=true
// the run fails instead, because CI must prove the comparisons.
const { execFileSync } = require('child_process');

module.exports = async function globalSetup(_config, project) {
  if (process.env.RESNET_TORCH_REFERENCE) return;
  const lanes = project?.displayName?.name ?? '';
  const candidates = [process.env.RESNET_TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean);
  let found = 'none';
  for (const python of candidates) {
    try {
      execFileSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
      found = python;
      break;
    } catch {
      // next
    }
  }
  process.env.RESNET_TORCH_REFERENCE = found;
  if (found !== 'none' || lanes === 'unit') return;
  const reason = 'no python3 with torch (install python3-torch python3-torchvision, or set RESNET_TORCH_PYTHON)';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}: the PyTorch reference tests are required`);
  console.log(`\nPyTorch reference tests skipped: ${reason}\n`);
};
