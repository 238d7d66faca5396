#pragma once
// JS values <-> plain C++ values. The facade has validated everything; these checks only keep a
// wrong call from crashing the process.
#include <napi.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "binding/args.h"
#include "models/graph.h"
#include "models/model.h"
#include "models/spec.h"

namespace rt::js {

std::vector<int64_t> shape_from_js(const Napi::Value& value, const char* what);
Napi::Array shape_to_js(Napi::Env env, c10::IntArrayRef shape);
std::vector<std::string> strings_from_js(const Napi::Value& value, const char* what);

// A tensor viewing the memory of a typed array (no copy). The caller keeps the array alive.
torch::Tensor view_of(const Napi::Value& array, const std::vector<int64_t>& shape, const char* what);
// A typed array over the tensor's own memory (no copy); the tensor lives until the array is collected.
Napi::Value typed_array_of(Napi::Env env, torch::Tensor tensor);
std::string dtype_name(torch::ScalarType type);
Napi::Array named_tensors_to_js(Napi::Env env, const std::vector<NamedTensor>& tensors);
// Copies [{ name, shape, data }] into tensors; `keep` collects the arrays read.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors_from_js(const Napi::Value& value,
                                                                         std::vector<Napi::Value>& keep);
// { data, shape } for a result tensor.
Napi::Object tensor_to_js(Napi::Env env, const torch::Tensor& tensor);

NetSpec spec_from_js(const Fields& js);
Napi::Object graph_to_js(Napi::Env env, const GraphBuilder& graph);

}  // namespace rt::js
