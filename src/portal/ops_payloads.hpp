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

// RFC 3339 date-time (2026-12-02T10:00:00Z, fractions, ±hh:mm offsets) to Unix
// microseconds; nullopt when malformed or out of range.
std::optional<int64_t> ParseRfc3339(std::string_view s);

}  // namespace continuum::portal::ops
