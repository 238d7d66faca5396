// A small schema toolkit: one place that checks every option before it reaches C++, formats every
// message the same way ("optimizer.momentum: expected a number in [0, 1), got "x""), and describes the
// same rules as JSON Schema for config files. (sharp's `is.js` + one error formatter, grown into schemas.)
import { ValidationError, formatValue } from './errors';

export type JsonSchema = { [key: string]: unknown };

export abstract class Schema<T> {
  description?: string;
  /** Returns the resolved value or throws a ValidationError naming `path`. */
  abstract parse(value: unknown, path: string): T;
  /** What the schema accepts, in words ("an integer ≥ 1"). */
  abstract describe(): string;
  protected abstract json(): JsonSchema;
  jsonSchema(): JsonSchema {
    const out = this.json();
    return this.description ? { description: this.description, ...out } : out;
  }
  doc(text: string): this {
    this.description = text;
    return this;
  }
  fail(path: string, value: unknown, detail?: string): never {
    throw new ValidationError(path, value, this.describe(), detail ? `${path || 'value'}: ${detail}` : undefined);
  }
}

export const join = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

interface NumberRules {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  integer?: boolean;
}

class NumberSchema extends Schema<number> {
  constructor(private readonly rules: NumberRules) {
    super();
  }
  parse(value: unknown, path: string): number {
    const r = this.rules;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(path, value);
    if (r.integer && !Number.isInteger(value)) this.fail(path, value);
    if (r.min !== undefined && (r.minExclusive ? value <= r.min : value < r.min)) this.fail(path, value);
    if (r.max !== undefined && (r.maxExclusive ? value >= r.max : value > r.max)) this.fail(path, value);
    return value;
  }
  describe(): string {
    const r = this.rules;
    const kind = r.integer ? 'an integer' : 'a number';
    if (r.min !== undefined && r.max !== undefined)
      return `${kind} in ${r.minExclusive ? '(' : '['}${r.min}, ${r.max}${r.maxExclusive ? ')' : ']'}`;
    if (r.min !== undefined) return `${kind} ${r.minExclusive ? '>' : '≥'} ${r.min}`;
    if (r.max !== undefined) return `${kind} ${r.maxExclusive ? '<' : '≤'} ${r.max}`;
    return kind;
  }
  protected json(): JsonSchema {
    const r = this.rules;
    const out: JsonSchema = { type: r.integer ? 'integer' : 'number' };
    if (r.min !== undefined) out[r.minExclusive ? 'exclusiveMinimum' : 'minimum'] = r.min;
    if (r.max !== undefined) out[r.maxExclusive ? 'exclusiveMaximum' : 'maximum'] = r.max;
    return out;
  }
}

class StringSchema extends Schema<string> {
  constructor(private readonly nonEmpty: boolean) {
    super();
  }
  parse(value: unknown, path: string): string {
    if (typeof value !== 'string' || (this.nonEmpty && value.length === 0)) this.fail(path, value);
    return value;
  }
  describe(): string {
    return this.nonEmpty ? 'a non-empty string' : 'a string';
  }
  protected json(): JsonSchema {
    return this.nonEmpty ? { type: 'string', minLength: 1 } : { type: 'string' };
  }
}

class BooleanSchema extends Schema<boolean> {
  parse(value: unknown, path: string): boolean {
    if (typeof value !== 'boolean') this.fail(path, value);
    return value;
  }
  describe(): string {
    return 'true or false';
  }
  protected json(): JsonSchema {
    return { type: 'boolean' };
  }
}

class EnumSchema<T extends string | number> extends Schema<T> {
  constructor(private readonly values: readonly T[]) {
    super();
  }
  parse(value: unknown, path: string): T {
    if (!this.values.includes(value as T)) this.fail(path, value);
    return value as T;
  }
  describe(): string {
    const list = this.values.map((v) => JSON.stringify(v));
    return list.length === 1 ? list[0] : `one of ${list.join(', ')}`;
  }
  protected json(): JsonSchema {
    return { enum: [...this.values] };
  }
}

class LiteralSchema<T extends string | number | boolean | null> extends Schema<T> {
  constructor(private readonly value: T) {
    super();
  }
  parse(value: unknown, path: string): T {
    if (value !== this.value) this.fail(path, value);
    return value as T;
  }
  describe(): string {
    return JSON.stringify(this.value);
  }
  protected json(): JsonSchema {
    return { const: this.value };
  }
}

