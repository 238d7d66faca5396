// The PyTorch reference tests run where a Python with torch is found (test/support/global-setup.js looks once
// per run and prints why they are skipped otherwise); under CI=true its absence fails the run instead.
import { findTimmPython, findTorchPython, runPython } from '../../harness/python';

const found =
  process.env.RESNET_TORCH_REFERENCE !== undefined
    ? process.env.RESNET_TORCH_REFERENCE !== 'none'
    : findTorchPython() !== undefined;

/** `it` for a test that compares against PyTorch in Python. */
export const itWithTorch: jest.It = found ? it : it.skip;

const timmPython = process.env.RESNET_TORCH_REFERENCE === 'none' ? undefined : findTimmPython();

/** `it` for a test that compares against timm (the project's venv has it: scripts/torch-venv.sh); under CI=true
 *  its absence fails the test instead of skipping it. */
export const itWithTimm: jest.It =
  timmPython || (process.env.CI === 'true' && process.env.RESNET_TORCH_REFERENCE !== 'none') ? it : it.skip;

/** Runs test/python/<script> in the Python that has timm. */
export function runTimm(script: string, args: string[]): Promise<string> {
  if (!timmPython) throw new Error('no Python with timm: run scripts/torch-venv.sh (it installs timm in the venv)');
  return runPython(script, args, {}, timmPython);
}
