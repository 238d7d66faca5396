#!/usr/bin/env node
'use strict';
// Writes the presets in configs/ (the paper's recipes and CPU-sized Fashion-MNIST runs) and configs/schema.json.
// Run after changing a recipe: node scripts/write-presets.js (needs the TypeScript build in dist/).
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const out = path.join(__dirname, '..', 'configs');
const write = (name, config, comment) => {
  const text = `# ${comment}\n# yaml-language-server: $schema=./schema.json\n${YAML.stringify(config, { lineWidth: 0 })}`;
  fs.writeFileSync(path.join(out, `${name}.yaml`), text);
};

// Section 4.2: batch 128, SGD 0.1 (momentum 0.9, weight decay 1e-4), ÷10 at 32k and 48k, stop at 64k,
// 45k/5k split, pad 4 + random crop + flip, per-pixel mean subtraction, option A shortcuts.
const cifarTrain = (extra = {}) => ({
  iterations: 64000,
  batchSize: 128,
  optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
  schedule: { type: 'multistep', milestones: [32000, 48000] },
  augment: { padCrop: 4, flip: true },
  normalize: 'per-pixel',
  evalEvery: { iterations: 2000 },
  logEvery: 100,
  ...extra,
});
const cifarData = (type = 'cifar10', extra = {}) => ({
  train: { type, path: `data/${type === 'cifar10' ? 'cifar-10-batches-bin' : 'cifar-100-binary'}`, ...extra },
  validation: { fromTrain: 5000 },
});
for (const depth of [20, 32, 44, 56, 110, 1202]) {
  // ResNet-110 (and 1202): 0.01 until the training error is below 80% (about 400 iterations), then 0.1.
  const warm = depth >= 110 ? { errorWarmup: { lr: 0.01, untilTrainError: 0.8 } } : {};
  write(
    `cifar10-resnet${depth}`,
    {
      name: `cifar10-resnet${depth}`,
      description: `CIFAR-10 ResNet-${depth} (option A), the paper's section 4.2 recipe`,
      seed: 0,
      model: { arch: `cifar-resnet${depth}`, shortcut: 'A', device: 'cuda' },
      data: cifarData(),
      train: cifarTrain(warm),
      checkpoint: { everyIterations: 4000, keepLast: 2, keepBest: 'val_error' },
    },
    `CIFAR-10 ResNet-${depth}: paper ${{ 20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93 }[depth]}% test error. Needs the binary CIFAR-10 (--set data.train.path=...).`,
  );
}
for (const depth of [20, 32, 44, 56]) {
  write(
    `cifar10-plain${depth}`,
    {
      name: `cifar10-plain${depth}`,
      description: `CIFAR-10 plain-${depth}, the degradation experiment's plain net`,
      seed: 0,
      model: { arch: `cifar-plain${depth}`, device: 'cuda' },
      data: cifarData(),
      train: cifarTrain(),
      checkpoint: { everyIterations: 4000, keepLast: 2, keepBest: 'val_error' },
    },
    `CIFAR-10 plain-${depth} (Fig. 6): deeper plain nets train worse.`,
  );
}
// Identity Mappings: pre-activation bottleneck nets of 9n+2 layers, same schedule, warm-up at 0.01.
for (const [type, classes] of [
  ['cifar10', 10],
  ['cifar100', 100],
]) {
  for (const depth of [164, 1001]) {
    write(
      `${type}-preact-resnet${depth}`,
      {
        name: `${type}-preact-resnet${depth}`,
        description: `${type} pre-activation ResNet-${depth} (Identity Mappings)`,
        seed: 0,
        model: { arch: `preact-resnet${depth}`, device: 'cuda' },
        data: cifarData(type),
        train: cifarTrain({ errorWarmup: { lr: 0.01, untilTrainError: 0.8 } }),
        checkpoint: { everyIterations: 4000, keepLast: 2, keepBest: 'val_error' },
      },
      `${type} pre-activation ResNet-${depth}: Identity Mappings paper ${{ '10-164': 5.46, '10-1001': 4.92, '100-164': 24.33, '100-1001': 22.71 }[`${classes}-${depth}`]}% test error.`,
    );
  }
}
// ImageNet (Table 1 / section 3.4): batch 256, SGD 0.1 ÷10 on plateau, momentum 0.9, weight decay 1e-4,
// random-resized crops of 224 and flips, per-channel normalisation. Train and val are image folders.
const imagenet = (name, model, comment) =>
  write(
    name,
    {
      name,
      description: comment,
      seed: 0,
      model: { ...model, device: 'cuda' },
      data: {
        train: { type: 'image-folder', path: 'data/imagenet/train', size: 256, stream: true, onBadImage: 'skip' },
        validation: { type: 'image-folder', path: 'data/imagenet/val', size: 224 },
        test: false,
      },
      train: {
        epochs: 90,
        batchSize: 256,
        optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
        schedule: { type: 'plateau', metric: 'val_error', factor: 0.1, patience: 5 },
        augment: { randomResizedCrop: { size: 224 }, flip: true },
        normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
        precision: 'bfloat16',
        logEvery: 100,
      },
      checkpoint: { everyEpochs: 1, keepLast: 2, keepBest: 'val_error' },
    },
    comment,
  );
