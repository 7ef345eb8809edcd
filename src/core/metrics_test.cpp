#include "core/metrics.hpp"

#include <gtest/gtest.h>

namespace continuum {
namespace {

TEST(Metrics, HistogramBucketsAreCumulativeInTheExposition) {
  auto& m = Metrics::Get();
  static constexpr std::string_view kRoute = "test.route";
  m.ObserveRequest(kRoute, "critical", 200, 0.0004);  // first bucket
  m.ObserveRequest(kRoute, "critical", 200, 0.003);   // le=0.005
  m.ObserveRequest(kRoute, "critical", 200, 20.0);    // only +Inf
  std::string out = m.Render();
  const std::string labels = R"(route="test.route",tier="critical",status="200")";
  EXPECT_NE(
      out.find("continuum_http_request_duration_seconds_bucket{" + labels + R"(,le="0.0005"} 1)"),
      std::string::npos)
      << out;
  EXPECT_NE(
      out.find("continuum_http_request_duration_seconds_bucket{" + labels + R"(,le="0.005"} 2)"),
      std::string::npos);
  EXPECT_NE(out.find("continuum_http_request_duration_seconds_bucket{" + labels + R"(,le="10"} 2)"),
            std::string::npos);
  EXPECT_NE(
      out.find("continuum_http_request_duration_seconds_bucket{" + labels + R"(,le="+Inf"} 3)"),
      std::string::npos);
  EXPECT_NE(out.find("continuum_http_request_duration_seconds_count{" + labels + "} 3"),
            std::string::npos);
}

TEST(Metrics, RequestSeriesCarryTheReleaseLabel) {
  auto& m = Metrics::Get();
  m.SetRequestLabel("version", "v1.2-3-gabc");
  m.ObserveRequest("test.label", "high", 200, 0.001);
  std::string out = m.Render();
  m.SetRequestLabel("", "");
  EXPECT_NE(
      out.find(R"(continuum_http_request_duration_seconds_count{route="test.label",tier="high",)"
               R"(status="200",version="v1.2-3-gabc"} 1)"),
      std::string::npos)
      << out;
  EXPECT_EQ(m.Render().find("version=\"v1.2-3-gabc\""), std::string::npos);
}

}  // namespace
}  // namespace continuum
