#pragma once
// A network described as a list of ONNX-style operators with shapes. Each module emits its own nodes, so
// one walk gives both the layer summary (shapes, parameters, multiply-adds) and the ONNX export, and both
// follow the forward pass they sit beside.
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rt {

using Shape = std::vector<int64_t>;

struct GraphNode {
  std::string op;    // ONNX operator type: Conv, BatchNormalization, Relu, Add, ...
  std::string name;  // module path, e.g. "layer1.0.conv1"
  std::vector<std::string> inputs;
  std::string output;
  Shape output_shape;  // with batch 1
  std::map<std::string, std::vector<int64_t>> int_attrs;
  std::map<std::string, double> float_attrs;
  int64_t params = 0;  // trainable values this node owns
  int64_t macs = 0;    // multiply-adds for one image
};

class GraphBuilder {
 public:
  explicit GraphBuilder(Shape input_shape);

  const std::string& input() const { return input_name_; }
  const Shape& shape(const std::string& value) const;

  // Adds a node and returns the name of its output value.
  std::string add(GraphNode node);
  // A constant tensor input (shapes for Pad/Slice, the shortcut scale).
  std::string constant(const std::string& name, torch::Tensor value);
  // A named parameter or buffer of the model, passed as a node input.
  std::string weight(const std::string& name, const torch::Tensor& value);

  const std::vector<GraphNode>& nodes() const { return nodes_; }
  const std::vector<std::pair<std::string, torch::Tensor>>& constants() const { return constants_; }
  const std::vector<std::pair<std::string, torch::Tensor>>& weights() const { return weights_; }
  std::string output() const { return nodes_.empty() ? input_name_ : nodes_.back().output; }

 private:
  std::string input_name_ = "input";
  std::map<std::string, Shape> shapes_;
  std::vector<GraphNode> nodes_;
  std::vector<std::pair<std::string, torch::Tensor>> constants_;
  std::vector<std::pair<std::string, torch::Tensor>> weights_;
};

}  // namespace rt
