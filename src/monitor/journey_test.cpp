#include "monitor/journey.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>

#include "core/release.hpp"
#include "monitor/probe_config.hpp"

namespace continuum::monitor {
namespace {
namespace json = boost::json;

const std::set<std::string> kDefined = {"username", "password", "vantage", "run_id"};

std::string ErrorOf(const std::string& text, const std::set<std::string>& defined = kDefined) {
  try {
    ParseJourney(text, "j.json", "j", defined);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

constexpr const char* kGood = R"({
  "description": "d",
  "steps": [
    {"name": "login", "method": "POST", "path": "/api/v1/session",
     "body": {"username": "${username}", "password": "${password}"},
     "capture": {"token": {"json": "access_token"}, "rid": {"header": "X-Request-Id"}},
     "budget_ms": 500},
    {"name": "read", "method": "GET", "path": "/fhir/R4/Patient/${token}",
     "headers": {"Authorization": "Bearer ${token}"}, "expect_status": [200, 304],
     "assert": [{"path": "entry.0.resource.id", "equals": "7"},
                {"path": "entry", "count_ge": 1}, {"path": "x", "exists": false}],
     "budget_ms": 100},
    {"name": "logout", "method": "DELETE", "path": "/api/v1/session",
     "headers": {"Authorization": "Bearer ${token}"}, "expect_status": 204, "budget_ms": 100,
     "always": true}
  ]})";

TEST(JourneyParse, ReadsAWellFormedJourney) {
  Journey j = ParseJourney(kGood, "j.json", "patient", kDefined);
  EXPECT_EQ(j.name, "patient");
  ASSERT_EQ(j.steps.size(), 3u);
  EXPECT_EQ(j.steps[0].expect_status, std::vector<int>{200});  // the default
  EXPECT_EQ(j.steps[1].expect_status, (std::vector<int>{200, 304}));
  EXPECT_EQ(j.steps[1].assertions.size(), 3u);
  EXPECT_EQ(j.steps[0].captures.size(), 2u);
  EXPECT_EQ(j.steps[0].captures[1].header, "x-request-id");
  EXPECT_TRUE(j.steps[2].always);
  EXPECT_EQ(j.steps[1].budget_ms, 100);
}

TEST(JourneyParse, RejectsUnknownKeysNamingFileAndStep) {
  std::string e = ErrorOf(R"({"steps": [{"name": "a", "method": "GET", "path": "/x",
                          "budget_ms": 1, "expect": 200}]})");
  EXPECT_NE(e.find("journey j.json: step a: unknown key \"expect\""), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [], "name": "x"})");
  EXPECT_NE(e.find("unknown key \"name\""), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [{"name": "a", "method": "GET", "path": "/x", "budget_ms": 1,
              "assert": [{"path": "a", "equal": 1}]}]})");
  EXPECT_NE(e.find("step a: unknown key \"equal\" in assert[0]"), std::string::npos) << e;
}

TEST(JourneyParse, RejectsBadPathsAndValues) {
  auto step = [](const std::string& extra) {
    return ErrorOf(R"({"steps": [{"name": "s1", "method": "GET", "path": "/x", "budget_ms": 5)" +
                   extra + "}]}");
  };
  EXPECT_NE(step(R"(, "assert": [{"path": "a..b", "exists": true}])").find("empty segment"),
            std::string::npos);
  EXPECT_NE(step(R"(, "assert": [{"path": "a[0]", "exists": true}])").find("invalid character"),
            std::string::npos);
  EXPECT_NE(
      step(R"(, "assert": [{"path": "a", "exists": true, "count_ge": 1}])").find("exactly one of"),
      std::string::npos);
  EXPECT_NE(step(R"(, "capture": {"x": {"json": ""}})").find("empty path"), std::string::npos);
  EXPECT_NE(step(R"(, "expect_status": 99)").find("expect_status"), std::string::npos);
  EXPECT_NE(step(R"(, "always": "yes")").find("always"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"steps": [{"name": "s1", "method": "GET", "path": "/x"}]})")
                .find("budget_ms is required"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf(R"({"steps": [{"name": "s1", "method": "FETCH", "path": "/x", "budget_ms": 1}]})")
          .find("method"),
      std::string::npos);
  EXPECT_NE(ErrorOf(R"({"steps": [{"name": "s1", "method": "GET", "path": "x", "budget_ms": 1}]})")
                .find("path must start with /"),
            std::string::npos);
  EXPECT_NE(ErrorOf("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"steps": [{"name": "a", "method": "GET", "path": "/x", "budget_ms": 1},
                      {"name": "a", "method": "GET", "path": "/y", "budget_ms": 1}]})")
                .find("step a: duplicate step name"),
            std::string::npos);
}

