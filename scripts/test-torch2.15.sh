#!/usr/bin/env bash
# The suite on pip's PyTorch 2.15 (the CUDA 13 build, run on the CPU where there is no GPU): the project's venv
# (scripts/torch-venv.sh), the addon built against it by the normal CMake build in build/torch-2.15 (the CUDA
# toolkit from the nvidia-* wheels, CMakeLists.txt), and PyTorch 2.15 / torchvision 0.29 as the references.
#   scripts/test-torch2.15.sh [all|unit|integration|user] [filters...]
# The venv and the downloads live in $RESNET_TORCH_CACHE (else ~/.cache/resnet-torch); the build folder is kept,
# so a second run only recompiles what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python="$(bash scripts/torch-venv.sh)"
build=build/torch-2.15
mkdir -p build
PYTHON="$python" cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -Wno-dev >"$build.configure.log" 2>&1 ||
  { tail -40 "$build.configure.log"; exit 1; }
grep -E '^-- (libtorch|CUDA|c10d)' "$build.configure.log"
cmake --build "$build" -j "$(nproc)"
addon="$PWD/$build/resnet_torch.node"
RESNET_TORCH_ADDON="$addon" node -e 'const r = require("./dist"); console.log(r.formatInfo(r.info()))'
RESNET_TORCH_ADDON="$addon" RESNET_TORCH_PYTHON="$python" node scripts/test.js "${@:-all}"
