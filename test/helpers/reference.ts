// The PyTorch reference tests run where a Python with torch is found (test/support/global-setup.js looks once
// per run and prints why they are skipped otherwise); under CI=true its absence fails the run instead.
import { findTorchPython } from '../../harness/python';

const found =
  process.env.RESNET_TORCH_REFERENCE !== undefined
    ? process.env.RESNET_TORCH_REFERENCE !== 'none'
    : findTorchPython() !== undefined;

/** `it` for a test that compares against PyTorch in Python. */
export const itWithTorch: jest.It = found ? it : it.skip;
