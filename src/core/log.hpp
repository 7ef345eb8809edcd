// Structured logging: JSON lines on stderr through spdlog. Never log PHI: log ids of
// requests, routes, tiers, statuses and latencies, not names, birth dates or notes.
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>

namespace continuum::log {

// Installs the JSON-lines logger. `component` appears in every line.
void Init(const std::string& component, const std::string& node_id, bool verbose = false);

// Escapes a string for inclusion in a JSON string literal.
std::string JsonEscape(std::string_view s);

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
