#include "portal/ops_api.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "core/error.hpp"
#include "core/log.hpp"
#include "db/sql.hpp"
#include "fhir/fhir.hpp"
#include "http/client.hpp"
#include "portal/bodies.hpp"
#include "portal/ops_payloads.hpp"

namespace continuum::portal::ops {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// ---- queries: all operational data (synchronous_commit = local)
#define TS CONTINUUM_SQL_UTC_MS
#define FROM_US CONTINUUM_SQL_FROM_UNIX_US
#define ALERT_COLS                                                                  \
  "fingerprint, alertname, severity, status, labels::text, annotations::text, " TS( \
      "starts_at") ", " TS("ends_at") ", " TS("received_at") ", received_by"

constexpr auto kOperational = db::DataClass::kOperational;

const db::Query kInsertAlert{
    "ops_alert_insert",
    "INSERT INTO ops_alert (fingerprint, alertname, severity, status, labels, annotations, "
    "starts_at, ends_at, received_by, received_at) VALUES ($1, $2, $3, $4, $5::jsonb, "
    "$6::jsonb, " FROM_US("$7") ", " FROM_US("$8") ", $9, " FROM_US(
        "$10") ") ON CONFLICT (fingerprint, starts_at, status) DO NOTHING",
    db::Access::kWrite, kOperational};
// Bounded, so a backlog of old rows is worked off a thousand at a time.
const db::Query kTrimAlerts{"ops_alert_trim",
                            "DELETE FROM ops_alert WHERE id IN (SELECT id FROM ops_alert WHERE "
                            "received_at < now() - make_interval(days => $1::int) ORDER BY "
                            "received_at LIMIT 1000)",
                            db::Access::kWrite, kOperational};
const db::Query kListAlerts{
    "ops_alert_list",
    "SELECT " ALERT_COLS
    " FROM ops_alert WHERE ($1::bigint IS NULL OR received_at >= " FROM_US(
        "$1") ") AND ($2::text IS NULL OR status = $2::text) AND ($3::text IS NULL OR alertname "
              "= $3::text) ORDER BY received_at DESC, id DESC LIMIT $4::int", db::Access::kRead,
    kOperational};
// An alert is firing now when the latest state received for its fingerprint is: the
// newest startsAt wins, and for the same startsAt a resolution beats a firing (in
// whichever order they arrived).
const db::Query kFiringAlerts{
    "ops_alert_firing",
    "SELECT " ALERT_COLS
    " FROM (SELECT DISTINCT ON (fingerprint) * FROM ops_alert ORDER BY fingerprint, starts_at "
    "DESC, (status = 'resolved') DESC) a WHERE status = 'firing' ORDER BY starts_at DESC, "
    "fingerprint LIMIT 500",
    db::Access::kRead, kOperational};
const db::Query kInsertRun{
    "ops_journey_run_insert",
    "INSERT INTO ops_journey_run (journey, vantage, target, started_at, finished_at, success, "
    "failed_step, error, steps, received_by) VALUES ($1, $2, $3, " FROM_US("$4") ", " FROM_US(
        "$5") ", $6::boolean, $7, $8, $9::jsonb, $10) ON CONFLICT (journey, vantage, started_at) "
              "DO NOTHING", db::Access::kWrite,
    kOperational};
const db::Query kTrimRuns{
    "ops_journey_run_trim",
    "DELETE FROM ops_journey_run WHERE id IN (SELECT id FROM ops_journey_run WHERE journey = $1 "
    "AND vantage = $2 ORDER BY started_at DESC OFFSET $3::int)",
    db::Access::kWrite, kOperational};
const db::Query kLastRuns{
    "ops_journey_last_runs",
    "SELECT DISTINCT ON (journey, vantage) journey, vantage, target, " TS("started_at") ", " TS(
        "finished_at") ", success, failed_step, error, steps::text, " TS("received_at") ", "
                       "received_by, round(extract(epoch FROM now() - finished_at))::bigint "
                       "FROM ops_journey_run ORDER BY journey, vantage, started_at DESC", db::Access::kRead,
    kOperational};
const db::Query kUpsertReport{
    "ops_report_upsert",
    "INSERT INTO ops_report (kind, id, title, outcome, started_at, ended_at, text_report, report, "
    "received_by) VALUES ($1, $2, $3, $4, " FROM_US("$5") ", " FROM_US(
        "$6") ", $7, $8::jsonb, $9) ON CONFLICT (kind, id) DO UPDATE SET title = EXCLUDED.title, "
              "outcome = EXCLUDED.outcome, started_at = EXCLUDED.started_at, ended_at = "
              "EXCLUDED.ended_at, text_report = EXCLUDED.text_report, report = EXCLUDED.report, "
              "updated_at = now(), received_by = EXCLUDED.received_by RETURNING (xmax = 0)",
    db::Access::kWrite, kOperational};
// Bounded, like the alerts' trim.
const db::Query kTrimReports{
    "ops_report_trim",
    "DELETE FROM ops_report WHERE (kind, id) IN (SELECT kind, id FROM ops_report ORDER BY "
    "started_at DESC OFFSET $1::int LIMIT 100)",
    db::Access::kWrite, kOperational};
#define REPORT_COLS                                                          \
  "kind, id, title, outcome, " TS("started_at") ", " TS("ended_at") ", " TS( \
      "updated_at") ", received_by"
const db::Query kListReports{"ops_report_list",
                             "SELECT " REPORT_COLS
                             " FROM ops_report WHERE ($1::text IS NULL OR kind = $1::text) "
                             "ORDER BY started_at DESC, id DESC LIMIT $2::int",
                             db::Access::kRead, kOperational};
const db::Query kReadReport{"ops_report_read",
                            "SELECT " REPORT_COLS
                            ", text_report, report::text FROM ops_report WHERE kind = $1 AND "
                            "id = $2",
                            db::Access::kRead, kOperational};
#undef REPORT_COLS
#undef TS
#undef FROM_US

struct Counters {
  std::atomic<uint64_t> alerts_firing{0};
  std::atomic<uint64_t> alerts_resolved{0};
  std::atomic<uint64_t> journey_runs{0};
  std::atomic<uint64_t> refused_no_token{0};
  std::atomic<uint64_t> refused_wrong_token{0};
  std::atomic<uint64_t> refused_disabled{0};
  std::atomic<uint64_t> refused_invalid_body{0};
};
Counters g_counters;

json::value ParseStored(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

json::object AlertJson(const db::Result& r, int i) {
  auto opt = [&](int col) -> json::value {
    return r.null(i, col) ? json::value(nullptr) : json::value(r.get(i, col));
  };
  return json::object{{"fingerprint", r.get(i, 0)},
                      {"alertname", r.get(i, 1)},
                      {"severity", r.get(i, 2)},
                      {"status", r.get(i, 3)},
                      {"labels", ParseStored(r.get(i, 4))},
                      {"annotations", ParseStored(r.get(i, 5))},
                      {"starts_at", r.get(i, 6)},
                      {"ends_at", opt(7)},
                      {"received_at", r.get(i, 8)},
                      {"received_by", r.get(i, 9)}};
}

json::object RunJson(const db::Result& r, int i) {
  auto opt = [&](int col) -> json::value {
    return r.null(i, col) ? json::value(nullptr) : json::value(r.get(i, col));
  };
  return json::object{{"journey", r.get(i, 0)},
                      {"vantage", r.get(i, 1)},
                      {"target", r.get(i, 2)},
                      {"started_at", r.get(i, 3)},
                      {"finished_at", r.get(i, 4)},
                      {"success", r.get_bool(i, 5)},
                      {"failed_step", opt(6)},
                      {"error", opt(7)},
                      {"steps", ParseStored(r.get(i, 8))},
                      {"received_at", r.get(i, 9)},
                      {"received_by", r.get(i, 10)},
                      {"age_s", r.get_int(i, 11)}};
}

}  // namespace

void NoteRefusedBody(RequestContext& ctx, const std::exception& e) {
  g_counters.refused_invalid_body.fetch_add(1, std::memory_order_relaxed);
  log::Event(
      spdlog::level::warn,
      fmt::format(R"("event":"ops_request_refused","route":"{}","reason":"invalid_body",)"
                  R"("detail":"{}","client":"{}","request_id":"{}")",
                  ctx.route, log::JsonEscape(e.what()), log::JsonEscape(ctx.req.client_address),
                  log::JsonEscape(ctx.req.request_id)));
}

http::Response JsonResponse(int status, const json::value& v) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(v);
  r.set_header("Cache-Control", "no-store");
  return r;
}

