// Whether a dataset fits a model (channels, image size, labels): one check for training and evaluation.
import { ValidationError } from '../errors';

export interface ModelShape {
  inChannels: number;
  numClasses: number;
  minInputSize: number;
}

export interface DataShape {
  /** Its name, for messages. */
  name: string;
  /** [C, H, W] */
  shape: readonly number[];
  numClasses: number;
}

/** Throws a ValidationError naming `field` when `data` cannot go through `model` (at `size`, default its own). */
export function checkDataFits(
  field: string,
  data: DataShape,
  model: ModelShape,
  size?: { field: string; value: readonly number[] },
): void {
  const [c, h, w] = data.shape;
  if (c !== model.inChannels)
    throw new ValidationError(
      field,
      data.name,
      `images of ${model.inChannels} channels`,
      `${field}: ${data.name} has ${c}-channel images, the model takes ${model.inChannels} (set inChannels: ${c} in the model spec)`,
    );
  const [sh, sw] = size?.value ?? [h, w];
  const min = model.minInputSize;
  if (sh < min || sw < min) {
    const where = size?.field ?? field;
    throw new ValidationError(
      where,
      [sh, sw],
      `at least ${min}x${min}`,
      `${where}: inputs of ${sh}x${sw} are too small for the model (minimum ${min}x${min})`,
    );
  }
  if (data.numClasses > model.numClasses)
    throw new ValidationError(
      field,
      data.name,
      `labels below ${model.numClasses}`,
      `${field}: ${data.name} has ${data.numClasses} classes (labels up to ${data.numClasses - 1}), the model has ${model.numClasses} outputs: labels out of range`,
    );
}
