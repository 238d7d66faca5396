// Precompiled by CMake for every translation unit: libtorch's headers cost ~20 s per file otherwise.
// Sources still include what they use, so the node-gyp build (no PCH) compiles the same files.
#pragma once
#include <torch/torch.h>
