// The EHR stand-in's HTTP API (FHIR R4 JSON, errors as OperationOutcome):
//   GET /fhir/R4/metadata                       CapabilityStatement
//   GET /fhir/R4/{type}?_lastUpdated=gt<instant>&_count=N[&patient=<id>]
//                                               searchset Bundle, paged by "next" links
//   GET /fhir/R4/{type}/{id}                    read
// for Patient, Condition, MedicationStatement, AllergyIntolerance and Encounter.
// _lastUpdated takes eq (default), gt, ge, lt, le and may repeat (a range).
#pragma once

#include <string>

#include "http/message.hpp"
#include "stubdeps/ehr_data.hpp"
#include "stubdeps/received_log.hpp"

namespace continuum::stubdeps {

inline constexpr int kEhrDefaultCount = 50;
inline constexpr int kEhrMaxCount = 1000;

class EhrApi {
 public:
  // `fallback_base` ("http://127.0.0.1:9101/fhir/R4") is used when a request has no
  // usable Host header.
  EhrApi(EhrStore& store, ReceivedLog& log, std::string fallback_base)
      : store_(store), log_(log), fallback_base_(std::move(fallback_base)) {}

  http::Response Handle(const http::Request& req);

 private:
  http::Response Search(const http::Request& req, EhrType type, const std::string& base);
  http::Response Read(EhrType type, std::string_view id);
  static http::Response Capability();

  EhrStore& store_;
  ReceivedLog& log_;
  std::string fallback_base_;
};

}  // namespace continuum::stubdeps