namespace {

// Parses a body with `parse`, counting and logging a refusal (the sender is a machine
// whose bug someone has to notice).
template <typename F>
auto ParseOrRefuse(RequestContext& ctx, F parse) {
  try {
    return parse(ctx.req);
  } catch (const Error& e) {
    NoteRefusedBody(ctx, e);
    throw;
  }
}

template <typename E>
[[noreturn]] void Refuse(RequestContext& ctx, std::atomic<uint64_t>& counter, const char* reason,
                         E error) {
  counter.fetch_add(1, std::memory_order_relaxed);
  log::Event(spdlog::level::warn,
             fmt::format(R"("event":"ops_token_refused","route":"{}","reason":"{}",)"
                         R"("client":"{}","request_id":"{}")",
                         ctx.route, reason, log::JsonEscape(ctx.req.client_address),
                         log::JsonEscape(ctx.req.request_id)));
  // A denial like any other: in the audit trail (anonymous caller, the client's address,
  // the request id), durable before the refusal is sent. The route's own record, when it
  // opened one, is marked instead.
  if (ctx.audit.empty()) ctx.Audit(ctx.req.method == "GET" ? "read" : "create");
  ctx.AuditOutcome("denied", fmt::format("ops token required on {}: {}", ctx.route, reason));
  throw error;
}

// Hashing both sides first makes the comparison's time independent of the tokens'
// contents and lengths.
bool TokenEquals(std::string_view presented, std::string_view expected) {
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) return false;
  unsigned char a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
  crypto_generichash(a, sizeof a, reinterpret_cast<const unsigned char*>(presented.data()),
                     presented.size(), nullptr, 0);
  crypto_generichash(b, sizeof b, reinterpret_cast<const unsigned char*>(expected.data()),
                     expected.size(), nullptr, 0);
  return sodium_memcmp(a, b, sizeof a) == 0;
}

}  // namespace