TEST(JourneyParse, VariablesMustBeDefinedBeforeUse) {
  // ${token} is captured by a later step only.
  std::string e = ErrorOf(R"({"steps": [
      {"name": "a", "method": "GET", "path": "/x/${token}", "budget_ms": 1},
      {"name": "b", "method": "GET", "path": "/y", "budget_ms": 1,
       "capture": {"token": {"json": "t"}}}]})");
  EXPECT_NE(e.find("step a: path uses ${token}"), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [{"name": "a", "method": "POST", "path": "/x", "budget_ms": 1,
                 "body": {"k": ["${nope}"]}}]})");
  EXPECT_NE(e.find("body uses ${nope}"), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [{"name": "a", "method": "GET", "path": "/x/${bad-name}",
                 "budget_ms": 1}]})");
  EXPECT_NE(e.find("invalid variable name"), std::string::npos) << e;
  e = ErrorOf(R"({"steps": [{"name": "a", "method": "GET", "path": "/x/${open",
                 "budget_ms": 1}]})");
  EXPECT_NE(e.find("without a closing"), std::string::npos) << e;
}

TEST(JourneyParse, ShippedJourneysAreValid) {
  Vantage v;
  v.name = "edge";
  auto journeys = LoadJourneys(std::string(continuum::SourceDir()) + "/deploy/probe/journeys",
                               RunnerVariables(v));
  ASSERT_EQ(journeys.size(), 2u);
  EXPECT_EQ(journeys[0].name, "patient");
  EXPECT_EQ(journeys[1].name, "provider");
  EXPECT_TRUE(journeys[0].steps.back().always);
  // A booking is cancelled even when a check after it failed.
  auto cancel = std::find_if(journeys[0].steps.begin(), journeys[0].steps.end(),
                             [](const Step& s) { return s.name == "cancel"; });
  ASSERT_NE(cancel, journeys[0].steps.end());
  EXPECT_TRUE(cancel->always);
  EXPECT_TRUE(journeys[1].steps.back().always);
}

TEST(Substitution, ReplacesVariablesAndReportsMissingOnes) {
  Vars v = {{"a", "1"}, {"name", "x y"}};
  EXPECT_EQ(Substitute("/p/${a}/${name}?q=${a}", v), "/p/1/x y?q=1");
  EXPECT_EQ(Substitute("no vars $ {a} $a", v), "no vars $ {a} $a");
  EXPECT_THROW(Substitute("${b}", v), MissingVariable);
  json::value body = json::parse(R"({"k": "${a}", "l": [1, "v-${name}"], "${a}": true})");
  EXPECT_EQ(json::serialize(SubstituteJson(body, v)), R"({"k":"1","l":[1,"v-x y"],"${a}":true})");
  EXPECT_EQ(VariablesIn("${a}-${b}"), (std::vector<std::string>{"a", "b"}));
  Vars id = {{"id", "urn:continuum:synthetic|us-east 1"}};
  EXPECT_EQ(Substitute("/P?identifier=${url:id}", id),
            "/P?identifier=urn%3Acontinuum%3Asynthetic%7Cus-east%201");
  EXPECT_EQ(VariablesIn("${url:id}"), std::vector<std::string>{"id"});
  EXPECT_THROW(Substitute("${url:nope}", id), MissingVariable);
}

TEST(JsonPaths, FindKeysAndIndexes) {
  json::value doc = json::parse(R"({"entry": [{"resource": {"id": "7", "n": 3}}], "0": "k"})");
  auto at = [&](const char* p) { return Find(doc, ParseJsonPath(p)); };
  ASSERT_NE(at("entry.0.resource.id"), nullptr);
  EXPECT_EQ(at("entry.0.resource.id")->as_string(), "7");
  EXPECT_EQ(at("entry.1.resource"), nullptr);
  EXPECT_EQ(at("entry.x"), nullptr);
  EXPECT_EQ(at("entry.0.resource.id.deeper"), nullptr);
  ASSERT_NE(at("0"), nullptr);  // a digit key of an object is a key
  EXPECT_THROW(ParseJsonPath("a."), std::invalid_argument);
}

