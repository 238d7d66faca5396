#include "device/compute_thread.h"

#include <atomic>

#include "device/runtime.h"

namespace rt {

ComputeThread::ComputeThread() : thread_([this] { loop(); }) {}

ComputeThread::~ComputeThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();  // the last owner was a job's: the loop ends on its own
  else
    thread_.join();
}

void ComputeThread::run(const std::function<void()>& job) {
  Job j;
  j.work = &job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(&j);
  }
  wake_.notify_one();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return j.done; });
  }
  if (j.error) std::rethrow_exception(j.error);
}

void ComputeThread::loop() {
  for (;;) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
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

namespace {
std::atomic<int> inferences{0};
}  // namespace

CpuInferenceScope::CpuInferenceScope() { inferences.fetch_add(1); }
CpuInferenceScope::~CpuInferenceScope() { inferences.fetch_sub(1); }
bool cpu_inference_alive() { return inferences.load() > 0; }

}  // namespace rt
