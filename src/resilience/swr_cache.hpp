// A bounded, thread-safe cache with HTTP-style staleness rules (RFC 5861), for content
// that may be served a little old rather than not at all (the low tier):
//   fresh                 age <= fresh: served as is.
//   stale-while-revalidate  fresh < age <= fresh + swr: served at once while one caller
//                         refreshes it in the background.
//   stale-if-error        when a refresh fails (the source or the database is down), the
//                         entry is served, marked stale, until age > stale_if_error.
// A failed refresh is remembered on the entry, so responses say they are degraded until
// a refresh succeeds again.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace continuum::resilience {

class SwrCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds fresh{60'000};
    std::chrono::milliseconds stale_while_revalidate{600'000};
    std::chrono::milliseconds stale_if_error{24 * 3600'000};
    std::size_t max_entries = 50'000;
  };
  enum class Freshness { kFresh, kRevalidate, kExpired };
  struct Hit {
    std::string value;
    Freshness freshness;
    std::chrono::milliseconds age;
    bool last_refresh_failed = false;
    bool usable_on_error = false;  // within stale-if-error
  };
  struct Stats {
    uint64_t hits = 0, stale_hits = 0, misses = 0, refresh_failures = 0;
    std::size_t entries = 0;
  };

  explicit SwrCache(Options o) : options_(o) {}

  std::optional<Hit> Get(const std::string& key, Clock::time_point now = Clock::now());
  void Put(const std::string& key, std::string value, Clock::time_point now = Clock::now());
  // True when the caller should refresh `key` (no refresh of it in flight); the caller
  // then reports with EndRefresh.
  bool BeginRefresh(const std::string& key);
  void EndRefresh(const std::string& key, bool ok);
  Stats stats() const;
  const Options& options() const { return options_; }

 private:
  struct Entry {
    std::string value;
    Clock::time_point stored;
    bool refreshing = false;
    bool failed = false;
  };
  void EvictLocked(Clock::time_point now);

  Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  Stats stats_;
};

}  // namespace continuum::resilience
