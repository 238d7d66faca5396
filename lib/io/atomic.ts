// Writes that never leave a half-written file under the final name: a temporary file in the same
// folder, fsync, rename over the target, fsync of the folder (so the rename itself survives a crash).
import { promises as fsp } from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

// .<name>.<pid>.<8 hex>.tmp, as writeFileAtomic names its temporary files.
const TEMP_FILE = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Removes the temporary files in `dir` (of `name` only, if given) whose writer was killed before it could:
 *  its process is gone. A write still running in another process keeps its file. Returns what it removed. */
export async function removeStaleTemps(dir: string, name?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
    const m = TEMP_FILE.exec(f);
    if (!m || (name !== undefined && m[1] !== name) || processAlive(Number(m[2]))) continue;
    await fsp.rm(path.join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}

export async function writeFileAtomic(target: string, chunks: (Uint8Array | string)[]): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'wx', 0o644);
  try {
    for (const chunk of chunks) await handle.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await handle.close();
  try {
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  const dirHandle = await fsp.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  await removeStaleTemps(dir, path.basename(target));
}
