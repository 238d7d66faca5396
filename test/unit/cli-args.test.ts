// The CLI's argument parser: flags with values, booleans, numbers, repeatable lists, aliases, and usage errors.
import { UsageError, parseArgs } from '../../lib/cli/args';

const specs = {
  out: { type: 'string' as const, description: '', alias: 'o' },
  epochs: { type: 'number' as const, description: '' },
  quiet: { type: 'boolean' as const, description: '' },
  set: { type: 'list' as const, description: '' },
};

describe('parseArgs', () => {
  it('reads --flag value, --flag=value, aliases, booleans, numbers, lists and positionals in any order', () => {
    const p = parseArgs(['run.yaml', '--epochs', '3', '-o', 'dir', '--quiet', '--set', 'a=1', '--set=b=2', 'x'], specs);
    expect(p).toEqual({
      positional: ['run.yaml', 'x'],
      flags: { epochs: 3, out: 'dir', quiet: true, set: ['a=1', 'b=2'] },
    });
  });
  it('everything after -- is positional', () => {
    expect(parseArgs(['--', '--quiet'], specs)).toEqual({ positional: ['--quiet'], flags: {} });
  });
  it('refuses unknown flags, missing values, non-numbers and a value on a boolean, as usage errors', () => {
    expect(() => parseArgs(['--bogus'], specs)).toThrow(new UsageError('unknown option --bogus'));
    expect(() => parseArgs(['--out'], specs)).toThrow('--out needs a value');
    expect(() => parseArgs(['--epochs', 'ten'], specs)).toThrow('--epochs needs a number, got "ten"');
    expect(() => parseArgs(['--epochs', ' '], specs)).toThrow('--epochs needs a number, got " "');
    expect(() => parseArgs(['--quiet=yes'], specs)).toThrow('--quiet takes no value');
  });
});
