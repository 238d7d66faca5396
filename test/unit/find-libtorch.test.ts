// Building against a CUDA libtorch: what would make CMake fail obscurely is refused first, in words.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const { cudaBuildProblem, ncclIncludeDir, onednnFor } = require('../../scripts/find-libtorch.js');

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

describe('onednnFor: the oneDNN training path on a oneDNN 2.x whose headers match the library it runs', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-torch-dnnl-'));
  // A system library folder with Debian's libdnnl.so.2, and one without.
  const systemLibs = path.join(root, 'system-lib');
  fs.mkdirSync(systemLibs);
  fs.writeFileSync(path.join(systemLibs, 'libdnnl.so.2'), '');
  const noLibs = path.join(root, 'empty-lib');
  fs.mkdirSync(noLibs);
  const layout = (name: string, linked: string | null, headerMajor: number | null) => {
    const libDir = path.join(root, name, 'lib');
    const include = path.join(root, name, 'include');
    fs.mkdirSync(libDir, { recursive: true });
    // The dynamic section names its libraries as strings: that is what is read.
    fs.writeFileSync(path.join(libDir, 'libtorch_cpu.so.1.13'), `\x7fELF...libc10.so\0${linked ?? 'libgomp.so.1'}\0`);
    if (headerMajor !== null) {
      fs.mkdirSync(path.join(include, 'oneapi', 'dnnl'), { recursive: true });
      fs.writeFileSync(
        path.join(include, 'oneapi', 'dnnl', 'dnnl_version.h'),
        `#define DNNL_VERSION_MAJOR ${headerMajor}\n`,
      );
      fs.writeFileSync(path.join(include, 'oneapi', 'dnnl', 'dnnl.hpp'), '');
    }
    return { t: { libDir }, include };
  };
  it("Debian's: libtorch links libdnnl.so.2, libdnnl-dev 2.x installed", () => {
    const { t, include } = layout('debian', 'libdnnl.so.2', 2);
    expect(onednnFor(t, [include], [noLibs])).toEqual({ include, soname: 'libdnnl.so.2' });
  });
  it("pip's (oneDNN hidden inside libtorch_cpu): the system's oneDNN 2.x beside it, where headers and library are there", () => {
    const pip = layout('pip', null, 2);
    expect(onednnFor(pip.t, [pip.include], [systemLibs])).toEqual({
      include: pip.include,
      soname: 'libdnnl.so.2',
      own: true,
    });
    expect(onednnFor(pip.t, [pip.include], [noLibs])).toBeNull();
    const pipNoHeaders = layout('pip-headerless', null, null);
    expect(onednnFor(pipNoHeaders.t, [pipNoHeaders.include], [systemLibs])).toBeNull();
    const pip3 = layout('pip-3', null, 3); // the training path speaks the 2.x API
    expect(onednnFor(pip3.t, [pip3.include], [systemLibs])).toBeNull();
  });
  it('none without the headers, with another major, or beside a libtorch linking another major (its symbols would bind)', () => {
    const headerless = layout('headerless', 'libdnnl.so.2', null);
    expect(onednnFor(headerless.t, [headerless.include], [systemLibs])).toBeNull();
    const trixie = layout('trixie', 'libdnnl.so.3', 3);
    expect(onednnFor(trixie.t, [trixie.include], [systemLibs])).toBeNull();
    const mismatch = layout('mismatch', 'libdnnl.so.3', 2);
    expect(onednnFor(mismatch.t, [mismatch.include], [systemLibs])).toBeNull();
  });
});
