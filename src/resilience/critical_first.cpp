#include "resilience/critical_first.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace continuum::resilience {

namespace asio = boost::asio;

struct CriticalFirst::Waiter {
  explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  bool admitted = false;
};

CriticalFirst::CriticalFirst(asio::any_io_executor ex, int lower_limit, int threshold)
    : ex_(std::move(ex)), limit_(std::max(0, lower_limit)), threshold_(std::max(1, threshold)) {}

CriticalFirst::~CriticalFirst() {
  for (auto& q : waiters_)
    for (auto& w : q) w->timer.cancel();
}

void CriticalFirst::CriticalBegin() { ++critical_; }

void CriticalFirst::CriticalEnd() {
  if (critical_ > 0) --critical_;
  if (critical_ < threshold_)  // below the threshold: everything waiting may go
    for (int t = 0; t < static_cast<int>(waiters_.size()); ++t) Wake(t);
}

// Admits tier t's waiters, oldest first, while the rule allows. The admitted request's
// slot is taken here, so nothing can overtake it before its coroutine resumes.
void CriticalFirst::Wake(int t) {
  auto& q = waiters_[t];
  while (!q.empty() && MayStart(t)) {
    auto w = std::move(q.front());
    q.pop_front();
    w->admitted = true;
    ++active_[t];
    w->timer.cancel();
  }
}

asio::awaitable<bool> CriticalFirst::Enter(Tier tier, Deadline deadline) {
  const int t = Index(tier);
  // Arrival order within the tier: a newcomer does not pass requests already waiting.
  if (waiters_[t].empty() && MayStart(t)) {
    ++active_[t];
    co_return true;
  }
  auto& st = stats_[t];
  st.waited.fetch_add(1, std::memory_order_relaxed);
  st.waiting.fetch_add(1, std::memory_order_relaxed);
  const auto began = std::chrono::steady_clock::now();
  auto w = std::make_shared<Waiter>(ex_);
  w->timer.expires_at(deadline.is_never() ? asio::steady_timer::time_point::max() : deadline.at());
  waiters_[t].push_back(w);
  co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  st.waiting.fetch_sub(1, std::memory_order_relaxed);
  st.wait_us.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - began)
                                                 .count()),
                       std::memory_order_relaxed);
  if (!w->admitted) {
    std::erase(waiters_[t], w);
    st.timed_out.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }
  co_return true;
}

void CriticalFirst::Leave(Tier tier) {
  const int t = Index(tier);
  if (active_[t] > 0) --active_[t];
  Wake(t);
}

}  // namespace continuum::resilience
