// The schema toolkit every option goes through: each refusal names the field's path, what it accepts and what
// it got, in one format.
import { ValidationError } from '../../lib';
import { s } from '../../lib/validate';
import { thrown } from '../helpers/errors';

describe('schemas name the field, what it accepts and the value', () => {
  it('numbers and integers with bounds, open or closed', () => {
    expect(() => s.number({ min: 0, max: 1, maxExclusive: true }).parse(1, 'momentum')).toThrow(
      'momentum: expected a number in [0, 1), got 1',
    );
    expect(() => s.integer({ min: 1 }).parse(2.5, 'batchSize')).toThrow('batchSize: expected an integer ≥ 1, got 2.5');
    expect(() => s.number().parse(NaN, 'lr')).toThrow('lr: expected a number, got NaN');
    expect(s.integer({ min: 1, max: 3 }).parse(3, 'x')).toBe(3);
  });
  it('enums, strings, booleans and arrays with their lengths', () => {
    expect(() => s.enum(['sgd', 'adamw'] as const).parse('adam', 'type')).toThrow(
      'type: expected one of "sgd", "adamw", got "adam"',
    );
    expect(() => s.string().parse('', 'name')).toThrow('name: expected a non-empty string, got ""');
    expect(() => s.boolean().parse('true', 'flip')).toThrow('flip: expected true or false, got "true"');
    expect(() => s.array(s.integer(), { minLength: 2, maxLength: 2 }).parse([1], 'size')).toThrow(/^size: /);
    expect(() => s.array(s.integer({ min: 1 })).parse([1, 0], 'depths')).toThrow(
      'depths[1]: expected an integer ≥ 1, got 0',
    );
  });
  it('objects: nested paths, required keys, unknown keys with a suggestion', () => {
    const schema = s.object({
      optimizer: s.object({ lr: s.number({ min: 0, minExclusive: true }) }),
      epochs: s.optional(s.integer()),
    });
    const e = thrown(() => schema.parse({ optimizer: { lr: -1 } }, 'train'));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.field).toBe('train.optimizer.lr');
    expect(e.value).toBe(-1);
    expect(e.message).toBe('train.optimizer.lr: expected a number > 0, got -1');
    expect(() => schema.parse({ optimizer: {} }, '')).toThrow('optimizer.lr: required');
    expect(() => schema.parse({ optimizer: { lr: 1 }, epoch: 3 }, '')).toThrow(
      'epoch: unknown key "epoch" (did you mean "epochs"?)',
    );
  });
  it('tagged unions pick the variant by its tag; refinements add cross-field rules', () => {
    const schema = s.tagged('type', {
      a: s.object({ type: s.enum(['a'] as const), x: s.integer() }),
      b: s.object({ type: s.enum(['b'] as const) }),
    });
    expect(schema.parse({ type: 'a', x: 1 }, 'p')).toEqual({ type: 'a', x: 1 });
    expect(() => schema.parse({ type: 'c' }, 'p')).toThrow(/^p\.type: expected one of "a", "b"/);
    const increasing = s.refine(s.array(s.integer()), (v) =>
      v.every((x, i) => i === 0 || x > v[i - 1]) ? undefined : 'must increase',
    );
    expect(() => increasing.parse([3, 2], 'milestones')).toThrow('milestones: must increase');
  });
  it('any, functions and records of values', () => {
    expect(s.any().parse(Symbol.iterator, 'x')).toBe(Symbol.iterator);
    expect(() => s.func().parse('f', 'onProgress')).toThrow('onProgress: expected a function, got "f"');
    expect(s.record(s.string()).parse({ a: 'x' }, 'metadata')).toEqual({ a: 'x' });
    expect(() => s.record(s.string()).parse({ a: 1 }, 'metadata')).toThrow(
      'metadata.a: expected a non-empty string, got 1',
    );
  });
  it('describes the same rules as JSON Schema', () => {
    expect(s.number({ min: 0, max: 1, maxExclusive: true }).jsonSchema()).toEqual({
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
    });
    expect(s.record(s.string()).jsonSchema()).toEqual({
      type: 'object',
      additionalProperties: { type: 'string', minLength: 1 },
    });
  });
});
