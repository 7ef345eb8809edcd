#include "portal/ops_payloads.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

namespace continuum::portal::ops {
namespace {
namespace json = boost::json;

// What Alertmanager 0.25 posts (webhook_configs, send_resolved: true).
const char* kWebhook = R"({
  "receiver": "continuum-portal",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {"alertname": "JourneyFailing", "journey": "patient", "severity": "page",
                 "vantage": "edge"},
      "annotations": {"summary": "patient journey failing from edge"},
      "startsAt": "2026-12-02T10:00:00.123456789Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
      "fingerprint": "c0ffee0123456789"
    },
    {
      "status": "resolved",
      "labels": {"alertname": "PoolSaturated", "tier": "high"},
      "annotations": {},
      "startsAt": "2026-12-02T09:00:00Z",
      "endsAt": "2026-12-02T09:30:00+01:00",
      "generatorURL": "",
      "fingerprint": "0123456789abcdef"
    }
  ],
  "groupLabels": {"alertname": "JourneyFailing"},
  "commonLabels": {},
  "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093",
  "version": "4",
  "groupKey": "{}:{alertname=\"JourneyFailing\"}",
  "truncatedAlerts": 0
})";

// Replaces the value at a path ("alerts/0/startsAt") or removes it (nullopt).
std::string Edit(const char* base, std::initializer_list<std::string_view> path,
                 std::optional<json::value> value) {
  json::value v = json::parse(base);
  json::value* cur = &v;
  std::vector<std::string_view> keys(path);
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    auto k = keys[i];
    if (cur->is_array())
      cur = &cur->as_array().at(std::stoul(std::string(k)));
    else
      cur = &cur->as_object().at(k);
  }
  auto& o = cur->as_object();
  if (value)
    o[keys.back()] = *value;
  else
    o.erase(keys.back());
  return json::serialize(v);
}

// The BadRequest message for a body, or "" when it parses.
template <typename F>
std::string Refusal(F parse, const std::string& body) {
  try {
    parse(body);
    return "";
  } catch (const BadRequest& e) {
    return e.what();
  }
}

TEST(AlertmanagerWebhook, ParsesVersion4) {
  AlertBatch b = ParseAlertmanagerWebhook(kWebhook);
  EXPECT_EQ(b.status, "firing");
  EXPECT_EQ(b.receiver, "continuum-portal");
  ASSERT_EQ(b.alerts.size(), 2u);
  const auto& f = b.alerts[0];
  EXPECT_EQ(f.alertname, "JourneyFailing");
  EXPECT_EQ(f.severity, "page");
  EXPECT_EQ(f.status, "firing");
  EXPECT_EQ(f.fingerprint, "c0ffee0123456789");
  EXPECT_EQ(f.starts_at, "2026-12-02T10:00:00.123456789Z");
  EXPECT_FALSE(f.ends_at);  // firing: no end
  EXPECT_EQ(f.labels.at("vantage").as_string(), "edge");
  EXPECT_EQ(f.annotations.at("summary").as_string(), "patient journey failing from edge");
  const auto& r = b.alerts[1];
  EXPECT_EQ(r.severity, "");
  EXPECT_EQ(r.status, "resolved");
  EXPECT_EQ(r.ends_at, "2026-12-02T09:30:00+01:00");
}

TEST(AlertmanagerWebhook, RefusalsNameTheField) {
  auto p = ParseAlertmanagerWebhook;
  EXPECT_NE(Refusal(p, "{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(Refusal(p, "[1]").find("JSON object"), std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"version"}, json::value("3"))).find("'version'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"version"}, std::nullopt)).find("'version' is missing"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts"}, json::array{})).find("'alerts'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"status"}, json::value("pending"))).find("'status'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "1", "fingerprint"}, std::nullopt))
                .find("'alerts[1].fingerprint' is missing"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "0", "startsAt"}, json::value("yesterday")))
                .find("'alerts[0].startsAt'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "0", "endsAt"}, std::nullopt))
                .find("'alerts[0].endsAt' is missing"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "0", "labels", "alertname"}, std::nullopt))
                .find("'alerts[0].labels.alertname' is missing"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "0", "labels", "severity"}, json::value(3)))
                .find("'alerts[0].labels.severity' must be a string"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "1", "status"}, json::value("gone")))
                .find("'alerts[1].status'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kWebhook, {"alerts", "0", "fingerprint"}, json::value("ab;cd")))
                .find("'alerts[0].fingerprint'"),
            std::string::npos);
  // Fields a later Alertmanager may add are ignored.
  EXPECT_EQ(Refusal(p, Edit(kWebhook, {"newField"}, json::value(1))), "");
  EXPECT_EQ(Refusal(p, Edit(kWebhook, {"alerts", "0", "silencedBy"}, json::array{})), "");
}

