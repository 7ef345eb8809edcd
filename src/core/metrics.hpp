// Prometheus metrics: request counts and latency histograms by route, tier and
// status, plus gauges that components publish through collectors at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace continuum {

class Metrics {
 public:
  static Metrics& Get();

  // `route`, `tier` and `name` must be strings with static storage (their address is
  // part of a cache key).
  // A label added to every request series (`version="..."`: the release), set once at
  // start before any request is observed. An empty name removes it.
  void SetRequestLabel(std::string_view name, std::string_view value);
  void ObserveRequest(std::string_view route, std::string_view tier, int status, double seconds);
  void ObserveQuery(std::string_view name, bool ok, double seconds);
  // A collector appends Prometheus text (with its own # TYPE lines) at scrape time.
  void AddCollector(std::function<void(std::string&)> collector);
  std::string Render();

  static constexpr std::array<double, 14> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_us{0};
    void Observe(double seconds);
  };
  Histogram* Find(std::map<std::string, std::unique_ptr<Histogram>>& m, const std::string& key);
  static void RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                              const Histogram& h);

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Histogram>> requests_;  // key: label set
  std::string request_label_;                                   // ,name="value" or empty
  std::map<std::string, std::unique_ptr<Histogram>> queries_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

}  // namespace continuum
