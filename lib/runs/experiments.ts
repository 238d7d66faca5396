// The paper's experiments, each one command: a list of networks trained in turn with one recipe (the
// paper's, scaled to the budget), each into its own run folder (a finished one is not trained again, a
// stopped one resumes), then a markdown report with a table and plots.
import * as fs from 'fs';
import * as path from 'path';

import { resolveConfig } from '../config/load';
import { DatasetConfig, RunConfig } from '../config/schema';
import { ValidationError } from '../errors';
import { layerCount, resolveArch } from '../model/archs';
import { Series, colorFor, writeChart } from '../plot/chart';
import type { ProgressEvent } from '../train/options';
import { Reporter } from './progress';
import { RunFolder, errorSeries } from './run-folder';
import { RunSummary, loadRunData, resumeFolder, trainConfig } from './session';

export const EXPERIMENTS = ['degradation', 'shortcuts', 'identity', 'preact', 'recipe'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface ExperimentOptions {
  dataset: 'fashion-mnist' | 'cifar10';
  dataPath?: string;
  /** '3e' (epochs) or '2000i' (iterations). */
  budget: string;
  /** Train on this many images (a seeded subset). */
  limit?: number;
  depths?: number[];
  out: string;
  device?: string;
  seed?: number;
  batchSize?: number;
}

interface Net {
  id: string;
  label: string;
  model: RunConfig['model'];
  family?: string;
  diagnostics?: boolean;
  /** The recipe experiment: training options over the section 4.2 recipe (augment merged key by key). */
  train?: Partial<RunConfig['train']>;
}

function budgetOf(budget: string): { epochs?: number; iterations?: number } {
  const m = /^(\d+)\s*(e|epochs?|i|it|iterations?)$/.exec(budget.trim());
  if (!m || Number(m[1]) < 1)
    throw new ValidationError('budget', budget, 'epochs like "3e" or iterations like "2000i"');
  return m[2].startsWith('e') ? { epochs: Number(m[1]) } : { iterations: Number(m[1]) };
}

/** The section 4.2 recipe, scaled: SGD 0.1 (momentum 0.9, weight decay 1e-4), ÷10 at 50% and 75% of the budget,
 *  pad-4 crops and flips, per-pixel mean subtraction, batch 128. */
function recipe(o: ExperimentOptions, net: Net): RunConfig {
  const train: DatasetConfig =
    o.dataset === 'cifar10'
      ? { type: 'cifar10', path: o.dataPath, ...(o.limit ? { limit: o.limit } : {}) }
      : { type: 'fashion-mnist', ...(o.dataPath ? { path: o.dataPath } : {}), ...(o.limit ? { limit: o.limit } : {}) };
  const budget = budgetOf(o.budget);
  const unit = budget.epochs ? 'epoch' : 'iteration';
  const total = budget.epochs ?? budget.iterations!;
  const milestones = [Math.round(total * 0.5), Math.round(total * 0.75)].filter(
    (m, i, a) => m >= 1 && m < total && a.indexOf(m) === i,
  );
  return resolveConfig({
    name: net.id,
    seed: o.seed ?? 0,
    model: { ...net.model, ...(o.device ? { device: o.device } : {}) },
    data: { train },
    train: {
      ...budget,
      batchSize: o.batchSize ?? 128,
      optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
      schedule: milestones.length ? { type: 'multistep', milestones, unit } : { type: 'constant' },
      normalize: 'per-pixel',
      logEvery: 20,
      ...(budget.iterations ? { evalEvery: { iterations: Math.max(1, Math.round(budget.iterations / 8)) } } : {}),
      ...(net.diagnostics ? { diagnostics: true } : {}),
      ...net.train,
      augment: { padCrop: 4, flip: true, ...net.train?.augment },
    },
    checkpoint: { everyEpochs: 1, keepLast: 1 },
  });
}

function nets(name: ExperimentName, depths: number[] | undefined): Net[] {
  const cifar = (kind: string, d: number, extra: Partial<RunConfig['model']> = {}, label?: string): Net => ({
    id: `${kind}${d}${extra.shortcut ? `-${extra.shortcut}` : ''}${extra.shortcutScale !== undefined ? `-scale${extra.shortcutScale}` : ''}`,
    label:
      label ??
      `${kind.replace('cifar-', '').replace('resnet', 'ResNet-').replace('plain', 'plain-').replace('preact-ResNet-', 'pre-act ResNet-')}${d}`,
    model: { arch: `${kind}${d}`, ...extra },
  });
  switch (name) {
    case 'degradation': {
      const ds = depths ?? [20, 32, 44, 56];
      return [
        ...ds.map((d) => ({ ...cifar('cifar-plain', d), family: 'plain' })),
        ...ds.map((d) => ({ ...cifar('cifar-resnet', d), family: 'ResNet' })),
      ];
    }
    case 'shortcuts': {
      const d = depths?.[0] ?? 32;
      return (['A', 'B', 'C'] as const).map((s) =>
        cifar('cifar-resnet', d, { shortcut: s }, `ResNet-${d} option ${s}`),
      );
    }
    case 'identity': {
      const d = depths?.[0] ?? 20;
      return [
        ...[0.5, 1, 1.5].map((l) => ({
          ...cifar('cifar-resnet', d, { shortcutScale: l }, `ResNet-${d}, λ = ${l}`),
          diagnostics: true,
        })),
        { ...cifar('cifar-plain', d), diagnostics: true },
      ];
    }
    case 'recipe': {
      // Today's training ingredients (torchvision's new recipe, timm's), each alone over the paper's recipe and
      // all together, at the same budget. EMA's decay is scaled to a CPU budget (about 100 steps' memory).
      const d = depths?.[0] ?? 20;
      const ingredients: [string, string, Partial<RunConfig['train']>][] = [
        ['baseline', "the paper's recipe (pad-4 crops, flips)", {}],
        ['label-smoothing', '+ label smoothing 0.1', { labelSmoothing: 0.1 }],
        ['mixup-cutmix', '+ mixup 0.2 / cutmix 1.0', { augment: { mix: { mixup: 0.2, cutmix: 1.0 } } }],
        ['trivial-augment', '+ TrivialAugmentWide', { augment: { trivialAugment: true } }],
        ['random-erasing', '+ random erasing 0.25', { augment: { randomErasing: { prob: 0.25 } } }],
        ['ema', '+ EMA (decay 0.99)', { ema: { decay: 0.99 } }],
      ];
      const all: Partial<RunConfig['train']> = {
        labelSmoothing: 0.1,
        ema: { decay: 0.99 },
        augment: { mix: { mixup: 0.2, cutmix: 1.0 }, trivialAugment: true, randomErasing: { prob: 0.25 } },
      };
      return [...ingredients, ['all', 'all of them', all] as [string, string, Partial<RunConfig['train']>]].map(
        ([id, label, train]) => ({ ...cifar('cifar-resnet', d), id: `resnet${d}-${id}`, label, train }),
      );
    }
    case 'preact': {
      const ds = depths ?? [20, 56];
      // Option A on both sides (the pre-activation arch defaults to B): only the block's order differs.
      return ds.flatMap((d) => [
        { ...cifar('cifar-resnet', d), family: `${d}` },
        { ...cifar('cifar-preact-resnet', d, { shortcut: 'A' }), family: `${d}` },
      ]);
    }
  }
}

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);

