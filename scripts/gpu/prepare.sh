#!/usr/bin/env bash
# Packs what the GPU machine needs but lacks into the git-ignored .gpu/. The machine has CUDA, PyTorch (with
# its libtorch), cmake, ninja and g++, but no Node and no network. It gets: Node (stripped, xz), the npm
# packages the plain cmake build and the checks load (node-addon-api, node-api-headers: the Node-API headers;
# yaml), a real Fashion-MNIST subset. dist/ and .test-build/ travel as they are.
# Not packed: /usr/include/node (54 MB; the plain cmake build takes Node-API's headers from node-api-headers),
# sharp and onnxruntime-node (no GPU check decodes images, and onnxruntime-node is compared on the CPU only).
# The device tool refuses a call whose working tree plus carried folders exceed 64 MiB: this script prints
# what will travel and fails above 60 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p tsconfig.json && node scripts/write-esm-entry.js && npx tsc -p tsconfig.bench.json
rm -rf .gpu && mkdir -p .gpu/node_modules
cp "$(command -v node)" .gpu/node && strip .gpu/node && xz -T2 -f .gpu/node
for p in node-addon-api node-api-headers yaml; do cp -r "node_modules/$p" .gpu/node_modules/; done
# 10,000 training images and their labels (IDX, gzipped), for the mixed-precision convergence checks.
node -e '
  const fs = require("fs"), zlib = require("zlib");
  const dir = "/usr/share/datasets/fashion-mnist", out = ".gpu/fashion-mnist";
  fs.mkdirSync(out, { recursive: true });
  const n = 10000;
  for (const [name, header, size] of [["train-images-idx3-ubyte", 16, 784], ["train-labels-idx1-ubyte", 8, 1]]) {
    const b = zlib.gunzipSync(fs.readFileSync(`${dir}/${name}.gz`));
    const cut = Buffer.from(b.subarray(0, header + n * size));
    cut.writeUInt32BE(n, 4);
    fs.writeFileSync(`${out}/${name}.gz`, zlib.gzipSync(cut));
  }'
bash scripts/gpu/travel-size.sh
