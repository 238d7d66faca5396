// The statistics of a streamed image folder: one decoding pass (in chunks, so memory stays bounded), cached.
import type { DatasetStats } from '../dataset';
import { loadKeyedStats, saveKeyedStats } from '../stats-cache';
import { decodeAll } from './decode';
import type { FolderSettings } from './options';
import type { ImageFile } from './scan';

const CHUNK = 256;

export async function folderStats(
  files: readonly ImageFile[],
  o: FolderSettings,
  shape: readonly [number, number, number],
): Promise<DatasetStats> {
  const identity = JSON.stringify([shape, o.fit, o.resize ?? null, files.map((f) => f.file)]);
  const cached = await loadKeyedStats(identity, shape);
  if (cached) return cached;
  const [c, h, w] = shape;
  const hw = h * w;
  const sum = new Float64Array(c * hw);
  const sq = new Float64Array(c);
  let n = 0;
  for (let start = 0; start < files.length; start += CHUNK) {
    const { images, labels } = await decodeAll(files.slice(start, start + CHUNK), o);
    for (let k = 0; k < labels.length; k++, n++)
      for (let ch = 0; ch < c; ch++)
        for (let i = 0; i < hw; i++) {
          const v = images[(k * c + ch) * hw + i] / 255;
          sum[ch * hw + i] += v;
          sq[ch] += v * v;
        }
  }
  const meanImage = Float32Array.from(sum, (v) => v / Math.max(n, 1));
  const channelMean: number[] = [],
    channelStd: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let m = 0;
    for (let i = 0; i < hw; i++) m += sum[ch * hw + i];
    m /= n * hw;
    channelMean.push(m);
    channelStd.push(Math.sqrt(Math.max(0, sq[ch] / (n * hw) - m * m)));
  }
  const stats = { meanImage, channelMean, channelStd };
  await saveKeyedStats(identity, stats, shape);
  return stats;
}
