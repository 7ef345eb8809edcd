// A bounded queue of CPU-heavy jobs (Argon2id password hashing) on threads of their own,
// at a lower scheduling priority than the request threads. Part of the login bulkhead
// (src/auth/README.md): a login flood may use at most these threads, and only while the
// machine has CPU to spare; beyond `max_jobs` queued or running jobs, TryPost refuses at
// once and the caller answers "busy" instead of queueing without bound.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace continuum::auth {

class CpuQueue {
 public:
  // `threads` >= 1 workers, at most `max_jobs` >= 1 jobs queued or running, workers at
  // `nice` (0..19, Linux per-thread niceness; 0 = the process's own priority).
  CpuQueue(int threads, int max_jobs, int nice);
  ~CpuQueue();  // Stop()
  CpuQueue(const CpuQueue&) = delete;
  CpuQueue& operator=(const CpuQueue&) = delete;

  // Queues `job` unless the queue is full or stopped; false then (the job is dropped).
  bool TryPost(std::function<void()> job);
  // Runs what is queued, then joins the workers. Later TryPost calls return false.
  void Stop();

  int jobs() const { return jobs_.load(); }  // queued or running now
  uint64_t refused() const { return refused_.load(); }
  // A moving average of how long one job takes (0 before the first); callers use it to
  // skip work whose deadline would pass before it finishes.
  std::chrono::microseconds typical_job() const {
    return std::chrono::microseconds(typical_us_.load());
  }

 private:
  void Work(int nice);

  const int max_jobs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::atomic<int> jobs_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<int64_t> typical_us_{0};
  std::vector<std::thread> threads_;
};

}  // namespace continuum::auth
