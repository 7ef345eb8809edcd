#include "portal/medium/jobs.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "deps/dependency.hpp"
#include "fhir/fhir.hpp"
#include "portal/access.hpp"

namespace continuum::portal::medium {
namespace asio = boost::asio;
namespace json = boost::json;

#define CONTINUUM_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

namespace {

#define JOB_COLS \
  "id, kind, patient_id, account_id, request::text, status, attempts, last_error, "       \
  "result::text, " CONTINUUM_TS("created_at") ", CASE WHEN finished_at IS NULL THEN NULL " \
                                              "ELSE " CONTINUUM_TS("finished_at") " END"
const db::Query kEnqueue{"job_enqueue",
                         "INSERT INTO job (kind, patient_id, account_id, idempotency_key, request) "
                         "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (account_id, kind, "
                         "idempotency_key) DO NOTHING RETURNING id"};
const db::Query kJobByKey{"job_by_key", "SELECT " JOB_COLS
                                        " FROM job WHERE account_id = $1 AND kind = $2 AND "
                                        "idempotency_key = $3"};
const db::Query kJobById{"job_by_id", "SELECT " JOB_COLS " FROM job WHERE id = $1"};
// Claim: one job (the request's own) or the due ones (the worker). A processing job
// whose lock ran out (its node died mid-call) is due again; the service dedupes the
// replay by the job's key.
const db::Query kClaimOne{"job_claim_one",
                          "UPDATE job SET status = 'processing', attempts = attempts + 1, "
                          "locked_by = $2, locked_until = now() + interval '30 seconds', "
                          "updated_at = now() WHERE id = $1 AND status = 'queued' RETURNING id, "
                          "kind, request::text"};
const db::Query kClaimDue{
    "job_claim_due",
    "UPDATE job SET status = 'processing', attempts = attempts + 1, locked_by = $1, "
    "locked_until = now() + interval '30 seconds', updated_at = now() WHERE id IN (SELECT id FROM "
    "job WHERE (status = 'queued' AND next_attempt_at <= now()) OR (status = 'processing' AND "
    "locked_until < now()) ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING "
    "id, kind, request::text"};
// Completion happens once: only a job not yet finished is finished, and only then does
// a payment reduce its invoice.
const db::Query kSucceedPayment{
    "job_succeed_payment",
    "WITH j AS (UPDATE job SET status = 'succeeded', result = $2::jsonb, finished_at = now(), "
    "updated_at = now(), locked_by = NULL, last_error = NULL WHERE id = $1 AND status IN "
    "('queued', 'processing') RETURNING request) UPDATE invoice i SET paid_cents = "
    "LEAST(i.amount_cents, i.paid_cents + (j.request->>'amount_cents')::bigint), status = CASE "
    "WHEN i.paid_cents + (j.request->>'amount_cents')::bigint >= i.amount_cents THEN 'balanced' "
    "ELSE i.status END, updated_at = now() FROM j WHERE i.id = (j.request->>'invoice')::bigint"};
const db::Query kSucceed{"job_succeed",
                         "UPDATE job SET status = 'succeeded', result = $2::jsonb, finished_at = "
                         "now(), updated_at = now(), locked_by = NULL, last_error = NULL WHERE id "
                         "= $1 AND status IN ('queued', 'processing')"};
const db::Query kFail{"job_fail",
                      "UPDATE job SET status = 'failed', result = $2::jsonb, last_error = $3, "
                      "finished_at = now(), updated_at = now(), locked_by = NULL WHERE id = $1 "
                      "AND status IN ('queued', 'processing')"};
const db::Query kRelease{
    "job_release",
    "UPDATE job SET status = 'queued', locked_by = NULL, last_error = $2, next_attempt_at = now() "
    "+ make_interval(secs => LEAST(60, power(2, LEAST(attempts, 6)))::float8), updated_at = now() "
    "WHERE id = $1 AND status = 'processing'"};

// ---- JSON
}  // namespace

namespace {

json::object JobJson(const db::Result& r, int i, const std::string& base) {
  json::object o{
      {"id", r.get(i, 0)},      {"kind", r.get(i, 1)},
      {"status", r.get(i, 5)},  {"attempts", r.get_int(i, 6)},
      {"created", r.get(i, 9)}, {"url", base + "/api/v1/jobs/" + std::string(r.get(i, 0))}};
  if (!r.null(i, 10)) o["finished"] = r.get(i, 10);
  if (!r.null(i, 8)) {
    boost::system::error_code ec;
    auto v = json::parse(r.get(i, 8), ec);
    if (!ec) o["result"] = v;
  }
  if (!r.null(i, 7) && r.get(i, 5) != "succeeded") o["last_error"] = r.get(i, 7);
  return o;
}

std::string ApiBase(const RequestContext& ctx) {
  std::string b = ctx.BaseUrl();  // .../fhir/R4
  return b.substr(0, b.size() - 8);
}

// ---- processing one claimed job against its service
enum class Outcome { kSucceeded, kFailed, kRetryLater };

struct Attempt {
  Outcome outcome;
  std::string result;  // JSON
  std::string error;
};

asio::awaitable<Attempt> CallService(Services& svc, const std::string& id, const std::string& kind,
                                     const std::string& request_text) {
  const char* dep_name = kind == "payment"  ? "payments"
                         : kind == "refill" ? "pharmacy"
                                            : "insurance";
  deps::Dependency* dep = svc.deps ? svc.deps->Find(dep_name) : nullptr;
  if (!dep)
    co_return Attempt{Outcome::kRetryLater, "", std::string(dep_name) + " is not configured"};
  json::object req = json::parse(request_text).as_object();
  std::string path, body;
  if (kind == "payment") {
    path = "/v1/charges";
    body = json::serialize(
        json::object{{"amount_cents", req.at("amount_cents")},
                     {"currency", "USD"},
                     {"reference", "invoice-" + std::string(req.at("invoice").as_string())}});
  } else if (kind == "refill") {
    path = "/v1/refills";
    body = json::serialize(
        json::object{{"prescription", req.at("prescription")}, {"patient", req.at("patient")}});
  } else {
    path = "/v1/eligibility";
    body = json::serialize(json::object{{"member_id", req.at("member_id")},
                                        {"payer", req.at("payer")},
                                        {"service", req.at("service")}});
  }
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Idempotency-Key", "continuum-job-" + id);
  std::exception_ptr down;
  http::ClientResponse r;
  try {
    r = co_await dep->Call("POST", path, body, headers, /*idempotent=*/true);
  } catch (const deps::DependencyDown& e) {
    co_return Attempt{Outcome::kRetryLater, "", e.what()};
  }
  boost::system::error_code ec;
  auto parsed = json::parse(r.body, ec);
  std::string result =
      ec ? json::serialize(json::object{{"http_status", r.status}}) : json::serialize(parsed);
  if (r.status >= 200 && r.status < 300) co_return Attempt{Outcome::kSucceeded, result, ""};
  // The service answered and refused (declined card, invalid member): final.
  std::string why = "HTTP " + std::to_string(r.status);
  if (!ec && parsed.is_object())
    if (auto* m = parsed.as_object().if_contains("error"); m && m->is_string())
      why = std::string(m->as_string());
  co_return Attempt{Outcome::kFailed, result, why};
}

// Records the attempt's outcome. Returns the outcome.
asio::awaitable<Outcome> Process(RequestContext& ctx, const std::string& id,
                                 const std::string& kind, const std::string& request_text) {
  Attempt a = co_await CallService(ctx.svc, id, kind, request_text);
  switch (a.outcome) {
    case Outcome::kSucceeded:
      co_await ctx.Write(kind == "payment" ? kSucceedPayment : kSucceed, db::P(id, a.result), true);
      break;
    case Outcome::kFailed:
      co_await ctx.Write(kFail, db::P(id, a.result, a.error), true);
      break;
    case Outcome::kRetryLater:
      co_await ctx.Write(kRelease, db::P(id, a.error), true);
      break;
  }
  co_return a.outcome;
}

}  // namespace

std::string RefOrId(const json::object& o, const char* key, std::string_view type) {
  auto* v = o.if_contains(key);
  std::string s;
  if (v && v->is_string())
    s = std::string(v->as_string());
  else if (v && v->is_int64())
    s = std::to_string(v->as_int64());
  else
    throw BadRequest(std::string(key) + " is required: \"" + std::string(type) + "/{id}\".",
                     "required");
  std::string prefix = std::string(type) + "/";
  if (s.starts_with(prefix)) s = s.substr(prefix.size());
  return std::to_string(ParseId(s, type));
}

// Enqueue (exactly once per key), try at once, answer 200/201 with the result or 202
// with the job's URL.
asio::awaitable<http::Response> Submit(RequestContext& ctx, audit::Record& rec,
                                       const std::string& kind, const std::string& patient_id,
                                       const std::string& request, const std::string& key) {
  const std::string account = std::to_string(ctx.claims->account_id);
  auto ins = co_await ctx.Write(kEnqueue, db::P(kind, patient_id, account, key, request), true);
  std::string base = ApiBase(ctx);
  db::Result job;
  bool replay = ins.rows() == 0;
  std::string id;
  if (replay) {
    job = co_await ctx.Read(kJobByKey, db::P(account, kind, key));
    if (job.rows() == 0) throw Unavailable("The request could not be queued; please retry.");
    boost::system::error_code ec;
    if (json::parse(job.get(0, 4), ec) != json::parse(request, ec)) {
      ctx.AuditOutcome("failure", "idempotency key reused for a different request");
      throw Conflict("This Idempotency-Key was already used for a different request.");
    }
    id = std::string(job.get(0, 0));
  } else {
    id = std::string(ins.get(0, 0));
    // Try now, unless the service is known to be down (its breaker is open).
    auto claim = co_await ctx.Write(kClaimOne, db::P(id, ctx.svc.config.node_id));
    if (claim.rows() == 1) co_await Process(ctx, id, kind, request);
    job = co_await ctx.Read(kJobById, db::P(id));
  }
  rec.resource_id = id;
  rec.outcome = "success";
  std::string status(job.get(0, 5));
  json::object body = JobJson(job, 0, base);
  http::Response resp;
  if (status == "succeeded" || status == "failed") {
    resp = fhir::Json(replay ? 200 : 201, body);
    if (status == "failed") resp.status = replay ? 200 : 422;
  } else {
    body["message"] =
        "Your request is saved and will be completed as soon as the service is back. Check its "
        "status at the url above; nothing is charged twice.";
    resp = fhir::Json(202, body);
    resp.set_header("X-Continuum-Degraded", "queued");
    resp.set_header("Retry-After", "5");
  }
  resp.content_type = "application/json";
  resp.set_header("Location", base + "/api/v1/jobs/" + id);
  if (replay) resp.set_header("Idempotent-Replayed", "true");
  co_return resp;
}

asio::awaitable<bool> JobExists(RequestContext& ctx, const std::string& kind,
                                const std::string& key) {
  auto r = co_await ctx.Read(kJobByKey, db::P(std::to_string(ctx.claims->account_id), kind, key));
  co_return r.rows() > 0;
}

std::string RequiredKey(RequestContext& ctx) {
  std::string key = IdempotencyKey(ctx);
  if (key.empty())
    throw BadRequest(
        "An Idempotency-Key header is required, so that a retried request is never processed "
        "twice.",
        "required");
  return key;
}

asio::awaitable<http::Response> ReadJob(RequestContext& ctx) {
  const std::string& raw = ctx.req.path_params[0];
  auto& rec = ctx.Audit("read", "Task", raw.substr(0, 64));
  Authenticate(ctx);
  std::string id = std::to_string(ParseId(raw, "Task"));
  auto r = co_await ctx.Read(kJobById, db::P(id));
  if (r.rows() == 0 || std::to_string(ctx.claims->account_id) != r.get(0, 3)) {
    rec.outcome = "failure";
    throw NotFound("There is no request " + id + " of yours.");
  }
  rec.patient_id = std::string(r.get(0, 2));
  rec.outcome = "success";
  auto resp = fhir::Json(200, JobJson(r, 0, ApiBase(ctx)));
  resp.content_type = "application/json";
  std::string status(r.get(0, 5));
  if (status == "queued" || status == "processing")
    resp.set_header("X-Continuum-Degraded", "queued");
  co_return resp;
}

asio::awaitable<void> JobWorker(Shard& shard, Services& svc, const std::atomic<bool>& stop) {
  asio::steady_timer timer(shard.executor);
  bool warned = false;
  while (!stop.load()) {
    http::Request req;
    auto ctx = RequestContext::Background(
        req, svc, shard, Tier::kMedium, "jobs.worker",
        std::chrono::milliseconds(svc.config.limits(Tier::kMedium).deadline_ms));
    try {
      auto due = co_await ctx.Write(kClaimDue, db::P(svc.config.node_id, 10));
      for (int i = 0; i < due.rows() && !stop.load(); ++i) {
        ctx.deadline = Deadline::After(
            std::chrono::milliseconds(svc.config.limits(Tier::kMedium).deadline_ms));
        auto outcome = co_await Process(ctx, due.str(i, 0), due.str(i, 1), due.str(i, 2));
        if (outcome != Outcome::kRetryLater)
          log::Info("job {} ({}) {}", due.str(i, 0), due.str(i, 1),
                    outcome == Outcome::kSucceeded ? "succeeded" : "failed for good");
      }
      warned = false;
    } catch (const std::exception& e) {
      if (!warned) log::Warn("job worker: {}", e.what());
      warned = true;
    }
    timer.expires_after(std::chrono::milliseconds(svc.config.job_poll_ms));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}
}  // namespace continuum::portal::medium
