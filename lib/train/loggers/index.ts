/**
 * Loggers for train()'s `loggers` option: each receives every progress event of the run (rank 0's in a
 * distributed run). csv and jsonl write the files the CLI's run folders hold; tensorboard writes an event file.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';

import { writeFileAtomic } from '../../io/atomic';
import type { ProgressEvent } from '../events';
import { EventFileWriter } from './tensorboard';
import { csvLinesUpTo, csvRow, readJsonl } from './metrics-files';

/** Receives a run's progress events: loggers.csv(), loggers.jsonl(), loggers.tensorboard(), or your own. */
export interface Logger {
  /** What it writes, for messages ('csv runs/a/metrics.csv'). */
  readonly description: string;
  /** Before the first event. `resumedAt`: the run continues a checkpoint of that iteration (what was logged
   *  after it is dropped). */
  open(info: { resumedAt?: number }): Promise<void>;
  /** Each event, in order (a throw stops the run, as onProgress's does). */
  write(event: ProgressEvent): void;
  /** After the last event, also when the run fails. */
  close(): Promise<void>;
}

/** metrics.csv in `dir`: a header, then one row per event (kind, iteration, epoch, lr, loss, errors, ...). */
export function csv(dir: string): Logger {
  const file = path.join(dir, 'metrics.csv');
  return {
    description: `csv ${file}`,
    async open({ resumedAt }) {
      await fs.promises.mkdir(dir, { recursive: true });
      await writeFileAtomic(file, csvLinesUpTo(file, resumedAt));
    },
    write: (e) => fs.appendFileSync(file, `${csvRow(e)}\n`),
    close: async () => undefined,
  };
}

/** metrics.jsonl in `dir`: one JSON progress event per line. */
export function jsonl(dir: string): Logger {
  const file = path.join(dir, 'metrics.jsonl');
  return {
    description: `jsonl ${file}`,
    async open({ resumedAt }) {
      await fs.promises.mkdir(dir, { recursive: true });
      const kept = resumedAt === undefined ? [] : readJsonl(file).filter((e) => e.iteration <= resumedAt);
      await writeFileAtomic(
        file,
        kept.map((e) => `${JSON.stringify(e)}\n`),
      );
    },
    write: (e) => fs.appendFileSync(file, `${JSON.stringify(e)}\n`),
    close: async () => undefined,
  };
}

/** The scalars of one event, by TensorBoard tag. */
export function scalarsOf(e: ProgressEvent): [string, number][] {
  const out: [string, number][] = [];
  const add = (tag: string, v: number | undefined) => v !== undefined && out.push([tag, v]);
  if (e.kind === 'iteration') {
    add('train/loss', e.loss);
    add('train/error', e.trainError);
    add('train/lr', e.lr);
    add('train/images_per_second', e.imagesPerSecond);
    add('train/loss_scale', e.lossScale || undefined);
    e.diagnostics?.gradNorms.forEach((v, i) => add(`diagnostics/grad_norm/block${String(i).padStart(3, '0')}`, v));
    e.diagnostics?.responseStds.forEach((v, i) =>
      add(`diagnostics/response_std/block${String(i).padStart(3, '0')}`, v),
    );
  } else if (e.kind === 'epoch') {
    add('epoch/loss', e.loss);
    add('epoch/error', e.trainError);
  }
  for (const split of ['val', 'test'] as const) {
    const m = e.evaluations?.[split];
    add(`${split}/loss`, m?.loss);
    add(`${split}/error`, m?.top1Error);
    add(`${split}/top5_error`, m?.top5Error);
  }
  return out;
}

/** An event file (events.out.tfevents.*) in `dir` for TensorBoard: scalars for the loss, errors, lr, images/s,
 *  and with `diagnostics: true` each block's gradient norm and residual-response std. */
export function tensorboard(dir: string): Logger {
  let writer: EventFileWriter | undefined;
  return {
    get description() {
      return `tensorboard ${writer?.file ?? dir}`;
    },
    async open({ resumedAt }) {
      writer = new EventFileWriter(dir);
      if (resumedAt !== undefined) writer.sessionStart(resumedAt, `resumed at iteration ${resumedAt}`);
    },
    write: (e) => writer?.scalars(e.iteration, scalarsOf(e)),
    async close() {
      writer?.close();
      writer = undefined;
    },
  };
}

/** Whether `value` has a logger's open, write and close. */
export function isLogger(value: unknown): value is Logger {
  const v = value as Logger | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.open === 'function' &&
    typeof v.write === 'function' &&
    typeof v.close === 'function'
  );
}
