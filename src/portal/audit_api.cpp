#include "portal/audit_api.hpp"

#include "core/error.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"

namespace continuum::portal {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

#define AUDIT_COLS                                                                               \
  "node_id, seq, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), " \
  "region, request_id, actor, role, action, resource_type, resource_id, patient_id, "            \
  "client_address, purpose_of_use, outcome, detail"

const db::Query kAuditByPatient{
    "audit_by_patient",
    "SELECT " AUDIT_COLS
    ", count(*) OVER () FROM audit_event WHERE "
    "patient_id = $1 ORDER BY recorded_at DESC, node_id, seq DESC LIMIT $2 "
    "OFFSET $3",
    db::Access::kRead};
const db::Query kAuditByAgent{"audit_by_agent",
                              "SELECT " AUDIT_COLS
                              ", count(*) OVER () FROM audit_event WHERE "
                              "actor = $1 ORDER BY recorded_at DESC, node_id, seq DESC LIMIT $2 "
                              "OFFSET $3",
                              db::Access::kRead};
const db::Query kBreakGlass{"audit_break_glass",
                            "SELECT " AUDIT_COLS
                            ", (SELECT b.reason FROM break_glass_reason b WHERE b.request_id = "
                            "audit_event.request_id) FROM audit_event WHERE purpose_of_use = "
                            "'ETREAT' "
                            "ORDER BY recorded_at DESC LIMIT $1 OFFSET $2",
                            db::Access::kRead};

json::object AuditEventJson(const db::Result& r, int i) {
  std::string_view action = r.get(i, 7);
  std::string_view outcome = r.get(i, 13);
  json::object e{{"resourceType", "AuditEvent"},
                 {"id", std::string(r.get(i, 0)) + "." + std::string(r.get(i, 1))},
                 {"meta", fhir::Meta(r.get(i, 2))}};
  bool login = action == "login" || action == "logout";
  if (login) {
    e["type"] = fhir::Coding("http://dicom.nema.org/resources/ontology/DCM", "110114",
                             "User Authentication");
    e["subtype"] = json::array{
        action == "login"
            ? fhir::Coding("http://dicom.nema.org/resources/ontology/DCM", "110122", "Login")
            : fhir::Coding("http://dicom.nema.org/resources/ontology/DCM", "110123", "Logout")};
    e["action"] = "E";
  } else {
    e["type"] = fhir::Coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest",
                             "RESTful Operation");
    std::string_view sub = action == "search"   ? "search-type"
                           : action == "create" ? "create"
                           : action == "read"   ? "read"
                                                : "update";
    e["subtype"] = json::array{fhir::Coding("http://hl7.org/fhir/restful-interaction", sub, sub)};
    e["action"] = action == "create" ? "C" : (action == "read" || action == "search") ? "R" : "U";
  }
  e["recorded"] = r.get(i, 2);
  e["outcome"] = outcome == "success" ? "0" : outcome == "error" ? "8" : "4";
  std::string desc(outcome);
  if (!r.null(i, 14) && !r.get(i, 14).empty()) desc += ": " + std::string(r.get(i, 14));
  e["outcomeDesc"] = desc;
  e["purposeOfEvent"] =
      json::array{fhir::Concept("http://terminology.hl7.org/CodeSystem/v3-ActReason", r.get(i, 12),
                                r.get(i, 12) == "ETREAT"  ? "Emergency Treatment"
                                : r.get(i, 12) == "TREAT" ? "treatment"
                                                          : r.get(i, 12))};
  json::object who{
      {"identifier", json::object{{"system", "urn:continuum:username"}, {"value", r.get(i, 5)}}},
      {"display", r.get(i, 5)}};
  json::object agent{
      {"type", json::object{{"text", r.get(i, 6)}}}, {"who", std::move(who)}, {"requestor", true}};
  if (!r.get(i, 11).empty())  // FHIR strings are never empty
    agent["network"] = json::object{{"address", r.get(i, 11)}, {"type", "2"}};
  e["agent"] = json::array{std::move(agent)};
  e["source"] = json::object{
      {"site", r.get(i, 3)},
      {"observer", json::object{{"display", r.get(i, 0)}}},
      {"type",
       json::array{fhir::Coding("http://terminology.hl7.org/CodeSystem/security-source-type", "3",
                                "Web Server")}}};
  json::array entities;
  if (!r.null(i, 10) && !r.get(i, 10).empty())
    entities.push_back(json::object{
        {"what", fhir::Reference("Patient", r.get(i, 10))},
        {"type",
         fhir::Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person")},
        {"role",
         fhir::Coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient")}});
  if (!r.null(i, 8) && !r.get(i, 8).empty()) {
    json::object what;
    if (!r.null(i, 9) && !r.get(i, 9).empty())
      what = fhir::Reference(r.get(i, 8), r.get(i, 9));
    else
      what = json::object{{"display", r.get(i, 8)}};
    entities.push_back(json::object{
        {"what", std::move(what)},
        {"type", fhir::Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2",
                              "System Object")}});
  }
  entities.push_back(
      json::object{{"what", json::object{{"identifier", json::object{{"value", r.get(i, 4)}}}}},
                   {"description", "request id"}});
  e["entity"] = std::move(entities);
  return e;
}

}  // namespace

asio::awaitable<http::Response> SearchAuditEvents(RequestContext& ctx) {
  auto& rec = ctx.Audit("search", "AuditEvent");
  rec.purpose_of_use = "HOPERAT";
  Authenticate(ctx);
  RequireRole(ctx, {"auditor"});
  fhir::CheckParams(ctx.req, {"patient", "agent"});
  // By patient (whose record was touched) or by agent (a user's trail, logins
  // included); exactly one.
  auto agent = ctx.req.param("agent");
  if (agent && ctx.req.param("patient"))
    throw BadRequest("Search AuditEvent by patient or by agent, not both.");
  std::vector<std::pair<std::string, std::string>> echo;
  const db::Query* q = &kAuditByPatient;
  std::string key;
  if (agent) {
    if (agent->empty() || agent->size() > 128)
      throw BadRequest("agent must be a username of 1 to 128 characters.");
    q = &kAuditByAgent;
    key = *agent;
    rec.detail = "agent search";
    echo.emplace_back("agent", key);
  } else {
    if (!ctx.req.param("patient"))
      throw BadRequest("AuditEvent search needs patient=<id> or agent=<username>.");
    key = PatientParam(ctx);
    rec.patient_id = key;
    echo.emplace_back("patient", key);
  }
  auto paging = fhir::ParsePaging(ctx.req);
  auto r = co_await ctx.Read(*q, db::P(key, paging.count + 1, paging.offset));
  int n = std::min(r.rows(), paging.count);
  std::vector<json::object> out;
  for (int i = 0; i < n; ++i) out.push_back(AuditEventJson(r, i));
  std::string base = ctx.BaseUrl();
  std::optional<std::string> next;
  if (r.rows() > paging.count)
    next = fhir::SearchUrl(base, "AuditEvent", echo, {paging.count, paging.offset + paging.count});
  rec.outcome = "success";
  co_return fhir::Json(
      200,
      fhir::SearchBundle(fhir::SearchUrl(base, "AuditEvent", echo, paging), next, std::move(out),
                         base, r.rows() ? std::optional<int64_t>(r.get_int(0, 15)) : std::nullopt));
}

asio::awaitable<http::Response> BreakGlassList(RequestContext& ctx) {
  auto& rec = ctx.Audit("search", "AuditEvent");
  rec.purpose_of_use = "HOPERAT";
  rec.detail = "break-the-glass review";
  Authenticate(ctx);
  RequireRole(ctx, {"auditor"});
  fhir::CheckParams(ctx.req, {});
  auto paging = fhir::ParsePaging(ctx.req);
  auto r = co_await ctx.Read(kBreakGlass, db::P(paging.count, paging.offset));
  json::array items;
  for (int i = 0; i < r.rows(); ++i) {
    // The reason lives in break_glass_reason (PHI); older records kept it in detail.
    std::string detail(r.get(i, 14));
    std::string reason = !r.null(i, 15)                            ? std::string(r.get(i, 15))
                         : detail.starts_with("break-the-glass: ") ? detail.substr(17)
                                                                   : detail;
    items.push_back(json::object{
        {"recorded", r.get(i, 2)},
        {"provider", r.get(i, 5)},
        {"patient", r.get(i, 10)},
        {"action", r.get(i, 7)},
        {"resource",
         std::string(r.get(i, 8)) + (r.get(i, 9).empty() ? "" : "/" + std::string(r.get(i, 9)))},
        {"reason", reason},
        {"outcome", r.get(i, 13)},
        {"request_id", r.get(i, 4)},
        {"node", r.get(i, 0)},
        {"region", r.get(i, 3)}});
  }
  rec.outcome = "success";
  http::Response resp;
  resp.content_type = "application/json";
  resp.body = json::serialize(json::object{{"accesses", std::move(items)}, {"count", r.rows()}});
  co_return resp;
}

}  // namespace continuum::portal
