// A bounded queue of CPU-heavy jobs (Argon2id password hashing) on threads of their own,
// below the request threads' scheduling priority and within a CPU budget. Part of the
// login bulkhead (src/auth/README.md): a login flood may use at most these threads, only
// the share of the node's CPU the budget allows, and only while the request threads do
// not want the CPU; beyond `max_jobs` queued or running jobs, TryPost refuses at once and
// the caller answers "busy" instead of queueing without bound.
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
  struct Options {
    int threads = 1;   // >= 1 workers
    int max_jobs = 4;  // >= 1 jobs queued or running
    // SCHED_IDLE workers: they run only on a core no normal thread wants, and a request
    // thread that wakes takes the core back at once. Otherwise `nice` (0..19, Linux
    // per-thread niceness; 0 = the process's own priority).
    bool idle = true;
    int nice = 10;
    // The CPU budget: at most this many CPU-seconds of jobs per second of wall time (the
    // workers' own CPU clocks measure what each job used), saved up to `burst_s` seconds'
    // worth while idle. 0: no budget.
    double cpu_per_s = 0;
    double burst_s = 10;
  };

  explicit CpuQueue(Options o);
  ~CpuQueue();  // Stop()
  CpuQueue(const CpuQueue&) = delete;
  CpuQueue& operator=(const CpuQueue&) = delete;

  // Queues `job` unless the queue is full or stopped; false then (the job is dropped).
  bool TryPost(std::function<void()> job);
  // Runs what is queued (without waiting for budget), then joins the workers. Later
  // TryPost calls return false.
  void Stop();

  int jobs() const { return jobs_.load(); }  // queued or running now
  // TryPost would refuse now: callers check it before the work that leads up to a job.
  bool full() const { return jobs_.load() >= opt_.max_jobs; }
  uint64_t refused() const { return refused_.load(); }
  // CPU-seconds the jobs have used, and wall time a queued job waited for budget.
  double cpu_used_s() const { return cpu_used_us_.load() / 1e6; }
  double budget_wait_s() const { return budget_wait_us_.load() / 1e6; }
  // A moving average of how long one job takes (0 before the first); callers use it to
  // skip work whose deadline would pass before it finishes.
  std::chrono::microseconds typical_job() const {
    return std::chrono::microseconds(typical_us_.load());
  }

  // The number of CPUs this process may run on (its affinity mask), at least 1.
  static int UsableCpus();

 private:
  void Work();
  // With mu_ held: adds what accrued since the last refill, up to the burst.
  void Refill(std::chrono::steady_clock::time_point now);

  const Options opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  double budget_s_;  // CPU-seconds available now; may go below 0 after a long job
  std::chrono::steady_clock::time_point refilled_;
  std::atomic<int> jobs_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<int64_t> typical_us_{0};
  std::atomic<int64_t> cpu_used_us_{0};
  std::atomic<int64_t> budget_wait_us_{0};
  std::vector<std::thread> threads_;
};

}  // namespace continuum::auth
