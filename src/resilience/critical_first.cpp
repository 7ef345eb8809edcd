#include "resilience/critical_first.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace continuum::resilience {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct CriticalFirst::Waiter {
  explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  bool admitted = false;  // its turn came (not overdue)
};

CriticalFirst::CriticalFirst(asio::any_io_executor ex, CriticalFirstOptions options)
    : ex_(std::move(ex)), opt_(options) {
  opt_.lower_limit = std::max(0, opt_.lower_limit);
  opt_.threshold = std::max(1, opt_.threshold);
  opt_.lag_limit = std::max(std::chrono::microseconds(0), opt_.lag_limit);
  opt_.probe_period = std::max(std::chrono::microseconds(100), opt_.probe_period);
}

CriticalFirst::~CriticalFirst() {
  alive_.reset();  // a probe handler still queued must not touch this
  Close();
}

void CriticalFirst::Close() {
  closed_ = true;
  for (int t = 0; t < static_cast<int>(waiters_.size()); ++t) {
    for (auto& w : waiters_[t]) {
      w->admitted = true;
      ++active_[t];
      w->timer.cancel();
    }
    waiters_[t].clear();
  }
  if (probe_) probe_->cancel();
  probe_.reset();
  Publish();
}

void CriticalFirst::CriticalBegin() {
  ++critical_;
  if (critical_ >= opt_.threshold) Probe();
  Publish();
}

void CriticalFirst::CriticalEnd(bool served) {
  if (critical_ > 0) --critical_;
  if (served) ++served_;
  if (critical_ < opt_.threshold) WakeAll();  // below the threshold: everything may go
  Publish();
}

// Measures, every probe period while the critical tier is at its threshold, how late the
// event loop runs a due timer: the CPU work queued on this shard ahead of it.
void CriticalFirst::Probe() {
  if (probe_ || closed_ || opt_.lower_limit <= 0 || opt_.lag_limit.count() == 0) return;
  served_ = 0;  // only what is served while measuring counts
  probe_ = std::make_shared<asio::steady_timer>(ex_);
  Arm(probe_);
}

void CriticalFirst::Arm(const std::shared_ptr<asio::steady_timer>& t) {
  t->expires_after(opt_.probe_period);
  t->async_wait([this, t, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || probe_ != t) return;  // closed, or the gate is gone
    OnProbe(Clock::now() - t->expiry());
  });
}

void CriticalFirst::OnProbe(Clock::duration lag) {
  probes_.fetch_add(1, std::memory_order_relaxed);
  if (Engaged()) engaged_probes_.fetch_add(1, std::memory_order_relaxed);
  // Saturated: the loop runs late while the critical tier is moving (it served a request
  // since the last probe), so more CPU for it means more records served. A critical tier
  // stuck on its database serves nothing: yielding to it would gain nothing.
  const bool moving = served_ > 0;
  served_ = 0;
  if (lag >= opt_.lag_limit && moving) {
    late_probes_.fetch_add(1, std::memory_order_relaxed);
    saturated_ = true;
    calm_ = 0;
  } else if (lag < opt_.lag_limit / 2 || !moving) {
    // Hysteresis: a saturated loop is on time now and then by chance; only a run of
    // calm probes in a row says it caught up (or that critical work stopped moving).
    calm_ = std::min(calm_ + 1, kReleaseAfter);
    if (calm_ >= kReleaseAfter) saturated_ = false;
  } else {
    calm_ = 0;  // late, but under the limit: neither engages nor counts toward release
  }
  if (critical_ >= opt_.threshold) {
    Arm(probe_);
  } else {
    probe_.reset();
    saturated_ = false;
    calm_ = 0;
  }
  if (!Engaged()) WakeAll();
  Publish();
}

void CriticalFirst::WakeAll() {
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

asio::awaitable<void> CriticalFirst::Enter(Tier tier, Deadline deadline) {
  const int t = Index(tier);
  // Arrival order within the tier: a newcomer does not pass requests already waiting.
  if (waiters_[t].empty() && MayStart(t)) {
    ++active_[t];
    co_return;
  }
  auto& st = stats_[t];
  st.waited.fetch_add(1, std::memory_order_relaxed);
  st.waiting.fetch_add(1, std::memory_order_relaxed);
  const auto began = Clock::now();
  auto w = std::make_shared<Waiter>(ex_);
  // At most half of its time to the deadline: the rest is for its own work.
  w->timer.expires_at(deadline.is_never()      ? Clock::time_point::max()
                      : deadline.at() <= began ? began
                                               : began + (deadline.at() - began) / 2);
  waiters_[t].push_back(w);
  co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  st.waiting.fetch_sub(1, std::memory_order_relaxed);
  st.wait_us.fetch_add(
      static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - began).count()),
      std::memory_order_relaxed);
  if (!w->admitted) {  // overdue: it goes ahead of its turn
    std::erase(waiters_[t], w);
    ++active_[t];
    st.overdue.fetch_add(1, std::memory_order_relaxed);
  }
}

void CriticalFirst::Leave(Tier tier) {
  const int t = Index(tier);
  if (active_[t] > 0) --active_[t];
  Wake(t);
}

}  // namespace continuum::resilience
