#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace continuum::log {

namespace {
std::shared_ptr<spdlog::logger> g_access;
std::shared_ptr<spdlog::logger> g_event;
}  // namespace

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

void Init(const std::string& component, const std::string& node_id, bool verbose) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("continuum", sink);
  logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","component":")" +
                          JsonEscape(component) + R"(","node":")" + JsonEscape(node_id) +
                          R"(","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
  // A sink has one formatter, so the access log gets a sink of its own.
  g_access =
      std::make_shared<spdlog::logger>("access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  g_access->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","type":"access","node":")" +
                            JsonEscape(node_id) + R"(",%v})",
                        spdlog::pattern_time_type::utc);
  g_event =
      std::make_shared<spdlog::logger>("event", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  g_event->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","component":")" +
                           JsonEscape(component) + R"(","node":")" + JsonEscape(node_id) +
                           R"(",%v})",
                       spdlog::pattern_time_type::utc);
}

void Access(const std::string& json_fields) {
  if (g_access) g_access->info(json_fields);
}

void Event(spdlog::level::level_enum level, const std::string& json_fields) {
  if (g_event) g_event->log(level, json_fields);
}

}  // namespace continuum::log
