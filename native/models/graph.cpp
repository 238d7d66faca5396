#include "models/graph.h"

#include "common/error.h"

namespace rt {

GraphBuilder::GraphBuilder(Shape input_shape) { shapes_[input_name_] = std::move(input_shape); }

const Shape& GraphBuilder::shape(const std::string& value) const {
  auto it = shapes_.find(value);
  if (it == shapes_.end()) throw invalid("graph: unknown value " + value);
  return it->second;
}

std::string GraphBuilder::add(GraphNode node) {
  if (node.output.empty()) node.output = node.name + ".out";
  shapes_[node.output] = node.output_shape;
  nodes_.push_back(std::move(node));
  return nodes_.back().output;
}

std::string GraphBuilder::constant(const std::string& name, torch::Tensor value) {
  for (const auto& c : constants_)
    if (c.first == name) return name;
  constants_.emplace_back(name, std::move(value));
  return name;
}

std::string GraphBuilder::weight(const std::string& name, const torch::Tensor& value) {
  for (const auto& w : weights_)
    if (w.first == name) return name;
  weights_.emplace_back(name, value);
  return name;
}

}  // namespace rt
