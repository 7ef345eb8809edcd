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
                         "idempotency_key) DO NOTHING RETURNING id",
                         db::Access::kWrite};
const db::Query kJobByKey{"job_by_key",
                          "SELECT " JOB_COLS
                          " FROM job WHERE account_id = $1 AND kind = $2 AND "
                          "idempotency_key = $3",
                          db::Access::kRead};
const db::Query kJobById{"job_by_id", "SELECT " JOB_COLS " FROM job WHERE id = $1",
                         db::Access::kRead};
// Claim: one job (the request's own) or the next due one (the worker). A processing job
// whose lock ran out (its node died mid-call) is due again; the service dedupes the
// replay by the job's key.
//
// One job per claim, processed at once (issue 10, item 12): the worker used to claim ten
// under one 30 s lock and run them one after another, so the lock of the last ones could
// run out mid-batch and another node re-ran them. Now each claim's lock (jobs.lock_ms,
// 30 s) covers one attempt, itself bounded by the medium deadline. A job that has had
// jobs.max_attempts attempts (8) is not claimed again: it fails for good (job_give_up),
// which also ends a payment's reservation on its invoice. A payment given up after a
// lock ran out may have been charged by the processor: its last_error says so, for
// reconciliation by the billing office.
const db::Query kClaimOne{"job_claim_one",
                          "UPDATE job SET status = 'processing', attempts = attempts + 1, "
                          "locked_by = $2, locked_until = now() + make_interval(secs => "
                          "$3::float8 / 1000), updated_at = now() WHERE id = $1 AND status = "
                          "'queued' RETURNING id, kind, request::text",
                          db::Access::kWrite};
//
// A job no attempt has claimed yet is left to the request that enqueued it for its first
// 2 s (`created_at`): that request claims it (kClaimOne) right after the insert and answers
// with the outcome. Without the grace a worker polling meanwhile (on any node) took it
// first, and a patient paying while the processor was up got "queued" (202) instead of
// "paid" (201): seen under the ASan build's slower requests. A request that dies between
// insert and claim leaves the job to the workers 2 s later.
const db::Query kClaimDue{
    "job_claim_due",
    "UPDATE job SET status = 'processing', attempts = attempts + 1, locked_by = $1, "
    "locked_until = now() + make_interval(secs => $2::float8 / 1000), updated_at = now() WHERE "
    "id = (SELECT id FROM job WHERE ((status = 'queued' AND next_attempt_at <= now() AND "
    "(attempts > 0 OR created_at <= now() - interval '2 seconds')) OR (status = 'processing' AND "
    "locked_until < now())) AND attempts < $3 AND kind = ANY(string_to_array($4, ',')) ORDER BY "
    "next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, kind, request::text",
    db::Access::kWrite};
const db::Query kGiveUp{
    "job_give_up",
    "UPDATE job SET status = 'failed', finished_at = now(), updated_at = now(), locked_by = NULL, "
    "last_error = 'gave up after ' || attempts || ' attempts' || CASE WHEN status = "
    "'processing' THEN ' (the last one did not finish: the service may have acted on it)' ELSE "
    "'' END || COALESCE(': ' || last_error, '') WHERE id IN (SELECT id FROM job WHERE ((status "
    "= 'queued' AND next_attempt_at <= now()) OR (status = 'processing' AND locked_until < "
    "now())) AND attempts >= $1 LIMIT 100 FOR UPDATE SKIP LOCKED)",
    db::Access::kWrite};
// Completion happens once: only a job not yet finished is finished, and only then does
// a payment reduce its invoice.
const db::Query kSucceedPayment{
    "job_succeed_payment",
    "WITH j AS (UPDATE job SET status = 'succeeded', result = $2::jsonb, finished_at = now(), "
    "updated_at = now(), locked_by = NULL, last_error = NULL WHERE id = $1 AND status IN "
    "('queued', 'processing') RETURNING request) UPDATE invoice i SET paid_cents = "
    "LEAST(i.amount_cents, i.paid_cents + (j.request->>'amount_cents')::bigint), status = CASE "
    "WHEN i.paid_cents + (j.request->>'amount_cents')::bigint >= i.amount_cents THEN 'balanced' "
    "ELSE i.status END, updated_at = now() FROM j WHERE i.id = (j.request->>'invoice')::bigint",
    db::Access::kWrite};
