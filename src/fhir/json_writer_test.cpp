#include "fhir/json_writer.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <stdexcept>

#include "fhir/fhir.hpp"

namespace continuum::fhir {
namespace {

namespace json = boost::json;

// Every byte value alone and inside text: the same escapes as boost::json::serialize
// (short forms, \u00XX in lower-case hex for the other control bytes, everything from
// 0x20 on, 0x7f and UTF-8 included, as is).
TEST(JsonWriter, EscapesEveryByteAsBoostJsonDoes) {
  for (int c = 0; c < 256; ++c) {
    const std::string s = std::string("a") + static_cast<char>(c) + "b" + static_cast<char>(c);
    std::string out;
    JsonWriter(out).String(s);
    EXPECT_EQ(out, json::serialize(json::value(json::string_view(s)))) << "byte " << c;
  }
  std::string out;
  JsonWriter(out).String("Zoë \"quoted\" \\ \xF0\x9F\x98\x80\n");
  EXPECT_EQ(out, json::serialize(json::value("Zoë \"quoted\" \\ \xF0\x9F\x98\x80\n")));
}

// The escaping looks at eight bytes at a time: every byte value at every place of strings
// around a word's length, and two bytes to escape in one word, as boost::json::serialize.
TEST(JsonWriter, EscapesEveryByteAtEveryPlaceOfAWord) {
  for (std::size_t len : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 24u, 31u}) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int c = 0; c < 256; ++c) {
        std::string s(len, 'x');
        s[pos] = static_cast<char>(c);
        if (pos + 3 < len) s[pos + 3] = '"';
        std::string out;
        JsonWriter(out).String(s);
        ASSERT_EQ(out, json::serialize(json::value(json::string_view(s))))
            << "length " << len << ", byte " << c << " at " << pos;
      }
    }
  }
}

TEST(JsonWriter, NestedDocumentMatchesTheDom) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Member("resourceType", "Bundle").Key("total").Int(-42);
  w.Key("empty").BeginArray().EndArray().Key("none").BeginObject().EndObject();
  w.Key("entry").BeginArray();
  w.BeginObject().Key("ok").Bool(true).Key("no").Bool(false).EndObject();
  w.String("x").Int(7).Value(json::value{{"k", json::array{1, "two", nullptr}}});
  w.EndArray().Key("key \"q\"").String("v").EndObject();
  EXPECT_TRUE(w.Complete());
  const json::value dom = {{"resourceType", "Bundle"},
                           {"total", -42},
                           {"empty", json::array{}},
                           {"none", json::object{}},
                           {"entry", json::array{json::object{{"ok", true}, {"no", false}}, "x", 7,
                                                 json::object{{"k", {1, "two", nullptr}}}}},
                           {"key \"q\"", "v"}};
  EXPECT_EQ(out, json::serialize(dom));
}

TEST(JsonWriter, RefusesWhatWouldNotBeJson) {
  std::string out;
  {
    JsonWriter w(out);
    w.BeginObject();
    EXPECT_THROW(w.String("value without a key"), std::logic_error);
  }
  {
    JsonWriter w(out);
    w.BeginArray();
    EXPECT_THROW(w.Key("key in an array"), std::logic_error);
    EXPECT_THROW(w.EndObject(), std::logic_error);
  }
  {
    JsonWriter w(out);
    w.BeginObject().Key("k");
    EXPECT_THROW(w.Key("second key"), std::logic_error);
    EXPECT_THROW(w.EndObject(), std::logic_error);
    EXPECT_FALSE(w.Complete());
  }
  {
    JsonWriter w(out);
    w.Int(1);
    EXPECT_THROW(w.Int(2), std::logic_error);
  }
  {
    JsonWriter w(out);
    for (int i = 0; i < 64; ++i) w.BeginArray();
    EXPECT_THROW(w.BeginArray(), std::logic_error);
  }
}

// The writer forms of the FHIR helpers and the searchset Bundle give what the DOM
// helpers give (the shapes clients and the e2e suite read).
TEST(JsonWriter, FhirHelpersMatchTheirDomForms) {
  std::string out;
  JsonWriter w(out);
  w.BeginArray();
  WriteReference(w, "Patient", "7");
  WriteReference(w, "Organization", "3", "Clinic \"North\"");
  WriteReference(w, "Organization", "4", "");
  WriteCoding(w, "sys", "c", "d");
  WriteConcept(w, "sys", "c", "d");
  WriteMeta(w, "2026-12-04T10:00:00.000Z");
  w.EndArray();
  json::object org = Reference("Organization", "3");
  org["display"] = "Clinic \"North\"";
  json::object org4 = Reference("Organization", "4");
  org4["display"] = "";
  const json::array dom{
      Reference("Patient", "7"),       org, org4, Coding("sys", "c", "d"), Concept("sys", "c", "d"),
      Meta("2026-12-04T10:00:00.000Z")};
  EXPECT_EQ(out, json::serialize(dom));

  for (const bool with_next : {false, true}) {
    for (const std::optional<int64_t> total :
         {std::optional<int64_t>{}, std::optional<int64_t>{2}}) {
      const std::optional<std::string> next =
          with_next ? std::optional<std::string>("http://h/fhir/R4/X?_offset=2") : std::nullopt;
      std::vector<json::object> resources{
          json::object{{"resourceType", "AllergyIntolerance"}, {"id", "1"}},
          json::object{{"resourceType", "AllergyIntolerance"}, {"id", "2"}, {"x", 1}}};
      const std::string expected = json::serialize(
          SearchBundle("http://h/fhir/R4/X?_count=2", next, resources, "http://h/fhir/R4", total));
      std::string body;
      JsonWriter bw(body);
      BeginSearchBundle(bw, "http://h/fhir/R4/X?_count=2", next, total);
      for (const auto& r : resources) {
        BeginSearchEntry(bw, "http://h/fhir/R4", "AllergyIntolerance", r.at("id").as_string());
        bw.Value(r);
        EndSearchEntry(bw);
      }
      EndSearchBundle(bw);
      EXPECT_TRUE(bw.Complete());
      EXPECT_EQ(body, expected);
    }
  }
  std::string empty;
  JsonWriter ew(empty);
  BeginSearchBundle(ew, "self", std::nullopt, 0);
  EndSearchBundle(ew);
  EXPECT_EQ(empty, json::serialize(SearchBundle("self", std::nullopt, {}, "b", 0)));
}

}  // namespace
}  // namespace continuum::fhir
