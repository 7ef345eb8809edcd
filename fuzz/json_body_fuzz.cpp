// Fuzz target: the JSON bodies of the POST routes (src/portal/routes.cpp). Every portal
// POST first reads its body with fhir::ParseBody and the route's allowed fields; the
// ops API's two POSTs parse and validate theirs completely (ops::ParseAlertmanagerWebhook,
// ops::ParseJourneyRun). The bytes are the body. A body may be refused only with a
// continuum::Error of status 4xx (any other exception would be a 500, or a crash), and
// the OperationOutcome the client gets is valid JSON.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "http/outcome.hpp"
#include "portal/ops_payloads.hpp"

namespace fhir = continuum::fhir;
namespace http = continuum::http;
namespace ops = continuum::portal::ops;

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

void Body(const http::Request& req, std::initializer_list<std::string_view> allowed,
          bool fhir_ok = true) {
  Refused4xxOnly([&] {
    auto o = fhir::ParseBody(req, allowed, fhir_ok);
    for (const auto& kv : o) {
      bool known = false;
      for (auto a : allowed) known = known || a == kv.key();
      if (!known) Broken("ParseBody let an unknown field through");
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  http::Request req;
  req.method = "POST";
  req.headers.emplace_back("content-type", "application/json");
  req.body = std::string(body);
  Body(req, {"username", "password", "totp"}, false);  // POST /api/v1/session
  Body(req, {"resourceType", "status", "docStatus", "type", "subject", "description", "content",
             "author", "date"});  // POST /fhir/R4/DocumentReference
  Body(req, {"resourceType", "status", "slot", "description", "participant", "start", "end",
             "comment"});  // POST /fhir/R4/Appointment
  Body(req, {"slot"});     // POST /fhir/R4/Appointment/{id}/$reschedule
  Body(req, {"resourceType", "status", "subject", "recipient", "sender", "payload", "topic",
             "inResponseTo", "sent"});            // POST /fhir/R4/Communication
  Body(req, {"invoice", "amount_cents"}, false);  // POST /api/v1/payments
  Body(req, {"coverage", "service"}, false);      // POST /api/v1/insurance/verify
  Body(req, {"medication"}, false);               // POST /api/v1/refills
  Refused4xxOnly([&] { (void)ops::ParseAlertmanagerWebhook(body); });  // /api/v1/ops/alerts
  Refused4xxOnly([&] { (void)ops::ParseJourneyRun(body); });           // /api/v1/ops/journey-runs
  return 0;
}
