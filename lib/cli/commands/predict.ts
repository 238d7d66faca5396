import * as fs from 'fs';
import * as path from 'path';

import { Dataset } from '../../datasets/dataset';
import { IMAGE_EXTENSIONS, decodeImageFile } from '../../datasets/image-folder';
import { normalizeImages } from '../../preprocess';
import { UsageError } from '../args';
import { Command, EXIT } from '../command';
import { DATA_FLAGS, datasetFromFlags } from './eval';
import { MODEL_FLAGS, modelFromTarget } from './model-source';

function listImages(target: string): string[] {
  if (!fs.existsSync(target)) throw new UsageError(`${target}: no such file or folder`);
  if (fs.statSync(target).isFile()) return [target];
  return fs
    .readdirSync(target, { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(target, e.name);
      if (e.isDirectory()) return listImages(p);
      return IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()) ? [p] : [];
    })
    .sort();
}

export const predictCommand: Command = {
  name: 'predict',
  usage:
    'resnet predict <checkpoint | weights | run folder> [image files or folders ...] [--data TYPE ... --limit N] [--top-k 5] [--json]',
  summary: 'Top-k classes with their names and probabilities, for image files, folders of images, or a dataset split.',
  flags: {
    ...MODEL_FLAGS,
    ...DATA_FLAGS,
    'top-k': { type: 'number', description: 'classes per image (default 5)' },
    size: { type: 'number', description: 'resize images to this side (default: the training size)' },
    json: { type: 'boolean', description: 'print as JSON' },
  },
  async run(args, ctx) {
    const [target, ...inputs] = args.positional;
    const { model, dataShape } = await modelFromTarget(target, args.flags);
    const topK = Math.min((args.flags['top-k'] as number) ?? 5, model.numClasses);
    const c = model.inChannels;
    const side = (args.flags.size as number | undefined) ?? model.preprocessing?.size?.[0] ?? dataShape?.[1];
    const results: { input: string; label?: number; top: { index: number; label?: string; probability: number }[] }[] =
      [];
    const run = async (names: string[], images: Uint8Array | Float32Array, shape: number[], labels?: number[]) => {
      const x = normalizeImages(images, shape, model.preprocessing);
      const preds = await model.predict({ data: x, shape }, { topK });
      preds.forEach((p, i) => results.push({ input: names[i], ...(labels ? { label: labels[i] } : {}), top: p }));
    };
    if (inputs.length > 0) {
      if (!side) throw new UsageError('the model does not record its input size: pass --size');
      const files = inputs.flatMap(listImages);
      if (files.length === 0) throw new UsageError('no JPEG, PNG or WebP images among the inputs');
      for (let start = 0; start < files.length; start += 64) {
        const chunk = files.slice(start, start + 64);
        const decoded = await Promise.all(
          chunk.map((f) => decodeImageFile(f, { height: side, width: side, channels: c as 1 | 3, fit: 'cover' })),
        );
        const images = new Uint8Array(decoded.length * c * side * side);
        decoded.forEach((d, i) => images.set(d, i * d.length));
        await run(chunk, images, [chunk.length, c, side, side]);
      }
    } else {
      if (!args.flags.data) throw new UsageError('predict needs image files or folders, or --data');
      const loaded = await datasetFromFlags({ limit: 10, ...args.flags }, undefined, dataShape, model.numClasses);
      const data = loaded instanceof Dataset ? loaded : await loaded.load();
      const all = data.get(0, data.length);
      await run(
        all.labels.map((_, i) => `${data.name}[${i}]`),
        all.images,
        all.shape,
        all.labels,
      );
    }
    if (args.flags.json) {
      ctx.out.write(`${JSON.stringify(results, null, 2)}\n`);
      return EXIT.ok;
    }
    const names = model.classNames;
    for (const r of results) {
      const truth = r.label !== undefined ? ` (true: ${names?.[r.label] ?? r.label})` : '';
      ctx.out.write(`${r.input}${truth}\n`);
      for (const t of r.top)
        ctx.out.write(`  ${(t.probability * 100).toFixed(2).padStart(6)}%  ${t.label ?? t.index}\n`);
    }
    return EXIT.ok;
  },
};
