#include "io/pth_import.h"
#include <unordered_map>

#include <c10/core/CPUAllocator.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <cstring>
#include <unordered_map>

#include "common/error.h"

namespace rt {

namespace {

bool is_tensor_dict(const c10::IValue& v) {
  if (!v.isGenericDict()) return false;
  for (const auto& item : v.toGenericDict())
    if (!item.key().isString() || !item.value().isTensor()) return false;
  return true;
}

}  // namespace

std::vector<NamedTensor> import_pytorch_state(const PickleArchive& archive) {
  size_t offset = 0;
  auto reader = [&](char* buffer, size_t length) -> size_t {
    const size_t n = std::min(length, archive.pickle.size() - offset);
    std::memcpy(buffer, archive.pickle.data() + offset, n);
    offset += n;
    return n;
  };
  // libtorch sizes each storage from the pickle's element count, not from the record it reads: a record shorter
  // than the pickle says would be read past its end (found by fuzz/: a zeroed zip directory entry, SIGSEGV).
  std::unordered_map<const void*, size_t> record_bytes;
  auto read_record = [&](const std::string& key) -> at::DataPtr {
    auto it = archive.records.find(key);
    if (it == archive.records.end())
      throw Error("ERR_CHECKPOINT", "the pickle names tensor data \"" + key + "\", which the archive lacks");
    at::DataPtr data = c10::GetCPUAllocator()->allocate(it->second.size());
    if (!it->second.empty()) std::memcpy(data.get(), it->second.data(), it->second.size());
    record_bytes[data.get()] = it->second.size();
    return data;
  };
  c10::IValue root;
  try {
    torch::jit::Unpickler unpickler(reader, nullptr, nullptr, read_record, c10::Device(c10::kCPU));
    root = unpickler.parse_ivalue();
  } catch (const c10::Error& e) {
    throw Error("ERR_CHECKPOINT", std::string("libtorch cannot unpickle it: ") + e.what_without_backtrace());
  }
  c10::IValue dict = root;
  if (!is_tensor_dict(dict) && root.isGenericDict()) {
    for (const char* key : {"state_dict", "model", "model_state_dict"})
      for (const auto& item : root.toGenericDict())
        if (!is_tensor_dict(dict) && item.key().isString() && item.key().toStringRef() == key &&
            is_tensor_dict(item.value()))
          dict = item.value();
  }
  if (!is_tensor_dict(dict))
    throw Error("ERR_CHECKPOINT",
                "not a state dict: expected a dict of names to tensors (torch.save(model.state_dict())), found " +
                    std::string(root.tagKind()));
  std::vector<NamedTensor> out;
  for (const auto& item : dict.toGenericDict()) {
    torch::Tensor t = item.value().toTensor();
    // Storage sizes come from the file: a view past its storage would read out of bounds.
    const auto storage_bytes = t.storage().nbytes();
    const auto record = record_bytes.find(t.storage().data());
    const size_t held = (record == record_bytes.end() || t.storage().data() == nullptr) ? 0 : record->second;
    if (storage_bytes > held)
      throw Error("ERR_CHECKPOINT", "tensor " + item.key().toStringRef() + ": the pickle declares a storage of " +
                                        std::to_string(storage_bytes) + " bytes, its data record holds " +
                                        std::to_string(held));
    const int64_t needed = (t.numel() == 0) ? 0
                                            : (t.storage_offset() + 1 +
                                               [&] {
                                                 int64_t span = 0;
                                                 for (int64_t d = 0; d < t.dim(); ++d)
                                                   span += (t.size(d) - 1) * t.stride(d);
                                                 return span;
                                               }()) *
                                                  static_cast<int64_t>(t.element_size());
    if (needed > static_cast<int64_t>(storage_bytes))
      throw Error("ERR_CHECKPOINT", "tensor " + item.key().toStringRef() + " reaches past its storage (" +
                                        std::to_string(needed) + " bytes of " + std::to_string(storage_bytes) + ")");
    out.push_back({item.key().toStringRef(), t.detach().contiguous().clone(), false});
  }
  return out;
}

}  // namespace rt
