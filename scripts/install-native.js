#!/usr/bin/env node
'use strict';
// npm's install step: builds the addon with cmake-js (incremental: a second run only re-links what changed).
// Set RESNET_TORCH_SKIP_BUILD=1 to skip (e.g. when the addon is provided through RESNET_TORCH_ADDON).
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

if (process.env.RESNET_TORCH_SKIP_BUILD === '1') process.exit(0);
const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
// Configured: the generator's file is there. A configure that failed (no libtorch yet) leaves CMakeCache.txt but
// no build.ninja, and `build` would then fail on the missing file after the user installed libtorch.
const configured = ['build.ninja', 'Makefile'].some((f) => fs.existsSync(path.join(root, 'build', f)));
// `build` keeps the tree (and the precompiled header) between runs; `compile` would wipe it after a failure.
const args = [cmakeJs, configured ? 'build' : 'compile'];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('\nresnet-torch: building the native addon failed (the messages above say why).');
  console.error(
    'It needs cmake, a C++17 compiler and libtorch; `node scripts/find-libtorch.js` tells which libtorch it finds.',
  );
  process.exit(result.status || 1);
}
