// A user's jest test around weights files: save, load into a fresh model, the same outputs, and a disposed
// model refusing work with an error class the test imports from the package.
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

import { DisposedError, createModel } from 'resnet-torch';

describe('weights files inside jest', () => {
  it('saveWeights then loadWeights gives the same logits', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'resnet-torch-user-'));
    const a = await createModel({ arch: 'cifar-resnet20', seed: 5 });
    await a.saveWeights(path.join(dir, 'a.safetensors'));
    const b = await createModel({ arch: 'cifar-resnet20', seed: 6 });
    const report = await b.loadWeights(path.join(dir, 'a.safetensors'));
    expect(report.missing).toEqual([]);
    const x = { data: new Float32Array(3 * 32 * 32).map((_, i) => Math.cos(i)), shape: [1, 3, 32, 32] };
    a.eval();
    b.eval();
    expect(Array.from((await b.forward(x)).data)).toEqual(Array.from((await a.forward(x)).data));
    a.dispose();
    b.dispose();
    await fsp.rm(dir, { recursive: true });
  });

  it('a disposed model refuses work with DisposedError', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', seed: 1 });
    m.dispose();
    await expect(m.forward({ data: new Float32Array(3 * 32 * 32), shape: [1, 3, 32, 32] })).rejects.toBeInstanceOf(
      DisposedError,
    );
  });
});
