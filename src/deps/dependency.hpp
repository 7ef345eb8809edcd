// One external dependency (payments processor, insurance verification, pharmacy, EHR,
// SMS): its client, timeout, retry budget, circuit breaker, passive health (live calls)
// and active health (periodic checks), reported in /readyz and /metrics.
//
// Call() refuses at once while the breaker is open (DependencyDown, a 503-class error
// the caller turns into its fallback); transport failures and 5xx answers count as
// failures, 4xx answers as successes (the dependency works; the request was wrong).
// Idempotent calls are retried once more when the dependency-wide retry budget allows
// (retries stay under ~20% of calls, so a struggling dependency is not hammered).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "http/client.hpp"
#include "resilience/breaker.hpp"

namespace continuum::deps {

struct DependencyOptions {
  std::string name;
  // base URL: https://host:port (http:// only with allow_plaintext); smtp://host:port
  // for SMTP, which then requires STARTTLS unless allow_plaintext.
  std::string url;
  std::string ca_file;           // PEM bundle to trust; empty: the system's trust store
  bool allow_plaintext = false;  // explicitly configured: no TLS (http://, SMTP without STARTTLS)
  std::chrono::milliseconds timeout{2000};
  std::string health_path;  // active check: GET, expects < 500
  std::chrono::milliseconds check_interval{2000};
  resilience::CircuitBreaker::Options breaker;
  // A non-HTTP active check (e.g. an SMTP dialogue); throws on failure. Set: used
  // instead of GET health_path.
  std::function<boost::asio::awaitable<void>()> check;
};

struct DependencyDown : Unavailable {
  DependencyDown(const std::string& m, std::string dependency)
      : Unavailable(m, 5), dependency(std::move(dependency)) {}
  std::string dependency;
};

class Dependency {
 public:
  explicit Dependency(DependencyOptions o);
  const std::string& name() const { return options_.name; }
  const DependencyOptions& options() const { return options_; }

  boost::asio::awaitable<http::ClientResponse> Call(
      std::string method, std::string path, std::string body,
      std::vector<std::pair<std::string, std::string>> headers, bool idempotent);
  // Runs a non-HTTP operation (an SMTP send) under this dependency's breaker: refused
  // at once while it is open; any exception from `op` counts as a failure and is thrown
  // as DependencyDown. Not retried.
  boost::asio::awaitable<void> Guard(std::function<boost::asio::awaitable<void>()> op);
  // host and port of the URL (any scheme).
  const http::Endpoint& endpoint() const { return endpoint_; }
  // The verifying client context for https:// and SMTP STARTTLS; null when this
  // dependency is configured for plaintext (allow_plaintext with http:// or smtp://).
  boost::asio::ssl::context* tls() const { return tls_.get(); }
  // Periodic active checks until `stop` (co_spawn it on an executor).
  boost::asio::awaitable<void> ActiveChecks(const std::atomic<bool>& stop);

  resilience::CircuitBreaker& breaker() { return breaker_; }
  const resilience::CircuitBreaker& breaker() const { return breaker_; }
  struct Health {
    const char* state;    // healthy | degraded | down
    const char* breaker;  // closed | open | half-open
    bool last_check_ok;
    int64_t last_check_unix;
    std::string last_error;
  };
  Health health() const;

 private:
  bool TakeRetryToken();
  void Note(bool ok, const std::string& error);

  DependencyOptions options_;
  http::Endpoint endpoint_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  resilience::CircuitBreaker breaker_;
  std::atomic<int64_t> retry_tokens_x10_{100};  // tenths of a retry
  mutable std::mutex mu_;
  bool last_check_ok_ = true;
  int64_t last_check_unix_ = 0;
  std::string last_error_;
};

// The portal's dependencies by name.
class Registry {
 public:
  void Add(DependencyOptions o);
  Dependency* Find(const std::string& name);  // null when not configured
  std::vector<Dependency*> All();

 private:
  std::map<std::string, std::unique_ptr<Dependency>> deps_;
};

}  // namespace continuum::deps
