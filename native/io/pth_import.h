#pragma once
// PyTorch state-dict files (`torch.save(model.state_dict())`, zip format) read with libtorch's own
// unpickler. The facade has already checked the zip (structure, sizes, every CRC) and the pickle (its
// opcodes, stack and globals), and hands over the pickle and the tensor records it names.
#include <c10/util/ArrayRef.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace rt {

struct PickleArchive {
  std::vector<char> pickle;
  // Tensor data by the key the pickle uses ("0" for archive/data/0); views on memory the caller keeps alive.
  std::map<std::string, c10::ArrayRef<char>> records;
};

// The tensors of a state dict (or of its "state_dict" / "model" entry), contiguous CPU tensors in file
// order. Throws ERR_CHECKPOINT when the pickle holds anything else.
std::vector<NamedTensor> import_pytorch_state(const PickleArchive& archive);

}  // namespace rt
