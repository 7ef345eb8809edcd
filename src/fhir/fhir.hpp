// FHIR R4 JSON helpers shared by the resource handlers: Bundles, references,
// CodeableConcepts, and the strict parsing of request bodies.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json_writer.hpp"
#include "http/message.hpp"

namespace continuum::fhir {

namespace json = boost::json;

json::object Reference(std::string_view type, std::string_view id);
json::object Coding(std::string_view system, std::string_view code, std::string_view display);
json::object Concept(std::string_view system, std::string_view code, std::string_view display);
json::object Meta(std::string_view last_updated);

// Extensions: data a resource of FHIR R4 has no element for goes into `extension`
// (R4 2.1.0.6: a resource with an unknown top-level key is invalid; the HL7 JSON schema
// refuses it). Each extension the portal defines has a canonical URL under
// kExtensionBase; their meaning is listed in src/fhir/README.md.
inline constexpr std::string_view kExtensionBase =
    "https://continuum.example/fhir/StructureDefinition/";
// {"url": kExtensionBase + name, value_key: value}, e.g. ("account-balance", "valueMoney", m).
json::object Extension(std::string_view name, std::string_view value_key, json::value value);

struct BundleEntry {
  std::string full_url;
  json::object resource;
};

// A searchset Bundle with self and (when more) next links.
json::object SearchBundle(const std::string& self_url, std::optional<std::string> next_url,
                          std::vector<json::object> resources, const std::string& base,
                          std::optional<int64_t> total = std::nullopt);

// A FHIR JSON response (application/fhir+json).
http::Response Json(int status, const json::value& v);
// The same with a body already written (JsonWriter).
http::Response Json(int status, std::string body);

// The writer forms of the helpers above, each writing one value (an object) in the same
// shape and key order. A `display` adds it to the Reference.
void WriteReference(JsonWriter& w, std::string_view type, std::string_view id,
                    std::optional<std::string_view> display = std::nullopt);
void WriteCoding(JsonWriter& w, std::string_view system, std::string_view code,
                 std::string_view display);
void WriteConcept(JsonWriter& w, std::string_view system, std::string_view code,
                  std::string_view display);
void WriteMeta(JsonWriter& w, std::string_view last_updated);

// A searchset Bundle written as SearchBundle builds it: BeginSearchBundle writes up to
// the opening of `entry`; each entry is BeginSearchEntry (fullUrl, then the key
// "resource": the caller writes the resource object), EndSearchEntry; EndSearchBundle
// closes it.
void BeginSearchBundle(JsonWriter& w, std::string_view self_url,
                       const std::optional<std::string>& next_url,
                       std::optional<int64_t> total = std::nullopt);
void BeginSearchEntry(JsonWriter& w, std::string_view base, std::string_view type,
                      std::string_view id);
void EndSearchEntry(JsonWriter& w);
void EndSearchBundle(JsonWriter& w);

// Parses a JSON object body. Throws BadRequest with an actionable message when the
// content type is not JSON (415), the body is not a JSON object, or it holds a key
// outside `allowed`.
json::object ParseBody(const http::Request& req, std::initializer_list<std::string_view> allowed,
                       bool fhir_content_type_ok = true);

// Paging parameters: _count (1..kMaxCount, default 20) and _offset (>= 0).
struct Paging {
  int count = 20;
  int offset = 0;
};
inline constexpr int kMaxCount = 100;
Paging ParsePaging(const http::Request& req);

// Rejects query parameters outside `allowed` (FHIR servers may ignore unknown ones,
// but a strict answer keeps a typo from silently returning everything).
void CheckParams(const http::Request& req, std::initializer_list<std::string_view> allowed);

// Builds "base/Type?k=v&..." with the given params plus paging.
std::string SearchUrl(const std::string& base, std::string_view type,
                      const std::vector<std::pair<std::string, std::string>>& params,
                      const Paging& p);

}  // namespace continuum::fhir
