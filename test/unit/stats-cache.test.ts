// The statistics cache: one format, atomic writes, $RESNET_TORCH_CACHE, else $XDG_CACHE_HOME/resnet-torch, else
// ~/.cache/resnet-torch; a file-backed dataset's entry is keyed by the file's size and modification time.
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  cacheDir,
  loadCachedStats,
  loadKeyedStats,
  saveCachedStats,
  saveKeyedStats,
} from '../../lib/datasets/stats-cache';

const stats = { meanImage: Float32Array.from([0.25, 0.5]), channelMean: [0.375], channelStd: [0.125] };

describe('stats cache', () => {
  const saved = { ...process.env };
  let home: string;
  beforeEach(async () => {
    home = await fsp.mkdtemp(path.join(os.tmpdir(), 'stats-cache-'));
    delete process.env.RESNET_TORCH_CACHE;
    process.env.XDG_CACHE_HOME = path.join(home, 'xdg');
  });
  afterEach(async () => {
    process.env = { ...saved };
    await fsp.rm(home, { recursive: true, force: true });
  });

  it('lives under $XDG_CACHE_HOME, unless $RESNET_TORCH_CACHE names the folder', () => {
    expect(cacheDir()).toBe(path.join(home, 'xdg', 'resnet-torch'));
    process.env.RESNET_TORCH_CACHE = '/elsewhere';
    expect(cacheDir()).toBe('/elsewhere');
  });

  it("keeps an image folder's statistics by what was measured; another shape or identity misses", async () => {
    await saveKeyedStats('folder A', stats, [1, 1, 2]);
    const files = await fsp.readdir(path.join(home, 'xdg', 'resnet-torch'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^stream-stats-[0-9a-f]{20}\.json$/); // written atomically: no temporary file is left
    expect(await loadKeyedStats('folder A', [1, 1, 2])).toEqual(stats);
    expect(await loadKeyedStats('folder A', [1, 2, 1])).toBeUndefined();
    expect(await loadKeyedStats('folder B', [1, 1, 2])).toBeUndefined();
  });

  it("keeps a data file's statistics beside it, and forgets them when the file changes", async () => {
    const data = path.join(home, 'images.idx');
    await fsp.writeFile(data, 'pixels');
    await saveCachedStats(data, stats, [1, 1, 2]);
    expect(await fsp.readdir(home)).toContain('images.idx.stats.json');
    expect(await loadCachedStats(data, [1, 1, 2])).toEqual(stats);
    await fsp.writeFile(data, 'other pixels');
    expect(await loadCachedStats(data, [1, 1, 2])).toBeUndefined();
  });
});
