#include "monitor/probe_state.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "monitor/probe_config.hpp"

namespace continuum::monitor {
namespace {
namespace json = boost::json;

RunRecord MakeRun(const std::string& journey, const std::string& vantage, bool ok) {
  RunRecord r;
  r.journey = journey;
  r.vantage = vantage;
  r.target = "http://127.0.0.1:8080";
  r.started_at = "2026-12-02T09:00:00.000Z";
  r.finished_at = "2026-12-02T09:00:00.250Z";
  r.duration_s = 0.25;
  r.finished_unix = 1796202000.25;
  r.success = ok;
  r.steps.push_back({"login", "POST", "/api/v1/session", 200, 120.5, 1000, true, "", ""});
  if (ok) {
    r.steps.push_back(
        {"summary", "GET", "/fhir/R4/Patient/9/$summary", 200, 80, 1000, true, "", ""});
  } else {
    r.steps.push_back({"summary", "GET", "/fhir/R4/Patient/9/$summary", 503, 80, 1000, false,
                       "status", "status 503, expected 200"});
    r.failed_step = "summary";
    r.error = "summary: status";
  }
  r.steps.push_back({"logout", "DELETE", "/api/v1/session", 204, 10, 1000, true, "", ""});
  return r;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(ProbeMetrics, RendersTheSpecSeries) {
  ProbeState s;
  s.Record(MakeRun("patient", "edge", true));
  s.Record(MakeRun("provider", "us-east", false));
  std::string m = s.RenderMetrics();
  EXPECT_TRUE(Has(m, "continuum_probe_up 1")) << m;
  EXPECT_TRUE(Has(m, R"(continuum_probe_journey_success{journey="patient",vantage="edge"} 1)"));
  EXPECT_TRUE(Has(m, R"(continuum_probe_journey_success{journey="provider",vantage="us-east"} 0)"));
  EXPECT_TRUE(Has(
      m,
      R"(continuum_probe_journey_runs_total{journey="patient",vantage="edge",result="success"} 1)"));
  EXPECT_TRUE(Has(
      m,
      R"(continuum_probe_journey_runs_total{journey="patient",vantage="edge",result="failure"} 0)"));
  EXPECT_TRUE(
      Has(m, R"(continuum_probe_journey_duration_seconds{journey="patient",vantage="edge"} 0.25)"));
  EXPECT_TRUE(Has(
      m,
      R"(continuum_probe_journey_last_run_timestamp_seconds{journey="patient",vantage="edge"} 1796202000.250)"));
  EXPECT_TRUE(Has(
      m,
      R"(continuum_probe_step_duration_seconds{journey="patient",vantage="edge",step="login"} 0.1205)"));
  EXPECT_TRUE(Has(
      m, R"(continuum_probe_step_success{journey="provider",vantage="us-east",step="summary"} 0)"));
  EXPECT_TRUE(Has(
      m,
      R"(continuum_probe_journey_failure_info{journey="provider",vantage="us-east",step="summary",status="503",reason="status"} 1)"));
  EXPECT_EQ(m.find(R"(continuum_probe_journey_failure_info{journey="patient")"), std::string::npos);
  EXPECT_TRUE(Has(m, "continuum_probe_report_failures_total 0"));
  EXPECT_TRUE(Has(m, "# TYPE continuum_probe_journey_runs_total counter"));

  // The journey passes again: its failure series disappears, the counters keep counting.
  s.Record(MakeRun("provider", "us-east", true));
  s.CountReportFailure();
  m = s.RenderMetrics();
  EXPECT_EQ(m.find("continuum_probe_journey_failure_info{"), std::string::npos) << m;
  EXPECT_TRUE(Has(
      m,
      R"(continuum_probe_journey_runs_total{journey="provider",vantage="us-east",result="failure"} 1)"));
  EXPECT_TRUE(Has(m, "continuum_probe_report_failures_total 1"));
}

TEST(ProbeMetrics, StepsThatDidNotRunAreAbsentAndLabelsAreEscaped) {
  ProbeState s;
  RunRecord r = MakeRun("patient", "a\"b", false);
  r.steps.pop_back();  // logout skipped
  s.Record(r);
  std::string m = s.RenderMetrics();
  EXPECT_EQ(m.find("step=\"logout\""), std::string::npos);
  EXPECT_NE(m.find(R"(vantage="a\"b")"), std::string::npos);
}

TEST(ProbeRuns, KeepsTheLastTwentyNewestFirstWithStepTimings) {
  ProbeState s;
  for (int i = 0; i < 25; ++i) {
    RunRecord r = MakeRun("patient", "edge", i % 2 == 0);
    r.target = "t" + std::to_string(i);
    s.Record(r);
  }
  json::object o = s.RunsJson();
  const auto& list = o["journeys"].as_array();
  ASSERT_EQ(list.size(), 1u);
  const auto& runs = list[0].as_object().at("runs").as_array();
  ASSERT_EQ(runs.size(), 20u);
  EXPECT_EQ(runs[0].as_object().at("target").as_string(), "t24");
  const auto& step = runs[0].as_object().at("steps").as_array()[0].as_object();
  EXPECT_EQ(step.at("name").as_string(), "login");
  EXPECT_DOUBLE_EQ(step.at("duration_ms").to_number<double>(), 120.5);
  EXPECT_EQ(step.at("budget_ms").as_int64(), 1000);
  EXPECT_EQ(list[0].as_object().at("success_total").as_uint64(), 13u);
}

TEST(ProbeRuns, RunJsonHasTheSpecShape) {
  json::object o = RunJson(MakeRun("provider", "edge", false));
  for (const char* k : {"journey", "vantage", "target", "started_at", "finished_at", "success",
                        "steps", "failed_step", "error"})
    EXPECT_TRUE(o.contains(k)) << k;
  const auto& failed = o["steps"].as_array()[1].as_object();
  EXPECT_EQ(failed.at("reason").as_string(), "status");
  EXPECT_EQ(failed.at("ok").as_bool(), false);
  EXPECT_FALSE(o["steps"].as_array()[0].as_object().contains("reason"));
  EXPECT_FALSE(RunJson(MakeRun("p", "e", true)).contains("failed_step"));
}

TEST(ProbeRuns, Rfc3339) { EXPECT_EQ(Rfc3339(0.5), "1970-01-01T00:00:00.500Z"); }

std::string Write(const std::string& dir, const std::string& name, const std::string& text) {
  std::string p = dir + "/" + name;
  std::ofstream(p) << text;
  return p;
}

// The folders a test made, removed when the test binary exits (also after a failure).
struct TempDirs {
  std::vector<std::string> paths;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& p : paths) std::filesystem::remove_all(p, ec);
  }
};

std::string TempDir() {
  static TempDirs dirs;
  char d[] = "/tmp/continuum-probe-config-XXXXXX";
  std::string made = mkdtemp(d);
  dirs.paths.push_back(made);
  return made;
}

TEST(ProbeConfig, ReadsVantagesAndResolvesPaths) {
  std::string d = TempDir();
  Write(d, "pw", "s3cret-password\n");
  Write(d, "tok", "abcd\n");
  auto p = Write(d, "probe.toml", R"(
[probe]
listen_port = 29140
interval_s = 1
journeys_dir = "journeys"
[report]
url = "http://127.0.0.1:8080/api/v1/ops/journey-runs"
token_file = "tok"
[alerts]
log_file = "alerts.jsonl"
[[vantage]]
name = "edge"
base_urls = ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]
password_file = "pw"
headers = { "X-Continuum-Region" = "us-west" }
[[vantage]]
name = "us-east"
base_urls = ["http://127.0.0.1:9001"]
password_file = "pw"
patient_id = "900000000000000001"
vars = { extra = "1" }
)");
  ProbeConfig c = LoadProbeConfig(p);
  EXPECT_EQ(c.listen_port, 29140);
  EXPECT_EQ(c.interval_s, 1);
  EXPECT_EQ(c.journeys_dir, d + "/journeys");
  EXPECT_EQ(c.alerts_log_file, d + "/alerts.jsonl");
  EXPECT_EQ(c.report_token.reveal(), "abcd");
  ASSERT_EQ(c.vantages.size(), 2u);
  EXPECT_EQ(c.vantages[0].base_urls.size(), 2u);
  EXPECT_EQ(c.vantages[0].password.reveal(), "s3cret-password");
  EXPECT_EQ(c.vantages[0].patient_username, "synthetic-patient-edge");
  EXPECT_EQ(c.vantages[0].provider_username, "synthetic-provider-edge");
  EXPECT_EQ(c.vantages[0].patient_identifier, "urn:continuum:synthetic|edge");
  EXPECT_EQ(c.vantages[0].headers[0].second, "us-west");
  EXPECT_TRUE(RunnerVariables(c.vantages[1]).count("patient_id"));
  EXPECT_TRUE(RunnerVariables(c.vantages[1]).count("extra"));
  EXPECT_FALSE(RunnerVariables(c.vantages[0]).count("patient_id"));
}

TEST(ProbeConfig, StrictAboutKeysAndValues) {
  std::string d = TempDir();
  Write(d, "pw", "s3cret-password\n");
  auto err = [&](const std::string& text) -> std::string {
    try {
      LoadProbeConfig(Write(d, "c.toml", text));
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  const std::string v =
      "[[vantage]]\nname = \"edge\"\nbase_urls = [\"http://127.0.0.1:1\"]\n"
      "password_file = \"pw\"\n";
  EXPECT_EQ(err(v), "");
  EXPECT_NE(err("[probe]\nintervall_s = 3\n" + v).find("probe.intervall_s: unknown key"),
            std::string::npos);
  EXPECT_NE(err("[probe]\ninterval_s = 0\n" + v).find("probe.interval_s"), std::string::npos);
  EXPECT_NE(err(v + "colour = \"red\"\n").find("vantage.colour: unknown key"), std::string::npos);
  EXPECT_NE(err("[probe]\n").find("at least one [[vantage]]"), std::string::npos);
  EXPECT_NE(err("[[vantage]]\nname = \"e\"\nbase_urls = [\"https://x\"]\npassword_file = \"pw\"\n")
                .find("base_urls"),
            std::string::npos);
  EXPECT_NE(err("[[vantage]]\nname = \"e\"\nbase_urls = [\"http://127.0.0.1:1\"]\n"
                "password_file = \"missing\"\n")
                .find("cannot read"),
            std::string::npos);
  EXPECT_NE(err(v + v).find("listed twice"), std::string::npos);
  EXPECT_NE(err(v + "vars = { password = \"x\" }\n").find("built-in"), std::string::npos);
}

}  // namespace
}  // namespace continuum::monitor
