// Seeded corruptions of a valid file: the damage real files get (truncation, flipped bits, zeroed blocks) and the
// damage an attacker chooses (huge counts and offsets, spliced headers).

/** mulberry32: small, fast, and the same sequence on every machine for a seed. */
export class Random {
  #t: number;
  constructor(seed: number) {
    this.#t = seed >>> 0;
  }
  next(): number {
    this.#t = (this.#t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(this.#t ^ (this.#t >>> 15), 1 | this.#t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0xffff, 2 ** 24];

type Mutator = (b: Buffer, r: Random, others: { bytes: Buffer }[]) => Buffer;

// Offsets favour the start of the file, where the headers are.
const offset = (b: Buffer, r: Random) => (r.next() < 0.6 ? r.int(Math.min(b.length, 256)) : r.int(b.length));

export const MUTATORS: Record<string, Mutator> = {
  flipBits(b, r) {
    const out = Buffer.from(b);
    for (let k = 1 + r.int(8); k > 0 && out.length; k--) out[offset(out, r)] ^= 1 << r.int(8);
    return out;
  },
  setByte(b, r) {
    const out = Buffer.from(b);
    if (out.length) out[offset(out, r)] = [0, 0xff, 0x7f, 0x80, r.int(256)][r.int(5)];
    return out;
  },
  setInt(b, r) {
    const out = Buffer.from(b);
    if (out.length < 4) return out;
    const at = Math.min(offset(out, r), out.length - 4);
    const v = INTERESTING[r.int(INTERESTING.length)] >>> 0;
    if (r.next() < 0.5) out.writeUInt32BE(v, at);
    else out.writeUInt32LE(v, at);
    return out;
  },
  setInt64(b, r) {
    const out = Buffer.from(b);
    if (out.length < 8) return out;
    const at = Math.min(offset(out, r), out.length - 8);
    out.writeBigUInt64LE([0n, 1n, 2n ** 63n - 1n, 2n ** 64n - 1n, 2n ** 40n][r.int(5)], at);
    return out;
  },
  truncate(b, r) {
    return b.subarray(0, r.int(b.length + 1));
  },
  extend(b, r) {
    const extra = Buffer.alloc(1 + r.int(64));
    for (let i = 0; i < extra.length; i++) extra[i] = r.int(256);
    return Buffer.concat([b, extra]);
  },
  deleteRange(b, r) {
    const at = offset(b, r),
      n = 1 + r.int(32);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
  },
  duplicateRange(b, r) {
    const at = offset(b, r),
      n = 1 + r.int(64);
    return Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
  },
  zeroBlock(b, r) {
    const out = Buffer.from(b);
    const at = offset(out, r);
    out.fill(0, at, Math.min(out.length, at + 1 + r.int(512)));
    return out;
  },
  splice(b, r, others) {
    const other = others[r.int(others.length)].bytes;
    const at = offset(b, r);
    return Buffer.concat([b.subarray(0, at), other.subarray(r.int(other.length + 1))]);
  },
  randomBytes(_b, r) {
    const out = Buffer.alloc(r.int(2048));
    for (let i = 0; i < out.length; i++) out[i] = r.int(256);
    return out;
  },
};

const NAMES = Object.keys(MUTATORS);

/** One to three corruptions of `bytes`. */
export function mutate(bytes: Buffer, r: Random, others: { bytes: Buffer }[]): Buffer {
  let out = bytes;
  for (let k = 1 + (r.next() < 0.3 ? r.int(3) : 0); k > 0; k--) {
    const name = NAMES[r.int(NAMES.length)];
    if (name === 'randomBytes' && r.next() < 0.8) continue; // mostly damage, not noise
    out = MUTATORS[name](out, r, others);
  }
  return out === bytes ? MUTATORS.flipBits(bytes, r, others) : out;
}