const db::Query kSucceed{"job_succeed",
                         "UPDATE job SET status = 'succeeded', result = $2::jsonb, finished_at = "
                         "now(), updated_at = now(), locked_by = NULL, last_error = NULL WHERE id "
                         "= $1 AND status IN ('queued', 'processing')",
                         db::Access::kWrite};
const db::Query kFail{"job_fail",
                      "UPDATE job SET status = 'failed', result = $2::jsonb, last_error = $3, "
                      "finished_at = now(), updated_at = now(), locked_by = NULL WHERE id = $1 "
                      "AND status IN ('queued', 'processing')",
                      db::Access::kWrite};
const db::Query kRelease{
    "job_release",
    "UPDATE job SET status = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'queued' END, "
    "finished_at = CASE WHEN attempts >= $3 THEN now() END, locked_by = NULL, last_error = CASE "
    "WHEN attempts >= $3 THEN 'gave up after ' || attempts || ' attempts: ' || $2 ELSE $2 END, "
    "next_attempt_at = now() + make_interval(secs => LEAST(60, power(2, LEAST(attempts, "
    "6)))::float8), updated_at = now() WHERE id = $1 AND status = 'processing'",
    db::Access::kWrite};
// The payment's own enqueue: reserves the amount on the invoice (db 0017).
const db::Query kEnqueuePayment{
    "job_enqueue_payment",
    "SELECT job_id, outcome, open_cents FROM continuum_enqueue_payment($1, $2, $3, $4, $5, "
    "$6::jsonb)",
    db::Access::kWrite};

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

const char* DependencyOf(std::string_view kind) {
  return kind == "payment" ? "payments" : kind == "refill" ? "pharmacy" : "insurance";
}

bool CanProcess(const Services& svc, std::string_view kind) {
  return svc.deps && svc.deps->Find(DependencyOf(kind)) != nullptr;
}

// The kinds of job this node can run (its dependency configured), comma-separated: a node
// without, say, the payments service never claims a payment (each claim spends an attempt).
std::string ClaimableKinds(const Services& svc) {
  std::string out;
  for (const char* kind : {"payment", "refill", "eligibility"})
    if (CanProcess(svc, kind)) out += (out.empty() ? "" : ",") + std::string(kind);
  return out;
}

asio::awaitable<Attempt> CallService(Services& svc, const std::string& id, const std::string& kind,
                                     const std::string& request_text) {
  const char* dep_name = DependencyOf(kind);
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
      co_await ctx.Write(kRelease, db::P(id, a.error, ctx.svc.config.job_max_attempts), true);
      break;
  }
  co_return a.outcome;
}

}  // namespace

// Tries a job just enqueued (unless `replay`), then answers with its state.
asio::awaitable<http::Response> Continue(RequestContext& ctx, audit::Record& rec,
                                         const std::string& kind, const std::string& request,
                                         const std::string& id, bool replay);

// Enqueue (exactly once per key), try at once, answer 200/201 with the result or 202
// with the job's URL.
asio::awaitable<http::Response> Submit(RequestContext& ctx, audit::Record& rec,
                                       const std::string& kind, const std::string& patient_id,
                                       const std::string& request, const std::string& key) {
  const std::string account = std::to_string(ctx.claims->account_id);
  auto ins = co_await ctx.Write(kEnqueue, db::P(kind, patient_id, account, key, request), true);
  std::string id;
  bool replay = ins.rows() == 0;
  if (replay) {
    auto job = co_await ctx.Read(kJobByKey, db::P(account, kind, key));
    if (job.rows() == 0) throw Unavailable("The request could not be queued; please retry.");
    boost::system::error_code ec;
    if (json::parse(job.get(0, 4), ec) != json::parse(request, ec)) {
      ctx.AuditOutcome("failure", "idempotency key reused for a different request");
      throw Conflict("This Idempotency-Key was already used for a different request.");
    }
    id = std::string(job.get(0, 0));
  } else {
    id = std::string(ins.get(0, 0));
  }
  co_return co_await Continue(ctx, rec, kind, request, id, replay);
}

