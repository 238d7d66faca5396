// Deterministic synthetic datasets shared by tests and the child processes they start.
import { Dataset, createModel, fromArrays, train } from '../lib';
import type { NativeTensorData } from '../lib/native';
import type { DistributedOptions } from '../lib/train/options/distributed';

export function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** The arrays of syntheticDataset (a child process builds the same data from this function's source). */
export function syntheticArrays(n: number, shape: [number, number, number], classes: number, seed = 1) {
  const images = pseudoRandomBytes(n * shape[0] * shape[1] * shape[2], seed);
  const labels = Array.from({ length: n }, (_, i) => (i * 7 + seed) % classes);
  return { images, shape: [n, ...shape], labels, numClasses: classes };
}

export async function syntheticDataset(
  n: number,
  shape: [number, number, number],
  classes: number,
  seed = 1,
): Promise<Dataset> {
  return fromArrays(syntheticArrays(n, shape, classes, seed));
}

/** JavaScript for a child process (`node -e`): defines syntheticArrays() as the tests have it. */
export function syntheticSource(): string {
  return `${pseudoRandomBytes.toString()}\n${syntheticArrays.toString()}\n`;
}

/** SHA-256 over every parameter and buffer, in state_dict order. */
export async function weightsHash(model: import('../lib').Model): Promise<string> {
  const { createHash } = await import('crypto');
  const h = createHash('sha256');
  for (const t of await model.handle().exportState())
    h.update(t.name).update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return h.digest('hex');
}

/**
 * 4 SGD steps of CIFAR ResNet-8 on 64 synthetic 8x8 images, deterministic, on `device`, optionally in a process
 * group (`distributed`): the final iteration and state. What a group of one is compared with no group by.
 */
export async function fourSteps(
  device: string,
  distributed?: DistributedOptions,
): Promise<{ iteration: number; state: NativeTensorData[] }> {
  const data = await syntheticDataset(64, [1, 8, 8], 3, 5);
  const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 2, device });
  const result = await train(model, data, {
    iterations: 4,
    batchSize: 8,
    seed: 3,
    deterministic: true,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    ...(distributed ? { distributed } : {}),
  }).done;
  return { iteration: result.iteration, state: await model.handle().exportState() };
}
