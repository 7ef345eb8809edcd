#include "portal/ops_payloads.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "core/error.hpp"

namespace continuum::portal::ops {
namespace json = boost::json;

namespace {

[[noreturn]] void Invalid(const std::string& field, const std::string& why) {
  throw BadRequest("Field '" + field + "' " + why + ".");
}

json::object ParseObject(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec)
    throw BadRequest("The request body is not valid JSON: " + ec.message() + ".", "structure");
  if (!v.is_object()) throw BadRequest("The request body must be a JSON object.", "structure");
  return std::move(v.as_object());
}

const json::value& Required(const json::object& o, std::string_view key, const std::string& field) {
  auto it = o.find(key);
  if (it == o.end()) Invalid(field, "is missing");
  return it->value();
}

// A string of 1..max_len characters (min_len 0 allows "").
std::string String(const json::value& v, const std::string& field, std::size_t max_len,
                   std::size_t min_len = 1) {
  if (!v.is_string()) Invalid(field, "must be a string");
  const auto& s = v.as_string();
  if (s.size() < min_len) Invalid(field, "must not be empty");
  if (s.size() > max_len)
    Invalid(field, "is longer than " + std::to_string(max_len) + " characters");
  return std::string(s);
}

std::string RequiredString(const json::object& o, std::string_view key, const std::string& field,
                           std::size_t max_len, std::size_t min_len = 1) {
  return String(Required(o, key, field), field, max_len, min_len);
}

// Absent or null: nullopt.
std::optional<std::string> OptionalString(const json::object& o, std::string_view key,
                                          const std::string& field, std::size_t max_len) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::nullopt;
  return String(it->value(), field, max_len, 0);
}

bool RequiredBool(const json::object& o, std::string_view key, const std::string& field) {
  const auto& v = Required(o, key, field);
  if (!v.is_bool()) Invalid(field, "must be true or false");
  return v.as_bool();
}

double RequiredNumber(const json::object& o, std::string_view key, const std::string& field) {
  const auto& v = Required(o, key, field);
  if (!v.is_number()) Invalid(field, "must be a number");
  double d = v.to_number<double>();
  if (!std::isfinite(d) || d < 0) Invalid(field, "must be a number >= 0");
  return d;
}

std::string Timestamp(const json::value& v, const std::string& field) {
  std::string s = String(v, field, 64);
  if (!ParseRfc3339(s))
    Invalid(field, "must be an RFC 3339 date-time such as 2026-12-02T10:00:00Z");
  return s;
}

// Journey and vantage names become Prometheus label values and file stems.
std::string Name(const json::object& o, std::string_view key, const std::string& field) {
  std::string s = RequiredString(o, key, field, 64);
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      Invalid(field, "may contain only letters, digits, '-', '_' and '.'");
  return s;
}

// An object of string values (Alertmanager's labels and annotations).
json::object StringMap(const json::value& v, const std::string& field, std::size_t max_value) {
  if (!v.is_object()) Invalid(field, "must be an object of strings");
  for (const auto& kv : v.as_object()) {
    std::string f = field + "." + std::string(kv.key());
    if (kv.key().empty()) Invalid(field, "has an empty name");
    String(kv.value(), f, max_value, 0);
  }
  return v.as_object();
}

void CheckKnown(const json::object& o, std::initializer_list<std::string_view> allowed,
                const std::string& where) {
  for (const auto& kv : o) {
    bool known = false;
    for (auto a : allowed) known = known || a == kv.key();
    if (known) continue;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    throw BadRequest(
        "Unknown field '" + where + std::string(kv.key()) + "'. Allowed fields: " + list + ".",
        "structure");
  }
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::optional<int64_t> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
       se = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return std::nullopt;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
  if (*y < 1 || *mo < 1 || *mo > 12 || *d < 1 || *d > kDays[*mo - 1] ||
      (*mo == 2 && *d == 29 && !leap) || *h > 23 || *mi > 59 || *se > 60)
    return std::nullopt;
  std::size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    int64_t scale = 100000;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start || pos - start > 9) return std::nullopt;
  }
  if (pos >= s.size()) return std::nullopt;
  int64_t offset_s = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || pos + 3 >= s.size() || s[pos + 3] != ':' || *oh > 23 || *om > 59)
      return std::nullopt;
    offset_s = (*oh * 3600 + *om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t secs = DaysFromCivil(*y, *mo, *d) * 86400 + *h * 3600 + *mi * 60 + *se - offset_s;
  return secs * 1'000'000 + micros;
}

