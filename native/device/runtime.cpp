#include "device/runtime.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/Device.h>
#include <torch/version.h>

#include "common/error.h"
#include "common/torch_compat.h"
#include "device/compute_thread.h"

#ifdef RESNET_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#endif

namespace rt {

std::string onednn_isa_name(unsigned isa) {
  const auto has = [&](unsigned bits) { return (isa & bits) == bits; };
  if (has(0x3e7) || has(0xfef)) return "AVX-512 with AMX";
  if (has(0x1ef)) return "AVX-512 FP16 (AVX10.1)";
  if (has(0xe7)) return "AVX-512 BF16";
  if (has(0x67)) return "AVX-512 VNNI";
  if (has(0x27)) return "AVX-512";
  if (has(0x407)) return "AVX2 VNNI";
  if (has(0x7)) return "AVX2";
  if (has(0x3)) return "AVX";
  if (has(0x1)) return "SSE4.1";
  return "unknown (" + std::to_string(isa) + ")";
}

namespace {

// The shared library a libtorch function was loaded from: the version that runs, whatever the headers said.
std::string torch_library() {
  Dl_info where{};
  const auto* symbol = reinterpret_cast<const void*>(&at::globalContext);
  return dladdr(symbol, &where) != 0 && where.dli_fname != nullptr ? where.dli_fname : "";
}

// libtorch's oneDNN, asked through its C API in libtorch_cpu and the libraries it links (not the process: the oneDNN
// training path may link a oneDNN of its own, find-libtorch.js). Debian's libtorch links the shared oneDNN and
// exposes it; pip's carries oneDNN inside with its symbols hidden: then the version comes from libtorch's own
// report and the ISA stays unknown.
void* torch_symbol(const char* name) {
  const std::string library = torch_library();
  void* handle = library.empty() ? nullptr : dlopen(library.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return nullptr;
  void* symbol = dlsym(handle, name);
  dlclose(handle);
  return symbol;
}

struct DnnlVersion {
  int major, minor, patch;
  const char* hash;
  unsigned cpu_runtime, gpu_runtime;
};

std::string onednn_version() {
  using Fn = const DnnlVersion* (*)();
  if (auto fn = reinterpret_cast<Fn>(torch_symbol("dnnl_version")); fn && fn()) {
    const DnnlVersion* v = fn();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  }
  // "Intel(R) MKL-DNN v3.13.3 (Git Hash ...)"
  const std::string text = at::get_mkldnn_version();
  const auto at = text.find(" v");
  if (at == std::string::npos) return "";
  const auto end = text.find_first_not_of("0123456789.", at + 2);
  return text.substr(at + 2, end == std::string::npos ? std::string::npos : end - at - 2);
}

// dnnl_get_effective_cpu_isa(): ONEDNN_MAX_CPU_ISA and the CPU decide it. The values are those of oneDNN 2.x and
// 3.x's dnnl_cpu_isa_t (bit sets: each ISA includes the ones below it).
std::string onednn_isa() {
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(torch_symbol("dnnl_get_effective_cpu_isa"));
  if (!fn) return "";
  return onednn_isa_name(static_cast<unsigned>(fn()));
}

std::string& onednn_off_reason() {
  static std::string reason;
  return reason;
}

}  // namespace

bool onednn_enabled() { return at::globalContext().hasMKLDNN() && at::globalContext().userEnabledMkldnn(); }

std::string cpu_bfloat16_refusal() {
  if (!onednn_enabled()) return "";
  using Fn = int (*)();
  auto effective_isa = reinterpret_cast<Fn>(torch_symbol("dnnl_get_effective_cpu_isa"));
  if (!effective_isa || onednn_version().rfind("2.", 0) != 0) return "";
  const unsigned isa = static_cast<unsigned>(effective_isa());
  constexpr unsigned kAvx512Core = 0x27;  // dnnl_cpu_isa_avx512_core
  if ((isa & kAvx512Core) == kAvx512Core) return "";
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
    return "";
  const char* limit = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!limit) limit = std::getenv("DNNL_MAX_CPU_ISA");
  return "precision: bfloat16 on the CPU needs oneDNN's AVX-512 kernels here (libtorch " + std::string(TORCH_VERSION) +
         " sends bfloat16 convolutions to oneDNN " + onednn_version() + " on a CPU with AVX-512), but " +
         (limit ? std::string("ONEDNN_MAX_CPU_ISA=") + limit : std::string("the oneDNN ISA limit")) +
         " holds oneDNN to " + onednn_isa_name(isa) +
         ", which has no bfloat16 convolutions (PyTorch fails the same way): unset it or train in float32";
}

void decide_onednn(const char* forced) {
  std::string why;
  if (forced && std::string(forced) == "0") {
    why = "RESNET_TORCH_ONEDNN=0";
  } else if (!(forced && std::string(forced) == "1") && RT_ONEDNN_NEEDS_CACHE_SIZES &&
             !std::filesystem::exists("/sys/devices/system/cpu/cpu0/cache/index0/size")) {
    why = "this CPU reports no cache sizes (no /sys/devices/system/cpu/cpu0/cache, as in some VMs), and libtorch " +
          std::to_string(TORCH_VERSION_MAJOR) + ".x's oneDNN divides by them (SIGFPE): libtorch's own convolutions run";
  }
  if (why.empty()) return;
  at::globalContext().setUserEnabledMkldnn(false);
  onednn_off_reason() = why;
}

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.torch_library = torch_library();
#ifdef RESNET_WITH_CUDA
  info.cuda_compiled = CUDART_VERSION;
  if (cudaRuntimeGetVersion(&info.cuda_runtime) != cudaSuccess) info.cuda_runtime = 0;
  if (cudaDriverGetVersion(&info.cuda_driver) != cudaSuccess) info.cuda_driver = 0;
#endif
  info.cuda_available = at::globalContext().hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0;
  if (info.cuda_available) {
    const int count = at::detail::getCUDAHooks().getNumGPUs();
    for (int i = 0; i < count; ++i) {
      CudaDevice d;
      d.index = i;
#ifdef RESNET_WITH_CUDA
      const auto* prop = at::cuda::getDeviceProperties(i);
      d.name = prop->name;
      d.major = prop->major;
      d.minor = prop->minor;
      d.total_memory = static_cast<int64_t>(prop->totalGlobalMem);
#endif
      info.cuda_devices.push_back(d);
    }
  }
  if (at::globalContext().hasCuDNN()) info.cudnn_version = at::detail::getCUDAHooks().versionCuDNN();
  info.intra_op_threads = at::get_num_threads();
  info.inter_op_threads = at::get_num_interop_threads();
  info.cxx11_abi = _GLIBCXX_USE_CXX11_ABI != 0;
  info.mkldnn = onednn_enabled();
  info.onednn_off_reason = onednn_off_reason();
  info.onednn_version = onednn_version();
  info.onednn_isa = onednn_isa();
#ifdef RESNET_WITH_CUDA
  info.built_with_cuda = true;
#endif
  return info;
}