const char* kRun = R"({
  "journey": "patient", "vantage": "us-east", "target": "http://127.0.0.1:8181",
  "started_at": "2026-12-02T10:00:00.000Z", "finished_at": "2026-12-02T10:00:01.250Z",
  "success": false,
  "steps": [
    {"name": "login", "method": "POST", "path": "/api/v1/session", "status": 200,
     "duration_ms": 120.5, "budget_ms": 1000, "ok": true},
    {"name": "records", "method": "GET", "path": "/fhir/R4/Patient/1", "status": 503,
     "duration_ms": 30, "budget_ms": 500, "ok": false, "reason": "status",
     "excerpt": "{\"resourceType\":\"OperationOutcome\"}"}
  ],
  "failed_step": "records",
  "error": "GET /fhir/R4/Patient/1 answered 503"
})";

TEST(JourneyRun, Parses) {
  JourneyRun r = ParseJourneyRun(kRun);
  EXPECT_EQ(r.journey, "patient");
  EXPECT_EQ(r.vantage, "us-east");
  EXPECT_FALSE(r.success);
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_DOUBLE_EQ(r.steps[0].duration_ms, 120.5);
  EXPECT_EQ(r.steps[1].status, 503);
  EXPECT_EQ(r.steps[1].reason, "status");
  EXPECT_EQ(r.failed_step, "records");
  auto steps = StepsJson(r.steps);
  EXPECT_EQ(steps.at(1).as_object().at("excerpt").as_string(),
            "{\"resourceType\":\"OperationOutcome\"}");
  EXPECT_FALSE(steps.at(0).as_object().contains("reason"));
  // Optional fields may be absent or null.
  JourneyRun ok = ParseJourneyRun(
      Edit(Edit(kRun, {"failed_step"}, std::nullopt).c_str(), {"error"}, json::value(nullptr)));
  EXPECT_FALSE(ok.failed_step);
  EXPECT_FALSE(ok.error);
}

TEST(JourneyRun, RefusalsNameTheField) {
  auto p = ParseJourneyRun;
  EXPECT_NE(Refusal(p, Edit(kRun, {"journey"}, std::nullopt)).find("'journey' is missing"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"vantage"}, json::value("us east"))).find("'vantage'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"success"}, json::value("yes"))).find("'success'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"finished_at"}, json::value("2026-12-02T09:00:00Z")))
                .find("'finished_at' is before started_at"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"steps", "0", "duration_ms"}, json::value(-1)))
                .find("'steps[0].duration_ms'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"steps", "1", "status"}, json::value("503")))
                .find("'steps[1].status'"),
            std::string::npos);
  EXPECT_NE(
      Refusal(p, Edit(kRun, {"steps", "1", "ok"}, std::nullopt)).find("'steps[1].ok' is missing"),
      std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"steps", "0", "colour"}, json::value("red")))
                .find("'steps[0].colour'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"node"}, json::value("x"))).find("Unknown field 'node'"),
            std::string::npos);
  EXPECT_NE(Refusal(p, Edit(kRun, {"steps"}, json::value(1))).find("'steps'"), std::string::npos);
}

