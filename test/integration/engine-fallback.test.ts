// engine 'auto' where onnxruntime-node is installed but cannot run the model: our engine serves, and says why.
// (onnxruntime-node is replaced here by a stand-in whose sessions fail to start.)
import { createModel, info } from '../../lib';
import { randomFloats, tempDir } from '../../harness/files';

jest.mock('onnxruntime-node', () => ({
  InferenceSession: { create: () => Promise.reject(new Error('this build cannot load the model\nsecond line')) },
  Tensor: class {},
  env: { versions: { common: 'stand-in' } },
}));

describe("engine 'auto' when onnxruntime-node fails", () => {
  it('falls back to the native engine with the reason, and the logits are the native ones', async () => {
    const before = process.env.RESNET_TORCH_CACHE;
    process.env.RESNET_TORCH_CACHE = await tempDir();
    try {
      const model = await createModel({ arch: 'cifar-resnet8', seed: 3, numClasses: 10 });
      const fast = await model.optimizeForInference({ engine: 'auto' });
      expect(fast.engine).toBe('native');
      expect(fast.engineReason).toBe(
        'auto: onnxruntime-node could not run this model (this build cannot load the model)',
      );
      expect(fast.kernels).toBe(info().training.onednn && info().mkldnn ? 'onednn' : 'aten');
      const x = { data: randomFloats(3 * 32 * 32, 1), shape: [1, 3, 32, 32] };
      const [a, b] = [await fast.forward(x), await model.eval().forward(x)];
      for (let i = 0; i < 10; i++) expect(Math.abs(a.data[i] - b.data[i])).toBeLessThan(1e-4 * 10);
    } finally {
      if (before === undefined) delete process.env.RESNET_TORCH_CACHE;
      else process.env.RESNET_TORCH_CACHE = before;
    }
  });
});