class ArraySchema<T> extends Schema<T[]> {
  constructor(
    private readonly item: Schema<T>,
    private readonly minLength = 0,
    private readonly maxLength = Infinity,
  ) {
    super();
  }
  parse(value: unknown, path: string): T[] {
    if (!Array.isArray(value) || value.length < this.minLength || value.length > this.maxLength) this.fail(path, value);
    return value.map((v, i) => this.item.parse(v, join(path, i)));
  }
  describe(): string {
    const count =
      this.maxLength === this.minLength
        ? `${this.minLength} `
        : this.minLength > 0
          ? `at least ${this.minLength} `
          : '';
    return `an array of ${count}items, each ${this.item.describe()}`;
  }
  protected json(): JsonSchema {
    const out: JsonSchema = { type: 'array', items: this.item.jsonSchema() };
    if (this.minLength > 0) out.minItems = this.minLength;
    if (Number.isFinite(this.maxLength)) out.maxItems = this.maxLength;
    return out;
  }
}

export interface Field {
  schema: Schema<unknown>;
  optional?: boolean;
  default?: unknown;
}

export type Fields = Record<string, Field | Schema<unknown>>;

const asField = (f: Field | Schema<unknown>): Field => (f instanceof Schema ? { schema: f } : f);

/** An object literal (or JSON/YAML mapping) from any realm: structuredClone and jest's test files make objects
 *  whose prototype is another realm's Object.prototype. */
/** JSON with its keys sorted at every depth: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/** The top-level fields in which two objects' JSON differs. */
export function differingFields(a: object, b: object): string[] {
  const x = a as Record<string, unknown>,
    y = b as Record<string, unknown>;
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter(
    (k) => canonicalJson(x[k]) !== canonicalJson(y[k]),
  );
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return (
    proto === null ||
    (Object.getPrototypeOf(proto) === null && Object.prototype.toString.call(value) === '[object Object]')
  );
}

const clone = <V>(v: V): V => (v !== null && typeof v === 'object' ? structuredClone(v) : v);

export class ObjectSchema<T> extends Schema<T> {
  readonly fields: Record<string, Field>;
  constructor(fields: Fields) {
    super();
    this.fields = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, asField(f)]));
  }
  parse(value: unknown, path: string): T {
    if (!isPlainObject(value)) this.fail(path, value);
    const keys = Object.keys(this.fields);
    for (const key of Object.keys(value)) {
      if (!(key in this.fields) && value[key] !== undefined)
        throw new ValidationError(
          join(path, key),
          value[key],
          `one of the keys ${keys.join(', ')}`,
          `${join(path, key)}: unknown key${suggest(key, keys)} (allowed: ${keys.join(', ')})`,
        );
    }
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(this.fields)) {
      const v = value[key];
      if (v === undefined) {
        if (field.default !== undefined) out[key] = clone(field.default);
        else if (!field.optional)
          throw new ValidationError(
            join(path, key),
            v,
            field.schema.describe(),
            `${join(path, key)}: required, expected ${field.schema.describe()}`,
          );
        continue;
      }
      out[key] = field.schema.parse(v, join(path, key));
    }
    return out as T;
  }
  describe(): string {
    return `an object with the keys ${Object.keys(this.fields).join(', ')}`;
  }
  protected json(): JsonSchema {
    const properties: JsonSchema = {};
    const required: string[] = [];
    for (const [key, field] of Object.entries(this.fields)) {
      const schema = field.schema.jsonSchema();
      properties[key] = field.default !== undefined ? { ...schema, default: field.default } : schema;
      if (!field.optional && field.default === undefined) required.push(key);
    }
    return { type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false };
  }
}

/** One of several object shapes, told apart by a key such as `type`. */
class TaggedSchema<T> extends Schema<T> {
  constructor(
    private readonly tag: string,
    private readonly variants: Record<string, ObjectSchema<unknown>>,
  ) {
    super();
  }
  parse(value: unknown, path: string): T {
    if (!isPlainObject(value)) this.fail(path, value);
    const kind = value[this.tag];
    const variant = typeof kind === 'string' ? this.variants[kind] : undefined;
    if (!variant) {
      const names = Object.keys(this.variants)
        .map((k) => JSON.stringify(k))
        .join(', ');
      throw new ValidationError(join(path, this.tag), kind, `one of ${names}`);
    }
    return variant.parse(value, path) as T;
  }
  describe(): string {
    return `an object whose ${this.tag} is one of ${Object.keys(this.variants).join(', ')}`;
  }
  protected json(): JsonSchema {
    return { oneOf: Object.values(this.variants).map((v) => v.jsonSchema()) };
  }
}