AlertBatch ParseAlertmanagerWebhook(std::string_view body) {
  json::object o = ParseObject(body);
  AlertBatch b;
  const auto& version = Required(o, "version", "version");
  if (!version.is_string() || version.as_string() != "4")
    Invalid("version", "must be \"4\" (Alertmanager webhook payload version 4)");
  b.status = RequiredString(o, "status", "status", 16);
  if (b.status != "firing" && b.status != "resolved")
    Invalid("status", "must be \"firing\" or \"resolved\"");
  b.receiver = RequiredString(o, "receiver", "receiver", 256);
  b.group_key = RequiredString(o, "groupKey", "groupKey", 4096, 0);
  const auto& alerts = Required(o, "alerts", "alerts");
  if (!alerts.is_array()) Invalid("alerts", "must be an array of alerts");
  if (alerts.as_array().empty()) Invalid("alerts", "must list at least one alert");
  if (alerts.as_array().size() > 1000) Invalid("alerts", "lists more than 1000 alerts");
  std::size_t i = 0;
  for (const auto& av : alerts.as_array()) {
    std::string at = "alerts[" + std::to_string(i++) + "]";
    if (!av.is_object()) Invalid(at, "must be an object");
    const auto& a = av.as_object();
    AlertNotice n;
    n.status = RequiredString(a, "status", at + ".status", 16);
    if (n.status != "firing" && n.status != "resolved")
      Invalid(at + ".status", "must be \"firing\" or \"resolved\"");
    n.labels = StringMap(Required(a, "labels", at + ".labels"), at + ".labels", 1024);
    auto name = n.labels.find("alertname");
    if (name == n.labels.end()) Invalid(at + ".labels.alertname", "is missing");
    n.alertname = String(name->value(), at + ".labels.alertname", 256);
    if (auto sev = n.labels.find("severity"); sev != n.labels.end())
      n.severity = std::string(sev->value().as_string());
    n.annotations =
        StringMap(Required(a, "annotations", at + ".annotations"), at + ".annotations", 8192);
    n.starts_at = Timestamp(Required(a, "startsAt", at + ".startsAt"), at + ".startsAt");
    std::string ends = Timestamp(Required(a, "endsAt", at + ".endsAt"), at + ".endsAt");
    // Alertmanager sends the zero time (0001-01-01T00:00:00Z) when an alert has no end.
    if (n.status == "resolved" && *ParseRfc3339(ends) > 0) n.ends_at = ends;
    n.fingerprint = RequiredString(a, "fingerprint", at + ".fingerprint", 64);
    for (char c : n.fingerprint)
      if (!std::isalnum(static_cast<unsigned char>(c)))
        Invalid(at + ".fingerprint", "must be letters and digits (Alertmanager's hex fingerprint)");
    if (auto g = a.find("generatorURL"); g != a.end() && !g->value().is_null())
      n.generator_url = String(g->value(), at + ".generatorURL", 4096, 0);
    b.alerts.push_back(std::move(n));
  }
  return b;
}

