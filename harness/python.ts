// The independent reference: PyTorch and torchvision in Python (Debian's python3-torch and
// python3-torchvision, or $RESNET_TORCH_PYTHON). Where none is found the jest tests that need it are skipped,
// except under CI=true (test/helpers/reference.ts). A Python with
// torch alone is taken when none has both (the GPU machine's PyTorch comes without torchvision; the scripts
// it runs build torchvision's networks themselves then).
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

let found: string | undefined;

/** The first Python with torch and torchvision (else with torch alone), or undefined. */
export function findTorchPython(): string | undefined {
  if (found) return found;
  const candidates = [process.env.RESNET_TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[];
  for (const modules of ['torch, torchvision', 'torch']) {
    for (const python of candidates) {
      try {
        execFileSync(python, ['-c', `import ${modules}`], { stdio: 'ignore', timeout: 60000 });
        found = python;
        return python;
      } catch {
        // try the next one
      }
    }
  }
  return undefined;
}

export function torchPython(): string {
  const python = findTorchPython();
  if (python) return python;
  throw new Error(
    'no python3 with torch and torchvision: install python3-torch python3-torchvision (Debian) or set RESNET_TORCH_PYTHON',
  );
}

const foundByCheck = new Map<string, string | null>();

/** The first of the given Python, the reference Python, the project's venv of PyTorch 2.15
 *  (scripts/torch-venv.sh) and python3 that runs `check`; remembered per check. */
function firstPythonWith(envVar: string, check: string): string | undefined {
  if (foundByCheck.has(check)) return foundByCheck.get(check) ?? undefined;
  const cache = process.env.RESNET_TORCH_CACHE ?? path.join(process.env.HOME ?? '/root', '.cache', 'resnet-torch');
  const candidates = [
    process.env[envVar],
    process.env.RESNET_TORCH_PYTHON,
    path.join(cache, 'venv-torch-2.15', 'bin', 'python'),
    'python3',
  ].filter(Boolean) as string[];
  let hit: string | null = null;
  for (const python of candidates) {
    try {
      execFileSync(python, ['-c', check], { stdio: 'ignore', timeout: 60000 });
      hit = python;
      break;
    } catch {
      // try the next one
    }
  }
  foundByCheck.set(check, hit);
  return hit ?? undefined;
}

/**
 * A Python whose PyTorch (2.x) has torchrun (torch.distributed.run), to launch jobs with the real launcher:
 * $RESNET_TORCH_TORCHRUN_PYTHON, the reference Python, the project's venv of PyTorch 2.15 (scripts/torch-venv.sh),
 * python3. Debian's PyTorch 1.13 is not one: its torchrun does not start on Python 3.11. Undefined where none is.
 */
export function findTorchrunPython(): string | undefined {
  return firstPythonWith(
    'RESNET_TORCH_TORCHRUN_PYTHON',
    'import torch, torch.distributed.run; assert int(torch.__version__.split(".")[0]) >= 2',
  );
}

/**
 * A Python with timm (the reference of its ResNet variants): $RESNET_TORCH_TIMM_PYTHON, the reference Python, the
 * project's venv of PyTorch 2.15 (scripts/torch-venv.sh installs timm there). Undefined where none has it.
 */
export function findTimmPython(): string | undefined {
  return firstPythonWith('RESNET_TORCH_TIMM_PYTHON', 'import torch, timm');
}

/**
 * A Python with onnxruntime's quantization tool (int8's reference): $RESNET_TORCH_ONNX_PYTHON, the reference
 * Python, the project's venv of PyTorch 2.15 (scripts/torch-venv.sh installs onnxruntime there). Undefined where
 * none has it.
 */
export function findOnnxQuantPython(): string | undefined {
  return firstPythonWith('RESNET_TORCH_ONNX_PYTHON', 'import onnxruntime.quantization, onnx');
}

/** The package root, from wherever this file runs (harness/ under jest, .test-build/harness for bench/). */
function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export const PYTHON_DIR = path.join(packageRoot(), 'test', 'python');

/** Runs test/python/<script> with args; resolves with stdout, rejects with stderr. */
export function runPython(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  python: string = torchPython(),
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [path.join(PYTHON_DIR, script), ...args], {
      env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2', ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}:\n${err}`)),
    );
  });
}