async function runNet(config: RunConfig, dir: string, reporter: Reporter, signal?: AbortSignal): Promise<RunSummary> {
  const summaryFile = path.join(dir, 'summary.json');
  if (fs.existsSync(summaryFile)) {
    const s = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as RunSummary;
    if (!s.aborted) {
      reporter.line(`${config.name}: already trained (${dir}), skipped`);
      return s;
    }
  }
  if (fs.existsSync(path.join(dir, 'checkpoints', 'last.safetensors'))) return resumeFolder(dir, { reporter, signal });
  fs.rmSync(dir, { recursive: true, force: true });
  return trainConfig(config, { reporter, signal, dir, data: await loadRunData(config) });
}

/** The mean of each block's diagnostic over the last few reports (the trained net, as in Fig. 7). */
function lastDiagnostics(events: ProgressEvent[], key: 'gradNorms' | 'responseStds', count = 5): number[] {
  const withDiag = events.filter((e) => e.diagnostics).slice(-count);
  if (withDiag.length === 0) return [];
  const n = withDiag[0].diagnostics![key].length;
  return Array.from(
    { length: n },
    (_, i) => withDiag.reduce((a, e) => a + e.diagnostics![key][i], 0) / withDiag.length,
  );
}

export interface ExperimentResult {
  dir: string;
  report: string;
  summaries: RunSummary[];
  aborted: boolean;
}

export async function runExperiment(
  name: ExperimentName,
  o: ExperimentOptions,
  reporter: Reporter,
  signal?: AbortSignal,
): Promise<ExperimentResult> {
  if (!EXPERIMENTS.includes(name)) throw new ValidationError('experiment', name, `one of ${EXPERIMENTS.join(', ')}`);
  if (o.dataset === 'cifar10' && !o.dataPath)
    throw new ValidationError(
      '--data-path',
      undefined,
      'the CIFAR-10 binary folder',
      '--data-path: CIFAR-10 needs the folder of cifar-10-batches-bin',
    );
  const dir = path.resolve(o.out, name);
  fs.mkdirSync(dir, { recursive: true });
  const list = nets(name, o.depths);
  for (const net of list)
    if (!resolveArch(net.model.arch!)) throw new ValidationError('--depths', o.depths, 'depths the family has (6n+2)');
  const summaries: RunSummary[] = [];
  const events = new Map<string, ProgressEvent[]>();
  for (const net of list) {
    const config = recipe(o, net);
    const netDir = path.join(dir, net.id);
    reporter.line(`== ${name}: ${net.label} (${list.indexOf(net) + 1}/${list.length}) ==`);
    const summary = await runNet(config, netDir, new Reporter(reporter.mode, undefined, net.id), signal);
    summaries.push(summary);
    events.set(net.id, new RunFolder(netDir).events());
    if (summary.aborted) return { dir, report: '', summaries, aborted: true };
  }
  const report = await writeReport(name, o, dir, list, summaries, events);
  return { dir, report, summaries, aborted: false };
}

