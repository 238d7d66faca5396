// Fine-tune a torchvision ResNet-18 on your own image folder (one subfolder per class). Export its weights once
// with Python (nothing downloads at run time here):
//   python3 -c "import torch, torchvision; torch.save(torchvision.models.resnet18(weights='IMAGENET1K_V1').state_dict(), 'resnet18.pth')"
//   node examples/fine-tune-torchvision.js resnet18.pth path/to/images [out.safetensors]
const { createModel, datasets, progressBar, train } = require('resnet-torch');

const quick = process.env.EXAMPLES_QUICK === '1';

async function main() {
  const [pth, folder, out = 'fine-tuned.safetensors'] = process.argv.slice(2);
  if (!pth || !folder)
    throw new Error('usage: fine-tune-torchvision.js <resnet18.pth> <image folder> [out.safetensors]');
  const data = await datasets.imageFolder({ path: folder, size: quick ? 64 : 224, channels: 3 });
  const { train: tr, validation } = await data.split({ validation: 0.2, seed: 0 });

  const model = await createModel({ arch: 'resnet18', weights: pth }); // 1000 ImageNet classes, as saved
  model.replaceHead(data.numClasses, { classNames: data.classNames }).freeze(['conv1', 'bn1', 'layer1', 'layer2']);
  const result = await train(model, tr, {
    iterations: quick ? 4 : 500,
    batchSize: quick ? 8 : 32,
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 },
    normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, // what ImageNet training used
    augment: { flip: true },
    validation,
    logEvery: quick ? 1 : 20,
    onProgress: progressBar(),
  });
  await model.saveWeights(out);
  console.log(`validation error ${(result.evaluations.val.top1Error * 100).toFixed(2)}%; weights in ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
