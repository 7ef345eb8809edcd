#include "stubdeps/ehr_api.hpp"

#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cctype>
#include <charconv>

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "http/outcome.hpp"
#include "stubdeps/instant.hpp"

namespace continuum::stubdeps {
namespace json = boost::json;

namespace {

constexpr std::string_view kPrefix = "/fhir/R4";

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string TypeList() {
  std::string out;
  for (int i = 0; i < kEhrTypeCount; ++i) {
    if (i) out += ", ";
    out += TypeName(static_cast<EhrType>(i));
  }
  return out;
}

// Applies one _lastUpdated value ("gt2026-11-01T00:00:00Z") to the query's range.
void ApplyLastUpdated(const std::string& value, EhrQuery& q) {
  std::string_view v = value;
  std::string_view prefix = "eq";
  if (v.size() >= 2 && std::isalpha(static_cast<unsigned char>(v[0])) &&
      std::isalpha(static_cast<unsigned char>(v[1]))) {
    prefix = v.substr(0, 2);
    v.remove_prefix(2);
  }
  auto period = ParseFhirDateTime(v);
  if (!period)
    throw BadRequest(
        "_lastUpdated must be a FHIR date, dateTime or instant with an optional "
        "prefix, e.g. gt2026-11-25T10:00:00Z (got '" +
        value.substr(0, 64) + "').");
  if (prefix == "eq") {
    q.from_ms = std::max(q.from_ms, period->start_ms);
    q.to_ms = std::min(q.to_ms, period->end_ms);
  } else if (prefix == "gt") {
    q.from_ms = std::max(q.from_ms, period->end_ms);
  } else if (prefix == "ge") {
    q.from_ms = std::max(q.from_ms, period->start_ms);
  } else if (prefix == "lt") {
    q.to_ms = std::min(q.to_ms, period->start_ms);
  } else if (prefix == "le") {
    q.to_ms = std::min(q.to_ms, period->end_ms);
  } else {
    throw BadRequest("_lastUpdated prefix '" + std::string(prefix) +
                         "' is not supported; use eq, gt, ge, lt or le.",
                     "not-supported");
  }
}

std::string BaseUrl(const http::Request& req, const std::string& fallback) {
  std::string_view host = req.header("host");
  if (host.empty() || host.size() > 255) return fallback;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-' ||
          c == '[' || c == ']'))
      return fallback;
  return "http://" + std::string(host) + std::string(kPrefix);
}

}  // namespace

http::Response EhrApi::Handle(const http::Request& req) {
  try {
    auto segs = Segments(req.path);
    if (segs.size() < 3 || segs[0] != "fhir" || segs[1] != "R4" || segs.size() > 4)
      throw NotFound("No such endpoint: the EHR stand-in serves " + std::string(kPrefix) +
                     "/metadata and " + std::string(kPrefix) + "/{" + TypeList() + "}[/{id}].");
    if (req.method != "GET") {
      auto r = http::OutcomeResponse(405, "not-supported",
                                     "The EHR stand-in is read-only: only GET is supported.");
      r.set_header("Allow", "GET");
      return r;
    }
    if (segs.size() == 3 && segs[2] == "metadata") return Capability();
    auto type = ParseEhrType(segs[2]);
    if (!type)
      throw NotFound("Unknown resource type '" + std::string(segs[2]).substr(0, 64) +
                     "'. Supported: " + TypeList() + ".");
    if (segs.size() == 4) return Read(*type, segs[3]);
    return Search(req, *type, BaseUrl(req, fallback_base_));
  } catch (...) {
    return http::ErrorResponse(std::current_exception());
  }
}

http::Response EhrApi::Read(EhrType type, std::string_view id) {
  int64_t n = 0;
  const EhrResource* r = ParseInt64(id, &n) ? store_.Read(type, n) : nullptr;
  if (!r)
    throw NotFound(std::string(TypeName(type)) + "/" + std::string(id).substr(0, 64) +
                   " does not exist.");
  return fhir::Json(200, r->ToFhir());
}

