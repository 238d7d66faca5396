/**
 * @jest-environment ./test/support/shared-typed-arrays-environment.js
 */
// int8 inference against an independent int8 of the same model: onnxruntime's own static quantization of our ONNX
// export (bench/python/ort_quantize.py, onnxruntime 1.32 from the venv: QDQ, unsigned activations, per-channel
// weights, MinMax on the same calibration images), run by onnxruntime-node.
import * as fs from 'fs';
import * as path from 'path';

import * as ort from 'onnxruntime-node';

import { info } from '../../lib';
import { tempDir } from '../../harness/files';
import { findOnnxQuantPython, runPython } from '../../harness/python';
import { Logits, calibrationImages, compareOnTest, fashionModel } from '../helpers/fashion';

// The oneDNN inference program is built where the oneDNN training path is (the same headers and library).
const oneDnnProgram = info().training.onednn && info().mkldnn;

describe("int8 against onnxruntime's int8", () => {
  const quantPython = findOnnxQuantPython();
  (quantPython && oneDnnProgram ? it : it.skip)(
    "against onnxruntime's int8 of the same model and calibration: test accuracy within 1 point",
    async () => {
      const { model } = await fashionModel();
      const calibration = await calibrationImages();
      const dir = await tempDir('int8-ort-');
      await model.exportOnnx(path.join(dir, 'model.onnx'), { inputSize: 28 });
      fs.writeFileSync(path.join(dir, 'calibration.f32'), Buffer.from(calibration.data.buffer));
      await runPython(
        '../../bench/python/ort_quantize.py',
        [
          path.join(dir, 'model.onnx'),
          path.join(dir, 'calibration.f32'),
          ...calibration.shape.map(String),
          path.join(dir, 'model.int8.onnx'),
          'uint8',
        ],
        {},
        quantPython,
      );
      const session = await ort.InferenceSession.create(path.join(dir, 'model.int8.onnx'), { intraOpNumThreads: 2 });
      const theirs: Logits = async (x) => {
        const out = await session.run({ input: new ort.Tensor('float32', x.data, x.shape) });
        return out[session.outputNames[0]].data as Float32Array;
      };
      const ours = await model.optimizeForInference({ inputSize: 28, precision: 'int8', calibration });
      const { a: accOurs, b: accTheirs, worst } = await compareOnTest(ours, theirs);
      console.log(
        `Fashion-MNIST test accuracy in int8: ours ${(accOurs * 100).toFixed(2)}%, onnxruntime ${(accTheirs * 100).toFixed(2)}%, largest logit difference ${worst.toExponential(2)} of the largest logit`,
      );
      expect(accTheirs).toBeGreaterThan(0.5);
      expect(Math.abs(accOurs - accTheirs)).toBeLessThanOrEqual(0.01);
      // Two int8 roundings of the same float32 model: a few percent of the largest logit apart (11% with our 7-bit
      // weights on AVX2 kernels without VNNI), not the logits' size as a lost add or a wrong scale would be.
      expect(worst).toBeLessThan(0.2);
      await session.release();
    },
    240_000,
  );
});
