// What is fuzzed: each reader with valid seed files made here (byte by byte, or by the package's own writers, or by
// PyTorch), how one case is loaded, and what a correct outcome is.
import { execFileSync } from 'child_process';
import { promises as fsp } from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

import { ImageError, ResnetError, ValidationError } from '../lib/errors';
import { createModel, fromArrays, train } from '../lib';
import { parseConfigText, resolveConfig } from '../lib/config/load';
import { parseCifarRecords } from '../lib/datasets/cifar';
import { parseIdx, readFileMaybeGzip } from '../lib/datasets/idx';
import { decodeImage } from '../lib/images';
import { readPytorchStateDict } from '../lib/io/pth';
import { encodeSafetensors, parseSafetensors, StoredTensor } from '../lib/io/safetensors';
import { readCheckpoint } from '../lib/train/checkpoint';
import { cifarRecord, idxBytes, pngBytes } from '../harness/fixtures';
import { pseudoRandomBytes, syntheticArrays } from '../harness/synthetic';

export interface Seed {
  bytes: Buffer;
}

export interface Target {
  extension: string;
  seeds(dir: string): Promise<Seed[]>;
  /** Inputs tried first, as they are (bombs, deep nesting): the cases random damage does not reach. */
  structured?: Buffer[];
  load(file: string, bytes: Buffer): Promise<unknown>;
  /** The error is typed for this input: it names the file (or, for configs, the field). */
  names(e: ResnetError, file: string): boolean;
  /** A load that succeeded is correct (formats with checksums: equal to a seed); otherwise the problem. */
  verify?(result: unknown, base: Seed, input: Buffer): string | undefined;
}

const namesFile = (e: ResnetError, file: string) => (e as { file?: string }).file === file || e.message.includes(file);

const idxSeeds = (): Buffer[] => [
  idxBytes(0x08, [20, 4, 4], pseudoRandomBytes(320, 1)),
  idxBytes(0x08, [20], pseudoRandomBytes(20, 2)),
  idxBytes(0x0c, [3, 2], Buffer.alloc(24, 7)),
];

function sameIdx(a: ReturnType<typeof parseIdx>, b: ReturnType<typeof parseIdx>): boolean {
  return (
    a.dims.length === b.dims.length &&
    a.dims.every((d, i) => d === b.dims[i]) &&
    Buffer.compare(
      Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength),
      Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
    ) === 0
  );
}

function sameState(a: Map<string, StoredTensor>, b: Map<string, StoredTensor>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.dtype !== t.dtype || u.shape.join() !== t.shape.join() || Buffer.compare(u.bytes, t.bytes) !== 0)
      return false;
  }
  return true;
}

let pthSeedState: Map<string, StoredTensor>[] = [];

