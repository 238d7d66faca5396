// Temporary folders and float comparisons, shared by the tests, benchmarks and harnesses.
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

// The folders made here, removed after each test file (test/support/remove-temp-dirs.ts) or when a script exits:
// weights of the large nets (hundreds of MB each) would otherwise fill the disk over a few runs.
const made = new Set<string>();
let cleanupRegistered = false;

/** Removes every folder tempDir() made (and not yet removed). */
export function removeTempDirs(): void {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  made.clear();
}

/** A fresh folder under the system's temporary folder, removed with its contents by removeTempDirs() or at exit. */
export async function tempDir(prefix = 'resnet-torch-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  made.add(dir);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.once('exit', removeTempDirs);
  }
  return dir;
}

export async function readFloat32(file: string): Promise<Float32Array> {
  const b = await fsp.readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32), for inputs that need no reference. */
export function randomFloats(n: number, seed = 1): Float32Array {
  let t = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    out[i] = (((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
