// The insurance verification stand-in:
//   POST /v1/eligibility {"member_id": "...", "payer": "...", "service": "..."}
//     -> 200 {"eligible": bool, "coverage": {...}, "checked_at": ...}
// The answer is deterministic by member_id: about one member in ten is not covered,
// and so is every member_id starting with "INELIGIBLE" (for demos and tests).
#pragma once

#include "http/message.hpp"
#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {

class InsuranceApi {
 public:
  explicit InsuranceApi(ReceivedLog& log) : log_(log) {}
  http::Response Handle(const http::Request& req);

  // Whether `member_id` is covered (deterministic).
  static bool Eligible(std::string_view member_id);

 private:
  http::Response Check(const http::Request& req);

  ReceivedLog& log_;
};

}  // namespace continuum::stubdeps
