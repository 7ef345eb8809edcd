#include "auth/cpu_queue.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>

namespace continuum::auth {
namespace {

int64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace

int CpuQueue::UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

CpuQueue::CpuQueue(Options o)
    : opt_(o), budget_s_(o.cpu_per_s * o.burst_s), refilled_(std::chrono::steady_clock::now()) {
  if (opt_.threads < 1 || opt_.max_jobs < 1)
    throw std::invalid_argument("CpuQueue needs threads and jobs");
  if (opt_.cpu_per_s < 0 || opt_.burst_s < 0)
    throw std::invalid_argument("CpuQueue budget must not be negative");
  for (int i = 0; i < opt_.threads; ++i) threads_.emplace_back([this] { Work(); });
}

CpuQueue::~CpuQueue() { Stop(); }

bool CpuQueue::TryPost(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.load() >= opt_.max_jobs) {
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

void CpuQueue::Refill(std::chrono::steady_clock::time_point now) {
  const double dt = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  budget_s_ = std::min(opt_.cpu_per_s * opt_.burst_s, budget_s_ + dt * opt_.cpu_per_s);
}

void CpuQueue::Work() {
  pthread_setname_np(pthread_self(), "continuum-cpu");
  // Linux: the scheduling policy and niceness are per thread (a task); 0 means this one.
  if (opt_.idle) {
    sched_param p{};
    p.sched_priority = 0;
    sched_setscheduler(0, SCHED_IDLE, &p);
  } else if (opt_.nice > 0) {
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), std::min(opt_.nice, 19));
  }
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      if (opt_.cpu_per_s > 0 && !stopping_) {
        // Spent: wait until the budget is back to zero (a job may take it below).
        auto t0 = std::chrono::steady_clock::now();
        Refill(t0);
        while (budget_s_ < 0 && !stopping_) {
          cv_.wait_for(lock, std::chrono::duration<double>(-budget_s_ / opt_.cpu_per_s));
          Refill(std::chrono::steady_clock::now());
        }
        budget_wait_us_.fetch_add(std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count());
        if (queue_.empty()) continue;  // another worker took it
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    auto t0 = std::chrono::steady_clock::now();
    const int64_t cpu0 = ThreadCpuMicros();
    try {
      job();
    } catch (...) {
      // Jobs report their own errors; one that throws must not end the worker.
    }
    const int64_t cpu = ThreadCpuMicros() - cpu0;
    cpu_used_us_.fetch_add(cpu);
    if (opt_.cpu_per_s > 0) {
      std::lock_guard lock(mu_);
      Refill(std::chrono::steady_clock::now());
      budget_s_ -= cpu / 1e6;
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
