'use strict';
// The user lane's flows once more, in plain Node (no jest, no TypeScript), as a script would use the package.
const assert = require('assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { DisposedError, createModel, fromArrays, train } = require(process.argv[2] || 'resnet-torch');

(async () => {
  const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 4, seed: 2 });
  const out = await model.forward({ data: new Float32Array(2 * 8 * 8).fill(0.5), shape: [2, 1, 8, 8] });
  assert.deepEqual(out.shape, [2, 4]);
  assert.ok(out.data instanceof Float32Array);
  const images = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 37) % 256);
  const data = await fromArrays({ images, shape: [64, 1, 8, 8], labels: Array.from({ length: 64 }, (_, i) => i % 4) });
  const seen = [];
  const result = await train(model, data, {
    iterations: 4,
    batchSize: 16,
    logEvery: 2,
    onProgress: (e) => e.kind === 'iteration' && seen.push(e.iteration),
  });
  assert.deepEqual(seen, [2, 4]);
  assert.equal(result.iteration, 4);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-torch-plain-'));
  await model.saveWeights(path.join(dir, 'w.safetensors'));
  const copy = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 4, seed: 9 });
  await copy.loadWeights(path.join(dir, 'w.safetensors'));
  model.eval();
  copy.eval();
  const x = { data: new Float32Array(8 * 8).fill(0.25), shape: [1, 1, 8, 8] };
  // The trained model keeps its weights in channels_last, the loaded copy in the default layout: other kernels,
  // the same values to float rounding.
  const [a, b] = [(await copy.forward(x)).data, (await model.forward(x)).data];
  assert.ok(
    a.every((v, i) => Math.abs(v - b[i]) <= 1e-5 * Math.max(1, Math.abs(b[i]))),
    `${a} vs ${b}`,
  );
  model.dispose();
  await assert.rejects(model.forward(x), DisposedError);
  fs.rmSync(dir, { recursive: true });
  console.log('plain node: ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
