import { ONNX_OPSET } from '../../io/onnx';
import { UsageError } from '../args';
import { Command, EXIT } from '../command';
import { MODEL_FLAGS, modelFromTarget } from './model-source';

export const exportCommand: Command = {
  name: 'export',
  usage:
    'resnet export <checkpoint | weights | run folder> --format onnx|safetensors --out FILE ' +
    `[--opset ${ONNX_OPSET.default}] [--input-size N]`,
  summary: 'Writes the weights as safetensors (torchvision names) or the eval-mode network as ONNX (dynamic batch).',
  flags: {
    ...MODEL_FLAGS,
    format: { type: 'string', description: 'onnx or safetensors' },
    out: { type: 'string', description: 'output file' },
    opset: {
      type: 'number',
      description: `ONNX opset, ${ONNX_OPSET.min} to ${ONNX_OPSET.max} (default ${ONNX_OPSET.default})`,
    },
    'input-size': { type: 'number', description: 'ONNX input side' },
  },
  async run(args, ctx) {
    const format = args.flags.format as string | undefined;
    const out = args.flags.out as string | undefined;
    if (format !== 'onnx' && format !== 'safetensors') throw new UsageError('--format must be onnx or safetensors');
    if (!out) throw new UsageError('--out FILE is required');
    const { model } = await modelFromTarget(args.positional[0], args.flags);
    if (format === 'onnx')
      await model.exportOnnx(out, {
        opset: args.flags.opset as number | undefined,
        inputSize: args.flags['input-size'] as number | undefined,
      });
    else await model.saveWeights(out);
    ctx.out.write(`wrote ${out}\n`);
    return EXIT.ok;
  },
};