// A status above int64's range parses as a uint64; converting it threw boost's
// system_error, which the server answered with a 500 (found by tests/e2e/test_body_fuzz.py).
TEST(JourneyRun, StatusOutOfRangeIsABadRequest) {
  for (const char* status : {"9223372036854775808", "18446744073709551615", "1000", "-1",
                             "-9223372036854775808", "1e3", "200.5"}) {
    std::string body = Edit(kRun, {"steps", "1", "status"}, json::parse(status));
    EXPECT_NE(Refusal(ParseJourneyRun, body).find("'steps[1].status'"), std::string::npos)
        << status;
  }
  auto edge = ParseJourneyRun(Edit(kRun, {"steps", "1", "status"}, json::value(999)));
  EXPECT_EQ(edge.steps[1].status, 999);
}

TEST(Rfc3339, ParsesAndRejects) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:01.5Z"), 1'500'000);
  EXPECT_EQ(ParseRfc3339("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(ParseRfc3339("1969-12-31T23:00:00-01:00"), 0);
  EXPECT_EQ(ParseRfc3339("2026-12-02T10:00:00.123456789Z"), 1796205600123456);
  EXPECT_EQ(ParseRfc3339("2024-02-29T00:00:00Z"), 1709164800'000000);
  EXPECT_TRUE(ParseRfc3339("0001-01-01T00:00:00Z"));
  EXPECT_LT(*ParseRfc3339("0001-01-01T00:00:00Z"), 0);
  for (const char* bad :
       {"", "2026-12-02", "2026-12-02T10:00:00", "2026-12-02 10:00:00Z", "2026-13-02T10:00:00Z",
        "2025-02-29T00:00:00Z", "2026-12-02T24:00:00Z", "2026-12-02T10:00:00.Z",
        "2026-12-02T10:00:00+0100", "2026-12-02T10:00:00Zjunk", "yesterday"})
    EXPECT_FALSE(ParseRfc3339(bad)) << bad;
}

TEST(OpsReport, ParsesAndRefuses) {
  auto r = ParseOpsReport(
      R"j({"kind":"rollout","id":"r20261203T101500Z","title":"v1 -> v2","outcome":"running (canary)",
          "started_at":"2026-12-03T10:15:00Z","ended_at":null,"text":"rollout ...","report":{"steps":[]}})j");
  EXPECT_EQ(r.kind, "rollout");
  EXPECT_EQ(r.id, "r20261203T101500Z");
  EXPECT_FALSE(r.ended_at);
  EXPECT_TRUE(r.report.contains("steps"));
  auto done = ParseOpsReport(
      R"j({"kind":"chaos-day","id":"day1","title":"t","outcome":"held","started_at":"2026-12-03T10:15:00Z",
          "ended_at":"2026-12-03T11:15:00Z","text":"","report":{}})j");
  EXPECT_EQ(done.ended_at.value_or(""), "2026-12-03T11:15:00Z");
  const std::string ok_tail =
      R"j("title":"t","outcome":"o","started_at":"2026-12-03T10:15:00Z","text":"x","report":{}})j";
  for (
      auto [body, field] : std::initializer_list<std::pair<std::string, const char*>>{
          {R"j({"kind":"deploy","id":"a",)j" + ok_tail, "kind"},
          {R"j({"kind":"rollout","id":"../etc",)j" + ok_tail, "id"},
          {R"j({"kind":"rollout","id":"a","title":"t","outcome":"o","started_at":"now","text":"x","report":{}})j",
           "started_at"},
          {R"j({"kind":"rollout","id":"a","title":"t","outcome":"o","started_at":"2026-12-03T10:15:00Z","ended_at":"2026-12-03T10:00:00Z","text":"x","report":{}})j",
           "ended_at"},
          {R"j({"kind":"rollout","id":"a","title":"t","outcome":"o","started_at":"2026-12-03T10:15:00Z","text":"x","report":[]})j",
           "report"},
          {R"j({"kind":"rollout","id":"a","extra":1,)j" + ok_tail, "extra"},
          {R"j({"kind":"rollout","id":"a","outcome":"o","started_at":"2026-12-03T10:15:00Z","text":"x","report":{}})j",
           "title"}}) {
    try {
      ParseOpsReport(body);
      ADD_FAILURE() << "accepted " << body;
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
}

TEST(PoolHold, ParsesAndRefuses) {
  auto r = ParsePoolHold(R"({"tier":"medium","seconds":30})");
  EXPECT_EQ(r.tier, "medium");
  EXPECT_EQ(r.seconds, 30);
  EXPECT_EQ(ParsePoolHold(R"({"tier":"critical","seconds":600})").seconds, 600);
  for (auto [body, field] : std::initializer_list<std::pair<const char*, const char*>>{
           {R"({"tier":"ops","seconds":5})", "tier"},
           {R"({"tier":"Medium","seconds":5})", "tier"},
           {R"({"seconds":5})", "tier"},
           {R"({"tier":"low"})", "seconds"},
           {R"({"tier":"low","seconds":0})", "seconds"},
           {R"({"tier":"low","seconds":601})", "seconds"},
           {R"({"tier":"low","seconds":2.5})", "seconds"},
           {R"({"tier":"low","seconds":"5"})", "seconds"},
           {R"({"tier":"low","seconds":5,"x":1})", "x"},
           {R"([1])", "object"}}) {
    try {
      ParsePoolHold(body);
      ADD_FAILURE() << "accepted " << body;
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << body << ": " << e.what();
    }
  }
}

TEST(Charts, FixedQueriesWithAStepForTheSpan) {
  EXPECT_FALSE(FindChart("up", 30));
  EXPECT_FALSE(FindChart("requests) or vector(1", 30));
  auto r = FindChart("requests", 30);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->step_s, 15);  // 120 points over 30 minutes
  EXPECT_EQ(
      r->promql,
      R"j(sum by (tier) (rate(continuum_http_request_duration_seconds_count{tier!="ops"}[60s])))j");
  EXPECT_EQ(FindChart("latency", 5)->step_s, 5);
  EXPECT_NE(FindChart("latency", 5)->promql.find("[20s]"), std::string::npos);
  EXPECT_EQ(FindChart("errors", 100000)->step_s, 720);  // clamped to a day
  EXPECT_NE(FindChart("errors", 30)->promql.find(R"j(status=~"5..")j"), std::string::npos);
  EXPECT_EQ(ChartNames(), (std::vector<std::string>{"requests", "errors", "latency"}));
}

TEST(Charts, PrometheusMatrixToSeries) {
  auto spec = *FindChart("latency", 30);
  auto out =
      ChartFromPrometheus(spec, R"j({"status":"success","data":{"resultType":"matrix","result":[
      {"metric":{"tier":"low"},"values":[[1796205600,"2.5"]]},
      {"metric":{"tier":"critical"},"values":[[1796205600,"1.25"],[1796205615,"NaN"],[1796205630,"+Inf"],[1796205645,"3"]]},
      {"metric":{"tier":"high"},"values":[]}]}})j");
  EXPECT_EQ(out.at("chart").as_string(), "latency");
  EXPECT_EQ(out.at("unit").as_string(), "ms");
  EXPECT_EQ(out.at("step_s").as_int64(), 15);
  const auto& series = out.at("series").as_array();
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[0].at("name").as_string(), "critical");
  EXPECT_EQ(series[1].at("name").as_string(), "high");
  EXPECT_EQ(series[2].at("name").as_string(), "low");
  const auto& pts = series[0].at("points").as_array();
  ASSERT_EQ(pts.size(), 4u);
  EXPECT_DOUBLE_EQ(pts[0].as_array()[1].as_double(), 1.25);
  EXPECT_TRUE(pts[1].as_array()[1].is_null());  // NaN: no requests in the window
  EXPECT_TRUE(pts[2].as_array()[1].is_null());
  EXPECT_DOUBLE_EQ(pts[3].as_array()[0].to_number<double>(), 1796205645);
  try {
    ChartFromPrometheus(
        spec, R"j({"status":"error","errorType":"bad_data","error":"parse error at char 3"})j");
    ADD_FAILURE() << "an error answer accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("parse error at char 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChartFromPrometheus(spec, "<html>"), std::runtime_error);
  EXPECT_THROW(ChartFromPrometheus(
                   spec, R"j({"status":"success","data":{"resultType":"vector","result":[]}})j"),
               std::runtime_error);
}

}  // namespace
}  // namespace continuum::portal::ops
