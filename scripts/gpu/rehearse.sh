#!/usr/bin/env bash
# The GPU run rehearsed here, without a GPU: packs .gpu/ (prepare.sh), copies exactly what a device call
# carries (the working tree as the device tool copies it, plus .gpu, dist and .test-build) into a fresh
# folder, and runs scripts/gpu/run.sh there as the GPU machine would, with RESNET_GPU_DEVICE=cpu: the packed
# Node, NODE_PATH, no node_modules of the checkout, a plain cmake build against the libtorch it finds (here
# Debian's), the checks that need no CUDA, and every benchmark in a short form. Run it before every change to
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
# The Python with PyTorch: Debian's here (plain python3 may be another one), python3 on the GPU machine.
(cd "$work" && OUT="$work/out" RESNET_GPU_DEVICE=cpu RESNET_TORCH_PYTHON="${RESNET_TORCH_PYTHON:-/usr/bin/python3}" \
  bash scripts/gpu/run.sh "$stage")
echo "rehearse: passed; the files a device call would bring back: $(ls "$work/out" | tr '\n' ' ')"
