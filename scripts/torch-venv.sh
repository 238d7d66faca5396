#!/usr/bin/env bash
# The project's own PyTorch 2.15 (pip's CUDA 13 build) and torchvision 0.29, in a virtual environment in the cache
# folder, installed from requirements/torch-2.15.txt with every hash checked. Never the system's Python or pyenv's
# site-packages, never at a user's `npm install`: only a developer or CI that asks for it runs this.
#   scripts/torch-venv.sh            creates (or checks) the venv and prints its python
#   scripts/torch-venv.sh --lock     rewrites requirements/torch-2.15.txt from PyPI's current resolution
# Downloads (about 3 GB) are kept in pip's cache under the cache folder, so a second machine run reuses them.
# The cache: $RESNET_TORCH_CACHE, else ~/.cache/resnet-torch.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${RESNET_TORCH_CACHE:-$HOME/.cache/resnet-torch}"
venv="$cache/venv-torch-2.15"
lock=requirements/torch-2.15.txt
base_python="${TORCH_VENV_PYTHON:-python3.11}"
command -v "$base_python" >/dev/null || base_python=python3
export PIP_CACHE_DIR="$cache/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ "${1:-}" = --lock ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$base_python" -m venv "$tmp/venv"
  # With nvcc of the wheels' CUDA (13.2; its crt and nvvm of the same release, or ptxas refuses their PTX): CMake's
  # CUDA probe of a CUDA libtorch needs one to configure a build. crcmod: the references' TensorBoard reader
  # (test/python/read_tfevents.py). timm: the reference of its ResNet variants (test/python/timm_forward.py); it
  # imports without its optional hub dependencies. onnxruntime, onnx: the int8 reference (onnxruntime.quantization's
  # quantize_static on our ONNX export, bench/infer-int8.ts).
  "$tmp/venv/bin/pip" install -q --dry-run --report "$tmp/report.json" torch==2.15.0 torchvision==0.29.2 \
    nvidia-cuda-nvcc==13.2.86 "nvidia-cuda-crt==13.2.*" "nvidia-nvvm==13.2.*" crcmod==1.7 timm==1.0.31 \
    onnxruntime==1.32.0 onnx==1.23.2
  "$tmp/venv/bin/python" - "$tmp/report.json" "$lock" <<'EOF'
import json, sys
report, out = sys.argv[1], sys.argv[2]
lines = [
    "# PyTorch 2.15.0 (CUDA 13), torchvision 0.29.2, timm 1.0.31 and nvcc 13.2 for CPython 3.11 on x86-64 Linux, with every dependency pinned by",
    "# hash: pip install --require-hashes -r requirements/torch-2.15.txt (scripts/torch-venv.sh does, into the cache).",
    "# Written by scripts/torch-venv.sh --lock from `pip install --dry-run --report`.",
]
for item in sorted(json.load(open(report))["install"], key=lambda i: i["metadata"]["name"].lower()):
    m, h = item["metadata"], item["download_info"]["archive_info"]["hashes"]["sha256"]
    lines.append(f"{m['name']}=={m['version']} \\\n    --hash=sha256:{h}")
open(out, "w").write("\n".join(lines) + "\n")
EOF
  echo "wrote $lock"
  exit 0
fi

stamp="$venv/.installed-$(sha256sum "$lock" | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  rm -rf "$venv"
  "$base_python" -m venv "$venv"
  "$venv/bin/pip" install -q --require-hashes --no-deps -r "$lock" >&2
  touch "$stamp"
fi
"$venv/bin/python" -c 'import torch, torchvision, timm' >&2
echo "$venv/bin/python"
