#!/usr/bin/env bash
# Makes a fresh Debian 12 machine with Node 20 ready to run the package: system packages (with apt when
# run as root, otherwise the exact command is printed), npm dependencies, the native addon, the TypeScript.
# Each step is skipped when already done. Usage: scripts/setup.sh [start|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-start}"

packages=(cmake ninja-build g++ make python3 dataset-fashion-mnist fonts-dejavu-core)
# libtorch: the system's, unless LIBTORCH / Torch_DIR / a PyTorch for python3 provides one.
# Debian's libtorch has c10d; Gloo's headers (distributed training) come in their own package, and so do those of
# the oneDNN it runs on (libdnnl-dev: the oneDNN training path, native/models/onednn_training.cpp).
if ! node scripts/find-libtorch.js --torch-dir >/dev/null 2>&1; then packages+=(libtorch-dev libgloo-dev libdnnl-dev)
elif node scripts/find-libtorch.js --json 2>/dev/null | grep -q '"source": "system"'; then packages+=(libgloo-dev libdnnl-dev); fi
# The tests compare against PyTorch and torchvision in Python (Debian's, the same libtorch); lint checks C++ with
# clang-format; qemu-user emulates a CPU that reports no cache sizes (oneDNN's SIGFPE, test/integration/devices);
# iproute2 gives the two-host test its network namespaces (test/integration/distributed).
if [ "$mode" = test ]; then packages+=(python3-torch python3-torchvision python3-prometheus-client python3-crcmod clang-format qemu-user iproute2); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]} with apt"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: these system packages are missing: ${missing[*]}" >&2
    echo "Install them, then run this again:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# npm dependencies (their install scripts: see "allowScripts" in package.json). `npm ci` also runs our own
# install (native build) and prepare (TypeScript) scripts.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies"
  npm ci --no-audit --no-fund
fi

node scripts/install-native.js
npx tsc -p tsconfig.json
node scripts/write-esm-entry.js
