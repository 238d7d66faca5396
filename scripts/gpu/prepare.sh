#!/usr/bin/env bash
# Packs what the GPU machine needs but lacks (it has CUDA, PyTorch, cmake, ninja and g++, but no Node and no
# network) into the git-ignored .gpu/: Node, the npm packages the build and the checks load, a small real
# Fashion-MNIST subset. The compiled dist/ and .test-build/ travel as they are. Run here, then carry
# .gpu, dist and .test-build to the GPU machine and run scripts/gpu/run.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p tsconfig.json && node scripts/write-esm-entry.js && npx tsc -p tsconfig.test.json
rm -rf .gpu && mkdir -p .gpu/node_modules .gpu/include
cp "$(command -v node)" .gpu/node && strip .gpu/node && xz -T2 -f .gpu/node
cp -r /usr/include/node .gpu/include/node
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
du -sh .gpu dist .test-build
