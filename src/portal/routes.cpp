#include "portal/routes.hpp"

#include "portal/audit_api.hpp"
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

http::Router<RouteEntry> BuildRoutes() {
  http::Router<RouteEntry> r;
  auto add = [&r](const char* method, const char* pattern, Tier tier, const char* name, auto fn) {
    r.Add(method, pattern, RouteEntry{fn, tier, name});
  };
  auto add_ops_token = [&r](const char* method, const char* pattern, const char* name, auto fn) {
    r.Add(method, pattern, RouteEntry{fn, Tier::kOps, name, RouteAccess::kOpsToken});
  };
  using namespace critical;
  // Operations.
  add("GET", "/healthz", Tier::kOps, "healthz", Healthz);
  add("GET", "/readyz", Tier::kOps, "readyz", Readyz);
  add("GET", "/metrics", Tier::kOps, "metrics", MetricsText);
  add("GET", "/api/v1/ops/status", Tier::kOps, "ops.status", OpsStatus);
  // Monitoring's machines: Alertmanager's webhook and the prober's journey runs.
  add_ops_token("POST", "/api/v1/ops/alerts", "ops.alerts.receive", ops::ReceiveAlerts);
  add_ops_token("GET", "/api/v1/ops/alerts", "ops.alerts.list", ops::ListAlerts);
  add_ops_token("POST", "/api/v1/ops/journey-runs", "ops.journey_runs.receive",
                ops::ReceiveJourneyRun);
  add("GET", "/fhir/R4/metadata", Tier::kOps, "metadata", Capability);
  // Sessions: logging in is part of reaching critical data, on a bulkhead of its own.
  r.Add("POST", "/api/v1/session",
        RouteEntry{Login, Tier::kCritical, "session.create", RouteAccess::kHandler,
                   Bulkhead::kLogin});
  add("DELETE", "/api/v1/session", Tier::kCritical, "session.delete", Logout);
  add("POST", "/api/v1/session/totp", Tier::kCritical, "session.totp.enrol", EnrolTotp);
  add("POST", "/api/v1/session/totp/confirm", Tier::kCritical, "session.totp.confirm", ConfirmTotp);
  // Critical tier: records, medications, allergies; provider lookup, history, notes.
  add("GET", "/fhir/R4/Patient", Tier::kCritical, "patient.search", SearchPatients);
  add("GET", "/fhir/R4/Patient/{}", Tier::kCritical, "patient.read", ReadPatient);
  add("GET", "/fhir/R4/Patient/{}/$summary", Tier::kCritical, "patient.summary", PatientSummary);
  add("GET", "/fhir/R4/AllergyIntolerance", Tier::kCritical, "allergy.search", SearchAllergies);
  add("GET", "/fhir/R4/MedicationStatement", Tier::kCritical, "medication.search",
      SearchMedications);
  add("GET", "/fhir/R4/Condition", Tier::kCritical, "condition.search", SearchConditions);
  add("GET", "/fhir/R4/Encounter", Tier::kCritical, "encounter.search", SearchEncounters);
  add("POST", "/fhir/R4/DocumentReference", Tier::kCritical, "note.create", CreateNote);
  add("GET", "/fhir/R4/DocumentReference", Tier::kCritical, "note.search", SearchNotes);
  add("GET", "/fhir/R4/DocumentReference/{}", Tier::kCritical, "note.read", ReadNote);
  add("POST", "/fhir/R4/DocumentReference/{}/$sign", Tier::kCritical, "note.sign", SignNote);
  // High tier: scheduling (read-only while no primary is reachable).
  add("GET", "/fhir/R4/Slot", Tier::kHigh, "slot.search", high::SearchSlots);
  add("POST", "/fhir/R4/Appointment", Tier::kHigh, "appointment.create", high::BookAppointment);
  add("GET", "/fhir/R4/Appointment", Tier::kHigh, "appointment.search", high::SearchAppointments);
  add("GET", "/fhir/R4/Appointment/{}", Tier::kHigh, "appointment.read", high::ReadAppointment);
  add("POST", "/fhir/R4/Appointment/{}/$cancel", Tier::kHigh, "appointment.cancel",
      high::CancelAppointment);
  add("POST", "/fhir/R4/Appointment/{}/$reschedule", Tier::kHigh, "appointment.reschedule",
      high::RescheduleAppointment);
  add("GET", "/fhir/R4/Communication", Tier::kHigh, "message.search", high::SearchMessages);
  add("POST", "/fhir/R4/Communication", Tier::kHigh, "message.send", high::SendMessage);
  add("POST", "/fhir/R4/Communication/{}/$read", Tier::kHigh, "message.read",
      high::MarkMessageRead);
  add("GET", "/api/v1/messages/unread", Tier::kHigh, "message.unread", high::UnreadMessages);
  add("GET", "/api/v1/notifications", Tier::kHigh, "notification.list", high::ListNotifications);
  // Medium tier: billing and insurance (queued durably while their services are down).
  add("GET", "/fhir/R4/Account", Tier::kMedium, "account.read", medium::ReadAccount);
  add("GET", "/fhir/R4/Invoice", Tier::kMedium, "invoice.search", medium::SearchInvoices);
  add("GET", "/fhir/R4/Coverage", Tier::kMedium, "coverage.search", medium::SearchCoverage);
  add("POST", "/api/v1/payments", Tier::kMedium, "payment.create", medium::Pay);
  add("POST", "/api/v1/insurance/verify", Tier::kMedium, "insurance.verify",
      medium::VerifyInsurance);
  add("GET", "/api/v1/jobs/{}", Tier::kMedium, "job.read", medium::ReadJob);
  add("GET", "/api/v1/medications/{}/fill-status", Tier::kMedium, "pharmacy.fill_status",
      medium::FillStatus);
  add("POST", "/api/v1/refills", Tier::kMedium, "pharmacy.refill", medium::RequestRefill);
  // Low tier: health content, served from cache (stale when its source is down).
  add("GET", "/api/v1/articles", Tier::kLow, "article.list", low::ListArticles);
  add("GET", "/api/v1/articles/{}", Tier::kLow, "article.read", low::ReadArticle);
  add("GET", "/api/v1/recommendations", Tier::kLow, "recommendation.list", low::Recommendations);
  // Audit review (critical: HIPAA access reporting must stay available).
  add("GET", "/fhir/R4/AuditEvent", Tier::kCritical, "audit.search", SearchAuditEvents);
  add("GET", "/api/v1/break-glass", Tier::kCritical, "audit.break_glass", BreakGlassList);
  return r;
}

}  // namespace continuum::portal
