// Continuum's error hierarchy. Every failure a request can meet is one of these types;
// the HTTP layer turns them into OperationOutcome responses in exactly one place
// (http/errors.cpp). Messages are written for the person reading the response and
// never contain PHI.
#pragma once

#include <stdexcept>
#include <string>

namespace continuum {

class Error : public std::runtime_error {
 public:
  // `code` is the FHIR OperationOutcome issue code (e.g. "invalid", "forbidden").
  Error(int http_status, std::string code, const std::string& message)
      : std::runtime_error(message), http_status_(http_status), code_(std::move(code)) {}
  int http_status() const { return http_status_; }
  const std::string& code() const { return code_; }

 private:
  int http_status_;
  std::string code_;
};

struct BadRequest : Error {
  explicit BadRequest(const std::string& m, std::string code = "invalid")
      : Error(400, std::move(code), m) {}
};
struct Unauthorized : Error {
  explicit Unauthorized(const std::string& m) : Error(401, "login", m) {}
};
struct Forbidden : Error {
  explicit Forbidden(const std::string& m) : Error(403, "forbidden", m) {}
};
struct NotFound : Error {
  explicit NotFound(const std::string& m) : Error(404, "not-found", m) {}
};
struct Conflict : Error {
  explicit Conflict(const std::string& m) : Error(409, "conflict", m) {}
};
struct TooManyRequests : Error {
  TooManyRequests(const std::string& m, int retry_after_s)
      : Error(429, "throttled", m), retry_after_s(retry_after_s) {}
  int retry_after_s;
};
// The service cannot answer right now (database unreachable, pool exhausted,
// deadline spent). Clients may retry.
struct Unavailable : Error {
  explicit Unavailable(const std::string& m, int retry_after_s = 1)
      : Error(503, "transient", m), retry_after_s(retry_after_s) {}
  int retry_after_s;
};
struct DeadlineExceeded : Unavailable {
  explicit DeadlineExceeded(const std::string& m) : Unavailable(m) {}
};
// A tier that has fallen back to a degraded mode refuses this request: the response
// says how (X-Continuum-Degraded: read-only | queued | stale) and when to retry.
struct Degraded : Unavailable {
  Degraded(const std::string& m, std::string mode, int retry_after_s)
      : Unavailable(m, retry_after_s), mode(std::move(mode)) {}
  std::string mode;
};

}  // namespace continuum
