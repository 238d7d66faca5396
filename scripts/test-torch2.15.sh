#!/usr/bin/env bash
# The suite on pip's PyTorch 2.15 (the CUDA 13 build, run on the CPU where there is no GPU): the project's venv
# (scripts/torch-venv.sh), the addon built against it by scripts/build-addon.sh in build/torch-2.15 (the CUDA
# toolkit from the nvidia-* wheels, CMakeLists.txt; the GPU machine's build takes the same path), and PyTorch 2.15 / torchvision 0.29 as the references.
#   scripts/test-torch2.15.sh [all|unit|integration|user] [filters...]
# The venv and the downloads live in $RESNET_TORCH_CACHE (else ~/.cache/resnet-torch); the build folder is kept,
# so a second run only recompiles what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python="$(bash scripts/torch-venv.sh)"
build=build/torch-2.15
PYTHON="$python" bash scripts/build-addon.sh "$build"
RESNET_TORCH_ADDON="$PWD/$build/resnet_torch.node" RESNET_TORCH_PYTHON="$python" node scripts/test.js "${@:-all}"
