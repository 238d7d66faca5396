// Dataset statistics cached beside the data (or, for read-only folders such as /usr/share, under the user's
// cache folder), keyed by the data file's size and modification time.
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createHash } from 'crypto';

import type { Dataset, DatasetStats } from './dataset';

interface CacheFile {
  key: string;
  shape: number[];
  channelMean: number[];
  channelStd: number[];
  meanImage: number[];
}

function cacheDir(): string {
  return process.env.RESNET_TORCH_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'resnet-torch');
}

async function locations(dataFile: string): Promise<string[]> {
  const hash = createHash('sha1').update(path.resolve(dataFile)).digest('hex').slice(0, 16);
  return [`${dataFile}.stats.json`, path.join(cacheDir(), `stats-${hash}.json`)];
}

async function keyOf(dataFile: string): Promise<string> {
  const st = await fsp.stat(dataFile);
  return `${st.size}:${st.mtimeMs}`;
}

export async function loadCachedStats(dataFile: string, dataset: Dataset): Promise<DatasetStats | undefined> {
  try {
    const key = await keyOf(dataFile);
    for (const file of await locations(dataFile)) {
      try {
        const c = JSON.parse(await fsp.readFile(file, 'utf8')) as CacheFile;
        if (c.key !== key || c.shape.join() !== dataset.shape.join() || c.meanImage.length !== dataset.shape.reduce((a, b) => a * b, 1)) continue;
        return { channelMean: c.channelMean, channelStd: c.channelStd, meanImage: Float32Array.from(c.meanImage) };
      } catch {
        // absent or unreadable: try the next place
      }
    }
  } catch {
    // the data file itself vanished: no cache
  }
  return undefined;
}

export async function saveCachedStats(dataFile: string, stats: DatasetStats, shape: readonly number[]): Promise<void> {
  const key = await keyOf(dataFile);
  const body: CacheFile = { key, shape: [...shape], channelMean: stats.channelMean, channelStd: stats.channelStd, meanImage: Array.from(stats.meanImage) };
  for (const file of await locations(dataFile)) {
    try {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify(body));
      await fsp.rename(tmp, file);
      return;
    } catch {
      // read-only: try the next place
    }
  }
}
