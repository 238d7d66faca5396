// The model replicas a server runs its forwards on: one in this thread, or one per worker thread (each with its
// own batcher and its share of the cores). Either way the server sees one forward() and one drain.
import * as path from 'path';
import { Worker } from 'worker_threads';

import {
  AbortError,
  CheckpointError,
  DeadlineError,
  DisposedError,
  NativeError,
  OutOfMemoryError,
  OverloadedError,
  ResnetError,
  ShapeError,
} from '../errors';
import { Batcher, RequestOptions, createBatcher } from '../inference/batcher';
import type { InferenceModel } from '../inference/inference-model';
import { loadModel } from '../model/load';
import type { Preprocessing } from '../preprocess';
import type { Tensor } from '../tensor';

export interface ReplicaSettings {
  /** The weights or checkpoint file. */
  file: string;
  device: string;
  engine: 'native' | 'onnxruntime' | 'auto';
  /** 0: the model runs in the server's thread; N: N worker threads, one replica each. */
  workers: number;
  /** Intra-op threads per replica (0: libtorch's default). */
  threads: number;
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
}

/** What the server needs to know about the model it serves. */
export interface ReplicaInfo {
  numClasses: number;
  inChannels: number;
  classNames?: string[];
  preprocessing?: Preprocessing;
  inputSize: [number, number];
  engine: 'native' | 'onnxruntime';
  /** Why that engine ('auto': what was measured). */
  engineReason: string;
  /** What runs its operators: oneDNN's primitives or ATen's (native), or onnxruntime. */
  kernels: 'onednn' | 'aten' | 'onnxruntime';
}

export interface BatchEvent {
  size: number;
  ms: number;
}

export interface Replicas {
  readonly info: ReplicaInfo;
  forward(x: Tensor, options: RequestOptions): Promise<Tensor>;
  /** Images waiting across replicas. */
  queued(): number;
  /** Replicas able to take work (a crashed worker is not). */
  alive(): number;
  /** Finishes every accepted request, then frees the replicas. */
  close(): Promise<void>;
}

/** Loads the model and makes it an inference model on the chosen engine; used in-thread and by each worker. */
export async function loadInference(s: Pick<ReplicaSettings, 'file' | 'device' | 'engine'>): Promise<InferenceModel> {
  const model = await loadModel(s.file, { device: s.device });
  try {
    return await model.optimizeForInference({ engine: s.engine });
  } finally {
    model.dispose(); // the inference model holds its own copy of the weights
  }
}

export function infoOf(m: InferenceModel): ReplicaInfo {
  return {
    numClasses: m.numClasses,
    inChannels: m.inChannels,
    classNames: m.classNames,
    preprocessing: m.preprocessing,
    inputSize: m.inputSize,
    engine: m.engine,
    engineReason: m.engineReason,
    kernels: m.kernels,
  };
}

export async function startReplicas(s: ReplicaSettings, onBatch: (e: BatchEvent) => void): Promise<Replicas> {
  return s.workers === 0 ? inThread(s, onBatch) : workerPool(s, onBatch);
}

async function inThread(s: ReplicaSettings, onBatch: (e: BatchEvent) => void): Promise<Replicas> {
  const model = await loadInference(s);
  const batcher: Batcher = createBatcher(model, {
    maxBatch: s.maxBatch,
    maxDelayMs: s.maxDelayMs,
    maxQueue: s.maxQueue,
    onBatch,
  });
  return {
    info: infoOf(model),
    forward: (x, o) => batcher.forward(x, o),
    queued: () => batcher.stats().queued,
    alive: () => 1,
    async close() {
      await batcher.close();
      model.dispose();
    },
  };
}

// Messages between the server and a replica worker.
export type ToWorker =
  | { type: 'forward'; id: number; data: Float32Array; shape: number[]; timeoutMs?: number }
  | { type: 'abort'; id: number }
  | { type: 'close' };
export type FromWorker =
  | { type: 'ready'; info: ReplicaInfo }
  | { type: 'failed'; error: SerializedError }
  | { type: 'result'; id: number; data: Float32Array; shape: number[] }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'batch'; size: number; ms: number }
  | { type: 'closed' };

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
}

export function serializeError(e: unknown): SerializedError {
  const err = e as Partial<ResnetError>;
  return { name: err?.name ?? 'Error', code: err?.code, message: err?.message ?? String(e) };
}

