#include "auth/cpu_queue.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace continuum::auth {

CpuQueue::CpuQueue(int threads, int max_jobs, int nice) : max_jobs_(max_jobs) {
  if (threads < 1 || max_jobs < 1) throw std::invalid_argument("CpuQueue needs threads and jobs");
  nice = std::clamp(nice, 0, 19);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, nice] { Work(nice); });
}

CpuQueue::~CpuQueue() { Stop(); }

bool CpuQueue::TryPost(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.load() >= max_jobs_) {
      refused_.fetch_add(1);
      return false;
    }
    jobs_.fetch_add(1);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void CpuQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void CpuQueue::Work(int nice) {
  // Linux: niceness is per thread (a task); PRIO_PROCESS with a thread id sets it.
  if (nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    auto t0 = std::chrono::steady_clock::now();
    try {
      job();
    } catch (...) {
      // Jobs report their own errors; one that throws must not end the worker.
    }
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    int64_t prev = typical_us_.load();
    typical_us_.store(prev == 0 ? us : (prev * 7 + us) / 8);
    jobs_.fetch_sub(1);
  }
}

}  // namespace continuum::auth
