#!/usr/bin/env node
'use strict';
// Lists native/**/*.cpp (relative to the package root) for binding.gyp; CMakeLists.txt globs the same folder,
// so both builds compile the same sources.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
function walk(dir) {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) return walk(rel);
    return e.name.endsWith('.cpp') ? [rel] : [];
  });
}
process.stdout.write(walk('native').sort().join('\n') + '\n');