Secret LoadOpsToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("ops token file " + path +
                             " ([ops] token_file) cannot be read; create it with one line of hex, "
                             "e.g. python3 -c 'import secrets;print(secrets.token_hex(32))'");
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string token = buf.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  bool hex = !token.empty();
  for (char c : token) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
  if (!hex || token.size() < 32)
    throw std::runtime_error("ops token file " + path +
                             " must hold one line of at least 32 hex characters");
  return Secret(std::move(token));
}

OpsTokenCheck CheckOpsToken(std::string_view authorization, std::string_view expected) {
  if (expected.empty()) return OpsTokenCheck::kNotConfigured;
  if (authorization.empty()) return OpsTokenCheck::kNoToken;
  if (authorization.size() < 8 ||
      (authorization.substr(0, 7) != "Bearer " && authorization.substr(0, 7) != "bearer "))
    return OpsTokenCheck::kMalformed;
  return TokenEquals(authorization.substr(7), expected) ? OpsTokenCheck::kOk
                                                        : OpsTokenCheck::kWrongToken;
}

void RequireOpsToken(RequestContext& ctx) {
  switch (CheckOpsToken(ctx.req.header("authorization"), ctx.svc.ops_token.reveal())) {
    case OpsTokenCheck::kOk:
      return;
    case OpsTokenCheck::kNotConfigured:
      Refuse(ctx, g_counters.refused_disabled, "not_configured",
             Forbidden("The ops API is disabled on this node: its configuration has no [ops] "
                       "token_file."));
    case OpsTokenCheck::kNoToken:
      Refuse(ctx, g_counters.refused_no_token, "no_token",
             Unauthorized("This endpoint needs the ops token: send Authorization: Bearer <the "
                          "token in the node's [ops] token_file>."));
    case OpsTokenCheck::kMalformed:
      Refuse(ctx, g_counters.refused_no_token, "malformed",
             Unauthorized("The Authorization header must be of the form 'Bearer <ops token>'."));
    case OpsTokenCheck::kWrongToken:
      Refuse(ctx, g_counters.refused_wrong_token, "wrong_token",
             Forbidden("This is not the ops token of this node ([ops] token_file)."));
  }
}

