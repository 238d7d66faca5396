#include "device/compute_thread.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "device/runtime.h"

namespace rt {

namespace {

class ComputeThread {
 public:
  ComputeThread() : thread_([this] { loop(); }) { thread_.detach(); }

  void run(const std::function<void()>& job) {
    Job j;
    j.work = &job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(&j);
    }
    wake_.notify_one();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return j.done; });
    if (j.error) std::rethrow_exception(j.error);
  }

 private:
  struct Job {
    const std::function<void()>* work = nullptr;
    bool done = false;
    std::exception_ptr error;
  };

  void loop() {
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      adopt_intra_op_threads();
      try {
        (*job->work)();
      } catch (...) {
        job->error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        job->done = true;
      }
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::deque<Job*> queue_;
  std::thread thread_;
};

std::atomic<int> inferences{0};

}  // namespace

void run_on_compute_thread(const std::function<void()>& job) {
  static ComputeThread* thread = new ComputeThread();  // lives as long as the process
  thread->run(job);
}

CpuInferenceScope::CpuInferenceScope() { inferences.fetch_add(1); }
CpuInferenceScope::~CpuInferenceScope() { inferences.fetch_sub(1); }
bool cpu_inference_alive() { return inferences.load() > 0; }

}  // namespace rt
