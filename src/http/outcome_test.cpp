#include "http/outcome.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace continuum::http {
namespace {

std::string Diagnostics(const Response& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  EXPECT_FALSE(ec) << "body is not valid JSON: " << ec.message();
  if (ec) return {};
  return std::string(v.at("issue").at(0).at("diagnostics").as_string());
}

// A parameter name cut at 64 bytes inside a two-byte character, and raw %FF: the
// regression inputs fuzz/corpus/fhir_search/regress-utf8-* found through
// fhir::CheckParams.
TEST(OutcomeTest, DiagnosticsWithInvalidUtf8StayValidJson) {
  std::string cut = std::string(63, 'a') + "\xC3";
  EXPECT_EQ(Diagnostics(OutcomeResponse(400, "not-supported", "Unsupported '" + cut + "'.")),
            "Unsupported '" + std::string(63, 'a') + "\xEF\xBF\xBD'.");
  EXPECT_EQ(Diagnostics(OutcomeResponse(400, "invalid", "bad \xFF\xFE id")),
            "bad \xEF\xBF\xBD\xEF\xBF\xBD id");
}

TEST(OutcomeTest, Utf8SafeKeepsValidTextAndRefusesOverlongsAndSurrogates) {
  EXPECT_EQ(Utf8Safe("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(Utf8Safe("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(Utf8Safe("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(Utf8Safe("\xF4\x90\x80\x80").substr(0, 3), "\xEF\xBF\xBD");         // > U+10FFFF
  EXPECT_EQ(Utf8Safe(""), "");
}

}  // namespace
}  // namespace continuum::http