asio::awaitable<http::Response> ReceiveAlerts(RequestContext& ctx) {
  // The time the alert reached this node, not the time its row commits: while no primary
  // is reachable the insert waits, and time-to-detect is measured from received_at.
  const std::string received_us =
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  AlertBatch batch = ParseOrRefuse(ctx, ParseAlertsBody);
  // One order for every sender, so two deliveries of the same group (two Alertmanagers)
  // insert their rows in the same order and cannot deadlock.
  std::sort(batch.alerts.begin(), batch.alerts.end(), [](const auto& a, const auto& b) {
    return std::tie(a.fingerprint, a.starts_at, a.status) <
           std::tie(b.fingerprint, b.starts_at, b.status);
  });
  std::vector<db::Statement> stmts;
  for (const auto& a : batch.alerts) {
    std::optional<std::string> ends;
    if (a.ends_at) ends = std::to_string(*ParseRfc3339(*a.ends_at));
    db::Params p =
        db::P(a.fingerprint, a.alertname, a.severity, a.status, json::serialize(a.labels),
              json::serialize(a.annotations), std::to_string(*ParseRfc3339(a.starts_at)));
    p.push_back(ends ? db::Param(*ends) : db::Param(std::nullopt));
    p.emplace_back(ctx.svc.config.node_id);
    p.emplace_back(received_us);
    stmts.push_back({&kInsertAlert, std::move(p)});
  }
  stmts.push_back({&kTrimAlerts, db::P(kAlertRetentionDays)});
  // Replaying the batch is harmless: every insert is ON CONFLICT DO NOTHING.
  auto rs = co_await ctx.WriteBatch(std::move(stmts), /*idempotent=*/true);
  int64_t stored = 0;
  for (std::size_t i = 0; i < batch.alerts.size(); ++i) {
    const auto& a = batch.alerts[i];
    bool is_new = rs[i].affected() > 0;
    stored += is_new ? 1 : 0;
    (a.status == "firing" ? g_counters.alerts_firing : g_counters.alerts_resolved)
        .fetch_add(1, std::memory_order_relaxed);
    log::Event(spdlog::level::info,
               fmt::format(R"("event":"ops_alert","alertname":"{}","status":"{}",)"
                           R"("severity":"{}","fingerprint":"{}","starts_at":"{}",)"
                           R"("new":{},"receiver":"{}","request_id":"{}")",
                           log::JsonEscape(a.alertname), a.status, log::JsonEscape(a.severity),
                           log::JsonEscape(a.fingerprint), log::JsonEscape(a.starts_at), is_new,
                           log::JsonEscape(batch.receiver), log::JsonEscape(ctx.req.request_id)));
  }
  co_return JsonResponse(200, json::object{{"received", batch.alerts.size()}, {"stored", stored}});
}

