#!/usr/bin/env bash
# On the GPU machine: unpack Node, build the addon against the PyTorch installed for python3 (found by
# scripts/find-libtorch.js, as for any pip user), run the correctness checks, then the benchmarks side by
# side with PyTorch; everything printed also lands in $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu-results}"
mkdir -p "$OUT"
[ -x .gpu/node ] || { xz -dkf .gpu/node.xz; chmod +x .gpu/node; }
export PATH="$PWD/.gpu:$PATH" NODE_PATH="$PWD/.gpu/node_modules"
[ -d node_modules ] || ln -s .gpu/node_modules node_modules
export RESNET_TORCH_PYTHON=python3
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())'
  node scripts/find-libtorch.js
} | tee "$OUT/environment.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build/Release" > "$OUT/cmake.txt" 2>&1 \
  || { tail -40 "$OUT/cmake.txt"; exit 1; }
cmake --build build-gpu -j "$(nproc)" >> "$OUT/cmake.txt" 2>&1 || { tail -60 "$OUT/cmake.txt"; exit 1; }
node -e 'const r = require("./dist"); console.log(r.formatInfo(r.info()))' | tee "$OUT/info.txt"
node .test-build/bench/gpu-checks.js --data .gpu/fashion-mnist 2>&1 | tee "$OUT/checks.txt"
node .test-build/bench/train-vs-pytorch.js --device cuda --cases cifar20,cifar56,resnet50 --precisions float32,bfloat16 --compile --cuda-graph 2>&1 | tee "$OUT/train.txt"
node .test-build/bench/cifar-recipe-time.js --device cuda 2>&1 | tee "$OUT/recipe.txt"
node .test-build/bench/infer-vs-pytorch.js --device cuda --cases cifar-resnet20,resnet50 2>&1 | tee "$OUT/infer.txt"
