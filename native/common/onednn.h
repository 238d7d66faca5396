#pragma once
// oneDNN 2.x's C++ API where this build has its headers (RT_ONEDNN2: the training path, models/onednn_training.cpp,
// and the inference program, infer/onednn_program.cpp), and what both of them share: the CPU engine, buffers as
// libtorch tensors, and telling oneDNN's reference kernels (10-100x slower than its JIT ones) from the rest.
#if defined(RESNET_WITH_ONEDNN) && __has_include(<oneapi/dnnl/dnnl.hpp>)
#include <oneapi/dnnl/dnnl.hpp>
#define RT_ONEDNN2 (DNNL_VERSION_MAJOR == 2)
#else
#define RT_ONEDNN2 0
#endif

#if RT_ONEDNN2
#include <torch/types.h>

#include <string>

namespace rt::onednn {

inline dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A buffer of at least n bytes.
inline torch::Tensor bytes(size_t n) { return torch::empty({static_cast<int64_t>((n + 3) / 4)}, torch::kFloat32); }

inline bool is_reference(const dnnl::primitive_desc_base& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

}  // namespace rt::onednn
#endif