/** The first alternative that accepts the value wins. */
class UnionSchema<T> extends Schema<T> {
  constructor(private readonly options: Schema<unknown>[]) {
    super();
  }
  parse(value: unknown, path: string): T {
    for (const option of this.options) {
      try {
        return option.parse(value, path) as T;
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
      }
    }
    this.fail(path, value);
  }
  describe(): string {
    return this.options.map((o) => o.describe()).join(', or ');
  }
  protected json(): JsonSchema {
    return { anyOf: this.options.map((o) => o.jsonSchema()) };
  }
}

/** A schema plus a check across its value (ordering, consistency); `check` returns a problem or nothing. */
class RefinedSchema<T> extends Schema<T> {
  constructor(
    private readonly base: Schema<T>,
    private readonly check: (value: T, path: string) => string | undefined,
  ) {
    super();
  }
  parse(value: unknown, path: string): T {
    const parsed = this.base.parse(value, path);
    const problem = this.check(parsed, path);
    if (problem) throw new ValidationError(path, value, this.base.describe(), `${path || 'value'}: ${problem}`);
    return parsed;
  }
  describe(): string {
    return this.base.describe();
  }
  protected json(): JsonSchema {
    return this.base.jsonSchema();
  }
}

/** Any value (options the schema carries through to a check elsewhere: datasets, callbacks). */
class AnySchema extends Schema<unknown> {
  parse(value: unknown, _path?: string): unknown {
    return value;
  }
  describe(): string {
    return 'any value';
  }
  protected json(): JsonSchema {
    return {};
  }
}

class FunctionSchema extends Schema<(...args: never[]) => unknown> {
  parse(value: unknown, path: string): (...args: never[]) => unknown {
    if (typeof value !== 'function') this.fail(path, value);
    return value as (...args: never[]) => unknown;
  }
  describe(): string {
    return 'a function';
  }
  protected json(): JsonSchema {
    return {};
  }
}

/** An object whose every value passes `item` (metadata maps). */
class RecordSchema<T> extends Schema<Record<string, T>> {
  constructor(private readonly item: Schema<T>) {
    super();
  }
  parse(value: unknown, path: string): Record<string, T> {
    if (!isPlainObject(value)) this.fail(path, value);
    const out: Record<string, T> = {};
    for (const [k, v] of Object.entries(value)) out[k] = this.item.parse(v, join(path, k));
    return out;
  }
  describe(): string {
    return `an object of ${this.item.describe().replace(/^an? /, '')} values`;
  }
  protected json(): JsonSchema {
    return { type: 'object', additionalProperties: this.item.jsonSchema() };
  }
}

function suggest(key: string, keys: string[]): string {
  const lower = key.toLowerCase();
  const close = keys.find((k) => k.toLowerCase() === lower || editDistance(k.toLowerCase(), lower) <= 2);
  return close ? ` "${key}" (did you mean "${close}"?)` : ` "${key}"`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

export const s = {
  number: (rules: Omit<NumberRules, 'integer'> = {}) => new NumberSchema(rules),
  integer: (rules: Omit<NumberRules, 'integer'> = {}) => new NumberSchema({ ...rules, integer: true }),
  string: (opts: { nonEmpty?: boolean } = {}) => new StringSchema(opts.nonEmpty ?? true),
  boolean: () => new BooleanSchema(),
  enum: <T extends string | number>(values: readonly T[]) => new EnumSchema<T>(values),
  literal: <T extends string | number | boolean | null>(value: T) => new LiteralSchema<T>(value),
  array: <T>(item: Schema<T>, opts: { minLength?: number; maxLength?: number } = {}) =>
    new ArraySchema<T>(item, opts.minLength, opts.maxLength),
  object: <T>(fields: Fields) => new ObjectSchema<T>(fields),
  tagged: <T>(tag: string, variants: Record<string, ObjectSchema<unknown>>) => new TaggedSchema<T>(tag, variants),
  union: <T>(...options: Schema<unknown>[]) => new UnionSchema<T>(options),
  refine: <T>(base: Schema<T>, check: (value: T, path: string) => string | undefined) =>
    new RefinedSchema<T>(base, check),
  any: () => new AnySchema(),
  func: () => new FunctionSchema(),
  record: <T>(item: Schema<T>) => new RecordSchema<T>(item),
  optional: (schema: Schema<unknown>): Field => ({ schema, optional: true }),
  withDefault: (schema: Schema<unknown>, value: unknown): Field => ({ schema, default: value }),
};

export { formatValue };
