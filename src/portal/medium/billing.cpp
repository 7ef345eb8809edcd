#include "portal/medium/billing.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "deps/dependency.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"
#include "portal/bodies.hpp"
#include "portal/medium/jobs.hpp"
#include "portal/search.hpp"

namespace continuum::portal::medium {
namespace asio = boost::asio;
namespace json = boost::json;

#define CONTINUUM_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

namespace {

// ---- queries (billing and jobs are clinical-grade data: synchronous commit)
const db::Query kInvoices{
    "invoices_by_patient",
    "SELECT id, patient_id, description, amount_cents, paid_cents, status, " CONTINUUM_TS(
        "issued_at") ", " CONTINUUM_TS("due_at") ", " CONTINUUM_TS("updated_at") " "
                                                                                 "FROM invoice WHERE patient_id = $1 ORDER BY issued_at DESC, id DESC LIMIT $2 OFFSET $3", db::Access::kRead};
const db::Query kCountInvoices{
    "invoices_count", "SELECT count(*) FROM invoice WHERE patient_id = $1", db::Access::kRead};
const db::Query kBalance{"account_balance",
                         "SELECT COALESCE(sum(amount_cents - paid_cents) FILTER (WHERE status = "
                         "'issued'), 0), count(*) FILTER (WHERE status = 'issued') FROM invoice "
                         "WHERE patient_id = $1",
                         db::Access::kRead};
const db::Query kCoverage{"coverage_by_patient",
                          "SELECT id, patient_id, payer, plan, member_id, status, "
                          "period_start::text FROM coverage WHERE patient_id = $1 ORDER BY id",
                          db::Access::kRead};
const db::Query kCoverageById{
    "coverage_by_id", "SELECT patient_id, payer, member_id, status FROM coverage WHERE id = $1",
    db::Access::kRead};
json::object MoneyJson(int64_t cents) {
  return json::object{{"value", static_cast<double>(cents) / 100.0}, {"currency", "USD"}};
}

json::object InvoiceJson(const db::Result& r, int i) {
  int64_t amount = r.get_int(i, 3), paid = r.get_int(i, 4);
  return json::object{
      {"resourceType", "Invoice"},
      {"id", r.get(i, 0)},
      {"meta", fhir::Meta(r.get(i, 8))},
      {"status", r.get(i, 5)},
      {"subject", fhir::Reference("Patient", r.get(i, 1))},
      {"date", r.get(i, 6)},
      {"lineItem",
       json::array{json::object{
           {"sequence", 1}, {"chargeItemCodeableConcept", json::object{{"text", r.get(i, 2)}}}}}},
      {"totalGross", MoneyJson(amount)},
      {"totalNet", MoneyJson(amount - paid)},
      {"paymentTerms", std::string("Due ") + std::string(r.get(i, 7)).substr(0, 10)}};
}

}  // namespace

asio::awaitable<http::Response> SearchInvoices(RequestContext& ctx) {
  return PatientSearch(ctx, "Invoice", kInvoices, kCountInvoices, &InvoiceJson);
}

asio::awaitable<http::Response> ReadAccount(RequestContext& ctx) {
  auto& rec = ctx.Audit("search", "Account");
  Authenticate(ctx);
  fhir::CheckParams(ctx.req, {"patient"});
  std::string pid = PatientParam(ctx);
  rec.patient_id = pid;
  co_await DeferAuthorizePatient(ctx, pid);  // checked in the read's round trip
  auto r = co_await ctx.Read(kBalance, db::P(pid));
  json::object acct{
      {"resourceType", "Account"},
      {"id", "patient-" + pid},
      {"status", "active"},
      {"name", "Patient account"},
      {"subject", json::array{fhir::Reference("Patient", pid)}},
      // R4's Account has no balance (R5 added one): extensions, so the
      // resource stays valid R4 (src/fhir/README.md).
      {"extension",
       json::array{fhir::Extension("account-balance", "valueMoney", MoneyJson(r.get_int(0, 0))),
                   fhir::Extension("account-open-invoices", "valueUnsignedInt", r.get_int(0, 1))}}};
  rec.outcome = "success";
  std::string base = ctx.BaseUrl();
  std::vector<json::object> one{std::move(acct)};
  co_return fhir::Json(200,
                       fhir::SearchBundle(fhir::SearchUrl(base, "Account", {{"patient", pid}}, {}),
                                          std::nullopt, std::move(one), base, 1));
}

asio::awaitable<http::Response> SearchCoverage(RequestContext& ctx) {
  auto& rec = ctx.Audit("search", "Coverage");
  Authenticate(ctx);
  fhir::CheckParams(ctx.req, {"patient"});
  std::string pid = PatientParam(ctx);
  rec.patient_id = pid;
  co_await DeferAuthorizePatient(ctx, pid);  // checked in the read's round trip
  auto r = co_await ctx.Read(kCoverage, db::P(pid));
  std::vector<json::object> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(json::object{
        {"resourceType", "Coverage"},
        {"id", r.get(i, 0)},
        {"status", r.get(i, 5)},
        {"subscriberId", r.get(i, 4)},
        {"beneficiary", fhir::Reference("Patient", r.get(i, 1))},
        {"payor", json::array{json::object{{"display", r.get(i, 2)}}}},
        {"class", json::array{json::object{
                      {"type", fhir::Concept("http://terminology.hl7.org/CodeSystem/coverage-class",
                                             "plan", "Plan")},
                      {"value", r.get(i, 3)}}}},
        {"period", json::object{{"start", r.get(i, 6)}}}});
  rec.outcome = "success";
  std::string base = ctx.BaseUrl();
  int64_t total = r.rows();
  co_return fhir::Json(200,
                       fhir::SearchBundle(fhir::SearchUrl(base, "Coverage", {{"patient", pid}}, {}),
                                          std::nullopt, std::move(out), base, total));
}

asio::awaitable<http::Response> Pay(RequestContext& ctx) {
  auto& rec = ctx.Audit("create", "PaymentNotice");
  Authenticate(ctx);
  RequireRole(ctx, {"patient"});
  const std::string& pid = ctx.claims->patient_id;
  rec.patient_id = pid;
  std::string invoice, key;
  int64_t amount = 0;
  try {
    auto b = ParsePaymentBody(ctx.req);
    invoice = std::move(b.invoice);
    amount = b.amount_cents;
    key = RequiredKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  // The invoice is checked and the amount reserved on the primary, in the transaction
  // that enqueues the payment (not from a replica, not per key): see SubmitPayment.
  co_return co_await SubmitPayment(ctx, rec, pid, invoice, amount, key);
}

asio::awaitable<http::Response> VerifyInsurance(RequestContext& ctx) {
  auto& rec = ctx.Audit("create", "CoverageEligibilityRequest");
  Authenticate(ctx);
  RequireRole(ctx, {"patient"});
  const std::string& pid = ctx.claims->patient_id;
  rec.patient_id = pid;
  std::string coverage, key, service;
  try {
    auto b = ParseEligibilityBody(ctx.req);
    coverage = std::move(b.coverage);
    service = std::move(b.service);
    key = RequiredKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  auto cov = co_await ctx.Read(kCoverageById, db::P(coverage));
  if (cov.rows() == 0 || cov.get(0, 0) != pid) {
    ctx.AuditOutcome("failure", "not the patient's coverage");
    throw NotFound("Coverage/" + coverage + " is not one of your coverages.");
  }
  std::string request = json::serialize(json::object{{"coverage", coverage},
                                                     {"member_id", cov.get(0, 2)},
                                                     {"payer", cov.get(0, 1)},
                                                     {"service", service}});
  co_return co_await Submit(ctx, rec, "eligibility", pid, request, key);
}

}  // namespace continuum::portal::medium
