// The operations API behind the ops token: Alertmanager's webhook, the alert history,
// the prober's journey-run reports, and the database-backed part of
// /api/v1/ops/status. Everything here is operational data (db::DataClass::kOperational:
// synchronous_commit = local) on the ops tier's pool, and carries no PHI, so a successful
// call is not audited as PHI access; refused callers are audited (denied), logged and
// counted.
//
// Retention is applied by the writes themselves, in the same transaction: the last
// kJourneyRunsKept runs per (journey, vantage), and alerts received in the last
// kAlertRetentionDays days.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "core/secret.hpp"
#include "portal/context.hpp"

namespace continuum::portal::ops {

inline constexpr int kJourneyRunsKept = 50;
inline constexpr int kAlertRetentionDays = 30;
inline constexpr int kReportsKept = 500;  // rollout and chaos reports

// Reads an ops token file: one line of at least 32 hex characters. Throws
// std::runtime_error naming the file and what is wrong.
Secret LoadOpsToken(const std::string& path);

// What an Authorization header is worth against this node's ops token (`expected`, empty
// when the node has no [ops] token_file). The token is compared in constant time.
enum class OpsTokenCheck {
  kOk,
  kNotConfigured,  // this node has no ops token: nobody is an operator here
  kNoToken,        // no Authorization header
  kMalformed,      // not "Bearer <token>"
  kWrongToken,     // a bearer token, but not the ops token (a session token, a stale one)
};
OpsTokenCheck CheckOpsToken(std::string_view authorization, std::string_view expected);

// The caller check of routes whose policy is RouteCaller::kOpsToken (and of /readyz's full
// view): the bearer token must equal this node's ops token. Throws Unauthorized (no or a
// malformed token) or Forbidden (a wrong token, or no [ops] token_file on this node). Every
// refusal is logged (event ops_token_refused), counted (continuum_ops_refused_total{reason})
// and audited: an audit record with outcome "denied" (action "read" for GET, else "create";
// the detail names the route and the reason), like every other denial (ARCHITECTURE §5).
void RequireOpsToken(RequestContext& ctx);
// An ops request refused for its body (the sender is a machine whose bug someone has to
// notice): counted (continuum_ops_refused_total{reason="invalid_body"}) and logged (event
// ops_request_refused).
void NoteRefusedBody(RequestContext& ctx, const std::exception& e);
// An ops API answer: JSON, Cache-Control: no-store.
http::Response JsonResponse(int status, const boost::json::value& v);

// POST /api/v1/ops/alerts: an Alertmanager webhook notification (payload version 4).
// Each alert is stored once per (fingerprint, startsAt, status); a repeat keeps the
// first received_at. Answers {"received": n, "stored": m}.
boost::asio::awaitable<http::Response> ReceiveAlerts(RequestContext& ctx);
// GET /api/v1/ops/alerts?since=<RFC 3339>&status=firing|resolved&alertname=&limit=:
// the received alerts, newest first (by received_at), as a JSON array.
boost::asio::awaitable<http::Response> ListAlerts(RequestContext& ctx);
// POST /api/v1/ops/journey-runs: one completed run of the prober. 201 when stored,
// 200 when the same run (journey, vantage, started_at) was stored before.
boost::asio::awaitable<http::Response> ReceiveJourneyRun(RequestContext& ctx);

// POST /api/v1/ops/reports: a rollout's or a chaos run's/day's report, sent by its
// controller as it grows; the newest version replaces the stored one (kind, id). 201
// when new, 200 when replaced. The newest 500 reports are kept.
boost::asio::awaitable<http::Response> ReceiveReport(RequestContext& ctx);
// GET /api/v1/ops/reports?kind=&limit=: the reports, newest first, without their
// bodies: [{"kind","id","title","outcome","started_at","ended_at","updated_at",
// "received_by"}].
boost::asio::awaitable<http::Response> ListReports(RequestContext& ctx);
// GET /api/v1/ops/reports/{kind}/{id}: one report with its text and JSON.
boost::asio::awaitable<http::Response> ReadReport(RequestContext& ctx);
// GET /api/v1/ops/series?chart=requests|errors|latency&minutes=5..1440: one of the
// dashboard's charts over the last `minutes`, queried from [ops] prometheus_url
// (ChartFromPrometheus's shape). 501 when no Prometheus is configured, 503 when it does
// not answer (the message says which).
boost::asio::awaitable<http::Response> ChartSeries(RequestContext& ctx);

// Adds "alerts" (firing now: each fingerprint whose latest state is firing) and
// "journeys" (the last run per journey and vantage, with its steps) to `status`, read
// within `budget`. Never throws: when the database does not answer, both are
// {"unavailable": "<why>"}.
boost::asio::awaitable<void> AddOpsState(RequestContext& ctx, boost::json::object& status,
                                         std::chrono::milliseconds budget);
// Sets both to {"unavailable": "<why>"} (the database is known to be unreachable).
void SetOpsStateUnavailable(boost::json::object& status, const std::string& why);

// Prometheus text for the ops API's counters (continuum_ops_*).
void RenderMetrics(std::string& out);

}  // namespace continuum::portal::ops
