// Misuse refused or documented (docs/RELIABILITY.md, "Misuse"), writes that fail or are cut short, and short runs
// of the crash and soak harnesses (reliability/), whose full runs and counts are in docs/RELIABILITY.md.
import { execFileSync, spawnSync } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';

import {
  CheckpointError,
  DisposedError,
  DivergedError,
  Model,
  createModel,
  fromArrays,
  readCheckpoint,
  train,
} from '../../lib';
import { tempDir } from '../../harness/files';
import { syntheticDataset } from '../../harness/synthetic';
import { rejection } from '../helpers/errors';

const ROOT = path.resolve(__dirname, '..', '..');

async function parameters(model: Model): Promise<Map<string, Buffer>> {
  const trainable = new Set(
    model
      .stateDict()
      .filter((e) => e.kind === 'parameter')
      .map((e) => e.name),
  );
  const out = new Map<string, Buffer>();
  for (const t of await model.handle().exportState())
    if (trainable.has(t.name)) out.set(t.name, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return out;
}

/** Files in `dir` under a final name (not a writer's temporary file) that fail to load as checkpoints. */
async function unloadable(dir: string): Promise<string[]> {
  const bad: string[] = [];
  for (const f of await fsp.readdir(dir))
    if (f.endsWith('.safetensors')) await readCheckpoint(path.join(dir, f)).catch(() => bad.push(f));
  return bad;
}

describe('misuse', () => {
  it('a NaN in the data stops training with DivergedError at that batch, before its step', async () => {
    // 64 float images in order (no shuffle), batches of 16: the fourth batch holds NaN pixels.
    const images = new Float32Array(64 * 1 * 8 * 8).map((_, i) => ((i * 37) % 101) / 101);
    for (let i = 48 * 64; i < 64 * 64; i += 64) images[i] = NaN;
    const data = await fromArrays({
      images,
      shape: [64, 1, 8, 8],
      labels: Array.from({ length: 64 }, (_, i) => i % 2),
    });
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const dir = await tempDir();
    const error = await rejection(
      train(model, data, {
        iterations: 8,
        batchSize: 16,
        shuffle: false,
        normalize: 'none', // statistics over the data would carry the NaN into every image
        checkpoint: { dir, everyIterations: 1, atEnd: false, onCancel: false },
      }).done,
    );
    expect(error).toBeInstanceOf(DivergedError);
    // libtorch's path carries the NaN into the loss; oneDNN's ReLU maps NaN to 0, so there only the gradients are.
    expect(error.message).toMatch(/diverged at iteration 4: (the loss is -?nan|a gradient is not finite)/);
    expect(error.message).toMatch(/step was not applied/);
    // The parameters are those after iteration 3, as its checkpoint holds them.
    const saved = await readCheckpoint(path.join(dir, 'checkpoint-3.safetensors'));
    expect(saved.state.iteration).toBe(3);
    const now = await parameters(model);
    for (const [name, bytes] of now) {
      expect(Buffer.compare(bytes, saved.model.get(name)!.bytes)).toBe(0);
    }
    expect(
      [...now.values()].every((b) => new Float32Array(b.buffer, b.byteOffset, b.length / 4).every(Number.isFinite)),
    ).toBe(true);
  });

  it('dataset.dispose() during training: the run finishes; later uses throw DisposedError', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    let disposedAt = 0;
    const result = await train(model, data, {
      iterations: 12,
      batchSize: 16,
      logEvery: 1,
      onProgress: (e) => {
        if (e.iteration !== 2 || data.disposed) return;
        data.dispose();
        disposedAt = e.iteration;
      },
    });
    expect(disposedAt).toBe(2);
    expect(result).toMatchObject({ iteration: 12, aborted: false });
    expect(data.disposed).toBe(true);
    expect(() => data.labelCounts()).toThrow(DisposedError);
    expect(await rejection(train(model, data, { iterations: 1, batchSize: 16 }).done)).toBeInstanceOf(DisposedError);
    expect(await rejection(model.evaluate(data))).toBeInstanceOf(DisposedError);
    data.dispose(); // twice is harmless
  });

  it('model.dispose() during training: the run finishes; later calls throw DisposedError', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const result = await train(model, data, {
      iterations: 12,
      batchSize: 16,
      logEvery: 1,
      onProgress: (e) => e.iteration === 2 && model.dispose(),
    });
    expect(result).toMatchObject({ iteration: 12, aborted: false });
    expect(model.disposed).toBe(true);
    const x = { data: new Float32Array(64), shape: [1, 1, 8, 8] };
    expect(await rejection(model.forward(x))).toBeInstanceOf(DisposedError);
    expect(await rejection(model.saveWeights(path.join(await tempDir(), 'w.safetensors')))).toBeInstanceOf(
      DisposedError,
    );
  });

  it('dispose() while a predict() is in flight: the predict answers as if it had not been disposed', async () => {
    const x = { data: Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i)), shape: [2, 1, 8, 8] };
    const reference = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 4 });
    const expected = await reference.predict(x);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 4 });
    const pending = model.predict(x);
    model.dispose();
    expect(await pending).toEqual(expected);
    expect(await rejection(model.predict(x))).toBeInstanceOf(DisposedError);
  });
});