namespace {
std::atomic<int> threads_generation{0};
}

void set_intra_op_threads(int n) {
  if (n < 1) throw invalid("threads must be at least 1");
  at::set_num_threads(n);
  threads_generation.fetch_add(1);
}

void adopt_intra_op_threads() {
  thread_local int applied = -1;
  const int current = threads_generation.load();
  if (applied == current) return;
  at::init_num_threads();
  applied = current;
}

namespace {
std::atomic<int> cpu_trainings{0}, held_teams{0};
thread_local bool holds_team = false;
}  // namespace

CpuTrainingScope::CpuTrainingScope() { cpu_trainings.fetch_add(1); }
CpuTrainingScope::~CpuTrainingScope() { cpu_trainings.fetch_sub(1); }

void release_thread_team() {
  // Looked up, not linked: the OpenMP runtime is libtorch's (Debian's libgomp, pip's bundled copy); 5.0 has it.
  using Pause = int (*)(int);
  static const Pause pause = reinterpret_cast<Pause>(dlsym(RTLD_DEFAULT, "omp_pause_resource_all"));
  if (pause) pause(1);  // omp_pause_soft: the calling thread's team ends
  if (holds_team) held_teams.fetch_sub(1);
  holds_team = false;
}

void release_team_if_training() {
  if (cpu_trainings.load() > 0 || cpu_inference_alive()) {
    release_thread_team();
  } else if (!holds_team) {
    holds_team = true;
    held_teams.fetch_add(1);
  }
}

int teams_held() { return held_teams.load(); }

namespace {
// Looked up, not linked, as omp_pause_resource_all above.
template <typename F>
F omp_function(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

CallingThreadThreads::CallingThreadThreads(int n) {
  static const auto get = omp_function<int (*)()>("omp_get_max_threads");
  static const auto set = omp_function<void (*)(int)>("omp_set_num_threads");
  if (n < 1 || !get || !set) return;
  previous_ = get();
  if (previous_ != n) set(n);
}

CallingThreadThreads::~CallingThreadThreads() {
  static const auto set = omp_function<void (*)(int)>("omp_set_num_threads");
  if (previous_ > 0 && set) set(previous_);
}

int intra_op_threads() { return at::get_num_threads(); }

std::string check_device(const std::string& device) {
  c10::Device d(c10::kCPU);
  try {
    d = c10::Device(device);
  } catch (const std::exception&) {
    throw Error("ERR_DEVICE", "unknown device \"" + device + "\": expected \"cpu\", \"cuda\" or \"cuda:N\"");
  }
  if (d.is_cpu()) return "cpu";
  if (!d.is_cuda()) throw Error("ERR_DEVICE", "unsupported device \"" + device + "\": expected cpu or cuda");
  const int count = at::globalContext().hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
#ifdef RESNET_WITH_CUDA
  if (count == 0)
    throw Error("ERR_DEVICE", "device \"" + device +
                                  "\" asked for, but CUDA is not available: this build has CUDA, and the driver "
                                  "reports no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
#else
  if (count == 0)
    throw Error("ERR_DEVICE", "device \"" + device +
                                  "\" asked for, but CUDA is not available in this build of libtorch ("
                                  "build against a CUDA PyTorch or LIBTORCH to use it)");
#endif
  const int index = d.has_index() ? d.index() : 0;
  if (index >= count)
    throw Error("ERR_DEVICE",
                "device \"" + device + "\" asked for, but only " + std::to_string(count) + " CUDA device(s) exist");
  return "cuda:" + std::to_string(index);
}

}  // namespace rt