http::Response EhrApi::Search(const http::Request& req, EhrType type, const std::string& base) {
  EhrQuery q;
  q.count = kEhrDefaultCount;
  std::vector<std::pair<std::string, std::string>> echo;  // for the links, in order
  bool count_given = false;
  for (const auto& [k, v] : req.query) {
    if (k == "_lastUpdated") {
      ApplyLastUpdated(v, q);
      echo.emplace_back(k, v);
    } else if (k == "_count") {
      int64_t n = 0;
      if (!ParseInt64(v, &n) || n < 1 || n > kEhrMaxCount)
        throw BadRequest("_count must be a whole number from 1 to " + std::to_string(kEhrMaxCount) +
                         ".");
      q.count = static_cast<int>(n);
      count_given = true;
      echo.emplace_back(k, v);
    } else if (k == "patient") {
      std::string_view p = v;
      if (p.starts_with("Patient/")) p.remove_prefix(8);
      int64_t n = 0;
      if (!ParseInt64(p, &n) || n < 1)
        throw BadRequest("patient must be a Patient id (a positive whole number) or Patient/<id>.");
      q.patient = n;
      echo.emplace_back(k, v);
    } else if (k == "_cursor") {
      const auto dot = v.find('.');
      int64_t ms = 0, id = 0;
      if (dot == std::string::npos || !ParseInt64(std::string_view(v).substr(0, dot), &ms) ||
          !ParseInt64(std::string_view(v).substr(dot + 1), &id))
        throw BadRequest("_cursor is malformed: follow the Bundle's next link as given.");
      q.after = EhrCursor{ms, id};
    } else if (k != "_format") {
      throw BadRequest("Unsupported search parameter '" + k.substr(0, 64) +
                           "'. Supported: _lastUpdated, _count, patient (and _cursor from next "
                           "links).",
                       "not-supported");
    }
  }
  if (!count_given) echo.emplace_back("_count", std::to_string(q.count));

  EhrPage page = store_.Search(type, q);
  auto url = [&](std::optional<EhrCursor> cursor) {
    std::string u = base + "/" + std::string(TypeName(type));
    char sep = '?';
    for (const auto& [k, v] : echo) {
      u += sep;
      u += k + "=" + boost::urls::encode(v, boost::urls::unreserved_chars);
      sep = '&';
    }
    if (cursor)
      u += std::string(1, sep) + "_cursor=" + std::to_string(cursor->first) + "." +
           std::to_string(cursor->second);
    return u;
  };
  std::vector<json::object> resources;
  resources.reserve(page.resources.size());
  for (const EhrResource* r : page.resources) resources.push_back(r->ToFhir());
  std::optional<std::string> next;
  if (page.next) next = url(page.next);
  const std::size_t returned = resources.size();
  json::object bundle =
      fhir::SearchBundle(url(q.after), next, std::move(resources), base, page.total);
  bundle["meta"] = json::object{{"lastUpdated", FormatInstant(NowMs())}};

  const auto qmark = req.target.find('?');
  log_.Append(
      json::object{{"type", TypeName(type)},
                   {"query", qmark == std::string::npos ? "" : req.target.substr(qmark + 1)},
                   {"returned", returned},
                   {"total", page.total}},
      NowMs());
  return fhir::Json(200, bundle);
}

http::Response EhrApi::Capability() {
  json::array resources;
  for (int i = 0; i < kEhrTypeCount; ++i) {
    json::array params{json::object{{"name", "_lastUpdated"}, {"type", "date"}},
                       json::object{{"name", "_count"}, {"type", "number"}}};
    if (static_cast<EhrType>(i) != EhrType::kPatient)
      params.push_back(json::object{{"name", "patient"}, {"type", "reference"}});
    resources.push_back(json::object{
        {"type", TypeName(static_cast<EhrType>(i))},
        {"interaction",
         json::array{json::object{{"code", "read"}}, json::object{{"code", "search-type"}}}},
        {"searchParam", std::move(params)}});
  }
  json::object cs{
      {"resourceType", "CapabilityStatement"},
      {"status", "active"},
      {"date", "2026-10-01"},
      {"kind", "instance"},
      {"software", json::object{{"name", "Continuum EHR stand-in (continuum stub-deps)"}}},
      {"fhirVersion", "4.0.1"},
      {"format", json::array{"json"}},
      {"rest", json::array{json::object{{"mode", "server"}, {"resource", std::move(resources)}}}}};
  return fhir::Json(200, cs);
}

}  // namespace continuum::stubdeps
