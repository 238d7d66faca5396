// Full-state checkpoints: exact resume (after an AbortSignal and after a killed process), atomic writes
// under random kills, the keep-last/keep-best policy, and untrusted files.
import { ChildProcess, spawn } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';

import fc from 'fast-check';

import {
  CheckpointError,
  ModelSpec,
  TrainOptions,
  createModel,
  loadCheckpoint,
  readCheckpoint,
  resumeTraining,
  train,
} from '../../lib';
import { readSafetensors, writeSafetensors } from '../../lib/io/safetensors';
import { tempDir } from '../../harness/files';
import { syntheticDataset, syntheticSource, weightsHash } from '../../harness/synthetic';
import { rejection } from '../helpers/errors';

const ROOT = path.resolve(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');

const RECIPES: { name: string; options: TrainOptions; spec?: ModelSpec; perEpoch?: number }[] = [
  {
    name: 'SGD (Nesterov), warm-up + cosine, augmentation, per-pixel mean',
    options: {
      epochs: 3,
      batchSize: 16,
      deterministic: true,
      seed: 11,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
      warmup: { iterations: 4 },
      schedule: { type: 'cosine' },
      augment: { padCrop: 2, flip: true },
      normalize: 'per-pixel',
      logEvery: 1,
    },
  },
  {
    name: 'AdamW, label smoothing, reduce-on-plateau on the training loss, ResNet-110 warm-up',
    options: {
      epochs: 3,
      batchSize: 16,
      deterministic: true,
      seed: 12,
      optimizer: { type: 'adamw', lr: 2e-3 },
      labelSmoothing: 0.1,
      schedule: { type: 'plateau', metric: 'train_loss', patience: 0, factor: 0.5 },
      errorWarmup: { lr: 1e-4, untilTrainError: 0.7 },
      logEvery: 1,
    },
  },
  {
    // The masks, the policy's operations, the erased boxes and the mix draws follow from the seed and the
    // iteration: a resumed run draws what the uninterrupted one drew.
    name: 'SGD, stochastic depth 0.3, TrivialAugment, random erasing 0.25, mixup 0.2 and cutmix 1.0',
    spec: { dropPath: 0.3 },
    options: {
      augment: { trivialAugment: true, randomErasing: { prob: 0.25 }, mix: { mixup: 0.2, cutmix: 1.0 } },
      epochs: 3,
      batchSize: 16,
      deterministic: true,
      seed: 13,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      logEvery: 1,
    },
  },
  {
    // timm's RandAugment draws from the same generator; repeated augmentation's rounded epoch (64 of 96 images,
    // 8 batches of 8: an abort after the first epoch lands mid-epoch with room for the abort's lag).
    name: "timm's RandAugment rand-m9-mstd0.5-inc1, repeated augmentation 2 rounded to 64",
    spec: {},
    perEpoch: 8,
    options: {
      augment: { timmRandAugment: 'rand-m9-mstd0.5-inc1' },
      augRepeats: 2,
      augRepeatsRound: 64,
      epochs: 3,
      batchSize: 8,
      deterministic: true,
      seed: 17,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      logEvery: 1,
    },
  },
];

describe('exact resume', () => {
  for (const recipe of RECIPES) {
    it(`stopped by an AbortSignal mid-epoch and resumed: bit-identical to the uninterrupted run (${recipe.name})`, async () => {
      const data = await syntheticDataset(96, [1, 8, 8], 3);
      const spec = { arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5, ...recipe.spec };
      const reference = await createModel(spec);
      const full = await train(reference, data, recipe.options);
      const perEpoch = recipe.perEpoch ?? 6;
      expect(full.iteration).toBe(3 * perEpoch);
      const expected = await weightsHash(reference);
      if (recipe.spec?.dropPath) {
        // The drops change the run: without them it ends elsewhere.
        const without = await createModel({ ...spec, dropPath: 0 });
        await train(without, data, recipe.options);
        expect(await weightsHash(without)).not.toBe(expected);
      }

      const dir = await tempDir();
      const model = await createModel(spec);
      const controller = new AbortController();
      const first = await train(model, data, {
        ...recipe.options,
        signal: controller.signal,
        checkpoint: { dir },
        onProgress: (e) => {
          if (e.kind === 'iteration' && e.iteration === perEpoch + 1) controller.abort();
        },
      });
      expect(first.aborted).toBe(true);
      const file = path.join(dir, `checkpoint-${first.iteration}.safetensors`);
      // Aborted in the second epoch; the run stops an iteration or so later (the abort reaches the native loop
      // between iterations), mid-epoch.
      expect(first.iteration > perEpoch && first.iteration < 3 * perEpoch).toBeTruthy();
      expect(first.iteration % perEpoch).not.toBe(0);
      const { model: resumed, run } = await resumeTraining(file, data);
      const rest = await run;
      expect(rest.iteration).toBe(3 * perEpoch);
      expect(await weightsHash(resumed)).toBe(expected);
      expect(rest.history.filter((e) => e.kind === 'epoch').length).toBe(3);
    });
  }

  it("a process killed after a periodic checkpoint resumes to the uninterrupted run's weights", async () => {
    const dir = await tempDir();
    const options = { ...RECIPES[0].options, epochs: 4 };
    const script = `
      const { createModel, fromArrays, train } = require(${JSON.stringify(DIST)});
      ${syntheticSource()}
      (async () => {
        const data = await fromArrays(syntheticArrays(96, [1, 8, 8], 3));
        const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5 });
        await train(model, data, { ...${JSON.stringify(options)}, checkpoint: { dir: ${JSON.stringify(dir)}, everyIterations: 4, keepLast: 10 },
          onProgress: () => { const t = Date.now(); while (Date.now() - t < 30); } });
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const file = path.join(dir, 'checkpoint-12.safetensors');
    await waitFor(
      async () =>
        fsp.access(file).then(
          () => true,
          () => false,
        ),
      120_000,
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const data = await syntheticDataset(96, [1, 8, 8], 3);
    const { model, run } = await resumeTraining(file, data);
    expect((await run).iteration).toBe(24);
    const reference = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5 });
    await train(reference, data, options);
    expect(await weightsHash(model)).toBe(await weightsHash(reference));
  });

  it("checkpoint.resume 'last': the same train() call run again continues the stopped run to the uninterrupted run's weights", async () => {
    const options = RECIPES[0].options;
    const data = await syntheticDataset(96, [1, 8, 8], 3);
    const reference = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5 });
    await train(reference, data, options);
    const dir = await tempDir();
    // What a script does under torchrun --max-restarts: the same call every time; the first finds no checkpoint.
    const attempt = async (stopAt?: number) => {
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5 });
      const controller = new AbortController();
      const result = await train(model, data, {
        ...options,
        signal: controller.signal,
        checkpoint: { dir, everyIterations: 4, onCancel: false, resume: 'last' },
        onProgress: (e) => {
          if (e.kind === 'iteration' && e.iteration === stopAt) controller.abort();
        },
      });
      return { model, result };
    };
    const first = await attempt(10); // stopped at 10 with no checkpoint of it: the newest is iteration 8's
    expect(first.result.aborted).toBe(true);
    expect(first.result.resumedFrom).toBeUndefined();
    const second = await attempt();
    expect(second.result.resumedFrom).toEqual({ file: path.join(dir, 'last.safetensors'), iteration: 8 });
    expect(second.result.iteration).toBe(18);
    expect(second.result.history.filter((e) => e.kind === 'epoch').length).toBe(3);
    expect(await weightsHash(second.model)).toBe(await weightsHash(reference));
    // A finished run asked again: nothing left to do, the weights are the run's.
    const third = await attempt();
    expect([third.result.resumedFrom?.iteration, third.result.iteration]).toEqual([18, 18]);
    expect(await weightsHash(third.model)).toBe(await weightsHash(reference));
  });

  it("checkpoint.resume 'last' refuses another model, other options or other data, naming the difference", async () => {
    const dir = await tempDir();
    const data = await syntheticDataset(48, [1, 8, 8], 3);
    const options = { iterations: 3, batchSize: 16, optimizer: { type: 'sgd' as const, lr: 0.1 } };
    const run = async (arch: string, o: TrainOptions, d = data) =>
      train(await createModel({ arch, inChannels: 1, numClasses: 3, seed: 5 }), d, {
        ...o,
        checkpoint: { dir, resume: 'last' },
      });
    await run('cifar-resnet20', options);
    const last = path.join(dir, 'last.safetensors');
    const lr = await rejection(run('cifar-resnet20', { ...options, optimizer: { type: 'sgd', lr: 0.2 } }));
    expect(lr).toBeInstanceOf(CheckpointError);
    expect(lr.message).toBe(
      `${last}: checkpoint.resume 'last' continues the run of this checkpoint, and the options given differ from ` +
        "its run's in optimizer: give this run another checkpoint.dir, or remove the folder to start over",
    );
    const arch = await rejection(run('cifar-resnet32', options));
    expect(arch.message).toMatch(/the model given differs from its model in arch, depths: give this run another/);
    const other = await rejection(run('cifar-resnet20', options, await syntheticDataset(64, [1, 8, 8], 3)));
    expect(other.message).toMatch(/was trained on .* \(48 images .*; the data given is .* \(64 images/);
  });

  it('refuses to resume on different data, naming both', async () => {
    const dir = await tempDir();
    const data = await syntheticDataset(48, [1, 8, 8], 3);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5 });
    await train(model, data, { epochs: 1, batchSize: 16, checkpoint: { dir } });
    const other = await syntheticDataset(64, [1, 8, 8], 3);
    await expect(resumeTraining(path.join(dir, 'last.safetensors'), other)).rejects.toThrow(
      /was trained on .* \(48 images of \[1, 8, 8\], 3 classes\); the data given is .* \(64 images/,
    );
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('policy', () => {
  it('every N iterations, keeps the last K, keeps the best by the chosen metric, and a final one', async () => {
    const dir = await tempDir();
    const data = await syntheticDataset(96, [1, 8, 8], 3);
    const { train: tr, validation } = await data.split({ validation: 32, seed: 2 });
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 5 });
    const saved: string[] = [];
    const result = await train(model, tr, {
      epochs: 6,
      batchSize: 16,
      validation,
      optimizer: { type: 'sgd', lr: 0.05 },
      checkpoint: {
        dir,
        everyIterations: 3,
        keepLast: 2,
        keepBest: 'val_loss',
        onSaved: (f, kind) => saved.push(`${kind}:${path.basename(f)}`),
      },
    });
    expect(result.iteration).toBe(24);
    const files = (await fsp.readdir(dir)).sort();
    expect(files).toEqual([
      'best.safetensors',
      'checkpoint-21.safetensors',
      'checkpoint-24.safetensors',
      'last.safetensors',
    ]);
    expect(
      saved.includes('periodic:checkpoint-3.safetensors') && saved.includes('final:checkpoint-24.safetensors'),
    ).toBeTruthy();
    const best = await readCheckpoint(path.join(dir, 'best.safetensors'));
    const losses = result.history.filter((e) => e.evaluations?.val).map((e) => [e.iteration, e.evaluations!.val!.loss]);
    const min = losses.reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(best.state.iteration).toBe(min[0]);
    const last = await readCheckpoint(path.join(dir, 'last.safetensors'));
    expect(last.state.iteration).toBe(24);
    expect(last.versions.package).toBe('0.1.0');
    expect(last.versions.libtorch).toMatch(/^\d+\.\d+/);
    expect(last.options.epochs).toBe(6);
    expect(last.optimizer.size > 0 && last.model.has('layer3.2.bn2.running_var')).toBeTruthy();
    const { model: restored } = await loadCheckpoint(path.join(dir, 'last.safetensors'));
    expect(await weightsHash(restored)).toBe(await weightsHash(model));
  });
});

describe('atomic writes', () => {
  it('a writer killed at random points leaves the previous file intact and loadable', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'state.safetensors');
    const script = `
      const { writeSafetensors } = require(${JSON.stringify(path.join(DIST, 'io', 'safetensors.js'))});
      (async () => {
        for (let i = 1; ; i++) {
          const data = new Float32Array(4 * 1024 * 1024).fill(i);
          await writeSafetensors(${JSON.stringify(file)}, [{ name: 'x', dtype: 'F32', shape: [data.length], data }], { i: String(i) });
          process.stdout.write(i + '\\n');
        }
      })();`;
    let previous = 0;
    for (let round = 0; round < 6; round++) {
      const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => child.stdout!.once('data', r));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const st = await readSafetensors(file);
      const i = Number(st.metadata.i);
      expect(i).toBeGreaterThanOrEqual(1);
      const x = st.tensors.get('x')!;
      const values = new Float32Array(
        x.bytes.buffer.slice(x.bytes.byteOffset, x.bytes.byteOffset + x.bytes.byteLength),
      );
      expect(values.every((v) => v === i)).toBeTruthy();
      previous = i;
    }
    expect(previous).toBeGreaterThan(0);
  });
});

describe('untrusted checkpoint files', () => {
  async function validCheckpoint(): Promise<string> {
    const dir = await tempDir();
    const data = await syntheticDataset(32, [1, 8, 8], 2);
    const model = await createModel({
      block: 'basic',
      depths: [1],
      widths: [4],
      stem: 'cifar',
      inChannels: 1,
      numClasses: 2,
      seed: 1,
    });
    await train(model, data, { iterations: 2, batchSize: 16, checkpoint: { dir } });
    return path.join(dir, 'last.safetensors');
  }
  it('names the problem of truncated, oversized-header, wrong-type and bad-metadata files', async () => {
    const file = await validCheckpoint();
    const bytes = await fsp.readFile(file);
    const dir = path.dirname(file);
    const variant = async (name: string, content: Buffer) => {
      await fsp.writeFile(path.join(dir, name), content);
      return path.join(dir, name);
    };
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const cases: [string, Buffer, RegExp][] = [
      ['truncated.safetensors', bytes.subarray(0, bytes.length - 100), /runs past the end of the file \(truncated\?/],
      ['tiny.safetensors', bytes.subarray(0, 5), /truncated: 5 bytes/],
      [
        'huge-header.safetensors',
        Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x40]), bytes.subarray(8)]),
        /header length \d+ exceeds the limit/,
      ],
      [
        'cut-header.safetensors',
        Buffer.concat([bytes.subarray(0, 8), bytes.subarray(8, 8 + headerLength - 10)]),
        /truncated: the header claims/,
      ],
      [
        'not-json.safetensors',
        Buffer.concat([
          bytes.subarray(0, 8),
          Buffer.from('{'.padEnd(headerLength, 'x')),
          bytes.subarray(8 + headerLength),
        ]),
        /not valid JSON/,
      ],
    ];
    for (const [name, content, pattern] of cases) {
      const f = await variant(name, content);
      const e = await rejection(readCheckpoint(f));
      expect([name, e instanceof CheckpointError, e.file, e.message]).toEqual([
        name,
        true,
        f,
        expect.stringMatching(pattern),
      ]);
    }
    const weights = path.join(dir, 'weights.safetensors');
    const m = await createModel({ arch: 'cifar-resnet20', seed: 1 });
    await m.saveWeights(weights);
    await expect(readCheckpoint(weights)).rejects.toThrow(/holds weights only \(use loadWeights\)/);
    const st = await readSafetensors(file);
    const rewritten = path.join(dir, 'bad-state.safetensors');
    await writeSafetensors(
      rewritten,
      [...st.tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.bytes })),
      { ...st.metadata, state: JSON.stringify({ ...JSON.parse(st.metadata.state), iteration: -3 }) },
    );
    await expect(readCheckpoint(rewritten)).rejects.toThrow(
      /metadata state.iteration: expected an integer ≥ 0, got -3/,
    );
  });
  it('random corruptions: every outcome is a loaded checkpoint or a CheckpointError (property test)', async () => {
    const file = await validCheckpoint();
    const bytes = await fsp.readFile(file);
    const dir = path.dirname(file);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ kind: fc.constant('truncate'), at: fc.integer({ min: 0, max: bytes.length - 1 }) }),
          fc.record({
            kind: fc.constant('flip'),
            at: fc.integer({ min: 0, max: bytes.length - 1 }),
            bit: fc.integer({ min: 0, max: 7 }),
          }),
          fc.record({
            kind: fc.constant('header'),
            at: fc.integer({ min: 0, max: Math.min(4000, bytes.length - 1) }),
            bit: fc.integer({ min: 0, max: 7 }),
          }),
          fc.record({ kind: fc.constant('length'), value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
        ) as fc.Arbitrary<{ kind: string; at?: number; bit?: number; value?: bigint }>,
        async (c: { kind: string; at?: number; bit?: number; value?: bigint }) => {
          const copy = Buffer.from(bytes);
          let content: Buffer = copy;
          if (c.kind === 'truncate') content = copy.subarray(0, c.at);
          else if (c.kind === 'length') copy.writeBigUInt64LE(c.value!);
          else copy[c.at!] ^= 1 << c.bit!;
          const f = path.join(dir, `fuzz-${n++}.safetensors`);
          await fsp.writeFile(f, content);
          try {
            await loadCheckpoint(f);
          } catch (e) {
            if (!(e instanceof CheckpointError))
              throw new Error(`${c.kind}: ${(e as Error).name}: ${(e as Error).message}`);
          } finally {
            await fsp.rm(f);
          }
        },
      ),
      { numRuns: 150, seed: 42 },
    );
  });
});
