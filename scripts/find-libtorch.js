#!/usr/bin/env node
'use strict';
// Finds libtorch for both builds (CMake and node-gyp), in the documented order:
//   1. LIBTORCH (an unpacked libtorch folder) or Torch_DIR (a folder holding TorchConfig.cmake);
//   2. the PyTorch installed for `python3` (or $PYTHON): how pip users get a CUDA build;
//   3. Debian's system libtorch (libtorch-dev).
// Usage: find-libtorch.js [--json | --torch-dir | --c10d | --nccl | --pip-cuda | --onednn | --gyp-includes | --gyp-libs | --gyp-ldflags | --gyp-defines]
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
  found.ncclInclude = ncclIncludeDir(found);
  found.onednn = onednnFor(found);
  return found;
}

function torchVersion(includeRoot) {
  // 2.x up to 2.9: torch/csrc/api/include/torch/version.h; later: torch/headeronly/version.h.
  const file = [
    path.join(includeRoot, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
    path.join(includeRoot, 'torch', 'headeronly', 'version.h'),
  ].find((f) => fs.existsSync(f) && /#define TORCH_VERSION_MAJOR/.test(fs.readFileSync(f, 'utf8')));
  try {
    const text = fs.readFileSync(file, 'utf8');
    const part = (name) => Number((new RegExp(`#define TORCH_VERSION_${name} (\\d+)`).exec(text) ?? [])[1]);
    return { major: part('MAJOR'), minor: part('MINOR'), patch: part('PATCH') };
  } catch {
    return { major: NaN, minor: NaN, patch: NaN };
  }
}

// Distributed training builds on c10d's Gloo process group: its headers come with libtorch, Gloo's own with
// Debian's libgloo-dev (pip's torch has them inside). native/distributed/ speaks c10d's 1.x and 2.x APIs.
function c10dAvailable(t) {
  const gloo = [t.includeRoot, '/usr/include', '/usr/local/include'].some((d) =>
    fs.existsSync(path.join(d, 'gloo', 'config.h')),
  );
  return gloo && fs.existsSync(path.join(c10dHeaders(t), 'ProcessGroupGloo.hpp'));
}

// The oneDNN training path (native/models/onednn_training.cpp) calls oneDNN itself, through its 2.x C++ API, and
// needs that API's headers (Debian's libdnnl-dev) and a library of the same major version:
// - a libtorch linked against the shared oneDNN (Debian's): the same library, so the headers' major must be its;
// - a libtorch that carries its oneDNN inside libtorch_cpu with its symbols hidden (pip's torch: oneDNN 3.x, no C
//   API exported): the path links the system's shared oneDNN 2.x beside it (`own`). The two never see each other's
//   objects (the path hands oneDNN plain buffers of libtorch tensors), and both run on the process's one libgomp.
// Otherwise (a libtorch linked against another major's shared oneDNN, whose exported symbols ours would bind to)
// libtorch's path trains.
function onednnFor(
  t,
  includeDirs = ['/usr/include', '/usr/local/include'],
  libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'],
) {
  let linked;
  try {
    const so = fs.readdirSync(t.libDir).find((f) => /^libtorch_cpu\.so/.test(f));
    if (!so) return null;
    linked = /libdnnl\.so\.(\d+)/.exec(fs.readFileSync(path.join(t.libDir, so)).toString('latin1'));
  } catch {
    return null;
  }
  const major = linked ? linked[1] : '2';
  if (major !== '2') return null;
  const soname = `libdnnl.so.${major}`;
  if (!linked && !libDirs.some((d) => fs.existsSync(path.join(d, soname)))) return null;
  for (const dir of includeDirs) {
    try {
      const text = fs.readFileSync(path.join(dir, 'oneapi', 'dnnl', 'dnnl_version.h'), 'utf8');
      const headerMajor = /#define DNNL_VERSION_MAJOR (\d+)/.exec(text);
      if (headerMajor && headerMajor[1] === major && fs.existsSync(path.join(dir, 'oneapi', 'dnnl', 'dnnl.hpp')))
        return linked ? { include: dir, soname } : { include: dir, soname, own: true };
    } catch {
      // not in this folder
    }
  }
  return null;
}

function c10dHeaders(t) {
  return path.join(t.includeRoot, 'torch', 'csrc', 'distributed', 'c10d');
}

// NCCL process groups: a CUDA libtorch 2.x (whose c10d has ProcessGroupNCCL) and NCCL's header, from the system,
// the CUDA toolkit, or pip's nvidia-nccl package beside torch. The folder holding nccl.h, or null.
function ncclIncludeDir(t, env = process.env) {
  if (!t.cuda || !t.c10d || !(t.version.major >= 2)) return null;
  if (!fs.existsSync(path.join(c10dHeaders(t), 'ProcessGroupNCCL.hpp'))) return null;
  const sitePackages = path.dirname(t.prefix);
  const pipNvidia = path.join(sitePackages, 'nvidia');
  const candidates = [
    env.NCCL_INCLUDE_DIR,
    env.NCCL_HOME && path.join(env.NCCL_HOME, 'include'),
    path.join(pipNvidia, 'nccl', 'include'),
    ...(fs.existsSync(pipNvidia) ? fs.readdirSync(pipNvidia).map((d) => path.join(pipNvidia, d, 'include')) : []),
    t.includeRoot,
    '/usr/include',
    '/usr/local/include',
    '/usr/local/cuda/include',
  ].filter(Boolean);
  return candidates.find((d) => fs.existsSync(path.join(d, 'nccl.h'))) ?? null;
}

// ---- CUDA: the toolkit CMake will use must match the CUDA the libtorch was built with --------------------

/** The CUDA a CUDA libtorch was built with ("12.4"): pip's torch/version.py, else the libcudart beside it. */
function libtorchCuda(t) {
  for (const file of [path.join(t.prefix, 'version.py'), path.join(t.prefix, 'torch', 'version.py')]) {
    const m = fs.existsSync(file) && /^cuda\s*(?::[^=\n]*)?=\s*['"](\d+\.\d+)/m.exec(fs.readFileSync(file, 'utf8'));
    if (m) return m[1];
  }
  const cudart = fs.existsSync(t.libDir) && fs.readdirSync(t.libDir).find((f) => /^libcudart[^.]*\.so\.\d+/.test(f));
  return cudart ? `${/\.so\.(\d+)/.exec(cudart)[1]}.x` : null;
}

/**
 * pip's CUDA toolkit beside a pip CUDA torch: site-packages/nvidia/cu<major> when it holds nvcc (the
 * nvidia-cuda-nvcc wheel of the torch's CUDA major), unless CUDA_HOME, CUDA_PATH or CUDACXX names a toolkit.
 * CMakeLists.txt makes a toolkit root of it for Caffe2's CUDA probe. The folder, or null.
 */
function pipCudaToolkit(t, env = process.env) {
  if (!t.cuda || env.CUDA_HOME || env.CUDA_PATH || env.CUDACXX) return null;
  const cuda = libtorchCuda(t);
  const dir = cuda && path.join(path.dirname(t.prefix), 'nvidia', `cu${cuda.split('.')[0]}`);
  return dir && fs.existsSync(path.join(dir, 'bin', 'nvcc')) ? dir : null;
}

/** The nvcc CMake would find (CUDACXX, CUDA_HOME, CUDA_PATH, PATH, /usr/local/cuda) and its release. */
function findNvcc(env = process.env) {
  const candidates = [
    env.CUDACXX,
    env.CUDA_HOME && path.join(env.CUDA_HOME, 'bin', 'nvcc'),
    env.CUDA_PATH && path.join(env.CUDA_PATH, 'bin', 'nvcc'),
    ...(env.PATH || '').split(path.delimiter).map((d) => d && path.join(d, 'nvcc')),
    '/usr/local/cuda/bin/nvcc',
  ].filter(Boolean);
  for (const nvcc of candidates) {
    if (!fs.existsSync(nvcc)) continue;
    try {
      const out = execFileSync(nvcc, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const m = /release (\d+\.\d+)/.exec(out);
      if (m) return { path: nvcc, version: m[1] };
    } catch {
      // not runnable: try the next
    }
  }
  return null;
}

const ARCH_NAMES = [
  'Kepler',
  'Maxwell',
  'Pascal',
  'Volta',
  'Turing',
  'Ampere',
  'Ada',
  'Hopper',
  'Blackwell',
  'All',
  'Common',
  'Auto',
];

/**
 * What would make CMake fail, obscurely, when building against this CUDA libtorch: a toolkit of another major
 * version than the libtorch's, or a TORCH_CUDA_ARCH_LIST it cannot read. A message, or null.
 */
function cudaBuildProblem({ torchCuda, nvcc, archList, source }) {
  if (archList !== undefined && archList.trim() !== '') {
    for (const arch of archList.trim().split(/[;\s]+/)) {
      const bare = arch.replace(/\+PTX$/, '');
      if (!/^\d+\.\d+a?$/.test(bare) && !ARCH_NAMES.includes(bare))
        return (
          `TORCH_CUDA_ARCH_LIST="${archList}": "${arch}" is not a CUDA architecture; write compute capabilities ` +
          `such as "8.0;9.0" or "9.0+PTX" (names: ${ARCH_NAMES.join(', ')})`
        );
    }
  }
  if (!torchCuda || !nvcc) return null;
  const major = (v) => v.split('.')[0];
  if (major(torchCuda) === major(nvcc.version)) return null;
  return (
    `libtorch from ${source} is built with CUDA ${torchCuda}, but the CUDA toolkit CMake would use ` +
    `(${nvcc.path}) is ${nvcc.version}: the build would mix two CUDA versions. Point CUDA_HOME (or CUDACXX) at ` +
    `a CUDA ${major(torchCuda)}.x toolkit, or install the PyTorch built for CUDA ${major(nvcc.version)}.x.`
  );
}

function gypView(t) {
  // The oneDNN training path on a oneDNN of its own (pip's torch) needs its headers ahead of libtorch's, which carry
  // oneDNN 3.x's: CMake's build lays them out so (CMakeLists.txt); node-gyp's builds libtorch's path there.
  const onednn = t.onednn && !t.onednn.own ? t.onednn : null;
  return {
    includes: [
      t.includeRoot,
      path.join(t.includeRoot, 'torch', 'csrc', 'api', 'include'),
      ...(t.ncclInclude ? [t.ncclInclude] : []),
    ],
    // --no-as-needed keeps libtorch_cuda linked although no symbol of it is named: it registers CUDA at load.
    ldflags: [`-L${t.libDir}`, `-Wl,-rpath,${t.libDir}`, '-Wl,--no-as-needed'],
    libs: [
      '-lc10',
      '-ltorch_cpu',
      '-ltorch',
      ...(t.cuda ? ['-ltorch_cuda', '-lc10_cuda'] : []),
      ...(onednn ? [`-l:${onednn.soname}`] : []),
    ],
    defines: [
      `_GLIBCXX_USE_CXX11_ABI=${t.cxx11Abi}`,
      ...(t.c10d ? ['RESNET_WITH_C10D', 'USE_C10D_GLOO'] : []),
      ...(t.ncclInclude ? ['RESNET_WITH_NCCL', 'USE_C10D_NCCL'] : []),
      ...(onednn ? ['RESNET_WITH_ONEDNN'] : []),
    ],
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
  if (t.cuda) {
    t.cudaVersion = libtorchCuda(t);
    t.nvcc = findNvcc();
    // CMake (TorchConfig.cmake) takes the toolkit it finds: refuse a mismatch here, in words.
    const problem = cudaBuildProblem({
      torchCuda: t.cudaVersion,
      nvcc: t.nvcc,
      archList: process.env.TORCH_CUDA_ARCH_LIST,
      source: t.source,
    });
    if (problem && arg === '--torch-dir') {
      process.stderr.write(`${problem}\n`);
      process.exit(1);
    }
    if (problem) t.problem = problem;
  }
  const g = gypView(t);
  const views = {
    '--json': () => JSON.stringify(t, null, 2),
    '--torch-dir': () => t.torchDir,
    '--c10d': () => (t.c10d ? '1' : '0'),
    '--nccl': () => t.ncclInclude ?? '',
    '--pip-cuda': () => pipCudaToolkit(t) ?? '',
    '--onednn': () => (t.onednn ? `${t.onednn.include};${t.onednn.soname}` : ''),
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

module.exports = { findLibtorch, cudaBuildProblem, ncclIncludeDir, onednnFor, INSTALL_HINT };