async function writeReport(
  name: ExperimentName,
  o: ExperimentOptions,
  dir: string,
  list: Net[],
  summaries: RunSummary[],
  events: Map<string, ProgressEvent[]>,
): Promise<string> {
  const dataset = o.dataset === 'cifar10' ? 'CIFAR-10' : 'Fashion-MNIST';
  const lines = [
    `# ${name} experiment on ${dataset}`,
    '',
    `Budget ${o.budget}${o.limit ? ` on ${o.limit} training images` : ''}; SGD 0.1, momentum 0.9, weight decay 1e-4, ÷10 at 50% and 75% of the budget, ` +
      `batch ${o.batchSize ?? 128}, pad-4 crops and flips, per-pixel mean subtraction (the paper's section 4.2 recipe, scaled). ` +
      "Training error: the last epoch's running error on augmented batches; test error: the original test images.",
    '',
  ];
  if (name === 'recipe')
    lines.push(
      "Each row adds one of today's ingredients to that recipe (the last row all of them), at the same budget. " +
        'Regularisers that pay off over 600 epochs can cost at a short budget: the table says which way each went here. ' +
        'With EMA, evaluations use the average.',
      '',
    );
  lines.push(
    '| network | layers | parameters | final training error | final test error | best test error |',
    '|---|---|---|---|---|---|',
  );
  list.forEach((net, i) => {
    const s = summaries[i];
    lines.push(
      `| ${net.label} | ${layerCount(resolveArch(net.model.arch!)!)} | ${s.parameters.toLocaleString('en-US')} | ${pct(s.finalTrainError)} | ${pct(s.final.test?.error)} | ${pct(s.best.test?.error)} |`,
    );
  });
  lines.push('');
  const charts: { file: string; caption: string }[] = [];
  const curves = async (file: string, title: string, members: Net[]) => {
    const series: Series[] = members.flatMap((net, k) => errorSeries(events.get(net.id) ?? [], net.label, k));
    await writeChart(path.join(dir, file), series, { title, xLabel: 'iterations', yLabel: 'error', yPercent: true });
    charts.push({ file, caption: title });
  };
  const families = [...new Set(list.map((n) => n.family).filter(Boolean))] as string[];
  if (families.length > 0 && name === 'degradation') {
    for (const f of families)
      await curves(
        `${f.toLowerCase()}-error`,
        `${dataset}: ${f} nets, training (dashed) and test (solid) error`,
        list.filter((n) => n.family === f),
      );
  } else if (name === 'preact') {
    for (const f of families)
      await curves(
        `depth${f}-error`,
        `${dataset}: original vs pre-activation, ${f} layers (dashed: training, solid: test)`,
        list.filter((n) => n.family === f),
      );
  } else {
    await curves('error', `${dataset}: training (dashed) and test (solid) error`, list);
  }
  if (name === 'identity') await diagnosticsCharts(dir, list, events, charts, lines);
  for (const c of charts) lines.push(`![${c.caption}](${c.file}.png)`, '');
  lines.push(
    'Runs (config, metrics.csv, checkpoints, weights, per-run plot):',
    '',
    ...list.map((n, i) => `- ${n.label}: ${path.relative(dir, summaries[i].dir) || '.'}`),
    '',
  );
  const report = path.join(dir, 'report.md');
  fs.writeFileSync(report, lines.join('\n'));
  return report;
}

/** The identity experiment's Fig. 7: each block's response std and input gradient norm, as charts and tables. */
async function diagnosticsCharts(
  dir: string,
  list: Net[],
  events: Map<string, ProgressEvent[]>,
  charts: { file: string; caption: string }[],
  lines: string[],
): Promise<void> {
  for (const [key, file, title, ylabel] of [
    [
      'responseStds',
      'response-std',
      "Std of each block's residual response (last BN output, before the add): the paper's Fig. 7",
      'std',
    ],
    ['gradNorms', 'grad-norm', "‖∂E/∂x_l‖ at each block's input, by depth", 'gradient norm'],
  ] as const) {
    const series: Series[] = list.map((net, k) => ({
      label: net.label,
      color: colorFor(k),
      markers: true,
      points: lastDiagnostics(events.get(net.id) ?? [], key).map((v, i) => [i + 1, v] as [number, number]),
    }));
    await writeChart(path.join(dir, file), series, { title, xLabel: 'block (input side = 1)', yLabel: ylabel });
    charts.push({ file, caption: title });
    lines.push(
      `${title}:`,
      '',
      `| network | ${series[0].points.map((p) => `block ${p[0]}`).join(' | ')} |`,
      `|---|${series[0].points.map(() => '---').join('|')}|`,
    );
    for (const s of series) lines.push(`| ${s.label} | ${s.points.map((p) => p[1].toPrecision(3)).join(' | ')} |`);
    lines.push('');
  }
}
