// A small argument parser: --flag value, --flag=value, boolean --flags, repeatable flags; unknown flags are
// usage errors (exit code 2).
export type FlagType = 'string' | 'number' | 'boolean' | 'list';

export interface FlagSpec {
  type: FlagType;
  description: string;
  alias?: string;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Parsed {
  positional: string[];
  flags: Record<string, string | number | boolean | string[]>;
}

export function parseArgs(argv: string[], specs: Record<string, FlagSpec>): Parsed {
  const byAlias = new Map(
    Object.entries(specs)
      .filter(([, s]) => s.alias)
      .map(([name, s]) => [s.alias!, name]),
  );
  const out: Parsed = { positional: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const rawName = arg.startsWith('--')
      ? arg.slice(2, eq > 0 ? eq : undefined)
      : arg.slice(1, eq > 0 ? eq : undefined);
    const name = arg.startsWith('--') ? rawName : (byAlias.get(rawName) ?? rawName);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown option ${arg.slice(0, eq > 0 ? eq : undefined)}`);
    if (spec.type === 'boolean') {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
      out.flags[name] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (spec.type === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n))
        throw new UsageError(`--${name} needs a number, got ${JSON.stringify(value)}`);
      out.flags[name] = n;
    } else if (spec.type === 'list') {
      out.flags[name] = [...((out.flags[name] as string[] | undefined) ?? []), value];
    } else {
      out.flags[name] = value;
    }
  }
  return out;
}

export function helpText(usage: string, summary: string, specs: Record<string, FlagSpec>): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  ${s.alias ? `-${s.alias}, ` : ''}--${name}${s.type === 'boolean' ? '' : s.type === 'number' ? ' N' : ' VALUE'}`;
    return `${left.padEnd(30)} ${s.description}`;
  });
  return [`Usage: ${usage}`, '', summary, '', 'Options:', ...rows].join('\n');
}
