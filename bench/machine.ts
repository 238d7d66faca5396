// The line every benchmark prints above its tables: what the numbers come from (CPU model and vector extensions,
// the instruction set oneDNN runs, threads, libtorch ours and PyTorch's), so that another machine's rerun can be
// set beside it.
import { execFileSync } from 'child_process';
import * as os from 'os';

import { info } from '../lib';
import { findTorchPython } from '../harness/python';

function pytorchVersion(): string {
  const python = findTorchPython();
  if (!python) return 'none found';
  try {
    return execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** "CPU ...; oneDNN ... runs AVX2 (ONEDNN_MAX_CPU_ISA=AVX2); 2 threads; libtorch ...; PyTorch ...; Linux ...". */
export function describeMachine(threads: number): string {
  const i = info();
  const limit = process.env.ONEDNN_MAX_CPU_ISA ? ` (ONEDNN_MAX_CPU_ISA=${process.env.ONEDNN_MAX_CPU_ISA})` : '';
  return (
    `Machine: CPU ${i.cpu.model} (${i.cpu.isa.join(', ') || 'no AVX2'}), ${os.cpus().length} cores; ` +
    `libtorch's oneDNN ${i.cpu.onednnVersion ?? '(version hidden)'} runs ${i.cpu.onednnIsa ?? '(ISA hidden)'}${limit}; ` +
    `${threads} thread(s); ours: libtorch ${i.libtorchVersion}, training on ` +
    `${i.training.onednn ? `oneDNN ${i.training.onednnVersion} on ${i.training.onednnIsa} (blocks of ${i.training.block})` : "libtorch's path"}; PyTorch side: ` +
    `${pytorchVersion()}; Linux ${os.release()}`
  );
}
