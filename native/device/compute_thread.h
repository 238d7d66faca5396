#pragma once
// One thread for the CPU inference programs (native/infer/onednn_program.h). libgomp gives every thread that starts
// a parallel region its own team, and once the teams' threads outnumber the cores its threads sleep at the end of
// every region instead of spinning (device/runtime.h, CpuTrainingScope). A program run from whichever libuv thread
// its call lands on grows a team per pool thread: each of a ResNet-20's 25 primitives then waits for a thread to
// wake (1.3 ms per image on 2 cores, 0.53 ms with one team). Here every run starts its regions from the same
// thread, and while a program lives the pool threads end their teams after their work (CpuInferenceScope).
#include <functional>

namespace rt {

// Runs `job` on the compute thread and waits for it; rethrows what it throws. Jobs run one at a time, in order.
void run_on_compute_thread(const std::function<void()>& job);

// While one lives, libuv's threads end their OpenMP team after their libtorch work (as during a CPU training).
class CpuInferenceScope {
 public:
  CpuInferenceScope();
  ~CpuInferenceScope();
  CpuInferenceScope(const CpuInferenceScope&) = delete;
  CpuInferenceScope& operator=(const CpuInferenceScope&) = delete;
};
bool cpu_inference_alive();

}  // namespace rt
