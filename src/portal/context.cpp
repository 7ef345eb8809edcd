#include "portal/context.hpp"

namespace continuum::portal {

audit::Record& RequestContext::Audit(std::string action, std::string resource_type,
                                     std::string resource_id, std::string patient_id) {
  audit::Record r;
  r.request_id = req.request_id;
  r.client_address = req.client_address;
  r.action = std::move(action);
  r.resource_type = std::move(resource_type);
  r.resource_id = std::move(resource_id);
  r.patient_id = std::move(patient_id);
  r.outcome = "error";
  if (claims) {
    r.actor = claims->username;
    r.role = claims->role;
  }
  audit.push_back(std::move(r));
  return audit.back();
}

void RequestContext::AuditOutcome(const std::string& outcome, const std::string& detail) {
  for (auto& r : audit) {
    r.outcome = outcome;
    if (!detail.empty() && r.detail.empty()) r.detail = detail;
  }
}

std::string RequestContext::BaseUrl() const {
  std::string host(req.header("host"));
  if (host.empty()) host = "localhost";
  std::string proto(req.header("x-forwarded-proto"));
  if (proto != "https") proto = "http";
  return proto + "://" + host + "/fhir/R4";
}

}  // namespace continuum::portal
