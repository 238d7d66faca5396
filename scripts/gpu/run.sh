#!/usr/bin/env bash
# On the GPU machine: one stage per device call, each well under the 10-minute limit, correctness first, so a
# lent machine always yields at least the build and the checks (times: scripts/gpu/README.md):
#   run.sh check   unpack Node, build against python3's PyTorch, correctness checks against PyTorch
#   run.sh train   training throughput: ours vs PyTorch eager, AMP, torch.compile, CUDA graphs
#   run.sh infer   inference latency vs PyTorch eager, and the CIFAR ResNet-20 recipe time
#   run.sh all     the three in one call
# Every stage builds first (a no-op while the machine is warm from the previous call), writes at most 8 files
# to $OUT and prints a summary last: each step's status and seconds (also in $OUT/timings.txt).
# RESNET_GPU_DEVICE=cpu runs the same stages on the CPU with short benchmarks: the rehearsal
# (scripts/gpu/rehearse.sh) that proves everything but CUDA before a GPU is lent.
set -uo pipefail
cd "$(dirname "$0")/../.."
stage="${1:-check}"
case "$stage" in check | train | infer | all) ;; *) echo "usage: run.sh check|train|infer|all" >&2; exit 2 ;; esac
OUT="${OUT:-$PWD/gpu-results}"
mkdir -p "$OUT"
device="${RESNET_GPU_DEVICE:-cuda}"
rehearsal=$([ "$device" = cpu ] && echo 1 || echo 0)
export RESNET_TORCH_PYTHON="${RESNET_TORCH_PYTHON:-python3}"

summary=()
failed=0
# step NAME LOG COMMAND...: runs COMMAND with its output shown and appended to $OUT/LOG, times it.
step() {
  local name="$1" log="$OUT/$2" start rc secs
  shift 2
  start=$(date +%s.%N)
  echo "== $name" | tee -a "$log"
  "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
  local status=ok
  [ "$rc" = 0 ] || { status="FAILED (exit $rc)"; failed=1; }
  summary+=("$(printf '%-34s %-16s %5s s' "$name" "$status" "$secs")")
  echo "$stage $name $status ${secs}s" >> "$OUT/timings.txt"
  return "$rc"
}
finish() {
  echo
  echo "== summary: stage $stage on $device$([ "$rehearsal" = 1 ] && echo ' (rehearsal)')"
  printf '%s\n' "${summary[@]}"
  exit "$failed"
}

setup_node() {
  [ -x .gpu/node ] || { xz -dkf .gpu/node.xz && chmod +x .gpu/node; } || return 1
  # The packed Node and packages only: the checkout's node_modules does not travel.
  [ -e node_modules ] || ln -s .gpu/node_modules node_modules
  echo "node $(command -v node) $(node --version), NODE_PATH=$NODE_PATH"
  if [ "$device" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
  "$RESNET_TORCH_PYTHON" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda,
    "cuDNN", torch.backends.cudnn.version() if torch.cuda.is_available() else None)'
  PYTHON="$RESNET_TORCH_PYTHON" node scripts/find-libtorch.js
}
export PATH="$PWD/.gpu:$PATH" NODE_PATH="$PWD/.gpu/node_modules"

# The build of the PyTorch 2.15 lane (scripts/build-addon.sh: plain CMake against python3's torch, no cmake-js;
# Node-API's headers from node-api-headers), so the GPU builds what CI has built. The addon is build/gpu's.
build() {
  PYTHON="$RESNET_TORCH_PYTHON" bash scripts/build-addon.sh build/gpu
}
export RESNET_TORCH_ADDON="$PWD/build/gpu/resnet_torch.node"

step environment environment.txt setup_node || finish
step build build.txt build || finish

data=(--data .gpu/fashion-mnist)
if [ "$rehearsal" = 1 ]; then
  checks=(--device cpu)
  train=(--device cpu --cases cifar20 --repeats 1 --iterations 4)
  recipe=(--device cpu --iterations 20)
  infer=(--device cpu --cases cifar-resnet20 --repeats 2)
else
  checks=(--device cuda)
  train=(--device cuda --cases cifar20,resnet50 --precisions float32,bfloat16 --repeats 3 --cuda-graph --compile --budget-s 240)
  recipe=(--device cuda --iterations 2000)
  infer=(--device cuda --cases cifar-resnet20,resnet50 --repeats 20 --budget-s 120)
fi

if [ "$stage" = check ] || [ "$stage" = all ]; then
  step checks checks.txt node .test-build/bench/gpu-checks.js "${data[@]}" "${checks[@]}"
fi
if [ "$stage" = train ] || [ "$stage" = all ]; then
  step 'train vs PyTorch' train.txt node .test-build/bench/train-vs-pytorch.js "${train[@]}"
fi
if [ "$stage" = infer ] || [ "$stage" = all ]; then
  step 'infer vs PyTorch' infer.txt node .test-build/bench/infer-vs-pytorch.js "${infer[@]}"
  step 'CIFAR recipe time' recipe.txt node .test-build/bench/cifar-recipe-time.js "${recipe[@]}"
fi
finish
