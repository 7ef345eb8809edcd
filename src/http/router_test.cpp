#include "http/router.hpp"

#include <gtest/gtest.h>

namespace continuum::http {

TEST(Router, MatchesLiteralsAndCaptures) {
  Router<int> r;
  r.Add("GET", "/fhir/R4/Patient/{}", 1);
  r.Add("GET", "/fhir/R4/Patient/{}/$summary", 2);
  r.Add("POST", "/fhir/R4/DocumentReference", 3);
  std::vector<std::string> params;
  bool known = false;
  const int* e = r.Match("GET", "/fhir/R4/Patient/42/$summary", params, known);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, 2);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0], "42");
  e = r.Match("GET", "/fhir/R4/Patient/42", params, known);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, 1);
}

TEST(Router, TellsMethodNotAllowedFromNotFound) {
  Router<int> r;
  r.Add("POST", "/fhir/R4/DocumentReference", 3);
  std::vector<std::string> params;
  bool known = false;
  EXPECT_EQ(r.Match("GET", "/fhir/R4/DocumentReference", params, known), nullptr);
  EXPECT_TRUE(known);
  EXPECT_EQ(r.Match("GET", "/nowhere", params, known), nullptr);
  EXPECT_FALSE(known);
  EXPECT_EQ(r.Allowed("/fhir/R4/DocumentReference"), std::vector<std::string>{"POST"});
}

}  // namespace continuum::http
