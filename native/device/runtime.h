#pragma once
// What this process's libtorch can do: versions, devices, threads. Plain C++; the binding converts it.
#include <cstdint>
#include <string>
#include <vector>

namespace rt {

struct CudaDevice {
  int index = 0;
  std::string name;          // empty where the build has no CUDA headers (node-gyp route)
  int major = 0, minor = 0;  // compute capability
  int64_t total_memory = 0;  // bytes
};

struct RuntimeInfo {
  std::string torch_version;  // the headers this addon was compiled against
  std::string torch_library;  // the libtorch file this process runs with (its name carries the version)
  int cuda_compiled = 0;      // CUDA runtime version of the build's headers (12040: 12.4), 0 without CUDA
  int cuda_runtime = 0;       // the CUDA runtime loaded now, 0 without CUDA
  int cuda_driver = 0;        // the CUDA version the installed driver supports, 0 without a driver
  bool cuda_available = false;
  std::vector<CudaDevice> cuda_devices;
  int64_t cudnn_version = 0;  // 0: none
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  bool cxx11_abi = false;
  bool mkldnn = false;            // oneDNN runs the CPU convolutions (built in and not turned off)
  std::string onednn_off_reason;  // why it was turned off, if it was
  std::string onednn_version;     // the oneDNN libtorch runs ("2.6.3"), empty where its symbols are not visible
  std::string onednn_isa;         // the instruction set oneDNN's kernels use here ("AVX2", "AVX-512 BF16", ...)
  bool built_with_cuda = false;   // this addon was compiled against a CUDA libtorch
};

RuntimeInfo runtime_info();

// A oneDNN dnnl_cpu_isa_t (2.x and 3.x share the bits) in words: "AVX2", "AVX-512 BF16", ...
std::string onednn_isa_name(unsigned isa);

// Whether the CPU convolutions go to oneDNN: it is built in and was not turned off (decide_onednn).
bool onednn_enabled();
// Once per process, before any convolution: turns oneDNN off where it would crash (RT_ONEDNN_NEEDS_CACHE_SIZES on
// a CPU that reports no cache sizes); `forced` "0" turns it off, "1" keeps it on whatever the CPU.
void decide_onednn(const char* forced);
// Why bfloat16 convolutions cannot run on this CPU, or "". libtorch 1.x sends them to oneDNN 2.x when the CPU has
// AVX-512 (BW, VL, DQ), but oneDNN 2.x has bfloat16 kernels only from AVX-512 up: ONEDNN_MAX_CPU_ISA=AVX2 on such a
// CPU makes every bfloat16 convolution fail ("could not create a primitive descriptor iterator"; PyTorch 1.13 too).
// A CPU without AVX-512 takes libtorch's own kernels, and oneDNN 3.x (libtorch 2.x) has AVX2 ones.
std::string cpu_bfloat16_refusal();

// Intra-op threads for every later op on every thread (workers call adopt_intra_op_threads() to pick it up).
void set_intra_op_threads(int n);
int intra_op_threads();
// Applies the count set last to the calling thread, only when it changed since this thread last applied it:
// calling libtorch's init_num_threads() before every call cost 9 ms per ResNet-20 forward here (2.9 ms without).
void adopt_intra_op_threads();
// OpenMP teams beside a CPU training's. libgomp counts the threads of every team in the process, idle ones included,
// and once they outnumber the cores its threads sleep at the end of every parallel region instead of spinning: each
// of a training step's hundreds of regions then waits for a sleeping thread to wake (15% of a CIFAR step on 2 cores).
// So while a CPU training runs, a worker thread ends its team when its libtorch work is done
// (release_team_if_training: libgomp's omp_pause_resource_all; a later parallel op starts new threads), and a
// training that starts asks the idle ones to end theirs (teams_held). Outside training, teams stay: a new team per
// call would cost an inference of a batch of one several milliseconds.
class CpuTrainingScope {
 public:
  CpuTrainingScope();
  ~CpuTrainingScope();
  CpuTrainingScope(const CpuTrainingScope&) = delete;
  CpuTrainingScope& operator=(const CpuTrainingScope&) = delete;
};
// After a worker thread's libtorch work: ends its team where a CPU training or a CPU inference program
// (device/compute_thread.h) lives, else notes that it holds one.
void release_team_if_training();
// Ends the calling thread's team, if it holds one.
void release_thread_team();
// How many worker threads hold an idle team.
int teams_held();

// The calling thread's OpenMP thread count (its own ICV: other threads keep theirs) set to `n` for a scope; n < 1
// leaves it. oneDNN sizes a primitive's work for the count at its creation and runs with it.
class CallingThreadThreads {
 public:
  explicit CallingThreadThreads(int n);
  ~CallingThreadThreads();
  CallingThreadThreads(const CallingThreadThreads&) = delete;
  CallingThreadThreads& operator=(const CallingThreadThreads&) = delete;

 private:
  int previous_ = 0;
};

// Parses "cpu", "cuda", "cuda:1"; refuses CUDA where it is not available (never a silent CPU fallback).
std::string check_device(const std::string& device);

}  // namespace rt
