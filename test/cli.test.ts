// The CLI and config files: schema errors with key paths, overrides, presets, exit codes, run folders,
// Ctrl-C with a final checkpoint and resume, eval/predict/export, and a (tiny) experiment.
import { strict as assert } from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, it } from 'node:test';

import YAML from 'yaml';

import { ValidationError } from '../lib';
import { listPresets, readPreset, resolveConfig } from '../lib/config/load';
import { runConfigJsonSchema } from '../lib/config/schema';
import { pngBytes, writeFiles } from './helpers/fixtures';
import { tempDir } from './helpers/files';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function resnet(args: string[], options: { cwd?: string; onStdout?: (text: string, child: ChildProcess) => void } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      options.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const tiny = (dir: string, extra: object = {}) => ({
  name: 'tiny', seed: 3,
  model: { arch: 'cifar-resnet8' },
  data: { train: { type: 'synthetic', shape: [1, 8, 8], classes: 3, count: 96 }, validation: { fromTrain: 32 } },
  train: { epochs: 3, batchSize: 16, logEvery: 2, optimizer: { type: 'sgd', lr: 0.05 } },
  checkpoint: { everyEpochs: 1 },
  output: { dir },
  ...extra,
});

describe('config files', () => {
  it('refuses a bad value with the path of the key, and an unknown key', () => {
    const base = tiny('/tmp');
    assert.throws(() => resolveConfig(base, ['train.optimizer.momentum="x"']), (e: Error) =>
      e instanceof ValidationError && e.message === 'train.optimizer.momentum: expected a number in [0, 1), got "x"');
    assert.throws(() => resolveConfig({ ...base, trian: {} }), /trian: unknown key "trian" \(did you mean "train"\?\)/);
    assert.throws(() => resolveConfig(base, ['model.shortcut=D']), /model.shortcut: expected one of "A", "B", "C", "none", got "D"/);
    assert.throws(() => resolveConfig(base, ['data.train.type=imagenet']), /data.train.type: expected one of "fashion-mnist", .*got "imagenet"/);
    assert.throws(() => resolveConfig(base, ['train.schedule.type=multistep']), /train.schedule.milestones: required/);
    assert.throws(() => resolveConfig(base, ['nonsense']), /--set: expected key.path=value/);
  });
  it('--set overrides values of any type, and the result is frozen', () => {
    const c = resolveConfig(tiny('/tmp'), ['train.optimizer.lr=0.2', 'train.augment.flip=true', 'train.schedule={type: multistep, milestones: [2, 4]}',
      'model.arch=cifar-plain8']);
    assert.equal(c.train.optimizer!.lr, 0.2);
    assert.equal(c.train.augment!.flip, true);
    assert.deepEqual(c.train.schedule, { type: 'multistep', milestones: [2, 4] });
    assert.equal(c.model.arch, 'cifar-plain8');
    assert.ok(Object.isFrozen(c.train.optimizer));
  });
  it('every preset is valid, and configs/schema.json is the schema the validator uses', async () => {
    const presets = await listPresets();
    for (const name of ['cifar10-resnet20', 'cifar10-resnet110', 'cifar10-resnet1202', 'cifar10-plain56', 'imagenet-resnet34-C', 'imagenet-plain18',
      'cifar10-preact-resnet164', 'cifar100-preact-resnet1001', 'fashion-mnist-resnet20']) assert.ok(presets.includes(name), name);
    for (const name of presets) resolveConfig(await readPreset(name));
    const c110 = resolveConfig(await readPreset('cifar10-resnet110'));
    assert.deepEqual(c110.train.errorWarmup, { lr: 0.01, untilTrainError: 0.8 });
    assert.deepEqual(c110.train.schedule, { type: 'multistep', milestones: [32000, 48000] });
    assert.equal(c110.train.iterations, 64000);
    const published = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs', 'schema.json'), 'utf8'));
    assert.deepEqual(published, JSON.parse(JSON.stringify(runConfigJsonSchema())));
    assert.equal(published.properties.train.properties.optimizer.oneOf[0].properties.momentum.exclusiveMaximum, 1);
  });
});

describe('resnet CLI', () => {
  it('exit codes: 0 on success, 2 on wrong usage or an invalid config, 1 on failure; --help on each command', async () => {
    assert.equal((await resnet(['info'])).code, 0);
    const help = await resnet(['train', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: resnet train/);
    for (const cmd of ['resume', 'eval', 'predict', 'export', 'summary', 'bench', 'experiment']) assert.equal((await resnet([cmd, '--help'])).code, 0, cmd);
    assert.equal((await resnet(['frobnicate'])).code, 2);
    assert.equal((await resnet(['train', '--bogus'])).code, 2);
    const dir = await tempDir();
    fs.writeFileSync(path.join(dir, 'bad.yaml'), YAML.stringify({ ...tiny(dir), train: { epochs: 1, optimizer: { type: 'sgd', lr: 0.1, momentum: 'x' } } }));
    const bad = await resnet(['train', path.join(dir, 'bad.yaml')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /train.optimizer.momentum: expected a number in \[0, 1\), got "x"/);
    const missing = await resnet(['eval', path.join(dir, 'nope.safetensors')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope.safetensors: cannot read: no such file/);
  });

  it('summary prints per-layer shapes and the paper\'s multiply-adds', async () => {
    const r = await resnet(['summary', 'resnet50', '--stride', 'conv1x1']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /layer4\.2\.conv3\s+Conv2d\s+\[1, 2048, 7, 7\]/);
    assert.match(r.stdout, /parameters: 25,557,032/);
    assert.match(r.stdout, /mult-adds:\s+3\.86 G/);
  });

  it('train writes one run folder; Ctrl-C stops with a checkpoint (exit 130); resume finishes it; eval, predict and export use it', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'tiny.yaml');
    fs.writeFileSync(file, YAML.stringify(tiny(dir, { train: { epochs: 20, batchSize: 16, logEvery: 1, optimizer: { type: 'sgd', lr: 0.05 } } })));
    let sent = false;
    const first = await resnet(['train', file, '--set', 'train.labelSmoothing=0.05'], {
      onStdout: (text, child) => {
        if (!sent && /it 5\//.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.equal(first.code, 130, first.stderr);
    assert.match(first.stdout, /labelSmoothing: 0.05/);
    assert.match(first.stdout, /resume with: resnet resume (.*)/);
    const runDir = /resume with: resnet resume (.*)/.exec(first.stdout)![1].trim();
    const stoppedAt = Number(/stopped at iteration (\d+)/.exec(first.stdout)![1]);
    assert.ok(stoppedAt >= 5 && stoppedAt < 80, String(stoppedAt));
    assert.ok(fs.existsSync(path.join(runDir, 'checkpoints', `checkpoint-${stoppedAt}.safetensors`)));

    const second = await resnet(['resume', runDir, '--quiet']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /test accuracy: \d+\.\d+%/);
    for (const f of ['config.yaml', 'config.json', 'metrics.jsonl', 'metrics.csv', 'summary.json', 'weights.safetensors', 'error.svg', 'error.png'])
      assert.ok(fs.existsSync(path.join(runDir, f)), f);
    const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    assert.equal(summary.iteration, 80);
    assert.equal(summary.aborted, false);
    assert.ok(summary.final.val.accuracy >= 0 && summary.versions.libtorch);
    const iterations = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      .filter((e) => e.kind === 'iteration').map((e) => e.iteration);
    assert.deepEqual(iterations, Array.from({ length: 80 }, (_, i) => i + 1), 'metrics.jsonl has each iteration once, across the resume');
    const csv = fs.readFileSync(path.join(runDir, 'metrics.csv'), 'utf8').split('\n');
    assert.match(csv[0], /^kind,iteration,epoch,lr,loss,train_error/);
    assert.ok(fs.readFileSync(path.join(runDir, 'error.png')).subarray(1, 4).toString() === 'PNG');

    const json = await resnet(['eval', runDir, '--data', 'synthetic', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const m = JSON.parse(json.stdout);
    assert.ok(m.count > 0 && m.confusion.length === 3);

    const onnx = path.join(dir, 'model.onnx');
    assert.equal((await resnet(['export', runDir, '--format', 'onnx', '--out', onnx])).code, 0);
    assert.ok(fs.statSync(onnx).size > 1000);
    assert.equal((await resnet(['export', runDir, '--format', 'tflite', '--out', onnx])).code, 2);

    const images = path.join(dir, 'images');
    await writeFiles(images, { 'a.png': pngBytes(8, 8, 1, new Uint8Array(64).fill(200)), 'sub/b.png': pngBytes(12, 12, 1, new Uint8Array(144).fill(20)) });
    const predicted = await resnet(['predict', runDir, images, '--top-k', '2']);
    assert.equal(predicted.code, 0, predicted.stderr);
    assert.match(predicted.stdout, /a\.png\n\s+\d+\.\d+%\s+\S+\n\s+\d+\.\d+%/);
    assert.match(predicted.stdout, /sub\/b\.png/);
  });

  it('--json prints machine-readable events; a finished experiment network is not trained again', async () => {
    const dir = await tempDir();
    const args = ['experiment', 'shortcuts', '--budget', '6i', '--limit', '256', '--depths', '8', '--batch-size', '32', '--out', dir, '--json'];
    const r = await resnet(args);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.type === 'progress' && l.kind === 'iteration'));
    const done = lines.find((l) => l.type === 'experiment');
    assert.equal(done.summaries.length, 3);
    const report = fs.readFileSync(done.report, 'utf8');
    assert.match(report, /\| ResNet-8 option A \| 8 \|/);
    assert.match(report, /\| ResNet-8 option C \| 8 \|/);
    assert.ok(fs.existsSync(path.join(dir, 'shortcuts', 'error.png')));
    const again = await resnet(args.filter((a) => a !== '--json'));
    assert.equal(again.code, 0);
    assert.equal((again.stdout.match(/already trained/g) ?? []).length, 3);
  });
});
