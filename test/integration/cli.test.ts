// The CLI and config files: schema errors with key paths, overrides, presets, exit codes, run folders,
// Ctrl-C with a final checkpoint and resume, eval/predict/export, and a (tiny) experiment.
import * as fs from 'fs';
import * as path from 'path';

import YAML from 'yaml';

import { info } from '../../lib';
import { pngBytes, pngFolder, writeFiles } from '../../harness/fixtures';
import { tempDir } from '../../harness/files';
import { tiny } from '../helpers/configs';
import { resnet } from '../helpers/cli';
import { runPython } from '../../harness/python';

describe('resnet CLI', () => {
  it('exit codes: 0 on success, 2 on wrong usage or an invalid config, 1 on failure; --help on each command', async () => {
    expect((await resnet(['info'])).code).toBe(0);
    const help = await resnet(['train', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: resnet train/);
    for (const cmd of ['resume', 'eval', 'predict', 'serve', 'export', 'summary', 'bench', 'experiment'])
      expect((await resnet([cmd, '--help'])).code).toBe(0);
    expect((await resnet(['frobnicate'])).code).toBe(2);
    expect((await resnet(['train', '--bogus'])).code).toBe(2);
    const dir = await tempDir();
    fs.writeFileSync(
      path.join(dir, 'bad.yaml'),
      YAML.stringify({ ...tiny(dir), train: { epochs: 1, optimizer: { type: 'sgd', lr: 0.1, momentum: 'x' } } }),
    );
    const bad = await resnet(['train', path.join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/train.optimizer.momentum: expected a number in \[0, 1\), got "x"/);
    // A config that only the training options' checks refuse (warm-up longer than the run) creates no run folder.
    const out = path.join(dir, 'refused-run');
    const refused = await resnet([
      'train',
      path.join(dir, 'bad.yaml'),
      '--out',
      out,
      '--set',
      'train.optimizer.momentum=0.9',
      '--set',
      'train.batchSize=16',
      '--set',
      'train.warmup={iterations: 100000}',
    ]);
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringMatching(/warmup/)]);
    expect(fs.existsSync(out)).toBe(false);
    const missing = await resnet(['eval', path.join(dir, 'nope.safetensors')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope.safetensors: cannot read: no such file/);
  });

  it('with dropLast false the progress counts the last partial batch: 64 images at batch 24 are 3 iterations an epoch', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'partial.yaml');
    const train = { epochs: 2, batchSize: 24, dropLast: false, logEvery: 1, optimizer: { type: 'sgd', lr: 0.05 } };
    fs.writeFileSync(file, YAML.stringify(tiny(dir, { train })));
    const r = await resnet(['train', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/epoch 2\/2 it 6\/6/);
    expect(r.stdout).toMatch(/epoch 1\/2 it 3\/6/);
    expect(r.stdout).not.toMatch(/epoch \d+\/3/);
  });

  // Several ranks need c10d with Gloo in this build (libtorch 1.x and libgloo-dev: info().distributed).
  (info().distributed.gloo ? it : it.skip)(
    '--nproc-per-node 2 trains as 2 ranks into one run folder; Ctrl-C stops every rank at the same iteration with a checkpoint; resume --nproc-per-node 2 finishes it',
    async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'tiny.yaml');
      const train = { epochs: 3, batchSize: 8, logEvery: 1, optimizer: { type: 'sgd', lr: 0.05 } };
      fs.writeFileSync(file, YAML.stringify(tiny(dir, { train })));
      const port = 29000 + Math.floor(Math.random() * 1000);
      const r = await resnet(['train', file, '--nproc-per-node', '2', '--master-port', String(port)]);
      expect(r.code).toBe(0);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('tiny-'))).toHaveLength(1);
      // 64 training images shared by 2 ranks at 8 per rank: 4 iterations an epoch.
      expect(r.stdout).toMatch(/epoch 3\/3 it 12\/12/);
      const runDir = /run: +(.*)/.exec(r.stdout)![1].trim();
      expect(JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8')).iteration).toBe(12);

      fs.writeFileSync(file, YAML.stringify(tiny(dir, { train: { ...train, epochs: 60 } })));
      let sent = false;
      const stopped = await resnet(['train', file, '--nproc-per-node', '2', '--master-port', String(port + 1)], {
        onStdout: (text, child) => {
          if (!sent && /it 5\//.test(text)) {
            sent = true;
            child.kill('SIGINT');
          }
        },
      });
      expect(stopped.code).toBe(130);
      const at = Number(/stopped at iteration (\d+)/.exec(stopped.stdout)![1]);
      const folder = /resume with: resnet resume (.*)/.exec(stopped.stdout)![1].trim();
      expect(fs.existsSync(path.join(folder, 'checkpoints', `checkpoint-${at}.safetensors`))).toBe(true);
      expect(stopped.stderr).not.toMatch(/rank 1/);
      // Resumed as 2 ranks again: rank 0 goes on in the same folder and finishes the 240 iterations.
      const resumed = await resnet(['resume', folder, '--nproc-per-node', '2', '--master-port', String(port + 2)]);
      expect([resumed.code, resumed.stderr]).toEqual([0, '']);
      expect(resumed.stdout).toContain(`resuming ${folder} at iteration ${at} of 240`);
      expect(JSON.parse(fs.readFileSync(path.join(folder, 'summary.json'), 'utf8')).iteration).toBe(240);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('tiny-'))).toHaveLength(2); // no folder for rank 1
    },
  );

  it('the training options around the loop work from a config: early stopping, EMA, accumulation, clipping, frozen BN', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'run.yaml');
    fs.writeFileSync(file, YAML.stringify(tiny(dir)));
    const r = await resnet(
      [
        'train',
        file,
        '--quiet',
        ...['train.ema.decay=0.9', 'train.accumulate=2', 'train.batchSize=8', 'train.clipGradNorm=1'],
        ...['train.freezeBatchNorm=true', 'train.earlyStopping.monitor=val_loss', 'train.earlyStopping.patience=1'],
        ...['train.earlyStopping.minDelta=10', 'train.earlyStopping.restoreBest=true'],
      ].flatMap((a, i) => (i > 2 ? ['--set', a] : [a])),
    );
    expect(r.code).toBe(0);
    // 64 training images, 2 passes of 8 per iteration: 4 iterations an epoch; the second evaluation stops it.
    expect(r.stdout).toMatch(
      /stopped early at iteration 8: the best was \d\.\d+ at iteration 4, whose weights the model now holds/,
    );
    const runDir = /run:\s+(\S+)/.exec(r.stdout)![1];
    const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    expect(summary.earlyStopped).toMatchObject({ iteration: 8, bestIteration: 4, restored: true });
    expect(fs.existsSync(path.join(runDir, 'weights-ema.safetensors'))).toBe(true);
  });

  // The recipes' presets as a user runs them on ImageNet folders, here on a small folder and at small sizes: every
  // option they set (LAMB, BCE, RandAugment, TrivialAugment, random erasing, mixup/cutmix, drop path, EMA, the
  // FixRes evaluation size, the validation resize-and-crop) goes through the CLI, the config and a real run.
  it.each(['imagenet-resnet50-torchvision-v2', 'imagenet-resnet50-rsb-a1', 'imagenet-resnet50-rsb-a3'])(
    'the %s preset runs',
    async (preset) => {
      const images = await pngFolder(24);
      const r = await resnet(
        [
          'train',
          '--preset',
          preset,
          '--quiet',
          ...[`data.train.path=${images}`, 'data.train.size=48', `data.validation.path=${images}`],
          ...['data.validation.size=40', 'data.validation.resize=44', 'model.device=cpu', 'model.arch=resnet18'],
          ...['train.epochs=1', 'train.batchSize=8', 'train.warmup.iterations=1', 'train.precision=float32'],
          ...['train.augment.randomResizedCrop.size=32', 'train.augment.randomResizedCrop.evalSize=40'],
          ...[`output.dir=${await tempDir()}`],
        ].flatMap((a, i) => (i > 3 ? ['--set', a] : [a])),
      );
      expect([r.code, r.stderr]).toEqual([0, '']);
      const runDir = /run:\s+(\S+)/.exec(r.stdout)![1];
      const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
      expect(summary.iteration).toBe(3);
      expect(summary.final.val.accuracy).toBeGreaterThanOrEqual(0);
    },
  );

  it("summary prints per-layer shapes and the paper's multiply-adds", async () => {
    const r = await resnet(['summary', 'resnet50', '--stride', 'conv1x1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/layer4\.2\.conv3\s+Conv2d\s+\[1, 2048, 7, 7\]/);
    expect(r.stdout).toMatch(/parameters: 25,557,032/);
    expect(r.stdout).toMatch(/mult-adds:\s+3\.86 G/);
  });

  it("summary --list-archs names torchvision's and timm's networks; summary takes their names", async () => {
    const list = await resnet(['summary', '--list-archs']);
    expect(list.code).toBe(0);
    for (const name of ['resnext101_64x4d', 'wide_resnet101_2', 'resnetDc, resnetDd', 'seresnetD', 'cifar-resnetN'])
      expect(list.stdout).toContain(name);
    // timm's seresnext26d_32x4d: 16,809,512 parameters (timm 1.0.31).
    const r = await resnet(['summary', 'seresnext26d_32x4d']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/layer1\.0\.se\.fc1\s+Conv2d\s+\[1, 16, 1, 1\]/);
    expect(r.stdout).toMatch(/parameters: 16,809,512/);
  });

  it('train writes one run folder; Ctrl-C stops with a checkpoint (exit 130); resume finishes it; eval, predict and export use it', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'tiny.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify(
        tiny(dir, { train: { epochs: 20, batchSize: 16, logEvery: 1, optimizer: { type: 'sgd', lr: 0.05 } } }),
      ),
    );
    let sent = false;
    const first = await resnet(['train', file, '--set', 'train.labelSmoothing=0.05'], {
      onStdout: (text, child) => {
        if (!sent && /it 5\//.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(first.code).toBe(130);
    expect(first.stdout).toMatch(/labelSmoothing: 0.05/);
    expect(first.stdout).toMatch(/resume with: resnet resume (.*)/);
    const runDir = /resume with: resnet resume (.*)/.exec(first.stdout)![1].trim();
    const stoppedAt = Number(/stopped at iteration (\d+)/.exec(first.stdout)![1]);
    expect(stoppedAt >= 5 && stoppedAt < 80).toBeTruthy();
    expect(fs.existsSync(path.join(runDir, 'checkpoints', `checkpoint-${stoppedAt}.safetensors`))).toBeTruthy();

    const second = await resnet(['resume', runDir, '--quiet']);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/test accuracy: \d+\.\d+%/);
    for (const f of [
      'config.yaml',
      'config.json',
      'metrics.jsonl',
      'metrics.csv',
      'summary.json',
      'weights.safetensors',
      'error.svg',
      'error.png',
    ])
      expect(fs.existsSync(path.join(runDir, f))).toBeTruthy();
    const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    expect(summary.iteration).toBe(80);
    expect(summary.aborted).toBe(false);
    expect(summary.final.val.accuracy >= 0 && summary.versions.libtorch).toBeTruthy();
    const iterations = fs
      .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.kind === 'iteration')
      .map((e) => e.iteration);
    expect(iterations).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    const csv = fs.readFileSync(path.join(runDir, 'metrics.csv'), 'utf8').split('\n');
    expect(csv[0]).toMatch(/^kind,iteration,epoch,lr,loss,train_error/);
    expect(fs.readFileSync(path.join(runDir, 'error.png')).subarray(1, 4).toString() === 'PNG').toBeTruthy();
    // A TensorBoard event file per session; the resumed one starts with a session start at the checkpoint.
    const eventFiles = fs
      .readdirSync(runDir)
      .filter((f) => f.startsWith('events.out.tfevents.'))
      .sort();
    expect(eventFiles).toHaveLength(2);
    const [before, after] = await Promise.all(
      eventFiles.map(async (f) => JSON.parse(await runPython('read_tfevents.py', [path.join(runDir, f)]))),
    );
    expect(after.session_logs).toEqual([{ step: stoppedAt, status: 1, msg: `resumed at iteration ${stoppedAt}` }]);
    const lossSteps = (file: { scalars: { step: number; tag: string }[] }) =>
      file.scalars.filter((s) => s.tag === 'train/loss').map((s) => s.step);
    expect([...lossSteps(before).filter((s: number) => s <= stoppedAt), ...lossSteps(after)]).toEqual(iterations);

    const json = await resnet(['eval', runDir, '--data', 'synthetic', '--json']);
    expect(json.code).toBe(0);
    const m = JSON.parse(json.stdout);
    expect(m.count > 0 && m.confusion.length === 3).toBeTruthy();

    const onnx = path.join(dir, 'model.onnx');
    expect((await resnet(['export', runDir, '--format', 'onnx', '--out', onnx])).code).toBe(0);
    expect(fs.statSync(onnx).size).toBeGreaterThan(1000);
    expect((await resnet(['export', runDir, '--format', 'tflite', '--out', onnx])).code).toBe(2);

    const images = path.join(dir, 'images');
    await writeFiles(images, {
      'a.png': pngBytes(8, 8, 1, new Uint8Array(64).fill(200)),
      'sub/b.png': pngBytes(12, 12, 1, new Uint8Array(144).fill(20)),
    });
    const predicted = await resnet(['predict', runDir, images, '--top-k', '2']);
    expect(predicted.code).toBe(0);
    expect(predicted.stdout).toMatch(/a\.png\n\s+\d+\.\d+%\s+\S+\n\s+\d+\.\d+%/);
    expect(predicted.stdout).toMatch(/sub\/b\.png/);
  });

  it('--json prints machine-readable events; a finished experiment network is not trained again', async () => {
    const dir = await tempDir();
    const args = [
      'experiment',
      'shortcuts',
      '--budget',
      '6i',
      '--limit',
      '256',
      '--depths',
      '8',
      '--batch-size',
      '32',
      '--out',
      dir,
      '--json',
    ];
    const r = await resnet(args);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.type === 'progress' && l.kind === 'iteration')).toBeTruthy();
    const done = lines.find((l) => l.type === 'experiment');
    expect(done.summaries.length).toBe(3);
    const report = fs.readFileSync(done.report, 'utf8');
    expect(report).toMatch(/\| ResNet-8 option A \| 8 \|/);
    expect(report).toMatch(/\| ResNet-8 option C \| 8 \|/);
    expect(fs.existsSync(path.join(dir, 'shortcuts', 'error.png'))).toBeTruthy();
    const again = await resnet(args.filter((a) => a !== '--json'));
    expect(again.code).toBe(0);
    expect((again.stdout.match(/already trained/g) ?? []).length).toBe(3);
  });

  it('the recipe experiment trains each ingredient and all of them at one budget, each with its options', async () => {
    const dir = await tempDir();
    const r = await resnet(
      ['experiment', 'recipe', '--budget', '4i', '--limit', '256', '--depths', '8', '--batch-size', '32'].concat([
        '--out',
        dir,
        '--quiet',
      ]),
    );
    expect([r.code, r.stderr]).toEqual([0, '']);
    const report = fs.readFileSync(path.join(dir, 'recipe', 'report.md'), 'utf8');
    for (const row of ["the paper's recipe", 'label smoothing 0.1', 'mixup 0.2 / cutmix 1.0', 'TrivialAugmentWide'])
      expect(report).toContain(`| ${row.startsWith('the') ? row : `+ ${row}`}`);
    expect(report).toContain('| all of them |');
    // Each run's saved config holds its ingredient over the shared recipe.
    const config = (id: string) =>
      YAML.parse(fs.readFileSync(path.join(dir, 'recipe', `resnet8-${id}`, 'config.yaml'), 'utf8'));
    expect(config('all').train.augment).toMatchObject({
      padCrop: 4,
      flip: true,
      trivialAugment: true,
      randomErasing: { prob: 0.25 },
      mix: { mixup: 0.2, cutmix: 1 },
    });
    expect(config('ema').train.ema).toEqual({ decay: 0.99 });
    expect(config('baseline').train.augment).toEqual({ padCrop: 4, flip: true });
    expect(fs.existsSync(path.join(dir, 'recipe', 'error.png'))).toBeTruthy();
  });
});
