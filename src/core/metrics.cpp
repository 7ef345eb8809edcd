#include "core/metrics.hpp"

#include <fmt/format.h>

#include <unordered_map>

namespace continuum {

Metrics& Metrics::Get() {
  static Metrics m;
  return m;
}

// Buckets hold per-bucket (not cumulative) counts: one atomic increment per observation;
// Render() accumulates them.
void Metrics::Histogram::Observe(double seconds) {
  std::size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  if (i < kBuckets.size()) buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

Metrics::Histogram* Metrics::Find(std::map<std::string, std::unique_ptr<Histogram>>& m,
                                  const std::string& key) {
  std::lock_guard lock(mu_);
  auto& h = m[key];
  if (!h) h = std::make_unique<Histogram>();
  return h.get();
}

// Route, tier and query names are static strings, so their addresses key a per-thread
// cache of histogram pointers: the hot path takes no lock and formats nothing.
namespace {
struct CacheKey {
  const void* a;
  const void* b;
  int n;
  bool operator==(const CacheKey&) const = default;
};
struct CacheKeyHash {
  std::size_t operator()(const CacheKey& k) const {
    return std::hash<const void*>()(k.a) * 31 + std::hash<const void*>()(k.b) * 7 +
           static_cast<std::size_t>(k.n);
  }
};
}  // namespace

void Metrics::SetRequestLabel(std::string_view name, std::string_view value) {
  std::lock_guard lock(mu_);
  request_label_ = name.empty() ? std::string() : fmt::format(R"(,{}="{}")", name, value);
}

void Metrics::ObserveRequest(std::string_view route, std::string_view tier, int status,
                             double seconds) {
  thread_local std::unordered_map<CacheKey, Histogram*, CacheKeyHash> cache;
  CacheKey k{route.data(), tier.data(), status};
  auto it = cache.find(k);
  if (it == cache.end())
    it = cache
             .emplace(k, Find(requests_, fmt::format(R"(route="{}",tier="{}",status="{}")", route,
                                                     tier, status)))
             .first;
  it->second->Observe(seconds);
}

void Metrics::ObserveQuery(std::string_view name, bool ok, double seconds) {
  thread_local std::unordered_map<CacheKey, Histogram*, CacheKeyHash> cache;
  CacheKey k{name.data(), nullptr, ok ? 1 : 0};
  auto it = cache.find(k);
  if (it == cache.end())
    it = cache
             .emplace(k, Find(queries_,
                              fmt::format(R"(query="{}",outcome="{}")", name, ok ? "ok" : "error")))
             .first;
  it->second->Observe(seconds);
}

void Metrics::AddCollector(std::function<void(std::string&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

void Metrics::RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                              const Histogram& h) {
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += h.buckets[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, kBuckets[i], cumulative);
  }
  uint64_t count = h.count.load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, count);
  out += fmt::format("{}_sum{{{}}} {:.6f}\n", name, labels,
                     static_cast<double>(h.sum_us.load(std::memory_order_relaxed)) / 1e6);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, count);
}

std::string Metrics::Render() {
  std::string out;
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard lock(mu_);
    out +=
        "# HELP continuum_http_request_duration_seconds HTTP request latency by route, tier and "
        "status.\n";
    out += "# TYPE continuum_http_request_duration_seconds histogram\n";
    for (auto& [labels, h] : requests_)
      RenderHistogram(out, "continuum_http_request_duration_seconds", labels + request_label_, *h);
    out += "# HELP continuum_db_query_duration_seconds Database query latency by query name.\n";
    out += "# TYPE continuum_db_query_duration_seconds histogram\n";
    for (auto& [labels, h] : queries_)
      RenderHistogram(out, "continuum_db_query_duration_seconds", labels, *h);
    collectors = collectors_;
  }
  for (auto& c : collectors) c(out);
  return out;
}

}  // namespace continuum
