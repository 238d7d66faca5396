// Dataset statistics cached on disk, so a second run skips the pass over the data. One format, one writer
// (atomic: a temporary file renamed over the target), one cache folder: $RESNET_TORCH_CACHE, else
// $XDG_CACHE_HOME/resnet-torch, else ~/.cache/resnet-torch. A file-backed dataset (IDX, CIFAR) keeps its
// statistics beside the data when that folder is writable (not /usr/share), keyed by the file's size and
// modification time; an image folder keeps them in the cache folder, keyed by its file list.
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createHash } from 'crypto';

import { writeFileAtomic } from '../io/atomic';
import type { DatasetStats } from './dataset';

interface CacheFile {
  key: string;
  shape: number[];
  channelMean: number[];
  channelStd: number[];
  meanImage: number[];
}

export function cacheDir(): string {
  return (
    process.env.RESNET_TORCH_CACHE ??
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'resnet-torch')
  );
}

const hashOf = (text: string, length: number) => createHash('sha1').update(text).digest('hex').slice(0, length);

/** The first of `files` that holds statistics for `key` and `shape`. */
async function readStats(files: string[], key: string, shape: readonly number[]): Promise<DatasetStats | undefined> {
  for (const file of files) {
    try {
      const c = JSON.parse(await fsp.readFile(file, 'utf8')) as CacheFile;
      if (c.key !== key || c.shape.join() !== shape.join() || c.meanImage.length !== shape.reduce((a, b) => a * b, 1))
        continue;
      return { channelMean: c.channelMean, channelStd: c.channelStd, meanImage: Float32Array.from(c.meanImage) };
    } catch {
      // absent or unreadable: try the next place
    }
  }
  return undefined;
}

/** Writes to the first of `files` whose folder takes it; a cache that cannot be written is no error. */
async function writeStats(files: string[], key: string, shape: readonly number[], stats: DatasetStats): Promise<void> {
  const body: CacheFile = {
    key,
    shape: [...shape],
    channelMean: stats.channelMean,
    channelStd: stats.channelStd,
    meanImage: Array.from(stats.meanImage),
  };
  for (const file of files) {
    try {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await writeFileAtomic(file, [JSON.stringify(body)]);
      return;
    } catch {
      // read-only: try the next place
    }
  }
}

const besideData = (dataFile: string) => [
  `${dataFile}.stats.json`,
  path.join(cacheDir(), `stats-${hashOf(path.resolve(dataFile), 16)}.json`),
];

async function keyOf(dataFile: string): Promise<string> {
  const st = await fsp.stat(dataFile);
  return `${st.size}:${st.mtimeMs}`;
}

/** Statistics of the dataset read from `dataFile`, if cached for this very file. */
export async function loadCachedStats(dataFile: string, shape: readonly number[]): Promise<DatasetStats | undefined> {
  let key: string;
  try {
    key = await keyOf(dataFile);
  } catch {
    return undefined; // the data file itself vanished: no cache
  }
  return readStats(besideData(dataFile), key, shape);
}

export async function saveCachedStats(dataFile: string, stats: DatasetStats, shape: readonly number[]): Promise<void> {
  await writeStats(besideData(dataFile), await keyOf(dataFile), shape, stats);
}

/** Gives a dataset read from `dataFile` its cached statistics, or caches them once they are computed. */
export async function useStatsCache(
  dataFile: string,
  dataset: { shape: readonly number[]; stats(): Promise<DatasetStats>; setStats(s: DatasetStats): void },
): Promise<void> {
  const cached = await loadCachedStats(dataFile, dataset.shape);
  if (cached) dataset.setStats(cached);
  else
    void dataset
      .stats()
      .then((st) => saveCachedStats(dataFile, st, dataset.shape))
      .catch(() => undefined);
}

/** For data without one file behind it (an image folder): `identity` names exactly what was measured. */
export async function loadKeyedStats(identity: string, shape: readonly number[]): Promise<DatasetStats | undefined> {
  const key = hashOf(identity, 20);
  return readStats([path.join(cacheDir(), `stream-stats-${key}.json`)], key, shape);
}

export async function saveKeyedStats(identity: string, stats: DatasetStats, shape: readonly number[]): Promise<void> {
  const key = hashOf(identity, 20);
  await writeStats([path.join(cacheDir(), `stream-stats-${key}.json`)], key, shape, stats);
}
