#pragma once
// What differs between the libtorch versions this builds against (Debian's 1.13 and 2.6, pip's 2.15),
// named once: the code asks for a feature, not a version. scripts/check-libtorch.sh compiles against each.
#include <torch/version.h>

#define RT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::autocast takes a device type (2.4); before, CUDA had calls of its own (set_autocast_gpu_dtype, set_enabled).
#define RT_AUTOCAST_BY_DEVICE RT_TORCH_AT_LEAST(2, 4)

// The oneDNN 3.x of libtorch 2.x sizes convolution blocks from the CPU's cache sizes and divides by them: a CPU that
// reports none (some VMs) dies of SIGFPE in forward and backward convolutions, in PyTorch itself as much as here
// (PyTorch 2.6 did). 2.15 does not: PyTorch 2.15 and this addon on it train on emulated CPUs that report no cache
// (qemu-user, test/integration/devices.test.ts). Where between 2.6 and 2.15 that changed is not known, so 2.0 to
// 2.14 keep the fallback; libtorch 1.x's oneDNN 2.x never needed the sizes.
#define RT_ONEDNN_NEEDS_CACHE_SIZES (RT_TORCH_AT_LEAST(2, 0) && !RT_TORCH_AT_LEAST(2, 15))

// c10::Allocator::allocate lost its const, and copy_data became required (2.3).
#if RT_TORCH_AT_LEAST(2, 3)
#define RT_ALLOCATE_CONST
#define RT_ALLOCATOR_COPY_DATA 1
#else
#define RT_ALLOCATE_CONST const
#define RT_ALLOCATOR_COPY_DATA 0
#endif