asio::awaitable<http::Response> ListAlerts(RequestContext& ctx) {
  fhir::CheckParams(ctx.req, {"since", "status", "alertname", "limit"});
  db::Param since(std::nullopt), status(std::nullopt), alertname(std::nullopt);
  if (auto s = ctx.req.param("since")) {
    auto us = ParseRfc3339(*s);
    if (!us) throw BadRequest("since must be an RFC 3339 date-time such as 2026-12-02T10:00:00Z.");
    since = db::Param(std::to_string(*us));
  }
  if (auto s = ctx.req.param("status")) {
    if (*s != "firing" && *s != "resolved") throw BadRequest("status must be firing or resolved.");
    status = db::Param(*s);
  }
  if (auto s = ctx.req.param("alertname")) alertname = db::Param(*s);
  int limit = 200;
  if (auto s = ctx.req.param("limit")) {
    bool digits = !s->empty() && s->size() <= 4 &&
                  std::all_of(s->begin(), s->end(), [](char c) { return std::isdigit(c); });
    limit = digits ? std::stoi(*s) : 0;
    if (limit < 1 || limit > 1000) throw BadRequest("limit must be a whole number from 1 to 1000.");
  }
  auto r = co_await ctx.Read(kListAlerts, db::P(since, status, alertname, limit));
  json::array out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(AlertJson(r, i));
  co_return JsonResponse(200, out);
}

asio::awaitable<http::Response> ReceiveJourneyRun(RequestContext& ctx) {
  JourneyRun run = ParseOrRefuse(ctx, ParseJourneyRunBody);
  db::Params p =
      db::P(run.journey, run.vantage, run.target, std::to_string(*ParseRfc3339(run.started_at)),
            std::to_string(*ParseRfc3339(run.finished_at)), run.success);
  p.push_back(run.failed_step ? db::Param(*run.failed_step) : db::Param(std::nullopt));
  p.push_back(run.error ? db::Param(*run.error) : db::Param(std::nullopt));
  p.emplace_back(json::serialize(StepsJson(run.steps)));
  p.emplace_back(ctx.svc.config.node_id);
  std::vector<db::Statement> stmts;
  stmts.push_back({&kInsertRun, std::move(p)});
  stmts.push_back({&kTrimRuns, db::P(run.journey, run.vantage, kJourneyRunsKept)});
  auto rs = co_await ctx.WriteBatch(std::move(stmts), /*idempotent=*/true);
  bool stored = rs[0].affected() > 0;
  g_counters.journey_runs.fetch_add(1, std::memory_order_relaxed);
  log::Event(spdlog::level::info,
             fmt::format(R"("event":"ops_journey_run","journey":"{}","vantage":"{}",)"
                         R"("success":{},"failed_step":"{}","new":{},"request_id":"{}")",
                         run.journey, run.vantage, run.success,
                         log::JsonEscape(run.failed_step.value_or("")), stored,
                         log::JsonEscape(ctx.req.request_id)));
  co_return JsonResponse(stored ? 201 : 200, json::object{{"stored", stored}});
}

namespace {

json::object ReportJson(const db::Result& r, int i) {
  return json::object{{"kind", r.get(i, 0)},
                      {"id", r.get(i, 1)},
                      {"title", r.get(i, 2)},
                      {"outcome", r.get(i, 3)},
                      {"started_at", r.get(i, 4)},
                      {"ended_at", r.null(i, 5) ? json::value(nullptr) : json::value(r.get(i, 5))},
                      {"updated_at", r.get(i, 6)},
                      {"received_by", r.get(i, 7)}};
}

int IntParam(const http::Request& req, const char* name, int def, int lo, int hi) {
  auto s = req.param(name);
  if (!s) return def;
  bool digits = !s->empty() && s->size() <= 5 &&
                std::all_of(s->begin(), s->end(), [](char c) { return std::isdigit(c); });
  int v = digits ? std::stoi(*s) : lo - 1;
  if (v < lo || v > hi)
    throw BadRequest(fmt::format("{} must be a whole number from {} to {}.", name, lo, hi));
  return v;
}

std::string ReportKind(std::string_view kind) {
  if (kind != "rollout" && kind != "chaos-run" && kind != "chaos-day")
    throw BadRequest("kind must be rollout, chaos-run or chaos-day.");
  return std::string(kind);
}

}  // namespace

