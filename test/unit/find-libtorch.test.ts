// Building against a CUDA libtorch: what would make CMake fail obscurely is refused first, in words.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const { cudaBuildProblem, ncclIncludeDir } = require('../../scripts/find-libtorch.js');

describe('cudaBuildProblem', () => {
  const nvcc = (version: string) => ({ path: '/usr/local/cuda/bin/nvcc', version });
  it('accepts a toolkit of the same major version as the libtorch, or none found', () => {
    expect(cudaBuildProblem({ torchCuda: '12.4', nvcc: nvcc('12.8'), source: 'python3 (PyTorch)' })).toBeNull();
    expect(cudaBuildProblem({ torchCuda: '13.0', nvcc: nvcc('13.0'), source: 'python3 (PyTorch)' })).toBeNull();
    expect(cudaBuildProblem({ torchCuda: '12.x', nvcc: nvcc('12.4'), source: 'system' })).toBeNull();
    expect(cudaBuildProblem({ torchCuda: '12.4', nvcc: null, source: 'system' })).toBeNull();
  });
  it('names both versions and the way out when the majors differ', () => {
    const message = cudaBuildProblem({ torchCuda: '13.0', nvcc: nvcc('12.4'), source: 'python3 (PyTorch)' });
    expect(message).toMatch(
      /built with CUDA 13\.0, but the CUDA toolkit CMake would use \(\/usr\/local\/cuda\/bin\/nvcc\) is 12\.4/,
    );
    expect(message).toMatch(/CUDA_HOME .* a CUDA 13\.x toolkit, or install the PyTorch built for CUDA 12\.x/);
  });
  it('reads TORCH_CUDA_ARCH_LIST as PyTorch does, naming the entry it cannot read', () => {
    for (const ok of ['8.0;9.0', '9.0+PTX', '7.5 8.6', 'Hopper', '9.0a', ''])
      expect(cudaBuildProblem({ torchCuda: '12.4', nvcc: nvcc('12.4'), archList: ok, source: 's' })).toBeNull();
    expect(cudaBuildProblem({ torchCuda: '12.4', nvcc: nvcc('12.4'), archList: '8.0;sm_90', source: 's' })).toMatch(
      /TORCH_CUDA_ARCH_LIST="8.0;sm_90": "sm_90" is not a CUDA architecture/,
    );
  });
});

describe('ncclIncludeDir: NCCL process groups where the libtorch is a CUDA 2.x one and nccl.h is found', () => {
  // A pip layout: site-packages/torch (the prefix, with include/) beside site-packages/nvidia/nccl/include.
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-torch-site-'));
  const prefix = path.join(site, 'torch');
  const includeRoot = path.join(prefix, 'include');
  const c10d = path.join(includeRoot, 'torch', 'csrc', 'distributed', 'c10d');
  fs.mkdirSync(c10d, { recursive: true });
  fs.writeFileSync(path.join(c10d, 'ProcessGroupNCCL.hpp'), '');
  const nccl = path.join(site, 'nvidia', 'nccl', 'include');
  fs.mkdirSync(nccl, { recursive: true });
  fs.writeFileSync(path.join(nccl, 'nccl.h'), '');
  const torch = { cuda: true, c10d: true, version: { major: 2 }, prefix, includeRoot };
  const env = {};
  it("finds pip's nvidia-nccl beside torch", () => {
    expect(ncclIncludeDir(torch, env)).toBe(nccl);
  });
  it('NCCL_INCLUDE_DIR comes first', () => {
    expect(ncclIncludeDir(torch, { NCCL_INCLUDE_DIR: includeRoot })).toBe(nccl); // no nccl.h there: the next
    fs.writeFileSync(path.join(includeRoot, 'nccl.h'), '');
    expect(ncclIncludeDir(torch, { NCCL_INCLUDE_DIR: includeRoot })).toBe(includeRoot);
    fs.unlinkSync(path.join(includeRoot, 'nccl.h'));
  });
  it('none for a CPU libtorch, libtorch 1.x, no c10d, or a c10d without ProcessGroupNCCL', () => {
    expect(ncclIncludeDir({ ...torch, cuda: false }, env)).toBeNull();
    expect(ncclIncludeDir({ ...torch, version: { major: 1 } }, env)).toBeNull();
    expect(ncclIncludeDir({ ...torch, c10d: false }, env)).toBeNull();
    expect(ncclIncludeDir({ ...torch, includeRoot: site }, env)).toBeNull();
  });
});
