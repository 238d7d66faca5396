// Building against a CUDA libtorch: what would make CMake fail obscurely is refused first, in words.
const { cudaBuildProblem } = require('../../scripts/find-libtorch.js');

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
