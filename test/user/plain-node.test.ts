// The same flows in plain Node, outside jest: test/user/plain-node.js run as a script.
import { execFileSync } from 'child_process';
import * as path from 'path';

it('the user flows pass in plain Node', () => {
  const root = path.resolve(__dirname, '..', '..');
  const out = execFileSync(
    process.execPath,
    [path.join(__dirname, 'plain-node.js'), path.join(root, 'dist', 'index.js')],
    { encoding: 'utf8' },
  );
  expect(out).toMatch(/plain node: ok/);
});
