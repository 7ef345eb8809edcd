// Structured logging: JSON lines on stderr through spdlog. Never log PHI: log ids of
// requests, routes, tiers, statuses and latencies, not names, birth dates or notes.
//
// Asynchronous, and never blocking the caller (an I/O thread): a log call formats
// nothing and writes nothing; it enqueues the message on a bounded queue (kQueueLines)
// that one background thread drains to stderr. When the queue is full the oldest line is
// dropped (spdlog's overrun_oldest policy: the caller never waits). The writer itself
// waits for stderr at most kStallMs; a reader that stops reading (a full pipe) makes it
// drop lines instead of blocking, so the queue keeps moving and shutdown stays bounded.
// Dropped lines of both kinds are counted: continuum_log_dropped_lines_total{reason=
// "queue_full"|"stderr_stalled"}. The price: under a stalled or flooded stderr some lines
// are lost; a request is never delayed for its log line.
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>

#include "core/json_escape.hpp"

namespace continuum::log {

// Installs the JSON-lines logger. `component` appears in every line.
void Init(const std::string& component, const std::string& node_id, bool verbose = false);

// Lines dropped so far: queue overruns, and lines the writer gave up on (stderr stalled).
struct Dropped {
  uint64_t queue_full = 0;
  uint64_t stderr_stalled = 0;
};
Dropped DroppedLines();
// Writes out what is queued (bounded by the stall limit); for tests and before exit.
void Flush();

// Escapes a string for inclusion in a JSON string literal (core/json_escape.hpp).
using continuum::JsonEscape;

template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::info(f, std::forward<Args>(args)...);
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::warn(f, std::forward<Args>(args)...);
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::error(f, std::forward<Args>(args)...);
}
// A raw JSON object (without braces) appended as fields: used by the access log.
void Access(const std::string& json_fields);
// A structured event line: `json_fields` (JSON members without braces, e.g.
// "event":"ops_alert","status":"firing") become top-level fields next to ts, level,
// component and node, so log queries can select on them. Values must be escaped
// (JsonEscape).
void Event(spdlog::level::level_enum level, const std::string& json_fields);

}  // namespace continuum::log
