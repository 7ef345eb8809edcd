// Fuzz target: the body of every route that is not a GET, through the parsers the
// handlers themselves call before any database work (portal::RouteBodies(), listed by
// route name in src/portal/bodies.cpp: a route added there is fuzzed without a change
// here). The bytes are the body; each route's check runs with one of the two JSON
// content types and as a patient or a provider (the rules that depend on the caller: a
// note's author, a message's sides), chosen by the input's length. A body may be refused
// only with a continuum::Error of status 4xx (any other exception would be a 500, or a
// crash), whose OperationOutcome is valid JSON; a body that is accepted meets the limits
// the handlers rely on.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "http/outcome.hpp"
#include "portal/bodies.hpp"

namespace http = continuum::http;
namespace portal = continuum::portal;

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

template <typename F>
void Refused4xxOnly(F&& f) {
  try {
    f();
  } catch (const continuum::Error& e) {
    if (e.http_status() < 400 || e.http_status() > 499) Broken("a bad body is not a 4xx");
    auto r = http::ErrorResponse(std::current_exception());
    boost::system::error_code ec;
    (void)boost::json::parse(r.body, ec);
    if (ec) Broken("an error response is not valid JSON");
  }
  // Anything else propagates: libFuzzer reports the uncaught exception as a crash.
}

continuum::auth::Claims Caller(const char* role) {
  continuum::auth::Claims c;
  c.role = role;
  c.account_id = 5;
  c.username = "fuzz";
  if (c.role == "patient") c.patient_id = "7";
  if (c.role == "provider") c.practitioner_id = "3";
  return c;
}

// What the handlers store or send on: within the limits they rely on.
void Accepted(const http::Request& req, const continuum::auth::Claims& caller) {
  Refused4xxOnly([&] {
    auto n = portal::ParseNoteBody(req, caller);
    if (n.content.empty() || n.content.size() > 65536) Broken("a note's size is out of range");
    if (n.title.empty() || n.title.size() > 200) Broken("a note's title is out of range");
  });
  Refused4xxOnly([&] {
    auto m = portal::ParseMessageBody(req, caller);
    if (m.body.empty() || m.body.size() > 20000) Broken("a message's size is out of range");
    if (!m.subject && !m.in_response_to) Broken("a new conversation without a subject");
  });
  Refused4xxOnly([&] {
    auto p = portal::ParsePaymentBody(req);
    if (p.amount_cents <= 0 || p.amount_cents > 100'000'000) Broken("an amount out of range");
  });
  Refused4xxOnly([&] {
    portal::RequireNoBody(req);
    if (!req.body.empty()) {
      auto v = boost::json::parse(req.body);
      if (!v.is_object() || !v.as_object().empty()) Broken("a body where none is taken");
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto patient = Caller("patient");
  static const auto provider = Caller("provider");
  // The content type and the caller come from the input's length, so that each is fuzzed
  // without running every body four times (a refusal is an exception, slow under ASan).
  // application/fhir+json a quarter of the time: the ops routes refuse it at once (415).
  http::Request req;
  req.method = "POST";
  req.headers.emplace_back("content-type",
                           size % 4 == 2 ? "application/fhir+json" : "application/json");
  req.body.assign(reinterpret_cast<const char*>(data), size);
  const auto& caller = size & 1 ? provider : patient;
  for (const auto& route : portal::RouteBodies()) Refused4xxOnly([&] { route.check(req, caller); });
  Accepted(req, caller);
  return 0;
}
