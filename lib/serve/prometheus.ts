// Counters, gauges and histograms in Prometheus' text exposition format (version 0.0.4), without a client
// library: the server's handful of series needs about as much code as a dependency's setup would.

type Labels = Record<string, string>;

const key = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k])}"`)
    .join(',');

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  lines(): string[];
}

export class Counter implements Metric {
  readonly type = 'counter';
  #values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(key(labels)) ?? 0;
  }
  lines(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${formatNumber(v)}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number,
  ) {}
  lines(): string[] {
    return [`${this.name} ${formatNumber(this.read())}`];
  }
}

/** A gauge of 1 whose labels carry facts (Prometheus' "info" idiom): `name{engine="native",...} 1`. */
export class InfoGauge implements Metric {
  readonly type = 'gauge';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Labels,
  ) {}
  lines(): string[] {
    return [`${this.name}{${key(this.read())}} 1`];
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = new Array(buckets.length).fill(0);
  }
  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.#counts[i]++;
    this.#sum += v;
    this.#count++;
  }
  get count(): number {
    return this.#count;
  }
  lines(): string[] {
    return [
      ...this.buckets.map((b, i) => `${this.name}_bucket{le="${formatNumber(b)}"} ${this.#counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${formatNumber(this.#sum)}`,
      `${this.name}_count ${this.#count}`,
    ];
  }
}

export class Registry {
  #metrics: Metric[] = [];
  add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }
  /** The exposition text; served with `Content-Type: text/plain; version=0.0.4`. */
  text(): string {
    return (
      this.#metrics
        .flatMap((m) => [
          `# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\')}`,
          `# TYPE ${m.name} ${m.type}`,
          ...m.lines(),
        ])
        .join('\n') + '\n'
    );
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
