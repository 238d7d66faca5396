'use strict';
// A user's first script, run in a fresh project where `npm install <our tarball>` built the addon against the only
// libtorch there is, pip's PyTorch of the active venv (scripts/test-user-route.sh): it trains a few iterations on
// arrays, saves the weights, loads them as a service would and predicts a PNG. Exits non-zero on any surprise.
const assert = require('assert');
const fs = require('fs');
const sharp = require('sharp');
const { createModel, fromArrays, info, loadModel, train } = require('resnet-torch');

(async () => {
  const i = info();
  console.log(`libtorch ${i.libtorchVersion} from ${i.libtorchLibrary}`);
  console.log(
    `CUDA: ${i.cuda.builtWithCuda ? `built in (${i.cuda.compiledVersion})` : 'not built in'}, devices ${i.cuda.devices.length}`,
  );
  assert.strictEqual(i.libtorchVersion, process.env.EXPECT_LIBTORCH, 'the addon runs the venv libtorch');
  assert.ok(
    i.libtorchLibrary.startsWith(process.env.EXPECT_TORCH_LIB),
    `libtorch from ${process.env.EXPECT_TORCH_LIB}`,
  );
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  assert.ok(!/\/usr\/lib\/[^ ]*libtorch/.test(maps), 'no system libtorch is mapped');

  // 64 images of 3x32x32 in 4 classes: a bright square in one quadrant per class.
  const n = 64,
    size = 32;
  const images = new Uint8Array(n * 3 * size * size);
  const labels = [];
  for (let k = 0; k < n; k++) {
    const label = k % 4;
    labels.push(label);
    const [y0, x0] = [(label >> 1) * 16, (label & 1) * 16];
    for (let c = 0; c < 3; c++)
      for (let y = y0; y < y0 + 16; y++)
        for (let x = x0; x < x0 + 16; x++) images[((k * 3 + c) * size + y) * size + x] = 255;
  }
  const data = await fromArrays({ images, shape: [n, 3, size, size], labels, classNames: ['tl', 'tr', 'bl', 'br'] });
  const model = await createModel({ arch: 'cifar-resnet20', numClasses: 4, classNames: data.classNames, seed: 0 });
  const losses = [];
  const result = await train(model, data, {
    iterations: 120,
    batchSize: 16,
    logEvery: 1,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    normalize: 'per-channel',
    onProgress: (e) => e.kind === 'iteration' && losses.push(e.loss),
  });
  console.log(
    `trained ${result.iteration} iterations on ${result.engine}; loss ${losses[0]?.toFixed(3)} -> ${losses.at(-1)?.toFixed(3)}`,
  );
  assert.strictEqual(result.iteration, 120);
  assert.ok(losses.at(-1) < losses[0] / 2, 'the loss falls');
  await model.saveWeights('weights.safetensors');

  // As a service would: the weights file alone, then PNG bytes of twice the training size (decoded, resized, normalised
  // with the training statistics the file carries), one per quadrant.
  const served = await loadModel('weights.safetensors');
  for (const [label, left, top] of [
    ['tl', 0, 0],
    ['tr', 32, 0],
    ['bl', 0, 32],
    ['br', 32, 32],
  ]) {
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .composite([{ input: Buffer.alloc(32 * 32 * 3, 255), raw: { width: 32, height: 32, channels: 3 }, left, top }])
      .png()
      .toBuffer();
    const best = await served.predictImage(png, { topK: 2 });
    console.log(`a bright square at ${label}: ${JSON.stringify(best)}`);
    assert.strictEqual(best.length, 2);
    assert.ok(best[0].probability >= best[1].probability && best[0].probability <= 1);
    assert.strictEqual(best[0].label, label, 'the trained model names the quadrant');
  }
  console.log('user route: ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
