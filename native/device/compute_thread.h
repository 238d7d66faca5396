#pragma once
// A thread that runs CPU inference (native/infer/) for one JS realm (the binding keeps one per environment: the
// main thread, each worker_thread). libgomp gives every thread that starts a parallel region its own team, and once
// the teams' threads outnumber the cores its threads sleep at the end of every region instead of spinning
// (device/runtime.h, CpuTrainingScope). Forwards run from whichever libuv thread each call lands on grow a team per
// pool thread: each of a ResNet-20's 25 primitives then waits for a thread to wake (1.3 ms per image on 2 cores,
// 0.53 ms with one team). Here a realm's forwards start their regions from one thread, and while an inference model
// lives the pool threads end their teams after their work (CpuInferenceScope).
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace rt {

class ComputeThread {
 public:
  ComputeThread();
  ~ComputeThread();  // finishes the queued jobs, then joins
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;
  // Runs `job` on this thread and waits for it; rethrows what it throws. Jobs run one at a time, in order.
  void run(const std::function<void()>& job);

 private:
  struct Job {
    const std::function<void()>* work = nullptr;
    bool done = false;
    std::exception_ptr error;
  };
  void loop();
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::deque<Job*> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

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