for (const depth of [18, 34, 50, 101, 152])
  imagenet(
    `imagenet-resnet${depth}`,
    { arch: `resnet${depth}` },
    `ImageNet ResNet-${depth} (option B); needs data/imagenet/{train,val} as class folders`,
  );
for (const depth of [18, 34]) imagenet(`imagenet-plain${depth}`, { arch: `plain${depth}` }, `ImageNet plain-${depth}`);
for (const option of ['A', 'B', 'C'])
  imagenet(
    `imagenet-resnet34-${option}`,
    { arch: 'resnet34', shortcut: option },
    `ImageNet ResNet-34 with shortcut option ${option} (Table 3: 25.03 / 24.52 / 24.19% top-1 error)`,
  );

// Today's ResNet-50 recipes (issue 28), on ImageNet-1k folders. Warm-up epochs become iterations over its
// 1,281,167 training images. Each comment names the source and what of the recipe is not reproduced.
const IMAGENET_TRAIN_IMAGES = 1281167;
const IMAGENET_NORMALIZE = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const recipe = (name, description, model, data, train, comment) =>
  write(
    name,
    {
      name,
      description,
      seed: 0,
      model: { ...model, device: 'cuda' },
      data: {
        train: { type: 'image-folder', path: 'data/imagenet/train', size: 256, stream: true, onBadImage: 'skip' },
        validation: { type: 'image-folder', path: 'data/imagenet/val', ...data.validation },
        test: false,
      },
      train: { normalize: IMAGENET_NORMALIZE, precision: 'bfloat16', logEvery: 100, ...train },
      checkpoint: { everyEpochs: 1, keepLast: 2, keepBest: 'val_error' },
    },
    comment,
  );
{
  // torchvision's ResNet50_Weights.IMAGENET1K_V2 (80.858% top-1), references/classification: batch 8×128, lr 0.5,
  // cosine after 5 linear warm-up epochs (from 0.01), 600 epochs, TrivialAugmentWide, random erasing 0.1, weight
  // decay 2e-5 and none on norm layers, label smoothing 0.1, mixup 0.2, cutmix 1.0, train crop 176, evaluation
  // resize 232 and crop 224, EMA every 32 steps at 0.99998 adjusted by batch×steps/epochs (train.py), which is
  // this per-step decay.
  const batch = 1024,
    epochs = 600;
  const emaAlpha = Math.min(1, (1 - 0.99998) * ((batch * 32) / epochs));
  recipe(
    'imagenet-resnet50-torchvision-v2',
    "ResNet-50 with torchvision's new recipe (IMAGENET1K_V2 weights: 80.858% top-1)",
    { arch: 'resnet50' },
    { validation: { size: 224, resize: 232 } },
    {
      epochs,
      batchSize: batch,
      optimizer: { type: 'sgd', lr: 0.5, momentum: 0.9, weightDecay: 2e-5, noDecayOnBnAndBias: true },
      warmup: { iterations: Math.floor(IMAGENET_TRAIN_IMAGES / batch) * 5, startFactor: 0.01 },
      schedule: { type: 'cosine' },
      labelSmoothing: 0.1,
      augment: {
        randomResizedCrop: { size: 176, evalSize: 224 },
        flip: true,
        trivialAugment: true,
        randomErasing: { prob: 0.1 },
        mix: { mixup: 0.2, cutmix: 1.0 },
      },
      ema: { decay: Math.pow(1 - emaAlpha, 1 / 32) },
      augRepeats: 4,
    },
    "torchvision's new ResNet-50 recipe (references/classification, IMAGENET1K_V2). Not reproduced exactly: EMA every 32 steps (here the equal per-step decay), biases keep their decay there (noDecayOnBnAndBias drops it from fc.bias too), PIL's bilinear resizes (sharp's here).",
  );
}
// timm's "ResNet strikes back" (Wightman, Touvron and Jégou 2021, table 1): LAMB, binary cross-entropy with target
// threshold 0.2, cosine after 5 warm-up epochs, batch 2048, timm's RandAugment rand-m7-mstd0.5-inc1 (m6 for A3),
// mixup, cutmix 1.0, repeated augmentation (timm's sampler, its epoch rounded to 256), test crop ratio 0.95 (resize
// 235, crop 224).
for (const [variant, a] of Object.entries({
  a1: { epochs: 600, lr: 5e-3, wd: 0.01, mixup: 0.2, smoothing: 0.1, dropPath: 0.05, size: 224, m: 7, top1: 80.4 },
  a2: { epochs: 300, lr: 5e-3, wd: 0.02, mixup: 0.1, smoothing: 0, dropPath: 0.05, size: 224, m: 7, top1: 79.8 },
  a3: { epochs: 100, lr: 8e-3, wd: 0.02, mixup: 0.1, smoothing: 0, dropPath: 0, size: 160, m: 6, top1: 78.1 },
})) {
  const batch = 2048;
  recipe(
    `imagenet-resnet50-rsb-${variant}`,
    `ResNet-50, timm's ResNet strikes back ${variant.toUpperCase()} (${a.top1}% top-1 at 224)`,
    { arch: 'resnet50', ...(a.dropPath ? { dropPath: a.dropPath } : {}) },
    { validation: { size: 224, resize: 235 } },
    {
      epochs: a.epochs,
      batchSize: batch,
      optimizer: { type: 'lamb', lr: a.lr, weightDecay: a.wd, noDecayOnBnAndBias: true },
      warmup: { iterations: Math.floor(IMAGENET_TRAIN_IMAGES / batch) * 5, startFactor: 1e-3 },
      schedule: { type: 'cosine' },
      loss: { type: 'bce', targetThreshold: 0.2 },
      ...(a.smoothing ? { labelSmoothing: a.smoothing } : {}),
      augment: {
        randomResizedCrop: { size: a.size, ...(a.size !== 224 ? { evalSize: 224 } : {}) },
        flip: true,
        timmRandAugment: `rand-m${a.m}-mstd0.5-inc1`,
        mix: { mixup: a.mixup, cutmix: 1.0 },
      },
      ...(variant === 'a3' ? {} : { augRepeats: 3 }),
    },
    `timm's ResNet strikes back ${variant.toUpperCase()} (arXiv 2110.00476, table 1). Not reproduced: PIL's bicubic resizes (sharp's here).`,
  );
}