/** The typed error a worker reported, rebuilt in this thread with the same message. */
export function reviveError(e: SerializedError): Error {
  switch (e.code) {
    case 'ERR_OVERLOADED':
      return new OverloadedError(e.message);
    case 'ERR_DEADLINE':
      return new DeadlineError(e.message);
    case 'ABORT_ERR':
      return new AbortError(e.message);
    case 'ERR_SHAPE':
      return new ShapeError(e.message);
    case 'ERR_OUT_OF_MEMORY':
      return new OutOfMemoryError(e.message);
    case 'ERR_DISPOSED':
      return new DisposedError('the replica');
    case 'ERR_CHECKPOINT':
      return Object.assign(new CheckpointError('', ''), { message: e.message });
    default:
      return e.code ? Object.assign(new ResnetError(e.message, e.code), { name: e.name }) : new NativeError(e.message);
  }
}

interface WorkerReplica {
  worker: Worker;
  pending: Map<number, { resolve(t: Tensor): void; reject(e: unknown): void; images: number }>;
  outstanding: number;
  alive: boolean;
  closed: Promise<void>;
}

function workerScript(): string {
  // Compiled: dist/serve/replica-worker.js beside this file. From the TypeScript sources (tests), the build's copy.
  const here = path.join(__dirname, 'replica-worker.js');
  return __filename.endsWith('.ts') ? path.join(__dirname, '..', '..', 'dist', 'serve', 'replica-worker.js') : here;
}

/** Starts one worker replica; resolves with its model's info once it is ready. */
function startWorker(
  s: ReplicaSettings,
  onBatch: (e: BatchEvent) => void,
  replicas: WorkerReplica[],
): Promise<ReplicaInfo> {
  const worker = new Worker(workerScript(), { workerData: s });
  const r: WorkerReplica = {
    worker,
    pending: new Map(),
    outstanding: 0,
    alive: true,
    closed: new Promise((resolve) => worker.once('exit', () => resolve())),
  };
  replicas.push(r);
  return new Promise<ReplicaInfo>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') resolve(m.info);
      else if (m.type === 'failed') reject(reviveError(m.error));
      else if (m.type === 'batch') onBatch(m);
      else if (m.type === 'result' || m.type === 'error') {
        const p = r.pending.get(m.id);
        if (!p) return;
        r.pending.delete(m.id);
        r.outstanding -= p.images;
        if (m.type === 'result') p.resolve({ data: m.data, shape: m.shape });
        else p.reject(reviveError(m.error));
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      r.alive = false;
      const error = new NativeError(`a replica worker exited (code ${code})`);
      reject(error);
      for (const p of r.pending.values()) p.reject(error);
      r.pending.clear();
      r.outstanding = 0;
    });
  });
}

async function workerPool(s: ReplicaSettings, onBatch: (e: BatchEvent) => void): Promise<Replicas> {
  let nextId = 1;
  const replicas: WorkerReplica[] = [];
  // The first replica resolves engine 'auto' (measuring alone, undisturbed); the others take its engine.
  let info: ReplicaInfo;
  try {
    info = await startWorker(s, onBatch, replicas);
  } catch (e) {
    await Promise.all(replicas.map((r) => r.worker.terminate()));
    throw e;
  }
  const rest = { ...s, engine: info.engine };
  const started = await Promise.allSettled(
    Array.from({ length: s.workers - 1 }, () => startWorker(rest, onBatch, replicas)),
  );
  const failed = started.find((x) => x.status === 'rejected');
  if (failed) {
    await Promise.all(replicas.map((r) => r.worker.terminate()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return {
    info,
    forward(x, o) {
      // The replica with the fewest images outstanding takes the request.
      const live = replicas.filter((r) => r.alive);
      if (live.length === 0) return Promise.reject(new NativeError('no replica worker is running'));
      const r = live.reduce((a, b) => (b.outstanding < a.outstanding ? b : a));
      if (o.signal?.aborted) return Promise.reject(new AbortError());
      const id = nextId++;
      const images = x.shape[0];
      r.outstanding += images;
      return new Promise<Tensor>((resolve, reject) => {
        const onAbort = () => {
          r.worker.postMessage({ type: 'abort', id } satisfies ToWorker);
        };
        o.signal?.addEventListener('abort', onAbort, { once: true });
        const done = () => o.signal?.removeEventListener('abort', onAbort);
        r.pending.set(id, {
          images,
          resolve: (t) => (done(), resolve(t)),
          reject: (e) => (done(), reject(e)),
        });
        const data = x.data.slice(); // transferred: the caller's array stays usable
        r.worker.postMessage({ type: 'forward', id, data, shape: x.shape, timeoutMs: o.timeoutMs } satisfies ToWorker, [
          data.buffer,
        ]);
      });
    },
    queued: () => replicas.reduce((sum, r) => sum + (r.alive ? r.outstanding : 0), 0),
    alive: () => replicas.filter((r) => r.alive).length,
    async close() {
      for (const r of replicas) if (r.alive) r.worker.postMessage({ type: 'close' } satisfies ToWorker);
      await Promise.all(replicas.map((r) => r.closed));
    },
  };
}