describe('writes that fail or are cut short', () => {
  it('a checkpoint write that fails stops the run with CheckpointError naming the file; earlier files are intact', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const dir = await tempDir();
    let iterations = 0;
    const error = await rejection(
      train(model, data, {
        iterations: 40,
        batchSize: 16,
        logEvery: 1,
        onProgress: (e) => (iterations = e.iteration),
        checkpoint: {
          dir,
          everyIterations: 1,
          // After the first, last.safetensors cannot be replaced: a folder took its name (EISDIR on rename).
          onSaved: (file) => {
            if (path.basename(file) !== 'checkpoint-1.safetensors') return;
            void fsp.rm(path.join(dir, 'last.safetensors')).then(() => fsp.mkdir(path.join(dir, 'last.safetensors')));
          },
        },
      }).done,
    );
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toMatch(/last\.safetensors: could not be written \(.*\); earlier checkpoints are intact/);
    expect(iterations).toBeLessThan(40); // it stopped rather than train on without checkpoints
    const files = await fsp.readdir(dir);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(files).toContain('checkpoint-1.safetensors');
    await fsp.rmdir(path.join(dir, 'last.safetensors'));
    expect(await unloadable(dir)).toEqual([]);
  });

  it('a disk that fills during checkpoint writes: CheckpointError (ENOSPC); what is on the disk loads', async () => {
    const dir = await tempDir();
    // A 2 MiB tmpfs, where root may mount one; elsewhere this case is reported as skipped.
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]).status === 0;
    if (!mounted) {
      console.warn('skipped: cannot mount a small tmpfs here (not root, or no CAP_SYS_ADMIN)');
      return;
    }
    try {
      const data = await syntheticDataset(64, [1, 8, 8], 2);
      const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
      const error = await rejection(
        train(model, data, { iterations: 40, batchSize: 16, checkpoint: { dir, everyIterations: 1 } }).done,
      );
      expect(error).toBeInstanceOf(CheckpointError);
      expect(error.message).toMatch(/no space left on device/i);
      const files = await fsp.readdir(dir);
      expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(files.filter((f) => /^checkpoint-\d+\.safetensors$/.test(f)).length).toBeGreaterThan(0);
      expect(await unloadable(dir)).toEqual([]);
    } finally {
      spawnSync('umount', [dir]);
    }
  });

  it("a killed writer's temporary file is removed by the next write of that file; a live writer's is kept", async () => {
    const dir = await tempDir();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const stale = `.w.safetensors.${dead.stdout}.deadbeef.tmp`;
    const live = `.w.safetensors.${process.pid}.cafebabe.tmp`;
    const other = `.other.safetensors.${dead.stdout}.deadbeef.tmp`;
    for (const f of [stale, live, other]) await fsp.writeFile(path.join(dir, f), 'partial');
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    await model.saveWeights(path.join(dir, 'w.safetensors'));
    expect((await fsp.readdir(dir)).sort()).toEqual([live, other, 'w.safetensors'].sort());
  });
});

describe('the crash and soak harnesses, short runs', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.bench.json'], { cwd: ROOT });
  });
  const harness = (script: string, args: string[], timeout: number) =>
    spawnSync(process.execPath, [path.join(ROOT, '.test-build', 'reliability', script), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout,
    });

  it('SIGKILL during checkpoint, weights and hot-reload writes: every file loads, resumes, and serving goes on', () => {
    const run = harness('crash.js', ['--runs', '6', '--seed', '2', '--max-delay-ms', '1500'], 400_000);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/\| 6 runs\s+\| (\d+)\s+\|.*\| 0\s+\|\n/);
    expect(run.stdout.match(/\| 0\s+\|\n/g)).toHaveLength(2); // no problem in either part
  }, 500_000);

  it('create/dispose cycles and terminated training workers: the process lives on, RSS stays flat', () => {
    const run = harness('soak.js', ['--n', '1000', '--parts', 'lifecycle,workers', '--bound-mb', '32'], 300_000);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/\| createModel \+ forward \+ dispose\s+\| 100 .*\| yes/);
    expect(run.stdout).toMatch(/\| fromArrays \+ subset \+ dispose\s+\| 100 .*\| yes/);
    expect(run.stdout).toMatch(/\| worker terminated mid-training\s+\| 10 .*\| yes/);
  }, 400_000);
});