// Fashion-MNIST on a CPU (Debian's dataset-fashion-mnist): the main job and small companions.
const fashion = (name, arch, epochs, comment, extra = {}) =>
  write(
    name,
    {
      name,
      description: comment,
      seed: 0,
      model: { arch },
      data: { train: { type: 'fashion-mnist' } },
      train: {
        epochs,
        batchSize: 128,
        optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
        warmup: { iterations: 200 },
        schedule: { type: 'cosine' },
        augment: { padCrop: 4, flip: true },
        normalize: 'per-channel',
        logEvery: 50,
        ...extra,
      },
      checkpoint: { everyEpochs: 1, keepLast: 2 },
    },
    comment,
  );
fashion(
  'fashion-mnist-resnet20',
  'cifar-resnet20',
  8,
  'The main job (npm start): CIFAR-style ResNet-20 on Fashion-MNIST, about 10 minutes on 2 CPU cores',
);
fashion(
  'fashion-mnist-resnet20-full',
  'cifar-resnet20',
  40,
  'ResNet-20 on Fashion-MNIST, the full schedule (about 95% test accuracy)',
);
fashion('fashion-mnist-plain20', 'cifar-plain20', 8, "Plain-20 on Fashion-MNIST, the main job's plain twin");
fashion('fashion-mnist-resnet56', 'cifar-resnet56', 8, "ResNet-56 on Fashion-MNIST (about 3x the main job's time)");
fashion('fashion-mnist-preact-resnet20', 'cifar-preact-resnet20', 8, 'Pre-activation ResNet-20 on Fashion-MNIST');

const { runConfigJsonSchema } = require('../dist/config/schema');
fs.writeFileSync(path.join(out, 'schema.json'), `${JSON.stringify(runConfigJsonSchema(), null, 2)}\n`);
console.log(`wrote ${fs.readdirSync(out).length} files to ${out}`);
