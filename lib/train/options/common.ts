// Schema pieces several option modules share.
import { Schema, s } from '../../validate';

/** A learning rate. */
export const lr: Schema<number> = s.number({ min: 0, minExclusive: true, max: 100 });
/** A factor in [0, 1). */
export const rate01: Schema<number> = s.number({ min: 0, max: 1, maxExclusive: true });
export const pair = (item: Schema<number>) =>
  s.array(item, { minLength: 2, maxLength: 2 }) as unknown as Schema<[number, number]>;
