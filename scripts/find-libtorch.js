#!/usr/bin/env node
'use strict';
// Finds libtorch for both builds (CMake and node-gyp), in the documented order:
//   1. LIBTORCH (an unpacked libtorch folder) or Torch_DIR (a folder holding TorchConfig.cmake);
//   2. the PyTorch installed for `python3` (or $PYTHON): how pip users get a CUDA build;
//   3. Debian's system libtorch (libtorch-dev).
// Usage: find-libtorch.js [--json | --torch-dir | --c10d | --gyp-includes | --gyp-libs | --gyp-ldflags | --gyp-defines]
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const INSTALL_HINT = [
  "resnet-torch needs libtorch (PyTorch's C++ library) and found none.",
  'Install one of:',
  '  - Debian/Ubuntu (CPU):  sudo apt-get install libtorch-dev',
  '  - PyTorch with CUDA:    pip install torch   (found through `python3 -c "import torch"`)',
  '  - a libtorch archive:   unpack it and set LIBTORCH=/path/to/libtorch',
  'or point Torch_DIR at a folder holding TorchConfig.cmake.',
].join('\n');

function configIn(dir) {
  return dir && fs.existsSync(path.join(dir, 'TorchConfig.cmake')) ? dir : null;
}

function fromLibtorchFolder(root, source) {
  const torchDir = configIn(path.join(root, 'share', 'cmake', 'Torch'));
  if (!torchDir) return null;
  return { source, torchDir, prefix: root, includeRoot: path.join(root, 'include'), libDir: path.join(root, 'lib') };
}

function fromTorchDir(dir) {
  const torchDir = configIn(dir);
  if (!torchDir) return null;
  // <prefix>/share/cmake/Torch or <prefix>/lib/<arch>/cmake/Torch
  const up = (n) => path.resolve(torchDir, ...Array(n).fill('..'));
  const prefix = fs.existsSync(path.join(up(3), 'include', 'torch')) ? up(3) : up(4);
  const libDir = fs.existsSync(path.join(prefix, 'lib', 'libc10.so')) ? path.join(prefix, 'lib') : up(2);
  return { source: 'Torch_DIR', torchDir, prefix, includeRoot: path.join(prefix, 'include'), libDir };
}

function fromPython() {
  const python = process.env.PYTHON || 'python3';
  let out;
  try {
    out = execFileSync(
      python,
      [
        '-c',
        'import os, torch, torch.utils; print(torch.utils.cmake_prefix_path); print(os.path.dirname(torch.__file__))',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 },
    );
  } catch {
    return null;
  }
  const [cmakePrefix, torchRoot] = out.trim().split('\n');
  const torchDir = configIn(path.join(cmakePrefix || '', 'Torch'));
  // Debian's python3-torch points at a folder it does not ship: then the system step finds the same library.
  if (!torchDir) return null;
  return {
    source: `${python} (PyTorch)`,
    torchDir,
    prefix: torchRoot,
    includeRoot: path.join(torchRoot, 'include'),
    libDir: path.join(torchRoot, 'lib'),
  };
}

function fromSystem() {
  const candidates = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  for (const libDir of candidates) {
    const torchDir = configIn(path.join(libDir, 'cmake', 'Torch'));
    if (torchDir) {
      const prefix = libDir.startsWith('/usr/local') ? '/usr/local' : '/usr';
      return { source: 'system', torchDir, prefix, includeRoot: path.join(prefix, 'include'), libDir };
    }
  }
  return null;
}

function findLibtorch() {
  let found = null;
  if (process.env.LIBTORCH) {
    found = fromLibtorchFolder(path.resolve(process.env.LIBTORCH), 'LIBTORCH');
    if (!found) throw new Error(`LIBTORCH=${process.env.LIBTORCH} holds no share/cmake/Torch/TorchConfig.cmake`);
  } else if (process.env.Torch_DIR) {
    found = fromTorchDir(path.resolve(process.env.Torch_DIR));
    if (!found) throw new Error(`Torch_DIR=${process.env.Torch_DIR} holds no TorchConfig.cmake`);
  } else {
    found = fromPython() || fromSystem();
  }
  if (!found) throw new Error(INSTALL_HINT);
  const config = fs.readFileSync(path.join(found.torchDir, 'TorchConfig.cmake'), 'utf8');
  const abi = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(config);
  found.cxx11Abi = abi ? Number(abi[1]) : 1;
  found.cuda = fs.existsSync(path.join(found.libDir, 'libtorch_cuda.so'));
  found.version = torchVersion(found.includeRoot);
  found.c10d = c10dAvailable(found);
  return found;
}

function torchVersion(includeRoot) {
  try {
    const text = fs.readFileSync(
      path.join(includeRoot, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
      'utf8',
    );
    const part = (name) => Number((new RegExp(`#define TORCH_VERSION_${name} (\\d+)`).exec(text) ?? [])[1]);
    return { major: part('MAJOR'), minor: part('MINOR'), patch: part('PATCH') };
  } catch {
    return { major: NaN, minor: NaN, patch: NaN };
  }
}

// Distributed training builds on c10d's Gloo process group: its headers come with libtorch, Gloo's own with
// Debian's libgloo-dev. The c10d C++ API the addon uses is libtorch 1.x's (2.x split ProcessGroup and Backend).
function c10dAvailable(t) {
  const gloo = [t.includeRoot, '/usr/include', '/usr/local/include'].some((d) =>
    fs.existsSync(path.join(d, 'gloo', 'config.h')),
  );
  const c10d = fs.existsSync(path.join(t.includeRoot, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp'));
  return gloo && c10d && t.version.major === 1;
}

function gypView(t) {
  return {
    includes: [t.includeRoot, path.join(t.includeRoot, 'torch', 'csrc', 'api', 'include')],
    // --no-as-needed keeps libtorch_cuda linked although no symbol of it is named: it registers CUDA at load.
    ldflags: [`-L${t.libDir}`, `-Wl,-rpath,${t.libDir}`, '-Wl,--no-as-needed'],
    libs: ['-lc10', '-ltorch_cpu', '-ltorch', ...(t.cuda ? ['-ltorch_cuda', '-lc10_cuda'] : [])],
    defines: [`_GLIBCXX_USE_CXX11_ABI=${t.cxx11Abi}`, ...(t.c10d ? ['RESNET_WITH_C10D', 'USE_C10D_GLOO'] : [])],
  };
}

if (require.main === module) {
  let t;
  try {
    t = findLibtorch();
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
  const arg = process.argv[2] || '--json';
  const g = gypView(t);
  const views = {
    '--json': () => JSON.stringify(t, null, 2),
    '--torch-dir': () => t.torchDir,
    '--c10d': () => (t.c10d ? '1' : '0'),
    '--gyp-includes': () => g.includes.join(' '),
    '--gyp-libs': () => g.libs.join(' '),
    '--gyp-ldflags': () => g.ldflags.join(' '),
    '--gyp-defines': () => g.defines.join(' '),
  };
  if (!views[arg]) {
    process.stderr.write(`unknown option ${arg}; one of ${Object.keys(views).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`${views[arg]()}\n`);
}

module.exports = { findLibtorch, INSTALL_HINT };
