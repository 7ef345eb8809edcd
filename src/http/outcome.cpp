#include "http/outcome.hpp"

#include <boost/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"

namespace continuum::http {

Response OutcomeResponse(int status, std::string_view code, std::string_view diagnostics) {
  boost::json::object issue{{"severity", status >= 500 ? "fatal" : "error"},
                            {"code", code},
                            {"diagnostics", diagnostics}};
  boost::json::object oo{{"resourceType", "OperationOutcome"},
                         {"issue", boost::json::array{std::move(issue)}}};
  Response r;
  r.status = status;
  r.content_type = "application/fhir+json";
  r.body = boost::json::serialize(oo);
  return r;
}

Response ErrorResponse(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const TooManyRequests& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    r.set_header("Retry-After", std::to_string(x.retry_after_s));
    return r;
  } catch (const Degraded& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    r.set_header("Retry-After", std::to_string(x.retry_after_s));
    r.set_header("X-Continuum-Degraded", x.mode);
    return r;
  } catch (const Unavailable& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    r.set_header("Retry-After", std::to_string(x.retry_after_s));
    return r;
  } catch (const Error& x) {
    auto r = OutcomeResponse(x.http_status(), x.code(), x.what());
    if (x.http_status() == 401) r.set_header("WWW-Authenticate", "Bearer realm=\"continuum\"");
    return r;
  } catch (const std::exception& x) {
    log::Error("unhandled error: {}", x.what());
    return OutcomeResponse(500, "exception",
                           "An internal error occurred; it has been logged. Please retry.");
  }
}

}  // namespace continuum::http
