// Where the package's own files are (package.json, configs/, build/), from compiled code in dist/ or in
// the test build.
import * as fs from 'fs';
import * as path from 'path';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        if (JSON.parse(fs.readFileSync(file, 'utf8')).name === 'resnet-torch') return (root = dir);
      } catch {
        // not ours: keep climbing
      }
    }
    if (path.dirname(dir) === dir) return (root = path.resolve(__dirname, '..'));
  }
}
