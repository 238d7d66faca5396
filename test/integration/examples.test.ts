// Every script in examples/ runs here with short settings (EXAMPLES_QUICK=1), as a user runs it: a child process
// that requires 'resnet-torch' (the built package), so that none of them rots.
import { ChildProcess, spawn } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';

import { createModel, loadModel } from '../../lib';
import { pngBytes, writeFiles } from '../../harness/fixtures';
import { tempDir } from '../../harness/files';
import { runPython } from '../../harness/python';
import { itWithTorch } from '../helpers/reference';
import { pseudoRandomBytes } from '../../harness/synthetic';

const ROOT = path.resolve(__dirname, '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let modules: string;
beforeAll(async () => {
  // require('resnet-torch') from the examples finds this package, as it would once installed.
  modules = await tempDir('resnet-torch-examples-');
  await fsp.mkdir(path.join(modules, 'node_modules'));
  await fsp.symlink(ROOT, path.join(modules, 'node_modules', 'resnet-torch'), 'dir');
});

function example(
  name: string,
  args: string[],
  options: { cwd?: string; onOutput?: (out: { stdout: string; stderr: string }, child: ChildProcess) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'examples', name), ...args], {
      cwd: options.cwd ?? modules,
      env: { ...process.env, EXAMPLES_QUICK: '1', NODE_PATH: path.join(modules, 'node_modules') },
    });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => {
      out.stdout += d;
      options.onOutput?.(out, child);
    });
    child.stderr.on('data', (d) => {
      out.stderr += d;
      options.onOutput?.(out, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ...out }));
  });
}

const png = (seed: number) => pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, seed));

describe('examples/', () => {
  it('train.js: trains with a progress bar (plain lines in a pipe) and saves weights that load', async () => {
    const dir = await tempDir();
    const run = await example('train.js', [path.join(dir, 'w.safetensors')]);
    expect(run.stderr).toMatch(/epoch 1\/\d+ it 5\/20 loss/);
    expect(run.stdout).toMatch(/test error \d+\.\d\d% after 20 iterations/);
    expect(run.code).toBe(0);
    const model = await loadModel(path.join(dir, 'w.safetensors'));
    expect(model.classNames?.[0]).toBe('T-shirt/top');
  });

  it('resume.js: Ctrl-C stops with a checkpoint; running it again finishes the run', async () => {
    const dir = await tempDir();
    let sent = false;
    const first = await example('resume.js', [dir], {
      onOutput: (out, child) => {
        if (!sent && / it 3\/40 /.test(out.stderr)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(first.code).toBe(0);
    const stopped = Number(/stopped at iteration (\d+)/.exec(first.stdout)?.[1]);
    expect(stopped).toBeGreaterThanOrEqual(3);
    expect(stopped).toBeLessThan(40);
    const second = await example('resume.js', [dir]);
    expect(second.stdout).toMatch(/resuming from .*last\.safetensors/);
    expect(second.stdout).toMatch(/done: 40 iterations/);
    expect(second.code).toBe(0);
  });

  it('fine-tune.js: pretrains on five classes, then fine-tunes ten with the first stage frozen', async () => {
    const run = await example('fine-tune.js', []);
    expect(run.code).toBe(0);
    const [, trainable, total] = /fine-tuned (\d+) of (\d+) parameters; test error \d+\.\d\d%/.exec(run.stdout)!;
    // cifar-resnet20 on one channel: conv1 (144) + bn1 (32) + layer1 (3 blocks × (2 × 2,304 + 2 × 32)) are frozen.
    expect(Number(total) - Number(trainable)).toBe(144 + 32 + 3 * (2 * 2304 + 2 * 32));
  });

  itWithTorch('fine-tune-torchvision.js: a torchvision resnet18 .pth on an image folder', async () => {
    const dir = await tempDir();
    await runPython('torchvision_pth.py', ['resnet18', dir, '1', '32']);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 8; i++) {
      files[`images/cat/${i}.png`] = png(i);
      files[`images/dog/${i}.png`] = png(100 + i);
    }
    await writeFiles(dir, files);
    const run = await example('fine-tune-torchvision.js', [
      path.join(dir, 'model.pth'),
      path.join(dir, 'images'),
      path.join(dir, 'tuned.safetensors'),
    ]);
    expect(run.stdout).toMatch(/validation error \d+\.\d\d%/);
    expect(run.code).toBe(0);
    expect((await loadModel(path.join(dir, 'tuned.safetensors'))).classNames).toEqual(['cat', 'dog']);
  });

  it('serve-http.js: answers image bytes with predictions, bad bytes with a 400, and drains on Ctrl-C', async () => {
    const dir = await tempDir();
    const model = await createModel({
      arch: 'cifar-resnet20',
      numClasses: 4,
      seed: 1,
      classNames: ['a', 'b', 'c', 'd'],
    });
    await model.saveWeights(path.join(dir, 'w.safetensors'));
    let url = '';
    const results: { status: number; body: unknown }[] = [];
    const run = await example('serve-http.js', [path.join(dir, 'w.safetensors'), '0'], {
      onOutput: (out, child) => {
        const m = /listening on (\S+)/.exec(out.stdout);
        if (!m || url) return;
        url = m[1];
        void (async () => {
          for (const body of [png(1), Buffer.from('not an image')]) {
            const res = await fetch(url, { method: 'POST', body });
            results.push({ status: res.status, body: await res.json() });
          }
          results.push({ status: (await fetch(url)).status, body: null });
          child.kill('SIGINT');
        })();
      },
    });
    expect(run.code).toBe(0);
    expect(results.map((r) => r.status)).toEqual([200, 400, 404]);
    const predictions = (results[0].body as { predictions: { label: string; probability: number }[] }).predictions;
    expect(predictions).toHaveLength(3);
    expect(predictions.map((p) => p.label).every((l) => ['a', 'b', 'c', 'd'].includes(l))).toBe(true);
    expect(predictions.reduce((sum, p) => sum + p.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);
    expect((results[1].body as { error: string }).error).toMatch(/image/);
  });

  it('worker-train.js: trains in a worker thread and reports progress to the main thread', async () => {
    const dir = await tempDir();
    const run = await example('worker-train.js', [path.join(dir, 'w.safetensors')]);
    expect(run.stdout).toMatch(/worker: iteration 5\/10, loss \d+\.\d{4}/);
    expect(run.stdout).toMatch(/worker: done, test error \d+\.\d\d%/);
    expect(run.code).toBe(0);
  });

  it('onnx-export.js: the exported file gives our logits in onnxruntime-node', async () => {
    const dir = await tempDir();
    const run = await example('onnx-export.js', ['', path.join(dir, 'm.onnx')]);
    expect(run.stdout).toMatch(/40 logits, largest difference from onnxruntime \d\.\d\de-\d+/);
    expect(run.code).toBe(0);
  });
});
