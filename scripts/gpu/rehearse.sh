#!/usr/bin/env bash
# The GPU run rehearsed here, without a GPU: packs .gpu/ (prepare.sh), copies exactly what a device call
# carries (the working tree as the device tool copies it, plus .gpu, dist and .test-build) into a fresh
# folder, and runs scripts/gpu/run.sh there as the GPU machine would, with RESNET_GPU_DEVICE=cpu: the packed
# Node, NODE_PATH, no node_modules of the checkout, the build of the PyTorch 2.15 lane (scripts/build-addon.sh)
# against the project's venv (pip's CUDA 13 build of 2.15, scripts/torch-venv.sh: the GPU machine's kind of
# PyTorch, where the build takes its CUDA path), the checks that need no CUDA, and every benchmark in a short form. Run it before every change to
# scripts/gpu/ or bench/. Usage: scripts/gpu/rehearse.sh [check|train|infer|all] (default all)
set -euo pipefail
cd "$(dirname "$0")/../.."
stage="${1:-all}"
bash scripts/gpu/prepare.sh
work="$(mktemp -d /tmp/resnet-gpu-rehearsal.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work"
cp -r .gpu dist .test-build "$work/"
[ ! -e "$work/node_modules" ] || { echo "rehearse: node_modules travelled" >&2; exit 1; }
echo "rehearse: running scripts/gpu/run.sh $stage in $work"
# The Python with PyTorch: the project's venv here (RESNET_TORCH_PYTHON chooses another), python3 on the GPU machine.
python="${RESNET_TORCH_PYTHON:-$(bash scripts/torch-venv.sh)}"
(cd "$work" && OUT="$work/out" RESNET_GPU_DEVICE=cpu RESNET_TORCH_PYTHON="$python" \
  bash scripts/gpu/run.sh "$stage")
echo "rehearse: passed; the files a device call would bring back: $(ls "$work/out" | tr '\n' ' ')"
