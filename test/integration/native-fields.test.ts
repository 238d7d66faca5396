// The native config has two sides: lib/train/resolve.ts builds it (each concern's module of lib/train/options/
// gives its piece) and native/binding/train_convert.cpp reads it through one field table per struct. This reads
// the C++ tables from the addon (trainConfigFields) and checks the configs TypeScript builds against them: the same
// keys, no key C++ would ignore, each value of the type C++ reads, each choice among C++'s names. (In the
// integration lane: the unit lane runs without the addon.)
import { createModel } from '../../lib';
import { EVAL_METRIC_NAMES } from '../../lib/metric-names';
import { NativeFieldTable, native } from '../../lib/native';
import { trainFields } from '../../lib/train/options';
import { resolveRun } from '../../lib/train/resolve';
import type { TrainOptions } from '../../lib/train/options';
import { Schema } from '../../lib/validate';
import { syntheticDataset } from '../../harness/synthetic';

/** Every disagreement between `value` and `table`, by path. */
function disagreements(value: Record<string, unknown>, table: NativeFieldTable, at = ''): string[] {
  const out: string[] = [];
  for (const key of Object.keys(value))
    if (!(key in table) && value[key] !== undefined) out.push(`${at}${key}: built in TypeScript, not read by C++`);
  for (const [key, kind] of Object.entries(table)) {
    const path = `${at}${key}`;
    const v = value[key];
    if (typeof kind === 'string' && kind.endsWith('?') && v === undefined) continue;
    if (v === undefined) {
      out.push(`${path}: read by C++, not built in TypeScript`);
      continue;
    }
    if (Array.isArray(kind)) {
      if (!kind.includes(v as string)) out.push(`${path}: ${JSON.stringify(v)} is not one of C++'s ${kind.join(', ')}`);
      continue;
    }
    if (typeof kind === 'object') {
      out.push(...disagreements(v as Record<string, unknown>, kind, `${path}.`));
      continue;
    }
    const ok: Record<string, (x: unknown) => boolean> = {
      boolean: (x) => typeof x === 'boolean',
      number: (x) => typeof x === 'number',
      integer: (x) => Number.isInteger(x),
      string: (x) => typeof x === 'string',
      'integer[]': (x) => Array.isArray(x) && x.every(Number.isInteger),
      tensors: (x) => Array.isArray(x) && x.every((t) => typeof t.name === 'string' && Array.isArray(t.shape)),
      'string pairs': (x) =>
        Array.isArray(x) && x.every((p) => p.length === 2 && p.every((s: unknown) => typeof s === 'string')),
      'float array': (x) => x instanceof Float32Array || x instanceof Float64Array,
    };
    const check = ok[kind.replace(/\?$/, '')];
    if (!check) out.push(`${path}: C++ reads an unknown kind "${kind}"`);
    else if (!check(v)) out.push(`${path}: C++ reads ${kind}, TypeScript builds ${JSON.stringify(v)}`);
  }
  return out;
}

describe('the native config: TypeScript builds what the C++ field tables read', () => {
  const table = () => native().trainConfigFields();
  const cases: [string, TrainOptions][] = [
    ['the defaults', { iterations: 4 }],
    [
      'every concern set',
      {
        epochs: 2,
        batchSize: 4,
        accumulate: 2,
        optimizer: { type: 'adamw', lr: 1e-3, betas: [0.8, 0.9] },
        schedule: { type: 'plateau', metric: 'val_error' },
        warmup: { iterations: 2 },
        errorWarmup: {},
        labelSmoothing: 0.1,
        clipGradNorm: 1,
        augment: { padCrop: 1, flip: true, randomResizedCrop: { size: 6 } },
        normalize: 'per-pixel',
        evalEvery: { iterations: 2 },
        earlyStopping: { monitor: 'val_loss', patience: 2 },
        ema: { decay: 0.9 },
        logEvery: 1,
        diagnostics: true,
        threads: 1,
        deterministic: true,
        memoryFormat: 'contiguous',
        distributed: false,
      },
    ],
    [
      'no normalisation, multistep by epochs',
      { epochs: 3, normalize: 'none', schedule: { type: 'multistep', milestones: [1], unit: 'epoch' } },
    ],
  ];
  it.each(cases)('%s', async (_name, options) => {
    const data = await syntheticDataset(32, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 2, seed: 0 });
    try {
      const validation = await syntheticDataset(8, [1, 8, 8], 2, 2);
      const { config } = await resolveRun(model, data, { batchSize: 4, ...options, validation });
      expect(disagreements(config as unknown as Record<string, unknown>, table())).toEqual([]);
      // The same config passes C++'s reader.
      expect(() => native().scheduleValues(config, [{ iteration: 0 }])).not.toThrow();
    } finally {
      model.dispose();
    }
  });

  it("C++'s choices are the options' names", () => {
    const t = table();
    const names = (field: string) => {
      const f = trainFields[field];
      return ((f instanceof Schema ? f : f.schema).jsonSchema() as { enum?: string[] }).enum;
    };
    expect(t.plateauMetric).toEqual([...EVAL_METRIC_NAMES, 'train_loss']);
    expect((t.earlyStop as NativeFieldTable).metric).toEqual(['', ...EVAL_METRIC_NAMES]);
    expect(t.precision).toEqual(names('precision'));
    expect((t.optimizer as NativeFieldTable).type).toEqual(['sgd', 'adamw', 'lamb']);
    expect(t.loss).toEqual(['cross-entropy', 'bce']);
    expect((t.schedule as NativeFieldTable).type).toEqual(['constant', 'multistep', 'cosine', 'onecycle', 'plateau']);
  });

  it('the checker finds a key one side lacks and a value of the wrong type', async () => {
    const t = table();
    expect(disagreements({ batchSize: 1.5, extra: true }, { batchSize: 'integer', flag: 'boolean' })).toEqual([
      'extra: built in TypeScript, not read by C++',
      'batchSize: C++ reads integer, TypeScript builds 1.5',
      'flag: read by C++, not built in TypeScript',
    ]);
    expect(Object.keys(t).length).toBeGreaterThan(30);
  });
});
