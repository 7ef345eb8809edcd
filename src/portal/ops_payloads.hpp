// The request bodies of the ops API, parsed and validated before anything is stored:
// Alertmanager's webhook payload (version 4) and the prober's journey-run reports
// (docs: the monitoring contract, README "Interfaces"). A body that fails validation
// throws BadRequest naming the field (alerts[2].startsAt, steps[0].duration_ms, ...),
// so a sender with a bug learns what to fix and nothing half-valid is stored.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace continuum::portal::ops {

// One alert of a webhook notification. Timestamps are RFC 3339 as sent.
struct AlertNotice {
  std::string fingerprint;
  std::string alertname;  // labels.alertname
  std::string severity;   // labels.severity, "" when absent
  std::string status;     // firing | resolved
  boost::json::object labels;
  boost::json::object annotations;
  std::string starts_at;
  std::optional<std::string> ends_at;  // resolved alerts only (Alertmanager's zero time: none)
  std::string generator_url;
};

struct AlertBatch {
  std::string status;  // the group's status: firing | resolved
  std::string receiver;
  std::string group_key;
  std::vector<AlertNotice> alerts;
};

// Parses an Alertmanager webhook body (version "4"). Fields Alertmanager may add in
// later versions are ignored; the ones this API relies on are required.
AlertBatch ParseAlertmanagerWebhook(std::string_view body);

struct JourneyStep {
  std::string name;
  std::string method;
  std::string path;
  int status = 0;  // HTTP status, 0 for a transport error
  double duration_ms = 0;
  double budget_ms = 0;
  bool ok = false;
  std::optional<std::string> reason;
  std::optional<std::string> excerpt;
};

struct JourneyRun {
  std::string journey;
  std::string vantage;
  std::string target;
  std::string started_at;
  std::string finished_at;
  bool success = false;
  std::vector<JourneyStep> steps;
  std::optional<std::string> failed_step;
  std::optional<std::string> error;
};

// Parses a journey-run report: {"journey","vantage","target","started_at",
// "finished_at","success","steps":[...],"failed_step"?,"error"?}. Unknown fields are
// refused (the prober is ours: a mismatch should fail loudly, not lose data).
JourneyRun ParseJourneyRun(std::string_view body);

// The steps as stored (jsonb) and returned by /api/v1/ops/status.
boost::json::array StepsJson(const std::vector<JourneyStep>& steps);

// A report of the operations programs (ops/continuum_ops: a rollout, a chaos run or a
// chaos day), sent by its controller as it grows: {"kind","id","title","outcome",
// "started_at","ended_at"?,"text","report"}. Unknown fields are refused.
struct OpsReport {
  std::string kind;  // rollout | chaos-run | chaos-day
  std::string id;
  std::string title;
  std::string outcome;
  std::string started_at;
  std::optional<std::string> ended_at;  // absent or null while it runs
  std::string text;                     // the readable report (at most 32 KiB)
  boost::json::object report;           // the whole JSON report
};
OpsReport ParseOpsReport(std::string_view body);

// POST /api/v1/ops/chaos/pool-hold (a chaos experiment's "exhaust a tier's pool"):
// {"tier": "critical"|"high"|"medium"|"low", "seconds": 1..600}. Unknown fields are
// refused.
struct PoolHoldRequest {
  std::string tier;
  int seconds = 0;
};
PoolHoldRequest ParsePoolHold(std::string_view body);

// The dashboard's charts, each a fixed PromQL expression over the portal nodes' request
// histograms (cluster-wide, by tier): operators choose a chart and a time span, never an
// expression, so the proxy to Prometheus cannot be turned into a query console.
struct ChartSpec {
  std::string name;   // requests | errors | latency
  std::string title;  // e.g. "Requests per second, by tier"
  std::string unit;   // req/s | ms
  std::string promql;
  int step_s = 15;
};
// nullopt for an unknown chart name; `minutes` (5..1440) sets the step (about 120
// points) and the rate window (four steps, at least 20 s).
std::optional<ChartSpec> FindChart(std::string_view name, int minutes);
std::vector<std::string> ChartNames();
// Prometheus' /api/v1/query_range answer to the dashboard's shape:
// {"chart","title","unit","step_s","series":[{"name":<tier>,"points":[[unix_s, value|null]]}]},
// series ordered critical, high, medium, low, then others. Throws std::runtime_error
// when the answer is not a successful matrix (its error text when it has one).
boost::json::object ChartFromPrometheus(const ChartSpec& spec, std::string_view body);

// RFC 3339 date-time (2026-12-02T10:00:00Z, fractions, ±hh:mm offsets) to Unix
// microseconds; nullopt when malformed or out of range.
std::optional<int64_t> ParseRfc3339(std::string_view s);

}  // namespace continuum::portal::ops
