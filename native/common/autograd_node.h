#pragma once
// A custom autograd node, owned as the libtorch owns its own nodes: by c10::intrusive_ptr where a tensor's grad_fn()
// is one (newer libtorch), else by a shared_ptr, released through torch::autograd::deleteNode where it exists (it
// frees long chains of nodes without deep recursion).
#include <torch/csrc/autograd/function.h>

#include <memory>
#include <type_traits>
#include <utility>

namespace rt {

namespace detail {
template <typename N, typename = void>
struct HasDeleteNode : std::false_type {};
// Found by argument-dependent lookup in torch::autograd, only where it is declared.
template <typename N>
struct HasDeleteNode<N, std::void_t<decltype(deleteNode(std::declval<N*>()))>> : std::true_type {};
}  // namespace detail

using GradFnPtr = std::decay_t<decltype(std::declval<const at::Tensor&>().grad_fn())>;

template <typename T, typename... Args>
auto make_autograd_node(Args&&... args) {
  if constexpr (!std::is_same_v<GradFnPtr, std::shared_ptr<torch::autograd::Node>>) {
    return c10::make_intrusive<T>(std::forward<Args>(args)...);
  } else if constexpr (detail::HasDeleteNode<torch::autograd::Node>::value) {
    return std::shared_ptr<T>(new T(std::forward<Args>(args)...), [](auto* node) { deleteNode(node); });
  } else {
    return std::make_shared<T>(std::forward<Args>(args)...);
  }
}

}  // namespace rt
