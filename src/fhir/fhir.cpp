#include "fhir/fhir.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/error.hpp"

namespace continuum::fhir {

json::object Reference(std::string_view type, std::string_view id) {
  std::string ref(type);
  ref += '/';
  ref += id;
  return json::object{{"reference", ref}};
}

json::object Coding(std::string_view system, std::string_view code, std::string_view display) {
  return json::object{{"system", system}, {"code", code}, {"display", display}};
}

json::object Concept(std::string_view system, std::string_view code, std::string_view display) {
  return json::object{{"coding", json::array{Coding(system, code, display)}}, {"text", display}};
}

json::object Extension(std::string_view name, std::string_view value_key, json::value value) {
  json::object e{{"url", std::string(kExtensionBase) + std::string(name)}};
  e[value_key] = std::move(value);
  return e;
}

json::object Meta(std::string_view last_updated) {
  return json::object{{"lastUpdated", last_updated}};
}

json::object SearchBundle(const std::string& self_url, std::optional<std::string> next_url,
                          std::vector<json::object> resources, const std::string& base,
                          std::optional<int64_t> total) {
  json::array links;
  links.push_back(json::object{{"relation", "self"}, {"url", self_url}});
  if (next_url) links.push_back(json::object{{"relation", "next"}, {"url", *next_url}});
  json::array entries;
  for (auto& r : resources) {
    std::string full = base + "/" + std::string(r["resourceType"].as_string()) + "/" +
                       std::string(r["id"].as_string());
    entries.push_back(json::object{{"fullUrl", full},
                                   {"resource", std::move(r)},
                                   {"search", json::object{{"mode", "match"}}}});
  }
  json::object b{{"resourceType", "Bundle"}, {"type", "searchset"}};
  if (total) b["total"] = *total;
  b["link"] = std::move(links);
  b["entry"] = std::move(entries);
  return b;
}

http::Response Json(int status, const json::value& v) { return Json(status, json::serialize(v)); }

http::Response Json(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/fhir+json";
  r.body = std::move(body);
  return r;
}

void WriteReference(JsonWriter& w, std::string_view type, std::string_view id,
                    std::optional<std::string_view> display) {
  w.BeginObject().Key("reference");
  std::string ref;
  ref.reserve(type.size() + 1 + id.size());
  ref.append(type).append(1, '/').append(id);
  w.String(ref);
  if (display) w.Member("display", *display);
  w.EndObject();
}

void WriteCoding(JsonWriter& w, std::string_view system, std::string_view code,
                 std::string_view display) {
  w.BeginObject()
      .Member("system", system)
      .Member("code", code)
      .Member("display", display)
      .EndObject();
}

void WriteConcept(JsonWriter& w, std::string_view system, std::string_view code,
                  std::string_view display) {
  w.BeginObject().Key("coding").BeginArray();
  WriteCoding(w, system, code, display);
  w.EndArray().Member("text", display).EndObject();
}

void WriteMeta(JsonWriter& w, std::string_view last_updated) {
  w.BeginObject().Member("lastUpdated", last_updated).EndObject();
}

void BeginSearchBundle(JsonWriter& w, std::string_view self_url,
                       const std::optional<std::string>& next_url, std::optional<int64_t> total) {
  w.BeginObject().Member("resourceType", "Bundle").Member("type", "searchset");
  if (total) w.Key("total").Int(*total);
  w.Key("link").BeginArray();
  w.BeginObject().Member("relation", "self").Member("url", self_url).EndObject();
  if (next_url) w.BeginObject().Member("relation", "next").Member("url", *next_url).EndObject();
  w.EndArray().Key("entry").BeginArray();
}

void BeginSearchEntry(JsonWriter& w, std::string_view base, std::string_view type,
                      std::string_view id) {
  std::string full;
  full.reserve(base.size() + type.size() + id.size() + 2);
  full.append(base).append(1, '/').append(type).append(1, '/').append(id);
  w.BeginObject().Member("fullUrl", full).Key("resource");
}

void EndSearchEntry(JsonWriter& w) {
  w.Key("search").BeginObject().Member("mode", "match").EndObject().EndObject();
}

void EndSearchBundle(JsonWriter& w) { w.EndArray().EndObject(); }

json::object ParseBody(const http::Request& req, std::initializer_list<std::string_view> allowed,
                       bool fhir_content_type_ok) {
  std::string_view ct = req.header("content-type");
  auto semi = ct.find(';');
  std::string_view media = ct.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  bool ok =
      media == "application/json" || (fhir_content_type_ok && media == "application/fhir+json");
  if (!ok)
    throw Error(415, "not-supported",
                "The request body must be JSON: send Content-Type: application/json" +
                    std::string(fhir_content_type_ok ? " or application/fhir+json." : "."));
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec)
    throw BadRequest("The request body is not valid JSON: " + ec.message() + ".", "structure");
  if (!v.is_object()) throw BadRequest("The request body must be a JSON object.", "structure");
  for (const auto& kv : v.as_object()) {
    bool known = false;
    for (auto a : allowed) known = known || a == kv.key();
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw BadRequest(
          "Unknown field '" + std::string(kv.key()) + "'. Allowed fields: " + list + ".",
          "structure");
    }
  }
  return std::move(v.as_object());
}

static int ParseBoundedInt(const std::string& name, const std::string& v, int lo, int hi) {
  if (v.empty() || v.size() > 9)
    throw BadRequest(name + " must be a whole number between " + std::to_string(lo) + " and " +
                     std::to_string(hi) + ".");
  for (char c : v)
    if (!std::isdigit(static_cast<unsigned char>(c)))
      throw BadRequest(name + " must be a whole number between " + std::to_string(lo) + " and " +
                       std::to_string(hi) + ".");
  int n = std::stoi(v);
  if (n < lo || n > hi)
    throw BadRequest(name + " must be between " + std::to_string(lo) + " and " +
                     std::to_string(hi) + " (got " + v + ").");
  return n;
}

Paging ParsePaging(const http::Request& req) {
  Paging p;
  if (auto c = req.param("_count")) p.count = ParseBoundedInt("_count", *c, 1, kMaxCount);
  if (auto o = req.param("_offset")) p.offset = ParseBoundedInt("_offset", *o, 0, 100000000);
  return p;
}

void CheckParams(const http::Request& req, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : req.query) {
    bool known = k == "_count" || k == "_offset" || k == "_format";
    for (auto a : allowed) known = known || a == k;
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw BadRequest("Unsupported search parameter '" + k.substr(0, 64) +
                           "'. Supported: " + list + ", _count, _offset.",
                       "not-supported");
    }
  }
}

std::string SearchUrl(const std::string& base, std::string_view type,
                      const std::vector<std::pair<std::string, std::string>>& params,
                      const Paging& p) {
  std::string u = base + "/" + std::string(type) + "?";
  for (const auto& [k, v] : params) {
    u += k + "=" + boost::urls::encode(v, boost::urls::unreserved_chars) + "&";
  }
  u += "_count=" + std::to_string(p.count);
  if (p.offset > 0) u += "&_offset=" + std::to_string(p.offset);
  return u;
}

}  // namespace continuum::fhir
