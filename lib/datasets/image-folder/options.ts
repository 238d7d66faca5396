// The options of imageFolder() and streamImageFolder(), validated and resolved once.
import * as os from 'os';
import * as path from 'path';

import { ValidationError } from '../../errors';
import { Schema, s } from '../../validate';

/** An image folder (one subfolder per class): where, at what size, and how to treat bad files. */
export interface ImageFolderOptions {
  /** The folder: one subfolder of images per class. */
  path: string;
  /** Output size: a side (square) or [height, width]. */
  size: number | [number, number];
  /** 1 (grayscale) or 3 (RGB, the default). */
  channels?: 1 | 3;
  /** 'cover' (default): resize the shorter side, centre-crop the rest; 'fill': stretch. */
  fit?: 'cover' | 'fill';
  /** With 'cover': resize the shorter edge to this many pixels, then centre-crop `size` (torchvision's evaluation
   *  transform: 256 then 224, or its new recipe's 232 then 224); default `size`'s shorter side. */
  resize?: number;
  /** 'fail' (default): an undecodable image stops with its path; 'skip': warn, leave it out, count it. */
  onBadImage?: 'fail' | 'skip';
  /** Decodes in flight at once (default: 2 per core). */
  concurrency?: number;
  /** Class names in label order (default: the sub-folder names, sorted). */
  classNames?: string[];
  /** Receives a line per skipped image (default: process.emitWarning). */
  onWarning?: (message: string) => void;
}

export interface FolderSettings {
  root: string;
  height: number;
  width: number;
  channels: 1 | 3;
  fit: 'cover' | 'fill';
  resize?: number;
  onBadImage: 'fail' | 'skip';
  concurrency: number;
  classNames?: string[];
  warn: (message: string) => void;
}

const optionsSchema: Schema<ImageFolderOptions> = s.object<ImageFolderOptions>({
  path: s.string(),
  size: s.union(
    s.integer({ min: 1, max: 16384 }),
    s.array(s.integer({ min: 1, max: 16384 }), { minLength: 2, maxLength: 2 }),
  ),
  channels: s.optional(s.enum([1, 3] as const)),
  fit: s.optional(s.enum(['cover', 'fill'] as const)),
  resize: s.optional(s.integer({ min: 1, max: 16384 })),
  onBadImage: s.optional(s.enum(['fail', 'skip'] as const)),
  concurrency: s.optional(s.integer({ min: 1, max: 1024 })),
  classNames: s.optional(s.array(s.string(), { minLength: 1 })),
  onWarning: s.optional(s.func()),
});

export function resolveFolderOptions(options: ImageFolderOptions): FolderSettings {
  const o = optionsSchema.parse(options, 'options');
  const [height, width] = typeof o.size === 'number' ? [o.size, o.size] : o.size;
  if (o.resize !== undefined && o.resize < Math.min(height, width))
    throw new ValidationError(
      'options.resize',
      o.resize,
      `at least the size's shorter side (${Math.min(height, width)}): the centre crop is cut from the resized image`,
    );
  return {
    root: path.resolve(o.path),
    height,
    width,
    channels: o.channels ?? 3,
    fit: o.fit ?? 'cover',
    resize: o.resize,
    onBadImage: o.onBadImage ?? 'fail',
    concurrency: o.concurrency ?? 2 * os.cpus().length,
    classNames: o.classNames,
    warn: o.onWarning ?? ((m: string) => process.emitWarning(m, 'ResnetTorchWarning')),
  };
}
