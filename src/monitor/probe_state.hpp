// What the prober knows about its runs: the last 20 runs per journey and vantage (GET
// /runs), the Prometheus series of notes/monitoring-spec.md (GET /metrics) and the
// journey-run JSON posted to the portal. Single-threaded: the prober's io_context owns it.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace continuum::monitor {

struct StepRecord {
  std::string name, method, path;  // path: after substitution, without the query string
  int status = 0;                  // 0: transport error
  double duration_ms = 0;
  int budget_ms = 0;
  bool ok = false;
  std::string reason;   // status|assert|budget|transport|capture ("" when ok)
  std::string excerpt;  // short, no PHI
};

struct RunRecord {
  std::string journey, vantage, target;  // target: the base URL used
  std::string started_at, finished_at;   // RFC 3339, UTC, milliseconds
  double duration_s = 0;
  double finished_unix = 0;
  bool success = false;
  std::vector<StepRecord> steps;  // the steps that ran, in order
  std::string failed_step;        // the first step that failed ("" on success)
  std::string error;              // a short text with no PHI
};

// The spec's journey-run JSON.
boost::json::object RunJson(const RunRecord& r);

class ProbeState {
 public:
  static constexpr std::size_t kKeepRuns = 20;

  void Record(RunRecord run);
  void CountReportFailure() { ++report_failures_; }
  uint64_t report_failures() const { return report_failures_; }

  // Prometheus text exposition (version 0.0.4).
  std::string RenderMetrics() const;
  // {"journeys": [{"journey", "vantage", "runs": [newest first]}]}
  boost::json::object RunsJson() const;

 private:
  struct Series {
    std::deque<RunRecord> runs;  // newest first
    uint64_t successes = 0, failures = 0;
  };
  std::map<std::pair<std::string, std::string>, Series> series_;  // (journey, vantage)
  uint64_t report_failures_ = 0;
};

// "2026-12-02T09:30:00.123Z" for a system_clock time in unix seconds.
std::string Rfc3339(double unix_seconds);

}  // namespace continuum::monitor
