// engine: 'auto' on the CPU: the faster of our engine and onnxruntime-node on this machine for this network, by
// measurement: both run batches of 1 and 8 images at the inference size, alternating, and the lower median of
// (time at 1 + time at 8) wins. The verdict is cached per network, input size, CPU, threads and library versions
// (engine-choice-<hash>.json in the cache folder), so a second load measures nothing.
import { promises as fsp } from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';

import { cacheDir } from '../datasets/stats-cache';
import { writeFileAtomic } from '../io/atomic';
import type { Tensor } from '../tensor';
import type { InferenceBackend } from './inference-model';

/** The batches the calibration runs, and its rounds. */
export const CALIBRATION_BATCHES = [1, 8] as const;
const ROUNDS = 5;

export interface EngineVerdict {
  engine: 'native' | 'onnxruntime';
  /** Median ms of one round (a batch of 1 plus a batch of 8) per engine. */
  nativeMs: number;
  onnxruntimeMs: number;
  /** When it was measured (ISO time). */
  measuredAt: string;
}

interface VerdictFile extends EngineVerdict {
  key: string;
}

const fileOf = (key: string) =>
  path.join(cacheDir(), `engine-choice-${createHash('sha1').update(key).digest('hex').slice(0, 16)}.json`);

/** The cached verdict for `key`, if one was measured. */
export async function cachedVerdict(key: string): Promise<EngineVerdict | undefined> {
  try {
    const v = JSON.parse(await fsp.readFile(fileOf(key), 'utf8')) as VerdictFile;
    if (v.key !== key || (v.engine !== 'native' && v.engine !== 'onnxruntime')) return undefined;
    return { engine: v.engine, nativeMs: v.nativeMs, onnxruntimeMs: v.onnxruntimeMs, measuredAt: v.measuredAt };
  } catch {
    return undefined; // absent or unreadable: measure
  }
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

/** Times both engines on the same inputs, alternating, and caches which is faster (a cache that cannot be
 *  written is no error). */
export async function measureEngines(
  key: string,
  engines: { native: InferenceBackend; onnxruntime: InferenceBackend },
  [channels, height, width]: [number, number, number],
): Promise<EngineVerdict> {
  const inputs: Tensor[] = CALIBRATION_BATCHES.map((n) => ({
    data: new Float32Array(n * channels * height * width).map((_, i) => Math.sin(i)),
    shape: [n, channels, height, width],
  }));
  const round = async (b: InferenceBackend) => {
    const start = performance.now();
    for (const x of inputs) await b.run(x);
    return performance.now() - start;
  };
  for (const b of [engines.native, engines.onnxruntime]) await round(b); // first calls: plans, sessions, threads
  const ms = { native: [] as number[], onnxruntime: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    ms.native.push(await round(engines.native));
    ms.onnxruntime.push(await round(engines.onnxruntime));
  }
  const verdict: EngineVerdict = {
    nativeMs: median(ms.native),
    onnxruntimeMs: median(ms.onnxruntime),
    engine: median(ms.native) <= median(ms.onnxruntime) ? 'native' : 'onnxruntime',
    measuredAt: new Date().toISOString(),
  };
  try {
    const file = fileOf(key);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, [JSON.stringify({ key, ...verdict } satisfies VerdictFile)]);
  } catch {
    // a read-only cache folder: measured again next time
  }
  return verdict;
}

/** Why 'auto' chose what it chose, in words (InferenceModel.engineReason, the server's start line and /metrics). */
export function describeVerdict(v: EngineVerdict, cached: boolean): string {
  const batches = CALIBRATION_BATCHES.join(' + ');
  return (
    `auto: ${v.engine} measured faster on this machine (batches of ${batches}: native ${v.nativeMs.toFixed(2)} ms, ` +
    `onnxruntime ${v.onnxruntimeMs.toFixed(2)} ms${cached ? `, cached from ${v.measuredAt}` : ''})`
  );
}
