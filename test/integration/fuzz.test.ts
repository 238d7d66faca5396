// The fuzz harness (fuzz/fuzz.ts) in a short run, and the inputs it found that once crashed the process, kept so
// they never do again. The full run (10,000 cases per parser) and its counts are in docs/RELIABILITY.md.
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';

import { CheckpointError, ValidationError } from '../../lib';
import { parseConfigText } from '../../lib/config/load';
import { readPytorchStateDict } from '../../lib/io/pth';
import { findTorchPython } from '../../harness/python';
import { rejection } from '../helpers/errors';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'fuzz');

describe('inputs the fuzzer found', () => {
  it('a .pth whose zip directory says a data record is shorter than the pickle declares: CheckpointError, no SIGSEGV', async () => {
    const file = path.join(FIXTURES, 'pth-record-shorter-than-pickle.pth');
    const error = await rejection(readPytorchStateDict(file));
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toMatch(/declares a storage of 8 bytes, its data record holds 0/);
  });

  it('a config nested 100,000 levels deep: ValidationError naming the file, no stack overflow', () => {
    const text = `{"model": ${'['.repeat(100000)}${']'.repeat(100000)}}`;
    const error = (() => {
      try {
        parseConfigText(text, 'deep.json');
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a throw');
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/deep.json: nested more than 64 levels deep/);
  });
});

describe('the fuzz harness, short run', () => {
  it('300 cases per parser: typed errors or correct loads, no crash, hang or unbounded memory', () => {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.bench.json'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    const targets = ['idx', 'idx-gz', 'cifar', 'safetensors', 'checkpoint', 'config-yaml', 'config-json', 'image'];
    if (findTorchPython()) targets.push('pth'); // its seed file is written by PyTorch
    const run = spawnSync(
      process.execPath,
      [
        path.join(ROOT, '.test-build', 'fuzz', 'fuzz.js'),
        '--cases',
        '300',
        '--seed',
        '2',
        '--targets',
        targets.join(','),
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000 },
    );
    expect(run.stderr.split('\n').filter((l) => /case \d+:/.test(l))).toEqual([]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/300 cases per target/);
    for (const t of targets) expect(run.stdout).toMatch(new RegExp(`\\| ${t}\\s+\\| 300\\s+\\|`));
  }, 300_000);
});
