// Fuzz target: FHIR search parameters. The bytes are a request target's query string,
// read by the server's own request parsing (http::ParseRequestBytes), then checked
// the way each search route does (fhir::CheckParams with its allowed names,
// fhir::ParsePaging). A search that is accepted builds its self/next links with
// fhir::SearchUrl: those must parse again and carry the same parameters back. A refusal
// is a 400 whose OperationOutcome is valid JSON (UTF-8) whatever the bytes were.
#include <sodium.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "http/outcome.hpp"
#include "http/server.hpp"

namespace fhir = continuum::fhir;
namespace http = continuum::http;

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

// What the client gets must be JSON (and so UTF-8), whatever bytes it sent.
void ValidJsonBody(const http::Response& r) {
  boost::system::error_code ec;
  (void)boost::json::parse(r.body, ec);
  if (ec) Broken("an error response is not valid JSON");
}

// One search route's accepted parameters (src/portal/*: the CheckParams calls).
void Search(const http::Request& req, std::initializer_list<std::string_view> allowed) {
  fhir::Paging paging;
  try {
    fhir::CheckParams(req, allowed);
    paging = fhir::ParsePaging(req);
  } catch (const continuum::Error& e) {
    if (e.http_status() != 400) Broken("a search parameter error is not a 400");
    ValidJsonBody(http::ErrorResponse(std::current_exception()));
    return;
  }
  if (paging.count < 1 || paging.count > fhir::kMaxCount || paging.offset < 0)
    Broken("paging out of range");
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& [k, v] : req.query)
    if (k != "_count" && k != "_offset" && k != "_format") params.emplace_back(k, v);
  std::string url = fhir::SearchUrl("http://portal.example/fhir/R4", "Patient", params, paging);
  // The link a client follows must be read back as the same search.
  std::string_view path =
      std::string_view(url).substr(std::string_view("http://portal.example").size());
  std::string head = "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  auto again = http::ParseRequestBytes(head, http::ServerOptions{});
  if (!again.request) Broken("a search link does not parse as a request");
  auto back = fhir::ParsePaging(*again.request);
  if (back.count != paging.count || back.offset != paging.offset) Broken("paging changed");
  std::size_t i = 0;
  for (const auto& [k, v] : again.request->query) {
    if (k == "_count" || k == "_offset") continue;
    if (i >= params.size() || params[i].first != k || params[i].second != v)
      Broken("a search link changed its parameters");
    ++i;
  }
  if (i != params.size()) Broken("a search link lost parameters");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return sodium_init() < 0 ? 1 : 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view query(reinterpret_cast<const char*>(data), size);
  std::string head = "GET /fhir/R4/Patient?" + std::string(query) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  auto r = http::ParseRequestBytes(head, http::ServerOptions{});
  if (!r.request) return 0;  // not a request target: the server answers 400 before any search
  Search(*r.request, {"patient"});
  Search(*r.request, {"patient", "agent"});
  Search(*r.request, {"name", "birthdate", "identifier"});
  Search(*r.request, {"status", "start", "schedule", "_count", "_offset"});
  Search(*r.request, {"since", "status", "alertname", "limit"});
  Search(*r.request, {});
  return 0;
}