export const TARGETS: Record<string, Target> = {
  idx: {
    extension: '-ubyte',
    async seeds() {
      return idxSeeds().map((bytes) => ({ bytes }));
    },
    async load(file, bytes) {
      return parseIdx(bytes, file);
    },
    names: namesFile,
  },
  'idx-gz': {
    extension: '-ubyte.gz',
    async seeds() {
      return idxSeeds().map((raw) => ({ bytes: zlib.gzipSync(raw) }));
    },
    async load(file) {
      return parseIdx(await readFileMaybeGzip(file), file);
    },
    names: namesFile,
    verify(result, _base, input) {
      // gzip carries a CRC-32 of its data: a load through gzip must be one of the seeds, byte for byte.
      if (input[0] !== 0x1f || input[1] !== 0x8b) return undefined;
      const r = result as ReturnType<typeof parseIdx>;
      return idxSeeds().some((s) => sameIdx(parseIdx(s, 'seed'), r))
        ? undefined
        : 'silent wrong tensor: a damaged gzip file loaded with data no seed holds';
    },
  },
  cifar: {
    extension: '.bin',
    async seeds() {
      const records = (n: number, seed: number) =>
        Buffer.concat(
          Array.from({ length: n }, (_, i) => cifarRecord([(i + seed) % 10], (c, y, x) => (c + y * x + seed) % 256)),
        );
      return [{ bytes: records(3, 1) }, { bytes: records(1, 5) }];
    },
    async load(file, bytes) {
      return parseCifarRecords(bytes, file, 1, 0, 10);
    },
    names: namesFile,
  },
  safetensors: {
    extension: '.safetensors',
    async seeds() {
      const enc = (t: Parameters<typeof encodeSafetensors>[0], md?: Record<string, string>) =>
        Buffer.concat(encodeSafetensors(t, md).map((b) => Buffer.from(b)));
      return [
        {
          bytes: enc(
            [
              { name: 'conv1.weight', dtype: 'F32', shape: [2, 1, 3, 3], data: new Float32Array(18).fill(0.5) },
              { name: 'bn1.num_batches_tracked', dtype: 'I64', shape: [], data: new BigInt64Array([3n]) },
            ],
            { format: 'pt', 'resnet-torch.spec': '{"arch":"cifar-resnet20"}' },
          ),
        },
        { bytes: enc([{ name: 'fc.bias', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) }]) },
      ];
    },
    async load(file, bytes) {
      return parseSafetensors(bytes, file);
    },
    names: namesFile,
  },
  checkpoint: {
    extension: '.safetensors',
    async seeds(dir) {
      const model = await createModel({ arch: 'cifar-resnet8', numClasses: 3, inChannels: 1, seed: 1 } as never);
      const data = await fromArrays(syntheticArrays(8, [1, 8, 8], 3));
      const ckpt = path.join(dir, 'seed-checkpoints');
      await train(model, data, {
        iterations: 2,
        batchSize: 4,
        checkpoint: { dir: ckpt, everyIterations: 1, keepLast: 2 },
      });
      model.dispose();
      const files = (await fsp.readdir(ckpt)).filter((f) => f.endsWith('.safetensors'));
      return Promise.all(files.map(async (f) => ({ bytes: await fsp.readFile(path.join(ckpt, f)) })));
    },
    async load(file) {
      return readCheckpoint(file);
    },
    names: namesFile,
  },
  pth: {
    extension: '.pth',
    async seeds(dir) {
      const file = path.join(dir, 'seed.pth');
      const script =
        'import torch, sys\n' +
        'torch.save({"conv1.weight": torch.arange(18.).reshape(2, 1, 3, 3), "bn1.running_var": torch.ones(2),' +
        ' "bn1.num_batches_tracked": torch.tensor(5)}, sys.argv[1])\n';
      execFileSync(process.env.RESNET_TORCH_PYTHON ?? '/usr/bin/python3', ['-c', script, file]);
      const bytes = await fsp.readFile(file);
      pthSeedState = [await readPytorchStateDict(file)];
      return [{ bytes }];
    },
    async load(file) {
      return readPytorchStateDict(file);
    },
    names: namesFile,
    verify(result) {
      // Every entry of a .pth zip carries a CRC-32: what loads must be the seed's tensors exactly.
      return pthSeedState.some((s) => sameState(s, result as Map<string, StoredTensor>))
        ? undefined
        : 'silent wrong tensor: a damaged .pth loaded with other tensors than the seed';
    },
  },
  'config-yaml': {
    extension: '.yaml',
    async seeds() {
      const root = path.join(__dirname, '..', '..', 'configs');
      return Promise.all(
        ['fashion-mnist-resnet20.yaml', 'cifar10-resnet110.yaml'].map(async (f) => ({
          bytes: await fsp.readFile(path.join(root, f)),
        })),
      );
    },
    structured: [
      // A billion laughs: aliases that expand exponentially.
      Buffer.from(
        ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
          .concat(
            Array.from(
              { length: 9 },
              (_, i) =>
                `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
                  .fill(`*${String.fromCharCode(97 + i)}`)
                  .join(',')}]`,
            ),
          )
          .join('\n'),
      ),
      Buffer.from(`model: ${'['.repeat(20000)}${']'.repeat(20000)}`),
      Buffer.from(`${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')} 1`),
      Buffer.from('__proto__: {polluted: true}\nmodel: {arch: resnet18}\n'),
      Buffer.from('train: {epochs: 1e400, batchSize: -0}\n'),
      Buffer.from('\u0000\uffff'.repeat(1000)),
    ],
    async load(file, bytes) {
      return resolveConfig(parseConfigText(bytes.toString('utf8'), file));
    },
    names: (e) => e instanceof ValidationError,
  },
  'config-json': {
    extension: '.json',
    async seeds() {
      const root = path.join(__dirname, '..', '..', 'configs');
      const yaml = (await import('yaml')).default;
      return Promise.all(
        ['fashion-mnist-resnet20.yaml', 'cifar10-resnet56.yaml'].map(async (f) => ({
          bytes: Buffer.from(JSON.stringify(yaml.parse(await fsp.readFile(path.join(root, f), 'utf8')), null, 1)),
        })),
      );
    },
    structured: [
      Buffer.from(`{"model": ${'['.repeat(100000)}${']'.repeat(100000)}}`),
      Buffer.from(`{"model": ${'{"a":'.repeat(50000)}1${'}'.repeat(50000)}}`),
      Buffer.from('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}'),
      Buffer.from('{"train": {"epochs": 1e999}}'),
    ],
    async load(file, bytes) {
      return resolveConfig(parseConfigText(bytes.toString('utf8'), file));
    },
    names: (e) => e instanceof ValidationError,
  },
  image: {
    extension: '.img',
    async seeds() {
      const sharp = (await import('sharp')).default;
      const rgb = Buffer.from(pseudoRandomBytes(16 * 16 * 3, 3));
      const raw = { raw: { width: 16, height: 16, channels: 3 as const } };
      return [
        { bytes: pngBytes(16, 16, 3, rgb) },
        { bytes: pngBytes(16, 16, 1, rgb.subarray(0, 256)) },
        { bytes: await sharp(rgb, raw).jpeg().toBuffer() },
        { bytes: await sharp(rgb, raw).webp().toBuffer() },
      ];
    },
    async load(file, bytes) {
      return decodeImage(bytes, { height: 8, width: 8, channels: 3, maxPixels: 4_000_000, name: file });
    },
    names: (e, file) => e instanceof ImageError && e.source === file,
  },
};