Step StepOf(const std::string& extra) {
  std::string text =
      R"({"steps": [{"name": "s", "method": "GET", "path": "/x", "budget_ms": 5)" + extra + "}]}";
  return ParseJourney(text, "j.json", "j", kDefined).steps[0];
}

TEST(Evaluate, StatusAssertionsAndCaptures) {
  Step s = StepOf(R"(, "expect_status": [200, 201],
      "assert": [{"path": "resourceType", "equals": "Bundle"}, {"path": "entry", "count_ge": 2},
                 {"path": "total", "equals": 2}, {"path": "missing", "exists": false}],
      "capture": {"first": {"json": "entry.0.resource.id"}, "loc": {"header": "Location"}})");
  Vars vars;
  std::string body =
      R"({"resourceType": "Bundle", "total": 2, "entry": [{"resource": {"id": 42}}, {}]})";
  auto v = Evaluate(s, 201, body, {{"location", "/x/1"}}, vars);
  EXPECT_TRUE(v.ok()) << v.excerpt;
  EXPECT_EQ(vars["first"], "42");
  EXPECT_EQ(vars["loc"], "/x/1");

  Vars none;
  v = Evaluate(s, 500, body, {}, none);
  EXPECT_EQ(v.reason, FailReason::kStatus);
  EXPECT_EQ(v.excerpt, "status 500, expected 200|201");

  v = Evaluate(s, 200, R"({"resourceType": "Bundle", "total": 2, "entry": [{}]})", {}, none);
  EXPECT_EQ(v.reason, FailReason::kAssert);
  EXPECT_EQ(v.excerpt, "assertion failed: count(entry) >= 2 (got 1)");

  v = Evaluate(s, 200, body, {}, none);  // no Location header
  EXPECT_EQ(v.reason, FailReason::kCapture);
  EXPECT_TRUE(none.empty());  // nothing captured from a failed step
}

TEST(Evaluate, EqualsSubstitutesAndNeverQuotesTheActualValue) {
  Step s = StepOf(R"(, "assert": [{"path": "name", "equals": "${username}"}])");
  Vars vars = {{"username", "alice"}};
  EXPECT_TRUE(Evaluate(s, 200, R"({"name": "alice"})", {}, vars).ok());
  auto v = Evaluate(s, 200, R"({"name": "Jane Secret-Patient"})", {}, vars);
  EXPECT_EQ(v.reason, FailReason::kAssert);
  EXPECT_EQ(v.excerpt.find("Secret"), std::string::npos) << v.excerpt;
  EXPECT_EQ(v.excerpt, R"(assertion failed: name == "alice")");
  // Not JSON: every path is absent.
  EXPECT_EQ(Evaluate(s, 200, "<html>", {}, vars).reason, FailReason::kAssert);
}

TEST(Excerpt, OperationOutcomeAndErrorBodiesOnly) {
  EXPECT_EQ(Excerpt(R"({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
            "code": "forbidden", "diagnostics": "No care relationship."}]})"),
            "forbidden: No care relationship.");
  EXPECT_EQ(Excerpt(R"({"error": "card declined", "code": "card_declined"})"),
            "card_declined: card declined");
  // A resource is never quoted.
  EXPECT_EQ(Excerpt(R"({"resourceType": "Patient", "name": [{"family": "Doe"}]})"), "");
  EXPECT_EQ(Excerpt("plain text"), "");
  std::string long_diag(500, 'x');
  auto e = Excerpt(R"({"resourceType": "OperationOutcome", "issue": [{"code": "invalid",
                   "diagnostics": ")" +
                   long_diag + "\"}]}");
  EXPECT_LE(e.size(), 123u);
  EXPECT_EQ(e.substr(e.size() - 3), "...");
  // A status failure carries the excerpt.
  Step s = StepOf("");
  Vars vars;
  auto v = Evaluate(s, 403, R"({"resourceType": "OperationOutcome", "issue": [{"code":
                   "forbidden", "diagnostics": "nope"}]})",
                    {}, vars);
  EXPECT_EQ(v.excerpt, "status 403, expected 200 (forbidden: nope)");
}

}  // namespace
}  // namespace continuum::monitor
