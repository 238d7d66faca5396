#!/usr/bin/env bash
# The addon built by plain CMake against the PyTorch of a Python (pip's torch, CUDA builds included: CMakeLists.txt
# takes the CUDA toolkit from the nvidia-* wheels where they carry one, else the system's), into a build folder of
# its own, then loaded and described. One code path for the PyTorch 2.15 lane (scripts/test-torch2.15.sh, CI) and
# the GPU machine (scripts/gpu/run.sh), so the first GPU lent builds what CI has already built.
#   PYTHON=/path/to/python scripts/build-addon.sh BUILD_DIR     (PYTHON: default python3)
# Prints the configure lines that matter (libtorch, CUDA, c10d, oneDNN) and `resnet info`; the addon is
# BUILD_DIR/resnet_torch.node (RESNET_TORCH_ADDON points the package at it). A second run rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: PYTHON=python scripts/build-addon.sh BUILD_DIR}"
export PYTHON="${PYTHON:-python3}"
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -Wno-dev >"$build/configure.log" 2>&1 ||
  { tail -40 "$build/configure.log"; exit 1; }
grep -E '^-- (libtorch|CUDA|c10d|oneDNN)' "$build/configure.log"
cmake --build "$build" -j "$(nproc)"
RESNET_TORCH_ADDON="$(cd "$build" && pwd)/resnet_torch.node" node -e 'const r = require("./dist"); console.log(r.formatInfo(r.info()))'