JourneyRun ParseJourneyRun(std::string_view body) {
  json::object o = ParseObject(body);
  CheckKnown(o,
             {"journey", "vantage", "target", "started_at", "finished_at", "success", "steps",
              "failed_step", "error"},
             "");
  JourneyRun r;
  r.journey = Name(o, "journey", "journey");
  r.vantage = Name(o, "vantage", "vantage");
  r.target = RequiredString(o, "target", "target", 512);
  r.started_at = Timestamp(Required(o, "started_at", "started_at"), "started_at");
  r.finished_at = Timestamp(Required(o, "finished_at", "finished_at"), "finished_at");
  if (*ParseRfc3339(r.finished_at) < *ParseRfc3339(r.started_at))
    Invalid("finished_at", "is before started_at");
  r.success = RequiredBool(o, "success", "success");
  const auto& steps = Required(o, "steps", "steps");
  if (!steps.is_array()) Invalid("steps", "must be an array of steps");
  if (steps.as_array().size() > 100) Invalid("steps", "lists more than 100 steps");
  std::size_t i = 0;
  for (const auto& sv : steps.as_array()) {
    std::string at = "steps[" + std::to_string(i++) + "]";
    if (!sv.is_object()) Invalid(at, "must be an object");
    const auto& s = sv.as_object();
    CheckKnown(
        s,
        {"name", "method", "path", "status", "duration_ms", "budget_ms", "ok", "reason", "excerpt"},
        at + ".");
    JourneyStep st;
    st.name = RequiredString(s, "name", at + ".name", 64);
    st.method = RequiredString(s, "method", at + ".method", 16);
    st.path = RequiredString(s, "path", at + ".path", 1024);
    const auto& status = Required(s, "status", at + ".status");
    if (!status.is_int64() && !status.is_uint64())
      Invalid(at + ".status", "must be an HTTP status (0 for a transport error)");
    // A uint64 is one above int64's range: converting it would throw (a 500).
    if (status.is_uint64() || status.as_int64() < 0 || status.as_int64() > 999)
      Invalid(at + ".status", "must be between 0 and 999");
    st.status = static_cast<int>(status.as_int64());
    st.duration_ms = RequiredNumber(s, "duration_ms", at + ".duration_ms");
    st.budget_ms = RequiredNumber(s, "budget_ms", at + ".budget_ms");
    st.ok = RequiredBool(s, "ok", at + ".ok");
    st.reason = OptionalString(s, "reason", at + ".reason", 64);
    st.excerpt = OptionalString(s, "excerpt", at + ".excerpt", 1024);
    r.steps.push_back(std::move(st));
  }
  r.failed_step = OptionalString(o, "failed_step", "failed_step", 64);
  r.error = OptionalString(o, "error", "error", 1024);
  return r;
}

json::array StepsJson(const std::vector<JourneyStep>& steps) {
  json::array a;
  for (const auto& s : steps) {
    json::object o{{"name", s.name},     {"method", s.method},           {"path", s.path},
                   {"status", s.status}, {"duration_ms", s.duration_ms}, {"budget_ms", s.budget_ms},
                   {"ok", s.ok}};
    if (s.reason) o["reason"] = *s.reason;
    if (s.excerpt) o["excerpt"] = *s.excerpt;
    a.push_back(std::move(o));
  }
  return a;
}

OpsReport ParseOpsReport(std::string_view body) {
  json::object o = ParseObject(body);
  CheckKnown(o, {"kind", "id", "title", "outcome", "started_at", "ended_at", "text", "report"}, "");
  OpsReport r;
  r.kind = RequiredString(o, "kind", "kind", 16);
  if (r.kind != "rollout" && r.kind != "chaos-run" && r.kind != "chaos-day")
    Invalid("kind", "must be rollout, chaos-run or chaos-day");
  r.id = Name(o, "id", "id");
  r.title = RequiredString(o, "title", "title", 512);
  r.outcome = RequiredString(o, "outcome", "outcome", 256);
  r.started_at = Timestamp(Required(o, "started_at", "started_at"), "started_at");
  if (auto it = o.find("ended_at"); it != o.end() && !it->value().is_null()) {
    r.ended_at = Timestamp(it->value(), "ended_at");
    if (*ParseRfc3339(*r.ended_at) < *ParseRfc3339(r.started_at))
      Invalid("ended_at", "is before started_at");
  }
  r.text = RequiredString(o, "text", "text", 32 * 1024, 0);
  const auto& rep = Required(o, "report", "report");
  if (!rep.is_object()) Invalid("report", "must be a JSON object");
  r.report = rep.as_object();
  return r;
}

PoolHoldRequest ParsePoolHold(std::string_view body) {
  json::object o = ParseObject(body);
  CheckKnown(o, {"tier", "seconds"}, "");
  PoolHoldRequest r;
  r.tier = RequiredString(o, "tier", "tier", 16);
  if (r.tier != "critical" && r.tier != "high" && r.tier != "medium" && r.tier != "low")
    Invalid("tier", "must be critical, high, medium or low");
  double s = RequiredNumber(o, "seconds", "seconds");
  if (s != static_cast<int>(s) || s < 1 || s > 600)
    Invalid("seconds", "must be a whole number of seconds from 1 to 600");
  r.seconds = static_cast<int>(s);
  return r;
}

