#include "portal/routes.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "portal/audit_api.hpp"
#include "portal/chaos_hooks.hpp"
#include "portal/critical/notes.hpp"
#include "portal/critical/records.hpp"
#include "portal/high/appointments.hpp"
#include "portal/high/messages.hpp"
#include "portal/high/notifications.hpp"
#include "portal/low/content.hpp"
#include "portal/medium/billing.hpp"
#include "portal/medium/jobs.hpp"
#include "portal/medium/pharmacy.hpp"
#include "portal/ops.hpp"
#include "portal/ops_api.hpp"
#include "portal/session_api.hpp"

namespace continuum::portal {

namespace {

using Roles = std::vector<std::string>;
const Roles kPatient{"patient"};
const Roles kProvider{"provider"};
const Roles kClinical{"patient", "provider"};
const Roles kAuditor{"auditor"};
const Roles kAnyRole{"patient", "provider", "auditor"};

AccessPolicy Anyone() { return {}; }
AccessPolicy OpsToken() {
  AccessPolicy p;
  p.caller = RouteCaller::kOpsToken;
  return p;
}
AccessPolicy Session(const Roles& roles, PatientFrom patient, const char* action,
                     const char* resource_type, bool writable = false) {
  return AccessPolicy{RouteCaller::kSession, roles, patient, action, resource_type, writable};
}
constexpr bool kWrites = true;

}  // namespace

std::vector<RouteEntry> ListRoutes() {
  std::vector<RouteEntry> out;
  auto add = [&out](const char* method, const char* pattern, Tier tier, const char* name,
                    AccessPolicy access, auto fn) {
    out.push_back(RouteEntry{fn, tier, name, std::move(access), method, pattern});
  };
  using namespace critical;
  using enum PatientFrom;
  // Operations.
  // Anyone may ask whether a node is alive or ready (HAProxy's check needs only the status
  // code): /healthz and an anonymous /readyz say nothing else. /readyz's full body (with
  // the ops token, checked by its handler), the metrics and the ops view name regions,
  // database members, dependencies and their last errors: operators and their machines
  // only (the ops token: Prometheus, Alertmanager, the prober).
  add("GET", "/healthz", Tier::kOps, "healthz", Anyone(), Healthz);
  add("GET", "/readyz", Tier::kOps, "readyz", Anyone(), Readyz);
  add("GET", "/metrics", Tier::kOps, "metrics", OpsToken(), MetricsText);
  add("GET", "/api/v1/ops/status", Tier::kOps, "ops.status", OpsToken(), OpsStatus);
  // Monitoring's machines: Alertmanager's webhook and the prober's journey runs.
  add("POST", "/api/v1/ops/alerts", Tier::kOps, "ops.alerts.receive", OpsToken(),
      ops::ReceiveAlerts);
  add("GET", "/api/v1/ops/alerts", Tier::kOps, "ops.alerts.list", OpsToken(), ops::ListAlerts);
  add("POST", "/api/v1/ops/journey-runs", Tier::kOps, "ops.journey_runs.receive", OpsToken(),
      ops::ReceiveJourneyRun);
  // The operations programs' reports (rollouts, chaos runs and days) and the dashboard's
  // charts (from Prometheus, through this node: one origin for the browser).
  add("POST", "/api/v1/ops/reports", Tier::kOps, "ops.reports.receive", OpsToken(),
      ops::ReceiveReport);
  add("GET", "/api/v1/ops/reports", Tier::kOps, "ops.reports.list", OpsToken(), ops::ListReports);
  add("GET", "/api/v1/ops/reports/{}/{}", Tier::kOps, "ops.reports.read", OpsToken(),
      ops::ReadReport);
  add("GET", "/api/v1/ops/series", Tier::kOps, "ops.series", OpsToken(), ops::ChartSeries);
  // Chaos experiments' hooks ([ops] chaos_hooks; 403 when off): hold a tier's pools.
  add("POST", "/api/v1/ops/chaos/pool-hold", Tier::kOps, "ops.chaos.pool_hold", OpsToken(),
      chaos::HoldPool);
  add("DELETE", "/api/v1/ops/chaos/pool-hold", Tier::kOps, "ops.chaos.pool_release", OpsToken(),
      chaos::ReleasePool);
  add("GET", "/fhir/R4/metadata", Tier::kOps, "metadata", Anyone(), Capability);
  // Sessions: logging in is part of reaching critical data (the handler audits logins),
  // on a bulkhead of its own (src/auth/README.md).
  out.push_back(RouteEntry{Login, Tier::kCritical, "session.create", Anyone(), "POST",
                           "/api/v1/session", Bulkhead::kLogin});
  add("DELETE", "/api/v1/session", Tier::kCritical, "session.delete",
      Session(kAnyRole, kNone, "logout", ""), Logout);
  // A second factor: the caller's own account (the password is asked again).
  add("POST", "/api/v1/session/totp", Tier::kCritical, "session.totp.enrol",
      Session(kAnyRole, kNone, "totp-enrol", ""), EnrolTotp);
  add("POST", "/api/v1/session/totp/confirm", Tier::kCritical, "session.totp.confirm",
      Session(kAnyRole, kNone, "totp-confirm", ""), ConfirmTotp);
  // Critical tier: records, medications, allergies; provider lookup, history, notes.
  add("GET", "/fhir/R4/Patient", Tier::kCritical, "patient.search",
      Session(kClinical, kSelf, "search", "Patient"), SearchPatients);
  add("GET", "/fhir/R4/Patient/{}", Tier::kCritical, "patient.read",
      Session(kClinical, kResource, "read", "Patient"), ReadPatient);
  add("GET", "/fhir/R4/Patient/{}/$summary", Tier::kCritical, "patient.summary",
      Session(kClinical, kPath, "read", "Patient"), PatientSummary);
  add("GET", "/fhir/R4/AllergyIntolerance", Tier::kCritical, "allergy.search",
      Session(kClinical, kQuery, "search", "AllergyIntolerance"), SearchAllergies);
  add("GET", "/fhir/R4/MedicationStatement", Tier::kCritical, "medication.search",
      Session(kClinical, kQuery, "search", "MedicationStatement"), SearchMedications);
  add("GET", "/fhir/R4/Condition", Tier::kCritical, "condition.search",
      Session(kClinical, kQuery, "search", "Condition"), SearchConditions);
  add("GET", "/fhir/R4/Encounter", Tier::kCritical, "encounter.search",
      Session(kClinical, kQuery, "search", "Encounter"), SearchEncounters);
  add("POST", "/fhir/R4/DocumentReference", Tier::kCritical, "note.create",
      Session(kProvider, kResource, "create", "DocumentReference"), CreateNote);
  add("GET", "/fhir/R4/DocumentReference", Tier::kCritical, "note.search",
      Session(kClinical, kQuery, "search", "DocumentReference"), SearchNotes);
  add("GET", "/fhir/R4/DocumentReference/{}", Tier::kCritical, "note.read",
      Session(kClinical, kResource, "read", "DocumentReference"), ReadNote);
  add("POST", "/fhir/R4/DocumentReference/{}/$sign", Tier::kCritical, "note.sign",
      Session(kProvider, kResource, "sign", "DocumentReference"), SignNote);
  // High tier: scheduling (read-only while no primary is reachable).
  add("GET", "/fhir/R4/Slot", Tier::kHigh, "slot.search",
      Session(kClinical, kNone, "search", "Slot"), high::SearchSlots);
  add("POST", "/fhir/R4/Appointment", Tier::kHigh, "appointment.create",
      Session(kPatient, kSelf, "create", "Appointment", kWrites), high::BookAppointment);
  add("GET", "/fhir/R4/Appointment", Tier::kHigh, "appointment.search",
      Session(kClinical, kQuery, "search", "Appointment"), high::SearchAppointments);
  add("GET", "/fhir/R4/Appointment/{}", Tier::kHigh, "appointment.read",
      Session(kClinical, kResource, "read", "Appointment"), high::ReadAppointment);
  add("POST", "/fhir/R4/Appointment/{}/$cancel", Tier::kHigh, "appointment.cancel",
      Session(kPatient, kSelf, "cancel", "Appointment", kWrites), high::CancelAppointment);
  add("POST", "/fhir/R4/Appointment/{}/$reschedule", Tier::kHigh, "appointment.reschedule",
      Session(kPatient, kSelf, "reschedule", "Appointment", kWrites), high::RescheduleAppointment);
  add("GET", "/fhir/R4/Communication", Tier::kHigh, "message.search",
      Session(kClinical, kQuery, "search", "Communication"), high::SearchMessages);
  add("POST", "/fhir/R4/Communication", Tier::kHigh, "message.send",
      Session(kClinical, kResource, "create", "Communication", kWrites), high::SendMessage);
  add("POST", "/fhir/R4/Communication/{}/$read", Tier::kHigh, "message.read",
      Session(kClinical, kSelf, "read", "Communication"), high::MarkMessageRead);
  add("GET", "/api/v1/messages/unread", Tier::kHigh, "message.unread",
      Session(kClinical, kSelf, "read", "Communication"), high::UnreadMessages);
  add("GET", "/api/v1/messages/inbox", Tier::kHigh, "message.inbox",
      Session(kProvider, kNone, "search", "Communication"), high::MessageInbox);
  add("GET", "/api/v1/notifications", Tier::kHigh, "notification.list",
      Session(kPatient, kSelf, "search", "Notification"), high::ListNotifications);
  // Medium tier: billing and insurance (queued durably while their services are down).
  add("GET", "/fhir/R4/Account", Tier::kMedium, "account.read",
      Session(kClinical, kQuery, "search", "Account"), medium::ReadAccount);
  add("GET", "/fhir/R4/Invoice", Tier::kMedium, "invoice.search",
      Session(kClinical, kQuery, "search", "Invoice"), medium::SearchInvoices);
  add("GET", "/fhir/R4/Coverage", Tier::kMedium, "coverage.search",
      Session(kClinical, kQuery, "search", "Coverage"), medium::SearchCoverage);
  add("POST", "/api/v1/payments", Tier::kMedium, "payment.create",
      Session(kPatient, kSelf, "create", "PaymentNotice"), medium::Pay);
  add("POST", "/api/v1/insurance/verify", Tier::kMedium, "insurance.verify",
      Session(kPatient, kSelf, "create", "CoverageEligibilityRequest"), medium::VerifyInsurance);
  add("GET", "/api/v1/jobs/{}", Tier::kMedium, "job.read", Session(kAnyRole, kSelf, "read", "Task"),
      medium::ReadJob);
  add("GET", "/api/v1/medications/{}/fill-status", Tier::kMedium, "pharmacy.fill_status",
      Session(kClinical, kResource, "read", "MedicationDispense"), medium::FillStatus);
  add("POST", "/api/v1/refills", Tier::kMedium, "pharmacy.refill",
      Session(kPatient, kSelf, "create", "MedicationRequest"), medium::RequestRefill);
  // Low tier: health content, served from cache (stale when its source is down).
  add("GET", "/api/v1/articles", Tier::kLow, "article.list", Anyone(), low::ListArticles);
  add("GET", "/api/v1/articles/{}", Tier::kLow, "article.read", Anyone(), low::ReadArticle);
  add("GET", "/api/v1/recommendations", Tier::kLow, "recommendation.list",
      Session(kClinical, kQuery, "read", "Recommendations"), low::Recommendations);
  // Audit review (critical: HIPAA access reporting must stay available).
  add("GET", "/fhir/R4/AuditEvent", Tier::kCritical, "audit.search",
      Session(kAuditor, kNone, "search", "AuditEvent"), SearchAuditEvents);
  add("GET", "/api/v1/break-glass", Tier::kCritical, "audit.break_glass",
      Session(kAuditor, kNone, "search", "AuditEvent"), BreakGlassList);
  // Each route's body parser, by name (bodies.cpp lists one for every route but the GETs;
  // a unit test keeps the two tables in step).
  for (auto& e : out) e.body = FindRouteBody(e.name);
  return out;
}

std::vector<std::string> ApiPrefixes() {
  std::vector<std::string> out;
  for (const auto& e : ListRoutes()) {
    std::string_view p = e.pattern;
    p.remove_prefix(p.find_first_not_of('/'));
    std::string first(p.substr(0, p.find('/')));
    if (std::find(out.begin(), out.end(), first) == out.end()) out.push_back(std::move(first));
  }
  return out;
}

http::Router<RouteEntry> BuildRoutes() {
  http::Router<RouteEntry> r;
  for (auto& e : ListRoutes()) {
    std::string method = e.method, pattern = e.pattern;
    r.Add(std::move(method), pattern, std::move(e));
  }
  return r;
}

std::string RoutesJson() {
  boost::json::array out;
  for (const auto& e : ListRoutes()) {
    boost::json::value body = nullptr;  // a GET: its body is not looked at
    if (e.body) body = BodyKindName(e.body->kind);
    boost::json::array roles;
    for (const auto& r : e.access.roles) roles.emplace_back(boost::json::string(r));
    out.push_back(boost::json::object{{"method", e.method},
                                      {"pattern", e.pattern},
                                      {"name", e.name},
                                      {"tier", std::string(TierName(e.tier))},
                                      {"caller", RouteCallerName(e.access.caller)},
                                      {"roles", std::move(roles)},
                                      {"patient", PatientFromName(e.access.patient)},
                                      {"action", e.access.action},
                                      {"resource_type", e.access.resource_type},
                                      {"writable", e.access.writable},
                                      {"body", std::move(body)}});
  }
  return boost::json::serialize(out);
}

}  // namespace continuum::portal