asio::awaitable<http::Response> ReceiveReport(RequestContext& ctx) {
  OpsReport rep = ParseOrRefuse(ctx, ParseOpsReportBody);
  db::Params p = db::P(rep.kind, rep.id, rep.title, rep.outcome,
                       std::to_string(*ParseRfc3339(rep.started_at)));
  p.push_back(rep.ended_at ? db::Param(std::to_string(*ParseRfc3339(*rep.ended_at)))
                           : db::Param(std::nullopt));
  p.emplace_back(rep.text);
  p.emplace_back(json::serialize(rep.report));
  p.emplace_back(ctx.svc.config.node_id);
  std::vector<db::Statement> stmts;
  stmts.push_back({&kUpsertReport, std::move(p)});
  stmts.push_back({&kTrimReports, db::P(kReportsKept)});
  // Sending the same version again stores the same row: safe to replay.
  auto rs = co_await ctx.WriteBatch(std::move(stmts), /*idempotent=*/true);
  bool created = rs[0].rows() > 0 && rs[0].get_bool(0, 0);
  log::Event(spdlog::level::info,
             fmt::format(R"("event":"ops_report","kind":"{}","id":"{}","outcome":"{}",)"
                         R"("new":{},"request_id":"{}")",
                         rep.kind, rep.id, log::JsonEscape(rep.outcome), created,
                         log::JsonEscape(ctx.req.request_id)));
  co_return JsonResponse(created ? 201 : 200, json::object{{"kind", rep.kind}, {"id", rep.id}});
}

asio::awaitable<http::Response> ListReports(RequestContext& ctx) {
  fhir::CheckParams(ctx.req, {"kind", "limit"});
  db::Param kind(std::nullopt);
  if (auto k = ctx.req.param("kind")) kind = db::Param(ReportKind(*k));
  int limit = IntParam(ctx.req, "limit", 50, 1, 500);
  auto r = co_await ctx.Read(kListReports, db::P(kind, limit));
  json::array out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(ReportJson(r, i));
  co_return JsonResponse(200, out);
}

asio::awaitable<http::Response> ReadReport(RequestContext& ctx) {
  fhir::CheckParams(ctx.req, {});
  std::string kind = ReportKind(ctx.req.path_params[0]);
  const std::string& id = ctx.req.path_params[1];
  if (id.empty() || id.size() > 64) throw BadRequest("A report id is 1 to 64 characters long.");
  auto r = co_await ctx.Read(kReadReport, db::P(kind, id));
  if (r.rows() == 0) throw NotFound("No " + kind + " report has the id '" + id + "'.");
  json::object o = ReportJson(r, 0);
  o["text"] = r.get(0, 8);
  o["report"] = ParseStored(r.get(0, 9));
  co_return JsonResponse(200, o);
}

asio::awaitable<http::Response> ChartSeries(RequestContext& ctx) {
  fhir::CheckParams(ctx.req, {"chart", "minutes"});
  std::string names;
  for (const auto& n : ChartNames()) names += (names.empty() ? "" : ", ") + n;
  auto name = ctx.req.param("chart");
  if (!name) throw BadRequest("chart is required: one of " + names + ".");
  int minutes = IntParam(ctx.req, "minutes", 30, 5, 1440);
  auto spec = FindChart(*name, minutes);
  if (!spec) throw BadRequest("There is no chart '" + *name + "': one of " + names + ".");
  const std::string& url = ctx.svc.config.prometheus_url;
  if (url.empty())
    throw Error(501, "not-supported",
                "This node has no Prometheus to chart from ([ops] prometheus_url): charts come "
                "with the cluster's monitoring (scripts/cluster up, scripts/demo).");
  http::Endpoint ep = http::ParseBaseUrl(url);
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  // Aligned to the step, so two dashboards (or two refreshes) ask for the same points.
  const int64_t end = now_s - now_s % spec->step_s;
  const int64_t start = end - int64_t{minutes} * 60;
  std::string path = ep.base_path + "/api/v1/query_range?query=" +
                     boost::urls::encode(spec->promql, boost::urls::unreserved_chars) +
                     fmt::format("&start={}&end={}&step={}", start, end, spec->step_s);
  auto timeout = std::min(std::chrono::milliseconds(3000), ctx.deadline.left());
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Accept", "application/json");
  http::ClientResponse resp;
  std::string failure;
  try {
    resp = co_await http::Fetch(ep, "GET", std::move(path), std::move(headers), std::string(),
                                timeout);
  } catch (const http::TransportError& e) {
    failure = std::string("did not answer: ") + e.what();
  }
  if (failure.empty() && resp.status != 200 && resp.status != 400 && resp.status != 422)
    failure = fmt::format("answered HTTP {}", resp.status);
  json::object chart;
  if (failure.empty()) {
    try {
      chart = ChartFromPrometheus(*spec, resp.body);
    } catch (const std::runtime_error& e) {
      failure = e.what();
    }
  }
  if (!failure.empty()) throw Unavailable(fmt::format("Prometheus ({}): {}.", url, failure), 5);
  co_return JsonResponse(200, chart);
}