namespace {

struct ChartDef {
  const char* name;
  const char* title;
  const char* unit;
  const char* expr;  // {w}: the rate window
};
constexpr const char* kCount = "continuum_http_request_duration_seconds_count";
const ChartDef kCharts[] = {
    {"requests", "Requests per second, by tier", "req/s",
     "sum by (tier) (rate({count}{{tier!=\"ops\"}}[{w}]))"},
    // 5xx per second; 0 (not absent) for a tier that answers without errors.
    {"errors", "Server errors (5xx) per second, by tier", "req/s",
     "sum by (tier) (rate({count}{{tier!=\"ops\", status=~\"5..\"}}[{w}])) or sum by (tier) "
     "(rate({count}{{tier!=\"ops\"}}[{w}])) * 0"},
    {"latency", "p99 latency in milliseconds, by tier", "ms",
     "1000 * histogram_quantile(0.99, sum by (tier, le) "
     "(rate(continuum_http_request_duration_seconds_bucket{{tier!=\"ops\"}}[{w}])))"},
};

int TierOrder(std::string_view t) {
  constexpr std::string_view kOrder[] = {"critical", "high", "medium", "low"};
  for (int i = 0; i < 4; ++i)
    if (kOrder[i] == t) return i;
  return 4;
}

}  // namespace

std::vector<std::string> ChartNames() {
  std::vector<std::string> out;
  for (const auto& c : kCharts) out.emplace_back(c.name);
  return out;
}

std::optional<ChartSpec> FindChart(std::string_view name, int minutes) {
  for (const auto& c : kCharts) {
    if (name != c.name) continue;
    minutes = std::clamp(minutes, 5, 1440);
    ChartSpec s;
    s.name = c.name;
    s.title = c.title;
    s.unit = c.unit;
    s.step_s = std::max(5, minutes * 60 / 120);
    std::string window = std::to_string(std::max(20, 4 * s.step_s)) + "s";
    s.promql = fmt::format(fmt::runtime(c.expr), fmt::arg("count", kCount), fmt::arg("w", window));
    return s;
  }
  return std::nullopt;
}

json::object ChartFromPrometheus(const ChartSpec& spec, std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object())
    throw std::runtime_error("Prometheus answered something that is not JSON");
  const auto& o = v.as_object();
  auto text = [&](std::string_view key) -> std::string {
    auto it = o.find(key);
    return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
  };
  if (text("status") != "success")
    throw std::runtime_error("Prometheus refused the query: " +
                             (text("error").empty() ? "no reason given" : text("error")));
  const auto* data = o.if_contains("data");
  const auto* type =
      data && data->is_object() ? data->as_object().if_contains("resultType") : nullptr;
  const auto* result =
      data && data->is_object() ? data->as_object().if_contains("result") : nullptr;
  if (!type || !type->is_string() || type->as_string() != "matrix" || !result ||
      !result->is_array())
    throw std::runtime_error("Prometheus answered without a matrix of series");
  struct Series {
    std::string name;
    json::array points;
  };
  std::vector<Series> series;
  for (const auto& rv : result->as_array()) {
    if (!rv.is_object()) continue;
    const auto& ro = rv.as_object();
    std::string name = "all";
    if (const auto* m = ro.if_contains("metric"); m && m->is_object())
      if (const auto* t = m->as_object().if_contains("tier"); t && t->is_string())
        name = std::string(t->as_string());
    Series s{std::move(name), {}};
    if (const auto* vals = ro.if_contains("values"); vals && vals->is_array()) {
      for (const auto& pv : vals->as_array()) {
        if (!pv.is_array() || pv.as_array().size() != 2) continue;
        const auto& t = pv.as_array()[0];
        const auto& x = pv.as_array()[1];
        if (!t.is_number() || !x.is_string()) continue;
        // Prometheus sends values as strings: "NaN" (a quantile of no requests) and
        // infinities become null, a gap in the chart.
        std::string xs(x.as_string());
        char* end = nullptr;
        double d = std::strtod(xs.c_str(), &end);
        json::value val = nullptr;
        if (end != xs.c_str() && *end == '\0' && std::isfinite(d)) val = d;
        s.points.push_back(json::array{t.to_number<double>(), val});
      }
    }
    series.push_back(std::move(s));
  }
  std::sort(series.begin(), series.end(), [](const Series& a, const Series& b) {
    int oa = TierOrder(a.name), ob = TierOrder(b.name);
    return oa != ob ? oa < ob : a.name < b.name;
  });
  json::array out;
  for (auto& s : series)
    out.push_back(json::object{{"name", s.name}, {"points", std::move(s.points)}});
  return json::object{{"chart", spec.name},
                      {"title", spec.title},
                      {"unit", spec.unit},
                      {"step_s", spec.step_s},
                      {"series", std::move(out)}};
}

}  // namespace continuum::portal::ops
