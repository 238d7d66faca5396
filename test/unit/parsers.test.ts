// The file formats, parsed from bytes laid out by hand from their specifications (safetensors' README, zip's
// APPNOTE, Python's pickle opcodes, protobuf's encoding guide, the IDX and CIFAR-10 pages), never by the
// writers under test.
import { CheckpointError, DatasetError } from '../../lib';
import { parseCifarRecords } from '../../lib/datasets/cifar';
import { parseIdx } from '../../lib/datasets/idx';
import { scanPickle } from '../../lib/io/pickle';
import { ProtoWriter } from '../../lib/io/protobuf';
import { encodeSafetensors, parseSafetensors, typedArrayOf } from '../../lib/io/safetensors';
import { readZip } from '../../lib/io/zip';
import { cifarRecord, idxBytes, zipStored } from '../../harness/fixtures';
import { thrown } from '../helpers/errors';

/** A safetensors file: 8-byte little-endian header length, the JSON header, the data. */
function safetensorsBytes(header: object, data: number[]): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, Buffer.from(data)]);
}

describe('safetensors', () => {
  const f32 = (...v: number[]) => [...Buffer.from(new Float32Array(v).buffer)];
  it('reads tensors and metadata from a file laid out by hand', () => {
    const bytes = safetensorsBytes(
      {
        __metadata__: { format: 'pt' },
        w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        n: { dtype: 'I64', shape: [], data_offsets: [8, 16] },
      },
      [...f32(1.5, -2), 7, 0, 0, 0, 0, 0, 0, 0],
    );
    const file = parseSafetensors(bytes, 'w.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(Array.from(typedArrayOf(file.tensors.get('w')!) as Float32Array)).toEqual([1.5, -2]);
    expect(typedArrayOf(file.tensors.get('n')!)).toEqual(BigInt64Array.from([7n]));
  });
  it('writes what it reads, with the header padded to 8 bytes', () => {
    const data = new Float32Array([0.25, 4]);
    const bytes = Buffer.concat(encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [1, 2], data }], { k: 'v' }));
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const back = parseSafetensors(bytes, 'x');
    expect(back.tensors.get('x')!.shape).toEqual([1, 2]);
    expect(Array.from(typedArrayOf(back.tensors.get('x')!) as Float32Array)).toEqual([0.25, 4]);
  });
  it('refuses bad offsets, sizes and headers, naming the file; says what a torch.save file is', () => {
    const cases: [Buffer, RegExp][] = [
      [safetensorsBytes({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(1, 2)), /./],
      [safetensorsBytes({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, f32(1, 2)), /./],
      [safetensorsBytes({ w: { dtype: 'Q8', shape: [2], data_offsets: [0, 2] } }, [1, 2]), /./],
      [Buffer.from([1, 2, 3]), /truncated/],
      [Buffer.from('PK\x03\x04 and the rest of a zip'), /load it with model\.loadPytorch/],
    ];
    for (const [bytes, pattern] of cases) {
      const e = thrown(() => parseSafetensors(bytes, 'bad.safetensors'));
      expect(e).toBeInstanceOf(CheckpointError);
      expect(e.file).toBe('bad.safetensors');
      expect(e.message).toMatch(pattern);
    }
  });
});

describe('zip (torch.save archives)', () => {
  it('reads stored entries and checks every CRC-32', () => {
    const archive = zipStored({ 'archive/data.pkl': Buffer.from('abc'), 'archive/data/0': Buffer.from([1, 2, 3, 4]) });
    const entries = readZip(archive, 'm.pth');
    expect([...entries.keys()]).toEqual(['archive/data.pkl', 'archive/data/0']);
    expect(Buffer.from(entries.get('archive/data/0')!)).toEqual(Buffer.from([1, 2, 3, 4]));
    const damaged = Buffer.from(archive);
    damaged[30 + 'archive/data.pkl'.length] ^= 1; // the first entry's first data byte
    expect(() => readZip(damaged, 'm.pth')).toThrow(/CRC-32 mismatch/);
    expect(() => readZip(archive.subarray(0, 40), 'm.pth')).toThrow(CheckpointError);
  });
});