asio::awaitable<void> AddOpsState(RequestContext& ctx, json::object& status,
                                  std::chrono::milliseconds budget) {
  // A short deadline of its own: the rest of the status must answer even while the
  // database hangs.
  Deadline saved = ctx.deadline;
  ctx.deadline = Deadline(std::min(saved.at(), Deadline::Clock::now() + budget));
  std::string error;
  std::vector<db::Result> rs;
  try {
    std::vector<db::Statement> stmts;
    stmts.push_back({&kFiringAlerts, db::P()});
    stmts.push_back({&kLastRuns, db::P()});
    rs = co_await ctx.ReadBatch(std::move(stmts));
  } catch (const std::exception& e) {
    error = e.what();
  }
  ctx.deadline = saved;
  if (!error.empty()) {
    SetOpsStateUnavailable(status, "the database did not answer: " + error);
    co_return;
  }
  json::array alerts, journeys;
  for (int i = 0; i < rs[0].rows(); ++i) alerts.push_back(AlertJson(rs[0], i));
  for (int i = 0; i < rs[1].rows(); ++i) journeys.push_back(RunJson(rs[1], i));
  status["alerts"] = std::move(alerts);
  status["journeys"] = std::move(journeys);
}

void SetOpsStateUnavailable(json::object& status, const std::string& why) {
  status["alerts"] = json::object{{"unavailable", why}};
  status["journeys"] = json::object{{"unavailable", why}};
}

void RenderMetrics(std::string& out) {
  auto v = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  out +=
      "# HELP continuum_ops_alerts_received_total Alerts received on the Alertmanager "
      "webhook (repeats included), by alert status.\n";
  out += "# TYPE continuum_ops_alerts_received_total counter\n";
  out += fmt::format("continuum_ops_alerts_received_total{{status=\"firing\"}} {}\n",
                     v(g_counters.alerts_firing));
  out += fmt::format("continuum_ops_alerts_received_total{{status=\"resolved\"}} {}\n",
                     v(g_counters.alerts_resolved));
  out += "# TYPE continuum_ops_journey_runs_received_total counter\n";
  out += fmt::format("continuum_ops_journey_runs_received_total {}\n", v(g_counters.journey_runs));
  out += "# HELP continuum_ops_refused_total Ops API requests refused, by reason.\n";
  out += "# TYPE continuum_ops_refused_total counter\n";
  for (auto [reason, n] : {std::pair{"no_token", v(g_counters.refused_no_token)},
                           std::pair{"wrong_token", v(g_counters.refused_wrong_token)},
                           std::pair{"not_configured", v(g_counters.refused_disabled)},
                           std::pair{"invalid_body", v(g_counters.refused_invalid_body)}})
    out += fmt::format("continuum_ops_refused_total{{reason=\"{}\"}} {}\n", reason, n);
}

}  // namespace continuum::portal::ops
