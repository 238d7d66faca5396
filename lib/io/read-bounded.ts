// Reading an untrusted model file whole: its size is checked against a limit first, and a missing or unreadable
// file is a CheckpointError naming it.
import { promises as fsp } from 'fs';

import { CheckpointError } from '../errors';

/** Weights, checkpoints and .pth files larger than this are refused (16 GiB). */
export const MAX_MODEL_FILE = 16 * 2 ** 30;

export async function readBounded(file: string, maxBytes = MAX_MODEL_FILE): Promise<Buffer> {
  let size: number;
  try {
    size = (await fsp.stat(file)).size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(file, `cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (size > maxBytes) throw new CheckpointError(file, `${size} bytes exceeds the limit of ${maxBytes} bytes`);
  return fsp.readFile(file);
}