describe('pickle (the scan before libtorch unpickles)', () => {
  it('accepts an empty dict (PROTO 2, EMPTY_DICT, STOP)', () => {
    const scan = scanPickle(Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]), 'p');
    expect(scan.storageKeys.size).toBe(0);
    expect(scan.edits).toEqual([]);
  });
  it('refuses a GLOBAL outside what a state dict needs, and a stack underflow', () => {
    const global = Buffer.concat([Buffer.from([0x80, 0x02, 0x63]), Buffer.from('os\nsystem\n'), Buffer.from([0x2e])]);
    expect(() => scanPickle(global, 'evil.pth')).toThrow(
      'evil.pth: corrupt or unsupported pickle (byte 2): it calls os.system; only state dicts of tensors are accepted',
    );
    expect(() => scanPickle(Uint8Array.from([0x80, 0x02, 0x73, 0x2e]), 'p')).toThrow(CheckpointError); // SETITEM on an empty stack
  });
});

describe('protobuf (ONNX files)', () => {
  it('encodes varints and length-delimited fields as the encoding guide shows', () => {
    expect([...new ProtoWriter().int(1, 150).finish()]).toEqual([0x08, 0x96, 0x01]);
    expect([...new ProtoWriter().string(2, 'testing').finish()]).toEqual([0x12, 0x07, ...Buffer.from('testing')]);
    expect([...new ProtoWriter().int(1, -1).finish()]).toEqual([
      0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    expect([...new ProtoWriter().float(1, 1).finish()]).toEqual([0x0d, 0x00, 0x00, 0x80, 0x3f]);
  });
});

describe('IDX (MNIST layout)', () => {
  it('reads type, dimensions (big-endian) and data', () => {
    const payload = Uint8Array.from({ length: 12 }, (_, i) => i);
    const idx = parseIdx(idxBytes(0x08, [3, 2, 2], payload), 'images');
    expect(idx.dtype).toBe('uint8');
    expect(idx.dims).toEqual([3, 2, 2]);
    expect(Array.from(idx.data)).toEqual(Array.from(payload));
  });
  it('refuses a wrong magic, a truncated body and trailing bytes, naming the file', () => {
    for (const [bytes, pattern] of [
      [Buffer.from([1, 0, 8, 1, 0, 0, 0, 1, 0]), /wrong magic number/],
      [idxBytes(0x08, [4], Uint8Array.from([1, 2])), /truncated/],
      [idxBytes(0x08, [1], Uint8Array.from([1, 2])), /1 bytes after the data/],
    ] as const) {
      const e = thrown(() => parseIdx(bytes, 'f.idx'));
      expect(e).toBeInstanceOf(DatasetError);
      expect(e.message).toMatch(pattern);
    }
  });
});

describe('CIFAR binary records', () => {
  it('reads labels and the R, G, B planes of each 32x32 record', () => {
    const pixel = (c: number, y: number, x: number) => (c * 50 + y * 3 + x) % 256;
    const { images, labels } = parseCifarRecords(
      Buffer.concat([cifarRecord([3], pixel), cifarRecord([9], () => 7)]),
      'b.bin',
      1,
      0,
      10,
    );
    expect(Array.from(labels)).toEqual([3, 9]);
    expect([images[0], images[1024 + 33], images[2048 + 31 * 32 + 31], images[3072]]).toEqual([
      0,
      50 + 3 + 1,
      (100 + 93 + 31) % 256,
      7,
    ]);
  });
  it('CIFAR-100 takes the fine label (second byte) or the coarse one (first)', () => {
    const record = cifarRecord([4, 77], () => 0);
    expect(Array.from(parseCifarRecords(record, 'c', 2, 1, 100).labels)).toEqual([77]);
    expect(Array.from(parseCifarRecords(record, 'c', 2, 0, 20).labels)).toEqual([4]);
  });
  it('refuses a partial record and a label out of range', () => {
    expect(() => parseCifarRecords(Buffer.alloc(3072), 'b.bin', 1, 0, 10)).toThrow(
      /not a whole number of 3073-byte records/,
    );
    expect(() =>
      parseCifarRecords(
        cifarRecord([10], () => 0),
        'b.bin',
        1,
        0,
        10,
      ),
    ).toThrow(/label 10 of record 0 is out of range/);
  });
});
