#include "stubdeps/fault.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace continuum::stubdeps {
namespace {

TEST(FaultMode, NamesRoundTrip) {
  for (FaultMode m : {FaultMode::kOk, FaultMode::kError, FaultMode::kTimeout, FaultMode::kSlow,
                      FaultMode::kRefuse}) {
    auto parsed = ParseMode(ModeName(m));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, m);
  }
  EXPECT_FALSE(ParseMode("OK").has_value());
  EXPECT_FALSE(ParseMode("").has_value());
  EXPECT_EQ(ModeList(), "ok, error, timeout, slow, refuse");
}

TEST(FaultChange, ParsesModeAndDelay) {
  FaultChange c = ParseFaultChange(R"({"mode":"slow","delay_ms":750})");
  EXPECT_EQ(c.mode, FaultMode::kSlow);
  EXPECT_EQ(c.delay_ms, 750);
  c = ParseFaultChange(R"({"mode":"slow"})");
  EXPECT_EQ(c.delay_ms, kDefaultDelayMs);
  c = ParseFaultChange(R"({"mode":"refuse"})");
  EXPECT_EQ(c.mode, FaultMode::kRefuse);
}

std::string ErrorOf(std::string_view body) {
  try {
    ParseFaultChange(body);
  } catch (const BadRequest& e) {
    EXPECT_EQ(e.http_status(), 400);
    return e.what();
  }
  return "";
}

TEST(FaultChange, RejectsBadBodiesNamingTheAllowedValues) {
  EXPECT_NE(ErrorOf(R"({"mode":"flaky"})").find("ok, error, timeout, slow, refuse"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({})").find("ok, error, timeout, slow, refuse"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"mode":1})").find("required"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"mode":"ok","delay":5})").find("Unknown field 'delay'"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"mode":"slow","delay_ms":-1})").find("delay_ms"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"mode":"slow","delay_ms":1.5})").find("delay_ms"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"mode":"slow","delay_ms":600001})").find("600000"), std::string::npos);
  EXPECT_NE(ErrorOf(R"(["ok"])").find("JSON object"), std::string::npos);
  EXPECT_NE(ErrorOf("{").find("not valid JSON"), std::string::npos);
}

TEST(FaultBoard, StartsOkEverywhere) {
  FaultBoard b;
  for (Dependency d : kAllDependencies) {
    EXPECT_EQ(b.Get(d).mode, FaultMode::kOk);
    EXPECT_EQ(b.Get(d).delay_ms, kDefaultDelayMs);
    EXPECT_EQ(b.Get(d).changes, 0u);
  }
}

TEST(FaultBoard, ClosesTheListenerOnlyWhenEnteringRefuseAndReopensWhenLeaving) {
  FaultBoard b;
  EXPECT_EQ(b.Set(Dependency::kPayments, {FaultMode::kError, 0}), ListenerAction::kNone);
  EXPECT_EQ(b.Set(Dependency::kPayments, {FaultMode::kRefuse, 0}), ListenerAction::kClose);
  EXPECT_EQ(b.Set(Dependency::kPayments, {FaultMode::kRefuse, 0}), ListenerAction::kNone);
  EXPECT_EQ(b.Get(Dependency::kPayments).mode, FaultMode::kRefuse);
  // Other dependencies are untouched.
  EXPECT_EQ(b.Get(Dependency::kEhr).mode, FaultMode::kOk);
  EXPECT_EQ(b.Set(Dependency::kPayments, {FaultMode::kSlow, 300}), ListenerAction::kOpen);
  EXPECT_EQ(b.Get(Dependency::kPayments).delay_ms, 300);
  EXPECT_EQ(b.Set(Dependency::kPayments, {FaultMode::kTimeout, 0}), ListenerAction::kNone);
  EXPECT_EQ(b.Set(Dependency::kPayments, {FaultMode::kOk, kDefaultDelayMs}), ListenerAction::kNone);
  EXPECT_EQ(b.Get(Dependency::kPayments).changes, 6u);
}

TEST(Dependency, NamesPortsAndParsing) {
  EXPECT_EQ(DependencyList(), "ehr, pharmacy, insurance, payments, sms, smtp");
  EXPECT_EQ(PortOffset(Dependency::kEhr), 1);
  EXPECT_EQ(PortOffset(Dependency::kSms), 5);
  EXPECT_EQ(PortOffset(Dependency::kSmtp), 25);
  EXPECT_EQ(ParseDependency("smtp"), Dependency::kSmtp);
  EXPECT_FALSE(ParseDependency("admin").has_value());
}

}  // namespace
}  // namespace continuum::stubdeps
