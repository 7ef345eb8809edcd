// The pharmacy stand-in:
//   GET  /v1/prescriptions/{id}/fill-status
//     -> {"prescription": id, "status": "filled|ready|in-progress", "updated_at": ...},
//        deterministic per id (ids starting with "missing" are 404: unknown prescription)
//   POST /v1/refills {"prescription": "...", "patient": "..."} with a required
//        Idempotency-Key -> 201 {"refill_id", "status": "requested", ...}; the same key
//        again -> the same answer (200), recorded once; a different body -> 409.
#pragma once

#include "http/message.hpp"
#include "stubdeps/idempotency.hpp"
#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {

class PharmacyApi {
 public:
  PharmacyApi(ReceivedLog& log, IdempotencyStore& keys) : log_(log), keys_(keys) {}
  http::Response Handle(const http::Request& req);

  // The deterministic fill status of a prescription id.
  static std::string_view FillStatus(std::string_view prescription);

 private:
  http::Response Status(std::string_view id);
  http::Response Refill(const http::Request& req);

  ReceivedLog& log_;
  IdempotencyStore& keys_;
};

}  // namespace continuum::stubdeps
