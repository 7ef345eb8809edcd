#include "monitor/probe_state.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <ctime>

namespace continuum::monitor {
namespace json = boost::json;

namespace {

std::string Escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> l) {
  std::string out = "{";
  for (const auto& [k, v] : l) {
    if (out.size() > 1) out += ',';
    out += std::string(k) + "=\"" + Escape(v) + "\"";
  }
  return out + "}";
}

std::string Num(double v) {
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string Rfc3339(double unix_seconds) {
  auto secs = static_cast<std::time_t>(std::floor(unix_seconds));
  int ms = static_cast<int>((unix_seconds - std::floor(unix_seconds)) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms);
}

json::object RunJson(const RunRecord& r) {
  json::array steps;
  for (const auto& s : r.steps) {
    json::object o{{"name", s.name},
                   {"method", s.method},
                   {"path", s.path},
                   {"status", s.status},
                   {"duration_ms", std::round(s.duration_ms * 10) / 10},
                   {"budget_ms", s.budget_ms},
                   {"ok", s.ok}};
    if (!s.reason.empty()) o["reason"] = s.reason;
    if (!s.excerpt.empty()) o["excerpt"] = s.excerpt;
    steps.push_back(std::move(o));
  }
  json::object o{{"journey", r.journey},         {"vantage", r.vantage},
                 {"target", r.target},           {"started_at", r.started_at},
                 {"finished_at", r.finished_at}, {"success", r.success},
                 {"steps", std::move(steps)}};
  if (!r.failed_step.empty()) o["failed_step"] = r.failed_step;
  if (!r.error.empty()) o["error"] = r.error;
  return o;
}

void ProbeState::Record(RunRecord run) {
  auto& s = series_[{run.journey, run.vantage}];
  (run.success ? s.successes : s.failures)++;
  s.runs.push_front(std::move(run));
  while (s.runs.size() > kKeepRuns) s.runs.pop_back();
}

std::string ProbeState::RenderMetrics() const {
  std::string out;
  Header(out, "continuum_probe_up", "gauge", "1 while the prober runs.");
  out += "continuum_probe_up 1\n";
  Header(out, "continuum_probe_journey_success", "gauge",
         "1 if the last completed run of the journey passed, else 0.");
  for (const auto& [k, s] : series_)
    out += "continuum_probe_journey_success" +
           Labels({{"journey", k.first}, {"vantage", k.second}}) + " " +
           (s.runs.front().success ? "1" : "0") + "\n";
  Header(out, "continuum_probe_journey_runs_total", "counter", "Completed journey runs.");
  for (const auto& [k, s] : series_) {
    out += "continuum_probe_journey_runs_total" +
           Labels({{"journey", k.first}, {"vantage", k.second}, {"result", "success"}}) + " " +
           std::to_string(s.successes) + "\n";
    out += "continuum_probe_journey_runs_total" +
           Labels({{"journey", k.first}, {"vantage", k.second}, {"result", "failure"}}) + " " +
           std::to_string(s.failures) + "\n";
  }
  Header(out, "continuum_probe_journey_duration_seconds", "gauge",
         "Duration of the last run of the journey.");
  for (const auto& [k, s] : series_)
    out += "continuum_probe_journey_duration_seconds" +
           Labels({{"journey", k.first}, {"vantage", k.second}}) + " " +
           Num(s.runs.front().duration_s) + "\n";
  Header(out, "continuum_probe_journey_last_run_timestamp_seconds", "gauge",
         "Unix time of the end of the last run.");
  for (const auto& [k, s] : series_)
    out += "continuum_probe_journey_last_run_timestamp_seconds" +
           Labels({{"journey", k.first}, {"vantage", k.second}}) + " " +
           fmt::format("{:.3f}", s.runs.front().finished_unix) + "\n";
  Header(out, "continuum_probe_step_duration_seconds", "gauge",
         "Duration of each step of the last run (steps that did not run are absent).");
  for (const auto& [k, s] : series_)
    for (const auto& st : s.runs.front().steps)
      out += "continuum_probe_step_duration_seconds" +
             Labels({{"journey", k.first}, {"vantage", k.second}, {"step", st.name}}) + " " +
             Num(st.duration_ms / 1000.0) + "\n";
  Header(out, "continuum_probe_step_success", "gauge",
         "1 if the step passed in the last run (0 also when over its latency budget).");
  for (const auto& [k, s] : series_)
    for (const auto& st : s.runs.front().steps)
      out += "continuum_probe_step_success" +
             Labels({{"journey", k.first}, {"vantage", k.second}, {"step", st.name}}) + " " +
             (st.ok ? "1" : "0") + "\n";
  Header(out, "continuum_probe_journey_failure_info", "gauge",
         "The failing step of a journey whose last run failed.");
  for (const auto& [k, s] : series_) {
    const RunRecord& r = s.runs.front();
    if (r.success) continue;
    for (const auto& st : r.steps) {
      if (st.name != r.failed_step) continue;
      out += "continuum_probe_journey_failure_info" +
             Labels({{"journey", k.first},
                     {"vantage", k.second},
                     {"step", st.name},
                     {"status", std::to_string(st.status)},
                     {"reason", st.reason}}) +
             " 1\n";
      break;
    }
  }
  Header(out, "continuum_probe_report_failures_total", "counter",
         "Runs that could not be reported to the portal.");
  out += "continuum_probe_report_failures_total " + std::to_string(report_failures_) + "\n";
  return out;
}

json::object ProbeState::RunsJson() const {
  json::array list;
  for (const auto& [k, s] : series_) {
    json::array runs;
    for (const auto& r : s.runs) runs.push_back(RunJson(r));
    list.push_back(json::object{{"journey", k.first},
                                {"vantage", k.second},
                                {"success_total", s.successes},
                                {"failure_total", s.failures},
                                {"runs", std::move(runs)}});
  }
  return json::object{{"journeys", std::move(list)}};
}

}  // namespace continuum::monitor
