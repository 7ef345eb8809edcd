#include "deps/dependency.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace continuum::deps {
namespace asio = boost::asio;

namespace {

http::Endpoint ParseUrl(const std::string& url) {
  // smtp://host:port has the shape of an http:// URL without a path.
  if (url.starts_with("smtp://")) {
    auto ep = http::ParseBaseUrl("http://" + url.substr(7));
    if (ep.port == 80 && url.find(':', 7) == std::string::npos) ep.port = 25;
    return ep;
  }
  return http::ParseBaseUrl(url, /*allow_https=*/true);
}

}  // namespace

Dependency::Dependency(DependencyOptions o)
    : options_(std::move(o)), endpoint_(ParseUrl(options_.url)), breaker_(options_.breaker) {
  const bool smtp = options_.url.starts_with("smtp://");
  if (!smtp && !endpoint_.tls && !options_.allow_plaintext)
    throw std::invalid_argument("dependency " + options_.name + ": " + options_.url +
                                " is plain HTTP; use https:// or set allow_plaintext = true");
  if (endpoint_.tls || (smtp && !options_.allow_plaintext))
    tls_ = http::MakeClientTlsContext(options_.ca_file);
}

bool Dependency::TakeRetryToken() {
  int64_t cur = retry_tokens_x10_.load();
  while (cur >= 10)
    if (retry_tokens_x10_.compare_exchange_weak(cur, cur - 10)) return true;
  return false;
}

void Dependency::Note(bool ok, const std::string& error) {
  std::lock_guard lock(mu_);
  if (!ok) last_error_ = error;
}

asio::awaitable<http::ClientResponse> Dependency::Call(
    std::string method, std::string path, std::string body,
    std::vector<std::pair<std::string, std::string>> headers, bool idempotent) {
  // Every call earns 0.2 of a retry, up to a cap of 10 retries.
  int64_t t = retry_tokens_x10_.load();
  while (t < 100 && !retry_tokens_x10_.compare_exchange_weak(t, std::min<int64_t>(100, t + 2))) {
  }
  for (int attempt = 0;; ++attempt) {
    if (!breaker_.Allow())
      throw DependencyDown("The " + options_.name + " service is unavailable right now.",
                           options_.name);
    std::string error;
    try {
      auto r = co_await http::Fetch(endpoint_, method, path, headers, body, options_.timeout,
                                    tls_.get());
      if (r.status < 500) {
        breaker_.OnSuccess();
        co_return r;
      }
      error = "HTTP " + std::to_string(r.status);
    } catch (const http::TransportError& e) {
      error = e.what();
    }
    breaker_.OnFailure();
    Note(false, error);
    if (!idempotent || attempt >= 1 || !TakeRetryToken())
      throw DependencyDown("The " + options_.name + " service did not answer (" + error + ").",
                           options_.name);
  }
}

asio::awaitable<void> Dependency::Guard(std::function<asio::awaitable<void>()> op) {
  if (!breaker_.Allow())
    throw DependencyDown("The " + options_.name + " service is unavailable right now.",
                         options_.name);
  std::string error;
  try {
    co_await op();
    breaker_.OnSuccess();
    co_return;
  } catch (const std::exception& e) {
    error = e.what();
  }
  breaker_.OnFailure();
  Note(false, error);
  throw DependencyDown("The " + options_.name + " service did not accept it (" + error + ").",
                       options_.name);
}

asio::awaitable<void> Dependency::ActiveChecks(const std::atomic<bool>& stop) {
  if (options_.health_path.empty() && !options_.check) co_return;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  while (!stop.load()) {
    bool ok = false;
    std::string error;
    // A check is a call like any other: while the breaker is open it waits its turn,
    // and once half-open it is the trial call that can close it without user traffic.
    if (breaker_.Allow()) {
      try {
        if (options_.check) {
          co_await options_.check();
          ok = true;
        } else {
          auto r = co_await http::Fetch(endpoint_, "GET", options_.health_path, {}, "",
                                        options_.timeout, tls_.get());
          ok = r.status < 500;
          if (!ok) error = "HTTP " + std::to_string(r.status);
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (ok)
        breaker_.OnSuccess();
      else
        breaker_.OnFailure();
      std::lock_guard lock(mu_);
      if (ok != last_check_ok_)
        log::Info("dependency {}: active check {}", options_.name, ok ? "passes again" : error);
      last_check_ok_ = ok;
      last_check_unix_ = UnixNow();
      if (!ok) last_error_ = error;
    }
    timer.expires_after(options_.check_interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

Dependency::Health Dependency::health() const {
  std::lock_guard lock(mu_);
  return Health{resilience::CircuitBreaker::Name(breaker_.health()),
                resilience::CircuitBreaker::Name(breaker_.state()), last_check_ok_,
                last_check_unix_, last_error_};
}

void Registry::Add(DependencyOptions o) {
  std::string n = o.name;
  deps_[n] = std::make_unique<Dependency>(std::move(o));
}

Dependency* Registry::Find(const std::string& name) {
  auto it = deps_.find(name);
  return it == deps_.end() ? nullptr : it->second.get();
}

std::vector<Dependency*> Registry::All() {
  std::vector<Dependency*> v;
  for (auto& [k, d] : deps_) v.push_back(d.get());
  return v;
}

}  // namespace continuum::deps
