#include "portal/ops_api.hpp"

#include <gtest/gtest.h>

#include <string>

#include "portal/ops.hpp"
#include "portal/routes.hpp"

namespace continuum::portal {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(OpsToken, OnlyTheBearerOpsTokenPasses) {
  using enum ops::OpsTokenCheck;
  EXPECT_EQ(ops::CheckOpsToken("Bearer " + kToken, kToken), kOk);
  EXPECT_EQ(ops::CheckOpsToken("bearer " + kToken, kToken), kOk);
  EXPECT_EQ(ops::CheckOpsToken("", kToken), kNoToken);
  EXPECT_EQ(ops::CheckOpsToken(kToken, kToken), kMalformed);
  EXPECT_EQ(ops::CheckOpsToken("Basic " + kToken, kToken), kMalformed);
  EXPECT_EQ(ops::CheckOpsToken("Bearer", kToken), kMalformed);
  EXPECT_EQ(ops::CheckOpsToken("Bearer " + kToken.substr(0, 63), kToken), kWrongToken);
  EXPECT_EQ(ops::CheckOpsToken("Bearer " + kToken + "0", kToken), kWrongToken);
  EXPECT_EQ(ops::CheckOpsToken("Bearer  " + kToken, kToken), kWrongToken);
  EXPECT_EQ(ops::CheckOpsToken("Bearer eyJhbGciOi.session.token", kToken), kWrongToken);
  // A node without [ops] token_file has no operator: not even an empty bearer matches.
  EXPECT_EQ(ops::CheckOpsToken("Bearer " + kToken, ""), kNotConfigured);
  EXPECT_EQ(ops::CheckOpsToken("Bearer ", ""), kNotConfigured);
  EXPECT_EQ(ops::CheckOpsToken("", ""), kNotConfigured);
}

TEST(Readyz, AnAnonymousCallerLearnsOnlyTheStatus) {
  auto ready = AnonymousReadyBody(true);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready.at("status").as_string(), "ready");
  auto not_ready = AnonymousReadyBody(false);
  ASSERT_EQ(not_ready.size(), 1u);
  EXPECT_EQ(not_ready.at("status").as_string(), "not-ready");
}

// Who may call the operations routes: liveness and readiness (the status) for anyone;
// everything that names the topology or carries error text for the ops token only.
TEST(Routes, OperationsRoutesThatNameTheTopologyNeedTheOpsToken) {
  auto caller = [](const std::string& method, const std::string& pattern) {
    for (const auto& e : ListRoutes())
      if (e.method == method && e.pattern == pattern) return e.access.caller;
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return RouteCaller::kAnyone;
  };
  EXPECT_EQ(caller("GET", "/healthz"), RouteCaller::kAnyone);
  EXPECT_EQ(caller("GET", "/readyz"), RouteCaller::kAnyone);  // the handler gates the details
  EXPECT_EQ(caller("GET", "/metrics"), RouteCaller::kOpsToken);
  EXPECT_EQ(caller("GET", "/api/v1/ops/status"), RouteCaller::kOpsToken);
  EXPECT_EQ(caller("GET", "/api/v1/ops/alerts"), RouteCaller::kOpsToken);
  EXPECT_EQ(caller("POST", "/api/v1/ops/alerts"), RouteCaller::kOpsToken);
  EXPECT_EQ(caller("POST", "/api/v1/ops/journey-runs"), RouteCaller::kOpsToken);
  // Every other ops-tier route open to anyone is one of a short, reviewed list.
  for (const auto& e : ListRoutes())
    if (e.tier == Tier::kOps && e.access.caller == RouteCaller::kAnyone)
      EXPECT_TRUE(e.pattern == "/healthz" || e.pattern == "/readyz" ||
                  e.pattern == "/fhir/R4/metadata")
          << e.method << " " << e.pattern << " is open to anyone";
}

}  // namespace
}  // namespace continuum::portal
