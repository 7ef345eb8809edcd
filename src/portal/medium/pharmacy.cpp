#include "portal/medium/pharmacy.hpp"

#include <boost/json.hpp>

#include "core/error.hpp"
#include "deps/dependency.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"
#include "portal/bodies.hpp"
#include "portal/medium/jobs.hpp"

namespace continuum::portal::medium {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

const db::Query kMedication{"medication_owner",
                            "SELECT patient_id, display, status FROM medication WHERE id = $1",
                            db::Access::kRead};
// A cache of the pharmacy's answer: operational data (local commit).
const db::Query kSaveFill{
    "medication_fill_save",
    "INSERT INTO medication_fill (medication_id, status, detail, checked_at) VALUES ($1, $2, "
    "$3::jsonb, now()) ON CONFLICT (medication_id) DO UPDATE SET status = EXCLUDED.status, detail "
    "= EXCLUDED.detail, checked_at = now()",
    db::Access::kWrite, db::DataClass::kOperational};
const db::Query kLastFill{"medication_fill_last",
                          "SELECT status, detail::text, to_char(checked_at AT TIME ZONE 'UTC', "
                          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM medication_fill WHERE "
                          "medication_id = $1",
                          db::Access::kRead};

std::string MedicationId(const std::string& raw) {
  return std::to_string(ParseId(raw, "MedicationStatement"));
}

// Loads the medication and checks the caller may see its patient. Returns patient id.
asio::awaitable<std::string> Authorize(RequestContext& ctx, audit::Record& rec,
                                       const std::string& id) {
  auto m = co_await ctx.Read(kMedication, db::P(id));
  if (m.rows() == 0) {
    rec.outcome = "failure";
    throw NotFound("MedicationStatement/" + id + " does not exist.");
  }
  std::string pid(m.get(0, 0));
  rec.patient_id = pid;
  co_await AuthorizePatient(ctx, pid);
  co_return pid;
}

}  // namespace

asio::awaitable<http::Response> FillStatus(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "MedicationDispense", raw.substr(0, 64));
  Authenticate(ctx);
  std::string id = MedicationId(raw);
  rec.resource_id = id;
  co_await Authorize(ctx, rec, id);
  deps::Dependency* pharmacy = ctx.svc.deps ? ctx.svc.deps->Find("pharmacy") : nullptr;
  std::string error = "the pharmacy is not configured";
  if (pharmacy) {
    bool down = false;
    http::ClientResponse r;
    try {
      r = co_await pharmacy->Call("GET", "/v1/prescriptions/" + id + "/fill-status", "", {}, true);
    } catch (const deps::DependencyDown& e) {
      down = true;
      error = e.what();
    }
    if (!down) {
      boost::system::error_code ec;
      auto v = json::parse(r.body, ec);
      if (r.status == 200 && !ec && v.is_object() && v.as_object().contains("status") &&
          v.as_object().at("status").is_string()) {
        std::string status(v.as_object().at("status").as_string());
        try {
          co_await ctx.Write(kSaveFill, db::P(id, status, json::serialize(v)));
        } catch (const Error&) {
          // Only a cache: the live answer is served anyway.
        }
        rec.outcome = "success";
        co_return fhir::Json(
            200, json::object{
                     {"medication", id}, {"status", status}, {"pharmacy", v}, {"source", "live"}});
      }
      if (r.status == 404) {
        rec.outcome = "success";
        co_return fhir::Json(200, json::object{{"medication", id},
                                               {"status", "unknown"},
                                               {"source", "live"},
                                               {"message",
                                                "The pharmacy has no prescription "
                                                "on file for this medication."}});
      }
      error = "the pharmacy answered HTTP " + std::to_string(r.status);
    }
  }
  // Fallback: the last status the pharmacy reported, with when.
  auto last = co_await ctx.Read(kLastFill, db::P(id));
  if (last.rows() == 0) {
    rec.outcome = "failure";
    rec.detail = "pharmacy unavailable, no earlier status";
    throw deps::DependencyDown(
        "The pharmacy cannot be reached right now and no earlier fill status is on file. "
        "Please try again later.",
        "pharmacy");
  }
  boost::system::error_code ec;
  auto detail = json::parse(last.get(0, 1), ec);
  rec.outcome = "success";
  rec.detail = "served the last known fill status";
  auto resp = fhir::Json(200, json::object{{"medication", id},
                                           {"status", last.get(0, 0)},
                                           {"pharmacy", ec ? json::value(nullptr) : detail},
                                           {"source", "last-known"},
                                           {"as_of", last.get(0, 2)},
                                           {"message",
                                            "The pharmacy is not reachable right now; "
                                            "this is its last reported status."}});
  resp.content_type = "application/json";
  resp.set_header("X-Continuum-Degraded", "stale");
  co_return resp;
}

asio::awaitable<http::Response> RequestRefill(RequestContext& ctx) {
  auto& rec = ctx.Audit("create", "MedicationRequest");
  Authenticate(ctx);
  RequireRole(ctx, {"patient"});
  std::string id, key;
  try {
    id = ParseRefillBody(ctx.req);
    key = RequiredKey(ctx);
  } catch (const Error&) {
    ctx.AuditOutcome("failure", "invalid request");
    throw;
  }
  std::string pid = co_await Authorize(ctx, rec, id);
  std::string request =
      json::serialize(json::object{{"prescription", id}, {"patient", pid}, {"medication", id}});
  co_return co_await Submit(ctx, rec, "refill", pid, request, key);
}

}  // namespace continuum::portal::medium
