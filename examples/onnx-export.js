// Export to ONNX and check the file with onnxruntime-node: the same logits as our forward, within 1e-4.
//   node examples/onnx-export.js [weights.safetensors] [model.onnx]
// Without a weights file it exports a fresh ResNet-20. onnxruntime-node is an optional dependency: npm i onnxruntime-node
const { createModel, loadModel } = require('resnet-torch');

async function main() {
  const [weights, out = 'model.onnx'] = process.argv.slice(2);
  const model = weights
    ? await loadModel(weights)
    : await createModel({ arch: 'cifar-resnet20', inChannels: 1, seed: 0 });
  await model.exportOnnx(out, { opset: 17 }); // eval-mode network, dynamic batch dimension

  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(out);
  const [h, w] = model.imageSize;
  const shape = [4, model.inChannels, h, w];
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37));
  const theirs = (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) }))[
    session.outputNames[0]
  ];
  model.eval();
  const ours = await model.forward({ data, shape });
  let worst = 0;
  for (let i = 0; i < ours.data.length; i++) worst = Math.max(worst, Math.abs(ours.data[i] - theirs.data[i]));
  console.log(`${out}: ${ours.data.length} logits, largest difference from onnxruntime ${worst.toExponential(2)}`);
  if (!(worst < 1e-4)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