asio::awaitable<http::Response> SubmitPayment(RequestContext& ctx, audit::Record& rec,
                                              const std::string& patient_id,
                                              const std::string& invoice, int64_t amount_cents,
                                              const std::string& key) {
  const std::string account = std::to_string(ctx.claims->account_id);
  std::string request = json::serialize(
      json::object{{"invoice", invoice}, {"amount_cents", amount_cents}, {"currency", "USD"}});
  // One transaction on the primary: the invoice row is locked, the key looked up, the
  // open amount (minus other pending payments) checked and the job inserted.
  auto r = co_await ctx.Write(kEnqueuePayment,
                              db::P(patient_id, account, key, invoice, amount_cents, request),
                              /*idempotent=*/true);
  std::string outcome = r.str(0, 1);
  if (outcome == "not-found") {
    ctx.AuditOutcome("failure", "not the patient's invoice");
    throw NotFound("Invoice/" + invoice + " is not one of your invoices.");
  }
  if (outcome == "key-reused") {
    ctx.AuditOutcome("failure", "idempotency key reused for a different request");
    throw Conflict("This Idempotency-Key was already used for a different request.");
  }
  if (outcome == "not-open") {
    ctx.AuditOutcome("failure", "invoice not open");
    throw Conflict("Invoice/" + invoice + " is already paid.");
  }
  if (outcome == "exceeds") {
    ctx.AuditOutcome("failure", "amount exceeds the open balance");
    throw BadRequest(
        "amount_cents exceeds what is owed on this invoice, counting payments in "
        "progress (" +
            r.str(0, 2) + " cents open).",
        "business-rule");
  }
  co_return co_await Continue(ctx, rec, "payment", request, r.str(0, 0), outcome == "replayed");
}

asio::awaitable<http::Response> Continue(RequestContext& ctx, audit::Record& rec,
                                         const std::string& kind, const std::string& request,
                                         const std::string& id, bool replay) {
  std::string base = ApiBase(ctx);
  db::Result job;
  if (!replay && CanProcess(ctx.svc, kind)) {
    // Try now, unless the service is known to be down (its breaker is open).
    auto claim = co_await ctx.Write(kClaimOne,
                                    db::P(id, ctx.svc.config.node_id, ctx.svc.config.job_lock_ms));
    if (claim.rows() == 1) co_await Process(ctx, id, kind, request);
  }
  // From the primary: a replica may not have the job (or its completion) yet.
  job = co_await ctx.Write(kJobById, db::P(id));
  if (job.rows() == 0) throw Unavailable("The request could not be queued; please retry.");
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
  const std::string kinds = ClaimableKinds(svc);
  while (!stop.load()) {
    http::Request req;
    auto ctx = RequestContext::Background(
        req, svc, shard, Tier::kMedium, "jobs.worker",
        std::chrono::milliseconds(svc.config.limits(Tier::kMedium).deadline_ms));
    try {
      co_await ctx.Write(kGiveUp, db::P(svc.config.job_max_attempts));
      // Up to ten jobs per poll, each claimed (and locked) just before it runs.
      for (int i = 0; i < 10 && !stop.load() && !kinds.empty(); ++i) {
        ctx.deadline = Deadline::After(
            std::chrono::milliseconds(svc.config.limits(Tier::kMedium).deadline_ms));
        auto due = co_await ctx.Write(kClaimDue, db::P(svc.config.node_id, svc.config.job_lock_ms,
                                                       svc.config.job_max_attempts, kinds));
        if (due.rows() == 0) break;
        auto outcome = co_await Process(ctx, due.str(0, 0), due.str(0, 1), due.str(0, 2));
        if (outcome != Outcome::kRetryLater)
          log::Info("job {} ({}) {}", due.str(0, 0), due.str(0, 1),
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
