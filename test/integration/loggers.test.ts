// train()'s loggers: metrics.csv and metrics.jsonl as the CLI writes them, and TensorBoard event files checked by
// an independent reader (test/python/read_tfevents.py: crcmod's CRC-32C, a strict protobuf walk).
import { promises as fsp } from 'fs';
import * as path from 'path';

import { ProgressEvent, ValidationError, createModel, loggers, progressBar, resumeTraining, train } from '../../lib';
import { tempDir } from '../../harness/files';
import { syntheticDataset } from '../../harness/synthetic';
import { runPython } from '../../harness/python';
import { rejection } from '../helpers/errors';

interface EventFile {
  records: number;
  file_version: string;
  scalars: { step: number; tag: string; value: number }[];
  session_logs: { step: number; status: number; msg: string }[];
}

async function readEvents(dir: string): Promise<EventFile[]> {
  const files = (await fsp.readdir(dir)).filter((f) => f.startsWith('events.out.tfevents.')).sort();
  return Promise.all(files.map(async (f) => JSON.parse(await runPython('read_tfevents.py', [path.join(dir, f)]))));
}

describe('loggers', () => {
  it('csv, jsonl and tensorboard receive every event; the event file holds each scalar at its step', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const validation = await syntheticDataset(32, [1, 8, 8], 2, 5);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const dir = await tempDir();
    const seen: ProgressEvent[] = [];
    await train(model, data, {
      iterations: 12,
      batchSize: 16,
      logEvery: 2,
      diagnostics: true,
      evalEvery: { iterations: 4 },
      validation,
      onProgress: (e) => seen.push(e),
      loggers: [loggers.csv(dir), loggers.jsonl(dir), loggers.tensorboard(dir)],
    });
    const jsonl = (await fsp.readFile(path.join(dir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(jsonl).toEqual(JSON.parse(JSON.stringify(seen)));
    const csv = (await fsp.readFile(path.join(dir, 'metrics.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toMatch(/^kind,iteration,epoch,lr,loss,train_error,/);
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 2).join(','))).toEqual(
      seen.map((e) => `${e.kind},${e.iteration}`),
    );

    const [events] = await readEvents(dir);
    expect(events.file_version).toBe('brain.Event:2');
    const at = (tag: string) => events.scalars.filter((s) => s.tag === tag);
    const iterations = seen.filter((e) => e.kind === 'iteration');
    expect(at('train/loss').map((s) => s.step)).toEqual(iterations.map((e) => e.iteration));
    expect(at('train/loss').map((s) => s.value)).toEqual(iterations.map((e) => Math.fround(e.loss!)));
    expect(at('train/lr').map((s) => s.value)).toEqual(iterations.map((e) => Math.fround(e.lr)));
    const evaluated = seen.filter((e) => e.evaluations?.val);
    expect(at('val/error').map((s) => [s.step, s.value])).toEqual(
      evaluated.map((e) => [e.iteration, Math.fround(e.evaluations!.val!.top1Error)]),
    );
    // cifar-resnet8: 3 basic blocks, one gradient norm and one response std each, at every logged iteration.
    const blocks = iterations[0].diagnostics!.gradNorms.length;
    expect(blocks).toBe(3);
    expect(at('diagnostics/grad_norm/block002').map((s) => s.value)).toEqual(
      iterations.map((e) => Math.fround(e.diagnostics!.gradNorms[2])),
    );
    expect(events.scalars.filter((s) => s.tag.startsWith('diagnostics/response_std/'))).toHaveLength(
      blocks * iterations.length,
    );
  });

  it('resuming drops what was logged after the checkpoint; TensorBoard gets a session start at that step', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const dir = await tempDir();
    const ckpt = path.join(dir, 'ckpt');
    const log = () => [loggers.jsonl(dir), loggers.csv(dir), loggers.tensorboard(dir)];
    await train(model, data, {
      iterations: 12,
      batchSize: 16,
      logEvery: 1,
      loggers: log(),
      checkpoint: { dir: ckpt, everyIterations: 4, keepLast: 5 },
    });
    const { run } = await resumeTraining(path.join(ckpt, 'checkpoint-8.safetensors'), data, { loggers: log() });
    await run;
    const jsonl = (await fsp.readFile(path.join(dir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const iterations = jsonl.filter((e) => e.kind === 'iteration').map((e) => e.iteration);
    expect(iterations).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // 9-12 once, from the resumed run
    const csvRows = (await fsp.readFile(path.join(dir, 'metrics.csv'), 'utf8')).trim().split('\n').slice(1);
    expect(csvRows.filter((l) => l.startsWith('iteration,')).map((l) => Number(l.split(',')[1]))).toEqual(iterations);
    const files = await readEvents(dir);
    expect(files).toHaveLength(2);
    expect(files[1].session_logs).toEqual([{ step: 8, status: 1, msg: 'resumed at iteration 8' }]);
    expect(files[1].scalars.filter((s) => s.tag === 'train/loss').map((s) => s.step)).toEqual([9, 10, 11, 12]);
  });

  it('a logger that is not one is a ValidationError naming it; one that throws stops the run with its error', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const bad = await rejection(train(model, data, { iterations: 2, loggers: [{ write() {} } as never] }).done);
    expect(bad).toBeInstanceOf(ValidationError);
    expect(bad.message).toMatch(/^loggers\[0\]: .*a logger/);
    let closed = false;
    const failing = {
      description: 'failing',
      open: async () => undefined,
      write: () => {
        throw new Error('disk gone');
      },
      close: async () => void (closed = true),
    };
    const error = await rejection(
      train(model, data, { iterations: 20, batchSize: 16, logEvery: 1, loggers: [failing] }).done,
    );
    expect(error.message).toBe('disk gone');
    expect(closed).toBe(true);
  });

  it('progressBar(): a bar redrawn in place on a TTY, ending on its own line; plain lines elsewhere', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const sink = (isTTY: boolean) => {
      const chunks: string[] = [];
      return {
        chunks,
        stream: { isTTY, columns: 200, write: (t: string) => chunks.push(t) } as unknown as NodeJS.WriteStream,
      };
    };
    const tty = sink(true);
    const plain = sink(false);
    const bars = [progressBar({ stream: tty.stream }), progressBar({ stream: plain.stream, label: '[a]' })];
    // 64 images, batches of 16: 4 iterations an epoch, 8 in all; logged at 4 and 8.
    await train(model, data, {
      iterations: 8,
      batchSize: 16,
      logEvery: 4,
      onProgress: (e) => bars.forEach((b) => b(e)),
    });
    // ESC (\x1b) spelled out as [ESC], so the expectations need no control characters.
    const ttyText = tty.chunks.join('').replaceAll('\x1b', '[ESC]');
    expect(ttyText).toMatch(
      /^\r\[ESC\]\[2K\[#{10}-{10}\] epoch 1\/2 it 4\/8 loss \d\.\d{4} err \d+\.\d\d% lr 0\.100 \d+ img\/s ETA/,
    );
    expect(ttyText).toMatch(/\r\[ESC\]\[2K\[#{20}\] epoch 2\/2 it 8\/8 [^\r\n]*\nepoch 2\/2 done: train loss/);
    const lines = plain.chunks.join('').trim().split('\n');
    expect(lines.map((l) => l.replace(/ loss .*/, ''))).toEqual([
      '[a] epoch 1/2 it 4/8',
      '[a] epoch 1/2 done: train',
      '[a] epoch 2/2 it 8/8',
      '[a] epoch 2/2 done: train',
    ]);
  });
});
