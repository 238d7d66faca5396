#pragma once
// Debian's libtorch-dev ships c10d's headers but not distributed autograd's, and c10d's reducer.hpp includes this
// one for two type names. They are declared here as libtorch 1.13 defines them, so that reducer.hpp compiles; the
// Reducer itself is compiled in libtorch_cpu.so. Searched after libtorch's own headers (-idirafter), so a
// libtorch that ships the real file uses it.
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch::distributed::autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace torch::distributed::autograd
